//! Requests that fail on purpose: throttling (503 SlowDown), 500s and connection resets are
//! retried with backoff until they succeed; a store that never recovers ends the run with the
//! retryable exit code (75). The server is `tests/flaky_s3.py`, a read-only S3 look-alike on
//! 127.0.0.1 that fails the first tries of each request as told.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{roundtrip, text};
use parqour::avro::codec::Codec;

struct Flaky {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Drop for Flaky {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn flaky(root: &Path, plan: &str) -> Flaky {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/flaky_s3.py");
    let log = root.join(format!("requests-{plan}.log"));
    let mut child = Command::new("python3")
        .arg(script)
        .arg(root)
        .arg(plan)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    Flaky {
        child,
        port: line.trim().parse().unwrap(),
        log,
    }
}

fn convert(port: u16, url: &str, out: &Path, envs: &[(&str, &str)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_parqour"))
        .args(["convert", url, "-o"])
        .arg(out)
        .env("AWS_ACCESS_KEY_ID", "k")
        .env("AWS_SECRET_ACCESS_KEY", "s")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
        .env("AWS_ALLOW_HTTP", "true")
        .env("PARQOUR_LOG", "warn")
        .envs(envs.iter().copied())
        .output()
        .unwrap()
}

fn fixture(root: &Path) -> std::path::PathBuf {
    let dir = root.join("raw");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("a.avro");
    let f = std::fs::File::create(&p).unwrap();
    parqour::demo::write_events(std::io::BufWriter::new(f), Codec::Deflate, 0, 3000, 5).unwrap();
    p
}

#[test]
fn throttling_errors_and_resets_are_retried() {
    let tmp = tempfile::tempdir().unwrap();
    let local = fixture(tmp.path());
    // Each request: throttled, then a 500, then a reset connection, then served.
    let server = flaky(tmp.path(), "ter");
    let out_dir = tmp.path().join("out");
    let out = convert(server.port, "s3://raw/a.avro", &out_dir, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let log = std::fs::read_to_string(&server.log).unwrap();
    for outcome in [
        "GET /raw/a.avro -> t",
        "GET /raw/a.avro -> e",
        "GET /raw/a.avro -> r",
        "GET /raw/a.avro -> ok",
    ] {
        assert!(log.contains(outcome), "{outcome} missing from:\n{log}");
    }
    roundtrip(&out_dir, &[&local]);
}

#[test]
fn a_store_that_never_recovers_is_a_retryable_failure() {
    let tmp = tempfile::tempdir().unwrap();
    fixture(tmp.path());
    let server = flaky(tmp.path(), "x");
    let started = Instant::now();
    let out = convert(
        server.port,
        "s3://raw/a.avro",
        &tmp.path().join("out"),
        &[
            ("PARQOUR_S3_MAX_RETRIES", "2"),
            ("PARQOUR_S3_RETRY_TIMEOUT", "20"),
        ],
    );
    assert_eq!(out.status.code(), Some(75), "{}", text(&out));
    let log = std::fs::read_to_string(&server.log).unwrap();
    let tries = log
        .lines()
        .filter(|l| l.starts_with("HEAD /raw/a.avro"))
        .count();
    assert_eq!(tries, 3, "one try and two retries:\n{log}");
    assert!(started.elapsed() < Duration::from_secs(60));
}
