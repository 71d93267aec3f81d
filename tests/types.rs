//! Each row of the type table (README, `src/decode/types.rs`), on a file written by an
//! independent Avro implementation (the `apache-avro` crate, every codec), converted by the
//! binary and read back with parquet's Arrow reader: the Parquet types Athena sees, and the values.

#![allow(clippy::unwrap_used)]

use std::process::Command;

use apache_avro::types::Value;
use apache_avro::{Codec, Days, Decimal, Duration, Millis, Months, Schema, Uuid, Writer};
use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::schema::types::SchemaDescriptor;

const SCHEMA: &str = r#"{"type":"record","name":"Row","namespace":"t","fields":[
  {"name":"b","type":"boolean"},
  {"name":"i","type":"int"},
  {"name":"l","type":"long"},
  {"name":"f","type":"float"},
  {"name":"d","type":"double"},
  {"name":"by","type":"bytes"},
  {"name":"s","type":"string"},
  {"name":"nothing","type":"null"},
  {"name":"e","type":{"type":"enum","name":"Color","symbols":["RED","GREEN","BLUE"]}},
  {"name":"fx","type":{"type":"fixed","name":"F3","size":3}},
  {"name":"dec_b","type":{"type":"bytes","logicalType":"decimal","precision":20,"scale":3}},
  {"name":"dec_f","type":{"type":"fixed","name":"D8","size":8,"logicalType":"decimal","precision":16,"scale":2}},
  {"name":"uuid_s","type":{"type":"string","logicalType":"uuid"}},
  {"name":"uuid_f","type":{"type":"fixed","name":"U16","size":16,"logicalType":"uuid"}},
  {"name":"date","type":{"type":"int","logicalType":"date"}},
  {"name":"t_ms","type":{"type":"int","logicalType":"time-millis"}},
  {"name":"t_us","type":{"type":"long","logicalType":"time-micros"}},
  {"name":"ts_ms","type":{"type":"long","logicalType":"timestamp-millis"}},
  {"name":"ts_us","type":{"type":"long","logicalType":"timestamp-micros"}},
  {"name":"ts_ns","type":{"type":"long","logicalType":"timestamp-nanos"}},
  {"name":"lts_ms","type":{"type":"long","logicalType":"local-timestamp-millis"}},
  {"name":"lts_us","type":{"type":"long","logicalType":"local-timestamp-micros"}},
  {"name":"lts_ns","type":{"type":"long","logicalType":"local-timestamp-nanos"}},
  {"name":"dur","type":{"type":"fixed","name":"Dur","size":12,"logicalType":"duration"}},
  {"name":"arr","type":{"type":"array","items":["null","long"]}},
  {"name":"m","type":{"type":"map","values":"int"}},
  {"name":"rec","type":{"type":"record","name":"Inner","fields":[{"name":"x","type":"int"}]}},
  {"name":"opt","type":["string","null"]},
  {"name":"single","type":["int"]},
  {"name":"u","type":["null","int","string","Inner"]}
]}"#;

fn row(k: i64) -> Value {
    let neg = k % 2 == 1;
    let sign: i64 = if neg { -1 } else { 1 };
    Value::Record(vec![
        ("b".into(), Value::Boolean(neg)),
        ("i".into(), Value::Int((sign * 7 * k) as i32)),
        ("l".into(), Value::Long(sign * (1 << 40) * k)),
        ("f".into(), Value::Float(1.5 * k as f32)),
        (
            "d".into(),
            Value::Double(if k == 2 { f64::NAN } else { -2.25 * k as f64 }),
        ),
        ("by".into(), Value::Bytes(vec![0, 255, k as u8])),
        ("s".into(), Value::String(format!("héllo {k}"))),
        ("nothing".into(), Value::Null),
        (
            "e".into(),
            Value::Enum(
                k as u32 % 3,
                ["RED", "GREEN", "BLUE"][k as usize % 3].into(),
            ),
        ),
        ("fx".into(), Value::Fixed(3, vec![1, 2, k as u8])),
        (
            "dec_b".into(),
            Value::Decimal(Decimal::from(
                (sign as i128 * 123_456_789_012i128 * (k as i128 + 1)).to_be_bytes()[6..].to_vec(),
            )),
        ),
        (
            "dec_f".into(),
            Value::Decimal(Decimal::from(
                (sign * 98_765 * (k + 1)).to_be_bytes().to_vec(),
            )),
        ),
        (
            "uuid_s".into(),
            Value::Uuid(Uuid::from_u128(
                0x0123_4567_89ab_cdef_0123_4567_89ab_cdef + k as u128,
            )),
        ),
        (
            "uuid_f".into(),
            Value::Uuid(Uuid::from_u128(
                0xfedc_ba98_7654_3210_fedc_ba98_7654_3210 - k as u128,
            )),
        ),
        ("date".into(), Value::Date(sign as i32 * 19_000)),
        ("t_ms".into(), Value::TimeMillis(3_600_000 + k as i32)),
        ("t_us".into(), Value::TimeMicros(3_600_000_000 + k)),
        (
            "ts_ms".into(),
            Value::TimestampMillis(sign * 1_700_000_000_123),
        ),
        (
            "ts_us".into(),
            Value::TimestampMicros(sign * 1_700_000_000_123_456),
        ),
        (
            "ts_ns".into(),
            Value::TimestampNanos(sign * 1_700_000_000_123_456_789),
        ),
        (
            "lts_ms".into(),
            Value::LocalTimestampMillis(1_700_000_000_123),
        ),
        (
            "lts_us".into(),
            Value::LocalTimestampMicros(1_700_000_000_123_456),
        ),
        (
            "lts_ns".into(),
            Value::LocalTimestampNanos(-1_700_000_000_123_456_789),
        ),
        (
            "dur".into(),
            Value::Duration(Duration::new(
                Months::new(k as u32),
                Days::new(4_000_000_000),
                Millis::new(86_400_000),
            )),
        ),
        (
            "arr".into(),
            Value::Array(vec![
                Value::Union(1, Box::new(Value::Long(k))),
                Value::Union(0, Box::new(Value::Null)),
            ]),
        ),
        (
            "m".into(),
            Value::Map(
                [("a".to_string(), Value::Int(k as i32))]
                    .into_iter()
                    .collect(),
            ),
        ),
        (
            "rec".into(),
            Value::Record(vec![("x".into(), Value::Int(k as i32))]),
        ),
        (
            "opt".into(),
            if neg {
                Value::Union(1, Box::new(Value::Null))
            } else {
                Value::Union(0, Box::new(Value::String("o".into())))
            },
        ),
        (
            "single".into(),
            Value::Union(0, Box::new(Value::Int(k as i32))),
        ),
        (
            "u".into(),
            match k % 4 {
                0 => Value::Union(0, Box::new(Value::Null)),
                1 => Value::Union(1, Box::new(Value::Int(-5))),
                2 => Value::Union(2, Box::new(Value::String("two".into()))),
                _ => Value::Union(
                    3,
                    Box::new(Value::Record(vec![("x".into(), Value::Int(33))])),
                ),
            },
        ),
    ])
}

fn convert_with(codec: Codec, rows: i64) -> (RecordBatch, parquet::schema::types::SchemaDescPtr) {
    convert_with_args(codec, rows, &[])
}

fn convert_with_args(
    codec: Codec,
    rows: i64,
    extra: &[&str],
) -> (RecordBatch, parquet::schema::types::SchemaDescPtr) {
    let schema = Schema::parse_str(SCHEMA).unwrap();
    let mut w = Writer::with_codec(&schema, Vec::new(), codec).unwrap();
    for k in 0..rows {
        w.append_value(row(k)).unwrap();
    }
    let avro = w.into_inner().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("rows.avro");
    std::fs::write(&input, avro).unwrap();
    let out = tmp.path().join("out");
    let o = Command::new(env!("CARGO_BIN_EXE_parqour"))
        .args([
            "convert",
            input.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ])
        .args(extra)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("`nothing` has type null"));
    let file = std::fs::read(out.join("part-00000.snappy.parquet")).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(file)).unwrap();
    let descr = reader.metadata().file_metadata().schema_descr_ptr();
    let mut batches: Vec<_> = reader.build().unwrap().map(|b| b.unwrap()).collect();
    assert_eq!(batches.len(), 1, "small files come back as one batch");
    (batches.remove(0), descr)
}

/// The Parquet schema as parquet-rs prints it (one `REPETITION TYPE name (LOGICAL);` per line).
fn printed(descr: &SchemaDescriptor) -> String {
    let mut printed = Vec::new();
    parquet::schema::printer::print_schema(&mut printed, descr.root_schema());
    String::from_utf8(printed).unwrap()
}

fn col<'a>(b: &'a RecordBatch, name: &str) -> &'a dyn Array {
    b.column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"))
        .as_ref()
}

#[test]
fn uuids_as_binary_are_sixteen_bytes_with_the_uuid_logical_type() {
    let (b, descr) = convert_with_args(Codec::Null, 4, &["--uuid", "binary"]);
    let pq = printed(&descr);
    for line in [
        "REQUIRED FIXED_LEN_BYTE_ARRAY (16) uuid_s (UUID);",
        "REQUIRED FIXED_LEN_BYTE_ARRAY (16) uuid_f (UUID);",
        // Nothing else changes.
        "REQUIRED BYTE_ARRAY s (STRING);",
        "REQUIRED FIXED_LEN_BYTE_ARRAY (3) fx;",
    ] {
        assert!(pq.contains(line), "missing `{line}` in\n{pq}");
    }
    for k in 0..4u128 {
        let i = k as usize;
        assert_eq!(
            col(&b, "uuid_s").as_fixed_size_binary().value(i),
            (0x0123_4567_89ab_cdef_0123_4567_89ab_cdef + k).to_be_bytes()
        );
        assert_eq!(
            col(&b, "uuid_f").as_fixed_size_binary().value(i),
            (0xfedc_ba98_7654_3210_fedc_ba98_7654_3210 - k).to_be_bytes()
        );
    }
    assert_eq!(col(&b, "s").as_string::<i32>().value(2), "héllo 2");
}

#[test]
fn every_type_row_maps_as_documented() {
    let (b, descr) = convert_with(Codec::Null, 4);
    assert_eq!(b.num_rows(), 4);
    assert!(
        b.column_by_name("nothing").is_none(),
        "null fields are left out"
    );

    // Parquet physical and logical types, as Athena reads them.
    let pq = printed(&descr);
    for line in [
        "REQUIRED BYTE_ARRAY e (STRING);",
        "REQUIRED FIXED_LEN_BYTE_ARRAY (3) fx;",
        "REQUIRED FIXED_LEN_BYTE_ARRAY (9) dec_b (DECIMAL(20,3));",
        "REQUIRED INT64 dec_f (DECIMAL(16,2));",
        "REQUIRED BYTE_ARRAY uuid_s (STRING);",
        "REQUIRED BYTE_ARRAY uuid_f (STRING);",
        "REQUIRED INT32 date (DATE);",
        "REQUIRED INT32 t_ms;",
        "REQUIRED INT64 t_us;",
        "REQUIRED INT64 ts_ms (TIMESTAMP(MILLIS,true));",
        "REQUIRED INT64 ts_us (TIMESTAMP(MICROS,true));",
        "REQUIRED INT64 ts_ns (TIMESTAMP(MICROS,true));",
        "REQUIRED INT64 lts_ms (TIMESTAMP(MILLIS,false));",
        "REQUIRED INT64 lts_ns (TIMESTAMP(MICROS,false));",
        "REQUIRED INT64 months;",
        "REQUIRED group arr (LIST) {",
        "OPTIONAL INT64 element;",
        "REQUIRED group m (MAP) {",
        "REPEATED group key_value {",
        "REQUIRED BYTE_ARRAY key (STRING);",
        "OPTIONAL BYTE_ARRAY opt (STRING);",
        "REQUIRED INT32 single;",
        "OPTIONAL group u {",
        "OPTIONAL INT32 member_int;",
        "OPTIONAL BYTE_ARRAY member_string (STRING);",
        "OPTIONAL group member_inner {",
    ] {
        assert!(pq.contains(line), "missing `{line}` in\n{pq}");
    }
    assert!(!pq.contains("INT96"), "{pq}");
    assert!(!pq.contains("NANOS"), "{pq}");

    // Values.
    let bools = col(&b, "b").as_boolean();
    assert!(!bools.value(0) && bools.value(1));
    assert_eq!(col(&b, "i").as_primitive::<Int32Type>().value(3), -21);
    assert_eq!(
        col(&b, "l").as_primitive::<Int64Type>().value(3),
        -3 * (1 << 40)
    );
    assert_eq!(col(&b, "f").as_primitive::<Float32Type>().value(3), 4.5);
    assert!(col(&b, "d").as_primitive::<Float64Type>().value(2).is_nan());
    assert_eq!(col(&b, "by").as_binary::<i32>().value(1), &[0, 255, 1]);
    assert_eq!(col(&b, "s").as_string::<i32>().value(2), "héllo 2");
    assert_eq!(col(&b, "e").as_string::<i32>().value(2), "BLUE");
    assert_eq!(col(&b, "fx").as_fixed_size_binary().value(3), &[1, 2, 3]);
    let dec_b = col(&b, "dec_b").as_primitive::<Decimal128Type>();
    assert_eq!(dec_b.data_type(), &DataType::Decimal128(20, 3));
    assert_eq!(dec_b.value(1), -123_456_789_012 * 2);
    assert_eq!(
        col(&b, "dec_f").as_primitive::<Decimal128Type>().value(3),
        -98_765 * 4
    );
    assert_eq!(
        col(&b, "uuid_s").as_string::<i32>().value(1),
        "01234567-89ab-cdef-0123-456789abcdf0"
    );
    assert_eq!(
        col(&b, "uuid_f").as_string::<i32>().value(0),
        "fedcba98-7654-3210-fedc-ba9876543210"
    );
    assert_eq!(
        col(&b, "date").as_primitive::<Date32Type>().value(1),
        -19_000
    );
    assert_eq!(
        col(&b, "t_ms").as_primitive::<Int32Type>().value(2),
        3_600_002
    );
    assert_eq!(
        col(&b, "t_us").as_primitive::<Int64Type>().value(2),
        3_600_000_002
    );
    let ts_ms = col(&b, "ts_ms").as_primitive::<TimestampMillisecondType>();
    assert_eq!(
        ts_ms.data_type(),
        &DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
    );
    assert_eq!(ts_ms.value(1), -1_700_000_000_123);
    assert_eq!(
        col(&b, "ts_us")
            .as_primitive::<TimestampMicrosecondType>()
            .value(0),
        1_700_000_000_123_456
    );
    let ts_ns = col(&b, "ts_ns").as_primitive::<TimestampMicrosecondType>();
    assert_eq!(ts_ns.value(0), 1_700_000_000_123_456);
    // Floored, not truncated toward zero.
    assert_eq!(ts_ns.value(1), -1_700_000_000_123_457);
    let lts = col(&b, "lts_ms").as_primitive::<TimestampMillisecondType>();
    assert_eq!(
        lts.data_type(),
        &DataType::Timestamp(TimeUnit::Millisecond, None)
    );
    assert_eq!(
        col(&b, "lts_us")
            .as_primitive::<TimestampMicrosecondType>()
            .value(0),
        1_700_000_000_123_456
    );
    assert_eq!(
        col(&b, "lts_ns")
            .as_primitive::<TimestampMicrosecondType>()
            .value(0),
        -1_700_000_000_123_457
    );
    let dur = col(&b, "dur").as_struct();
    assert_eq!(
        dur.column_by_name("months")
            .unwrap()
            .as_primitive::<Int64Type>()
            .value(3),
        3
    );
    assert_eq!(
        dur.column_by_name("days")
            .unwrap()
            .as_primitive::<Int64Type>()
            .value(3),
        4_000_000_000
    );
    assert_eq!(
        dur.column_by_name("milliseconds")
            .unwrap()
            .as_primitive::<Int64Type>()
            .value(3),
        86_400_000
    );
    let arr = col(&b, "arr").as_list::<i32>();
    let items = arr.value(3);
    let items = items.as_primitive::<Int64Type>();
    assert_eq!(items.len(), 2);
    assert_eq!(items.value(0), 3);
    assert!(items.is_null(1));
    let m = col(&b, "m").as_map();
    assert_eq!(m.value(2).column(0).as_string::<i32>().value(0), "a");
    assert_eq!(m.value(2).column(1).as_primitive::<Int32Type>().value(0), 2);
    assert_eq!(
        col(&b, "rec")
            .as_struct()
            .column(0)
            .as_primitive::<Int32Type>()
            .value(3),
        3
    );
    let opt = col(&b, "opt").as_string::<i32>();
    assert_eq!(opt.value(0), "o");
    assert!(opt.is_null(1));
    assert_eq!(col(&b, "single").as_primitive::<Int32Type>().value(2), 2);
    let u = col(&b, "u").as_struct();
    assert!(u.is_null(0));
    let member_int = u
        .column_by_name("member_int")
        .unwrap()
        .as_primitive::<Int32Type>();
    let member_string = u
        .column_by_name("member_string")
        .unwrap()
        .as_string::<i32>();
    let member_inner = u.column_by_name("member_inner").unwrap().as_struct();
    assert_eq!(member_int.value(1), -5);
    assert!(member_string.is_null(1) && member_inner.is_null(1));
    assert_eq!(member_string.value(2), "two");
    assert!(member_int.is_null(2));
    assert_eq!(
        member_inner.column(0).as_primitive::<Int32Type>().value(3),
        33
    );
}

#[test]
fn every_codec_of_an_independent_writer_converts() {
    for codec in [
        Codec::Null,
        Codec::Deflate(Default::default()),
        Codec::Snappy,
        Codec::Zstandard(Default::default()),
        Codec::Bzip2(Default::default()),
        Codec::Xz(Default::default()),
    ] {
        let (b, _) = convert_with(codec, 300);
        assert_eq!(b.num_rows(), 300, "{codec:?}");
        assert_eq!(
            col(&b, "l").as_primitive::<Int64Type>().value(299),
            -(1 << 40) * 299
        );
    }
}

/// `big-decimal` (Avro 1.12; its scale in each value), as the `apache-avro` crate writes it: a
/// STRING column of each value's exact plain text, wherever it appears (a field, a union, an
/// array); a value whose text would pass 1000 digits of scale goes to the dead-letter place.
#[test]
fn big_decimals_are_their_exact_text() {
    use apache_avro::BigDecimal;
    use std::str::FromStr;
    let schema = Schema::parse_str(
        r#"{"type":"record","name":"Row","fields":[
          {"name":"id","type":"int"},
          {"name":"bd","type":{"type":"bytes","logicalType":"big-decimal"}},
          {"name":"obd","type":["null",{"type":"bytes","logicalType":"big-decimal"}]},
          {"name":"abd","type":{"type":"array","items":{"type":"bytes","logicalType":"big-decimal"}}}
        ]}"#,
    )
    .unwrap();
    let mut texts: Vec<String> = [
        "0",
        "-0.00",
        "1E+3",
        "-1e3",
        "0.005",
        "-1234.50",
        "123456789012345678901234567890.123456789",
        "-3.1415926535897932384626433832795028841971",
        "170141183460469231731687303715884105728",
        "1e-1000",
        "-7e+999",
    ]
    .map(String::from)
    .to_vec();
    texts.push(format!("-{}.5", "9".repeat(998)));
    let values: Vec<BigDecimal> = texts
        .iter()
        .map(|t| BigDecimal::from_str(t).unwrap())
        .collect();
    let mut w =
        Writer::with_codec(&schema, Vec::new(), Codec::Deflate(Default::default())).unwrap();
    let n = values.len();
    for (k, v) in values.iter().enumerate() {
        let opt = if k % 3 == 0 {
            Value::Union(0, Box::new(Value::Null))
        } else {
            Value::Union(1, Box::new(Value::BigDecimal(values[n - 1 - k].clone())))
        };
        let items = values[..k % 4]
            .iter()
            .cloned()
            .map(Value::BigDecimal)
            .collect();
        w.append_value(Value::Record(vec![
            ("id".into(), Value::Int(k as i32)),
            ("bd".into(), Value::BigDecimal(v.clone())),
            ("obd".into(), opt),
            ("abd".into(), Value::Array(items)),
        ]))
        .unwrap();
    }
    // A scale of 1001: past what a decimal's text may have.
    w.append_value(Value::Record(vec![
        ("id".into(), Value::Int(-1)),
        (
            "bd".into(),
            Value::BigDecimal(BigDecimal::from_str("1e-1001").unwrap()),
        ),
        ("obd".into(), Value::Union(0, Box::new(Value::Null))),
        ("abd".into(), Value::Array(vec![])),
    ]))
    .unwrap();
    let avro = w.into_inner().unwrap();

    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("big.avro");
    std::fs::write(&input, avro).unwrap();
    let (out, dead) = (tmp.path().join("out"), tmp.path().join("dead"));
    let o = Command::new(env!("CARGO_BIN_EXE_parqour"))
        .args(["convert", input.to_str().unwrap(), "--output"])
        .arg(&out)
        .arg("--dead-letter")
        .arg(&dead)
        .args(["--max-dead-letter-fraction", "0.5"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stderr.contains("decimal scale 1001 is past the 1000 digits"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_dir(&dead).unwrap().count(),
        1,
        "a dead letter"
    );

    let file = std::fs::read(out.join("part-00000.snappy.parquet")).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(file)).unwrap();
    let descr = reader.metadata().file_metadata().schema_descr_ptr();
    let printed = printed(&descr);
    for line in [
        "REQUIRED BYTE_ARRAY bd (STRING);",
        "OPTIONAL BYTE_ARRAY obd (STRING);",
        "REQUIRED BYTE_ARRAY element (STRING);",
    ] {
        assert!(printed.contains(line), "{printed}");
    }
    let batches: Vec<RecordBatch> = reader.build().unwrap().map(|b| b.unwrap()).collect();
    let b = arrow_select::concat::concat_batches(&batches[0].schema(), &batches).unwrap();
    assert_eq!(b.num_rows(), n);
    // The independent writer's values, as plain text (not the text they were parsed from).
    let plain: Vec<String> = values.iter().map(BigDecimal::to_plain_string).collect();
    assert_eq!(plain[2], "1000");
    assert_eq!(plain[9], format!("0.{}1", "0".repeat(999)));
    let bd = col(&b, "bd").as_string::<i32>();
    let obd = col(&b, "obd").as_string::<i32>();
    let abd = col(&b, "abd").as_list::<i32>();
    for k in 0..n {
        assert_eq!(bd.value(k), plain[k], "row {k}");
        if k % 3 == 0 {
            assert!(obd.is_null(k));
        } else {
            assert_eq!(obd.value(k), plain[n - 1 - k], "row {k}");
        }
        let items = abd.value(k);
        let items = items.as_string::<i32>();
        let got: Vec<&str> = items.iter().map(Option::unwrap).collect();
        assert_eq!(
            got,
            plain[..k % 4]
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
        );
    }
}
