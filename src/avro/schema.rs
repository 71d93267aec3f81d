//! Avro schemas: parsed from JSON into a tree the decoder plans from.
//!
//! Stage: the first step of decoding. The writer schema stored in a container file header (or,
//! later, fetched from the registry) is parsed here once, then compiled into a decode plan by
//! [`crate::decode`].
//!
//! What it does:
//! - resolves names and namespaces per the specification; named types (record, enum, fixed) are
//!   shared through `Arc`, so a type used in many places is parsed once;
//! - recognises the logical types of the specification. As the specification requires, a logical
//!   type that is unknown or invalid for its base type (a decimal whose scale exceeds its precision,
//!   a uuid on an int, ...) is ignored and the base type is used.
//!
//! - a record's reference to itself from inside its own definition (a recursive type, such as
//!   the Avro interop schema's `Node`, whose `children` are `Node`s) is a
//!   [`Schema::Recursive`]: it holds the record weakly (the tree owns it), so that every walk of
//!   the tree ends there. Parquet has no recursive types: the decoder stores such a value as JSON
//!   text.
//!
//! Limitations:
//! - a schema that expands to more than [`MAX_NODES`] nodes is refused (a hostile header cannot
//!   make the planner build millions of columns).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Weak};

use serde_json::{Map, Value};

/// The most nodes a schema may expand to (named types counted at every use).
pub const MAX_NODES: usize = 100_000;

/// How deep serde_json nests arrays and objects before it stops (its recursion limit).
pub const JSON_DEPTH: usize = 128;

/// Errors found while parsing a schema.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The text is not JSON.
    #[error("schema is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Valid JSON nested deeper than the JSON parser goes.
    #[error(
        "schema nests deeper than the {JSON_DEPTH} levels of JSON that parqour reads (about {} \
         levels of optional records, each 4 levels of JSON: its object, `fields`, a field and \
         the union)",
        JSON_DEPTH / 4
    )]
    TooDeep,
    /// The JSON is not a valid Avro schema.
    #[error("invalid Avro schema at {path}: {message}")]
    Invalid {
        /// Where in the schema (dotted path of names).
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The schema expands to too many nodes.
    #[error("schema expands to more than {MAX_NODES} nodes")]
    TooLarge,
}

/// A parsed Avro schema.
#[derive(Debug, Clone, PartialEq)]
pub enum Schema {
    /// `null`
    Null,
    /// `boolean`
    Boolean,
    /// `int`
    Int,
    /// `long`
    Long,
    /// `float`
    Float,
    /// `double`
    Double,
    /// `bytes`
    Bytes,
    /// `string`
    String,
    /// `array` of the item schema.
    Array(Box<Schema>),
    /// `map` with string keys and the value schema.
    Map(Box<Schema>),
    /// A union of the branches, in declaration order.
    Union(Vec<Schema>),
    /// A named record.
    Record(Arc<Record>),
    /// A named enum.
    Enum(Arc<Enum>),
    /// A named fixed.
    Fixed(Arc<Fixed>),
    /// `decimal` on `bytes` or `fixed`.
    Decimal(Decimal),
    /// `big-decimal` on `bytes` (Avro 1.12, Java's and Rust's implementations): a decimal whose
    /// scale is in each value (the value's bytes hold the unscaled value as Avro `bytes`, then
    /// the scale as an Avro `int`), of no fixed precision.
    BigDecimal,
    /// `uuid` on `string` (`fixed: None`) or `fixed(16)`.
    Uuid(Option<Arc<Fixed>>),
    /// `date` on `int`: days since the epoch.
    Date,
    /// `time-millis` on `int`.
    TimeMillis,
    /// `time-micros` on `long`.
    TimeMicros,
    /// `timestamp-millis` on `long`.
    TimestampMillis,
    /// `timestamp-micros` on `long`.
    TimestampMicros,
    /// `timestamp-nanos` on `long`.
    TimestampNanos,
    /// `local-timestamp-millis` on `long`.
    LocalTimestampMillis,
    /// `local-timestamp-micros` on `long`.
    LocalTimestampMicros,
    /// `local-timestamp-nanos` on `long`.
    LocalTimestampNanos,
    /// `duration` on `fixed(12)`.
    Duration(Arc<Fixed>),
    /// A reference to a record from inside its own definition (a recursive type).
    Recursive(RecursiveRef),
}

/// A record referred to from inside its own definition. The record is held weakly: the tree
/// that defines it owns it (a strong reference would be a cycle, never freed).
#[derive(Debug, Clone)]
pub struct RecursiveRef {
    /// The record's name.
    pub name: Name,
    record: Weak<Record>,
}

impl RecursiveRef {
    /// The record, while a schema that holds it is alive.
    pub fn record(&self) -> Option<Arc<Record>> {
        self.record.upgrade()
    }
}

impl PartialEq for RecursiveRef {
    /// By name: two recursive references are equal where their records' names are (their
    /// records are compared where they are defined).
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

/// A fully qualified Avro name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Name {
    /// The simple name.
    pub name: String,
    /// The namespace, if any.
    pub namespace: Option<String>,
}

impl Name {
    /// A full name (`a.b.C`) split at its last dot.
    pub fn parse(full: &str) -> Name {
        match full.rsplit_once('.') {
            Some((ns, name)) => Name {
                name: name.to_string(),
                namespace: Some(ns.to_string()),
            },
            None => Name {
                name: full.to_string(),
                namespace: None,
            },
        }
    }

    /// `namespace.name`, or `name` without a namespace.
    pub fn fullname(&self) -> String {
        match &self.namespace {
            Some(ns) if !ns.is_empty() => format!("{ns}.{}", self.name),
            _ => self.name.clone(),
        }
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.fullname())
    }
}

/// A record type.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Its name.
    pub name: Name,
    /// Alternative names.
    pub aliases: Vec<String>,
    /// Its fields, in order.
    pub fields: Vec<RecordField>,
}

/// One field of a record.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordField {
    /// Field name.
    pub name: String,
    /// Field schema.
    pub schema: Schema,
    /// Default value as written in the schema (used by schema resolution).
    pub default: Option<Value>,
    /// Alternative names.
    pub aliases: Vec<String>,
}

/// An enum type.
#[derive(Debug, Clone, PartialEq)]
pub struct Enum {
    /// Its name.
    pub name: Name,
    /// Alternative names.
    pub aliases: Vec<String>,
    /// Symbols, in order.
    pub symbols: Vec<String>,
    /// The reader default symbol, if any.
    pub default: Option<String>,
}

/// A fixed type.
#[derive(Debug, Clone, PartialEq)]
pub struct Fixed {
    /// Its name.
    pub name: Name,
    /// Alternative names.
    pub aliases: Vec<String>,
    /// Size in bytes.
    pub size: usize,
}

/// A decimal logical type.
#[derive(Debug, Clone, PartialEq)]
pub struct Decimal {
    /// Total digits.
    pub precision: usize,
    /// Digits after the point.
    pub scale: usize,
    /// `None` for `bytes`, `Some` for `fixed`.
    pub fixed: Option<Arc<Fixed>>,
}

impl Schema {
    /// Parses a schema from its JSON text, as a reader of data takes it: names need not follow
    /// the specification's pattern (`[A-Za-z_][A-Za-z0-9_]*`), as Java's file reader does not
    /// check them either (polars names its records `""`; Python's writers take field names
    /// such as `my-field` or `café`). A field still needs a name, and names must not repeat.
    pub fn parse_str(json: &str) -> Result<Schema, SchemaError> {
        Self::parse_value(&Self::json(json)?, false)
    }

    /// Parses a schema from its JSON text, holding names to the specification's pattern: for
    /// schemas parqour publishes.
    pub fn parse_str_strict(json: &str) -> Result<Schema, SchemaError> {
        Self::parse_value(&Self::json(json)?, true)
    }

    fn json(json: &str) -> Result<Value, SchemaError> {
        serde_json::from_str(&without_lone_surrogates(json)).map_err(|e| {
            // (serde_json has no error kind for it; its message is stable.)
            if e.is_syntax() && e.to_string().starts_with("recursion limit exceeded") {
                SchemaError::TooDeep
            } else {
                SchemaError::Json(e)
            }
        })
    }

    /// Parses a schema from JSON (names as [`Schema::parse_str`] takes them).
    pub fn parse(value: &Value) -> Result<Schema, SchemaError> {
        Self::parse_value(value, false)
    }

    fn parse_value(value: &Value, strict: bool) -> Result<Schema, SchemaError> {
        let mut parser = Parser {
            strict,
            ..Parser::default()
        };
        parser.parse(value, None, "$")
    }

    /// The Avro type name of the underlying (non-logical) type: `int`, `record`, ...
    pub fn type_name(&self) -> &'static str {
        match self {
            Schema::Null => "null",
            Schema::Boolean => "boolean",
            Schema::Int | Schema::Date | Schema::TimeMillis => "int",
            Schema::Long
            | Schema::TimeMicros
            | Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos => "long",
            Schema::Float => "float",
            Schema::Double => "double",
            Schema::Bytes | Schema::BigDecimal => "bytes",
            Schema::String => "string",
            Schema::Array(_) => "array",
            Schema::Map(_) => "map",
            Schema::Union(_) => "union",
            Schema::Record(_) | Schema::Recursive(_) => "record",
            Schema::Enum(_) => "enum",
            Schema::Fixed(_) | Schema::Duration(_) => "fixed",
            Schema::Decimal(d) => {
                if d.fixed.is_some() {
                    "fixed"
                } else {
                    "bytes"
                }
            }
            Schema::Uuid(f) => {
                if f.is_some() {
                    "fixed"
                } else {
                    "string"
                }
            }
        }
    }

    /// The name of a named type (record, enum, fixed, or a logical type on fixed).
    pub fn name(&self) -> Option<&Name> {
        match self {
            Schema::Record(r) => Some(&r.name),
            Schema::Recursive(r) => Some(&r.name),
            Schema::Enum(e) => Some(&e.name),
            Schema::Fixed(f) | Schema::Duration(f) | Schema::Uuid(Some(f)) => Some(&f.name),
            Schema::Decimal(Decimal { fixed: Some(f), .. }) => Some(&f.name),
            _ => None,
        }
    }

    /// The smallest number of bytes one datum of this schema takes when encoded. Used to bound
    /// counts read from untrusted input before anything is allocated for them.
    pub fn min_encoded_size(&self) -> usize {
        match self {
            Schema::Null => 0,
            Schema::Boolean
            | Schema::Int
            | Schema::Long
            | Schema::Bytes
            | Schema::BigDecimal
            | Schema::String
            | Schema::Array(_)
            | Schema::Map(_)
            | Schema::Union(_)
            | Schema::Enum(_)
            | Schema::Date
            | Schema::TimeMillis
            | Schema::TimeMicros
            | Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos
            | Schema::Uuid(None) => 1,
            // A record that holds itself does so through a union, an array or a map (at least
            // a byte), or directly (no datum is finite): at least a byte either way.
            Schema::Recursive(_) => 1,
            Schema::Float => 4,
            Schema::Double => 8,
            Schema::Record(r) => r.fields.iter().map(|f| f.schema.min_encoded_size()).sum(),
            Schema::Fixed(f) | Schema::Duration(f) | Schema::Uuid(Some(f)) => f.size,
            Schema::Decimal(d) => d.fixed.as_ref().map_or(1, |f| f.size),
        }
    }
}

/// `json` with each `\u` escape of a lone UTF-16 surrogate replaced by `\ufffd`. Python's
/// `json.dumps` writes a string holding one (text decoded with `surrogateescape`, say) so,
/// and Java's and Python's Avro readers take such schemas; serde_json refuses them ("unexpected
/// end of hex escape"). Only escapes are looked at: backslashes appear only in strings.
pub(crate) fn without_lone_surrogates(json: &str) -> std::borrow::Cow<'_, str> {
    fn hex4(b: &[u8]) -> Option<u32> {
        let digits = b.get(..4)?;
        let text = std::str::from_utf8(digits).ok()?;
        u32::from_str_radix(text, 16).ok()
    }
    let b = json.as_bytes();
    if !b.windows(2).any(|w| w == b"\\u") {
        return std::borrow::Cow::Borrowed(json);
    }
    let (mut out, mut copied, mut i) = (String::new(), 0, 0);
    while i < b.len() {
        if b[i] != b'\\' {
            i += 1;
            continue;
        }
        if b.get(i + 1) != Some(&b'u') {
            i += 2; // `\\`, `\"`, ...: the escaped character is no escape's start
            continue;
        }
        let Some(unit) = hex4(&b[i + 2..]) else {
            i += 2;
            continue;
        };
        let low = |at: usize| {
            b.get(at..at + 2) == Some(b"\\u")
                && hex4(&b[at + 2..]).is_some_and(|u| (0xDC00..0xE000).contains(&u))
        };
        match unit {
            0xD800..=0xDBFF if low(i + 6) => i += 12,
            0xD800..=0xDFFF => {
                out.push_str(&json[copied..i]);
                out.push_str("\\ufffd");
                i += 6;
                copied = i;
            }
            _ => i += 6,
        }
    }
    if copied == 0 {
        return std::borrow::Cow::Borrowed(json);
    }
    out.push_str(&json[copied..]);
    std::borrow::Cow::Owned(out)
}

const PRIMITIVES: [&str; 8] = [
    "null", "boolean", "int", "long", "float", "double", "bytes", "string",
];

#[derive(Default)]
struct Parser {
    /// Named types defined so far, by full name.
    named: HashMap<String, Schema>,
    /// The records being defined, by full name: a reference to one is recursive.
    defining: Vec<(String, Weak<Record>)>,
    nodes: usize,
    /// Names must follow the specification's pattern.
    strict: bool,
}

fn invalid(path: &str, message: impl Into<String>) -> SchemaError {
    SchemaError::Invalid {
        path: path.to_string(),
        message: message.into(),
    }
}

/// Whether `name` follows the specification's pattern for names; without `strict`, any name
/// but the empty one (which only a named type may have: it is never a column's).
fn valid_name(name: &str, strict: bool) -> bool {
    if !strict {
        return !name.is_empty();
    }
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Parser {
    fn count(&mut self) -> Result<(), SchemaError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(SchemaError::TooLarge);
        }
        Ok(())
    }

    fn parse(
        &mut self,
        value: &Value,
        namespace: Option<&str>,
        path: &str,
    ) -> Result<Schema, SchemaError> {
        self.count()?;
        match value {
            Value::String(name) => self.reference(name, namespace, path),
            Value::Array(branches) => {
                let mut out = Vec::with_capacity(branches.len());
                for (i, b) in branches.iter().enumerate() {
                    let s = self.parse(b, namespace, &format!("{path}[{i}]"))?;
                    if matches!(s, Schema::Union(_)) {
                        return Err(invalid(path, "a union may not directly contain a union"));
                    }
                    out.push(s);
                }
                Ok(Schema::Union(out))
            }
            Value::Object(obj) => self.complex(obj, namespace, path),
            other => Err(invalid(path, format!("expected a schema, found {other}"))),
        }
    }

    fn reference(
        &mut self,
        name: &str,
        namespace: Option<&str>,
        path: &str,
    ) -> Result<Schema, SchemaError> {
        match name {
            "null" => return Ok(Schema::Null),
            "boolean" => return Ok(Schema::Boolean),
            "int" => return Ok(Schema::Int),
            "long" => return Ok(Schema::Long),
            "float" => return Ok(Schema::Float),
            "double" => return Ok(Schema::Double),
            "bytes" => return Ok(Schema::Bytes),
            "string" => return Ok(Schema::String),
            _ => {}
        }
        let full = qualify(name, namespace);
        let candidates = [full.clone(), name.to_string()];
        for c in &candidates {
            if let Some((_, record)) = self.defining.iter().find(|(n, _)| n == c) {
                let name = Name::parse(c);
                return Ok(Schema::Recursive(RecursiveRef {
                    name,
                    record: record.clone(),
                }));
            }
            if let Some(s) = self.named.get(c) {
                return Ok(s.clone());
            }
        }
        Err(invalid(path, format!("unknown type `{name}`")))
    }

    fn define(&mut self, name: &Name, schema: &Schema, path: &str) -> Result<(), SchemaError> {
        let full = name.fullname();
        if PRIMITIVES.contains(&full.as_str()) {
            return Err(invalid(path, format!("`{full}` is a primitive type name")));
        }
        if self.named.insert(full.clone(), schema.clone()).is_some() {
            return Err(invalid(path, format!("type `{full}` is defined twice")));
        }
        Ok(())
    }

    fn complex(
        &mut self,
        obj: &Map<String, Value>,
        namespace: Option<&str>,
        path: &str,
    ) -> Result<Schema, SchemaError> {
        let ty = obj
            .get("type")
            .ok_or_else(|| invalid(path, "object without `type`"))?;
        let ty = match ty {
            Value::String(s) => s.as_str(),
            // `{"type": {...}}` or `{"type": [...]}`: a wrapped schema.
            other => return self.parse(other, namespace, path),
        };
        let logical = obj.get("logicalType").and_then(Value::as_str);
        match ty {
            "record" | "error" => self.record(obj, namespace, path),
            "enum" => {
                let name = name_of(obj, namespace, path, self.strict)?;
                let symbols: Vec<String> = obj
                    .get("symbols")
                    .and_then(Value::as_array)
                    .ok_or_else(|| invalid(path, "enum without `symbols`"))?
                    .iter()
                    .map(|s| {
                        s.as_str()
                            .map(str::to_string)
                            .ok_or_else(|| invalid(path, "enum symbols must be strings"))
                    })
                    .collect::<Result<_, _>>()?;
                let mut seen = std::collections::HashSet::new();
                for s in &symbols {
                    if self.strict && !valid_name(s, true) {
                        return Err(invalid(path, format!("invalid enum symbol `{s}`")));
                    }
                    if !seen.insert(s) {
                        return Err(invalid(path, format!("duplicate enum symbol `{s}`")));
                    }
                }
                let default = obj
                    .get("default")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let schema = Schema::Enum(Arc::new(Enum {
                    name: name.clone(),
                    aliases: aliases(obj),
                    symbols,
                    default,
                }));
                self.define(&name, &schema, path)?;
                Ok(schema)
            }
            "fixed" => {
                let name = name_of(obj, namespace, path, self.strict)?;
                let size = obj
                    .get("size")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| invalid(path, "fixed without a non-negative `size`"))?;
                let size = usize::try_from(size)
                    .ok()
                    .filter(|s| *s <= 1 << 30)
                    .ok_or_else(|| invalid(path, format!("fixed size {size} is too large")))?;
                let fixed = Arc::new(Fixed {
                    name: name.clone(),
                    aliases: aliases(obj),
                    size,
                });
                let schema = match logical {
                    Some("decimal") => decimal(obj, Some(fixed.clone()))
                        .map(Schema::Decimal)
                        .unwrap_or(Schema::Fixed(fixed)),
                    Some("duration") if size == 12 => Schema::Duration(fixed),
                    Some("uuid") if size == 16 => Schema::Uuid(Some(fixed)),
                    _ => Schema::Fixed(fixed),
                };
                self.define(&name, &schema, path)?;
                Ok(schema)
            }
            "array" => {
                let items = obj
                    .get("items")
                    .ok_or_else(|| invalid(path, "array without `items`"))?;
                Ok(Schema::Array(Box::new(self.parse(
                    items,
                    namespace,
                    &format!("{path}[]"),
                )?)))
            }
            "map" => {
                let values = obj
                    .get("values")
                    .ok_or_else(|| invalid(path, "map without `values`"))?;
                Ok(Schema::Map(Box::new(self.parse(
                    values,
                    namespace,
                    &format!("{path}{{}}"),
                )?)))
            }
            primitive => {
                let base = self.reference(primitive, namespace, path)?;
                Ok(match (&base, logical) {
                    (Schema::Bytes, Some("decimal")) => {
                        decimal(obj, None).map(Schema::Decimal).unwrap_or(base)
                    }
                    (Schema::Bytes, Some("big-decimal")) => Schema::BigDecimal,
                    (Schema::String, Some("uuid")) => Schema::Uuid(None),
                    (Schema::Int, Some("date")) => Schema::Date,
                    (Schema::Int, Some("time-millis")) => Schema::TimeMillis,
                    (Schema::Long, Some("time-micros")) => Schema::TimeMicros,
                    (Schema::Long, Some("timestamp-millis")) => Schema::TimestampMillis,
                    (Schema::Long, Some("timestamp-micros")) => Schema::TimestampMicros,
                    (Schema::Long, Some("timestamp-nanos")) => Schema::TimestampNanos,
                    (Schema::Long, Some("local-timestamp-millis")) => Schema::LocalTimestampMillis,
                    (Schema::Long, Some("local-timestamp-micros")) => Schema::LocalTimestampMicros,
                    (Schema::Long, Some("local-timestamp-nanos")) => Schema::LocalTimestampNanos,
                    _ => base,
                })
            }
        }
    }

    fn record(
        &mut self,
        obj: &Map<String, Value>,
        namespace: Option<&str>,
        path: &str,
    ) -> Result<Schema, SchemaError> {
        let name = name_of(obj, namespace, path, self.strict)?;
        let full = name.fullname();
        if self.named.contains_key(&full) {
            return Err(invalid(path, format!("type `{full}` is defined twice")));
        }
        let fields_json = obj
            .get("fields")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid(path, format!("record `{full}` without `fields`")))?;
        // The record is built with a weak reference to itself, for the references to it from
        // inside its fields (a recursive type).
        let mut failed = None;
        let record = Arc::new_cyclic(|weak| {
            self.defining.push((full.clone(), weak.clone()));
            let fields = self.fields(fields_json, name.namespace.as_deref(), path);
            self.defining.pop();
            Record {
                name: name.clone(),
                aliases: aliases(obj),
                fields: fields.unwrap_or_else(|e| {
                    failed = Some(e);
                    Vec::new()
                }),
            }
        });
        if let Some(e) = failed {
            return Err(e);
        }
        let schema = Schema::Record(record);
        self.define(&name, &schema, path)?;
        Ok(schema)
    }

    fn fields(
        &mut self,
        fields_json: &[Value],
        inner_ns: Option<&str>,
        path: &str,
    ) -> Result<Vec<RecordField>, SchemaError> {
        let mut fields = Vec::with_capacity(fields_json.len());
        let mut seen = std::collections::HashSet::new();
        for (i, f) in fields_json.iter().enumerate() {
            let f = f
                .as_object()
                .ok_or_else(|| invalid(path, format!("field {i} is not an object")))?;
            let fname = f
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid(path, format!("field {i} without a `name`")))?;
            if !valid_name(fname, self.strict) {
                return Err(invalid(path, format!("invalid field name `{fname}`")));
            }
            if !seen.insert(fname.to_string()) {
                return Err(invalid(path, format!("duplicate field `{fname}`")));
            }
            let fpath = format!("{path}.{fname}");
            let ty = f
                .get("type")
                .ok_or_else(|| invalid(&fpath, "field without `type`"))?;
            let schema = self.parse(ty, inner_ns, &fpath)?;
            fields.push(RecordField {
                name: fname.to_string(),
                schema,
                default: f.get("default").cloned(),
                aliases: aliases(f),
            });
        }
        Ok(fields)
    }
}

/// The full name of a named type: `name` (qualified, or in `namespace` / the enclosing
/// namespace), checked to be a valid name.
pub(crate) fn name_of(
    obj: &Map<String, Value>,
    namespace: Option<&str>,
    path: &str,
    strict: bool,
) -> Result<Name, SchemaError> {
    let raw = obj
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(path, "named type without a `name`"))?;
    let (ns, simple) = match raw.rsplit_once('.') {
        Some((ns, simple)) => (Some(ns.to_string()), simple.to_string()),
        None => {
            let ns = match obj.get("namespace") {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Null) | None => namespace.map(str::to_string),
                Some(other) => {
                    return Err(invalid(
                        path,
                        format!("namespace must be a string: {other}"),
                    ));
                }
            };
            (ns, raw.to_string())
        }
    };
    if strict && !valid_name(&simple, true) {
        return Err(invalid(path, format!("invalid name `{raw}`")));
    }
    Ok(Name {
        name: simple,
        namespace: ns.filter(|s| !s.is_empty()),
    })
}

fn qualify(name: &str, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) if !name.contains('.') && !ns.is_empty() => format!("{ns}.{name}"),
        _ => name.to_string(),
    }
}

fn aliases(obj: &Map<String, Value>) -> Vec<String> {
    obj.get("aliases")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// A decimal annotation, or `None` when it is invalid (and must then be ignored, per the spec).
fn decimal(obj: &Map<String, Value>, fixed: Option<Arc<Fixed>>) -> Option<Decimal> {
    let precision = usize::try_from(obj.get("precision")?.as_u64()?).ok()?;
    let scale = match obj.get("scale") {
        None => 0,
        Some(v) => usize::try_from(v.as_u64()?).ok()?,
    };
    if precision == 0 || scale > precision {
        return None;
    }
    if let Some(f) = &fixed {
        // The largest precision `size` bytes of two's complement can hold.
        let max = ((8.0 * f.size as f64 - 1.0) * std::f64::consts::LOG10_2).floor() as usize;
        if precision > max {
            return None;
        }
    }
    Some(Decimal {
        precision,
        scale,
        fixed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_and_logical_types() {
        assert_eq!(Schema::parse_str(r#""int""#).unwrap(), Schema::Int);
        assert_eq!(
            Schema::parse_str(r#"{"type":"int","logicalType":"date"}"#).unwrap(),
            Schema::Date
        );
        assert_eq!(
            Schema::parse_str(r#"{"type":"long","logicalType":"timestamp-nanos"}"#).unwrap(),
            Schema::TimestampNanos
        );
        assert_eq!(
            Schema::parse_str(r#"{"type":"bytes","logicalType":"big-decimal"}"#).unwrap(),
            Schema::BigDecimal
        );
        // Unknown or misplaced logical types fall back to the base type.
        assert_eq!(
            Schema::parse_str(r#"{"type":"int","logicalType":"uuid"}"#).unwrap(),
            Schema::Int
        );
        assert_eq!(
            Schema::parse_str(r#"{"type":"string","logicalType":"big-decimal"}"#).unwrap(),
            Schema::String
        );
        assert_eq!(
            Schema::parse_str(
                r#"{"type":"bytes","logicalType":"decimal","precision":4,"scale":6}"#
            )
            .unwrap(),
            Schema::Bytes
        );
    }

    /// Optional records nested `levels` deep.
    fn nested_optional_records(levels: usize) -> String {
        let mut s = r#""int""#.to_string();
        for i in 0..levels {
            s = format!(
                r#"{{"type":"record","name":"R{i}","fields":[{{"name":"f","type":["null",{s}]}}]}}"#
            );
        }
        s
    }

    #[test]
    fn schemas_too_deep_for_the_json_parser_say_so() {
        assert!(Schema::parse_str(&nested_optional_records(30)).is_ok());
        let err = Schema::parse_str(&nested_optional_records(40)).unwrap_err();
        assert!(matches!(err, SchemaError::TooDeep), "{err}");
        assert!(
            err.to_string().contains("deeper than the 128 levels"),
            "{err}"
        );
        // Other JSON errors stay what they are.
        let err = Schema::parse_str(r#"{"type":"int""#).unwrap_err();
        assert!(matches!(err, SchemaError::Json(_)), "{err}");
    }

    #[test]
    fn named_references_and_namespaces() {
        let s = Schema::parse_str(
            r#"{"type":"record","name":"A","namespace":"n","fields":[
                {"name":"f","type":{"type":"fixed","name":"F","size":4}},
                {"name":"g","type":"F"},
                {"name":"h","type":"n.F"}]}"#,
        )
        .unwrap();
        let Schema::Record(r) = s else { panic!() };
        assert_eq!(r.name.fullname(), "n.A");
        assert_eq!(r.fields[1].schema, r.fields[0].schema);
        assert_eq!(r.fields[2].schema, r.fields[0].schema);
    }

    /// Names outside the specification's pattern, as other writers put them in files (polars
    /// names its records `""`; Python's writers take any field name), are read; publishing
    /// holds them to the pattern.
    #[test]
    fn names_outside_the_pattern_are_read_but_not_published() {
        let json = r#"{"type":"record","name":"","fields":[
            {"name":"my-field","type":"int"},{"name":"café","type":"string"},
            {"name":"1st","type":{"type":"enum","name":"E","symbols":["a-b","", "1"]}},
            {"name":"inner","type":{"type":"record","name":"with space","fields":[
                {"name":"a.b","type":"long"}]}}]}"#;
        let Schema::Record(r) = Schema::parse_str(json).unwrap() else {
            panic!("a record");
        };
        assert_eq!(r.name.name, "");
        let names: Vec<_> = r.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["my-field", "café", "1st", "inner"]);
        let err = Schema::parse_str_strict(json).unwrap_err().to_string();
        assert!(err.contains("invalid name ``"), "{err}");
        let err = Schema::parse_str_strict(
            r#"{"type":"record","name":"R","fields":[{"name":"my-field","type":"int"}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("invalid field name `my-field`"), "{err}");
        // A field still needs a name, and names do not repeat.
        for bad in [
            r#"{"type":"record","name":"R","fields":[{"name":"","type":"int"}]}"#,
            r#"{"type":"record","name":"R","fields":[{"name":"a-b","type":"int"},
                {"name":"a-b","type":"long"}]}"#,
        ] {
            assert!(Schema::parse_str(bad).is_err(), "{bad}");
        }
    }

    /// A lone surrogate escaped in the schema's text (as Python's `json.dumps` writes one) is
    /// read as U+FFFD, as Java's reader takes it; pairs and other escapes are kept.
    #[test]
    fn lone_surrogate_escapes_are_replaced() {
        let cases = [
            (r#"{"doc":"\ud800x"}"#, r#"{"doc":"\ufffdx"}"#),
            (r#"{"doc":"\udc00"}"#, r#"{"doc":"\ufffd"}"#),
            (
                r#"{"doc":"\ud83d\ude00 \u00e9"}"#,
                r#"{"doc":"\ud83d\ude00 \u00e9"}"#,
            ),
            (r#"{"doc":"\\ud800"}"#, r#"{"doc":"\\ud800"}"#),
            (
                r#"{"doc":"\ud800\ud800\udc00"}"#,
                r#"{"doc":"\ufffd\ud800\udc00"}"#,
            ),
            (r#"{"doc":"\u12"}"#, r#"{"doc":"\u12"}"#),
        ];
        for (from, to) in cases {
            assert_eq!(without_lone_surrogates(from), to, "{from}");
        }
        let schema = r#"{"type":"record","name":"R","doc":"caf\udce9","fields":[
            {"name":"a","type":"int","doc":"\ud800"}]}"#;
        assert!(matches!(Schema::parse_str(schema), Ok(Schema::Record(_))));
        assert_eq!(
            crate::avro::fingerprint::fingerprint(schema).unwrap(),
            crate::avro::fingerprint::fingerprint(
                r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}"#
            )
            .unwrap()
        );
    }

    /// A reference to a record from inside it is a [`Schema::Recursive`] that names the record
    /// and reaches it while the schema lives; mutual recursion too; a later use of the record
    /// by name, outside it, is the record itself.
    #[test]
    fn recursive_references_reach_their_record() {
        let s = Schema::parse_str(
            r#"{"type":"record","name":"Tree","namespace":"t","fields":[
                {"name":"node","type":{"type":"record","name":"Node","fields":[
                    {"name":"children","type":{"type":"array","items":"Node"}},
                    {"name":"up","type":["null",{"type":"record","name":"Up","fields":[
                        {"name":"node","type":["null","t.Node"]}]}]}]}},
                {"name":"again","type":"Node"}]}"#,
        )
        .unwrap();
        let Schema::Record(tree) = &s else { panic!() };
        let Schema::Record(node) = &tree.fields[0].schema else {
            panic!()
        };
        let Schema::Array(items) = &node.fields[0].schema else {
            panic!()
        };
        let Schema::Recursive(r) = items.as_ref() else {
            panic!("{items:?}")
        };
        assert_eq!(r.name.fullname(), "t.Node");
        assert!(Arc::ptr_eq(&r.record().unwrap(), node));
        // Up (inside Node) refers to Node: recursive too.
        let Schema::Union(b) = &node.fields[1].schema else {
            panic!()
        };
        let Schema::Record(up) = &b[1] else { panic!() };
        let Schema::Union(b) = &up.fields[0].schema else {
            panic!()
        };
        assert!(matches!(&b[1], Schema::Recursive(r) if Arc::ptr_eq(&r.record().unwrap(), node)));
        assert!(
            matches!(&tree.fields[1].schema, Schema::Record(again) if Arc::ptr_eq(again, node))
        );
        assert_eq!(s.min_encoded_size(), 4);
        // Held weakly: the record goes with the schema.
        let weak = r.clone();
        drop(s);
        assert!(weak.record().is_none());
    }

    #[test]
    fn exponential_expansion_is_bounded() {
        // Each level uses the previous one twice: 2^40 nodes when expanded.
        let mut fields =
            String::from(r#"{"type":"record","name":"L0","fields":[{"name":"a","type":"int"}]}"#);
        for i in 1..40 {
            fields = format!(
                r#"{{"type":"record","name":"L{i}","fields":[{{"name":"a","type":{fields}}},{{"name":"b","type":"L{}"}}]}}"#,
                i - 1
            );
        }
        // Parsing itself is linear; the planner bounds the expansion (see decode).
        assert!(Schema::parse_str(&fields).is_ok());
    }

    #[test]
    fn bad_schemas_are_errors_not_panics() {
        for s in [
            "{}",
            "[1]",
            r#"{"type":"record","name":"r"}"#,
            r#"{"type":"fixed","name":"f","size":-1}"#,
            r#"{"type":"enum","name":"e","symbols":["a","a"]}"#,
            r#"{"type":"record","name":"r","fields":[{"name":"a","type":"nope"}]}"#,
            r#"[["int"]]"#,
            "12",
        ] {
            assert!(Schema::parse_str(s).is_err(), "{s}");
        }
    }
}
