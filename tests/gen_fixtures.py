#!/usr/bin/env python3
"""Edge-case Avro fixtures, written by fastavro, for the end-to-end tests in tests/cli.rs.

    python3 tests/gen_fixtures.py OUT_DIR

writes every fixture of FIXTURES below as OUT_DIR/<name>.avro and prints one line per file.

Why: parqour's own writer (src/avro/writer.rs) and the apache-avro crate (tests/types.rs) are not
enough to trust the decoder. These files come from an implementation independent of parqour and
hit the corners the type mapping (README.md, src/decode/types.rs) has to get right: unions whose
branches are hard to tell apart (int/long, float/double, decimal/long), named types referenced
across namespaces, maps of unions, empty collections, deep nesting, every logical type including
invalid or misplaced annotations, decimals at the edges of their precision and size, top-level
schemas that are not records, single-branch unions, zero records, long and non-ASCII strings,
many small blocks and several codecs. Every fixture must convert (exit 0), and
tests/roundtrip.py must find every value equal to what fastavro decodes.

Content is deterministic: fixed values, seeded random.Random, and a sync marker derived from the
fixture's name, so the same fastavro version writes byte-identical files. zstandard and lz4 are
written only where this fastavro can (each needs an optional package); those fixtures are skipped
otherwise, except under CI (`CI` set), where a missing package is an error.
"""

import decimal
import hashlib
import io
import json
import os
import random
import sys
import uuid

import fastavro

from roundtrip import strip_logical

D = decimal.Decimal
FIXTURES = []  # (name, schema, records, codec, options)


def fixture(name, schema, records, codec="null", sync_interval=16000, raw_annotations=False):
    """Registers a fixture. `raw_annotations`: the schema carries logical-type annotations that
    fastavro refuses (e.g. scale > precision); the records are then encoded with the same schema
    minus its logicalTypes (the same bytes) and the header declares the original schema."""
    FIXTURES.append((name, schema, list(records), codec,
                     {"sync_interval": sync_interval, "raw_annotations": raw_annotations}))


def record(name, *fields, namespace=None):
    """A record schema; fields are (name, type) pairs."""
    s = {"type": "record", "name": name, "fields": [{"name": n, "type": t} for n, t in fields]}
    if namespace:
        s["namespace"] = namespace
    return s


def dec_bytes(precision, scale=0):
    return {"type": "bytes", "logicalType": "decimal", "precision": precision, "scale": scale}


def dec_fixed(name, size, precision, scale=0):
    return {"type": "fixed", "name": name, "size": size, "logicalType": "decimal",
            "precision": precision, "scale": scale}


def logical(base, lt):
    return {"type": base, "logicalType": lt}


def one_column(name, type_, values, codec="null"):
    """A record with a single field `d`, one record per value."""
    fixture(name, record("R", ("d", type_)), [{"d": v} for v in values], codec)


def write(path, name, schema, records, codec, sync_interval, raw_annotations):
    sync = hashlib.md5(name.encode()).digest()  # 16 bytes, fixed per fixture
    buf = io.BytesIO()
    fastavro.writer(buf, fastavro.parse_schema(strip_logical(schema) if raw_annotations
                                               else schema),
                    records, codec=codec, sync_interval=sync_interval, sync_marker=sync)
    data = buf.getvalue()
    if raw_annotations:  # same blocks, header re-encoded (by fastavro) with the declared schema
        head = io.BytesIO(data)
        assert head.read(4) == b"Obj\x01"
        meta = fastavro.schemaless_reader(head, {"type": "map", "values": "bytes"})
        assert head.read(16) == sync
        meta["avro.schema"] = json.dumps(schema).encode()
        out = io.BytesIO()
        out.write(b"Obj\x01")
        fastavro.schemaless_writer(out, {"type": "map", "values": "bytes"}, meta)
        out.write(sync)
        data = out.getvalue() + data[head.tell():]
    with open(path, "wb") as f:
        f.write(data)


# ---- unions --------------------------------------------------------------------------------

fixture("union_int_long", record("R",
    ("il", ["int", "long"]),
    ("fd", ["null", "float", "double"])), [
    {"il": 5, "fd": 1.5},
    {"il": 2**40, "fd": None},  # fastavro picks the long branch
    {"il": -1, "fd": 1e300},  # too large for float: double branch
    {"il": -2**31, "fd": -0.0},
    {"il": 2**63 - 1, "fd": float("inf")},
])

COLOR = {"type": "enum", "name": "Color", "symbols": ["RED", "GREEN"]}
FOUR = {"type": "fixed", "name": "Four", "size": 4}
POINT = record("Pt", ("x", "int"), ("n", "null"), namespace="geo")
fixture("union_many_branches", record("U",
    ("il", ["int", "long"]),
    ("fd", ["null", "float", "double"]),
    ("multi", ["null", "string", COLOR, FOUR, "bytes", POINT, {"type": "array", "items": "int"},
               {"type": "map", "values": "long"}, "boolean"]),
    ("again", ["Color", "geo.Pt", "int"]),  # named types referenced from a union
    ("dl", ["string", logical("int", "date")]),
    ("nullf", "null"), namespace="t"), [
    {"il": 5, "fd": 1.5, "multi": "s", "again": "GREEN", "dl": 3, "nullf": None},
    {"il": 2**40, "fd": None, "multi": ("t.Color", "RED"), "again": {"x": 7, "n": None},
     "dl": "x", "nullf": None},
    {"il": -1, "fd": 2.25, "multi": ("t.Four", b"abcd"), "again": 9, "dl": -1, "nullf": None},
    {"il": 0, "fd": 0.1, "multi": b"bytes!", "again": "RED", "dl": 0, "nullf": None},
    {"il": 1, "fd": float("nan"), "multi": {"x": 1, "n": None}, "again": 1, "dl": 1,
     "nullf": None},
    {"il": 1, "fd": -0.0, "multi": [1, 2, 3], "again": 1, "dl": 1, "nullf": None},
    {"il": 1, "fd": 1e300, "multi": {"b": 2, "a": 1}, "again": 1, "dl": 1, "nullf": None},
    {"il": 1, "fd": 3.0, "multi": True, "again": 1, "dl": 1, "nullf": None},
    {"il": 1, "fd": 3.0, "multi": None, "again": 1, "dl": 1, "nullf": None},
    {"il": 1, "fd": 3.0, "multi": [], "again": 1, "dl": 1, "nullf": None},
    {"il": 1, "fd": 3.0, "multi": {}, "again": 1, "dl": 1, "nullf": None},
], codec="deflate")

# Branches parqour would name alike: the same short name in two namespaces, names that differ
# only in case, and records named like the primitive types beside them.
X_A = record("X", ("x", "int"), namespace="a")
X_B = record("X", ("x", "string"), namespace="b")
LOWER_X = {"type": "enum", "name": "x", "namespace": "a", "symbols": ["P", "Q"]}
INT_REC = record("Int", ("i", "long"))
fixture("union_members_named_alike", record("R",
    ("u", ["null", X_A, X_B, LOWER_X]),
    ("p", ["int", INT_REC, "string", {"type": "fixed", "name": "String", "size": 2}])), [
    {"u": ("a.X", {"x": 1}), "p": 7},
    {"u": ("b.X", {"x": "s"}), "p": ("Int", {"i": -3})},
    {"u": ("a.x", "Q"), "p": "str"},
    {"u": None, "p": ("String", b"ab")},
], codec="deflate")

DEC10_3 = dec_bytes(10, 3)
LTS_MS = logical("long", "local-timestamp-millis")
one_column("union_decimal_local_timestamp", ["null", "string", DEC10_3, LTS_MS],
           [D("1.5"), 1700000000123, 5, "s", None, D("-0.001")], codec="snappy")
# only the local-timestamp branch is ever written: the other children stay empty
one_column("union_decimal_local_timestamp_one_branch", ["null", "string", DEC10_3, LTS_MS],
           [1700000000123, 5, -1])
one_column("union_string_decimal_long", ["string", DEC10_3, "long"], [5, D("1.5"), "x"])
one_column("union_string_decimal_int", ["string", DEC10_3, "int"], [5, "x", D("-2.5")])
one_column("union_decimal_first", [DEC10_3, "long"], [D("2.5"), 7, D("0")])

# ---- null and single-branch unions ---------------------------------------------------------

fixture("null_field", record("R", ("a", "int"), ("n", "null"), ("b", "int")),
        [{"a": 1, "n": None, "b": 2}, {"a": 3, "n": None, "b": 4}])
fixture("null_union_field", record("R", ("a", "int"), ("n", ["null"]), ("b", "int")),
        [{"a": 1, "n": None, "b": 2}, {"a": 3, "n": None, "b": 4}, {"a": 5, "n": None, "b": 6}])
fixture("single_branch_union_field", record("R", ("a", ["int"]), ("b", "int"),
                                            ("s", [record("Inner", ("x", "long"))])),
        [{"a": 1, "b": 2, "s": {"x": 10}}, {"a": 3, "b": 4, "s": {"x": -10}}], codec="deflate")
fixture("single_branch_union_in_array", record("R",
    ("a", {"type": "array", "items": ["string"]}),
    ("m", {"type": "map", "values": ["long"]})),
    [{"a": ["x", "y"], "m": {"k": -1}}, {"a": [], "m": {}}])
fixture("single_branch_union_top", ["long"], [i * 7919 - 20000 for i in range(5000)],
        codec="snappy", sync_interval=200)

# ---- named types, maps, empty collections, nesting -----------------------------------------

fixture("named_type_references", {"type": "record", "name": "a.b.Outer", "fields": [
    {"name": "inner", "type": record("Inner", ("v", "int"))},
    {"name": "inner2", "type": "Inner"},  # short name, in the enclosing namespace a.b
    {"name": "inner3", "type": ["null", "a.b.Inner"]},
    {"name": "other", "type": record("Other",
        ("i", "a.b.Inner"),
        ("e", {"type": "enum", "name": "E", "symbols": ["A", "B"]}),
        ("e2", "E"), namespace="c")},  # E is c.E
    {"name": "mm", "type": {"type": "map", "values": ["null", "int", "string"]}},
    {"name": "lm", "type": {"type": "array", "items": {"type": "map", "values": "c.E"}}},
]}, [
    {"inner": {"v": 1}, "inner2": {"v": 2}, "inner3": {"v": 3},
     "other": {"i": {"v": 4}, "e": "A", "e2": "B"}, "mm": {"z": 1, "y": "s", "x": None},
     "lm": [{"q": "A"}, {}]},
    {"inner": {"v": 1}, "inner2": {"v": 2}, "inner3": None,
     "other": {"i": {"v": 4}, "e": "B", "e2": "A"}, "mm": {}, "lm": []},
], codec="bzip2")

ITEM = record("Item", ("id", "long"), ("tag", ["null", "string"]))
fixture("map_of_unions", record("R",
    ("scalars", {"type": "map", "values": ["null", "int", "string", "double"]}),
    ("items", {"type": "map", "values": ["null", ITEM]}),
    ("lists", {"type": "map", "values": {"type": "array", "items": ["null", "boolean"]}})), [
    {"scalars": {"a": 1, "b": "two", "c": None, "d": 4.5}, "items": {"x": {"id": 1, "tag": "t"},
     "y": None}, "lists": {"p": [True, None, False], "q": []}},
    {"scalars": {}, "items": {}, "lists": {}},
    {"scalars": {"ü": 2**31 - 1}, "items": {"z": {"id": -1, "tag": None}}, "lists": {"r": [None]}},
], codec="snappy")

fixture("empty_arrays_and_maps", record("R",
    ("arr", {"type": "array", "items": "long"}),
    ("m", {"type": "map", "values": "string"}),
    ("opt_arr", ["null", {"type": "array", "items": record("E", ("x", "int"))}]),
    ("nested", {"type": "array", "items": {"type": "array", "items": "int"}})),
    [{"arr": [], "m": {}, "opt_arr": [] if i % 2 else None, "nested": [[]] * (i % 3)}
     for i in range(6)])  # no column ever gets a child value

DEEP = {"type": "array", "items": {"type": "map", "values": {"type": "array", "items": [
    "null", record("X", ("m", {"type": "map", "values": ["int", "string", "null"]}),
                   ("r", ["null", record("Y", ("z", {"type": "array", "items": {
                       "type": "map", "values": "long"}}))]))]}}}
fixture("deep_nesting", record("Deep", ("d", DEEP)), [
    {"d": [{"k": [None, {"m": {"a": 1, "b": "x", "c": None}, "r": {"z": [{"q": 1}, {}]}}],
            "e": []}, {}]},
    {"d": []},
    {"d": [{"k": [{"m": {}, "r": None}]}]},
], codec="xz")

# ---- logical types -------------------------------------------------------------------------

UUID16 = {"type": "fixed", "name": "U16", "size": 16, "logicalType": "uuid"}
fixture("uuid_fixed", record("R",
    ("u", UUID16),
    ("u_opt", ["null", "U16"]),
    ("u_str", logical("string", "uuid"))), [
    {"u": bytes.fromhex("123456789abcdef0123456789abcdef0"), "u_opt": bytes(16),
     "u_str": "not-a-uuid"},
    {"u": bytes(16), "u_opt": None, "u_str": "0f8fad5b-d9cb-469f-a165-70867728950e"},
    {"u": b"\xff" * 16, "u_opt": bytes(range(16)), "u_str": ""},
])

fixture("logical_types_on_wrong_base", record("R",
    ("u_bad", {"type": "fixed", "name": "U8", "size": 8, "logicalType": "uuid"}),
    ("dur_bad", {"type": "fixed", "name": "D10", "size": 10, "logicalType": "duration"}),
    ("date_on_long", logical("long", "date")),
    ("ts_on_int", logical("int", "timestamp-millis")),
    ("unknown", logical("string", "json"))), [
    {"u_bad": b"abcdefgh", "dur_bad": b"0123456789", "date_on_long": 5, "ts_on_int": -1,
     "unknown": "{}"},
    {"u_bad": bytes(8), "dur_bad": bytes(10), "date_on_long": -5, "ts_on_int": 2**31 - 1,
     "unknown": "x"},
], codec="deflate")

fixture("duration", record("R",
    ("dur", {"type": "fixed", "name": "Dur", "size": 12, "logicalType": "duration"}),
    ("opt", ["null", "Dur"])), [
    {"dur": b"\x01\x00\x00\x00\x02\x00\x00\x00\xff\xff\xff\xff", "opt": None},  # u32 max ms
    {"dur": bytes(12), "opt": b"\xff" * 12},
])

fixture("timestamp_nanos_negative", record("R",
    ("ts_ns", logical("long", "timestamp-nanos")),
    ("lts_ns", logical("long", "local-timestamp-nanos")),
    ("ts_ms", logical("long", "timestamp-millis")),
    ("ts_us", logical("long", "timestamp-micros")),
    ("lts_us", logical("long", "local-timestamp-micros"))),
    [{"ts_ns": v, "lts_ns": -v, "ts_ms": v // 10**6, "ts_us": v // 1000, "lts_us": -v // 1000}
     for v in [-1, -999, -1000, -1001, 0, 1_999_999_999, -86_400_000_000_001,
               1_700_000_000_123_456_789, -2**62]], codec="snappy")

fixture("time_millis_micros", record("R",
    ("t_ms", logical("int", "time-millis")),
    ("t_us", logical("long", "time-micros")),
    ("date", logical("int", "date"))), [
    {"t_ms": 0, "t_us": 0, "date": 0},
    {"t_ms": 86_399_999, "t_us": 86_399_999_999, "date": -719162},  # 0001-01-01
    {"t_ms": 1000, "t_us": 1, "date": 2932896},  # 9999-12-31
])

# every logical type together in one record (the columns interact in one decode program)
fixture("logical_types_mixed", record("L",
    ("u_fixed", UUID16),
    ("u_str", logical("string", "uuid")),
    ("dec_noscale", {"type": "bytes", "logicalType": "decimal", "precision": 5}),
    ("dec_neg", dec_fixed("F8", 8, 18, 4)),
    ("dec_empty", dec_bytes(38, 38)),
    ("ts_nanos", logical("long", "timestamp-nanos")),
    ("lts_nanos", logical("long", "local-timestamp-nanos")),
    ("ts_ms_neg", logical("long", "timestamp-millis")),
    ("t_ms", logical("int", "time-millis")),
    ("t_us", logical("long", "time-micros")),
    ("date_on_long", logical("long", "date")),
    ("dur", {"type": "fixed", "name": "D", "size": 12, "logicalType": "duration"}),
    ("dur_bad", {"type": "fixed", "name": "D10", "size": 10, "logicalType": "duration"}),
    ("u_bad", {"type": "fixed", "name": "U8", "size": 8, "logicalType": "uuid"}),
    ("unknown", logical("string", "json")),
    ("opt_dec", ["null", dec_bytes(38)])), [
    {"u_fixed": bytes.fromhex("123456789abcdef0123456789abcdef0"), "u_str": "not-a-uuid",
     "dec_noscale": D("-12345"), "dec_neg": D("-1.2345"), "dec_empty": b"", "ts_nanos": -1,
     "lts_nanos": 1_999_999_999, "ts_ms_neg": -86_400_001, "t_ms": 1000,
     "t_us": 86_399_999_999, "date_on_long": 5,
     "dur": b"\x01\x00\x00\x00\x02\x00\x00\x00\xff\xff\xff\xff", "dur_bad": b"0123456789",
     "u_bad": b"abcdefgh", "unknown": "{}", "opt_dec": D("9" * 38)},
    {"u_fixed": bytes(16), "u_str": "0f8fad5b-d9cb-469f-a165-70867728950e",
     "dec_noscale": D("0"), "dec_neg": D("922337203685.4775"), "dec_empty": D("0.1"),
     "ts_nanos": 1_700_000_000_123_456_789, "lts_nanos": -1_001, "ts_ms_neg": 0, "t_ms": 0,
     "t_us": 0, "date_on_long": -5, "dur": bytes(12), "dur_bad": bytes(10), "u_bad": bytes(8),
     "unknown": "x", "opt_dec": None},
], codec="snappy")

# ---- decimals ------------------------------------------------------------------------------

# Annotations fastavro refuses to write; the Avro spec says to ignore them: bytes / fixed stay.
fixture("decimal_invalid_annotations", record("B",
    ("dec_bad_scale", dec_bytes(2, 3)),  # scale > precision
    ("dec_bad_fixed", dec_fixed("F2", 2, 9, 1)),  # 9 digits do not fit 2 bytes
    ("dec_zero_prec", {"type": "bytes", "logicalType": "decimal", "precision": 0}),
    ("dec_neg_scale", dec_bytes(4, -1)),
    ("ok", dec_fixed("F3", 3, 7, 7)),  # valid, next to the invalid ones
    ("u", ["null", "int", dec_bytes(3, 9)])), [
    {"dec_bad_scale": b"\x01", "dec_bad_fixed": b"\xff\xfe", "dec_zero_prec": b"\x05",
     "dec_neg_scale": b"\x07", "ok": b"\x7f\xff\xff", "u": b"\x01\x02"},
    {"dec_bad_scale": b"", "dec_bad_fixed": b"\x00\x01", "dec_zero_prec": b"",
     "dec_neg_scale": b"\xff", "ok": b"\x80\x00\x00", "u": 3},
], codec="deflate", raw_annotations=True)

# Big-endian two's complement longer than needed (sign-extension bytes), and all zeros.
fixture("decimal_sign_extended_padding", record("P",
    ("d", dec_bytes(10, 2)),
    ("d38", dec_bytes(38, 0))), [
    {"d": b"\x00" * 19 + b"\x05", "d38": b"\xff" * 40 + b"\x80"},
    {"d": b"\xff" * 25 + b"\xfb", "d38": b"\x00" * 17 + b"\x01"},
    {"d": b"\x00" * 30, "d38": b"\x00" * 16},
], raw_annotations=True)

one_column("decimal_bytes38", dec_bytes(38, 0),
           [D("-" + "9" * 38), D("9" * 38), D("-1"), D("-12345678901234567890"), D("0"), b""],
           codec="bzip2")
one_column("decimal_bytes38_scale5", dec_bytes(38, 5),
           [D("-123456789012345678901234567890.12345"), D("0"), D("1"), D("0.00001"),
            D("999999999999999999999999999999999.99999")])
one_column("decimal_fixed20_negative", dec_fixed("F20", 20, 38),
           [D("-" + "9" * 38), D("-1"), D("-" + "1" * 20)])
one_column("decimal_fixed20", dec_fixed("F20", 20, 38), [D("9" * 38), D("1"), D("0"),
                                                        D("-" + "9" * 38)], codec="deflate")
# wider than Athena's DECIMAL(38): stored as text, at the edges of the precision and the size
one_column("decimal_wide_fixed32", dec_fixed("F32", 32, 76, 10),
           [D("9" * 66 + "." + "9" * 10), D("-" + "9" * 66 + "." + "9" * 10), D("0"),
            D("-0.0000000001"), D("1"), D("-12345.6789")], codec="deflate")
fixture("decimal_wide_bytes", record("Wide",
    ("p39", dec_bytes(39)),
    ("p100s50", dec_bytes(100, 50)),
    ("p1000s3", dec_bytes(1000, 3)),
    ("maybe", ["null", dec_bytes(60, 60)])), [
    {"p39": D("9" * 39), "p100s50": D("-" + "9" * 50 + "." + "9" * 50),
     "p1000s3": D("9" * 997 + ".999"), "maybe": D("0." + "9" * 60)},
    {"p39": D("-" + "9" * 39), "p100s50": D("0." + "0" * 49 + "1"), "p1000s3": D("-0.001"),
     "maybe": None},
    {"p39": D("0"), "p100s50": D("0"), "p1000s3": D("-" + "9" * 997 + ".999"),
     "maybe": D("-0." + "0" * 59 + "1")},
], codec="snappy")
one_column("decimal_fixed1", dec_fixed("F1", 1, 2, 1), [D("1.2"), D("-1.2"), D("0"), D("9.9"),
                                                       D("-9.9")])
fixture("decimal_small_precision", record("R",  # INT32 / INT64 physical types in Parquet
    ("p4", dec_bytes(4)),
    ("p9", dec_bytes(9)),
    ("p9s2", dec_bytes(9, 2)),
    ("p18s18", dec_bytes(18, 18)),
    ("p18f", dec_fixed("F8", 8, 18, 3))), [
    {"p4": D("-9999"), "p9": D("-999999999"), "p9s2": D("-9999999.99"),
     "p18s18": D("-0.999999999999999999"), "p18f": D("-999999999999999.999")},
    {"p4": D("9999"), "p9": D("999999999"), "p9s2": D("0.01"),
     "p18s18": D("0.000000000000000001"), "p18f": D("0.001")},
    {"p4": D("-1"), "p9": D("0"), "p9s2": D("1"), "p18s18": D("0"), "p18f": D("-0.001")},
], codec="snappy")
# several decimal widths side by side, and a union with a decimal and a timestamp branch
fixture("decimal_columns_mixed", record("W",
    ("b38", dec_bytes(38, 5)),
    ("f20", dec_fixed("F20", 20, 38)),
    ("f1", dec_fixed("F1", 1, 2, 1)),
    ("p9", dec_bytes(9, 2)),
    ("p18", dec_bytes(18, 18)),
    ("inu", ["null", "string", DEC10_3, LTS_MS])), [
    {"b38": D("-123456789012345678901234567890.12345"), "f20": D("9" * 38), "f1": D("-1.2"),
     "p9": D("-9999999.99"), "p18": D("0.000000000000000001"), "inu": D("1.5")},
    {"b38": D("0"), "f20": D("-" + "9" * 38), "f1": D("1.2"), "p9": D("0.01"),
     "p18": D("-0.999999999999999999"), "inu": 1700000000123},
    {"b38": D("1"), "f20": D("1"), "f1": D("0"), "p9": D("1"), "p18": D("0"), "inu": "s"},
    {"b38": D("1"), "f20": D("1"), "f1": D("0"), "p9": D("1"), "p18": D("0"), "inu": None},
])

# ---- top-level schemas that are not records: one column `value`; many small blocks ---------

rng = random.Random(20240601)
fixture("top_level_long", "long", [rng.randint(-2**63, 2**63 - 1) for _ in range(5000)],
        codec="deflate", sync_interval=256)
fixture("top_level_union", ["null", "int", "string"],
        [None if i % 7 == 0 else i if i % 2 else f"s{i}" for i in range(5000)],
        sync_interval=300)
fixture("top_level_array", {"type": "array", "items": ["null", "double"]},
        [[None if (i + j) % 5 == 0 else i / (j + 1) for j in range(i % 4)] for i in range(5000)],
        codec="snappy", sync_interval=400)
fixture("top_level_map", {"type": "map", "values": {"type": "array", "items": "string"}},
        [{f"k{j}": [f"v{i}"] * (j % 3) for j in range(i % 3)} for i in range(5000)],
        codec="xz", sync_interval=500)
REC_A = record("A", ("a", "int"))
fixture("top_level_union_of_records", [REC_A, record("B", ("b", ["null", "A"]))],
        [("A", {"a": i}) if i % 3 else ("B", {"b": {"a": i} if i % 2 else None})
         for i in range(5000)], codec="snappy", sync_interval=100)

# ---- other ---------------------------------------------------------------------------------

fixture("empty_file", record("E", ("a", "int")), [], codec="deflate")  # zero records
fixture("strings_unicode_long", record("S", ("s", "string"), ("b", "bytes")), [
    {"s": "héllo ✓ 𝄞 日本語", "b": b"\x00\xff"},
    {"s": "", "b": b""},
    {"s": "x" * 100000, "b": bytes(range(256)) * 100},
    {"s": "\u0000 nul inside", "b": b"\x00"},
], codec="deflate")

# fixed(0): every value is zero bytes (Parquet has no FIXED_LEN_BYTE_ARRAY(0)).
ZERO = {"type": "fixed", "name": "Zero", "size": 0}
fixture("fixed_zero", record("F",
    ("id", "int"),
    ("z", ZERO),
    ("zn", ["null", "Zero"]),
    ("zs", {"type": "array", "items": "Zero"}),
    ("zm", {"type": "map", "values": ["Zero", "null"]})), [
    {"id": i, "z": b"", "zn": None if i % 3 == 0 else b"", "zs": [b""] * (i % 4),
     "zm": {f"k{j}": (None if j == 1 else b"") for j in range(i % 3)}}
    for i in range(300)], codec="deflate", sync_interval=500)

# 700 nullable columns (and as many column chunks per row group).
fixture("wide_columns", record("W", *[(f"c{i:03}", ["null", "long"]) for i in range(700)]), [
    {f"c{i:03}": None if (r + i) % 7 == 0 else r * 1000 + i for i in range(700)}
    for r in range(300)], codec="deflate")

zrng = random.Random(7)
fixture("codec_zstandard", record("Z", ("id", "long"), ("name", ["null", "string"])),
        [{"id": zrng.randint(0, 10**12), "name": None if i % 4 == 0 else f"n{i}"}
         for i in range(3000)], codec="zstandard", sync_interval=2000)

# fastavro's own codec: an LZ4 block after its uncompressed length (Python's lz4 package).
lrng = random.Random(11)
fixture("codec_lz4", record("L", ("id", "long"), ("name", ["null", "string"]),
                            ("tags", {"type": "array", "items": "string"}),
                            ("blob", "bytes")),
        [{"id": lrng.randint(-10**12, 10**12), "name": None if i % 5 == 0 else f"name {i % 97}",
          "tags": [f"t{j}" for j in range(i % 4)], "blob": lrng.randbytes(i % 40)}
         for i in range(4000)], codec="lz4", sync_interval=3000)

# Recursive types: the value at a record's reference to itself is stored as JSON text.
# The Avro interop schema (the one every Avro implementation's interop files use), as written in
# the Avro repository's share/test/schemas/interop.avsc.
INTEROP = {"type": "record", "name": "Interop", "namespace": "org.apache.avro", "fields": [
    {"name": "intField", "type": "int"},
    {"name": "longField", "type": "long"},
    {"name": "stringField", "type": "string"},
    {"name": "boolField", "type": "boolean"},
    {"name": "floatField", "type": "float"},
    {"name": "doubleField", "type": "double"},
    {"name": "bytesField", "type": "bytes"},
    {"name": "nullField", "type": "null"},
    {"name": "arrayField", "type": {"type": "array", "items": "double"}},
    {"name": "mapField", "type": {"type": "map", "values": {
        "type": "record", "name": "Foo", "fields": [{"name": "label", "type": "string"}]}}},
    {"name": "unionField", "type": ["boolean", "double", {"type": "array", "items": "bytes"}]},
    {"name": "enumField", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B", "C"]}},
    {"name": "fixedField", "type": {"type": "fixed", "name": "MD5", "size": 16}},
    {"name": "recordField", "type": {"type": "record", "name": "Node", "fields": [
        {"name": "label", "type": "string"},
        {"name": "children", "type": {"type": "array", "items": "Node"}}]}}]}


def node(label, *children):
    return {"label": label, "children": list(children)}


fixture("recursive_interop", INTEROP, [
    {"intField": 12, "longField": 15234324, "stringField": "hey", "boolField": True,
     "floatField": 1234.0, "doubleField": -1234.0, "bytesField": b"12312adf", "nullField": None,
     "arrayField": [5.0, 0.0, 12.0], "mapField": {"a": {"label": "a"}, "bee": {"label": "cee"}},
     "unionField": 12.0, "enumField": "C", "fixedField": b"1019181716151413",
     "recordField": node("blah", node("inner", node('q"uote\\ \n\u0001 é')), node("leaf"))},
    {"intField": -1, "longField": -(2 ** 63), "stringField": "", "boolField": False,
     "floatField": float("nan"), "doubleField": float("-inf"), "bytesField": b"",
     "nullField": None, "arrayField": [], "mapField": {}, "unionField": [b"\x00\xff", b""],
     "enumField": "A", "fixedField": bytes(range(16)), "recordField": node("alone")},
    {"intField": 2 ** 31 - 1, "longField": 2 ** 63 - 1, "stringField": "x" * 300,
     "boolField": True, "floatField": 0.1, "doubleField": 1e300, "bytesField": b"\x01",
     "nullField": None, "arrayField": [float("nan"), -0.0], "mapField": {"k": {"label": "v"}},
     "unionField": False, "enumField": "B", "fixedField": b"\xff" * 16,
     "recordField": node("deep", node("1", node("2", node("3", node("4"))), node("2b")))},
], codec="deflate")

# A tree whose nodes hold every type the JSON text has a form for, a nullable reference to
# their parent's type, and a union of several branches.
TREE = {"type": "record", "name": "Tree", "namespace": "t", "fields": [
    {"name": "label", "type": "string"},
    {"name": "weight", "type": "float"},
    {"name": "score", "type": "double"},
    {"name": "raw", "type": "bytes"},
    {"name": "md5", "type": {"type": "fixed", "name": "Md5", "size": 16}},
    {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["LEAF", "INNER"]}},
    {"name": "amount", "type": dec_bytes(12, 3)},
    {"name": "wide", "type": dec_fixed("W32", 32, 70, 5)},
    {"name": "id", "type": logical("string", "uuid")},
    {"name": "uid", "type": UUID16},
    {"name": "at", "type": logical("long", "timestamp-millis")},
    {"name": "day", "type": logical("int", "date")},
    {"name": "span", "type": {"type": "fixed", "name": "Span", "size": 12,
                              "logicalType": "duration"}},
    {"name": "tags", "type": {"type": "map", "values": "string"}},
    {"name": "nothing", "type": "null"},
    {"name": "either", "type": ["null", "int", "string", "Tree"]},
    {"name": "kids", "type": {"type": "array", "items": "Tree"}},
    {"name": "parent", "type": ["null", "Tree"]}]}
trng = random.Random(13)


def tree(depth, i=0):
    return {
        "label": f"n{depth}.{i} \"quoted\"\ttab", "weight": [0.5, float("inf"), 1e-7][i % 3],
        "score": [1.0, float("nan"), -2.5e-300][i % 3], "raw": trng.randbytes(i % 5),
        "md5": trng.randbytes(16), "kind": "INNER" if depth else "LEAF",
        "amount": D(f"-{i}.125"), "wide": D("9" * 65 + ".99999"),
        "id": str(uuid.UUID(bytes=trng.randbytes(16))), "uid": trng.randbytes(16),
        "at": trng.randint(0, 2 ** 41), "day": trng.randint(-1000, 30000),
        "span": trng.randbytes(12), "tags": {f"k{j}": f"v{j}" for j in range(i % 3)},
        "nothing": None, "either": [None, 7, "s", None][i % 4] if depth == 0 else tree(depth - 1),
        "kids": [tree(depth - 1, j) for j in range(2)] if depth else [],
        "parent": tree(0, i + 1) if depth == 1 else None,
    }


fixture("recursive_tree", record("Forest", ("root", TREE), ("maybe", ["null", "t.Tree"])),
        [{"root": tree(2, k), "maybe": None if k % 2 else tree(1, k)} for k in range(6)],
        codec="snappy")

# Mutual recursion: A holds B, B holds A.
fixture("recursive_mutual", record("M", ("a", {
    "type": "record", "name": "A", "fields": [
        {"name": "n", "type": "long"},
        {"name": "b", "type": ["null", {"type": "record", "name": "B", "fields": [
            {"name": "s", "type": "string"},
            {"name": "a", "type": ["null", "A"]}]}]}]})),
        [{"a": {"n": 1, "b": None}},
         {"a": {"n": 2, "b": {"s": "x", "a": None}}},
         {"a": {"n": 3, "b": {"s": "y", "a": {"n": 4, "b": {"s": "z", "a": None}}}}}])


def main():
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} OUT_DIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    names = set()
    for name, schema, records, codec, opts in FIXTURES:
        assert name not in names, f"duplicate fixture name {name}"
        names.add(name)
        path = os.path.join(out, f"{name}.avro")
        try:
            write(path, name, schema, records, codec, **opts)
        except ValueError as e:
            # An optional codec library missing: skipped, but not under CI, where .ci/run
            # installs them (tests/requirements.txt).
            if codec in ("zstandard", "lz4") and codec in str(e) and not os.environ.get("CI"):
                print(f"skipped {path}: {e}")
                continue
            raise
        print(f"{path}: {len(records)} records, {codec}")


if __name__ == "__main__":
    main()
