//! Block codecs of Avro object container files: null, deflate, snappy, zstandard, bzip2, xz,
//! Avro C's `lzma` and fastavro's `lz4`.
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
    /// Avro C's `lzma` (not in the specification, which has `xz`): a raw LZMA2 stream, with no
    /// xz container around it, written with liblzma's default preset.
    Lzma,
    /// fastavro's `lz4` (not in the specification): an LZ4 block (no frame) after the
    /// little-endian 32-bit length of the uncompressed data, as Python's
    /// `lz4.block.compress` writes it by default.
    Lz4,
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
            Some("lzma") => Codec::Lzma,
            Some("lz4") => Codec::Lz4,
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
            Codec::Lzma => "lzma",
            Codec::Lz4 => "lz4",
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
        let n = self.decompress_into(input, out, limit)?;
        out.truncate(n);
        Ok(())
    }

    /// [`Self::decompress`] into a buffer reused from block to block: the data is `out[..n]`
    /// for the `n` returned, and what lies after it in `out` is left over. A snappy or lz4
    /// block is inflated into the buffer as it stands, so a buffer that already had room is not
    /// filled with zeros again for every block; a deflate block into its capacity, untouched
    /// before (`out` then holds exactly the data).
    pub fn decompress_into(
        self,
        input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<usize, CodecError> {
        // Snappy and lz4 blocks inflate into the buffer as it stands, deflate into its
        // capacity; the others start empty.
        if !matches!(self, Codec::Deflate | Codec::Snappy | Codec::Lz4) {
            out.clear();
        }
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
            Codec::Deflate => return inflate(input, out, limit),
            Codec::Snappy => {
                if input.len() < 4 {
                    return Err(corrupt("block shorter than its CRC".into()));
                }
                let (data, crc) = input.split_at(input.len() - 4);
                let len = snap::raw::decompress_len(data).map_err(|e| corrupt(e.to_string()))?;
                let n = snap::raw::Decoder::new()
                    .decompress(data, room(out, len, limit)?)
                    .map_err(|e| corrupt(e.to_string()))?;
                let stored = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
                let computed = crc32fast::hash(&out[..n]);
                if stored != computed {
                    return Err(CodecError::Crc { stored, computed });
                }
                return Ok(n);
            }
            Codec::Lz4 => {
                let (size, data) = input
                    .split_first_chunk::<4>()
                    .ok_or_else(|| corrupt("block shorter than its length".into()))?;
                let len = u32::from_le_bytes(*size) as usize;
                let n = lz4_flex::block::decompress_into(data, room(out, len, limit)?)
                    .map_err(|e| corrupt(e.to_string()))?;
                if n != len {
                    return Err(corrupt(format!(
                        "inflates to {n} bytes, its header says {len}"
                    )));
                }
                return Ok(n);
            }
            Codec::Zstandard => unzstd(input, out, limit)?,
            // Every stream of a block (as Python's `bz2` and `lzma` read them; a writer that
            // compresses a block in parts concatenates streams), like zstandard's frames.
            Codec::Bzip2 => {
                read_capped(self, bzip2::read::MultiBzDecoder::new(input), out, limit)?;
            }
            Codec::Xz => {
                let decoder = liblzma::read::XzDecoder::new_multi_decoder(input);
                read_capped(self, decoder, out, limit)?;
            }
            Codec::Lzma => {
                let stream = lzma2_raw(false).map_err(|e| corrupt(e.to_string()))?;
                let decoder = liblzma::read::XzDecoder::new_stream(input, stream);
                read_capped(self, decoder, out, limit)?;
            }
        }
        Ok(out.len())
    }
}

/// The first `len` bytes of `out`, for a block whose header says it inflates to `len` bytes:
/// refused over `limit` before anything is allocated; `out` grows (zero-filled) only when it
/// is shorter, so a buffer reused from block to block is not filled again.
fn room(out: &mut Vec<u8>, len: usize, limit: usize) -> Result<&mut [u8], CodecError> {
    if len > limit {
        return Err(CodecError::TooLarge { limit });
    }
    if out.len() < len {
        out.resize(len, 0);
    }
    Ok(&mut out[..len])
}

thread_local! {
    /// One inflater per thread: libdeflate allocates and zeroes its tables (tens of KB) in
    /// each new decompressor, which was a measurable share of inflating a 64 KB block.
    static INFLATER: std::cell::RefCell<Option<Inflater>> =
        const { std::cell::RefCell::new(None) };
}

/// A libdeflate decompressor that inflates into a buffer's spare capacity (`libdeflater`'s
/// takes initialized memory: a block of 26 MB had 104 MB zero-filled to inflate 34 MB into,
/// page after fresh page, and a block of 390 MB 512 MiB).
struct Inflater(std::ptr::NonNull<libdeflate_sys::libdeflate_decompressor>);

impl Inflater {
    /// `None` when libdeflate cannot allocate one.
    fn new() -> Option<Self> {
        #[allow(unsafe_code)]
        // SAFETY: no arguments; a null result (out of memory) is checked.
        let ptr = unsafe { libdeflate_sys::libdeflate_alloc_decompressor() };
        std::ptr::NonNull::new(ptr).map(Self)
    }

    /// Inflates the raw deflate stream `input` into `out`, emptied first, with room for at
    /// least `room` bytes (reserved exactly: past the capacity, `reserve` would double it, and
    /// a block of 20 MB took a buffer of 90 MB): `Ok(true)` when it fit, `Ok(false)` (and
    /// `out` empty) when it needs more.
    fn inflate(&mut self, input: &[u8], out: &mut Vec<u8>, room: usize) -> Result<bool, String> {
        out.clear();
        out.reserve_exact(room);
        let spare = out.spare_capacity_mut();
        let room = spare.len().min(room);
        let mut n = 0usize;
        #[allow(unsafe_code)]
        // SAFETY: libdeflate reads `input.len()` bytes of `input` and writes at most `room`
        // bytes at the start of `out`'s spare capacity (allocated, `room <= spare.len()`),
        // reading back only bytes it wrote; it sets `n` to the bytes written on success. The
        // decompressor is ours alone (`&mut self`).
        let result = unsafe {
            libdeflate_sys::libdeflate_deflate_decompress(
                self.0.as_ptr(),
                input.as_ptr().cast(),
                input.len(),
                spare.as_mut_ptr().cast(),
                room,
                &mut n,
            )
        };
        match result {
            libdeflate_sys::libdeflate_result_LIBDEFLATE_SUCCESS if n <= room => {
                #[allow(unsafe_code)]
                // SAFETY: libdeflate initialized the first `n <= room` bytes of the spare
                // capacity, and the buffer was empty.
                unsafe {
                    out.set_len(n);
                }
                Ok(true)
            }
            libdeflate_sys::libdeflate_result_LIBDEFLATE_INSUFFICIENT_SPACE => Ok(false),
            libdeflate_sys::libdeflate_result_LIBDEFLATE_BAD_DATA => {
                Err("invalid deflate data".into())
            }
            other => Err(format!("libdeflate failed (result {other})")),
        }
    }
}

impl Drop for Inflater {
    fn drop(&mut self) {
        #[allow(unsafe_code)]
        // SAFETY: allocated by `libdeflate_alloc_decompressor`, freed once, here.
        unsafe {
            libdeflate_sys::libdeflate_free_decompressor(self.0.as_ptr())
        }
    }
}

thread_local! {
    /// One zstd decompression context per thread: creating one allocates and initializes its
    /// tables and buffers (~100 KB), which was a third of the time spent on a 64 KB block.
    static UNZSTD: std::cell::RefCell<Option<zstd::zstd_safe::DCtx<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// One or more zstd frames into `out` (cleared first), in a context reused from block to
/// block, growing `out` up to `limit`: from the frame's content size where its header has
/// one (zstd's one-shot API, Python's `zstandard`), otherwise from a typical ratio (streamed
/// frames, as Java's `ZstdOutputStream` writes them).
fn unzstd(input: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), CodecError> {
    use zstd::zstd_safe::{DCtx, InBuffer, OutBuffer, ResetDirective, get_error_name};
    let corrupt = |message: String| CodecError::Corrupt {
        codec: Codec::Zstandard,
        message,
    };
    UNZSTD.with_borrow_mut(|slot| {
        let dctx = match slot {
            Some(dctx) => dctx,
            None => slot.insert(
                DCtx::try_create()
                    .ok_or_else(|| corrupt("no zstd context (out of memory)".into()))?,
            ),
        };
        // A block that failed midway leaves the context in the middle of a frame.
        dctx.reset(ResetDirective::SessionOnly)
            .map_err(|code| corrupt(get_error_name(code).into()))?;
        let first = match zstd::zstd_safe::get_frame_content_size(input) {
            Ok(Some(n)) if n > limit as u64 => return Err(CodecError::TooLarge { limit }),
            Ok(Some(n)) => n as usize,
            _ => input.len().saturating_mul(4),
        };
        out.clear();
        // Room for at most `limit + 1` bytes: one past the limit tells a block too large.
        out.reserve_exact(first.max(4096).min(limit.saturating_add(1)));
        let mut source = InBuffer::around(input);
        loop {
            if out.len() == out.capacity() {
                if out.len() > limit {
                    out.clear();
                    return Err(CodecError::TooLarge { limit });
                }
                let room = out.len().max(4096).min(limit + 1 - out.len());
                out.reserve_exact(room);
            }
            let mut sink = OutBuffer::around_pos(out, out.len());
            let hint = dctx
                .decompress_stream(&mut sink, &mut source)
                .map_err(|code| corrupt(get_error_name(code).into()))?;
            let (written, room) = (sink.pos(), sink.capacity());
            if source.pos() == input.len() {
                if hint == 0 {
                    break;
                }
                if written < room {
                    // zstd had room to write and input to read but did not finish the frame.
                    out.clear();
                    return Err(corrupt("truncated zstd frame".into()));
                }
            }
        }
        if out.len() > limit {
            out.clear();
            return Err(CodecError::TooLarge { limit });
        }
        Ok(())
    })
}

/// Raw deflate into `out` (`out[..n]`, `n` returned), growing it until the data fits: deflate
/// does not store its inflated length. Only the bytes inflated are touched: room reserved and
/// not needed costs no memory.
fn inflate(input: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<usize, CodecError> {
    INFLATER.with_borrow_mut(|slot| {
        let inflater = match slot {
            Some(inflater) => inflater,
            None => slot.insert(Inflater::new().ok_or_else(|| CodecError::Corrupt {
                codec: Codec::Deflate,
                message: "out of memory for a decompressor".into(),
            })?),
        };
        // Start from a typical ratio, or the room the buffer already has.
        let limit = limit.max(1);
        let mut cap = input
            .len()
            .saturating_mul(4)
            .max(out.capacity())
            .max(4096)
            .min(limit);
        // (`out` is left empty on every error.)
        loop {
            match inflater.inflate(input, out, cap) {
                Ok(true) => return Ok(out.len()),
                Ok(false) if cap < limit => cap = cap.saturating_mul(2).min(limit),
                Ok(false) => return Err(CodecError::TooLarge { limit }),
                Err(message) => {
                    return Err(CodecError::Corrupt {
                        codec: Codec::Deflate,
                        message,
                    });
                }
            }
        }
    })
}

/// The dictionary of raw LZMA2 streams ([`Codec::Lzma`]): that of liblzma's largest preset
/// (9), so a block written with any preset inflates. A raw stream does not record the size
/// its writer used; Avro C uses the default preset (8 MiB). The decoder allocates it without
/// touching it, so memory follows the block's size.
const LZMA2_DICT_BYTES: u32 = 64 << 20;

/// A raw LZMA2 encoder (Avro C's default preset, 6) or decoder, for [`Codec::Lzma`].
pub(crate) fn lzma2_raw(encoder: bool) -> Result<liblzma::stream::Stream, liblzma::stream::Error> {
    let mut options = liblzma::stream::LzmaOptions::new_preset(6)?;
    if !encoder {
        options.dict_size(LZMA2_DICT_BYTES);
    }
    let mut filters = liblzma::stream::Filters::new();
    filters.lzma2(&options);
    if encoder {
        liblzma::stream::Stream::new_raw_encoder(&filters)
    } else {
        liblzma::stream::Stream::new_raw_decoder(&filters)
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
    fn a_reused_buffer_holds_each_block_and_no_more() {
        let mut c = libdeflater::Compressor::new(libdeflater::CompressionLvl::default());
        let deflate = |data: &[u8], c: &mut libdeflater::Compressor| {
            let mut buf = vec![0; c.deflate_compress_bound(data.len())];
            let n = c.deflate_compress(data, &mut buf).unwrap();
            buf.truncate(n);
            buf
        };
        let big: Vec<u8> = (0..300_000u32).map(|i| (i % 7) as u8).collect();
        let small = b"a small block".to_vec();
        let mut out = Vec::new();
        for data in [&big, &small, &big, &small] {
            let n = Codec::Deflate
                .decompress_into(&deflate(data, &mut c), &mut out, 1 << 20)
                .unwrap();
            assert_eq!(&out[..n], &data[..]);
        }
        assert_eq!(out.len(), small.len());
        assert!(out.capacity() >= big.len(), "the buffer keeps its room");
        // A corrupt block after good ones is an error, and a block over the limit too.
        assert!(
            Codec::Deflate
                .decompress_into(b"\xff\xfe garbage", &mut out, 1 << 20)
                .is_err()
        );
        let err = Codec::Deflate
            .decompress_into(&deflate(&big, &mut c), &mut out, 1000)
            .unwrap_err();
        assert!(matches!(err, CodecError::TooLarge { limit: 1000 }), "{err}");
        // Every other codec leaves exactly the data in the buffer.
        let s = snap::raw::Encoder::new().compress_vec(&small).unwrap();
        let mut framed = s.clone();
        framed.extend_from_slice(&crc32fast::hash(&small).to_be_bytes());
        let n = Codec::Snappy
            .decompress_into(&framed, &mut out, 1 << 20)
            .unwrap();
        assert_eq!((n, &out[..]), (small.len(), &small[..]));
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

        // Blocks of several streams (or frames) hold all of them.
        let (a, b) = data.split_at(data.len() / 3);
        let mut two = Vec::new();
        for part in [a, b] {
            let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
            bz.write_all(part).unwrap();
            two.extend(bz.finish().unwrap());
        }
        roundtrip(Codec::Bzip2, &two, &data);
        let mut two = Vec::new();
        for part in [a, b] {
            let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
            xz.write_all(part).unwrap();
            two.extend(xz.finish().unwrap());
        }
        roundtrip(Codec::Xz, &two, &data);
        let two = [
            zstd::bulk::compress(a, 3).unwrap(),
            zstd::bulk::compress(b, 3).unwrap(),
        ]
        .concat();
        roundtrip(Codec::Zstandard, &two, &data);

        let mut lzma = liblzma::write::XzEncoder::new_stream(Vec::new(), lzma2_raw(true).unwrap());
        lzma.write_all(&data).unwrap();
        roundtrip(Codec::Lzma, &lzma.finish().unwrap(), &data);

        roundtrip(
            Codec::Lz4,
            &lz4_flex::block::compress_prepend_size(&data),
            &data,
        );
    }

    /// Blocks as fastavro writes them (Python's `lz4.block.compress`, 4.4): the uncompressed
    /// length, little-endian, then the LZ4 block. An empty block is that length (0) and a
    /// single zero token.
    #[test]
    fn fastavro_lz4_blocks_inflate_and_their_length_is_checked() {
        let hex = |s: &str| -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        };
        let block = hex("3b000000ff05666173746176726f206c7a3420626c6f636b2c2014000f506c6f636b21");
        roundtrip(
            Codec::Lz4,
            &block,
            b"fastavro lz4 block, fastavro lz4 block, fastavro lz4 block!",
        );
        roundtrip(Codec::Lz4, &hex("0000000000"), b"");
        // A length over the limit is refused before anything is allocated; a length that
        // disagrees with the data either way, or a block cut short, is corrupt.
        let mut out = Vec::new();
        let mut huge = block.clone();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        let err = Codec::Lz4.decompress(&huge, &mut out, 1 << 20).unwrap_err();
        assert!(matches!(err, CodecError::TooLarge { .. }), "{err}");
        assert!(out.capacity() < 1 << 20);
        for len in [58u32, 60, 1000] {
            let mut wrong = block.clone();
            wrong[..4].copy_from_slice(&len.to_le_bytes());
            let err = Codec::Lz4
                .decompress(&wrong, &mut out, 1 << 20)
                .unwrap_err();
            assert!(
                matches!(err, CodecError::Corrupt { .. }),
                "length {len}: {err}"
            );
        }
        for cut in [0, 3, 10, block.len() - 1] {
            assert!(
                Codec::Lz4
                    .decompress(&block[..cut], &mut out, 1 << 20)
                    .is_err(),
                "cut at {cut}"
            );
        }
    }

    /// The first block of `avromod --codec=lzma` (Avro C 1.11) on the corpus's
    /// `alltypes_plain`: 128 bytes of raw LZMA2 (no xz magic) holding 8 records in 384 bytes,
    /// the first `id` 4 (union branch 0, zigzag 8) then `bool_col` true.
    #[test]
    fn avro_c_lzma_blocks_inflate() {
        const BLOCK: &str = "e0017f00785d000002551c4aabf38d0288af9f0cb3337b31a83ec283e7d2d248e9789f\
            74c751b61746ddde434c4a3bb4d29dbbf57597dd4f03df465a2f09c7d97d8ce8234bac6974558b67da7fd9\
            bec6a4bce561d197596524ce831fe3392aad79b7f75ab25f208b0b2492bf05f48915bbdc6b7609b9e312cd\
            b9f140ad400000";
        let block: Vec<u8> = (0..BLOCK.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&BLOCK[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(block.len(), 128);
        let mut out = Vec::new();
        Codec::Lzma.decompress(&block, &mut out, 1 << 20).unwrap();
        assert_eq!(out.len(), 384);
        assert_eq!(out[..4], [0x00, 0x08, 0x00, 0x01]);
        // The same bytes are not an xz stream, and a cap still holds.
        assert!(
            Codec::Xz
                .decompress(&block, &mut Vec::new(), 1 << 20)
                .is_err()
        );
        let err = Codec::Lzma.decompress(&block, &mut out, 100).unwrap_err();
        assert!(matches!(err, CodecError::TooLarge { limit: 100 }), "{err}");
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
            Codec::Lzma,
            Codec::Lz4,
        ] {
            let err = codec
                .decompress(b"\xff\xfe garbage \x00\x01", &mut Vec::new(), 1 << 20)
                .unwrap_err();
            assert!(!err.to_string().is_empty());
        }
    }

    #[test]
    fn zstd_frames_of_every_kind_decompress_in_a_reused_context() {
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        // One-shot, with the content size in the header.
        let sized = zstd::bulk::compress(&data, 3).unwrap();
        // Streamed, without it (as Java's ZstdOutputStream writes).
        let mut w = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        w.include_contentsize(false).unwrap();
        w.write_all(&data).unwrap();
        let streamed = w.finish().unwrap();
        assert!(
            matches!(zstd::zstd_safe::get_frame_content_size(&streamed), Ok(None)),
            "the streamed frame carries no size"
        );
        // Two frames back to back are one block's data.
        let two = [sized.clone(), streamed.clone()].concat();
        let twice = [data.clone(), data.clone()].concat();
        let mut out = Vec::new();
        for (block, expected) in [(&sized, &data), (&streamed, &data), (&two, &twice)] {
            Codec::Zstandard
                .decompress(block, &mut out, 1 << 24)
                .unwrap();
            assert!(out == *expected);
        }
        // A truncated frame is an error, and the next block starts afresh in the same context.
        for cut in [streamed.len() / 2, streamed.len() - 1, sized.len() - 3] {
            let block = if cut == sized.len() - 3 {
                &sized[..cut]
            } else {
                &streamed[..cut]
            };
            let err = Codec::Zstandard
                .decompress(block, &mut out, 1 << 24)
                .unwrap_err();
            assert!(matches!(err, CodecError::Corrupt { .. }), "{err}");
            Codec::Zstandard
                .decompress(&streamed, &mut out, 1 << 24)
                .unwrap();
            assert!(out == data);
        }
        // The cap holds whether or not the header says the size, small caps too, and the
        // buffer never has room for more than one byte past it.
        for limit in [0, 100, 10_000] {
            for block in [&sized, &streamed] {
                let mut fresh = Vec::new();
                let err = Codec::Zstandard
                    .decompress(block, &mut fresh, limit)
                    .unwrap_err();
                assert!(
                    matches!(err, CodecError::TooLarge { limit: l } if l == limit),
                    "{err}"
                );
                assert!(fresh.capacity() <= limit + 1, "{}", fresh.capacity());
            }
        }
        // Exactly at the cap is fine.
        Codec::Zstandard
            .decompress(&streamed, &mut out, data.len())
            .unwrap();
        assert_eq!(out.len(), data.len());
    }
}
