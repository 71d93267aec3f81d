//! `DataWrapper` envelopes: events that carry their writer schema's fingerprint.
//!
//! ```text
//! record DataWrapper { string dataType; long schemaFingerprint; bytes data; }
//! ```
//!
//! `data` is one event encoded with the writer schema that `schemaFingerprint` names in the
//! registry. Envelopes arrive in two framings:
//! - inside object container files whose schema is `DataWrapper` (any namespace; the three fields
//!   in any order): see [`EnvelopeLayout::of`];
//! - as plain concatenations of binary `DataWrapper` datums with no header, as Kinesis Firehose
//!   writes records put on a stream: [`RawSplitter`] cuts such a stream into blocks of whole
//!   datums, checking the framing as it goes.
//!
//! A raw concatenation has no sync markers: once a length is wrong, nothing after it can be
//! framed with certainty. The splitter therefore checks every datum's framing (lengths within
//! bounds, a data type that is a plausible name) and reports the first violation with its byte
//! offset; the caller sets the rest of the object aside (dead-letter place) rather than guess.

use bytes::{Bytes, BytesMut};

use super::container::RawBlock;
use super::cursor::{Cursor, CursorError};
use super::schema::Schema;

/// Longest `dataType` accepted in a raw framing (a longer one means the framing is broken).
pub const MAX_DATA_TYPE_LEN: usize = 255;

/// The `DataWrapper` schema, as container files of envelopes that parqour writes (replayed dead
/// letters, the demo's envelopes) declare it.
pub const DATA_WRAPPER_SCHEMA: &str = r#"{"type":"record","name":"DataWrapper","fields":[{"name":"dataType","type":"string"},{"name":"schemaFingerprint","type":"long"},{"name":"data","type":"bytes"}]}"#;

/// One envelope, borrowed from the block it was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// The event's type (which table it goes to).
    pub data_type: &'a str,
    /// The writer schema's fingerprint (Java's `parsingFingerprint64`).
    pub fingerprint: i64,
    /// The event, encoded with that schema.
    pub data: &'a [u8],
}

/// Why an envelope could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// Malformed binary encoding.
    #[error("corrupt envelope: {0}")]
    Cursor(#[from] CursorError),
    /// A `dataType` that is no name.
    #[error("corrupt envelope: dataType {0:?} is not a name")]
    DataType(String),
    /// A raw framing whose lengths are out of bounds.
    #[error("corrupt envelope framing: {0}")]
    Framing(String),
}

/// Where the three fields sit in a container file's `DataWrapper` records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvelopeLayout {
    /// For each of the record's fields in order: 0 dataType, 1 schemaFingerprint, 2 data.
    order: [u8; 3],
}

impl EnvelopeLayout {
    /// The raw framing's layout: dataType, schemaFingerprint, data.
    pub const RAW: EnvelopeLayout = EnvelopeLayout { order: [0, 1, 2] };

    /// The layout of `schema` if it is a `DataWrapper` envelope: a record named `DataWrapper`
    /// with exactly the fields dataType (string), schemaFingerprint (long) and data (bytes).
    pub fn of(schema: &Schema) -> Option<EnvelopeLayout> {
        let Schema::Record(r) = schema else {
            return None;
        };
        if r.name.name != "DataWrapper" || r.fields.len() != 3 {
            return None;
        }
        let mut order = [0u8; 3];
        let mut seen = [false; 3];
        for (i, f) in r.fields.iter().enumerate() {
            let which = match (f.name.as_str(), &f.schema) {
                ("dataType", Schema::String) => 0,
                ("schemaFingerprint", Schema::Long) => 1,
                ("data", Schema::Bytes) => 2,
                _ => return None,
            };
            if seen[which as usize] {
                return None;
            }
            seen[which as usize] = true;
            order[i] = which;
        }
        Some(EnvelopeLayout { order })
    }

    /// Reads one envelope.
    pub fn read<'a>(&self, cur: &mut Cursor<'a>) -> Result<Envelope<'a>, EnvelopeError> {
        let (data_type, fingerprint, data) = self.read_fields(cur)?;
        Ok(Envelope {
            data_type: checked_data_type(data_type)?,
            fingerprint,
            data,
        })
    }

    /// Reads one envelope's fields (dataType, schemaFingerprint, data), the data type not
    /// checked: a bad one leaves the cursor after the envelope, the next one readable.
    pub fn read_fields<'a>(
        &self,
        cur: &mut Cursor<'a>,
    ) -> Result<(&'a [u8], i64, &'a [u8]), CursorError> {
        let mut data_type: &[u8] = &[];
        let mut fingerprint = 0;
        let mut data: &[u8] = &[];
        for which in self.order {
            match which {
                0 => data_type = cur.bytes()?,
                1 => fingerprint = cur.long()?,
                _ => data = cur.bytes()?,
            }
        }
        Ok((data_type, fingerprint, data))
    }
}

/// `bytes` as a data type, if it is one ([`valid_data_type`]).
pub fn checked_data_type(bytes: &[u8]) -> Result<&str, EnvelopeError> {
    std::str::from_utf8(bytes)
        .ok()
        .filter(|s| valid_data_type(s))
        .ok_or_else(|| EnvelopeError::DataType(String::from_utf8_lossy(bytes).into_owned()))
}

/// A data type names a table and a registry folder: letters, digits, `_`, `-`, `.`.
pub fn valid_data_type(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_DATA_TYPE_LEN
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
}

/// Encodes an envelope in the raw framing (for dead letters, tests and fixtures); the data type
/// as it came (perhaps no name: a dead letter keeps it so).
pub fn encode_raw(data_type: &[u8], fingerprint: i64, data: &[u8], out: &mut Vec<u8>) {
    use super::cursor::encode_long;
    encode_long(data_type.len() as i64, out);
    out.extend_from_slice(data_type);
    encode_long(fingerprint, out);
    encode_long(data.len() as i64, out);
    out.extend_from_slice(data);
}

/// What the raw splitter hands out.
#[derive(Debug)]
pub enum RawEvent {
    /// Whole envelopes, as one block (count = envelopes; offset = byte offset of the first).
    Block(RawBlock),
    /// The framing broke at `offset`: these bytes (from `offset`) and every later one of the
    /// object cannot be framed. Further chunks of the object arrive as [`RawEvent::Rest`].
    Broken {
        /// Byte offset in the object where framing failed.
        offset: u64,
        /// Why.
        error: EnvelopeError,
        /// The bytes from `offset` that were buffered.
        data: Bytes,
    },
    /// More bytes after a broken framing.
    Rest {
        /// Byte offset in the object.
        offset: u64,
        /// The bytes.
        data: Bytes,
    },
}

/// Cuts a raw concatenation of `DataWrapper` datums, fed in chunks of any size, into blocks of
/// whole datums of about `target` bytes.
#[derive(Debug)]
pub struct RawSplitter {
    buf: BytesMut,
    /// Byte offset in the object of `buf[0]`.
    base: u64,
    /// Bytes of `buf` that hold whole, checked datums.
    scanned: usize,
    count: u64,
    blocks: u64,
    target: usize,
    max_datum: usize,
    broken: bool,
}

impl RawSplitter {
    /// A splitter cutting blocks of about `target` bytes; a datum over `max_datum` bytes breaks
    /// the framing.
    pub fn new(target: usize, max_datum: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            base: 0,
            scanned: 0,
            count: 0,
            blocks: 0,
            target: target.max(1),
            max_datum,
            broken: false,
        }
    }

    /// Blocks handed out so far.
    pub fn blocks(&self) -> u64 {
        self.blocks
    }

    /// Feeds the next chunk of the object; returns what can be handed out now.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<RawEvent> {
        if self.broken {
            let offset = self.base;
            self.base += chunk.len() as u64;
            return vec![RawEvent::Rest {
                offset,
                data: Bytes::copy_from_slice(chunk),
            }];
        }
        self.buf.extend_from_slice(chunk);
        self.scan(false)
    }

    /// The object ended: hands out the last block, or the broken tail of a datum cut short.
    pub fn finish(&mut self) -> Vec<RawEvent> {
        if self.broken {
            return Vec::new();
        }
        self.scan(true)
    }

    fn take_block(&mut self) -> RawEvent {
        let data = self.buf.split_to(self.scanned).freeze();
        let block = RawBlock {
            index: self.blocks,
            offset: self.base,
            count: self.count,
            framed: data.len() as u64,
            data,
        };
        self.base += self.scanned as u64;
        self.scanned = 0;
        self.count = 0;
        self.blocks += 1;
        RawEvent::Block(block)
    }

    fn scan(&mut self, at_end: bool) -> Vec<RawEvent> {
        let mut out = Vec::new();
        loop {
            if self.scanned >= self.target {
                out.push(self.take_block());
            }
            let rest = &self.buf[self.scanned..];
            if rest.is_empty() {
                break;
            }
            match frame(rest, self.max_datum) {
                Ok(Some(len)) => {
                    self.scanned += len;
                    self.count += 1;
                }
                Ok(None) if !at_end => break,
                result => {
                    // Broken framing, or the object ends inside a datum.
                    if self.count > 0 {
                        out.push(self.take_block());
                    }
                    let error = match result {
                        Err(e) => e,
                        _ => EnvelopeError::Framing(format!(
                            "the object ends inside an envelope ({} bytes left)",
                            self.buf.len()
                        )),
                    };
                    let data = self.buf.split().freeze();
                    let offset = self.base;
                    self.base += data.len() as u64;
                    self.broken = true;
                    out.push(RawEvent::Broken {
                        offset,
                        error,
                        data,
                    });
                    return out;
                }
            }
        }
        if at_end && self.count > 0 {
            out.push(self.take_block());
        }
        out
    }
}

/// The envelopes framed one after the other at the start of `bytes`, an envelope cut short at
/// the end counting as one: what a raw envelope's `data` holds past its own record when a
/// damaged `data` length swallowed the envelopes after it. Zero when `bytes` does not start
/// with an envelope's framing (bytes left over that are no envelopes).
pub fn swallowed_envelopes(bytes: &[u8]) -> u64 {
    let (mut rest, mut count) = (bytes, 0);
    while !rest.is_empty() {
        match frame(rest, rest.len()) {
            Ok(Some(len)) => {
                count += 1;
                rest = &rest[len..];
            }
            Ok(None) => return count + 1,
            Err(_) => break,
        }
    }
    count
}

/// The length of the whole datum at the start of `buf`: `Ok(None)` if more bytes are needed.
fn frame(buf: &[u8], max_datum: usize) -> Result<Option<usize>, EnvelopeError> {
    let mut pos = 0;
    // dataType
    let Some((len, n)) = varint(&buf[pos..])? else {
        return Ok(None);
    };
    pos += n;
    if len <= 0 || len as usize > MAX_DATA_TYPE_LEN {
        return Err(EnvelopeError::Framing(format!(
            "dataType length {len} is out of bounds"
        )));
    }
    let len = len as usize;
    if buf.len() < pos + len {
        return Ok(None);
    }
    let name = &buf[pos..pos + len];
    if !std::str::from_utf8(name).is_ok_and(valid_data_type) {
        return Err(EnvelopeError::DataType(
            String::from_utf8_lossy(name).into_owned(),
        ));
    }
    pos += len;
    // schemaFingerprint
    let Some((_, n)) = varint(&buf[pos..])? else {
        return Ok(None);
    };
    pos += n;
    // data
    let Some((len, n)) = varint(&buf[pos..])? else {
        return Ok(None);
    };
    pos += n;
    if len < 0 || len as u64 > max_datum as u64 {
        return Err(EnvelopeError::Framing(format!(
            "data length {len} is out of bounds"
        )));
    }
    let end = pos + len as usize;
    if buf.len() < end {
        return Ok(None);
    }
    Ok(Some(end))
}

/// A zig-zag varint at the start of `buf` and its length; `None` if it is cut short.
fn varint(buf: &[u8]) -> Result<Option<(i64, usize)>, EnvelopeError> {
    let mut raw: u64 = 0;
    for (i, b) in buf.iter().enumerate().take(10) {
        // A tenth byte over 1 overflows 64 bits: refused, as the cursor that reads the datum
        // refuses it (this framing must not pass a datum the reader then cannot read).
        if i == 9 && *b > 1 {
            return Err(EnvelopeError::Cursor(CursorError::Varint));
        }
        raw |= ((b & 0x7f) as u64) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(Some((((raw >> 1) as i64) ^ -((raw & 1) as i64), i + 1)));
        }
    }
    if buf.len() >= 10 {
        return Err(EnvelopeError::Cursor(CursorError::Varint));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..n {
            encode_raw(b"click", -(i as i64), &vec![i as u8; i % 7], &mut out);
        }
        out
    }

    fn split(data: &[u8], chunk: usize, target: usize) -> Vec<RawEvent> {
        let mut s = RawSplitter::new(target, 1 << 20);
        let mut out = Vec::new();
        for c in data.chunks(chunk.max(1)) {
            out.extend(s.push(c));
        }
        out.extend(s.finish());
        out
    }

    #[test]
    fn any_chunking_gives_every_envelope_once() {
        let data = stream(100);
        for chunk in [1, 3, 17, 1000] {
            for target in [1, 50, 1 << 20] {
                let events = split(&data, chunk, target);
                let mut count = 0;
                let mut next_offset = 0;
                let mut fps = Vec::new();
                for e in &events {
                    let RawEvent::Block(b) = e else {
                        panic!("{e:?}")
                    };
                    assert_eq!(b.offset, next_offset);
                    next_offset += b.data.len() as u64;
                    count += b.count;
                    let mut cur = Cursor::new(&b.data);
                    for _ in 0..b.count {
                        fps.push(EnvelopeLayout::RAW.read(&mut cur).unwrap().fingerprint);
                    }
                    assert_eq!(cur.remaining(), 0);
                }
                assert_eq!(count, 100);
                assert_eq!(fps, (0..100).map(|i| -i).collect::<Vec<i64>>());
            }
        }
    }

    #[test]
    fn swallowed_envelopes_are_counted_from_their_framing() {
        let three = stream(3);
        assert_eq!(swallowed_envelopes(&three), 3);
        assert_eq!(
            swallowed_envelopes(&three[..three.len() - 1]),
            3,
            "one cut short"
        );
        assert_eq!(swallowed_envelopes(&[]), 0);
        // Bytes left over that are no envelope: a zero-length data type, a name that is none.
        assert_eq!(swallowed_envelopes(&[0, 1, 2]), 0);
        assert_eq!(swallowed_envelopes(b"\x02/\x00\x00"), 0);
        let mut two_then_junk = stream(2);
        two_then_junk.extend_from_slice(&[0, 0]);
        assert_eq!(swallowed_envelopes(&two_then_junk), 2);
    }

    #[test]
    fn broken_framing_sets_the_rest_aside_with_its_offset() {
        let mut data = stream(10);
        let good = data.len();
        data.extend_from_slice(&[0x7f, 0xff, 0xff]); // dataType length -64
        data.extend_from_slice(&stream(3));
        let events = split(&data, 4, 1 << 20);
        let mut rows = 0;
        let mut set_aside = 0;
        for e in &events {
            match e {
                RawEvent::Block(b) => rows += b.count,
                RawEvent::Broken {
                    offset,
                    error,
                    data,
                } => {
                    assert_eq!(*offset, good as u64);
                    assert!(error.to_string().contains("out of bounds"), "{error}");
                    set_aside += data.len();
                }
                RawEvent::Rest { data, .. } => set_aside += data.len(),
            }
        }
        assert_eq!(rows, 10);
        assert_eq!(good + set_aside, data.len(), "every byte accounted for");
        // A length whose varint overflows 64 bits (a tenth byte over 1) breaks the framing
        // there, as the cursor that would read the datum refuses it.
        let mut over = stream(2);
        let good = over.len();
        over.extend_from_slice(&[0xa0, 0xb4, 0xde, 0xfd, 0xfd, 0xfd, 0xfd, 0xfd, 0xfd, 0x75]);
        over.extend_from_slice(&stream(2));
        let events = split(&over, 7, 1 << 20);
        let rows: u64 = events
            .iter()
            .map(|e| match e {
                RawEvent::Block(b) => b.count,
                _ => 0,
            })
            .sum();
        assert_eq!(rows, 2);
        assert!(
            events
                .iter()
                .any(|e| matches!(e, RawEvent::Broken { offset, error, .. }
                if *offset == good as u64 && error.to_string().contains("varint"))),
            "{events:?}"
        );
        // A datum cut short at the end.
        let mut cut = stream(5);
        cut.truncate(cut.len() - 1);
        let events = split(&cut, 1000, 1 << 20);
        assert!(matches!(events.last(), Some(RawEvent::Broken { .. })));
    }

    #[test]
    fn container_layouts() {
        let s = Schema::parse_str(
            r#"{"type":"record","name":"DataWrapper","namespace":"x","fields":[
            {"name":"data","type":"bytes"},{"name":"dataType","type":"string"},
            {"name":"schemaFingerprint","type":"long"}]}"#,
        )
        .unwrap();
        let layout = EnvelopeLayout::of(&s).unwrap();
        let mut d = crate::avro::writer::Datum::new();
        d.bytes(b"xy").string("view").long(42);
        let e = layout.read(&mut Cursor::new(&d.buf)).unwrap();
        assert_eq!(
            (e.data_type, e.fingerprint, e.data),
            ("view", 42, &b"xy"[..])
        );
        let other = Schema::parse_str(
            r#"{"type":"record","name":"DataWrapper","fields":[{"name":"data","type":"string"}]}"#,
        )
        .unwrap();
        assert!(EnvelopeLayout::of(&other).is_none());
    }
}
