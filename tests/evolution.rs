//! End-to-end tests of schema evolution, DataWrapper envelopes, the registry and the
//! dead-letter place, on fixtures written by fastavro (`tests/evolution.py`): three versions of
//! an event interleaved record by record, a second data type, envelopes in a container file and
//! as raw concatenated datums, an unknown fingerprint and corrupt datums. Every value read back
//! from Parquet (pyarrow) is compared with fastavro's own schema resolution.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{bin, run_manifest, text};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/evolution.py")
}

fn python(args: &[&str]) -> Output {
    Command::new("python3")
        .arg(script())
        .args(args)
        .output()
        .expect("python3 with fastavro and pyarrow (tests/requirements.txt)")
}

/// `parqour convert AVRO --reader-schema READER --output OUT`.
fn convert_as(avro: &Path, reader: &Path, out: &Path) -> Output {
    bin()
        .arg("convert")
        .arg(avro)
        .arg("--reader-schema")
        .arg(reader)
        .arg("--output")
        .arg(out)
        .output()
        .unwrap()
}

/// Random writer schemas and data with a reader schema derived from each by the changes Avro's
/// resolution allows (`tests/gen_random.py --evolve`): fields dropped, added with defaults of
/// every kind, renamed through aliases and reordered; promotions; enum symbols added, or
/// removed behind a default; types made nullable; union branches added and reordered. Each file
/// is converted with `--reader-schema`, and every value compared with fastavro's resolution of
/// the same bytes (`tests/roundtrip.py --reader-schema`).
#[test]
fn random_evolutions_resolve_like_fastavro() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("random");
    for name in common::gen_random(&dir, 1, 60, true) {
        let (avro, reader) = (
            dir.join(format!("{name}.avro")),
            dir.join(format!("{name}.avsc")),
        );
        let out = tmp.path().join("out").join(&name);
        let o = convert_as(&avro, &reader, &out);
        assert!(o.status.success(), "{name}: {}", text(&o));
        let reader = reader.to_str().unwrap();
        common::roundtrip_with(&out, &[&avro], &["--reader-schema", reader]);
    }
}

/// Recursive types evolved (tests/evolution.py recursive: a tree, a linked list whose record is
/// renamed, two records holding each other), converted with the reader schema: the values at
/// the recursive references are JSON text of the reader's record, compared value by value with
/// fastavro's resolution of the same bytes. `schema publish` takes the reader as the writer's
/// next version, and refuses one that adds a field without default inside the recursive
/// record, naming it; converting with that reader fails with the same reason.
#[test]
fn recursive_types_resolve_like_fastavro() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("recursive");
    let o = python(&["recursive", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    for name in ["tree", "list", "mutual"] {
        let avro = dir.join(format!("{name}.avro"));
        let reader = dir.join(format!("{name}.reader.avsc"));
        let out = tmp.path().join("out").join(name);
        let o = convert_as(&avro, &reader, &out);
        assert!(o.status.success(), "{name}: {}", text(&o));
        let reader = reader.to_str().unwrap();
        common::roundtrip_with(&out, &[&avro], &["--reader-schema", reader]);
    }

    // The registry: the tree's writer schema, then its reader schema as version 2.
    let registry = tmp.path().join("registry");
    let writer: serde_json::Value = {
        let o = Command::new("python3")
            .args(["-c", "import json,sys; sys.path.insert(0, sys.argv[1]); import evolution; print(json.dumps(evolution.RECURSIVE['tree'][0]))"])
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let v1 = tmp.path().join("tree.v1.avsc");
    std::fs::write(&v1, writer.to_string()).unwrap();
    let o = publish(&registry, &v1, "tree");
    assert!(o.status.success(), "{}", text(&o));
    let o = publish(&registry, &dir.join("tree.reader.avsc"), "tree");
    assert!(o.status.success(), "{}", text(&o));
    // A field without default added to the recursive record: refused, by name.
    let mut broken: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("tree.reader.avsc")).unwrap()).unwrap();
    broken["fields"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"name": "required", "type": "int"}));
    let v3 = tmp.path().join("tree.v3.avsc");
    std::fs::write(&v3, broken.to_string()).unwrap();
    let o = publish(&registry, &v3, "tree");
    assert!(!o.status.success(), "{}", text(&o));
    // (Found inside the recursive record, at its first reference, before the top level's.)
    let why = "required`: the reader's field has no default and the writer's schema lacks it";
    assert!(text(&o).contains(why), "{}", text(&o));
    let o = convert_as(
        &dir.join("tree.avro"),
        &v3,
        &tmp.path().join("out").join("broken"),
    );
    assert_eq!(o.status.code(), Some(65), "{}", text(&o));
    assert!(text(&o).contains(why), "{}", text(&o));
}

/// Random writer schemas and data, and derived reader schemas, resolved by Java's Avro
/// (tests/java_resolve.java, Avro 1.8.2): the reference for what fastavro disagrees on
/// (`tests/gen_random.py --evolve-java` lets a union hold an int and a float, or a string and
/// bytes, a decimal on bytes and one on a fixed). Java writes the records it resolved as a file
/// of the reader schema; each writer file, converted by parqour with `--reader-schema`, must
/// equal it value by value, union members included.
#[test]
fn random_evolutions_resolve_like_java() {
    let Some(classpath) = common::java_classpath() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("random");
    let names = common::gen_random_with(&dir, 3, 100, "--evolve-java");
    let mut args = Vec::new();
    for name in &names {
        for file in [".avro", ".avsc", ".java.avro"] {
            args.push(dir.join(format!("{name}{file}")));
        }
    }
    let o = common::run_java(&classpath, "java_resolve.java", &args);
    assert!(o.stdout.is_empty(), "Java could not resolve: {}", text(&o));
    for name in &names {
        let out = tmp.path().join("out").join(name);
        let o = convert_as(
            &dir.join(format!("{name}.avro")),
            &dir.join(format!("{name}.avsc")),
            &out,
        );
        assert!(o.status.success(), "{name}: {}", text(&o));
        if out.exists() {
            common::roundtrip(&out, &[&dir.join(format!("{name}.java.avro"))]);
        } else {
            assert!(String::from_utf8_lossy(&o.stdout).contains("read 0 records"));
        }
    }
}

/// The production path on random schemas: the writer schema published as version 1 and the
/// derived reader schema as version 2 (`schema publish` checks that 2 reads 1), the records sent
/// as DataWrapper envelopes naming the writer schema by fastavro's fingerprint, converted with
/// `--registry` into the data type's table. Every record must land there (none dead-lettered:
/// the fingerprints agree) with the values of fastavro's resolution to version 2. Every fourth
/// file is also converted as two copies of itself in one object (concatenated container files).
#[test]
fn random_evolutions_through_envelopes_and_the_registry() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("random");
    let mut converted = 0;
    let names = common::gen_random(&dir, 2, 30, true);
    for name in &names {
        let registry = tmp.path().join("registry").join(name);
        for version in [format!("{name}.writer.avsc"), format!("{name}.avsc")] {
            let o = publish(&registry, &dir.join(&version), "rnd");
            assert!(o.status.success(), "{version}: {}", text(&o));
        }
        let (table, dead) = (tmp.path().join("table").join(name), tmp.path().join("dl"));
        let o = convert_envelopes(
            &[&dir.join(format!("{name}.envelopes.avro"))],
            &registry,
            format!("{}/{{data_type}}", table.display()),
            &["--dead-letter", dead.join(name).to_str().unwrap()],
        );
        assert!(o.status.success(), "{name}: {}", text(&o));
        assert!(!dead.join(name).exists(), "{name}: dead letters");
        let out = table.join("rnd");
        if !out.exists() {
            // A file of no records writes nothing.
            assert!(String::from_utf8_lossy(&o.stdout).contains("read 0 records"));
            continue;
        }
        let reader = dir.join(format!("{name}.avsc"));
        let plain = dir.join(format!("{name}.avro"));
        common::roundtrip_with(
            &out,
            &[&plain],
            &["--reader-schema", reader.to_str().unwrap()],
        );
        converted += 1;
        if converted % 4 == 1 {
            // The envelope file twice in one object (concatenated container files): each
            // copy read with its own header, every record twice.
            let envelopes = std::fs::read(dir.join(format!("{name}.envelopes.avro"))).unwrap();
            let joined = tmp.path().join(format!("{name}.joined.avro"));
            std::fs::write(&joined, [&envelopes[..], &envelopes[..]].concat()).unwrap();
            let table = tmp.path().join("joined").join(name);
            let o = bin()
                .arg("convert")
                .arg(&joined)
                .arg("--registry")
                .arg(&registry)
                .arg("-o")
                .arg(format!("{}/{{data_type}}", table.display()))
                .output()
                .unwrap();
            assert!(o.status.success(), "{name} joined: {}", text(&o));
            common::roundtrip_with(
                &table.join("rnd"),
                &[&plain, &plain],
                &["--reader-schema", reader.to_str().unwrap()],
            );
        }
    }
    // A fifth of the files hold no records; the draw must still give the rest.
    assert!(
        converted * 2 >= names.len(),
        "{converted} of {} files with records",
        names.len()
    );
}

/// Writes the fixtures: `records` envelopes per file, one corrupt datum in `corrupt_every`.
fn fixtures(dir: &Path, records: u64, corrupt_every: u64) {
    let out = python(&[
        "gen",
        dir.to_str().unwrap(),
        "--records",
        &records.to_string(),
        "--corrupt-every",
        &corrupt_every.to_string(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
}

fn publish(registry: &Path, schema: &Path, data_type: &str) -> Output {
    bin()
        .args(["schema", "publish"])
        .arg(schema)
        .args(["--data-type", data_type, "--registry"])
        .arg(registry)
        .output()
        .unwrap()
}

/// `parqour convert INPUTS --registry REGISTRY --output OUTPUT EXTRA...`.
fn convert_envelopes(
    inputs: &[&Path],
    registry: &Path,
    output: impl AsRef<std::ffi::OsStr>,
    extra: &[&str],
) -> Output {
    bin()
        .arg("convert")
        .args(inputs)
        .arg("--registry")
        .arg(registry)
        .arg("--output")
        .arg(output)
        .args(extra)
        .output()
        .unwrap()
}

/// [`convert_envelopes`] setting aside into `dead` up to `fraction` of the records, with the
/// report as JSON.
fn convert_setting_aside(
    inputs: &[&Path],
    registry: &Path,
    output: impl AsRef<std::ffi::OsStr>,
    dead: &Path,
    fraction: &str,
) -> Output {
    let dead = dead.to_str().unwrap();
    let extra = [
        "--dead-letter",
        dead,
        "--max-dead-letter-fraction",
        fraction,
        "--json",
    ];
    convert_envelopes(inputs, registry, output, &extra)
}

fn check(dir: &Path, table: &str, dead_letter: &Path) -> String {
    let out = python(&[
        "check",
        dir.to_str().unwrap(),
        table,
        dead_letter.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn publish_all(dir: &Path, registry: &Path, with_view: bool) {
    for v in 1..=3 {
        let o = publish(
            registry,
            &dir.join(format!("schemas/click.v{v}.avsc")),
            "click",
        );
        assert!(o.status.success(), "{}", text(&o));
    }
    if with_view {
        let o = publish(registry, &dir.join("schemas/view.v1.avsc"), "view");
        assert!(o.status.success(), "{}", text(&o));
    }
}

#[test]
fn interleaved_versions_convert_to_one_schema_per_data_type() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fixtures(dir, 3000, 1000);
    let registry = dir.join("registry");
    publish_all(dir, &registry, true);

    // Publishing the same schema again writes nothing; an incompatible one is refused by name.
    let again = publish(&registry, &dir.join("schemas/click.v3.avsc"), "click");
    assert!(String::from_utf8_lossy(&again.stdout).contains("already published as version 3"));
    let bad = dir.join("bad.avsc");
    std::fs::write(
        &bad,
        r#"{"type":"record","name":"Click","namespace":"com.acme.events","fields":[
            {"name":"id","type":"long"},{"name":"country","type":"int"}]}"#,
    )
    .unwrap();
    let refused = publish(&registry, &bad, "click");
    assert_eq!(refused.status.code(), Some(65), "{}", text(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("field `country`"), "{stderr}");

    // The fingerprints parqour prints are fastavro's (Java's) too.
    let fp = bin()
        .args(["schema", "fingerprint"])
        .arg(dir.join("schemas/click.v2.avsc"))
        .output()
        .unwrap();
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&fp.stdout).trim(),
        expected["fingerprints"]["click.v2"].to_string()
    );

    let table = format!("{}/out/{{data_type}}", dir.display());
    let dead = dir.join("dl");
    let out = convert_setting_aside(
        &[&dir.join("avro"), &dir.join("raw")],
        &registry,
        &table,
        &dead,
        "0.01",
    );
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["records"], 6000);
    assert_eq!(report["dead_letter"]["records"], 8);
    let stdout = check(dir, &table, &dead);
    assert!(
        stdout.contains("5992 rows, 8 dead-lettered, 0 mismatches"),
        "{stdout}"
    );
    // One file per data type: interleaved versions do not cut files.
    assert_eq!(report["outputs"].as_array().unwrap().len(), 2);

    // Without a dead-letter place, the first bad record stops the run and names it.
    let strict = bin()
        .arg("convert")
        .arg(dir.join("avro"))
        .args([
            "-o",
            &format!("{}/strict/{{data_type}}", dir.display()),
            "--registry",
        ])
        .arg(&registry)
        .output()
        .unwrap();
    assert_eq!(strict.status.code(), Some(65), "{}", text(&strict));
    let stderr = String::from_utf8_lossy(&strict.stderr);
    assert!(
        stderr.contains("envelopes.avro: block 0 at byte offset")
            && stderr.contains("record 5")
            && stderr.contains("fingerprint 1234567"),
        "{stderr}"
    );

    // Envelopes without a registry: a configuration error, not garbage.
    let no_registry = bin()
        .arg("convert")
        .arg(dir.join("avro"))
        .args(["-o", &format!("{}/noreg", dir.display())])
        .output()
        .unwrap();
    assert_eq!(
        no_registry.status.code(),
        Some(78),
        "{}",
        text(&no_registry)
    );
}

/// `{data_type}` tables found only as records arrive are checked as they are first written:
/// a second convert is refused (the tables were not named, so not checked before reading);
/// `--overwrite` that fails leaves every earlier file as it was; one that succeeds writes new
/// names and then deletes the earlier files.
#[test]
fn data_type_tables_are_refused_or_replaced_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fixtures(dir, 2000, 500);
    let registry = dir.join("registry");
    publish_all(dir, &registry, true);
    let table = format!("{}/out/{{data_type}}", dir.display());
    let inputs = [&dir.join("avro") as &Path, &dir.join("raw")];
    // Every file in the tables, with its size.
    let files = || {
        let mut found = Vec::new();
        for t in ["click", "view"] {
            for e in std::fs::read_dir(dir.join("out").join(t)).unwrap() {
                let e = e.unwrap();
                found.push((
                    format!("{t}/{}", e.file_name().to_string_lossy()),
                    e.metadata().unwrap().len(),
                ));
            }
        }
        found.sort();
        found
    };
    let first = convert_setting_aside(&inputs, &registry, &table, &dir.join("dl1"), "0.01");
    assert!(first.status.success(), "{}", text(&first));
    let before = files();
    assert_eq!(before.len(), 2, "{before:?}");
    let checked = check(dir, &table, &dir.join("dl1"));
    assert!(checked.contains("0 mismatches"), "{checked}");

    let again = convert_setting_aside(&inputs, &registry, &table, &dir.join("dl2"), "0.01");
    assert_eq!(again.status.code(), Some(78), "{}", text(&again));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already holds Parquet files"),
        "{}",
        text(&again)
    );
    assert_eq!(files(), before);

    // Setting aside more than allowed fails the run once every file is written.
    let failed = convert_envelopes(
        &inputs,
        &registry,
        &table,
        &[
            "--dead-letter",
            dir.join("dl3").to_str().unwrap(),
            "--max-dead-letter-fraction",
            "0",
            "--overwrite",
        ],
    );
    assert_eq!(failed.status.code(), Some(65), "{}", text(&failed));
    // Into a new `{data_type}` output, the failed run leaves no folder it made.
    let new = convert_envelopes(
        &inputs,
        &registry,
        format!("{}/new/out/{{data_type}}", dir.display()),
        &[
            "--dead-letter",
            dir.join("dl5").to_str().unwrap(),
            "--max-dead-letter-fraction",
            "0",
        ],
    );
    assert_eq!(new.status.code(), Some(65), "{}", text(&new));
    assert!(!dir.join("new").exists(), "a failed run left its folders");
    assert!(
        text(&failed).contains("could not be converted"),
        "{}",
        text(&failed)
    );
    assert_eq!(files(), before, "a failed --overwrite changed the tables");

    let o = convert_envelopes(
        &inputs,
        &registry,
        &table,
        &[
            "--dead-letter",
            dir.join("dl4").to_str().unwrap(),
            "--max-dead-letter-fraction",
            "0.01",
            "--json",
            "--overwrite",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let deleted: Vec<String> = report["replaced"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap().rsplit('/').next().unwrap().to_string())
        .collect();
    let after = files();
    assert_eq!(after.len(), 2, "{after:?}");
    for (name, _) in &before {
        assert!(!after.iter().any(|(n, _)| n == name), "{name} was kept");
        let file = name.rsplit('/').next().unwrap();
        assert!(deleted.iter().any(|d| d == file), "{name} not reported");
    }
    assert_eq!(check(dir, &table, &dir.join("dl4")), checked);
}

fn manifest(dir: &Path, name: &str, inputs: &[PathBuf], extra: &str) -> PathBuf {
    let inputs: Vec<String> = inputs
        .iter()
        .map(|p| serde_json::json!(p.display().to_string()).to_string())
        .collect();
    let text = format!(
        r#"{{"version": 1, "table": {}, "partition": {{"dt": "2026-11-26", "hour": "{name}"}},
            "inputs": [{}], "registry": {}, "data_types": ["click", "view"],
            "dead_letter": {}{extra}}}"#,
        serde_json::json!(format!("{}/lake/{{data_type}}", dir.display())),
        inputs.join(", "),
        serde_json::json!(dir.join("registry").display().to_string()),
        serde_json::json!(dir.join("dead").display().to_string()),
    );
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, text).unwrap();
    path
}

fn partition(dir: &Path, data_type: &str, hour: &str) -> PathBuf {
    dir.join(format!("lake/{data_type}/dt=2026-11-26/hour={hour}"))
}

fn marker(dir: &Path, data_type: &str, hour: &str) -> Option<serde_json::Value> {
    let text = std::fs::read(partition(dir, data_type, hour).join("_SUCCESS")).ok()?;
    Some(serde_json::from_slice(&text).unwrap())
}

fn parquet_files(dir: &Path) -> usize {
    walk(dir)
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .count()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn partition_job_dead_letters_within_budget_and_fails_beyond_it() {
    // 1 record in 10,000 corrupt (plus one unknown fingerprint per file): committed, with
    // exactly those records dead-lettered.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fixtures(dir, 10_000, 10_000);
    publish_all(dir, &dir.join("registry"), true);
    let inputs = [
        dir.join("avro/envelopes.avro"),
        dir.join("raw/firehose-0001.avro"),
    ];
    let m = manifest(dir, "03", &inputs, "");
    let out = run_manifest(&m);
    assert!(out.status.success(), "{}", text(&out));
    let click = marker(dir, "click", "03").expect("click committed");
    let view = marker(dir, "view", "03").expect("view committed");
    assert_eq!(click["records_in"], 20_000);
    assert_eq!(click["records_dead_lettered"], 4);
    assert_eq!(
        click["records_out"].as_u64().unwrap() + view["records_out"].as_u64().unwrap() + 4,
        20_000,
        "records in = records written + records dead-lettered"
    );
    assert_eq!(click["data_type"], "click");
    let fps = click["inputs"][0]["fingerprints"].as_object().unwrap();
    assert_eq!(
        fps.len(),
        4,
        "three click versions and one view schema: {fps:?}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("\"RecordsDeadLettered\":4"), "{stdout}");
    let table = format!("{}/lake/{{data_type}}", dir.display());
    let checked = check(dir, &table, &dir.join("dead"));
    assert!(
        checked.contains(" 4 dead-lettered, 0 mismatches"),
        "{checked}"
    );
    // A rerun: already committed, nothing written.
    let again = run_manifest(&m);
    assert!(String::from_utf8_lossy(&again.stdout).contains("already committed"));

    // 1 in 10 corrupt: the job fails (bad input), commits nothing and leaves no Parquet.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fixtures(dir, 2_000, 10);
    publish_all(dir, &dir.join("registry"), true);
    let inputs = [
        dir.join("avro/envelopes.avro"),
        dir.join("raw/firehose-0001.avro"),
    ];
    let out = run_manifest(&manifest(dir, "04", &inputs, ""));
    assert_eq!(out.status.code(), Some(65), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("more than the allowed 0.1000%"), "{stderr}");
    assert!(marker(dir, "click", "04").is_none());
    assert!(marker(dir, "view", "04").is_none());
    assert_eq!(parquet_files(&dir.join("lake")), 0);
}

#[test]
fn records_of_an_unpublished_schema_are_replayed_once_it_is_published() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fixtures(dir, 1_000, 0);
    // `view` is not published yet: its records go to the dead-letter place.
    publish_all(dir, &dir.join("registry"), false);
    let inputs = [dir.join("avro/envelopes.avro")];
    let out = run_manifest(&manifest(
        dir,
        "05",
        &inputs,
        r#", "max_dead_letter_fraction": 0.5"#,
    ));
    assert!(out.status.success(), "{}", text(&out));
    let click = marker(dir, "click", "05").unwrap();
    // 100 views and the one unknown fingerprint.
    assert_eq!(click["records_dead_lettered"], 101);
    assert_eq!(marker(dir, "view", "05").unwrap()["records_out"], 0);

    let o = publish(
        &dir.join("registry"),
        &dir.join("schemas/view.v1.avsc"),
        "view",
    );
    assert!(o.status.success(), "{}", text(&o));
    let replayed = dir.join("replay");
    let out = bin()
        .arg("replay")
        .arg(dir.join("dead"))
        .arg("-o")
        .arg(&replayed)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("(101 entries, 101 records)"),
        "{}",
        text(&out)
    );
    let objects: Vec<PathBuf> = walk(&replayed);
    let out = run_manifest(&manifest(
        dir,
        "05-replay",
        &objects,
        r#", "max_dead_letter_fraction": 0.5"#,
    ));
    assert!(out.status.success(), "{}", text(&out));
    let view = marker(dir, "view", "05-replay").unwrap();
    assert_eq!(view["records_out"], 100);
    assert_eq!(
        view["records_dead_lettered"], 1,
        "only the unknown fingerprint is left"
    );
}

/// Late data makes a new generation of a partition, which sets aside again the records the old
/// one set aside: the old generation's dead-letter file goes with its Parquet files once the new
/// one is committed (it stayed, and a replay of the partition's dead letters gave its records
/// twice).
#[test]
fn a_new_generation_replaces_the_old_ones_dead_letters() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fixtures(dir, 1_000, 0);
    // `view` is not published: its records go to the dead-letter place.
    publish_all(dir, &dir.join("registry"), false);
    let fraction = r#", "max_dead_letter_fraction": 0.5"#;
    let first = [dir.join("avro/envelopes.avro")];
    let out = run_manifest(&manifest(dir, "07", &first, fraction));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        marker(dir, "click", "07").unwrap()["records_dead_lettered"],
        101
    );
    let late = [first[0].clone(), dir.join("raw/firehose-0001.avro")];
    let out = run_manifest(&manifest(dir, "07", &late, fraction));
    assert!(out.status.success(), "{}", text(&out));
    let click = marker(dir, "click", "07").unwrap();
    assert_eq!(click["records_dead_lettered"], 202);
    let files = walk(&dir.join("dead"));
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(
        files[0].display().to_string(),
        click["dead_letter"].as_str().unwrap()
    );
    let out = bin()
        .arg("replay")
        .arg(dir.join("dead"))
        .arg("-o")
        .arg(dir.join("replay"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    // One file per source object: each record once.
    let replayed: u64 = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.split(" entries, ")
                .nth(1)?
                .strip_suffix(" records)")?
                .parse::<u64>()
                .ok()
        })
        .sum();
    assert_eq!(replayed, 202, "{}", text(&out));
}

/// An envelope whose `dataType` is no name (empty, a path, a space) in a container file fails
/// that record only: the container's framing does not depend on it (a raw concatenation's
/// does). It went to the dead-letter place as its whole block, 20 good records with it.
#[test]
fn an_envelope_whose_data_type_is_no_name_fails_its_record_only() {
    use parqour::avro::codec::Codec;
    use parqour::avro::writer::{ContainerWriter, Datum};
    let tmp = tempfile::tempdir().unwrap();
    let schema = r#"{"type":"record","name":"A","fields":[{"name":"x","type":"long"}]}"#;
    let avsc = tmp.path().join("a.avsc");
    std::fs::write(&avsc, schema).unwrap();
    let registry = tmp.path().join("registry");
    let o = publish(&registry, &avsc, "a");
    assert!(o.status.success(), "{}", text(&o));
    let fp = parqour::avro::fingerprint::fingerprint(schema).unwrap();
    // The schema and its version record, nothing else (publish once made empty folders
    // `<registry>/<the registry's absolute path>/a/_versions` too).
    let mut published: Vec<String> = walk(&registry)
        .iter()
        .map(|p| p.strip_prefix(&registry).unwrap().display().to_string())
        .collect();
    published.sort();
    assert_eq!(
        published,
        [format!("a/{fp}.avsc"), "a/_versions/00000001.json".into()]
    );
    let folders: Vec<_> = std::fs::read_dir(&registry).unwrap().collect();
    assert_eq!(folders.len(), 1, "{folders:?}");
    let envelope = r#"{"type":"record","name":"DataWrapper","fields":[
        {"name":"dataType","type":"string"},{"name":"schemaFingerprint","type":"long"},
        {"name":"data","type":"bytes"}]}"#;
    let mut w = ContainerWriter::new(
        Vec::new(),
        envelope,
        Codec::Deflate,
        [8; 16],
        &Default::default(),
    )
    .unwrap();
    let (mut d, mut datum) = (Datum::new(), Datum::new());
    for i in 0..22i64 {
        let data_type = match i {
            10 => "",
            15 => "../a",
            _ => "a",
        };
        datum.clear();
        datum.long(i);
        d.clear();
        d.string(data_type).long(fp).bytes(&datum.buf);
        w.append(&d.buf).unwrap();
    }
    let input = tmp.path().join("envelopes.avro");
    std::fs::write(&input, w.finish().unwrap()).unwrap();
    let out = tmp.path().join("out/{data_type}");
    let dead = tmp.path().join("dead");
    let o = convert_setting_aside(&[&input], &registry, &out, &dead, "0.5");
    assert!(o.status.success(), "{}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["records_out"], 20, "{}", text(&o));
    assert_eq!(report["dead_letter"]["records"], 2, "{}", text(&o));
    assert_eq!(
        report["dead_letter"]["by_kind"]["record"],
        2,
        "{}",
        text(&o)
    );
    // Without a dead-letter place, the run stops at the record and names it.
    let o = convert_envelopes(&[&input], &registry, &out, &[]);
    assert_eq!(o.status.code(), Some(65), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("record 10") && stderr.contains(r#"dataType "" is not a name"#),
        "{stderr}"
    );
}

/// A raw envelope whose `data` length was damaged to take in the envelopes after it: its record
/// leaves bytes over that frame as envelopes, and the entry counts them (it counted 1, and the
/// swallowed envelopes were lost from every count).
#[test]
fn an_envelope_that_swallowed_the_next_ones_counts_them() {
    use parqour::avro::envelope::encode_raw;
    use parqour::avro::writer::Datum;
    let tmp = tempfile::tempdir().unwrap();
    let schema = r#"{"type":"record","name":"A","fields":[{"name":"x","type":"long"},
        {"name":"s","type":"string"}]}"#;
    let avsc = tmp.path().join("a.avsc");
    std::fs::write(&avsc, schema).unwrap();
    let registry = tmp.path().join("registry");
    let o = publish(&registry, &avsc, "a");
    assert!(o.status.success(), "{}", text(&o));
    let fp = parqour::avro::fingerprint::fingerprint(schema).unwrap();
    let datum = |i: i64| {
        let mut d = Datum::new();
        d.long(i).string(&"z".repeat(i as usize % 9));
        d.buf
    };
    // 30 envelopes; the data of envelope 10 is written as if it held envelopes 11 and 12 (or
    // 11, 12 and the first half of 13) too: its length covers them.
    for (swallow, dead) in [(2usize, 3u64), (3, 4)] {
        let mut stream = Vec::new();
        let mut i = 0i64;
        while i < 30 {
            if i == 10 {
                let mut data = datum(10);
                let mut taken = Vec::new();
                for j in 11..11 + swallow as i64 {
                    encode_raw(b"a", fp, &datum(j), &mut taken);
                }
                if swallow == 3 {
                    // Cut inside envelope 13: its rest follows the damaged envelope.
                    let half = taken.len() - 3;
                    data.extend_from_slice(&taken[..half]);
                    encode_raw(b"a", fp, &data, &mut stream);
                    stream.extend_from_slice(&taken[half..]);
                } else {
                    data.extend_from_slice(&taken);
                    encode_raw(b"a", fp, &data, &mut stream);
                }
                i += 1 + swallow as i64;
                continue;
            }
            encode_raw(b"a", fp, &datum(i), &mut stream);
            i += 1;
        }
        let input = tmp.path().join(format!("raw-{swallow}.avro"));
        std::fs::write(&input, &stream).unwrap();
        let dead_dir = tmp.path().join(format!("dead-{swallow}"));
        let o = convert_setting_aside(
            &[&input],
            &registry,
            tmp.path().join(format!("out-{swallow}")),
            &dead_dir,
            "1",
        );
        assert!(o.status.success(), "{}", text(&o));
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let dead_records = report["dead_letter"]["records"].as_u64().unwrap();
        let out = report["records_out"].as_u64().unwrap();
        // The envelopes taken as one count as as many; where the stream breaks inside
        // envelope 13, its rest is set aside with the rest of the object as a tail.
        assert!(dead_records >= dead, "{}", text(&o));
        if swallow == 2 {
            assert_eq!((out, dead_records), (27, 3), "{}", text(&o));
            assert!(
                text(&o).contains("frame as 2 more envelope(s)"),
                "{}",
                text(&o)
            );
        } else {
            // Envelope 13, cut, counts with the damaged one; the tail (its rest and the 16
            // envelopes after it) counts from its bytes, an estimate.
            assert_eq!(out, 10, "{}", text(&o));
            assert!(
                text(&o).contains("frame as 3 more envelope(s)"),
                "{}",
                text(&o)
            );
            assert!(dead_records > 4, "{}", text(&o));
        }
    }
}
