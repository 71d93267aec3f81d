//! End-to-end tests of the `parqour` binary on real files.
//!
//! Values are checked by `tests/roundtrip.py`, which reads our Parquet with pyarrow and the Avro
//! with fastavro (both independent of this crate) and compares every value. It needs
//! `pip install -r tests/requirements.txt`; `.ci/run` does that.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{bin, have_program, java_classpath, needed, roundtrip, text};
use parqour::avro::codec::Codec;
use parqour::avro::writer::{ContainerWriter, Datum};

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/avro")
}

fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn convert(inputs: &[&Path], output: &Path, extra: &[&str]) -> Output {
    let mut c = bin();
    c.arg("convert");
    c.args(inputs);
    c.arg("--output").arg(output);
    c.args(extra);
    c.output().unwrap()
}

/// The files in `dir`, sorted by path.
fn sorted_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// Runs a fixture script of this crate (`python3 SCRIPT DIR`) and returns the files it wrote.
fn python_fixtures(script: &str, dir: &Path) -> Vec<PathBuf> {
    let o = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join(script))
        .arg(dir)
        .output()
        .expect("python3 is needed for the fixtures");
    assert!(o.status.success(), "{script}: {}", text(&o));
    sorted_files(dir)
}

/// Converts each file on its own into `out/<stem>` and checks every value.
fn convert_each_and_check(files: &[PathBuf], out: &Path) {
    for f in files {
        let out = out.join(f.file_stem().unwrap());
        let o = convert(&[f], &out, &[]);
        assert!(o.status.success(), "{}: {}", f.display(), text(&o));
        roundtrip(&out, &[f]);
    }
}

/// Converts `files` in one run into `out` and checks every value, in input order.
fn convert_together_and_check(files: &[PathBuf], out: &Path) {
    let inputs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let o = convert(&inputs, out, &[]);
    assert!(o.status.success(), "{}", text(&o));
    roundtrip(out, &inputs);
}

/// The file names of `files`.
fn file_names(files: &[PathBuf]) -> Vec<String> {
    files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// Writes `n` demo events with `codec` to `path`.
fn demo_file(path: &Path, codec: Codec, n: u64) {
    let f = std::fs::File::create(path).unwrap();
    parqour::demo::write_events(std::io::BufWriter::new(f), codec, 0, n, 11).unwrap();
}

/// A partition of many small objects (as Firehose writes for a quiet stream): their batches
/// are joined before encoding, so the file's first batch is a real sample. With a batch per
/// object of 150 events, the uuid column `event_id` (all distinct) kept a dictionary, judged on
/// 150 values; joined, it is written without one, as from large objects. Every value comes back
/// in input order.
#[test]
fn small_objects_are_encoded_like_one_large_one() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("in");
    std::fs::create_dir(&dir).unwrap();
    let mut files = Vec::new();
    for i in 0..40u64 {
        let path = dir.join(format!("small-{i:03}.avro"));
        let f = std::fs::File::create(&path).unwrap();
        parqour::demo::write_events(std::io::BufWriter::new(f), Codec::Deflate, i * 150, 150, 7)
            .unwrap();
        files.push(path);
    }
    let out = tmp.path().join("out");
    let o = convert(&[&dir], &out, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let inputs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    roundtrip(&out, &inputs);
    let parquet = parquet_files(&out);
    assert_eq!(parquet.len(), 1, "{parquet:?}");
    let reader = SerializedFileReader::new(std::fs::File::open(&parquet[0]).unwrap()).unwrap();
    let meta = reader.metadata();
    assert_eq!(meta.file_metadata().num_rows(), 6000);
    for rg in meta.row_groups() {
        let column = rg
            .columns()
            .iter()
            .find(|c| c.column_path().string() == "event_id")
            .unwrap();
        assert_eq!(
            column.dictionary_page_offset(),
            None,
            "event_id: a dictionary for 6,000 distinct uuids"
        );
    }
}

#[test]
fn every_corpus_file_converts_with_identical_values() {
    let tmp = tempfile::tempdir().unwrap();
    let files = sorted_files(&testdata());
    assert_eq!(files.len(), 31, "the shared corpus has 31 files");
    for f in &files {
        let name = f.file_stem().unwrap().to_string_lossy().to_string();
        let out = tmp.path().join(&name);
        let o = convert(&[f], &out, &[]);
        assert!(o.status.success(), "{name}: {}", text(&o));
        roundtrip(&out, &[f]);
    }
}

/// Decimals wider than Athena's DECIMAL(38) (the corpus's precision 76, on a fixed and on
/// bytes) are their text by default; `--wide-decimals error` refuses them with a clear error
/// naming the field, and writes nothing.
#[test]
fn wide_decimals_are_text_or_a_clear_error() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let tmp = tempfile::tempdir().unwrap();
    for name in ["fixed256_decimal", "int256_decimal"] {
        let f = testdata().join(format!("{name}.avro"));
        let out = tmp.path().join(name);
        let o = convert(&[&f], &out, &[]);
        assert!(o.status.success(), "{name}: {}", text(&o));
        let parquet = parquet_files(&out);
        let reader = SerializedFileReader::new(std::fs::File::open(&parquet[0]).unwrap()).unwrap();
        let column = reader.metadata().file_metadata().schema_descr().column(0);
        assert_eq!(
            column.physical_type(),
            parquet::basic::Type::BYTE_ARRAY,
            "{name}"
        );
        assert_eq!(
            column.logical_type_ref(),
            Some(&parquet::basic::LogicalType::String),
            "{name}"
        );
        let out = tmp.path().join(format!("{name}-refused"));
        let o = convert(&[&f], &out, &["--wide-decimals", "error"]);
        assert_eq!(o.status.code(), Some(65), "{name}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("field `value`"), "{err}");
        assert!(err.contains("precision 76 exceeds 38"), "{err}");
        assert!(parquet_files(&out).is_empty());
    }
}

/// Edge cases written by fastavro (an independent writer): see tests/data/README.md.
#[test]
fn independent_writer_edge_cases_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let files = python_fixtures("tests/gen_fixtures.py", &tmp.path().join("fixtures"));
    assert!(files.len() >= 40, "{files:?}");
    convert_each_and_check(&files, &tmp.path().join("out"));
}

/// Random schemas and data (tests/gen_random.py, its own Avro writer): nested records, arrays,
/// maps and unions, named types reused across namespaces, every logical type (valid or not),
/// arrays and maps in several blocks with and without byte sizes, seven codecs. Each file is
/// converted with one of several option sets (small row groups and files, binary uuids,
/// delta-length strings, zstd) and every value compared by tests/roundtrip.py.
/// `PARQOUR_RANDOM_SEED` and `PARQOUR_RANDOM_COUNT` draw other files (the default is fixed, so
/// that a failure repeats).
#[test]
fn random_schemas_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("random");
    let names = common::gen_random(&dir, 1, 80, false);
    let files = sorted_files(&dir);
    assert_eq!(files.len(), names.len());
    let option_sets: [&[&str]; 4] = [
        &[],
        &["--row-group-size", "4KiB", "--target-file-size", "16KiB"],
        &["--uuid", "binary", "--compression", "zstd"],
        &[
            "--byte-array-encoding",
            "delta-length",
            "--row-group-size",
            "8KiB",
        ],
    ];
    for (i, f) in files.iter().enumerate() {
        let options = option_sets[i % option_sets.len()];
        let out = tmp.path().join("out").join(f.file_stem().unwrap());
        let o = convert(&[f], &out, options);
        assert!(
            o.status.success(),
            "{} {options:?}: {}",
            f.display(),
            text(&o)
        );
        let uuid: &[&str] = if options.contains(&"binary") {
            &["--uuid", "binary"]
        } else {
            &[]
        };
        common::roundtrip_with(&out, &[f], uuid);
    }
}

/// A schema of 700 columns under a limit of 128 open files: the pages of a row group wait in a
/// few shared spill files, not one per column chunk.
#[test]
fn wide_schemas_convert_with_few_open_files() {
    let tmp = tempfile::tempdir().unwrap();
    let wide = python_fixtures("tests/gen_fixtures.py", &tmp.path().join("fixtures"))
        .into_iter()
        .find(|f| f.ends_with("wide_columns.avro"))
        .unwrap();
    let out = tmp.path().join("out");
    let o = Command::new("bash")
        .args(["-c", r#"ulimit -n 128 && exec "$0" "$@""#])
        .arg(env!("CARGO_BIN_EXE_parqour"))
        .args([
            "convert",
            "--threads",
            "2",
            "--row-group-size",
            "64KiB",
            "--output",
        ])
        .arg(&out)
        .arg(&wide)
        .env("PARQOUR_LOG", "warn")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    roundtrip(&out, &[&wide]);
}

/// Blocks that inflate 1,000-fold (megabytes of zeros, deflated): a group of blocks is cut by
/// stored bytes, so one group of 1 MB held 1 GB once decoded (3,000 such records: 2.4 GB peak
/// RSS); now a group hands its blocks back after 64 MiB of values. Peak RSS is read by GNU time
/// (`/usr/bin/time`).
#[test]
fn blocks_that_inflate_a_thousandfold_keep_memory_bounded() {
    if !have_program("/usr/bin/time", "time") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let schema = r#"{"type":"record","name":"Z","fields":[
        {"name":"id","type":"long"},{"name":"b","type":"bytes"}]}"#;
    let mut w = ContainerWriter::new(
        Vec::new(),
        schema,
        Codec::Deflate,
        [7; 16],
        &BTreeMap::new(),
    )
    .unwrap()
    .with_block_bytes(4 << 20);
    let zeros = vec![0u8; 1 << 20];
    let mut d = Datum::new();
    for i in 0..1000i64 {
        d.clear();
        d.long(i).bytes(&zeros);
        w.append(&d.buf).unwrap();
    }
    let input = tmp.path().join("zeros.avro");
    std::fs::write(&input, w.finish().unwrap()).unwrap();
    assert!(std::fs::metadata(&input).unwrap().len() < 2 << 20);
    let out = tmp.path().join("out");
    let (o, rss) = common::peak_rss(&[
        "convert".as_ref(),
        "--threads".as_ref(),
        "2".as_ref(),
        "--compression".as_ref(),
        "none".as_ref(),
        "--output".as_ref(),
        out.as_os_str(),
        input.as_os_str(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(rss < 512 << 10, "peak RSS {rss} KiB for 1 GB of values");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("read 1000 records"), "{stdout}");
    // Every id, in order (the rest of a group is decoded before the next group).
    let mut ids = Vec::new();
    for f in parquet_files(&out) {
        use arrow_array::cast::AsArray;
        use parquet::arrow::ProjectionMask;
        use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(f).unwrap()).unwrap();
        let id_only = ProjectionMask::roots(builder.parquet_schema(), [0]);
        for batch in builder.with_projection(id_only).build().unwrap() {
            let batch = batch.unwrap();
            let column = batch
                .column(0)
                .as_primitive::<arrow_array::types::Int64Type>();
            ids.extend(column.values().iter().copied());
        }
    }
    assert_eq!(ids, (0..1000).collect::<Vec<i64>>());
}

/// A block of many megabytes (a writer's huge sync interval, or goavro's one append) is
/// decoded and written a part at a time: every record, in order, round-trips. When its last
/// part fails, that part's records alone are set aside, uncompressed, with the record number
/// where they start; the parts before it are converted.
#[test]
fn a_block_of_many_megabytes_converts_in_parts() {
    let tmp = tempfile::tempdir().unwrap();
    let schema = r#"{"type":"record","name":"Big","fields":[
        {"name":"id","type":"long"},{"name":"s","type":"string"}]}"#;
    // ~26 MB in one block: three parts.
    let n = 60_000u64;
    let (mut raw, mut starts) = (Vec::new(), Vec::new());
    let mut d = Datum::new();
    for i in 0..n {
        starts.push(raw.len());
        d.clear();
        let s: String = (0..400 + i % 97)
            .map(|j| char::from(b'a' + ((i * 31 + j * 7) % 26) as u8))
            .collect();
        d.long(i as i64).string(&s);
        raw.extend_from_slice(&d.buf);
    }
    assert!(raw.len() > 24 << 20);
    let file = |data: &[u8]| {
        let mut c = libdeflater::Compressor::new(libdeflater::CompressionLvl::new(1).unwrap());
        let mut deflated = vec![0; c.deflate_compress_bound(data.len())];
        let len = c.deflate_compress(data, &mut deflated).unwrap();
        let mut w = ContainerWriter::new(
            Vec::new(),
            schema,
            Codec::Deflate,
            [9; 16],
            &BTreeMap::new(),
        )
        .unwrap();
        w.append_block(n, &deflated[..len]).unwrap();
        w.finish().unwrap()
    };
    let good = tmp.path().join("good/big.avro");
    std::fs::create_dir_all(good.parent().unwrap()).unwrap();
    std::fs::write(&good, file(&raw)).unwrap();
    let out = tmp.path().join("out");
    let o = convert(&[&good], &out, &["--threads", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("read {n} records")),
        "{}",
        text(&o)
    );
    roundtrip(&out, &[&good]);

    // A string length of -1 near the end (after the id's three bytes): the last part fails,
    // as the whole block did before parts.
    let bad = tmp.path().join("bad/big.avro");
    std::fs::create_dir_all(bad.parent().unwrap()).unwrap();
    let broken_at = n as usize - 10;
    let mut broken = raw.clone();
    broken[starts[broken_at] + 3] = 0x01;
    std::fs::write(&bad, file(&broken)).unwrap();
    // Without a dead-letter place the run fails, though a file was started: no output, not
    // even an empty folder.
    let failed = tmp.path().join("failed/table");
    let o = convert(&[&bad], &failed, &[]);
    assert_eq!(o.status.code(), Some(65), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("record {broken_at}")),
        "{}",
        text(&o)
    );
    assert!(!tmp.path().join("failed").exists());
    let dead = tmp.path().join("dead");
    let report = convert_setting_aside_up_to(&bad, &tmp.path().join("out2"), &dead, "1");
    let entry = first_dead_letter(&dead);
    let first = entry.record.expect("the record where the part starts");
    assert!(first > 0 && first < n, "{first}");
    assert_eq!(entry.records, n - first);
    assert_eq!(entry.codec, Codec::Null);
    assert_eq!(&entry.data[..], &broken[starts[first as usize]..]);
    assert!(
        entry.error.contains(&format!("record {broken_at}")),
        "{}",
        entry.error
    );
    assert_eq!(report["records"], n);
    assert_eq!(report["records_out"], first);
    assert_eq!(report["dead_letter"]["records"], n - first);

    // The same records in envelopes (as Firehose writes them): one block of ~27 MB, in parts.
    let registry = tmp.path().join("registry");
    let avsc = tmp.path().join("big.avsc");
    std::fs::write(&avsc, schema).unwrap();
    let o = bin()
        .args(["schema", "publish"])
        .arg(&avsc)
        .args(["--data-type", "big", "--registry"])
        .arg(&registry)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let fingerprint = parqour::avro::fingerprint::fingerprint(schema).unwrap();
    let wrapper = r#"{"type":"record","name":"DataWrapper","fields":[
        {"name":"dataType","type":"string"},{"name":"schemaFingerprint","type":"long"},
        {"name":"data","type":"bytes"}]}"#;
    let mut w = ContainerWriter::new(
        Vec::new(),
        wrapper,
        Codec::Deflate,
        [4; 16],
        &BTreeMap::new(),
    )
    .unwrap()
    .with_block_bytes(usize::MAX);
    for (i, &start) in starts.iter().enumerate() {
        let end = starts.get(i + 1).copied().unwrap_or(raw.len());
        d.clear();
        d.string("big").long(fingerprint).bytes(&raw[start..end]);
        w.append(&d.buf).unwrap();
    }
    let wrapped = tmp.path().join("wrapped/big.avro");
    std::fs::create_dir_all(wrapped.parent().unwrap()).unwrap();
    std::fs::write(&wrapped, w.finish().unwrap()).unwrap();
    let (_, blocks) =
        parqour::avro::container::split_all(&std::fs::read(&wrapped).unwrap(), Default::default())
            .unwrap();
    assert_eq!(blocks.len(), 1);
    let out3 = tmp.path().join("out3");
    let o = bin()
        .arg("convert")
        .arg(&wrapped)
        .arg("--registry")
        .arg(&registry)
        .arg("--output")
        .arg(&out3)
        .arg("--json")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["records_out"], n);
    // The same values as from the plain file.
    let ids_and_lengths = |dir: &Path| {
        let mut rows = Vec::new();
        for f in parquet_files(dir) {
            use arrow_array::cast::AsArray;
            use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
            let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(f).unwrap())
                .unwrap()
                .build()
                .unwrap();
            for batch in reader {
                let batch = batch.unwrap();
                let ids = batch
                    .column(0)
                    .as_primitive::<arrow_array::types::Int64Type>();
                let s = batch.column(1).as_string::<i32>();
                rows.extend((0..batch.num_rows()).map(|i| (ids.value(i), s.value(i).to_string())));
            }
        }
        rows
    };
    let plain = ids_and_lengths(&out);
    assert_eq!(plain.len(), n as usize);
    assert!(plain.iter().enumerate().all(|(i, (id, _))| *id == i as i64));
    assert_eq!(ids_and_lengths(&out3), plain);
}

/// Files written by the Apache Avro project's Python implementation: tests/gen_official.py.
#[test]
fn apache_avro_python_writer_files_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let files = python_fixtures("tests/gen_official.py", &tmp.path().join("official"));
    assert_eq!(files.len(), 4, "{files:?}");
    convert_each_and_check(&files, &tmp.path().join("out"));
    // All four in one run: one schema, one output, in input order.
    convert_together_and_check(&files, &tmp.path().join("out").join("all"));
}

/// Runs tests/gen_java.java (Avro Java) into `dir` and returns the files it wrote.
fn java_fixtures(classpath: &str, dir: &Path) -> Vec<PathBuf> {
    common::run_java(classpath, "gen_java.java", &[dir]);
    sorted_files(dir)
}

/// Files written by the Apache Avro project's Java implementation: tests/gen_java.java.
#[test]
fn apache_avro_java_writer_files_round_trip() {
    let Some(classpath) = java_classpath() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let files = java_fixtures(&classpath, &tmp.path().join("java"));
    let names = file_names(&files);
    assert_eq!(
        names,
        ["bzip2", "deflate", "empty", "null", "snappy", "xz"].map(|c| format!("java-{c}.avro")),
        "tests/gen_java.java wrote {files:?}"
    );
    convert_each_and_check(&files, &tmp.path().join("out"));
    // The file Java writes when closed without records: a header and no block.
    let empty = tmp.path().join("java").join("java-empty.avro");
    let o = convert(&[&empty], &tmp.path().join("out").join("empty"), &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("no file written"),
        "{}",
        text(&o)
    );
    assert!(parquet_files(&tmp.path().join("out").join("empty")).is_empty());
    // All six in one run (the empty one among them): one schema, one output, in input order.
    convert_together_and_check(&files, &tmp.path().join("out").join("all"));
}

/// parqour's fingerprints of 240 random schemas (`tests/gen_random.py --evolve`: writer
/// schemas and readers derived from them, with aliases, defaults, namespaces, every type and
/// logical type) equal Java's `SchemaNormalization.parsingFingerprint64`
/// (tests/java_fingerprints.java), the reference the producers' envelopes use.
#[test]
fn fingerprints_of_random_schemas_equal_javas() {
    let Some(classpath) = java_classpath() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("random");
    let names = common::gen_random(&dir, 3, 120, true);
    let schemas: Vec<PathBuf> = sorted_files(&dir)
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "avsc"))
        .collect();
    assert_eq!(
        schemas.len(),
        2 * names.len(),
        "a writer and a reader schema each"
    );
    let o = common::run_java(&classpath, "java_fingerprints.java", &schemas);
    let java = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<&str> = java.lines().collect();
    assert_eq!(lines.len(), schemas.len(), "{java}");
    for (schema, line) in schemas.iter().zip(lines) {
        let expected = line
            .strip_prefix(schema.to_str().unwrap())
            .map(str::trim)
            .unwrap_or_else(|| panic!("{line}"));
        assert!(!expected.starts_with("ERROR"), "Java refused it: {line}");
        let o = bin()
            .args(["schema", "fingerprint"])
            .arg(schema)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        assert_eq!(
            String::from_utf8_lossy(&o.stdout).trim(),
            expected,
            "{}",
            schema.display()
        );
    }
}

/// The codec named in an Avro file's header (`null` when it names none).
fn header_codec(file: &Path) -> String {
    let bytes = std::fs::read(file).unwrap();
    let key = b"\x14avro.codec"; // the key with its length (10, zigzag-encoded)
    let Some(at) = bytes.windows(key.len()).position(|w| w == key) else {
        return "null".into();
    };
    let value = &bytes[at + key.len()..];
    let len = usize::from(value[0] >> 1); // a short value: one-byte zigzag length
    String::from_utf8(value[1..1 + len].to_vec()).unwrap()
}

/// Where `.ci/run` installs avsc (npm) for tests/gen_avsc.js: passed to node as NODE_PATH.
fn avsc_modules() -> Option<PathBuf> {
    let modules = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/npm/node_modules");
    let install = "npm install --prefix target/npm avsc@5.7.9";
    if !have_program("node", "nodejs") || !needed(modules.join("avsc").is_dir(), "avsc", install) {
        return None;
    }
    Some(modules)
}

/// Files written by avsc, the JavaScript implementation of Avro: tests/gen_avsc.js (its two
/// codecs, its logical types declared as avsc users declare them, and a file without records).
#[test]
fn avsc_writer_files_round_trip() {
    let Some(modules) = avsc_modules() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("avsc");
    let o = Command::new("node")
        .env("NODE_PATH", &modules)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gen_avsc.js"))
        .arg(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "tests/gen_avsc.js: {}", text(&o));
    let files = sorted_files(&dir);
    let names = file_names(&files);
    assert_eq!(
        names,
        ["deflate", "empty", "null"].map(|c| format!("avsc-{c}.avro")),
        "tests/gen_avsc.js wrote {files:?}"
    );
    for f in &files {
        let codec = if f.ends_with("avsc-null.avro") {
            "null"
        } else {
            "deflate"
        };
        assert_eq!(header_codec(f), codec, "{}", f.display());
    }
    convert_each_and_check(&files, &tmp.path().join("out"));
    convert_together_and_check(&files, &tmp.path().join("out").join("all"));
}

/// The codecs `avromod --codec=` writes: Avro C's own (Debian's avro-bin 1.11 has these), `lzma`
/// being raw LZMA2 rather than the specification's `xz`.
const AVRO_C_CODECS: [&str; 4] = ["null", "deflate", "snappy", "lzma"];

/// Re-encodes `input` with Avro C (`avromod`) into `output`, in blocks of 1 KiB, or as much
/// more as the largest record needs (Avro C refuses a record bigger than its block size).
fn avromod(input: &Path, output: &Path, codec: &str) {
    let mut block_size = 1024;
    loop {
        let o = Command::new("avromod")
            .arg(format!("--codec={codec}"))
            .arg(format!("--block-size={block_size}"))
            .arg(input)
            .arg(output)
            .output()
            .unwrap();
        if o.status.success() {
            return;
        }
        let too_large = String::from_utf8_lossy(&o.stderr).contains("Value too large");
        assert!(
            too_large && block_size < 1 << 26,
            "avromod --codec={codec} {}: {}",
            input.display(),
            text(&o)
        );
        block_size *= 8;
    }
}

/// Files written by the Apache Avro project's C implementation: the Python and Java fixtures
/// re-encoded by `avromod` with its codecs. Avro C writes its own schema JSON (every primitive
/// as `{"type": ...}`; no logical types, defaults, aliases or docs) and its own blocks.
#[test]
fn apache_avro_c_writer_files_round_trip() {
    if !have_program("avromod", "avro-bin") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // The edge cases of tests/gen_fixtures.py that Avro C reads (it knows no bzip2, xz or
    // zstandard), each with one codec, in turn.
    let mut fixtures = python_fixtures("tests/gen_fixtures.py", &tmp.path().join("fixtures"));
    fixtures.retain(|f| AVRO_C_CODECS.contains(&header_codec(f).as_str()));
    assert!(fixtures.len() >= 25, "{fixtures:?}");
    let mut jobs: Vec<(PathBuf, &str)> = fixtures
        .into_iter()
        .zip(AVRO_C_CODECS.iter().copied().cycle())
        .collect();
    // With every codec: the 1,500 records of tests/gen_official.py and tests/gen_java.java
    // (official-deflate.avro and java-{deflate,snappy}.avro hold the same records as the null
    // ones), and Java's file without records.
    let mut many = vec![
        python_fixtures("tests/gen_official.py", &tmp.path().join("official"))
            .into_iter()
            .find(|f| f.ends_with("official-null.avro"))
            .unwrap(),
    ];
    if let Some(classpath) = java_classpath() {
        let java = java_fixtures(&classpath, &tmp.path().join("java"));
        many.extend(
            java.into_iter()
                .filter(|f| f.ends_with("java-null.avro") || f.ends_with("java-empty.avro")),
        );
    }
    for codec in AVRO_C_CODECS {
        jobs.extend(many.iter().map(|f| (f.clone(), codec)));
    }
    let out = tmp.path().join("out");
    let mut written = Vec::new();
    for codec in AVRO_C_CODECS {
        let dir = tmp.path().join(format!("c-{codec}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut files = Vec::new();
        for (f, _) in jobs.iter().filter(|(_, c)| *c == codec) {
            let c = dir.join(f.file_name().unwrap());
            avromod(f, &c, codec);
            assert_eq!(header_codec(&c), codec, "{}", c.display());
            files.push(c);
        }
        convert_each_and_check(&files, &out.join(codec));
        written.extend(files);
    }
    // The copies of one schema in one run each, in input order: those of official-null.avro,
    // then those of java-empty.avro and java-null.avro.
    for prefix in ["official-", "java-"] {
        let same: Vec<&Path> = written
            .iter()
            .filter(|f| f.file_name().unwrap().to_str().unwrap().starts_with(prefix))
            .map(PathBuf::as_path)
            .collect();
        if same.is_empty() {
            continue; // no java: see java_classpath
        }
        let out = out.join(format!("all-{prefix}"));
        let o = convert(&same, &out, &[]);
        assert!(o.status.success(), "{}", text(&o));
        roundtrip(&out, &same);
    }
}

#[test]
fn demo_sample_round_trips_and_is_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let o = bin()
        .args(["demo", "--records", "30000", "--files", "4", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("30000 records"), "{stdout}");
    assert!(stdout.contains("row group 0"), "{stdout}");
    roundtrip(&dir.join("parquet"), &[&dir.join("avro")]);

    // Same inputs and options, any thread count: byte-identical files.
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    assert!(
        convert(&[&dir.join("avro")], &a, &["--threads", "1"])
            .status
            .success()
    );
    assert!(
        convert(&[&dir.join("avro")], &b, &["--threads", "2"])
            .status
            .success()
    );
    let (fa, fb) = (parquet_files(&a), parquet_files(&b));
    assert_eq!(fa.len(), 1);
    assert_eq!(
        std::fs::read(&fa[0]).unwrap(),
        std::fs::read(&fb[0]).unwrap()
    );
    assert_eq!(
        std::fs::read(&fa[0]).unwrap(),
        std::fs::read(&parquet_files(&dir.join("parquet"))[0]).unwrap()
    );
}

#[test]
fn every_codec_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    for codec in [
        Codec::Null,
        Codec::Deflate,
        Codec::Snappy,
        Codec::Zstandard,
        Codec::Bzip2,
        Codec::Xz,
    ] {
        let input = tmp.path().join(format!("{}.avro", codec.name()));
        demo_file(&input, codec, 3000);
        let out = tmp.path().join(codec.name());
        let o = convert(&[&input], &out, &[]);
        assert!(o.status.success(), "{codec:?}: {}", text(&o));
        roundtrip(&out, &[&input]);
    }
}

/// `--byte-array-encoding delta-length`: the strings and binaries without a dictionary are
/// written DELTA_LENGTH_BYTE_ARRAY (those with one keep it), and pyarrow reads back every value
/// fastavro decodes.
#[test]
fn delta_length_byte_arrays_round_trip() {
    use parquet::basic::Encoding;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("events.avro");
    demo_file(&input, Codec::Deflate, 30_000);
    let out = tmp.path().join("out");
    let o = convert(
        &[&input],
        &out,
        &[
            "--byte-array-encoding",
            "delta-length",
            "--row-group-size",
            "2MiB",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    roundtrip(&out, &[&input]);
    let parquet = parquet_files(&out);
    let reader = SerializedFileReader::new(std::fs::File::open(&parquet[0]).unwrap()).unwrap();
    let meta = reader.metadata();
    assert!(meta.num_row_groups() > 1);
    for rg in meta.row_groups() {
        let encodings = |name: &str| {
            let c = rg
                .columns()
                .iter()
                .find(|c| c.column_path().string() == name);
            c.unwrap().encodings_mask().encodings().collect::<Vec<_>>()
        };
        for name in ["event_id", "page_url"] {
            assert!(
                encodings(name).contains(&Encoding::DELTA_LENGTH_BYTE_ARRAY),
                "{name}: {:?}",
                encodings(name)
            );
        }
        // Integers are not byte arrays; a low-cardinality string keeps its dictionary.
        assert!(!encodings("campaign_id").contains(&Encoding::DELTA_LENGTH_BYTE_ARRAY));
        assert!(encodings("event_type").contains(&Encoding::RLE_DICTIONARY));
    }
    // A wrong name is a usage error.
    let o = convert(
        &[&input],
        &tmp.path().join("x"),
        &["--byte-array-encoding", "delta"],
    );
    assert!(!o.status.success());
    assert!(
        text(&o).contains("expected plain or delta-length"),
        "{}",
        text(&o)
    );
}

#[test]
fn files_are_cut_at_the_target_size_and_row_groups_by_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.avro");
    demo_file(&input, Codec::Snappy, 60_000);
    let out = tmp.path().join("out");
    // A file's first row group is measured with its open pages counted uncompressed, once per
    // decoded batch (~3 MB of Arrow data here): a 3 MiB target would close each file after
    // one row group. From the second row group on, the ratio of the written ones predicts it.
    let o = convert(
        &[&input],
        &out,
        &[
            "--target-file-size",
            "5MiB",
            "--row-group-size",
            "1MiB",
            "--compression",
            "zstd",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let files = parquet_files(&out);
    assert!(files.len() >= 2, "{files:?}");
    assert!(
        files[0]
            .to_string_lossy()
            .ends_with("part-00000.zstd.parquet")
    );
    roundtrip(&out, &[&input]);
    let inspect = run(&["inspect", files[0].to_str().unwrap()]);
    assert!(inspect.status.success(), "{}", text(&inspect));
    let s = String::from_utf8_lossy(&inspect.stdout);
    assert!(
        s.contains("row group 1"),
        "expected several row groups:\n{s}"
    );
    assert!(s.contains("ZSTD"), "{s}");
}

#[test]
fn zero_record_input_succeeds_without_a_file() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("empty.avro");
    demo_file(&input, Codec::Deflate, 0);
    let out = tmp.path().join("out");
    let o = convert(&[&input], &out, &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(parquet_files(&out).is_empty());
    assert!(String::from_utf8_lossy(&o.stdout).contains("no file written"));
}

#[test]
fn output_with_parquet_files_needs_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.avro");
    demo_file(&input, Codec::Deflate, 100);
    let out = tmp.path().join("out");
    assert!(convert(&[&input], &out, &[]).status.success());
    let o = convert(&[&input], &out, &[]);
    assert_eq!(o.status.code(), Some(78), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--overwrite"));
    // Parquet in folders below the output (other tables, partitions) is neither a reason to
    // refuse nor deleted by --overwrite.
    let nested = out.join("dt=1/part-00000.snappy.parquet");
    std::fs::create_dir_all(nested.parent().unwrap()).unwrap();
    std::fs::write(&nested, b"another table's file").unwrap();
    let o = convert(&[&input], &out, &["--overwrite"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(parquet_files(&out).len(), 1);
    assert!(
        nested.exists(),
        "--overwrite deleted a file below the output"
    );
    let o = convert(&[&input], &out.join("dt=1/sub"), &[]);
    assert!(o.status.success(), "{}", text(&o));
    // Replaced by the output of an input of no records: nothing.
    let empty = tmp.path().join("empty.avro");
    demo_file(&empty, Codec::Deflate, 0);
    let o = convert(&[&empty], &out, &["--overwrite"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(parquet_files(&out).is_empty(), "{:?}", parquet_files(&out));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("deleted 1 earlier file(s)"),
        "{}",
        text(&o)
    );
    assert!(nested.exists());
}

/// One `convert` at a time writes a local output folder: another one holding it (here, this
/// test's own lock on the folder, as a running `parqour` holds it) makes a second fail at once
/// with exit 75, before it looks at the folder; with `{data_type}`, the folder above the tables
/// is locked from the start and each table as the run first writes to it. Two runs started together: one writes, the other is refused (75, or 78 if it
/// starts after the first is done and finds its files), and the folder holds one run's file.
#[cfg(unix)]
#[test]
fn one_convert_at_a_time_writes_a_local_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.avro");
    demo_file(&input, Codec::Deflate, 2000);
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let held = std::fs::File::open(&out).unwrap();
    held.try_lock().unwrap();
    let o = convert(&[&input], &out, &[]);
    assert_eq!(o.status.code(), Some(75), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains(&format!(
            "another parqour run is writing into `{}`",
            out.display()
        )),
        "{stderr}"
    );
    assert!(sorted_files(&out).is_empty());
    let lake = tmp.path().join("lake");
    std::fs::create_dir_all(&lake).unwrap();
    let lake_held = std::fs::File::open(&lake).unwrap();
    lake_held.try_lock().unwrap();
    let template = format!("{}/{{data_type}}", lake.display());
    let o = convert(&[&input], Path::new(&template), &["--data-type", "events"]);
    assert_eq!(o.status.code(), Some(75), "{}", text(&o));
    drop((held, lake_held));
    // A table of a `{data_type}` template is locked too, as the run first writes to it: a
    // `convert` into the table itself, running, holds it (here, this test's lock), and the
    // templated run fails there, leaving no folder it made.
    let table = lake.join("events");
    std::fs::create_dir_all(&table).unwrap();
    let table_held = std::fs::File::open(&table).unwrap();
    table_held.try_lock().unwrap();
    let o = convert(&[&input], Path::new(&template), &["--data-type", "events"]);
    assert_eq!(o.status.code(), Some(75), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&format!(
            "another parqour run is writing into `{}`",
            table.display()
        )),
        "{}",
        text(&o)
    );
    drop(table_held);
    std::fs::remove_dir(&table).unwrap();
    let o = convert(&[&input], Path::new(&template), &["--data-type", "events"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(parquet_files(&lake.join("events")).len(), 1);

    let together = tmp.path().join("together");
    let start = || {
        bin()
            .arg("convert")
            .arg(&input)
            .arg("--output")
            .arg(&together)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (start(), start());
    let mut codes = [a, b].map(|c| c.wait_with_output().unwrap().status.code());
    codes.sort();
    assert!(
        matches!(codes, [Some(0), Some(75 | 78)]),
        "exit codes {codes:?}"
    );
    assert_eq!(
        sorted_files(&together),
        [together.join("part-00000.snappy.parquet")]
    );
}

#[test]
fn inspect_describes_avro() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.avro");
    demo_file(&input, Codec::Zstandard, 5000);
    let o = run(&["inspect", input.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(s.contains("codec:    zstandard"), "{s}");
    assert!(s.contains("records:  5000"), "{s}");
    assert!(s.contains("payload: Struct"), "{s}");
    let o = run(&["inspect", "/nonexistent/file.avro"]);
    assert!(!o.status.success());
}

/// A file whose schema parqour cannot convert (a record of no fields, which Parquet cannot
/// store) is still described: its schema, why it cannot be converted, its blocks and records.
#[test]
fn inspect_describes_a_file_it_cannot_convert() {
    fn long(v: i64, out: &mut Vec<u8>) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        while z >= 0x80 {
            out.push(z as u8 | 0x80);
            z >>= 7;
        }
        out.push(z as u8);
    }
    // A linked list, beside an empty record (no bytes in the data).
    let schema = r#"{"type":"record","name":"Node","fields":[{"name":"value","type":"long"},{"name":"next","type":["null","Node"]},{"name":"e","type":{"type":"record","name":"Empty","fields":[]}}]}"#;
    let sync = [0x5a; 16];
    let mut file = b"Obj\x01".to_vec();
    long(1, &mut file);
    long(11, &mut file);
    file.extend_from_slice(b"avro.schema");
    long(schema.len() as i64, &mut file);
    file.extend_from_slice(schema.as_bytes());
    long(0, &mut file);
    file.extend_from_slice(&sync);
    // Two blocks: the lists 1 -> 2 and 2, then the list 3.
    for records in [&[(1, 1), (2, 0)][..], &[(3, 0)]] {
        let mut data = Vec::new();
        for &(value, next) in records {
            long(value, &mut data);
            long(next, &mut data);
            if next == 1 {
                long(2, &mut data);
                long(0, &mut data);
            }
        }
        long(records.len() as i64, &mut file);
        long(data.len() as i64, &mut file);
        file.extend_from_slice(&data);
        file.extend_from_slice(&sync);
    }
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("list.avro");
    std::fs::write(&input, &file).unwrap();
    let o = run(&["inspect", input.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let s = String::from_utf8_lossy(&o.stdout);
    for want in [
        "codec:    null",
        "\"name\": \"Node\"",
        "cannot be converted: `e`: record `Empty` has no field that Parquet can store",
        "blocks:   2 (",
        "records:  3",
    ] {
        assert!(s.contains(want), "expected `{want}` in:\n{s}");
    }
    // `convert` refuses it, naming the type.
    let o = convert(&[&input], &tmp.path().join("out"), &[]);
    assert_eq!(o.status.code(), Some(65), "{}", text(&o));
    assert!(text(&o).contains("record `Empty`"), "{}", text(&o));
}

/// `parqour inspect FILE | head`: the reader goes away before the output is written. The
/// program ends quietly with success (it panicked in `println!`); stdout that cannot be
/// written for another reason (a full disk) is an error with a message.
#[test]
fn output_to_a_closed_pipe_or_a_full_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.avro");
    demo_file(&input, Codec::Deflate, 2000);
    let mut child = Command::new(env!("CARGO_BIN_EXE_parqour"))
        .args(["inspect", input.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{:?} {stderr}", o.status);
    assert!(!stderr.contains("panicked"), "{stderr}");

    if Path::new("/dev/full").exists() {
        let o = Command::new(env!("CARGO_BIN_EXE_parqour"))
            .args(["inspect", input.to_str().unwrap()])
            .stdout(std::fs::File::create("/dev/full").unwrap())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(70), "{stderr}");
        assert!(stderr.contains("writing to stdout"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

// ---- bad input: a clear error naming the object, block and offset; exit 65; no panic; no file.

/// Offsets of each block's sync marker (end of each block) in a container file.
fn sync_offsets(file: &[u8]) -> Vec<usize> {
    let sync = &file_sync(file);
    file.windows(16)
        .enumerate()
        .filter(|(_, w)| w == sync)
        .map(|(i, _)| i)
        .collect()
}

fn file_sync(file: &[u8]) -> [u8; 16] {
    let (header, _) = parqour::avro::container::split_all(file, Default::default()).unwrap();
    header.sync
}

fn assert_bad_input(name: &str, bytes: &[u8], expect: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join(format!("{name}.avro"));
    std::fs::write(&input, bytes).unwrap();
    let out = tmp.path().join("out");
    let o = convert(&[&input], &out, &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(65), "{name}: {}", text(&o));
    assert!(!err.contains("panicked"), "{name}: {err}");
    assert!(
        err.contains(&format!("{name}.avro")),
        "{name}: error must name the file: {err}"
    );
    for e in expect {
        assert!(err.contains(e), "{name}: expected `{e}` in: {err}");
    }
    assert!(
        parquet_files(&out).is_empty(),
        "{name}: no file may be published"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .map(|rd| rd.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "{name}: left behind {leftovers:?}");
}

fn good_file() -> Vec<u8> {
    parqour::demo::write_events(Vec::new(), Codec::Deflate, 0, 20_000, 5).unwrap()
}

#[test]
fn truncated_file() {
    let f = good_file();
    let syncs = sync_offsets(&f);
    let cut = syncs[3] + 16 + 40; // inside block 3 (syncs[0] closes the header)
    assert_bad_input(
        "truncated",
        &f[..cut],
        &["truncated", "block 3", "byte offset"],
    );
    assert_bad_input("header_only_part", &f[..10], &["truncated"]);
}

#[test]
fn bad_magic() {
    let mut f = good_file();
    f[0] = b'X';
    assert_bad_input("bad_magic", &f, &["not an Avro object container file"]);
}

#[test]
fn wrong_sync_marker() {
    let mut f = good_file();
    let syncs = sync_offsets(&f);
    f[syncs[3] + 5] ^= 0xff; // the marker closing block 2 (syncs[0] is the header's)
    assert_bad_input(
        "bad_sync",
        &f,
        &["wrong sync marker after block 2", "byte offset"],
    );
}

#[test]
fn corrupt_compressed_block() {
    let mut f = good_file();
    let syncs = sync_offsets(&f);
    // Scramble the middle of block 1's deflate data.
    let start = syncs[1] + 16 + 10;
    for b in &mut f[start..start + 200] {
        *b = b.wrapping_mul(31).wrapping_add(7);
    }
    assert_bad_input("corrupt_block", &f, &["block 1", "byte offset"]);
}

#[test]
fn absurd_count_varint() {
    let f = good_file();
    let syncs = sync_offsets(&f);
    let mut bad = f[..syncs[2] + 16].to_vec();
    // Block 2's record count: 2^62, its size: 10 bytes.
    parqour::avro::cursor::encode_long(1 << 62, &mut bad);
    parqour::avro::cursor::encode_long(10, &mut bad);
    bad.extend_from_slice(&[0; 10]);
    bad.extend_from_slice(&file_sync(&f));
    assert_bad_input("absurd_count", &bad, &["block 2", "absurd record count"]);

    let mut bad = f[..syncs[2] + 16].to_vec();
    parqour::avro::cursor::encode_long(5, &mut bad);
    parqour::avro::cursor::encode_long(i64::MAX, &mut bad);
    assert_bad_input("absurd_size", &bad, &["block 2", "block size"]);
}

/// A file of `["null","int","string"]` unions, ten records a block; record 13 (record 3 of
/// block 1) is `id` followed by `bad_datum`.
fn union_file(bad_datum: &[u8]) -> Vec<u8> {
    let schema = r#"{"type":"record","name":"r","fields":[
        {"name":"id","type":"long"},
        {"name":"u","type":["null","int","string"]}]}"#;
    let mut w = ContainerWriter::new(Vec::new(), schema, Codec::Snappy, [9; 16], &BTreeMap::new())
        .unwrap()
        .with_block_bytes(50);
    let mut d = Datum::new();
    for i in 0..30i64 {
        d.clear();
        if i == 13 {
            d.long(i);
            d.fixed(bad_datum);
        } else {
            d.long(i).long(2).string("ok");
        }
        w.append(&d.buf).unwrap();
    }
    w.finish().unwrap()
}

#[test]
fn union_index_out_of_range() {
    let mut datum = Vec::new();
    parqour::avro::cursor::encode_long(7, &mut datum);
    let f = union_file(&datum);
    assert_bad_input(
        "bad_union",
        &f,
        &[
            "block 1",
            "record 3",
            "union branch index 7 is out of range",
        ],
    );
}

/// A `["null","int","string"]` union's string branch whose bytes are not UTF-8.
fn bad_utf8_union() -> Vec<u8> {
    let mut datum = Vec::new();
    parqour::avro::cursor::encode_long(2, &mut datum);
    parqour::avro::cursor::encode_long(2, &mut datum);
    datum.extend_from_slice(&[0xc3, 0x28]);
    datum
}

#[test]
fn invalid_utf8() {
    let datum = bad_utf8_union();
    let f = union_file(&datum);
    assert_bad_input("bad_utf8", &f, &["block 1", "record 3", "not valid UTF-8"]);
}

/// With a dead-letter place, a record whose value cannot be converted (here a string that is
/// not UTF-8) is set aside alone, as a block of that one record; the other records of its
/// block convert, and replay gives the record back.
#[test]
fn a_record_with_a_bad_value_goes_to_the_dead_letter_place_alone() {
    use arrow_array::cast::AsArray;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let datum = bad_utf8_union();
    let f = union_file(&datum);
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in/bad_utf8.avro");
    std::fs::create_dir_all(input.parent().unwrap()).unwrap();
    std::fs::write(&input, &f).unwrap();
    let dead = tmp.path().join("dead");
    let out = tmp.path().join("out");
    let report = convert_setting_aside(&input, &out, &dead);
    assert_eq!(report["records"], 30);
    assert_eq!(report["records_out"], 29);
    assert_eq!(report["dead_letter"]["records"], 1);
    assert_eq!(report["dead_letter"]["by_kind"]["block"], 1);
    let mut ids = Vec::new();
    for file in parquet_files(&out) {
        let reader =
            ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(file).unwrap()).unwrap();
        for batch in reader.build().unwrap() {
            let batch = batch.unwrap();
            let id = batch
                .column(0)
                .as_primitive::<arrow_array::types::Int64Type>();
            ids.extend(id.values().iter().copied());
        }
    }
    assert_eq!(ids, (0..30).filter(|&i| i != 13).collect::<Vec<i64>>());

    // Replay: a container file of the one record, uncompressed, with the writer schema.
    let replayed = tmp.path().join("replay");
    replay(&dead, &replayed);
    let back = std::fs::read(replayed.join("replay-00000.avro")).unwrap();
    let (header, blocks) = parqour::avro::container::split_all(&back, Default::default()).unwrap();
    let (original, _) = parqour::avro::container::split_all(&f, Default::default()).unwrap();
    assert_eq!(header.schema_json, original.schema_json);
    assert_eq!(header.codec, Codec::Null);
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0].count, 1);
    let mut record = Vec::new();
    parqour::avro::cursor::encode_long(13, &mut record);
    record.extend_from_slice(&datum);
    assert_eq!(&blocks[0].data[..], &record[..]);
    // The replayed record is still not UTF-8: its error names the record and the block.
    let o = convert(
        &[&replayed.join("replay-00000.avro")],
        &tmp.path().join("again"),
        &[],
    );
    assert_eq!(o.status.code(), Some(65), "{}", text(&o));
    assert!(text(&o).contains("not valid UTF-8"), "{}", text(&o));

    // A second replay into the folder is refused: it would overwrite some of the first's
    // files and leave the others. With --overwrite, the files it does not write again go.
    std::fs::write(replayed.join("replay-00007.avro"), b"an earlier replay's").unwrap();
    std::fs::write(replayed.join("notes.txt"), b"not a replay file").unwrap();
    let o = bin()
        .arg("replay")
        .arg(&dead)
        .arg("-o")
        .arg(&replayed)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(78), "{}", text(&o));
    assert!(
        text(&o).contains("already holds replay files"),
        "{}",
        text(&o)
    );
    assert_eq!(
        std::fs::read(replayed.join("replay-00000.avro")).unwrap(),
        back
    );
    let o = bin()
        .arg("replay")
        .arg(&dead)
        .arg("-o")
        .arg(&replayed)
        .arg("--overwrite")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        sorted_files(&replayed),
        [
            replayed.join("notes.txt"),
            replayed.join("replay-00000.avro")
        ]
    );
    assert_eq!(
        std::fs::read(replayed.join("replay-00000.avro")).unwrap(),
        back
    );
}

/// Envelopes that fail are set aside one entry each, up to 64 a block; past them, those of a
/// block share an entry per data type and fingerprint (past 64 of those, one for the rest), so
/// that a block of many tiny failing envelopes costs a few entries, not one each; replay gives
/// every envelope back.
#[test]
fn failing_envelopes_past_64_a_block_share_entries() {
    let schema = r#"{"type":"record","name":"DataWrapper","fields":[
        {"name":"dataType","type":"string"},{"name":"schemaFingerprint","type":"long"},
        {"name":"data","type":"bytes"}]}"#;
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("registry")).unwrap();
    std::fs::create_dir_all(tmp.path().join("in")).unwrap();
    // Block 0: 100 envelopes of two (data type, fingerprint) pairs; block 1: 200 envelopes of
    // as many fingerprints. No schema is published: each fails.
    let mut w = ContainerWriter::new(
        Vec::new(),
        schema,
        Codec::Deflate,
        [3; 16],
        &BTreeMap::new(),
    )
    .unwrap();
    let mut d = Datum::new();
    let mut raw_bytes = 0;
    for (n, distinct) in [(100i64, false), (200, true)] {
        for i in 0..n {
            d.clear();
            let fingerprint = if distinct { 1000 + i } else { i % 2 };
            d.string(if i % 2 == 0 { "a" } else { "b" })
                .long(fingerprint)
                .bytes(&[7; 3]);
            raw_bytes += d.buf.len();
            w.append(&d.buf).unwrap();
        }
        w.flush_block().unwrap();
    }
    let input = tmp.path().join("in/envelopes.avro");
    std::fs::write(&input, w.finish().unwrap()).unwrap();
    let dead = tmp.path().join("dead");
    let o = bin()
        .arg("convert")
        .arg(&input)
        .arg("-o")
        .arg(tmp.path().join("out"))
        .arg("--registry")
        .arg(tmp.path().join("registry"))
        .arg("--dead-letter")
        .arg(&dead)
        .args(["--max-dead-letter-fraction", "1", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["dead_letter"]["records"], 300);
    // Block 0: 64 + 2 shared; block 1: 64 + 64 keyed + 1 for the last 72.
    assert_eq!(report["dead_letter"]["entries"], 64 + 2 + 64 + 64 + 1);
    let replayed = tmp.path().join("replay");
    let o = replay(&dead, &replayed);
    assert!(text(&o).contains("300 records"), "{}", text(&o));
    // A container file of DataWrapper records: every envelope is back, byte for byte in all.
    let back = std::fs::read(replayed.join("replay-00000.avro")).unwrap();
    let (_, blocks) = parqour::avro::container::split_all(&back, Default::default()).unwrap();
    assert_eq!(blocks.iter().map(|b| b.count).sum::<u64>(), 300);
    assert_eq!(
        blocks.iter().map(|b| b.data.len()).sum::<usize>(),
        raw_bytes
    );
}

/// Dead-letter entries wait for the driver with their group: a file of tiny blocks whose
/// every record fails (one entry each) keeps memory bounded by the group, not by the file.
#[test]
fn many_dead_letter_entries_keep_memory_bounded() {
    let schema = r#"{"type":"record","name":"P","fields":[{"name":"s","type":"string"}]}"#;
    let mut w =
        ContainerWriter::new(Vec::new(), schema, Codec::Null, [5; 16], &BTreeMap::new()).unwrap();
    // 400,000 strings that are not UTF-8, in blocks of 64.
    let block = b"\x02\xff".repeat(64);
    for _ in 0..6_250 {
        w.append_block(64, &block).unwrap();
    }
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("bad.avro");
    std::fs::write(&input, w.finish().unwrap()).unwrap();
    if !have_program("/usr/bin/time", "time") {
        return;
    }
    let (o, peak_kib) = common::peak_rss(&[
        "convert".as_ref(),
        input.as_os_str(),
        "--output".as_ref(),
        tmp.path().join("out").as_os_str(),
        "--dead-letter".as_ref(),
        tmp.path().join("dead").as_os_str(),
        "--max-dead-letter-fraction=1".as_ref(),
        "--threads=2".as_ref(),
        "--json".as_ref(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["dead_letter"]["entries"], 400_000);
    assert_eq!(report["dead_letter"]["records"], 400_000);
    // Before groups handed their blocks back past 8 MiB of entries: 183 MiB.
    assert!(peak_kib < 100 << 10, "peak {} MiB", peak_kib >> 10);
}

/// A recursive type (a linked list) converts: the value at the reference to the record from
/// inside it is its JSON text. A list nested past the bound of that text goes to the
/// dead-letter place, alone; the other records convert.
#[test]
fn recursive_types_are_json_text() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::RowAccessor;
    let schema = r#"{"type":"record","name":"LinkedList","fields":[
        {"name":"value","type":"int"},{"name":"next","type":["null","LinkedList"]}]}"#;
    let mut w =
        ContainerWriter::new(Vec::new(), schema, Codec::Null, [1; 16], &BTreeMap::new()).unwrap();
    let mut d = Datum::new();
    // 1 -> 2 -> 3 and 4 in a block; a list of 100,000 in a block of its own (its end cannot be
    // found either, so its whole block is set aside).
    for list in [&[1, 2, 3][..], &[4], &vec![5; 100_000]] {
        d.clear();
        for (i, v) in list.iter().enumerate() {
            if i > 0 {
                d.long(1);
            }
            d.long(*v);
        }
        d.long(0);
        if list.len() > 3 {
            w.append_block(1, &d.buf).unwrap();
        } else {
            w.append(&d.buf).unwrap();
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("list.avro");
    std::fs::write(&input, w.finish().unwrap()).unwrap();
    let (out, dead) = (tmp.path().join("out"), tmp.path().join("dead"));
    let o = convert(
        &[&input],
        &out,
        &[
            "--dead-letter",
            dead.to_str().unwrap(),
            "--max-dead-letter-fraction",
            "0.5",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("nests deeper than 512 levels"),
        "{}",
        text(&o)
    );
    let parquet = parquet_files(&out);
    let reader = SerializedFileReader::new(std::fs::File::open(&parquet[0]).unwrap()).unwrap();
    let rows: Vec<(i32, Option<String>)> = reader
        .get_row_iter(None)
        .unwrap()
        .map(|r| {
            let r = r.unwrap();
            (r.get_int(0).unwrap(), r.get_string(1).ok().cloned())
        })
        .collect();
    assert_eq!(
        rows,
        [
            (
                1,
                Some(r#"{"value":2,"next":{"value":3,"next":null}}"#.to_string())
            ),
            (4, None)
        ]
    );
    assert_eq!(parquet_files(&dead).len(), 0);
    assert!(
        std::fs::read_dir(&dead).unwrap().next().is_some(),
        "a dead letter"
    );
}

/// A zero-byte object holds no records: skipped with a warning (as Spark skips empty files),
/// reported with framing `empty`; the other inputs convert.
#[test]
fn empty_objects_are_skipped_with_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("in");
    std::fs::create_dir_all(&dir).unwrap();
    let events = dir.join("b.avro");
    demo_file(&events, Codec::Deflate, 50);
    let empty = dir.join("a.avro");
    std::fs::write(&empty, b"").unwrap();
    let out = tmp.path().join("out");
    let o = convert(&[&dir], &out, &["--json"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("empty object"),
        "{}",
        text(&o)
    );
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let inputs: Vec<_> = report["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["framing"].as_str().unwrap(),
                i["records"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(inputs, [("empty", 0), ("container", 50)]);
    assert!(
        report["warnings"].to_string().contains("empty object"),
        "{}",
        report["warnings"]
    );
    roundtrip(&out, &[&events]);
    // `inspect` says what it is (it read a range of it before, a store error, exit 75).
    let o = bin().arg("inspect").arg(&empty).output().unwrap();
    assert_eq!(o.status.code(), Some(65), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("an empty object (0 bytes)"),
        "{}",
        text(&o)
    );
}

/// A convert killed while the local store staged a file leaves `part-...parquet#N` in the
/// output folder (the store neither lists nor deletes it); the next run deletes it, and leaves
/// files that are not ours.
#[test]
fn a_killed_runs_staging_files_are_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("e.avro");
    demo_file(&input, Codec::Snappy, 20);
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("part-00003.snappy.parquet#12"), b"half a file").unwrap();
    std::fs::write(out.join("notes.txt#1"), b"not ours").unwrap();
    let o = convert(&[&input], &out, &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        sorted_files(&out),
        [
            out.join("notes.txt#1"),
            out.join("part-00000.snappy.parquet")
        ]
    );
}

#[test]
fn missing_input_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let o = convert(&[Path::new("/nonexistent/dir")], &tmp.path().join("o"), &[]);
    assert_eq!(o.status.code(), Some(65), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/dir"));
    let o = run(&[
        "convert",
        "x.avro",
        "--output",
        "o",
        "--compression",
        "brotli",
    ]);
    assert_eq!(o.status.code(), Some(64), "{}", text(&o));
}

/// `parqour replay DEAD -o OUT`, which must succeed.
fn replay(dead: &Path, out: &Path) -> Output {
    let o = bin()
        .arg("replay")
        .arg(dead)
        .arg("-o")
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    o
}

/// `parqour convert INPUT -o OUT --dead-letter DEAD` with room for what is set aside: the report.
fn convert_setting_aside(input: &Path, out: &Path, dead: &Path) -> serde_json::Value {
    convert_setting_aside_up_to(input, out, dead, "0.5")
}

/// [`convert_setting_aside`] with `--max-dead-letter-fraction fraction`.
fn convert_setting_aside_up_to(
    input: &Path,
    out: &Path,
    dead: &Path,
    fraction: &str,
) -> serde_json::Value {
    let o = bin()
        .arg("convert")
        .arg(input)
        .arg("-o")
        .arg(out)
        .arg("--dead-letter")
        .arg(dead)
        .args(["--max-dead-letter-fraction", fraction, "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// An object of container files one after the other (`cat`, or Kinesis Firehose joining
/// records that are each a whole file), here Spark's files with four codecs and two schemas:
/// each file is read with its own header (schema, codec, sync marker), as separate inputs
/// would be, and every value round-trips. A broken header after a good file leaves that file
/// converted and the rest of the object set aside.
#[test]
fn concatenated_container_files_are_read_each_with_its_own_header() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = testdata();
    let parts: Vec<PathBuf> = ["bzip2", "xz", "zstandard", "snappy"]
        .iter()
        .map(|c| dir.join(format!("alltypes_plain.{c}.avro")))
        .collect();
    let bytes: Vec<Vec<u8>> = parts.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let input = tmp.path().join("in/joined.avro");
    std::fs::create_dir_all(input.parent().unwrap()).unwrap();
    std::fs::write(&input, bytes.concat()).unwrap();
    let out = tmp.path().join("out");
    let o = convert(&[&input], &out, &["--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let one = &report["inputs"][0];
    assert_eq!(one["containers"], 4, "{one}");
    assert_eq!(one["records"], 32);
    assert_eq!(one["codec"], "bzip2,xz,zstandard,snappy");
    let refs: Vec<&Path> = parts.iter().map(PathBuf::as_path).collect();
    roundtrip(&out, &refs);

    // Two schemas: two tables' worth of files, as from two inputs.
    let mixed = tmp.path().join("in/mixed.avro");
    let enums = std::fs::read(dir.join("simple_enum.avro")).unwrap();
    std::fs::write(&mixed, [&bytes[0][..], &enums[..], &bytes[3][..]].concat()).unwrap();
    let out = tmp.path().join("mixed");
    let o = convert(&[&mixed], &out, &["--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["inputs"][0]["containers"], 3);
    assert_eq!(report["records_out"], 20);
    // The records converted with each file's schema, by its fingerprint.
    let fingerprint = |bytes: &[u8]| {
        let (header, _) = parqour::avro::container::split_all(bytes, Default::default()).unwrap();
        parqour::avro::fingerprint::fingerprint(&header.schema_json)
            .unwrap()
            .to_string()
    };
    assert_eq!(
        report["inputs"][0]["fingerprints"],
        serde_json::json!({ fingerprint(&bytes[0]): 16, fingerprint(&enums): 4 })
    );

    // The second header broken (its first metadata key's length runs on): the first file
    // converts, the rest is set aside from where the second file starts.
    let mut broken = bytes[1].clone();
    broken[5] = 0xff;
    let input = tmp.path().join("in/broken.avro");
    std::fs::write(&input, [&bytes[0][..], &broken[..]].concat()).unwrap();
    // The rest's records are estimated at the first file's rate per byte of its blocks: the
    // second file's header makes them more than they are.
    let (out, dead) = (tmp.path().join("broken"), tmp.path().join("dead"));
    let report = convert_setting_aside_up_to(&input, &out, &dead, "1");
    assert_eq!(report["records_out"], 8);
    assert_eq!(report["dead_letter"]["by_kind"]["tail"], 1, "{report}");
    // Without one the run fails, and says where.
    let o = convert(&[&input], &tmp.path().join("broken2"), &[]);
    assert_eq!(o.status.code(), Some(65), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("offset {}", bytes[0].len())),
        "{}",
        text(&o)
    );
}

/// With a dead-letter place, a damaged sync marker in the middle of a file loses that block
/// only: reading goes on at the next block, as Avro Java's reader `sync`s to the next marker.
/// Damaged framing that hides how many records a range holds (the sizes of a block, a raw
/// stream broken at its first byte) counts its records from its bytes, so the dead-letter
/// budget still bounds what is lost.
#[test]
fn a_broken_block_loses_only_the_blocks_up_to_the_next_sync_marker() {
    let tmp = tempfile::tempdir().unwrap();
    let f = good_file();
    let syncs = sync_offsets(&f);
    let (_, blocks) = parqour::avro::container::split_all(&f, Default::default()).unwrap();
    let total: u64 = blocks.iter().map(|b| b.count).sum();
    let input = tmp.path().join("in/bad.avro");
    std::fs::create_dir_all(input.parent().unwrap()).unwrap();
    // Block 2's marker (syncs[3]) damaged: block 2 is set aside, blocks 3 on convert.
    let mut bad = f.clone();
    bad[syncs[3] + 7] ^= 0x20;
    std::fs::write(&input, &bad).unwrap();
    let dead = tmp.path().join("dead");
    let report = convert_setting_aside(&input, &tmp.path().join("out"), &dead);
    assert_eq!(report["records_out"], total - blocks[2].count, "{report}");
    assert_eq!(report["dead_letter"]["by_kind"]["tail"], 1, "{report}");
    let set_aside = report["dead_letter"]["records"].as_u64().unwrap();
    assert!(set_aside >= blocks[2].count, "{report}");
    assert_eq!(report["records"], total - blocks[2].count + set_aside);

    // Block 1's size made larger: its marker is missed where the size says; block 1 alone is
    // set aside (up to its own marker), blocks 2 on convert.
    let mut bad = f.clone();
    let head = syncs[1] + 16;
    let mut c = parqour::avro::cursor::Cursor::new(&bad[head..]);
    c.long().unwrap();
    let size_at = head + c.position();
    bad[size_at] ^= 0x02; // +1 in the zigzag varint's first byte
    std::fs::write(&input, &bad).unwrap();
    let dead = tmp.path().join("dead2");
    let report = convert_setting_aside(&input, &tmp.path().join("out2"), &dead);
    assert_eq!(report["records_out"], total - blocks[1].count, "{report}");

    // The markers after blocks 1 to the one before the last damaged: the next intact marker
    // ends the last block, so everything from block 1 on is one range, counted from its bytes
    // at the rate of block 0 — not as the records block 1 declares.
    let mut bad = f.clone();
    for s in &syncs[2..syncs.len() - 1] {
        bad[s + 3] ^= 0x01;
    }
    std::fs::write(&input, &bad).unwrap();
    let (out, dead) = (tmp.path().join("out3"), tmp.path().join("dead3"));
    let report = convert_setting_aside_up_to(&input, &out, &dead, "1");
    let lost = total - blocks[0].count;
    assert_eq!(report["records_out"], blocks[0].count, "{report}");
    let set_aside = report["dead_letter"]["records"].as_u64().unwrap();
    assert!(
        set_aside * 10 >= lost * 9 && set_aside * 10 <= lost * 11,
        "{set_aside} set aside for {lost}: {report}"
    );
}

/// With a dead-letter place, a container block that does not inflate is set aside whole, as
/// stored; the other blocks convert; replay gives back a container file holding that block.
#[test]
fn a_corrupt_block_goes_to_the_dead_letter_place_and_replays() {
    let tmp = tempfile::tempdir().unwrap();
    let mut f = good_file();
    let syncs = sync_offsets(&f);
    let start = syncs[1] + 16 + 10;
    for b in &mut f[start..start + 200] {
        *b = b.wrapping_mul(31).wrapping_add(7);
    }
    let input = tmp.path().join("in/corrupt.avro");
    std::fs::create_dir_all(input.parent().unwrap()).unwrap();
    std::fs::write(&input, &f).unwrap();
    let (original, blocks) = parqour::avro::container::split_all(&f, Default::default()).unwrap();
    let dead = tmp.path().join("dead");
    let report = convert_setting_aside(&input, &tmp.path().join("out"), &dead);
    assert_eq!(report["records"], 20_000);
    assert_eq!(report["dead_letter"]["records"], blocks[1].count);
    assert_eq!(report["dead_letter"]["by_kind"]["block"], 1);
    assert_eq!(report["records_out"], 20_000 - blocks[1].count);
    // The file's one writer schema, by fingerprint, with the records converted with it.
    let fp = parqour::avro::fingerprint::fingerprint(&original.schema_json).unwrap();
    assert_eq!(
        report["inputs"][0]["fingerprints"],
        serde_json::json!({ fp.to_string(): 20_000 - blocks[1].count })
    );
    // Replay: a container file with the header's schema and codec and that block, unchanged.
    let replayed = tmp.path().join("replay");
    replay(&dead, &replayed);
    let back = std::fs::read(replayed.join("replay-00000.avro")).unwrap();
    let (header, again) = parqour::avro::container::split_all(&back, Default::default()).unwrap();
    assert_eq!(header.schema_json, original.schema_json);
    assert_eq!(header.codec, original.codec);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].count, blocks[1].count);
    assert_eq!(again[0].data, blocks[1].data);
    // Over the budget (the default, 0.1%), the run fails and leaves no Parquet file.
    let out = tmp.path().join("out2");
    let o = bin()
        .args(["convert"])
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .arg("--dead-letter")
        .arg(tmp.path().join("dead2"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(65), "{}", text(&o));
    let left: Vec<_> = std::fs::read_dir(&out)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

/// The first entry of the first dead-letter file in `dead`.
fn first_dead_letter(dead: &Path) -> parqour::deadletter::DeadLetter {
    let file = std::fs::read_dir(dead)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let bytes = std::fs::read(file).unwrap();
    let (_, blocks) = parqour::avro::container::split_all(&bytes, Default::default()).unwrap();
    let mut data = Vec::new();
    for b in &blocks {
        Codec::Deflate
            .decompress(&b.data, &mut data, 1 << 30)
            .unwrap();
    }
    parqour::deadletter::DeadLetter::decode(&mut parqour::avro::cursor::Cursor::new(&data)).unwrap()
}

/// With a dead-letter place, a container file cut short (or whose framing breaks) converts up
/// to the broken block; the rest of the object is set aside byte for byte from that offset.
#[test]
fn the_unframeable_rest_of_a_container_file_is_set_aside() {
    let tmp = tempfile::tempdir().unwrap();
    let f = good_file();
    let syncs = sync_offsets(&f);
    let cut = syncs[3] + 16 + 40; // inside block 3
    let input = tmp.path().join("in/cut.avro");
    std::fs::create_dir_all(input.parent().unwrap()).unwrap();
    std::fs::write(&input, &f[..cut]).unwrap();
    let (_, blocks) = parqour::avro::container::split_all(&f, Default::default()).unwrap();
    let kept: u64 = blocks[..3].iter().map(|b| b.count).sum();
    let dead = tmp.path().join("dead");
    let report = convert_setting_aside(&input, &tmp.path().join("out"), &dead);
    assert_eq!(report["records_out"], kept);
    // The records the broken block declares count as set aside.
    assert_eq!(report["dead_letter"]["records"], blocks[3].count);
    assert_eq!(report["records"], kept + blocks[3].count);
    assert_eq!(report["dead_letter"]["by_kind"]["tail"], 1);
    // The dead-letter entry holds exactly the bytes from block 3 on, with its offset.
    let entry = first_dead_letter(&dead);
    assert_eq!(entry.offset, (syncs[3] + 16) as u64);
    assert_eq!(&entry.data[..], &f[syncs[3] + 16..cut]);
    assert!(entry.error.contains("truncated"), "{}", entry.error);
    // Replayed twice over (two runs' dead letters): each tail alone, as it was, in an object
    // that a folder of inputs does not take.
    let replayed = tmp.path().join("replay");
    let o = bin()
        .arg("replay")
        .args([&dead, &dead])
        .arg("-o")
        .arg(&replayed)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let mut names: Vec<String> = std::fs::read_dir(&replayed)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["tail-00000.bin", "tail-00001.bin"]);
    for name in &names {
        assert_eq!(
            std::fs::read(replayed.join(name)).unwrap(),
            &f[syncs[3] + 16..cut]
        );
    }
    let o = convert(&[&replayed], &tmp.path().join("again"), &[]);
    assert!(text(&o).contains("with `.avro` objects"), "{}", text(&o));
}

/// An output with a `{data_type}` placeholder needs the data type of plain container files.
#[test]
fn plain_events_into_per_type_tables_need_their_data_type() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("e.avro");
    std::fs::write(&input, good_file()).unwrap();
    let template = format!("{}/lake/{{data_type}}", tmp.path().display());
    let o = bin()
        .arg("convert")
        .arg(&input)
        .args(["-o", &template])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(64), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--data-type"),
        "{}",
        text(&o)
    );
    let o = bin()
        .arg("convert")
        .arg(&input)
        .args(["-o", &template, "--data-type", "events"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        tmp.path()
            .join("lake/events/part-00000.snappy.parquet")
            .exists()
    );
}

/// Arrays of a thousand `false` deflate to almost nothing, and Arrow holds a boolean in a bit:
/// 2 MB of such Avro once decoded into one batch of 600 million booleans, whose Parquet levels
/// (a few bytes each) took 3 GB. Batches that need that many levels are encoded in slices now:
/// 16 blocks of them (160 million booleans, 40 KB of Avro) peak near 110 MiB, where they took
/// about 1 GB.
#[test]
fn long_arrays_of_tiny_values_keep_memory_bounded() {
    if !have_program("/usr/bin/time", "time") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let schema = r#"{"type":"record","name":"r","fields":[
        {"name":"id","type":"long"},
        {"name":"flags","type":{"type":"array","items":"boolean"}}]}"#;
    let mut block = Datum::new();
    for i in 0..10_000 {
        block.long(i).items(1000);
        block.buf.extend_from_slice(&[0; 1000]);
        block.end_items();
    }
    let mut compressor = libdeflater::Compressor::new(libdeflater::CompressionLvl::default());
    let mut deflated = vec![0; compressor.deflate_compress_bound(block.buf.len())];
    let n = compressor
        .deflate_compress(&block.buf, &mut deflated)
        .unwrap();
    deflated.truncate(n);
    let mut w = ContainerWriter::new(
        Vec::new(),
        schema,
        Codec::Deflate,
        [5; 16],
        &BTreeMap::new(),
    )
    .unwrap();
    for _ in 0..16 {
        w.append_block(10_000, &deflated).unwrap();
    }
    let input = tmp.path().join("flags.avro");
    std::fs::write(&input, w.finish().unwrap()).unwrap();
    let (report, peak) = convert_measured(&input, &tmp.path().join("out"), 1);
    assert_eq!(report["records"], 160_000);
    assert_eq!(report["records_out"], 160_000);
    assert!(peak < 400 << 10, "peak RSS {peak} KiB");
}

/// `convert INPUT --output OUT --threads N --json`, which must succeed: its report and peak
/// RSS (KiB).
fn convert_measured(input: &Path, out: &Path, threads: usize) -> (serde_json::Value, u64) {
    let threads = threads.to_string();
    let (o, peak) = common::peak_rss(&[
        "convert".as_ref(),
        input.as_os_str(),
        "--output".as_ref(),
        out.as_os_str(),
        "--threads".as_ref(),
        threads.as_ref(),
        "--json".as_ref(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let report = serde_json::from_slice(&o.stdout).unwrap();
    (report, peak)
}

/// Values of tens of megabytes (one per block) are copied a few times, not a dozen: the
/// statistics keep the first 4 KiB of a min or max (not four whole copies a column), a value
/// past the dictionary's limit gives the dictionary up before it is copied in, pages end
/// after a page's worth of bytes (not 1,024 values), and a block's inflate buffer is sized
/// exactly. Four records of 24 MB, two threads: about 180 MiB, where it took 376 MiB.
#[test]
fn values_of_tens_of_megabytes_keep_memory_bounded() {
    if !have_program("/usr/bin/time", "time") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let schema = r#"{"type":"record","name":"r","fields":[
        {"name":"id","type":"long"},{"name":"text","type":"string"}]}"#;
    let mut w =
        ContainerWriter::new(Vec::new(), schema, Codec::Null, [6; 16], &BTreeMap::new()).unwrap();
    // Letters that snappy cannot shrink much, so that pages are as large as their values.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut letter = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        char::from(b'a' + (state % 26) as u8)
    };
    let mut datum = Datum::new();
    let mut expected = Vec::new();
    for i in 0..4 {
        let text: String = (0..24_000_000).map(|_| letter()).collect();
        datum.clear();
        datum.long(i).string(&text);
        w.append(&datum.buf).unwrap();
        w.flush_block().unwrap();
        expected.push(text[..16].to_string());
    }
    let input = tmp.path().join("large.avro");
    std::fs::write(&input, w.finish().unwrap()).unwrap();
    let out = tmp.path().join("out");
    let (report, peak) = convert_measured(&input, &out, 2);
    assert_eq!(report["records_out"], 4);
    assert!(peak < 280 << 10, "peak RSS {peak} KiB");
    // The values, read back by pyarrow: whole, in order.
    let script = format!(
        "import pyarrow.parquet as pq, glob\n\
         t = pq.read_table(sorted(glob.glob('{}/*.parquet')))\n\
         print([(len(s), s[:16]) for s in t.column('text').to_pylist()])",
        out.display()
    );
    let o = Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let want: Vec<String> = expected
        .iter()
        .map(|p| format!("(24000000, '{p}')"))
        .collect();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        format!("[{}]", want.join(", "))
    );
}

/// `--reader-schema TYPE=URL` for a type the run does not convert (a typo) is a usage error,
/// not ignored; a local file whose path holds `=` (`v=2/reader.avsc`) is a reader schema for
/// every type, not TYPE `v` at URL `2/reader.avsc`.
#[test]
fn reader_schema_specs_are_checked_and_paths_with_equals_signs_are_files() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("events.avro");
    demo_file(&input, Codec::Null, 20);
    let bytes = std::fs::read(&input).unwrap();
    let limits = parqour::avro::container::Limits::default();
    let schema = parqour::avro::container::split_all(&bytes, limits)
        .unwrap()
        .0
        .schema_json;
    std::fs::create_dir_all(tmp.path().join("v=2")).unwrap();
    std::fs::write(tmp.path().join("v=2/reader.avsc"), &schema).unwrap();
    let o = bin()
        .current_dir(tmp.path())
        .args([
            "convert",
            "events.avro",
            "--data-type",
            "click",
            "--output",
            "a",
        ])
        .args(["--reader-schema", "clik=v=2/reader.avsc"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(64), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("`clik` is not a data type this run converts"),
        "{}",
        text(&o)
    );
    let o = bin()
        .current_dir(tmp.path())
        .args(["convert", "events.avro", "--output", "b", "--json"])
        .args(["--reader-schema", "v=2/reader.avsc"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["records_out"], 20);
    // A reader schema the file's cannot be read as: the file's error, not its first block's.
    let other = tmp.path().join("other.avsc");
    std::fs::write(
        &other,
        r#"{"type":"record","name":"O","fields":[{"name":"missing","type":"long"}]}"#,
    )
    .unwrap();
    let o = bin()
        .current_dir(tmp.path())
        .args(["convert", "events.avro", "--output", "c", "--reader-schema"])
        .arg(&other)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(65), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("events.avro: cannot be read as the reader schema: field `missing`")
            && !err.contains("block 0"),
        "{err}"
    );
    // A run that fails (plain events, two data types: which are they?) leaves no empty
    // output folders behind.
    let o = bin()
        .current_dir(tmp.path())
        .args(["convert", "events.avro", "--output", "t/{data_type}"])
        .args(["--data-type", "x", "--data-type", "y"])
        .output()
        .unwrap();
    assert!(!o.status.success(), "{}", text(&o));
    assert!(!tmp.path().join("t").exists(), "{}", text(&o));
}

/// A schema read from a pipe (`<(...)`), which has no size: read whole, like a file.
#[test]
fn a_schema_can_be_read_from_a_pipe() {
    let tmp = tempfile::tempdir().unwrap();
    let avsc = tmp.path().join("a.avsc");
    std::fs::write(
        &avsc,
        r#"{"type":"record","name":"A","fields":[{"name":"x","type":"long"}]}"#,
    )
    .unwrap();
    let direct = run(&["schema", "fingerprint", avsc.to_str().unwrap()]);
    assert!(direct.status.success(), "{}", text(&direct));
    let piped = Command::new("bash")
        .arg("-c")
        .arg(r#""$0" schema fingerprint <(cat "$1")"#)
        .arg(env!("CARGO_BIN_EXE_parqour"))
        .arg(&avsc)
        .output()
        .unwrap();
    assert!(piped.status.success(), "{}", text(&piped));
    assert_eq!(piped.stdout, direct.stdout);
}

/// A file whose names fall outside the specification's pattern, as polars (a record named
/// `""`) and Python's writers (field names such as `my-field`, `café`, `a.b`) write them, is
/// read as Java's file reader reads it: every value is checked against fastavro.
#[test]
fn names_outside_the_avro_pattern_are_read() {
    let schema = r#"{"type":"record","name":"","fields":[
        {"name":"my-field","type":"int"},
        {"name":"café","type":"string"},
        {"name":"1st","type":{"type":"enum","name":"Kind","symbols":["A","B"]}},
        {"name":"in ner","type":{"type":"record","name":"with space","fields":[
            {"name":"a.b","type":["null","long"]}]}}]}"#;
    let mut w = ContainerWriter::new(
        Vec::new(),
        schema,
        Codec::Deflate,
        [4; 16],
        &BTreeMap::new(),
    )
    .unwrap();
    let mut d = Datum::new();
    for i in 0..100i64 {
        d.clear();
        d.long(i)
            .string(&format!("v{i}"))
            .long(i % 2)
            .long(if i % 3 == 0 { 0 } else { 1 });
        if i % 3 != 0 {
            d.long(i * 7);
        }
        w.append(&d.buf).unwrap();
    }
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("polars.avro");
    std::fs::write(&input, w.finish().unwrap()).unwrap();
    let out = tmp.path().join("out");
    let o = convert(&[&input], &out, &[]);
    assert!(o.status.success(), "{}", text(&o));
    roundtrip(&out, &[&input]);
}

/// Inputs whose schemas interleave (two producer versions, their objects alternating by name)
/// fill one file per schema, each with its inputs' rows in order; past four schemas at a time
/// the least recently written file is closed. Before, each change of schema started a file:
/// eight inputs made eight files.
#[test]
fn interleaved_schemas_fill_one_file_each() {
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let tmp = tempfile::tempdir().unwrap();
    let schema = |v: usize| {
        format!(
            r#"{{"type":"record","name":"R","fields":[{{"name":"x","type":"long"}},
               {{"name":"f{v}","type":"long"}}]}}"#
        )
    };
    // `versions` schemas in turn, 8 objects of each, 100 records an object.
    let run = |versions: usize| {
        let dir = tmp.path().join(format!("in-{versions}"));
        std::fs::create_dir_all(&dir).unwrap();
        for o in 0..8 * versions {
            let v = o % versions;
            let mut w = ContainerWriter::new(
                Vec::new(),
                &schema(v),
                Codec::Null,
                [6; 16],
                &BTreeMap::new(),
            )
            .unwrap();
            let mut d = Datum::new();
            for i in 0..100i64 {
                d.clear();
                d.long(o as i64 * 100 + i).long(v as i64);
                w.append(&d.buf).unwrap();
            }
            std::fs::write(dir.join(format!("{o:03}.avro")), w.finish().unwrap()).unwrap();
        }
        let out = tmp.path().join(format!("out-{versions}"));
        let o = convert(&[&dir], &out, &["--json"]);
        assert!(o.status.success(), "{}", text(&o));
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let files: Vec<PathBuf> = report["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| PathBuf::from(o["url"].as_str().unwrap()))
            .collect();
        // Every file holds the rows of one schema, in input order.
        let mut seen = 0;
        for f in &files {
            let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(f).unwrap())
                .unwrap()
                .build()
                .unwrap();
            let mut xs = Vec::new();
            for batch in reader {
                let batch = batch.unwrap();
                xs.extend(
                    batch
                        .column(0)
                        .as_primitive::<Int64Type>()
                        .values()
                        .iter()
                        .copied(),
                );
            }
            let v = (xs[0] / 100) as usize % versions;
            let want: Vec<i64> = (0..8 * versions)
                .filter(|o| o % versions == v)
                .flat_map(|o| (0..100).map(move |i| o as i64 * 100 + i))
                .filter(|x| xs.contains(x))
                .collect();
            assert_eq!(xs, want, "{}", f.display());
            seen += xs.len();
        }
        assert_eq!(seen, 800 * versions);
        files.len()
    };
    assert_eq!(run(2), 2);
    assert_eq!(run(4), 4);
    // Five schemas in turn, four files open at a time: a file closes at every change.
    assert_eq!(run(5), 40);
}

/// Zero bytes after a file's last block (padding) end the file, as in Avro Java: every record
/// converts, and the report says so among its warnings.
#[test]
fn zero_padding_after_the_last_block_is_reported_not_lost() {
    let mut w = ContainerWriter::new(
        Vec::new(),
        r#""long""#,
        Codec::Deflate,
        [5; 16],
        &BTreeMap::new(),
    )
    .unwrap();
    let mut d = Datum::new();
    for i in 0..25i64 {
        d.clear();
        d.long(i);
        w.append(&d.buf).unwrap();
    }
    let mut bytes = w.finish().unwrap();
    bytes.extend_from_slice(&[0; 16]);
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("padded.avro");
    std::fs::write(&input, bytes).unwrap();
    let o = convert(&[&input], &tmp.path().join("out"), &["--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["records_out"], 25, "{}", text(&o));
    let warnings = report["warnings"].to_string();
    assert!(warnings.contains("ends with 16 zero bytes"), "{warnings}");
}

/// One batch of every Arrow type arrow-avro's writer (arrow-rs's Avro writer, which DataFusion
/// uses) maps to standard Avro, with the bounds of each, nulls in nullable ones, and random values
/// from `seed`.
fn arrow_avro_batch(rows: usize, seed: u64) -> arrow_array::RecordBatch {
    use arrow_array::builder::{Int64Builder, MapBuilder, StringBuilder};
    use arrow_array::types::Int32Type;
    use arrow_array::*;
    use arrow_buffer::{IntervalDayTime, IntervalMonthDayNano, i256};
    use arrow_schema::{DataType, Field};
    use std::sync::Arc;

    let mut state = seed | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let r: Vec<u64> = (0..(rows + 1) * 8).map(|_| next()).collect();
    let v = |i: usize, k: usize| r[i * 8 + k];
    // The bounds first, then random values.
    let pick = |i: usize, bounds: &[i64], random: i64| bounds.get(i).copied().unwrap_or(random);
    let some = |i: usize| i % 3 != 1;
    let text = |i: usize| {
        let chars = ['a', 'Z', '0', ' ', 'é', '€', '𝄞', '"', '\\', '\n'];
        (0..v(i, 3) % 24)
            .map(|k| chars[(v(i, 4) >> (k % 16 * 4)) as usize % chars.len()])
            .collect::<String>()
    };
    let blob = |i: usize| -> Vec<u8> {
        (0..v(i, 5) % 20)
            .map(|k| (v(i, 6) >> (k % 8 * 8)) as u8)
            .collect()
    };
    let day_ms = 86_400_000i64;
    let mut fields = Vec::new();
    let mut cols: Vec<ArrayRef> = Vec::new();
    let mut add = |name: &str, nullable: bool, a: ArrayRef| {
        fields.push(Field::new(name, a.data_type().clone(), nullable));
        cols.push(a);
    };
    let ints = |bounds: &[i64], k: usize| -> Vec<i64> {
        (0..rows).map(|i| pick(i, bounds, v(i, k) as i64)).collect()
    };
    add(
        "bool",
        false,
        Arc::new(BooleanArray::from_iter(
            (0..rows).map(|i| Some(v(i, 0) & 1 == 1)),
        )),
    );
    add(
        "i8",
        false,
        Arc::new(Int8Array::from_iter_values(
            ints(&[-128, 127, 0], 0).iter().map(|x| *x as i8),
        )),
    );
    add(
        "i16",
        false,
        Arc::new(Int16Array::from_iter_values(
            ints(&[-32768, 32767], 1).iter().map(|x| *x as i16),
        )),
    );
    add(
        "i32",
        false,
        Arc::new(Int32Array::from_iter_values(
            ints(&[i32::MIN as i64, i32::MAX as i64], 2)
                .iter()
                .map(|x| *x as i32),
        )),
    );
    add(
        "i64",
        false,
        Arc::new(Int64Array::from(ints(&[i64::MIN, i64::MAX, 0, -1], 3))),
    );
    add(
        "n_i64",
        true,
        Arc::new(Int64Array::from_iter(
            (0..rows).map(|i| some(i).then(|| v(i, 1) as i64)),
        )),
    );
    add(
        "u8",
        false,
        Arc::new(UInt8Array::from_iter_values(
            (0..rows).map(|i| v(i, 0) as u8),
        )),
    );
    add(
        "u16",
        false,
        Arc::new(UInt16Array::from_iter_values(
            (0..rows).map(|i| v(i, 1) as u16),
        )),
    );
    add(
        "u32",
        false,
        Arc::new(UInt32Array::from_iter_values(
            (0..rows).map(|i| pick(i, &[u32::MAX as i64], v(i, 2) as i64) as u32),
        )),
    );
    let specials = [
        f64::NAN,
        -0.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        5e-324,
        f64::MAX,
    ];
    let float = |i: usize| {
        specials
            .get(i)
            .copied()
            .unwrap_or((v(i, 7) as i64) as f64 / 1e9)
    };
    add(
        "f32",
        false,
        Arc::new(Float32Array::from_iter_values(
            (0..rows).map(|i| float(i) as f32),
        )),
    );
    add(
        "f64",
        false,
        Arc::new(Float64Array::from_iter_values((0..rows).map(float))),
    );
    add(
        "n_f64",
        true,
        Arc::new(Float64Array::from_iter(
            (0..rows).map(|i| some(i).then(|| float(i))),
        )),
    );
    add(
        "utf8",
        false,
        Arc::new(StringArray::from_iter_values((0..rows).map(text))),
    );
    add(
        "n_utf8",
        true,
        Arc::new(StringArray::from_iter(
            (0..rows).map(|i| some(i).then(|| text(i))),
        )),
    );
    add(
        "large_utf8",
        false,
        Arc::new(LargeStringArray::from_iter_values((0..rows).map(text))),
    );
    add(
        "utf8_view",
        false,
        Arc::new(StringViewArray::from_iter_values(
            (0..rows).map(|i| text(i).repeat(2)),
        )),
    );
    add(
        "binary",
        false,
        Arc::new(BinaryArray::from_iter_values((0..rows).map(blob))),
    );
    add(
        "n_binary",
        true,
        Arc::new(BinaryArray::from_iter(
            (0..rows).map(|i| some(i).then(|| blob(i))),
        )),
    );
    add(
        "large_binary",
        false,
        Arc::new(LargeBinaryArray::from_iter_values((0..rows).map(blob))),
    );
    add(
        "binary_view",
        false,
        Arc::new(BinaryViewArray::from_iter_values((0..rows).map(blob))),
    );
    let fixed = (0..rows).map(|i| (v(i, 2) as u32).to_le_bytes()[..3].to_vec());
    add(
        "fixed3",
        false,
        Arc::new(FixedSizeBinaryArray::try_from_iter(fixed).unwrap()),
    );
    let days = |i: usize| pick(i, &[0, -719_162, 2_932_896], v(i, 3) as i64 % 100_000) as i32;
    add(
        "date32",
        false,
        Arc::new(Date32Array::from_iter_values((0..rows).map(days))),
    );
    add(
        "n_date32",
        true,
        Arc::new(Date32Array::from_iter(
            (0..rows).map(|i| some(i).then(|| days(i))),
        )),
    );
    add(
        "date64",
        false,
        Arc::new(Date64Array::from_iter_values(
            (0..rows).map(|i| days(i) as i64 * day_ms),
        )),
    );
    let in_day = |i: usize, per_ms: u64| (v(i, 4) % (day_ms as u64 * per_ms)) as i64;
    add(
        "time32_s",
        false,
        Arc::new(Time32SecondArray::from_iter_values(
            (0..rows).map(|i| (in_day(i, 1) / 1000) as i32),
        )),
    );
    add(
        "time32_ms",
        false,
        Arc::new(Time32MillisecondArray::from_iter_values(
            (0..rows).map(|i| in_day(i, 1) as i32),
        )),
    );
    add(
        "time64_us",
        false,
        Arc::new(Time64MicrosecondArray::from_iter_values(
            (0..rows).map(|i| in_day(i, 1000)),
        )),
    );
    add(
        "time64_ns",
        false,
        Arc::new(Time64NanosecondArray::from_iter_values(
            (0..rows).map(|i| in_day(i, 1_000_000)),
        )),
    );
    let instant =
        |i: usize, per_s: i64| pick(i, &[0, -1], (v(i, 5) as i64) % (4_000_000_000 * per_s));
    add(
        "ts_s",
        false,
        Arc::new(
            TimestampSecondArray::from_iter_values((0..rows).map(|i| instant(i, 1)))
                .with_timezone("UTC"),
        ),
    );
    add(
        "ts_ms",
        false,
        Arc::new(
            TimestampMillisecondArray::from_iter_values((0..rows).map(|i| instant(i, 1000)))
                .with_timezone("UTC"),
        ),
    );
    add(
        "ts_us",
        false,
        Arc::new(
            TimestampMicrosecondArray::from_iter_values((0..rows).map(|i| instant(i, 1_000_000)))
                .with_timezone("+00:00"),
        ),
    );
    add(
        "ts_ns",
        false,
        Arc::new(
            TimestampNanosecondArray::from_iter_values(
                (0..rows).map(|i| instant(i, 1_000_000_000)),
            )
            .with_timezone("UTC"),
        ),
    );
    add(
        "local_ts_ms",
        false,
        Arc::new(TimestampMillisecondArray::from_iter_values(
            (0..rows).map(|i| instant(i, 1000)),
        )),
    );
    add(
        "local_ts_ns",
        false,
        Arc::new(TimestampNanosecondArray::from_iter_values(
            (0..rows).map(|i| instant(i, 1_000_000_000)),
        )),
    );
    add(
        "n_ts_us",
        true,
        Arc::new(
            TimestampMicrosecondArray::from_iter(
                (0..rows).map(|i| some(i).then(|| instant(i, 1_000_000))),
            )
            .with_timezone("UTC"),
        ),
    );
    let unscaled = |i: usize| {
        let max = 10i128.pow(38) - 1;
        let random = ((v(i, 6) as i128) << 60 | v(i, 7) as i128) % max;
        match i {
            0 => max,
            1 => -max,
            _ if v(i, 0) & 2 == 0 => random,
            _ => -random,
        }
    };
    add(
        "decimal128",
        false,
        Arc::new(
            Decimal128Array::from_iter_values((0..rows).map(unscaled))
                .with_precision_and_scale(38, 10)
                .unwrap(),
        ),
    );
    add(
        "n_decimal128",
        true,
        Arc::new(
            Decimal128Array::from_iter(
                (0..rows).map(|i| some(i).then(|| unscaled(i) % 10i128.pow(9))),
            )
            .with_precision_and_scale(9, 2)
            .unwrap(),
        ),
    );
    let nines = i256::from_string(&"9".repeat(76)).unwrap();
    let wide = |i: usize| match i {
        0 => nines,
        1 => nines.wrapping_neg(),
        _ => i256::from_i128(unscaled(i))
            .wrapping_mul(i256::from_i128(unscaled(i + 1) % 10i128.pow(37))),
    };
    add(
        "decimal256",
        false,
        Arc::new(
            Decimal256Array::from_iter_values((0..rows).map(wide))
                .with_precision_and_scale(76, 10)
                .unwrap(),
        ),
    );
    let small = |i: usize, k: usize| (v(i, k) % 1_000_000) as i32;
    add(
        "interval_ym",
        false,
        Arc::new(IntervalYearMonthArray::from_iter_values(
            (0..rows).map(|i| small(i, 1)),
        )),
    );
    add(
        "interval_dt",
        false,
        Arc::new(IntervalDayTimeArray::from_iter_values(
            (0..rows).map(|i| IntervalDayTime::new(small(i, 2), small(i, 3))),
        )),
    );
    add(
        "interval_mdn",
        false,
        Arc::new(IntervalMonthDayNanoArray::from_iter_values((0..rows).map(
            |i| IntervalMonthDayNano::new(small(i, 1), small(i, 2), small(i, 3) as i64 * 1_000_000),
        ))),
    );
    add(
        "duration_us",
        false,
        Arc::new(DurationMicrosecondArray::from_iter_values(
            (0..rows).map(|i| v(i, 4) as i64),
        )),
    );
    let list = |i: usize| {
        (0..v(i, 1) % 4)
            .map(|k| (k != 1).then_some((v(i, 2) >> k) as i32))
            .collect::<Vec<_>>()
    };
    add(
        "list",
        false,
        Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(
            (0..rows).map(|i| Some(list(i))),
        )),
    );
    add(
        "n_list",
        true,
        Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(
            (0..rows).map(|i| some(i).then(|| list(i))),
        )),
    );
    add(
        "large_list",
        false,
        Arc::new(LargeListArray::from_iter_primitive::<Int32Type, _, _>(
            (0..rows).map(|i| Some(list(i))),
        )),
    );
    let pair = |i: usize| {
        Some(vec![
            Some(v(i, 3) as i32),
            i.is_multiple_of(2).then_some(i as i32),
        ])
    };
    add(
        "fixed_list",
        false,
        Arc::new(FixedSizeListArray::from_iter_primitive::<Int32Type, _, _>(
            (0..rows).map(pair),
            2,
        )),
    );
    let child_a: ArrayRef = Arc::new(Int32Array::from_iter_values(
        (0..rows).map(|i| v(i, 5) as i32),
    ));
    let child_b: ArrayRef = Arc::new(StringArray::from_iter(
        (0..rows).map(|i| i.is_multiple_of(2).then(|| text(i))),
    ));
    let child_fields = vec![
        Arc::new(Field::new("a", DataType::Int32, false)),
        Arc::new(Field::new("b", DataType::Utf8, true)),
    ];
    add(
        "record",
        false,
        Arc::new(StructArray::from(
            child_fields
                .iter()
                .cloned()
                .zip([child_a.clone(), child_b.clone()])
                .collect::<Vec<_>>(),
        )),
    );
    let validity = arrow_buffer::NullBuffer::from((0..rows).map(some).collect::<Vec<_>>());
    add(
        "n_record",
        true,
        Arc::new(StructArray::new(
            child_fields.into(),
            vec![child_a, child_b],
            Some(validity),
        )),
    );
    let mut map = MapBuilder::new(None, StringBuilder::new(), Int64Builder::new());
    for i in 0..rows {
        for k in 0..v(i, 6) % 4 {
            map.keys().append_value(format!("k{k}{}", text(i)));
            map.values()
                .append_option((k != 2).then_some(v(i, 7) as i64 >> k));
        }
        map.append(true).unwrap();
    }
    add("map", false, Arc::new(map.finish()));
    let schema = arrow_schema::Schema::new(fields);
    arrow_array::RecordBatch::try_new(Arc::new(schema), cols).unwrap()
}

/// Files written by arrow-avro's writer (arrow-rs's; DataFusion's Avro support), with each
/// codec it has and several blocks a file: every Arrow type it maps to standard Avro (the
/// Avro schema is generated from the Arrow schema: unsigned ints widened, times, timestamps,
/// Date64 as local-timestamp-millis, decimals up to 76 digits, intervals as duration, views,
/// large and fixed-size lists, nullable structs) converts, and every value equals what fastavro
/// reads (tests/roundtrip.py).
#[test]
fn arrow_avro_writer_files_round_trip() {
    use arrow_avro::compression::CompressionCodec;
    use arrow_avro::writer::WriterBuilder;
    let tmp = tempfile::tempdir().unwrap();
    let codecs = [
        ("null", None),
        ("deflate", Some(CompressionCodec::Deflate)),
        ("snappy", Some(CompressionCodec::Snappy)),
        ("zstandard", Some(CompressionCodec::ZStandard)),
        ("bzip2", Some(CompressionCodec::Bzip2)),
        ("xz", Some(CompressionCodec::Xz)),
    ];
    let mut files = Vec::new();
    for (k, (name, codec)) in codecs.into_iter().enumerate() {
        // Three batches (three blocks), the first with the bounds of each type.
        let batches: Vec<_> = (0..3)
            .map(|b| arrow_avro_batch([700, 1, 1300][b], (k * 3 + b) as u64 + 7))
            .collect();
        let mut w = WriterBuilder::new(batches[0].schema().as_ref().clone())
            .with_compression(codec)
            .build::<_, arrow_avro::writer::format::AvroOcfFormat>(Vec::new())
            .unwrap();
        for b in &batches {
            w.write(b).unwrap();
        }
        w.finish().unwrap();
        let path = tmp.path().join(format!("arrow-avro-{name}.avro"));
        std::fs::write(&path, w.into_inner()).unwrap();
        assert_eq!(header_codec(&path), name, "{}", path.display());
        files.push(path);
    }
    convert_each_and_check(&files, &tmp.path().join("out"));
}
