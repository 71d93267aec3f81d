//! Block codecs of Avro object container files: null, deflate, snappy, zstandard, bzip2, xz.
//!
//! Each block is inflated whole into a reusable buffer. Output is capped at a limit given by the
//! caller, so a decompression bomb is an error, never an unbounded allocation.
//!
//! Why libdeflate for deflate: blocks are small and inflated whole, which is libdeflate's case;
//! it inflates about twice as fast as zlib (see `benches/decode.rs`).

use std::io::Read;

/// A block codec named in the container header (`avro.codec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// No compression.
    Null,
    /// Raw deflate (RFC 1951).
    Deflate,
    /// Snappy, followed by the big-endian CRC-32 of the uncompressed data.
    Snappy,
    /// Zstandard.
    Zstandard,
    /// bzip2.
    Bzip2,
    /// xz.
    Xz,
}

/// Why a block could not be inflated.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The header names a codec this build does not know.
    #[error("unsupported codec `{0}`")]
    Unsupported(String),
    /// The compressed data is corrupt.
    #[error("corrupt {codec:?} data: {message}")]
    Corrupt {
        /// The codec.
        codec: Codec,
        /// What the decompressor said.
        message: String,
    },
    /// The snappy checksum does not match.
    #[error("snappy CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Crc {
        /// Stored checksum.
        stored: u32,
        /// Checksum of the inflated data.
        computed: u32,
    },
    /// The block inflates to more than the limit.
    #[error("block inflates to more than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
}

impl Codec {
    /// The codec for an `avro.codec` value (absent means null).
    pub fn from_name(name: Option<&str>) -> Result<Self, CodecError> {
        Ok(match name {
            None | Some("null") | Some("") => Codec::Null,
            Some("deflate") => Codec::Deflate,
            Some("snappy") => Codec::Snappy,
            Some("zstandard") | Some("zstd") => Codec::Zstandard,
            Some("bzip2") => Codec::Bzip2,
            Some("xz") => Codec::Xz,
            Some(other) => return Err(CodecError::Unsupported(other.to_string())),
        })
    }

    /// The name used in the container header.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Null => "null",
            Codec::Deflate => "deflate",
            Codec::Snappy => "snappy",
            Codec::Zstandard => "zstandard",
            Codec::Bzip2 => "bzip2",
            Codec::Xz => "xz",
        }
    }

    /// Inflates `input` into `out` (cleared first), refusing to produce more than `limit` bytes.
    /// For [`Codec::Null`] the data is copied; callers that can avoid the copy should.
    pub fn decompress(
        self,
        input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), CodecError> {
        out.clear();
        let corrupt = |message: String| CodecError::Corrupt {
            codec: self,
            message,
        };
        match self {
            Codec::Null => {
                if input.len() > limit {
                    return Err(CodecError::TooLarge { limit });
                }
                out.extend_from_slice(input);
            }
            Codec::Deflate => {
                let mut inflater = libdeflater::Decompressor::new();
                // Start from a typical ratio and grow until it fits (deflate stores no length).
                let mut cap = input.len().saturating_mul(4).clamp(4096, limit.max(1));
                loop {
                    out.resize(cap, 0);
                    match inflater.deflate_decompress(input, out) {
                        Ok(n) => {
                            out.truncate(n);
                            break;
                        }
                        Err(libdeflater::DecompressionError::InsufficientSpace) => {
                            if cap >= limit {
                                out.clear();
                                return Err(CodecError::TooLarge { limit });
                            }
                            cap = cap.saturating_mul(2).min(limit);
                        }
                        Err(e) => {
                            out.clear();
                            return Err(corrupt(e.to_string()));
                        }
                    }
                }
            }
            Codec::Snappy => {
                if input.len() < 4 {
                    return Err(corrupt("block shorter than its CRC".into()));
                }
                let (data, crc) = input.split_at(input.len() - 4);
                let len = snap::raw::decompress_len(data).map_err(|e| corrupt(e.to_string()))?;
                if len > limit {
                    return Err(CodecError::TooLarge { limit });
                }
                out.resize(len, 0);
                let n = snap::raw::Decoder::new()
                    .decompress(data, out)
                    .map_err(|e| corrupt(e.to_string()))?;
                out.truncate(n);
                let stored = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
                let computed = crc32fast::hash(out);
                if stored != computed {
                    return Err(CodecError::Crc { stored, computed });
                }
            }
            Codec::Zstandard => {
                let decoder = zstd::stream::read::Decoder::with_buffer(input)
                    .map_err(|e| corrupt(e.to_string()))?;
                read_capped(self, decoder, out, limit)?;
            }
            Codec::Bzip2 => {
                read_capped(self, bzip2::read::BzDecoder::new(input), out, limit)?;
            }
            Codec::Xz => {
                read_capped(self, liblzma::read::XzDecoder::new(input), out, limit)?;
            }
        }
        Ok(())
    }
}

/// Reads a streaming decoder to the end into `out`, failing past `limit` bytes.
fn read_capped(
    codec: Codec,
    reader: impl Read,
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<(), CodecError> {
    let mut limited = reader.take(limit as u64 + 1);
    limited.read_to_end(out).map_err(|e| CodecError::Corrupt {
        codec,
        message: e.to_string(),
    })?;
    if out.len() > limit {
        out.clear();
        return Err(CodecError::TooLarge { limit });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn roundtrip(codec: Codec, compressed: &[u8], expected: &[u8]) {
        let mut out = Vec::new();
        codec.decompress(compressed, &mut out, 1 << 20).unwrap();
        assert_eq!(out, expected);
    }

    #[test]
    fn every_codec_inflates() {
        let data: Vec<u8> = (0..10_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        roundtrip(Codec::Null, &data, &data);

        let mut c = libdeflater::Compressor::new(libdeflater::CompressionLvl::default());
        let mut buf = vec![0; c.deflate_compress_bound(data.len())];
        let n = c.deflate_compress(&data, &mut buf).unwrap();
        roundtrip(Codec::Deflate, &buf[..n], &data);

        let mut s = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        s.extend_from_slice(&crc32fast::hash(&data).to_be_bytes());
        roundtrip(Codec::Snappy, &s, &data);

        roundtrip(
            Codec::Zstandard,
            &zstd::bulk::compress(&data, 3).unwrap(),
            &data,
        );

        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bz.write_all(&data).unwrap();
        roundtrip(Codec::Bzip2, &bz.finish().unwrap(), &data);

        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
        xz.write_all(&data).unwrap();
        roundtrip(Codec::Xz, &xz.finish().unwrap(), &data);
    }

    #[test]
    fn snappy_crc_is_checked() {
        let data = b"hello hello hello";
        let mut s = snap::raw::Encoder::new().compress_vec(data).unwrap();
        s.extend_from_slice(&(crc32fast::hash(data) ^ 1).to_be_bytes());
        let err = Codec::Snappy
            .decompress(&s, &mut Vec::new(), 1 << 20)
            .unwrap_err();
        assert!(matches!(err, CodecError::Crc { .. }), "{err}");
    }

    #[test]
    fn bombs_and_garbage_are_errors() {
        let zeros = vec![0u8; 1 << 20];
        let bomb = zstd::bulk::compress(&zeros, 3).unwrap();
        let err = Codec::Zstandard
            .decompress(&bomb, &mut Vec::new(), 1000)
            .unwrap_err();
        assert!(matches!(err, CodecError::TooLarge { limit: 1000 }));

        let mut c = libdeflater::Compressor::new(libdeflater::CompressionLvl::default());
        let mut buf = vec![0; c.deflate_compress_bound(zeros.len())];
        let n = c.deflate_compress(&zeros, &mut buf).unwrap();
        let err = Codec::Deflate
            .decompress(&buf[..n], &mut Vec::new(), 5000)
            .unwrap_err();
        assert!(matches!(err, CodecError::TooLarge { .. }));

        for codec in [
            Codec::Deflate,
            Codec::Snappy,
            Codec::Zstandard,
            Codec::Bzip2,
            Codec::Xz,
        ] {
            let err = codec
                .decompress(b"\xff\xfe garbage \x00\x01", &mut Vec::new(), 1 << 20)
                .unwrap_err();
            assert!(!err.to_string().is_empty());
        }
    }
}
