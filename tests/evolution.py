#!/usr/bin/env python3
"""Schema-evolution fixtures written by an independent Avro implementation (fastavro), and the
check of what parqour made of them.

    evolution.py gen DIR [--corrupt-every N] [--records N]
        DIR/schemas/click.v1.avsc, v2, v3   three versions of one event type
        DIR/schemas/view.v1.avsc            a second data type
        DIR/avro/envelopes.avro             a container file of DataWrapper records, versions
                                            interleaved record by record, plus `view` events
        DIR/raw/firehose-0001.avro          the same kind of events as raw concatenated
                                            DataWrapper datums (no container header)
        DIR/expected.json                   per data type, the rows expected in Parquet, decoded
                                            by fastavro with each writer schema resolved to the
                                            newest (v3), and the records that must be
                                            dead-lettered (unknown fingerprint, corrupt datum)
    evolution.py recursive DIR [--records N]
        DIR/<case>.avro, DIR/<case>.reader.avsc   recursive types (a tree, a linked list, two
                                            records holding each other) evolved: converted
                                            with the reader schema, checked by roundtrip.py
    evolution.py check DIR TABLE_TEMPLATE DEADLETTER_DIR
        reads every Parquet file of each table with pyarrow and the dead-letter files with
        fastavro; compares every value; prints "N rows, 0 mismatches" or exits 1.

Fingerprints are computed here with fastavro (CRC-64-AVRO of the Parsing Canonical Form), not
with parqour, so the test also checks that the two agree.
"""
import argparse
import glob
import io
import json
import os
import random
import struct
import sys

import fastavro
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

ENVELOPE = {
    "type": "record",
    "name": "DataWrapper",
    "namespace": "com.acme.pipeline",
    "fields": [
        {"name": "dataType", "type": "string"},
        {"name": "schemaFingerprint", "type": "long"},
        {"name": "data", "type": "bytes"},
    ],
}

CLICK_V1 = {
    "type": "record", "name": "Click", "namespace": "com.acme.events",
    "fields": [
        {"name": "id", "type": "int"},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B", "C"]}},
        {"name": "url", "type": "string"},
        {"name": "score", "type": "float"},
        {"name": "legacy", "type": "string"},
    ],
}
# v2: id promoted int -> long, a field added with a default, `legacy` removed.
CLICK_V2 = {
    "type": "record", "name": "Click", "namespace": "com.acme.events",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B", "C"]}},
        {"name": "url", "type": "string"},
        {"name": "score", "type": "double"},
        {"name": "country", "type": "string", "default": "n/a"},
    ],
}
# v3: the enum gained `D` and lost `C` (read through its default `A`), a nullable field and an
# array with defaults, `referrer` renamed from `url` through an alias.
CLICK_V3 = {
    "type": "record", "name": "Click", "namespace": "com.acme.events",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B", "D"],
                                  "default": "A"}},
        {"name": "referrer", "type": "string", "aliases": ["url"]},
        {"name": "score", "type": "double"},
        {"name": "country", "type": "string", "default": "n/a"},
        {"name": "campaign", "type": ["null", "string"], "default": None},
        {"name": "tags", "type": {"type": "array", "items": "string"}, "default": []},
    ],
}
VIEW_V1 = {
    "type": "record", "name": "View", "namespace": "com.acme.events",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "page", "type": "string"},
        {"name": "ms", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    ],
}


def java_fingerprint(schema):
    """Java's SchemaNormalization.parsingFingerprint64, computed by fastavro."""
    pcf = to_parsing_canonical_form(parse_schema(schema))
    return struct.unpack("<q", bytes.fromhex(fingerprint(pcf, "CRC-64-AVRO")))[0]


def encode(schema, record):
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, parse_schema(schema), record)
    return buf.getvalue()


def resolve(writer, reader, data):
    return fastavro.schemaless_reader(io.BytesIO(data), parse_schema(writer), parse_schema(reader))


def click(version, i, rng):
    kind = ["A", "B", "C"][i % 3] if version < 3 else ["A", "B", "D"][i % 3]
    base = {"id": i, "kind": kind, "url": f"https://x.test/{i}?q={rng.random():.6f}",
            "score": float(i % 1000) / 8.0}
    if version == 1:
        base["legacy"] = "old" * (i % 3)
    if version == 2:
        base["country"] = ["de", "fr", "us"][i % 3]
    if version == 3:
        base["referrer"] = base.pop("url")
        base["country"] = "jp"
        base["campaign"] = None if i % 2 else f"c{i % 7}"
        base["tags"] = [f"t{j}" for j in range(i % 4)]
    return base


def to_json(row):
    return {k: (v if not isinstance(v, float) else round(v, 6)) for k, v in row.items()}


def gen(args):
    rng = random.Random(11)
    os.makedirs(os.path.join(args.dir, "schemas"), exist_ok=True)
    os.makedirs(os.path.join(args.dir, "avro"), exist_ok=True)
    os.makedirs(os.path.join(args.dir, "raw"), exist_ok=True)
    versions = {1: CLICK_V1, 2: CLICK_V2, 3: CLICK_V3}
    for v, s in versions.items():
        with open(os.path.join(args.dir, "schemas", f"click.v{v}.avsc"), "w") as f:
            json.dump(s, f, indent=1)
    with open(os.path.join(args.dir, "schemas", "view.v1.avsc"), "w") as f:
        json.dump(VIEW_V1, f, indent=1)
    fps = {v: java_fingerprint(s) for v, s in versions.items()}
    view_fp = java_fingerprint(VIEW_V1)
    expected = {"click": [], "view": [], "dead": [], "fingerprints": {
        f"click.v{v}": fp for v, fp in fps.items()} | {"view.v1": view_fp}}

    def envelopes(start, n):
        out = []
        for i in range(start, start + n):
            if i % 10 == 9:
                row = {"id": i, "page": f"/p/{i}", "ms": 1_700_000_000_000 + i}
                data = encode(VIEW_V1, row)
                out.append({"dataType": "view", "schemaFingerprint": view_fp, "data": data})
                expected["view"].append(to_json(resolve(VIEW_V1, VIEW_V1, data) | {
                    "ms": 1_700_000_000_000 + i}))
                continue
            v = 1 + i % 3  # versions interleaved record by record
            data = encode(versions[v], click(v, i, rng))
            env = {"dataType": "click", "schemaFingerprint": fps[v], "data": data}
            if args.corrupt_every and i % args.corrupt_every == args.corrupt_every // 2:
                # A corrupt datum: cut short inside its last field.
                env["data"] = data[:-1] if v != 1 else data[:3]
                expected["dead"].append({"id": i, "why": "corrupt"})
            elif i == start + 5:
                # A fingerprint nobody published.
                env["schemaFingerprint"] = 1234567
                expected["dead"].append({"id": i, "why": "unknown"})
            else:
                expected["click"].append(to_json(resolve(versions[v], CLICK_V3, data)))
            out.append(env)
        return out

    n = args.records
    records = envelopes(0, n)
    with open(os.path.join(args.dir, "avro", "envelopes.avro"), "wb") as f:
        fastavro.writer(f, parse_schema(ENVELOPE), records, codec="deflate", sync_interval=16000)
    raw = envelopes(n, n)
    with open(os.path.join(args.dir, "raw", "firehose-0001.avro"), "wb") as f:
        for r in raw:
            fastavro.schemaless_writer(f, parse_schema(ENVELOPE), r)
    with open(os.path.join(args.dir, "expected.json"), "w") as f:
        json.dump(expected, f)
    print(f"{len(expected['click'])} click rows, {len(expected['view'])} view rows, "
          f"{len(expected['dead'])} to dead-letter")


def check(args):
    import pyarrow.parquet as pq

    with open(os.path.join(args.dir, "expected.json")) as f:
        expected = json.load(f)
    mismatches = 0
    total = 0
    for data_type in ("click", "view"):
        table_dir = args.table.replace("{data_type}", data_type)
        files = sorted(glob.glob(os.path.join(table_dir, "**", "*.parquet"), recursive=True))
        if not files:
            print(f"{data_type}: no Parquet files under {table_dir}")
            sys.exit(1)
        schemas = {str(pq.read_schema(p)) for p in files}
        if len(schemas) != 1:
            print(f"{data_type}: {len(schemas)} different Parquet schemas")
            mismatches += 1
        rows = []
        for p in files:
            rows.extend(pq.read_table(p).to_pylist())
        want = {r["id"]: r for r in expected[data_type]}
        got = {r["id"]: r for r in rows}
        if len(rows) != len(want) or set(got) != set(want):
            print(f"{data_type}: {len(rows)} rows, expected {len(want)}")
            mismatches += 1
        for i, w in want.items():
            g = got.get(i)
            if g is None:
                continue
            for k, v in w.items():
                gv = g.get(k)
                if hasattr(gv, "timestamp"):
                    gv = int(round(gv.timestamp() * 1000))
                if isinstance(gv, float):
                    gv = round(gv, 6)
                if gv != v:
                    if mismatches < 10:
                        print(f"{data_type} id {i} field {k}: parquet {gv!r}, fastavro {v!r}")
                    mismatches += 1
            extra = set(g) - set(w)
            if extra:
                print(f"{data_type} id {i}: unexpected columns {extra}")
                mismatches += 1
        total += len(rows)
    dead = []
    for p in sorted(glob.glob(os.path.join(args.dead_letter, "**", "*.avro"), recursive=True)):
        with open(p, "rb") as f:
            dead.extend(fastavro.reader(f))
    records = [d for d in dead if d["kind"] == "record"]
    if len(records) != len(expected["dead"]):
        print(f"{len(records)} dead-lettered records, expected {len(expected['dead'])}")
        mismatches += 1
    for d in records:
        env = fastavro.schemaless_reader(io.BytesIO(d["data"]), parse_schema(ENVELOPE))
        if env["dataType"] != d["dataType"] or env["schemaFingerprint"] != d["schemaFingerprint"]:
            print(f"dead letter at {d['offset']}: envelope does not match its fields")
            mismatches += 1
        if not d["error"] or not d["source"]:
            mismatches += 1
    print(f"{total} rows, {len(records)} dead-lettered, {mismatches} mismatches")
    sys.exit(1 if mismatches else 0)


# Recursive types evolved: (writer schema, reader schema, one record of depth d from rng).
def tree_node(rng, d):
    return {"label": f"n{d}\u00e9\"", "n": rng.randint(-2**31, 2**31 - 1),
            "kind": rng.choice("ABC"), "old": "gone",
            "u": rng.choice([None, rng.randint(-5, 5), "s\u00e9"]),
            "f": rng.choice([0.1, float("nan"), -1.5e30, float("inf")]),
            "children": [tree_node(rng, d + 1) for _ in range(rng.randint(0, 2))] if d < 4 else [],
            "next": tree_node(rng, d + 1) if d < 4 and rng.random() < 0.5 else None,
            "attrs": {f"k{i}": tree_node(rng, d + 1) for i in range(rng.randint(0, 2))}
            if d < 3 else {}}


def cell(rng, d):
    return {"v": rng.randint(-2**31, 2**31 - 1),
            "next": cell(rng, d + 1) if d < 6 and rng.random() < 0.8 else None}


def a_node(rng, d):
    return {"name": f"a{d}", "drop": rng.random(),
            "b": {"x": rng.randint(-99, 99), "a": a_node(rng, d + 1) if d < 5 else None}
            if rng.random() < 0.8 else None}


RECURSIVE = {
    # A tree: a field renamed through an alias, promotions (int to double, float to double, a
    # union's int to long and string to bytes), an enum symbol behind the reader's default, a
    # field dropped, fields added with defaults (one of them an array of the recursive type),
    # map values made nullable.
    "tree": ({"type": "record", "name": "Node", "namespace": "t", "fields": [
        {"name": "label", "type": "string"},
        {"name": "n", "type": "int"},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B", "C"]}},
        {"name": "old", "type": "string"},
        {"name": "u", "type": ["null", "int", "string"]},
        {"name": "f", "type": "float"},
        {"name": "children", "type": {"type": "array", "items": "Node"}},
        {"name": "next", "type": ["null", "Node"]},
        {"name": "attrs", "type": {"type": "map", "values": "Node"}}]},
        {"type": "record", "name": "Node", "namespace": "t", "fields": [
            {"name": "name", "aliases": ["label"], "type": "string"},
            {"name": "n", "type": "double"},
            {"name": "kind", "type": {"type": "enum", "name": "Kind",
                                      "symbols": ["A", "B", "Z"], "default": "Z"}},
            {"name": "u", "type": ["null", "long", "bytes"]},
            {"name": "f", "type": "double"},
            {"name": "added", "type": "string", "default": "dflt"},
            {"name": "extra", "type": {"type": "array", "items": "Node"}, "default": []},
            {"name": "children", "type": {"type": "array", "items": "Node"}},
            {"name": "next", "type": ["null", "Node"]},
            {"name": "attrs", "type": {"type": "map", "values": ["null", "Node"]}}]},
        tree_node),
    # A linked list whose record is renamed (the reader's aliases hold the writer's name), its
    # value renamed and promoted, a nullable field added.
    "list": ({"type": "record", "name": "Cell", "fields": [
        {"name": "v", "type": "int"},
        {"name": "next", "type": ["null", "Cell"]}]},
        {"type": "record", "name": "Link", "aliases": ["Cell"], "fields": [
            {"name": "value", "aliases": ["v"], "type": "long"},
            {"name": "next", "type": ["null", "Link"]},
            {"name": "tag", "type": ["null", "string"], "default": None}]},
        cell),
    # Mutual recursion: A holds a B that holds an A; a field of A dropped, one of B promoted, one
    # added to A with a record default.
    "mutual": ({"type": "record", "name": "A", "fields": [
        {"name": "name", "type": "string"},
        {"name": "drop", "type": "double"},
        {"name": "b", "type": ["null", {"type": "record", "name": "B", "fields": [
            {"name": "x", "type": "int"},
            {"name": "a", "type": ["null", "A"]}]}]}]},
        {"type": "record", "name": "A", "fields": [
            {"name": "name", "type": "string"},
            {"name": "b", "type": ["null", {"type": "record", "name": "B", "fields": [
                {"name": "x", "type": "long"},
                {"name": "a", "type": ["null", "A"]}]}]},
            {"name": "origin", "type": {"type": "record", "name": "Point", "fields": [
                {"name": "x", "type": "int"}, {"name": "y", "type": "int"}]},
             "default": {"x": 1, "y": -2}}]},
        a_node),
}


def recursive(args):
    """DIR/<case>.avro (the writer's schema, deflate) and DIR/<case>.reader.avsc."""
    os.makedirs(args.dir, exist_ok=True)
    for name, (writer, reader, make) in RECURSIVE.items():
        rng = random.Random(name)
        with open(os.path.join(args.dir, f"{name}.avro"), "wb") as f:
            fastavro.writer(f, parse_schema(writer), [make(rng, 0) for _ in range(args.records)],
                            codec="deflate", sync_interval=2000)
        with open(os.path.join(args.dir, f"{name}.reader.avsc"), "w") as f:
            json.dump(reader, f)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("dir")
    g.add_argument("--records", type=int, default=3000)
    g.add_argument("--corrupt-every", type=int, default=1000)
    c = sub.add_parser("check")
    c.add_argument("dir")
    c.add_argument("table")
    c.add_argument("dead_letter")
    r = sub.add_parser("recursive")
    r.add_argument("dir")
    r.add_argument("--records", type=int, default=200)
    args = p.parse_args()
    {"gen": gen, "check": check, "recursive": recursive}[args.cmd](args)


if __name__ == "__main__":
    main()
