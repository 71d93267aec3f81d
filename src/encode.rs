//! Arrow batches -> Parquet files, the columns of each row group encoded in parallel.
//!
//! Stage: after decoding, before the sink. A [`FileEncoder`] writes one Parquet file to any
//! `Write` (the sink's uploader, a local file, a buffer). Batches are split into their leaf
//! columns and each leaf is handed to its own [`ArrowColumnWriter`] on the rayon pool, so a row
//! group of 40 columns keeps every core busy. A row group is closed when its estimated encoded
//! size reaches [`EncodeOptions::row_group_bytes`]; callers start a new file when
//! [`FileEncoder::bytes_written`] reaches their target file size.
//!
//! Output is deterministic: the same batches and options give byte-identical files (no clock,
//! no random names; `created_by` names this crate's version).
//!
//! Limitations: a row group is buffered in memory (encoded and compressed) until it is closed, so
//! memory grows with `row_group_bytes`.

use std::io::Write;
use std::str::FromStr;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowSchemaConverter;
use parquet::arrow::add_encoded_arrow_schema_to_metadata;
use parquet::arrow::arrow_writer::{ArrowColumnWriter, ArrowRowGroupWriterFactory, compute_leaves};
use parquet::basic::{Compression, GzipLevel, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::{WriterProperties, WriterVersion};
use parquet::file::writer::SerializedFileWriter;
use rayon::prelude::*;

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
    /// Write dictionary pages (Parquet falls back to plain encoding when a dictionary grows).
    pub dictionary: bool,
}

impl Default for EncodeOptions {
    /// Snappy, 128 MiB row groups, dictionaries on.
    fn default() -> Self {
        Self {
            compression: Codec(Compression::SNAPPY),
            row_group_bytes: 128 << 20,
            dictionary: true,
        }
    }
}

impl EncodeOptions {
    /// The writer properties for a file of `schema`.
    pub fn properties(&self, schema: &arrow_schema::Schema) -> WriterProperties {
        let mut props = WriterProperties::builder()
            .set_writer_version(WriterVersion::PARQUET_1_0)
            .set_compression(self.compression.0)
            .set_dictionary_enabled(self.dictionary)
            .set_created_by(format!("parqour version {}", env!("CARGO_PKG_VERSION")))
            .build();
        add_encoded_arrow_schema_to_metadata(schema, &mut props);
        props
    }
}

/// What a finished file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileSummary {
    /// Rows.
    pub rows: u64,
    /// Row groups.
    pub row_groups: usize,
}

/// Writes one Parquet file, encoding the columns of each row group in parallel.
pub struct FileEncoder<W: Write + Send> {
    writer: SerializedFileWriter<W>,
    factory: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    columns: Option<Vec<ArrowColumnWriter>>,
    row_groups: usize,
    rows_in_group: usize,
    rows: u64,
    row_group_bytes: usize,
}

impl<W: Write + Send> std::fmt::Debug for FileEncoder<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileEncoder")
            .field("row_groups", &self.row_groups)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl<W: Write + Send> FileEncoder<W> {
    /// Starts a file of `schema` on `sink`.
    pub fn new(sink: W, schema: SchemaRef, options: &EncodeOptions) -> Result<Self, EncodeError> {
        let props = Arc::new(options.properties(&schema));
        let parquet_schema = ArrowSchemaConverter::new()
            .with_coerce_types(props.coerce_types())
            .convert(&schema)?;
        let writer = SerializedFileWriter::new(sink, parquet_schema.root_schema_ptr(), props)?;
        let factory = ArrowRowGroupWriterFactory::new(&writer, schema.clone());
        Ok(Self {
            writer,
            factory,
            schema,
            columns: None,
            row_groups: 0,
            rows_in_group: 0,
            rows: 0,
            row_group_bytes: options.row_group_bytes.max(1),
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

    /// Bytes written to the sink plus the estimated size of the open row group.
    pub fn bytes_written(&self) -> usize {
        self.writer.bytes_written() + self.buffered_bytes()
    }

    /// Estimated encoded size of the open row group.
    pub fn buffered_bytes(&self) -> usize {
        self.columns.as_ref().map_or(0, |cols| {
            cols.iter().map(|c| c.get_estimated_total_bytes()).sum()
        })
    }

    /// Memory held by the open row group's writers.
    pub fn memory_size(&self) -> usize {
        self.columns
            .as_ref()
            .map_or(0, |cols| cols.iter().map(|c| c.memory_size()).sum())
    }

    /// Appends a batch; closes the row group when it reaches its target size.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), EncodeError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if batch.schema().fields() != self.schema.fields() {
            return Err(EncodeError::Schema);
        }
        let mut leaves = Vec::new();
        for (field, column) in self.schema.fields().iter().zip(batch.columns()) {
            leaves.extend(compute_leaves(field, column)?);
        }
        if self.columns.is_none() {
            self.columns = Some(self.factory.create_column_writers(self.row_groups)?);
        }
        let columns = self.columns.as_mut().ok_or(EncodeError::Schema)?;
        if columns.len() != leaves.len() {
            return Err(EncodeError::Schema);
        }
        columns
            .par_iter_mut()
            .zip(leaves.par_iter())
            .try_for_each(|(writer, leaf)| writer.write(leaf))?;
        self.rows_in_group += batch.num_rows();
        self.rows += batch.num_rows() as u64;
        if self.buffered_bytes() >= self.row_group_bytes {
            self.flush_row_group()?;
        }
        Ok(())
    }

    /// Closes the open row group (if any rows are buffered) and writes it to the sink.
    pub fn flush_row_group(&mut self) -> Result<(), EncodeError> {
        let Some(columns) = self.columns.take() else {
            return Ok(());
        };
        if self.rows_in_group == 0 {
            return Ok(());
        }
        let chunks = columns
            .into_par_iter()
            .map(|c| c.close())
            .collect::<Result<Vec<_>, _>>()?;
        let mut row_group = self.writer.next_row_group()?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut row_group)?;
        }
        row_group.close()?;
        self.row_groups += 1;
        self.rows_in_group = 0;
        Ok(())
    }

    /// Writes the last row group and the footer; returns the sink and what the file holds.
    pub fn finish(mut self) -> Result<(W, FileSummary), EncodeError> {
        self.flush_row_group()?;
        let groups = self.writer.flushed_row_groups();
        let summary = FileSummary {
            rows: groups.iter().map(|g| g.num_rows() as u64).sum(),
            row_groups: groups.len(),
        };
        let sink = self.writer.into_inner()?;
        Ok((sink, summary))
    }
}

#[cfg(test)]
mod tests {
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

    fn encode(batches: &[RecordBatch], opts: &EncodeOptions) -> Vec<u8> {
        let mut enc = FileEncoder::new(Vec::new(), batches[0].schema(), opts).unwrap();
        for b in batches {
            enc.write(b).unwrap();
        }
        enc.finish().unwrap().0
    }

    #[test]
    fn round_trips_and_cuts_row_groups_by_size() {
        let batches: Vec<_> = (0..20).map(|i| batch(i * 1000, 1000)).collect();
        let opts = EncodeOptions {
            row_group_bytes: 16 << 10,
            ..Default::default()
        };
        let bytes = encode(&batches, &opts);
        let reader = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(bytes.clone())).unwrap();
        assert!(reader.metadata().num_row_groups() > 1);
        let rows: usize = reader.build().unwrap().map(|b| b.unwrap().num_rows()).sum();
        assert_eq!(rows, 20_000);
        // Deterministic.
        assert_eq!(encode(&batches, &opts), bytes);
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
}
