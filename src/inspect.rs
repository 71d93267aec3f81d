//! `parqour inspect`: what is in an Avro or Parquet file, for when a conversion looks wrong.
//!
//! For an Avro object container file: the writer schema, codec, metadata, block and record counts
//! and sizes, and the Parquet schema parqour would write for it (or why it cannot). The object is
//! streamed block by block and nothing is decoded, so any size works. For a Parquet file: its
//! schema and row groups, read from the footer alone.

use std::fmt::Write as _;

use futures::StreamExt;
use object_store::ObjectStoreExt;
use parquet::file::metadata::ParquetMetaDataReader;

use crate::avro::container::{BlockSplitter, ContainerError, Event, Limits, MAGIC};
use crate::decode::plan;
use crate::storage::Location;

/// Errors of `inspect`.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// Reading failed.
    #[error("{url}: {source}")]
    Read {
        /// The object.
        url: String,
        /// The store's error.
        source: object_store::Error,
    },
    /// A broken Avro file.
    #[error("{url}: {source}")]
    Avro {
        /// The object.
        url: String,
        /// What is wrong.
        source: ContainerError,
    },
    /// A broken Parquet file.
    #[error("{url}: {source}")]
    Parquet {
        /// The object.
        url: String,
        /// What is wrong.
        source: parquet::errors::ParquetError,
    },
    /// A zero-byte object.
    #[error("{url}: an empty object (0 bytes): no records")]
    Empty {
        /// The object.
        url: String,
    },
    /// Neither format.
    #[error("{url}: neither an Avro object container file nor a Parquet file")]
    Unknown {
        /// The object.
        url: String,
    },
}

/// Describes the file at `location` as text.
pub async fn inspect(location: &Location) -> Result<String, InspectError> {
    let url = location.display.clone();
    let read = |source| InspectError::Read {
        url: url.clone(),
        source,
    };
    let meta = location.store.head(&location.path).await.map_err(read)?;
    let size = meta.size;
    if size == 0 {
        // What `convert` skips; no range of it can be read.
        return Err(InspectError::Empty { url });
    }
    let head = location
        .store
        .get_range(&location.path, 0..size.min(4))
        .await
        .map_err(read)?;
    if head.as_ref() == MAGIC {
        inspect_avro(location, size).await
    } else if head.as_ref() == b"PAR1" {
        inspect_parquet(location, size).await
    } else {
        Err(InspectError::Unknown { url })
    }
}

async fn inspect_avro(location: &Location, size: u64) -> Result<String, InspectError> {
    let url = &location.display;
    let avro_err = |source| InspectError::Avro {
        url: url.clone(),
        source,
    };
    let mut stream = location
        .store
        .get(&location.path)
        .await
        .map_err(|source| InspectError::Read {
            url: url.clone(),
            source,
        })?
        .into_stream();
    let mut splitter = BlockSplitter::new(Limits::default())
        .reading_concatenated()
        .describing();
    let mut out = String::new();
    let (mut blocks, mut records, mut compressed, mut max_block) = (0u64, 0u64, 0u64, 0usize);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|source| InspectError::Read {
            url: url.clone(),
            source,
        })?;
        splitter.push(chunk);
        while let Some(ev) = splitter.next_event().map_err(avro_err)? {
            match ev {
                Event::Header(h) => {
                    if h.offset == 0 {
                        let _ = writeln!(out, "file:     {url}");
                        let _ = writeln!(out, "format:   Avro object container file, {size} bytes");
                    } else {
                        let _ = writeln!(
                            out,
                            "another container file (concatenated) at byte offset {}:",
                            h.offset
                        );
                    }
                    let _ = writeln!(out, "codec:    {}", h.codec.name());
                    for (k, v) in &h.metadata {
                        if k != "avro.schema" && k != "avro.codec" {
                            let _ = writeln!(
                                out,
                                "metadata: {} = {}",
                                printable(k.as_bytes()),
                                printable(v)
                            );
                        }
                    }
                    let pretty = serde_json::from_str::<serde_json::Value>(&h.schema_json)
                        .and_then(|v| serde_json::to_string_pretty(&v))
                        .unwrap_or_else(|_| h.schema_json.clone());
                    let _ = writeln!(out, "schema:\n{pretty}");
                    let planned = match &h.schema_error {
                        Some(e) => Err(e.to_string()),
                        None => plan(&h.schema).map_err(|e| e.to_string()),
                    };
                    match planned {
                        Ok(p) => {
                            let _ = writeln!(out, "parquet columns (as parqour writes them):");
                            for f in p.schema.fields() {
                                let _ = writeln!(
                                    out,
                                    "  {}: {}{}",
                                    f.name(),
                                    f.data_type(),
                                    if f.is_nullable() { "" } else { " not null" }
                                );
                            }
                            for w in &p.warnings {
                                let _ = writeln!(out, "  warning: {w}");
                            }
                        }
                        Err(e) => {
                            let _ = writeln!(out, "cannot be converted: {e}");
                        }
                    }
                }
                Event::Block(b) => {
                    blocks += 1;
                    records += b.count;
                    compressed += b.data.len() as u64;
                    max_block = max_block.max(b.data.len());
                }
            }
        }
    }
    splitter.finish().map_err(avro_err)?;
    let _ = writeln!(
        out,
        "blocks:   {blocks} ({compressed} bytes of block data, largest {max_block} bytes)"
    );
    let _ = writeln!(out, "records:  {records}");
    Ok(out)
}

async fn inspect_parquet(location: &Location, size: u64) -> Result<String, InspectError> {
    let url = &location.display;
    let read = |source| InspectError::Read {
        url: url.clone(),
        source,
    };
    let pq = |source| InspectError::Parquet {
        url: url.clone(),
        source,
    };
    if size < 12 {
        return Err(pq(parquet::errors::ParquetError::General(
            "file too short".into(),
        )));
    }
    let tail = location
        .store
        .get_range(&location.path, size - 8..size)
        .await
        .map_err(read)?;
    if &tail[4..] != b"PAR1" {
        return Err(pq(parquet::errors::ParquetError::General(
            "bad footer magic (truncated or encrypted file)".into(),
        )));
    }
    let len = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]) as u64;
    if len + 8 > size {
        return Err(pq(parquet::errors::ParquetError::General(format!(
            "footer length {len} exceeds the file"
        ))));
    }
    let footer = location
        .store
        .get_range(&location.path, size - 8 - len..size - 8)
        .await
        .map_err(read)?;
    let meta = ParquetMetaDataReader::decode_metadata(&footer).map_err(pq)?;
    let fm = meta.file_metadata();
    let mut out = String::new();
    let _ = writeln!(out, "file:       {url}");
    let _ = writeln!(out, "format:     Parquet, {size} bytes");
    let _ = writeln!(
        out,
        "created by: {}",
        printable(fm.created_by().unwrap_or("-").as_bytes())
    );
    let _ = writeln!(out, "rows:       {}", fm.num_rows());
    let mut schema = Vec::new();
    parquet::schema::printer::print_schema(&mut schema, fm.schema());
    let _ = writeln!(out, "schema:\n{}", String::from_utf8_lossy(&schema));
    for (i, rg) in meta.row_groups().iter().enumerate() {
        let _ = writeln!(
            out,
            "row group {i}: {} rows, {} bytes compressed, {} bytes uncompressed",
            rg.num_rows(),
            rg.compressed_size(),
            rg.total_byte_size()
        );
        for c in rg.columns() {
            let _ = writeln!(
                out,
                "  {}: {:?}, {} -> {} bytes, encodings {:?}",
                c.column_path(),
                c.compression(),
                c.uncompressed_size(),
                c.compressed_size(),
                c.encodings().collect::<Vec<_>>()
            );
        }
    }
    Ok(out)
}

/// Bytes from a file as they can be shown on a terminal: text with its control characters
/// escaped (`\n`, `\u{1b}`: a value cannot move the cursor or recolour the screen), other
/// bytes as `\xNN`.
fn printable(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text
            .chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
        Err(_) => bytes.escape_ascii().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn values_from_files_cannot_drive_the_terminal() {
        assert_eq!(printable(b"plain caf\xc3\xa9"), "plain café");
        assert_eq!(
            printable(b"\x1b[2Jred\r\x07\0"),
            "\\u{1b}[2Jred\\r\\u{7}\\u{0}"
        );
        assert_eq!(printable(b"\xff\x1bx"), "\\xff\\x1bx");
    }
}
