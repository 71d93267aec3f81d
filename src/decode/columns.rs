//! Column builders: the growing Arrow buffers that decoded values are appended to.
//!
//! A [`Column`] is built from an Arrow [`DataType`] (the output type chosen by
//! [`super::types`]), filled by the decode program, and turned into an [`ArrayRef`] by
//! [`Column::finish`], which leaves it empty and ready for the next batch (with its capacity
//! kept, if asked).

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int32Type, Int64Type,
    TimestampMicrosecondType, TimestampMillisecondType,
};
use arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, FixedSizeBinaryArray, ListArray, MapArray, PrimitiveArray,
    StringArray, StructArray,
};
use arrow_buffer::{BooleanBuffer, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{ArrowError, DataType, TimeUnit};

/// A growing bitmap (validity or booleans), appended one bit at a time in the hot loop.
#[derive(Debug, Default)]
pub(crate) struct Bits {
    bytes: Vec<u8>,
    len: usize,
}

impl Bits {
    #[inline]
    pub fn append(&mut self, v: bool) {
        let bit = self.len % 8;
        if bit == 0 {
            self.bytes.push(0);
        }
        // Without a branch on the value: random booleans mispredicted it half the time.
        if let Some(last) = self.bytes.last_mut() {
            *last |= u8::from(v) << bit;
        }
        self.len += 1;
    }

    /// Appends `n` unset bits (the bits past `len` are always unset, so only bytes are
    /// added).
    pub fn append_unset(&mut self, n: usize) {
        self.len += n;
        self.bytes.resize(self.len.div_ceil(8), 0);
    }

    /// Keeps the first `len` bits.
    pub fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        self.len = len;
        self.bytes.truncate(len.div_ceil(8));
        if !len.is_multiple_of(8)
            && let Some(last) = self.bytes.last_mut()
        {
            *last &= (1u8 << (len % 8)) - 1;
        }
    }

    /// Number of bits.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The bits as a buffer; leaves this empty, with its capacity kept if `keep`.
    pub fn finish(&mut self, keep: bool) -> BooleanBuffer {
        let bytes = take_vec(&mut self.bytes, keep);
        let len = std::mem::take(&mut self.len);
        BooleanBuffer::new(Buffer::from_vec(bytes), 0, len)
    }
}

/// A growing column of one Arrow type.
#[derive(Debug)]
pub(crate) struct Column {
    /// Validity, for nullable columns.
    pub nulls: Option<Bits>,
    pub data: Data,
    data_type: DataType,
}

/// The value buffers of a [`Column`].
#[derive(Debug)]
pub(crate) enum Data {
    Boolean(Bits),
    Int32(Vec<i32>),
    Int64(Vec<i64>),
    Float32(Vec<f32>),
    Float64(Vec<f64>),
    /// Binary or Utf8 (the data type says which); values are already validated.
    Bytes {
        offsets: Vec<i32>,
        values: Vec<u8>,
    },
    Fixed {
        size: usize,
        values: Vec<u8>,
        len: usize,
    },
    Decimal(Vec<i128>),
    /// `len` rows, of which the last `behind` are null (or default) rows not yet appended to
    /// the children: they are appended all at once when a row with values comes, or the
    /// column is finished, instead of one null per child (and per grandchild) and row. The
    /// members of a union and the optional records are mostly such rows.
    Struct {
        children: Vec<Column>,
        len: usize,
        behind: usize,
    },
    List {
        offsets: Vec<i32>,
        child: Box<Column>,
    },
    Map {
        offsets: Vec<i32>,
        keys: Box<Column>,
        values: Box<Column>,
        /// Whether a map since the last batch repeated a key, and the table the maps' keys
        /// are checked in (boxed: inline, they made every column larger, and the decoder's
        /// code around columns worse).
        check: Box<KeyCheck>,
    },
}

/// Builders could not be turned into arrays (a bug or a buffer past 2 GiB).
#[derive(Debug, thiserror::Error)]
pub enum ColumnError {
    /// Arrow refused the arrays.
    #[error("building Arrow arrays: {0}")]
    Arrow(#[from] ArrowError),
    /// A variable-length column passed 2 GiB in one batch.
    #[error("a column holds more than 2 GiB of values in one batch")]
    Overflow,
}

impl Column {
    /// An empty column for `data_type`.
    pub fn new(data_type: &DataType, nullable: bool) -> Self {
        let data = match data_type {
            DataType::Boolean => Data::Boolean(Bits::default()),
            DataType::Int32 | DataType::Date32 => Data::Int32(Vec::new()),
            DataType::Int64 | DataType::Timestamp(_, _) => Data::Int64(Vec::new()),
            DataType::Float32 => Data::Float32(Vec::new()),
            DataType::Float64 => Data::Float64(Vec::new()),
            DataType::Binary | DataType::Utf8 => Data::Bytes {
                offsets: vec![0],
                values: Vec::new(),
            },
            DataType::FixedSizeBinary(n) => Data::Fixed {
                size: *n as usize,
                values: Vec::new(),
                len: 0,
            },
            DataType::Decimal128(_, _) => Data::Decimal(Vec::new()),
            DataType::Struct(fields) => Data::Struct {
                children: fields
                    .iter()
                    .map(|f| Column::new(f.data_type(), f.is_nullable()))
                    .collect(),
                len: 0,
                behind: 0,
            },
            DataType::List(item) => Data::List {
                offsets: vec![0],
                child: Box::new(Column::new(item.data_type(), item.is_nullable())),
            },
            DataType::Map(entries, _) => {
                let DataType::Struct(kv) = entries.data_type() else {
                    unreachable!("map entries are a struct")
                };
                Data::Map {
                    offsets: vec![0],
                    keys: Box::new(Column::new(kv[0].data_type(), false)),
                    values: Box::new(Column::new(kv[1].data_type(), kv[1].is_nullable())),
                    check: Box::new(KeyCheck {
                        repeats: false,
                        seen: KeySet::new(),
                    }),
                }
            }
            other => unreachable!("the planner never produces {other}"),
        };
        Column {
            nulls: nullable.then(Bits::default),
            data,
            data_type: data_type.clone(),
        }
    }

    /// Bytes held by the value buffers (a proxy for the batch's memory).
    pub fn byte_size(&self) -> usize {
        match &self.data {
            Data::Boolean(b) => b.len() / 8,
            Data::Int32(v) => v.len() * 4,
            Data::Int64(v) => v.len() * 8,
            Data::Float32(v) => v.len() * 4,
            Data::Float64(v) => v.len() * 8,
            Data::Bytes { offsets, values } => offsets.len() * 4 + values.len(),
            Data::Fixed { values, .. } => values.len(),
            Data::Decimal(v) => v.len() * 16,
            // The rows behind count as the nulls they will be.
            Data::Struct {
                children, behind, ..
            } => children
                .iter()
                .map(|c| match behind {
                    0 => c.byte_size(),
                    n => c.byte_size() + n * c.null_row_bytes(),
                })
                .sum(),
            // An item counts as a byte at least: items of no bytes (`null`, `fixed(0)`) still
            // take a few bytes each as Parquet levels.
            Data::List { offsets, child } => {
                let items = offsets.last().map_or(0, |&n| n.max(0) as usize);
                offsets.len() * 4 + child.byte_size().max(items)
            }
            Data::Map {
                offsets,
                keys,
                values,
                ..
            } => offsets.len() * 4 + keys.byte_size() + values.byte_size(),
        }
    }

    /// Bytes one null row takes in this column's value buffers (as [`Self::byte_size`]
    /// counts them).
    fn null_row_bytes(&self) -> usize {
        match &self.data {
            Data::Boolean(_) => 0,
            Data::Int32(_) | Data::Float32(_) => 4,
            Data::Int64(_) | Data::Float64(_) => 8,
            Data::Bytes { .. } | Data::List { .. } | Data::Map { .. } => 4,
            Data::Fixed { size, .. } => *size,
            Data::Decimal(_) => 16,
            Data::Struct { children, .. } => children.iter().map(Column::null_row_bytes).sum(),
        }
    }

    /// Appends the bytes held by each of this column's buffers (validity, values, offsets,
    /// then its children's), in the order [`Self::reserve`] reads them.
    pub fn lengths(&self, out: &mut Vec<usize>) {
        self.buffers(&mut |len, _| out.push(len));
    }

    /// Calls `f` with the bytes held and the bytes of capacity of each buffer, in the order
    /// of [`Self::lengths`].
    pub fn buffers(&self, f: &mut dyn FnMut(usize, usize)) {
        fn vec<T>(v: &Vec<T>, f: &mut dyn FnMut(usize, usize)) {
            let size = std::mem::size_of::<T>();
            f(v.len() * size, v.capacity() * size);
        }
        match &self.nulls {
            Some(n) => vec(&n.bytes, f),
            None => f(0, 0),
        }
        match &self.data {
            Data::Boolean(b) => vec(&b.bytes, f),
            Data::Int32(v) => vec(v, f),
            Data::Int64(v) => vec(v, f),
            Data::Float32(v) => vec(v, f),
            Data::Float64(v) => vec(v, f),
            Data::Decimal(v) => vec(v, f),
            Data::Bytes { offsets, values } => {
                vec(offsets, f);
                vec(values, f);
            }
            Data::Fixed { values, .. } => vec(values, f),
            Data::Struct { children, .. } => children.iter().for_each(|c| c.buffers(f)),
            Data::List { offsets, child } => {
                vec(offsets, f);
                child.buffers(f);
            }
            Data::Map {
                offsets,
                keys,
                values,
                ..
            } => {
                vec(offsets, f);
                keys.buffers(f);
                values.buffers(f);
            }
        }
    }

    /// Reserves room for `num / den` of the bytes `lengths` yields per buffer (as
    /// [`Self::lengths`] wrote them for a column of the same type); stops when they run out.
    pub fn reserve(&mut self, lengths: &mut std::slice::Iter<'_, usize>, num: usize, den: usize) {
        let mut next = |size: usize| -> usize {
            let bytes = lengths.next().copied().unwrap_or(0);
            let scaled = (bytes as u128 * num as u128 / den.max(1) as u128) as usize;
            size_class(scaled) / size
        };
        let validity = next(1);
        if let Some(n) = &mut self.nulls {
            n.bytes.reserve(validity);
        }
        match &mut self.data {
            Data::Boolean(b) => b.bytes.reserve(next(1)),
            Data::Int32(v) => v.reserve(next(4)),
            Data::Int64(v) => v.reserve(next(8)),
            Data::Float32(v) => v.reserve(next(4)),
            Data::Float64(v) => v.reserve(next(8)),
            Data::Decimal(v) => v.reserve(next(16)),
            Data::Bytes { offsets, values } => {
                offsets.reserve(next(4));
                values.reserve(next(1));
            }
            Data::Fixed { values, .. } => values.reserve(next(1)),
            Data::Struct { children, .. } => children
                .iter_mut()
                .for_each(|c| c.reserve(lengths, num, den)),
            Data::List { offsets, child } => {
                offsets.reserve(next(4));
                child.reserve(lengths, num, den);
            }
            Data::Map {
                offsets,
                keys,
                values,
                ..
            } => {
                offsets.reserve(next(4));
                keys.reserve(lengths, num, den);
                values.reserve(lengths, num, den);
            }
        }
    }

    /// Keeps the first `rows` values, dropping later ones and any partly appended value (the
    /// rollback after a record fails half-way). Nested lengths follow from the offsets.
    pub fn truncate(&mut self, rows: usize) {
        if let Some(n) = &mut self.nulls {
            n.truncate(rows);
        }
        match &mut self.data {
            Data::Boolean(b) => b.truncate(rows),
            Data::Int32(v) => v.truncate(rows),
            Data::Int64(v) => v.truncate(rows),
            Data::Float32(v) => v.truncate(rows),
            Data::Float64(v) => v.truncate(rows),
            Data::Decimal(v) => v.truncate(rows),
            Data::Bytes { offsets, values } => {
                offsets.truncate(rows + 1);
                let end = offsets.last().copied().unwrap_or(0).max(0) as usize;
                values.truncate(end);
            }
            Data::Fixed { size, values, len } => {
                *len = (*len).min(rows);
                values.truncate(*len * *size);
            }
            Data::Struct {
                children,
                len,
                behind,
            } => {
                // The children hold the rows before the ones behind (and, when none is
                // behind, possibly part of a row that failed).
                let filled = rows.min(*len - *behind);
                *len = (*len).min(rows);
                *behind = *len - filled;
                for c in children {
                    c.truncate(filled);
                }
            }
            Data::List { offsets, child } => {
                offsets.truncate(rows + 1);
                let end = offsets.last().copied().unwrap_or(0).max(0) as usize;
                child.truncate(end);
            }
            Data::Map {
                offsets,
                keys,
                values,
                ..
            } => {
                offsets.truncate(rows + 1);
                let end = offsets.last().copied().unwrap_or(0).max(0) as usize;
                keys.truncate(end);
                values.truncate(end);
            }
        }
    }

    /// Marks the value just appended as valid (nullable columns only).
    #[inline]
    pub fn set_valid(&mut self) {
        if let Some(n) = &mut self.nulls {
            n.append(true);
        }
    }

    /// Appends a null: invalid in this column, default values below it.
    #[inline]
    pub fn append_null(&mut self) {
        if let Some(n) = &mut self.nulls {
            n.append(false);
        }
        self.append_default();
    }

    /// The children and length of a struct column, with the rows behind appended to the
    /// children first (see [`Data::Struct`]); `None` for other columns.
    #[inline]
    pub fn struct_parts(&mut self) -> Option<(&mut [Column], &mut usize)> {
        match &mut self.data {
            Data::Struct {
                children,
                len,
                behind,
            } => {
                if *behind > 0 {
                    append_null_children(children, std::mem::take(behind));
                }
                Some((children, len))
            }
            _ => None,
        }
    }

    /// Appends `n` nulls at once (see [`Self::append_null`]).
    pub fn append_nulls(&mut self, n: usize) {
        if let Some(b) = &mut self.nulls {
            b.append_unset(n);
        }
        match &mut self.data {
            Data::Boolean(b) => b.append_unset(n),
            Data::Int32(v) => v.resize(v.len() + n, 0),
            Data::Int64(v) => v.resize(v.len() + n, 0),
            Data::Float32(v) => v.resize(v.len() + n, 0.0),
            Data::Float64(v) => v.resize(v.len() + n, 0.0),
            Data::Bytes { offsets, values } => {
                offsets.resize(offsets.len() + n, values.len() as i32);
            }
            Data::Fixed { size, values, len } => {
                values.resize(values.len() + n * *size, 0);
                *len += n;
            }
            Data::Decimal(v) => v.resize(v.len() + n, 0),
            Data::Struct { len, behind, .. } => {
                *len += n;
                *behind += n;
            }
            Data::List { offsets, .. } | Data::Map { offsets, .. } => {
                let last = offsets.last().copied().unwrap_or(0);
                offsets.resize(offsets.len() + n, last);
            }
        }
    }

    /// Appends the rows behind of this column and of every struct below it to their children,
    /// so that the buffers hold every row (before their sizes are read).
    pub fn catch_up(&mut self) {
        if let Some((children, _)) = self.struct_parts() {
            children.iter_mut().for_each(Column::catch_up);
            return;
        }
        match &mut self.data {
            Data::List { child, .. } => child.catch_up(),
            Data::Map { keys, values, .. } => {
                keys.catch_up();
                values.catch_up();
            }
            _ => {}
        }
    }

    /// Appends a default value without touching this column's validity. Children of structs get
    /// nulls where they are nullable, defaults where they are not.
    #[inline]
    pub fn append_default(&mut self) {
        match &mut self.data {
            Data::Boolean(b) => b.append(false),
            Data::Int32(v) => v.push(0),
            Data::Int64(v) => v.push(0),
            Data::Float32(v) => v.push(0.0),
            Data::Float64(v) => v.push(0.0),
            Data::Bytes { offsets, values } => offsets.push(values.len() as i32),
            Data::Fixed { size, values, len } => {
                values.resize(values.len() + *size, 0);
                *len += 1;
            }
            Data::Decimal(v) => v.push(0),
            Data::Struct { len, behind, .. } => {
                *len += 1;
                *behind += 1;
            }
            Data::List { offsets, .. } | Data::Map { offsets, .. } => {
                let last = offsets.last().copied().unwrap_or(0);
                offsets.push(last);
            }
        }
    }

    /// Turns the buffers into an array and leaves the column empty, with the capacity of its
    /// buffers kept for the next batch if `keep` (a decoder sized for a group has no next
    /// batch: keeping would allocate buffers only to free them).
    pub fn finish(&mut self, keep: bool) -> Result<ArrayRef, ColumnError> {
        let nulls = self.nulls.as_mut().map(|n| NullBuffer::new(n.finish(keep)));
        let nulls = nulls.filter(|n| n.null_count() > 0);
        let dt = self.data_type.clone();
        let array: ArrayRef = match (&mut self.data, &dt) {
            (Data::Boolean(b), _) => Arc::new(BooleanArray::new(b.finish(keep), nulls)),
            (Data::Int32(v), DataType::Date32) => {
                Arc::new(PrimitiveArray::<Date32Type>::new(take_buf(v, keep), nulls))
            }
            (Data::Int32(v), _) => {
                Arc::new(PrimitiveArray::<Int32Type>::new(take_buf(v, keep), nulls))
            }
            (Data::Int64(v), DataType::Timestamp(unit, tz)) => match unit {
                TimeUnit::Millisecond => Arc::new(
                    PrimitiveArray::<TimestampMillisecondType>::new(take_buf(v, keep), nulls)
                        .with_timezone_opt(tz.clone()),
                ),
                _ => Arc::new(
                    PrimitiveArray::<TimestampMicrosecondType>::new(take_buf(v, keep), nulls)
                        .with_timezone_opt(tz.clone()),
                ),
            },
            (Data::Int64(v), _) => {
                Arc::new(PrimitiveArray::<Int64Type>::new(take_buf(v, keep), nulls))
            }
            (Data::Float32(v), _) => {
                Arc::new(PrimitiveArray::<Float32Type>::new(take_buf(v, keep), nulls))
            }
            (Data::Float64(v), _) => {
                Arc::new(PrimitiveArray::<Float64Type>::new(take_buf(v, keep), nulls))
            }
            (Data::Bytes { offsets, values }, dt) => {
                let offsets = take_offsets(offsets, keep);
                let values = take_buf(values, keep).into_inner();
                if *dt == DataType::Utf8 {
                    utf8_array(offsets, values, nulls)?
                } else {
                    Arc::new(BinaryArray::try_new(offsets, values, nulls)?)
                }
            }
            (Data::Fixed { size, values, len }, _) => {
                // Never size 0: the planner makes fixed(0) Binary.
                let array = FixedSizeBinaryArray::try_new(
                    *size as i32,
                    take_buf(values, keep).into_inner(),
                    nulls,
                )?;
                *len = 0;
                Arc::new(array)
            }
            (Data::Decimal(v), DataType::Decimal128(p, s)) => Arc::new(
                PrimitiveArray::<Decimal128Type>::new(take_buf(v, keep), nulls)
                    .with_precision_and_scale(*p, *s)?,
            ),
            (
                Data::Struct {
                    children,
                    len,
                    behind,
                },
                DataType::Struct(fields),
            ) => {
                append_null_children(children, std::mem::take(behind));
                let arrays = children
                    .iter_mut()
                    .map(|c| c.finish(keep))
                    .collect::<Result<Vec<_>, _>>()?;
                let n = std::mem::take(len);
                Arc::new(if fields.is_empty() {
                    StructArray::new_empty_fields(n, nulls)
                } else {
                    StructArray::try_new(fields.clone(), arrays, nulls)?
                })
            }
            (Data::List { offsets, child }, DataType::List(item)) => {
                let values = child.finish(keep)?;
                Arc::new(ListArray::try_new(
                    item.clone(),
                    take_offsets(offsets, keep),
                    values,
                    nulls,
                )?)
            }
            (
                Data::Map {
                    offsets,
                    keys,
                    values,
                    check,
                },
                DataType::Map(entries, sorted),
            ) => {
                let DataType::Struct(kv) = entries.data_type() else {
                    unreachable!("map entries are a struct")
                };
                let kept = std::mem::take(&mut check.repeats)
                    .then(|| last_of_each_key(offsets, keys, &mut check.seen));
                let mut entries_array = StructArray::try_new(
                    kv.clone(),
                    vec![keys.finish(keep)?, values.finish(keep)?],
                    None,
                )?;
                let mut offsets = take_offsets(offsets, keep);
                if let Some((kept, kept_offsets)) = kept {
                    let filtered = arrow_select::filter::filter(&entries_array, &kept)?;
                    entries_array = filtered.as_struct().clone();
                    offsets = kept_offsets;
                }
                Arc::new(MapArray::try_new(
                    entries.clone(),
                    offsets,
                    entries_array,
                    nulls,
                    *sorted,
                )?)
            }
            (data, dt) => unreachable!("column {data:?} does not build {dt}"),
        };
        Ok(array)
    }
}

/// Whether two of the map entries `from..to` have the same key (`keys` is the map's key
/// column; `seen`, the map column's table). Avro readers keep the last entry of a repeated key
/// (they decode into a map), and Athena (Trino) fails on a Parquet map that repeats one; no
/// usual writer makes one, since they write from maps, so this is a check that finds nothing.
/// (Not inlined: beside the map's decoding it is little work, and inlined into it, `--shape
/// otel` took 0.6% more instructions.)
#[inline(never)]
pub(crate) fn repeats_key(keys: &Column, from: usize, to: usize, seen: &mut KeySet) -> bool {
    let Data::Bytes { offsets, values } = &keys.data else {
        return false;
    };
    let key = |j: usize| &values[offsets[j] as usize..offsets[j + 1] as usize];
    match to.saturating_sub(from) {
        0 | 1 => false,
        // Pairs are cheaper than a table for up to 4 entries (6 pairs).
        2..=KEY_PAIRS_UP_TO => (from + 1..to).any(|k| (from..k).any(|j| key(j) == key(k))),
        n => seen.repeats(n, |j| key(from + j)),
    }
}

/// A map column's check for repeated keys.
#[derive(Debug)]
pub(crate) struct KeyCheck {
    /// Some map since the last batch repeated a key (see [`repeats_key`]): the batch keeps
    /// only the last entry of each key.
    pub(crate) repeats: bool,
    /// The table the keys of each map are checked in.
    pub(crate) seen: KeySet,
}

/// The most entries [`repeats_key`] compares pair by pair.
const KEY_PAIRS_UP_TO: usize = 4;

/// [`repeats_key`]'s table, kept by each map column and reused from map to map, with a fast
/// keyed hash: per slot, the stamp of the map that filled it and the entry's index in that
/// map. Each map takes a new stamp, so the table is never cleared between maps. (A set per
/// map with the standard SipHash took a fifth of the cpu of maps of ~30 attributes in
/// session 24; a thread's table cleared for each map, then checked pair by pair up to 16
/// entries, 8% of the cpu of spans of 10-30 attributes in session 33.)
#[derive(Debug)]
pub(crate) struct KeySet {
    seed: u64,
    stamp: u32,
    slots: Vec<(u32, u32)>,
}

/// The most slots a [`KeySet`] keeps between maps (2 MiB): a map that needs more (over
/// 131,072 entries) gets a table of its own.
const KEY_SET_KEPT: usize = 1 << 18;

impl KeySet {
    pub(crate) fn new() -> Self {
        KeySet {
            seed: crate::hash::random_seed(),
            stamp: 0,
            slots: Vec::new(),
        }
    }

    /// Whether two of the `n` keys `key(0..n)` are equal.
    fn repeats<'a>(&mut self, n: usize, key: impl Fn(usize) -> &'a [u8]) -> bool {
        let size = (2 * n).next_power_of_two();
        let mask = size - 1;
        let slot_of = |k: &[u8]| crate::hash::bytes(self.seed, k) as usize & mask;
        if size > KEY_SET_KEPT {
            // A huge map: a table of its own, freed after it, of 4 bytes a slot (the entry's
            // index plus one; 0: empty), as before the stamped table: 8 to 16 bytes an entry,
            // where the entry itself takes 8 in offsets and its key and value bytes.
            let mut table = vec![0u32; size];
            return any_repeat(
                n,
                key,
                slot_of,
                mask,
                &mut table,
                |e| (e != 0).then(|| e as usize - 1),
                |j| j as u32 + 1,
            );
        }
        if self.slots.len() < size {
            self.slots = vec![(0, 0); size];
            self.stamp = 0;
        }
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            // Stamps have come round: the slots' old stamps must not pass for the new one.
            self.slots.fill((0, 0));
            self.stamp = 1;
        }
        let stamp = self.stamp;
        any_repeat(
            n,
            key,
            slot_of,
            mask,
            &mut self.slots,
            |(s, e)| (s == stamp).then_some(e as usize),
            |j| (stamp, j as u32),
        )
    }
}

/// Whether two of the `n` keys `key(0..n)` are equal, each entered in turn into `slots` (of
/// `mask + 1`, probed linearly from `slot_of` its key): `entry` tells which entry fills a slot
/// (`None`: empty), `filled` is a slot filled by entry `j`.
#[inline(always)]
fn any_repeat<'a, T: Copy>(
    n: usize,
    key: impl Fn(usize) -> &'a [u8],
    slot_of: impl Fn(&[u8]) -> usize,
    mask: usize,
    slots: &mut [T],
    entry: impl Fn(T) -> Option<usize>,
    filled: impl Fn(usize) -> T,
) -> bool {
    (0..n).any(|j| {
        let k = key(j);
        let mut slot = slot_of(k);
        loop {
            match entry(slots[slot]) {
                None => {
                    slots[slot] = filled(j);
                    return false;
                }
                Some(e) if key(e) == k => return true,
                Some(_) => slot = (slot + 1) & mask,
            }
        }
    })
}

/// For the maps of `offsets` over the entries whose keys are `keys`: which entries to keep
/// (the last of each key in its map) and the offsets of the kept entries.
fn last_of_each_key(
    offsets: &[i32],
    keys: &Column,
    seen: &mut KeySet,
) -> (BooleanArray, OffsetBuffer<i32>) {
    let Data::Bytes {
        offsets: key_offsets,
        values,
    } = &keys.data
    else {
        unreachable!("map keys are strings")
    };
    let key = |j: usize| &values[key_offsets[j] as usize..key_offsets[j + 1] as usize];
    let mut kept = Vec::with_capacity(offsets.last().copied().unwrap_or(0).max(0) as usize);
    let mut kept_offsets = Vec::with_capacity(offsets.len());
    kept_offsets.push(0i32);
    for w in offsets.windows(2) {
        let (from, to) = (w[0] as usize, w[1] as usize);
        if repeats_key(keys, from, to, seen) {
            let mut last = std::collections::HashMap::with_capacity(to - from);
            for j in from..to {
                last.insert(key(j), j);
            }
            kept.extend((from..to).map(|j| last[key(j)] == j));
            kept_offsets.push(kept_offsets[kept_offsets.len() - 1] + last.len() as i32);
        } else {
            kept.resize(kept.len() + (to - from), true);
            kept_offsets.push(kept_offsets[kept_offsets.len() - 1] + (to - from) as i32);
        }
    }
    (
        BooleanArray::from(kept),
        OffsetBuffer::new(ScalarBuffer::from(kept_offsets)),
    )
}

/// `bytes` rounded up to one of 8 sizes per power of two (from 64 KiB): the buffers of one
/// group, freed, then fit the next group's, instead of being split into odd remainders. Ten
/// times the benchmark data in one file (6 runs against 4 alternating): peak RSS 124-130 MiB
/// against 129-135; the benchmark data itself unchanged (~106 MiB).
fn size_class(bytes: usize) -> usize {
    if bytes < 64 << 10 {
        return bytes;
    }
    let step = (1usize << (usize::BITS - 1 - bytes.leading_zeros())) / 8;
    bytes.div_ceil(step).saturating_mul(step)
}

/// `n` null or default rows of a struct, appended to its children: nulls where they are
/// nullable, defaults where they are not.
#[inline(never)]
fn append_null_children(children: &mut [Column], n: usize) {
    if n == 0 {
        return;
    }
    for c in children {
        c.append_nulls(n);
    }
}

/// The vector's contents; leaves an empty vector, of the same capacity if `keep`, so that the
/// next batch does not grow it again from nothing, copied at every doubling.
fn take_vec<T>(v: &mut Vec<T>, keep: bool) -> Vec<T> {
    let fresh = if keep {
        Vec::with_capacity(v.capacity())
    } else {
        Vec::new()
    };
    std::mem::replace(v, fresh)
}

/// The values as a buffer (see [`take_vec`]).
fn take_buf<T: arrow_buffer::ArrowNativeType>(v: &mut Vec<T>, keep: bool) -> ScalarBuffer<T> {
    ScalarBuffer::from(take_vec(v, keep))
}

/// The offsets as a buffer, without Arrow's check that they are ascending (a pass over every
/// offset of every batch, ~1% of the decoder's instructions): they are by construction.
#[allow(unsafe_code)]
fn take_offsets(offsets: &mut Vec<i32>, keep: bool) -> OffsetBuffer<i32> {
    let taken = take_vec(offsets, keep);
    offsets.push(0);
    debug_assert!(taken.first() == Some(&0) && taken.windows(2).all(|w| w[0] <= w[1]));
    // SAFETY: an offsets vector starts as `[0]` (here and in `Column::new`), and is only
    // pushed the current end of its values (checked to fit in an i32, so never negative) or
    // its last offset again, or truncated to a prefix: it is non-empty, starts at 0 and
    // never decreases, which is all `OffsetBuffer::new` checks.
    unsafe { OffsetBuffer::new_unchecked(ScalarBuffer::from(taken)) }
}

/// Builds a Utf8 array from values the decoder has validated one by one.
#[allow(unsafe_code)]
fn utf8_array(
    offsets: OffsetBuffer<i32>,
    values: Buffer,
    nulls: Option<NullBuffer>,
) -> Result<ArrayRef, ColumnError> {
    // SAFETY: every value was appended by `decode` after `simdutf8` validated it (or is a
    // generated symbol or uuid, which is ASCII), and offsets only ever mark value boundaries, so
    // the buffer is valid UTF-8 split at char boundaries. Validating again here would read every
    // string twice.
    Ok(Arc::new(unsafe {
        StringArray::new_unchecked(offsets, values, nulls)
    }))
}

#[cfg(test)]
mod size_class_tests {
    use super::size_class;

    #[test]
    fn size_classes_round_up_by_at_most_an_eighth() {
        for bytes in [0, 1, 4095, 65_535] {
            assert_eq!(size_class(bytes), bytes);
        }
        let mut classes = std::collections::BTreeSet::new();
        for bytes in (65_536..(1 << 22)).step_by(997) {
            let c = size_class(bytes);
            assert!(c >= bytes && c - bytes <= bytes / 8, "{bytes} -> {c}");
            classes.insert(c);
        }
        // 64 KiB itself, then 8 classes per power of two up to 4 MiB.
        assert_eq!(classes.len(), 1 + 6 * 8);
        assert_eq!(size_class(usize::MAX), usize::MAX);
    }
}

#[cfg(test)]
mod repeats_key_tests {
    use super::{Column, Data, KeySet, repeats_key};
    use arrow_schema::DataType;

    fn keys(ks: &[String]) -> Column {
        let mut col = Column::new(&DataType::Utf8, false);
        let Data::Bytes { offsets, values } = &mut col.data else {
            unreachable!()
        };
        for k in ks {
            values.extend_from_slice(k.as_bytes());
            offsets.push(values.len() as i32);
        }
        col
    }

    /// Maps of every size, by pairs and by the table: a repeat is found wherever it lies, and
    /// distinct keys (of every length, equal words at other lengths) are no repeat. One table
    /// serves every map, as a column's does: the keys of the maps before do not count.
    #[test]
    fn repeated_keys_are_found_in_maps_of_any_size() {
        let mut seen = KeySet::new();
        for n in [2usize, 3, 4, 5, 16, 17, 40, 1000, 300_000, 7] {
            let distinct: Vec<String> = (0..n)
                .map(|i| "k".repeat(i % 13) + &i.to_string())
                .collect();
            let col = keys(&distinct);
            assert!(!repeats_key(&col, 0, n, &mut seen), "{n} distinct");
            assert!(!repeats_key(&col, 0, n, &mut seen), "{n} distinct, again");
            for (a, b) in [(0, n - 1), ((n - 1) / 2, (n - 1) / 2 + 1), (n - 2, n - 1)] {
                let mut with = distinct.clone();
                with[b] = with[a].clone();
                let col = keys(&with);
                assert!(repeats_key(&col, 0, n, &mut seen), "{n}: {a} == {b}");
            }
            // A map within the column: its entries only.
            let mut two = distinct.clone();
            two.extend(distinct.iter().cloned());
            let col = keys(&two);
            assert!(
                repeats_key(&col, n - 1, 2 * n, &mut seen),
                "{n}: a key of the first"
            );
            assert!(
                !repeats_key(&col, n, 2 * n, &mut seen),
                "{n}: the second map"
            );
            assert!(!repeats_key(&col, 0, n, &mut seen), "{n}: the first map");
        }
    }

    /// When the stamps come round, the slots filled under the old ones are not taken for the
    /// new map's.
    #[test]
    fn stamps_that_come_round_do_not_revive_old_slots() {
        let mut seen = KeySet::new();
        let ks: Vec<String> = (0..6).map(|i| format!("key-{i}")).collect();
        let col = keys(&ks);
        assert!(!repeats_key(&col, 0, 6, &mut seen));
        // The next map takes stamp 0 again after u32::MAX: the first map's slots (stamp 1)
        // would otherwise be live once the stamp is back at 1.
        seen.stamp = u32::MAX;
        for _ in 0..3 {
            assert!(!repeats_key(&col, 0, 6, &mut seen));
        }
        assert_eq!(seen.stamp, 3);
    }
}
