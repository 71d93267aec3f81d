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
