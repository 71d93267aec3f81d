//! Helpers shared by the end-to-end test binaries.

#![allow(dead_code, clippy::unwrap_used)]

pub mod moto;
pub mod seaweed;

use std::path::Path;
use std::process::{Command, Output};

/// The `parqour` binary, logging warnings only.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_parqour"));
    c.env("PARQOUR_LOG", "warn");
    c
}

/// `parqour run --manifest MANIFEST`.
pub fn run_manifest(manifest: &Path) -> Output {
    bin()
        .args(["run", "--manifest"])
        .arg(manifest)
        .output()
        .unwrap()
}

/// Runs `parqour ARGS` under GNU time (`/usr/bin/time`, Debian's package `time`; see
/// [`have_program`]): its output (GNU time's line removed from stderr) and its peak RSS in KiB.
pub fn peak_rss<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> (Output, u64) {
    const PREFIX: &str = "parqour-peak-rss-kib ";
    let mut o = Command::new("/usr/bin/time")
        .args(["-f", &format!("{PREFIX}%M"), env!("CARGO_BIN_EXE_parqour")])
        .args(args)
        .env("PARQOUR_LOG", "warn")
        .output()
        .expect("GNU time (/usr/bin/time, Debian's package `time`)");
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    let (rest, rss) = stderr
        .rsplit_once(PREFIX)
        .and_then(|(rest, rss)| Some((rest, rss.trim().parse().ok()?)))
        .unwrap_or_else(|| panic!("no peak RSS in {stderr}"));
    o.stderr = rest.as_bytes().to_vec();
    (o, rss)
}

/// A process's exit status and output, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Compares every value of `inputs` (Avro files or folders) with the Parquet files in `parquet`
/// using the independent readers of `tests/roundtrip.py` (fastavro and pyarrow).
pub fn roundtrip(parquet: &Path, inputs: &[&Path]) {
    roundtrip_with(parquet, inputs, &[]);
}

/// [`roundtrip`] with options of `tests/roundtrip.py` (`--uuid binary`).
pub fn roundtrip_with(parquet: &Path, inputs: &[&Path], options: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/roundtrip.py");
    let out = Command::new("python3")
        .arg(&script)
        .args(options)
        .arg("--parquet")
        .arg(parquet)
        .args(inputs)
        .output()
        .expect("python3 is needed for the round-trip checks");
    assert!(
        out.status.success(),
        "round trip failed (needs `pip install -r tests/requirements.txt`):\n{}",
        text(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(" 0 mismatches"), "{stdout}");
}

/// Runs `tests/gen_random.py` into `dir` (with `--evolve` if `evolve`): `count` files of random
/// schemas drawn from `seed`, unless `PARQOUR_RANDOM_SEED` and `PARQOUR_RANDOM_COUNT` say
/// otherwise (to look further than the tests' fixed draw). Returns the files' names without
/// extension (`random-<seed>-<n>`), in order.
pub fn gen_random(dir: &Path, seed: u64, count: u64, evolve: bool) -> Vec<String> {
    gen_random_with(dir, seed, count, if evolve { "--evolve" } else { "" })
}

/// [`gen_random`] with a mode of tests/gen_random.py: `--evolve`, `--evolve-java` or none
/// (`""`).
pub fn gen_random_with(dir: &Path, seed: u64, count: u64, mode: &str) -> Vec<String> {
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .map_or(default, |v| v.parse().expect(name))
    };
    let (seed, count) = (
        env("PARQOUR_RANDOM_SEED", seed),
        env("PARQOUR_RANDOM_COUNT", count),
    );
    let out = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gen_random.py"))
        .arg(dir)
        .arg(seed.to_string())
        .arg(count.to_string())
        .args((!mode.is_empty()).then_some(mode))
        .output()
        .expect("python3 is needed for the fixtures");
    assert!(out.status.success(), "tests/gen_random.py: {}", text(&out));
    (0..count)
        .map(|n| format!("random-{seed}-{n:04}"))
        .collect()
}

/// Whether `what`, which the tests of other Avro implementations need, is `present`. Under CI
/// (`CI` set), where `.ci/run` installs it (`install` says how), a missing one fails the test;
/// elsewhere the test says so and is skipped.
pub fn needed(present: bool, what: &str, install: &str) -> bool {
    if !present {
        assert!(
            std::env::var_os("CI").is_none(),
            "{what} is missing: `{install}` (.ci/run does it)"
        );
        eprintln!("skipped: {what} is missing ({install})");
    }
    present
}

/// Whether `program` can be started (see [`needed`]); it comes with the Debian `package`.
pub fn have_program(program: &str, package: &str) -> bool {
    let present = Command::new(program).arg("--version").output().is_ok();
    needed(
        present,
        &format!("`{program}`"),
        &format!("apt-get install {package}"),
    )
}

/// The jars the tests' Avro Java programs (tests/*.java) need, from Debian's libavro-java and
/// its dependencies; `None` (or a failure under CI, see [`needed`]) when `java` or a jar is
/// missing.
pub fn java_classpath() -> Option<String> {
    const JARS: [&str; 8] = [
        "avro",               // libavro-java (Avro 1.8.2)
        "jackson-core-asl",   // libjackson-json-java
        "jackson-mapper-asl", // libjackson-json-java
        "commons-compress",   // libcommons-compress-java: bzip2, xz
        "xz",                 // libxz-java
        "snappy-java",        // libsnappy-java, its native library from libsnappy-jni
        "slf4j-api",          // libslf4j-java
        "slf4j-nop",          // libslf4j-java: no "no SLF4J binding" warning
    ];
    let jars: Vec<_> = JARS
        .iter()
        .map(|j| Path::new("/usr/share/java").join(format!("{j}.jar")))
        .collect();
    if !have_program("java", "default-jre-headless") {
        return None;
    }
    let missing: Vec<_> = jars.iter().filter(|j| !j.is_file()).collect();
    if !needed(
        missing.is_empty(),
        &format!("{missing:?}"),
        "apt-get install libavro-java",
    ) {
        return None;
    }
    let jars: Vec<_> = jars.iter().map(|j| j.to_str().unwrap()).collect();
    Some(jars.join(":"))
}

/// Runs the single-file Java program `tests/<program>` (Avro Java, on `classpath` from
/// [`java_classpath`]) with `args`; fails the test unless it exits 0.
pub fn run_java<A: AsRef<std::ffi::OsStr>>(classpath: &str, program: &str, args: &[A]) -> Output {
    let out = Command::new("java")
        .arg("-cp")
        .arg(classpath)
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests")
                .join(program),
        )
        .args(args)
        .output()
        .expect("java is needed for the tests of Avro Java");
    assert!(out.status.success(), "tests/{program}: {}", text(&out));
    out
}
