//! The conversion pipeline: input objects -> blocks -> Arrow batches -> Parquet files.
//!
//! ```text
//!  tokio: source readers ──blocks (byte budget)──▶ driver thread ──groups──▶ rayon: inflate+decode
//!                                                       ▲                           │
//!                                                       └──── batches, in order ◀───┘
//!                                                       │
//!                                                       └─▶ FileEncoder (columns on rayon) ─▶ sink
//! ```
//!
//! The driver groups consecutive blocks of one object (about [`ConvertOptions::group_bytes`]
//! compressed) and hands each group to the rayon pool, which inflates and decodes it into one
//! batch. Groups of every input are decoded concurrently, so one large file uses every core, and
//! results are consumed in submission order, so each input's row order is kept. Batches go to the
//! open Parquet file, whose columns are encoded in parallel; a file is closed once it reaches
//! [`EncodeOptions::file_bytes`], and when the schema changes between inputs.
//!
//! Failure: the first error stops the run. The file being written is aborted (nothing becomes
//! visible); files completed before stay. Errors name the object, block and byte offset.
//! What happens to an output location that already holds files is the caller's policy (`convert`
//! refuses or overwrites; `run` follows the commit protocol of [`crate::job`]).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use futures::StreamExt;
use object_store::path::Path;
use rayon::ThreadPool;
use tokio::runtime::Handle;

use crate::avro::codec::{Codec, CodecError};
use crate::avro::container::{Header, Limits, RawBlock};
use crate::decode::{BatchDecoder, DecodeError, Plan, PlanError, plan};
use crate::encode::{EncodeError, EncodeOptions, FileEncoder};
use crate::sink::{ObjectWriter, SinkError};
use crate::source::{InputObject, ObjectEvent, SourceError, SourceOptions, spawn_source};
use crate::storage::Location;

/// Errors of a conversion, each naming what it was about.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// Reading an input failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// An input's schema cannot be converted.
    #[error("{url}: {source}")]
    Plan {
        /// The input.
        url: String,
        /// Why.
        source: PlanError,
    },
    /// A block could not be inflated or decoded.
    #[error("{url}: block {block} at byte offset {offset}: {source}")]
    Block {
        /// The input.
        url: String,
        /// Block index in the input.
        block: u64,
        /// Byte offset of the block in the input.
        offset: u64,
        /// Why.
        source: BlockError,
    },
    /// Encoding an output file failed.
    #[error("{url}: {source}")]
    Encode {
        /// The output file.
        url: String,
        /// Why.
        source: EncodeError,
    },
    /// Publishing an output file failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// The output already holds Parquet files.
    #[error(
        "{url} already holds Parquet files (e.g. {example}); choose an empty output or pass --overwrite"
    )]
    OutputNotEmpty {
        /// The output.
        url: String,
        /// One file found.
        example: String,
    },
    /// Listing or cleaning the output failed.
    #[error("{url}: {source}")]
    Output {
        /// The output.
        url: String,
        /// The store's error.
        source: object_store::Error,
    },
    /// The thread pool could not be built, or a worker went away.
    #[error("worker pool: {0}")]
    Pool(String),
}

/// Why a block failed.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// Inflating.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// Decoding a record.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// How a conversion runs.
#[derive(Debug, Clone)]
pub struct ConvertOptions {
    /// How Parquet is encoded.
    pub encode: EncodeOptions,
    /// Worker threads for decoding and encoding (0: one per core).
    pub threads: usize,
    /// How inputs are read.
    pub source: SourceOptions,
    /// Compressed bytes of blocks decoded together into one batch.
    pub group_bytes: usize,
    /// Appended to output file names: `part-00000-<generation>.snappy.parquet`.
    pub generation: Option<String>,
    /// Show a progress line on stderr (for terminals).
    pub progress: bool,
}

impl Default for ConvertOptions {
    /// Every core, 1 MiB block groups, no generation; see [`EncodeOptions`] and
    /// [`SourceOptions`] for theirs.
    fn default() -> Self {
        Self {
            encode: EncodeOptions::default(),
            threads: 0,
            source: SourceOptions::default(),
            group_bytes: 1 << 20,
            generation: None,
            progress: false,
        }
    }
}

/// What one input held.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InputReport {
    /// The input.
    pub url: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its block codec.
    pub codec: String,
    /// Blocks read.
    pub blocks: u64,
    /// Records read.
    pub records: u64,
    /// SHA-256 of the writer schema's JSON text, hex.
    pub writer_schema_sha256: String,
}

/// One Parquet file written.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OutputFile {
    /// Its URL or path.
    pub url: String,
    /// Its path in the output store.
    #[serde(skip)]
    pub path: Path,
    /// Rows.
    pub rows: u64,
    /// Bytes.
    pub bytes: u64,
    /// CRC-32 (IEEE) of the file, hex.
    pub crc32: String,
    /// Row groups.
    pub row_groups: usize,
    /// The file's Arrow schema.
    #[serde(skip)]
    pub schema: SchemaRef,
}

/// What a conversion did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConvertReport {
    /// Inputs, in order.
    pub inputs: Vec<InputReport>,
    /// Files written, in order.
    pub outputs: Vec<OutputFile>,
    /// Records read (= rows written).
    pub records: u64,
    /// Input bytes.
    pub bytes_in: u64,
    /// Output bytes.
    pub bytes_out: u64,
    /// Wall time.
    #[serde(serialize_with = "secs")]
    pub elapsed: Duration,
    /// Warnings (fields left out, ...).
    pub warnings: Vec<String>,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Converts `inputs`, in order, to Parquet files under `output`.
pub async fn convert(
    inputs: Vec<InputObject>,
    output: &Location,
    options: &ConvertOptions,
) -> Result<ConvertReport, ConvertError> {
    let started = Instant::now();
    let threads = if options.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        options.threads
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("parqour-worker-{i}"))
        .build()
        .map_err(|e| ConvertError::Pool(e.to_string()))?;
    let inputs = Arc::new(inputs);
    let handle = Handle::current();
    let events = spawn_source(&handle, inputs.clone(), options.source);
    let driver = Driver {
        handle: handle.clone(),
        pool: Arc::new(pool),
        output: output.clone(),
        options: options.clone(),
        inputs: inputs.clone(),
        max_in_flight: threads * 2 + 2,
        plans: HashMap::new(),
        current: None,
        group: Vec::new(),
        group_bytes: 0,
        queue: VecDeque::new(),
        file: None,
        outputs: Vec::new(),
        reports: Vec::new(),
        warnings: Vec::new(),
        progress: options.progress.then(Progress::default),
    };
    let span = tracing::Span::current();
    let mut report = tokio::task::spawn_blocking(move || span.in_scope(|| driver.run(events)))
        .await
        .map_err(|e| ConvertError::Pool(e.to_string()))??;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// The `.parquet` objects under `output`, sorted.
pub async fn existing_parquet(output: &Location) -> Result<Vec<Path>, ConvertError> {
    if output.local.as_ref().is_some_and(|p| !p.exists()) {
        return Ok(Vec::new());
    }
    let prefix = (!output.path.as_ref().is_empty()).then_some(&output.path);
    let mut listing = output.store.list(prefix);
    let mut found = Vec::new();
    while let Some(meta) = listing.next().await {
        match meta {
            Ok(meta) if meta.location.as_ref().ends_with(".parquet") => found.push(meta.location),
            Ok(_) => {}
            Err(object_store::Error::NotFound { .. }) => break,
            Err(source) => {
                return Err(ConvertError::Output {
                    url: output.display.clone(),
                    source,
                });
            }
        }
    }
    found.sort();
    Ok(found)
}

/// The object whose blocks are arriving.
struct Current {
    object: usize,
    plan: Arc<Plan>,
    codec: Codec,
}

/// A group of blocks sent to the pool; its result arrives on `rx`.
struct Pending {
    schema: SchemaRef,
    rx: std_mpsc::Receiver<Result<Vec<RecordBatch>, ConvertError>>,
}

struct OpenFile {
    encoder: FileEncoder<ObjectWriter>,
    path: Path,
}

struct Driver {
    handle: Handle,
    pool: Arc<ThreadPool>,
    output: Location,
    options: ConvertOptions,
    inputs: Arc<Vec<InputObject>>,
    max_in_flight: usize,
    plans: HashMap<String, Arc<Plan>>,
    current: Option<Current>,
    group: Vec<(RawBlock, Option<tokio::sync::OwnedSemaphorePermit>)>,
    group_bytes: usize,
    queue: VecDeque<Pending>,
    file: Option<OpenFile>,
    outputs: Vec<OutputFile>,
    reports: Vec<InputReport>,
    warnings: Vec<String>,
    progress: Option<Progress>,
}

/// A progress line on stderr, redrawn at most four times a second.
#[derive(Default)]
struct Progress {
    records: u64,
    bytes: u64,
    shown: Option<Instant>,
}

impl Progress {
    fn add(&mut self, records: u64, bytes: u64, inputs: usize, files: usize) {
        self.records += records;
        self.bytes += bytes;
        if self
            .shown
            .is_some_and(|t| t.elapsed() < Duration::from_millis(250))
        {
            return;
        }
        self.shown = Some(Instant::now());
        eprint!(
            "\r  {} records, {:.1} MB of blocks read, {} input(s), {} file(s) written   ",
            self.records,
            self.bytes as f64 / 1e6,
            inputs,
            files
        );
    }

    fn done(&self) {
        if self.shown.is_some() {
            eprintln!();
        }
    }
}

impl Driver {
    fn run(
        mut self,
        mut events: tokio::sync::mpsc::Receiver<Result<crate::source::SourceEvent, SourceError>>,
    ) -> Result<ConvertReport, ConvertError> {
        let result = self.consume(&mut events);
        drop(events);
        if let Some(p) = &self.progress {
            p.done();
        }
        match result {
            Ok(()) => {
                let records = self.reports.iter().map(|r| r.records).sum();
                let bytes_in = self.reports.iter().map(|r| r.bytes).sum();
                let bytes_out = self.outputs.iter().map(|o| o.bytes).sum();
                Ok(ConvertReport {
                    inputs: self.reports,
                    outputs: self.outputs,
                    records,
                    bytes_in,
                    bytes_out,
                    elapsed: Duration::ZERO,
                    warnings: self.warnings,
                })
            }
            Err(e) => {
                // Abort the open upload; let decode tasks finish into closed channels.
                if let Some(f) = self.file.take() {
                    drop(f.encoder);
                }
                Err(e)
            }
        }
    }

    fn consume(
        &mut self,
        events: &mut tokio::sync::mpsc::Receiver<Result<crate::source::SourceEvent, SourceError>>,
    ) -> Result<(), ConvertError> {
        while let Some(event) = events.blocking_recv() {
            let event = event?;
            match event.event {
                ObjectEvent::Header(header) => self.start_object(event.object, &header)?,
                ObjectEvent::Block(block) => {
                    if let Some(report) = self.reports.last_mut() {
                        report.blocks += 1;
                        report.records += block.count;
                    }
                    if let Some(p) = &mut self.progress {
                        p.add(
                            block.count,
                            block.data.len() as u64,
                            self.reports.len(),
                            self.outputs.len(),
                        );
                    }
                    self.group_bytes += block.data.len();
                    self.group.push((block, event.permit));
                    if self.group_bytes >= self.options.group_bytes {
                        self.dispatch();
                    }
                    while self.queue.len() > self.max_in_flight {
                        self.write_next()?;
                    }
                }
                ObjectEvent::End { .. } => {
                    self.dispatch();
                    self.current = None;
                }
            }
        }
        self.dispatch();
        while !self.queue.is_empty() {
            self.write_next()?;
        }
        self.close_file()
    }

    fn start_object(&mut self, object: usize, header: &Header) -> Result<(), ConvertError> {
        let input = &self.inputs[object];
        let plan = match self.plans.get(&header.schema_json) {
            Some(p) => p.clone(),
            None => {
                let p = Arc::new(plan(&header.schema).map_err(|source| ConvertError::Plan {
                    url: input.url.clone(),
                    source,
                })?);
                for w in &p.warnings {
                    tracing::warn!(input = %input.url, "{w}");
                    self.warnings.push(format!("{}: {w}", input.url));
                }
                self.plans.insert(header.schema_json.clone(), p.clone());
                p
            }
        };
        self.reports.push(InputReport {
            url: input.url.clone(),
            bytes: input.size,
            codec: header.codec.name().to_string(),
            blocks: 0,
            records: 0,
            writer_schema_sha256: {
                use sha2::Digest;
                sha2::Sha256::digest(header.schema_json.as_bytes())
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect()
            },
        });
        self.current = Some(Current {
            object,
            plan,
            codec: header.codec,
        });
        Ok(())
    }

    /// Sends the blocks gathered so far to the pool as one group.
    fn dispatch(&mut self) {
        if self.group.is_empty() {
            return;
        }
        let Some(current) = &self.current else {
            return;
        };
        let blocks = std::mem::take(&mut self.group);
        self.group_bytes = 0;
        let (tx, rx) = std_mpsc::sync_channel(1);
        let plan = current.plan.clone();
        let codec = current.codec;
        let url = self.inputs[current.object].url.clone();
        let limits = self.options.source.limits;
        self.queue.push_back(Pending {
            schema: plan.schema.clone(),
            rx,
        });
        self.pool.spawn(move || {
            let result = decode_group(plan, codec, blocks, &url, limits);
            let _ = tx.send(result);
        });
    }

    /// Waits for the oldest group and writes its batches.
    fn write_next(&mut self) -> Result<(), ConvertError> {
        let Some(pending) = self.queue.pop_front() else {
            return Ok(());
        };
        let batches = pending
            .rx
            .recv()
            .map_err(|_| ConvertError::Pool("a decode task stopped".into()))??;
        for batch in batches {
            self.write_batch(&pending.schema, &batch)?;
        }
        Ok(())
    }

    fn write_batch(&mut self, schema: &SchemaRef, batch: &RecordBatch) -> Result<(), ConvertError> {
        if self
            .file
            .as_ref()
            .is_some_and(|f| f.encoder.schema() != schema)
        {
            tracing::info!("the schema changed between inputs: starting a new file");
            self.close_file()?;
        }
        if self.file.is_none() {
            self.open_file(schema)?;
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        file.encoder
            .write(batch)
            .map_err(|source| ConvertError::Encode {
                url: self.output.url_of(&file.path),
                source,
            })?;
        if file.encoder.is_full() {
            self.close_file()?;
        }
        Ok(())
    }

    fn open_file(&mut self, schema: &SchemaRef) -> Result<(), ConvertError> {
        let generation = match &self.options.generation {
            Some(g) => format!("-{g}"),
            None => String::new(),
        };
        let name = format!(
            "part-{:05}{generation}.{}.parquet",
            self.outputs.len(),
            self.options.encode.compression.extension()
        );
        let path = self.output.path.clone().join(name);
        let writer = ObjectWriter::create(&self.handle, self.output.store.clone(), path.clone());
        let encoder = FileEncoder::new(
            writer,
            schema.clone(),
            &self.options.encode,
            self.pool.clone(),
        )
        .map_err(|source| ConvertError::Encode {
            url: self.output.url_of(&path),
            source,
        })?;
        self.file = Some(OpenFile { encoder, path });
        Ok(())
    }

    fn close_file(&mut self) -> Result<(), ConvertError> {
        let Some(file) = self.file.take() else {
            return Ok(());
        };
        let url = self.output.url_of(&file.path);
        let schema = file.encoder.schema().clone();
        let (writer, summary) = file
            .encoder
            .finish()
            .map_err(|source| ConvertError::Encode {
                url: url.clone(),
                source,
            })?;
        let written = writer.finish()?;
        tracing::info!(file = %url, rows = summary.rows, bytes = written.bytes, "wrote");
        self.outputs.push(OutputFile {
            url,
            path: file.path,
            rows: summary.rows,
            bytes: written.bytes,
            crc32: format!("{:08x}", written.crc32),
            row_groups: summary.row_groups,
            schema,
        });
        Ok(())
    }
}

thread_local! {
    /// Inflate buffer, reused by each worker across blocks.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Inflates and decodes a group of consecutive blocks of one input into batches (usually one;
/// more when the values pass 256 MiB, to keep offsets within Arrow's 32-bit range). The blocks'
/// budget permits are released when the group is dropped, after decoding.
fn decode_group(
    plan: Arc<Plan>,
    codec: Codec,
    blocks: Vec<(RawBlock, Option<tokio::sync::OwnedSemaphorePermit>)>,
    url: &str,
    limits: Limits,
) -> Result<Vec<RecordBatch>, ConvertError> {
    const MAX_BATCH_BYTES: usize = 256 << 20;
    let mut decoder = BatchDecoder::new(plan);
    let mut out = Vec::new();
    SCRATCH.with_borrow_mut(|scratch| {
        for (block, _permit) in &blocks {
            let located = |source: BlockError| ConvertError::Block {
                url: url.to_string(),
                block: block.index,
                offset: block.offset,
                source,
            };
            let data: &[u8] = if codec == Codec::Null {
                &block.data
            } else {
                codec
                    .decompress(&block.data, scratch, limits.max_block_bytes)
                    .map_err(|e| located(e.into()))?;
                scratch
            };
            decoder
                .decode_block(data, block.count)
                .map_err(|e| located(e.into()))?;
            if decoder.byte_size() >= MAX_BATCH_BYTES {
                out.extend(decoder.flush().map_err(|e| located(e.into()))?);
            }
        }
        if let Some((last, _)) = blocks.last() {
            out.extend(decoder.flush().map_err(|e| ConvertError::Block {
                url: url.to_string(),
                block: last.index,
                offset: last.offset,
                source: e.into(),
            })?);
        }
        Ok(out)
    })
}
