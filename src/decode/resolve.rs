//! Schema resolution: data written with one schema, read as another.
//!
//! Stage: planning, once per (writer schema, reader schema) pair. [`plan_resolved`] compiles a
//! program that reads the writer's binary encoding and fills the columns of the *reader's*
//! Arrow schema, so records of many writer schemas (the versions of one event type, interleaved
//! record by record) land in one set of columns, one Parquet schema.
//!
//! The rules are the Avro specification's:
//! - numeric promotions int -> long -> float -> double, string <-> bytes;
//! - record fields matched by name or by the reader field's aliases; writer fields the reader
//!   lacks are read past; reader fields the writer lacks take their default (encoded once, then
//!   decoded by the reader's own program for every record);
//! - enum symbols by name; a symbol the reader lacks takes the reader enum's `default`;
//! - named types match by unqualified name or the reader's aliases (the top-level record is
//!   matched whatever its name, as an event type keeps its identity across renames);
//! - unions: a writer branch goes to the first reader branch of the same Avro type (logical
//!   types aside; named types by name), else the first it can be promoted to, as Java does; a
//!   non-union writer into a reader union likewise, and a writer union into a non-union
//!   reader branch by branch.
//!
//! Beyond the specification, time units are honoured: a `timestamp-millis` written value read as
//! `timestamp-micros` is multiplied by 1000 rather than reinterpreted (a `time-millis` read as
//! `time-micros` too); a plain `long` read as a timestamp takes the reader's unit.
//!
//! Two modes: [`plan_resolved`] is lenient where data decides (a writer union branch or enum
//! symbol with no reader counterpart fails only the records that use it, which then go to the
//! dead-letter place); [`check_compatible`] is strict and refuses the pair outright, naming the
//! field, as `parqour schema publish` needs.

use serde_json::Value;

use std::sync::Arc;

use super::types::{
    FieldOp, JsonResolve, MAX_PLAN_NODES, Op, Plan, PlanError, Planner, Promotion, Skip, Target,
    TypeOptions, UuidForm, join, plan_reader, recursive_record,
};
use crate::avro::cursor::encode_long;
use crate::avro::schema::{Fixed, Name, Record, Schema};

/// Why data of a writer schema cannot be read as a reader schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The two schemas disagree at a field.
    #[error("field `{path}`: {message}")]
    Mismatch {
        /// Dotted path of the field in the reader schema (`$` for the top level).
        path: String,
        /// What disagrees.
        message: String,
    },
    /// The reader schema itself cannot be converted.
    #[error(transparent)]
    Plan(#[from] PlanError),
}

fn mismatch(path: &str, message: impl Into<String>) -> ResolveError {
    ResolveError::Mismatch {
        path: if path.is_empty() {
            "$".into()
        } else {
            path.into()
        },
        message: message.into(),
    }
}

/// Compiles a program reading `writer` data into the columns of `reader`'s Arrow schema. The
/// plan's schema equals `plan(reader)`'s, whatever the writer.
pub fn plan_resolved(writer: &Schema, reader: &Schema) -> Result<Plan, ResolveError> {
    plan_resolved_with(writer, reader, TypeOptions::default())
}

/// [`plan_resolved`] with a choice of type mapping (the same as the reader's own plan's).
pub fn plan_resolved_with(
    writer: &Schema,
    reader: &Schema,
    options: TypeOptions,
) -> Result<Plan, ResolveError> {
    Resolver::new(false, options).root(writer, reader)
}

/// Checks that every datum of `writer` can be read as `reader` (strict: every union branch and
/// enum symbol of the writer must resolve).
pub fn check_compatible(writer: &Schema, reader: &Schema) -> Result<(), ResolveError> {
    Resolver::new(true, TypeOptions::default())
        .root(writer, reader)
        .map(|_| ())
}

struct Resolver {
    planner: Planner,
    strict: bool,
    /// The (writer, reader) pairs of recursive records being checked (by full name): met
    /// again inside themselves, they are not checked again.
    expanding: Vec<(String, String)>,
}

/// The record of a record schema or of a reference to one from inside itself.
pub(super) fn record_of(s: &Schema) -> Option<Arc<Record>> {
    match s {
        Schema::Record(r) => Some(r.clone()),
        Schema::Recursive(r) => r.record(),
        _ => None,
    }
}

/// The reader field a writer field named `name` is read into: the one of that name, else the
/// first whose aliases hold it, if not `used` by an earlier writer field.
pub(super) fn reader_field(name: &str, r: &Record, used: &[bool]) -> Option<usize> {
    r.fields
        .iter()
        .position(|rf| rf.name == name)
        .or_else(|| {
            r.fields
                .iter()
                .position(|rf| rf.aliases.iter().any(|a| a == name))
        })
        .filter(|j| !used[*j])
}

/// Seconds are divided into this many units by a long time type, if it has a unit.
pub(super) fn unit(s: &Schema) -> Option<i64> {
    match s {
        Schema::TimestampMillis | Schema::LocalTimestampMillis => Some(1_000),
        Schema::TimestampMicros | Schema::LocalTimestampMicros => Some(1_000_000),
        Schema::TimestampNanos | Schema::LocalTimestampNanos => Some(1_000_000_000),
        _ => None,
    }
}

/// The (multiplier, divisor) that turn a long in units `from` (per second) into units `to`;
/// `None` where nothing changes (the same unit, or either side has none).
pub(super) fn rescale(from: Option<i64>, to: Option<i64>) -> Option<(i64, i64)> {
    match (from?, to?) {
        (from, to) if to == from => None,
        (from, to) if to > from => Some((to / from, 1)),
        (from, to) => Some((1, from / to)),
    }
}

/// The index, among `branches`, of the union branch a writer's (non-union) `w` goes to before
/// any promotion, as Java's Avro chooses: a named type of the same full name, else the first
/// of the same type (a named one by name or alias).
pub(super) fn same_branch<'a>(
    w: &Schema,
    branches: impl Iterator<Item = &'a Schema> + Clone,
) -> Option<usize> {
    let full_name = |s: &Schema| s.name().map(|n| n.fullname());
    let exact = full_name(w).and_then(|wn| {
        branches
            .clone()
            .position(|b| b.type_name() == w.type_name() && full_name(b).as_ref() == Some(&wn))
    });
    exact.or_else(|| branches.into_iter().position(|b| same_kind(w, b)))
}

/// An int, or a logical type on one.
pub(super) fn is_int(s: &Schema) -> bool {
    s.type_name() == "int"
}

/// A long, or a logical type on one.
pub(super) fn is_long(s: &Schema) -> bool {
    s.type_name() == "long"
}

fn is_text(s: &Schema) -> bool {
    matches!(s, Schema::String | Schema::Uuid(None) | Schema::Bytes)
}

/// Named types match by unqualified name, or when the reader lists the writer's name as alias.
fn names_match(writer: &Name, reader: &Name, reader_aliases: &[String]) -> bool {
    writer.name == reader.name
        || reader_aliases
            .iter()
            .any(|a| *a == writer.name || *a == writer.fullname())
}

/// A writer's fixed read as a reader's: the same name (or an alias) and size.
fn same_fixed(w: &Fixed, r: &Fixed) -> bool {
    names_match(&w.name, &r.name, &r.aliases) && w.size == r.size
}

fn aliases_of(s: &Schema) -> &[String] {
    match s {
        Schema::Record(r) => &r.aliases,
        Schema::Enum(e) => &e.aliases,
        Schema::Fixed(f) | Schema::Duration(f) | Schema::Uuid(Some(f)) => &f.aliases,
        Schema::Decimal(d) => d.fixed.as_ref().map_or(&[], |f| &f.aliases),
        _ => &[],
    }
}

/// Same Avro type (and, for named types, the same name): the first choice among union
/// branches, before any branch the writer's type can be promoted to (as Java's Avro chooses).
/// Logical types do not count: a writer's int goes to a reader's `date` before a `long`, and
/// a decimal on bytes to a decimal on bytes, not to one on a fixed.
pub(super) fn same_kind(w: &Schema, r: &Schema) -> bool {
    if w.type_name() != r.type_name() {
        return false;
    }
    match (w.name(), r.name()) {
        // (A reference to a record from inside it holds the record, and its aliases, weakly.)
        (Some(wn), Some(rn)) => match r {
            Schema::Recursive(t) => t
                .record()
                .is_some_and(|rec| names_match(wn, rn, &rec.aliases)),
            _ => names_match(wn, rn, aliases_of(r)),
        },
        (None, None) => true,
        _ => false,
    }
}

impl Resolver {
    fn new(strict: bool, options: TypeOptions) -> Self {
        Resolver {
            planner: Planner::new(options),
            strict,
            expanding: Vec::new(),
        }
    }

    fn count(&mut self) -> Result<(), ResolveError> {
        self.planner.nodes += 1;
        if self.planner.nodes > MAX_PLAN_NODES {
            return Err(PlanError::TooLarge.into());
        }
        Ok(())
    }

    fn skip(&mut self, w: &Schema) -> Result<Op, ResolveError> {
        Ok(Op::Skip(Skip::of(w, &mut self.planner.nodes)?))
    }

    fn root(&mut self, writer: &Schema, reader: &Schema) -> Result<Plan, ResolveError> {
        // The reader's own plan gives the output schema and validates the reader.
        let reader_plan = plan_reader(reader, self.planner.options)?;
        let root = match (writer, reader) {
            (Schema::Record(w), Schema::Record(r)) => self.fields(w, r, "")?,
            (_, Schema::Record(_)) => {
                return Err(mismatch(
                    "",
                    format!(
                        "the writer's top level is a {}, the reader's a record",
                        writer.type_name()
                    ),
                ));
            }
            _ => {
                let op = self
                    .resolve(writer, reader, "value")?
                    .ok_or_else(|| mismatch("value", "the reader has no column here"))?;
                vec![FieldOp::new(op, Some(0))]
            }
        };
        Ok(Plan {
            schema: reader_plan.schema,
            warnings: reader_plan.warnings,
            root,
            min_record_size: writer.min_encoded_size(),
            skip: Skip::of(writer, &mut 0).ok(),
            sizes: Default::default(),
        })
    }

    /// The field program of a writer record read as a reader record.
    fn fields(&mut self, w: &Record, r: &Record, path: &str) -> Result<Vec<FieldOp>, ResolveError> {
        let (_, reader_ops) = self
            .planner
            .record_fields(r.fields.iter().map(|f| (&f.name, &f.schema)), path)?;
        let mut used = vec![false; r.fields.len()];
        let mut ops = Vec::with_capacity(w.fields.len() + r.fields.len());
        for wf in &w.fields {
            let Some(j) = reader_field(&wf.name, r, &used) else {
                ops.push(FieldOp::new(self.skip(&wf.schema)?, None));
                continue;
            };
            used[j] = true;
            let rf = &r.fields[j];
            let fpath = join(path, &rf.name);
            match (
                reader_ops[j].column,
                self.resolve(&wf.schema, &rf.schema, &fpath)?,
            ) {
                (Some(column), Some(op)) => ops.push(FieldOp::new(op, Some(column))),
                _ => ops.push(FieldOp::new(self.skip(&wf.schema)?, None)),
            }
        }
        for (j, rf) in r.fields.iter().enumerate() {
            let Some(column) = reader_ops[j].column.filter(|_| !used[j]) else {
                continue;
            };
            let fpath = join(path, &rf.name);
            let default = rf.default.as_ref().ok_or_else(|| {
                mismatch(
                    &fpath,
                    "the reader's field has no default and the writer's schema lacks it",
                )
            })?;
            let mut bytes = Vec::new();
            // (Checked by the reader's own plan: see `plan_reader`.)
            encode_default(&rf.schema, default, &mut bytes, 0)
                .map_err(|m| mismatch(&fpath, format!("invalid default {default}: {m}")))?;
            ops.push(FieldOp::new(
                Op::Default {
                    bytes: bytes.into(),
                    op: Box::new(reader_ops[j].op.clone()),
                },
                Some(column),
            ));
        }
        Ok(ops)
    }

    /// A writer branch that cannot be read: an error when strict, else a failing target.
    fn fail_or(&self, result: Result<Target, ResolveError>) -> Result<Target, ResolveError> {
        match result {
            Ok(t) => Ok(t),
            Err(e @ ResolveError::Plan(_)) => Err(e),
            Err(e) if self.strict => Err(e),
            Err(e) => Ok(Target::Fail(e.to_string().into())),
        }
    }

    /// The op reading `w` into the column of `r`; `None` when `r` has no column (null).
    fn resolve(&mut self, w: &Schema, r: &Schema, path: &str) -> Result<Option<Op>, ResolveError> {
        self.count()?;
        if let Schema::Union(rb) = r {
            return self.reader_union(w, rb, path);
        }
        if matches!(r, Schema::Null) {
            if self.strict && !matches!(w, Schema::Null) {
                return Err(mismatch(path, "the reader's type is null"));
            }
            return Ok(None);
        }
        if let Schema::Union(wb) = w {
            let mut branches = Vec::with_capacity(wb.len());
            for b in wb {
                let t = self.direct(b, r, path).map(Target::Value);
                branches.push(self.fail_or(t)?);
            }
            return Ok(Some(Op::Resolve {
                read_index: true,
                branches: branches.into(),
            }));
        }
        self.direct(w, r, path).map(Some)
    }

    /// Into a reader union: `[null, T]` (a nullable column), `[T]`, or a struct of members.
    fn reader_union(
        &mut self,
        w: &Schema,
        rb: &[Schema],
        path: &str,
    ) -> Result<Option<Op>, ResolveError> {
        let has_null = rb.iter().any(|b| matches!(b, Schema::Null));
        let non_null: Vec<usize> = (0..rb.len())
            .filter(|i| !matches!(rb[*i], Schema::Null))
            .collect();
        let writer_branches: Vec<&Schema> = match w {
            Schema::Union(wb) => wb.iter().collect(),
            other => vec![other],
        };
        let read_index = matches!(w, Schema::Union(_));
        match non_null.as_slice() {
            [] => {
                if self.strict && writer_branches.iter().any(|b| !matches!(b, Schema::Null)) {
                    return Err(mismatch(path, "the reader's union holds only null"));
                }
                Ok(None)
            }
            [only] => {
                let t = &rb[*only];
                if !read_index && !has_null {
                    // `[T]` read from a plain writer: the column is T's, without validity.
                    return self.direct(w, t, path).map(Some);
                }
                let mut branches = Vec::with_capacity(writer_branches.len());
                for b in writer_branches {
                    let target = if matches!(b, Schema::Null) {
                        if has_null {
                            Ok(Target::Null)
                        } else {
                            Err(mismatch(path, "null where the reader's union has no null"))
                        }
                    } else {
                        self.direct(b, t, path).map(Target::Value)
                    };
                    branches.push(self.fail_or(target)?);
                }
                // A writer's `[null, T]` read as the reader's: the nullable column's own op
                // (and the decoder's fast path for optional fields), not a branch lookup.
                if read_index && let [a, b] = branches.as_mut_slice() {
                    let null_index = match (&*a, &*b) {
                        (Target::Null, Target::Value(_)) => Some(0),
                        (Target::Value(_), Target::Null) => Some(1),
                        _ => None,
                    };
                    if let Some(null_index) = null_index {
                        let value = if null_index == 0 { b } else { a };
                        if let Target::Value(op) = std::mem::replace(value, Target::Null) {
                            return Ok(Some(Op::Nullable {
                                null_index,
                                inner: Box::new(op),
                            }));
                        }
                    }
                }
                Ok(Some(Op::Resolve {
                    read_index,
                    branches: branches.into(),
                }))
            }
            members => {
                let mut branches = Vec::with_capacity(writer_branches.len());
                for b in writer_branches {
                    let target = self.pick_member(b, rb, members, has_null, path);
                    branches.push(self.fail_or(target)?);
                }
                Ok(Some(Op::Resolve {
                    read_index,
                    branches: branches.into(),
                }))
            }
        }
    }

    /// The member of a reader union struct that a writer branch goes to.
    fn pick_member(
        &mut self,
        b: &Schema,
        rb: &[Schema],
        members: &[usize],
        has_null: bool,
        path: &str,
    ) -> Result<Target, ResolveError> {
        if matches!(b, Schema::Null) {
            return if has_null {
                Ok(Target::Null)
            } else {
                Err(mismatch(path, "null where the reader's union has no null"))
            };
        }
        let names = super::types::member_names(rb);
        let mpath = |k: usize| {
            join(
                path,
                names.get(k).cloned().flatten().as_deref().unwrap_or("?"),
            )
        };
        // As Java's Avro chooses: a named type of the same full name, then the same type (a
        // named one by name or alias), then the first branch the writer's type is promoted
        // to without loss (int to long or double, long or float to double, string <-> bytes);
        // only then to a float, which holds few ints and longs exactly (Java 1.8 fails here).
        if let Some(member) = same_branch(b, members.iter().map(|k| &rb[*k])) {
            let k = members[member];
            return Ok(Target::Member(member, self.direct(b, &rb[k], &mpath(k))?));
        }
        let lossy =
            |r: &Schema| matches!(b.type_name(), "int" | "long") && r.type_name() == "float";
        for take_lossy in [false, true] {
            for (member, k) in members.iter().enumerate() {
                if lossy(&rb[*k]) != take_lossy {
                    continue;
                }
                match self.direct(b, &rb[*k], &mpath(*k)) {
                    Ok(op) => return Ok(Target::Member(member, op)),
                    Err(ResolveError::Plan(e)) => return Err(e.into()),
                    Err(_) => {}
                }
            }
        }
        Err(mismatch(
            path,
            format!(
                "no branch of the reader's union takes the writer's {}",
                describe(b)
            ),
        ))
    }

    /// The op reading a non-union writer `w` as the non-union, non-null reader `r`.
    fn direct(&mut self, w: &Schema, r: &Schema, path: &str) -> Result<Op, ResolveError> {
        self.count()?;
        let refuse = || {
            mismatch(
                path,
                format!(
                    "the writer's {} cannot be read as {}",
                    describe(w),
                    describe(r)
                ),
            )
        };
        Ok(match (w, r) {
            // A reference to a record from inside itself in the reader: the value is JSON text
            // of the reader's record (`json::write_resolved`), from the writer's record. The
            // pair is checked as records are, once: met again inside itself, it is not.
            (w, Schema::Recursive(_)) => {
                let (Some(wr), Some(rr)) = (record_of(w), record_of(r)) else {
                    return Err(refuse());
                };
                if !names_match(&wr.name, &rr.name, &rr.aliases) {
                    return Err(refuse());
                }
                let key = (wr.name.fullname(), rr.name.fullname());
                if !self.expanding.contains(&key) {
                    self.expanding.push(key);
                    let checked = self.fields(&wr, &rr, path);
                    self.expanding.pop();
                    checked?;
                }
                Op::JsonResolved(Arc::new(JsonResolve {
                    writer: wr,
                    reader: rr,
                }))
            }
            // The writer's record at a reference to itself, read into the reader's columns of a
            // record that is no reference (not recursive there): as that record.
            (Schema::Recursive(t), _) => {
                let wr = recursive_record(t, path)?;
                return self.direct(&Schema::Record(wr), r, path);
            }
            (Schema::Boolean, Schema::Boolean) => Op::Boolean,
            (w, r) if is_int(w) && is_int(r) => Op::Int,
            // An int's encoding is a long's: read as one, in the reader's unit.
            (Schema::TimeMillis, Schema::TimeMicros) => Op::Rescale { mul: 1000, div: 1 },
            (w, r) if is_int(w) && is_long(r) => Op::Promote(Promotion::IntToLong),
            (w, Schema::Float) if is_int(w) => Op::Promote(Promotion::IntToFloat),
            (w, Schema::Double) if is_int(w) => Op::Promote(Promotion::IntToDouble),
            (w, r) if is_long(w) && is_long(r) => {
                // The reader's column keeps nanoseconds as microseconds.
                let column = match r {
                    Schema::TimestampNanos | Schema::LocalTimestampNanos => Some(1_000_000),
                    other => unit(other),
                };
                match rescale(unit(w).or(unit(r)), column) {
                    Some((mul, div)) => Op::Rescale { mul, div },
                    None => Op::Long,
                }
            }
            (w, Schema::Float) if is_long(w) => Op::Promote(Promotion::LongToFloat),
            (w, Schema::Double) if is_long(w) => Op::Promote(Promotion::LongToDouble),
            (Schema::Float, Schema::Float) => Op::Float,
            (Schema::Float, Schema::Double) => Op::Promote(Promotion::FloatToDouble),
            (Schema::Double, Schema::Double) => Op::Double,
            // uuids stored as bytes: parsed from text, copied from fixed(16).
            (w, Schema::Uuid(_)) if self.planner.options.uuid == UuidForm::Binary => match w {
                Schema::Uuid(Some(_)) => Op::UuidBytes,
                w if is_text(w) => Op::UuidParse,
                _ => return Err(refuse()),
            },
            (w, Schema::String | Schema::Uuid(None)) if is_text(w) => Op::String,
            (w, Schema::Bytes) if is_text(w) => Op::Bytes,
            (w, Schema::Uuid(Some(_))) if is_text(w) => Op::String,
            (Schema::Uuid(Some(_)), Schema::String | Schema::Uuid(_)) => Op::UuidFixed,
            (Schema::Enum(we), Schema::Enum(re)) => {
                if !names_match(&we.name, &re.name, &re.aliases) {
                    return Err(refuse());
                }
                // A default that is no symbol refuses the reader's own plan (`plan_reader`).
                let default = re.default.as_ref().filter(|d| re.symbols.contains(d));
                let symbols: Vec<Option<String>> = we
                    .symbols
                    .iter()
                    .map(|s| {
                        if re.symbols.contains(s) {
                            Some(s.clone())
                        } else {
                            default.cloned()
                        }
                    })
                    .collect();
                if self.strict
                    && let Some(i) = symbols.iter().position(Option::is_none)
                {
                    return Err(mismatch(
                        path,
                        format!(
                            "the writer's enum symbol `{}` is not in the reader's enum `{}`, which has no default",
                            we.symbols[i], re.name
                        ),
                    ));
                }
                if we.symbols == re.symbols {
                    // The same symbols in the same order: each index is its own symbol.
                    Op::enum_of(&we.symbols)
                } else {
                    Op::EnumMap {
                        symbols: symbols.into(),
                        writer: we.symbols.clone().into(),
                    }
                }
            }
            (Schema::Fixed(wf), Schema::Fixed(rf)) => {
                if !same_fixed(wf, rf) {
                    return Err(refuse());
                }
                Op::Fixed(wf.size)
            }
            (Schema::Duration(_), Schema::Duration(_)) => Op::Duration,
            (Schema::Decimal(wd), Schema::Decimal(rd)) => {
                // On the same type: bytes, or a fixed of the same name and size (a fixed is no
                // bytes, for Java's and fastavro's readers).
                let same = match (&wd.fixed, &rd.fixed) {
                    (None, None) => true,
                    (Some(wf), Some(rf)) => same_fixed(wf, rf),
                    _ => false,
                };
                if !same {
                    return Err(refuse());
                }
                if wd.scale != rd.scale {
                    return Err(mismatch(
                        path,
                        format!(
                            "the writer's decimal scale {} differs from the reader's {}",
                            wd.scale, rd.scale
                        ),
                    ));
                }
                Op::decimal(wd.fixed.as_ref().map(|f| f.size), rd.precision, rd.scale)
            }
            // Logical types aside, as the specification resolves: bytes (or a string, promoted
            // to bytes) read as a decimal on bytes, a decimal read as its bytes or fixed.
            (Schema::Bytes | Schema::String, Schema::Decimal(rd)) if rd.fixed.is_none() => {
                Op::decimal(None, rd.precision, rd.scale)
            }
            (Schema::Decimal(wd), Schema::Bytes) if wd.fixed.is_none() => Op::Bytes,
            // A big-decimal's value holds its own scale: read as one from a big-decimal or
            // bytes (or a string), as its bytes into bytes; never to or from a `decimal`, whose
            // bytes are the unscaled value alone.
            (Schema::BigDecimal | Schema::Bytes | Schema::String, Schema::BigDecimal) => {
                Op::BigDecimalText
            }
            (Schema::BigDecimal, Schema::Bytes) => Op::Bytes,
            (Schema::Decimal(wd), Schema::Fixed(rf))
                if wd.fixed.as_ref().is_some_and(|wf| same_fixed(wf, rf)) =>
            {
                Op::Fixed(rf.size)
            }
            (Schema::Fixed(wf), Schema::Decimal(rd))
                if rd.fixed.as_ref().is_some_and(|rf| same_fixed(wf, rf)) =>
            {
                Op::decimal(Some(wf.size), rd.precision, rd.scale)
            }
            (Schema::Record(wr), Schema::Record(rr)) => {
                if !names_match(&wr.name, &rr.name, &rr.aliases) {
                    return Err(refuse());
                }
                Op::Record(self.fields(wr, rr, path)?)
            }
            (Schema::Array(wi), Schema::Array(ri)) => {
                let item_path = format!("{path}[]");
                let item = self
                    .resolve(wi, ri, &item_path)?
                    .ok_or_else(|| mismatch(&item_path, "the reader's items are null"))?;
                Op::Array {
                    item: Box::new(item),
                    item_min: wi.min_encoded_size(),
                }
            }
            (Schema::Map(wv), Schema::Map(rv)) => {
                let value_path = format!("{path}{{}}");
                let value = self
                    .resolve(wv, rv, &value_path)?
                    .ok_or_else(|| mismatch(&value_path, "the reader's values are null"))?;
                Op::Map {
                    value: Box::new(value),
                    value_min: wv.min_encoded_size(),
                }
            }
            _ => return Err(refuse()),
        })
    }
}

/// A short description of a schema for messages: `long`, `record com.acme.Click`, ...
fn describe(s: &Schema) -> String {
    let logical = match s {
        Schema::Date => Some("date"),
        Schema::TimeMillis => Some("time-millis"),
        Schema::TimeMicros => Some("time-micros"),
        Schema::TimestampMillis => Some("timestamp-millis"),
        Schema::TimestampMicros => Some("timestamp-micros"),
        Schema::TimestampNanos => Some("timestamp-nanos"),
        Schema::LocalTimestampMillis => Some("local-timestamp-millis"),
        Schema::LocalTimestampMicros => Some("local-timestamp-micros"),
        Schema::LocalTimestampNanos => Some("local-timestamp-nanos"),
        Schema::Decimal(_) => Some("decimal"),
        Schema::BigDecimal => Some("big-decimal"),
        Schema::Uuid(_) => Some("uuid"),
        Schema::Duration(_) => Some("duration"),
        _ => None,
    };
    match (s, logical) {
        (Schema::Fixed(f), _) => format!("fixed `{}` of {} bytes", f.name.fullname(), f.size),
        (Schema::Record(_) | Schema::Enum(_), _) => {
            format!(
                "{} `{}`",
                s.type_name(),
                s.name().map(Name::fullname).unwrap_or_default()
            )
        }
        (_, Some(l)) => format!("{} ({l})", s.type_name()),
        _ => s.type_name().to_string(),
    }
}

/// Deepest nesting of a default value.
const MAX_DEFAULT_DEPTH: usize = 64;

/// A float or double default: a JSON number, or the strings `"NaN"`, `"Infinity"` and
/// `"-Infinity"`, which JSON has no numbers for and Avro Java writes instead (its
/// `Schema.toString()` of a field whose default is `Double.NaN`), and reads back as those values.
fn float_default(value: &Value) -> Option<f64> {
    match value {
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        v => v.as_f64(),
    }
}

/// Encodes a field's JSON default in Avro binary, as the reader's schema says.
pub(crate) fn encode_default(
    schema: &Schema,
    value: &Value,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<(), String> {
    if depth > MAX_DEFAULT_DEPTH {
        return Err("nested too deeply".into());
    }
    let expected = |what: &str| Err(format!("expected {what} for {}", describe(schema)));
    // Bytes and fixed defaults are strings whose code points 0-255 are the bytes.
    let latin1 = |v: &Value| -> Result<Vec<u8>, String> {
        let s = v.as_str().ok_or("expected a string of bytes")?;
        s.chars()
            .map(|c| {
                u8::try_from(u32::from(c)).map_err(|_| format!("code point {c:?} is not a byte"))
            })
            .collect()
    };
    match schema {
        Schema::Null => match value {
            Value::Null => Ok(()),
            _ => expected("null"),
        },
        Schema::Boolean => match value {
            Value::Bool(b) => {
                out.push(*b as u8);
                Ok(())
            }
            _ => expected("true or false"),
        },
        s if is_int(s) => match value.as_i64().and_then(|v| i32::try_from(v).ok()) {
            Some(v) => {
                encode_long(v as i64, out);
                Ok(())
            }
            None => expected("a 32-bit integer"),
        },
        s if is_long(s) => match value.as_i64() {
            Some(v) => {
                encode_long(v, out);
                Ok(())
            }
            None => expected("an integer"),
        },
        Schema::Float => match float_default(value) {
            Some(v) => {
                out.extend_from_slice(&(v as f32).to_le_bytes());
                Ok(())
            }
            None => expected("a number"),
        },
        Schema::Double => match float_default(value) {
            Some(v) => {
                out.extend_from_slice(&v.to_le_bytes());
                Ok(())
            }
            None => expected("a number"),
        },
        Schema::String | Schema::Uuid(None) => match value.as_str() {
            Some(s) => {
                encode_long(s.len() as i64, out);
                out.extend_from_slice(s.as_bytes());
                Ok(())
            }
            None => expected("a string"),
        },
        Schema::Bytes
        | Schema::BigDecimal
        | Schema::Decimal(crate::avro::schema::Decimal { fixed: None, .. }) => {
            let b = latin1(value)?;
            encode_long(b.len() as i64, out);
            out.extend_from_slice(&b);
            Ok(())
        }
        Schema::Fixed(f)
        | Schema::Duration(f)
        | Schema::Uuid(Some(f))
        | Schema::Decimal(crate::avro::schema::Decimal { fixed: Some(f), .. }) => {
            let b = latin1(value)?;
            if b.len() != f.size {
                return Err(format!("expected {} bytes, found {}", f.size, b.len()));
            }
            out.extend_from_slice(&b);
            Ok(())
        }
        Schema::Enum(e) => match value.as_str() {
            Some(s) => match e.symbols.iter().position(|x| x == s) {
                Some(i) => {
                    encode_long(i as i64, out);
                    Ok(())
                }
                None => Err(format!("`{s}` is not a symbol of enum `{}`", e.name)),
            },
            None => expected("a symbol"),
        },
        Schema::Array(items) => match value {
            Value::Array(values) => {
                if !values.is_empty() {
                    encode_long(values.len() as i64, out);
                    for v in values {
                        encode_default(items, v, out, depth + 1)?;
                    }
                }
                encode_long(0, out);
                Ok(())
            }
            _ => expected("an array"),
        },
        Schema::Map(values) => match value {
            Value::Object(entries) => {
                if !entries.is_empty() {
                    encode_long(entries.len() as i64, out);
                    for (k, v) in entries {
                        encode_long(k.len() as i64, out);
                        out.extend_from_slice(k.as_bytes());
                        encode_default(values, v, out, depth + 1)?;
                    }
                }
                encode_long(0, out);
                Ok(())
            }
            _ => expected("an object"),
        },
        Schema::Recursive(r) => match r.record() {
            Some(record) => encode_default(&Schema::Record(record), value, out, depth + 1),
            None => Err(format!(
                "the recursive type `{}` outlived its schema",
                r.name
            )),
        },
        Schema::Record(r) => match value {
            Value::Object(fields) => {
                for f in &r.fields {
                    let v = fields
                        .get(&f.name)
                        .or(f.default.as_ref())
                        .ok_or_else(|| format!("no value for field `{}`", f.name))?;
                    encode_default(&f.schema, v, out, depth + 1)?;
                }
                Ok(())
            }
            _ => expected("an object"),
        },
        Schema::Union(branches) => {
            // The specification: the default is of the first branch. Later branches are tried
            // too, as Avro 1.12 and several implementations accept.
            let mut first_error = None;
            for (i, b) in branches.iter().enumerate() {
                let mut buf = Vec::new();
                encode_long(i as i64, &mut buf);
                match encode_default(b, value, &mut buf, depth + 1) {
                    Ok(()) => {
                        out.extend_from_slice(&buf);
                        return Ok(());
                    }
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            Err(first_error.unwrap_or_else(|| "an empty union has no value".into()))
        }
        _ => expected("a value"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::cast::AsArray;
    use arrow_array::types::{Decimal128Type, Float64Type, Int64Type, TimestampMicrosecondType};
    use arrow_array::{Array, ArrayRef, RecordBatch};

    use super::*;
    use crate::avro::writer::Datum;
    use crate::decode::BatchDecoder;
    use crate::decode::types::plan;

    const V1: &str = r#"{"type":"record","name":"Event","namespace":"acme.v1","fields":[
        {"name":"id","type":"int"},
        {"name":"kind","type":{"type":"enum","name":"Kind","symbols":["A","B","C"]}},
        {"name":"score","type":"float"},
        {"name":"old","type":"string"},
        {"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}},
        {"name":"tag","type":["null","string"]}]}"#;
    const V2: &str = r#"{"type":"record","name":"Event","namespace":"acme.v2","fields":[
        {"name":"id","type":"long"},
        {"name":"kind","type":{"type":"enum","name":"Kind","symbols":["A","B","D"],"default":"A"}},
        {"name":"score","type":"double"},
        {"name":"at","type":{"type":"long","logicalType":"timestamp-micros"}},
        {"name":"label","aliases":["tag"],"type":["null","string","long"]},
        {"name":"added","type":{"type":"array","items":"int"},"default":[1,2]},
        {"name":"note","type":["null","string"],"default":null}]}"#;

    fn v1_datum(id: i64, kind: i64, tag: Option<&str>) -> Vec<u8> {
        let mut d = Datum::new();
        d.long(id)
            .long(kind)
            .float(1.5)
            .string("dropped")
            .long(1_700_000_000_123);
        match tag {
            Some(t) => d.long(1).string(t),
            None => d.long(0),
        };
        d.buf
    }

    fn decode(writer: &str, reader: &str, datums: &[Vec<u8>]) -> RecordBatch {
        let w = Schema::parse_str(writer).unwrap();
        let r = Schema::parse_str(reader).unwrap();
        let own = Arc::new(plan(&r).unwrap());
        let resolved = plan_resolved(&w, &r).unwrap();
        let mut d = BatchDecoder::new(own);
        for datum in datums {
            d.decode_datum_with(&resolved, datum).unwrap();
        }
        d.flush().unwrap().unwrap()
    }

    #[test]
    fn evolution_promotes_drops_defaults_renames_and_maps_symbols() {
        let b = decode(V1, V2, &[v1_datum(7, 2, Some("x")), v1_datum(-1, 1, None)]);
        assert_eq!(
            b.schema(),
            plan(&Schema::parse_str(V2).unwrap()).unwrap().schema
        );
        let id = b.column_by_name("id").unwrap().as_primitive::<Int64Type>();
        assert_eq!(id.values(), &[7, -1]);
        let kind = b.column_by_name("kind").unwrap().as_string::<i32>();
        // `C` is not in the reader's enum: its default `A` is taken.
        assert_eq!((kind.value(0), kind.value(1)), ("A", "B"));
        let score = b
            .column_by_name("score")
            .unwrap()
            .as_primitive::<Float64Type>();
        assert_eq!(score.value(0), 1.5);
        let at = b.column_by_name("at").unwrap();
        let at = at.as_primitive::<TimestampMicrosecondType>();
        assert_eq!(at.value(0), 1_700_000_000_123_000, "millis become micros");
        // `tag` ["null","string"] read as `label` ["null","string","long"] (an alias).
        let label = b.column_by_name("label").unwrap().as_struct();
        assert!(label.is_valid(0) && label.is_null(1));
        assert_eq!(label.column(0).as_string::<i32>().value(0), "x");
        assert!(label.column(1).is_null(0));
        let added = b.column_by_name("added").unwrap().as_list::<i32>();
        assert_eq!(added.value_length(1), 2);
        assert!(b.column_by_name("note").unwrap().is_null(0));
        assert!(b.column_by_name("old").is_none());
    }

    #[test]
    fn strict_check_names_the_field() {
        let w = Schema::parse_str(V1).unwrap();
        let r = Schema::parse_str(V2).unwrap();
        // Backward: V2 reads V1 data. Forward (V1 reading V2) fails: a long is no int.
        check_compatible(&w, &r).unwrap();
        let err = check_compatible(&r, &w).unwrap_err();
        assert_eq!(
            err.to_string(),
            "field `id`: the writer's long cannot be read as int"
        );
        // Fixed types of one name are told apart by their sizes.
        let fixed = |size: usize| {
            Schema::parse_str(&format!(
                r#"{{"type":"record","name":"R","fields":[{{"name":"f","type":
                    {{"type":"fixed","name":"X","size":{size}}}}}]}}"#
            ))
            .unwrap()
        };
        assert_eq!(
            check_compatible(&fixed(2), &fixed(3))
                .unwrap_err()
                .to_string(),
            "field `f`: the writer's fixed `X` of 2 bytes cannot be read as fixed `X` of 3 bytes"
        );
        let with = Schema::parse_str(
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"old","type":"string"}]}"#,
        )
        .unwrap();
        let without = Schema::parse_str(
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}"#,
        )
        .unwrap();
        check_compatible(&with, &without).unwrap();
        let err = check_compatible(&without, &with).unwrap_err();
        assert!(
            err.to_string()
                .contains("field `old`: the reader's field has no default"),
            "{err}"
        );
        // A symbol the reader lacks, without a reader default, is refused when strict.
        let e1 = Schema::parse_str(r#"{"type":"enum","name":"K","symbols":["A","B"]}"#).unwrap();
        let e2 = Schema::parse_str(r#"{"type":"enum","name":"K","symbols":["A"]}"#).unwrap();
        let err = check_compatible(&e1, &e2).unwrap_err();
        assert!(err.to_string().contains("`B`"), "{err}");
        // ... and fails only the records that use it when lenient.
        let p = plan_resolved(&e1, &e2).unwrap();
        let mut d = BatchDecoder::new(Arc::new(plan(&e2).unwrap()));
        d.decode_datum_with(&p, &[0]).unwrap();
        let err = d.decode_datum_with(&p, &[2]).unwrap_err();
        assert!(err.to_string().contains("`B`"), "{err}");
        assert_eq!(d.rows(), 1);
        // A reader enum whose default is none of its symbols is refused, whether or not a
        // record would need it.
        let e3 =
            Schema::parse_str(r#"{"type":"enum","name":"K","symbols":["A","B"],"default":"Q"}"#)
                .unwrap();
        for (w, strict) in [(&e1, true), (&e2, true), (&e1, false)] {
            let err = if strict {
                check_compatible(w, &e3).unwrap_err().to_string()
            } else {
                plan_resolved(w, &e3).unwrap_err().to_string()
            };
            assert!(
                err.contains("has the default `Q`, which is not one of its symbols"),
                "{err}"
            );
        }
        // Type changes that are no promotion.
        let s = Schema::parse_str(
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}"#,
        )
        .unwrap();
        let l = Schema::parse_str(
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":"long"}]}"#,
        )
        .unwrap();
        let err = check_compatible(&s, &l).unwrap_err();
        assert!(err.to_string().contains("field `a`"), "{err}");
    }

    #[test]
    fn failed_record_is_rolled_back() {
        let w = Schema::parse_str(
            r#"{"type":"record","name":"R","fields":[{"name":"s","type":"string"},
                {"name":"xs","type":{"type":"array","items":"string"}},{"name":"n","type":["null","long"]}]}"#,
        )
        .unwrap();
        let p = Arc::new(plan(&w).unwrap());
        let mut d = BatchDecoder::new(p);
        let mut good = Datum::new();
        good.string("a").long(1).string("b").long(0).long(1).long(5);
        d.decode_datum(&good.buf).unwrap();
        // Fails inside the array, after `s` and one item were appended.
        let mut bad = Datum::new();
        bad.string("zz").long(2).string("c").long(1).buf.push(0xff);
        assert!(d.decode_datum(&bad.buf).is_err());
        d.decode_datum(&good.buf).unwrap();
        let b = d.flush().unwrap().unwrap();
        assert_eq!(b.num_rows(), 2);
        let s = b.column(0).as_string::<i32>();
        assert_eq!((s.value(0), s.value(1)), ("a", "a"));
        let xs = b.column(1).as_list::<i32>();
        assert_eq!(xs.value_offsets(), &[0, 1, 2]);
        assert_eq!(xs.values().as_string::<i32>().value(1), "b");
        let n = b.column(2).as_primitive::<Int64Type>();
        assert_eq!((n.value(0), n.value(1)), (5, 5));
    }

    #[test]
    fn union_writer_into_plain_reader_and_plain_into_union() {
        // ["null","int"] read as long: nulls fail that record only.
        let w = Schema::parse_str(r#"["null","int"]"#).unwrap();
        let r = Schema::parse_str(r#""long""#).unwrap();
        let p = plan_resolved(&w, &r).unwrap();
        let mut d = BatchDecoder::new(Arc::new(plan(&r).unwrap()));
        let mut x = Datum::new();
        x.long(1).long(-3);
        d.decode_datum_with(&p, &x.buf).unwrap();
        assert!(d.decode_datum_with(&p, &[0]).is_err());
        assert!(check_compatible(&w, &r).is_err());
        // int read as ["null","string","double"]: promoted into the double member.
        let r2 = Schema::parse_str(r#"["null","string","double"]"#).unwrap();
        let p2 = plan_resolved(&Schema::Int, &r2).unwrap();
        let mut d2 = BatchDecoder::new(Arc::new(plan(&r2).unwrap()));
        d2.decode_datum_with(&p2, &[4]).unwrap();
        let b = d2.flush().unwrap().unwrap();
        let members = b.column(0).as_struct();
        assert_eq!(
            members.column(1).as_primitive::<Float64Type>().value(0),
            2.0
        );
        assert!(members.column(0).is_null(0));
    }

    /// What did not change between the writer's schema and the reader's is read with the
    /// ops of the reader's own plan: an enum of the same symbols in the same order, a `[null,
    /// T]` union of either order into one of either order (and its optional-field fast path);
    /// the values are those the general ops give.
    #[test]
    fn unchanged_enums_and_nullable_unions_resolve_to_the_plain_ops() {
        let writer = r#"{"type":"record","name":"R","fields":[
            {"name":"e","type":{"type":"enum","name":"E","symbols":["X","Y","Z"]}},
            {"name":"a","type":["null","string"]},
            {"name":"b","type":["long","null"]},
            {"name":"c","type":["null","int"]}]}"#;
        // The reader: the same, but `c` is a long now (promoted), `b`'s null first, and the
        // enum has a symbol more (a mapping).
        let reader = r#"{"type":"record","name":"R","fields":[
            {"name":"e","type":{"type":"enum","name":"E","symbols":["X","Y","Z"]}},
            {"name":"a","type":["null","string"]},
            {"name":"b","type":["null","long"]},
            {"name":"c","type":["null","long"]}]}"#;
        let mapped = reader.replace(r#"["X","Y","Z"]"#, r#"["X","Y","Z","W"]"#);
        let w = Schema::parse_str(writer).unwrap();
        let ops = |reader: &str| -> Vec<String> {
            let r = Schema::parse_str(reader).unwrap();
            plan_resolved(&w, &r)
                .unwrap()
                .root
                .iter()
                .map(|f| {
                    let op = format!("{:?}", f.op);
                    op[..op.find([' ', '(', '{']).unwrap_or(op.len())].to_string()
                })
                .collect()
        };
        assert_eq!(ops(reader), ["Enum", "Nullable", "Nullable", "Nullable"]);
        assert_eq!(
            ops(&mapped),
            ["EnumMap", "Nullable", "Nullable", "Nullable"]
        );
        let datum = |e: i64, a: Option<&str>, b: Option<i64>, c: Option<i64>| {
            let mut d = Datum::new();
            d.long(e);
            match a {
                Some(s) => d.long(1).string(s),
                None => d.long(0),
            };
            match b {
                Some(v) => d.long(0).long(v),
                None => d.long(1),
            };
            match c {
                Some(v) => d.long(1).long(v),
                None => d.long(0),
            };
            d.buf
        };
        let datums = [
            datum(2, Some("one"), None, Some(-7)),
            datum(0, None, Some(1 << 40), None),
            datum(1, Some(""), Some(-1), Some(3)),
        ];
        for r in [reader, mapped.as_str()] {
            let b = decode(writer, r, &datums);
            let shown: Vec<String> = (0..b.num_rows())
                .map(|i| {
                    (0..b.num_columns())
                        .map(|c| {
                            arrow_cast::display::ArrayFormatter::try_new(
                                b.column(c).as_ref(),
                                &Default::default(),
                            )
                            .unwrap()
                            .value(i)
                            .to_string()
                        })
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .collect();
            assert_eq!(
                shown,
                ["Z,one,,-7", "X,,1099511627776,", "Y,,-1,3"],
                "read as {r}"
            );
            assert_eq!(b.column(1).null_count(), 1);
            assert_eq!(b.column(2).null_count(), 1);
            assert_eq!(b.column(3).null_count(), 1);
        }
        // A branch index past the union's still fails the record.
        let mut bad = Datum::new();
        bad.long(0).long(0).long(2).long(0);
        let r = Schema::parse_str(reader).unwrap();
        let mut d = BatchDecoder::new(Arc::new(plan(&r).unwrap()));
        let err = d
            .decode_datum_with(&plan_resolved(&w, &r).unwrap(), &bad.buf)
            .unwrap_err();
        assert!(err.to_string().contains("union"), "{err}");
    }

    /// The member of a reader union that `datum` (written as `writer`) lands in, and its
    /// column.
    fn member_of(writer: &str, reader: &str, datum: &[u8]) -> (usize, ArrayRef) {
        let b = decode(writer, reader, &[datum.to_vec()]);
        let members = b.column(0).as_struct();
        let set: Vec<usize> = (0..members.num_columns())
            .filter(|&i| members.column(i).is_valid(0))
            .collect();
        assert_eq!(set.len(), 1, "{writer} as {reader}: members {set:?}");
        (set[0], members.column(set[0]).clone())
    }

    /// A writer's branch goes to the reader's branch of the same Avro type before one it can
    /// be promoted to, whatever their order and logical types; as Java's Avro resolves it
    /// (checked on random schemas by tests/evolution.rs against Avro Java).
    #[test]
    fn union_branches_of_the_same_type_come_before_promotions() {
        let record = |u: &str| {
            format!(r#"{{"type":"record","name":"R","fields":[{{"name":"u","type":{u}}}]}}"#)
        };
        // A decimal on bytes, to the decimal on bytes, not the one on a fixed before it.
        let dec_bytes = r#"{"type":"bytes","logicalType":"decimal","precision":3,"scale":1}"#;
        let dec_fixed = r#"{"type":"fixed","name":"F","size":5,"logicalType":"decimal","precision":7,"scale":0}"#;
        let writer = record(&format!(r#"["null",{dec_fixed},{dec_bytes}]"#));
        let reader = record(&format!(r#"[{dec_fixed},"null",{dec_bytes}]"#));
        let mut datum = Datum::new();
        datum.long(2).bytes(&[0x01, 0x02]);
        let (member, column) = member_of(&writer, &reader, &datum.buf);
        assert_eq!(member, 1);
        assert_eq!(column.as_primitive::<Decimal128Type>().value(0), 0x0102);
        // An int, to a date on int before a long before it.
        let (member, _) = member_of(
            &record(r#"["null","int"]"#),
            &record(r#"["long","null",{"type":"int","logicalType":"date"}]"#),
            &[2, 8],
        );
        assert_eq!(member, 1);
        // A uuid on string, to the string rather than the uuid on a fixed.
        let uuid_fixed = r#"{"type":"fixed","name":"U","size":16,"logicalType":"uuid"}"#;
        let text = "00112233-4455-6677-8899-aabbccddeeff";
        let mut datum = Datum::new();
        datum.long(1).string(text);
        let (member, column) = member_of(
            &record(r#"["null",{"type":"string","logicalType":"uuid"}]"#),
            &record(&format!(r#"[{uuid_fixed},"string","null"]"#)),
            &datum.buf,
        );
        assert_eq!(member, 1);
        assert_eq!(column.as_string::<i32>().value(0), text);

        // An int to a long rather than a float before it (16777217 has no float), a long to
        // a double rather than a float; to a float only where nothing else takes it.
        let (member, column) = member_of(
            &record(r#""int""#),
            &record(r#"["null","float","long"]"#),
            &[0x82, 0x80, 0x80, 0x10],
        );
        assert_eq!(member, 1);
        assert_eq!(column.as_primitive::<Int64Type>().value(0), 16_777_217);
        let (member, _) = member_of(
            &record(r#"["null","long"]"#),
            &record(r#"["float","null","double"]"#),
            &[2, 8],
        );
        assert_eq!(member, 1);
        let (member, column) = member_of(
            &record(r#""int""#),
            &record(r#"["null","string","float"]"#),
            &[8],
        );
        assert_eq!(member, 1);
        assert_eq!(
            column
                .as_primitive::<arrow_array::types::Float32Type>()
                .value(0),
            4.0
        );

        // A record to the branch of its full name, not an earlier one of the same short name.
        let item = |ns: &str| {
            format!(
                r#"{{"type":"record","name":"A","namespace":"{ns}","fields":[{{"name":"x","type":"int"}}]}}"#
            )
        };
        let (member, _) = member_of(
            &record(&item("com.w")),
            &record(&format!(r#"["null",{},{}]"#, item("x"), item("com.w"))),
            &[6],
        );
        assert_eq!(member, 1);
    }

    /// Logical types aside, as the specification resolves: a decimal reads as its bytes, bytes
    /// or a string as a decimal on bytes; a decimal on a fixed is no decimal on bytes.
    #[test]
    fn decimals_resolve_by_their_underlying_type() {
        let field = |t: &str| {
            format!(r#"{{"type":"record","name":"R","fields":[{{"name":"d","type":{t}}}]}}"#)
        };
        let dec_bytes =
            field(r#"{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}"#);
        let dec_fixed = field(
            r#"{"type":"fixed","name":"F","size":4,"logicalType":"decimal","precision":9,"scale":2}"#,
        );
        let datum = vec![4, 0x30, 0x39]; // bytes 0x3039 = 12345
        let b = decode(
            &dec_bytes,
            &field(r#""bytes""#),
            std::slice::from_ref(&datum),
        );
        assert_eq!(b.column(0).as_binary::<i32>().value(0), &[0x30, 0x39]);
        let b = decode(&field(r#""string""#), &dec_bytes, &[datum]);
        assert_eq!(b.column(0).as_primitive::<Decimal128Type>().value(0), 12345);
        let fixed = field(r#"{"type":"fixed","name":"F","size":4}"#);
        let b = decode(&dec_fixed, &fixed, &[vec![0, 0, 0x30, 0x39]]);
        assert_eq!(
            b.column(0).as_fixed_size_binary().value(0),
            &[0, 0, 0x30, 0x39]
        );
        for (w, r) in [(&dec_fixed, &dec_bytes), (&dec_bytes, &dec_fixed)] {
            let (w, r) = (Schema::parse_str(w).unwrap(), Schema::parse_str(r).unwrap());
            let err = check_compatible(&w, &r).unwrap_err().to_string();
            assert!(err.contains("cannot be read as"), "{err}");
        }
    }

    /// A default that its column refuses is an error of the reader schema, found when the
    /// plan is made, not of every record that lacks the field.
    #[test]
    fn defaults_are_read_once_when_planned() {
        let w = Schema::parse_str(r#"{"type":"record","name":"R","fields":[]}"#).unwrap();
        let reader = |field: &str| {
            Schema::parse_str(&format!(
                r#"{{"type":"record","name":"R","fields":[{field}]}}"#
            ))
            .unwrap()
        };
        let uuid = reader(
            r#"{"name":"u","type":{"type":"string","logicalType":"uuid"},"default":"not-a-uuid"}"#,
        );
        let binary = TypeOptions {
            uuid: UuidForm::Binary,
            ..Default::default()
        };
        let err = plan_resolved_with(&w, &uuid, binary)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("field `u`: invalid default \"not-a-uuid\"") && err.contains("8-4-4-4-12"),
            "{err}"
        );
        // As strings, any string is kept.
        plan_resolved_with(&w, &uuid, TypeOptions::default()).unwrap();
        let good = reader(
            r#"{"name":"u","type":{"type":"string","logicalType":"uuid"},"default":"00112233-4455-6677-8899-AABBCCDDEEFF"}"#,
        );
        plan_resolved_with(&w, &good, binary).unwrap();
        // A decimal default past its precision: 256 in decimal(2, 0).
        let decimal = reader(
            r#"{"name":"d","type":{"type":"bytes","logicalType":"decimal","precision":2,"scale":0},"default":"\u0001\u0000"}"#,
        );
        let err = plan_resolved(&w, &decimal).unwrap_err().to_string();
        assert!(err.contains("field `d`: invalid default"), "{err}");

        // Wherever the reader's default or enum sits (in a union branch, a field the writer
        // also has, a record in an array), and whatever records then use it.
        let writer = Schema::parse_str(
            r#"{"type":"record","name":"R","fields":[{"name":"f","type":["null",{"type":"enum","name":"E","symbols":["A","B"]}]}]}"#,
        )
        .unwrap();
        let enum_in_union = reader(
            r#"{"name":"f","type":["null",{"type":"enum","name":"E","symbols":["A"],"default":"Z"}]}"#,
        );
        let nested = reader(
            r#"{"name":"f","type":["null",{"type":"enum","name":"E","symbols":["A","B"]}]},
               {"name":"g","type":["null",{"type":"array","items":{"type":"record","name":"S","fields":[
                 {"name":"d","type":{"type":"bytes","logicalType":"decimal","precision":3,"scale":2},"default":"\u0009\u0009"}]}}],"default":null}"#,
        );
        for (r, want) in [
            (
                &enum_in_union,
                "has the default `Z`, which is not one of its symbols",
            ),
            (&nested, "field `g[].d`: invalid default"),
        ] {
            let err = plan_resolved(&writer, r).unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
            let err = check_compatible(&writer, r).unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        }
    }

    #[test]
    fn defaults_of_every_kind_encode() {
        let r = Schema::parse_str(
            r#"{"type":"record","name":"R","fields":[
            {"name":"b","type":"bytes","default":"\u00ff\u0000"},
            {"name":"f","type":{"type":"fixed","name":"F","size":2},"default":"ab"},
            {"name":"m","type":{"type":"map","values":"double"},"default":{"x":1.5}},
            {"name":"r","type":{"type":"record","name":"In","fields":[{"name":"q","type":"int","default":3}]},"default":{}},
            {"name":"u","type":["string","null"],"default":"s"}]}"#,
        )
        .unwrap();
        let w = Schema::parse_str(r#"{"type":"record","name":"R","fields":[]}"#).unwrap();
        let p = plan_resolved(&w, &r).unwrap();
        let mut d = BatchDecoder::new(Arc::new(plan(&r).unwrap()));
        d.decode_block_with(&p, &[], 2).unwrap();
        let b = d.flush().unwrap().unwrap();
        assert_eq!(b.column(0).as_binary::<i32>().value(1), &[0xff, 0]);
        assert_eq!(b.column(1).as_fixed_size_binary().value(0), b"ab");
        assert_eq!(b.column(4).as_string::<i32>().value(1), "s");
        let bad = Schema::parse_str(
            r#"{"type":"record","name":"R","fields":[{"name":"i","type":"int","default":"x"}]}"#,
        )
        .unwrap();
        let err = plan_resolved(&w, &bad).unwrap_err();
        assert!(
            err.to_string().contains("field `i`: invalid default"),
            "{err}"
        );
    }

    #[test]
    fn times_in_millis_read_as_micros_are_scaled() {
        let w = r#"{"type":"record","name":"R","fields":[
            {"name":"t","type":{"type":"int","logicalType":"time-millis"}},
            {"name":"o","type":["null",{"type":"int","logicalType":"time-millis"}]}]}"#;
        let r = r#"{"type":"record","name":"R","fields":[
            {"name":"t","type":{"type":"long","logicalType":"time-micros"}},
            {"name":"o","type":["null",{"type":"long","logicalType":"time-micros"}]}]}"#;
        let mut d = Datum::new();
        d.long(86_399_999).long(1).long(2);
        let b = decode(w, r, &[d.buf]);
        let t = b.column(0).as_primitive::<Int64Type>();
        assert_eq!(t.value(0), 86_399_999_000);
        let o = b.column(1).as_primitive::<Int64Type>();
        assert_eq!(o.value(0), 2_000);
    }

    #[test]
    fn float_defaults_may_be_nan_or_infinite_as_java_writes_them() {
        // Avro Java's Schema.toString() of fields whose defaults are Double.NaN and
        // Float.POSITIVE_INFINITY: JSON has no numbers for them.
        let r = r#"{"type":"record","name":"R","fields":[
            {"name":"n","type":"double","default":"NaN"},
            {"name":"i","type":"float","default":"Infinity"},
            {"name":"m","type":"double","default":"-Infinity"},
            {"name":"z","type":"double","default":-0.0}]}"#;
        let w = r#"{"type":"record","name":"R","fields":[]}"#;
        let b = decode(w, r, &[Vec::new()]);
        let f64s = |i: usize| {
            b.column(i)
                .as_primitive::<arrow_array::types::Float64Type>()
                .value(0)
        };
        assert!(f64s(0).is_nan());
        let f = b
            .column(1)
            .as_primitive::<arrow_array::types::Float32Type>()
            .value(0);
        assert_eq!(f, f32::INFINITY);
        assert_eq!(f64s(2), f64::NEG_INFINITY);
        assert!(f64s(3) == 0.0 && f64s(3).is_sign_negative());
        for text in [r#""nan""#, r#""Inf""#, r#""1.5""#] {
            let bad = format!(
                r#"{{"type":"record","name":"R","fields":[{{"name":"d","type":"double","default":{text}}}]}}"#
            );
            let w = Schema::parse_str(w).unwrap();
            let err = plan_resolved(&w, &Schema::parse_str(&bad).unwrap()).unwrap_err();
            assert!(
                err.to_string().contains("field `d`: invalid default"),
                "{err}"
            );
        }
    }

    /// A big-decimal (its scale in each value) is read as one from a big-decimal or bytes, as
    /// its bytes into bytes, never to or from a `decimal` (whose bytes are the unscaled value
    /// alone).
    #[test]
    fn big_decimals_resolve_with_bytes_not_with_decimals() {
        let record = |t: &str| {
            format!(r#"{{"type":"record","name":"R","fields":[{{"name":"v","type":{t}}}]}}"#)
        };
        let big = record(r#"{"type":"bytes","logicalType":"big-decimal"}"#);
        let bytes = record(r#""bytes""#);
        let decimal = record(r#"{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}"#);
        // -1234.50: unscaled -123450 (0xfe1dc6), scale 2, inside the value's bytes.
        let value = [0x06, 0xfe, 0x1d, 0xc6, 0x04];
        let mut datum = Datum::new();
        datum.bytes(&value);
        for writer in [&big, &bytes] {
            let b = decode(writer, &big, &[datum.buf.clone()]);
            assert_eq!(b.column(0).as_string::<i32>().value(0), "-1234.50");
        }
        let b = decode(&big, &bytes, &[datum.buf.clone()]);
        assert_eq!(b.column(0).as_binary::<i32>().value(0), value);
        for (w, r) in [(&big, &decimal), (&decimal, &big)] {
            let err = plan_resolved(
                &Schema::parse_str(w).unwrap(),
                &Schema::parse_str(r).unwrap(),
            )
            .unwrap_err()
            .to_string();
            assert!(
                err.contains("big-decimal") && err.contains("cannot be read as"),
                "{err}"
            );
        }
    }

    /// At a reference to a recursive record, the JSON text is the reader's record: times in the
    /// reader's unit, an enum symbol the reader lacks as its default, a union branch the reader
    /// cannot read failing its record only; and a reader whose record at that place is no
    /// reference (the recursion cut at one level) gets columns, the writer's deeper values read
    /// past.
    #[test]
    fn recursive_types_resolve_into_the_readers_json() {
        let list = |value: &str, extra: &str| {
            format!(
                r#"{{"type":"record","name":"L","fields":[{{"name":"v","type":{value}}},
                {{"name":"next","type":["null","L"]}}{extra}]}}"#
            )
        };
        let millis = list(r#"{"type":"long","logicalType":"timestamp-millis"}"#, "");
        let nanos = list(r#"{"type":"long","logicalType":"timestamp-nanos"}"#, "");
        // v = 7 ms, next = {v = -3 ms, next = null}.
        let mut datum = Datum::new();
        datum.long(7).long(1).long(-3).long(0);
        let b = decode(&millis, &nanos, &[datum.buf.clone()]);
        let next = b.column_by_name("next").unwrap().as_string::<i32>();
        assert_eq!(next.value(0), r#"{"v":-3000000,"next":null}"#);
        let b = decode(&nanos, &millis, &[datum.buf.clone()]);
        let next = b.column_by_name("next").unwrap().as_string::<i32>();
        assert_eq!(next.value(0), r#"{"v":-1,"next":null}"#, "floored");

        // An enum symbol the reader lacks: its default, or the record fails (and is refused
        // by the strict check).
        let enums = |symbols: &str, default: &str| {
            list(
                &format!(r#"{{"type":"enum","name":"E","symbols":{symbols}{default}}}"#),
                "",
            )
        };
        let writer = enums(r#"["A","B"]"#, "");
        let mut datum = Datum::new();
        datum.long(0).long(1).long(1).long(0); // v = A, next = {v = B}
        let b = decode(
            &writer,
            &enums(r#"["A","C"]"#, r#","default":"C""#),
            &[datum.buf.clone()],
        );
        let next = b.column_by_name("next").unwrap().as_string::<i32>();
        assert_eq!(next.value(0), r#"{"v":"C","next":null}"#);
        let strict = enums(r#"["A","C"]"#, "");
        let (w, r) = (
            Schema::parse_str(&writer).unwrap(),
            Schema::parse_str(&strict).unwrap(),
        );
        let err = check_compatible(&w, &r).unwrap_err().to_string();
        assert!(
            err.contains("symbol `B`") && err.contains("no default"),
            "{err}"
        );
        let own = Arc::new(plan(&r).unwrap());
        let resolved = plan_resolved(&w, &r).unwrap();
        let mut d = BatchDecoder::new(own);
        let err = d
            .decode_datum_with(&resolved, &datum.buf)
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot resolve to the reader schema"), "{err}");
        // The first record failed alone: one that uses A only converts.
        let mut ok = Datum::new();
        ok.long(0).long(1).long(0).long(0);
        d.decode_datum_with(&resolved, &ok.buf).unwrap();
        let b = d.flush().unwrap().unwrap();
        assert_eq!(b.num_rows(), 1);

        // A writer union's branch of another record than the reader's fails its record only.
        let writer = r#"{"type":"record","name":"T","fields":[{"name":"v","type":"long"},
            {"name":"kids","type":{"type":"array","items":["T",{"type":"record","name":"X",
            "fields":[{"name":"v","type":"long"}]}]}}]}"#;
        let reader = r#"{"type":"record","name":"T","fields":[{"name":"v","type":"long"},
            {"name":"kids","type":{"type":"array","items":"T"}}]}"#;
        let (w, r) = (
            Schema::parse_str(writer).unwrap(),
            Schema::parse_str(reader).unwrap(),
        );
        let resolved = plan_resolved(&w, &r).unwrap();
        let mut d = BatchDecoder::new(Arc::new(plan(&r).unwrap()));
        // v = 1, kids = [T{v = 2, kids = [X{v = 3}]}]: the nested X has no reader record.
        let mut bad = Datum::new();
        bad.long(1)
            .long(1)
            .long(0)
            .long(2)
            .long(1)
            .long(1)
            .long(3)
            .long(0)
            .long(0);
        let err = d
            .decode_datum_with(&resolved, &bad.buf)
            .unwrap_err()
            .to_string();
        assert!(err.contains("has no reader counterpart"), "{err}");
        // v = 1, kids = [T{v = 2, kids = [T{v = 3, kids = []}]}].
        let mut good = Datum::new();
        good.long(1)
            .long(1)
            .long(0)
            .long(2)
            .long(1)
            .long(0)
            .long(3)
            .long(0)
            .long(0)
            .long(0);
        d.decode_datum_with(&resolved, &good.buf).unwrap();
        let b = d.flush().unwrap().unwrap();
        let kids = b.column_by_name("kids").unwrap().as_list::<i32>();
        assert_eq!(
            kids.value(0).as_string::<i32>().value(0),
            r#"{"v":2,"kids":[{"v":3,"kids":[]}]}"#
        );

        // The reader cuts the recursion: its `next` is a record `C` (aliases `L`) of `v` only.
        let cut = r#"{"type":"record","name":"L","fields":[{"name":"v","type":"long"},
            {"name":"next","type":["null",{"type":"record","name":"C","aliases":["L"],
            "fields":[{"name":"v","type":"long"}]}]}]}"#;
        let mut datum = Datum::new();
        datum.long(5).long(1).long(6).long(1).long(7).long(0); // 5 -> 6 -> 7
        let b = decode(&list(r#""long""#, ""), cut, &[datum.buf.clone()]);
        let next = b.column_by_name("next").unwrap().as_struct();
        assert_eq!(next.column(0).as_primitive::<Int64Type>().value(0), 6);
    }
}
