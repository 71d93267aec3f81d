//! moto's server (an AWS emulator: Batch, SNS, SQS, IAM, EC2) for the end-to-end tests, started
//! once per test binary on a free port of 127.0.0.1 and stopped by a watcher when the test
//! process exits. `tests/aws_emulator.py` (boto3) sets it up: Batch without Docker (jobs are
//! recorded and marked SUCCEEDED at once, never run), the IAM service role, a Fargate compute
//! environment and the job queue [`QUEUE`].

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use super::seaweed::free_port;
use super::text;

/// The job queue created at start.
pub const QUEUE: &str = "parqour";

/// The running server.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    _dir: tempfile::TempDir,
}

fn script() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/aws_emulator.py"
    ))
}

/// Runs `tests/aws_emulator.py ENDPOINT args...` and parses its JSON output.
pub fn emulator(endpoint: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new("python3")
        .arg(script())
        .arg(endpoint)
        .args(args)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "aws_emulator.py {args:?} failed (moto and boto3: pip install 'moto[server]'):\n{}",
        text(&out)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The server, started and set up on first use.
pub fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let script = format!(
            "moto_server -H 127.0.0.1 -p {port} >{log} 2>&1 & M=$!; trap 'kill $M 2>/dev/null' EXIT; \
             while kill -0 {pid} 2>/dev/null && kill -0 $M 2>/dev/null; do sleep 0.5; done",
            log = dir.path().join("moto.log").display(),
            pid = std::process::id()
        );
        // Not waited on: the watcher outlives this process by design and cleans up after it.
        #[allow(clippy::zombie_processes)]
        Command::new("bash")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("bash");
        let endpoint = format!("http://127.0.0.1:{port}");
        // `setup` waits for the server to answer.
        emulator(&endpoint, &["setup", QUEUE]);
        Server {
            endpoint,
            _dir: dir,
        }
    })
}

/// Every job of the queue, oldest first: name, id, status, parameters, command, array size.
pub fn jobs() -> Vec<serde_json::Value> {
    match emulator(&server().endpoint, &["jobs", QUEUE]) {
        serde_json::Value::Array(jobs) => jobs,
        other => panic!("{other}"),
    }
}
