//! Parsing Canonical Form and the CRC-64-AVRO (Rabin) fingerprint of schemas.
//!
//! Stage: the registry. Producers name the writer schema of every event by its fingerprint; the
//! registry stores schemas under it. The value must equal Java's
//! `SchemaNormalization.parsingFingerprint64(schema)`, which the producers use, bit for bit.
//!
//! The canonical form is computed from the schema's JSON, not from the parsed [`super::Schema`],
//! so that it is exactly what the specification says whatever this crate can convert (recursive
//! types included). As in Java, everything but `type`, `name`, `fields`, `symbols`, `items`,
//! `values` and `size` is stripped: `logicalType`, `precision`, `scale`, `order`, `doc`,
//! `aliases`, `default` and unknown attributes do not change a fingerprint. (Some Rust
//! implementations keep logical-type attributes, and so disagree with Java on decimals.)

use std::collections::HashSet;

use serde_json::Value;

use super::schema::{SchemaError, name_of};

/// The CRC-64-AVRO seed: the fingerprint of the empty string.
const EMPTY: u64 = 0xc15d_213a_a4d7_a795;

/// The 256-entry table of the byte-at-a-time Rabin fingerprint.
const TABLE: [u64; 256] = {
    let mut table = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let mut fp = i as u64;
        let mut j = 0;
        while j < 8 {
            fp = (fp >> 1) ^ (EMPTY & (fp & 1).wrapping_neg());
            j += 1;
        }
        table[i] = fp;
        i += 1;
    }
    table
};

/// CRC-64-AVRO of `bytes`, as the unsigned 64 bits.
pub fn rabin(bytes: &[u8]) -> u64 {
    let mut fp = EMPTY;
    for b in bytes {
        fp = (fp >> 8) ^ TABLE[((fp ^ *b as u64) & 0xff) as usize];
    }
    fp
}

/// A schema's fingerprint as Java's `parsingFingerprint64` returns it (a signed long), which is
/// what the `schemaFingerprint` field of an envelope holds.
pub fn fingerprint(schema_json: &str) -> Result<i64, SchemaError> {
    Ok(rabin(canonical_form(schema_json)?.as_bytes()) as i64)
}

/// The Parsing Canonical Form of a schema given as JSON text.
pub fn canonical_form(schema_json: &str) -> Result<String, SchemaError> {
    let value: Value = serde_json::from_str(&super::schema::without_lone_surrogates(schema_json))?;
    canonical_form_of(&value)
}

/// The Parsing Canonical Form of a schema given as parsed JSON.
pub fn canonical_form_of(value: &Value) -> Result<String, SchemaError> {
    let mut out = String::new();
    let mut defined = HashSet::new();
    build(value, None, &mut defined, &mut out, "$", 0)?;
    Ok(out)
}

const PRIMITIVES: [&str; 8] = [
    "null", "boolean", "int", "long", "float", "double", "bytes", "string",
];

/// Deepest nesting accepted (the JSON parser bounds it too; this keeps the recursion bounded).
const MAX_DEPTH: usize = 1000;

fn invalid(path: &str, message: impl Into<String>) -> SchemaError {
    SchemaError::Invalid {
        path: path.to_string(),
        message: message.into(),
    }
}

fn quote(s: &str, out: &mut String) {
    // Names and symbols are identifiers; quoting as JSON keeps any other text well-formed.
    out.push_str(&Value::String(s.to_string()).to_string());
}

fn build(
    value: &Value,
    namespace: Option<&str>,
    defined: &mut HashSet<String>,
    out: &mut String,
    path: &str,
    depth: usize,
) -> Result<(), SchemaError> {
    if depth > MAX_DEPTH {
        return Err(SchemaError::TooLarge);
    }
    match value {
        Value::String(name) => {
            if PRIMITIVES.contains(&name.as_str()) {
                quote(name, out);
                return Ok(());
            }
            // A reference: the name in the enclosing namespace if defined there, else as written.
            let qualified = match namespace {
                Some(ns) if !name.contains('.') => format!("{ns}.{name}"),
                _ => name.clone(),
            };
            if defined.contains(&qualified) {
                quote(&qualified, out);
            } else if defined.contains(name) {
                quote(name, out);
            } else {
                return Err(invalid(path, format!("unknown type `{name}`")));
            }
            Ok(())
        }
        Value::Array(branches) => {
            out.push('[');
            for (i, b) in branches.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                build(
                    b,
                    namespace,
                    defined,
                    out,
                    &format!("{path}[{i}]"),
                    depth + 1,
                )?;
            }
            out.push(']');
            Ok(())
        }
        Value::Object(obj) => {
            let ty = obj
                .get("type")
                .ok_or_else(|| invalid(path, "object without `type`"))?;
            let ty = match ty {
                Value::String(s) => s.as_str(),
                // `{"type": {...}}`: a wrapped schema.
                other => return build(other, namespace, defined, out, path, depth + 1),
            };
            match ty {
                "record" | "error" | "enum" | "fixed" => {
                    let name = name_of(obj, namespace, path, false)?;
                    let (full, inner_ns) = (name.fullname(), name.namespace);
                    if !defined.insert(full.clone()) {
                        return Err(invalid(path, format!("type `{full}` is defined twice")));
                    }
                    out.push_str("{\"name\":");
                    quote(&full, out);
                    match ty {
                        "enum" => {
                            out.push_str(",\"type\":\"enum\",\"symbols\":[");
                            let symbols = obj
                                .get("symbols")
                                .and_then(Value::as_array)
                                .ok_or_else(|| invalid(path, "enum without `symbols`"))?;
                            for (i, s) in symbols.iter().enumerate() {
                                if i > 0 {
                                    out.push(',');
                                }
                                let s = s
                                    .as_str()
                                    .ok_or_else(|| invalid(path, "enum symbols must be strings"))?;
                                quote(s, out);
                            }
                            out.push(']');
                        }
                        "fixed" => {
                            let size =
                                obj.get("size").and_then(Value::as_u64).ok_or_else(|| {
                                    invalid(path, "fixed without a non-negative `size`")
                                })?;
                            out.push_str(&format!(",\"type\":\"fixed\",\"size\":{size}"));
                        }
                        _ => {
                            out.push_str(",\"type\":\"record\",\"fields\":[");
                            let fields = obj
                                .get("fields")
                                .and_then(Value::as_array)
                                .ok_or_else(|| invalid(path, "record without `fields`"))?;
                            for (i, f) in fields.iter().enumerate() {
                                if i > 0 {
                                    out.push(',');
                                }
                                let f = f
                                    .as_object()
                                    .ok_or_else(|| invalid(path, "field is not an object"))?;
                                let fname = f
                                    .get("name")
                                    .and_then(Value::as_str)
                                    .ok_or_else(|| invalid(path, "field without a `name`"))?;
                                let fpath = format!("{path}.{fname}");
                                let fty = f
                                    .get("type")
                                    .ok_or_else(|| invalid(&fpath, "field without `type`"))?;
                                out.push_str("{\"name\":");
                                quote(fname, out);
                                out.push_str(",\"type\":");
                                build(fty, inner_ns.as_deref(), defined, out, &fpath, depth + 1)?;
                                out.push('}');
                            }
                            out.push(']');
                        }
                    }
                    out.push('}');
                    Ok(())
                }
                "array" => {
                    let items = obj
                        .get("items")
                        .ok_or_else(|| invalid(path, "array without `items`"))?;
                    out.push_str("{\"type\":\"array\",\"items\":");
                    build(
                        items,
                        namespace,
                        defined,
                        out,
                        &format!("{path}[]"),
                        depth + 1,
                    )?;
                    out.push('}');
                    Ok(())
                }
                "map" => {
                    let values = obj
                        .get("values")
                        .ok_or_else(|| invalid(path, "map without `values`"))?;
                    out.push_str("{\"type\":\"map\",\"values\":");
                    build(
                        values,
                        namespace,
                        defined,
                        out,
                        &format!("{path}{{}}"),
                        depth + 1,
                    )?;
                    out.push('}');
                    Ok(())
                }
                // A primitive written as an object (logical types included): its name alone.
                p if PRIMITIVES.contains(&p) => {
                    quote(p, out);
                    Ok(())
                }
                // A named type referenced through `{"type": "Name"}`.
                other => build(
                    &Value::String(other.to_string()),
                    namespace,
                    defined,
                    out,
                    path,
                    depth + 1,
                ),
            }
        }
        other => Err(invalid(path, format!("expected a schema, found {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectors of the Avro project's `share/test/data/schema-tests.txt`, which the Java
    /// implementation checks against its own fingerprinting: (input, canonical form, fingerprint).
    const VECTORS: &[(&str, &str, Option<i64>)] = &[
        (r#""null""#, r#""null""#, Some(7195948357588979594)),
        (r#"{"type":"null"}"#, r#""null""#, None),
        (r#""boolean""#, r#""boolean""#, Some(-6970731678124411036)),
        (r#"{"type":"boolean"}"#, r#""boolean""#, None),
        (r#""int""#, r#""int""#, Some(8247732601305521295)),
        (r#"{"type":"int"}"#, r#""int""#, None),
        (r#""long""#, r#""long""#, Some(-3434872931120570953)),
        (r#"{"type":"long"}"#, r#""long""#, None),
        (r#""float""#, r#""float""#, Some(5583340709985441680)),
        (r#"{"type":"float"}"#, r#""float""#, None),
        (r#""double""#, r#""double""#, Some(-8181574048448539266)),
        (r#"{"type":"double"}"#, r#""double""#, None),
        (r#""bytes""#, r#""bytes""#, Some(5746618253357095269)),
        (r#"{"type":"bytes"}"#, r#""bytes""#, None),
        (r#""string""#, r#""string""#, Some(-8142146995180207161)),
        (r#"{"type":"string"}"#, r#""string""#, None),
        ("[  ]", "[]", Some(-1241056759729112623)),
        (r#"[ "int"  ]"#, r#"["int"]"#, Some(-5232228896498058493)),
        (
            r#"[ "int" , {"type":"boolean"} ]"#,
            r#"["int","boolean"]"#,
            Some(5392556393470105090),
        ),
        (
            r#"{"fields":[], "type":"record", "name":"foo"}"#,
            r#"{"name":"foo","type":"record","fields":[]}"#,
            Some(-4824392279771201922),
        ),
        (
            r#"{"fields":[], "type":"record", "name":"foo", "namespace":"x.y"}"#,
            r#"{"name":"x.y.foo","type":"record","fields":[]}"#,
            Some(5916914534497305771),
        ),
        (
            r#"{"fields":[], "type":"record", "name":"a.b.foo", "namespace":"x.y"}"#,
            r#"{"name":"a.b.foo","type":"record","fields":[]}"#,
            Some(-4616218487480524110),
        ),
        (
            r#"{"fields":[], "type":"record", "name":"foo", "doc":"Useful info"}"#,
            r#"{"name":"foo","type":"record","fields":[]}"#,
            Some(-4824392279771201922),
        ),
        (
            r#"{"fields":[], "type":"record", "name":"foo", "aliases":["foo","bar"]}"#,
            r#"{"name":"foo","type":"record","fields":[]}"#,
            Some(-4824392279771201922),
        ),
        (
            r#"{"fields":[], "type":"record", "name":"foo", "doc":"foo", "aliases":["foo","bar"]}"#,
            r#"{"name":"foo","type":"record","fields":[]}"#,
            Some(-4824392279771201922),
        ),
        (
            r#"{"fields":[{"type":{"type":"boolean"}, "name":"f1"}], "type":"record", "name":"foo"}"#,
            r#"{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"}]}"#,
            Some(7843277075252814651),
        ),
        (
            r#"{ "fields":[{"type":"boolean", "aliases":[], "name":"f1", "default":"true"},
                {"order":"descending","name":"f2","doc":"Hello","type":"int"}],
                "type":"record", "name":"foo" }"#,
            r#"{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"},{"name":"f2","type":"int"}]}"#,
            Some(-4860222112080293046),
        ),
        (
            r#"{"type":"enum", "name":"foo", "symbols":["A1"]}"#,
            r#"{"name":"foo","type":"enum","symbols":["A1"]}"#,
            Some(-6342190197741309591),
        ),
        (
            r#"{"namespace":"x.y.z", "type":"enum", "name":"foo", "doc":"foo bar", "symbols":["A1", "A2"]}"#,
            r#"{"name":"x.y.z.foo","type":"enum","symbols":["A1","A2"]}"#,
            Some(-4448647247586288245),
        ),
        (
            r#"{"name":"foo","type":"fixed","size":15}"#,
            r#"{"name":"foo","type":"fixed","size":15}"#,
            Some(1756455273707447556),
        ),
        (
            r#"{"namespace":"x.y.z", "type":"fixed", "name":"foo", "doc":"foo bar", "size":32}"#,
            r#"{"name":"x.y.z.foo","type":"fixed","size":32}"#,
            Some(-3064184465700546786),
        ),
        (
            r#"{ "items":{"type":"null"}, "type":"array"}"#,
            r#"{"type":"array","items":"null"}"#,
            Some(-589620603366471059),
        ),
        (
            r#"{ "values":"string", "type":"map"}"#,
            r#"{"type":"map","values":"string"}"#,
            Some(-8732877298790414990),
        ),
        (
            r#"{"name":"PigValue","type":"record",
                "fields":[{"name":"value", "type":["null", "int", "long", "PigValue"]}]}"#,
            r#"{"name":"PigValue","type":"record","fields":[{"name":"value","type":["null","int","long","PigValue"]}]}"#,
            Some(-1759257747318642341),
        ),
    ];

    #[test]
    fn specification_vectors() {
        for (input, canonical, fp) in VECTORS {
            assert_eq!(&canonical_form(input).unwrap(), canonical, "{input}");
            if let Some(fp) = fp {
                assert_eq!(fingerprint(input).unwrap(), *fp, "{input}");
            }
        }
    }

    #[test]
    fn decimals_order_and_logical_types_do_not_change_the_fingerprint() {
        // Java strips every attribute but the ones that define the encoding.
        let plain = r#"{"type":"record","name":"Payment","namespace":"com.acme","fields":[
            {"name":"amount","type":"bytes"},
            {"name":"price","type":{"type":"fixed","name":"Price","size":8}},
            {"name":"at","type":"long"},
            {"name":"id","type":"string"}]}"#;
        let annotated = r#"{"type":"record","name":"Payment","namespace":"com.acme","doc":"d",
            "fields":[
            {"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":12,"scale":2},"order":"descending"},
            {"name":"price","type":{"type":"fixed","name":"Price","size":8,"logicalType":"decimal","precision":18,"scale":4},"order":"ignore"},
            {"name":"at","type":{"type":"long","logicalType":"timestamp-millis"},"default":0},
            {"name":"id","type":{"type":"string","logicalType":"uuid"},"aliases":["uid"]}]}"#;
        assert_eq!(
            canonical_form(annotated).unwrap(),
            r#"{"name":"com.acme.Payment","type":"record","fields":[{"name":"amount","type":"bytes"},{"name":"price","type":{"name":"com.acme.Price","type":"fixed","size":8}},{"name":"at","type":"long"},{"name":"id","type":"string"}]}"#
        );
        assert_eq!(fingerprint(plain).unwrap(), fingerprint(annotated).unwrap());
        // fastavro's `fingerprint(to_parsing_canonical_form(..), "CRC-64-AVRO")` gives the same
        // 64 bits (it prints them little-endian: 0a3c16c376269275).
        assert_eq!(fingerprint(annotated).unwrap(), 8471876140558334986);
    }

    #[test]
    fn references_use_full_names_and_nested_namespaces() {
        let s = r#"{"type":"record","name":"Outer","namespace":"a","fields":[
            {"name":"x","type":{"type":"enum","name":"E","symbols":["P"]}},
            {"name":"y","type":"E"},
            {"name":"z","type":{"type":"record","name":"b.Inner","fields":[
                {"name":"w","type":{"type":"fixed","name":"F","size":2}},
                {"name":"v","type":"F"},
                {"name":"u","type":"a.E"}]}}]}"#;
        assert_eq!(
            canonical_form(s).unwrap(),
            r#"{"name":"a.Outer","type":"record","fields":[{"name":"x","type":{"name":"a.E","type":"enum","symbols":["P"]}},{"name":"y","type":"a.E"},{"name":"z","type":{"name":"b.Inner","type":"record","fields":[{"name":"w","type":{"name":"b.F","type":"fixed","size":2}},{"name":"v","type":"b.F"},{"name":"u","type":"a.E"}]}}]}"#
        );
    }

    #[test]
    fn errors_are_errors() {
        for s in ["{}", r#""Nope""#, "12", r#"{"type":"enum","name":"e"}"#] {
            assert!(canonical_form(s).is_err(), "{s}");
        }
    }
}
