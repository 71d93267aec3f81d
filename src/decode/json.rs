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
//!
//! Read with a reader schema other than the writer's, the JSON is the reader's record
//! ([`write_resolved_record`]): resolved as `decode::resolve` resolves columns, which checked the
//! pair when the plan was made.

use crate::avro::cursor::Cursor;
use crate::avro::schema::{Record, Schema};

use super::resolve;

use super::{
    Fault, ValueError, big_decimal_text, branch, check_count, decimal_bytes, decimal_text,
    format_uuid, rescaled,
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
            array(cur, items.min_encoded_size(), out, |cur, out| {
                write_json(items, cur, out, depth)
            })?;
        }
        Schema::Map(values) => {
            let depth = deeper(depth)?;
            map(cur, values.min_encoded_size(), out, |cur, out| {
                write_json(values, cur, out, depth)
            })?;
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

/// Reads one datum of the writer's recursive record `w` and appends it to `out` as JSON of the
/// reader's record `r` (schema resolution; see [`write_resolved`]).
pub(crate) fn write_resolved_record(
    w: &Record,
    r: &Record,
    cur: &mut Cursor<'_>,
    out: &mut Vec<u8>,
) -> Result<(), Fault> {
    resolved_record(w, r, cur, out, 1)
}

/// Reads one datum written as `w` and appends it to `out` as the JSON of the reader's `r`, as
/// `decode::resolve` reads it into columns (the pair was checked there when the plan was
/// made): fields by name or alias, in the reader's order, a reader field the writer lacks as
/// its default, a writer field the reader lacks read past; enum symbols by name or the reader's
/// default; union branches as Java's Avro picks them; numbers promoted (an int or long read as
/// a float or double is written as one); strings and bytes each as the other; times and
/// timestamps in the reader's unit.
fn write_resolved(
    w: &Schema,
    r: &Schema,
    cur: &mut Cursor<'_>,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<(), Fault> {
    if let Schema::Union(wb) = w {
        let b = branch(cur.long()?, wb)?;
        return write_resolved(b, r, cur, out, deeper(depth)?);
    }
    if let Schema::Union(rb) = r {
        return match reader_branch(w, rb) {
            Some(b) => write_resolved(w, b, cur, out, deeper(depth)?),
            None => Err(unresolved(w, r)),
        };
    }
    // Named types of other names (a writer union's branch that the reader's type is not)
    // fail the record, as their column ops do.
    if w.name().is_some() && r.name().is_some() && !resolve::same_kind(w, r) {
        return Err(unresolved(w, r));
    }
    if let (Some(wr), Some(rr)) = (resolve::record_of(w), resolve::record_of(r)) {
        return resolved_record(&wr, &rr, cur, out, depth);
    }
    match (w, r) {
        (Schema::Null, Schema::Null) => out.extend_from_slice(b"null"),
        (_, Schema::Null) => {
            // The reader holds nothing of it: read past.
            write_json(w, cur, &mut Vec::new(), depth)?;
            out.extend_from_slice(b"null");
        }
        (Schema::Enum(we), Schema::Enum(re)) => {
            let index = cur.long()?;
            let symbol = usize::try_from(index)
                .ok()
                .and_then(|i| we.symbols.get(i))
                .ok_or(ValueError::EnumIndex {
                    index,
                    symbols: we.symbols.len(),
                })?;
            let read = if re.symbols.contains(symbol) {
                symbol
            } else {
                re.default
                    .as_ref()
                    .filter(|d| re.symbols.contains(d))
                    .ok_or_else(|| unresolved(w, r))?
            };
            string(out, read);
        }
        (Schema::Array(wi), Schema::Array(ri)) => {
            let depth = deeper(depth)?;
            array(cur, wi.min_encoded_size(), out, |cur, out| {
                write_resolved(wi, ri, cur, out, depth)
            })?;
        }
        (Schema::Map(wv), Schema::Map(rv)) => {
            let depth = deeper(depth)?;
            map(cur, wv.min_encoded_size(), out, |cur, out| {
                write_resolved(wv, rv, cur, out, depth)
            })?;
        }
        // A time or timestamp in the reader's unit.
        (Schema::TimeMillis, Schema::TimeMicros) => number(out, i64::from(cur.int()?) * 1000),
        (w, r) if resolve::is_long(w) && resolve::is_long(r) => {
            let raw = cur.long()?;
            match resolve::rescale(resolve::unit(w).or(resolve::unit(r)), resolve::unit(r)) {
                Some((mul, div)) => number(out, rescaled(raw, mul, div)?),
                None => number(out, raw),
            }
        }
        // Promotions: an int or long read as a float or double is one; a float as a double.
        (w, Schema::Float) if resolve::is_int(w) => float(out, cur.int()? as f32),
        (w, Schema::Double) if resolve::is_int(w) => float(out, f64::from(cur.int()?)),
        (w, Schema::Float) if resolve::is_long(w) => float(out, cur.long()? as f32),
        (w, Schema::Double) if resolve::is_long(w) => float(out, cur.long()? as f64),
        (Schema::Float, Schema::Double) => float(out, f64::from(cur.float()?)),
        // A string read as bytes is its bytes (base64); bytes read as a string, text.
        (Schema::String | Schema::Uuid(None), Schema::Bytes) => base64(out, cur.bytes()?),
        // Text (or bytes) read as a uuid on a fixed is the text, too.
        (Schema::Bytes, Schema::String | Schema::Uuid(None))
        | (Schema::String | Schema::Uuid(None) | Schema::Bytes, Schema::Uuid(Some(_))) => {
            write_json(&Schema::String, cur, out, depth)?
        }
        // A uuid on a fixed read as text is its 36-character form.
        (Schema::Uuid(Some(_)), Schema::String | Schema::Uuid(_)) => {
            write_json(w, cur, out, depth)?
        }
        // The same encoding (an int as an int or a date, a long as a long; bytes as a decimal;
        // a fixed as a fixed of its size): the reader's reading of it.
        (w, r) if same_encoding(w, r) => write_json(r, cur, out, depth)?,
        // A writer union's branch that the reader cannot read (a lenient plan fails only the
        // records that hold it).
        _ => return Err(unresolved(w, r)),
    }
    Ok(())
}

/// Whether a datum of `w` is one of the reader's `r` as encoded: the same primitive type, an
/// int read as a long, a fixed of the same size (named types were matched with the plan).
fn same_encoding(w: &Schema, r: &Schema) -> bool {
    let (wt, rt) = (w.type_name(), r.type_name());
    match (wt, rt) {
        ("fixed", "fixed") => w.min_encoded_size() == r.min_encoded_size(),
        ("int", "long") => true,
        (wt, rt) => {
            wt == rt
                && matches!(
                    wt,
                    "boolean" | "int" | "long" | "float" | "double" | "bytes" | "string"
                )
        }
    }
}

/// A writer's record read as the reader's: its fields in the writer's order, each into the
/// reader field it matches, then written in the reader's order, with defaults.
fn resolved_record(
    w: &Record,
    r: &Record,
    cur: &mut Cursor<'_>,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<(), Fault> {
    let depth = deeper(depth)?;
    let mut used = vec![false; r.fields.len()];
    let mut values: Vec<Vec<u8>> = vec![Vec::new(); r.fields.len()];
    for wf in &w.fields {
        match resolve::reader_field(&wf.name, r, &used) {
            Some(j) => {
                used[j] = true;
                write_resolved(&wf.schema, &r.fields[j].schema, cur, &mut values[j], depth)?;
            }
            None => write_json(&wf.schema, cur, &mut Vec::new(), depth)?,
        }
    }
    out.push(b'{');
    for (j, rf) in r.fields.iter().enumerate() {
        if j > 0 {
            out.push(b',');
        }
        string(out, &rf.name);
        out.push(b':');
        if used[j] {
            out.extend_from_slice(&values[j]);
            continue;
        }
        // The reader's default, encoded, then read as any value (checked with the plan).
        let default = rf
            .default
            .as_ref()
            .ok_or(ValueError::Internal("a reader field without default"))?;
        let mut bytes = Vec::new();
        resolve::encode_default(&rf.schema, default, &mut bytes, 0)
            .map_err(|_| ValueError::Internal("a reader default that does not encode"))?;
        write_json(&rf.schema, &mut Cursor::new(&bytes), out, depth)?;
    }
    out.push(b'}');
    Ok(())
}

/// The branch of the reader's union a writer's (non-union) `w` is read as, as
/// `decode::resolve` picks it: `null` for null; a named type of the same full name; the first
/// of the same type (named ones by name or alias); the first it is promoted to without loss
/// (int to long or double, long or float to double, string and bytes to each other); then a
/// float.
fn reader_branch<'a>(w: &Schema, rb: &'a [Schema]) -> Option<&'a Schema> {
    if matches!(w, Schema::Null) {
        return rb.iter().find(|b| matches!(b, Schema::Null));
    }
    let promoted = |lossy: bool| {
        rb.iter().find(|b| {
            let (wt, bt) = (w.type_name(), b.type_name());
            let to_float = bt == "float" && matches!(wt, "int" | "long");
            to_float == lossy
                && match (wt, bt) {
                    ("int", "long" | "float" | "double") | ("long", "float" | "double") => true,
                    ("float", "double") => true,
                    ("string", "bytes") | ("bytes", "string") => true,
                    // A uuid on a fixed and text, each read as the other.
                    ("fixed", "string") => matches!(w, Schema::Uuid(Some(_))),
                    ("string" | "bytes", "fixed") => matches!(b, Schema::Uuid(Some(_))),
                    _ => false,
                }
        })
    };
    resolve::same_branch(w, rb.iter())
        .map(|k| &rb[k])
        .or_else(|| promoted(false))
        .or_else(|| promoted(true))
}

fn unresolved(w: &Schema, r: &Schema) -> Fault {
    ValueError::Resolution(
        format!(
            "a value of the writer's {} inside a recursive type has no reader counterpart {}",
            w.type_name(),
            r.type_name()
        )
        .into(),
    )
    .into()
}

fn deeper(depth: usize) -> Result<usize, Fault> {
    if depth >= MAX_DEPTH {
        return Err(ValueError::TooDeep(MAX_DEPTH).into());
    }
    Ok(depth + 1)
}

/// An array's items (each at least `item_min` bytes, written by `item`) as a JSON array.
fn array(
    cur: &mut Cursor<'_>,
    item_min: usize,
    out: &mut Vec<u8>,
    mut item: impl FnMut(&mut Cursor<'_>, &mut Vec<u8>) -> Result<(), Fault>,
) -> Result<(), Fault> {
    out.push(b'[');
    let mut first = true;
    blocks(cur, item_min, |cur| {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        item(cur, out)
    })?;
    out.push(b']');
    Ok(())
}

/// A map's entries (their values each at least `value_min` bytes, written by `value`) as a
/// JSON object, in the encoded order.
fn map(
    cur: &mut Cursor<'_>,
    value_min: usize,
    out: &mut Vec<u8>,
    mut value: impl FnMut(&mut Cursor<'_>, &mut Vec<u8>) -> Result<(), Fault>,
) -> Result<(), Fault> {
    out.push(b'{');
    let mut first = true;
    blocks(cur, 1 + value_min, |cur| {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        let key = simdutf8::basic::from_utf8(cur.bytes()?).map_err(|_| ValueError::Utf8)?;
        string(out, key);
        out.push(b':');
        value(cur, out)
    })?;
    out.push(b'}');
    Ok(())
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
