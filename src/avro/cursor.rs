//! A bounds-checked reader over Avro binary encoding: zig-zag varints, lengths, raw bytes.
//!
//! Every read checks the remaining length first and returns [`CursorError`] instead of panicking;
//! lengths are checked against the bytes that are actually left before anything is allocated.

/// What went wrong while reading Avro binary data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    /// The data ended in the middle of a value.
    #[error("unexpected end of data")]
    Eof,
    /// A varint longer than 10 bytes, or one that overflows 64 bits.
    #[error("malformed varint")]
    Varint,
    /// A negative length or count where a non-negative one is required, or one larger than the
    /// data that is left.
    #[error("invalid length {0}")]
    Length(i64),
    /// A boolean byte other than 0 and 1 (Avro Java reads it as false, some readers as true).
    #[error("boolean byte {0:#04x} is neither 0 nor 1")]
    Boolean(u8),
}

/// The longest value [`Cursor::bytes_windowed`] gives a window for.
pub const SHORT: usize = 32;

/// A position in a byte slice.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Items that take no bytes (of `null`, `fixed(0)`) still allowed in this buffer: the bytes
    /// left cannot bound them, so this does (see [`Self::take_zero_size_items`]).
    zero_size_items: u64,
}

impl<'a> Cursor<'a> {
    /// Items of zero bytes one buffer (a block, a datum) may hold in all: 4 million. Their
    /// arrays cost several bytes an item once encoded (their Parquet levels; 15 million in one
    /// record peaked at 250 MiB), so a file of a few hundred bytes made of array blocks of them
    /// took 16 GB.
    pub const MAX_ZERO_SIZE_ITEMS: u64 = 1 << 22;

    /// A cursor at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            zero_size_items: Self::MAX_ZERO_SIZE_ITEMS,
        }
    }

    /// A cursor at byte `pos` of `buf` (at its end, if `pos` is past it).
    pub fn at(buf: &'a [u8], pos: usize) -> Self {
        Self {
            pos: pos.min(buf.len()),
            ..Self::new(buf)
        }
    }

    /// Counts `n` items that take no bytes against what the buffer may hold; `false` (and
    /// nothing counted) past [`Self::MAX_ZERO_SIZE_ITEMS`] in all.
    #[inline]
    pub fn take_zero_size_items(&mut self, n: u64) -> bool {
        match self.zero_size_items.checked_sub(n) {
            Some(left) => {
                self.zero_size_items = left;
                true
            }
            None => false,
        }
    }

    /// Bytes consumed so far.
    #[inline]
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Moves back to `pos`, a position already read past (to read a datum again), keeping
    /// what the buffer may still hold of zero-size items; a later position is ignored.
    pub fn rewind(&mut self, pos: usize) {
        self.pos = self.pos.min(pos);
    }

    /// Bytes left.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next byte, not read: a one-byte varint such as a union's branch index can be
    /// compared without decoding it, then passed with [`Self::skip_peeked`].
    #[inline(always)]
    pub fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// Passes the byte [`Self::peek`] returned.
    #[inline(always)]
    pub fn skip_peeked(&mut self) {
        self.pos += 1;
    }

    /// Reads a zig-zag encoded `long`.
    #[inline(always)]
    pub fn long(&mut self) -> Result<i64, CursorError> {
        let raw = self.varint()?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    /// Reads a zig-zag encoded `int`; a value outside `i32` is an error.
    #[inline]
    pub fn int(&mut self) -> Result<i32, CursorError> {
        let v = self.long()?;
        i32::try_from(v).map_err(|_| CursorError::Varint)
    }

    /// Varints of one or two bytes (small ints, lengths, union indexes, ids up to 16,383)
    /// inline; the rest out of line.
    #[inline(always)]
    fn varint(&mut self) -> Result<u64, CursorError> {
        match self.buf.get(self.pos..) {
            Some([first, ..]) if first & 0x80 == 0 => {
                self.pos += 1;
                Ok(*first as u64)
            }
            Some([first, second, ..]) if second & 0x80 == 0 => {
                self.pos += 2;
                Ok((*first & 0x7f) as u64 | ((*second as u64) << 7))
            }
            _ => self.varint_long(),
        }
    }

    #[inline(never)]
    fn varint_long(&mut self) -> Result<u64, CursorError> {
        // Up to 8 bytes (values below 2^56: timestamps in micros, ids) at once, where 8 bytes
        // are left: the first byte without a continuation bit ends it, and the 7-bit groups
        // of the bytes before are packed together in three steps.
        if let Some(chunk) = self.buf.get(self.pos..).and_then(|b| b.first_chunk::<8>()) {
            let x = u64::from_le_bytes(*chunk);
            let stops = !x & 0x8080_8080_8080_8080;
            if stops != 0 {
                let len = (stops.trailing_zeros() / 8 + 1) as usize;
                let x = x & (u64::MAX >> (64 - 8 * len));
                let x = (x & 0x007f_007f_007f_007f) | ((x & 0x7f00_7f00_7f00_7f00) >> 1);
                let x = (x & 0x0000_3fff_0000_3fff) | ((x & 0x3fff_0000_3fff_0000) >> 2);
                let x = (x & 0x0000_0000_0fff_ffff) | ((x & 0x0fff_ffff_0000_0000) >> 4);
                self.pos += len;
                return Ok(x);
            }
        }
        let mut value = 0u64;
        let mut shift = 0;
        loop {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(CursorError::Eof);
            };
            self.pos += 1;
            if shift == 63 && b > 1 {
                return Err(CursorError::Varint);
            }
            value |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
            if shift > 63 {
                return Err(CursorError::Varint);
            }
        }
    }

    /// Reads a length prefix and checks it against the bytes left.
    #[inline]
    pub fn len_prefix(&mut self) -> Result<usize, CursorError> {
        let len = self.long()?;
        if len < 0 || len as u64 > self.remaining() as u64 {
            return Err(CursorError::Length(len));
        }
        Ok(len as usize)
    }

    /// Reads a length-prefixed byte string (`bytes` or `string`).
    #[inline]
    pub fn bytes(&mut self) -> Result<&'a [u8], CursorError> {
        let len = self.len_prefix()?;
        self.take(len)
    }

    /// Reads a length-prefixed byte string, and with it, when it is at most
    /// [`SHORT`] bytes long and the buffer holds that many from its start, those
    /// bytes: a window that a short value can be copied and checked with in fixed-size steps
    /// (no call to `memcpy` and no loop over its last bytes, whose length varies from value to
    /// value and so mispredicts).
    #[inline(always)]
    pub fn bytes_windowed(&mut self) -> Result<(&'a [u8], Option<&'a [u8; SHORT]>), CursorError> {
        let len = self.len_prefix()?;
        let window = if len <= SHORT {
            self.buf[self.pos..].first_chunk::<{ SHORT }>()
        } else {
            None
        };
        Ok((self.take(len)?, window))
    }

    /// Reads exactly `n` bytes.
    #[inline]
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], CursorError> {
        if n > self.remaining() {
            return Err(CursorError::Eof);
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// The next `N` bytes, as an array.
    #[inline]
    pub fn take_array<const N: usize>(&mut self) -> Result<&'a [u8; N], CursorError> {
        let (out, _) = self.buf[self.pos..]
            .split_first_chunk::<N>()
            .ok_or(CursorError::Eof)?;
        self.pos += N;
        Ok(out)
    }

    /// Reads a boolean byte: 0 or 1. Other bytes are refused: readers disagree on them (Avro
    /// Java reads them as false, fastavro as true), so no value read from one can be trusted.
    ///
    /// One test for the refusal, none on the value: a `match` of 0 and 1 became a branch on
    /// the value, mispredicted on every other random boolean (`compare.sh --shape flags`, 40
    /// booleans a record: 4.2-4.4 user seconds with it, 2.8-3.6 without).
    #[inline(always)]
    pub fn boolean(&mut self) -> Result<bool, CursorError> {
        let b = self.take(1)?[0];
        if b > 1 {
            return Err(CursorError::Boolean(b));
        }
        Ok(b != 0)
    }

    /// Reads a little-endian `float`.
    #[inline]
    pub fn float(&mut self) -> Result<f32, CursorError> {
        let b = self.take(4)?;
        Ok(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Reads a little-endian `double`.
    #[inline]
    pub fn double(&mut self) -> Result<f64, CursorError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_le_bytes(a))
    }

    /// Reads the count of an array or map block. A negative count is followed by the block's
    /// byte size, which is read and returned if it fits the bytes left: one that does not (a
    /// writer's mistake, or damage) is ignored, as Java's, fastavro's and apache-avro's readers
    /// ignore the size when they decode the items (it only lets a reader skip them). Returns
    /// `(count, byte_size)`. Inlined: a call returned its result through memory, and arrays and
    /// maps read one or two a value.
    #[inline(always)]
    pub fn block_count(&mut self) -> Result<(u64, Option<usize>), CursorError> {
        let count = self.long()?;
        if count >= 0 {
            return Ok((count as u64, None));
        }
        let size = self.long()?;
        let size = usize::try_from(size)
            .ok()
            .filter(|&size| size <= self.remaining());
        Ok((count.unsigned_abs(), size))
    }
}

/// Encodes `v` as a zig-zag varint (used by tests and by the envelope framing).
pub fn encode_long(v: i64, out: &mut Vec<u8>) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_are_0_or_1() {
        let mut c = Cursor::new(&[1, 0, 2, 0xff]);
        assert_eq!(c.boolean(), Ok(true));
        assert_eq!(c.boolean(), Ok(false));
        assert_eq!(c.boolean(), Err(CursorError::Boolean(2)));
        assert_eq!(c.boolean(), Err(CursorError::Boolean(0xff)));
        assert_eq!(c.boolean(), Err(CursorError::Eof));
    }

    #[test]
    fn zigzag_round_trip() {
        for v in [
            0i64,
            -1,
            1,
            63,
            -64,
            64,
            // The last one- and two-byte varints and the first of two and three bytes.
            -65,
            8191,
            -8192,
            8192,
            -8193,
            i32::MAX as i64,
            i64::MIN,
            i64::MAX,
        ] {
            let mut buf = Vec::new();
            encode_long(v, &mut buf);
            let mut c = Cursor::new(&buf);
            assert_eq!(c.long().unwrap(), v);
            assert_eq!(c.remaining(), 0);
            // And with bytes after it.
            buf.extend_from_slice(&[0x55; 10]);
            let mut c = Cursor::new(&buf);
            assert_eq!(c.long().unwrap(), v);
            assert_eq!(c.remaining(), 10);
        }
    }

    /// Every length of varint, read at once (8 bytes left) or byte by byte (fewer left), with
    /// any bytes after it, and overlong forms (a zero group last) as Java's reader takes them.
    #[test]
    fn varints_of_every_length_read_alike() {
        fn reference(b: &[u8]) -> (u64, usize) {
            let mut v = 0u64;
            for (i, &x) in b.iter().enumerate() {
                v |= u64::from(x & 0x7f).checked_shl(7 * i as u32).unwrap_or(0);
                if x & 0x80 == 0 {
                    return (v, i + 1);
                }
            }
            unreachable!()
        }
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for bits in 0..=64u32 {
            for _ in 0..50 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let z = if bits == 0 { 0 } else { x >> (64 - bits) };
                let mut buf = Vec::new();
                encode_long(((z >> 1) as i64) ^ -((z & 1) as i64), &mut buf);
                let n = buf.len();
                let mut overlong = buf.clone();
                if n < 10 {
                    *overlong.last_mut().unwrap() |= 0x80;
                    overlong.push(0);
                }
                for form in [buf, overlong] {
                    for tail in [&[][..], &[0x80; 12][..], &[0x00; 3][..], &[0xff; 7][..]] {
                        let bytes = [&form[..], tail].concat();
                        let mut c = Cursor::new(&bytes);
                        assert_eq!(c.varint(), Ok(reference(&form).0), "{bytes:02x?}");
                        assert_eq!(c.remaining(), tail.len(), "{bytes:02x?}");
                    }
                }
            }
        }
    }

    #[test]
    fn malformed_input_is_an_error() {
        assert_eq!(Cursor::new(&[0x80]).long(), Err(CursorError::Eof));
        assert_eq!(Cursor::new(&[0xff; 11]).long(), Err(CursorError::Varint));
        // A tenth byte may only carry the 64th bit, whatever follows.
        let mut over = [0xff; 9].to_vec();
        over.push(0x02);
        assert_eq!(Cursor::new(&over).long(), Err(CursorError::Varint));
        over.extend_from_slice(&[0; 10]);
        assert_eq!(Cursor::new(&over).long(), Err(CursorError::Varint));
        assert_eq!(Cursor::new(&[0xff; 10]).long(), Err(CursorError::Varint));
        // A length larger than what is left is refused before any allocation.
        let mut buf = Vec::new();
        encode_long(1 << 40, &mut buf);
        assert_eq!(Cursor::new(&buf).bytes(), Err(CursorError::Length(1 << 40)));
        let mut buf = Vec::new();
        encode_long(-3, &mut buf);
        assert_eq!(Cursor::new(&buf).bytes(), Err(CursorError::Length(-3)));
        // An array block's byte size is returned where it fits the bytes left, and read
        // past and ignored where it does not (negative, or past the end), as other readers
        // ignore it: the count is what the items are read by.
        for (size, rest, want) in [
            (3, 3, Some(3)),
            (0, 2, Some(0)),
            (-17, 5, None),
            (9, 3, None),
        ] {
            let mut buf = Vec::new();
            encode_long(-2, &mut buf);
            encode_long(size, &mut buf);
            buf.resize(buf.len() + rest, 0);
            let mut cur = Cursor::new(&buf);
            assert_eq!(cur.block_count(), Ok((2, want)), "size {size}");
            assert_eq!(cur.remaining(), rest);
        }
        // An int out of range.
        let mut buf = Vec::new();
        encode_long(1 << 33, &mut buf);
        assert_eq!(Cursor::new(&buf).int(), Err(CursorError::Varint));
    }
}
