//! Values of a recursive type as JSON text.
//!
//! Parquet (and Athena) have no recursive types. Where a record refers to itself from inside its
//! own definition ([`Schema::Recursive`]: the Avro interop schema's `Node`, whose `children` are
//! `Node`s; a linked list's `next`), the value at that reference is stored as one JSON string,
//! which Athena reads with `json_extract` (`json_extract_scalar(children[1], '$.label')`):
//!
//! | Avro | JSON |
//! |---|---|
//! | null | `null` |
//! | boolean, int, long, float, double | the value; NaN and infinities as the strings `"NaN"`, `"Infinity"`, `"-Infinity"` |
//! | string, enum, uuid | a string (a uuid on fixed(16) in its 36-character form) |
//! | bytes, fixed | a string: the bytes in base64 (RFC 4648, padded) |
//! | decimal | a string: its exact plain text (`"-1234.50"`) |
//! | date, time, timestamps | the stored number (days, or units since midnight or the epoch) |
//! | duration | `{"months": m, "days": d, "milliseconds": ms}` |
//! | array | an array |
//! | map | an object, its entries in the encoded order |
//! | union | the value of its branch |
//! | record | an object of its fields, in order |
//!
//! Nesting is bounded ([`MAX_DEPTH`] levels of records, arrays, maps and unions): a deeper value
//! fails its record (to the dead-letter place), rather than the thread's stack.

use crate::avro::cursor::Cursor;
use crate::avro::schema::Schema;

use super::{
    Fault, ValueError, big_decimal_text, branch, check_count, decimal_bytes, decimal_text,
    format_uuid,
};

/// The most levels of records, arrays, maps and unions one JSON value may nest.
pub(crate) const MAX_DEPTH: usize = 512;

/// Reads one datum of `schema` from `cur` and appends it to `out` as JSON.
pub(crate) fn write_json(
    schema: &Schema,
    cur: &mut Cursor<'_>,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<(), Fault> {
    match schema {
        Schema::Null => out.extend_from_slice(b"null"),
        Schema::Boolean => {
            out.extend_from_slice(if cur.boolean()? { b"true" } else { b"false" });
        }
        Schema::Int | Schema::Date | Schema::TimeMillis => number(out, cur.int()?),
        Schema::Long
        | Schema::TimeMicros
        | Schema::TimestampMillis
        | Schema::TimestampMicros
        | Schema::TimestampNanos
        | Schema::LocalTimestampMillis
        | Schema::LocalTimestampMicros
        | Schema::LocalTimestampNanos => number(out, cur.long()?),
        Schema::Float => float(out, cur.float()?),
        Schema::Double => float(out, cur.double()?),
        Schema::String | Schema::Uuid(None) => {
            let text = simdutf8::basic::from_utf8(cur.bytes()?).map_err(|_| ValueError::Utf8)?;
            string(out, text);
        }
        Schema::Bytes => base64(out, cur.bytes()?),
        Schema::Fixed(f) => base64(out, cur.take(f.size)?),
        Schema::Uuid(Some(_)) => {
            out.push(b'"');
            out.extend_from_slice(&format_uuid(cur.take_array::<16>()?));
            out.push(b'"');
        }
        Schema::Enum(e) => {
            let index = cur.long()?;
            let symbol = usize::try_from(index)
                .ok()
                .and_then(|i| e.symbols.get(i))
                .ok_or(ValueError::EnumIndex {
                    index,
                    symbols: e.symbols.len(),
                })?;
            string(out, symbol);
        }
        Schema::Decimal(d) => {
            let bytes = decimal_bytes(d.fixed.as_ref().map(|f| f.size), cur)?;
            out.push(b'"');
            decimal_text(bytes, d.precision, d.scale as i64, out)?;
            out.push(b'"');
        }
        Schema::BigDecimal => {
            out.push(b'"');
            big_decimal_text(cur.bytes()?, out)?;
            out.push(b'"');
        }
        Schema::Duration(_) => {
            let b = cur.take_array::<12>()?;
            let part = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
            out.extend_from_slice(b"{\"months\":");
            number(out, part(0));
            out.extend_from_slice(b",\"days\":");
            number(out, part(4));
            out.extend_from_slice(b",\"milliseconds\":");
            number(out, part(8));
            out.push(b'}');
        }
        Schema::Array(items) => {
            let depth = deeper(depth)?;
            out.push(b'[');
            let mut first = true;
            blocks(cur, items.min_encoded_size(), |cur| {
                if !std::mem::take(&mut first) {
                    out.push(b',');
                }
                write_json(items, cur, out, depth)
            })?;
            out.push(b']');
        }
        Schema::Map(values) => {
            let depth = deeper(depth)?;
            out.push(b'{');
            let mut first = true;
            blocks(cur, 1 + values.min_encoded_size(), |cur| {
                if !std::mem::take(&mut first) {
                    out.push(b',');
                }
                let key = simdutf8::basic::from_utf8(cur.bytes()?).map_err(|_| ValueError::Utf8)?;
                string(out, key);
                out.push(b':');
                write_json(values, cur, out, depth)
            })?;
            out.push(b'}');
        }
        Schema::Union(branches) => {
            let depth = deeper(depth)?;
            let b = branch(cur.long()?, branches)?;
            write_json(b, cur, out, depth)?;
        }
        Schema::Record(r) => record(&r.fields, cur, out, deeper(depth)?)?,
        Schema::Recursive(r) => {
            let target = r
                .record()
                .ok_or(ValueError::Internal("a recursive type outlived its schema"))?;
            record(&target.fields, cur, out, deeper(depth)?)?;
        }
    }
    Ok(())
}

/// Reads one datum of the recursive `target` record and appends it to `out` as JSON.
pub(crate) fn write_record(
    target: &crate::avro::schema::Record,
    cur: &mut Cursor<'_>,
    out: &mut Vec<u8>,
) -> Result<(), Fault> {
    record(&target.fields, cur, out, 1)
}

fn record(
    fields: &[crate::avro::schema::RecordField],
    cur: &mut Cursor<'_>,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<(), Fault> {
    out.push(b'{');
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(out, &f.name);
        out.push(b':');
        write_json(&f.schema, cur, out, depth)?;
    }
    out.push(b'}');
    Ok(())
}

fn deeper(depth: usize) -> Result<usize, Fault> {
    if depth >= MAX_DEPTH {
        return Err(ValueError::TooDeep(MAX_DEPTH).into());
    }
    Ok(depth + 1)
}

/// The items of an array or map, block by block, each at least `item_min` bytes. (The loop of
/// `decode_blocks` without its offsets: one shared by both cost the decoder's arrays 0.25% more
/// instructions on the events, measured.)
fn blocks(
    cur: &mut Cursor<'_>,
    item_min: usize,
    mut item: impl FnMut(&mut Cursor<'_>) -> Result<(), Fault>,
) -> Result<(), Fault> {
    loop {
        let (count, _) = cur.block_count()?;
        if count == 0 {
            return Ok(());
        }
        check_count(count, item_min, cur)?;
        for _ in 0..count {
            item(cur)?;
        }
    }
}

fn number(out: &mut Vec<u8>, v: impl std::fmt::Display) {
    use std::io::Write;
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{v}");
}

/// A finite float as a JSON number (`1.0`, `1e300`: Rust's shortest text that reads back as
/// the same float of its width), NaN and the infinities as strings.
fn float<F: Into<f64> + std::fmt::Debug + Copy>(out: &mut Vec<u8>, value: F) {
    use std::io::Write;
    let v: f64 = value.into();
    if v.is_nan() {
        out.extend_from_slice(b"\"NaN\"");
    } else if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 {
            b"\"Infinity\""
        } else {
            b"\"-Infinity\""
        });
    } else {
        // Writing to a Vec cannot fail.
        let _ = write!(out, "{value:?}");
    }
}

/// `text` as a JSON string: `"` and `\` escaped, control characters as `\uXXXX` (or `\n`, ...).
fn string(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// `bytes` in base64 (RFC 4648's alphabet, padded), as a JSON string.
fn base64(out: &mut Vec<u8>, bytes: &[u8]) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    out.push(b'"');
    let mut chunks = bytes.chunks_exact(3);
    for c in &mut chunks {
        let n = u32::from(c[0]) << 16 | u32::from(c[1]) << 8 | u32::from(c[2]);
        for shift in [18, 12, 6, 0] {
            out.push(ALPHABET[(n >> shift & 63) as usize]);
        }
    }
    match *chunks.remainder() {
        [a] => {
            let n = u32::from(a) << 16;
            out.extend_from_slice(&[
                ALPHABET[(n >> 18) as usize],
                ALPHABET[(n >> 12 & 63) as usize],
            ]);
            out.extend_from_slice(b"==");
        }
        [a, b] => {
            let n = u32::from(a) << 16 | u32::from(b) << 8;
            for shift in [18, 12, 6] {
                out.push(ALPHABET[(n >> shift & 63) as usize]);
            }
            out.push(b'=');
        }
        _ => {}
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::avro::cursor::encode_long;

    fn json(schema: &str, datum: &[u8]) -> Result<String, Fault> {
        let schema = Schema::parse_str(schema).unwrap();
        let mut cur = Cursor::new(datum);
        let mut out = Vec::new();
        write_json(&schema, &mut cur, &mut out, 0)?;
        assert_eq!(cur.remaining(), 0);
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn strings_escape_and_bytes_are_base64() {
        let mut datum = Vec::new();
        let text = "a\"b\\c\nd\u{1}é";
        encode_long(text.len() as i64, &mut datum);
        datum.extend_from_slice(text.as_bytes());
        assert_eq!(
            json(r#""string""#, &datum).unwrap(),
            r#""a\"b\\c\nd\u0001é""#
        );
        for (bytes, want) in [
            (&b""[..], r#""""#),
            (b"f", r#""Zg==""#),
            (b"fo", r#""Zm8=""#),
            (b"foo", r#""Zm9v""#),
            (b"foob", r#""Zm9vYg==""#),
            (&[0xff, 0xfe, 0x00][..], r#""//4A""#),
        ] {
            let mut datum = Vec::new();
            encode_long(bytes.len() as i64, &mut datum);
            datum.extend_from_slice(bytes);
            assert_eq!(json(r#""bytes""#, &datum).unwrap(), want);
        }
        let err = json(r#""string""#, &[0x02, 0xff, 0xfe]).unwrap_err();
        assert_eq!(err, Box::new(ValueError::Utf8));
    }

    #[test]
    fn decimals_are_their_exact_text() {
        // -1234.50: unscaled -123450 (0xfe1dc6) at scale 2, as a decimal and a big-decimal.
        let decimal = r#"{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}"#;
        assert_eq!(
            json(decimal, &[0x06, 0xfe, 0x1d, 0xc6]).unwrap(),
            r#""-1234.50""#
        );
        let big = r#"{"type":"bytes","logicalType":"big-decimal"}"#;
        let datum = [0x0a, 0x06, 0xfe, 0x1d, 0xc6, 0x04];
        assert_eq!(json(big, &datum).unwrap(), r#""-1234.50""#);
        // 5 at scale -3.
        assert_eq!(json(big, &[0x06, 0x02, 0x05, 0x05]).unwrap(), r#""5000""#);
        let err = json(big, &[0x04, 0x02, 0x05]).unwrap_err();
        assert_eq!(
            err,
            Box::new(ValueError::BigDecimal("its scale is missing or malformed"))
        );
    }

    #[test]
    fn floats_are_numbers_or_named_strings() {
        let double = |v: f64| json(r#""double""#, &v.to_le_bytes()).unwrap();
        assert_eq!(double(1.0), "1.0");
        assert_eq!(double(0.1), "0.1");
        assert_eq!(double(1e300), "1e300");
        assert_eq!(double(f64::NAN), r#""NaN""#);
        assert_eq!(double(f64::NEG_INFINITY), r#""-Infinity""#);
        assert_eq!(json(r#""float""#, &0.1f32.to_le_bytes()).unwrap(), "0.1");
    }

    #[test]
    fn a_linked_list_nests_until_its_bound() {
        let schema = r#"{"type":"record","name":"L","fields":[
            {"name":"v","type":"int"},{"name":"next","type":["null","L"]}]}"#;
        // v=1 -> v=2 -> null
        let datum = [0x02, 0x02, 0x04, 0x00];
        assert_eq!(
            json(schema, &datum).unwrap(),
            r#"{"v":1,"next":{"v":2,"next":null}}"#
        );
        // A chain deeper than the bound fails, without exhausting the stack.
        let mut deep = Vec::new();
        for _ in 0..100_000 {
            deep.extend_from_slice(&[0x02, 0x02]);
        }
        deep.extend_from_slice(&[0x02, 0x00]);
        let schema = Schema::parse_str(schema).unwrap();
        let err = write_json(&schema, &mut Cursor::new(&deep), &mut Vec::new(), 0).unwrap_err();
        assert_eq!(err, Box::new(ValueError::TooDeep(MAX_DEPTH)));
    }
}
