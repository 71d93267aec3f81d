//! The dead-letter place: what could not be converted, kept byte for byte, replayable.
//!
//! Edge beside the sink. A record or block that cannot be converted — an unknown fingerprint, a
//! corrupt datum, a record with no resolution to the reader schema, a container block that does
//! not inflate or decode, a raw envelope stream whose framing breaks — is never dropped: its
//! original bytes go to the dead-letter URL, outside the table, with where it came from and why.
//!
//! Format: an Avro object container file (deflate) of [`SCHEMA`] records, so any Avro tool can
//! read it (and `parqour convert` can turn it into a table to query):
//!
//! | field | meaning |
//! |---|---|
//! | `source` | URL of the input object |
//! | `kind` | `block`: a container block, `data` as stored (compressed with `codec`), written with `writerSchema` (or, from `record` on, its records left uncompressed: one that could not be converted, or the part of a large block that failed after earlier parts were written); `record`: one `DataWrapper` envelope in the raw binary framing; `tail`: bytes of a raw envelope stream from where its framing broke |
//! | `block`, `offset`, `record` | block index, byte offset in the object (of the block, or of the envelope / tail piece), record index in the block |
//! | `records` | input records this entry stands for (a block's count; 1 for a record or a broken tail) |
//! | `error` | why |
//! | `dataType`, `schemaFingerprint` | of a record |
//! | `codec`, `writerSchema` | of a block |
//! | `data` | the bytes |
//!
//! `parqour replay` turns a dead-letter file back into inputs: a container file per (source,
//! writer schema, codec) holding the dead blocks unchanged, and a raw envelope object per source
//! holding the records and tails, ready for a manifest once the cause (say, a schema missing
//! from the registry) is fixed.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::avro::codec::Codec;
use crate::avro::cursor::{Cursor, CursorError};
use crate::avro::writer::Datum;

/// The Avro schema of a dead-letter entry.
pub const SCHEMA: &str = r#"{"type":"record","name":"DeadLetter","namespace":"parqour","fields":[
{"name":"source","type":"string"},
{"name":"kind","type":{"type":"enum","name":"DeadLetterKind","symbols":["block","record","tail"]}},
{"name":"block","type":["null","long"]},
{"name":"offset","type":"long"},
{"name":"record","type":["null","long"]},
{"name":"records","type":"long"},
{"name":"error","type":"string"},
{"name":"dataType","type":["null","string"]},
{"name":"schemaFingerprint","type":["null","long"]},
{"name":"codec","type":"string"},
{"name":"writerSchema","type":["null","string"]},
{"name":"data","type":"bytes"}]}"#;

/// What a dead-letter entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A whole container block, as stored.
    Block,
    /// One envelope, in the raw framing.
    Record,
    /// Bytes of a raw stream after its framing broke.
    Tail,
}

const KINDS: [Kind; 3] = [Kind::Block, Kind::Record, Kind::Tail];

/// One dead-letter entry.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// The input object's URL.
    pub source: String,
    /// What `data` is.
    pub kind: Kind,
    /// Block index in the object.
    pub block: Option<u64>,
    /// Byte offset in the object (of the block, the envelope or the tail piece).
    pub offset: u64,
    /// Record index within the block.
    pub record: Option<u64>,
    /// Input records this entry stands for.
    pub records: u64,
    /// Why it could not be converted.
    pub error: String,
    /// The envelope's data type.
    pub data_type: Option<String>,
    /// The envelope's writer schema fingerprint.
    pub fingerprint: Option<i64>,
    /// The block's codec (`null` for records and tails).
    pub codec: Codec,
    /// The block's writer schema (JSON).
    pub writer_schema: Option<std::sync::Arc<str>>,
    /// The bytes.
    pub data: Bytes,
}

impl DeadLetter {
    /// About the bytes the entry holds in memory (its own and its strings' and data's).
    pub fn approx_size(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.source.len()
            + self.error.len()
            + self.data_type.as_ref().map_or(0, String::len)
            + self.data.len()
    }

    /// Encodes the entry as an Avro datum of [`SCHEMA`].
    pub fn encode(&self, d: &mut Datum) {
        let kind = KINDS.iter().position(|k| *k == self.kind).unwrap_or(0);
        d.string(&self.source).long(kind as i64);
        opt_long(d, self.block.map(|b| b as i64));
        d.long(self.offset as i64);
        opt_long(d, self.record.map(|r| r as i64));
        d.long(self.records as i64).string(&self.error);
        match &self.data_type {
            Some(t) => d.long(1).string(t),
            None => d.long(0),
        };
        opt_long(d, self.fingerprint);
        d.string(self.codec.name());
        match &self.writer_schema {
            Some(s) => d.long(1).string(s),
            None => d.long(0),
        };
        d.bytes(&self.data);
    }

    /// Decodes an entry written by [`Self::encode`].
    pub fn decode(cur: &mut Cursor<'_>) -> Result<DeadLetter, CursorError> {
        let text = |cur: &mut Cursor<'_>| -> Result<String, CursorError> {
            Ok(String::from_utf8_lossy(cur.bytes()?).into_owned())
        };
        let opt = |cur: &mut Cursor<'_>| -> Result<bool, CursorError> {
            match cur.long()? {
                0 => Ok(false),
                1 => Ok(true),
                _ => Err(CursorError::Varint),
            }
        };
        let source = text(cur)?;
        let kind = usize::try_from(cur.long()?)
            .ok()
            .and_then(|k| KINDS.get(k).copied())
            .ok_or(CursorError::Varint)?;
        let block = if opt(cur)? {
            Some(cur.long()? as u64)
        } else {
            None
        };
        let offset = cur.long()? as u64;
        let record = if opt(cur)? {
            Some(cur.long()? as u64)
        } else {
            None
        };
        let records = cur.long()? as u64;
        let error = text(cur)?;
        let data_type = if opt(cur)? { Some(text(cur)?) } else { None };
        let fingerprint = if opt(cur)? { Some(cur.long()?) } else { None };
        let codec = Codec::from_name(Some(&text(cur)?)).map_err(|_| CursorError::Varint)?;
        let writer_schema = if opt(cur)? {
            Some(text(cur)?.into())
        } else {
            None
        };
        let data = Bytes::copy_from_slice(cur.bytes()?);
        Ok(DeadLetter {
            source,
            kind,
            block,
            offset,
            record,
            records,
            error,
            data_type,
            fingerprint,
            codec,
            writer_schema,
            data,
        })
    }
}

fn opt_long(d: &mut Datum, v: Option<i64>) {
    match v {
        Some(v) => d.long(1).long(v),
        None => d.long(0),
    };
}

/// What was set aside in a run.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DeadLetterReport {
    /// The dead-letter file, if anything was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Entries written.
    pub entries: u64,
    /// Input records they stand for.
    pub records: u64,
    /// Entries by kind.
    pub by_kind: BTreeMap<String, u64>,
}

/// Errors of `parqour replay`.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// Reading or writing failed.
    #[error("{url}: {source}")]
    Store {
        /// The object.
        url: String,
        /// The store's error.
        source: object_store::Error,
    },
    /// The file is not a dead-letter file.
    #[error("{url}: not a parqour dead-letter file: {message}")]
    Format {
        /// The object.
        url: String,
        /// Why.
        message: String,
    },
    /// The output holds an earlier replay's files.
    #[error(
        "{url} already holds replay files (e.g. {example}); choose another output, or pass --overwrite to replace them"
    )]
    NotEmpty {
        /// The output.
        url: String,
        /// One file found.
        example: String,
    },
}

/// A container file of `schema` and `codec` whose blocks are the `data` of `entries` (each
/// of its `records`), with its source in the metadata.
fn container_of(
    source: String,
    schema: &str,
    codec: Codec,
    entries: &[DeadLetter],
) -> std::io::Result<Vec<u8>> {
    let mut meta = BTreeMap::new();
    meta.insert("parqour.replay.source".to_string(), source.into_bytes());
    let mut sync = [0u8; 16];
    sync.copy_from_slice(
        &format!(
            "{:016x}",
            crate::avro::fingerprint::rabin(schema.as_bytes())
        )
        .as_bytes()[..16],
    );
    let mut w = crate::avro::writer::ContainerWriter::new(Vec::new(), schema, codec, sync, &meta)?;
    for e in entries {
        w.append_block(e.records, &e.data)?;
    }
    w.finish()
}

/// What `parqour replay` wrote.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ReplayReport {
    /// Objects written, with the entries and records in each.
    pub objects: Vec<(String, u64, u64)>,
}

/// The replay files directly in `output` (`replay-NNNNN.avro`, `tail-NNNNN.bin`), sorted.
pub async fn replay_files(
    output: &crate::storage::Location,
) -> Result<Vec<object_store::path::Path>, ReplayError> {
    let found = crate::storage::objects_in(output)
        .await
        .map_err(|source| ReplayError::Store {
            url: output.display.clone(),
            source,
        })?;
    let numbered = |name: &str, head: &str, tail: &str| {
        name.strip_prefix(head)
            .and_then(|n| n.strip_suffix(tail))
            .is_some_and(|n| n.len() >= 5 && n.bytes().all(|b| b.is_ascii_digit()))
    };
    Ok(found
        .into_iter()
        .filter(|p| {
            p.filename()
                .is_some_and(|n| numbered(n, "replay-", ".avro") || numbered(n, "tail-", ".bin"))
        })
        .collect())
}

/// Turns dead-letter files back into inputs under `output`: one container file per (source,
/// writer schema, codec) with the dead blocks as they were stored, one container file of
/// `DataWrapper` records per source with its envelopes, and each broken tail as it was, in an
/// object of its own (`tail-NNNNN.bin`: to look at, not an input).
pub async fn replay(
    files: &[crate::source::InputObject],
    output: &crate::storage::Location,
) -> Result<ReplayReport, ReplayError> {
    use crate::avro::container::{Limits, split_all};
    use object_store::ObjectStoreExt;

    type BlockKey = (String, String, &'static str);
    let mut containers: BTreeMap<BlockKey, (Codec, Vec<DeadLetter>)> = BTreeMap::new();
    let mut raws: BTreeMap<String, Vec<DeadLetter>> = BTreeMap::new();
    for f in files {
        let store_err = |source| ReplayError::Store {
            url: f.url.clone(),
            source,
        };
        let bytes = f
            .store
            .get(&f.path)
            .await
            .map_err(store_err)?
            .bytes()
            .await
            .map_err(store_err)?;
        let format = |message: String| ReplayError::Format {
            url: f.url.clone(),
            message,
        };
        let (header, blocks) =
            split_all(&bytes, Limits::default()).map_err(|e| format(e.to_string()))?;
        if header.schema.name().map(|n| n.fullname()).as_deref() != Some("parqour.DeadLetter") {
            return Err(format("its schema is not parqour.DeadLetter".into()));
        }
        let mut buf = Vec::new();
        for block in blocks {
            header
                .codec
                .decompress(&block.data, &mut buf, Limits::default().max_block_bytes)
                .map_err(|e| format(e.to_string()))?;
            let mut cur = Cursor::new(&buf);
            for _ in 0..block.count {
                let entry = DeadLetter::decode(&mut cur).map_err(|e| format(e.to_string()))?;
                match entry.kind {
                    Kind::Block => {
                        let key = (
                            entry.source.clone(),
                            entry
                                .writer_schema
                                .as_deref()
                                .unwrap_or_default()
                                .to_string(),
                            entry.codec.name(),
                        );
                        containers
                            .entry(key)
                            .or_insert_with(|| (entry.codec, Vec::new()))
                            .1
                            .push(entry);
                    }
                    Kind::Record | Kind::Tail => {
                        raws.entry(entry.source.clone()).or_default().push(entry)
                    }
                }
            }
        }
    }
    let mut report = ReplayReport::default();
    let mut n = 0;
    let mut put = async |body: Vec<u8>, entries: u64, records: u64, tail: bool| {
        // Tails are kept to look at, not as inputs: their framing is broken in the bytes
        // themselves, and a folder of inputs takes only `*.avro`.
        let name = if tail {
            format!("tail-{n:05}.bin")
        } else {
            format!("replay-{n:05}.avro")
        };
        let path = output.path.clone().join(name);
        n += 1;
        let url = output.url_of(&path);
        output
            .store
            .put(&path, body.into())
            .await
            .map_err(|source| ReplayError::Store {
                url: url.clone(),
                source,
            })?;
        report.objects.push((url, entries, records));
        Ok::<(), ReplayError>(())
    };
    let io = |e: std::io::Error| ReplayError::Format {
        url: output.display.clone(),
        message: e.to_string(),
    };
    for ((source, schema, _), (codec, entries)) in containers {
        let body = container_of(source, &schema, codec, &entries).map_err(io)?;
        let records = entries.iter().map(|e| e.records).sum();
        put(body, entries.len() as u64, records, false).await?;
    }
    for (source, entries) in raws {
        // The envelopes in a container file of `DataWrapper` records (an entry holds one, or
        // several one after the other: their raw framing is the record's encoding), whose
        // framing no envelope can break, as a data type that is no name breaks a raw one.
        let (records, tails): (Vec<_>, Vec<_>) =
            entries.into_iter().partition(|e| e.kind == Kind::Record);
        if !records.is_empty() {
            let body = container_of(
                source,
                crate::avro::envelope::DATA_WRAPPER_SCHEMA,
                Codec::Null,
                &records,
            )
            .map_err(io)?;
            let count = records.iter().map(|e| e.records).sum();
            put(body, records.len() as u64, count, false).await?;
        }
        // Each tail alone: one would take whatever followed it for more of its broken bytes.
        for e in tails {
            put(e.data.to_vec(), 1, e.records, true).await?;
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_match_the_schema() {
        let e = DeadLetter {
            source: "s3://raw/a.avro".into(),
            kind: Kind::Record,
            block: Some(3),
            offset: 1234,
            record: Some(17),
            records: 1,
            error: "unknown schema fingerprint 5".into(),
            data_type: Some("click".into()),
            fingerprint: Some(-5),
            codec: Codec::Null,
            writer_schema: None,
            data: Bytes::from_static(b"\x00\x01"),
        };
        let mut d = Datum::new();
        e.encode(&mut d);
        let back = DeadLetter::decode(&mut Cursor::new(&d.buf)).unwrap();
        assert_eq!(back, e);
        // The schema plans, so a dead-letter file converts like any input.
        let schema = crate::avro::Schema::parse_str(SCHEMA).unwrap();
        let plan = std::sync::Arc::new(crate::decode::plan(&schema).unwrap());
        let mut dec = crate::decode::BatchDecoder::new(plan);
        dec.decode_datum(&d.buf).unwrap();
    }
}
