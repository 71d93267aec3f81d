//! Writing Avro: binary datum encoding and object container files.
//!
//! Used by `parqour demo` to produce sample data, by the benchmarks to produce large inputs
//! quickly, and (later) to write dead-letter records in a replayable form. Datums are encoded by
//! the caller with [`Datum`]; [`ContainerWriter`] frames them into compressed blocks.
//!
//! Limitations: no schema validation — the caller encodes datums that match the schema it
//! declares. Files written here are checked by independent readers (fastavro, apache-avro) in
//! the tests.

use std::collections::BTreeMap;
use std::io::{self, Write};

use super::codec::Codec;
use super::container::MAGIC;
use super::cursor::encode_long;

/// Appends Avro binary encodings of values to a buffer.
#[derive(Debug, Default, Clone)]
pub struct Datum {
    /// The encoded bytes.
    pub buf: Vec<u8>,
}

impl Datum {
    /// An empty datum buffer.
    pub fn new() -> Self {
        Self::default()
    }
    /// `null`: nothing.
    pub fn null(&mut self) -> &mut Self {
        self
    }
    /// `boolean`.
    pub fn boolean(&mut self, v: bool) -> &mut Self {
        self.buf.push(v as u8);
        self
    }
    /// `int` or `long` (zig-zag varint); also union branch indexes, enum indexes, dates.
    pub fn long(&mut self, v: i64) -> &mut Self {
        encode_long(v, &mut self.buf);
        self
    }
    /// `float`.
    pub fn float(&mut self, v: f32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// `double`.
    pub fn double(&mut self, v: f64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// `bytes` or `string`.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        encode_long(v.len() as i64, &mut self.buf);
        self.buf.extend_from_slice(v);
        self
    }
    /// `string`.
    pub fn string(&mut self, v: &str) -> &mut Self {
        self.bytes(v.as_bytes())
    }
    /// `fixed`: the raw bytes.
    pub fn fixed(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }
    /// A decimal on `bytes`: minimal big-endian two's complement.
    pub fn decimal_bytes(&mut self, unscaled: i128) -> &mut Self {
        let be = unscaled.to_be_bytes();
        let fill = if unscaled < 0 { 0xff } else { 0 };
        let mut start = 0;
        while start < 15 && be[start] == fill && (be[start + 1] & 0x80 == fill & 0x80) {
            start += 1;
        }
        self.bytes(&be[start..])
    }
    /// Starts an array or map block of `count` items (call [`Datum::end_items`] after them).
    pub fn items(&mut self, count: usize) -> &mut Self {
        if count > 0 {
            encode_long(count as i64, &mut self.buf);
        }
        self
    }
    /// Ends an array or map.
    pub fn end_items(&mut self) -> &mut Self {
        self.buf.push(0);
        self
    }
    /// Clears the buffer.
    pub fn clear(&mut self) {
        self.buf.clear();
    }
}

/// Writes an object container file: header, then blocks of about `block_bytes` each.
#[derive(Debug)]
pub struct ContainerWriter<W: Write> {
    out: W,
    codec: Codec,
    sync: [u8; 16],
    block: Vec<u8>,
    block_count: u64,
    block_bytes: usize,
    compressed: Vec<u8>,
}

impl<W: Write> ContainerWriter<W> {
    /// Writes the header. `sync` should be random for real files; tests pass a fixed one.
    pub fn new(
        mut out: W,
        schema_json: &str,
        codec: Codec,
        sync: [u8; 16],
        metadata: &BTreeMap<String, Vec<u8>>,
    ) -> io::Result<Self> {
        let mut header = MAGIC.to_vec();
        let mut meta: BTreeMap<&str, &[u8]> = BTreeMap::new();
        meta.insert("avro.schema", schema_json.as_bytes());
        meta.insert("avro.codec", codec.name().as_bytes());
        for (k, v) in metadata {
            meta.insert(k, v);
        }
        encode_long(meta.len() as i64, &mut header);
        for (k, v) in meta {
            encode_long(k.len() as i64, &mut header);
            header.extend_from_slice(k.as_bytes());
            encode_long(v.len() as i64, &mut header);
            header.extend_from_slice(v);
        }
        encode_long(0, &mut header);
        header.extend_from_slice(&sync);
        out.write_all(&header)?;
        Ok(Self {
            out,
            codec,
            sync,
            block: Vec::new(),
            block_count: 0,
            block_bytes: 64_000,
            compressed: Vec::new(),
        })
    }

    /// Sets the uncompressed size at which a block is closed (default 64,000, as Java's).
    pub fn with_block_bytes(mut self, bytes: usize) -> Self {
        self.block_bytes = bytes.max(1);
        self
    }

    /// Appends one encoded datum.
    pub fn append(&mut self, datum: &[u8]) -> io::Result<()> {
        self.block.extend_from_slice(datum);
        self.block_count += 1;
        if self.block.len() >= self.block_bytes {
            self.flush_block()?;
        }
        Ok(())
    }

    /// Writes the pending block, if any.
    pub fn flush_block(&mut self) -> io::Result<()> {
        if self.block_count == 0 {
            return Ok(());
        }
        let data: &[u8] = match self.codec {
            Codec::Null => &self.block,
            Codec::Deflate => {
                let mut c = libdeflater::Compressor::new(libdeflater::CompressionLvl::default());
                self.compressed
                    .resize(c.deflate_compress_bound(self.block.len()), 0);
                let n = c
                    .deflate_compress(&self.block, &mut self.compressed)
                    .map_err(io::Error::other)?;
                self.compressed.truncate(n);
                &self.compressed
            }
            Codec::Snappy => {
                self.compressed = snap::raw::Encoder::new()
                    .compress_vec(&self.block)
                    .map_err(io::Error::other)?;
                self.compressed
                    .extend_from_slice(&crc32fast::hash(&self.block).to_be_bytes());
                &self.compressed
            }
            Codec::Zstandard => {
                self.compressed = zstd::bulk::compress(&self.block, 3)?;
                &self.compressed
            }
            Codec::Bzip2 => {
                let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
                e.write_all(&self.block)?;
                self.compressed = e.finish()?;
                &self.compressed
            }
            Codec::Xz => {
                let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
                e.write_all(&self.block)?;
                self.compressed = e.finish()?;
                &self.compressed
            }
            Codec::Lzma => {
                let stream = crate::avro::codec::lzma2_raw(true).map_err(io::Error::other)?;
                let mut e = liblzma::write::XzEncoder::new_stream(Vec::new(), stream);
                e.write_all(&self.block)?;
                self.compressed = e.finish()?;
                &self.compressed
            }
            Codec::Lz4 => {
                self.compressed = lz4_flex::block::compress_prepend_size(&self.block);
                &self.compressed
            }
        };
        let mut head = Vec::with_capacity(20);
        encode_long(self.block_count as i64, &mut head);
        encode_long(data.len() as i64, &mut head);
        self.out.write_all(&head)?;
        self.out.write_all(data)?;
        self.out.write_all(&self.sync)?;
        self.block.clear();
        self.block_count = 0;
        Ok(())
    }

    /// Writes a block that is already encoded with this file's codec (`data` as stored, e.g. a
    /// block copied from another file with the same schema and codec), after any pending one.
    pub fn append_block(&mut self, count: u64, data: &[u8]) -> io::Result<()> {
        self.flush_block()?;
        let mut head = Vec::with_capacity(20);
        encode_long(count as i64, &mut head);
        encode_long(data.len() as i64, &mut head);
        self.out.write_all(&head)?;
        self.out.write_all(data)?;
        self.out.write_all(&self.sync)
    }

    /// Writes the last block and returns the sink.
    pub fn finish(mut self) -> io::Result<W> {
        self.flush_block()?;
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::avro::container::{Limits, split_all};
    use crate::avro::schema::Schema;
    use crate::decode::{BatchDecoder, plan};
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Decimal128Type, Int64Type};
    use std::sync::Arc;

    #[test]
    fn written_files_split_and_decode_for_every_codec() {
        let schema = r#"{"type":"record","name":"r","fields":[
            {"name":"id","type":"long"},
            {"name":"d","type":{"type":"bytes","logicalType":"decimal","precision":20,"scale":2}}]}"#;
        for codec in [
            Codec::Null,
            Codec::Deflate,
            Codec::Snappy,
            Codec::Zstandard,
            Codec::Bzip2,
            Codec::Xz,
            Codec::Lzma,
            Codec::Lz4,
        ] {
            let mut w = ContainerWriter::new(Vec::new(), schema, codec, [3; 16], &BTreeMap::new())
                .unwrap()
                .with_block_bytes(100);
            let mut d = Datum::new();
            for i in 0..1000i64 {
                d.clear();
                d.long(i).decimal_bytes(i as i128 * 1_000_003 - 500_000_000);
                w.append(&d.buf).unwrap();
            }
            let file = w.finish().unwrap();
            let (header, blocks) = split_all(&file, Limits::default()).unwrap();
            assert_eq!(header.codec, codec);
            assert!(blocks.len() > 10);
            let mut dec =
                BatchDecoder::new(Arc::new(plan(&Schema::parse_str(schema).unwrap()).unwrap()));
            let mut buf = Vec::new();
            for b in &blocks {
                codec.decompress(&b.data, &mut buf, 1 << 20).unwrap();
                dec.decode_block(&buf, b.count).unwrap();
            }
            let batch = dec.flush().unwrap().unwrap();
            assert_eq!(batch.num_rows(), 1000);
            let ids = batch.column(0).as_primitive::<Int64Type>();
            let ds = batch.column(1).as_primitive::<Decimal128Type>();
            for i in 0..1000 {
                assert_eq!(ids.value(i), i as i64);
                assert_eq!(ds.value(i), i as i128 * 1_000_003 - 500_000_000);
            }
        }
    }
}
