//! Object container files: the header, then blocks of records separated by a sync marker.
//!
//! Stage: between the byte source and the decoder. [`BlockSplitter`] is fed the bytes of one
//! object in chunks of any size, as they arrive from storage, and hands out whole blocks, still
//! compressed, each with its index and byte offset, so that blocks can be inflated and decoded in
//! parallel and every later error can say where it happened. It does no I/O.
//!
//! Checks: the magic, the header metadata, the sync marker after every block, block sizes and
//! record counts (negative or larger than [`Limits`] allow), and a file that ends inside a block.
//!
//! Concatenated files: an object may hold several container files one after the other (`cat
//! a.avro b.avro`, or Firehose joining records that are each a whole container file). Where a
//! block should start, `Obj\x01` cannot begin one (its first byte reads as a negative record
//! count), so it unambiguously starts the next file. A splitter made
//! [`BlockSplitter::reading_concatenated`] then hands out that file's header (its own schema,
//! codec and sync marker) and its blocks; otherwise it is an error that says so.
//!
//! Limitations: it holds one block at a time, so a block larger than the memory budget cannot be
//! read; [`Limits::max_block_bytes`] turns that into an error.

use std::collections::{BTreeMap, HashMap, VecDeque};

use bytes::{Buf, Bytes, BytesMut};

use super::codec::{Codec, CodecError};
use super::cursor::{Cursor, CursorError};
use super::fingerprint::fingerprint;
use super::schema::{Schema, SchemaError};

/// The four bytes every object container file starts with.
pub const MAGIC: [u8; 4] = *b"Obj\x01";

/// Bounds applied to untrusted sizes read from a file.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest header (metadata) accepted.
    pub max_header_bytes: usize,
    /// Largest block, compressed or inflated.
    pub max_block_bytes: usize,
}

impl Default for Limits {
    /// 64 MiB of header, 512 MiB per block.
    fn default() -> Self {
        Self {
            max_header_bytes: 64 << 20,
            max_block_bytes: 512 << 20,
        }
    }
}

/// Errors in the container framing. Offsets are byte offsets in the object.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// The data does not start with `Obj\x01`.
    #[error("not an Avro object container file (bad magic {found:02x?})")]
    BadMagic {
        /// The first bytes found.
        found: Vec<u8>,
    },
    /// The header metadata is malformed.
    #[error("corrupt header: {0}")]
    Header(String),
    /// The header is larger than parqour reads (its metadata holds more than a schema and a
    /// codec: Avro writers put user metadata there).
    #[error("the header is larger than the {limit} bytes parqour reads")]
    HeaderTooLarge {
        /// The limit ([`Limits::max_header_bytes`]).
        limit: usize,
    },
    /// The schema in the header is invalid.
    #[error("the schema in the header: {0}")]
    Schema(#[from] SchemaError),
    /// The header names an unknown codec.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The file ended inside the header or a block.
    #[error("truncated: the data ends inside block {block} at byte offset {offset} ({missing})")]
    Truncated {
        /// Block index (0-based) being read.
        block: u64,
        /// Byte offset where that block starts.
        offset: u64,
        /// What was missing.
        missing: String,
    },
    /// The sync marker after a block is not the one in the header.
    #[error("wrong sync marker after block {block} (block starts at byte offset {offset})")]
    Sync {
        /// Block index.
        block: u64,
        /// Byte offset where the block starts.
        offset: u64,
    },
    /// The header of a container file concatenated after another is bad.
    #[error("the container file concatenated at byte offset {offset}: {source}")]
    Concatenated {
        /// Byte offset where its header starts.
        offset: u64,
        /// What is wrong with it.
        source: Box<ContainerError>,
    },
    /// A block header (count or size) is malformed or out of bounds.
    #[error("corrupt block {block} at byte offset {offset}: {message}")]
    Block {
        /// Block index.
        block: u64,
        /// Byte offset where the block starts.
        offset: u64,
        /// What is wrong.
        message: String,
    },
}

/// The header of an object container file.
#[derive(Debug, Clone)]
pub struct Header {
    /// The writer schema as JSON text (`avro.schema`).
    pub schema_json: String,
    /// The parsed writer schema (`Schema::Null` where it did not parse, see
    /// [`Header::schema_error`]).
    pub schema: Schema,
    /// Why the writer schema did not parse, in a splitter [`BlockSplitter::describing`] (any
    /// other fails the header instead).
    pub schema_error: Option<std::sync::Arc<SchemaError>>,
    /// The writer schema's fingerprint (CRC-64-AVRO of its Parsing Canonical Form), when it
    /// has one.
    pub fingerprint: Option<i64>,
    /// The block codec (`avro.codec`).
    pub codec: Codec,
    /// The 16-byte sync marker.
    pub sync: [u8; 16],
    /// All metadata entries, including `avro.schema` and `avro.codec`.
    pub metadata: BTreeMap<String, Vec<u8>>,
    /// Byte offset of the header in the object: 0, or where a concatenated file starts.
    pub offset: u64,
    /// Length of the header in bytes (its first block starts at `offset + len`).
    pub len: u64,
}

/// One block, still compressed.
#[derive(Debug, Clone)]
pub struct RawBlock {
    /// 0-based index of the block in its object.
    pub index: u64,
    /// Byte offset of the block (its count varint) in the object.
    pub offset: u64,
    /// Number of records the block says it holds.
    pub count: u64,
    /// The block's data as stored (compressed with the header's codec).
    pub data: Bytes,
    /// The bytes the block takes in the object: its data, and in a container file its count,
    /// its size and its sync marker too (the rate at which the records of a broken range are
    /// estimated counts them: blocks of one small record are mostly framing).
    pub framed: u64,
}

/// Writer schemas parsed so far, with their fingerprints, by their JSON text: the objects of a
/// partition nearly always share one schema, and parsing it (JSON, names, validation, and
/// again for the canonical form) cost more per small object than cloning the result. Bounded:
/// emptied when it holds [`PARSED_SCHEMAS_KEPT`].
static PARSED_SCHEMAS: std::sync::Mutex<Option<ParsedSchemas>> = std::sync::Mutex::new(None);

/// Parsed schemas and their fingerprints, by JSON text.
type ParsedSchemas = HashMap<String, (Schema, Option<i64>)>;

/// Most schemas [`PARSED_SCHEMAS`] keeps.
const PARSED_SCHEMAS_KEPT: usize = 64;

/// `Schema::parse_str` and the fingerprint, remembered (see [`PARSED_SCHEMAS`]). Parse errors
/// are not remembered.
fn parse_schema(json: &str) -> Result<(Schema, Option<i64>), SchemaError> {
    let cached = |cache: &Option<ParsedSchemas>| cache.as_ref()?.get(json).cloned();
    if let Some(parsed) = PARSED_SCHEMAS.lock().ok().and_then(|c| cached(&c)) {
        return Ok(parsed);
    }
    let parsed = (Schema::parse_str(json)?, fingerprint(json).ok());
    if let Ok(mut cache) = PARSED_SCHEMAS.lock() {
        let cache = cache.get_or_insert_with(HashMap::new);
        if cache.len() >= PARSED_SCHEMAS_KEPT {
            cache.clear();
        }
        cache.insert(json.to_string(), parsed.clone());
    }
    Ok(parsed)
}

/// What [`BlockSplitter::next_event`] found.
#[derive(Debug)]
pub enum Event {
    /// A header: first, and again before the blocks of each concatenated file.
    Header(Box<Header>),
    /// The next block.
    Block(RawBlock),
}

/// Bytes skipped after a broken block are handed out ([`BlockSplitter::skip_to_sync`]) in
/// pieces of at least this many (the whole range when shorter).
const SKIPPED_PIECE: usize = 1 << 20;

/// The largest block after a damaged marker whose bytes are held to see whether it is whole
/// ([`BlockSplitter::skip_to_sync`]); past it, its bytes are set aside as they come.
const MAX_CANDIDATE_BLOCK: usize = 64 << 20;

/// The most zero bytes held where a block should start, waiting to see whether the object ends
/// with them (padding, read as the end of the file) or goes on.
const MAX_ZERO_PADDING: usize = 16 << 20;

/// Splits the bytes of one object container file into its header and blocks; push-based.
///
/// Chunks are kept as they arrive ([`Bytes`], not copied): a block that lies within one chunk
/// is handed out as a slice of it, and only a block that straddles chunks is copied together.
#[derive(Debug)]
pub struct BlockSplitter {
    buf: Rope,
    /// Offset in the object of the first byte of `buf`.
    offset: u64,
    /// The sync marker of the last header read.
    sync: Option<[u8; 16]>,
    /// A header comes next (at the start, or after the magic of a concatenated file).
    at_header: bool,
    /// Whether a concatenated file is read (see the module documentation) or is an error.
    concatenated: bool,
    /// Whether a writer schema that does not parse is reported in its header rather than
    /// failing it ([`BlockSplitter::describing`]).
    describing: bool,
    next_index: u64,
    limits: Limits,
    /// After a wrong sync marker: the length the broken block declared, marker included (the
    /// next block may start right after it).
    sync_miss: Option<usize>,
    /// While skipping: the bytes held that were searched, but the last 15 (no marker starts
    /// before them).
    skip_searched: usize,
    /// While a block's data arrives: the bytes held that were searched for the sync marker.
    block_searched: usize,
    /// Zero bytes the object ended with after its last block ([`BlockSplitter::padding`]).
    padding: u64,
}

enum Need {
    More(&'static str),
}

impl BlockSplitter {
    /// A splitter for one object.
    pub fn new(limits: Limits) -> Self {
        Self {
            buf: Rope::default(),
            offset: 0,
            sync: None,
            at_header: true,
            concatenated: false,
            describing: false,
            next_index: 0,
            limits,
            sync_miss: None,
            skip_searched: 0,
            block_searched: 0,
            padding: 0,
        }
    }

    /// Reads container files concatenated in the object, each after its own header, instead of
    /// failing at the second one.
    pub fn reading_concatenated(mut self) -> Self {
        self.concatenated = true;
        self
    }

    /// For describing a file (`inspect`): a writer schema that does not parse, or that parqour
    /// cannot convert (a record of no fields), does not fail its header, which comes with
    /// [`Header::schema_error`] set; the blocks are split as usual.
    pub fn describing(mut self) -> Self {
        self.describing = true;
        self
    }

    /// Appends the next bytes of the object, without copying them.
    pub fn push(&mut self, chunk: Bytes) {
        self.buf.push(chunk);
    }

    /// Appends a copy of the next bytes of the object.
    pub fn push_slice(&mut self, chunk: &[u8]) {
        self.buf.push(Bytes::copy_from_slice(chunk));
    }

    /// Bytes held, waiting for the rest of a block.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Whether a header was read: bytes after it can be set aside as a file's blocks.
    pub fn header_read(&self) -> bool {
        self.sync.is_some()
    }

    /// Blocks handed out so far.
    pub fn blocks_read(&self) -> u64 {
        self.next_index
    }

    /// The zero bytes the object ended with where a block should have started, read as the end
    /// of the file (as Avro Java's reader ends at them): padding some writers and stores leave,
    /// which holds no records (a block of them would declare none).
    pub fn padding(&self) -> u64 {
        self.padding
    }

    /// Whether the bytes held, where a block should start, are all zero bytes (at most
    /// [`MAX_ZERO_PADDING`]): the end of the object decides whether they are padding. (A
    /// block that holds records starts with a non-zero count; an empty one's marker follows
    /// its two zero bytes.)
    fn maybe_padding(&self) -> bool {
        let held = self.buf.len();
        held > 0 && held <= MAX_ZERO_PADDING && self.buf.all_zero()
    }

    /// After an error in a block: the byte offset where that block starts and the bytes held
    /// from there (so the rest of the object can be set aside byte for byte). `None` before the
    /// header is read: without a schema nothing after it can be told apart.
    pub fn take_rest(&mut self) -> Option<(u64, Bytes)> {
        self.sync?;
        let offset = self.offset;
        let rest = self.buf.take_all();
        self.offset += rest.len() as u64;
        Some((offset, rest))
    }

    /// After an error in a block: hands out the bytes held from that block's start up to where
    /// blocks can be read again — just past the next copy of the sync marker (the end of some
    /// later block) — with `true`, and reading goes on from there (not at the magic of a
    /// concatenated file: the bytes of a record may hold a whole Avro file, whose rows are not
    /// the input's); or, while none is held, `false` with the bytes held but the last 16
    /// (a marker may begin in them; the first of them was searched) once they are 1 MiB, else
    /// none: push more and call again. So one damaged block (a flipped bit in
    /// its marker or sizes) loses the blocks up to the next marker, not the rest of the object,
    /// as Avro Java's `DataFileReader.sync` skips to the next marker. Block indexes after it
    /// count the skipped bytes as one block. `None` before the header.
    pub fn skip_to_sync(&mut self) -> Option<(u64, Bytes, bool)> {
        let sync = self.sync?;
        let offset = self.offset;
        self.block_searched = 0;
        let max_block = self.limits.max_block_bytes.min(MAX_CANDIDATE_BLOCK);
        let held = self.buf.len();
        // From the second byte on (the broken block starts at the first), past what an earlier
        // call searched.
        let from = self.skip_searched.max(1);
        let marker = self.buf.find(&sync, from).map(|p| p + sync.len());
        // Where the block after a damaged marker would end (its own marker included), while it
        // may still be one: `Err` once it cannot.
        let candidate = self.sync_miss.map(|at| {
            // The record count and the block size: two varints of at most 10 bytes each.
            let mut head = [0u8; 20];
            let got = self.buf.copy_to(at, &mut head);
            let mut c = Cursor::new(&head[..got]);
            match (c.long(), c.long()) {
                (Ok(count), Ok(size))
                    if count >= 0 && usize::try_from(size).is_ok_and(|n| n <= max_block) =>
                {
                    Ok(at + c.position() + size as usize + sync.len())
                }
                (Err(CursorError::Eof), _) | (Ok(_), Err(CursorError::Eof)) => Ok(usize::MAX),
                _ => Err(()),
            }
        });
        let (end, found) = match (marker, candidate) {
            // Only the broken block's marker was damaged: the next block starts right after
            // it and ends at the marker found. That block is read, not set aside.
            (Some(m), Some(Ok(e))) if e == m => (self.sync_miss.unwrap_or(m), true),
            (Some(m), _) => (m, true),
            // Keep the bytes of a block that may yet prove whole, and the last 16 (a marker
            // may begin in them; the first of them was searched); hand out the rest in pieces
            // of at least SKIPPED_PIECE.
            (None, _) if held < SKIPPED_PIECE + sync.len() => (0, false),
            (None, Some(Ok(e))) if e > held => (
                held.saturating_sub(sync.len())
                    .min(self.sync_miss.unwrap_or(0)),
                false,
            ),
            (None, _) => (held.saturating_sub(sync.len()), false),
        };
        self.skip_searched = if found {
            0
        } else {
            (held.saturating_sub(sync.len() - 1)).saturating_sub(end)
        };
        let data = self.buf.take(end);
        self.offset += data.len() as u64;
        self.sync_miss = match candidate {
            Some(Ok(e)) if !found && e > end => self.sync_miss.map(|at| at - end),
            _ => None,
        };
        if found {
            self.next_index += 1;
        }
        Some((offset, data, found))
    }

    /// Returns the next complete header or block, or `None` if more bytes are needed.
    pub fn next_event(&mut self) -> Result<Option<Event>, ContainerError> {
        if !self.at_header {
            match self.next_file()? {
                Ok(true) => self.at_header = true,
                Ok(false) => {}
                Err(Need::More(_)) => return Ok(None),
            }
        }
        if self.at_header {
            let header = self.try_header().map_err(|e| match self.sync {
                Some(_) => ContainerError::Concatenated {
                    offset: self.offset,
                    source: Box::new(e),
                },
                None => e,
            })?;
            return match header {
                Ok(h) => {
                    self.at_header = false;
                    Ok(Some(Event::Header(Box::new(h))))
                }
                Err(Need::More(_)) => Ok(None),
            };
        }
        if self.maybe_padding() {
            return Ok(None);
        }
        let sync = self.sync.unwrap_or_default();
        match self.try_block(sync)? {
            Ok(b) => Ok(Some(Event::Block(b))),
            Err(Need::More(_)) => Ok(None),
        }
    }

    /// Whether the bytes held start another container file (its magic, where a block
    /// should start); more bytes are needed while they are a part of the magic. An error if
    /// one does and concatenated files are not read.
    fn next_file(&self) -> Result<Result<bool, Need>, ContainerError> {
        let mut front = [0u8; 4];
        let held = self.buf.copy_to(0, &mut front);
        if held == 0 || front[..held] != MAGIC[..held] {
            return Ok(Ok(false));
        }
        if held < MAGIC.len() {
            return Ok(Err(Need::More("the magic of a concatenated file")));
        }
        if !self.concatenated {
            return Err(self.block_error(
                "another container file starts here (`Obj\\x01`): concatenated files are \
                 not read here"
                    .into(),
            ));
        }
        Ok(Ok(true))
    }

    /// Called at the end of the object: an error if it ended inside the header or a block.
    pub fn finish(&mut self) -> Result<(), ContainerError> {
        if self.sync.is_some() && !self.at_header && self.next_file()?.is_err() {
            // Ended inside the magic of a concatenated file.
            self.at_header = true;
        }
        if self.sync.is_some() && self.at_header {
            return Err(ContainerError::Truncated {
                block: self.next_index,
                offset: self.offset,
                missing: match self.try_header()? {
                    Err(Need::More(what)) => {
                        format!("the header of a concatenated file is incomplete: {what}")
                    }
                    Ok(_) => "a header found only at the end".into(),
                },
            });
        }
        if self.sync.is_none() {
            let front = self.buf.contiguous();
            if front.len() >= 4 && front[..4] != MAGIC {
                return Err(ContainerError::BadMagic {
                    found: front[..4].to_vec(),
                });
            }
            return Err(match self.try_header()? {
                Err(Need::More(what)) => ContainerError::Truncated {
                    block: 0,
                    offset: 0,
                    missing: format!("the header is incomplete: {what}"),
                },
                Ok(_) => ContainerError::Header("header found only at the end".into()),
            });
        }
        if self.buf.len() == 0 {
            return Ok(());
        }
        if self.maybe_padding() {
            let zeros = self.buf.take_all();
            self.padding = zeros.len() as u64;
            self.offset += self.padding;
            return Ok(());
        }
        let sync = self.sync.unwrap_or_default();
        match self.try_block(sync)? {
            Err(Need::More(what)) => Err(ContainerError::Truncated {
                block: self.next_index,
                offset: self.offset,
                missing: what.to_string(),
            }),
            Ok(_) => Err(ContainerError::Block {
                block: self.next_index,
                offset: self.offset,
                message: "block completed after the end of data".into(),
            }),
        }
    }

    fn try_header(&mut self) -> Result<Result<Header, Need>, ContainerError> {
        // The header is parsed from contiguous bytes: the chunks held so far are joined (only
        // while the header is incomplete, and it nearly always fits in the first chunk).
        let buf = self.buf.contiguous();
        if buf.len() < 4 {
            return Ok(Err(Need::More("the magic")));
        }
        if buf[..4] != MAGIC {
            return Err(ContainerError::BadMagic {
                found: buf[..4].to_vec(),
            });
        }
        let mut cur = Cursor::new(&buf[4..]);
        let mut metadata = BTreeMap::new();
        loop {
            let (count, _) = match cur.block_count() {
                Ok(c) => c,
                Err(CursorError::Eof) => return Ok(Err(Need::More("the metadata map"))),
                Err(e) => return Err(header_error(e)),
            };
            if count == 0 {
                break;
            }
            if count > self.limits.max_header_bytes as u64 {
                return Err(ContainerError::Header(format!(
                    "absurd metadata entry count {count}"
                )));
            }
            for _ in 0..count {
                let limit = self.limits.max_header_bytes;
                let blob_error = |e: CursorError| match e {
                    CursorError::Length(n) if n > 0 => ContainerError::HeaderTooLarge { limit },
                    e => header_error(e),
                };
                let key = match read_blob(&mut cur, limit) {
                    Ok(Some(k)) => k,
                    Ok(None) => return Ok(Err(Need::More("a metadata key"))),
                    Err(e) => return Err(blob_error(e)),
                };
                let value = match read_blob(&mut cur, limit) {
                    Ok(Some(v)) => v,
                    Ok(None) => return Ok(Err(Need::More("a metadata value"))),
                    Err(e) => return Err(blob_error(e)),
                };
                let key = String::from_utf8(key.to_vec())
                    .map_err(|_| ContainerError::Header("metadata key is not UTF-8".into()))?;
                metadata.insert(key, value.to_vec());
            }
            if 4 + cur.position() > self.limits.max_header_bytes {
                return Err(ContainerError::HeaderTooLarge {
                    limit: self.limits.max_header_bytes,
                });
            }
        }
        let sync: [u8; 16] = match cur.take(16) {
            Ok(s) => s
                .try_into()
                .map_err(|_| ContainerError::Header("sync".into()))?,
            Err(_) => return Ok(Err(Need::More("the sync marker"))),
        };
        let len = 4 + cur.position();
        let schema_json = metadata
            .get("avro.schema")
            .ok_or_else(|| ContainerError::Header("no `avro.schema` in the metadata".into()))?;
        let schema_json = String::from_utf8(schema_json.clone())
            .map_err(|_| ContainerError::Header("`avro.schema` is not UTF-8".into()))?;
        let (schema, fingerprint, schema_error) = match parse_schema(&schema_json) {
            Ok((schema, fingerprint)) => (schema, fingerprint, None),
            Err(e) if self.describing => (
                Schema::Null,
                fingerprint(&schema_json).ok(),
                Some(std::sync::Arc::new(e)),
            ),
            Err(e) => return Err(e.into()),
        };
        let codec_name = match metadata.get("avro.codec") {
            Some(c) => Some(
                std::str::from_utf8(c)
                    .map_err(|_| ContainerError::Header("`avro.codec` is not UTF-8".into()))?,
            ),
            None => None,
        };
        let codec = Codec::from_name(codec_name)?;
        let offset = self.offset;
        self.buf.advance(len);
        self.offset += len as u64;
        self.sync = Some(sync);
        Ok(Ok(Header {
            schema_json,
            schema,
            schema_error,
            fingerprint,
            codec,
            sync,
            metadata,
            offset,
            len: len as u64,
        }))
    }

    fn block_error(&self, message: String) -> ContainerError {
        ContainerError::Block {
            block: self.next_index,
            offset: self.offset,
            message,
        }
    }

    fn try_block(&mut self, sync: [u8; 16]) -> Result<Result<RawBlock, Need>, ContainerError> {
        // The record count and the block size: two varints of at most 10 bytes each.
        let mut start = [0u8; 20];
        let held = self.buf.copy_to(0, &mut start);
        if held == 0 {
            return Ok(Err(Need::More("the block header")));
        }
        let mut cur = Cursor::new(&start[..held]);
        let count = match cur.long() {
            Ok(c) => c,
            Err(CursorError::Eof) => return Ok(Err(Need::More("the record count"))),
            Err(e) => return Err(self.block_error(format!("record count: {e}"))),
        };
        let size = match cur.long() {
            Ok(s) => s,
            Err(CursorError::Eof) => return Ok(Err(Need::More("the block size"))),
            Err(e) => return Err(self.block_error(format!("block size: {e}"))),
        };
        if count < 0 {
            return Err(self.block_error(format!("negative record count {count}")));
        }
        if size < 0 || size as u64 > self.limits.max_block_bytes as u64 {
            return Err(self.block_error(format!(
                "block size {size} is outside 0..={}",
                self.limits.max_block_bytes
            )));
        }
        // Every record takes at least one byte unless the schema is empty, which the decoder
        // checks; here bound the count by the block's capacity so no count can make the decoder
        // reserve more than the block holds.
        if count as u64 > (self.limits.max_block_bytes as u64).max(size as u64 * 8 + 1024) {
            return Err(self.block_error(format!("absurd record count {count}")));
        }
        let head = cur.position();
        let size = size as usize;
        let total = head + size + 16;
        if self.buf.len() < total {
            // A copy of the file's marker inside the bytes the block declares shows that its
            // size is damaged (a block's data holds its file's random 16-byte marker by a
            // 2^-128 chance a position): an error now, not a wait for bytes of later blocks
            // (past the end of the object, or up to the block cap).
            let from = self.block_searched.max(head);
            if let Some(at) = self.buf.find(&sync, from)
                && at + sync.len() <= head + size
            {
                self.block_searched = 0;
                return Err(self.block_error(format!(
                    "a sync marker at byte offset {} lies inside the {size} bytes the block \
                     declares: its size is damaged",
                    self.offset + at as u64
                )));
            }
            self.block_searched = self.buf.len().saturating_sub(sync.len() - 1).max(head);
            // No reservation from the untrusted size: bytes are held only as they arrive.
            return Ok(Err(Need::More(if self.buf.len() < head + size {
                "block data"
            } else {
                "the sync marker"
            })));
        }
        self.block_searched = 0;
        let mut marker = [0u8; 16];
        self.buf.copy_to(head + size, &mut marker);
        if marker != sync {
            self.sync_miss = Some(total);
            return Err(ContainerError::Sync {
                block: self.next_index,
                offset: self.offset,
            });
        }
        self.buf.advance(head);
        let data = self.buf.take(size);
        self.buf.advance(16);
        let out = RawBlock {
            index: self.next_index,
            offset: self.offset,
            count: count as u64,
            data,
            framed: total as u64,
        };
        self.next_index += 1;
        self.offset += total as u64;
        Ok(Ok(out))
    }
}

fn header_error(e: CursorError) -> ContainerError {
    ContainerError::Header(format!("malformed metadata: {e}"))
}

/// The bytes of an object received and not yet handed out: the chunks as they arrived (the
/// first one possibly in part).
#[derive(Debug, Default)]
struct Rope {
    chunks: VecDeque<Bytes>,
    len: usize,
}

impl Rope {
    fn push(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            self.len += chunk.len();
            self.chunks.push_back(chunk);
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    fn all_zero(&self) -> bool {
        self.chunks.iter().all(|c| c.iter().all(|&b| b == 0))
    }

    /// Copies the bytes from `at` into `out`, as many as are held; returns how many.
    fn copy_to(&self, mut at: usize, out: &mut [u8]) -> usize {
        let mut copied = 0;
        for chunk in &self.chunks {
            if copied == out.len() {
                break;
            }
            if at >= chunk.len() {
                at -= chunk.len();
                continue;
            }
            let n = (chunk.len() - at).min(out.len() - copied);
            out[copied..copied + n].copy_from_slice(&chunk[at..at + n]);
            copied += n;
            at = 0;
        }
        copied
    }

    /// Where the first copy of `pat` (at most 16 bytes) at or after `from` starts, searched in
    /// the chunks as they are (no join).
    fn find(&self, pat: &[u8], from: usize) -> Option<usize> {
        let n = pat.len();
        let mut start = 0;
        for (i, chunk) in self.chunks.iter().enumerate() {
            let end = start + chunk.len();
            if end > from {
                let lo = from.saturating_sub(start);
                if let Some(p) = memchr::memmem::find(&chunk[lo..], pat) {
                    return Some(start + lo + p);
                }
            }
            // A copy that begins in this chunk and ends in a later one.
            if i + 1 < self.chunks.len() && from < end {
                let at = end.saturating_sub(n - 1).max(from);
                let mut window = [0u8; 32];
                let want = (end - at + n - 1).min(window.len());
                let got = self.copy_to(at, &mut window[..want]);
                if let Some(p) = memchr::memmem::find(&window[..got], pat) {
                    return Some(at + p);
                }
            }
            start = end;
        }
        None
    }

    /// All the bytes held, as one slice (the chunks are joined into one first if need be).
    /// Joined again as more chunks come, the first one grows in place (when no slice of it
    /// is held elsewhere), so that a header arriving in many small chunks is copied about
    /// once, not once per chunk.
    fn contiguous(&mut self) -> &[u8] {
        if self.chunks.len() > 1
            && let Some(first) = self.chunks.pop_front()
        {
            let mut joined = first
                .try_into_mut()
                .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
            joined.reserve(self.len - joined.len());
            while let Some(next) = self.chunks.pop_front() {
                joined.extend_from_slice(&next);
            }
            self.chunks.push_front(joined.freeze());
        }
        self.chunks.front().map_or(&[], |c| &c[..])
    }

    /// Drops the first `n` bytes (at most all).
    fn advance(&mut self, mut n: usize) {
        while n > 0 {
            let Some(front) = self.chunks.front_mut() else {
                break;
            };
            let step = n.min(front.len());
            front.advance(step);
            self.len -= step;
            n -= step;
            if front.is_empty() {
                self.chunks.pop_front();
            }
        }
    }

    /// The first `n` bytes (at most all): a slice of the first chunk when it holds them, else
    /// a copy.
    fn take(&mut self, n: usize) -> Bytes {
        let n = n.min(self.len);
        if let Some(front) = self.chunks.front_mut()
            && front.len() >= n
        {
            let out = front.split_to(n);
            self.len -= n;
            if front.is_empty() {
                self.chunks.pop_front();
            }
            return out;
        }
        let mut out = BytesMut::with_capacity(n);
        while out.len() < n {
            let Some(front) = self.chunks.front_mut() else {
                break;
            };
            let step = (n - out.len()).min(front.len());
            out.extend_from_slice(&front[..step]);
            front.advance(step);
            self.len -= step;
            if front.is_empty() {
                self.chunks.pop_front();
            }
        }
        out.freeze()
    }

    /// Everything held.
    fn take_all(&mut self) -> Bytes {
        self.take(self.len)
    }
}

/// `Ok(None)` when the data ends inside the blob.
fn read_blob<'a>(cur: &mut Cursor<'a>, max: usize) -> Result<Option<&'a [u8]>, CursorError> {
    let len = match cur.long() {
        Ok(l) => l,
        Err(CursorError::Eof) => return Ok(None),
        Err(e) => return Err(e),
    };
    if len < 0 || len as u64 > max as u64 {
        return Err(CursorError::Length(len));
    }
    match cur.take(len as usize) {
        Ok(b) => Ok(Some(b)),
        Err(_) => Ok(None),
    }
}

/// Splits a whole object held in memory: one container file (a concatenated one is an error).
pub fn split_all(data: &[u8], limits: Limits) -> Result<(Header, Vec<RawBlock>), ContainerError> {
    let mut s = BlockSplitter::new(limits);
    s.push_slice(data);
    let mut header = None;
    let mut blocks = Vec::new();
    while let Some(ev) = s.next_event()? {
        match ev {
            Event::Header(h) => header = Some(*h),
            Event::Block(b) => blocks.push(b),
        }
    }
    s.finish()?;
    let header = header.ok_or_else(|| ContainerError::Header("missing".into()))?;
    Ok((header, blocks))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::avro::cursor::encode_long;

    #[test]
    fn remembered_schemas_are_the_parsed_ones_and_the_cache_stays_bounded() {
        for i in 0..PARSED_SCHEMAS_KEPT + 10 {
            let json = format!(
                r#"{{"type": "record", "name": "Cached{i}", "fields": [{{"name": "a", "type": "long"}}]}}"#
            );
            let first = parse_schema(&json).unwrap();
            assert_eq!(
                first,
                (
                    Schema::parse_str(&json).unwrap(),
                    Some(fingerprint(&json).unwrap())
                )
            );
            assert_eq!(parse_schema(&json).unwrap(), first);
            let held = PARSED_SCHEMAS
                .lock()
                .unwrap()
                .as_ref()
                .map_or(0, HashMap::len);
            assert!(held <= PARSED_SCHEMAS_KEPT, "{held} schemas held");
        }
        // Errors come back every time.
        for _ in 0..2 {
            assert!(parse_schema(r#"{"type": "record", "name": "Bad"}"#).is_err());
        }
    }

    pub(crate) fn container(schema: &str, blocks: &[(i64, Vec<u8>)], sync: [u8; 16]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        encode_long(1, &mut out);
        encode_long(11, &mut out);
        out.extend_from_slice(b"avro.schema");
        encode_long(schema.len() as i64, &mut out);
        out.extend_from_slice(schema.as_bytes());
        encode_long(0, &mut out);
        out.extend_from_slice(&sync);
        for (count, data) in blocks {
            encode_long(*count, &mut out);
            encode_long(data.len() as i64, &mut out);
            out.extend_from_slice(data);
            out.extend_from_slice(&sync);
        }
        out
    }

    fn longs(vals: &[i64]) -> Vec<u8> {
        let mut out = Vec::new();
        for v in vals {
            encode_long(*v, &mut out);
        }
        out
    }

    /// A header past the limit says so, whether one metadata value or all of them pass it;
    /// it is not called corrupt.
    #[test]
    fn a_header_past_the_limit_is_too_large_not_corrupt() {
        let schema = r#""long""#;
        let limits = Limits {
            max_header_bytes: 1024,
            ..Limits::default()
        };
        for (values, size) in [(1, 2000), (3, 500)] {
            let mut file = MAGIC.to_vec();
            encode_long(1 + values, &mut file);
            encode_long(11, &mut file);
            file.extend_from_slice(b"avro.schema");
            encode_long(schema.len() as i64, &mut file);
            file.extend_from_slice(schema.as_bytes());
            for i in 0..values {
                let key = format!("user.{i}");
                encode_long(key.len() as i64, &mut file);
                file.extend_from_slice(key.as_bytes());
                encode_long(size, &mut file);
                file.extend(std::iter::repeat_n(b'x', size as usize));
            }
            encode_long(0, &mut file);
            file.extend_from_slice(&[1; 16]);
            let err = split_all(&file, limits).unwrap_err();
            assert!(
                matches!(err, ContainerError::HeaderTooLarge { limit: 1024 }),
                "{values} values of {size}: {err}"
            );
            assert_eq!(
                err.to_string(),
                "the header is larger than the 1024 bytes parqour reads"
            );
        }
    }

    #[test]
    fn splits_in_any_chunking() {
        let sync = [7u8; 16];
        let file = container(
            r#""long""#,
            &[
                (2, longs(&[1, 2])),
                (3, longs(&[3, 4, 500])),
                (1, longs(&[-6])),
            ],
            sync,
        );
        for chunk in [1, 2, 3, 7, 64, file.len()] {
            let mut s = BlockSplitter::new(Limits::default());
            let mut blocks = Vec::new();
            for c in file.chunks(chunk) {
                s.push_slice(c);
                while let Some(ev) = s.next_event().unwrap() {
                    if let Event::Block(b) = ev {
                        blocks.push(b);
                    }
                }
            }
            s.finish().unwrap();
            assert_eq!(blocks.len(), 3);
            assert_eq!(blocks[1].count, 3);
            assert_eq!(blocks[1].index, 1);
            assert_eq!(&blocks[2].data[..], &longs(&[-6])[..]);
        }
    }

    /// Every event of `file` fed in chunks of `chunk` bytes, and how it ended.
    fn events(
        file: &[u8],
        chunk: usize,
        concatenated: bool,
    ) -> (Vec<Event>, Result<(), ContainerError>) {
        let mut s = BlockSplitter::new(Limits::default());
        if concatenated {
            s = s.reading_concatenated();
        }
        let mut found = Vec::new();
        for c in file.chunks(chunk.max(1)) {
            s.push_slice(c);
            loop {
                match s.next_event() {
                    Ok(Some(ev)) => found.push(ev),
                    Ok(None) => break,
                    Err(e) => return (found, Err(e)),
                }
            }
        }
        (found, s.finish())
    }

    #[test]
    fn concatenated_files_are_read_each_with_its_own_header() {
        let a = container(
            r#""long""#,
            &[(2, longs(&[1, 2])), (1, longs(&[3]))],
            [1; 16],
        );
        let b = container(
            r#"{"type": "array", "items": "long"}"#,
            &[(1, longs(&[2, 4, 5, 0]))],
            [2; 16],
        );
        let file = [&a[..], &b[..], &a[..]].concat();
        for chunk in [1, 2, 3, 5, 64, file.len()] {
            let (found, end) = events(&file, chunk, true);
            end.unwrap();
            let summary: Vec<String> = found
                .iter()
                .map(|e| match e {
                    Event::Header(h) => format!("h{}:{:?}", h.offset, h.schema_json),
                    Event::Block(b) => format!("b{}@{}x{}", b.index, b.offset, b.count),
                })
                .collect();
            let (ha, hb) = (
                split_all(&a, Limits::default()).unwrap().0.len,
                split_all(&b, Limits::default()).unwrap().0.len,
            );
            let (la, lb) = (a.len() as u64, b.len() as u64);
            assert_eq!(
                summary,
                [
                    format!("h0:{:?}", r#""long""#),
                    format!("b0@{ha}x2"),
                    format!("b1@{}x1", ha + 2 + 2 + 16),
                    format!("h{la}:{:?}", r#"{"type": "array", "items": "long"}"#),
                    format!("b2@{}x1", la + hb),
                    format!("h{}:{:?}", la + lb, r#""long""#),
                    format!("b3@{}x2", la + lb + ha),
                    format!("b4@{}x1", la + lb + ha + 20),
                ],
                "chunks of {chunk}"
            );
        }
        // Not asked for (and in `split_all`): an error that says what it found.
        let (found, end) = events(&file, 7, false);
        assert_eq!(found.len(), 3);
        let err = end.unwrap_err().to_string();
        assert!(err.contains("concatenated"), "{err}");
        assert!(err.contains(&format!("offset {}", a.len())), "{err}");
        let err = split_all(&file, Limits::default()).unwrap_err();
        assert!(err.to_string().contains("concatenated"), "{err}");
        // Cut anywhere in the second header (the magic included): truncated, after the first
        // file's blocks; a corrupt second header is an error after them too.
        let hb = split_all(&b, Limits::default()).unwrap().0.len as usize;
        for cut in 1..hb {
            let (found, end) = events(&[&a[..], &b[..cut]].concat(), 3, true);
            assert_eq!(found.len(), 3, "cut at {cut}");
            let err = end.unwrap_err();
            assert!(
                matches!(&err, ContainerError::Truncated { offset, .. } if *offset == a.len() as u64),
                "cut at {cut}: {err}"
            );
        }
        let mut bad = b.clone();
        bad[5] = 0xff; // the first metadata key's length: a varint running into the key
        let (found, end) = events(&[&a[..], &bad[..]].concat(), 16, true);
        assert_eq!(found.len(), 3);
        assert!(
            matches!(&end, Err(ContainerError::Concatenated { offset, source })
                if *offset == a.len() as u64 && matches!(**source, ContainerError::Header(_))),
            "{end:?}"
        );
    }

    #[test]
    fn blocks_within_a_chunk_are_not_copied() {
        let sync = [9u8; 16];
        let blocks = [
            (2, longs(&[1, 2])),
            (3, longs(&[3, 4, 500])),
            (1, longs(&[-6])),
        ];
        let file = Bytes::from(container(r#""long""#, &blocks, sync));
        let within = |b: &Bytes, chunk: &Bytes| {
            let range = chunk.as_ptr_range();
            range.contains(&b.as_ptr()) && b.len() <= chunk.len()
        };
        // Cut at every byte: after the header, the blocks on one side of the cut are slices of
        // their chunk, the block across it a copy with the same bytes. (A header that straddles
        // chunks is parsed from a copy of the chunks held, so the blocks in them are copies.)
        let header = split_all(&file, Limits::default()).unwrap().0.len as usize;
        for cut in 0..=file.len() {
            let (a, b) = (file.slice(..cut), file.slice(cut..));
            let mut s = BlockSplitter::new(Limits::default());
            let mut found = Vec::new();
            for chunk in [&a, &b] {
                s.push(chunk.clone());
                while let Some(ev) = s.next_event().unwrap() {
                    if let Event::Block(block) = ev {
                        found.push(block);
                    }
                }
            }
            s.finish().unwrap();
            assert_eq!(found.len(), 3, "cut at {cut}");
            for (block, (count, data)) in found.iter().zip(&blocks) {
                assert_eq!(block.count, *count as u64);
                assert_eq!(&block.data[..], &data[..], "cut at {cut}");
                let start = block.offset as usize;
                let end = start + 2 + data.len() + 16;
                if cut < header {
                    continue;
                }
                if end <= cut {
                    assert!(
                        within(&block.data, &a),
                        "cut {cut}: block {} copied",
                        block.index
                    );
                } else if start >= cut {
                    assert!(
                        within(&block.data, &b),
                        "cut {cut}: block {} copied",
                        block.index
                    );
                }
            }
        }
    }

    /// Zero bytes after the last block (padding some writers and stores leave, which Avro
    /// Java's reader ends at) are the end of the file, in any chunking; zeros followed by
    /// anything else are still a broken block.
    #[test]
    fn zero_padding_after_the_last_block_ends_the_file() {
        let sync = [7u8; 16];
        let file = container(r#""long""#, &[(2, longs(&[1, 2])), (1, longs(&[3]))], sync);
        for zeros in [1, 2, 15, 16, 17, 18, 40, 5_000] {
            let mut padded = file.clone();
            padded.resize(file.len() + zeros, 0);
            for chunk in [1, 3, 16, 1000, padded.len()] {
                let mut s = BlockSplitter::new(Limits::default());
                let mut counts = Vec::new();
                for c in padded.chunks(chunk) {
                    s.push_slice(c);
                    while let Some(ev) = s.next_event().unwrap() {
                        if let Event::Block(b) = ev {
                            counts.push(b.count);
                        }
                    }
                }
                s.finish().unwrap();
                assert_eq!(counts, [2, 1], "{zeros} zeros, chunks of {chunk}");
                assert_eq!(s.padding(), zeros as u64);
            }
            let mut then_data = padded.clone();
            then_data.push(1);
            assert!(split_all(&then_data, Limits::default()).is_err(), "{zeros}");
        }
        // Without padding there is none; a block cut short is still truncated.
        let mut s = BlockSplitter::new(Limits::default());
        s.push_slice(&file);
        while s.next_event().unwrap().is_some() {}
        s.finish().unwrap();
        assert_eq!(s.padding(), 0);
        let err = split_all(&file[..file.len() - 3], Limits::default()).unwrap_err();
        assert!(matches!(err, ContainerError::Truncated { .. }), "{err}");
    }

    #[test]
    fn truncation_and_bad_sync_are_located() {
        let sync = [7u8; 16];
        let file = container(r#""long""#, &[(2, longs(&[1, 2])), (1, longs(&[3]))], sync);
        let err = split_all(&file[..file.len() - 3], Limits::default()).unwrap_err();
        assert!(
            matches!(err, ContainerError::Truncated { block: 1, .. }),
            "{err}"
        );
        let mut bad = file.clone();
        let n = bad.len();
        bad[n - 1] ^= 1;
        let err = split_all(&bad, Limits::default()).unwrap_err();
        assert!(
            matches!(err, ContainerError::Sync { block: 1, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("block 1"));
        let err = split_all(b"PAR1xxxxxxxx", Limits::default()).unwrap_err();
        assert!(matches!(err, ContainerError::BadMagic { .. }));
        let err = split_all(b"Ob", Limits::default()).unwrap_err();
        assert!(matches!(err, ContainerError::Truncated { .. }), "{err}");
    }

    /// The byte ranges a reader that sets broken blocks aside reads from `file` fed in chunks of
    /// `chunk` bytes, as `source` reads objects: `(start, end, first value)` of each block read
    /// (head, data and marker) and `(start, end, None)` of each piece set aside, in order.
    fn read_setting_aside(file: &[u8], chunk: usize) -> Vec<(u64, u64, Option<i64>)> {
        let mut s = BlockSplitter::new(Limits::default()).reading_concatenated();
        let mut ranges = Vec::new();
        let mut skipping = false;
        for c in file.chunks(chunk) {
            s.push_slice(c);
            loop {
                if skipping {
                    let (offset, data, found) = s.skip_to_sync().unwrap();
                    ranges.push((offset, offset + data.len() as u64, None));
                    if !found {
                        break;
                    }
                    skipping = false;
                }
                match s.next_event() {
                    Ok(Some(Event::Block(b))) => {
                        let mut head = Vec::new();
                        encode_long(b.count as i64, &mut head);
                        encode_long(b.data.len() as i64, &mut head);
                        let end = b.offset + (head.len() + b.data.len() + 16) as u64;
                        let first = Cursor::new(&b.data).long().ok();
                        ranges.push((b.offset, end, Some(first.unwrap_or_default())));
                    }
                    Ok(Some(Event::Header(_))) => {}
                    Ok(None) => break,
                    Err(_) => skipping = true,
                }
            }
        }
        if skipping || s.finish().is_err() {
            let (offset, data) = s.take_rest().unwrap();
            ranges.push((offset, offset + data.len() as u64, None));
        }
        ranges
    }

    /// The first value of each block read, and `(offset, length)` of each range set aside
    /// (the pieces of one range joined).
    fn recovered(file: &[u8], chunk: usize) -> (Vec<i64>, Vec<(u64, usize)>) {
        let (mut firsts, mut skipped) = (Vec::new(), Vec::<(u64, usize)>::new());
        for (start, end, first) in read_setting_aside(file, chunk) {
            match first {
                Some(v) => firsts.push(v),
                None => match skipped.last_mut() {
                    Some((o, n)) if *o + *n as u64 == start => *n += (end - start) as usize,
                    _ => skipped.push((start, (end - start) as usize)),
                },
            }
        }
        skipped.retain(|&(_, n)| n > 0);
        (firsts, skipped)
    }

    #[test]
    fn a_damaged_block_is_set_aside_up_to_the_next_sync_marker() {
        let sync = [0xa5u8; 16];
        let blocks: Vec<(i64, Vec<u8>)> = (0..5i64)
            .map(|i| (3, longs(&[i * 10, i * 10 + 1, i * 10 + 2])))
            .collect();
        let file = container(r#""long""#, &blocks, sync);
        // Values under 64: every block is 3 bytes of data, 21 in all.
        let block_len = 1 + 1 + 3 + 16;
        let start = file.len() - 5 * block_len;
        let at = |i: usize| start + i * block_len;
        for chunk in [1, 3, 7, 16, 1 << 20] {
            // Intact: every block, nothing set aside.
            assert_eq!(recovered(&file, chunk), (vec![0, 10, 20, 30, 40], vec![]));
            // A flipped bit in block 1's marker: block 1 alone is set aside.
            let mut bad = file.clone();
            bad[at(2) - 5] ^= 0x10;
            let want = (vec![0, 20, 30, 40], vec![(at(1) as u64, block_len)]);
            assert_eq!(recovered(&bad, chunk), want, "marker, chunks of {chunk}");
            // Block 2's size larger than it is: the marker is missed, block 2 set aside.
            let mut bad = file.clone();
            bad[at(2) + 1] += 4;
            let want = (vec![0, 10, 30, 40], vec![(at(2) as u64, block_len)]);
            assert_eq!(recovered(&bad, chunk), want, "size, chunks of {chunk}");
            // Block 2's size past the end of the file: its marker, inside the size, shows it
            // damaged at once; block 2 alone is set aside.
            let mut bad = file.clone();
            bad[at(2) + 1] = 126;
            let want = (vec![0, 10, 30, 40], vec![(at(2) as u64, block_len)]);
            assert_eq!(
                recovered(&bad, chunk),
                want,
                "size past the end, chunks of {chunk}"
            );
            // Garbage in place of block 1's head: set aside up to its marker.
            let mut bad = file.clone();
            bad[at(1)..at(1) + 2].copy_from_slice(&[0x81, 0x81]);
            let want = (vec![0, 20, 30, 40], vec![(at(1) as u64, block_len)]);
            assert_eq!(recovered(&bad, chunk), want, "head, chunks of {chunk}");
            // Bytes inserted between blocks 2 and 3: they and block 3 (whose head they
            // take the place of) are set aside, block 4 is read.
            let mut bad = file.clone();
            bad.splice(at(3)..at(3), [9u8, 9, 9]);
            let want = (vec![0, 10, 20, 40], vec![(at(3) as u64, block_len + 3)]);
            assert_eq!(recovered(&bad, chunk), want, "inserted, chunks of {chunk}");
            // Truncated inside block 3: the rest from block 3 on is set aside.
            let cut = &file[..at(3) + 5];
            let want = (vec![0, 10, 20], vec![(at(3) as u64, 5)]);
            assert_eq!(recovered(cut, chunk), want, "truncated, chunks of {chunk}");
            // Block 4's marker damaged, the last: no marker follows, block 4 is set aside.
            let mut bad = file.clone();
            let n = bad.len();
            bad[n - 1] ^= 1;
            let want = (vec![0, 10, 20, 30], vec![(at(4) as u64, block_len)]);
            assert_eq!(recovered(&bad, chunk), want, "last, chunks of {chunk}");
        }
    }

    /// Whatever the damage and the chunking, a reader that sets broken ranges aside reads
    /// every byte after the header once: in a block (its head, data and marker) or in a range
    /// set aside, in order, up to the end of the file.
    #[test]
    fn setting_aside_covers_every_byte_once_whatever_the_damage() {
        let sync = [0x3cu8; 16];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut rand = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        for round in 0..3000 {
            let blocks: Vec<(i64, Vec<u8>)> = (0..12)
                .map(|i| {
                    let vals: Vec<i64> = (0..(1 + (i * 7 + round) % 40) as i64).collect();
                    (vals.len() as i64, longs(&vals))
                })
                .collect();
            let mut file = container(r#""long""#, &blocks, sync);
            let header = split_all(&file, Limits::default()).unwrap().0.len as usize;
            for _ in 0..1 + rand(3) {
                let at = header + rand(file.len() - header);
                match rand(5) {
                    0 => file[at] ^= 1 << rand(8),
                    1 => file[at] = rand(256) as u8,
                    2 => file.insert(at, rand(256) as u8),
                    3 => {
                        file.remove(at);
                    }
                    _ => file.truncate(at.max(header + 1)),
                }
            }
            let ranges = read_setting_aside(&file, 1 + rand(64));
            let mut at = header as u64;
            for &(start, end, _) in &ranges {
                assert_eq!(start, at, "round {round}: {ranges:?}");
                at = end;
            }
            assert_eq!(at, file.len() as u64, "round {round}: {ranges:?}");
        }
    }

    #[test]
    fn absurd_sizes_are_refused_without_allocating() {
        let mut file = container(r#""long""#, &[], [1; 16]);
        encode_long(1, &mut file);
        encode_long(i64::MAX / 2, &mut file);
        let err = split_all(&file, Limits::default()).unwrap_err();
        assert!(err.to_string().contains("block size"), "{err}");
        let mut file = container(r#""long""#, &[], [1; 16]);
        encode_long(-5, &mut file);
        encode_long(1, &mut file);
        assert!(split_all(&file, Limits::default()).is_err());
    }
}
