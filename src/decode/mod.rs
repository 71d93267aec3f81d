//! Avro binary records -> Arrow columns, without a per-record value tree.
//!
//! Stage: after the container splitter and codec, before the Parquet encoder. A [`Plan`] is
//! compiled once per writer schema ([`types::plan`]); a [`BatchDecoder`] then runs that program
//! over the inflated data of one or more blocks, appending every value straight into typed Arrow
//! buffers, and [`BatchDecoder::flush`] hands them out as a [`RecordBatch`].
//!
//! Robustness: every read is bounds-checked; counts of records, array items and map entries are
//! checked against the bytes left before anything is reserved; union and enum indexes are checked;
//! strings are validated as UTF-8; decimals are checked against their precision. Errors carry the
//! record number and byte offset within the block.
//!
//! Limitations: after an error the decoder's columns hold a partial record; callers discard the
//! decoder (a rollback for per-record dead-lettering is future work).

mod json;
pub mod resolve;
pub mod types;

mod columns;

use std::sync::Arc;

use arrow_array::{RecordBatch, RecordBatchOptions};

use crate::avro::cursor::{Cursor, CursorError, SHORT};
pub use columns::ColumnError;
use columns::{Column, Data, repeats_key};
pub use resolve::{ResolveError, check_compatible, plan_resolved, plan_resolved_with};
use types::{Fast, FieldOp, MAX_ZERO_SIZE_ITEMS, Op, Promotion, Skip, Target};
pub use types::{
    Plan, PlanError, TypeOptions, UuidForm, WideDecimals, plan, plan_reader, plan_with,
};

/// Why a datum could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Malformed binary encoding.
    #[error(transparent)]
    Cursor(#[from] CursorError),
    /// A union branch index outside the union.
    #[error("union branch index {index} is out of range (the union has {branches} branches)")]
    UnionIndex {
        /// The index read.
        index: i64,
        /// Branches in the union.
        branches: usize,
    },
    /// An enum index outside the symbols.
    #[error("enum index {index} is out of range ({symbols} symbols)")]
    EnumIndex {
        /// The index read.
        index: i64,
        /// Symbols in the enum.
        symbols: usize,
    },
    /// A string that is not UTF-8.
    #[error("string is not valid UTF-8")]
    Utf8,
    /// A uuid string not in the 8-4-4-4-12 hex form (when uuids are stored as bytes).
    #[error("uuid is not in the 8-4-4-4-12 hex form")]
    Uuid,
    /// A decimal wider than its precision.
    #[error("decimal value does not fit its precision")]
    Decimal,
    /// A decimal whose scale puts its text past the digits parqour writes (a `big-decimal`'s
    /// own scale).
    #[error(
        "decimal scale {0} is past the {max} digits a decimal's text may have",
        max = types::MAX_TEXT_DECIMAL_PRECISION
    )]
    DecimalScale(i64),
    /// A `big-decimal` value whose bytes are not an unscaled value and a scale.
    #[error("big-decimal value is malformed: {0}")]
    BigDecimal(&'static str),
    /// An array or map count no block could hold.
    #[error("absurd item count {0}")]
    Count(u64),
    /// Items of no bytes (`null`, `fixed(0)`) past what one block or datum may hold in all.
    #[error(
        "{0} more items of no bytes (null or fixed(0)) would pass the {max} such items a block \
         may hold in all",
        max = Cursor::MAX_ZERO_SIZE_ITEMS
    )]
    ZeroSizeItems(u64),
    /// More than 2 GiB of variable-length values in one batch.
    #[error("more than 2 GiB of values in one column of a batch")]
    Overflow,
    /// The record cannot be read as the reader schema (a union branch or enum symbol the
    /// reader lacks).
    #[error("cannot resolve to the reader schema: {0}")]
    Resolution(Arc<str>),
    /// A time value that overflows when converted to the reader's unit.
    #[error("time value {0} is out of range in the reader's unit")]
    TimeRange(i64),
    /// A value of a recursive type nested deeper than its JSON text may.
    #[error("a value of a recursive type nests deeper than {0} levels")]
    TooDeep(usize),
    /// The plan and the column disagree (a bug).
    #[error("internal error: {0}")]
    Internal(&'static str),
}

/// A [`ValueError`] as the decoder's inner functions return it: boxed, so that their
/// `Result<(), Fault>` is one register and the hot path moves no error-sized results through
/// memory (the error path is rare and pays the allocation).
type Fault = Box<ValueError>;

impl From<CursorError> for Box<ValueError> {
    #[cold]
    fn from(e: CursorError) -> Self {
        Box::new(ValueError::Cursor(e))
    }
}

/// A datum that could not be decoded, located in its block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record {record} (byte {offset} of the block's records): {source}")]
pub struct DatumError {
    /// 0-based record number within the block.
    pub record: u64,
    /// Byte offset within the block's (decompressed) records where that record starts.
    pub offset: usize,
    /// What went wrong.
    pub source: ValueError,
}

/// Records one block may set aside one by one ([`BatchDecoder::decode_block_salvaging`]);
/// past them the block is set aside whole. Each costs a dead-letter entry (a copy of its bytes,
/// its error and source, ~200 bytes more): a block of tiny records that all fail (half a
/// million 2-byte strings that are not UTF-8 in a megabyte) took 2.4 GB in entries.
pub const MAX_SET_ASIDE_PER_BLOCK: usize = 64;

/// A record set aside by [`BatchDecoder::decode_block_salvaging`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRecord {
    /// Its bytes in the block's (decompressed) records.
    pub range: std::ops::Range<usize>,
    /// Why it was set aside (its record number and offset in the block too).
    pub error: DatumError,
}

/// Errors of the decode layer.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// A record could not be decoded.
    #[error(transparent)]
    Datum(#[from] DatumError),
    /// The block holds more bytes than its records use.
    #[error("{trailing} bytes left over after the block's {count} records")]
    Trailing {
        /// Records in the block.
        count: u64,
        /// Bytes left.
        trailing: usize,
    },
    /// The block claims more records than its bytes can hold.
    #[error("block claims {count} records but holds only {bytes} bytes")]
    Count {
        /// The count read.
        count: u64,
        /// Bytes in the block.
        bytes: usize,
    },
    /// The arrays could not be assembled.
    #[error(transparent)]
    Column(#[from] ColumnError),
}

/// Where the decoding of a block stands ([`BatchDecoder::decode_block_part`]): the records
/// decoded before, and the byte offset in the inflated block where the next one starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockPosition {
    /// Records of the block before this position.
    pub record: u64,
    /// Byte offset of the next record in the block's (inflated) data.
    pub offset: usize,
}

impl BlockPosition {
    /// The start of a block.
    pub const START: Self = Self {
        record: 0,
        offset: 0,
    };
}

/// Decodes blocks of records into Arrow columns for one plan.
#[derive(Debug)]
pub struct BatchDecoder {
    plan: Arc<Plan>,
    columns: Vec<Column>,
    rows: usize,
    /// Records of the group of blocks this decoder was sized for (0: not sized).
    group_records: usize,
}

impl BatchDecoder {
    /// A decoder that fills columns of `plan.schema`.
    pub fn new(plan: Arc<Plan>) -> Self {
        let columns = plan
            .schema
            .fields()
            .iter()
            .map(|f| Column::new(f.data_type(), f.is_nullable()))
            .collect();
        Self {
            plan,
            columns,
            rows: 0,
            group_records: 0,
        }
    }

    /// A decoder for a group of blocks holding `records` records (of all data types): its
    /// buffers are reserved from what the plan's last group held per record, scaled down to
    /// at most `max_bytes` in all (each buffer of 64 KiB or more then rounded up by at most an
    /// eighth, to a size class), instead of growing by doubling (which copies everything
    /// decoded once more). Its batches are what the next group is sized from.
    pub fn for_group(plan: Arc<Plan>, records: usize, max_bytes: usize) -> Self {
        let mut decoder = Self::new(plan);
        decoder.group_records = records;
        if let Some((seen, lengths)) = decoder.plan.sizes.get()
            && seen > 0
            && records > 0
        {
            let total: usize = lengths.iter().sum();
            // At most 4 times the last group: groups are cut by stored bytes, so a group of
            // many more records claims them in corrupt block headers (or follows small
            // objects); its buffers then grow as they fill.
            // A sixteenth more: a group a little larger per record than the last (strings a
            // little longer, lists a little fuller: about every other group) would otherwise
            // double a buffer near its end, copying it whole.
            let records = records.min(seen.saturating_mul(4));
            let (mut num, mut den) = (records.saturating_mul(17), seen.saturating_mul(16));
            if total as u128 * num as u128 / den as u128 > max_bytes as u128 {
                (num, den) = (max_bytes, total);
            }
            let mut it = lengths.iter();
            for c in &mut decoder.columns {
                c.reserve(&mut it, num, den);
            }
        }
        decoder
    }

    /// The plan this decoder runs.
    pub fn plan(&self) -> &Arc<Plan> {
        &self.plan
    }

    /// Rows decoded and not yet flushed.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Approximate bytes of decoded values held.
    pub fn byte_size(&self) -> usize {
        self.columns.iter().map(Column::byte_size).sum()
    }

    /// Decodes the `count` records of one inflated block; the block must hold exactly them.
    /// On error, the decoder is left holding exactly the rows it held before the call.
    pub fn decode_block(&mut self, data: &[u8], count: u64) -> Result<(), DecodeError> {
        let plan = self.plan.clone();
        self.decode_block_with(&plan, data, count)
    }

    /// [`Self::decode_block`] with another plan that fills the same schema: the plan of another
    /// writer schema resolved to this decoder's reader schema.
    pub fn decode_block_with(
        &mut self,
        plan: &Plan,
        data: &[u8],
        count: u64,
    ) -> Result<(), DecodeError> {
        self.decode_block_part(plan, data, count, BlockPosition::START, usize::MAX, None)
            .map(|_| ())
    }

    /// [`Self::decode_block_with`], setting aside each record whose values cannot be
    /// converted but whose encoding can be read past (a string that is not UTF-8, a decimal
    /// too large for its precision, an enum index out of range, a malformed uuid): it goes to
    /// `bad` and the block's other records are decoded. An error that leaves the record's end
    /// unknown (a union branch out of range, a length past the data), records that then do
    /// not end exactly at the end of the block (misread framing), or more than
    /// [`MAX_SET_ASIDE_PER_BLOCK`] such records fail the whole block as in
    /// `decode_block_with`, with `bad` as it was.
    pub fn decode_block_salvaging(
        &mut self,
        plan: &Plan,
        data: &[u8],
        count: u64,
        bad: &mut Vec<BadRecord>,
    ) -> Result<(), DecodeError> {
        self.decode_block_part(
            plan,
            data,
            count,
            BlockPosition::START,
            usize::MAX,
            Some(bad),
        )
        .map(|_| ())
    }

    /// Decodes part of a block: its records from `from` on, up to the first that ends at or
    /// past byte `stop` of `data` (all of them if none does), so that a block of many
    /// megabytes can be decoded and written a few megabytes at a time. Returns where the
    /// records left start, or `None` when the block is done (it must then end exactly at its
    /// last record). Record numbers and offsets in errors (and in `bad`, when given: see
    /// [`Self::decode_block_salvaging`]) count from the block's start. On error, the decoder
    /// is left holding exactly the rows it held before the call.
    pub fn decode_block_part(
        &mut self,
        plan: &Plan,
        data: &[u8],
        count: u64,
        from: BlockPosition,
        stop: usize,
        mut bad: Option<&mut Vec<BadRecord>>,
    ) -> Result<Option<BlockPosition>, DecodeError> {
        if !Arc::ptr_eq(&plan.schema, &self.plan.schema) && plan.schema != self.plan.schema {
            return Err(DecodeError::Datum(DatumError {
                record: from.record,
                offset: from.offset,
                source: ValueError::Internal("plan of another schema"),
            }));
        }
        let rest = data.get(from.offset..).unwrap_or_default();
        let left = count.saturating_sub(from.record);
        let min = plan.min_record_size as u64;
        let fits = from.offset <= data.len()
            && match (rest.len() as u64).checked_div(min) {
                Some(most) => left <= most,
                None => left <= MAX_ZERO_SIZE_ITEMS,
            };
        if !fits {
            return Err(DecodeError::Count {
                count: left,
                bytes: rest.len(),
            });
        }
        let (before, bad_before) = (self.rows, bad.as_ref().map_or(0, |b| b.len()));
        let fail = |this: &mut Self, bad: Option<&mut Vec<BadRecord>>, e: DecodeError| {
            this.truncate(before);
            if let Some(bad) = bad {
                bad.truncate(bad_before);
            }
            Err(e)
        };
        let mut cur = Cursor::at(data, from.offset);
        for record in from.record..count {
            let offset = cur.position();
            if offset >= stop && record > from.record {
                return Ok(Some(BlockPosition { record, offset }));
            }
            let Err(source) = decode_fields_inline(&plan.root, &mut cur, &mut self.columns) else {
                self.rows += 1;
                continue;
            };
            let error = DatumError {
                record,
                offset,
                source: *source,
            };
            if let (Some(bad), Some(skip)) = (bad.as_deref_mut(), &plan.skip)
                && bad.len() - bad_before < MAX_SET_ASIDE_PER_BLOCK
            {
                // Drop the record's partial values, then find its end.
                self.truncate(self.rows);
                cur.rewind(offset);
                if skip_datum(skip, &mut cur).is_ok() {
                    bad.push(BadRecord {
                        range: offset..cur.position(),
                        error,
                    });
                    continue;
                }
            }
            return fail(self, bad, error.into());
        }
        if cur.remaining() != 0 {
            let trailing = cur.remaining();
            return fail(self, bad, DecodeError::Trailing { count, trailing });
        }
        Ok(None)
    }

    /// Decodes one datum (e.g. the payload of an envelope); all of `data` must be used.
    pub fn decode_datum(&mut self, data: &[u8]) -> Result<(), DecodeError> {
        self.decode_block(data, 1)
    }

    /// Decodes one datum with another plan of the same schema (see [`Self::decode_block_with`]).
    pub fn decode_datum_with(&mut self, plan: &Plan, data: &[u8]) -> Result<(), DecodeError> {
        self.decode_block_with(plan, data, 1)
    }

    /// Drops every row after the first `rows` (and any partial row): the rollback after an error.
    pub fn truncate(&mut self, rows: usize) {
        for c in &mut self.columns {
            c.truncate(rows);
        }
        self.rows = self.rows.min(rows);
    }

    /// Hands out the rows decoded so far as a batch (`None` if there are none).
    pub fn flush(&mut self) -> Result<Option<RecordBatch>, DecodeError> {
        if self.rows == 0 {
            return Ok(None);
        }
        if self.group_records > 0 {
            // The buffers' lengths with every row in them (finish appends them anyway).
            self.columns.iter_mut().for_each(Column::catch_up);
            let mut lengths = Vec::new();
            self.columns.iter().for_each(|c| c.lengths(&mut lengths));
            self.plan.sizes.set(self.group_records, lengths);
        }
        // A decoder sized for a group seldom has a next batch (only after a block that
        // inflates past the batch bound): its buffers are not kept.
        let keep = self.group_records == 0;
        let arrays = self
            .columns
            .iter_mut()
            .map(|c| c.finish(keep))
            .collect::<Result<Vec<_>, _>>()?;
        let rows = std::mem::take(&mut self.rows);
        let batch = RecordBatch::try_new_with_options(
            self.plan.schema.clone(),
            arrays,
            &RecordBatchOptions::new().with_row_count(Some(rows)),
        )
        .map_err(ColumnError::from)?;
        Ok(Some(batch))
    }
}

#[inline]
fn decode_fields(
    fields: &[FieldOp],
    cur: &mut Cursor<'_>,
    columns: &mut [Column],
) -> Result<(), Fault> {
    decode_fields_inline(fields, cur, columns)
}

/// [`decode_fields`], inlined into the loop over a block's records, so that a record of a few
/// fields is not a call with its prologue each.
#[inline(always)]
fn decode_fields_inline(
    fields: &[FieldOp],
    cur: &mut Cursor<'_>,
    columns: &mut [Column],
) -> Result<(), Fault> {
    for f in fields {
        let Some(i) = f.column else {
            skip(&f.op, cur)?;
            continue;
        };
        let col = columns
            .get_mut(i)
            .ok_or(ValueError::Internal("field without column"))?;
        match f.fast {
            Fast::Long => decode_kind(Fast::Long, cur, col)?,
            Fast::Int => decode_kind(Fast::Int, cur, col)?,
            Fast::Double => decode_kind(Fast::Double, cur, col)?,
            Fast::Float => decode_kind(Fast::Float, cur, col)?,
            Fast::Boolean => decode_kind(Fast::Boolean, cur, col)?,
            Fast::String => decode_kind(Fast::String, cur, col)?,
            Fast::Bytes => decode_kind(Fast::Bytes, cur, col)?,
            Fast::OptionalLong => decode_optional(Fast::Long, f, cur, col)?,
            Fast::OptionalInt => decode_optional(Fast::Int, f, cur, col)?,
            Fast::OptionalDouble => decode_optional(Fast::Double, f, cur, col)?,
            Fast::OptionalFloat => decode_optional(Fast::Float, f, cur, col)?,
            Fast::OptionalBoolean => decode_optional(Fast::Boolean, f, cur, col)?,
            Fast::OptionalString => decode_optional(Fast::String, f, cur, col)?,
            Fast::OptionalBytes => decode_optional(Fast::Bytes, f, cur, col)?,
            Fast::OtherPlain => decode_fixed_or_enum(&f.op, cur, col)?,
            // (A reader field the writer lacks is an `Op::Default`: its default is decoded,
            // not the writer's bytes.)
            Fast::General => decode_nested(&f.op, cur, col)?,
        }
    }
    Ok(())
}

/// An optional field (`f`, a [`Fast`] optional kind; `kind`, its value's plain kind): its
/// branch index is one byte, unless it is out of range or not in its shortest form, which
/// `decode` reads (and refuses or accepts) as it reads any union. (The value is marked valid
/// before it is read: a record that fails is cut off all its columns anyway.)
#[inline(always)]
fn decode_optional(
    kind: Fast,
    f: &FieldOp,
    cur: &mut Cursor<'_>,
    col: &mut Column,
) -> Result<(), Fault> {
    match cur.peek() {
        Some(b) if b == f.null_byte => {
            cur.skip_peeked();
            append_null_kind(kind, col)
        }
        Some(b) if b == f.null_byte ^ 0x02 => {
            cur.skip_peeked();
            col.set_valid();
            decode_kind(kind, cur, col)
        }
        _ => decode(&f.op, cur, col),
    }
}

/// A null into `col`, whose values are of the plain `kind`.
#[inline(always)]
fn append_null_kind(kind: Fast, col: &mut Column) -> Result<(), Fault> {
    match (kind, &mut col.data) {
        (Fast::Long, Data::Int64(v)) => v.push(0),
        (Fast::Int, Data::Int32(v)) => v.push(0),
        (Fast::Double, Data::Float64(v)) => v.push(0.0),
        (Fast::Float, Data::Float32(v)) => v.push(0.0),
        (Fast::Boolean, Data::Boolean(b)) => b.append(false),
        (Fast::String | Fast::Bytes, Data::Bytes { offsets, values }) => {
            offsets.push(values.len() as i32)
        }
        _ => return Err(disagree()),
    }
    match &mut col.nulls {
        Some(n) => n.append(false),
        None => return Err(disagree()),
    }
    Ok(())
}

/// A plain value of `kind` (one of [`Fast`]'s plain kinds) into `col`. Its callers pass a
/// constant kind, so that each arm of `decode_fields` is specialized (one dispatch a field).
#[inline(always)]
fn decode_kind(kind: Fast, cur: &mut Cursor<'_>, col: &mut Column) -> Result<(), Fault> {
    match (kind, &mut col.data) {
        (Fast::Long, Data::Int64(v)) => v.push(cur.long()?),
        (Fast::Int, Data::Int32(v)) => v.push(cur.int()?),
        (Fast::Double, Data::Float64(v)) => v.push(cur.double()?),
        (Fast::Float, Data::Float32(v)) => v.push(cur.float()?),
        (Fast::Boolean, Data::Boolean(b)) => b.append(cur.boolean()?),
        (Fast::String, Data::Bytes { offsets, values }) => append_string(offsets, values, cur)?,
        (Fast::Bytes, Data::Bytes { offsets, values }) => {
            let (b, window) = cur.bytes_windowed()?;
            append_windowed(offsets, values, b, window)?;
        }
        _ => return Err(disagree()),
    }
    Ok(())
}

/// Reads past a datum that has no column (null fields, and writer fields the reader lacks).
fn skip(op: &Op, cur: &mut Cursor<'_>) -> Result<(), Fault> {
    match op {
        Op::Null => Ok(()),
        Op::Skip(s) => skip_datum(s, cur),
        Op::NullUnion(branches) => {
            let index = cur.long()?;
            if (0..*branches as i64).contains(&index) {
                Ok(())
            } else {
                Err(ValueError::UnionIndex {
                    index,
                    branches: *branches as usize,
                }
                .into())
            }
        }
        _ => Err(ValueError::Internal("skip of a field with a column").into()),
    }
}

/// Reads past one datum of a writer schema, checking what frames it as the decoder would
/// (lengths, counts, union indexes), not the values it skips (a string's UTF-8, a boolean's
/// byte): a record whose value failed is set aside by finding its end so.
fn skip_datum(s: &Skip, cur: &mut Cursor<'_>) -> Result<(), Fault> {
    match s {
        Skip::Nothing => {}
        Skip::Varint => {
            cur.long()?;
        }
        Skip::Boolean => {
            cur.take(1)?;
        }
        Skip::Float => {
            cur.take(4)?;
        }
        Skip::Double => {
            cur.take(8)?;
        }
        Skip::Bytes => {
            cur.bytes()?;
        }
        Skip::Fixed(n) => {
            cur.take(*n)?;
        }
        Skip::Record(fields) => {
            for f in fields {
                skip_datum(f, cur)?;
            }
        }
        Skip::Array(item) => skip_blocks(cur, |cur| skip_datum(item, cur))?,
        Skip::Map(value) => skip_blocks(cur, |cur| {
            cur.bytes()?;
            skip_datum(value, cur)
        })?,
        Skip::Union(branches) => skip_datum(branch(cur.long()?, branches)?, cur)?,
        // Rare (a record set aside): read as its JSON is, into a buffer dropped after.
        Skip::Recursive(record) => json::write_record(record, cur, &mut Vec::new())?,
    }
    Ok(())
}

/// Reads past the blocks of an array or map; blocks with a byte size are jumped over (their
/// items are read past one by one where the size does not fit the bytes left).
fn skip_blocks(
    cur: &mut Cursor<'_>,
    mut item: impl FnMut(&mut Cursor<'_>) -> Result<(), Fault>,
) -> Result<(), Fault> {
    loop {
        let (count, size) = cur.block_count()?;
        if count == 0 {
            return Ok(());
        }
        match size {
            Some(size) => {
                cur.take(size)?;
            }
            None => {
                // Each item takes at least one byte or is empty; bound the loop by the data,
                // and items of no bytes by what the buffer may hold of them.
                if count > cur.remaining() as u64 && !cur.take_zero_size_items(count) {
                    return Err(ValueError::ZeroSizeItems(count).into());
                }
                for _ in 0..count {
                    item(cur)?;
                }
            }
        }
    }
}

#[inline]
fn push_bytes(col: &mut Column, bytes: &[u8]) -> Result<(), Fault> {
    match &mut col.data {
        Data::Bytes { offsets, values } => append_bytes(offsets, values, bytes),
        _ => Err(ValueError::Internal("bytes into a non-bytes column").into()),
    }
}

#[inline(always)]
fn append_bytes(offsets: &mut Vec<i32>, values: &mut Vec<u8>, bytes: &[u8]) -> Result<(), Fault> {
    values.extend_from_slice(bytes);
    // (Not through `end_value`: measured 5.9 M more instructions in the record loop on one
    // events file.)
    let end = i32::try_from(values.len()).map_err(|_| ValueError::Overflow)?;
    offsets.push(end);
    Ok(())
}

/// Ends the value just written to the end of `values` (by a writer of its own: a decimal's
/// text, a JSON value): its end offset.
fn end_value(offsets: &mut Vec<i32>, values: &[u8]) -> Result<(), Fault> {
    let end = i32::try_from(values.len()).map_err(|_| ValueError::Overflow)?;
    offsets.push(end);
    Ok(())
}

/// Reads a string, checks that it is UTF-8 and appends it.
#[inline(always)]
fn append_string(
    offsets: &mut Vec<i32>,
    values: &mut Vec<u8>,
    cur: &mut Cursor<'_>,
) -> Result<(), Fault> {
    let (b, window) = cur.bytes_windowed()?;
    match window {
        Some(w) if ascii_prefix(w, b.len()) => {}
        _ => check_utf8(b)?,
    }
    append_windowed(offsets, values, b, window)
}

/// Appends `bytes`; when `window` holds them at its start, by copying the whole window and
/// cutting it back (a fixed-size copy, inlined), if the buffer has room for it (so that the
/// window's extra bytes never make the buffer grow).
#[inline(always)]
fn append_windowed(
    offsets: &mut Vec<i32>,
    values: &mut Vec<u8>,
    bytes: &[u8],
    window: Option<&[u8; SHORT]>,
) -> Result<(), Fault> {
    match window {
        Some(w) if values.capacity() - values.len() >= w.len() => {
            let end = values.len() + bytes.len();
            values.extend_from_slice(w);
            values.truncate(end);
            let end = i32::try_from(end).map_err(|_| ValueError::Overflow)?;
            offsets.push(end);
            Ok(())
        }
        _ => append_bytes(offsets, values, bytes),
    }
}

/// Whether the first `n` bytes of `w` (`n` at most its length) are ASCII: two 16-byte words
/// masked to them, without a branch on `n`.
#[inline(always)]
fn ascii_prefix(w: &[u8; SHORT], n: usize) -> bool {
    const HIGH: u128 = u128::from_ne_bytes([0x80; 16]);
    // The mask of the first `k` (at most 16) bytes of a word.
    let mask = |k: usize| u128::MAX.checked_shr(128 - 8 * k as u32).unwrap_or(0);
    let (Some(lo), Some(hi)) = (w.first_chunk::<16>(), w.last_chunk::<16>()) else {
        return false;
    };
    let lo = u128::from_le_bytes(*lo) & mask(n.min(16));
    let hi = u128::from_le_bytes(*hi) & mask(n.saturating_sub(16).min(16));
    (lo | hi) & HIGH == 0
}

/// Checks that a string is UTF-8: ASCII (the common case) a word at a time, the rest with SIMD.
#[inline]
fn check_utf8(b: &[u8]) -> Result<(), Fault> {
    if b.is_ascii() || simdutf8::basic::from_utf8(b).is_ok() {
        Ok(())
    } else {
        Err(ValueError::Utf8.into())
    }
}

/// Checks an item count read from the data against what the remaining bytes can hold (items
/// of no bytes against what the whole buffer may hold of them).
#[inline]
fn check_count(count: u64, item_min: usize, cur: &mut Cursor<'_>) -> Result<(), Fault> {
    match cur.remaining().checked_div(item_min) {
        Some(most) if count <= most as u64 => Ok(()),
        Some(_) => Err(ValueError::Count(count).into()),
        None if cur.take_zero_size_items(count) => Ok(()),
        None => Err(ValueError::ZeroSizeItems(count).into()),
    }
}

/// Decodes one datum into `col`. The plain values (numbers, strings, bytes, fixed), and a
/// union of null and one of them, are decoded here, in the caller's body: most fields are such
/// leaves, and a call per value into the large [`decode_nested`] costs more than the value
/// itself (its prologue saves every register its composite arms need); so did a call to
/// [`decode_nullable`] and one to append each null (a third of the cpu of records of mostly
/// null optional fields). Everything else goes there.
#[inline(always)]
fn decode(op: &Op, cur: &mut Cursor<'_>, col: &mut Column) -> Result<(), Fault> {
    match op {
        Op::Nullable { null_index, inner } if inner.is_plain() => {
            let index = cur.long()?;
            if index == i64::from(*null_index) {
                append_plain_null(inner, col);
            } else if index == 1 - i64::from(*null_index) {
                decode_plain(inner, cur, col)?;
                col.set_valid();
            } else {
                return Err(ValueError::UnionIndex { index, branches: 2 }.into());
            }
            Ok(())
        }
        _ => decode_plain(op, cur, col),
    }
}

/// Appends a null to `col`, whose values `op` (a plain op, [`Op::is_plain`]) decodes.
#[inline(always)]
fn append_plain_null(op: &Op, col: &mut Column) {
    if let Some(n) = &mut col.nulls {
        n.append(false);
    }
    match (op, &mut col.data) {
        (Op::Long, Data::Int64(v)) => v.push(0),
        (Op::Int, Data::Int32(v)) => v.push(0),
        (Op::String | Op::Bytes, Data::Bytes { offsets, values }) => {
            offsets.push(values.len() as i32);
        }
        (Op::Double, Data::Float64(v)) => v.push(0.0),
        _ => col.append_default(),
    }
}

/// [`decode`] of anything but a union of null and a plain value.
#[inline(always)]
fn decode_plain(op: &Op, cur: &mut Cursor<'_>, col: &mut Column) -> Result<(), Fault> {
    match op {
        Op::Long => decode_kind(Fast::Long, cur, col),
        Op::Int => decode_kind(Fast::Int, cur, col),
        Op::String => decode_kind(Fast::String, cur, col),
        Op::Bytes => decode_kind(Fast::Bytes, cur, col),
        Op::Double => decode_kind(Fast::Double, cur, col),
        Op::Float => decode_kind(Fast::Float, cur, col),
        Op::Boolean => decode_kind(Fast::Boolean, cur, col),
        _ => decode_fixed_or_enum(op, cur, col),
    }
}

/// The plain values whose op has more than a kind to say (a fixed's size, an enum's
/// symbols: [`Fast::OtherPlain`]); other ops go on to [`decode_nested`].
#[inline(always)]
fn decode_fixed_or_enum(op: &Op, cur: &mut Cursor<'_>, col: &mut Column) -> Result<(), Fault> {
    match (op, &mut col.data) {
        (Op::Fixed(size), Data::Fixed { values, len, .. }) => {
            values.extend_from_slice(cur.take(*size)?);
            *len += 1;
        }
        (Op::Enum(symbols), Data::Bytes { offsets, values }) => {
            let s = symbol(cur.long()?, symbols)?;
            append_windowed(offsets, values, s.name.as_bytes(), s.window.as_ref())?;
        }
        _ => return decode_nested(op, cur, col),
    }
    Ok(())
}

/// The ops [`decode`] leaves out: unions, records, arrays, maps, enums, decimals, uuids,
/// promotions and resolutions (a plain op whose column does not match is a bug, reported here).
///
/// Only a dispatch on the op: each common op has a small function of its own. As one large
/// function, its prologue (saving registers and setting up constants that only some arms
/// need) took a third of its time under perf, paid for every nullable value and record.
fn decode_nested(op: &Op, cur: &mut Cursor<'_>, col: &mut Column) -> Result<(), Fault> {
    match op {
        Op::Nullable { null_index, inner } => decode_nullable(*null_index, inner, cur, col),
        Op::Record(fields) => decode_record(fields, cur, col),
        Op::Array { item, item_min } => decode_array(item, *item_min, cur, col),
        Op::Map { value, value_min } => decode_map(value, *value_min, cur, col),
        Op::Union(branches) => decode_union(branches, cur, col),
        Op::Decimal { fixed, max } => decode_decimal(*fixed, *max, cur, col),
        Op::UuidFixed => decode_uuid_fixed(cur, col),
        _ => decode_other(op, cur, col),
    }
}

fn disagree() -> Fault {
    ValueError::Internal("op and column types disagree").into()
}

/// A union of null and one other type.
#[inline(never)]
fn decode_nullable(
    null_index: u32,
    inner: &Op,
    cur: &mut Cursor<'_>,
    col: &mut Column,
) -> Result<(), Fault> {
    let index = cur.long()?;
    if index == null_index as i64 {
        col.append_null();
    } else if index == 1 - null_index as i64 {
        decode(inner, cur, col)?;
        col.set_valid();
    } else {
        return Err(ValueError::UnionIndex { index, branches: 2 }.into());
    }
    Ok(())
}

#[inline(never)]
fn decode_record(fields: &[FieldOp], cur: &mut Cursor<'_>, col: &mut Column) -> Result<(), Fault> {
    let Some((children, len)) = col.struct_parts() else {
        return Err(disagree());
    };
    decode_fields(fields, cur, children)?;
    *len += 1;
    Ok(())
}

#[inline(never)]
fn decode_array(
    item: &Op,
    item_min: usize,
    cur: &mut Cursor<'_>,
    col: &mut Column,
) -> Result<(), Fault> {
    let Data::List { offsets, child } = &mut col.data else {
        return Err(disagree());
    };
    // An array of records (bids, line items): the struct's children are taken once per array,
    // and each item decodes its fields here, not through two calls (`decode_nested`,
    // `decode_record`) per item.
    if let Op::Record(fields) = item
        && let Some((children, len)) = child.struct_parts()
    {
        return decode_blocks(cur, offsets, item_min, |cur| {
            decode_fields(fields, cur, children)?;
            *len += 1;
            Ok(())
        });
    }
    // Arrays of strings (tags, segments) and numbers: each item without the dispatch on its op.
    match item {
        Op::String => decode_blocks(cur, offsets, item_min, |cur| {
            decode_kind(Fast::String, cur, child)
        }),
        Op::Long => decode_blocks(cur, offsets, item_min, |cur| {
            decode_kind(Fast::Long, cur, child)
        }),
        _ => decode_blocks(cur, offsets, item_min, |cur| decode(item, cur, child)),
    }
}

/// Decodes a reader's default (`bytes`, read by `op`) into a column of `field` and drops it:
/// the error a record lacking the field would get.
pub(crate) fn check_default(
    op: &Op,
    bytes: &[u8],
    field: &arrow_schema::Field,
) -> Result<(), String> {
    let mut col = Column::new(field.data_type(), field.is_nullable());
    decode(op, &mut Cursor::new(bytes), &mut col).map_err(|e| e.to_string())
}

#[inline(never)]
fn decode_map(
    value: &Op,
    value_min: usize,
    cur: &mut Cursor<'_>,
    col: &mut Column,
) -> Result<(), Fault> {
    let Data::Map {
        offsets,
        keys,
        values,
        check,
    } = &mut col.data
    else {
        return Err(disagree());
    };
    let from = offsets.last().copied().unwrap_or(0) as usize;
    let Data::Bytes {
        offsets: key_offsets,
        values: key_values,
    } = &mut keys.data
    else {
        return Err(disagree());
    };
    // Maps of strings (attributes, labels): each value without the dispatch on its op.
    if let Op::String = value {
        decode_blocks(cur, offsets, 1 + value_min, |cur| {
            append_string(key_offsets, key_values, cur)?;
            decode_kind(Fast::String, cur, values)
        })?;
    } else {
        decode_blocks(cur, offsets, 1 + value_min, |cur| {
            append_string(key_offsets, key_values, cur)?;
            decode(value, cur, values)
        })?;
    }
    let to = offsets.last().copied().unwrap_or(0) as usize;
    if repeats_key(keys, from, to, &mut check.seen) {
        check.repeats = true;
    }
    Ok(())
}

/// The blocks of an array or a map: each block's count (checked against the bytes left, at
/// `item_min` bytes an item) of items read by `item`, then the end offset of the whole.
#[inline(always)]
fn decode_blocks(
    cur: &mut Cursor<'_>,
    offsets: &mut Vec<i32>,
    item_min: usize,
    mut item: impl FnMut(&mut Cursor<'_>) -> Result<(), Fault>,
) -> Result<(), Fault> {
    let mut total = *offsets.last().unwrap_or(&0) as i64;
    loop {
        let (count, _) = cur.block_count()?;
        if count == 0 {
            break;
        }
        check_count(count, item_min, cur)?;
        for _ in 0..count {
            item(cur)?;
        }
        total += count as i64;
    }
    offsets.push(i32::try_from(total).map_err(|_| ValueError::Overflow)?);
    Ok(())
}

#[inline(never)]
fn decode_union(
    branches: &[Option<(usize, Op)>],
    cur: &mut Cursor<'_>,
    col: &mut Column,
) -> Result<(), Fault> {
    if !matches!(col.data, Data::Struct { .. }) {
        return Err(disagree());
    }
    match branch(cur.long()?, branches)? {
        // The null branch: the struct itself is null.
        None => col.append_null(),
        Some((member, op)) => {
            let Some((children, len)) = col.struct_parts() else {
                return Err(disagree());
            };
            fill_member(children, *member, op, cur)?;
            *len += 1;
            col.set_valid();
        }
    }
    Ok(())
}

#[inline(never)]
fn decode_decimal(
    fixed: Option<usize>,
    max: i128,
    cur: &mut Cursor<'_>,
    col: &mut Column,
) -> Result<(), Fault> {
    let Data::Decimal(v) = &mut col.data else {
        return Err(disagree());
    };
    // (The bytes read here, not through `decimal_bytes`: measured 2.8 M more instructions on
    // one events file, on the hot path of every decimal.)
    let bytes = match fixed {
        Some(n) => cur.take(n)?,
        None => cur.bytes()?,
    };
    let value = decimal_from_be(bytes)?;
    if value > max || value < -max {
        return Err(ValueError::Decimal.into());
    }
    v.push(value);
    Ok(())
}

/// A uuid on fixed(16), as its 36-character text (a copy of known size: no `memmove` call).
#[inline(never)]
fn decode_uuid_fixed(cur: &mut Cursor<'_>, col: &mut Column) -> Result<(), Fault> {
    let Data::Bytes { offsets, values } = &mut col.data else {
        return Err(disagree());
    };
    append_bytes(offsets, values, &format_uuid(cur.take_array::<16>()?))
}

/// The rest: promotions, resolutions, uuids, durations, defaults and the rarer leaves.
#[inline(never)]
fn decode_other(op: &Op, cur: &mut Cursor<'_>, col: &mut Column) -> Result<(), Fault> {
    match (op, &mut col.data) {
        (Op::NanosToMicros, Data::Int64(v)) => v.push(cur.long()?.div_euclid(1000)),
        // fixed(0), planned as Binary.
        (Op::Fixed(size), Data::Bytes { offsets, values }) => {
            append_bytes(offsets, values, cur.take(*size)?)?;
        }
        (Op::Single(inner), _) => {
            let index = cur.long()?;
            if index != 0 {
                return Err(ValueError::UnionIndex { index, branches: 1 }.into());
            }
            return decode(inner, cur, col);
        }
        (Op::UuidBytes, Data::Fixed { values, len, .. }) => {
            values.extend_from_slice(cur.take(16)?);
            *len += 1;
        }
        (Op::UuidParse, Data::Fixed { values, len, .. }) => {
            values.extend_from_slice(&parse_uuid(cur.bytes()?)?);
            *len += 1;
        }
        (Op::Duration, Data::Struct { .. }) => {
            let b = cur.take(12)?;
            let Some((children, len)) = col.struct_parts() else {
                return Err(disagree());
            };
            for (i, child) in children.iter_mut().enumerate() {
                let part = u32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]);
                match &mut child.data {
                    Data::Int64(v) => v.push(part as i64),
                    _ => return Err(ValueError::Internal("duration child").into()),
                }
            }
            *len += 1;
        }
        (Op::Promote(p), data) => match (p, data) {
            (Promotion::IntToLong, Data::Int64(v)) => v.push(cur.int()? as i64),
            (Promotion::IntToFloat, Data::Float32(v)) => v.push(cur.int()? as f32),
            (Promotion::IntToDouble, Data::Float64(v)) => v.push(cur.int()? as f64),
            (Promotion::LongToFloat, Data::Float32(v)) => v.push(cur.long()? as f32),
            (Promotion::LongToDouble, Data::Float64(v)) => v.push(cur.long()? as f64),
            (Promotion::FloatToDouble, Data::Float64(v)) => v.push(cur.float()? as f64),
            _ => return Err(ValueError::Internal("promotion into the wrong column").into()),
        },
        (
            Op::DecimalText {
                fixed,
                precision,
                scale,
            },
            Data::Bytes { offsets, values },
        ) => {
            decimal_text(
                decimal_bytes(*fixed, cur)?,
                *precision,
                *scale as i64,
                values,
            )?;
            end_value(offsets, values)?;
        }
        (Op::BigDecimalText, Data::Bytes { offsets, values }) => {
            big_decimal_text(cur.bytes()?, values)?;
            end_value(offsets, values)?;
        }
        (Op::Json(record), Data::Bytes { offsets, values }) => {
            json::write_record(record, cur, values)?;
            end_value(offsets, values)?;
        }
        (Op::JsonResolved(pair), Data::Bytes { offsets, values }) => {
            json::write_resolved_record(&pair.writer, &pair.reader, cur, values)?;
            end_value(offsets, values)?;
        }
        (Op::Rescale { mul, div }, Data::Int64(v)) => v.push(rescaled(cur.long()?, *mul, *div)?),
        (Op::EnumMap { symbols, writer }, _) => {
            let index = cur.long()?;
            match symbol(index, symbols)? {
                Some(s) => push_bytes(col, s.as_bytes())?,
                None => {
                    return Err(ValueError::Resolution(
                        format!(
                            "enum symbol `{}` is not in the reader's enum, which has no default",
                            writer.get(index as usize).map_or("?", String::as_str)
                        )
                        .into(),
                    )
                    .into());
                }
            }
        }
        (
            Op::Resolve {
                read_index,
                branches,
            },
            _,
        ) => {
            let index = if *read_index { cur.long()? } else { 0 };
            match branch(index, branches)? {
                Target::Null => col.append_null(),
                Target::Value(op) => {
                    decode(op, cur, col)?;
                    col.set_valid();
                }
                Target::Member(member, op) => {
                    let Some((children, len)) = col.struct_parts() else {
                        return Err(ValueError::Internal("union member into a non-struct").into());
                    };
                    fill_member(children, *member, op, cur)?;
                    *len += 1;
                    col.set_valid();
                }
                Target::Fail(message) => return Err(ValueError::Resolution(message.clone()).into()),
            }
        }
        (Op::Default { bytes, op }, _) => decode(op, &mut Cursor::new(bytes), col)?,
        (Op::Null | Op::NullUnion(_) | Op::Skip(_), _) => {
            return Err(ValueError::Internal("null op with a column").into());
        }
        _ => return Err(ValueError::Internal("op and column types disagree").into()),
    }
    Ok(())
}

/// The union branch (or its target) that `index` names.
#[inline]
fn branch<T>(index: i64, branches: &[T]) -> Result<&T, Fault> {
    usize::try_from(index)
        .ok()
        .and_then(|i| branches.get(i))
        .ok_or_else(|| {
            ValueError::UnionIndex {
                index,
                branches: branches.len(),
            }
            .into()
        })
}

/// The enum symbol (or its mapping) that `index` names.
#[inline(always)]
fn symbol<T>(index: i64, symbols: &[T]) -> Result<&T, Fault> {
    usize::try_from(index)
        .ok()
        .and_then(|i| symbols.get(i))
        .ok_or_else(|| {
            ValueError::EnumIndex {
                index,
                symbols: symbols.len(),
            }
            .into()
        })
}

/// One row of a union's struct column: `member` decoded with `op`, every other member null.
fn fill_member(
    children: &mut [Column],
    member: usize,
    op: &Op,
    cur: &mut Cursor<'_>,
) -> Result<(), Fault> {
    for (i, c) in children.iter_mut().enumerate() {
        if i == member {
            decode(op, cur, c)?;
            c.set_valid();
        } else {
            c.append_null();
        }
    }
    Ok(())
}

/// The bytes of a decimal's unscaled value: on a fixed of `fixed` bytes, or on bytes (`None`).
#[inline(always)]
fn decimal_bytes<'a>(fixed: Option<usize>, cur: &mut Cursor<'a>) -> Result<&'a [u8], Fault> {
    Ok(match fixed {
        Some(n) => cur.take(n)?,
        None => cur.bytes()?,
    })
}

/// Big-endian two's complement bytes (the unscaled value of a decimal) as the plain text of the
/// value at `scale` (`-1234.50` for -123450 at scale 2, `0.05` for 5), appended to `out` (only
/// once the value is known to fit). A value of more than `precision` digits (at most
/// [`types::MAX_TEXT_DECIMAL_PRECISION`]) is a [`ValueError::Decimal`], found before any
/// arithmetic where its bytes are too many for the precision, so that a long value costs no
/// more than its bytes.
///
/// `scale` may be negative (a `big-decimal`'s: `1000` for 1 at scale -3) or past the precision
/// (`0.001` for 1 at scale 3 of one digit), each at most [`types::MAX_TEXT_DECIMAL_PRECISION`]
/// digits (else a [`ValueError::DecimalScale`]), so that the text stays bounded.
fn decimal_text(
    bytes: &[u8],
    precision: usize,
    scale: i64,
    out: &mut Vec<u8>,
) -> Result<(), Fault> {
    // 32-bit limbs of the magnitude, least significant first: 1000 digits take 104.
    const LIMBS: usize = 112;
    if precision > types::MAX_TEXT_DECIMAL_PRECISION {
        return Err(ValueError::Internal("a decimal's text past its bounds").into());
    }
    if scale.unsigned_abs() > types::MAX_TEXT_DECIMAL_PRECISION as u64 {
        return Err(ValueError::DecimalScale(scale).into());
    }
    let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
    // Sign extension carries no digits: leading 0x00 bytes of a positive value, leading 0xff
    // bytes of a negative one (whose next byte keeps the sign).
    let fill = if negative { 0xff } else { 0x00 };
    let start = bytes.iter().position(|&b| b != fill).unwrap_or(bytes.len());
    let start = if negative && (start == bytes.len() || bytes[start] & 0x80 == 0) {
        start.saturating_sub(1)
    } else {
        start
    };
    let significant = &bytes[start..];
    // k significant bytes hold a magnitude of at least 256^(k-2), (k-2) * 2.408 digits.
    if significant.len() > precision * 1000 / 2408 + 2 || significant.len() > (LIMBS - 1) * 4 {
        return Err(ValueError::Decimal.into());
    }
    let mut limbs = [0u32; LIMBS];
    for (i, &b) in significant.iter().rev().enumerate() {
        limbs[i / 4] |= u32::from(if negative { !b } else { b }) << (8 * (i % 4));
    }
    let mut n = significant.len().div_ceil(4);
    if negative {
        // The magnitude of a negative value: its bits inverted (above), plus one.
        let mut carry = true;
        for limb in &mut limbs[..n] {
            (*limb, carry) = limb.overflowing_add(u32::from(carry));
            if !carry {
                break;
            }
        }
        if carry {
            limbs[n] = 1;
            n += 1;
        }
    }
    // Digits, least significant first, nine at a time (the last nine may pass the precision).
    let mut digits = [0u8; types::MAX_TEXT_DECIMAL_PRECISION + 12];
    let mut count = 0;
    while n > 0 && limbs[n - 1] == 0 {
        n -= 1;
    }
    while n > 0 {
        let mut rem = 0u64;
        for limb in limbs[..n].iter_mut().rev() {
            let cur = (rem << 32) | u64::from(*limb);
            *limb = (cur / 1_000_000_000) as u32;
            rem = cur % 1_000_000_000;
        }
        while n > 0 && limbs[n - 1] == 0 {
            n -= 1;
        }
        for _ in 0..9 {
            if count == digits.len() {
                return Err(ValueError::Decimal.into());
            }
            digits[count] = b'0' + (rem % 10) as u8;
            rem /= 10;
            count += 1;
        }
    }
    while count > 0 && digits[count - 1] == b'0' {
        count -= 1;
    }
    if count > precision {
        return Err(ValueError::Decimal.into());
    }
    if negative && count > 0 {
        out.push(b'-');
    }
    let digit = |i: usize| if i < count { digits[i] } else { b'0' };
    if scale < 0 {
        // The digits, then as many zeros as the scale is below zero (none after a zero).
        out.extend((0..count.max(1)).rev().map(digit));
        if count > 0 {
            out.resize(out.len() + scale.unsigned_abs() as usize, b'0');
        }
        return Ok(());
    }
    let scale = scale as usize;
    // The integer part (at least `0`), then the fraction.
    out.extend((scale..count.max(scale + 1)).rev().map(digit));
    if scale > 0 {
        out.push(b'.');
        out.extend((0..scale).rev().map(digit));
    }
    Ok(())
}

/// A `big-decimal` value's bytes (the unscaled value as Avro `bytes`, then the scale as an Avro
/// `int`, as Java's `BigDecimalConversion` and Rust's `apache-avro` write them) as the plain
/// text of the value (`-1234.50`, `1000` for 1 at scale -3), appended to `out`. At most
/// [`types::MAX_TEXT_DECIMAL_PRECISION`] digits and as much scale either way; anything else in
/// the bytes (a truncated value, bytes after the scale) fails the value.
pub(crate) fn big_decimal_text(value: &[u8], out: &mut Vec<u8>) -> Result<(), Fault> {
    let mut inner = Cursor::new(value);
    let unscaled = inner
        .bytes()
        .map_err(|_| ValueError::BigDecimal("its unscaled value is cut short"))?;
    let scale = inner
        .long()
        .map_err(|_| ValueError::BigDecimal("its scale is missing or malformed"))?;
    if inner.remaining() != 0 {
        return Err(ValueError::BigDecimal("bytes follow its scale").into());
    }
    decimal_text(unscaled, types::MAX_TEXT_DECIMAL_PRECISION, scale, out)
}

/// A time value `raw` in the reader's unit: times `mul`, divided by `div` (floored).
#[inline]
fn rescaled(raw: i64, mul: i64, div: i64) -> Result<i64, Fault> {
    Ok(raw
        .checked_mul(mul)
        .ok_or(ValueError::TimeRange(raw))?
        .div_euclid(div))
}

/// Big-endian two's complement bytes -> i128; longer inputs must be pure sign extension.
#[inline]
fn decimal_from_be(bytes: &[u8]) -> Result<i128, Fault> {
    let Some(&first) = bytes.first() else {
        return Ok(0);
    };
    let negative = first & 0x80 != 0;
    if bytes.len() <= 8 {
        // The common case (up to 18 digits), without a buffer: the bytes shifted into a
        // word of the sign's bits.
        let mut v = -i64::from(negative);
        for &b in bytes {
            v = (v << 8) | i64::from(b);
        }
        return Ok(i128::from(v));
    }
    let (head, tail) = if bytes.len() > 16 {
        bytes.split_at(bytes.len() - 16)
    } else {
        (&[][..], bytes)
    };
    let fill = if negative { 0xff } else { 0x00 };
    if head.iter().any(|b| *b != fill) {
        return Err(ValueError::Decimal.into());
    }
    let mut buf = [fill; 16];
    buf[16 - tail.len()..].copy_from_slice(tail);
    let value = i128::from_be_bytes(buf);
    if (value < 0) != negative {
        return Err(ValueError::Decimal.into());
    }
    Ok(value)
}

/// The 16 bytes of a uuid in its 8-4-4-4-12 hex form (either case).
fn parse_uuid(text: &[u8]) -> Result<[u8; 16], Fault> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let bad = || Box::new(ValueError::Uuid);
    if text.len() != 36 || [8, 13, 18, 23].iter().any(|&i| text[i] != b'-') {
        return Err(bad());
    }
    let mut out = [0u8; 16];
    let mut digits = text.iter().filter(|&&c| c != b'-');
    for byte in &mut out {
        let (Some(&hi), Some(&lo)) = (digits.next(), digits.next()) else {
            return Err(bad());
        };
        *byte = (nibble(hi).ok_or_else(bad)? << 4) | nibble(lo).ok_or_else(bad)?;
    }
    Ok(out)
}

/// The 36-character form of 16 uuid bytes, on the stack: each half as 16 hex digits computed
/// in one 128-bit word (no table lookups), then placed around the dashes.
#[inline]
fn format_uuid(b: &[u8; 16]) -> [u8; 36] {
    let (high, low) = b.split_at(8);
    let (h, l) = (hex16(high), hex16(low));
    let mut out = [b'-'; 36];
    out[0..8].copy_from_slice(&h[0..8]);
    out[9..13].copy_from_slice(&h[8..12]);
    out[14..18].copy_from_slice(&h[12..16]);
    out[19..23].copy_from_slice(&l[0..4]);
    out[24..36].copy_from_slice(&l[4..16]);
    out
}

/// 8 bytes as 16 lowercase hex digits. Each byte's two nibbles are spread into two bytes of
/// a 128-bit word (high nibble first, read big-endian), and each nibble `d` becomes
/// `d + '0'`, plus `'a' - '0' - 10` where `d > 9`: no byte carries into the next.
#[inline]
fn hex16(bytes: &[u8]) -> [u8; 16] {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[..8]);
    let x = u64::from_be_bytes(word);
    /// Moves the 8 bytes of `v` to the low byte of 8 16-bit lanes, in order.
    fn spread(v: u64) -> u128 {
        let mut v = u128::from(v);
        v = (v | (v << 32)) & 0x0000_0000_ffff_ffff_0000_0000_ffff_ffff;
        v = (v | (v << 16)) & 0x0000_ffff_0000_ffff_0000_ffff_0000_ffff;
        (v | (v << 8)) & 0x00ff_00ff_00ff_00ff_00ff_00ff_00ff_00ff
    }
    const LOW_NIBBLES: u64 = 0x0f0f_0f0f_0f0f_0f0f;
    let digits = (spread((x >> 4) & LOW_NIBBLES) << 8) | spread(x & LOW_NIBBLES);
    const ONES: u128 = 0x0101_0101_0101_0101_0101_0101_0101_0101;
    // 1 in each byte whose digit is 10 or more (d + 6 reaches 16).
    let letters = ((digits + 6 * ONES) >> 4) & ONES;
    (digits + b'0' as u128 * ONES + letters * (b'a' - b'0' - 10) as u128).to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::avro::cursor::encode_long;
    use crate::avro::schema::Schema;
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;

    fn decoder(schema: &str) -> BatchDecoder {
        BatchDecoder::new(Arc::new(plan(&Schema::parse_str(schema).unwrap()).unwrap()))
    }

    /// (bytes held, bytes of capacity) of every buffer of a decoder.
    fn buffers(d: &BatchDecoder) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        d.columns
            .iter()
            .for_each(|c| c.buffers(&mut |len, cap| out.push((len, cap))));
        out
    }

    /// One Avro map: `(key, value)` entries in blocks of `block` entries.
    fn encode_map(entries: &[(&str, i64)], block: usize, out: &mut Vec<u8>) {
        for chunk in entries.chunks(block.max(1)) {
            encode_long(chunk.len() as i64, out);
            for (k, v) in chunk {
                encode_long(k.len() as i64, out);
                out.extend_from_slice(k.as_bytes());
                encode_long(*v, out);
            }
        }
        encode_long(0, out);
    }

    #[test]
    fn a_map_that_repeats_a_key_keeps_its_last_entry() {
        let schema = r#"{"type":"record","name":"r","fields":[
            {"name":"m","type":["null",{"type":"map","values":"long"}]}]}"#;
        let mut block = Vec::new();
        // Repeated in one block and across blocks; a null map; many keys (the set path).
        encode_long(1, &mut block);
        encode_map(&[("a", 1), ("b", 2), ("a", 3)], 8, &mut block);
        encode_long(0, &mut block);
        encode_long(1, &mut block);
        encode_map(
            &[("x", 1), ("y", 2), ("x", 3), ("x", 4), ("y", 5)],
            2,
            &mut block,
        );
        let many: Vec<(String, i64)> = (0..40).map(|i| (format!("k{}", i % 30), i)).collect();
        let many: Vec<(&str, i64)> = many.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        encode_long(1, &mut block);
        encode_map(&many, 7, &mut block);
        encode_long(1, &mut block);
        encode_map(&[("same", 1), ("other", 2)], 8, &mut block);
        let mut d = decoder(schema);
        d.decode_block(&block, 5).unwrap();
        let batch = d.flush().unwrap().unwrap();
        let maps = batch.column(0).as_map();
        let rows: Vec<Option<Vec<(String, i64)>>> = (0..maps.len())
            .map(|i| {
                maps.is_valid(i).then(|| {
                    let entries = maps.value(i);
                    let keys = entries.column(0).as_string::<i32>();
                    let values = entries.column(1).as_primitive::<Int64Type>();
                    (0..entries.len())
                        .map(|j| (keys.value(j).to_string(), values.value(j)))
                        .collect()
                })
            })
            .collect();
        let owned = |e: &[(&str, i64)]| Some(e.iter().map(|(k, v)| (k.to_string(), *v)).collect());
        let mut last = std::collections::BTreeMap::new();
        for (i, (k, v)) in many.iter().enumerate() {
            last.insert(*k, (i, *v));
        }
        let mut many_kept: Vec<_> = last.into_iter().collect();
        many_kept.sort_by_key(|(_, (i, _))| *i);
        let many_kept: Vec<(&str, i64)> = many_kept.iter().map(|(k, (_, v))| (*k, *v)).collect();
        assert_eq!(
            rows,
            vec![
                owned(&[("b", 2), ("a", 3)]),
                None,
                owned(&[("x", 4), ("y", 5)]),
                owned(&many_kept),
                owned(&[("same", 1), ("other", 2)]),
            ]
        );
        assert_eq!(maps.value_offsets(), &[0, 2, 2, 4, 34, 36]);

        // The next batch, without repeats, keeps every entry again.
        let mut block = Vec::new();
        encode_long(1, &mut block);
        encode_map(&[("a", 1), ("b", 2)], 8, &mut block);
        d.decode_block(&block, 1).unwrap();
        let batch = d.flush().unwrap().unwrap();
        assert_eq!(batch.column(0).as_map().value_offsets(), &[0, 2]);
    }

    #[test]
    fn records_whose_values_cannot_be_converted_are_set_aside_alone() {
        let schema = r#"{"type":"record","name":"r","fields":[
            {"name":"id","type":"long"},
            {"name":"tags","type":{"type":"array","items":"string"}},
            {"name":"u","type":["null","int","string"]}]}"#;
        // (id, tags, union branch, union value): branch 2 is a string.
        let record = |id: i64, tags: &[&[u8]], branch: i64, out: &mut Vec<u8>| {
            encode_long(id, out);
            encode_long(tags.len() as i64, out);
            for t in tags {
                encode_long(t.len() as i64, out);
                out.extend_from_slice(t);
            }
            if !tags.is_empty() {
                encode_long(0, out);
            }
            encode_long(branch, out);
            match branch {
                1 => encode_long(7, out),
                2 => {
                    encode_long(1, out);
                    out.push(b'z');
                }
                _ => {}
            }
        };
        let mut block = Vec::new();
        let mut starts = Vec::new();
        for (id, tags, branch) in [
            (0, vec![&b"a"[..]], 0),
            (1, vec![&b"ok"[..], &b"\xff\xfe"[..]], 1), // not UTF-8, in the second item
            (2, vec![], 2),
            (3, vec![&b"\xc3"[..]], 2), // cut UTF-8
            (4, vec![&b"b"[..], &b"c"[..]], 1),
        ] {
            starts.push(block.len());
            record(id, &tags, branch, &mut block);
        }
        starts.push(block.len());
        let plan = Arc::new(plan(&Schema::parse_str(schema).unwrap()).unwrap());
        let mut d = BatchDecoder::new(plan.clone());
        // The plain pass fails the block at its first bad record and holds nothing of it.
        let e = d.decode_block(&block, 5).unwrap_err();
        assert!(
            matches!(e, DecodeError::Datum(DatumError { record: 1, .. })),
            "{e}"
        );
        assert_eq!(d.rows(), 0);

        let mut bad = Vec::new();
        d.decode_block_salvaging(&plan, &block, 5, &mut bad)
            .unwrap();
        assert_eq!(
            bad.iter()
                .map(|b| (b.error.record, b.range.clone()))
                .collect::<Vec<_>>(),
            vec![(1, starts[1]..starts[2]), (3, starts[3]..starts[4])]
        );
        assert!(
            bad[0].error.to_string().contains("UTF-8"),
            "{}",
            bad[0].error
        );
        let batch = d.flush().unwrap().unwrap();
        let ids = batch.column(0).as_primitive::<Int64Type>();
        assert_eq!(ids.values(), &[0, 2, 4]);
        let tags = batch.column(1).as_list::<i32>();
        assert_eq!(tags.value_offsets(), &[0, 1, 1, 3]);
        let items = tags.values().as_string::<i32>();
        assert_eq!(items.iter().flatten().collect::<Vec<_>>(), ["a", "b", "c"]);
        let u = batch.column(2).as_struct();
        assert_eq!(
            (0..3).map(|i| u.is_valid(i)).collect::<Vec<_>>(),
            [false, true, true]
        );
        assert_eq!(
            u.column(0)
                .as_primitive::<arrow_array::types::Int32Type>()
                .value(2),
            7
        );
        assert_eq!(u.column(1).as_string::<i32>().value(1), "z");

        // A record whose end cannot be found (a union branch out of range) fails the whole
        // block, with nothing set aside and nothing of the block kept.
        let mut broken = block[..starts[2]].to_vec();
        record(9, &[], 5, &mut broken);
        let mut bad = Vec::new();
        let e = d
            .decode_block_salvaging(&plan, &broken, 3, &mut bad)
            .unwrap_err();
        assert!(
            matches!(e, DecodeError::Datum(DatumError { record: 2, .. })),
            "{e}"
        );
        assert!(bad.is_empty());
        assert_eq!(d.rows(), 0);

        // So do more bad records than a block may set aside one by one.
        let schema_s = r#"{"type":"record","name":"r","fields":[{"name":"s","type":"string"}]}"#;
        let strings = Arc::new(super::plan(&Schema::parse_str(schema_s).unwrap()).unwrap());
        let mut ds = BatchDecoder::new(strings.clone());
        for n in [MAX_SET_ASIDE_PER_BLOCK, MAX_SET_ASIDE_PER_BLOCK + 1] {
            let block = [&[2u8, b'a'][..], &b"\x02\xff".repeat(n)].concat();
            let count = n as u64 + 1;
            let mut bad = Vec::new();
            let result = ds.decode_block_salvaging(&strings, &block, count, &mut bad);
            if n == MAX_SET_ASIDE_PER_BLOCK {
                result.unwrap();
                assert_eq!((bad.len(), ds.rows()), (n, 1));
                ds.flush().unwrap();
            } else {
                assert!(matches!(result, Err(DecodeError::Datum(_))), "{result:?}");
                assert_eq!((bad.len(), ds.rows()), (0, 0));
            }
        }

        // So does a block whose records, read past the bad one, do not end at its end.
        let mut bad = Vec::new();
        let mut longer = block.clone();
        longer.push(0);
        let e = d
            .decode_block_salvaging(&plan, &longer, 5, &mut bad)
            .unwrap_err();
        assert!(matches!(e, DecodeError::Trailing { .. }), "{e}");
        assert!(bad.is_empty());
        assert_eq!(d.rows(), 0);
    }

    #[test]
    fn a_block_decodes_in_parts_as_it_decodes_whole() {
        let schema = r#"{"type":"record","name":"r","fields":[
            {"name":"id","type":"long"},{"name":"s","type":"string"}]}"#;
        let mut block = Vec::new();
        let mut starts = Vec::new();
        for id in 0..100i64 {
            starts.push(block.len());
            encode_long(id, &mut block);
            let s = "x".repeat((id * 7 % 23) as usize);
            encode_long(s.len() as i64, &mut block);
            block.extend_from_slice(s.as_bytes());
        }
        starts.push(block.len());
        let mut whole = decoder(schema);
        whole.decode_block(&block, 100).unwrap();
        let whole = whole.flush().unwrap().unwrap();

        let mut d = decoder(schema);
        let plan = d.plan().clone();
        for span in [1, 40, 300, block.len()] {
            let (mut from, mut parts) = (BlockPosition::START, Vec::new());
            loop {
                let next = d
                    .decode_block_part(&plan, &block, 100, from, from.offset + span, None)
                    .unwrap();
                let batch = d.flush().unwrap().unwrap();
                // Each part ends with the first record that reaches its stop, or the block.
                let end = next.map_or(100, |n| n.record as usize);
                assert_eq!(batch.num_rows(), end - from.record as usize);
                assert!(end == 100 || starts[end] >= from.offset + span, "{span}");
                assert!(starts[end - 1] < from.offset + span || end - 1 == from.record as usize);
                parts.push(batch);
                match next {
                    Some(n) => {
                        assert_eq!(n.offset, starts[n.record as usize]);
                        from = n;
                    }
                    None => break,
                }
            }
            assert_eq!(parts.len() > 1, span < block.len(), "{span}");
            let joined = arrow_select::concat::concat_batches(&whole.schema(), &parts).unwrap();
            assert_eq!(joined, whole, "{span}");
        }

        // Errors count records and bytes from the block's start, and leave the decoder as it
        // was; a part that ends the block checks that nothing follows its last record.
        let at = |record: usize| BlockPosition {
            record: record as u64,
            offset: starts[record],
        };
        let mut broken = block.clone();
        // Record 70: its id in two bytes, its length in one, then 7 bytes of string.
        broken[starts[70] + 3] = 0xff;
        let from = at(60);
        let e = d
            .decode_block_part(&plan, &broken, 100, from, usize::MAX, None)
            .unwrap_err();
        assert!(
            matches!(e, DecodeError::Datum(DatumError { record: 70, offset, .. }) if offset == starts[70]),
            "{e}"
        );
        assert_eq!(d.rows(), 0);
        let mut bad = Vec::new();
        let next = d
            .decode_block_part(&plan, &broken, 100, from, starts[80], Some(&mut bad))
            .unwrap();
        assert_eq!(next.map(|n| n.record), Some(80));
        assert_eq!(
            bad.iter()
                .map(|b| (b.error.record, b.range.clone()))
                .collect::<Vec<_>>(),
            vec![(70, starts[70]..starts[71])]
        );
        assert_eq!(d.rows(), 19);
        d.truncate(0);
        let trailing = [&block[..], &[0u8, 0][..]].concat();
        let e = d
            .decode_block_part(&plan, &trailing, 100, at(90), usize::MAX, None)
            .unwrap_err();
        assert!(
            matches!(e, DecodeError::Trailing { trailing: 2, .. }),
            "{e}"
        );
        assert_eq!(d.rows(), 0);
        // A part from past the data, or claiming more records than its bytes can hold.
        for from in [
            BlockPosition {
                record: 1,
                offset: block.len() + 1,
            },
            BlockPosition {
                record: 0,
                offset: starts[99],
            },
        ] {
            let e = d
                .decode_block_part(&plan, &block, 100, from, usize::MAX, None)
                .unwrap_err();
            assert!(matches!(e, DecodeError::Count { .. }), "{e}");
        }
    }

    #[test]
    fn a_group_decoder_is_sized_from_the_last_group() {
        let schema = r#"{"type":"record","name":"r","fields":[
            {"name":"s","type":"string"},
            {"name":"n","type":["null","long"]},
            {"name":"a","type":{"type":"array","items":{"type":"record","name":"i","fields":[
                {"name":"x","type":"int"},{"name":"b","type":"boolean"}]}}},
            {"name":"m","type":{"type":"map","values":"double"}}]}"#;
        let plan = Arc::new(plan(&Schema::parse_str(schema).unwrap()).unwrap());
        let mut block = Vec::new();
        for i in 0..100i64 {
            let s = format!("value {i}");
            encode_long(s.len() as i64, &mut block);
            block.extend_from_slice(s.as_bytes());
            encode_long(1, &mut block);
            encode_long(i, &mut block);
            encode_long(3, &mut block);
            for x in 0..3 {
                encode_long(x, &mut block);
                block.push(1);
            }
            encode_long(0, &mut block);
            encode_long(1, &mut block);
            encode_long(1, &mut block);
            block.extend_from_slice(b"k");
            block.extend_from_slice(&1.5f64.to_le_bytes());
            encode_long(0, &mut block);
        }
        // A new plan has no hint: nothing is reserved.
        let mut first = BatchDecoder::for_group(plan.clone(), 100, 64 << 20);
        assert!(buffers(&first).iter().all(|&(_, cap)| cap <= 8));
        first.decode_block(&block, 100).unwrap();
        let held = buffers(&first);
        assert!(held.iter().filter(|(len, _)| *len > 0).count() >= 9);
        let batch = first.flush().unwrap().unwrap();

        // A group of twice the records gets twice the room of every buffer, and fills it
        // without growing.
        let mut second = BatchDecoder::for_group(plan.clone(), 200, 64 << 20);
        let reserved = buffers(&second);
        assert_eq!(reserved.len(), held.len());
        for (&(len, _), &(_, cap)) in held.iter().zip(&reserved) {
            assert!(cap >= 2 * len, "{len} bytes held, {cap} reserved");
        }
        second.decode_block(&block, 100).unwrap();
        second.decode_block(&block, 100).unwrap();
        assert_eq!(
            buffers(&second).iter().map(|b| b.1).collect::<Vec<_>>(),
            reserved.iter().map(|b| b.1).collect::<Vec<_>>()
        );
        let twice = second.flush().unwrap().unwrap();
        assert_eq!(twice.slice(0, 100), batch);

        // A group that claims absurdly many records reserves at most 4 times what the last
        // one held (and a sixteenth), and at most `max_bytes` in all.
        let held_total: usize = plan.sizes.get().map_or(0, |(_, l)| l.iter().sum());
        let huge = BatchDecoder::for_group(plan.clone(), usize::MAX, 64 << 20);
        let total: usize = buffers(&huge).iter().map(|b| b.1).sum();
        let most = 4 * held_total * 17 / 16;
        assert!(
            (most - 64..=most + 1024).contains(&total),
            "{total} reserved, {held_total} held"
        );
        assert!(4 * held_total > 4 << 10);
        let capped = BatchDecoder::for_group(plan.clone(), 400, 4 << 10);
        let total: usize = buffers(&capped).iter().map(|b| b.1).sum();
        assert!((1..=(4 << 10) + 1024).contains(&total), "{total}");
        // A decoder not made for a group neither reserves nor records.
        let mut plain = BatchDecoder::new(plan.clone());
        assert!(buffers(&plain).iter().all(|&(_, cap)| cap <= 8));
        plain.decode_block(&block, 100).unwrap();
        plain.flush().unwrap();
        assert_eq!(plan.sizes.get().map(|s| s.0), Some(200));
    }

    #[test]
    fn uuid_text_matches_a_digit_by_digit_formatting() {
        let mut seed = 11u64;
        for i in 0..20_000 {
            let mut b = [0u8; 16];
            for byte in &mut b {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                *byte = (seed >> 56) as u8;
            }
            if i < 256 {
                b = [i as u8; 16];
            }
            let expected: String = b
                .iter()
                .enumerate()
                .map(|(k, byte)| {
                    let dash = if matches!(k, 4 | 6 | 8 | 10) { "-" } else { "" };
                    format!("{dash}{byte:02x}")
                })
                .collect();
            assert_eq!(std::str::from_utf8(&format_uuid(&b)).unwrap(), expected);
        }
    }

    /// The plain text of big-endian two's complement `bytes` at `scale`, by decimal arithmetic
    /// (digit vectors, not [`decimal_text`]'s binary limbs); `None` past `precision` digits.
    fn decimal_reference(bytes: &[u8], precision: usize, scale: usize) -> Option<String> {
        let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
        // Little-endian decimal digits of the unsigned value of the (inverted) bytes.
        let mut digits: Vec<u32> = vec![];
        let mul_add = |digits: &mut Vec<u32>, mul: u32, add: u32| {
            let mut carry = add;
            for d in digits.iter_mut() {
                let v = *d * mul + carry;
                *d = v % 10;
                carry = v / 10;
            }
            while carry > 0 {
                digits.push(carry % 10);
                carry /= 10;
            }
        };
        for &b in bytes {
            mul_add(&mut digits, 256, u32::from(if negative { !b } else { b }));
        }
        if negative {
            mul_add(&mut digits, 1, 1);
        }
        while digits.last() == Some(&0) {
            digits.pop();
        }
        if digits.len() > precision {
            return None;
        }
        let mut text: String = digits
            .iter()
            .rev()
            .map(|d| char::from(b'0' + *d as u8))
            .collect();
        if text.len() <= scale {
            text = "0".repeat(scale + 1 - text.len()) + &text;
        }
        if scale > 0 {
            text.insert(text.len() - scale, '.');
        }
        Some(if negative && !digits.is_empty() {
            format!("-{text}")
        } else {
            text
        })
    }

    fn text_of(bytes: &[u8], precision: usize, scale: usize) -> Result<String, Fault> {
        let mut out = Vec::new();
        decimal_text(bytes, precision, scale as i64, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    /// A big-decimal's value bytes: the unscaled value as Avro bytes, then the scale.
    fn big_decimal(unscaled: &[u8], scale: i64) -> Vec<u8> {
        let mut value = Vec::new();
        encode_long(unscaled.len() as i64, &mut value);
        value.extend_from_slice(unscaled);
        encode_long(scale, &mut value);
        value
    }

    fn big_text(value: &[u8]) -> Result<String, Fault> {
        let mut out = b"kept".to_vec();
        big_decimal_text(value, &mut out)?;
        Ok(String::from_utf8(out[4..].to_vec()).unwrap())
    }

    #[test]
    fn big_decimals_are_their_plain_text() {
        let cases: [(&str, bool, i64, &str); 12] = [
            ("0", false, 0, "0"),
            ("0", false, 2, "0.00"),
            ("0", false, -3, "0"),
            ("1", false, -3, "1000"),
            ("1", true, -3, "-1000"),
            ("123450", true, 2, "-1234.50"),
            ("5", false, 3, "0.005"),
            ("12", true, 7, "-0.0000012"),
            (
                "170141183460469231731687303715884105728",
                false,
                0,
                "170141183460469231731687303715884105728",
            ),
            ("9", false, 1000, ""),
            ("9", true, -1000, ""),
            (
                "31415926535897932384626433832795028841971",
                false,
                40,
                "3.1415926535897932384626433832795028841971",
            ),
        ];
        for (digits, negative, scale, want) in cases {
            let want = match (want, scale) {
                ("", s) if s > 0 => format!("0.{}9", "0".repeat(999)),
                ("", _) => format!("-9{}", "0".repeat(1000)),
                (w, _) => w.to_string(),
            };
            let got = big_text(&big_decimal(&be_of(digits, negative), scale)).unwrap();
            assert_eq!(got, want, "{digits} {negative} {scale}");
        }
        // 1000 digits, not 1001; a scale past 1000 either way; then malformed values.
        let nines = "9".repeat(1000);
        assert_eq!(
            big_text(&big_decimal(&be_of(&nines, true), 0)).unwrap(),
            format!("-{nines}")
        );
        let over = big_decimal(&be_of(&format!("1{}", "0".repeat(1000)), false), 0);
        assert_eq!(big_text(&over), Err(Box::new(ValueError::Decimal)));
        for scale in [1001, -1001, i64::MAX, i64::MIN] {
            let value = big_decimal(&[1], scale);
            assert_eq!(
                big_text(&value),
                Err(Box::new(ValueError::DecimalScale(scale)))
            );
        }
        let malformed = [
            (vec![], "its unscaled value is cut short"),
            (vec![0x08, 1, 2], "its unscaled value is cut short"),
            (vec![0x01], "its unscaled value is cut short"),
            (vec![0x02, 7], "its scale is missing or malformed"),
            (vec![0x02, 7, 0xff], "its scale is missing or malformed"),
            (vec![0x02, 7, 0x04, 0], "bytes follow its scale"),
        ];
        for (value, why) in malformed {
            let err = big_text(&value).unwrap_err();
            assert_eq!(err, Box::new(ValueError::BigDecimal(why)), "{value:02x?}");
            assert_eq!(
                err.to_string(),
                format!("big-decimal value is malformed: {why}")
            );
        }
        // An absurd length inside the value costs nothing: it is checked against the value.
        let mut absurd = Vec::new();
        encode_long(i64::MAX, &mut absurd);
        assert!(big_text(&absurd).is_err());
    }

    /// The big-endian two's complement bytes of the integer `digits` (decimal), negated.
    fn be_of(digits: &str, negative: bool) -> Vec<u8> {
        let mut le = vec![0u8];
        for d in digits.bytes() {
            let mut carry = u32::from(d - b'0');
            for b in le.iter_mut() {
                let v = u32::from(*b) * 10 + carry;
                *b = v as u8;
                carry = v >> 8;
            }
            while carry > 0 {
                le.push(carry as u8);
                carry >>= 8;
            }
        }
        le.push(0); // room for the sign
        if negative {
            let mut carry = true;
            for b in le.iter_mut() {
                (*b, carry) = (!*b).overflowing_add(u8::from(carry));
            }
        }
        le.reverse();
        le
    }

    #[test]
    fn wide_decimals_as_text_match_a_decimal_reference() {
        // Fixed cases: signs, scales, sign extension, the bounds of the precision.
        assert_eq!(text_of(&[], 40, 2).unwrap(), "0.00");
        assert_eq!(text_of(&[0x05], 40, 2).unwrap(), "0.05");
        assert_eq!(text_of(&[0xff], 40, 0).unwrap(), "-1");
        assert_eq!(text_of(&[0xff, 0xff, 0xff], 40, 3).unwrap(), "-0.001");
        assert_eq!(text_of(&[0xfe, 0x1d, 0xc6], 40, 2).unwrap(), "-1234.50");
        assert_eq!(text_of(&[0x80], 39, 0).unwrap(), "-128");
        assert_eq!(text_of(&[0xff, 0x05], 39, 1).unwrap(), "-25.1");
        for p in [39, 76, 100, 1000] {
            let nines = "9".repeat(p);
            for negative in [false, true] {
                let sign = if negative { "-" } else { "" };
                let max = be_of(&nines, negative);
                assert_eq!(text_of(&max, p, 0).unwrap(), format!("{sign}{nines}"));
                let point = format!("{sign}{}.{}", &nines[..p - 3], &nines[p - 3..]);
                assert_eq!(text_of(&max, p, 3).unwrap(), point);
                let all = format!("{sign}0.{nines}");
                assert_eq!(text_of(&max, p, p).unwrap(), all);
                let over = be_of(&format!("1{}", "0".repeat(p)), negative);
                assert_eq!(text_of(&over, p, 0), Err(Box::new(ValueError::Decimal)));
            }
        }
        // Long sign extension costs its bytes only; long values fail before any arithmetic.
        let mut padded = vec![0xff; 1 << 20];
        padded.push(0x85);
        assert_eq!(text_of(&padded, 39, 1).unwrap(), "-12.3");
        let long = vec![0x11; 1 << 20];
        assert_eq!(text_of(&long, 1000, 0), Err(Box::new(ValueError::Decimal)));
        // Random bytes (some sign-extended) at random precisions and scales.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = (next() % 60) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if next() % 4 == 0 {
                let fill = if bytes.first().is_some_and(|b| b & 0x80 != 0) {
                    0xff
                } else {
                    0
                };
                bytes.splice(0..0, std::iter::repeat_n(fill, (next() % 5) as usize));
            }
            let precision = 39 + (next() % 120) as usize;
            let scale = (next() % (precision as u64 + 1)) as usize;
            let expected = decimal_reference(&bytes, precision, scale);
            match (text_of(&bytes, precision, scale), expected) {
                (Ok(got), Some(want)) => {
                    assert_eq!(got, want, "{bytes:02x?} p{precision} s{scale}")
                }
                (Err(e), None) => assert_eq!(e, Box::new(ValueError::Decimal)),
                (got, want) => {
                    panic!("{bytes:02x?} p{precision} s{scale}: {got:?} against {want:?}")
                }
            }
        }
    }

    #[test]
    fn decimals_sign_extend() {
        assert_eq!(decimal_from_be(&[0xff]).unwrap(), -1);
        assert_eq!(decimal_from_be(&[0x00, 0xff]).unwrap(), 255);
        let mut wide = vec![0xff; 20];
        wide[19] = 0xfe;
        assert_eq!(decimal_from_be(&wide).unwrap(), -2);
        let mut over = vec![0x00; 20];
        over[2] = 1;
        assert_eq!(decimal_from_be(&over), Err(Box::new(ValueError::Decimal)));
        // Every width up to 16 bytes, each side of the 8-byte fast path, against i128.
        for v in [
            0i128,
            1,
            -1,
            127,
            -128,
            128,
            -129,
            i64::MAX as i128,
            i64::MIN as i128,
        ]
        .into_iter()
        .chain([1i128 << 64, -(1i128 << 64), i128::MAX, i128::MIN])
        {
            let be = v.to_be_bytes();
            let needed = (0..16)
                .find(|&k| i128::from_be_bytes(sign_extend(&be[k..])) == v)
                .unwrap_or(16);
            for k in 0..=needed {
                assert_eq!(
                    decimal_from_be(&be[k..]).unwrap(),
                    v,
                    "{v} from {} bytes",
                    16 - k
                );
            }
        }
    }

    fn sign_extend(bytes: &[u8]) -> [u8; 16] {
        let fill = if bytes.first().is_some_and(|b| b & 0x80 != 0) {
            0xff
        } else {
            0
        };
        let mut out = [fill; 16];
        out[16 - bytes.len()..].copy_from_slice(bytes);
        out
    }

    #[test]
    fn uuid_form() {
        let b: [u8; 16] = std::array::from_fn(|i| i as u8);
        assert_eq!(&format_uuid(&b), b"00010203-0405-0607-0809-0a0b0c0d0e0f");
        assert_eq!(
            &format_uuid(&[0xff; 16]),
            b"ffffffff-ffff-ffff-ffff-ffffffffffff"
        );
        assert_eq!(parse_uuid(&format_uuid(&b)).unwrap(), b);
        assert_eq!(
            parse_uuid(b"00010203-0405-0607-0809-0A0B0C0D0E0F")
                .unwrap()
                .to_vec(),
            b
        );
        for bad in [
            &b"00010203-0405-0607-0809-0a0b0c0d0e0"[..],
            b"00010203-0405-0607-0809-0a0b0c0d0e0f0",
            b"000102030405060708090a0b0c0d0e0f",
            b"00010203-0405-0607-0809-0a0b0c0d0e0g",
            b"00010203-0405-0607-0809+0a0b0c0d0e0f",
            b"0001020--0405-0607-0809-0a0b0c0d0e0f",
        ] {
            assert!(
                matches!(parse_uuid(bad).map_err(|e| *e), Err(ValueError::Uuid)),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn uuids_as_bytes() {
        let schema = Schema::parse_str(
            r#"{"type":"record","name":"r","fields":[
                {"name":"s","type":["null",{"type":"string","logicalType":"uuid"}]},
                {"name":"f","type":{"type":"fixed","name":"u","size":16,"logicalType":"uuid"}}]}"#,
        )
        .unwrap();
        let options = TypeOptions {
            uuid: UuidForm::Binary,
            ..Default::default()
        };
        let p = Arc::new(types::plan_with(&schema, options).unwrap());
        let field = p.schema.field(0);
        assert_eq!(
            field.data_type(),
            &arrow_schema::DataType::FixedSizeBinary(16)
        );
        assert!(field.is_nullable());
        assert_eq!(
            field
                .metadata()
                .get("ARROW:extension:name")
                .map(String::as_str),
            Some("arrow.uuid")
        );
        let bytes: [u8; 16] = std::array::from_fn(|i| i as u8);
        let mut data = Vec::new();
        for text in [Some(format_uuid(&bytes)), None] {
            match text {
                Some(t) => {
                    encode_long(1, &mut data);
                    encode_long(36, &mut data);
                    data.extend_from_slice(&t);
                }
                None => encode_long(0, &mut data),
            }
            data.extend_from_slice(&bytes);
        }
        let mut d = BatchDecoder::new(p.clone());
        d.decode_block(&data, 2).unwrap();
        let batch = d.flush().unwrap().unwrap();
        let s = batch.column(0).as_fixed_size_binary();
        assert_eq!(s.value(0), &bytes[..]);
        assert!(s.is_null(1));
        assert_eq!(batch.column(1).as_fixed_size_binary().value(1), &bytes[..]);

        // A string that is not a uuid fails its record, and the decoder keeps what it had.
        let mut bad = Vec::new();
        encode_long(1, &mut bad);
        encode_long(36, &mut bad);
        bad.extend_from_slice(b"not-a-uuid-not-a-uuid-not-a-uuid-xyz");
        bad.extend_from_slice(&bytes);
        let err = d.decode_block(&bad, 1).unwrap_err();
        assert!(err.to_string().contains("8-4-4-4-12"), "{err}");
        assert_eq!(d.rows(), 0);

        // A writer's plain string resolves to a reader's uuid as bytes too.
        let writer = Schema::parse_str(
            r#"{"type":"record","name":"r","fields":[{"name":"s","type":["null","string"]},
                {"name":"f","type":{"type":"fixed","name":"u","size":16,"logicalType":"uuid"}}]}"#,
        )
        .unwrap();
        let resolved = plan_resolved_with(&writer, &schema, options).unwrap();
        assert_eq!(resolved.schema, p.schema);
        d.decode_block_with(&resolved, &data, 2).unwrap();
        let batch = d.flush().unwrap().unwrap();
        assert_eq!(batch.column(0).as_fixed_size_binary().value(0), &bytes[..]);
    }

    #[test]
    fn nullable_long_and_bad_union_index() {
        let mut d = decoder(
            r#"{"type":"record","name":"r","fields":[{"name":"a","type":["long","null"]}]}"#,
        );
        let mut data = Vec::new();
        for (branch, v) in [(0, 5), (1, 0), (0, -7)] {
            encode_long(branch, &mut data);
            if branch == 0 {
                encode_long(v, &mut data);
            }
        }
        d.decode_block(&data, 3).unwrap();
        let batch = d.flush().unwrap().unwrap();
        let a = batch.column(0).as_primitive::<Int64Type>();
        assert_eq!(a.len(), 3);
        assert!(a.is_null(1));
        assert_eq!(a.value(2), -7);

        let mut bad = Vec::new();
        encode_long(2, &mut bad);
        let err = d.decode_block(&bad, 1).unwrap_err();
        assert!(err.to_string().contains("union branch index 2"), "{err}");
    }

    /// Enum symbols of 1, 31, 32 and 33 bytes (either side of the window copied whole), one
    /// after another into a column whose buffers start small, come out as their symbols.
    #[test]
    fn enum_symbols_of_every_length_are_appended_whole() {
        let symbols = [
            "A".to_string(),
            "B".repeat(31),
            "C".repeat(32),
            "D".repeat(33),
        ];
        let quoted: Vec<String> = symbols.iter().map(|s| format!("\"{s}\"")).collect();
        let schema = format!(
            r#"{{"type":"record","name":"r","fields":[{{"name":"e","type":{{"type":"enum","name":"E","symbols":[{}]}}}}]}}"#,
            quoted.join(",")
        );
        let mut d = decoder(&schema);
        let rows = 200usize;
        let mut data = Vec::new();
        for row in 0..rows {
            encode_long(((row * 7) % 4) as i64, &mut data);
        }
        d.decode_block(&data, rows as u64).unwrap();
        let batch = d.flush().unwrap().unwrap();
        let got = batch.column(0).as_string::<i32>();
        for row in 0..rows {
            assert_eq!(got.value(row), symbols[(row * 7) % 4], "row {row}");
        }
    }

    /// Optional fields of every kind `decode_fields` reads without its op ([`Fast`]), with null
    /// first and last, their branch indexes in the shortest form and overlong (which Java's
    /// reader takes), and arrays and maps of strings and longs: the values are those written.
    #[test]
    fn optional_fields_of_every_kind_and_their_index_forms() {
        let kinds = [
            ("long", "Int64"),
            ("int", "Int32"),
            ("double", "Float64"),
            ("float", "Float32"),
            ("boolean", "Boolean"),
            ("string", "Utf8"),
            ("bytes", "Binary"),
        ];
        let mut fields = Vec::new();
        for (t, _) in kinds {
            fields.push(format!(r#"{{"name":"n_{t}","type":["null","{t}"]}}"#));
            fields.push(format!(r#"{{"name":"l_{t}","type":["{t}","null"]}}"#));
        }
        fields.push(
            r#"{"name":"e","type":["null",{"type":"enum","name":"E","symbols":["A","B"]}]}"#.into(),
        );
        fields.push(r#"{"name":"as","type":{"type":"array","items":"string"}}"#.into());
        fields.push(r#"{"name":"al","type":{"type":"array","items":"long"}}"#.into());
        fields.push(r#"{"name":"m","type":{"type":"map","values":"string"}}"#.into());
        let schema = format!(
            r#"{{"type":"record","name":"r","fields":[{}]}}"#,
            fields.join(",")
        );
        let mut d = decoder(&schema);
        // The value of kind `t` in row `row`, encoded.
        let value = |t: &str, row: i64, out: &mut Vec<u8>| match t {
            "long" | "int" => encode_long(row * 1000 - 7, out),
            "double" => out.extend_from_slice(&(row as f64 + 0.5).to_le_bytes()),
            "float" => out.extend_from_slice(&(row as f32 + 0.25).to_le_bytes()),
            "boolean" => out.push(u8::from(row % 2 == 1)),
            _ => {
                let text = format!("v{row}");
                encode_long(text.len() as i64, out);
                out.extend_from_slice(text.as_bytes());
            }
        };
        // A branch index, in its shortest form or overlong (a zero group after it).
        let index = |i: i64, overlong: bool, out: &mut Vec<u8>| {
            if overlong {
                out.extend_from_slice(&[0x80 | (2 * i as u8), 0x00]);
            } else {
                encode_long(i, out);
            }
        };
        let rows = 8i64;
        let mut data = Vec::new();
        for row in 0..rows {
            // Rows 0-3: values, 4-7: nulls; odd rows write their indexes overlong.
            let null = row >= 4;
            let overlong = row % 2 == 1;
            for (t, _) in kinds {
                // ["null", t]: null is branch 0; [t, "null"]: null is branch 1.
                index(i64::from(!null), overlong, &mut data);
                if !null {
                    value(t, row, &mut data);
                }
                index(i64::from(null), overlong, &mut data);
                if !null {
                    value(t, row, &mut data);
                }
            }
            index(i64::from(!null), overlong, &mut data);
            if !null {
                encode_long(row % 2, &mut data);
            }
            // (A block of `row` items, if any, then the end.)
            for t in ["string", "long"] {
                if row > 0 {
                    encode_long(row, &mut data);
                    for k in 0..row {
                        value(t, k, &mut data);
                    }
                }
                encode_long(0, &mut data);
            }
            if row > 0 {
                encode_long(row, &mut data);
                for k in 0..row {
                    value("string", k, &mut data);
                    value("string", k + 100, &mut data);
                }
            }
            encode_long(0, &mut data);
        }
        d.decode_block(&data, rows as u64).unwrap();
        let batch = d.flush().unwrap().unwrap();
        assert_eq!(batch.num_rows(), rows as usize);
        let text = |a: &dyn Array, row: usize| -> Option<String> {
            if a.is_null(row) {
                return None;
            }
            let a = arrow_cast::display::ArrayFormatter::try_new(a, &Default::default()).unwrap();
            Some(a.value(row).to_string())
        };
        for (k, (t, arrow)) in kinds.iter().enumerate() {
            for c in [2 * k, 2 * k + 1] {
                let col = batch.column(c);
                assert_eq!(col.data_type().to_string(), *arrow, "{t}");
                for row in 0..rows as usize {
                    let want = (row < 4).then(|| match *t {
                        "long" | "int" => (row as i64 * 1000 - 7).to_string(),
                        "double" => (row as f64 + 0.5).to_string(),
                        "float" => (row as f32 + 0.25).to_string(),
                        "boolean" => (row % 2 == 1).to_string(),
                        "string" => format!("v{row}"),
                        _ => format!("v{row}")
                            .bytes()
                            .map(|b| format!("{b:02x}"))
                            .collect(),
                    });
                    assert_eq!(text(col.as_ref(), row), want, "{t}, column {c}, row {row}");
                }
            }
        }
        let e = batch.column(2 * kinds.len());
        let lists = [
            batch.column(2 * kinds.len() + 1),
            batch.column(2 * kinds.len() + 2),
        ];
        let m = batch.column(2 * kinds.len() + 3);
        for row in 0..rows as usize {
            let want = (row < 4).then(|| ["A", "B"][row % 2].to_string());
            assert_eq!(text(e.as_ref(), row), want, "enum, row {row}");
            let strings: Vec<String> = (0..row).map(|k| format!("v{k}")).collect();
            let longs: Vec<String> = (0..row)
                .map(|k| (k as i64 * 1000 - 7).to_string())
                .collect();
            for (list, want) in lists.iter().zip([strings.clone(), longs]) {
                assert_eq!(
                    text(list.as_ref(), row),
                    Some(format!("[{}]", want.join(", ")))
                );
            }
            let entries: Vec<String> = (0..row).map(|k| format!("v{k}: v{}", k + 100)).collect();
            assert_eq!(
                text(m.as_ref(), row),
                Some(format!("{{{}}}", entries.join(", ")))
            );
        }

        // An index out of range still fails the record, in either order of the branches.
        for field in [0, 1] {
            let mut bad = Vec::new();
            for (k, (t, _)) in kinds.iter().enumerate() {
                for c in [2 * k, 2 * k + 1] {
                    if c == field {
                        encode_long(2, &mut bad);
                    } else {
                        index(i64::from(c % 2 == 0), false, &mut bad);
                        value(t, 1, &mut bad);
                    }
                }
            }
            let err = d.decode_block(&bad, 1).unwrap_err();
            assert!(err.to_string().contains("union branch index 2"), "{err}");
        }
    }

    /// Null records and the unused members of unions are appended to their children late,
    /// all at once (`Data::Struct::behind`): the arrays must come out the same, also after a
    /// block that failed half-way through a record was rolled back.
    #[test]
    fn null_records_and_union_members_after_a_rollback() {
        let mut d = decoder(
            r#"{"type":"record","name":"r","fields":[
              {"name":"o","type":["null",{"type":"record","name":"In","fields":[
                {"name":"x","type":"long"},
                {"name":"y","type":["null","string"]},
                {"name":"deep","type":["null",{"type":"record","name":"D","fields":[
                  {"name":"z","type":"int"}]}]}]}]},
              {"name":"u","type":["null",
                {"type":"record","name":"A","fields":[{"name":"a","type":"long"}]},
                {"type":"record","name":"B","fields":[{"name":"b","type":"string"},
                  {"name":"c","type":["null",{"type":"record","name":"C","fields":[
                    {"name":"d","type":"double"}]}]}]},
                "string"]},
              {"name":"k","type":"long"}]}"#,
        );
        let string = |s: &str, out: &mut Vec<u8>| {
            encode_long(s.len() as i64, out);
            out.extend_from_slice(s.as_bytes());
        };
        // o: None, or (x, y, z); u: 0 null, 1 A(a), 2 B(b, d), 3 string.
        #[allow(clippy::type_complexity)]
        let record = |o: Option<(i64, Option<&str>, Option<i64>)>,
                      u: (i64, i64, &str, Option<f64>),
                      k: i64,
                      out: &mut Vec<u8>| {
            match o {
                None => encode_long(0, out),
                Some((x, y, z)) => {
                    encode_long(1, out);
                    encode_long(x, out);
                    match y {
                        None => encode_long(0, out),
                        Some(y) => {
                            encode_long(1, out);
                            string(y, out);
                        }
                    }
                    match z {
                        None => encode_long(0, out),
                        Some(z) => {
                            encode_long(1, out);
                            encode_long(z, out);
                        }
                    }
                }
            }
            encode_long(u.0, out);
            match u.0 {
                1 => encode_long(u.1, out),
                2 => {
                    string(u.2, out);
                    match u.3 {
                        None => encode_long(0, out),
                        Some(v) => {
                            encode_long(1, out);
                            out.extend_from_slice(&v.to_le_bytes());
                        }
                    }
                }
                3 => string(u.2, out),
                _ => {}
            }
            encode_long(k, out);
        };
        let mut block = Vec::new();
        record(None, (0, 0, "", None), 0, &mut block);
        record(Some((1, None, None)), (1, 10, "", None), 1, &mut block);
        record(None, (0, 0, "", None), 2, &mut block);
        record(None, (2, 0, "bb", None), 3, &mut block);
        record(
            Some((4, Some("y4"), Some(44))),
            (3, 0, "s", None),
            4,
            &mut block,
        );
        d.decode_block(&block, 5).unwrap();
        // A block whose first record is all nulls and whose second fails inside `o`: both
        // are rolled back.
        let mut bad = Vec::new();
        record(None, (0, 0, "", None), 5, &mut bad);
        encode_long(1, &mut bad);
        encode_long(6, &mut bad);
        encode_long(7, &mut bad);
        assert!(d.decode_block(&bad, 2).is_err());
        assert_eq!(d.rows(), 5);
        let mut block = Vec::new();
        record(
            Some((7, None, Some(77))),
            (2, 0, "b7", Some(1.5)),
            7,
            &mut block,
        );
        record(None, (0, 0, "", None), 8, &mut block);
        d.decode_block(&block, 2).unwrap();
        // The rows behind are counted as the nulls they become.
        let size = d.byte_size();
        d.columns.iter_mut().for_each(Column::catch_up);
        assert_eq!(d.byte_size(), size);
        let batch = d.flush().unwrap().unwrap();
        assert_eq!(batch.num_rows(), 7);
        let valid = |a: &dyn Array| (0..a.len()).map(|i| a.is_valid(i)).collect::<Vec<_>>();
        let (t, f) = (true, false);

        let o = batch.column(0).as_struct();
        assert_eq!(valid(o), [f, t, f, f, t, t, f]);
        let x = o.column(0).as_primitive::<Int64Type>();
        assert_eq!([x.value(1), x.value(4), x.value(5)], [1, 4, 7]);
        let y = o.column(1).as_string::<i32>();
        assert_eq!(valid(y), [f, f, f, f, t, f, f]);
        assert_eq!(y.value(4), "y4");
        let deep = o.column(2).as_struct();
        assert_eq!(valid(deep), [f, f, f, f, t, t, f]);
        let z = deep
            .column(0)
            .as_primitive::<arrow_array::types::Int32Type>();
        assert_eq!((z.len(), z.value(4), z.value(5)), (7, 44, 77));

        let u = batch.column(1).as_struct();
        assert_eq!(valid(u), [f, t, f, t, t, t, f]);
        let a = u.column(0).as_struct();
        assert_eq!(valid(a), [f, t, f, f, f, f, f]);
        assert_eq!(a.column(0).as_primitive::<Int64Type>().value(1), 10);
        let b = u.column(1).as_struct();
        assert_eq!(valid(b), [f, f, f, t, f, t, f]);
        let bs = b.column(0).as_string::<i32>();
        assert_eq!((bs.value(3), bs.value(5)), ("bb", "b7"));
        let c = b.column(1).as_struct();
        assert_eq!(valid(c), [f, f, f, f, f, t, f]);
        let dd = c
            .column(0)
            .as_primitive::<arrow_array::types::Float64Type>();
        assert_eq!((dd.len(), dd.value(5)), (7, 1.5));
        let s = u.column(2).as_string::<i32>();
        assert_eq!(valid(s), [f, f, f, f, t, f, f]);
        assert_eq!(s.value(4), "s");

        let k = batch.column(2).as_primitive::<Int64Type>();
        assert_eq!(k.values().to_vec(), [0, 1, 2, 3, 4, 7, 8]);
    }

    /// Regression: `[T]` and `["null"]` unions still carry a branch index in the data; reading
    /// them as plain `T` / nothing shifted every later value.
    #[test]
    fn single_branch_unions_read_their_index() {
        let mut d = decoder(
            r#"{"type":"record","name":"r","fields":[{"name":"a","type":["long"]},
                {"name":"n","type":["null"]},{"name":"x","type":{"type":"array","items":["string"]}},
                {"name":"b","type":"long"}]}"#,
        );
        let mut data = Vec::new();
        for v in [7i64, -8] {
            encode_long(0, &mut data); // a: branch 0
            encode_long(v, &mut data);
            encode_long(0, &mut data); // n: branch 0 (null)
            encode_long(1, &mut data); // x: one item
            encode_long(0, &mut data); // branch 0
            encode_long(1, &mut data);
            data.push(b'z');
            encode_long(0, &mut data); // end of array
            encode_long(v * 10, &mut data); // b
        }
        d.decode_block(&data, 2).unwrap();
        let batch = d.flush().unwrap().unwrap();
        assert_eq!(batch.num_columns(), 3);
        assert_eq!(batch.column(0).as_primitive::<Int64Type>().value(1), -8);
        assert_eq!(batch.column(2).as_primitive::<Int64Type>().value(1), -80);
        let mut bad = Vec::new();
        encode_long(1, &mut bad);
        bad.extend_from_slice(&[0; 8]);
        let err = d.decode_block(&bad, 1).unwrap_err();
        assert!(err.to_string().contains("union branch index 1"), "{err}");
    }

    /// Java's blocking encoder writes a negative count followed by the block's byte size;
    /// such blocks decode like others, in arrays and maps, and are jumped over when skipped.
    #[test]
    fn blocks_with_byte_sizes() {
        let mut d = decoder(
            r#"{"type":"record","name":"r","fields":[
                {"name":"a","type":{"type":"array","items":"long"}},
                {"name":"m","type":{"type":"map","values":"string"}},
                {"name":"b","type":"long"}]}"#,
        );
        let mut data = Vec::new();
        // a: a block of -2 items (3 bytes), then a plain block of 1, then the end.
        encode_long(-2, &mut data);
        encode_long(3, &mut data);
        encode_long(300, &mut data);
        encode_long(-5, &mut data);
        encode_long(1, &mut data);
        encode_long(7, &mut data);
        encode_long(0, &mut data);
        // m: a block of -1 entry ("k" -> "v": 4 bytes).
        encode_long(-1, &mut data);
        encode_long(4, &mut data);
        for s in ["k", "v"] {
            encode_long(1, &mut data);
            data.extend_from_slice(s.as_bytes());
        }
        encode_long(0, &mut data);
        encode_long(42, &mut data);
        d.decode_block(&data, 1).unwrap();
        let batch = d.flush().unwrap().unwrap();
        let a = batch.column(0).as_list::<i32>();
        assert_eq!(
            a.value(0).as_primitive::<Int64Type>().values(),
            &[300, -5, 7]
        );
        let m = batch.column(1).as_map();
        assert_eq!(m.value(0).len(), 1);
        assert_eq!(batch.column(2).as_primitive::<Int64Type>().value(0), 42);

        // A reader without `a` and `m` skips both by their byte sizes.
        let reader = Schema::parse_str(
            r#"{"type":"record","name":"r","fields":[{"name":"b","type":"long"}]}"#,
        )
        .unwrap();
        let writer = Schema::parse_str(
            r#"{"type":"record","name":"r","fields":[
                {"name":"a","type":{"type":"array","items":"long"}},
                {"name":"m","type":{"type":"map","values":"string"}},
                {"name":"b","type":"long"}]}"#,
        )
        .unwrap();
        let resolved = Arc::new(plan_resolved(&writer, &reader).unwrap());
        let mut d = BatchDecoder::new(resolved);
        d.decode_block(&data, 1).unwrap();
        let batch = d.flush().unwrap().unwrap();
        assert_eq!(batch.column(0).as_primitive::<Int64Type>().value(0), 42);

        // A byte size that cannot be right (negative, or past the end) is ignored, as Java's,
        // fastavro's and apache-avro's readers ignore it: the items are read by the count,
        // also when the field is skipped.
        for size in [-17, 1000] {
            let mut odd = Vec::new();
            encode_long(-2, &mut odd);
            encode_long(size, &mut odd);
            encode_long(300, &mut odd);
            encode_long(-5, &mut odd);
            encode_long(0, &mut odd);
            encode_long(0, &mut odd); // m: no entries
            encode_long(42, &mut odd);
            let mut d = BatchDecoder::new(Arc::new(plan(&writer).unwrap()));
            d.decode_block(&odd, 1).unwrap();
            let batch = d.flush().unwrap().unwrap();
            let a = batch.column(0).as_list::<i32>();
            assert_eq!(a.value(0).as_primitive::<Int64Type>().values(), &[300, -5]);
            assert_eq!(batch.column(2).as_primitive::<Int64Type>().value(0), 42);
            let mut d = BatchDecoder::new(Arc::new(plan_resolved(&writer, &reader).unwrap()));
            d.decode_block(&odd, 1).unwrap();
            let batch = d.flush().unwrap().unwrap();
            assert_eq!(batch.column(0).as_primitive::<Int64Type>().value(0), 42);
        }
        // A block cut short is an error, not a panic.
        let mut bad = Vec::new();
        encode_long(-1, &mut bad);
        encode_long(1000, &mut bad);
        encode_long(1, &mut bad);
        let mut d = decoder(r#"{"type":"array","items":"long"}"#);
        assert!(d.decode_block(&bad, 1).is_err());
    }

    #[test]
    fn absurd_array_counts_are_refused() {
        let mut d = decoder(r#"{"type":"array","items":"long"}"#);
        let mut data = Vec::new();
        encode_long(1 << 40, &mut data);
        encode_long(1, &mut data);
        let err = d.decode_block(&data, 1).unwrap_err();
        assert!(err.to_string().contains("absurd item count"), "{err}");
    }

    /// Items of no bytes are bounded over the whole block, not per array block: a few hundred
    /// bytes of array blocks of `fixed(0)` items were a billion items (16 GB once encoded).
    /// Those decoded count as a byte each towards the group's decoded size.
    #[test]
    fn items_of_no_bytes_are_bounded_per_block() {
        let schema = r#"{"type":"array","items":{"type":"fixed","name":"z","size":0}}"#;
        let datum = |blocks: usize, items: i64| {
            let mut data = Vec::new();
            for _ in 0..blocks {
                encode_long(items, &mut data);
            }
            encode_long(0, &mut data);
            data
        };
        let mut d = decoder(schema);
        d.decode_block(&datum(8, 1 << 18), 1).unwrap();
        assert_eq!(d.rows(), 1);
        assert!(d.byte_size() >= 2 << 20, "{}", d.byte_size());
        // 64 blocks of 262,144: past the 4 million a block may hold.
        let err = d.decode_block(&datum(64, 1 << 18), 1).unwrap_err();
        assert!(err.to_string().contains("items of no bytes"), "{err}");
        assert_eq!(d.rows(), 1, "rolled back");
        // Over several records of one block too.
        let mut block = Vec::new();
        for _ in 0..20 {
            block.extend(datum(1, 1 << 18));
        }
        let err = d.decode_block(&block, 20).unwrap_err();
        assert!(err.to_string().contains("items of no bytes"), "{err}");
        // Each block has its own allowance.
        for _ in 0..3 {
            d.decode_block(&datum(15, 1 << 18), 1).unwrap();
        }
        assert_eq!(d.rows(), 4);
    }

    #[test]
    fn ascii_prefix_looks_at_the_first_n_bytes_only() {
        for high in 0..SHORT {
            let mut w = [b'a'; SHORT];
            w[high] = 0xc3;
            for n in 0..=SHORT {
                assert_eq!(
                    ascii_prefix(&w, n),
                    n <= high,
                    "byte {high} high, {n} bytes"
                );
            }
        }
        assert!(ascii_prefix(&[0x7f; SHORT], SHORT));
    }

    #[test]
    fn short_strings_are_checked_whatever_follows_them() {
        // Strings of 0..=40 bytes (with and without a window), ASCII or not, valid or not,
        // each followed by non-ASCII bytes that the window sees but the string does not own.
        let mut d = decoder(
            r#"{"type":"record","name":"r","fields":[{"name":"s","type":"string"},{"name":"b","type":"bytes"}]}"#,
        );
        let mut kept = Vec::new();
        for len in 0..=40usize {
            for tail in [
                &[][..],
                &[0xc3],
                &[0xff],
                &[0xc3, 0xa9],
                &[0xe2, 0x82, 0xac],
            ] {
                let mut s = vec![b'x'; len.saturating_sub(tail.len())];
                s.extend_from_slice(tail);
                let mut data = Vec::new();
                encode_long(s.len() as i64, &mut data);
                data.extend_from_slice(&s);
                encode_long(40, &mut data);
                data.extend_from_slice(&[0xe9; 40]);
                let result = d.decode_block(&data, 1);
                let valid = String::from_utf8(s).ok();
                assert_eq!(
                    result.is_ok(),
                    valid.is_some(),
                    "{len} bytes, tail {tail:?}"
                );
                kept.extend(valid);
            }
        }
        let batch = d.flush().unwrap().unwrap();
        let strings: Vec<_> = batch
            .column(0)
            .as_string::<i32>()
            .iter()
            .flatten()
            .collect();
        assert_eq!(strings, kept);
        let bytes = batch.column(1).as_binary::<i32>();
        assert!(bytes.iter().all(|b| b == Some(&[0xe9; 40][..])));
    }

    #[test]
    fn a_boolean_byte_other_than_0_or_1_sets_its_record_aside() {
        let schema = r#"{"type":"record","name":"r","fields":[
            {"name":"id","type":"long"},{"name":"b","type":["null","boolean"]}]}"#;
        let mut block = Vec::new();
        for (id, byte) in [(0, 1u8), (1, 2), (2, 0), (3, 0x80)] {
            encode_long(id, &mut block);
            encode_long(1, &mut block);
            block.push(byte);
        }
        let plan = Arc::new(plan(&Schema::parse_str(schema).unwrap()).unwrap());
        let mut d = BatchDecoder::new(plan.clone());
        let e = d.decode_block(&block, 4).unwrap_err();
        assert!(
            e.to_string()
                .contains("boolean byte 0x02 is neither 0 nor 1"),
            "{e}"
        );
        let mut bad = Vec::new();
        d.decode_block_salvaging(&plan, &block, 4, &mut bad)
            .unwrap();
        assert_eq!(
            bad.iter()
                .map(|b| (b.error.record, b.range.clone()))
                .collect::<Vec<_>>(),
            vec![(1, 3..6), (3, 9..12)]
        );
        let batch = d.flush().unwrap().unwrap();
        assert_eq!(
            batch.column(0).as_primitive::<Int64Type>().values(),
            &[0, 2]
        );
        let b = batch.column(1).as_boolean();
        assert_eq!(b.iter().collect::<Vec<_>>(), [Some(true), Some(false)]);
    }

    #[test]
    fn invalid_utf8_and_trailing_bytes() {
        let mut d = decoder(r#""string""#);
        let mut data = Vec::new();
        encode_long(2, &mut data);
        data.extend_from_slice(&[0xc3, 0x28]);
        let err = d.decode_block(&data, 1).unwrap_err();
        assert!(err.to_string().contains("UTF-8"), "{err}");
        let mut d = decoder(r#""string""#);
        let mut data = Vec::new();
        encode_long(1, &mut data);
        data.extend_from_slice(b"ab");
        let err = d.decode_block(&data, 1).unwrap_err();
        assert!(
            matches!(err, DecodeError::Trailing { trailing: 1, .. }),
            "{err}"
        );
        let err = d.decode_block(&data, 1 << 40).unwrap_err();
        assert!(matches!(err, DecodeError::Count { .. }), "{err}");
    }
}
