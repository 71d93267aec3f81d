//! Arrow batches -> Parquet files, the columns of each row group encoded in parallel.
//!
//! Stage: after decoding, before the sink. A [`FileEncoder`] writes one Parquet file to any
//! `Write` (the sink's uploader, a local file, a buffer). Each top-level column of a batch is
//! split into its leaf columns (their levels) by a task of its own on the rayon pool, and each
//! leaf column is encoded by its own writer there, each column at its own pace, so a row group
//! of 40 columns keeps every core busy. The leaves of strings, binaries, integers, dates,
//! times, timestamps, decimals up to 18 digits, fixed-size binaries, booleans and floats, at
//! any depth of structs, lists and maps, with any of the codecs, go to our own column writer
//! (`plain`), faster than parquet-rs's generic one, and take their top-level array (the
//! leaves of one array under the same list share its levels, `plain::SharedLevels`); the
//! others (wider decimals) go to parquet-rs's [`ArrowColumnWriter`]. A row group is closed when its estimated encoded size reaches
//! [`EncodeOptions::row_group_bytes`], or when the file would pass
//! [`EncodeOptions::file_bytes`]: its columns are closed, and its pages written out to the
//! sink by a background thread while the next one fills; callers start a new file once
//! [`FileEncoder::is_full`].
//!
//! Dictionaries: a column whose first batch is nearly all distinct gets none
//! ([`high_cardinality_columns`]); in a file made so ([`FileEncoder::for_batch`]), one whose
//! first 4,096 values in a row group are nearly all distinct (a sparse column the first
//! batch held too few values of) gives its dictionary up there. One given up so, or one that
//! outgrew its limit before half a row group (clustered timestamps, say, that look repetitive
//! in a batch), starts the next row group, and the caller's next file
//! ([`FileEncoder::plain_columns`]), without one instead of building it again to give it up
//! again.
//!
//! Output is deterministic: the same batches and options give byte-identical files (no clock,
//! no random names; `created_by` names this crate's version).
//!
//! Limitations: a row group's finished pages are held until it is closed — in memory, so memory
//! grows with `row_group_bytes`, unless [`EncodeOptions::spill`] puts them in temporary files;
//! up to two batches per row group wait in the column queues, and while a row group is written
//! out the next one holds its own pages. Files end within about one row group's estimate error
//! of their target size.

use std::collections::VecDeque;
use std::io::Write;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{FieldRef, SchemaRef};
use bytes::Bytes;
use parquet::arrow::ArrowSchemaConverter;
use parquet::arrow::add_encoded_arrow_schema_to_metadata;
use parquet::arrow::arrow_writer::{
    ArrowColumnChunk, ArrowColumnWriter, ArrowLeafColumn, ArrowRowGroupWriterFactory,
    compute_leaves,
};
use parquet::basic::{Compression, Encoding, GzipLevel, ZstdLevel};
use parquet::column::page_store::{PageKey, PageStore, PageStoreArgs, PageStoreFactory};
use parquet::errors::ParquetError;
use parquet::file::properties::{WriterProperties, WriterVersion};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;
use rayon::ThreadPool;
use rayon::prelude::*;

mod delta;
mod plain;

use plain::{Leaf, Pages, PlainChunk, PlainColumn, SharedLevels};

/// Errors of the encode layer.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The Parquet writer failed (including I/O errors of the sink below it).
    #[error("writing Parquet: {0}")]
    Parquet(#[from] ParquetError),
    /// A batch does not match the file's schema.
    #[error("batch schema does not match the file schema")]
    Schema,
    /// An invalid compression setting.
    #[error("invalid compression `{0}`: expected snappy, zstd[:level], gzip[:level], lz4 or none")]
    Compression(String),
    /// The thread writing out a row group panicked (a bug); the file is lost.
    #[error("the thread writing out a row group stopped")]
    Stopped,
}

/// The compression codec of output files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Codec(pub Compression);

impl Codec {
    /// The name used in file names: `snappy`, `zstd`, `gz`, `lz4`, `none`.
    pub fn extension(&self) -> &'static str {
        match self.0 {
            Compression::SNAPPY => "snappy",
            Compression::ZSTD(_) => "zstd",
            Compression::GZIP(_) => "gz",
            Compression::LZ4_RAW | Compression::LZ4 => "lz4",
            _ => "none",
        }
    }
}

impl FromStr for Codec {
    type Err = EncodeError;

    /// Parses `snappy`, `zstd`, `zstd:LEVEL`, `gzip`, `gzip:LEVEL`, `lz4`, `none`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || EncodeError::Compression(s.to_string());
        let (name, level) = match s.split_once(':') {
            Some((n, l)) => (n, Some(l.parse::<u32>().map_err(|_| err())?)),
            None => (s, None),
        };
        let c = match (name.to_ascii_lowercase().as_str(), level) {
            ("snappy", None) => Compression::SNAPPY,
            ("zstd", l) => {
                Compression::ZSTD(ZstdLevel::try_new(l.unwrap_or(3) as i32).map_err(|_| err())?)
            }
            ("gzip", l) => {
                Compression::GZIP(GzipLevel::try_new(l.unwrap_or(6)).map_err(|_| err())?)
            }
            ("lz4", None) => Compression::LZ4_RAW,
            ("none" | "uncompressed", None) => Compression::UNCOMPRESSED,
            _ => return Err(err()),
        };
        Ok(Codec(c))
    }
}

/// How files are encoded.
#[derive(Debug, Clone)]
pub struct EncodeOptions {
    /// Page compression.
    pub compression: Codec,
    /// Close a row group once its estimated encoded size reaches this.
    pub row_group_bytes: usize,
    /// Target size of a file: the row group is closed early so that the file ends near it.
    pub file_bytes: usize,
    /// Write dictionary pages (Parquet falls back to plain encoding when a dictionary grows).
    pub dictionary: bool,
    /// Keep the finished pages of the open row group in temporary files instead of memory, so
    /// memory does not grow with the row group size.
    pub spill: bool,
    /// How strings and binaries are encoded where they have no dictionary.
    pub byte_array_encoding: ByteArrayEncoding,
}

/// The encoding of byte-array (string, binary) values without a dictionary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ByteArrayEncoding {
    /// `PLAIN`: each value after its 4-byte length. What every reader reads.
    #[default]
    Plain,
    /// `DELTA_LENGTH_BYTE_ARRAY`: the lengths (delta-encoded, bit-packed), then the bytes.
    /// Smaller and faster to write and read; the Parquet specification prefers it to
    /// `PLAIN`, and Trino (Athena engine 3), Hive (parquet-java), Spark 3.4+, DuckDB,
    /// pyarrow and arrow-rs read it, but Spark's vectorized reader before 3.4 (AWS Glue 4,
    /// EMR 6), Iceberg's vectorized Arrow reader (up to 1.10) and older Velox do not.
    DeltaLength,
}

impl FromStr for ByteArrayEncoding {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "plain" => Ok(Self::Plain),
            "delta-length" | "delta-length-byte-array" => Ok(Self::DeltaLength),
            _ => Err(format!(
                "unknown byte array encoding `{s}` (expected plain or delta-length)"
            )),
        }
    }
}

impl Default for EncodeOptions {
    /// Snappy, 128 MiB row groups, 512 MiB files, dictionaries on, the open row group's pages
    /// in temporary files (measured: half the peak memory, no slower, as the pages are written
    /// once to the page cache and read back once).
    fn default() -> Self {
        Self {
            compression: Codec(Compression::SNAPPY),
            row_group_bytes: 128 << 20,
            file_bytes: 512 << 20,
            dictionary: true,
            spill: true,
            byte_array_encoding: ByteArrayEncoding::Plain,
        }
    }
}

impl EncodeOptions {
    /// The writer properties for a file of `schema`.
    pub fn properties(&self, schema: &arrow_schema::Schema) -> WriterProperties {
        self.properties_without_dictionary(schema, &[])
    }

    /// The writer properties for a file of `schema`, with no dictionary for `plain` columns.
    ///
    /// Each column writer holds its unfinished page and its dictionary in memory until they
    /// are cut (pages are spilled only once finished); a column keeps a dictionary of up to
    /// 1 MiB and pages of up to 1 MiB or 20,000 values. On a wide schema that is a lot (3,000
    /// columns held 900 MiB): so the limits shrink to share `WRITER_BUFFER_BYTES` among
    /// the leaf columns, down to 8 KiB each.
    pub fn properties_without_dictionary(
        &self,
        schema: &arrow_schema::Schema,
        plain: &[ColumnPath],
    ) -> WriterProperties {
        let leaves: usize = schema
            .fields()
            .iter()
            .map(|f| leaf_count(f.data_type()))
            .sum();
        let per_column = (WRITER_BUFFER_BYTES / leaves.max(1)).clamp(8 << 10, DEFAULT_COLUMN_BYTES);
        let mut builder = WriterProperties::builder()
            .set_writer_version(WriterVersion::PARQUET_1_0)
            .set_compression(self.compression.0)
            .set_dictionary_enabled(self.dictionary)
            .set_data_page_size_limit(per_column)
            .set_dictionary_page_size_limit(per_column)
            // Values of a dictionary page are buffered as 8-byte keys.
            .set_data_page_row_count_limit((per_column / 8).clamp(1024, 20_000))
            .set_created_by(format!("parqour version {}", env!("CARGO_PKG_VERSION")));
        for path in plain {
            builder = builder.set_column_dictionary_enabled(path.clone(), false);
        }
        if self.byte_array_encoding == ByteArrayEncoding::DeltaLength {
            // Per column: parquet-rs refuses the encoding for other physical types. (A schema
            // that does not convert fails in the writer, which converts it again.)
            if let Ok(descr) = ArrowSchemaConverter::new().convert(schema) {
                for c in descr.columns() {
                    if c.physical_type() == parquet::basic::Type::BYTE_ARRAY {
                        builder = builder.set_column_encoding(
                            c.path().clone(),
                            Encoding::DELTA_LENGTH_BYTE_ARRAY,
                        );
                    }
                }
            }
        }
        let mut props = builder.build();
        add_encoded_arrow_schema_to_metadata(schema, &mut props);
        props
    }
}

/// Bytes of unfinished pages and dictionaries the column writers of a file share (see
/// [`EncodeOptions::properties_without_dictionary`]): up to 64 leaf columns keep parquet-rs's
/// defaults (1 MiB pages and dictionaries, 20,000 values a page).
const WRITER_BUFFER_BYTES: usize = 64 << 20;

/// parquet-rs's default page and dictionary page size limit, which a column keeps while its
/// share of [`WRITER_BUFFER_BYTES`] is at least that; a smaller limit is such a share.
pub(crate) const DEFAULT_COLUMN_BYTES: usize = 1 << 20;

/// Parquet leaf columns of an Arrow type.
fn leaf_count(data_type: &arrow_schema::DataType) -> usize {
    use arrow_schema::DataType;
    match data_type {
        DataType::Struct(fields) => fields.iter().map(|f| leaf_count(f.data_type())).sum(),
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::ListView(f)
        | DataType::LargeListView(f)
        | DataType::FixedSizeList(f, _)
        | DataType::Map(f, _) => leaf_count(f.data_type()),
        _ => 1,
    }
}

/// Values sampled per column to judge its cardinality.
const SAMPLE: usize = 4096;
const _: () = assert!(SAMPLE.is_power_of_two());

/// The leaf columns of `batch` whose sampled values are nearly all distinct (ids, URLs, hashes,
/// timestamps). A dictionary on such a column grows until Parquet gives it up for plain
/// encoding, after hashing every value: time spent for nothing. Judged on the first batch of a
/// file (so the choice is the same on every run over the same data), in structs, lists and
/// maps alike.
pub fn high_cardinality_columns(batch: &RecordBatch) -> Vec<ColumnPath> {
    let mut out = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        visit_leaves(vec![field.name().clone()], column.as_ref(), &mut out);
    }
    out
}

fn visit_leaves(path: Vec<String>, array: &dyn arrow_array::Array, out: &mut Vec<ColumnPath>) {
    use arrow_array::cast::AsArray;
    use arrow_schema::DataType;
    match array.data_type() {
        DataType::Struct(fields) => {
            let s = array.as_struct();
            for (f, c) in fields.iter().zip(s.columns()) {
                let mut p = path.clone();
                p.push(f.name().clone());
                visit_leaves(p, c.as_ref(), out);
            }
        }
        // Parquet names a list's leaves `name.list.<item>`, a map's `name.<entries>.key`
        // and `.value` (as parquet-rs's schema converter writes them); the values of all
        // rows are sampled, as the column holds them.
        DataType::List(item) => {
            let mut p = path;
            p.push("list".to_string());
            p.push(item.name().clone());
            visit_leaves(p, array.as_list::<i32>().values().as_ref(), out);
        }
        DataType::Map(entries, _) => {
            let mut p = path;
            p.push(entries.name().clone());
            visit_leaves(p, array.as_map().entries(), out);
        }
        DataType::Boolean => {}
        _ => {
            if nearly_unique(array) {
                out.push(ColumnPath::new(path));
            }
        }
    }
}

/// At least 99% of the first (up to) [`SAMPLE`] non-null values distinct, over at least 512.
///
/// Drawn from N equally likely values, n samples are about 1 - n / 2N distinct: 99% of 4,096
/// means more than ~200,000 values, whose dictionary (at 5 bytes or more each) would outgrow
/// its 1 MiB limit and be given up anyway. A column of 65,536 values samples ~97% distinct
/// and keeps its dictionary, which holds it in half a megabyte and pays for itself.
fn nearly_unique(array: &dyn arrow_array::Array) -> bool {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_schema::DataType;
    let mut seen = Distinct::new();
    let mut take = |i: usize, bytes: &[u8]| {
        if array.is_valid(i) {
            seen.insert(bytes);
        }
        seen.sampled < SAMPLE
    };
    match array.data_type() {
        DataType::Utf8 => {
            let a = array.as_string::<i32>();
            for i in 0..a.len() {
                if !take(i, a.value(i).as_bytes()) {
                    break;
                }
            }
        }
        DataType::Binary => {
            let a = array.as_binary::<i32>();
            for i in 0..a.len() {
                if !take(i, a.value(i)) {
                    break;
                }
            }
        }
        DataType::FixedSizeBinary(_) => {
            let a = array.as_fixed_size_binary();
            for i in 0..a.len() {
                if !take(i, a.value(i)) {
                    break;
                }
            }
        }
        dt => {
            let Some(width) = dt.primitive_width() else {
                return false;
            };
            let data = array.to_data();
            let Some(values) = data.buffers().first() else {
                return false;
            };
            let bytes = values.as_slice();
            for i in 0..array.len() {
                let start = (data.offset() + i) * width;
                let Some(v) = bytes.get(start..start + width) else {
                    break;
                };
                if !take(i, v) {
                    break;
                }
            }
        }
    }
    seen.sampled >= 512 && seen.distinct * 100 >= seen.sampled * 99
}

/// Counts the distinct values among up to [`SAMPLE`] by their 64-bit hashes ([`crate::hash`],
/// seeded per sample), in an open-addressed table of twice [`SAMPLE`] slots: a value costs a
/// hash and a probe or two (a `HashSet` of SipHashes of SipHashes took ~400 instructions a
/// value, 2.7% of a one-file conversion's). Two values whose hashes collide count once: at 4,096
/// values, a chance of ~1e-12.
struct Distinct {
    seed: u64,
    /// Hashes with the low bit set (so that 0 marks an empty slot).
    slots: Box<[u64; 2 * SAMPLE]>,
    sampled: usize,
    distinct: usize,
}

impl Distinct {
    fn new() -> Self {
        Self {
            seed: crate::hash::random_seed(),
            slots: Box::new([0; 2 * SAMPLE]),
            sampled: 0,
            distinct: 0,
        }
    }

    /// Adds one value to the sample; past [`SAMPLE`] values, does nothing.
    fn insert(&mut self, v: &[u8]) {
        if self.sampled >= SAMPLE {
            return;
        }
        self.sampled += 1;
        let h = crate::hash::bytes(self.seed, v) | 1;
        let mask = self.slots.len() - 1;
        // The high bits pick the slot (the low one is forced on).
        let mut i = (h >> 40) as usize & mask;
        loop {
            match self.slots[i] {
                0 => {
                    self.slots[i] = h;
                    self.distinct += 1;
                    return;
                }
                s if s == h => return,
                _ => i = (i + 1) & mask,
            }
        }
    }
}

/// Keeps the finished pages of the open row group in anonymous temporary files (deleted by the
/// operating system once closed) until the row group is written out.
///
/// A row group's columns share a few files, column `i` using file `i % n`, with `n` twice the
/// thread count: open files grow with the threads, not with the columns (a file per column
/// chunk ran out of file descriptors at ~1,000 columns under the usual limit of 1,024), and
/// columns written at the same time seldom wait for the same file. A row group's files go
/// back to the encoder when its last column chunk is written out, for the next row groups to
/// write over, and are closed with it (on 20,000,000 events: 9.7 -> 7.0 s of system time).
#[derive(Debug)]
struct SpillPages {
    /// Files per row group.
    files: usize,
    /// The files of the row group whose column writers are being created.
    current: Mutex<Vec<Arc<SpillFile>>>,
    /// Files whose row group was written out, to write the next ones over.
    free: Arc<Mutex<Vec<std::fs::File>>>,
}

/// One spill file: pages appended at its end.
#[derive(Debug)]
struct SpillFile {
    /// The file and its length.
    file: Mutex<(std::fs::File, u64)>,
    /// Where the file goes once its row group is written out.
    free: Arc<Mutex<Vec<std::fs::File>>>,
}

impl Drop for SpillFile {
    /// The file is written over by a later row group: pages written over where the page cache
    /// holds them already cost a copy, where a new file's cost the kernel allocating,
    /// reserving and, once the file is closed, dropping each of them again.
    fn drop(&mut self) {
        // The same open file (a second descriptor of it), so its cached pages stay; should
        // that fail, the next row group makes a new file.
        let file = match self.file.get_mut() {
            Ok((file, _)) => file.try_clone().ok(),
            Err(_) => None,
        };
        if let Some(file) = file {
            lock(&self.free).push(file);
        }
    }
}

impl SpillPages {
    fn new(files: usize) -> Self {
        Self {
            files: files.max(1),
            current: Mutex::new(Vec::new()),
            free: Arc::default(),
        }
    }

    /// Opens the files of the next row group's column chunks.
    fn next_row_group(&self) -> Result<(), ParquetError> {
        let files = (0..self.files)
            .map(|_| {
                let file = match lock(&self.free).pop() {
                    Some(file) => file,
                    None => tempfile::tempfile().map_err(|e| {
                        ParquetError::General(format!("creating a spill file: {e}"))
                    })?,
                };
                Ok(Arc::new(SpillFile {
                    file: Mutex::new((file, 0)),
                    free: self.free.clone(),
                }))
            })
            .collect::<Result<_, ParquetError>>()?;
        *lock(&self.current) = files;
        Ok(())
    }
}

impl SpillPages {
    /// The store of leaf column `column` in the current row group.
    fn store(&self, column: usize) -> Result<Box<dyn PageStore>, ParquetError> {
        let current = lock(&self.current);
        let file = current
            .get(column % current.len().max(1))
            .ok_or_else(|| ParquetError::General("no spill file for the row group".into()))?;
        Ok(Box::new(SpillStore {
            file: file.clone(),
            pages: Vec::new(),
        }))
    }
}

impl PageStoreFactory for SpillPages {
    fn create(&self, args: &PageStoreArgs<'_>) -> Result<Box<dyn PageStore>, ParquetError> {
        self.store(args.column_index())
    }
}

/// A column chunk's pages in a shared [`SpillFile`].
struct SpillStore {
    file: Arc<SpillFile>,
    /// (offset, length) of each page, by key.
    pages: Vec<(u64, usize)>,
}

impl PageStore for SpillStore {
    fn put(&mut self, value: Bytes) -> Result<PageKey, ParquetError> {
        use std::io::{Seek, SeekFrom};
        let mut guard = lock(&self.file.file);
        let (file, end) = &mut *guard;
        let offset = *end;
        file.seek(SeekFrom::Start(offset))?;
        file.write_all(&value)?;
        *end += value.len() as u64;
        self.pages.push((offset, value.len()));
        Ok(PageKey::new(self.pages.len() as u64 - 1))
    }

    fn take(&mut self, key: PageKey) -> Result<Bytes, ParquetError> {
        use std::io::{Read, Seek, SeekFrom};
        let (offset, len) = usize::try_from(key.get())
            .ok()
            .and_then(|i| self.pages.get(i).copied())
            .ok_or_else(|| ParquetError::General(format!("no spilled page {}", key.get())))?;
        // One read into the thread's buffer (zero-filled only as it grows), which the page holds
        // until it is copied to the file. (`read_to_end` into spare room would skip the
        // zeroing but read a page in reads of 8 KiB doubling up: three times the syscalls.)
        let mut guard = lock(&self.file.file);
        let (file, _) = &mut *guard;
        file.seek(SeekFrom::Start(offset))?;
        let page = plain::lend(&SPILLED_PAGE, len, |buf| file.read_exact(buf).map(|()| len))?;
        Ok(page)
    }
}

/// What a finished file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSummary {
    /// Rows.
    pub rows: u64,
    /// Row groups.
    pub row_groups: usize,
    /// The leaf columns that went without a dictionary by the end
    /// ([`FileEncoder::plain_columns`]): how the next file of the same data should start.
    pub plain_columns: Vec<ColumnPath>,
}

/// One leaf column of the open row group: its writer and the leaves waiting for it.
///
/// At most one pool task drains a slot at a time, so each column sees its leaves in order.
struct Slot {
    state: Mutex<SlotState>,
}

struct SlotState {
    /// `None` while a task has it out for writing.
    writer: Option<LeafWriter>,
    queue: VecDeque<LeafData>,
    running: bool,
    error: Option<ParquetError>,
}

/// The writer of one leaf column: parquet-rs's, or ours for plain columns.
enum LeafWriter {
    Arrow(Box<ArrowColumnWriter>),
    Plain(Box<PlainColumn>),
}

/// What a leaf column's writer is given: the leaf with its levels, or (for our plain writer)
/// the top-level array itself, with the levels its leaves share.
enum LeafData {
    Levels(ArrowLeafColumn),
    Array(ArrayRef, Arc<SharedLevels>),
}

/// A closed leaf column chunk, to append to the row group.
enum LeafChunk {
    Arrow(ArrowColumnChunk),
    Plain(PlainChunk),
}

impl LeafWriter {
    fn write(&mut self, leaf: &LeafData) -> Result<(), ParquetError> {
        match (self, leaf) {
            (LeafWriter::Arrow(w), LeafData::Levels(l)) => w.write(l),
            (LeafWriter::Plain(w), LeafData::Array(a, shared)) => w.write(a.as_ref(), shared),
            _ => Err(ParquetError::General(
                "a leaf column was given data of the wrong form (a bug)".into(),
            )),
        }
    }

    fn estimated_bytes(&self) -> usize {
        match self {
            LeafWriter::Arrow(w) => w.get_estimated_total_bytes(),
            LeafWriter::Plain(w) => w.estimated_bytes(),
        }
    }

    fn close(self) -> Result<LeafChunk, ParquetError> {
        match self {
            LeafWriter::Arrow(w) => w.close().map(LeafChunk::Arrow),
            LeafWriter::Plain(w) => w.close().map(LeafChunk::Plain),
        }
    }
}

/// One top-level column of the open row group: splits its arrays into leaf columns (computing
/// their definition and repetition levels) in order, on the pool, and queues each on its slot.
/// The levels are a pass over every value: computed here, they stay off the thread that feeds
/// the encoder, which on many cores would otherwise bound the speed.
struct FieldSlot {
    field: FieldRef,
    /// For each leaf, whether our plain writer writes it (it takes the array as it is,
    /// without levels).
    plain: Vec<bool>,
    /// The slots of this column's leaves, in order.
    leaves: Vec<Arc<Slot>>,
    state: Mutex<FieldState>,
}

struct FieldState {
    queue: VecDeque<ArrayRef>,
    running: bool,
    error: Option<ParquetError>,
}

/// Leaves queued or being written, across all slots; the writer waits on it.
#[derive(Default)]
struct InFlight {
    /// (leaves in flight, the count the writer waits for, if it waits).
    state: Mutex<(usize, Option<usize>)>,
    changed: Condvar,
}

impl InFlight {
    fn add(&self, n: usize) {
        lock(&self.state).0 += n;
    }

    fn done(&self) {
        let mut s = lock(&self.state);
        s.0 = s.0.saturating_sub(1);
        // Wake the writer only when it can go on: a wake-up per leaf costs more than the leaf.
        if s.1.is_some_and(|limit| s.0 <= limit) {
            s.1 = None;
            self.changed.notify_one();
        }
    }

    /// Blocks until at most `limit` leaves are in flight.
    fn wait_until(&self, limit: usize) {
        let mut s = lock(&self.state);
        while s.0 > limit {
            s.1 = Some(limit);
            s = self
                .changed
                .wait(s)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }
}

thread_local! {
    /// The buffer spilled pages are read back into on this thread ([`plain::lend`]).
    static SPILLED_PAGE: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Locks, ignoring poisoning: a panicking writer task is reported through its slot instead.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Writes one Parquet file, encoding its leaf columns in parallel on a rayon pool.
///
/// Each leaf column has its own queue and is drained by at most one pool task at a time, so
/// columns advance independently: a slow column (long strings, say) keeps one core busy while the
/// others move on to the next batch, instead of every batch waiting for its slowest column.
///
/// A full row group is written out in the background: a thread waits for its column tasks and
/// closes its columns (on the pool), which `write` waits for, then copies their pages to the
/// sink while `write` goes on filling the next row group. At most one row group is being
/// written out at a time.
///
/// Sizes are checked at points fixed by the data, and every cut depends only on sizes that do
/// not depend on timing: the first two row groups are measured (after the queued leaves are
/// written, every eighth of a row group's worth of Arrow bytes); later ones are predicted from
/// the encoded/Arrow ratio of the row groups written out before the last one closed, and the
/// file's size counts that last one by its estimate. So output bytes do not depend on the thread
/// count or the machine's speed.
pub struct FileEncoder<W: Write + Send + 'static> {
    /// `None` while a row group is being written out.
    writer: Option<SerializedFileWriter<W>>,
    /// The row group being written out.
    sealing: Option<Sealing<W>>,
    factory: ArrowRowGroupWriterFactory,
    /// Where the open row group's pages wait, when spilled.
    spill: Option<Arc<SpillPages>>,
    schema: SchemaRef,
    pool: Arc<ThreadPool>,
    /// The open row group's top-level columns (each with its leaf columns), and its leaves in
    /// flight.
    fields: Option<Vec<Arc<FieldSlot>>>,
    /// Leaves of each top-level column.
    leaf_counts: Vec<usize>,
    /// For each leaf column, what our plain writer needs when it writes it.
    plain_leaves: Vec<Option<Leaf>>,
    /// For each leaf column, whether it goes without a dictionary from the next row group on:
    /// its dictionary was given up early in a row group before ([`PlainChunk`]).
    no_dictionary: Vec<bool>,
    /// Whether each chunk's dictionary is judged on its first values, and given up when they
    /// are nearly all distinct (files made by [`FileEncoder::for_batch`]).
    judge_dictionaries: bool,
    props: Arc<WriterProperties>,
    parquet_schema: parquet::schema::types::SchemaDescPtr,
    in_flight: Arc<InFlight>,
    /// Most leaves of the open row group queued before `write` waits (bounds the batches held
    /// in memory).
    max_in_flight: usize,
    /// Row groups closed (written out or being written out).
    sealed: usize,
    /// The row groups written out, in order.
    written: Vec<Written>,
    rows_in_group: usize,
    /// Arrow bytes queued since sizes were last checked.
    bytes_since_check: usize,
    /// Arrow bytes of the open row group.
    arrow_bytes_in_group: usize,
    /// File bytes before the first row group (the magic).
    header_bytes: usize,
    rows: u64,
    row_group_bytes: usize,
    file_bytes: usize,
    /// The file reached its target size: the caller starts a new one.
    full: bool,
    /// The caller's estimate of the Arrow bytes still to come ([`Self::expect_rest`]).
    rest: Option<usize>,
    /// A row group was closed early so that the file's last one is short.
    cut_for_end: bool,
}

/// The bytes of a batch's values as the encoder counts them (to predict encoded sizes):
/// those its rows use, not the buffers' capacity.
pub fn batch_bytes(batch: &RecordBatch) -> usize {
    batch
        .columns()
        .iter()
        .map(|c| c.to_data().get_slice_memory_size().unwrap_or(0))
        .sum()
}

/// A row group being written out by its own thread, which owns the file writer meanwhile.
struct Sealing<W: Write + Send + 'static> {
    handle: std::thread::JoinHandle<(SerializedFileWriter<W>, Result<u64, EncodeError>)>,
    /// Set by the thread when it fails, so that `write` stops at once instead of filling a row
    /// group that cannot be written.
    failed: Arc<AtomicBool>,
    arrow_bytes: usize,
    /// Its encoded size as estimated when it was closed.
    estimate: usize,
}

/// A row group written out.
#[derive(Debug, Clone, Copy)]
struct Written {
    encoded: u64,
    arrow: u64,
    /// File bytes once it was written.
    file_bytes: usize,
}

impl<W: Write + Send + 'static> std::fmt::Debug for FileEncoder<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileEncoder")
            .field("row_groups", &self.sealed)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl<W: Write + Send + 'static> FileEncoder<W> {
    /// Starts a file of `schema` on `sink`, encoding on `pool`.
    pub fn new(
        sink: W,
        schema: SchemaRef,
        options: &EncodeOptions,
        pool: Arc<ThreadPool>,
    ) -> Result<Self, EncodeError> {
        Self::with_plain_columns(sink, schema, options, pool, &[])
    }

    /// A file for batches like `first` (its first batch): columns whose values are nearly all
    /// distinct in it are written without a dictionary ([`high_cardinality_columns`]), and
    /// so are the `known` ones (those of the file before, [`FileEncoder::plain_columns`]).
    /// The others' dictionaries are judged again in each row group, once 4,096 values were
    /// looked up (`first` may hold too few of a sparse column's), and given up from there
    /// when those are nearly all distinct ([`FileEncoder::new`] keeps them, as parquet-rs).
    pub fn for_batch(
        sink: W,
        first: &RecordBatch,
        known: &[ColumnPath],
        options: &EncodeOptions,
        pool: Arc<ThreadPool>,
    ) -> Result<Self, EncodeError> {
        let mut plain = if options.dictionary {
            high_cardinality_columns(first)
        } else {
            Vec::new()
        };
        for path in known {
            if !plain.contains(path) {
                plain.push(path.clone());
            }
        }
        let mut encoder = Self::with_plain_columns(sink, first.schema(), options, pool, &plain)?;
        encoder.judge_dictionaries = true;
        Ok(encoder)
    }

    /// The leaf columns written without a dictionary by now: by choice, or because their
    /// dictionary was given up early in a row group.
    pub fn plain_columns(&self) -> Vec<ColumnPath> {
        (0..self.parquet_schema.num_columns())
            .map(|i| self.parquet_schema.column(i).path().clone())
            .zip(&self.no_dictionary)
            .filter(|(path, given_up)| **given_up || !self.props.dictionary_enabled(path))
            .map(|(path, _)| path)
            .collect()
    }

    fn with_plain_columns(
        sink: W,
        schema: SchemaRef,
        options: &EncodeOptions,
        pool: Arc<ThreadPool>,
        plain: &[ColumnPath],
    ) -> Result<Self, EncodeError> {
        let props = Arc::new(options.properties_without_dictionary(&schema, plain));
        let parquet_schema = ArrowSchemaConverter::new()
            .with_coerce_types(props.coerce_types())
            .convert(&schema)?;
        let leaves = parquet_schema.num_columns();
        let mut leaf_counts = vec![0; schema.fields().len()];
        for i in 0..leaves {
            if let Some(n) = leaf_counts.get_mut(parquet_schema.get_column_root_idx(i)) {
                *n += 1;
            }
        }
        let plain_leaves: Vec<Option<Leaf>> = (0..leaves)
            .map(|i| {
                let root = parquet_schema.get_column_root_idx(i);
                let descr = parquet_schema.column(i);
                Leaf::of(schema.fields().get(root)?, &descr, &props)
            })
            .collect();
        let writer =
            SerializedFileWriter::new(sink, parquet_schema.root_schema_ptr(), props.clone())?;
        let mut factory = ArrowRowGroupWriterFactory::new(&writer, schema.clone());
        let spill = options.spill.then(|| {
            let files = (2 * pool.current_num_threads()).min(leaves);
            Arc::new(SpillPages::new(files))
        });
        if let Some(spill) = &spill {
            factory = factory.with_page_store_factory(spill.clone());
        }
        Ok(Self {
            header_bytes: writer.bytes_written(),
            writer: Some(writer),
            sealing: None,
            factory,
            spill,
            schema,
            pool,
            fields: None,
            leaf_counts,
            plain_leaves,
            no_dictionary: vec![false; leaves],
            judge_dictionaries: false,
            props,
            parquet_schema: Arc::new(parquet_schema),
            in_flight: Arc::default(),
            max_in_flight: leaves.max(1) * 2,
            sealed: 0,
            written: Vec::new(),
            rows_in_group: 0,
            bytes_since_check: 0,
            arrow_bytes_in_group: 0,
            rows: 0,
            row_group_bytes: options.row_group_bytes.max(1),
            file_bytes: options.file_bytes.max(1),
            full: false,
            rest: None,
            cut_for_end: false,
        })
    }

    /// The file's Arrow schema.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Row groups closed so far (written out, or being written out).
    pub fn row_groups(&self) -> usize {
        self.sealed
    }

    /// Queues a batch for encoding; closes the row group when it reaches its size or the file
    /// its target. Returns once the batch is queued (or an earlier write failed).
    ///
    /// A batch whose column needs more than [`MAX_BATCH_LEVELS`] levels is queued in slices of
    /// rows that need fewer (see there).
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), EncodeError> {
        self.write_in_slices(batch, MAX_BATCH_LEVELS)
    }

    /// [`Self::write`], in slices of rows that need at most `max_levels` levels per column
    /// (halved until they do; a single row is written whole).
    fn write_in_slices(
        &mut self,
        batch: &RecordBatch,
        max_levels: usize,
    ) -> Result<(), EncodeError> {
        let rows = batch.num_rows();
        let most = batch
            .columns()
            .iter()
            .map(|c| levels_at_most(c.as_ref()))
            .max()
            .unwrap_or(0);
        if most > max_levels && rows > 1 {
            self.write_in_slices(&batch.slice(0, rows / 2), max_levels)?;
            return self.write_in_slices(&batch.slice(rows / 2, rows - rows / 2), max_levels);
        }
        self.write_whole(batch)
    }

    /// Queues a batch for encoding as one.
    fn write_whole(&mut self, batch: &RecordBatch) -> Result<(), EncodeError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if batch.schema().fields() != self.schema.fields() {
            return Err(EncodeError::Schema);
        }
        if self
            .sealing
            .as_ref()
            .is_some_and(|s| s.failed.load(Ordering::Acquire))
        {
            // The row group in the background failed (the sink, say): report it now.
            self.join()?;
        }
        let bytes = batch_bytes(batch);
        if self.fields.is_none() {
            self.open_row_group()?;
        }
        self.in_flight.add(self.leaf_counts.iter().sum());
        for (field, column) in self.fields.iter().flatten().zip(batch.columns()) {
            let mut state = lock(&field.state);
            state.queue.push_back(column.clone());
            if !state.running {
                state.running = true;
                let field = field.clone();
                let in_flight = self.in_flight.clone();
                self.pool.spawn(move || split(&field, &in_flight));
            }
        }
        self.rows_in_group += batch.num_rows();
        self.bytes_since_check += bytes;
        self.rows += batch.num_rows() as u64;
        self.in_flight.wait_until(self.max_in_flight);
        self.check_errors()?;
        self.arrow_bytes_in_group += bytes;
        let open = match self.settled_ratio() {
            // Predict the encoded size from the ratio of settled row groups: no need to stop
            // the column tasks to measure it.
            Some(ratio) => (self.arrow_bytes_in_group as f64 * ratio) as usize,
            // No settled row group yet: measure, at points fixed by the data.
            None => {
                let check_every = (self.row_group_bytes.min(self.file_bytes) / 8).max(1);
                if self.bytes_since_check < check_every {
                    return Ok(());
                }
                self.bytes_since_check = 0;
                self.in_flight.wait_until(0);
                self.buffered_bytes()
            }
        };
        if open >= self.row_group_bytes {
            self.seal(open)?;
            self.full = self.file_size() >= self.file_bytes;
        } else if self.file_size() + open >= self.file_bytes {
            self.seal(open)?;
            self.full = true;
        } else if self.ends_soon(open) {
            self.seal(open)?;
            self.cut_for_end = true;
        }
        Ok(())
    }

    /// Tells the encoder how many Arrow bytes (as [`batch_bytes`] counts them) the caller
    /// expects to write after the next batch, or `None` when it cannot tell. Only a hint: it
    /// shapes where row groups end, never what they hold, and it should come from the input
    /// (not from timing) so that the same input gives the same file.
    ///
    /// The last row group is written out only after the last batch, while nothing else is
    /// left to do: the time that takes (a full 128 MiB row group: ~0.3 s into the page cache
    /// of a 2-vCPU VM, a second or more to S3) is added to the run's. So when the rest is
    /// expected to fit in a quarter of a row group and the open one is at least half full,
    /// the open one is closed there, once: it is written out while the rest is encoded, and
    /// the file ends with a short row group.
    pub fn expect_rest(&mut self, arrow_bytes: Option<usize>) {
        self.rest = arrow_bytes;
    }

    /// Whether to close the open row group (of `open` estimated bytes) early because the
    /// file is expected to end soon after it (see [`Self::expect_rest`]).
    fn ends_soon(&self, open: usize) -> bool {
        let Some(rest) = self.rest else {
            return false;
        };
        if self.cut_for_end || open < self.row_group_bytes / 2 || self.arrow_bytes_in_group == 0 {
            return false;
        }
        let ratio = self
            .settled_ratio()
            .unwrap_or(open as f64 / self.arrow_bytes_in_group as f64);
        let rest = (rest as f64 * ratio) as usize;
        // Not worth a row group of its own when the rest is tiny: the open one would be
        // written out after it all the same.
        (self.row_group_bytes / 32..=self.row_group_bytes / 4).contains(&rest)
            && self.file_size() + open + rest < self.file_bytes
    }

    /// Creates the column writers of a new row group, and its top-level columns.
    fn open_row_group(&mut self) -> Result<(), EncodeError> {
        if let Some(spill) = &self.spill {
            spill.next_row_group()?;
        }
        let writers = self.factory.create_column_writers(self.sealed)?;
        let (props, descrs) = (&self.props, &self.parquet_schema);
        let slots: Vec<Arc<Slot>> = writers
            .into_iter()
            .enumerate()
            .map(|(i, w)| {
                let w = match self.plain_leaves.get(i).cloned().flatten() {
                    Some(leaf) => {
                        let pages = match &self.spill {
                            Some(spill) => Pages::Store(spill.store(i)?, Vec::new()),
                            None => Pages::Memory(Vec::new()),
                        };
                        let column = PlainColumn::new(descrs.column(i), leaf, props, pages);
                        let column = match self.no_dictionary.get(i) {
                            Some(true) => column.without_dictionary(),
                            _ if self.judge_dictionaries => column.judging_dictionary(),
                            _ => column,
                        };
                        LeafWriter::Plain(Box::new(column))
                    }
                    None => LeafWriter::Arrow(Box::new(w)),
                };
                Ok(Arc::new(Slot {
                    state: Mutex::new(SlotState {
                        writer: Some(w),
                        queue: VecDeque::new(),
                        running: false,
                        error: None,
                    }),
                }))
            })
            .collect::<Result<_, EncodeError>>()?;
        if self.leaf_counts.iter().sum::<usize>() != slots.len() {
            return Err(EncodeError::Schema);
        }
        let mut rest = slots.as_slice();
        let mut first_leaf = 0;
        let fields = self
            .schema
            .fields()
            .iter()
            .zip(&self.leaf_counts)
            .map(|(field, &n)| {
                let (leaves, tail) = rest.split_at(n);
                rest = tail;
                let plain: Vec<bool> = (first_leaf..first_leaf + n)
                    .map(|i| self.plain_leaves.get(i).is_some_and(Option::is_some))
                    .collect();
                first_leaf += n;
                Arc::new(FieldSlot {
                    field: field.clone(),
                    plain,
                    leaves: leaves.to_vec(),
                    state: Mutex::new(FieldState {
                        queue: VecDeque::new(),
                        running: false,
                        error: None,
                    }),
                })
            })
            .collect();
        self.fields = Some(fields);
        Ok(())
    }

    /// Encoded/Arrow bytes of the row groups written out. The set changes only when a row
    /// group is closed (which waits for the one before it), never with timing, so predictions
    /// are the same on every run.
    fn settled_ratio(&self) -> Option<f64> {
        let arrow: u64 = self.written.iter().map(|w| w.arrow).sum();
        let encoded: u64 = self.written.iter().map(|w| w.encoded).sum();
        (arrow > 0).then(|| encoded as f64 / arrow as f64)
    }

    /// The file's size with its closed row groups: exact for those written out, estimated
    /// for the one in the background. Never waits, so it is the same on every run.
    fn file_size(&self) -> usize {
        let written = self
            .written
            .last()
            .map_or(self.header_bytes, |w| w.file_bytes);
        written + self.sealing.as_ref().map_or(0, |s| s.estimate)
    }

    /// Estimated encoded size of the open row group; exact only when no leaf is in flight.
    fn buffered_bytes(&self) -> usize {
        leaf_slots(self.fields.as_deref().unwrap_or_default())
            .map(|slot| {
                lock(&slot.state)
                    .writer
                    .as_ref()
                    .map_or(0, LeafWriter::estimated_bytes)
            })
            .sum()
    }

    /// The file has reached its target size: callers start a new one.
    pub fn is_full(&self) -> bool {
        self.full
    }

    fn check_errors(&self) -> Result<(), EncodeError> {
        errors(self.fields.as_deref().unwrap_or_default())
    }

    /// Closes the open row group: it is written out in the background (after the one before
    /// it, if that is still being written out).
    pub fn flush_row_group(&mut self) -> Result<(), EncodeError> {
        let estimate =
            (self.arrow_bytes_in_group as f64 * self.settled_ratio().unwrap_or(1.0)) as usize;
        self.seal(estimate)
    }

    /// Hands the open row group to a thread that writes it out; `estimate` is its expected
    /// encoded size.
    fn seal(&mut self, estimate: usize) -> Result<(), EncodeError> {
        self.check_errors()?;
        let Some(fields) = self.fields.take() else {
            return Ok(());
        };
        if self.rows_in_group == 0 {
            return Ok(());
        }
        self.join()?;
        let mut writer = self.writer.take().ok_or(EncodeError::Stopped)?;
        let in_flight = std::mem::take(&mut self.in_flight);
        let pool = self.pool.clone();
        let failed = Arc::new(AtomicBool::new(false));
        let failed_in_thread = failed.clone();
        let (closed_tx, closed_rx) = std::sync::mpsc::sync_channel(1);
        let handle = std::thread::Builder::new()
            .name("parqour-row-group".into())
            .spawn(move || {
                let result = write_row_group(&mut writer, &fields, &in_flight, &pool, closed_tx);
                if result.is_err() {
                    failed_in_thread.store(true, Ordering::Release);
                }
                (writer, result)
            })
            .map_err(ParquetError::from)?;
        self.sealing = Some(Sealing {
            handle,
            failed,
            arrow_bytes: self.arrow_bytes_in_group,
            estimate,
        });
        self.sealed += 1;
        self.rows_in_group = 0;
        self.bytes_since_check = 0;
        self.arrow_bytes_in_group = 0;
        // Wait until its columns are closed (their pages are written out in the background):
        // which dictionaries were given up decides how the next row group starts, the same
        // way on every run; and the closed writers' buffers are freed before the next ones
        // fill. A thread that fails drops the sender, and `join` reports its error.
        if let Ok(given_up) = closed_rx.recv() {
            for (no, given_up) in self.no_dictionary.iter_mut().zip(given_up) {
                *no |= given_up;
            }
        }
        Ok(())
    }

    /// Waits for the row group being written out, if any.
    fn join(&mut self) -> Result<(), EncodeError> {
        let Some(sealing) = self.sealing.take() else {
            return Ok(());
        };
        let (writer, result) = sealing.handle.join().map_err(|_| EncodeError::Stopped)?;
        let file_bytes = writer.bytes_written();
        self.writer = Some(writer);
        self.written.push(Written {
            encoded: result?,
            arrow: sealing.arrow_bytes as u64,
            file_bytes,
        });
        Ok(())
    }

    /// Writes the last row group and the footer; returns the sink and what the file holds.
    pub fn finish(mut self) -> Result<(W, FileSummary), EncodeError> {
        self.flush_row_group()?;
        self.join()?;
        let plain_columns = self.plain_columns();
        let writer = self.writer.take().ok_or(EncodeError::Stopped)?;
        let groups = writer.flushed_row_groups();
        let summary = FileSummary {
            rows: groups.iter().map(|g| g.num_rows() as u64).sum(),
            row_groups: groups.len(),
            plain_columns,
        };
        let sink = writer.into_inner()?;
        Ok((sink, summary))
    }
}

impl<W: Write + Send + 'static> Drop for FileEncoder<W> {
    /// A file dropped unfinished: waits for the row group in the background, then drops the
    /// writer (and the sink, which aborts its upload).
    fn drop(&mut self) {
        if let Some(sealing) = self.sealing.take() {
            let _ = sealing.handle.join();
        }
    }
}

/// Waits for a row group's column tasks, closes its columns in parallel and appends them to
/// the file. Returns the row group's encoded size.
fn write_row_group<W: Write + Send>(
    writer: &mut SerializedFileWriter<W>,
    fields: &[Arc<FieldSlot>],
    in_flight: &InFlight,
    pool: &ThreadPool,
    closed: std::sync::mpsc::SyncSender<Vec<bool>>,
) -> Result<u64, EncodeError> {
    in_flight.wait_until(0);
    errors(fields)?;
    let writers = leaf_slots(fields)
        .map(|s| lock(&s.state).writer.take())
        .collect::<Option<Vec<_>>>()
        .ok_or(EncodeError::Schema)?;
    let chunks = pool.install(|| {
        writers
            .into_par_iter()
            .map(|c| c.close())
            .collect::<Result<Vec<_>, _>>()
    })?;
    let given_up = chunks
        .iter()
        .map(|c| matches!(c, LeafChunk::Plain(c) if c.dictionary_given_up_early))
        .collect();
    let _ = closed.send(given_up);
    let mut row_group = writer.next_row_group()?;
    for chunk in chunks {
        match chunk {
            LeafChunk::Arrow(chunk) => chunk.append_to_row_group(&mut row_group)?,
            LeafChunk::Plain(chunk) => row_group.append_column(&chunk.pages, chunk.close)?,
        }
    }
    let written = row_group.close()?;
    Ok(written.compressed_size().max(0) as u64)
}

/// The leaf columns of a row group's top-level columns, in the file's leaf order.
fn leaf_slots(fields: &[Arc<FieldSlot>]) -> impl Iterator<Item = &Arc<Slot>> {
    fields.iter().flat_map(|f| &f.leaves)
}

/// The first error of a top-level column's split or of a leaf's write, if any.
fn errors(fields: &[Arc<FieldSlot>]) -> Result<(), EncodeError> {
    for field in fields {
        if let Some(e) = lock(&field.state).error.take() {
            return Err(e.into());
        }
    }
    for slot in leaf_slots(fields) {
        if let Some(e) = lock(&slot.state).error.take() {
            return Err(e.into());
        }
    }
    Ok(())
}

/// Splits the arrays queued on `field` into leaves, in order, and queues each on its slot
/// (spawning the slot's task on the current pool), until the queue is empty.
fn split(field: &FieldSlot, in_flight: &Arc<InFlight>) {
    loop {
        let column = {
            let mut state = lock(&field.state);
            let Some(column) = state.queue.pop_front() else {
                state.running = false;
                return;
            };
            if state.error.is_some() {
                // An earlier split failed: drop what is queued.
                drop(state);
                field.leaves.iter().for_each(|_| in_flight.done());
                continue;
            }
            column
        };
        let shared = Arc::new(SharedLevels::default());
        if field.plain.iter().all(|&p| p) {
            for slot in &field.leaves {
                queue_leaf(
                    slot,
                    LeafData::Array(column.clone(), shared.clone()),
                    in_flight,
                );
            }
            continue;
        }
        let leaves = catch_panic(
            || compute_leaves(&field.field, &column),
            |text| {
                ParquetError::General(format!(
                    "computing the levels of column `{}` panicked (a bug): {text}",
                    field.field.name(),
                ))
            },
        );
        let leaves = match leaves {
            Ok(leaves) if leaves.len() == field.leaves.len() => leaves,
            other => {
                let e = other.err().unwrap_or_else(|| {
                    ParquetError::General(format!(
                        "column `{}` has a different number of leaves than its schema",
                        field.field.name()
                    ))
                });
                lock(&field.state).error = Some(e);
                field.leaves.iter().for_each(|_| in_flight.done());
                continue;
            }
        };
        for ((slot, leaf), &plain) in field.leaves.iter().zip(leaves).zip(&field.plain) {
            let data = if plain {
                LeafData::Array(column.clone(), shared.clone())
            } else {
                LeafData::Levels(leaf)
            };
            queue_leaf(slot, data, in_flight);
        }
        drop(column);
    }
}

/// Queues `leaf` on `slot`, spawning the slot's task if it is not running.
fn queue_leaf(slot: &Arc<Slot>, leaf: LeafData, in_flight: &Arc<InFlight>) {
    let mut state = lock(&slot.state);
    state.queue.push_back(leaf);
    if !state.running {
        state.running = true;
        let slot = slot.clone();
        let in_flight = in_flight.clone();
        // From a pool task, `rayon::spawn` queues on the same pool.
        rayon::spawn(move || drain(&slot, &in_flight));
    }
}

/// Most levels (one per value, null or empty list of a leaf column) that a column of one queued
/// batch may need. Each leaf's levels are built for the whole batch at once (a few bytes a
/// level, by our writer or parquet-rs's), while Arrow holds a list of booleans in a bit a
/// value: 2 MB of deflate Avro (arrays of a thousand `false`) decoded into one batch of 600
/// million booleans, whose levels took 3 GB. Batches of ordinary records (a few thousand rows
/// of a few values each) need far fewer.
pub const MAX_BATCH_LEVELS: usize = 1 << 22;

/// At least as many levels as the leaf column of `array` that needs the most: its length,
/// plus, under a list or map, the values its rows hold (an empty or null list needs one level
/// without a value, and there are no more of those than rows). O(depth): only offsets are read.
fn levels_at_most(array: &dyn arrow_array::Array) -> usize {
    use arrow_array::cast::AsArray;
    let rows = array.len();
    // The levels under rows whose values are `values[first..last]` (offsets as read).
    let under = |values: &dyn arrow_array::Array, first: Option<i64>, last: Option<i64>| {
        let start = (first.unwrap_or(0).max(0) as usize).min(values.len());
        let end = (last.unwrap_or(0).max(0) as usize).clamp(start, values.len());
        rows.saturating_add(levels_at_most(values.slice(start, end - start).as_ref()))
    };
    let ends = |o: &[i32]| {
        (
            o.first().map(|&v| i64::from(v)),
            o.last().map(|&v| i64::from(v)),
        )
    };
    if let Some(list) = array.as_list_opt::<i32>() {
        let (first, last) = ends(list.value_offsets());
        under(list.values().as_ref(), first, last)
    } else if let Some(list) = array.as_list_opt::<i64>() {
        let o = list.value_offsets();
        under(
            list.values().as_ref(),
            o.first().copied(),
            o.last().copied(),
        )
    } else if let Some(map) = array.as_map_opt() {
        let (first, last) = ends(map.value_offsets());
        under(map.entries(), first, last)
    } else if let Some(list) = array.as_fixed_size_list_opt() {
        // (Its values are sliced with it.)
        let size = i64::from(list.value_length().max(0));
        under(
            list.values().as_ref(),
            Some(0),
            Some((rows as i64).saturating_mul(size)),
        )
    } else if let Some(s) = array.as_struct_opt() {
        s.columns()
            .iter()
            .map(|c| levels_at_most(c.as_ref()))
            .max()
            .unwrap_or(0)
            .max(rows)
    } else {
        rows
    }
}

/// Runs `f`, turning a panic in it (a bug) into the error `error` makes of the panic's text:
/// a panic in a pool task would otherwise abort the whole process.
pub(crate) fn catch_panic<T, E>(
    f: impl FnOnce() -> Result<T, E>,
    error: impl FnOnce(&str) -> E,
) -> Result<T, E> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let text = panic
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("no message");
        Err(error(text))
    })
}

/// Writes the leaves queued on `slot`, in order, until its queue is empty.
fn drain(slot: &Slot, in_flight: &InFlight) {
    loop {
        let (mut writer, leaf) = {
            let mut state = lock(&slot.state);
            let Some(leaf) = state.queue.pop_front() else {
                state.running = false;
                return;
            };
            match state.writer.take() {
                Some(w) if state.error.is_none() => (w, leaf),
                other => {
                    // An earlier write failed: drop what is queued.
                    state.writer = other;
                    drop(state);
                    in_flight.done();
                    continue;
                }
            }
        };
        // A panic in the column writer (a bug, in parquet-rs or here) fails this file.
        let result = catch_panic(
            || writer.write(&leaf),
            |text| ParquetError::General(format!("the column writer panicked (a bug): {text}")),
        );
        drop(leaf);
        {
            let mut state = lock(&slot.state);
            state.writer = Some(writer);
            if let Err(e) = result {
                state.error = Some(e);
            }
        }
        in_flight.done();
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use arrow_array::{ArrayRef, Int64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use bytes::Bytes;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn batch(start: i64, n: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("s", DataType::Utf8, true),
        ]));
        let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(start..start + n));
        let s: ArrayRef = Arc::new(StringArray::from_iter(
            (start..start + n).map(|i| (i % 3 != 0).then(|| format!("v{i}"))),
        ));
        RecordBatch::try_new(schema, vec![ids, s]).unwrap()
    }

    /// A pool of `threads` workers for tests (also the column writer's, `plain`).
    pub(crate) fn pool(threads: usize) -> Arc<ThreadPool> {
        Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap(),
        )
    }

    fn encode(batches: &[RecordBatch], opts: &EncodeOptions, threads: usize) -> Vec<u8> {
        let pool = pool(threads);
        let mut enc = FileEncoder::new(Vec::new(), batches[0].schema(), opts, pool).unwrap();
        for b in batches {
            enc.write(b).unwrap();
        }
        enc.finish().unwrap().0
    }

    /// Writes batches until the file is full; returns the batches it took and the file.
    fn fill(batches: &[RecordBatch], opts: &EncodeOptions, threads: usize) -> (usize, Vec<u8>) {
        let pool = pool(threads);
        let mut enc = FileEncoder::new(Vec::new(), batches[0].schema(), opts, pool).unwrap();
        let mut taken = 0;
        for b in batches {
            enc.write(b).unwrap();
            taken += 1;
            if enc.is_full() {
                break;
            }
        }
        (taken, enc.finish().unwrap().0)
    }

    /// Options whose row groups are cut only by `flush_row_group`, in one file.
    fn row_groups_by_hand() -> EncodeOptions {
        EncodeOptions {
            row_group_bytes: usize::MAX,
            file_bytes: usize::MAX,
            ..EncodeOptions::default()
        }
    }

    /// A sparse column of distinct values in small batches (small objects) has too few
    /// values in the file's first batch to be judged there; its dictionary is given up once
    /// the chunk has looked up 4,096 values, 99% distinct, and the next row group starts
    /// without one. A sparse column of few values keeps its dictionary.
    #[test]
    fn a_sparse_column_of_distinct_values_gives_up_its_dictionary_early() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("sparse_ids", DataType::Int64, true),
            Field::new("sparse_few", DataType::Int64, true),
        ]));
        // Batches of 2,500 rows, 90% null: 250 values each, under the 512 a first batch
        // needs to be judged; 40 batches a row group.
        let group = |g: i64| -> Vec<RecordBatch> {
            (0..40)
                .map(|b| {
                    let rows = (g * 40 + b) * 2_500..(g * 40 + b + 1) * 2_500;
                    let col = |f: &dyn Fn(i64) -> i64| -> ArrayRef {
                        Arc::new(Int64Array::from_iter(
                            rows.clone().map(|i| (i % 10 == 3).then(|| f(i))),
                        ))
                    };
                    RecordBatch::try_new(
                        schema.clone(),
                        vec![col(&|i| i * 7_919), col(&|i| i % 400)],
                    )
                    .unwrap()
                })
                .collect()
        };
        let opts = row_groups_by_hand();
        let first = group(0).remove(0);
        let mut enc = FileEncoder::for_batch(Vec::new(), &first, &[], &opts, pool(2)).unwrap();
        assert!(enc.plain_columns().is_empty(), "too few values to judge");
        for g in 0..2 {
            for b in group(g) {
                enc.write(&b).unwrap();
            }
            enc.flush_row_group().unwrap();
        }
        assert_eq!(enc.plain_columns(), [ColumnPath::from("sparse_ids")]);
        let (file, _) = enc.finish().unwrap();

        // Per row group and column: the dictionary's size, and the pages of dictionary ids
        // and of plain values.
        let file = Bytes::from(file);
        let pages = {
            use parquet::column::page::Page;
            use parquet::file::reader::{FileReader, SerializedFileReader};
            let reader = SerializedFileReader::new(file.clone()).unwrap();
            let mut out = Vec::new();
            for g in 0..reader.num_row_groups() {
                let group = reader.get_row_group(g).unwrap();
                for c in 0..2 {
                    let (mut dictionary, mut ids, mut plain) = (0, 0, 0);
                    for page in group.get_column_page_reader(c).unwrap() {
                        match page.unwrap() {
                            Page::DictionaryPage { num_values, .. } => dictionary = num_values,
                            p if p.encoding() == Encoding::RLE_DICTIONARY => ids += 1,
                            _ => plain += 1,
                        }
                    }
                    out.push((g, c, dictionary, ids, plain));
                }
            }
            out
        };
        // Row group 0: the ids' dictionary holds the first 4,096-odd values (of 10,000), in
        // the pages of the first 41,000-odd rows; the rest is plain. Row group 1 has none.
        // The few values keep theirs.
        let [ids0, few0, ids1, few1] = pages[..] else {
            panic!("{pages:?}")
        };
        assert!(
            (4_096..5_200).contains(&ids0.2) && (1..=3).contains(&ids0.3) && ids0.4 > 0,
            "{pages:?}"
        );
        assert!(ids1.2 == 0 && ids1.3 == 0, "{pages:?}");
        assert!(
            few0.2 == 40 && few0.4 == 0 && few1.2 == 40 && few1.4 == 0,
            "{pages:?}"
        );
        let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        let read: Vec<RecordBatch> = reader.build().unwrap().map(Result::unwrap).collect();
        let read = arrow_select::concat::concat_batches(&schema, &read).unwrap();
        let want: Vec<RecordBatch> = (0..2).flat_map(group).collect();
        let want = arrow_select::concat::concat_batches(&schema, &want).unwrap();
        assert!(read == want, "the values read back are those written");
    }

    /// A column whose dictionary is given up before half a row group starts the next row
    /// group (and, through `plain_columns`, the next file) without one; one given up later,
    /// or never, keeps it.
    #[test]
    fn a_dictionary_given_up_early_is_not_built_again() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("early", DataType::Int64, false),
            Field::new("late", DataType::Int64, false),
            Field::new("never", DataType::Int64, false),
        ]));
        // 3 columns: dictionaries of up to 1 MiB, 131,072 8-byte values. A row group of
        // 300,000 rows: `early` is distinct throughout (given up at ~131,072 rows), `late`
        // only from row 160,000 (given up at ~291,000), `never` cycles through 100 values.
        let rows = 300_000i64;
        let group = |g: i64| -> Vec<RecordBatch> {
            (0..rows)
                .step_by(10_000)
                .map(|start| {
                    let r = start..start + 10_000;
                    let col = |f: &dyn Fn(i64) -> i64| -> ArrayRef {
                        Arc::new(Int64Array::from_iter_values(r.clone().map(f)))
                    };
                    let late = |i: i64| if i < 160_000 { i % 10 } else { g * rows + i };
                    RecordBatch::try_new(
                        schema.clone(),
                        vec![col(&|i| g * rows + i), col(&late), col(&|i| i % 100)],
                    )
                    .unwrap()
                })
                .collect()
        };
        let opts = row_groups_by_hand();
        let mut enc = FileEncoder::new(Vec::new(), schema.clone(), &opts, pool(2)).unwrap();
        for g in 0..2 {
            for b in group(g) {
                enc.write(&b).unwrap();
            }
            enc.flush_row_group().unwrap();
        }
        let plain = enc.plain_columns();
        assert_eq!(plain, [ColumnPath::from("early")]);
        let (file, summary) = enc.finish().unwrap();
        assert_eq!(summary.plain_columns, plain);

        let file = Bytes::from(file);
        let reader = ParquetRecordBatchReaderBuilder::try_new(file.clone()).unwrap();
        let metadata = reader.metadata().clone();
        let dictionaries: Vec<Vec<bool>> = metadata
            .row_groups()
            .iter()
            .map(|rg| {
                rg.columns()
                    .iter()
                    .map(|c| c.dictionary_page_offset().is_some())
                    .collect()
            })
            .collect();
        assert_eq!(dictionaries, [[true, true, true], [false, true, true]]);
        let read: Vec<RecordBatch> = reader.build().unwrap().map(Result::unwrap).collect();
        let read = arrow_select::concat::concat_batches(&schema, &read).unwrap();
        let want: Vec<RecordBatch> = (0..2).flat_map(group).collect();
        let want = arrow_select::concat::concat_batches(&schema, &want).unwrap();
        assert!(read == want, "the values read back are those written");

        // The next file starts without it, though its first batch alone (few distinct
        // values) would not tell.
        let few = |i: i64| i % 50;
        let first = RecordBatch::try_new(
            schema.clone(),
            (0..3)
                .map(|_| Arc::new(Int64Array::from_iter_values((0..10_000).map(few))) as ArrayRef)
                .collect(),
        )
        .unwrap();
        let dictionaries = |known: &[ColumnPath]| -> Vec<bool> {
            let mut next =
                FileEncoder::for_batch(Vec::new(), &first, known, &opts, pool(2)).unwrap();
            next.write(&first).unwrap();
            let (file, _) = next.finish().unwrap();
            let reader = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(file)).unwrap();
            let columns = reader.metadata().row_group(0).columns().to_vec();
            columns
                .iter()
                .map(|c| c.dictionary_page_offset().is_some())
                .collect()
        };
        assert_eq!(dictionaries(&plain), [false, true, true]);
        assert_eq!(dictionaries(&[]), [true, true, true]);
    }

    #[test]
    fn files_are_cut_at_the_same_batch_whatever_the_timing() {
        // Row groups are written out in the background while later batches are encoded; the
        // cuts must not depend on when that finishes.
        let batches: Vec<_> = (0..200).map(|i| batch(i * 1000, 1000)).collect();
        let opts = EncodeOptions {
            row_group_bytes: 8 << 10,
            file_bytes: 96 << 10,
            ..Default::default()
        };
        let (taken, bytes) = fill(&batches, &opts, 2);
        assert!(taken < batches.len(), "the file filled up");
        let meta = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(bytes.clone())).unwrap();
        assert!(meta.metadata().num_row_groups() > 3);
        assert!(
            bytes.len() < (96 << 10) * 5 / 4,
            "{} bytes for a 96 KiB target",
            bytes.len()
        );
        for threads in [1, 3, 8] {
            for _ in 0..3 {
                assert_eq!(fill(&batches, &opts, threads), (taken, bytes.clone()));
            }
        }
    }

    /// A sink that fails once it has taken `limit` bytes.
    struct Failing {
        taken: usize,
        limit: usize,
    }

    impl Write for Failing {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            if self.taken + data.len() > self.limit {
                return Err(std::io::Error::other("disk full"));
            }
            self.taken += data.len();
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_sink_failure_in_the_background_is_reported() {
        let batches: Vec<_> = (0..100).map(|i| batch(i * 1000, 1000)).collect();
        let opts = EncodeOptions {
            row_group_bytes: 8 << 10,
            ..Default::default()
        };
        let pool = pool(2);
        let sink = Failing {
            taken: 0,
            limit: 20 << 10,
        };
        let mut enc = FileEncoder::new(sink, batches[0].schema(), &opts, pool).unwrap();
        let mut error = None;
        for b in &batches {
            if let Err(e) = enc.write(b) {
                error = Some(e);
                break;
            }
        }
        let error = match error {
            Some(e) => e,
            None => enc.finish().map(|_| ()).unwrap_err(),
        };
        assert!(error.to_string().contains("disk full"), "{error}");
    }

    #[test]
    fn wide_schemas_get_smaller_pages_and_dictionaries() {
        let schema = |n: usize| {
            // Each field a struct of a list of ints and a map of strings: 3 leaves.
            let item = Arc::new(Field::new("item", DataType::Int64, true));
            let entries = Arc::new(Field::new(
                "entries",
                DataType::Struct(
                    vec![
                        Field::new("key", DataType::Utf8, false),
                        Field::new("value", DataType::Utf8, true),
                    ]
                    .into(),
                ),
                false,
            ));
            let fields: Vec<Field> = (0..n)
                .map(|i| {
                    Field::new(
                        format!("c{i}"),
                        DataType::Struct(
                            vec![
                                Field::new("l", DataType::List(item.clone()), true),
                                Field::new("m", DataType::Map(entries.clone(), false), true),
                            ]
                            .into(),
                        ),
                        true,
                    )
                })
                .collect();
            Schema::new(fields)
        };
        let limits = |n: usize| {
            let p = EncodeOptions::default().properties(&schema(n));
            (
                p.data_page_size_limit(),
                p.dictionary_page_size_limit(),
                p.data_page_row_count_limit(),
            )
        };
        assert_eq!(leaf_count(schema(1).field(0).data_type()), 3);
        // Up to 64 leaves: parquet-rs's defaults.
        assert_eq!(limits(21), (1 << 20, 1 << 20, 20_000));
        // 3,000 leaves share 64 MiB.
        let per = (64 << 20) / 3000;
        assert_eq!(limits(1000), (per, per, per / 8));
        // Never below 8 KiB.
        assert_eq!(limits(100_000), (8 << 10, 8 << 10, 1024));
    }

    /// A column writer that panics (parquet-rs 60 does on FixedSizeBinary(0), which the
    /// decoder never makes) fails the file with a message; without the catch, the panic in the
    /// pool would abort the process, and this test binary with it.
    #[test]
    fn a_panicking_column_writer_is_an_error_not_an_abort() {
        use arrow_array::FixedSizeBinaryArray;
        let schema = Arc::new(Schema::new(vec![Field::new(
            "z",
            DataType::FixedSizeBinary(0),
            false,
        )]));
        let z = FixedSizeBinaryArray::try_new_with_len(0, Default::default(), None, 3).unwrap();
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(z)]).unwrap();
        let mut enc =
            FileEncoder::new(Vec::new(), schema, &EncodeOptions::default(), pool(2)).unwrap();
        let result = enc.write(&batch).and_then(|()| enc.finish().map(|_| ()));
        if let Err(e) = result {
            assert!(e.to_string().contains("panicked (a bug)"), "{e}");
        }
    }

    /// Nested columns: each top-level column is split into its leaves (5 in all) by its own task.
    fn nested(start: i32, n: i32) -> RecordBatch {
        use arrow_array::builder::{Int64Builder, ListBuilder, MapBuilder, StringBuilder};
        use arrow_array::{Int32Array, StructArray};
        let a: ArrayRef = Arc::new(Int32Array::from_iter_values(start..start + n));
        let b: ArrayRef = Arc::new(StringArray::from_iter(
            (start..start + n).map(|i| (i % 4 != 0).then(|| format!("b{}", i % 50))),
        ));
        let st = StructArray::from(vec![
            (Arc::new(Field::new("a", DataType::Int32, false)), a),
            (Arc::new(Field::new("b", DataType::Utf8, true)), b),
        ]);
        let mut list = ListBuilder::new(Int64Builder::new());
        let mut map = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        for i in start..start + n {
            for j in 0..(i % 3) {
                list.values().append_value(i as i64 * 10 + j as i64);
            }
            list.append(i % 7 != 0);
            for j in 0..(i % 4) {
                map.keys().append_value(format!("k{j}"));
                map.values().append_value(format!("v{}", (i + j) % 9));
            }
            map.append(true).unwrap();
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(st),
            Arc::new(list.finish()),
            Arc::new(map.finish()),
        ];
        let fields: Vec<Field> = ["s", "l", "m"]
            .iter()
            .zip(&columns)
            .map(|(name, c)| Field::new(*name, c.data_type().clone(), true))
            .collect();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
    }

    #[test]
    fn nested_columns_round_trip_whatever_the_thread_count() {
        let batches: Vec<_> = (0..30).map(|i| nested(i * 500, 500)).collect();
        let opts = EncodeOptions {
            row_group_bytes: 32 << 10,
            ..Default::default()
        };
        let bytes = encode(&batches, &opts, 3);
        let reader = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(bytes.clone())).unwrap();
        assert!(reader.metadata().num_row_groups() > 1);
        assert_eq!(
            reader
                .metadata()
                .file_metadata()
                .schema_descr()
                .num_columns(),
            5
        );
        let read: Vec<RecordBatch> = reader
            .with_batch_size(20_000)
            .build()
            .unwrap()
            .map(|b| b.unwrap())
            .collect();
        assert_eq!(read.len(), 1);
        let (read, written) = (&read[0], nested(0, 15_000));
        assert_eq!(read.num_rows(), 15_000);
        for (r, w) in read.columns().iter().zip(written.columns()) {
            assert_eq!(r.to_data(), w.to_data());
        }
        assert_eq!(encode(&batches, &opts, 1), bytes);
        assert_eq!(encode(&batches, &opts, 2), bytes);
    }

    #[test]
    fn round_trips_and_cuts_row_groups_by_size() {
        let batches: Vec<_> = (0..20).map(|i| batch(i * 1000, 1000)).collect();
        let opts = EncodeOptions {
            row_group_bytes: 16 << 10,
            ..Default::default()
        };
        let bytes = encode(&batches, &opts, 3);
        let reader = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(bytes.clone())).unwrap();
        assert!(reader.metadata().num_row_groups() > 1);
        let rows: usize = reader.build().unwrap().map(|b| b.unwrap().num_rows()).sum();
        assert_eq!(rows, 20_000);
        // Deterministic, whatever the thread count, and the same when pages are spilled.
        assert_eq!(encode(&batches, &opts, 1), bytes);
        assert_eq!(encode(&batches, &opts, 2), bytes);
        let in_memory = EncodeOptions {
            spill: false,
            ..opts.clone()
        };
        assert_eq!(encode(&batches, &in_memory, 2), bytes);
    }

    /// A spill file goes back to its encoder once its row group is written out, and a later
    /// row group writes over it: its pages are read back as written, whatever was there.
    #[test]
    fn spill_files_are_written_over_by_later_row_groups() {
        let spill = SpillPages::new(1);
        spill.next_row_group().unwrap();
        let mut first = spill.store(0).unwrap();
        let long = Bytes::from(vec![7u8; 100_000]);
        let key = first.put(long.clone()).unwrap();
        assert_eq!(first.take(key).unwrap(), long);
        spill.next_row_group().unwrap();
        assert!(lock(&spill.free).is_empty(), "still in use");
        drop(first);
        assert_eq!(lock(&spill.free).len(), 1);
        // The next row group takes it (and the one before gives its own back).
        spill.next_row_group().unwrap();
        assert_eq!(lock(&spill.free).len(), 1);
        let mut second = spill.store(0).unwrap();
        let keys: Vec<_> = [&b"abc"[..], b"", b"defgh"]
            .iter()
            .map(|p| second.put(Bytes::copy_from_slice(p)).unwrap())
            .collect();
        assert_eq!(second.take(keys[2]).unwrap(), &b"defgh"[..]);
        assert_eq!(second.take(keys[0]).unwrap(), &b"abc"[..]);
        assert_eq!(second.take(keys[1]).unwrap(), &b""[..]);
    }

    #[test]
    fn the_last_row_group_is_short_when_the_end_is_expected() {
        let batches: Vec<_> = (0..63).map(|i| batch(i * 1000, 1000)).collect();
        let opts = EncodeOptions {
            row_group_bytes: 64 << 10,
            ..Default::default()
        };
        let encode = |expect: bool, threads: usize| {
            let pool = pool(threads);
            let mut enc = FileEncoder::new(Vec::new(), batches[0].schema(), &opts, pool).unwrap();
            for (i, b) in batches.iter().enumerate() {
                if expect {
                    enc.expect_rest(Some(batch_bytes(b) * (batches.len() - i - 1)));
                }
                enc.write(b).unwrap();
            }
            let bytes = Bytes::from(enc.finish().unwrap().0);
            let reader = ParquetRecordBatchReaderBuilder::try_new(bytes.clone()).unwrap();
            let sizes: Vec<i64> = reader
                .metadata()
                .row_groups()
                .iter()
                .map(|g| g.compressed_size())
                .collect();
            let rows: usize = reader.build().unwrap().map(|b| b.unwrap().num_rows()).sum();
            assert_eq!(rows, 63_000);
            (sizes, bytes)
        };
        let (plain, _) = encode(false, 2);
        let (cut, bytes) = encode(true, 2);
        let batch_encoded = plain.iter().sum::<i64>() / batches.len() as i64;
        let quarter = (opts.row_group_bytes / 4) as i64;
        // Without the hint the file ends with whatever is left (here three quarters of a row
        // group); with it, the row group before the end is closed early and the last one is
        // short.
        assert!(*plain.last().unwrap() > quarter * 3, "{plain:?}");
        assert_eq!(cut.len(), plain.len() + 1, "{cut:?} {plain:?}");
        assert!(*cut.last().unwrap() <= quarter + batch_encoded, "{cut:?}");
        assert!(cut[cut.len() - 2] >= quarter * 2, "{cut:?}");
        assert_eq!(cut[..cut.len() - 2], plain[..plain.len() - 1]);
        // Deterministic whatever the thread count.
        assert_eq!(encode(true, 1).1, bytes);
    }

    #[test]
    fn compression_names() {
        for (s, ext) in [
            ("snappy", "snappy"),
            ("zstd", "zstd"),
            ("zstd:9", "zstd"),
            ("gzip", "gz"),
            ("lz4", "lz4"),
            ("none", "none"),
        ] {
            assert_eq!(s.parse::<Codec>().unwrap().extension(), ext);
        }
        assert!("zstd:99".parse::<Codec>().is_err());
        assert!("brotli".parse::<Codec>().is_err());
    }

    /// A batch of `rows` rows: an id, a nullable list of booleans (row `i` holds `i % 7`
    /// values, every fifth row null), a map of `i % 3` entries and a list of lists.
    fn nested_batch(rows: usize) -> RecordBatch {
        use arrow_array::builder::{
            BooleanBuilder, Int64Builder, ListBuilder, MapBuilder, StringBuilder,
        };
        let mut flags = ListBuilder::new(BooleanBuilder::new());
        let mut map = MapBuilder::new(None, StringBuilder::new(), Int64Builder::new());
        let mut nested = ListBuilder::new(ListBuilder::new(Int64Builder::new()));
        for i in 0..rows {
            if i % 5 == 4 {
                flags.append(false);
            } else {
                (0..i % 7).for_each(|j| flags.values().append_value((i + j) % 3 == 0));
                flags.append(true);
            }
            for j in 0..i % 3 {
                map.keys().append_value(format!("k{j}"));
                map.values().append_value((i * j) as i64);
            }
            map.append(true).unwrap();
            for j in 0..i % 4 {
                (0..j).for_each(|k| nested.values().values().append_value((i + k) as i64));
                nested.values().append(true);
            }
            nested.append(true);
        }
        let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(0..rows as i64));
        RecordBatch::try_from_iter_with_nullable([
            ("id", ids, false),
            ("flags", Arc::new(flags.finish()) as ArrayRef, true),
            ("map", Arc::new(map.finish()), false),
            ("nested", Arc::new(nested.finish()), false),
        ])
        .unwrap()
    }

    #[test]
    fn levels_at_most_counts_rows_and_the_values_under_lists() {
        let b = nested_batch(100);
        let levels = |c: &str| levels_at_most(b.column_by_name(c).unwrap().as_ref());
        assert_eq!(levels("id"), 100);
        let flags: usize = (0..100).filter(|i| i % 5 != 4).map(|i| i % 7).sum();
        assert_eq!(levels("flags"), 100 + flags);
        let entries: usize = (0..100).map(|i| i % 3).sum();
        assert_eq!(levels("map"), 100 + entries);
        let inner: usize = (0..100).map(|i| i % 4).sum();
        let values: usize = (0..100).map(|i| (0..i % 4).sum::<usize>()).sum();
        assert_eq!(levels("nested"), 100 + inner + values);
        // A slice counts its own rows' values only.
        let slice = b.slice(10, 5);
        let flags: usize = (10..15).filter(|i| i % 5 != 4).map(|i| i % 7).sum();
        assert_eq!(levels_at_most(slice.column(1).as_ref()), 5 + flags);
        // Fixed-size lists, sliced.
        let fixed = arrow_array::FixedSizeListArray::from_iter_primitive::<
            arrow_array::types::Int64Type,
            _,
            _,
        >((0..10).map(|i| Some([Some(i), None, Some(i)])), 3);
        assert_eq!(levels_at_most(&fixed), 10 + 30);
        assert_eq!(levels_at_most(&fixed.slice(2, 4)), 4 + 12);
    }

    /// A batch that needs more levels than a queued batch may hold is written in slices of
    /// rows: the same values come back, in order, with the same row count.
    #[test]
    fn batches_of_many_levels_are_written_in_slices() {
        let batches = [nested_batch(1000), nested_batch(3)];
        let sliced = {
            let mut enc = FileEncoder::new(
                Vec::new(),
                batches[0].schema(),
                &Default::default(),
                pool(2),
            )
            .unwrap();
            for b in &batches {
                // 1000 rows need ~5,000 levels: written in slices of at most 64 rows.
                enc.write_in_slices(b, 300).unwrap();
            }
            enc.finish().unwrap().0
        };
        let whole = encode(&batches, &EncodeOptions::default(), 2);
        for bytes in [sliced, whole] {
            let reader = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(bytes)).unwrap();
            let read: Vec<RecordBatch> = reader.build().unwrap().map(|b| b.unwrap()).collect();
            let read = arrow_select::concat::concat_batches(&read[0].schema(), &read).unwrap();
            let written =
                arrow_select::concat::concat_batches(&batches[0].schema(), &batches).unwrap();
            assert_eq!(read.num_rows(), 1003);
            for (r, w) in read.columns().iter().zip(written.columns()) {
                assert_eq!(r.as_ref(), w.as_ref());
            }
        }
    }

    #[test]
    fn distinct_values_are_counted_exactly_in_a_sample() {
        // Every count from all-equal to all-distinct, on strings, numbers and 16-byte values
        // that differ in one byte only; the sample stops at SAMPLE values.
        for distinct in [1usize, 2, 3, 64, 1000, 4000, 4096] {
            let mut strings = Distinct::new();
            let mut numbers = Distinct::new();
            let mut fixed = Distinct::new();
            for i in 0..SAMPLE + 100 {
                let k = i % distinct;
                strings.insert(format!("/page/{k}").as_bytes());
                numbers.insert(&(k as i64 * 64).to_le_bytes());
                let mut f = [7u8; 16];
                f[15] = (k % 256) as u8;
                f[0] = (k / 256) as u8;
                fixed.insert(&f);
            }
            for d in [&strings, &numbers, &fixed] {
                assert_eq!((d.sampled, d.distinct), (SAMPLE, distinct));
            }
        }
    }

    #[test]
    fn nearly_unique_columns_get_no_dictionary() {
        use arrow_array::{ListArray, MapArray, StructArray};
        use arrow_buffer::OffsetBuffer;
        let n = 2000i64;
        let nested_fields: arrow_schema::Fields = vec![
            Field::new("url", DataType::Utf8, true),
            Field::new("flag", DataType::Int64, true),
        ]
        .into();
        let nested = StructArray::new(
            nested_fields.clone(),
            vec![
                Arc::new(StringArray::from_iter_values(
                    (0..n).map(|i| format!("/p/{i}")),
                )) as ArrayRef,
                Arc::new(Int64Array::from_iter_values((0..n).map(|i| i % 2))),
            ],
            None,
        );
        // Two items a row: an amount that is nearly unique, a bidder of five names.
        let item_fields: arrow_schema::Fields = vec![
            Field::new("amount", DataType::Int64, false),
            Field::new("bidder", DataType::Utf8, false),
        ]
        .into();
        let items = StructArray::new(
            item_fields.clone(),
            vec![
                Arc::new(Int64Array::from_iter_values((0..2 * n).map(|i| i * 7919))) as ArrayRef,
                Arc::new(StringArray::from_iter_values(
                    (0..2 * n).map(|i| format!("b{}", i % 5)),
                )),
            ],
            None,
        );
        let item = Arc::new(Field::new("element", DataType::Struct(item_fields), false));
        let bids = ListArray::new(
            item.clone(),
            OffsetBuffer::from_lengths(std::iter::repeat_n(2, n as usize)),
            Arc::new(items),
            None,
        );
        // One entry a row: a key of three, a value that is nearly unique.
        let kv_fields: arrow_schema::Fields = vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("value", DataType::Utf8, true),
        ]
        .into();
        let entries = StructArray::new(
            kv_fields.clone(),
            vec![
                Arc::new(StringArray::from_iter_values(
                    (0..n).map(|i| ["x", "y", "z"][i as usize % 3]),
                )) as ArrayRef,
                Arc::new(StringArray::from_iter_values(
                    (0..n).map(|i| format!("v{i}")),
                )),
            ],
            None,
        );
        let entries_field = Arc::new(Field::new("key_value", DataType::Struct(kv_fields), false));
        let attributes = MapArray::new(
            entries_field.clone(),
            OffsetBuffer::from_lengths(std::iter::repeat_n(1, n as usize)),
            entries,
            None,
            false,
        );
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("kind", DataType::Utf8, false),
            Field::new("nested", DataType::Struct(nested_fields), false),
            Field::new("bids", DataType::List(item), false),
            Field::new("attributes", DataType::Map(entries_field, false), false),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from_iter_values(0..n)),
                Arc::new(StringArray::from_iter_values(
                    (0..n).map(|i| ["a", "b"][i as usize % 2]),
                )),
                Arc::new(nested),
                Arc::new(bids),
                Arc::new(attributes),
            ],
        )
        .unwrap();
        let paths: Vec<String> = high_cardinality_columns(&batch)
            .iter()
            .map(|p| p.string())
            .collect();
        assert_eq!(
            paths,
            [
                "id",
                "nested.url",
                "bids.list.element.amount",
                "attributes.key_value.value"
            ]
        );
        let pool = pool(2);
        let mut enc =
            FileEncoder::for_batch(Vec::new(), &batch, &[], &EncodeOptions::default(), pool)
                .unwrap();
        enc.write(&batch).unwrap();
        let bytes = enc.finish().unwrap().0;
        let reader = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(bytes)).unwrap();
        let rg = reader.metadata().row_group(0);
        let has_dictionary: Vec<bool> = rg
            .columns()
            .iter()
            .map(|c| c.dictionary_page_offset().is_some())
            .collect();
        // id, kind, nested.url, nested.flag, bids' amount and bidder, attributes' key and value
        assert_eq!(
            has_dictionary,
            [false, true, false, true, false, true, true, false]
        );
    }
}
