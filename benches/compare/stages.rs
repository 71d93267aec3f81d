//! Where parqour's cpu time goes, stage by stage and column by column, on one thread.
//!
//! ```sh
//! cargo run --release --example stages -- DIR_OR_FILES... [--max-records N]
//! ```
//!
//! Runs the stages of `parqour convert` one after the other on one thread, through the same
//! library calls, and measures each with the thread's cpu clock (so other processes on the machine
//! do not inflate it): read the files, split them into blocks, inflate, decode Avro into Arrow
//! batches (1 MiB of compressed blocks per batch, as `convert` groups them), encode each column
//! and write the bytes to a file.
//!
//! Each top-level column is encoded by parqour's own encoder (`FileEncoder`, made for its first
//! batch as `convert` makes it, pages spilled as `convert` spills them) on a pool of one thread of
//! its own, three times: with `convert`'s options (snappy, dictionaries), without compression
//! (the difference is snappy) and without dictionaries (the difference is what trying
//! dictionaries costs or saves, and the size they save). uuid columns (36-character strings) are
//! also encoded as 16-byte fixed binaries, as arrow-avro and DataFusion write them, to show what
//! that representation would cost. A column's encode time is its pool thread's cpu clock plus
//! the calling thread's in `write` and `finish`: writing the spilled pages is in it, reading them
//! back into the file (on the encoder's own row-group thread) is not; "write output" writes as
//! many bytes to a file. The sum is what the stages need on one core; what `convert` spends
//! beyond it goes to threads, queues and copies.
//!
//! Holds one input file's batches at a time.

#![allow(missing_docs)]

use std::error::Error;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arrow_array::{Array, ArrayRef, FixedSizeBinaryArray, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parqour::avro::codec::Codec;
use parqour::avro::container::{Limits, split_all};
use parqour::decode::{BatchDecoder, plan};
use parqour::encode::{Codec as PageCodec, EncodeOptions, FileEncoder};
use parquet::basic::Compression;
use parquet::schema::types::ColumnPath;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// Compressed bytes of blocks decoded into one batch (`ConvertOptions::group_bytes`).
const GROUP_BYTES: usize = 1 << 20;

/// Cpu time of the calling thread.
fn thread_cpu() -> Duration {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes one timespec into the valid, exclusive `ts`.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        if rc == 0 {
            return Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
        }
    }
    // Elsewhere: wall time since the first call (includes waiting; noisier).
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed()
}

fn timed<T>(acc: &mut Duration, f: impl FnOnce() -> T) -> T {
    let start = thread_cpu();
    let out = f();
    *acc += thread_cpu() - start;
    out
}

/// A `Write` that counts bytes and keeps none.
#[derive(Debug, Default)]
struct Counter(u64);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One way of encoding one column: parqour's encoder on a pool of one thread of its own, fed
/// batch by batch; a new file once one is full, as `convert` starts one.
struct Variant {
    schema: SchemaRef,
    options: EncodeOptions,
    pool: Arc<rayon::ThreadPool>,
    encoder: Option<FileEncoder<Counter>>,
    /// Columns the next file goes without a dictionary for (those of the file before).
    known: Vec<ColumnPath>,
    /// Cpu of the calling thread in `write` and `finish`; the pool thread's is added by
    /// `finish`.
    cpu: Duration,
    bytes: u64,
}

impl Variant {
    fn new(field: &Field, options: EncodeOptions) -> Result<Self> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .thread_name(|_| "stages-encode".into())
            .build()?;
        Ok(Self {
            schema: Arc::new(Schema::new(vec![field.clone()])),
            options,
            pool: Arc::new(pool),
            encoder: None,
            known: Vec::new(),
            cpu: Duration::ZERO,
            bytes: 0,
        })
    }

    fn write(&mut self, column: ArrayRef) -> Result<()> {
        let batch = RecordBatch::try_new(self.schema.clone(), vec![column])?;
        let mut cpu = Duration::ZERO;
        let out = timed(&mut cpu, || -> Result<()> {
            let encoder = match &mut self.encoder {
                Some(e) => e,
                None => self.encoder.insert(FileEncoder::for_batch(
                    Counter::default(),
                    &batch,
                    &self.known,
                    &self.options,
                    self.pool.clone(),
                )?),
            };
            encoder.write(&batch)?;
            if encoder.is_full() {
                self.close_file()?;
            }
            Ok(())
        });
        self.cpu += cpu;
        out
    }

    fn close_file(&mut self) -> Result<()> {
        if let Some(encoder) = self.encoder.take() {
            self.known = encoder.plain_columns();
            let (counter, _) = encoder.finish()?;
            self.bytes += counter.0;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        let mut cpu = Duration::ZERO;
        timed(&mut cpu, || self.close_file())?;
        self.cpu += cpu + self.pool.install(thread_cpu);
        Ok(())
    }
}

/// Encoding costs of one top-level column.
struct ColumnCost {
    name: String,
    arrow_bytes: u64,
    default: Variant,
    uncompressed: Variant,
    no_dictionary: Variant,
    /// uuid strings as 16-byte fixed binaries (only for uuid string columns).
    as_fixed16: Option<Variant>,
}

fn options(compression: Compression, dictionary: bool) -> EncodeOptions {
    EncodeOptions {
        compression: PageCodec(compression),
        dictionary,
        ..EncodeOptions::default()
    }
}

fn is_uuid_strings(column: &ArrayRef) -> bool {
    let Some(s) = column.as_any().downcast_ref::<StringArray>() else {
        return false;
    };
    s.len() > 0
        && s.iter().take(64).flatten().all(|v| {
            let b = v.as_bytes();
            b.len() == 36 && [8, 13, 18, 23].iter().all(|&i| b[i] == b'-')
        })
}

fn uuid_to_fixed16(column: &ArrayRef) -> Result<ArrayRef> {
    let s = column
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or("not strings")?;
    let values = s.iter().map(|v| {
        v.and_then(|v| {
            let hex: Vec<u8> = v.bytes().filter(|&b| b != b'-').collect();
            let mut out = [0u8; 16];
            for (i, pair) in hex.chunks(2).enumerate().take(16) {
                let text = std::str::from_utf8(pair).ok()?;
                out[i] = u8::from_str_radix(text, 16).ok()?;
            }
            Some(out)
        })
    });
    Ok(Arc::new(
        FixedSizeBinaryArray::try_from_sparse_iter_with_size(values, 16)?,
    ))
}

#[derive(Default)]
struct Stages {
    read: Duration,
    split: Duration,
    inflate: Duration,
    decode: Duration,
    write: Duration,
    bytes_in: u64,
    inflated: u64,
    records: u64,
    columns: Vec<ColumnCost>,
    schema: Option<SchemaRef>,
}

impl Stages {
    fn file(&mut self, path: &Path, max_records: u64) -> Result<()> {
        let data = timed(&mut self.read, || std::fs::read(path))?;
        self.bytes_in += data.len() as u64;
        let (header, blocks) = timed(&mut self.split, || split_all(&data, Limits::default()))?;
        let plan = Arc::new(plan(&header.schema)?);
        let mut decoder = BatchDecoder::new(plan);
        let mut scratch = Vec::new();
        let mut batches = Vec::new();
        let mut group = 0;
        for block in &blocks {
            if self.records >= max_records {
                break;
            }
            let inflated: &[u8] = if header.codec == Codec::Null {
                &block.data
            } else {
                timed(&mut self.inflate, || {
                    header.codec.decompress(&block.data, &mut scratch, 1 << 29)
                })?;
                &scratch
            };
            self.inflated += inflated.len() as u64;
            self.records += block.count;
            timed(&mut self.decode, || {
                decoder.decode_block(inflated, block.count)
            })?;
            group += block.data.len();
            if group >= GROUP_BYTES {
                group = 0;
                batches.extend(timed(&mut self.decode, || decoder.flush())?);
            }
        }
        batches.extend(timed(&mut self.decode, || decoder.flush())?);
        for batch in &batches {
            self.encode(batch)?;
        }
        Ok(())
    }

    fn encode(&mut self, batch: &RecordBatch) -> Result<()> {
        if self.schema.is_none() {
            let schema = batch.schema();
            for (field, column) in schema.fields().iter().zip(batch.columns()) {
                let as_fixed16 = if is_uuid_strings(column) {
                    let f = Field::new(field.name(), DataType::FixedSizeBinary(16), true);
                    Some(Variant::new(&f, options(Compression::SNAPPY, true))?)
                } else {
                    None
                };
                self.columns.push(ColumnCost {
                    name: field.name().clone(),
                    arrow_bytes: 0,
                    default: Variant::new(field, EncodeOptions::default())?,
                    uncompressed: Variant::new(field, options(Compression::UNCOMPRESSED, true))?,
                    no_dictionary: Variant::new(field, options(Compression::SNAPPY, false))?,
                    as_fixed16,
                });
            }
            self.schema = Some(schema);
        }
        let schema = self.schema.clone().ok_or("no schema")?;
        if batch.schema().fields() != schema.fields() {
            return Err("inputs with different schemas".into());
        }
        for (column, cost) in batch.columns().iter().zip(&mut self.columns) {
            cost.arrow_bytes += column.to_data().get_slice_memory_size()? as u64;
            cost.default.write(column.clone())?;
            cost.uncompressed.write(column.clone())?;
            cost.no_dictionary.write(column.clone())?;
            if let Some(v) = &mut cost.as_fixed16 {
                v.write(uuid_to_fixed16(column)?)?;
            }
        }
        Ok(())
    }

    /// Writes as many bytes as the default encoding produced to a file, in writes of
    /// [`parqour::sink::WRITE_CHUNK`] (as the sink writes to the local store), and syncs
    /// nothing: what `convert` pays to hand its output to the OS.
    fn write_output(&mut self) -> Result<u64> {
        let total: u64 = self.columns.iter().map(|c| c.default.bytes).sum();
        let chunk = vec![0x5a_u8; parqour::sink::WRITE_CHUNK];
        let tmp = tempfile_path();
        let mut file = std::fs::File::create(&tmp)?;
        let mut left = total;
        timed(&mut self.write, || -> std::io::Result<()> {
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                file.write_all(&chunk[..n])?;
                left -= n as u64;
            }
            Ok(())
        })?;
        drop(file);
        std::fs::remove_file(&tmp)?;
        Ok(total)
    }
}

fn tempfile_path() -> PathBuf {
    std::env::temp_dir().join(format!("parqour-stages-{}.bin", std::process::id()))
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn report(s: &mut Stages) -> Result<()> {
    for c in &mut s.columns {
        c.default.finish()?;
        c.uncompressed.finish()?;
        c.no_dictionary.finish()?;
        if let Some(v) = &mut c.as_fixed16 {
            v.finish()?;
        }
    }
    let out_bytes = s.write_output()?;
    let sum = |f: &dyn Fn(&ColumnCost) -> Duration| -> Duration { s.columns.iter().map(f).sum() };
    let encode = sum(&|c| c.default.cpu);
    let plain = sum(&|c| c.uncompressed.cpu);
    let snappy = encode.saturating_sub(plain);
    let total = s.read + s.split + s.inflate + s.decode + encode + s.write;
    let pct = |d: Duration| 100.0 * secs(d) / secs(total).max(1e-9);
    let mb = |b: u64| b as f64 / 1e6;
    println!(
        "{} records, {:.1} MB of Avro ({:.1} MB inflated) -> {:.1} MB of snappy Parquet\n",
        s.records,
        mb(s.bytes_in),
        mb(s.inflated),
        mb(out_bytes)
    );
    println!(
        "{:<44} {:>7} {:>6} {:>9}",
        "stage (one thread, cpu clock)", "cpu s", "%", "MB/s in"
    );
    let row = |name: &str, d: Duration| {
        println!(
            "{name:<44} {:>7.3} {:>5.1}% {:>9.0}",
            secs(d),
            pct(d),
            mb(s.bytes_in) / secs(d).max(1e-9)
        );
    };
    row("read files (page cache)", s.read);
    row("split blocks, check sync markers", s.split);
    row("inflate", s.inflate);
    row("decode Avro -> Arrow", s.decode);
    row("encode Parquet, all of it:", encode);
    row("  snappy (encode - uncompressed encode)", snappy);
    row("  levels, values, dictionaries, statistics, pages", plain);
    row("write output to a file (1 MiB writes)", s.write);
    row("total", total);
    println!(
        "\n{} records per cpu-second on one core for the stages alone\n",
        (s.records as f64 / secs(total).max(1e-9)) as u64
    );

    println!(
        "{:<14} {:>8} {:>8} {:>8} {:>8} {:>9} {:>8}  per column: encode cpu s, sizes MB",
        "column", "Arrow MB", "out MB", "encode", "snappy", "no-dict s", "no-dict"
    );
    let mut cols: Vec<&ColumnCost> = s.columns.iter().collect();
    cols.sort_by_key(|c| std::cmp::Reverse(c.default.cpu));
    for c in cols {
        println!(
            "{:<14} {:>8.1} {:>8.1} {:>8.3} {:>8.3} {:>9.3} {:>8.1}",
            c.name,
            mb(c.arrow_bytes),
            mb(c.default.bytes),
            secs(c.default.cpu),
            secs(c.default.cpu.saturating_sub(c.uncompressed.cpu)),
            secs(c.no_dictionary.cpu),
            mb(c.no_dictionary.bytes),
        );
    }
    for c in s.columns.iter().filter(|c| c.as_fixed16.is_some()) {
        if let Some(v) = &c.as_fixed16 {
            println!(
                "what-if: {} as FIXED_LEN_BYTE_ARRAY(16) instead of a 36-character string: {:.1} MB, {:.3} cpu s (now {:.1} MB, {:.3} s)",
                c.name,
                mb(v.bytes),
                secs(v.cpu),
                mb(c.default.bytes),
                secs(c.default.cpu)
            );
        }
    }
    Ok(())
}

fn main() {
    let mut inputs = Vec::new();
    let mut max_records = u64::MAX;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--max-records" {
            match args.next().and_then(|n| n.parse().ok()) {
                Some(n) => max_records = n,
                None => {
                    eprintln!("stages: --max-records needs a number");
                    std::process::exit(64);
                }
            }
        } else if a == "-h" || a == "--help" {
            eprintln!("usage: stages DIR_OR_FILE... [--max-records N]");
            return;
        } else {
            let p = PathBuf::from(a);
            if p.is_dir() {
                let mut found: Vec<PathBuf> = match std::fs::read_dir(&p) {
                    Ok(rd) => rd
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| p.extension().is_some_and(|e| e == "avro"))
                        .collect(),
                    Err(e) => {
                        eprintln!("stages: {}: {e}", p.display());
                        std::process::exit(65);
                    }
                };
                found.sort();
                inputs.extend(found);
            } else {
                inputs.push(p);
            }
        }
    }
    if inputs.is_empty() {
        eprintln!("usage: stages DIR_OR_FILE... [--max-records N]");
        std::process::exit(64);
    }
    let mut stages = Stages::default();
    for path in &inputs {
        if stages.records >= max_records {
            break;
        }
        if let Err(e) = stages.file(path, max_records) {
            eprintln!("stages: {}: {e}", path.display());
            std::process::exit(65);
        }
    }
    if let Err(e) = report(&mut stages) {
        eprintln!("stages: {e}");
        std::process::exit(70);
    }
}
