//! Damaged Avro files: thousands of seeded mutations (flipped bits, overwritten bytes, varint
//! bombs, truncations, cut or doubled ranges) of the Arrow project's test corpus, of demo
//! files in every codec and of files of random schemas (tests/gen_random.py), read the way
//! `convert` reads them (the header and blocks split from chunks as they arrive, each block
//! inflated and decoded) and the decoded batches encoded to Parquet. Whatever the damage: no
//! panic, a bounded amount of memory, and no record lost silently (a file cut inside a block is
//! an error, not a shorter file).

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parqour::avro::codec::Codec;
use parqour::avro::container::{BlockSplitter, Event, Limits};
use parqour::decode::{BatchDecoder, plan};
use parqour::encode::{EncodeOptions, FileEncoder};

/// The demo's generator (SplitMix64), with `usize` bounds.
struct Rng(parqour::demo::Rng);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(parqour::demo::Rng::new(seed))
    }

    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn below(&mut self, n: usize) -> usize {
        self.0.below(n as u64) as usize
    }
}

/// Small limits, so that a damaged length cannot make a test allocate much.
const LIMITS: Limits = Limits {
    max_header_bytes: 1 << 20,
    max_block_bytes: 16 << 20,
};

/// What reading a file gave: records decoded, or the error's text.
fn read(data: &[u8], rng: &mut Rng, encode: bool) -> Result<u64, String> {
    let mut splitter = BlockSplitter::new(LIMITS);
    let mut decoder: Option<BatchDecoder> = None;
    let mut codec = Codec::Null;
    let mut scratch = Vec::new();
    let mut records = 0;
    let mut batches = Vec::new();
    let mut at = 0;
    loop {
        // Bytes arrive in chunks of any size, as from a stream.
        let end = if at < data.len() {
            (at + 1 + rng.below(4096)).min(data.len())
        } else {
            at
        };
        splitter.push_slice(&data[at..end]);
        let done = end == at;
        at = end;
        while let Some(event) = splitter.next_event().map_err(|e| e.to_string())? {
            match event {
                Event::Header(h) => {
                    codec = h.codec;
                    let p = plan(&h.schema).map_err(|e| e.to_string())?;
                    decoder = Some(BatchDecoder::new(Arc::new(p)));
                }
                Event::Block(b) => {
                    let d = decoder.as_mut().ok_or("a block before the header")?;
                    let inflated: &[u8] = if codec == Codec::Null {
                        &b.data
                    } else {
                        codec
                            .decompress(&b.data, &mut scratch, LIMITS.max_block_bytes)
                            .map_err(|e| e.to_string())?;
                        &scratch
                    };
                    d.decode_block(inflated, b.count)
                        .map_err(|e| e.to_string())?;
                    if let Some(batch) = d.flush().map_err(|e| e.to_string())? {
                        records += batch.num_rows() as u64;
                        if encode {
                            batches.push(batch);
                        }
                    }
                }
            }
        }
        if done {
            break;
        }
    }
    splitter.finish().map_err(|e| e.to_string())?;
    if let Some(first) = batches.first() {
        let pool = Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(2)
                .build()
                .map_err(|e| e.to_string())?,
        );
        let mut enc =
            FileEncoder::for_batch(Vec::new(), first, &[], &EncodeOptions::default(), pool)
                .map_err(|e| e.to_string())?;
        for b in &batches {
            enc.write(b).map_err(|e| e.to_string())?;
        }
        let (_, summary) = enc.finish().map_err(|e| e.to_string())?;
        assert_eq!(summary.rows, records, "rows encoded");
    }
    Ok(records)
}

/// Byte offsets where the blocks of an intact file end (after their sync markers).
fn block_ends(data: &[u8]) -> Vec<usize> {
    let mut splitter = BlockSplitter::new(LIMITS);
    splitter.push_slice(data);
    let mut ends = Vec::new();
    let mut header_end = None;
    let mut starts = Vec::new();
    while let Some(event) = splitter.next_event().expect("intact file") {
        match event {
            Event::Header(_) => header_end = Some(data.len() - splitter.buffered()),
            Event::Block(b) => starts.push(b.offset as usize),
        }
    }
    ends.extend(header_end);
    // A block ends where the next one starts, the last one at the end of the file.
    ends.extend(starts.iter().skip(1).copied());
    if !starts.is_empty() {
        ends.push(data.len());
    }
    ends
}

fn mutate(orig: &[u8], rng: &mut Rng) -> (Vec<u8>, Option<usize>) {
    let mut d = orig.to_vec();
    let n = d.len();
    let mut cut = None;
    match rng.below(6) {
        0 => {
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(n);
                d[i] ^= 1 << rng.below(8);
            }
        }
        1 => {
            let i = rng.below(n);
            d.truncate(i);
            cut = Some(i);
        }
        2 => {
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(n);
                d[i] = rng.next() as u8;
            }
        }
        3 => {
            // Varint bombs: continuation bytes and extreme values.
            let i = rng.below(n);
            for k in 0..1 + rng.below(10) {
                if let Some(b) = d.get_mut(i + k) {
                    *b = [0xff, 0x7f, 0x80, 0x00, 0xfe][rng.below(5)];
                }
            }
        }
        4 => {
            let i = rng.below(n);
            let len = 1 + rng.below(64);
            d.drain(i..(i + len).min(n));
        }
        _ => {
            let i = rng.below(n);
            let len = 1 + rng.below(64);
            let piece = d[i..(i + len).min(n)].to_vec();
            d.splice(i..i, piece);
        }
    }
    (d, cut)
}

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/avro");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| rd.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.sort();
    let mut out: Vec<(String, Vec<u8>)> = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "avro"))
        .map(|p| (p.display().to_string(), std::fs::read(p).unwrap()))
        .collect();
    for codec in [Codec::Null, Codec::Deflate, Codec::Snappy, Codec::Zstandard] {
        let data = parqour::demo::write_events(Vec::new(), codec, 0, 700, 3).unwrap();
        out.push((format!("demo events, {codec:?}"), data));
    }
    out.extend(random_files());
    out
}

/// Files of random schemas (tests/gen_random.py): unions of several branches, maps, nested
/// arrays and every logical type, for damage in places the corpus does not have them.
fn random_files() -> Vec<(String, Vec<u8>)> {
    let tmp = tempfile::tempdir().unwrap();
    common::gen_random(tmp.path(), 5, 24, false)
        .iter()
        .map(|name| tmp.path().join(format!("{name}.avro")))
        .map(|p| (p.display().to_string(), std::fs::read(p).unwrap()))
        // A file of one block has few places to damage; one of no records, none.
        .filter(|(_, data)| data.len() > 1000)
        .collect()
}

#[test]
fn damaged_files_give_errors_not_panics_and_lose_no_record_silently() {
    let files = corpus();
    assert!(files.len() >= 4);
    let demo = parqour::demo::write_events(Vec::new(), Codec::Null, 0, 10, 3).unwrap();
    assert_eq!(
        read(&demo, &mut Rng::new(1), true),
        Ok(10),
        "an intact file reads whole"
    );
    let mut rng = Rng::new(2026);
    let (mut ok, mut errors) = (0, 0);
    for (name, orig) in &files {
        // A few corpus files are refused whole (a decimal wider than Athena's): their
        // mutations must still fail cleanly.
        let intact = read(orig, &mut rng, true).ok();
        let ends = block_ends(orig);
        let rounds = if name.starts_with("demo") { 300 } else { 60 };
        for round in 0..rounds {
            let (damaged, cut) = mutate(orig, &mut rng);
            let encode = round % 10 == 0;
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                read(&damaged, &mut rng, encode)
            }));
            let result = result.unwrap_or_else(|_| {
                let path = std::env::temp_dir().join("parqour-mutation-panic.avro");
                std::fs::write(&path, &damaged).unwrap();
                panic!(
                    "{name}, round {round}: panicked (the input: {})",
                    path.display()
                )
            });
            match (result, cut) {
                (Ok(records), Some(at)) => {
                    // A cut file reads only when cut between blocks, and then holds fewer
                    // records; or where only zero bytes follow the last block, which end a
                    // file as padding (a zero byte starts a block of no records, if any).
                    let last = ends.iter().copied().filter(|e| *e <= at).max().unwrap_or(0);
                    assert!(
                        ends.contains(&at) || orig[last..at].iter().all(|b| *b == 0),
                        "{name}: cut at byte {at}, inside a block, read as {records} records"
                    );
                    assert!(intact.is_some_and(|n| records <= n));
                    ok += 1;
                }
                (Ok(_), None) => ok += 1,
                (Err(_), _) => errors += 1,
            }
        }
    }
    eprintln!("{ok} damaged files read, {errors} failed");
    // The mutations reach past the header: some files still read, most fail.
    assert!(ok > 0 && errors > ok, "{ok} read, {errors} failed");
}
