//! End-to-end tests of `parqour run` (the partition job) and `parqour manifest create` on local
//! folders: the commit protocol under SIGKILL, reruns, escaping, and bad manifests. The same
//! protocol against an S3-compatible server is in `tests/s3.rs`; request counts on the in-memory
//! store are in `src/job.rs`.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::{bin, roundtrip, run_manifest, text};
use parqour::avro::codec::Codec;

/// Writes `files` demo Avro files of `n` events into `dir`.
fn raw(dir: &Path, files: u64, n: u64) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    (0..files)
        .map(|i| {
            let p = dir.join(format!("obj-{i}.avro"));
            let f = std::fs::File::create(&p).unwrap();
            parqour::demo::write_events(std::io::BufWriter::new(f), Codec::Deflate, i * n, n, 2)
                .unwrap();
            p
        })
        .collect()
}

fn manifest(inputs: &[PathBuf], table: &Path, partition: &[(&str, &str)], extra: &str) -> String {
    let inputs: Vec<String> = inputs
        .iter()
        .map(|p| format!("{:?}", p.display().to_string()))
        .collect();
    let partition: Vec<String> = partition
        .iter()
        .map(|(k, v)| format!("{}: {}", serde_json::json!(k), serde_json::json!(v)))
        .collect();
    format!(
        r#"{{"version": 1, "table": {:?}, "partition": {{{}}}, "inputs": [{}]{extra}}}"#,
        table.display().to_string(),
        partition.join(", "),
        inputs.join(", ")
    )
}

/// Files in the partition folder, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn marker(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("_SUCCESS")).unwrap()).unwrap()
}

/// The partition holds exactly the marker's files and every input value once.
fn assert_committed(dir: &Path, inputs: &[PathBuf], records: u64) {
    let m = marker(dir);
    assert_eq!(m["records_out"], records);
    let mut expected: Vec<String> = m["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["file"].as_str().unwrap().to_string())
        .collect();
    expected.push("_SUCCESS".into());
    expected.sort();
    assert_eq!(listing(dir), expected, "nothing but the committed files");
    let inputs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
    roundtrip(dir, &inputs);
}

#[test]
fn killed_at_any_point_then_rerun_holds_every_row_once() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = raw(&tmp.path().join("raw"), 6, 8000);
    let table = tmp.path().join("lake/events");
    let part = table.join("dt=2026-11-26/hour=03");
    let old_inputs = &inputs[..2];
    // A committed earlier generation (two objects), then late data: all six.
    let m_old = tmp.path().join("old.json");
    std::fs::write(
        &m_old,
        manifest(
            old_inputs,
            &table,
            &[("dt", "2026-11-26"), ("hour", "03")],
            "",
        ),
    )
    .unwrap();
    let m_new = tmp.path().join("new.json");
    std::fs::write(
        &m_new,
        manifest(
            &inputs,
            &table,
            &[("dt", "2026-11-26"), ("hour", "03")],
            r#", "target_file_size": "1MiB""#,
        ),
    )
    .unwrap();
    for delay_ms in [20, 80, 200, 400, 800, 1500, 3000] {
        std::fs::remove_dir_all(&table).ok();
        let o = run_manifest(&m_old);
        assert!(o.status.success(), "{}", text(&o));
        let mut child = bin()
            .args(["run", "--manifest"])
            .arg(&m_new)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let o = run_manifest(&m_new);
        assert!(
            o.status.success(),
            "after a kill at {delay_ms} ms: {}",
            text(&o)
        );
        assert_committed(&part, &inputs, 48_000);
    }
}

/// A run killed while the local store stages a file (`part-...parquet#N`, renamed into place
/// when written) leaves the staging file; the local store does not list such names, so the
/// next run deletes them itself, committed already or not.
#[test]
fn staging_files_of_a_killed_run_are_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = raw(&tmp.path().join("raw"), 2, 1000);
    let table = tmp.path().join("lake/events");
    let part = table.join("dt=2026-11-26");
    let m = tmp.path().join("m.json");
    std::fs::write(&m, manifest(&inputs, &table, &[("dt", "2026-11-26")], "")).unwrap();
    let stale = [
        "part-00000-0123456789abcdef.snappy.parquet#3",
        "part-00001-fedcba9876543210.zstd.parquet#12",
    ];
    // First a commit, then a rerun that finds it committed: both sweep.
    for _ in 0..2 {
        std::fs::create_dir_all(&part).unwrap();
        for name in stale {
            std::fs::write(part.join(name), b"half a file").unwrap();
        }
        // Not ours: left alone (and not a reason to fail).
        std::fs::write(part.join("notes#1"), b"x").unwrap();
        let o = run_manifest(&m);
        assert!(o.status.success(), "{}", text(&o));
        std::fs::remove_file(part.join("notes#1")).unwrap();
        assert_committed(&part, &inputs, 2000);
    }
}

/// A run that fails after it began writing (a corrupt block in the last input, no dead-letter
/// place) leaves no part file, no staging file and none of the folders it made; a folder that
/// was there before stays.
#[test]
fn a_failed_run_leaves_no_folders_it_made() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = raw(&tmp.path().join("raw"), 2, 20_000);
    let mut bad = std::fs::read(&inputs[1]).unwrap();
    let middle = bad.len() / 2;
    for b in &mut bad[middle..middle + 64] {
        *b ^= 0x5a;
    }
    std::fs::write(&inputs[1], bad).unwrap();
    let lake = tmp.path().join("lake");
    let part = lake.join("events/dt=2026-11-26");
    let m = tmp.path().join("m.json");
    std::fs::write(
        &m,
        manifest(&inputs, &lake.join("events"), &[("dt", "2026-11-26")], ""),
    )
    .unwrap();
    let o = run_manifest(&m);
    assert_eq!(o.status.code(), Some(65), "{}", text(&o));
    assert!(!lake.exists(), "{:?}", listing(&part));
    std::fs::create_dir_all(&part).unwrap();
    let o = run_manifest(&m);
    assert_eq!(o.status.code(), Some(65), "{}", text(&o));
    assert!(part.is_dir());
    assert_eq!(listing(&part), Vec::<String>::new());
}

#[test]
fn rerun_changes_nothing_and_late_data_replaces_the_generation() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = raw(&tmp.path().join("raw"), 3, 3000);
    let table = tmp.path().join("lake/events");
    let part = table.join("dt=2026-11-26");
    let m1 = tmp.path().join("m1.json");
    let o = bin()
        .args(["manifest", "create", "--input"])
        .arg(tmp.path().join("raw"))
        .arg("--table")
        .arg(&table)
        .args(["--partition", "dt=2026-11-26", "--output"])
        .arg(&m1)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let o = run_manifest(&m1);
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("\"_aws\""), "an EMF line: {stdout}");
    assert_committed(&part, &inputs, 9000);
    let before: Vec<_> = listing(&part)
        .iter()
        .map(|f| std::fs::metadata(part.join(f)).unwrap().modified().unwrap())
        .collect();
    let o = run_manifest(&m1);
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("already committed"));
    let after: Vec<_> = listing(&part)
        .iter()
        .map(|f| std::fs::metadata(part.join(f)).unwrap().modified().unwrap())
        .collect();
    assert_eq!(before, after, "a rerun writes nothing");

    // Late data.
    let more = raw(&tmp.path().join("raw2"), 1, 500);
    let mut all = inputs.clone();
    all.extend(more);
    let m2 = tmp.path().join("m2.json");
    std::fs::write(&m2, manifest(&all, &table, &[("dt", "2026-11-26")], "")).unwrap();
    let old_generation = marker(&part)["generation"].as_str().unwrap().to_string();
    let o = run_manifest(&m2);
    assert!(o.status.success(), "{}", text(&o));
    assert_ne!(
        marker(&part)["generation"].as_str().unwrap(),
        old_generation
    );
    assert_committed(&part, &all, 9500);
}

#[test]
fn partition_values_cannot_escape_their_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = raw(&tmp.path().join("raw"), 1, 100);
    let table = tmp.path().join("lake/t");
    let m = tmp.path().join("m.json");
    std::fs::write(
        &m,
        manifest(
            &inputs,
            &table,
            &[("a", "../x"), ("b", "p/q=r%"), ("c", "日本")],
            "",
        ),
    )
    .unwrap();
    let o = run_manifest(&m);
    assert!(o.status.success(), "{}", text(&o));
    let part = table.join("a=..%2Fx/b=p%2Fq%3Dr%25/c=日本");
    assert_committed(&part, &inputs, 100);
    assert!(!tmp.path().join("lake/x").exists());
}

#[test]
fn bad_manifests_and_missing_objects_are_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = raw(&tmp.path().join("raw"), 1, 10);
    let table = tmp.path().join("lake/t");
    let cases = [
        (
            manifest(&inputs, &table, &[("dt", "x")], r#", "surprise": 1"#),
            "unknown field `surprise`",
        ),
        (
            manifest(&inputs, &table, &[("DT", "x")], ""),
            "partition key `DT`",
        ),
        ("{not json".to_string(), "invalid manifest"),
        (
            manifest(
                &[tmp.path().join("raw/missing.avro")],
                &table,
                &[("dt", "x")],
                "",
            ),
            "raw/missing.avro",
        ),
    ];
    for (i, (body, expect)) in cases.iter().enumerate() {
        let m = tmp.path().join(format!("m{i}.json"));
        std::fs::write(&m, body).unwrap();
        let o = run_manifest(&m);
        assert_eq!(o.status.code(), Some(65), "{expect}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(expect),
            "{expect}: {}",
            text(&o)
        );
    }
    let o = bin()
        .args(["run", "--manifest"])
        .arg(tmp.path().join("nope.json"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(65), "{}", text(&o));
    // PARQOUR_MANIFEST is read as AWS Batch passes it.
    let m = tmp.path().join("env.json");
    std::fs::write(&m, manifest(&inputs, &table, &[("dt", "x")], "")).unwrap();
    let o = bin()
        .arg("run")
        .env("PARQOUR_MANIFEST", &m)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
}

/// Blocks of arrays of zeros, each inflating to a megabyte and decoding to 8 MB of Arrow
/// values: a group of blocks (cut at 2 MiB stored) decodes up to a sixteenth of
/// `--memory-limit` (at most 64 MiB) before it hands the rest back. With 128 MiB that is
/// 8 MiB: the run peaks near 170 MiB (debug build), where the default limit's 64 MiB groups
/// peak near 270 MiB.
#[test]
fn the_memory_limit_bounds_each_group_of_decoded_blocks() {
    if !common::have_program("/usr/bin/time", "time") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let schema = r#"{"type":"record","name":"r","fields":[
        {"name":"id","type":"long"},
        {"name":"zeros","type":{"type":"array","items":"long"}}]}"#;
    let mut w = parqour::avro::writer::ContainerWriter::new(
        Vec::new(),
        schema,
        Codec::Deflate,
        [3; 16],
        &std::collections::BTreeMap::new(),
    )
    .unwrap()
    .with_block_bytes(1 << 20);
    let mut d = parqour::avro::writer::Datum::new();
    for i in 0..150_000 {
        d.clear();
        d.long(i).items(1000);
        d.buf.extend_from_slice(&[0; 1000]);
        d.end_items();
        w.append(&d.buf).unwrap();
    }
    let input = tmp.path().join("zeros.avro");
    std::fs::write(&input, w.finish().unwrap()).unwrap();
    let table = tmp.path().join("table");
    let m = tmp.path().join("manifest.json");
    std::fs::write(&m, manifest(&[input], &table, &[("dt", "x")], "")).unwrap();
    let (o, rss) = common::peak_rss(&[
        "run".as_ref(),
        "--manifest".as_ref(),
        m.as_os_str(),
        "--memory-limit".as_ref(),
        "128MiB".as_ref(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(marker(&table.join("dt=x"))["records_out"], 150_000);
    assert!(rss < 224 << 10, "peak RSS {rss} KiB: {}", text(&o));
}

/// A memory limit of a few MiB converts, slowly, instead of hanging: the open group of blocks
/// held their share of the budget while the source waited for room to hand over the block
/// that would have closed it (several inputs, `--memory-limit` under about 10 MiB).
#[test]
fn a_tiny_memory_limit_converts_instead_of_hanging() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = raw(&tmp.path().join("raw"), 4, 12_000);
    let table = tmp.path().join("table");
    let m = tmp.path().join("manifest.json");
    std::fs::write(&m, manifest(&inputs, &table, &[("dt", "x")], "")).unwrap();
    for limit in ["1MiB", "6MiB"] {
        std::fs::remove_dir_all(&table).ok();
        let mut child = bin()
            .args(["run", "--memory-limit", limit, "--manifest"])
            .arg(&m)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if started.elapsed() > Duration::from_secs(120) {
                child.kill().unwrap();
                child.wait().unwrap();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(
            status.is_some_and(|s| s.success()),
            "--memory-limit {limit}: {status:?}"
        );
        assert_committed(&table.join("dt=x"), &inputs, 48_000);
    }
}
