#!/usr/bin/env python3
"""Round-trip check: every Avro record must come back, value for value, from parqour's Parquet.

Usage:
    python3 tests/roundtrip.py [-v] --parquet DIR AVRO_FILE_OR_FOLDER [...]

The Avro inputs are files or folders (a folder means every *.avro under it, recursively, sorted
by path, as `parqour convert` lists them), given in the same order as to `parqour convert`.
DIR is parqour's output folder; its `part-NNNNN.*.parquet` files are read in name order and
their rows concatenated.

The Avro side is decoded with fastavro, logical types left raw, and each value is turned into
what pyarrow's `to_pylist()` should give for parqour's column (the mapping in
src/decode/types.rs). Rows are then compared field by field. Exit status 0 when everything
matches, 1 on the first 20 mismatches (or a row count mismatch), 2 on usage errors.
"""

import argparse
import datetime as dt
import decimal
import itertools
import json
import math
import os
import struct
import sys
import uuid

import fastavro
import fastavro.read
import pyarrow.parquet as pq

# Logical types are converted here, from the raw values, so turn fastavro's conversion off.
# The dict is shared with fastavro's (compiled) reader, so clearing it in place is enough.
fastavro.read.LOGICAL_READERS.clear()

MAX_MISMATCHES = 20
PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
NAMED = {"record", "error", "enum", "fixed"}
COMPLEX = NAMED | {"array", "map"}
EPOCH_UTC = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
EPOCH = dt.datetime(1970, 1, 1)
DECIMAL_CONTEXT = decimal.Context(prec=200)  # wide enough to never round
# logicalType -> (tz-aware?, function from the raw long to microseconds)
TIMESTAMPS = {
    "timestamp-millis": (True, lambda v: v * 1000),
    "timestamp-micros": (True, lambda v: v),
    "timestamp-nanos": (True, lambda v: v // 1000),
    "local-timestamp-millis": (False, lambda v: v * 1000),
    "local-timestamp-micros": (False, lambda v: v),
    "local-timestamp-nanos": (False, lambda v: v // 1000),
}
WRAPPER_PREFIX = "__roundtrip_branch"


# ---------------------------------------------------------------------------------------------
# Schema handling
# ---------------------------------------------------------------------------------------------

def is_null_json(s):
    return s == "null" or (isinstance(s, dict) and s.get("type") == "null")


def wrap_unions(s, counter):
    """Return a copy of the JSON schema `s` where every branch of a union with 2+ non-null
    branches is wrapped in a one-field record `__roundtrip_branch<k>_<index>`. A one-field record
    is encoded exactly like its field, so the data reads the same, but fastavro (with
    return_record_name) now tells exactly which branch was written, even for int vs long."""
    if isinstance(s, list):
        out = [wrap_unions(b, counter) for b in s]
        if sum(not is_null_json(b) for b in s) < 2:
            return out
        k = next(counter)
        return [b if is_null_json(b) else
                {"type": "record", "name": f"{WRAPPER_PREFIX}{k}_{i}",
                 "fields": [{"name": "v", "type": b}]}
                for i, b in enumerate(out)]
    if not isinstance(s, dict):
        return s
    s = dict(s)
    t = s.get("type")
    if t in ("record", "error"):
        # Defaults are irrelevant without a reader schema and may no longer fit the wrapped type.
        s["fields"] = [{k: v for k, v in dict(f, type=wrap_unions(f["type"], counter)).items()
                        if k != "default"} for f in s["fields"]]
    elif t == "array":
        s["items"] = wrap_unions(s["items"], counter)
    elif t == "map":
        s["values"] = wrap_unions(s["values"], counter)
    elif isinstance(t, (list, dict)):
        s["type"] = wrap_unions(t, counter)
    return s


class Resolver:
    """Turns a JSON schema into a tree of dict nodes where named-type references are replaced by
    the node of their definition (found by full name, with Avro's namespace rules)."""

    def __init__(self, raw):
        self.names = {}
        self.root = self.resolve(raw, "")

    def resolve(self, s, ns):
        if isinstance(s, list):
            return [self.resolve(b, ns) for b in s]
        if isinstance(s, str):
            if s in PRIMITIVES:
                return {"type": s}
            full = s if "." in s or not ns else f"{ns}.{s}"
            if full not in self.names and s not in self.names:
                raise ValueError(f"unknown type name {s!r} (namespace {ns!r})")
            return self.names.get(full) or self.names[s]
        t = s["type"]
        if not isinstance(t, str) or (t not in PRIMITIVES and t not in COMPLEX):
            return self.resolve(t, ns)  # {"type": {...}} or {"type": "SomeName"}
        node = dict(s)
        if t in NAMED:
            name = s["name"]
            if "." in name:
                ns, short = name.rsplit(".", 1)
            else:
                ns, short = s.get("namespace", ns) or "", name
            node["_short"] = short
            self.names[f"{ns}.{short}" if ns else short] = node  # before the fields: recursion
            if t in ("record", "error"):
                node["fields"] = [dict(f, type=self.resolve(f["type"], ns)) for f in s["fields"]]
        elif t == "array":
            node["items"] = self.resolve(s["items"], ns)
        elif t == "map":
            node["values"] = self.resolve(s["values"], ns)
        return node


def is_null(node):
    if isinstance(node, list):
        return all(is_null(b) for b in node)
    return node["type"] == "null"


def member_name(node):
    """Column name of a union branch in parqour's struct: member_<type or lowercased name>."""
    t = node["type"]
    return f"member_{node['_short'].lower()}" if t in NAMED else f"member_{t}"


def valid_decimal(node):
    p, s = node.get("precision"), node.get("scale", 0)
    if type(p) is not int or type(s) is not int or p <= 0 or not 0 <= s <= p:
        return False
    if node["type"] == "fixed":  # most digits a signed two's complement of `size` bytes holds
        return p <= len(str(2 ** (8 * node["size"] - 1) - 1)) - 1
    return True


# ---------------------------------------------------------------------------------------------
# Raw Avro value -> expected pyarrow value
# ---------------------------------------------------------------------------------------------

def expect_logical(node, v):
    t, lt = node["type"], node.get("logicalType")
    if lt == "decimal" and t in ("bytes", "fixed") and valid_decimal(node):
        unscaled = int.from_bytes(v, "big", signed=True)
        return decimal.Decimal(unscaled).scaleb(-node.get("scale", 0), DECIMAL_CONTEXT)
    if lt == "uuid" and t == "fixed" and node["size"] == 16:
        return str(uuid.UUID(bytes=v))
    if lt == "date" and t == "int":
        return dt.date(1970, 1, 1) + dt.timedelta(days=v)
    if lt in TIMESTAMPS and t == "long":
        aware, to_micros = TIMESTAMPS[lt]
        return (EPOCH_UTC if aware else EPOCH) + dt.timedelta(microseconds=to_micros(v))
    if lt == "duration" and t == "fixed" and node["size"] == 12:
        months, days, millis = struct.unpack("<3I", v)
        return {"months": months, "days": days, "milliseconds": millis}
    return v  # uuid on string, time-millis, time-micros, unknown or misplaced annotations


def expect(node, v):
    if isinstance(node, list):
        return expect_union(node, v)
    t = node["type"]
    if t in ("record", "error"):
        return {f["name"]: expect(f["type"], v[f["name"]])
                for f in node["fields"] if not is_null(f["type"])}
    if t == "array":
        return [expect(node["items"], x) for x in v]
    if t == "map":
        return [(k, expect(node["values"], x)) for k, x in v.items()]
    if t == "null":
        return None
    if "logicalType" in node:
        return expect_logical(node, v)
    return v  # boolean, int, long, float, double, bytes, string, enum symbol, fixed bytes


def expect_union(branches, v):
    non_null = [(i, b) for i, b in enumerate(branches) if not is_null(b)]
    if len(non_null) == 1:  # [null, T], [T, null] or [T]: T, nullable
        return None if v is None else expect(non_null[0][1], v)
    if v is None:
        return None
    name, wrapped = v  # ("<ns>.__roundtrip_branch<k>_<index>", {"v": value}), see wrap_unions
    chosen = int(name.rsplit("_", 1)[1])
    return {member_name(b): expect(b, wrapped["v"]) if i == chosen else None
            for i, b in non_null}


# ---------------------------------------------------------------------------------------------
# Readers
# ---------------------------------------------------------------------------------------------

def list_avro(inputs):
    """Files as given; folders expanded to their *.avro files, recursively, sorted by path."""
    out = []
    for p in inputs:
        if os.path.isdir(p):
            found = [os.path.join(d, f) for d, _, fs in os.walk(p) for f in fs
                     if f.endswith(".avro")]
            out.extend(sorted(found, key=lambda f: os.path.relpath(f, p).replace(os.sep, "/")))
        elif os.path.isfile(p):
            out.append(p)
        else:
            sys.exit(f"roundtrip: no such file or folder: {p}")
    return out


def avro_rows(paths):
    """Yields (file, record number, expected column names, expected row) for every record."""
    for path in paths:
        with open(path, "rb") as fo:
            blocks = fastavro.block_reader(fo)
            raw = json.loads(blocks.metadata["avro.schema"])  # as written: keeps every annotation
            root = Resolver(raw).root
            wrapped = fastavro.parse_schema(wrap_unions(raw, itertools.count()))
            is_record = isinstance(root, dict) and root["type"] in ("record", "error")
            columns = (list(expect(root, {f["name"]: None for f in root["fields"]}))
                       if is_record else ["value"])
            n = 0
            for block in blocks:
                for _ in range(block.num_records):
                    rec = fastavro.schemaless_reader(
                        block.bytes_, wrapped, None,
                        return_record_name=True, return_record_name_override=True)
                    row = expect(root, rec) if is_record else {"value": expect(root, rec)}
                    yield path, n, columns, row
                    n += 1


def parquet_rows(files):
    """Yields (file, row number, column names, row) for every row of the files, in order."""
    for path in files:
        pf = pq.ParquetFile(path)
        names = pf.schema_arrow.names
        n = 0
        for batch in pf.iter_batches(batch_size=4096):
            for row in batch.to_pylist():
                yield path, n, names, row
                n += 1


# ---------------------------------------------------------------------------------------------
# Comparison
# ---------------------------------------------------------------------------------------------

class TooManyMismatches(Exception):
    pass


class Checker:
    def __init__(self):
        self.values = 0
        self.mismatches = 0

    def fail(self, where, path, exp, act):
        self.mismatches += 1
        at = f" at {path}" if path else ""
        print(f"MISMATCH {where}{at}: expected {exp!r}, got {act!r}")
        if self.mismatches >= MAX_MISMATCHES:
            raise TooManyMismatches

    def compare(self, where, path, exp, act):
        if isinstance(exp, dict):
            if not isinstance(act, dict) or list(exp) != list(act):
                keys = list(act) if isinstance(act, dict) else act
                return self.fail(where, path, f"fields {list(exp)}", keys)
            for k in exp:
                self.compare(where, f"{path}.{k}" if path else k, exp[k], act[k])
        elif isinstance(exp, (list, tuple)):
            if not isinstance(act, (list, tuple)) or len(exp) != len(act):
                return self.fail(where, path, exp, act)
            for i, (e, a) in enumerate(zip(exp, act)):
                self.compare(where, f"{path}[{i}]", e, a)
        else:
            self.values += 1
            if not self.scalar_equal(exp, act):
                self.fail(where, path, exp, act)

    @staticmethod
    def scalar_equal(exp, act):
        if exp is None or act is None:
            return exp is act
        if type(exp) is not type(act):  # e.g. bool vs int, date vs datetime, bytes vs str
            return False
        if isinstance(exp, float):
            return exp == act or (math.isnan(exp) and math.isnan(act))
        if isinstance(exp, dt.datetime):  # both naive, or both UTC
            return exp.utcoffset() == act.utcoffset() and exp == act
        return exp == act


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parquet", required=True, metavar="DIR", help="parqour's output folder")
    ap.add_argument("inputs", nargs="+", metavar="AVRO", help="Avro files or folders, in order")
    ap.add_argument("-v", "--verbose", action="store_true", help="print the Parquet schema")
    args = ap.parse_args()

    avro_files = list_avro(args.inputs)
    if not os.path.isdir(args.parquet):
        sys.exit(f"roundtrip: no such folder: {args.parquet}")
    pq_files = sorted(os.path.join(args.parquet, f) for f in os.listdir(args.parquet)
                      if f.startswith("part-") and f.endswith(".parquet"))
    if args.verbose and pq_files:
        print(f"{pq_files[0]}:\n{pq.ParquetFile(pq_files[0]).schema_arrow}")

    check, records, seen_pairs, end = Checker(), 0, set(), object()
    expected, actual = avro_rows(avro_files), parquet_rows(pq_files)
    try:
        for exp, act in itertools.zip_longest(expected, actual, fillvalue=end):
            if exp is end or act is end:  # one side ran out: count what is left of the other
                n_avro = records if exp is end else records + 1 + sum(1 for _ in expected)
                n_pq = records if act is end else records + 1 + sum(1 for _ in actual)
                check.fail("row count", "", f"{n_avro} rows (Avro records)", f"{n_pq} rows")
                break
            (afile, arec, columns, erow), (pfile, prow, names, arow) = exp, act
            where = f"{afile} record {arec} (= {os.path.basename(pfile)} row {prow})"
            if (afile, pfile) not in seen_pairs:  # check the columns once per pair of files
                seen_pairs.add((afile, pfile))
                if names != columns:
                    check.fail(where, "<columns>", columns, names)
            check.compare(where, "", erow, arow)
            records += 1
    except TooManyMismatches:
        print(f"(stopped after {MAX_MISMATCHES} mismatches)")
    print(f"roundtrip: {records} records, {check.values} values checked, "
          f"{check.mismatches} mismatches")
    return 1 if check.mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
