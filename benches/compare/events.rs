//! Writes the benchmark dataset of `benches/compare.sh`: `parqour demo`'s ad-network events
//! (the same generator, schema and seed) as Avro container files of one codec, or of the demo's
//! rotating codecs with `--codec mixed`, in blocks of about 64 KB (as Java and Firehose write
//! them).
//!
//! ```sh
//! cargo run --release --example events -- --dir DIR --records 2000000 --files 16 --codec deflate
//! ```
//!
//! Files are `DIR/events-NNN.<codec>.avro`; each is written to a temporary name and renamed, so
//! an interrupted run leaves no truncated `.avro` file. Same arguments, same bytes. With
//! `--envelopes`, each event is wrapped in a `DataWrapper` envelope (data type `events`) and the
//! schema is written to `DIR/events.avsc`.

#![allow(missing_docs)]

use std::path::{Path, PathBuf};

use clap::Parser;
use parqour::avro::codec::Codec;
use rayon::prelude::*;

#[derive(Debug, Parser)]
#[command(about = "Write parqour demo events as Avro container files for benchmarks")]
struct Args {
    /// Folder to write the files into (created).
    #[arg(long)]
    dir: PathBuf,
    /// Events in all, spread evenly over the files.
    #[arg(long, default_value_t = 2_000_000)]
    records: u64,
    /// Number of files.
    #[arg(long, default_value_t = 16)]
    files: u64,
    /// deflate, snappy, zstandard, bzip2, xz, null, or mixed (deflate, snappy, zstandard, null
    /// in turn, as `parqour demo` writes them).
    #[arg(long, default_value = "deflate")]
    codec: String,
    /// Generator seed (the demo's by default).
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Write each event in a `DataWrapper` envelope of data type `events` (the producers'
    /// format), and the events' schema as `DIR/events.avsc`, to publish in a registry.
    #[arg(long)]
    envelopes: bool,
}

fn write_file(
    path: &Path,
    codec: Codec,
    first: u64,
    n: u64,
    seed: u64,
    envelopes: bool,
) -> std::io::Result<()> {
    let tmp = path.with_extension("avro.tmp");
    let file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
    let file = if envelopes {
        parqour::demo::write_event_envelopes(file, codec, first, n, seed, "events")?
    } else {
        parqour::demo::write_events(file, codec, first, n, seed)?
    };
    file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&tmp, path)
}

fn main() {
    let args = Args::parse();
    let codecs: Vec<Codec> = if args.codec == "mixed" {
        vec![Codec::Deflate, Codec::Snappy, Codec::Zstandard, Codec::Null]
    } else {
        match Codec::from_name(Some(&args.codec)) {
            Ok(c) => vec![c],
            Err(e) => {
                eprintln!("events: {e}");
                std::process::exit(64);
            }
        }
    };
    if let Err(e) = std::fs::create_dir_all(&args.dir) {
        eprintln!("events: {}: {e}", args.dir.display());
        std::process::exit(78);
    }
    if args.envelopes
        && let Err(e) = std::fs::write(args.dir.join("events.avsc"), parqour::demo::SCHEMA)
    {
        eprintln!("events: {}: {e}", args.dir.display());
        std::process::exit(74);
    }
    let files = args.files.max(1);
    let per_file = args.records.div_ceil(files);
    let result = (0..files).into_par_iter().try_for_each(|f| {
        let first = f * per_file;
        let n = per_file.min(args.records.saturating_sub(first));
        let codec = codecs[(f % codecs.len() as u64) as usize];
        let path = args
            .dir
            .join(format!("events-{f:03}.{}.avro", codec.name()));
        write_file(&path, codec, first, n, args.seed, args.envelopes)
            .map_err(|e| format!("{}: {e}", path.display()))
    });
    if let Err(e) = result {
        eprintln!("events: {e}");
        std::process::exit(74);
    }
}
