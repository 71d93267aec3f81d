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
//! The driver groups consecutive blocks (about [`ConvertOptions::group_bytes`] compressed: of one
//! object, or of several consecutive small ones read into the same decoders) and hands each
//! group to the rayon pool, which inflates and decodes it into one batch. Groups of every input are decoded concurrently, so one large file uses every core, and
//! results are consumed in submission order, so each input's row order is kept. Batches go to the
//! open Parquet file, whose columns are encoded in parallel; a file is closed once it reaches
//! [`EncodeOptions::file_bytes`]. Inputs of another schema go to a file of their own, open
//! beside the first (up to four, one per schema).
//!
//! Records of several writer schemas: each object is read as a plain container file (its header
//! schema), a container file of `DataWrapper` envelopes, or a raw concatenation of envelopes; an
//! envelope's record is decoded with its writer schema (from the registry) resolved to its data
//! type's reader schema ([`crate::schemas`]). Each data type goes to its own table
//! ([`Destination`]), all its records into one Parquet schema.
//!
//! Failure: with a dead-letter place ([`ConvertOptions::dead_letter`]), what cannot be converted
//! (a block that does not inflate or decode, an envelope with an unknown fingerprint, a corrupt
//! or unresolvable datum, the rest of a raw stream whose framing broke) is set aside there byte
//! for byte ([`crate::deadletter`]) and the run goes on; if more than
//! [`ConvertOptions::max_dead_letter_fraction`] of the records were set aside the run fails and
//! its files are deleted. Without one, the first such error stops the run. The file being written
//! is then aborted (nothing becomes visible) and the files completed before are deleted: a run
//! that fails publishes nothing. Errors name the object, block and byte offset, and the record
//! within the block.
//! What happens to a table that already holds files is the caller's policy
//! ([`ConvertOptions::existing`]: `convert` refuses or replaces them; `run` follows the commit
//! protocol of [`crate::job`]).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use rayon::ThreadPool;
use tokio::runtime::Handle;

use crate::avro::codec::{Codec, CodecError};
use crate::avro::container::{Header, Limits, RawBlock};
use crate::avro::cursor::Cursor;
use crate::avro::envelope::{EnvelopeError, EnvelopeLayout};
use crate::avro::writer::{ContainerWriter, Datum};
use crate::deadletter::{self, DeadLetter, DeadLetterReport, Kind};
use crate::decode::{
    BatchDecoder, BlockPosition, DecodeError, MAX_SET_ASIDE_PER_BLOCK, Plan, PlanError, plan_with,
};
use crate::encode::{EncodeError, EncodeOptions, FileEncoder};
use crate::schemas::SchemaSet;
use crate::sink::{ObjectWriter, Parts, SinkError};
use crate::source::{InputObject, ObjectEvent, SourceError, SourceOptions, spawn_source};
use crate::storage::{Location, StorageError};

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
    /// The input's writer schema cannot be read as the reader schema (or the reader schema
    /// cannot be converted): no block of it can be.
    #[error("{url}: {message}")]
    Unreadable {
        /// The input.
        url: String,
        /// Why.
        message: Arc<str>,
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
    /// A raw envelope stream whose framing broke (with no dead-letter place to set it aside).
    #[error("{url}: byte offset {offset}: {message}")]
    Framing {
        /// The input.
        url: String,
        /// Where the framing broke.
        offset: u64,
        /// Why.
        message: String,
    },
    /// Envelopes without a registry to look their schemas up in.
    #[error(
        "{url}: the records are DataWrapper envelopes; pass --registry (or `registry` in the manifest)"
    )]
    NoRegistry {
        /// The input.
        url: String,
    },
    /// Records of several data types for an output that holds one table.
    #[error(
        "records of data types `{first}` and `{second}`, but the output {url} holds one table: put a {{data_type}} placeholder in it, or name the data type(s) to convert"
    )]
    DataTypes {
        /// The output.
        url: String,
        /// One data type.
        first: String,
        /// Another.
        second: String,
    },
    /// The output location of a data type could not be resolved or made.
    #[error("{}{source}", of_data_type(data_type))]
    Destination {
        /// The data type (empty for records of none).
        data_type: String,
        /// Why.
        source: StorageError,
    },
    /// Too much went to the dead-letter place.
    #[error(
        "{dead} of {records} records ({:.4}%) could not be converted, more than the allowed {:.4}%; they are in {url}; nothing was committed",
        100.0 * *dead as f64 / (*records).max(1) as f64,
        100.0 * max_fraction
    )]
    DeadLetterBudget {
        /// Records set aside.
        dead: u64,
        /// Records read.
        records: u64,
        /// The allowed fraction.
        max_fraction: f64,
        /// The dead-letter file.
        url: String,
    },
    /// Writing the dead-letter file failed.
    #[error("dead-letter file {url}: {message}")]
    DeadLetter {
        /// The file.
        url: String,
        /// Why.
        message: String,
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
    /// The run succeeded, but earlier files it replaces could not be deleted: they are still
    /// beside the new ones.
    #[error(
        "{left} earlier file(s) could not be deleted, though this run's files replace them: the output holds both (first: {url}: {source})"
    )]
    Replace {
        /// The first earlier file not deleted.
        url: String,
        /// Its store's error.
        source: object_store::Error,
        /// Earlier files not deleted.
        left: usize,
    },
    /// The run failed, and files it had published could not be deleted.
    #[error(
        "{error}; {left} file(s) this run published could not be deleted and are still in the output (e.g. {example})"
    )]
    Leftovers {
        /// Why the run failed.
        error: Box<ConvertError>,
        /// Files left.
        left: usize,
        /// One of them.
        example: String,
    },
    /// A finished file was not published because a file closed before it failed (its
    /// upload is aborted, so that a failed run leaves no file after a missing one).
    #[error("{url}: not published: a file before it failed")]
    NotPublished {
        /// The file.
        url: String,
    },
    /// The thread pool could not be built, or a worker went away.
    #[error("worker pool: {0}")]
    Pool(String),
    /// Small batches of one schema could not be joined into one batch.
    #[error("{url}: joining small batches: {source}")]
    Join {
        /// The output.
        url: String,
        /// Arrow's error.
        source: arrow_schema::ArrowError,
    },
}

/// How [`ConvertError::Destination`] names the output: by its data type, if it has one.
fn of_data_type(data_type: &str) -> String {
    if data_type.is_empty() {
        "output: ".to_string()
    } else {
        format!("output of data type `{data_type}`: ")
    }
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
    /// The block's records cannot be read as the reader schema.
    #[error("{0}")]
    Unreadable(Arc<str>),
    /// One envelope of the block.
    #[error(transparent)]
    Record(Box<RecordFailure>),
}

/// An envelope that could not be converted.
#[derive(Debug, thiserror::Error)]
#[error("record {record} (byte {offset} of the block's records){}: {message}", describe_envelope(data_type.as_deref(), *fingerprint))]
pub struct RecordFailure {
    /// Record index in the block.
    pub record: u64,
    /// Byte offset in the block's (decompressed) records.
    pub offset: usize,
    /// Its data type, if read.
    pub data_type: Option<String>,
    /// Its fingerprint, if read.
    pub fingerprint: Option<i64>,
    /// Why.
    pub message: String,
}

fn describe_envelope(data_type: Option<&str>, fingerprint: Option<i64>) -> String {
    match (data_type, fingerprint) {
        (Some(t), Some(f)) => format!(", data type `{t}`, schema fingerprint {f}"),
        _ => String::new(),
    }
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
    /// Decoded bytes after which a group hands its remaining blocks back (they go on in the
    /// next batch): bounds what a group holds when blocks inflate far more than usual (a
    /// megabyte of deflated zeros is a gigabyte). The worker threads and one more group each
    /// hold up to this much at a time.
    pub group_decoded_bytes: usize,
    /// Appended to output file names: `part-00000-<generation>.snappy.parquet` (the partition
    /// job passes its file tag, [`crate::job::FileTag`]), and names the dead-letter file.
    pub generation: Option<String>,
    /// Show a progress line on stderr (for terminals).
    pub progress: bool,
    /// Reader schemas, registry and data types.
    pub schemas: Arc<SchemaSet>,
    /// Where what cannot be converted goes (a folder; the file is named after the generation).
    /// `None`: the first such error stops the run.
    pub dead_letter: Option<Location>,
    /// The largest fraction of input records that may go to the dead-letter place.
    pub max_dead_letter_fraction: f64,
    /// What to do with `.parquet` files already directly in a table's folder.
    pub existing: ExistingFiles,
}

/// What a run does with `.parquet` files already directly in a table's folder, looked at when
/// it first writes to the table. Unless `Ignore`, the run also holds each local table folder
/// locked ([`crate::storage::lock_folder`]) from then on: another such run writing into it
/// fails with [`StorageError::Busy`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ExistingFiles {
    /// Nothing: the caller's own naming and commit protocol deal with them (`run`). A file of
    /// the name this run writes is replaced.
    #[default]
    Ignore,
    /// Fail the run ([`ConvertError::OutputNotEmpty`]) before writing to such a table.
    ///
    /// With this and with `Replace`, a successful run also deletes the staging files
    /// (`*.parquet#N`) that a killed run left in a local table.
    Refuse,
    /// Write the new files under names none of them has (a fresh run id appended), and delete
    /// them once the run has succeeded: a run that fails leaves them as they were.
    Replace,
}

impl Default for ConvertOptions {
    /// Every core, 2 MiB block groups, no generation, no registry, no dead-letter place (0.001
    /// when one is given); see [`EncodeOptions`] and [`SourceOptions`] for theirs.
    fn default() -> Self {
        Self {
            encode: EncodeOptions::default(),
            threads: 0,
            source: SourceOptions::default(),
            group_bytes: 2 << 20,
            group_decoded_bytes: GROUP_DECODED_BYTES,
            generation: None,
            progress: false,
            schemas: Arc::new(SchemaSet::new()),
            dead_letter: None,
            max_dead_letter_fraction: 0.001,
            existing: ExistingFiles::Ignore,
        }
    }
}

/// Resolves the output location of a data type.
pub type TableResolver = Arc<dyn Fn(&str) -> Result<Location, StorageError> + Send + Sync>;

/// Where the Parquet files go: one table, or one per data type.
#[derive(Clone)]
pub struct Destination {
    /// The table of plain container files, and of every data type when `per_type` is `None`.
    pub default: Location,
    /// The table of each data type (a `{data_type}` placeholder in a URL).
    pub per_type: Option<TableResolver>,
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Destination")
            .field("default", &self.default.display)
            .field("per_type", &self.per_type.is_some())
            .finish()
    }
}

impl Destination {
    /// Everything into one table.
    pub fn single(location: Location) -> Self {
        Self {
            default: location,
            per_type: None,
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
    /// `container`, `envelopes` (a container file of DataWrapper records), `raw` (raw
    /// concatenated envelopes), `empty` (zero bytes), or `mixed` (concatenated container
    /// files, some of envelopes and some not).
    pub framing: &'static str,
    /// Its block codec (with concatenated files, each codec they use, comma-separated, in the
    /// order first met).
    pub codec: String,
    /// Container files in it: 1, more when several are concatenated, 0 in the raw framing or
    /// an empty object.
    pub containers: u64,
    /// Blocks read.
    pub blocks: u64,
    /// Records read.
    pub records: u64,
    /// Records set aside in the dead-letter place.
    pub dead_lettered: u64,
    /// SHA-256 of the header's writer schema JSON text, hex (container files).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub writer_schema_sha256: Option<String>,
    /// Writer schema fingerprints (CRC-64-AVRO, as Java's `parsingFingerprint64`) and how many
    /// records were converted with each: `<fingerprint>` for the header schema of a container
    /// file, `<dataType>:<fingerprint>` for envelopes.
    pub fingerprints: BTreeMap<String, u64>,
}

impl InputReport {
    /// The report of `input`, before any block: its codec and writer schema from `header`.
    fn new(input: &InputObject, framing: &'static str, header: Option<&Header>) -> Self {
        Self::with_sha256(
            input,
            framing,
            header,
            header.map(|h| hex_sha256(&h.schema_json)),
        )
    }

    /// [`Self::new`], with the SHA-256 of the header's schema, in hex.
    fn with_sha256(
        input: &InputObject,
        framing: &'static str,
        header: Option<&Header>,
        writer_schema_sha256: Option<String>,
    ) -> Self {
        Self {
            url: input.url.clone(),
            bytes: input.size,
            framing,
            codec: header.map_or(Codec::Null, |h| h.codec).name().to_string(),
            containers: u64::from(header.is_some()),
            blocks: 0,
            records: 0,
            dead_lettered: 0,
            writer_schema_sha256,
            fingerprints: BTreeMap::new(),
        }
    }
}

/// One Parquet file written.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OutputFile {
    /// Its URL or path.
    pub url: String,
    /// The data type whose table it belongs to (`""` for plain container files).
    pub data_type: String,
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
    /// Records read.
    pub records: u64,
    /// Rows written.
    pub records_out: u64,
    /// What went to the dead-letter place.
    pub dead_letter: DeadLetterReport,
    /// Input bytes.
    pub bytes_in: u64,
    /// Output bytes.
    pub bytes_out: u64,
    /// Wall time.
    #[serde(serialize_with = "secs")]
    pub elapsed: Duration,
    /// Warnings (fields left out, ...).
    pub warnings: Vec<String>,
    /// Earlier files deleted because this run replaced them ([`ExistingFiles::Replace`]).
    pub replaced: Vec<String>,
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
    convert_to(inputs, &Destination::single(output.clone()), options).await
}

/// Converts `inputs`, in order, to Parquet files in the tables of `destination`.
pub async fn convert_to(
    inputs: Vec<InputObject>,
    destination: &Destination,
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
    // One local table (no `{data_type}`): locked before anything is read, so that a second
    // `convert` into it fails at once.
    let mut locks = HashMap::new();
    let mut made = Vec::new();
    if options.existing != ExistingFiles::Ignore
        && destination.per_type.is_none()
        && destination.default.local.is_some()
        && let Err(source) = open_table(
            &destination.default,
            options.existing,
            &mut locks,
            &mut made,
        )
    {
        crate::storage::remove_empty_folders(&made);
        return Err(ConvertError::Destination {
            data_type: String::new(),
            source,
        });
    }
    let inputs = Arc::new(inputs);
    let handle = Handle::current();
    let mut source_options = options.source;
    source_options.raw_envelopes |= options.schemas.has_registry();
    source_options.set_aside_broken |= options.dead_letter.is_some();
    // More cores convert faster than a few MiB in flight per object can feed them from S3.
    source_options.remote_read_ahead = source_options.remote_read_ahead.max(threads);
    let events = spawn_source(&handle, inputs.clone(), source_options);
    // The open group holds its blocks' budget: it is cut at half the budget, and a block takes
    // at most the other half (see `spawn_source`), so that the source can always hand over the
    // next block. A group larger than the budget (`run --memory-limit 6MiB`) waited for blocks
    // that the source waited to have room for: a hang.
    let mut options = options.clone();
    options.group_bytes = options
        .group_bytes
        .min(source_options.budget_bytes / 2)
        .max(1);
    let driver = Driver {
        handle: handle.clone(),
        pool: Arc::new(pool),
        destination: destination.clone(),
        options: options.clone(),
        inputs: inputs.clone(),
        // Decoded groups wait for the encoder in order: one per worker and one ready is
        // enough to keep every core busy (measured: 2 workers run as fast with 3 as with 6),
        // and each one more holds a decoded group (~5 MB) in memory.
        max_in_flight: threads + 1,
        upload_parts: threads.clamp(crate::sink::PARTS_IN_FLIGHT, 16),
        plans: HashMap::new(),
        current: None,
        resolved: HashMap::new(),
        schema_sha256: None,
        group: Vec::new(),
        group_bytes: 0,
        queue: VecDeque::new(),
        finishing: VecDeque::new(),
        last_published: None,
        file_failed: false,
        starts: std::iter::once(0)
            .chain(inputs.iter().scan(0u64, |end, input| {
                *end += input.size;
                Some(*end)
            }))
            .collect(),
        position: 0,
        tables: BTreeMap::new(),
        outputs: Vec::new(),
        reports: Vec::new(),
        warnings: Vec::new(),
        dead: None,
        dead_report: DeadLetterReport::default(),
        progress: options.progress.then(Progress::default),
        framed: Framed::default(),
        locks,
        made,
    };
    let span = tracing::Span::current();
    let mut report = tokio::task::spawn_blocking(move || span.in_scope(|| driver.run(events)))
        .await
        .map_err(|e| ConvertError::Pool(e.to_string()))??;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Makes the folder of the table at `location` (noting in `made` the folders it makes) and,
/// unless `existing` is [`ExistingFiles::Ignore`], locks it if it is local and not yet in
/// `locks`: before anything looks at what it holds, since whoever holds it writes.
fn open_table(
    location: &Location,
    existing: ExistingFiles,
    locks: &mut HashMap<std::path::PathBuf, Option<crate::storage::FolderLock>>,
    made: &mut Vec<std::path::PathBuf>,
) -> Result<(), StorageError> {
    made.extend(crate::storage::missing_folders(location.local.as_deref()));
    crate::storage::prepare_output(location)?;
    if existing != ExistingFiles::Ignore
        && let Some(dir) = &location.local
        && !locks.contains_key(dir)
    {
        let lock = crate::storage::lock_folder(dir)?;
        locks.insert(dir.clone(), lock);
    }
    Ok(())
}

/// The `.parquet` objects directly in `output` (not in folders or prefixes below it, which
/// may be other tables or partitions), sorted.
pub async fn existing_parquet(output: &Location) -> Result<Vec<Path>, ConvertError> {
    let found =
        crate::storage::objects_in(output)
            .await
            .map_err(|source| ConvertError::Output {
                url: output.display.clone(),
                source,
            })?;
    Ok(found
        .into_iter()
        .filter(|p| p.as_ref().ends_with(".parquet"))
        .collect())
}

/// The suffix of a run's file names (after `part-NNNNN`) that replace the files `found`:
/// `suffix` and a fresh run id, which no name found holds, so that no earlier file is
/// overwritten before the run has succeeded.
fn replacing_suffix(suffix: &str, found: &[Path]) -> String {
    loop {
        let candidate = format!("{suffix}-{}", crate::job::new_run_id());
        if !found
            .iter()
            .any(|p| p.filename().is_some_and(|n| n.contains(&candidate)))
        {
            return candidate;
        }
    }
}

/// How the blocks of one object are decoded.
#[derive(Clone)]
enum Decoding {
    /// Plain container file: every record with `plan`, into the decoder built from `reader`.
    Plain {
        reader: Arc<Plan>,
        plan: Arc<Plan>,
        key: Arc<str>,
    },
    /// `DataWrapper` envelopes (container records or raw framing).
    Envelopes(EnvelopeLayout),
    /// A plain container file whose schema does not resolve to the reader schema.
    Unreadable(Arc<str>),
}

impl Decoding {
    /// Whether the blocks read so and those read as `other` can go into the same decoders (one
    /// per data type): the same reader plan under the same key, or envelopes (whose decoders
    /// are by data type, each of the run's one reader schema for it).
    fn shares_decoders(&self, other: &Decoding) -> bool {
        match (self, other) {
            (
                Decoding::Plain {
                    reader: a, key: k, ..
                },
                Decoding::Plain {
                    reader: b, key: l, ..
                },
            ) => Arc::ptr_eq(a, b) && k == l,
            (Decoding::Envelopes(_), Decoding::Envelopes(_)) => true,
            _ => false,
        }
    }
}

/// The object whose blocks are arriving, and the task that reads its blocks (from its header
/// on: each container file of an object of concatenated ones has its own).
struct Current {
    object: usize,
    task: Arc<GroupTask>,
}

/// What a decode task produced from one group of blocks (of one object, or of several
/// consecutive ones: see [`Segment`]).
#[derive(Default)]
struct GroupOutput {
    batches: Vec<(Arc<str>, RecordBatch)>,
    /// Blocks left undecoded because the group's values passed [`GroupTask::max_decoded`] (blocks
    /// that inflate far more than usual), with the tasks to decode them: the driver sends them
    /// to the pool again, next in line.
    rest: Option<Vec<Segment>>,
    /// What each object of the group added, in order.
    objects: Vec<ObjectOutput>,
}

/// What the blocks of one object in a group added: records, dead letters, fingerprints.
#[derive(Default)]
struct ObjectOutput {
    object: usize,
    dead: Vec<DeadLetter>,
    /// Entries of `dead` whose record count is the one their block declares, which its bytes
    /// contradict (records left over, or fewer bytes than records), with the bytes the block
    /// takes in its object: the driver counts them from those bytes too, as broken tails.
    doubtful: Vec<(usize, u64)>,
    records: u64,
    dead_records: u64,
    fingerprints: BTreeMap<String, u64>,
}

/// The blocks of one object (one container file of it) in a group, with the task that knows
/// how to read them. A group holds the blocks of several consecutive objects when they share
/// their decoders ([`Decoding::shares_decoders`]): a partition of small objects (Firehose
/// writes objects of a few hundred records for a quiet stream) is decoded into batches of
/// thousands of rows, as a large file is, instead of one small batch per object that the
/// driver joins again (measured: 2,000 objects of 200 events took 1.45x the cpu of the same
/// events in 16 files, mostly decoders built, flushed, joined and dropped per object).
struct Segment {
    task: Arc<GroupTask>,
    object: usize,
    blocks: Vec<GroupBlock>,
}

/// A block of a group, with its share of the read budget.
struct GroupBlock {
    block: RawBlock,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    /// The block's records left, when a part of it was decoded already ([`PART_BYTES`]).
    rest: Option<BlockRest>,
}

impl GroupBlock {
    /// The block without its share of the read budget.
    fn unbudgeted(self) -> Self {
        Self {
            permit: None,
            ..self
        }
    }

    /// Records of the block not decoded yet.
    fn records_left(&self) -> u64 {
        let done = self.rest.as_ref().map_or(0, |r| r.from.record);
        self.block.count.saturating_sub(done)
    }
}

/// The records of a block left after a part of it was decoded.
struct BlockRest {
    /// The whole block, inflated.
    data: bytes::Bytes,
    /// Where its records left start.
    from: BlockPosition,
}

/// A block that inflates to more than twice this many bytes is decoded in parts of about this
/// many, each written before the next is decoded: what the conversion holds of a block of 30 MB
/// (a writer's sync interval, or one append of goavro) is its bytes and a part's values, not
/// all its values. (Each part is a batch of its own in the output.) Parts are at most half
/// of [`ConvertOptions::group_decoded_bytes`] (at least 1 MiB).
const PART_BYTES: usize = 8 << 20;

/// A group of blocks sent to the pool; its result arrives on `rx`.
struct Pending {
    /// Input bytes up to the end of the group's last block ([`Driver::starts`]).
    position: u64,
    rx: std_mpsc::Receiver<Result<GroupOutput, ConvertError>>,
}

struct OpenFile {
    encoder: FileEncoder<ObjectWriter>,
    path: Path,
    /// Its number among the table's files (its name's).
    number: usize,
}

/// Files of one table open at the same time, one per schema: inputs whose schemas interleave
/// (producers of two versions, their objects alternating by name) fill one file per schema
/// instead of a new file at every change (400 objects of 4 alternating schemas made 400 files
/// of ~130 KB). Past it, the least recently written is closed.
const OPEN_FILES_PER_TABLE: usize = 4;

/// The output of one data type.
struct Table {
    location: Location,
    /// The open files, each of its own schema, the most recently written last.
    open: Vec<OpenFile>,
    /// Files opened so far (they are named by it).
    files: usize,
    /// Small batches waiting to be written as one (see [`SMALL_BATCH_ROWS`]).
    small: SmallBatches,
    /// The schema of the last file closed, and its columns written without a dictionary: the
    /// next file of that schema starts so.
    plain: Option<(SchemaRef, Vec<parquet::schema::types::ColumnPath>)>,
    /// Arrow bytes written to its files so far ([`crate::encode::batch_bytes`]).
    arrow_bytes: u64,
    /// What follows `part-NNNNN` in its file names: `-<generation>`, and a run id when earlier
    /// files are replaced.
    suffix: String,
    /// Earlier files to delete once the run succeeds ([`ExistingFiles::Replace`]).
    replaces: Vec<Path>,
}

/// Batches of fewer rows than this are gathered (in order, up to [`SMALL_BATCHES_BYTES`]) and
/// written as one. A partition of small objects (Firehose writes them for quiet streams) gives
/// a batch per object, of a few hundred records: written one by one, each costs its columns'
/// encoder tasks and calls, and a file's first batch is too small a sample to judge which
/// columns need no dictionary. Batches of larger objects (a megabyte of blocks is a few
/// thousand records) pass straight through.
const SMALL_BATCH_ROWS: usize = 4096;

/// Most Arrow bytes of small batches a table holds before they are written.
const SMALL_BATCHES_BYTES: usize = 8 << 20;

/// Most Arrow bytes of small batches held in all tables (envelopes of many data types): past
/// it, every table's are written.
const SMALL_BATCHES_TOTAL_BYTES: usize = 32 << 20;

/// Consecutive small batches of one table, all of one schema.
#[derive(Default)]
struct SmallBatches {
    batches: Vec<RecordBatch>,
    rows: usize,
    bytes: usize,
}

/// The dead-letter file being written.
struct DeadFile {
    writer: ContainerWriter<ObjectWriter>,
    url: String,
}

struct Driver {
    handle: Handle,
    pool: Arc<ThreadPool>,
    destination: Destination,
    options: ConvertOptions,
    inputs: Arc<Vec<InputObject>>,
    max_in_flight: usize,
    /// Parts of an output file uploading at a time to object storage: more threads write more
    /// bytes a second.
    upload_parts: usize,
    plans: HashMap<String, Arc<Plan>>,
    /// The plans of the writer schemas (by their text) resolved to the reader schema of plain
    /// container files ([`SchemaSet::plain`]).
    resolved: HashMap<String, Option<crate::schemas::Plans>>,
    /// The last header schema seen, and its SHA-256 in hex (for the input reports).
    schema_sha256: Option<(String, String)>,
    current: Option<Current>,
    /// The blocks gathered for the next group, by object.
    group: Vec<Segment>,
    group_bytes: usize,
    queue: VecDeque<Pending>,
    /// Files finishing in the background, oldest first ([`Driver::close_file`]).
    finishing: VecDeque<tokio::task::JoinHandle<Result<OutputFile, ConvertError>>>,
    /// Whether the file closed last was published, once it is known (the next one waits).
    last_published: Option<std_mpsc::Receiver<bool>>,
    /// A file finishing in the background failed, and the driver returned its error.
    file_failed: bool,
    /// Where each input starts in all the inputs' bytes one after another, and their end.
    starts: Vec<u64>,
    /// The [`Pending::position`] of the group being written: how far into the input the
    /// batches written so far reach (to expect how much output is left).
    position: u64,
    tables: BTreeMap<Arc<str>, Table>,
    outputs: Vec<OutputFile>,
    reports: Vec<InputReport>,
    warnings: Vec<String>,
    dead: Option<DeadFile>,
    dead_report: DeadLetterReport,
    progress: Option<Progress>,
    /// The records per byte of the blocks framed so far, to estimate those of broken tails.
    framed: Framed,
    /// Local table folders this run holds locked ([`ExistingFiles::Refuse`] and `Replace`):
    /// another `convert` writing into one of them fails instead of mixing its files in.
    locks: HashMap<std::path::PathBuf, Option<crate::storage::FolderLock>>,
    /// Local folders the run made for its tables: a run that fails removes them if empty.
    made: Vec<std::path::PathBuf>,
}

/// Records and compressed bytes of the blocks framed so far, in the run and in each object: the
/// rates at which the records of a broken tail are estimated ([`Driver::broken`]).
/// Those bytes cannot be read, and counting a tail as the one record count its first block
/// declares made a tail of a whole object (after a damaged first sync marker, or a raw stream
/// broken at its first byte) count as a handful of records, under any dead-letter budget.
#[derive(Debug, Default)]
struct Framed {
    run: (u64, u64),
    /// Per object: its records and bytes framed (a group of small objects is written after
    /// several more were framed, and its damaged blocks are counted at their own object's rate).
    objects: HashMap<usize, (u64, u64)>,
    /// Tails that came before any block was framed: (object, bytes, the records and bytes the
    /// broken block declares, the records counted so far), counted again at the end of the
    /// run at its rate.
    unrated: Vec<(usize, u64, Option<Declared>, u64)>,
}

/// The records and bytes a broken block declares.
type Declared = (u64, u64);

impl Framed {
    fn add(&mut self, object: usize, records: u64, bytes: u64) {
        self.run.0 += records;
        self.run.1 += bytes;
        let (r, b) = self.objects.entry(object).or_default();
        *r += records;
        *b += bytes;
    }

    /// The records `bytes` of `object` likely hold: at the object's rate, else the run's;
    /// `None` before any block.
    fn estimate(&self, object: usize, bytes: u64) -> Option<u64> {
        match self.objects.get(&object) {
            Some(&(records, framed)) if framed > 0 => Some(Self::at_rate(bytes, records, framed)),
            _ => self.at_run_rate(bytes),
        }
    }

    /// The records of a broken tail of `bytes` (at `object`'s rate, or the run's for `None`),
    /// with the broken block's declared (records, bytes): those records when its bytes hold
    /// about as many (at most twice as many, and 16), else none of them. At least 1.
    fn count_tail(
        &self,
        object: Option<usize>,
        bytes: u64,
        declared: Option<Declared>,
    ) -> Option<u64> {
        let estimate = |b| match object {
            Some(o) => self.estimate(o, b),
            None => self.at_run_rate(b),
        };
        let n = estimate(bytes)?;
        let plausible = declared.filter(|&(records, size)| {
            estimate(size).is_some_and(|at| records <= at.saturating_mul(2).saturating_add(16))
        });
        Some(n.max(plausible.map_or(0, |(records, _)| records)).max(1))
    }

    fn at_run_rate(&self, bytes: u64) -> Option<u64> {
        let (records, framed) = self.run;
        (framed > 0).then(|| Self::at_rate(bytes, records, framed))
    }

    fn at_rate(bytes: u64, records: u64, framed: u64) -> u64 {
        let n = (u128::from(bytes) * u128::from(records)).div_ceil(u128::from(framed));
        u64::try_from(n).unwrap_or(u64::MAX)
    }
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

fn hex_sha256(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Driver {
    fn run(
        mut self,
        mut events: tokio::sync::mpsc::Receiver<Result<crate::source::SourceEvent, SourceError>>,
    ) -> Result<ConvertReport, ConvertError> {
        let result = self.consume(&mut events).and_then(|()| self.finish_dead());
        drop(events);
        // Files closed before a failure are finished all the same (as they were when files
        // were finished in line), so that none is left half uploaded. One that failed there
        // was closed before the failure above (unless that was a file's own failure), so its
        // error is the run's, and the other is logged.
        let from_a_file = self.file_failed;
        let result = match (result, self.finished_all()) {
            (Err(later), Err(first))
                if !from_a_file && !matches!(first, ConvertError::NotPublished { .. }) =>
            {
                tracing::error!("then: {later}");
                Err(first)
            }
            (Err(e), Err(after)) => {
                log_also(&after);
                Err(e)
            }
            (result, finished) => result.and(finished),
        };
        if let Some(p) = &self.progress {
            p.done();
        }
        self.rate_unrated_tails();
        let result = result
            .and_then(|()| self.check_budget())
            .and_then(|()| self.settle_named_tables());
        match result {
            Ok(()) => {
                // The new files stay even if an earlier one cannot be deleted.
                let replaced = self.tidy_tables()?;
                let records = self.reports.iter().map(|r| r.records).sum();
                let bytes_in = self.reports.iter().map(|r| r.bytes).sum();
                let bytes_out = self.outputs.iter().map(|o| o.bytes).sum();
                let records_out = self.outputs.iter().map(|o| o.rows).sum();
                Ok(ConvertReport {
                    inputs: self.reports,
                    outputs: self.outputs,
                    records,
                    records_out,
                    dead_letter: self.dead_report,
                    bytes_in,
                    bytes_out,
                    elapsed: Duration::ZERO,
                    warnings: self.warnings,
                    replaced,
                })
            }
            Err(e) => {
                // Abort the open uploads; let decode tasks finish into closed channels.
                for table in self.tables.values_mut() {
                    for f in table.open.drain(..) {
                        drop(f.encoder);
                    }
                }
                if let Some(dead) = self.dead.take() {
                    drop(dead.writer);
                }
                // A run that failed publishes nothing: a table read now holds what it held
                // before (with [`ExistingFiles::Replace`], the earlier files, kept).
                let left = self.delete_published();
                // Deepest first, so that a folder's own folders go before it.
                self.made
                    .sort_by_key(|d| std::cmp::Reverse(d.components().count()));
                crate::storage::remove_empty_folders(&self.made);
                match left.first() {
                    None => Err(e),
                    Some(example) => Err(ConvertError::Leftovers {
                        error: Box::new(e),
                        left: left.len(),
                        example: example.clone(),
                    }),
                }
            }
        }
    }

    /// Unless [`ExistingFiles::Ignore`], makes the tables the run was asked for that got no
    /// records (the one table without `{data_type}`, or the data types named), so that they
    /// exist, locked and looked at, like the others: with [`ExistingFiles::Replace`] their
    /// earlier files go too (this run's output of them is nothing).
    fn settle_named_tables(&mut self) -> Result<(), ConvertError> {
        if self.options.existing == ExistingFiles::Ignore {
            return Ok(());
        }
        let keys: Vec<Arc<str>> = match &self.destination.per_type {
            None if self.tables.is_empty() => vec![Arc::from(self.options.schemas.plain_key())],
            None => Vec::new(),
            Some(_) => self
                .options
                .schemas
                .accepted()
                .into_iter()
                .flatten()
                .map(|t| Arc::from(t.as_str()))
                .collect(),
        };
        for key in keys {
            self.table(&key)?;
        }
        Ok(())
    }

    /// Deletes the files this run published; returns the URLs of those that could not be.
    fn delete_published(&mut self) -> Vec<String> {
        let mut left = Vec::new();
        for o in std::mem::take(&mut self.outputs) {
            let store = self
                .tables
                .values()
                .find(|t| o.path.prefix_match(&t.location.path).is_some())
                .map(|t| t.location.store.clone());
            if let Some(store) = store {
                let path = o.path.clone();
                match self
                    .handle
                    .block_on(async move { store.delete(&path).await })
                {
                    Ok(()) => tracing::info!(file = %o.url, "deleted: the run failed"),
                    Err(e) => {
                        tracing::warn!(file = %o.url, "could not delete: {e}");
                        left.push(o.url);
                    }
                }
            }
        }
        left
    }

    /// Once the run has succeeded, deletes the earlier files its tables replace
    /// ([`ExistingFiles::Replace`]) and, unless [`ExistingFiles::Ignore`], the staging files a
    /// killed run left in a local table (`*.parquet#N`, which no listing shows). Returns the
    /// URLs of the files deleted. Every earlier file is tried; if some cannot be deleted, the
    /// error counts them and names the first (the new files stay, beside them).
    fn tidy_tables(&mut self) -> Result<Vec<String>, ConvertError> {
        let mut deleted = Vec::new();
        let mut failed = None;
        if self.options.existing == ExistingFiles::Ignore {
            return Ok(deleted);
        }
        for (key, table) in &mut self.tables {
            let replaces = std::mem::take(&mut table.replaces);
            let location = &table.location;
            if let Some(dir) = &location.local {
                let staging =
                    crate::storage::remove_local_staging(dir, |name| name.ends_with(".parquet"))
                        .map_err(|source| ConvertError::Destination {
                            data_type: key.to_string(),
                            source,
                        })?;
                for file in staging {
                    tracing::info!(file = %file.display(), "deleted a killed run's staging file");
                }
            }
            for path in replaces {
                let store = location.store.clone();
                let url = location.url_of(&path);
                let result = self.handle.block_on(async move {
                    use object_store::ObjectStoreExt;
                    store.delete(&path).await
                });
                match result {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {
                        tracing::info!(file = %url, "deleted: replaced by this run");
                        deleted.push(url);
                    }
                    Err(source) => {
                        tracing::warn!(file = %url, "could not delete: {source}");
                        failed.get_or_insert((url, source, 0)).2 += 1;
                    }
                }
            }
        }
        match failed {
            None => Ok(deleted),
            Some((url, source, left)) => Err(ConvertError::Replace { url, source, left }),
        }
    }

    /// Broken tails met before any block was framed count, at the end, as many records as the
    /// run's rate puts in their bytes (when that is more than they were counted as).
    fn rate_unrated_tails(&mut self) {
        for (object, bytes, declared, counted) in std::mem::take(&mut self.framed.unrated) {
            let Some(more) = self
                .framed
                .count_tail(None, bytes, declared)
                .and_then(|n| n.checked_sub(counted))
                .filter(|&n| n > 0)
            else {
                continue;
            };
            if let Some(report) = self.reports.get_mut(object) {
                report.records += more;
                report.dead_lettered += more;
            }
            self.dead_report.records += more;
            tracing::warn!(
                input = %self.inputs[object].url,
                "a broken tail of {bytes} bytes came before any block: counted as {} records, \
                 at the run's rate",
                counted + more
            );
        }
    }

    /// Fails the run when too much was set aside (its files are then deleted).
    fn check_budget(&mut self) -> Result<(), ConvertError> {
        let records: u64 = self.reports.iter().map(|r| r.records).sum();
        let dead = self.dead_report.records;
        if dead == 0 || dead as f64 <= self.options.max_dead_letter_fraction * records as f64 {
            return Ok(());
        }
        Err(ConvertError::DeadLetterBudget {
            dead,
            records,
            max_fraction: self.options.max_dead_letter_fraction,
            url: self.dead_report.url.clone().unwrap_or_default(),
        })
    }

    fn consume(
        &mut self,
        events: &mut tokio::sync::mpsc::Receiver<Result<crate::source::SourceEvent, SourceError>>,
    ) -> Result<(), ConvertError> {
        while let Some(event) = events.blocking_recv() {
            let event = event?;
            match event.event {
                ObjectEvent::Header(header) => {
                    if self
                        .current
                        .as_ref()
                        .is_some_and(|c| c.object == event.object)
                    {
                        self.next_container(event.object, &header)?;
                    } else {
                        self.start_object(event.object, Some(&header))?;
                    }
                }
                ObjectEvent::Raw => self.start_object(event.object, None)?,
                ObjectEvent::Blocks(blocks) => {
                    // The batch's budget permit goes with its last block, so that it is held
                    // until every block of the batch was decoded.
                    let (last, mut permit) = (blocks.len().saturating_sub(1), event.permit);
                    for (i, block) in blocks.into_iter().enumerate() {
                        if let Some(report) = self.reports.last_mut() {
                            report.blocks += 1;
                        }
                        if let Some(p) = &mut self.progress {
                            p.add(
                                block.count,
                                block.data.len() as u64,
                                self.reports.len(),
                                self.outputs.len(),
                            );
                        }
                        self.framed.add(event.object, block.count, block.framed);
                        let permit = if i == last { permit.take() } else { None };
                        self.gather(GroupBlock {
                            block,
                            permit,
                            rest: None,
                        })?;
                        while self.queue.len() > self.max_in_flight {
                            self.write_next()?;
                        }
                    }
                }
                ObjectEvent::Broken {
                    offset,
                    declared,
                    error,
                    data,
                } => {
                    self.dispatch();
                    self.broken(event.object, offset, declared, error, data)?;
                }
                ObjectEvent::End { padding, .. } => {
                    if padding > 0 {
                        let w = format!(
                            "the object ends with {padding} zero bytes where a block should \
                             start: padding, read as the end of the file (no records)"
                        );
                        warn_input(&mut self.warnings, &self.inputs[event.object].url, &w);
                    }
                    // The group goes on with the next object's blocks, if they share its
                    // decoders (see `Segment`), until it has its bytes.
                    self.current = None;
                    if self.reports.len() == event.object {
                        // An empty object: no header, nothing read.
                        let url = &self.inputs[event.object].url;
                        warn_input(&mut self.warnings, url, "empty object: no records");
                        let report = InputReport::new(&self.inputs[event.object], "empty", None);
                        self.reports.push(report);
                    }
                }
            }
        }
        self.dispatch();
        while !self.queue.is_empty() {
            self.write_next()?;
        }
        let keys: Vec<Arc<str>> = self.tables.keys().cloned().collect();
        for key in keys {
            self.flush_small(&key)?;
            // In the order they were opened, as they are named.
            self.table(&key)?.open.sort_by_key(|f| f.number);
            while !self.table(&key)?.open.is_empty() {
                self.close_file(&key, 0)?;
            }
        }
        Ok(())
    }

    /// A piece of a raw stream that cannot be framed: set aside, in order with the groups.
    fn broken(
        &mut self,
        object: usize,
        offset: u64,
        declared: Option<Declared>,
        error: Option<String>,
        data: bytes::Bytes,
    ) -> Result<(), ConvertError> {
        let data_len = data.len() as u64;
        let url = self.inputs[object].url.clone();
        // A container file's rest keeps its codec and writer schema beside it.
        let (codec, writer_schema) = match &self.current {
            Some(c) if c.object == object => (c.task.codec, c.task.writer_schema.clone()),
            _ => (Codec::Null, None),
        };
        if self.options.dead_letter.is_none() {
            return Err(ConvertError::Framing {
                url,
                offset,
                message: error.unwrap_or_else(|| "framing broken".into()),
            });
        }
        // The records the bytes likely hold. The count the broken block declares (a file cut
        // short: all its records are lost, though only part of its bytes is here) counts when
        // the size it declares holds about as many at this rate; else it is damaged too.
        let records = match self.framed.count_tail(Some(object), data_len, declared) {
            Some(n) => n,
            None => {
                // Until the run's rate is known: the first piece as one record.
                let counted = u64::from(error.is_some());
                self.framed
                    .unrated
                    .push((object, data_len, declared, counted));
                counted
            }
        };
        let out = ObjectOutput {
            object,
            records,
            dead_records: records,
            dead: vec![DeadLetter {
                source: url,
                kind: Kind::Tail,
                block: None,
                offset,
                record: None,
                records,
                error: error.unwrap_or_else(|| "after a broken framing".into()),
                data_type: None,
                fingerprint: None,
                codec,
                writer_schema,
                data,
            }],
            ..Default::default()
        };
        let (tx, rx) = std_mpsc::sync_channel(1);
        let _ = tx.send(Ok(GroupOutput {
            objects: vec![out],
            ..Default::default()
        }));
        self.queue.push_back(Pending {
            position: self.input_position(object, offset + data_len),
            rx,
        });
        // Pieces of a long tail are written out as they come, as blocks are.
        while self.queue.len() > self.max_in_flight {
            self.write_next()?;
        }
        Ok(())
    }

    fn start_object(&mut self, object: usize, header: Option<&Header>) -> Result<(), ConvertError> {
        let (decoding, framing) = self.decoding(object, header)?;
        // The hash of the schema the objects before had, if it is theirs (small objects).
        let sha = header.map(|h| match &self.schema_sha256 {
            Some((text, sha)) if *text == h.schema_json => sha.clone(),
            _ => {
                let sha = hex_sha256(&h.schema_json);
                self.schema_sha256 = Some((h.schema_json.clone(), sha.clone()));
                sha
            }
        });
        let mut report = InputReport::with_sha256(&self.inputs[object], framing, header, sha);
        let current = self.current_of(object, decoding, header);
        if let Some(fp) = current.task.plain_fingerprint {
            // Known before any record: the file's one writer schema.
            report.fingerprints.insert(fp.to_string(), 0);
        }
        self.reports.push(report);
        self.current = Some(current);
        Ok(())
    }

    /// The next container file of an object of concatenated ones: its blocks are read with
    /// its own header, as those of another input would be, and counted in the object's report.
    fn next_container(&mut self, object: usize, header: &Header) -> Result<(), ConvertError> {
        let (decoding, framing) = self.decoding(object, Some(header))?;
        let current = self.current_of(object, decoding, Some(header));
        if let Some(report) = self.reports.last_mut() {
            report.containers += 1;
            if report.framing != framing {
                report.framing = "mixed";
            }
            let codec = header.codec.name();
            if !report.codec.split(',').any(|c| c == codec) {
                report.codec = format!("{},{codec}", report.codec);
            }
            if let Some(fp) = current.task.plain_fingerprint {
                report.fingerprints.entry(fp.to_string()).or_insert(0);
            }
        }
        tracing::info!(
            input = %self.inputs[object].url,
            offset = header.offset,
            "another container file starts in the object (concatenated files)"
        );
        self.current = Some(current);
        Ok(())
    }

    /// The object being read from `header` on (a raw object: none) with `decoding`.
    fn current_of(&self, object: usize, decoding: Decoding, header: Option<&Header>) -> Current {
        // A container file of events (not of envelopes): all its records are of its schema.
        let plain_fingerprint = match decoding {
            Decoding::Plain { .. } | Decoding::Unreadable(_) => header.and_then(|h| h.fingerprint),
            Decoding::Envelopes(_) => None,
        };
        let task = Arc::new(GroupTask {
            decoding,
            codec: header.map_or(Codec::Null, |h| h.codec),
            writer_schema: header.map(|h| Arc::from(h.schema_json.as_str())),
            plain_fingerprint,
            schemas: self.options.schemas.clone(),
            url: self.inputs[object].url.clone(),
            limits: self.options.source.limits,
            dead_letter: self.options.dead_letter.is_some(),
            max_decoded: self.options.group_decoded_bytes.max(1),
        });
        Current { object, task }
    }

    /// How the blocks after `header` (or of a raw object, without one) are decoded, and the
    /// framing the report names.
    fn decoding(
        &mut self,
        object: usize,
        header: Option<&Header>,
    ) -> Result<(Decoding, &'static str), ConvertError> {
        let url = self.inputs[object].url.clone();
        let schemas = self.options.schemas.clone();
        Ok(match header {
            None => {
                if !schemas.has_registry() {
                    return Err(ConvertError::NoRegistry { url });
                }
                (Decoding::Envelopes(EnvelopeLayout::RAW), "raw")
            }
            Some(h) => match EnvelopeLayout::of(&h.schema) {
                Some(layout) => {
                    if !schemas.has_registry() {
                        return Err(ConvertError::NoRegistry { url });
                    }
                    (Decoding::Envelopes(layout), "envelopes")
                }
                None => (self.plain_decoding(object, h)?, "container"),
            },
        })
    }

    fn plain_decoding(&mut self, object: usize, header: &Header) -> Result<Decoding, ConvertError> {
        let url = &self.inputs[object].url;
        let key: Arc<str> = Arc::from(self.options.schemas.plain_key());
        // Resolved once per writer schema, not per object (a partition of small objects).
        let resolved = match self.resolved.get(&header.schema_json) {
            Some(r) => r.clone(),
            None => {
                let r = self.options.schemas.plain(&header.schema);
                self.resolved.insert(header.schema_json.clone(), r.clone());
                r
            }
        };
        match resolved {
            Some(Ok((reader, plan))) => return Ok(Decoding::Plain { reader, plan, key }),
            Some(Err(e)) => {
                tracing::warn!(input = %url, "{e}");
                return Ok(Decoding::Unreadable(e));
            }
            None => {}
        }
        let plan = match self.plans.get(&header.schema_json) {
            Some(p) => p.clone(),
            None => {
                let types = self.options.schemas.types();
                let p = Arc::new(plan_with(&header.schema, types).map_err(|source| {
                    ConvertError::Plan {
                        url: url.clone(),
                        source,
                    }
                })?);
                for w in &p.warnings {
                    warn_input(&mut self.warnings, url, w);
                }
                self.plans.insert(header.schema_json.clone(), p.clone());
                p
            }
        };
        Ok(Decoding::Plain {
            reader: plan.clone(),
            plan,
            key,
        })
    }

    /// Adds a block of the current object to the group: after the blocks of the objects before
    /// it, if they share their decoders; else the group so far is sent first.
    fn gather(&mut self, block: GroupBlock) -> Result<(), ConvertError> {
        let Some(current) = &self.current else {
            return Err(ConvertError::Pool(
                "blocks came before their object's header (a bug)".into(),
            ));
        };
        let task = current.task.clone();
        let object = current.object;
        if !self
            .group
            .last()
            .is_some_and(|s| Arc::ptr_eq(&s.task, &task))
        {
            if self
                .group
                .first()
                .is_some_and(|s| !s.task.decoding.shares_decoders(&task.decoding))
            {
                self.dispatch();
            }
            self.group.push(Segment {
                task,
                object,
                blocks: Vec::new(),
            });
        }
        self.group_bytes += block.block.data.len();
        if let Some(segment) = self.group.last_mut() {
            segment.blocks.push(block);
        }
        if self.group_bytes >= self.options.group_bytes {
            self.dispatch();
        }
        Ok(())
    }

    /// Sends the blocks gathered so far to the pool as one group.
    fn dispatch(&mut self) {
        let segments = std::mem::take(&mut self.group);
        self.group_bytes = 0;
        let Some(last) = segments.last() else {
            return;
        };
        let position = last.blocks.last().map_or(0, |b| {
            self.input_position(last.object, b.block.offset + b.block.data.len() as u64)
        });
        self.spawn_group(position, segments, false);
    }

    /// Where byte `offset` of input `object` lies in all the inputs' bytes one after another.
    fn input_position(&self, object: usize, offset: u64) -> u64 {
        self.starts.get(object).copied().unwrap_or_default() + offset
    }

    /// Decodes the blocks of `segments` on the pool; the result is waited for in queue order (at
    /// the front of the queue for the rest of a group).
    fn spawn_group(&mut self, position: u64, segments: Vec<Segment>, front: bool) {
        let (tx, rx) = std_mpsc::sync_channel(1);
        let pending = Pending { position, rx };
        if front {
            self.queue.push_front(pending);
        } else {
            self.queue.push_back(pending);
        }
        self.pool.spawn(move || {
            let result = crate::encode::catch_panic(
                || run_group(segments),
                |text| ConvertError::Pool(format!("a decode task panicked (a bug): {text}")),
            );
            let _ = tx.send(result);
        });
    }

    /// Waits for the oldest group and writes its batches and dead letters.
    fn write_next(&mut self) -> Result<(), ConvertError> {
        let Some(pending) = self.queue.pop_front() else {
            return Ok(());
        };
        let mut out = pending
            .rx
            .recv()
            .map_err(|_| ConvertError::Pool("a decode task stopped".into()))??;
        if let Some(rest) = out.rest.take() {
            // The rest of the group, before any later group.
            self.spawn_group(pending.position, rest, true);
        }
        self.position = pending.position;
        for mut o in std::mem::take(&mut out.objects) {
            // A damaged record count is no count: as many records as the bytes likely hold, if
            // more.
            for &(i, framed) in &o.doubtful {
                let Some(entry) = o.dead.get_mut(i) else {
                    continue;
                };
                if let Some(more) = self
                    .framed
                    .estimate(o.object, framed)
                    .and_then(|n| n.checked_sub(entry.records))
                    .filter(|&n| n > 0)
                {
                    entry.records += more;
                    o.records += more;
                    o.dead_records += more;
                }
            }
            if let Some(report) = self.reports.get_mut(o.object) {
                report.records += o.records;
                report.dead_lettered += o.dead_records;
                for (fp, n) in o.fingerprints {
                    *report.fingerprints.entry(fp).or_default() += n;
                }
            }
            for entry in &o.dead {
                self.write_dead(entry)?;
            }
            self.dead_report.records += o.dead_records;
        }
        for (key, batch) in out.batches {
            self.write_batch(&key, batch)?;
        }
        Ok(())
    }

    fn write_dead(&mut self, entry: &DeadLetter) -> Result<(), ConvertError> {
        let Some(location) = &self.options.dead_letter else {
            return Ok(());
        };
        if self.dead.is_none() {
            let name = match &self.options.generation {
                Some(g) => format!("deadletter-{g}.avro"),
                None => format!(
                    "deadletter-{}.avro",
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis())
                ),
            };
            let path = location.path.clone().join(name);
            let url = location.url_of(&path);
            crate::storage::prepare_output(location).map_err(|e| ConvertError::DeadLetter {
                url: url.clone(),
                message: e.to_string(),
            })?;
            let parts = parts_for(location, None, crate::sink::PARTS_IN_FLIGHT);
            let sink = ObjectWriter::for_location(&self.handle, location, path, parts);
            let mut metadata = BTreeMap::new();
            metadata.insert(
                "parqour.version".to_string(),
                env!("CARGO_PKG_VERSION").as_bytes().to_vec(),
            );
            // The sync marker only has to be unlikely in the data; derive it from the name.
            let mut sync = [0u8; 16];
            sync.copy_from_slice(&hex_sha256(&url).as_bytes()[..16]);
            let writer =
                ContainerWriter::new(sink, deadletter::SCHEMA, Codec::Deflate, sync, &metadata)
                    .map_err(|e| ConvertError::DeadLetter {
                        url: url.clone(),
                        message: e.to_string(),
                    })?
                    .with_block_bytes(1 << 20);
            tracing::warn!(file = %url, "writing records that cannot be converted to the dead-letter place");
            self.dead_report.url = Some(url.clone());
            self.dead = Some(DeadFile { writer, url });
        }
        let Some(dead) = self.dead.as_mut() else {
            return Ok(());
        };
        // (A record's index in its block; a block or a broken tail by its record count.) The
        // first entries only: millions of log lines (a producer's schema never published) cost
        // more than the run (8,000,000 entries: 23 s against 7) and the log store's bill.
        match (entry.block, entry.record) {
            _ if self.dead_report.entries > DEAD_LETTERS_LOGGED => {}
            _ if self.dead_report.entries == DEAD_LETTERS_LOGGED => tracing::warn!(
                "more than {DEAD_LETTERS_LOGGED} dead-letter entries: the others are not logged \
                 (the dead-letter file holds each, with its error)"
            ),
            (Some(block), Some(record)) => tracing::warn!(
                input = %entry.source, block, offset = entry.offset, record,
                "dead-lettered: {}", entry.error
            ),
            (block, _) => tracing::warn!(
                input = %entry.source, block = ?block, offset = entry.offset,
                records = entry.records, "dead-lettered: {}", entry.error
            ),
        }
        let mut datum = Datum::new();
        entry.encode(&mut datum);
        dead.writer
            .append(&datum.buf)
            .map_err(|e| ConvertError::DeadLetter {
                url: dead.url.clone(),
                message: e.to_string(),
            })?;
        self.dead_report.entries += 1;
        let kind = serde_json::to_value(entry.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        *self.dead_report.by_kind.entry(kind).or_default() += 1;
        Ok(())
    }

    fn finish_dead(&mut self) -> Result<(), ConvertError> {
        let Some(dead) = self.dead.take() else {
            return Ok(());
        };
        let url = dead.url.clone();
        let err = |message: String| ConvertError::DeadLetter {
            url: url.clone(),
            message,
        };
        let sink = dead.writer.finish().map_err(|e| err(e.to_string()))?;
        sink.finish().map_err(|e| err(e.to_string()))?;
        Ok(())
    }

    fn table(&mut self, key: &Arc<str>) -> Result<&mut Table, ConvertError> {
        if !self.tables.contains_key(key) {
            let location = match (&self.destination.per_type, key.is_empty()) {
                (Some(resolve), false) => {
                    resolve(key).map_err(|source| ConvertError::Destination {
                        data_type: key.to_string(),
                        source,
                    })?
                }
                (Some(_), true) => {
                    // A table per data type, and records of no data type.
                    return Err(ConvertError::Destination {
                        data_type: String::new(),
                        source: StorageError::Location {
                            location: self.destination.default.display.clone(),
                            message: "container files of plain events have no data type: name \
                                      the one they are (--data-type, or one entry in data_types)"
                                .into(),
                        },
                    });
                }
                (None, _) => {
                    if let Some(other) = self.tables.keys().next() {
                        return Err(ConvertError::DataTypes {
                            url: self.destination.default.display.clone(),
                            first: other.to_string(),
                            second: key.to_string(),
                        });
                    }
                    self.destination.default.clone()
                }
            };
            let destination_error = |source| ConvertError::Destination {
                data_type: key.to_string(),
                source,
            };
            open_table(
                &location,
                self.options.existing,
                &mut self.locks,
                &mut self.made,
            )
            .map_err(destination_error)?;
            let mut suffix = match &self.options.generation {
                Some(g) => format!("-{g}"),
                None => String::new(),
            };
            let mut replaces = Vec::new();
            if self.options.existing != ExistingFiles::Ignore {
                let found = self.handle.block_on(existing_parquet(&location))?;
                if let Some(example) = found.first() {
                    if self.options.existing == ExistingFiles::Refuse {
                        return Err(ConvertError::OutputNotEmpty {
                            url: location.display.clone(),
                            example: location.url_of(example),
                        });
                    }
                    suffix = replacing_suffix(&suffix, &found);
                    replaces = found;
                }
            }
            self.tables.insert(
                key.clone(),
                Table {
                    location,
                    open: Vec::new(),
                    files: 0,
                    small: SmallBatches::default(),
                    plain: None,
                    arrow_bytes: 0,
                    suffix,
                    replaces,
                },
            );
        }
        self.tables
            .get_mut(key)
            .ok_or_else(|| ConvertError::Pool("table vanished".into()))
    }

    /// Writes `batch` to its table's file, or gathers it with the small batches before it. A
    /// large batch, or one of another schema, first writes out those gathered.
    fn write_batch(&mut self, key: &Arc<str>, batch: RecordBatch) -> Result<(), ConvertError> {
        let large = batch.num_rows() >= SMALL_BATCH_ROWS;
        let other_schema = self
            .table(key)?
            .small
            .batches
            .first()
            .is_some_and(|b| b.schema() != batch.schema());
        if large || other_schema {
            self.flush_small(key)?;
        }
        if large {
            return self.write_now(key, &batch);
        }
        let small = &mut self.table(key)?.small;
        small.rows += batch.num_rows();
        small.bytes += batch.get_array_memory_size();
        small.batches.push(batch);
        if small.rows >= SMALL_BATCH_ROWS || small.bytes >= SMALL_BATCHES_BYTES {
            self.flush_small(key)?;
        }
        let waiting: usize = self.tables.values().map(|t| t.small.bytes).sum();
        if waiting >= SMALL_BATCHES_TOTAL_BYTES {
            let keys: Vec<Arc<str>> = self.tables.keys().cloned().collect();
            for key in keys {
                self.flush_small(&key)?;
            }
        }
        Ok(())
    }

    /// Writes the gathered small batches of a table as one.
    fn flush_small(&mut self, key: &Arc<str>) -> Result<(), ConvertError> {
        let table = self.table(key)?;
        let small = std::mem::take(&mut table.small);
        let Some(first) = small.batches.first() else {
            return Ok(());
        };
        let batch = arrow_select::concat::concat_batches(&first.schema(), &small.batches).map_err(
            |source| ConvertError::Join {
                url: table.location.display.clone(),
                source,
            },
        )?;
        self.write_now(key, &batch)
    }

    fn write_now(&mut self, key: &Arc<str>, batch: &RecordBatch) -> Result<(), ConvertError> {
        let schema = batch.schema();
        let table = self.table(key)?;
        match table
            .open
            .iter()
            .position(|f| f.encoder.schema() == &schema)
        {
            Some(i) => {
                let file = table.open.remove(i);
                table.open.push(file);
            }
            None => {
                if !table.open.is_empty() {
                    tracing::info!(
                        "an input of another schema than the open file's: starting a file of it"
                    );
                }
                if table.open.len() >= OPEN_FILES_PER_TABLE {
                    self.close_file(key, 0)?;
                }
                self.open_file(key, batch)?;
            }
        }
        let (position, total) = (self.position, self.starts.last().copied().unwrap_or(0));
        let table = self.table(key)?;
        let Some(file) = table.open.last_mut() else {
            return Ok(());
        };
        // The rest of this table's output, expected from how much of the input is left and
        // how many Arrow bytes of this table the input so far gave.
        table.arrow_bytes += crate::encode::batch_bytes(batch) as u64;
        let rest = (position > 0).then(|| {
            (total.saturating_sub(position) as f64 * table.arrow_bytes as f64 / position as f64)
                as usize
        });
        file.encoder.expect_rest(rest);
        file.encoder
            .write(batch)
            .map_err(|source| ConvertError::Encode {
                url: table.location.url_of(&file.path),
                source,
            })?;
        if file.encoder.is_full() {
            let last = table.open.len() - 1;
            self.close_file(key, last)?;
        }
        Ok(())
    }

    fn open_file(&mut self, key: &Arc<str>, first: &RecordBatch) -> Result<(), ConvertError> {
        let extension = self.options.encode.compression.extension();
        let handle = self.handle.clone();
        let encode = self.options.encode.clone();
        let pool = self.pool.clone();
        let upload_parts = self.upload_parts;
        let table = self.table(key)?;
        let number = table.files;
        let name = format!("part-{number:05}{}.{extension}.parquet", table.suffix);
        table.files += 1;
        let path = table.location.path.clone().join(name);
        let parts = parts_for(&table.location, Some(encode.file_bytes), upload_parts);
        let writer = ObjectWriter::for_location(&handle, &table.location, path.clone(), parts);
        let known = match &table.plain {
            Some((schema, plain)) if *schema == first.schema() => plain.as_slice(),
            _ => &[],
        };
        let encoder =
            FileEncoder::for_batch(writer, first, known, &encode, pool).map_err(|source| {
                ConvertError::Encode {
                    url: table.location.url_of(&path),
                    source,
                }
            })?;
        table.open.push(OpenFile {
            encoder,
            path,
            number,
        });
        Ok(())
    }

    /// Closes the table's open file `at` (in [`Table::open`]): its last row group is closed
    /// here, and written out and uploaded in the background ([`Self::finishing`]) while the
    /// next file fills.
    fn close_file(&mut self, key: &Arc<str>, at: usize) -> Result<(), ConvertError> {
        let table = self.table(key)?;
        if at >= table.open.len() {
            return Ok(());
        }
        let mut file = table.open.remove(at);
        let url = table.location.url_of(&file.path);
        let schema = file.encoder.schema().clone();
        // Its columns closed, the encoder knows which gave up their dictionaries: the next
        // file of the table starts without those.
        file.encoder
            .flush_row_group()
            .map_err(|source| ConvertError::Encode {
                url: url.clone(),
                source,
            })?;
        table.plain = Some((schema.clone(), file.encoder.plain_columns()));
        let data_type = key.to_string();
        let span = tracing::Span::current();
        // Files are published in the order they were closed, each once the one before it
        // was: a file that fails in the background leaves none after it.
        let (published, next) = std_mpsc::sync_channel(1);
        let before = self.last_published.replace(next);
        let finish = move || {
            let result = (|| {
                let (writer, summary) =
                    file.encoder
                        .finish()
                        .map_err(|source| ConvertError::Encode {
                            url: url.clone(),
                            source,
                        })?;
                if let Some(before) = before
                    && before.recv() != Ok(true)
                {
                    writer.abort();
                    return Err(ConvertError::NotPublished { url });
                }
                let written = writer.finish()?;
                tracing::info!(file = %url, rows = summary.rows, bytes = written.bytes, "wrote");
                Ok(OutputFile {
                    url,
                    data_type,
                    path: file.path,
                    rows: summary.rows,
                    bytes: written.bytes,
                    crc32: format!("{:08x}", written.crc32),
                    row_groups: summary.row_groups,
                    schema,
                })
            })();
            let _ = published.send(result.is_ok());
            result
        };
        while self.finishing.len() >= FILES_FINISHING {
            self.finished_one()?;
        }
        let task = self.handle.spawn_blocking(move || span.in_scope(finish));
        self.finishing.push_back(task);
        Ok(())
    }

    /// Waits for the oldest file finishing in the background, and lists it.
    fn finished_one(&mut self) -> Result<(), ConvertError> {
        let Some(task) = self.finishing.pop_front() else {
            return Ok(());
        };
        let output = self
            .handle
            .block_on(task)
            .map_err(|_| ConvertError::Pool("a file's last row group panicked (a bug)".into()))
            .and_then(|finished| finished);
        match output {
            Ok(output) => {
                self.outputs.push(output);
                Ok(())
            }
            Err(e) => {
                self.file_failed = true;
                Err(e)
            }
        }
    }

    /// Waits for every file finishing in the background; the first error is returned once
    /// all are done, the others logged.
    fn finished_all(&mut self) -> Result<(), ConvertError> {
        let mut result = Ok(());
        while !self.finishing.is_empty() {
            match (self.finished_one(), &result) {
                (Err(e), Ok(())) => result = Err(e),
                (Err(e), Err(_)) => log_also(&e),
                (Ok(()), _) => {}
            }
        }
        result
    }
}

/// Logs an error of a run that already fails with another: a file not published because of
/// an earlier failure as a warning, anything else as an error of its own.
fn log_also(e: &ConvertError) {
    match e {
        ConvertError::NotPublished { .. } => tracing::warn!("{e}"),
        _ => tracing::error!("also: {e}"),
    }
}

/// Files whose last row group is written out (and uploaded) in the background at the same
/// time, while the next files fill. A file ends when it reaches its target size, and writing
/// out its last row group (up to 128 MiB) took ~0.3 s into a local folder and a second or
/// more to S3, while the conversion waited. Each holds its upload's parts (`Parts`): two
/// bound that memory (a partition of many data types closes its files together at its end).
const FILES_FINISHING: usize = 2;

/// How files go to `location`: in small parts to a local folder, in S3-sized parts with
/// `in_flight` of them uploading to an object store (sized for files of about `file_bytes`
/// when that is known).
fn parts_for(location: &Location, file_bytes: Option<usize>, in_flight: usize) -> Parts {
    match (&location.local, file_bytes) {
        (Some(_), _) => Parts::local(),
        (None, Some(bytes)) => Parts::remote_for(bytes, in_flight),
        (None, None) => Parts::remote(in_flight),
    }
}

/// Logs a warning about the input at `url` and keeps it for the report.
fn warn_input(warnings: &mut Vec<String>, url: &str, warning: &str) {
    tracing::warn!(input = %url, "{warning}");
    warnings.push(format!("{url}: {warning}"));
}

/// Why one envelope's datum failed, in the words of a single datum.
fn datum_message(e: &DecodeError) -> String {
    match e {
        // A datum its writer schema reads, but the reader's cannot take (a union branch or
        // enum symbol the reader lacks): no corruption.
        DecodeError::Datum(d) if matches!(d.source, crate::decode::ValueError::Resolution(_)) => {
            d.source.to_string()
        }
        DecodeError::Datum(d) => format!("corrupt datum at byte {}: {}", d.offset, d.source),
        DecodeError::Trailing { trailing, .. } => {
            format!("corrupt datum: {trailing} bytes left over after the record")
        }
        DecodeError::Count { bytes, .. } => {
            format!("corrupt datum: {bytes} bytes are too few for one record of its schema")
        }
        other => other.to_string(),
    }
}

thread_local! {
    /// Inflate buffer, reused by each worker across blocks.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The most of [`SCRATCH`] a worker keeps after a group: a block that inflated to far more
/// (a record of tens of megabytes) does not leave its buffer held for the rest of the run.
const SCRATCH_KEPT: usize = 16 << 20;

/// Dead-letter entries logged one by one in a run.
const DEAD_LETTERS_LOGGED: u64 = 100;

/// The most bytes of dead-letter entries a group holds ([`DeadLetter::approx_size`]); past
/// them its blocks left are handed back, as past [`GroupTask::max_decoded`].
const MAX_DEAD_BYTES: usize = 8 << 20;

/// Default [`ConvertOptions::group_decoded_bytes`]. Groups are cut by stored bytes (about
/// [`ConvertOptions::group_bytes`]), a few megabytes decoded on usual data.
pub const GROUP_DECODED_BYTES: usize = 64 << 20;

/// Everything a decode task needs about the object its blocks come from.
struct GroupTask {
    decoding: Decoding,
    codec: Codec,
    writer_schema: Option<Arc<str>>,
    /// [`Current::plain_fingerprint`]: the records converted are counted under it.
    plain_fingerprint: Option<i64>,
    schemas: Arc<SchemaSet>,
    url: String,
    limits: Limits,
    dead_letter: bool,
    /// [`ConvertOptions::group_decoded_bytes`].
    max_decoded: usize,
}

/// One group's decoders, by data type, kept in first-seen order of keys.
#[derive(Default)]
struct Decoders {
    /// Records in the group's blocks, to size new decoders by.
    records: usize,
    /// The most decoded bytes the group holds ([`GroupTask::max_decoded`]).
    max_decoded: usize,
    by_key: BTreeMap<Arc<str>, BatchDecoder>,
    /// Plans of the envelopes seen in this group, with the records converted with each:
    /// looked up without locking or allocating per record.
    entries: Vec<PlanEntry>,
    /// Where the entry of each fingerprint (then data type) is in `entries`.
    index: HashMap<i64, Vec<usize>>,
    /// The data types (as they came) and fingerprints of the envelopes looked up last, and their
    /// entries, the latest first: the envelopes of a block are mostly of one, or of a few data
    /// types interleaved, whose names are checked and looked up once.
    recent: Vec<(Box<[u8]>, i64, usize)>,
}

/// Envelope entries [`Decoders::recent`] keeps.
const RECENT_ENTRIES: usize = 8;

struct PlanEntry {
    data_type: Box<str>,
    fingerprint: i64,
    plans: crate::schemas::Plans,
    /// Records converted in blocks that completed.
    converted: u64,
    /// Records converted in the current block.
    pending: u64,
}

/// The decoder of `key` in `by_key`, made from `reader` on first sight (sized for `records`
/// records, at most `max_decoded` bytes).
fn decoder_of<'a>(
    by_key: &'a mut BTreeMap<Arc<str>, BatchDecoder>,
    key: &str,
    reader: &Arc<Plan>,
    records: usize,
    max_decoded: usize,
) -> &'a mut BatchDecoder {
    if !by_key.contains_key(key) {
        let decoder = BatchDecoder::for_group(reader.clone(), records, max_decoded);
        by_key.insert(Arc::from(key), decoder);
    }
    // Just inserted if absent.
    by_key
        .get_mut(key)
        .unwrap_or_else(|| unreachable!("decoder inserted above"))
}

impl Decoders {
    fn get(&mut self, key: &str, reader: &Arc<Plan>) -> &mut BatchDecoder {
        decoder_of(
            &mut self.by_key,
            key,
            reader,
            self.records,
            self.max_decoded,
        )
    }

    fn rows(&self) -> Vec<(Arc<str>, usize)> {
        self.by_key
            .iter()
            .map(|(k, d)| (k.clone(), d.rows()))
            .collect()
    }

    fn rollback(&mut self, to: &[(Arc<str>, usize)]) {
        for (key, decoder) in self.by_key.iter_mut() {
            let rows = to
                .iter()
                .find(|(k, _)| k == key)
                .map_or(0, |(_, rows)| *rows);
            decoder.truncate(rows);
        }
    }

    fn bytes(&self) -> usize {
        self.by_key.values().map(BatchDecoder::byte_size).sum()
    }

    /// The entry of an envelope's (data type, fingerprint), compiled on first sight; an error
    /// message when the data type is no name.
    fn entry_of(
        &mut self,
        schemas: &SchemaSet,
        data_type: &[u8],
        fingerprint: i64,
    ) -> Result<usize, String> {
        if let Some(k) = self
            .recent
            .iter()
            .position(|(name, fp, _)| *fp == fingerprint && **name == *data_type)
        {
            let i = self.recent[k].2;
            // The latest first: a run of one data type finds it at once.
            self.recent[..=k].rotate_right(1);
            return Ok(i);
        }
        let name =
            crate::avro::envelope::checked_data_type(data_type).map_err(|e| e.to_string())?;
        let entries = self.index.entry(fingerprint).or_default();
        let i = match entries
            .iter()
            .copied()
            .find(|&i| &*self.entries[i].data_type == name)
        {
            Some(i) => i,
            None => {
                self.entries.push(PlanEntry {
                    data_type: name.into(),
                    fingerprint,
                    plans: schemas.envelope(name, fingerprint),
                    converted: 0,
                    pending: 0,
                });
                entries.push(self.entries.len() - 1);
                self.entries.len() - 1
            }
        };
        if self.recent.len() == RECENT_ENTRIES {
            self.recent.pop();
        }
        self.recent.insert(0, (data_type.into(), fingerprint, i));
        Ok(i)
    }

    /// The blocks of an object (read by `task`) in the group end: the records converted with
    /// each envelope schema since the object's first block, and those of a container file's
    /// one schema, go to its output.
    fn end_object(&mut self, task: &GroupTask, o: &mut ObjectOutput) {
        for e in self.entries.iter_mut().filter(|e| e.converted > 0) {
            *o.fingerprints
                .entry(format!("{}:{}", e.data_type, e.fingerprint))
                .or_default() += e.converted;
            e.converted = 0;
        }
        if let Some(fp) = task.plain_fingerprint {
            let converted = o.records - o.dead_records;
            if converted > 0 {
                *o.fingerprints.entry(fp.to_string()).or_default() += converted;
            }
        }
    }

    /// The block completed (`true`) or was set aside whole (`false`).
    fn end_block(&mut self, completed: bool) {
        for e in &mut self.entries {
            if completed {
                e.converted += e.pending;
            }
            e.pending = 0;
        }
    }

    fn flush(&mut self, out: &mut Vec<(Arc<str>, RecordBatch)>) -> Result<(), DecodeError> {
        for (key, d) in self.by_key.iter_mut() {
            if let Some(batch) = d.flush()? {
                out.push((key.clone(), batch));
            }
        }
        Ok(())
    }
}

/// Inflates and decodes a group of consecutive blocks (of one object, or of several that share
/// their decoders: [`Segment`]) into batches (usually one per data type; more when the values
/// pass 256 MiB, to keep offsets within Arrow's 32-bit range) and dead letters; past
/// [`GroupTask::max_decoded`] bytes of values the blocks left are handed back in
/// [`GroupOutput::rest`]. Each block's budget permit is released once the block is decoded, or
/// handed back (its part left, or the blocks left).
fn run_group(segments: Vec<Segment>) -> Result<GroupOutput, ConvertError> {
    const MAX_BATCH_BYTES: usize = 256 << 20;
    let records = segments
        .iter()
        .flat_map(|s| &s.blocks)
        .fold(0u64, |n, b| n.saturating_add(b.records_left()));
    let mut decoders = Decoders {
        records: usize::try_from(records).unwrap_or(usize::MAX),
        max_decoded: segments.first().map_or(1, |s| s.task.max_decoded),
        ..Decoders::default()
    };
    let mut out = GroupOutput::default();
    // The task, (index, offset) of the last block decoded, for an error of the final flush.
    let mut last = None;
    let mut dead_bytes = 0usize;
    SCRATCH.with_borrow_mut(|scratch| {
        let mut segments = segments.into_iter();
        while let Some(Segment {
            task,
            object,
            blocks,
        }) = segments.next()
        {
            let mut o = ObjectOutput {
                object,
                ..ObjectOutput::default()
            };
            // Blocks of this object handed back, when the group stops in it.
            let mut handed_back = None;
            let mut blocks = blocks.into_iter();
            while let Some(group_block) = blocks.next() {
                let left = group_block.records_left();
                let GroupBlock {
                    block,
                    permit,
                    rest: from,
                } = group_block;
                last = Some((task.clone(), block.index, block.offset));
                o.records += left;
                let located = |source: BlockError| ConvertError::Block {
                    url: task.url.clone(),
                    block: block.index,
                    offset: block.offset,
                    source,
                };
                // What the block adds, to undo if it is set aside whole. (Fingerprint counts are
                // kept per block by the decoders and added up when the object's blocks end.)
                let checkpoint = (decoders.rows(), o.dead.len(), o.dead_records);
                let records_before = o.records;
                let result = task.block(&block, from.as_ref(), scratch, &mut decoders, &mut o);
                decoders.end_block(result.is_ok());
                let cut = match result {
                    Ok(cut) => cut,
                    Err(e) => {
                        if !task.dead_letter {
                            return Err(match e {
                                BlockError::Unreadable(message) => ConvertError::Unreadable {
                                    url: task.url.clone(),
                                    message,
                                },
                                e => located(e),
                            });
                        }
                        // The block is set aside whole: undo what it added.
                        decoders.rollback(&checkpoint.0);
                        o.dead.truncate(checkpoint.1);
                        o.dead_records = checkpoint.2;
                        // Envelopes found swallowed by a damaged one before the block failed.
                        let records = left + (o.records - records_before);
                        // A block whose first part was written: its records left, uncompressed.
                        let (record, codec, data, framed) = match &from {
                            None => (None, task.codec, block.data.clone(), block.framed),
                            Some(r) => {
                                let left = r.data.slice(r.from.offset.min(r.data.len())..);
                                // Its share of the bytes the block takes in the object.
                                let framed =
                                    block.framed * left.len() as u64 / r.data.len().max(1) as u64;
                                (Some(r.from.record), Codec::Null, left, framed)
                            }
                        };
                        if matches!(
                            e,
                            BlockError::Decode(
                                DecodeError::Trailing { .. } | DecodeError::Count { .. }
                            )
                        ) {
                            o.doubtful.push((o.dead.len(), framed));
                        }
                        o.dead.push(DeadLetter {
                            source: task.url.clone(),
                            kind: Kind::Block,
                            block: Some(block.index),
                            offset: block.offset,
                            record,
                            records,
                            error: e.to_string(),
                            data_type: None,
                            fingerprint: None,
                            codec,
                            writer_schema: task.writer_schema.clone(),
                            data,
                        });
                        o.dead_records += records;
                        None
                    }
                };
                dead_bytes += o.dead[checkpoint.1..]
                    .iter()
                    .map(DeadLetter::approx_size)
                    .sum::<usize>();
                let bytes = decoders.bytes();
                if bytes >= MAX_BATCH_BYTES {
                    decoders
                        .flush(&mut out.batches)
                        .map_err(|e| located(e.into()))?;
                }
                // The block's share of the read budget goes back, decoded or not: what is handed
                // back below waits for the driver, and the driver may be waiting for the
                // source, which waits for budget (blocks of 25 MB under a 64 MiB budget hung
                // while parts kept it). What it holds is bounded by the groups in flight.
                drop(permit);
                // A block cut in parts: its records left go back to the driver with the blocks
                // after it, and are counted with them.
                handed_back = if let Some(rest) = cut {
                    o.records -= block.count.saturating_sub(rest.from.record);
                    // Its stored bytes are not needed any more (unless they are the records).
                    let data = if task.codec == Codec::Null {
                        block.data
                    } else {
                        bytes::Bytes::new()
                    };
                    let part = GroupBlock {
                        block: RawBlock { data, ..block },
                        permit: None,
                        rest: Some(rest),
                    };
                    Some(
                        std::iter::once(part)
                            .chain(blocks.by_ref().map(GroupBlock::unbudgeted))
                            .collect(),
                    )
                } else if bytes >= task.max_decoded || dead_bytes >= MAX_DEAD_BYTES {
                    // The dead letters wait for the driver too: a group of tiny blocks of
                    // failing records held 360 MB of entries before they counted.
                    Some(
                        blocks
                            .by_ref()
                            .map(GroupBlock::unbudgeted)
                            .collect::<Vec<_>>(),
                    )
                } else {
                    None
                };
                if handed_back.is_some() {
                    break;
                }
            }
            decoders.end_object(&task, &mut o);
            out.objects.push(o);
            if let Some(rest) = handed_back {
                // The rest of this object's blocks, and the objects after it.
                let mut left = Vec::new();
                if !rest.is_empty() {
                    left.push(Segment {
                        task,
                        object,
                        blocks: rest,
                    });
                }
                left.extend(segments.by_ref().map(|mut s| {
                    s.blocks = s.blocks.into_iter().map(GroupBlock::unbudgeted).collect();
                    s
                }));
                if !left.is_empty() {
                    out.rest = Some(left);
                }
                break;
            }
        }
        if scratch.capacity() > SCRATCH_KEPT {
            scratch.truncate(SCRATCH_KEPT);
            scratch.shrink_to_fit();
        }
        if let Some((task, block, offset)) = last {
            decoders
                .flush(&mut out.batches)
                .map_err(|e| ConvertError::Block {
                    url: task.url.clone(),
                    block,
                    offset,
                    source: e.into(),
                })?;
        }
        Ok(out)
    })
}

impl GroupTask {
    /// One block, or its records left after a part of it (`from`). Per-record failures of
    /// envelopes become dead letters here (or errors); an error returned fails the whole block
    /// (the records left of it). A block that inflates to more than twice [`PART_BYTES`] is
    /// decoded in parts: what is left after the first is returned.
    fn block(
        &self,
        block: &RawBlock,
        from: Option<&BlockRest>,
        scratch: &mut Vec<u8>,
        decoders: &mut Decoders,
        out: &mut ObjectOutput,
    ) -> Result<Option<BlockRest>, BlockError> {
        let (data, start): (&[u8], BlockPosition) = match from {
            Some(rest) => (&rest.data, rest.from),
            None if self.codec == Codec::Null => (&block.data, BlockPosition::START),
            None => {
                let n = self.codec.decompress_into(
                    &block.data,
                    scratch,
                    self.limits.max_block_bytes,
                )?;
                (&scratch[..n], BlockPosition::START)
            }
        };
        let len = data.len();
        // Smaller parts under a smaller memory budget (`run --memory-limit`).
        let part = PART_BYTES.min(self.max_decoded / 2).max(1 << 20);
        let stop = match len.saturating_sub(start.offset) {
            left if left > 2 * part => {
                if decoders.by_key.is_empty() {
                    // Buffers for the part's records, not the block's.
                    let records = block.count.saturating_sub(start.record) as u128 * part as u128
                        / left as u128;
                    decoders.records = usize::try_from(records + 1).unwrap_or(usize::MAX);
                }
                start.offset + part
            }
            _ => usize::MAX,
        };
        let next = match &self.decoding {
            Decoding::Unreadable(e) => return Err(BlockError::Unreadable(e.clone())),
            Decoding::Plain { reader, plan, key } => {
                let decoder = decoders.get(key, reader);
                match decoder.decode_block_part(plan, data, block.count, start, stop, None) {
                    // Values that cannot be converted, in records that can be told apart:
                    // with a dead-letter place, only those records are set aside (decoded
                    // again: such errors are rare, the first pass stays lean).
                    Err(DecodeError::Datum(_)) if self.dead_letter => {
                        let mut bad = Vec::new();
                        let next = decoder.decode_block_part(
                            plan,
                            data,
                            block.count,
                            start,
                            stop,
                            Some(&mut bad),
                        )?;
                        for b in bad {
                            out.dead.push(DeadLetter {
                                source: self.url.clone(),
                                kind: Kind::Block,
                                block: Some(block.index),
                                offset: block.offset,
                                record: Some(b.error.record),
                                records: 1,
                                error: b.error.to_string(),
                                data_type: None,
                                fingerprint: None,
                                // The record alone, uncompressed: a block of one record.
                                codec: Codec::Null,
                                writer_schema: self.writer_schema.clone(),
                                data: bytes::Bytes::copy_from_slice(&data[b.range]),
                            });
                            out.dead_records += 1;
                        }
                        next
                    }
                    result => result?,
                }
            }
            Decoding::Envelopes(layout) => {
                self.envelopes(*layout, block, data, start, stop, decoders, out)?
            }
        };
        Ok(next.map(|next| BlockRest {
            data: match from {
                Some(rest) => rest.data.clone(),
                None if self.codec == Codec::Null => block.data.clone(),
                None => {
                    // The inflated block leaves with its records left; the worker's next
                    // block inflates into a new buffer.
                    let mut inflated = std::mem::take(scratch);
                    inflated.truncate(len);
                    bytes::Bytes::from(inflated)
                }
            },
            from: next,
        }))
    }

    /// The envelopes of a block from `from` on, up to the first that starts at or past byte
    /// `stop` (where the records left start is returned; `None` once the block is done).
    #[allow(clippy::too_many_arguments)]
    fn envelopes(
        &self,
        layout: EnvelopeLayout,
        block: &RawBlock,
        data: &[u8],
        from: BlockPosition,
        stop: usize,
        decoders: &mut Decoders,
        out: &mut ObjectOutput,
    ) -> Result<Option<BlockPosition>, BlockError> {
        let raw = self.codec == Codec::Null && self.writer_schema.is_none();
        let mut cur = Cursor::at(data, from.offset);
        let mut next = None;
        // Past `MAX_SET_ASIDE_PER_BLOCK` entries, the envelopes of a block that fail share an
        // entry per data type and fingerprint (past as many of those, one for the rest): each
        // entry costs ~200 bytes besides the envelope, and a megabyte of 4-byte envelopes of
        // an unknown schema took 1.7 GB in entries, one each.
        let mut own = 0usize;
        let mut shared: Vec<(DeadLetter, Vec<u8>)> = Vec::new();
        let mut shared_by: HashMap<(Vec<u8>, i64), usize> = HashMap::new();
        for record in from.record..block.count {
            let start = cur.position();
            if start >= stop && record > from.record {
                next = Some(BlockPosition {
                    record,
                    offset: start,
                });
                break;
            }
            // Unreadable fields break the block's framing; a data type that is no name (which
            // breaks a raw framing, but not a container's) fails its record only.
            let (data_type, fingerprint, datum) = layout.read_fields(&mut cur).map_err(|e| {
                BlockError::Record(Box::new(RecordFailure {
                    record,
                    offset: start,
                    data_type: None,
                    fingerprint: None,
                    message: EnvelopeError::from(e).to_string(),
                }))
            })?;
            let message = match decoders.entry_of(&self.schemas, data_type, fingerprint) {
                Err(message) => (message, 0),
                Ok(i) => {
                    let Decoders {
                        entries,
                        by_key,
                        records,
                        max_decoded,
                        ..
                    } = &mut *decoders;
                    let entry = &mut entries[i];
                    let failure = match &entry.plans {
                        Ok((reader, plan)) => {
                            let decoder = decoder_of(
                                by_key,
                                &entry.data_type,
                                reader,
                                *records,
                                *max_decoded,
                            );
                            match decoder.decode_datum_with(plan, datum) {
                                Ok(()) => {
                                    entry.pending += 1;
                                    None
                                }
                                Err(e) => {
                                    // A raw envelope whose record leaves bytes that frame as
                                    // envelopes: its damaged `data` length swallowed them.
                                    let swallowed = match &e {
                                        DecodeError::Trailing { trailing, .. } if raw => datum
                                            .get(datum.len().saturating_sub(*trailing)..)
                                            .map_or(0, crate::avro::envelope::swallowed_envelopes),
                                        _ => 0,
                                    };
                                    Some((datum_message(&e), swallowed))
                                }
                            }
                        }
                        Err(e) => Some((e.to_string(), 0)),
                    };
                    match failure {
                        Some(failure) => failure,
                        None => continue,
                    }
                }
            };
            let (message, swallowed) = match message {
                (message, 0) => (message, 0),
                (message, n) => (
                    format!(
                        "{message}; they frame as {n} more envelope(s), counted with it: its \
                         data length is likely damaged"
                    ),
                    n,
                ),
            };
            let failure = RecordFailure {
                record,
                offset: start,
                data_type: Some(String::from_utf8_lossy(data_type).into_owned()),
                fingerprint: Some(fingerprint),
                message,
            };
            if !self.dead_letter {
                return Err(BlockError::Record(Box::new(failure)));
            }
            // The envelope, in the raw framing whatever framing it came in (its data type as
            // it came, name or not).
            let mut bytes = Vec::new();
            crate::avro::envelope::encode_raw(data_type, fingerprint, datum, &mut bytes);
            // The swallowed envelopes were not in the block's count: they come in here.
            out.records += swallowed;
            out.dead_records += 1 + swallowed;
            let entry = DeadLetter {
                source: self.url.clone(),
                kind: Kind::Record,
                block: Some(block.index),
                // A raw framing's envelope by its own offset; a container's by its block's.
                offset: if raw {
                    block.offset + start as u64
                } else {
                    block.offset
                },
                record: Some(record),
                records: 1 + swallowed,
                error: failure.message,
                data_type: failure.data_type,
                fingerprint: failure.fingerprint,
                codec: Codec::Null,
                writer_schema: None,
                data: Default::default(),
            };
            if own < MAX_SET_ASIDE_PER_BLOCK {
                own += 1;
                out.dead.push(DeadLetter {
                    data: bytes.into(),
                    ..entry
                });
                continue;
            }
            let key = (data_type.to_vec(), fingerprint);
            let at = match shared_by.get(&key) {
                Some(&at) => Some(at),
                None if shared_by.len() < MAX_SET_ASIDE_PER_BLOCK => {
                    shared_by.insert(key, shared.len());
                    None
                }
                // The catch-all entry, made after the last keyed one.
                None => Some(MAX_SET_ASIDE_PER_BLOCK).filter(|&at| at < shared.len()),
            };
            match at {
                Some(at) => {
                    let (shared_entry, data) = &mut shared[at];
                    shared_entry.records += 1 + swallowed;
                    data.extend_from_slice(&bytes);
                }
                None => {
                    let mut entry = entry;
                    let catch_all = shared.len() == MAX_SET_ASIDE_PER_BLOCK;
                    if catch_all {
                        (entry.data_type, entry.fingerprint) = (None, None);
                    }
                    entry.error = format!(
                        "{} (with the envelopes after it in this block that failed too{})",
                        entry.error,
                        if catch_all {
                            ""
                        } else {
                            " with its data type and fingerprint"
                        }
                    );
                    shared.push((entry, bytes));
                }
            }
        }
        out.dead.extend(shared.into_iter().map(|(mut entry, data)| {
            entry.data = data.into();
            entry
        }));
        if next.is_none() && cur.remaining() != 0 {
            return Err(BlockError::Decode(DecodeError::Trailing {
                count: block.count,
                trailing: cur.remaining(),
            }));
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_store::TestStore;
    use object_store::ObjectStoreExt;

    /// A broken tail's records are estimated from its bytes: at its object's rate, else at the
    /// run's, else not yet (counted again at the end).
    #[test]
    fn broken_tails_count_the_records_their_bytes_likely_hold() {
        let mut f = Framed::default();
        assert_eq!(f.estimate(0, 1000), None);
        f.add(0, 100, 1000); // object 0: 10 bytes a record
        assert_eq!(f.estimate(0, 5000), Some(500));
        assert_eq!(f.estimate(0, 5001), Some(501), "rounded up");
        // Object 1 before its own first block: the run's rate.
        assert_eq!(f.estimate(1, 200), Some(20));
        f.add(1, 100, 100); // object 1: 1 byte a record
        assert_eq!(f.estimate(1, 200), Some(200));
        // The run's rate is over both: 200 records in 1,100 bytes.
        assert_eq!(f.estimate(2, 1100), Some(200));
        assert_eq!(f.estimate(1, u64::MAX), Some(u64::MAX));
        // A broken block's declared count counts when its declared size holds about as many
        // (a file cut short: 40 of its 200 bytes here), not when it is damaged too.
        let mut f = Framed::default();
        f.add(0, 100, 1000);
        assert_eq!(f.count_tail(Some(0), 40, Some((20, 200))), Some(20));
        assert_eq!(f.count_tail(Some(0), 40, Some((43_145, 200))), Some(4));
        assert_eq!(f.count_tail(None, 40, None), Some(4));
        assert_eq!(f.count_tail(Some(0), 1, None), Some(1), "at least one");
    }

    /// The blocks of small objects that share their decoders are decoded as one group into one
    /// batch, while what each object added (records, dead letters, fingerprints) stays its
    /// own; a group handed back part way (its decoded bytes past the limit) goes on with the
    /// objects after, and the counts of both parts add up to each object's.
    #[test]
    fn a_group_of_small_objects_decodes_into_one_batch_and_counts_each_object() {
        let objects: Vec<(Header, Vec<RawBlock>)> = (0..4u64)
            .map(|k| {
                let data =
                    crate::demo::write_events(Vec::new(), Codec::Deflate, k * 300, 300, k).unwrap();
                crate::avro::container::split_all(&data, Limits::default()).unwrap()
            })
            .collect();
        let header = &objects[0].0;
        let fingerprint = header.fingerprint.unwrap();
        let plan = Arc::new(plan_with(&header.schema, Default::default()).unwrap());
        let decoding = Decoding::Plain {
            reader: plan.clone(),
            plan: plan.clone(),
            key: Arc::from(""),
        };
        assert!(decoding.shares_decoders(&decoding.clone()));
        let other = Arc::new(plan_with(&header.schema, Default::default()).unwrap());
        assert!(!decoding.shares_decoders(&Decoding::Plain {
            reader: other.clone(),
            plan: other,
            key: Arc::from(""),
        }));
        let segments = |max_decoded: usize| -> Vec<Segment> {
            objects
                .iter()
                .enumerate()
                .map(|(object, (header, blocks))| {
                    let mut blocks: Vec<GroupBlock> = blocks
                        .iter()
                        .cloned()
                        .map(|block| GroupBlock {
                            block,
                            permit: None,
                            rest: None,
                        })
                        .collect();
                    if object == 2 {
                        // Object 2's second block does not inflate.
                        let b = &mut blocks[1].block;
                        b.data = bytes::Bytes::from(vec![0xff; b.data.len()]);
                    }
                    Segment {
                        task: Arc::new(GroupTask {
                            decoding: decoding.clone(),
                            codec: header.codec,
                            writer_schema: Some(Arc::from(header.schema_json.as_str())),
                            plain_fingerprint: header.fingerprint,
                            schemas: Arc::new(SchemaSet::new()),
                            url: format!("memory://in/object-{object}.avro"),
                            limits: Limits::default(),
                            dead_letter: true,
                            max_decoded,
                        }),
                        object,
                        blocks,
                    }
                })
                .collect()
        };
        let block_records = |object: usize, block: usize| objects[object].1[block].count;
        assert!(objects.iter().all(|(_, blocks)| blocks.len() >= 2));

        // One group: one batch of every record converted, the counts per object.
        let out = run_group(segments(64 << 20)).unwrap();
        assert!(out.rest.is_none());
        assert_eq!(out.batches.len(), 1);
        let bad = block_records(2, 1);
        assert_eq!(out.batches[0].1.num_rows() as u64, 4 * 300 - bad);
        let counts: Vec<(usize, u64, u64)> = out
            .objects
            .iter()
            .map(|o| (o.object, o.records, o.dead_records))
            .collect();
        assert_eq!(
            counts,
            [(0, 300, 0), (1, 300, 0), (2, 300, bad), (3, 300, 0)]
        );
        for o in &out.objects {
            let converted = o.records - o.dead_records;
            assert_eq!(
                o.fingerprints.get(&fingerprint.to_string()),
                Some(&converted)
            );
            let expected: Vec<_> = (o.object == 2)
                .then(|| ("memory://in/object-2.avro".to_string(), Some(1), bad))
                .into_iter()
                .collect();
            let dead: Vec<_> = o
                .dead
                .iter()
                .map(|d| (d.source.clone(), d.block, d.records))
                .collect();
            assert_eq!(dead, expected);
        }

        // A limit of decoded bytes the first blocks pass: the group is handed back part way,
        // the rest (the objects after too) decoded in turn. Every record and count arrives
        // once, in order.
        let mut totals = std::collections::BTreeMap::<usize, (u64, u64, u64)>::new();
        let mut rows = 0;
        let mut groups = 0;
        let mut next = Some(segments(1));
        while let Some(segments) = next.take() {
            groups += 1;
            assert!(groups <= 100, "the group does not end");
            let out = run_group(segments).unwrap();
            rows += out
                .batches
                .iter()
                .map(|(_, b)| b.num_rows() as u64)
                .sum::<u64>();
            for o in &out.objects {
                let t = totals.entry(o.object).or_default();
                t.0 += o.records;
                t.1 += o.dead_records;
                t.2 += o
                    .fingerprints
                    .get(&fingerprint.to_string())
                    .copied()
                    .unwrap_or(0);
            }
            next = out.rest;
        }
        assert!(
            groups > 4,
            "{groups} groups: the limit did not cut the group"
        );
        assert_eq!(rows, 4 * 300 - bad);
        let totals: Vec<_> = totals.into_iter().collect();
        assert_eq!(
            totals,
            [
                (0, (300, 0, 300)),
                (1, (300, 0, 300)),
                (2, (300, bad, 300 - bad)),
                (3, (300, 0, 300))
            ]
        );
    }

    /// Raw envelope objects of two versions of a data type (and of a second data type in
    /// between), small enough that several go into one group: each input's report counts its
    /// own envelopes by data type and fingerprint, not those of the objects grouped with it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn grouped_objects_of_envelopes_count_their_own_fingerprints() {
        use crate::registry::{Compatibility, Registry};
        let bucket = "grouped-envelopes";
        let store = Arc::new(object_store::memory::InMemory::new());
        crate::storage::register_memory_store(bucket, store.clone());
        let storage = crate::storage::StorageOptions::default();
        let registry = Registry::new(
            crate::storage::resolve(&format!("memory://{bucket}/schemas"), &storage).unwrap(),
        );
        let v1 = r#"{"type":"record","name":"Click","fields":[{"name":"id","type":"int"}]}"#;
        let v2 = r#"{"type":"record","name":"Click","fields":[{"name":"id","type":"long"},
            {"name":"page","type":"string","default":""}]}"#;
        let fp1 = registry
            .publish("click", v1, Compatibility::Backward)
            .await
            .unwrap()
            .fingerprint;
        let fp2 = registry
            .publish("click", v2, Compatibility::Backward)
            .await
            .unwrap()
            .fingerprint;
        registry
            .publish("view", v1, Compatibility::Backward)
            .await
            .unwrap();
        // Object k: k + 1 envelopes of version 1, data types `click` and `view` in turn, then
        // 2k + 3 of version 2 (`click`).
        let zigzag = |v: i64, out: &mut Vec<u8>| {
            let mut z = ((v << 1) ^ (v >> 63)) as u64;
            while z >= 0x80 {
                out.push((z as u8) | 0x80);
                z >>= 7;
            }
            out.push(z as u8);
        };
        let mut id = 0i64;
        for k in 0..6u64 {
            let mut object = Vec::new();
            for n in 0..(3 * k + 4) {
                let mut datum = Vec::new();
                zigzag(id, &mut datum);
                let fp = if n <= k {
                    fp1
                } else {
                    zigzag(4, &mut datum);
                    datum.extend_from_slice(b"home");
                    fp2
                };
                let data_type: &[u8] = if n <= k && n % 2 == 1 {
                    b"view"
                } else {
                    b"click"
                };
                crate::avro::envelope::encode_raw(data_type, fp, &datum, &mut object);
                id += 1;
            }
            store
                .put(&Path::from(format!("raw/{k}.avro")), object.into())
                .await
                .unwrap();
        }
        let inputs = crate::source::list_inputs(&[format!("memory://{bucket}/raw/")], &storage)
            .await
            .unwrap();
        let output = crate::storage::resolve(&format!("memory://{bucket}/out/"), &storage).unwrap();
        let options = ConvertOptions {
            schemas: Arc::new(
                SchemaSet::new().with_registry(Arc::new(registry.load().await.unwrap())),
            ),
            ..ConvertOptions::default()
        };
        let tables = storage.clone();
        let destination = Destination {
            default: output,
            per_type: Some(Arc::new(move |t: &str| {
                crate::storage::resolve(&format!("memory://{bucket}/out/{t}/"), &tables)
            }) as TableResolver),
        };
        let report = convert_to(inputs, &destination, &options).await.unwrap();
        assert_eq!(report.records, id as u64);
        assert_eq!(report.records_out, id as u64);
        for (k, input) in report.inputs.iter().enumerate() {
            let k = k as u64;
            let mut expected = BTreeMap::from([
                (format!("click:{fp1}"), k / 2 + 1),
                (format!("click:{fp2}"), 2 * k + 3),
            ]);
            if k > 0 {
                expected.insert(format!("view:{fp1}"), k.div_ceil(2));
            }
            assert_eq!(input.fingerprints, expected, "{}", input.url);
            assert_eq!(input.records, 3 * k + 4);
        }
    }

    /// Files are finished in the background while the next fills; one that fails there
    /// still fails the run, naming it, and no file of the run is left.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_file_that_fails_to_finish_in_the_background_fails_the_run() {
        let data = bytes::Bytes::from(
            crate::demo::write_events(Vec::new(), Codec::Deflate, 0, 20_000, 9).unwrap(),
        );
        let convert_into = async |bucket: &str, refuse: Option<&str>, truncated: bool| {
            let store = Arc::new(TestStore {
                refuse: refuse.map(String::from),
                ..TestStore::default()
            });
            crate::storage::register_memory_store(bucket, store.clone());
            store
                .put(&Path::from("raw/a.avro"), data.clone().into())
                .await
                .unwrap();
            if truncated {
                let cut = data.slice(..data.len() / 2);
                store
                    .put(&Path::from("raw/b.avro"), cut.into())
                    .await
                    .unwrap();
            }
            let storage = crate::storage::StorageOptions::default();
            let inputs = crate::source::list_inputs(&[format!("memory://{bucket}/raw/")], &storage)
                .await
                .unwrap();
            let output =
                crate::storage::resolve(&format!("memory://{bucket}/out/"), &storage).unwrap();
            let mut options = ConvertOptions::default();
            options.encode.file_bytes = 256 << 10;
            options.encode.row_group_bytes = 64 << 10;
            options.group_bytes = 32 << 10;
            convert(inputs, &output, &options).await
        };
        let report = convert_into("finish-ok", None, false).await.unwrap();
        let names: Vec<&str> = report
            .outputs
            .iter()
            .map(|o| o.path.filename().unwrap())
            .collect();
        assert!(names.len() >= 4, "{names:?}");
        let expected: Vec<String> = (0..names.len())
            .map(|i| format!("part-{i:05}.snappy.parquet"))
            .collect();
        assert_eq!(names, expected);
        assert_eq!(report.outputs.iter().map(|o| o.rows).sum::<u64>(), 20_000);
        let err = convert_into("finish-fails", Some("part-00001"), false)
            .await
            .unwrap_err();
        let message = err.to_string();
        assert!(message.contains("part-00001"), "{message}");
        assert!(message.contains("refused"), "{message}");
        // No file after the one that failed is published, though the next ones were
        // finished meanwhile, and the one before it is deleted: a failed run publishes
        // nothing.
        assert_eq!(published("finish-fails").await, Vec::<String>::new());
        // When the input then fails too, the file that failed first is the error.
        let err = convert_into("finish-fails-then-input", Some("part-00001"), true)
            .await
            .unwrap_err();
        let message = err.to_string();
        assert!(message.contains("part-00001"), "{message}");
        assert_eq!(
            published("finish-fails-then-input").await,
            Vec::<String>::new()
        );
    }

    /// `Replace` tries every earlier file and counts those it cannot delete (the new files
    /// stay); a run that fails and cannot delete what it published says so in its error.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn files_that_cannot_be_deleted_are_counted_in_the_error() {
        let data = bytes::Bytes::from(
            crate::demo::write_events(Vec::new(), Codec::Deflate, 0, 20_000, 9).unwrap(),
        );
        let store = Arc::new(TestStore::default());
        crate::storage::register_memory_store("undeletable", store.clone());
        store
            .put(&Path::from("raw/a.avro"), data.clone().into())
            .await
            .unwrap();
        let storage = crate::storage::StorageOptions::default();
        let output = crate::storage::resolve("memory://undeletable/out/", &storage).unwrap();
        let inputs = async |urls: &[&str]| {
            let urls: Vec<String> = urls.iter().map(|u| u.to_string()).collect();
            crate::source::list_inputs(&urls, &storage).await.unwrap()
        };
        let mut options = ConvertOptions {
            existing: ExistingFiles::Refuse,
            ..ConvertOptions::default()
        };
        options.encode.file_bytes = 256 << 10;
        options.encode.row_group_bytes = 64 << 10;
        options.group_bytes = 32 << 10;
        let first = convert(
            inputs(&["memory://undeletable/raw/a.avro"]).await,
            &output,
            &options,
        )
        .await
        .unwrap();
        let earlier = first.outputs.len();
        assert!(earlier >= 2, "{earlier}");

        // Deletes refused: the run's files are published, none of the earlier ones deleted,
        // and the error counts them all.
        let refusing = Arc::new(TestStore {
            refuse_deletes: Some("part-".into()),
            ..TestStore::default()
        });
        crate::storage::register_memory_store("undeletable-2", refusing.clone());
        for p in published("undeletable").await {
            let from = Path::from(format!("out/{p}"));
            let bytes = store.get(&from).await.unwrap().bytes().await.unwrap();
            refusing.put(&from, bytes.into()).await.unwrap();
        }
        refusing
            .put(&Path::from("raw/a.avro"), data.clone().into())
            .await
            .unwrap();
        let output = crate::storage::resolve("memory://undeletable-2/out/", &storage).unwrap();
        options.existing = ExistingFiles::Replace;
        let err = convert(
            inputs(&["memory://undeletable-2/raw/a.avro"]).await,
            &output,
            &options,
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&err, ConvertError::Replace { left, .. } if *left == earlier),
            "{err}"
        );
        assert!(err.to_string().contains("the output holds both"), "{err}");
        assert_eq!(published("undeletable-2").await.len(), 2 * earlier);

        // A run that fails (a cut input after a whole one) and cannot delete its files.
        refusing
            .put(
                &Path::from("raw/b.avro"),
                data.slice(..data.len() / 2).into(),
            )
            .await
            .unwrap();
        let fresh = crate::storage::resolve("memory://undeletable-2/fresh/", &storage).unwrap();
        options.existing = ExistingFiles::Refuse;
        let err = convert(
            inputs(&["memory://undeletable-2/raw/"]).await,
            &fresh,
            &options,
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&err, ConvertError::Leftovers { left, .. } if *left >= 1),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("could not be deleted and are still in the output"),
            "{err}"
        );
    }

    /// Parts of large blocks go back to the driver without their share of the read budget:
    /// with them holding it, blocks of a few MiB under a small budget hung (the driver waited
    /// for the source, the source for the budget the parts held, the parts for the driver).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn large_blocks_under_a_small_read_budget_convert() {
        let schema = r#"{"type":"record","name":"R","fields":[
            {"name":"id","type":"long"},{"name":"s","type":"string"}]}"#;
        let mut w = ContainerWriter::new(
            Vec::new(),
            schema,
            Codec::Deflate,
            [1; 16],
            &BTreeMap::new(),
        )
        .unwrap()
        .with_block_bytes(3 << 20);
        // Letters from a xorshift: ~60% of their size deflated, so each block's budget is
        // large.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut d = Datum::new();
        let records = 18_000i64;
        for id in 0..records {
            let s: String = (0..1000)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    char::from(b'a' + (x % 26) as u8)
                })
                .collect();
            d.clear();
            d.long(id).string(&s);
            w.append(&d.buf).unwrap();
        }
        let data = bytes::Bytes::from(w.finish().unwrap());
        let store = Arc::new(TestStore::default());
        crate::storage::register_memory_store("small-budget", store.clone());
        store
            .put(&Path::from("raw/big.avro"), data.into())
            .await
            .unwrap();
        let storage = crate::storage::StorageOptions::default();
        let inputs = crate::source::list_inputs(&["memory://small-budget/raw/".into()], &storage)
            .await
            .unwrap();
        let output = crate::storage::resolve("memory://small-budget/out/", &storage).unwrap();
        let mut options = ConvertOptions {
            threads: 2,
            // Parts of 1 MiB: each 3 MiB block is cut.
            group_decoded_bytes: 2 << 20,
            ..ConvertOptions::default()
        };
        // Two blocks' worth.
        options.source.budget_bytes = 4 << 20;
        let report =
            tokio::time::timeout(Duration::from_secs(120), convert(inputs, &output, &options))
                .await
                .expect("the conversion hung")
                .unwrap();
        assert_eq!(report.outputs.iter().map(|o| o.rows).sum::<u64>(), 18_000);
        assert_eq!(report.inputs[0].blocks, 6);
    }

    /// The files under `memory://{bucket}/out/`.
    async fn published(bucket: &str) -> Vec<String> {
        use futures::TryStreamExt;
        let store = crate::storage::resolve(
            &format!("memory://{bucket}/out/"),
            &crate::storage::StorageOptions::default(),
        )
        .unwrap()
        .store;
        let mut names: Vec<String> = store
            .list(Some(&Path::from("out")))
            .map_ok(|m| m.location.filename().unwrap_or_default().to_string())
            .try_collect()
            .await
            .unwrap();
        names.sort();
        names
    }
}
