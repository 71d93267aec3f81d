//! End-to-end tests against a real S3-compatible server on 127.0.0.1: SeaweedFS, started by
//! `common::seaweed` once per test binary.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::seaweed::{KEY, SECRET, download_all, parqour, server, store, upload};
use common::{roundtrip, text};
use parqour::avro::codec::Codec;

fn run(args: &[&str]) -> Output {
    parqour(&server().endpoint, args)
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
    // Again with --overwrite: the new file has a run id in its name, and replaces the first.
    let o = run(&[
        "convert",
        "s3://raw/events/2026/11/26/03/part-1.avro",
        "--output",
        "s3://lake/single/",
        "--overwrite",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("deleted 1 earlier file(s)"),
        "{}",
        text(&o)
    );
    let files = download_all("lake", "single", &tmp.path().join("single"));
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with("part-00000-") && name.ends_with(".snappy.parquet"),
        "{name}"
    );

    // A whole bucket is a prefix (SeaweedFS answers a HEAD of the bucket with an empty
    // object, which was read as the one input).
    upload(&local.join("part-2.avro"), "root", "a/b/part-2.avro");
    for url in ["s3://root", "s3://root/"] {
        let o = run(&[
            "convert",
            url,
            "--output",
            &format!("s3://lake/root{}/", url.len()),
        ]);
        assert!(o.status.success(), "{url}: {}", text(&o));
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(
            stdout.contains("read 7000 records from 1 input(s)"),
            "{url}: {stdout}"
        );
    }

    // The endpoint as only the AWS CLI would need it: the S3 one of AWS_ENDPOINT_URL_S3, an
    // http:// URL without AWS_ALLOW_HTTP (the general endpoint pointing nowhere); then an
    // explicit AWS_ALLOW_HTTP=false, which still refuses plain HTTP.
    let endpoint = server().endpoint.as_str();
    let convert_with = |output: &str, env: &[(&str, &str)]| {
        Command::new(env!("CARGO_BIN_EXE_parqour"))
            .args(["convert", "s3://raw/events/2026/11/26/03/part-1.avro"])
            .args(["--output", output])
            .env("AWS_ACCESS_KEY_ID", KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env("AWS_REGION", "us-east-1")
            .env_remove("AWS_ALLOW_HTTP")
            .envs(env.iter().copied())
            .output()
            .unwrap()
    };
    let o = convert_with(
        "s3://lake/endpoint-s3/",
        &[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
            ("AWS_ENDPOINT_URL_S3", endpoint),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("read 7000 records from 1 input(s)"));
    let o = convert_with(
        "s3://lake/endpoint-s3-refused/",
        &[
            ("AWS_ENDPOINT_URL", endpoint),
            ("AWS_ALLOW_HTTP", "false"),
            ("PARQOUR_S3_MAX_RETRIES", "0"),
        ],
    );
    // A contradiction in the settings (exit 78), said before any request, not an outage.
    assert_eq!(o.status.code(), Some(78), "{}", text(&o));
    assert!(text(&o).contains("AWS_ALLOW_HTTP"), "{}", text(&o));
    // Truthy as object_store reads it.
    let o = convert_with(
        "s3://lake/endpoint-allowed/",
        &[("AWS_ENDPOINT_URL", endpoint), ("AWS_ALLOW_HTTP", "1")],
    );
    assert!(o.status.success(), "{}", text(&o));
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

    // A partition job whose input's bucket is missing: a configuration error, as for
    // `convert` (S3 answers the HEAD of an object in a missing bucket with a bare 404); an
    // object missing from a bucket that exists is missing input.
    let tmp = tempfile::tempdir().unwrap();
    for (input, code) in [
        ("s3://no-such-bucket/x.avro", 78),
        ("s3://raw/no/such/object.avro", 65),
    ] {
        let manifest = tmp.path().join("m.json");
        let json = serde_json::json!({"version": 1, "table": "s3://lake/missing",
            "partition": {"dt": "2026-11-26"}, "inputs": [input]});
        std::fs::write(&manifest, json.to_string()).unwrap();
        let o = run(&["run", "--manifest", manifest.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(code), "{input}: {}", text(&o));
        assert!(text(&o).contains(input), "{input}: {}", text(&o));
    }
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

/// Credentials from a named profile in the shared files, as the AWS CLI reads them (no keys in
/// the environment); a profile with wrong keys is a configuration error.
#[test]
fn credentials_from_an_aws_profile() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(home.join(".aws")).unwrap();
    std::fs::write(
        home.join(".aws/credentials"),
        format!(
            "[parqour-test]\naws_access_key_id = {KEY}\naws_secret_access_key = {SECRET}\n\n\
             [wrong]\naws_access_key_id = nobody\naws_secret_access_key = nothing\n"
        ),
    )
    .unwrap();
    std::fs::write(
        home.join(".aws/config"),
        "[profile parqour-test]\nregion = us-east-1\n\n[profile wrong]\nregion = us-east-1\n",
    )
    .unwrap();
    let local = tmp.path().join("p.avro");
    let f = std::fs::File::create(&local).unwrap();
    parqour::demo::write_events(std::io::BufWriter::new(f), Codec::Deflate, 0, 500, 4).unwrap();
    upload(&local, "raw", "profile/p.avro");
    let with_profile = |profile: &str, out: &Path| {
        Command::new(env!("CARGO_BIN_EXE_parqour"))
            .args(["convert", "s3://raw/profile/", "-o"])
            .arg(out)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("AWS_PROFILE", profile)
            .env("AWS_ENDPOINT_URL", &server().endpoint)
            .env("AWS_ALLOW_HTTP", "true")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("PARQOUR_LOG", "warn")
            .output()
            .unwrap()
    };
    let out = tmp.path().join("out");
    let o = with_profile("parqour-test", &out);
    assert!(o.status.success(), "{}", text(&o));
    roundtrip(&out, &[&local]);
    let o = with_profile("wrong", &tmp.path().join("out2"));
    assert_eq!(o.status.code(), Some(78), "{}", text(&o));
}

/// Multipart uploads in progress under `prefix` of `bucket`, listed with boto3.
fn uploads_in_progress(bucket: &str, prefix: &str) -> usize {
    let out = Command::new("python3")
        .args([
            "-c",
            "import boto3, sys\n\
             s3 = boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id=sys.argv[2],\n\
                 aws_secret_access_key=sys.argv[3], region_name='us-east-1')\n\
             r = s3.list_multipart_uploads(Bucket=sys.argv[4], Prefix=sys.argv[5])\n\
             print(len(r.get('Uploads', [])))",
            &server().endpoint,
            KEY,
            SECRET,
            bucket,
            prefix,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn keys(bucket: &str, prefix: &str) -> Vec<String> {
    use futures::StreamExt;
    use object_store::ObjectStore;
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = store(bucket);
        let prefix = object_store::path::Path::from(prefix);
        let mut list = store.list(Some(&prefix));
        let mut out = Vec::new();
        while let Some(meta) = list.next().await {
            out.push(meta.unwrap().location.to_string());
        }
        out.sort();
        out
    })
}

/// A run that fails while a multipart upload is open aborts it: no part file, no upload left.
#[test]
fn a_failed_run_aborts_its_multipart_upload() {
    let tmp = tempfile::tempdir().unwrap();
    let big = tmp.path().join("a.avro");
    let f = std::fs::File::create(&big).unwrap();
    parqour::demo::write_events(std::io::BufWriter::new(f), Codec::Deflate, 0, 100_000, 6).unwrap();
    upload(&big, "raw", "abort/a.avro");
    // The second input is cut short: the run fails after the first file's upload has parts.
    let bytes = std::fs::read(&big).unwrap();
    let cut = tmp.path().join("b.avro");
    std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
    upload(&cut, "raw", "abort/b.avro");
    let o = run(&[
        "convert",
        "s3://raw/abort/",
        "-o",
        "s3://lake/abort-out/",
        "--row-group-size",
        "2MiB",
        "--target-file-size",
        "1GiB",
    ]);
    assert_eq!(o.status.code(), Some(65), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("b.avro"),
        "{}",
        text(&o)
    );
    assert_eq!(keys("lake", "abort-out"), Vec::<String>::new());
    assert_eq!(uploads_in_progress("lake", "abort-out"), 0);
    // The same input converts when whole: the first file alone needs several parts.
    let o = run(&[
        "convert",
        "s3://raw/abort/a.avro",
        "-o",
        "s3://lake/abort-ok/",
        "--row-group-size",
        "2MiB",
        "--target-file-size",
        "1GiB",
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        report["outputs"][0]["bytes"].as_u64().unwrap() > 16 << 20,
        "the file spans several 8 MiB parts: {report}"
    );
}

/// The partition job on S3, SIGKILLed at several points while it uploads, then rerun: every row
/// once, nothing but the committed files.
#[test]
fn partition_job_killed_then_rerun_on_s3() {
    let tmp = tempfile::tempdir().unwrap();
    let mut locals = Vec::new();
    for i in 0..4u64 {
        let p = tmp.path().join(format!("k{i}.avro"));
        let f = std::fs::File::create(&p).unwrap();
        parqour::demo::write_events(
            std::io::BufWriter::new(f),
            Codec::Snappy,
            i * 15_000,
            15_000,
            9,
        )
        .unwrap();
        upload(&p, "raw", &format!("kill/2026/11/26/05/k{i}.avro"));
        locals.push(p);
    }
    let o = run(&[
        "manifest",
        "create",
        "--input",
        "s3://raw/kill/2026/11/26/05/",
        "--table",
        "s3://lake/kill",
        "--partition",
        "dt=2026-11-26",
        "--partition",
        "hour=05",
        "--output",
        "s3://raw/manifests/kill-05.json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let prefix = "kill/dt=2026-11-26/hour=05";
    for delay_ms in [100, 400, 1000] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_parqour"))
            .args(["run", "--manifest", "s3://raw/manifests/kill-05.json"])
            .env("AWS_ACCESS_KEY_ID", KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", &server().endpoint)
            .env("AWS_ALLOW_HTTP", "true")
            .env("PARQOUR_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let o = run(&["run", "--manifest", "s3://raw/manifests/kill-05.json"]);
        assert!(
            o.status.success(),
            "after a kill at {delay_ms} ms: {}",
            text(&o)
        );
        let files = download_all("lake", prefix, &tmp.path().join(format!("pq-{delay_ms}")));
        let marker: serde_json::Value = serde_json::from_slice(
            &std::fs::read(tmp.path().join(format!("pq-{delay_ms}/_SUCCESS"))).unwrap(),
        )
        .unwrap();
        assert_eq!(marker["records_out"], 60_000);
        let mut listed: Vec<String> = marker["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["file"].as_str().unwrap().to_string())
            .collect();
        listed.push("_SUCCESS".into());
        listed.sort();
        let mut names: Vec<String> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().to_string())
            .collect();
        names.sort();
        assert_eq!(
            names, listed,
            "nothing but the committed files after a kill at {delay_ms} ms"
        );
        std::fs::remove_file(tmp.path().join(format!("pq-{delay_ms}/_SUCCESS"))).unwrap();
        if delay_ms == 1000 {
            let inputs: Vec<&Path> = locals.iter().map(|p| p.as_path()).collect();
            roundtrip(&tmp.path().join(format!("pq-{delay_ms}")), &inputs);
        }
        // Start the next round from nothing committed.
        use object_store::ObjectStoreExt;
        let rt = tokio::runtime::Runtime::new().unwrap();
        for key in keys("lake", prefix) {
            rt.block_on(store("lake").delete(&key.as_str().into()))
                .unwrap();
        }
    }
}

/// Keys as S3 has them: what a URL parser would misread (`%`, `#`, `?`, `+`, spaces, non-ASCII)
/// is part of the key, in inputs, outputs and the URLs printed for them; and a prefix of more
/// objects than one listing page (1,000) is read whole.
#[test]
fn object_keys_are_verbatim_and_long_listings_are_read_whole() {
    use futures::StreamExt;
    use object_store::ObjectStoreExt;
    let tmp = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let raw = store("raw");
    // Two events starting at `first` under `key`; a local copy for the value checks.
    let put = |key: &str, first: u64| {
        let mut data = Vec::new();
        parqour::demo::write_events(&mut data, Codec::Null, first, 2, 5).unwrap();
        let local = tmp.path().join(format!("{first:06}.avro"));
        std::fs::write(&local, &data).unwrap();
        let path = object_store::path::Path::parse(key).unwrap();
        let raw = &raw;
        (local, async move { raw.put(&path, data.into()).await })
    };

    // S3 lists in byte order of the keys; the local copies are checked in that order.
    let mut keys = [
        "odd/a b.avro",
        "odd/k=v+x%20y.avro",
        "odd/sub dir/#frag?q=1.avro",
        "odd/ü-ñ/100%.avro",
        "odd/%41.avro",
    ];
    keys.sort();
    let mut locals = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let (local, put) = put(key, i as u64 * 10);
        rt.block_on(put).unwrap();
        locals.push(local);
    }
    // Each one alone, by its URL as written: only that object is read.
    for (key, local) in keys.iter().zip(&locals) {
        let out = format!("s3://lake/odd out/{key}%25 #/");
        let o = run(&["convert", &format!("s3://raw/{key}"), "--output", &out]);
        assert!(o.status.success(), "{key}: {}", text(&o));
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(
            stdout.contains("read 2 records from 1 input(s)"),
            "{key}: {stdout}"
        );
        assert!(
            stdout.contains(&format!("{out}part-00000.snappy.parquet")),
            "{stdout}"
        );
        let got = download_all(
            "lake",
            &format!("odd out/{key}%25 #"),
            &tmp.path().join("one").join(local.file_stem().unwrap()),
        );
        assert_eq!(got.len(), 1, "{key}: {got:?}");
        roundtrip(got[0].parent().unwrap(), &[local.as_path()]);
    }
    // The prefix: every object, in key order.
    let o = run(&["convert", "s3://raw/odd/", "--output", "s3://lake/odd all/"]);
    assert!(o.status.success(), "{}", text(&o));
    let got = download_all("lake", "odd all", &tmp.path().join("all"));
    let inputs: Vec<&Path> = locals.iter().map(|p| p.as_path()).collect();
    roundtrip(got[0].parent().unwrap(), &inputs);

    // 1,050 objects under one prefix: two listing pages.
    rt.block_on(async {
        let puts: Vec<_> = (0..1050u64)
            .map(|i| put(&format!("paged/p-{i:05}.avro"), 1000 + i * 2).1)
            .collect();
        let mut done = futures::stream::iter(puts).buffer_unordered(32);
        while let Some(r) = done.next().await {
            r.unwrap();
        }
    });
    let o = run(&["convert", "s3://raw/paged/", "--output", "s3://lake/paged/"]);
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("read 2100 records from 1050 input(s)"),
        "{stdout}"
    );
}
