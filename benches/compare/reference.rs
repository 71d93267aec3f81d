//! The reference converter of `benches/compare.sh`: what a Rust user would write with arrow-rs
//! alone. arrow-avro's reader -> parquet's `ArrowWriter` (snappy, otherwise parquet's default
//! writer properties), one thread, all inputs into one Parquet file.
//!
//! ```sh
//! cargo run --release --example reference -- OUTPUT.parquet INPUT...
//! ```
//!
//! `INPUT` is an Avro file or a folder (every `*.avro` under it, recursively, sorted by path).
//! Every input must give the same Arrow schema. Prints the row count on stdout.
//!
//! `ArrowWriter` cannot write Arrow unions, which arrow-avro gives for Avro unions of more than
//! `null` and one type. As the smallest change that makes such data writable, each top-level
//! union column becomes a nullable struct with one nullable field per non-null branch (named as
//! arrow-avro names the branch), null where the value is `null`: what parqour writes too, and
//! what `benches/compare/datafusion_convert.py` does in SQL. The rest is arrow-avro's types as
//! they come (enums as dictionaries, uuids as 16-byte fixed binaries). It is the throughput and
//! memory baseline, not an alternative.

#![allow(missing_docs)]

use std::error::Error;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, RecordBatch, StructArray, UnionArray, make_array};
use arrow_avro::reader::ReaderBuilder;
use arrow_buffer::NullBuffer;
use arrow_data::transform::MutableArrayData;
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// Rows per Arrow batch: large enough that per-batch costs vanish.
const BATCH_ROWS: usize = 8192;

fn avro_files(input: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    if input.is_dir() {
        let mut found = Vec::new();
        collect(input, &mut found)?;
        found.sort();
        out.extend(found);
    } else {
        out.push(input.to_path_buf());
    }
    Ok(())
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "avro") {
            out.push(path);
        }
    }
    Ok(())
}

/// The schema with each top-level union column as a struct of its non-null branches.
fn writable_schema(schema: &Schema) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Union(branches, _) => {
                let members: Fields = branches
                    .iter()
                    .filter(|(_, b)| !b.data_type().is_null())
                    .map(|(_, b)| Field::new(b.name(), b.data_type().clone(), true))
                    .collect();
                Field::new(f.name(), DataType::Struct(members), true)
            }
            _ => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// A union column as a struct: member `i` holds the rows whose branch is `i`, else null; the
/// struct is null where the branch is `null`. Copies runs of rows, not rows.
fn union_to_struct(union: &UnionArray, fields: &Fields) -> Result<ArrayRef> {
    let DataType::Union(branches, _) = union.data_type() else {
        unreachable!("a union column")
    };
    let len = union.len();
    let type_ids = union.type_ids();
    let mut members = Vec::with_capacity(fields.len());
    let mut null_ids = Vec::new();
    for (id, branch) in branches.iter() {
        if branch.data_type().is_null() {
            null_ids.push(id);
            continue;
        }
        let child = union.child(id).to_data();
        let mut out = MutableArrayData::new(vec![&child], true, len);
        let mut row = 0;
        while row < len {
            let start = row;
            if type_ids[row] == id {
                let first = union.value_offset(row);
                while row < len && type_ids[row] == id {
                    row += 1;
                }
                out.try_extend(0, first, first + (row - start))?;
            } else {
                while row < len && type_ids[row] != id {
                    row += 1;
                }
                out.try_extend_nulls(row - start)?;
            }
        }
        members.push(make_array(out.freeze()));
    }
    let valid = NullBuffer::from_iter(type_ids.iter().map(|t| !null_ids.contains(t)));
    Ok(Arc::new(StructArray::try_new(
        fields.clone(),
        members,
        Some(valid),
    )?))
}

fn writable(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    if batch.schema().fields() == schema.fields() {
        return Ok(batch);
    }
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(
            |(column, field)| match (column.data_type(), field.data_type()) {
                (DataType::Union(..), DataType::Struct(members)) => {
                    let union = column
                        .as_any()
                        .downcast_ref::<UnionArray>()
                        .ok_or("not a union array")?;
                    union_to_struct(union, members)
                }
                _ => Ok(Arc::clone(column)),
            },
        )
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
}

fn run(output: &Path, inputs: &[PathBuf], compression: Compression) -> Result<u64> {
    let props = WriterProperties::builder()
        .set_compression(compression)
        .build();
    let mut writer: Option<(ArrowWriter<File>, SchemaRef, SchemaRef)> = None;
    let mut rows = 0u64;
    for path in inputs {
        let reader = ReaderBuilder::new()
            .with_batch_size(BATCH_ROWS)
            .build(BufReader::with_capacity(1 << 20, File::open(path)?))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let schema = reader.schema();
        let (writer, _, out_schema) = match &mut writer {
            Some(w) => {
                if w.1.fields() != schema.fields() {
                    let msg = "another Arrow schema than the first input's";
                    return Err(format!("{}: {msg}", path.display()).into());
                }
                w
            }
            None => {
                let out_schema = writable_schema(&schema);
                let w = ArrowWriter::try_new(
                    File::create(output)?,
                    Arc::clone(&out_schema),
                    Some(props.clone()),
                )
                .map_err(|e| format!("{}: {e}", path.display()))?;
                writer.insert((w, schema, out_schema))
            }
        };
        for batch in reader {
            let batch = batch.map_err(|e| format!("{}: {e}", path.display()))?;
            rows += batch.num_rows() as u64;
            writer.write(&writable(batch, out_schema)?)?;
        }
    }
    if let Some((w, _, _)) = writer {
        w.close()?;
    }
    Ok(rows)
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut compression = Compression::SNAPPY;
    if args.first().map(String::as_str) == Some("--zstd") {
        args.remove(0);
        compression = Compression::ZSTD(parquet::basic::ZstdLevel::try_new(3).expect("level 3"));
    }
    if args.len() < 2 || args.iter().any(|a| a == "-h" || a == "--help") {
        eprintln!("usage: reference [--zstd] OUTPUT.parquet INPUT...  (snappy, or zstd level 3)");
        std::process::exit(64);
    }
    let mut inputs = Vec::new();
    for a in &args[1..] {
        if let Err(e) = avro_files(Path::new(a), &mut inputs) {
            eprintln!("reference: {a}: {e}");
            std::process::exit(65);
        }
    }
    match run(Path::new(&args[0]), &inputs, compression) {
        Ok(rows) => println!("{rows}"),
        Err(e) => {
            eprintln!("reference: {e}");
            std::process::exit(65);
        }
    }
}
