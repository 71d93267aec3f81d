//! Athena-safe types: how every Avro type becomes an Arrow (and so a Parquet) type.
//!
//! Stage: planning, once per writer schema. [`plan`] walks the Avro schema and produces, in one
//! pass, the Arrow schema of the output and the decode program (`Op`) that fills it. Keeping the
//! two together means a type's column and the code that decodes it cannot drift apart.
//!
//! | Avro | Arrow | Parquet (as Athena sees it) |
//! |---|---|---|
//! | null (a field of type null) | left out, with a warning | — |
//! | boolean | Boolean | BOOLEAN |
//! | int | Int32 | INT32 |
//! | long | Int64 | INT64 |
//! | float / double | Float32 / Float64 | FLOAT / DOUBLE |
//! | bytes | Binary | BYTE_ARRAY |
//! | string | Utf8 | BYTE_ARRAY (STRING) |
//! | enum | Utf8 (the symbol) | BYTE_ARRAY (STRING) |
//! | fixed(n) | FixedSizeBinary(n) | FIXED_LEN_BYTE_ARRAY(n) |
//! | fixed(0) | Binary, every value empty | BINARY |
//! | decimal(p, s) on bytes or fixed, p <= 38 | Decimal128(p, s) | DECIMAL(p, s) (INT32/INT64/FIXED by p) |
//! | a record, at a reference to it from inside itself (recursive) | Utf8, its JSON text | BYTE_ARRAY STRING |
//! | decimal with 38 < p <= 1000 | Utf8, the plain text (`-1234.50`) | BYTE_ARRAY STRING |
//! | decimal with p > 38, with [`WideDecimals::Error`]; p > 1000 | error naming the field | — |
//! | big-decimal (the scale in each value) | Utf8, each value's plain text (`1000` for 1 at scale -3) | BYTE_ARRAY STRING |
//! | uuid on string | Utf8 | STRING |
//! | uuid on fixed(16) | Utf8, 36-char form | STRING |
//! | uuid, with [`UuidForm::Binary`] (opt-in) | FixedSizeBinary(16), `arrow.uuid` | FIXED_LEN_BYTE_ARRAY(16) UUID |
//! | date | Date32 | DATE |
//! | time-millis | Int32 (milliseconds after midnight) | INT32 |
//! | time-micros | Int64 (microseconds after midnight) | INT64 |
//! | timestamp-millis / -micros | Timestamp(ms / us, UTC) | INT64 TIMESTAMP(MILLIS / MICROS, adjusted to UTC) |
//! | timestamp-nanos | Timestamp(us, UTC), floored to micros | INT64 TIMESTAMP(MICROS, adjusted to UTC) |
//! | local-timestamp-millis / -micros | Timestamp(ms / us) | INT64 TIMESTAMP(MILLIS / MICROS, not adjusted) |
//! | local-timestamp-nanos | Timestamp(us), floored to micros | INT64 TIMESTAMP(MICROS, not adjusted) |
//! | duration | Struct{months, days, milliseconds: Int64} | struct of INT64 |
//! | `array<T>` | List, item named `element` | LIST |
//! | `map<T>` | Map, entries `key_value` {key: Utf8, value} | MAP |
//! | record | Struct | group |
//! | [null, T] or [T, null] | T, nullable | optional T |
//! | `[T]` | T | T |
//! | other unions | nullable Struct, one nullable field per branch: `member_int`, `member_string`, `member_<record name lowercased>`; a name an earlier branch took: `member_<full name lowercased, dots as _>`, then with `_<position>` ([`member_names`]) | group |
//!
//! Why these choices: Athena (Presto/Trino) reads no unsigned, NANOS, TIME or INT96-only
//! types correctly; dictionary-typed enums confuse some readers; Parquet has no union type, and
//! naming union members by their type (not their position) keeps old files readable by name when
//! a branch is added. Durations widen to Int64 because Avro stores unsigned 32-bit values.
//!
//! Limitations: sibling names that are equal when lowercased are an error (Athena lowercases
//! column names); so are arrays or maps of `null`, and records left with no column at all. A
//! recursive type's value at its reference to itself is its JSON text (`decode::json`).

use std::collections::HashMap;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, Schema as ArrowSchema, SchemaRef, TimeUnit};

use crate::avro::cursor::SHORT;
use crate::avro::schema::{Decimal, Record, RecursiveRef, Schema};

/// Most plan nodes a schema may expand to (named types are expanded at every use).
pub const MAX_PLAN_NODES: usize = 100_000;

/// Largest precision an Athena DECIMAL holds.
pub const MAX_DECIMAL_PRECISION: usize = 38;

/// Largest precision of a decimal stored as text ([`WideDecimals::String`]): PostgreSQL's
/// `numeric(p, s)` goes to 1000. It bounds the work of formatting one value (a value of 1000
/// digits is 416 bytes; longer ones fail their record before any arithmetic).
pub const MAX_TEXT_DECIMAL_PRECISION: usize = 1000;

/// Most zero-byte items (e.g. empty records) one array or block may claim.
pub(crate) const MAX_ZERO_SIZE_ITEMS: u64 = 1 << 24;

/// Why a schema cannot be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// A decimal too wide for Athena ([`WideDecimals::Error`]), or for the text form.
    #[error("field `{path}`: decimal precision {precision} exceeds {limit}, {why}")]
    DecimalPrecision {
        /// The field.
        path: String,
        /// Its precision.
        precision: usize,
        /// The largest precision allowed.
        limit: usize,
        /// What the limit is.
        why: &'static str,
    },
    /// Two sibling names that Athena would see as one.
    #[error(
        "`{path}`: fields `{first}` and `{second}` are the same name to Athena (case-insensitive)"
    )]
    NameCollision {
        /// The parent.
        path: String,
        /// First name.
        first: String,
        /// Second name.
        second: String,
    },
    /// A field whose name has a dot where a sibling is named as the part before it: both
    /// would have one dotted column path (`a.b`), which readers that look columns up by it
    /// (Spark, parquet-java) cannot tell apart.
    #[error(
        "`{path}`: field `{dotted}` has the dotted column path of a field under its sibling \
         `{sibling}`"
    )]
    DottedCollision {
        /// The parent.
        path: String,
        /// The name with a dot.
        dotted: String,
        /// The sibling named as its first part.
        sibling: String,
    },
    /// A type that has no Parquet form.
    #[error("`{path}`: {message}")]
    Unsupported {
        /// Where.
        path: String,
        /// What.
        message: String,
    },
    /// The schema expands to too many nodes.
    #[error("schema expands to more than {MAX_PLAN_NODES} columns and nested fields")]
    TooLarge,
    /// A reader schema's default that its type or column refuses.
    #[error("field `{path}`: {message}")]
    Default {
        /// The field (or enum).
        path: String,
        /// What is wrong with it.
        message: String,
    },
}

/// One step of the decode program: how to read one Avro datum and where it goes.
///
/// The program mirrors the writer schema; the column it fills mirrors the Arrow type. Schema
/// resolution (a reader schema different from the writer's) will add steps here, so that records
/// with several writer schemas can fill the same columns.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    /// Reads nothing, writes nothing (a field of type null).
    Null,
    /// A union of only null branches: reads the branch index, writes nothing.
    NullUnion(u32),
    /// A one-branch union `[T]`: reads the branch index (0), then `T` into the same column.
    Single(Box<Op>),
    Boolean,
    Int,
    Long,
    Float,
    Double,
    /// bytes -> Binary.
    Bytes,
    /// string -> Utf8, checked to be UTF-8.
    String,
    /// fixed(n) -> FixedSizeBinary(n).
    Fixed(usize),
    /// enum index -> the symbol as Utf8.
    Enum(Arc<[Symbol]>),
    /// decimal on bytes (None) or fixed(n) -> Decimal128, checked against the precision.
    Decimal {
        fixed: Option<usize>,
        max: i128,
    },
    /// decimal wider than [`MAX_DECIMAL_PRECISION`] on bytes (None) or fixed(n) -> Utf8, its
    /// plain text (`-1234.50` for -123450 at scale 2), checked against the precision.
    DecimalText {
        fixed: Option<usize>,
        precision: usize,
        scale: usize,
    },
    /// big-decimal (bytes holding the unscaled value and the scale) -> Utf8, its plain text.
    BigDecimalText,
    /// uuid on fixed(16) -> 36-char Utf8.
    UuidFixed,
    /// A value of a recursive type (a record, at a reference to it from inside its own
    /// definition) -> Utf8, its JSON text (see `decode::json`). The record is held strongly
    /// here: the plan may outlive the schema it was made from.
    Json(Arc<Record>),
    /// A value of a recursive type read as the reader's (another schema's) recursive type ->
    /// Utf8, the JSON text of the reader's record (see `decode::json::write_resolved`).
    JsonResolved(Arc<JsonResolve>),
    /// uuid on fixed(16) -> FixedSizeBinary(16) ([`UuidForm::Binary`]).
    UuidBytes,
    /// uuid on string (or text read as a uuid) -> FixedSizeBinary(16), parsed from the
    /// 8-4-4-4-12 hex form ([`UuidForm::Binary`]).
    UuidParse,
    /// long nanoseconds -> i64 microseconds (floored).
    NanosToMicros,
    /// fixed(12) duration -> struct of three Int64.
    Duration,
    /// A record: its fields in writer order; `None` targets are skipped (null-typed fields).
    Record(Vec<FieldOp>),
    /// An array; `item_min` is the smallest encoded item, to bound counts.
    Array {
        item: Box<Op>,
        item_min: usize,
    },
    /// A map with string keys.
    Map {
        value: Box<Op>,
        value_min: usize,
    },
    /// `[null, T]`: branch `null_index` is null, the other decodes `inner` into the same column.
    Nullable {
        null_index: u32,
        inner: Box<Op>,
    },
    /// Other unions: each branch is null (`None`) or fills one child of a struct column.
    Union(Vec<Option<(usize, Op)>>),
    /// Schema resolution: a numeric promotion (int -> long, ...).
    Promote(Promotion),
    /// Schema resolution: a long rescaled between time units (`value * mul`, floored `/ div`).
    Rescale {
        mul: i64,
        div: i64,
    },
    /// Schema resolution: a writer enum index mapped to the reader's symbol (`None`: no symbol,
    /// no reader default; the writer's symbols are kept for the message).
    EnumMap {
        symbols: Arc<[Option<String>]>,
        writer: Arc<[String]>,
    },
    /// Schema resolution: reads a writer union's branch index (`read_index`) or takes branch 0
    /// of a non-union writer, and fills the reader's column as that branch's target says.
    Resolve {
        read_index: bool,
        branches: Arc<[Target]>,
    },
    /// Schema resolution: a reader field the writer lacks, filled from its encoded default by
    /// the reader's own op; reads nothing from the writer's data.
    Default {
        bytes: Arc<[u8]>,
        op: Box<Op>,
    },
    /// Schema resolution: a writer field the reader lacks, read past.
    Skip(Skip),
}

/// An enum symbol as [`Op::Enum`] appends it: its bytes, and (for a symbol of up to
/// [`SHORT`] bytes) the same bytes padded to a fixed window, copied in one fixed-size move
/// rather than a `memcpy` call of the symbol's length (as short strings are).
#[derive(Debug, Clone)]
pub(crate) struct Symbol {
    pub name: String,
    pub window: Option<[u8; SHORT]>,
}

impl Symbol {
    pub fn new(name: &str) -> Self {
        let window = (name.len() <= SHORT).then(|| {
            let mut w = [0; SHORT];
            w[..name.len()].copy_from_slice(name.as_bytes());
            w
        });
        Self {
            name: name.to_string(),
            window,
        }
    }
}

impl Op {
    /// The op of an enum of `symbols`, each index read as its own symbol.
    pub(crate) fn enum_of(symbols: &[String]) -> Op {
        Op::Enum(symbols.iter().map(|s| Symbol::new(s)).collect())
    }

    /// A value [`super::decode`] decodes in its caller's body: a number, a boolean, a string,
    /// bytes, a fixed or an enum.
    #[inline(always)]
    pub(crate) fn is_plain(&self) -> bool {
        matches!(
            self,
            Op::Boolean
                | Op::Int
                | Op::Long
                | Op::Float
                | Op::Double
                | Op::Bytes
                | Op::String
                | Op::Fixed(_)
                | Op::Enum(_)
        )
    }

    /// The op of a decimal read from bytes (`fixed` None) or a fixed, into a column of
    /// precision `precision` and scale `scale`: Decimal128, or text past Athena's precision
    /// (the planner has refused such a column unless [`WideDecimals::String`]).
    pub(crate) fn decimal(fixed: Option<usize>, precision: usize, scale: usize) -> Op {
        if precision > MAX_DECIMAL_PRECISION {
            Op::DecimalText {
                fixed,
                precision,
                scale,
            }
        } else {
            Op::Decimal {
                fixed,
                max: max_unscaled(precision),
            }
        }
    }

    /// Fills a uuid column stored as 16 bytes (a column with the `arrow.uuid` extension).
    pub(crate) fn fills_uuid_bytes(&self) -> bool {
        match self {
            Op::UuidBytes | Op::UuidParse => true,
            Op::Nullable { inner, .. } | Op::Single(inner) => inner.fills_uuid_bytes(),
            _ => false,
        }
    }
}

/// A writer's record read as a reader's at a reference to the reader's record from inside
/// itself: both held strongly, as the plan may outlive the schemas it was made from.
#[derive(Debug)]
pub(crate) struct JsonResolve {
    /// The writer's record.
    pub writer: Arc<Record>,
    /// The reader's record.
    pub reader: Arc<Record>,
}

/// The record a recursive reference names (alive while the schema being planned is).
pub(super) fn recursive_record(r: &RecursiveRef, path: &str) -> Result<Arc<Record>, PlanError> {
    r.record().ok_or_else(|| PlanError::Unsupported {
        path: display_path(path),
        message: format!(
            "the recursive type `{}` outlived its schema (a bug)",
            r.name
        ),
    })
}

/// A numeric promotion of the Avro specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Promotion {
    IntToLong,
    IntToFloat,
    IntToDouble,
    LongToFloat,
    LongToDouble,
    FloatToDouble,
}

/// Where one writer union branch goes in the reader's column.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// A null in the reader's column.
    Null,
    /// The reader's column itself (plain or nullable).
    Value(Op),
    /// One member of the reader's union struct column.
    Member(usize, Op),
    /// No reader branch takes it: the record cannot be resolved.
    Fail(Arc<str>),
}

/// How to read past a datum without keeping it.
#[derive(Debug, Clone)]
pub(crate) enum Skip {
    Nothing,
    Varint,
    Boolean,
    Float,
    Double,
    /// bytes and string: a length, then that many bytes.
    Bytes,
    Fixed(usize),
    Record(Vec<Skip>),
    Array(Box<Skip>),
    Map(Box<Skip>),
    Union(Vec<Skip>),
    /// A value of a recursive type, read by the schema (as its JSON text is).
    Recursive(Arc<Record>),
}

impl Skip {
    /// The skip program of a writer schema; `nodes` counts toward [`MAX_PLAN_NODES`].
    pub(crate) fn of(schema: &Schema, nodes: &mut usize) -> Result<Skip, PlanError> {
        *nodes += 1;
        if *nodes > MAX_PLAN_NODES {
            return Err(PlanError::TooLarge);
        }
        Ok(match schema {
            Schema::Null => Skip::Nothing,
            Schema::Boolean => Skip::Boolean,
            Schema::Float => Skip::Float,
            Schema::Double => Skip::Double,
            Schema::Bytes | Schema::BigDecimal | Schema::String | Schema::Uuid(None) => Skip::Bytes,
            Schema::Int
            | Schema::Long
            | Schema::Enum(_)
            | Schema::Date
            | Schema::TimeMillis
            | Schema::TimeMicros
            | Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos => Skip::Varint,
            Schema::Fixed(f) | Schema::Duration(f) | Schema::Uuid(Some(f)) => Skip::Fixed(f.size),
            Schema::Decimal(d) => match &d.fixed {
                Some(f) => Skip::Fixed(f.size),
                None => Skip::Bytes,
            },
            Schema::Record(r) => Skip::Record(
                r.fields
                    .iter()
                    .map(|f| Skip::of(&f.schema, nodes))
                    .collect::<Result<_, _>>()?,
            ),
            Schema::Array(items) => Skip::Array(Box::new(Skip::of(items, nodes)?)),
            Schema::Map(values) => Skip::Map(Box::new(Skip::of(values, nodes)?)),
            Schema::Union(branches) => Skip::Union(
                branches
                    .iter()
                    .map(|b| Skip::of(b, nodes))
                    .collect::<Result<_, _>>()?,
            ),
            Schema::Recursive(r) => Skip::Recursive(recursive_record(r, "$")?),
        })
    }
}

/// A record field in the program: its op and the index of the child column it fills.
#[derive(Debug, Clone)]
pub(crate) struct FieldOp {
    pub op: Op,
    pub column: Option<usize>,
    /// The op's common cases, classified once here so that most of a record's fields are
    /// decoded with one dispatch: see [`Fast`].
    pub fast: Fast,
    /// For the optional [`Fast`] kinds: the byte of the null branch's index as a varint
    /// (zig-zag: index 0 is 0x00, index 1 is 0x02); the other branch's is this `^ 0x02`.
    pub null_byte: u8,
}

impl FieldOp {
    pub(crate) fn new(op: Op, column: Option<usize>) -> Self {
        let (fast, null_byte) = match column {
            Some(_) => Fast::of(&op),
            None => (Fast::General, 0),
        };
        Self {
            op,
            column,
            fast,
            null_byte,
        }
    }
}

/// What a record's field decodes, for the field ops that are most of a record's values: a
/// plain value, or an optional one (a union of null and a plain value: mostly null in wide
/// records). Everything else goes through the op: fixed and enum values, which need the op's
/// size or symbols (`OtherPlain`), and the composite ops (`General`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Fast {
    General,
    OtherPlain,
    Long,
    Int,
    Double,
    Float,
    Boolean,
    String,
    Bytes,
    OptionalLong,
    OptionalInt,
    OptionalDouble,
    OptionalFloat,
    OptionalBoolean,
    OptionalString,
    OptionalBytes,
}

impl Fast {
    /// The kind of `op`, and for an optional one its null branch's index byte.
    fn of(op: &Op) -> (Self, u8) {
        let plain = |op: &Op| {
            Some(match op {
                Op::Long => Fast::Long,
                Op::Int => Fast::Int,
                Op::Double => Fast::Double,
                Op::Float => Fast::Float,
                Op::Boolean => Fast::Boolean,
                Op::String => Fast::String,
                Op::Bytes => Fast::Bytes,
                _ => return None,
            })
        };
        if let Some(fast) = plain(op) {
            return (fast, 0);
        }
        if op.is_plain() {
            return (Fast::OtherPlain, 0);
        }
        let Op::Nullable { null_index, inner } = op else {
            return (Fast::General, 0);
        };
        let optional = match plain(inner) {
            Some(Fast::Long) => Fast::OptionalLong,
            Some(Fast::Int) => Fast::OptionalInt,
            Some(Fast::Double) => Fast::OptionalDouble,
            Some(Fast::Float) => Fast::OptionalFloat,
            Some(Fast::Boolean) => Fast::OptionalBoolean,
            Some(Fast::String) => Fast::OptionalString,
            Some(Fast::Bytes) => Fast::OptionalBytes,
            _ => return (Fast::General, 0),
        };
        match null_index {
            0 => (optional, 0x00),
            1 => (optional, 0x02),
            _ => (Fast::General, 0),
        }
    }
}

/// How uuids are stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UuidForm {
    /// The 36-character string (STRING in Athena, which has no uuid type): the default.
    #[default]
    String,
    /// 16 bytes, FIXED_LEN_BYTE_ARRAY(16) with the UUID logical type (Arrow's `arrow.uuid`
    /// extension): 40% of the size and half the encoding cost of the strings. Trino, Spark and
    /// DuckDB read it as a uuid; Athena shows it as binary. A uuid string that is not in the
    /// 8-4-4-4-12 hex form fails its record.
    Binary,
}

impl std::str::FromStr for UuidForm {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "string" => Ok(Self::String),
            "binary" => Ok(Self::Binary),
            other => Err(format!(
                "invalid uuid form `{other}`: expected string or binary"
            )),
        }
    }
}

/// How decimals wider than Athena's DECIMAL (precision past [`MAX_DECIMAL_PRECISION`]) are
/// stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WideDecimals {
    /// Their exact plain text (`-1234.50`), STRING in Athena: the default. Athena reads no
    /// wider DECIMAL; `CAST(x AS DECIMAL(38, s))` or `AS DOUBLE` works where the values fit.
    /// Precision up to [`MAX_TEXT_DECIMAL_PRECISION`].
    #[default]
    String,
    /// The schema is refused, naming the field.
    Error,
}

impl std::str::FromStr for WideDecimals {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "string" => Ok(Self::String),
            "error" => Ok(Self::Error),
            other => Err(format!(
                "invalid wide decimal form `{other}`: expected string or error"
            )),
        }
    }
}

/// Choices in the type mapping; the default is the table in the module docs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TypeOptions {
    /// How uuids are stored.
    pub uuid: UuidForm,
    /// How decimals wider than Athena's are stored.
    pub wide_decimals: WideDecimals,
}

/// The Arrow field of a column that `op` fills: uuids stored as bytes carry Arrow's canonical
/// `arrow.uuid` extension name, which the Parquet writer turns into the UUID logical type.
pub(crate) fn field_for(name: &str, dt: DataType, nullable: bool, op: &Op) -> Field {
    let field = Field::new(name, dt, nullable);
    if op.fills_uuid_bytes() {
        field.with_metadata(HashMap::from([(
            "ARROW:extension:name".to_string(),
            "arrow.uuid".to_string(),
        )]))
    } else {
        field
    }
}

/// A compiled schema: the Arrow schema of the output and the program that fills it.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The output schema.
    pub schema: SchemaRef,
    /// Messages about fields left out.
    pub warnings: Vec<String>,
    /// The top-level record (or the single `value` column), as a record op.
    pub(crate) root: Vec<FieldOp>,
    /// Smallest encoded size of one top-level datum.
    pub(crate) min_record_size: usize,
    /// How to read past one top-level datum of the writer schema, to set aside a record whose
    /// values cannot be converted (see [`super::BatchDecoder::decode_block_salvaging`]);
    /// `None` for a schema past [`MAX_PLAN_NODES`].
    pub(crate) skip: Option<Skip>,
    /// What the buffers of this plan's last sized batch held (see [`SizeHint`]).
    pub(crate) sizes: SizeHint,
}

/// The bytes each column buffer of a plan's last batch held, with the records of the group of
/// blocks it came from. A decoder for the next group reserves its buffers from it (scaled by
/// that group's records) instead of growing them by doubling, which copies everything decoded
/// once more.
#[derive(Debug, Default)]
pub(crate) struct SizeHint(std::sync::Mutex<Option<(usize, Vec<usize>)>>);

impl SizeHint {
    /// The last (records, bytes per buffer) recorded.
    pub fn get(&self) -> Option<(usize, Vec<usize>)> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Records the bytes per buffer of a batch from a group of `records` records.
    pub fn set(&self, records: usize, lengths: Vec<usize>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((records, lengths));
    }
}

impl Clone for SizeHint {
    fn clone(&self) -> Self {
        Self(std::sync::Mutex::new(self.get()))
    }
}

/// Compiles an Avro writer schema into an output schema and decode program.
pub fn plan(schema: &Schema) -> Result<Plan, PlanError> {
    plan_with(schema, TypeOptions::default())
}

/// [`plan`] with a choice of type mapping.
pub fn plan_with(schema: &Schema, options: TypeOptions) -> Result<Plan, PlanError> {
    plan_checked(schema, Planner::new(options))
}

/// [`plan_with`] for a reader schema, whose defaults are used: each field's default is read
/// once as a record lacking the field would read it, and each enum's default must be one of
/// its symbols. A writer's defaults are never used, so a writer schema is not held to them.
pub fn plan_reader(schema: &Schema, options: TypeOptions) -> Result<Plan, PlanError> {
    let mut p = Planner::new(options);
    p.check_defaults = true;
    plan_checked(schema, p)
}

fn plan_checked(schema: &Schema, mut p: Planner) -> Result<Plan, PlanError> {
    let (fields, root) = match schema {
        Schema::Record(r) => {
            let (fields, ops) =
                p.record_fields(r.fields.iter().map(|f| (&f.name, &f.schema)), "")?;
            p.check_field_defaults(r, &fields, &ops, "")?;
            (fields, ops)
        }
        other => {
            let (fields, ops) = p.record_fields([(&"value".to_string(), other)], "")?;
            (fields, ops)
        }
    };
    if fields.is_empty() {
        return Err(PlanError::Unsupported {
            path: "$".into(),
            message: "the schema has no column that Parquet can store".into(),
        });
    }
    Ok(Plan {
        schema: Arc::new(ArrowSchema::new(fields)),
        warnings: p.warnings,
        root,
        min_record_size: schema.min_encoded_size(),
        skip: Skip::of(schema, &mut 0).ok(),
        sizes: SizeHint::default(),
    })
}

pub(crate) struct Planner {
    pub nodes: usize,
    pub warnings: Vec<String>,
    pub options: TypeOptions,
    /// Whether the defaults of record fields and enums are checked ([`plan_reader`]).
    pub check_defaults: bool,
}

/// The Arrow field for a list item.
pub(crate) fn list_item(dt: DataType, nullable: bool, op: &Op) -> Arc<Field> {
    Arc::new(field_for("element", dt, nullable, op))
}

/// The Arrow field for map entries.
pub(crate) fn map_entries(value: DataType, nullable: bool, op: &Op) -> Arc<Field> {
    Arc::new(Field::new(
        "key_value",
        DataType::Struct(Fields::from(vec![
            Field::new("key", DataType::Utf8, false),
            field_for("value", value, nullable, op),
        ])),
        false,
    ))
}

pub(crate) fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// Largest unscaled value of `precision` digits.
pub(crate) fn max_unscaled(precision: usize) -> i128 {
    10i128.pow(precision as u32) - 1
}

/// `path` for messages: `$` for the top level.
fn display_path(path: &str) -> String {
    if path.is_empty() {
        "$".into()
    } else {
        path.into()
    }
}

impl Planner {
    /// With [`Self::check_defaults`]: reads each default of `r`'s fields once, with the op and
    /// into a column of the field that [`Self::record_fields`] made for it.
    fn check_field_defaults(
        &self,
        r: &crate::avro::schema::Record,
        fields: &[Field],
        ops: &[FieldOp],
        path: &str,
    ) -> Result<(), PlanError> {
        if !self.check_defaults {
            return Ok(());
        }
        for (f, op) in r.fields.iter().zip(ops) {
            let Some(default) = &f.default else {
                continue;
            };
            let invalid = |m: String| PlanError::Default {
                path: join(path, &f.name),
                message: format!("invalid default {default}: {m}"),
            };
            let mut bytes = Vec::new();
            super::resolve::encode_default(&f.schema, default, &mut bytes, 0).map_err(invalid)?;
            if let Some(field) = op.column.and_then(|c| fields.get(c)) {
                super::check_default(&op.op, &bytes, field).map_err(invalid)?;
            }
        }
        Ok(())
    }

    /// A planner with nothing counted yet.
    pub(crate) fn new(options: TypeOptions) -> Self {
        Planner {
            nodes: 0,
            warnings: Vec::new(),
            options,
            check_defaults: false,
        }
    }

    pub(crate) fn record_fields<'a>(
        &mut self,
        fields: impl IntoIterator<Item = (&'a String, &'a Schema)>,
        path: &str,
    ) -> Result<(Vec<Field>, Vec<FieldOp>), PlanError> {
        let mut out = Vec::new();
        let mut ops = Vec::new();
        let mut lower: HashMap<String, String> = HashMap::new();
        for (name, schema) in fields {
            let fpath = join(path, name);
            match self.map(schema, &fpath)? {
                None => {
                    self.warnings.push(format!(
                        "field `{fpath}` has type null and is left out of the Parquet schema"
                    ));
                    // The datum is still there to read past: a union of nulls has its index.
                    let op = match schema {
                        Schema::Union(b) => Op::NullUnion(b.len() as u32),
                        _ => Op::Null,
                    };
                    ops.push(FieldOp::new(op, None));
                }
                Some((dt, nullable, op)) => {
                    if let Some(first) = lower.insert(name.to_lowercase(), name.clone()) {
                        return Err(PlanError::NameCollision {
                            path: if path.is_empty() {
                                "$".into()
                            } else {
                                path.into()
                            },
                            first,
                            second: name.clone(),
                        });
                    }
                    out.push(field_for(name, dt, nullable, &op));
                    ops.push(FieldOp::new(op, Some(out.len() - 1)));
                }
            }
        }
        // Names outside the Avro pattern (read as Java reads them) may hold dots.
        for dotted in out.iter().map(|f| f.name()).filter(|n| n.contains('.')) {
            let first = dotted.split('.').next().unwrap_or_default().to_lowercase();
            if let Some(sibling) = lower.get(&first) {
                return Err(PlanError::DottedCollision {
                    path: if path.is_empty() {
                        "$".into()
                    } else {
                        path.into()
                    },
                    dotted: dotted.clone(),
                    sibling: sibling.clone(),
                });
            }
        }
        Ok((out, ops))
    }

    /// The Arrow type, nullability and op for one schema; `None` for `null`.
    pub(crate) fn map(
        &mut self,
        schema: &Schema,
        path: &str,
    ) -> Result<Option<(DataType, bool, Op)>, PlanError> {
        self.nodes += 1;
        if self.nodes > MAX_PLAN_NODES {
            return Err(PlanError::TooLarge);
        }
        let ts = |unit, utc: bool| {
            DataType::Timestamp(unit, if utc { Some("UTC".into()) } else { None })
        };
        let (dt, nullable, op) = match schema {
            Schema::Null => return Ok(None),
            Schema::Boolean => (DataType::Boolean, false, Op::Boolean),
            Schema::Int => (DataType::Int32, false, Op::Int),
            Schema::Long => (DataType::Int64, false, Op::Long),
            Schema::Float => (DataType::Float32, false, Op::Float),
            Schema::Double => (DataType::Float64, false, Op::Double),
            Schema::Bytes => (DataType::Binary, false, Op::Bytes),
            // Its scale is in each value: no DECIMAL column holds it, its exact text does.
            Schema::BigDecimal => (DataType::Utf8, false, Op::BigDecimalText),
            Schema::Uuid(f) if self.options.uuid == UuidForm::Binary => (
                DataType::FixedSizeBinary(16),
                false,
                if f.is_some() {
                    Op::UuidBytes
                } else {
                    Op::UuidParse
                },
            ),
            Schema::String | Schema::Uuid(None) => (DataType::Utf8, false, Op::String),
            Schema::Uuid(Some(_)) => (DataType::Utf8, false, Op::UuidFixed),
            Schema::Recursive(r) => {
                let record = recursive_record(r, path)?;
                self.warnings.push(format!(
                    "`{}`: the recursive type `{}` is stored as JSON text",
                    display_path(path),
                    r.name
                ));
                (DataType::Utf8, false, Op::Json(record))
            }
            Schema::Enum(e) => {
                if let Some(d) = e.default.as_ref().filter(|d| !e.symbols.contains(d))
                    && self.check_defaults
                {
                    return Err(PlanError::Default {
                        path: display_path(path),
                        message: format!(
                            "the enum `{}` has the default `{d}`, which is not one of its symbols",
                            e.name
                        ),
                    });
                }
                (DataType::Utf8, false, Op::enum_of(&e.symbols))
            }
            Schema::Fixed(f) => {
                let size = i32::try_from(f.size).map_err(|_| PlanError::Unsupported {
                    path: path.into(),
                    message: format!("fixed size {} is too large", f.size),
                })?;
                // Parquet has no FIXED_LEN_BYTE_ARRAY(0) (parquet-rs cannot write one): an
                // empty fixed is written as BINARY, every value empty.
                let data_type = if size == 0 {
                    DataType::Binary
                } else {
                    DataType::FixedSizeBinary(size)
                };
                (data_type, false, Op::Fixed(f.size))
            }
            Schema::Decimal(Decimal {
                precision,
                scale,
                fixed,
            }) => {
                let refuse = |limit, why| {
                    Err(PlanError::DecimalPrecision {
                        path: path.into(),
                        precision: *precision,
                        limit,
                        why,
                    })
                };
                let data_type = if *precision <= MAX_DECIMAL_PRECISION {
                    DataType::Decimal128(*precision as u8, *scale as i8)
                } else if self.options.wide_decimals == WideDecimals::Error {
                    return refuse(
                        MAX_DECIMAL_PRECISION,
                        "the most Athena's DECIMAL holds (`--wide-decimals string` stores it as text)",
                    );
                } else if *precision > MAX_TEXT_DECIMAL_PRECISION {
                    return refuse(
                        MAX_TEXT_DECIMAL_PRECISION,
                        "the most parqour stores as text",
                    );
                } else {
                    DataType::Utf8
                };
                let op = Op::decimal(fixed.as_ref().map(|f| f.size), *precision, *scale);
                (data_type, false, op)
            }
            Schema::Date => (DataType::Date32, false, Op::Int),
            Schema::TimeMillis => (DataType::Int32, false, Op::Int),
            Schema::TimeMicros => (DataType::Int64, false, Op::Long),
            Schema::TimestampMillis => (ts(TimeUnit::Millisecond, true), false, Op::Long),
            Schema::TimestampMicros => (ts(TimeUnit::Microsecond, true), false, Op::Long),
            Schema::TimestampNanos => (ts(TimeUnit::Microsecond, true), false, Op::NanosToMicros),
            Schema::LocalTimestampMillis => (ts(TimeUnit::Millisecond, false), false, Op::Long),
            Schema::LocalTimestampMicros => (ts(TimeUnit::Microsecond, false), false, Op::Long),
            Schema::LocalTimestampNanos => {
                (ts(TimeUnit::Microsecond, false), false, Op::NanosToMicros)
            }
            Schema::Duration(_) => (
                DataType::Struct(Fields::from(vec![
                    Field::new("months", DataType::Int64, false),
                    Field::new("days", DataType::Int64, false),
                    Field::new("milliseconds", DataType::Int64, false),
                ])),
                false,
                Op::Duration,
            ),
            Schema::Record(r) => {
                let (fields, ops) =
                    self.record_fields(r.fields.iter().map(|f| (&f.name, &f.schema)), path)?;
                self.check_field_defaults(r, &fields, &ops, path)?;
                if fields.is_empty() {
                    return Err(PlanError::Unsupported {
                        path: path.into(),
                        message: format!("record `{}` has no field that Parquet can store", r.name),
                    });
                }
                (
                    DataType::Struct(Fields::from(fields)),
                    false,
                    Op::Record(ops),
                )
            }
            Schema::Array(items) => {
                let item_path = format!("{path}[]");
                let (dt, nullable, op) =
                    self.map(items, &item_path)?
                        .ok_or_else(|| PlanError::Unsupported {
                            path: path.into(),
                            message: "an array of null has no Parquet form".into(),
                        })?;
                (
                    DataType::List(list_item(dt, nullable, &op)),
                    false,
                    Op::Array {
                        item: Box::new(op),
                        item_min: items.min_encoded_size(),
                    },
                )
            }
            Schema::Map(values) => {
                let value_path = format!("{path}{{}}");
                let (dt, nullable, op) =
                    self.map(values, &value_path)?
                        .ok_or_else(|| PlanError::Unsupported {
                            path: path.into(),
                            message: "a map of null has no Parquet form".into(),
                        })?;
                (
                    DataType::Map(map_entries(dt, nullable, &op), false),
                    false,
                    Op::Map {
                        value: Box::new(op),
                        value_min: values.min_encoded_size(),
                    },
                )
            }
            Schema::Union(branches) => return self.union(branches, path),
        };
        Ok(Some((dt, nullable, op)))
    }

    fn union(
        &mut self,
        branches: &[Schema],
        path: &str,
    ) -> Result<Option<(DataType, bool, Op)>, PlanError> {
        let null_index = branches.iter().position(|b| matches!(b, Schema::Null));
        let non_null: Vec<(usize, &Schema)> = branches
            .iter()
            .enumerate()
            .filter(|(_, b)| !matches!(b, Schema::Null))
            .collect();
        match (null_index, non_null.as_slice()) {
            (_, []) => Ok(None),
            (None, [(_, only)]) => Ok(self
                .map(only, path)?
                .map(|(dt, nullable, op)| (dt, nullable, Op::Single(Box::new(op))))),
            (Some(null_index), [(_, only)]) => {
                let Some((dt, _, inner)) = self.map(only, path)? else {
                    return Ok(None);
                };
                Ok(Some((
                    dt,
                    true,
                    Op::Nullable {
                        null_index: null_index as u32,
                        inner: Box::new(inner),
                    },
                )))
            }
            (_, _) => {
                let mut fields = Vec::new();
                let mut ops: Vec<Option<(usize, Op)>> = Vec::with_capacity(branches.len());
                for (b, member) in branches.iter().zip(member_names(branches)) {
                    let Some(member) = member else {
                        ops.push(None);
                        continue;
                    };
                    let mpath = join(path, &member);
                    let Some((dt, _, op)) = self.map(b, &mpath)? else {
                        ops.push(None);
                        continue;
                    };
                    // Every member is nullable: only one is set per row.
                    fields.push(field_for(&member, dt, true, &op));
                    ops.push(Some((fields.len() - 1, op)));
                }
                Ok(Some((
                    DataType::Struct(Fields::from(fields)),
                    null_index.is_some(),
                    Op::Union(ops),
                )))
            }
        }
    }
}

/// The struct field names of a union's branches (`None` for the null branch): `member_` and
/// the branch's type, or its name (lowercased) for a named type. A branch whose name an
/// earlier branch took (named types in different namespaces, or named alike but for case, or
/// a record named `Int` beside an `int`) is `member_` and its full name, lowercased, dots as
/// `_` (`member_com_acme_click`), and if that is taken too, with `_` and its position in the
/// union after it. So the names are unique, and a branch added at the end renames none.
pub fn member_names(branches: &[Schema]) -> Vec<Option<String>> {
    let mut taken = std::collections::HashSet::new();
    branches
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if matches!(b, Schema::Null) {
                return None;
            }
            let mut name = match b.name() {
                Some(n) => format!("member_{}", n.name.to_lowercase()),
                None => format!("member_{}", b.type_name()),
            };
            if taken.contains(&name)
                && let Some(n) = b.name()
            {
                name = format!("member_{}", n.fullname().replace('.', "_").to_lowercase());
            }
            if taken.contains(&name) {
                name = format!("{name}_{i}");
            }
            while taken.contains(&name) {
                name.push('_');
            }
            taken.insert(name.clone());
            Some(name)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrow(schema: &str) -> Result<SchemaRef, PlanError> {
        plan(&Schema::parse_str(schema).unwrap()).map(|p| p.schema)
    }

    #[test]
    fn union_members_are_named_by_type() {
        let s = arrow(
            r#"{"type":"record","name":"r","fields":[{"name":"u","type":
                ["null","int","string",{"type":"record","name":"Click","fields":[{"name":"x","type":"int"}]}]}]}"#,
        )
        .unwrap();
        let f = s.field(0);
        assert!(f.is_nullable());
        let DataType::Struct(members) = f.data_type() else {
            panic!()
        };
        let names: Vec<_> = members.iter().map(|m| m.name().as_str()).collect();
        assert_eq!(names, ["member_int", "member_string", "member_click"]);
    }

    /// Branches named alike get unique names; a branch added at the end renames none.
    #[test]
    fn union_members_named_alike_are_told_apart() {
        let names = |u: &str| {
            let s = arrow(&format!(
                r#"{{"type":"record","name":"r","fields":[{{"name":"u","type":{u}}}]}}"#
            ))
            .unwrap();
            let DataType::Struct(members) = s.field(0).data_type() else {
                panic!("{u}")
            };
            members.iter().map(|m| m.name().clone()).collect::<Vec<_>>()
        };
        let rec = |name: &str, ns: &str| {
            format!(
                r#"{{"type":"record","name":"{name}","namespace":"{ns}",
                    "fields":[{{"name":"f","type":"int"}}]}}"#
            )
        };
        let (ax, bx, cx) = (rec("X", "a"), rec("X", "b"), rec("X", "c.d"));
        assert_eq!(
            names(&format!(r#"["null",{ax},{bx},{cx}]"#)),
            ["member_x", "member_b_x", "member_c_d_x"]
        );
        let int = r#"{"type":"record","name":"Int","fields":[{"name":"f","type":"int"}]}"#;
        assert_eq!(
            names(&format!(r#"["int",{int},"string"]"#)),
            ["member_int", "member_int_1", "member_string"]
        );
        // Case: `x` beside `X` in one namespace; and a name the qualified form would take.
        let lower = r#"{"type":"enum","name":"x","namespace":"a","symbols":["P"]}"#;
        let taken = r#"{"type":"fixed","name":"a_x","size":1}"#;
        assert_eq!(
            names(&format!(r#"[{ax},{taken},{lower}]"#)),
            ["member_x", "member_a_x", "member_a_x_2"]
        );
        // Unchanged without a collision.
        assert_eq!(
            names(&format!(r#"["null","long",{ax}]"#)),
            ["member_long", "member_x"]
        );
    }

    #[test]
    fn nullable_in_any_order() {
        for u in [r#"["null","long"]"#, r#"["long","null"]"#] {
            let s = arrow(&format!(
                r#"{{"type":"record","name":"r","fields":[{{"name":"a","type":{u}}}]}}"#
            ))
            .unwrap();
            assert_eq!(s.field(0).data_type(), &DataType::Int64);
            assert!(s.field(0).is_nullable());
        }
    }

    #[test]
    fn case_collisions_are_errors() {
        let err = arrow(
            r#"{"type":"record","name":"r","fields":[{"name":"Id","type":"int"},{"name":"id","type":"int"}]}"#,
        )
        .unwrap_err();
        assert!(matches!(err, PlanError::NameCollision { .. }), "{err}");
        // A name with a dot (outside the Avro pattern, as other writers allow) beside a field
        // named as its first part: one dotted column path for two columns.
        for first in ["a", "A"] {
            let err = arrow(&format!(
                r#"{{"type":"record","name":"r","fields":[{{"name":"{first}.b","type":"int"}},
                    {{"name":"a","type":{{"type":"record","name":"A","fields":[
                        {{"name":"b","type":"int"}}]}}}}]}}"#
            ))
            .unwrap_err();
            assert!(matches!(err, PlanError::DottedCollision { .. }), "{err}");
        }
        assert!(arrow(r#"{"type":"record","name":"r","fields":[{"name":"a.b","type":"int"},{"name":"c","type":"int"}]}"#).is_ok());
    }

    /// Decimals past Athena's precision are text by default, refused with
    /// [`WideDecimals::Error`], and past 1000 digits refused either way.
    #[test]
    fn wide_decimals_are_text_or_errors() {
        let schema = |precision: usize, base: &str| {
            Schema::parse_str(&format!(
                r#"{{"type":"record","name":"r","fields":[{{"name":"amount","type":
                    {{{base},"logicalType":"decimal","precision":{precision},"scale":2}}}}]}}"#
            ))
            .unwrap()
        };
        let fixed = r#""type":"fixed","name":"d","size":32"#;
        let bytes = r#""type":"bytes""#;
        let error = TypeOptions {
            wide_decimals: WideDecimals::Error,
            ..Default::default()
        };
        for base in [fixed, bytes] {
            let p = plan(&schema(38, base)).unwrap();
            assert_eq!(p.schema.field(0).data_type(), &DataType::Decimal128(38, 2));
            let p = plan(&schema(76, base)).unwrap();
            assert_eq!(p.schema.field(0).data_type(), &DataType::Utf8);
            assert!(matches!(
                p.root[0].op,
                Op::DecimalText {
                    precision: 76,
                    scale: 2,
                    ..
                }
            ));
            let err = plan_with(&schema(76, base), error).unwrap_err().to_string();
            assert!(err.contains("`amount`"), "{err}");
            assert!(err.contains("precision 76 exceeds 38"), "{err}");
            assert!(err.contains("--wide-decimals string"), "{err}");
        }
        let err = plan(&schema(1001, bytes)).unwrap_err().to_string();
        assert!(err.contains("precision 1001 exceeds 1000"), "{err}");
        assert!(plan(&schema(1000, bytes)).is_ok());
    }

    #[test]
    fn types_without_a_parquet_form_are_errors_naming_the_field() {
        let cases = [
            (
                r#"{"type":"record","name":"r","fields":[{"name":"a","type":"int"},
                    {"name":"e","type":{"type":"record","name":"Empty","fields":[]}}]}"#,
                "`e`: record `Empty` has no field that Parquet can store",
            ),
            (
                r#"{"type":"record","name":"r","fields":[{"name":"a","type":"int"},
                    {"name":"l","type":{"type":"array","items":"null"}}]}"#,
                "`l`: an array of null has no Parquet form",
            ),
            (
                r#"{"type":"record","name":"r","fields":[{"name":"a","type":"int"},
                    {"name":"m","type":{"type":"map","values":["null"]}}]}"#,
                "`m`: a map of null has no Parquet form",
            ),
            (
                r#"{"type":"record","name":"r","fields":[{"name":"a","type":"null"}]}"#,
                "the schema has no column that Parquet can store",
            ),
        ];
        for (schema, message) in cases {
            let err = arrow(schema).unwrap_err().to_string();
            assert!(err.contains(message), "{schema}: {err}");
        }
    }

    #[test]
    fn null_fields_are_left_out_with_a_warning() {
        let p = plan(
            &Schema::parse_str(
                r#"{"type":"record","name":"r","fields":[{"name":"a","type":"null"},{"name":"b","type":"int"}]}"#,
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(p.schema.fields().len(), 1);
        assert_eq!(p.warnings.len(), 1);
    }

    #[test]
    fn exponential_schemas_are_bounded() {
        let mut s =
            String::from(r#"{"type":"record","name":"L0","fields":[{"name":"a","type":"int"}]}"#);
        for i in 1..40 {
            s = format!(
                r#"{{"type":"record","name":"L{i}","fields":[{{"name":"a","type":{s}}},{{"name":"b","type":"L{}"}}]}}"#,
                i - 1
            );
        }
        assert_eq!(arrow(&s).unwrap_err(), PlanError::TooLarge);
    }

    #[test]
    fn non_record_top_level_is_one_value_column() {
        let s = arrow(r#"{"type":"array","items":"string"}"#).unwrap();
        assert_eq!(s.fields().len(), 1);
        assert_eq!(s.field(0).name(), "value");
    }
}
