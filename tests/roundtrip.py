#!/usr/bin/env python3
"""Round-trip check: every Avro record must come back, value for value, from parqour's Parquet.

    python3 tests/roundtrip.py [-v] [--uuid binary] [--reader-schema AVSC] --parquet DIR AVRO...

The Avro inputs are files or folders (a folder means every *.avro under it, recursively, sorted
by path, as `parqour convert` lists them), in the order given to `parqour convert`. DIR is
parqour's output folder; its `part-NNNNN.*.parquet` files are read in name order and their rows
concatenated. Each Avro record is decoded with fastavro, logical types left raw, and turned into
what pyarrow's `to_pylist()` should give for parqour's columns (the mapping documented in
src/decode/types.rs); then rows are compared field by field. Exit status: 0 when all match,
1 on mismatches (reporting at most 20), 2 on usage errors.
"""

import argparse
import base64
import bz2
import datetime as dt
import decimal
import io
import itertools
import json
import lzma
import math
import os
import struct
import sys
import uuid
import zlib

import cramjam
import fastavro
import fastavro.read
import pyarrow.parquet as pq
import zstandard

# Logical types are converted below from the raw values, so fastavro's conversion is turned off
# (the dict is shared with fastavro's compiled reader). The schema given to fastavro has no
# logicalType left anyway, see decode_schema.
fastavro.read.LOGICAL_READERS.clear()

MAX_MISMATCHES = 20
UUID_BINARY = False  # set by --uuid binary: uuids are read back as uuid.UUID, not text
READER = None  # set by --reader-schema: the reader schema's JSON
PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
NAMED = {"record", "error", "enum", "fixed"}
COMPLEX = NAMED | {"array", "map"}
WRAPPER = "__roundtrip_branch"  # name prefix of the records that wrap union branches
EPOCH_UTC = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
EPOCH = dt.datetime(1970, 1, 1)
DECIMAL_CONTEXT = decimal.Context(prec=1100)  # wide enough never to round (1000 digits at most)
ATHENA_DECIMAL_PRECISION = 38  # wider decimals are stored as their plain text
TIMESTAMPS = {  # logicalType -> (UTC?, raw long -> microseconds); nanos are floored
    "timestamp-millis": (True, lambda v: v * 1000),
    "timestamp-micros": (True, lambda v: v),
    "timestamp-nanos": (True, lambda v: v // 1000),
    "local-timestamp-millis": (False, lambda v: v * 1000),
    "local-timestamp-micros": (False, lambda v: v),
    "local-timestamp-nanos": (False, lambda v: v // 1000),
}


def is_null_json(s):
    return s == "null" or (isinstance(s, dict) and s.get("type") == "null")


def decode_schema(s, counter):
    """The schema handed to fastavro: a copy of the JSON schema `s` that reads the same bytes but
    - wraps every branch of a union with 2+ non-null branches in a one-field record
      `__roundtrip_branch<k>_<index>`: a one-field record is encoded exactly like its field, and
      fastavro (return_record_name) then tells which branch was written, even int vs long;
    - has no logicalType (values stay raw, and fastavro cannot refuse an annotation that parqour
      ignores, e.g. an invalid decimal) and no defaults (unused without a reader schema)."""
    if isinstance(s, list):
        out = [decode_schema(b, counter) for b in s]
        if sum(not is_null_json(b) for b in s) < 2:
            return out
        k = next(counter)
        return [b if is_null_json(b) else {"type": "record", "name": f"{WRAPPER}{k}_{i}",
                                           "fields": [{"name": "v", "type": b}]}
                for i, b in enumerate(out)]
    if not isinstance(s, dict):
        return s
    s = {k: v for k, v in s.items() if k not in ("logicalType", "default")}
    t = s.get("type")
    if t in ("record", "error"):
        s["fields"] = [{k: decode_schema(v, counter) if k == "type" else v
                        for k, v in f.items() if k != "default"} for f in s["fields"]]
    elif t == "array":
        s["items"] = decode_schema(s["items"], counter)
    elif t == "map":
        s["values"] = decode_schema(s["values"], counter)
    elif isinstance(t, (list, dict)):
        s["type"] = decode_schema(t, counter)
    return s


def strip_logical(s):
    """A schema without logicalType (values stay raw), defaults kept. Also used by
    tests/gen_fixtures.py and tests/gen_random.py."""
    if isinstance(s, dict):
        return {k: strip_logical(v) for k, v in s.items() if k != "logicalType"}
    if isinstance(s, list):
        return [strip_logical(x) for x in s]
    return s


class RecursiveRef(dict):
    """A reference to a record from inside its own definition (a recursive type): reads as the
    record's node, and is stored as JSON text, as parqour decides it from where the reference is
    written in the schema (so that a named record has one column type wherever it is used)."""

    def __init__(self, node):
        super().__init__()
        self.node = node

    def __getitem__(self, key):
        return self.node[key]

    def get(self, key, default=None):
        return self.node.get(key, default)

    def __contains__(self, key):
        return key in self.node


class Resolver:
    """Turns a JSON schema into a tree of dict nodes in which references to named types are
    replaced by the node of their definition (found by full name, per Avro's namespace rules);
    a reference to a record from inside its own definition, by a RecursiveRef to it."""

    def __init__(self, raw):
        self.names = {}
        self.defining = []  # full names of the records whose fields are being resolved
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
            node = self.names.get(full) or self.names[s]
            return RecursiveRef(node) if node.get("_full") in self.defining else node
        t = s["type"]
        if not isinstance(t, str) or t not in PRIMITIVES | COMPLEX:
            return self.resolve(t, ns)  # {"type": {...}} or {"type": "SomeName"}
        node = dict(s)
        if t in NAMED:
            if "." in s["name"]:
                ns, short = s["name"].rsplit(".", 1)
            else:
                ns, short = s.get("namespace", ns) or "", s["name"]
            node["_short"] = short
            node["_full"] = f"{ns}.{short}" if ns else short
            self.names[f"{ns}.{short}" if ns else short] = node  # before the fields: recursion
            if t in ("record", "error"):
                self.defining.append(node["_full"])
                node["fields"] = [dict(f, type=self.resolve(f["type"], ns)) for f in s["fields"]]
                self.defining.pop()
        elif t == "array":
            node["items"] = self.resolve(s["items"], ns)
        elif t == "map":
            node["values"] = self.resolve(s["values"], ns)
        return node


def is_null(node):
    """A null type, or a union of nulls only: such record fields get no column."""
    return all(map(is_null, node)) if isinstance(node, list) else node["type"] == "null"


def member_names(branches):
    """The fields of a union's branches in parqour's struct (None for null branches):
    member_<primitive type or lowercased name>; a name an earlier branch took becomes
    member_<full name, lowercased, dots as _>, and if that is taken too, gets _<position>."""
    taken, names = set(), []
    for i, b in enumerate(branches):
        if is_null(b):
            names.append(None)
            continue
        t = b["type"]
        name = f"member_{b['_short'].lower()}" if t in NAMED else f"member_{t}"
        if name in taken and t in NAMED:
            name = "member_" + b["_full"].replace(".", "_").lower()
        if name in taken:
            name = f"{name}_{i}"
        while name in taken:
            name += "_"
        taken.add(name)
        names.append(name)
    return names


def valid_decimal(node):
    p, s = node.get("precision"), node.get("scale", 0)
    if type(p) is not int or type(s) is not int or p <= 0 or not 0 <= s <= p:
        return False
    if node["type"] == "fixed":  # most digits a signed two's complement of `size` bytes holds
        return p <= len(str(2 ** (8 * node["size"] - 1) - 1)) - 1
    return True


def decimal_value(node, v):
    """The value of a decimal whose unscaled value is the big-endian two's complement `v`."""
    unscaled = int.from_bytes(v, "big", signed=True)
    return decimal.Decimal(unscaled).scaleb(-node.get("scale", 0), DECIMAL_CONTEXT)


def big_decimal_value(v):
    """The value of a big-decimal's bytes `v`: the unscaled value as Avro bytes (big-endian two's
    complement), then the scale as an Avro int."""
    def long(at):
        n = shift = 0
        while True:
            b = v[at]
            n |= (b & 0x7F) << shift
            at, shift = at + 1, shift + 7
            if b < 0x80:
                return (n >> 1) ^ -(n & 1), at
    size, at = long(0)
    unscaled = int.from_bytes(v[at:at + size], "big", signed=True)
    scale, end = long(at + size)
    assert end == len(v), f"big-decimal: {len(v) - end} bytes after the scale"
    return decimal.Decimal(unscaled).scaleb(-scale, DECIMAL_CONTEXT)


def expect_logical(node, v):
    """Expected value of an annotated primitive; an annotation on the wrong type is ignored."""
    t, lt = node["type"], node.get("logicalType")
    if lt == "decimal" and t in ("bytes", "fixed") and valid_decimal(node):
        value = decimal_value(node, v)
        if node["precision"] > ATHENA_DECIMAL_PRECISION:
            return format(value, "f")
        return value
    if lt == "big-decimal" and t == "bytes":
        return format(big_decimal_value(v), "f")
    if lt == "uuid" and t == "fixed" and node["size"] == 16:
        return uuid.UUID(bytes=v) if UUID_BINARY else str(uuid.UUID(bytes=v))
    if lt == "uuid" and t == "string" and UUID_BINARY:
        return uuid.UUID(v)
    if lt == "date" and t == "int":
        return dt.date(1970, 1, 1) + dt.timedelta(days=v)
    if lt in TIMESTAMPS and t == "long":
        utc, to_micros = TIMESTAMPS[lt]
        return (EPOCH_UTC if utc else EPOCH) + dt.timedelta(microseconds=to_micros(v))
    if lt == "duration" and t == "fixed" and node["size"] == 12:
        months, days, millis = struct.unpack("<3I", v)
        return {"months": months, "days": days, "milliseconds": millis}
    return v  # uuid on string (as text), time-millis, time-micros, unknown or misplaced annotations


class JsonText:
    """Expected of a column that holds a value of a recursive type as JSON text: the value
    (`expect_json`), compared with the text parsed."""

    def __init__(self, value):
        self.value = value

    def __repr__(self):
        return f"JsonText({self.value!r})"


class F32:
    """A finite 32-bit float in JSON text: equal to a number that rounds to the same float."""

    def __init__(self, value):
        self.value = value

    def __repr__(self):
        return f"F32({self.value!r})"


def unwrap_branch(node, v):
    """The branch of union `node` that fastavro's value `v` took, and its value."""
    non_null = [(i, b) for i, b in enumerate(node) if not is_null(b)]
    if v is None:
        return None, None
    if len(non_null) == 1:
        b = non_null[0][1]
        return b, (v[1] if isinstance(v, tuple) and b["type"] in ("record", "error") else v)
    if READER is not None:
        chosen, v = resolved_branch(node, v)
        return node[chosen], v
    name, wrapped = v  # see decode_schema
    return node[int(name.rsplit("_", 1)[1])], wrapped["v"]


def expect_json(node, v):
    """The JSON value parqour writes for the raw fastavro value `v` of `node` (a value of a
    recursive type: see src/decode/json.rs)."""
    if isinstance(node, list):
        b, v = unwrap_branch(node, v)
        return None if b is None else expect_json(b, v)
    t, lt = node["type"], node.get("logicalType")
    if t in ("record", "error"):
        if isinstance(v, tuple):
            v = v[1]
        return {f["name"]: expect_json(f["type"], v[f["name"]]) for f in node["fields"]}
    if t == "array":
        return [expect_json(node["items"], x) for x in v]
    if t == "map":
        return {k: expect_json(node["values"], x) for k, x in v.items()}
    if t in ("float", "double"):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        return F32(struct.unpack("<f", struct.pack("<f", v))[0]) if t == "float" else float(v)
    if lt == "decimal" and t in ("bytes", "fixed") and valid_decimal(node):
        return format(decimal_value(node, v), "f")
    if lt == "big-decimal" and t == "bytes":
        return format(big_decimal_value(v), "f")
    if lt == "uuid" and t == "fixed" and node["size"] == 16:
        return str(uuid.UUID(bytes=v))
    if lt == "duration" and t == "fixed" and node["size"] == 12:
        months, days, millis = struct.unpack("<3I", v)
        return {"months": months, "days": days, "milliseconds": millis}
    if t in ("bytes", "fixed"):
        if isinstance(v, str):  # a default, as fastavro gives it: see `expect`
            v = v.encode("latin-1")
        return base64.b64encode(v).decode()
    return v  # null, boolean, int, long (dates and times as stored), string, enum symbol


def expect(node, v):
    """The value pyarrow should return for the raw fastavro value `v` of schema `node`."""
    if isinstance(node, list):
        return expect_union(node, v)
    t = node["type"]
    if isinstance(node, RecursiveRef):  # a reference to a record from inside it: JSON text
        return JsonText(expect_json(node.node, v))
    if t in ("record", "error"):
        return {f["name"]: expect(f["type"], v[f["name"]])
                for f in node["fields"] if not is_null(f["type"])}
    if t == "array":
        return [expect(node["items"], x) for x in v]
    if t == "map":  # fastavro's dict keeps the encoded order; pyarrow gives (key, value) pairs
        return [(k, expect(node["values"], x)) for k, x in v.items()]
    if t == "null":
        return None
    if t in ("bytes", "fixed") and isinstance(v, str):
        # fastavro returns a bytes field's default as the JSON string; its bytes are the
        # code points (Avro's JSON encoding of bytes).
        v = v.encode("latin-1")
    if t == "float" and isinstance(v, (int, float)):
        # A float read from an int (a reader's promotion) comes from fastavro as a double; the
        # column holds it rounded to 32 bits. Other floats are 32-bit already.
        return struct.unpack("<f", struct.pack("<f", v))[0]
    if "logicalType" in node:
        return expect_logical(node, v)
    return v  # boolean, int, long, float, double, bytes, string, enum symbol, fixed bytes


def python_class(node):
    """The Python type fastavro returns for a node (records in unions come as (name, dict))."""
    t = node["type"]
    if t in ("record", "error"):
        return tuple
    return {"boolean": bool, "int": int, "long": int, "float": float, "double": float,
            "string": str, "enum": str, "bytes": bytes, "fixed": bytes, "array": list,
            "map": dict, "null": type(None)}[t]


def resolved_branch(branches, v):
    """With a reader schema: the reader branch that fastavro's value `v` took, and the value.
    tests/gen_random.py --evolve gives each union's branches distinct Python types."""
    if isinstance(v, tuple):  # (full name, record)
        for i, b in enumerate(branches):
            if isinstance(b, dict) and b.get("_full") == v[0]:
                return i, v[1]
        raise ValueError(f"no union branch named {v[0]}")
    for i, b in enumerate(branches):
        if not isinstance(b, list) and python_class(b) is type(v):
            return i, v
    for i, b in enumerate(branches):  # fastavro gives an `error` record as a plain dict
        if isinstance(v, dict) and b["type"] == "error":
            return i, v
    raise ValueError(f"no union branch for {v!r}")


def expect_union(branches, v):
    non_null = [(i, b) for i, b in enumerate(branches) if not is_null(b)]
    if READER is not None:
        if v is None:
            return None
        if len(non_null) == 1:  # a record read through a union comes as (name, record)
            return expect(non_null[0][1], v[1] if isinstance(v, tuple) else v)
        chosen, v = resolved_branch(branches, v)
        names = member_names(branches)
        return {names[i]: expect(b, v) if i == chosen else None for i, b in non_null}
    if len(non_null) == 1:  # [null, T], [T, null] or [T]: T, nullable
        return None if v is None else expect(non_null[0][1], v)
    if v is None:
        return None
    name, wrapped = v  # ("<ns>.__roundtrip_branch<k>_<index>", {"v": value}), see decode_schema
    chosen = int(name.rsplit("_", 1)[1])
    names = member_names(branches)
    return {names[i]: expect(b, wrapped["v"]) if i == chosen else None for i, b in non_null}


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


def snappy_block(data):
    """Raw snappy, followed by the big-endian CRC32 of the uncompressed data."""
    out = bytes(cramjam.snappy.decompress_raw(data[:-4]))
    if zlib.crc32(out) != int.from_bytes(data[-4:], "big"):
        raise ValueError("snappy block: CRC mismatch")
    return out


DECOMPRESS = {
    "null": lambda data: data,
    "deflate": lambda data: zlib.decompress(data, -15),
    "snappy": snappy_block,
    "zstandard": lambda data: zstandard.ZstdDecompressor().stream_reader(
        data, read_across_frames=True).read(),
    "bzip2": bz2.decompress,
    "xz": lzma.decompress,
    # Avro C's own codec: raw LZMA2 (no xz container), dictionary up to preset 9's.
    "lzma": lambda data: lzma.decompress(
        data, format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2, "dict_size": 64 << 20}]),
    # fastavro's: an LZ4 block after its uncompressed length (imported only when met).
    "lz4": lambda data: __import__("lz4.block").block.decompress(data),
}


def read_container(fo):
    """Reads an object container file's header; returns the schema JSON and an iterator of its
    blocks as (record count, decompressed data). Done here rather than with fastavro.reader,
    which parses (and may refuse) the schema and wants other libraries for zstandard."""
    if fo.read(4) != b"Obj\x01":
        raise ValueError(f"{fo.name}: not an Avro object container file")
    meta = fastavro.schemaless_reader(fo, {"type": "map", "values": "bytes"})
    sync, size = fo.read(16), os.fstat(fo.fileno()).st_size
    codec = meta.get("avro.codec", b"null").decode()
    if codec not in DECOMPRESS:
        raise ValueError(f"{fo.name}: unknown codec {codec!r}")

    def blocks():
        while fo.tell() < size:
            count = fastavro.schemaless_reader(fo, "long")
            data = fo.read(fastavro.schemaless_reader(fo, "long"))
            if fo.read(16) != sync:
                raise ValueError(f"{fo.name}: no sync marker after the block")
            yield count, io.BytesIO(DECOMPRESS[codec](data))

    return json.loads(meta["avro.schema"]), blocks()


def avro_rows(paths):
    """Yields (file, record number, expected column names, expected row) for every record."""
    for path in paths:
        with open(path, "rb") as fo:
            raw, blocks = read_container(fo)  # the schema as written: every annotation kept
            if READER is None:
                root = Resolver(raw).root
                decode = fastavro.parse_schema(decode_schema(raw, itertools.count()))
                reader, options = None, {"return_record_name_override": True}
            else:  # fastavro resolves the writer's data to the reader schema
                root = Resolver(READER).root
                decode = fastavro.parse_schema(strip_logical(raw))
                reader, options = fastavro.parse_schema(strip_logical(READER)), {}
            is_record = isinstance(root, dict) and root["type"] in ("record", "error")
            columns = ([f["name"] for f in root["fields"] if not is_null(f["type"])]
                       if is_record else ["value"])  # a non-record schema gives one column
            n = 0
            for count, data in blocks:
                for _ in range(count):
                    rec = fastavro.schemaless_reader(data, decode, reader, return_record_name=True,
                                                     **options)
                    yield path, n, columns, (expect(root, rec) if is_record
                                             else {"value": expect(root, rec)})
                    n += 1
                if data.read():  # a sanity check of the decoding
                    raise ValueError(f"{path}: bytes left over after a block's records")


def parquet_rows(files):
    """Yields (file, row number, column names, row) for every row of the files, in order."""
    for path in files:
        pf = pq.ParquetFile(path)
        n = 0
        for batch in pf.iter_batches(batch_size=4096):
            for row in batch.to_pylist():
                yield path, n, pf.schema_arrow.names, row
                n += 1


class TooManyMismatches(Exception):
    """Raised by Checker.fail at the MAX_MISMATCHES-th mismatch, to stop the run."""


class Checker:
    """Compares expected and actual values recursively, counting leaf values and mismatches."""

    def __init__(self):
        self.values = self.mismatches = 0

    def fail(self, where, path, exp, act):
        self.mismatches += 1
        print(f"MISMATCH {where}{f' at {path}' if path else ''}: expected {exp!r}, got {act!r}")
        if self.mismatches >= MAX_MISMATCHES:
            raise TooManyMismatches

    def compare(self, where, path, exp, act):
        if isinstance(exp, JsonText):
            if not isinstance(act, str):
                return self.fail(where, path, exp, act)
            try:
                parsed = json.loads(act)
            except ValueError:
                return self.fail(where, f"{path} (JSON)", exp, act)
            return self.compare(where, f"{path}(JSON)", exp.value, parsed)
        if isinstance(exp, F32):
            self.values += 1
            if isinstance(act, bool) or not isinstance(act, (int, float)) or \
                    struct.unpack("<f", struct.pack("<f", act))[0] != exp.value:
                self.fail(where, path, exp, act)
            return None
        if isinstance(exp, dict):  # a record, union or duration struct, or a whole row
            if not isinstance(act, dict):
                return self.fail(where, path, exp, act)
            if path and list(exp) != list(act):  # a row's columns are checked once per file
                self.fail(where, f"{path} (field names)", list(exp), list(act))
            for k in exp:
                if k in act:
                    self.compare(where, f"{path}.{k}" if path else k, exp[k], act[k])
        elif isinstance(exp, (list, tuple)):  # an array, a map, or a map's (key, value) entry
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
        return exp == act  # Decimal compares numerically


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parquet", required=True, metavar="DIR", help="parqour's output folder")
    ap.add_argument("inputs", nargs="+", metavar="AVRO", help="Avro files or folders, in order")
    ap.add_argument("-v", "--verbose", action="store_true", help="print the Parquet schema")
    ap.add_argument("--uuid", choices=["string", "binary"], default="string",
                    help="the --uuid that parqour converted with")
    ap.add_argument("--reader-schema", metavar="AVSC",
                    help="the --reader-schema that parqour converted with (one for all files)")
    args = ap.parse_args()
    global UUID_BINARY, READER
    UUID_BINARY = args.uuid == "binary"
    if args.reader_schema:
        with open(args.reader_schema) as f:
            READER = json.load(f)

    avro_files = list_avro(args.inputs)
    if not os.path.isdir(args.parquet):
        sys.exit(f"roundtrip: no such folder: {args.parquet}")
    pq_files = sorted(os.path.join(args.parquet, f) for f in os.listdir(args.parquet)
                      if f.startswith("part-") and f.endswith(".parquet"))
    if args.verbose and pq_files:
        print(f"{pq_files[0]}:\n{pq.ParquetFile(pq_files[0]).schema_arrow}")

    check, records, seen, end = Checker(), 0, set(), object()
    expected, actual = avro_rows(avro_files), parquet_rows(pq_files)
    try:
        for exp, act in itertools.zip_longest(expected, actual, fillvalue=end):
            if exp is end or act is end:  # one side ran out: count what is left of the other
                n_avro = records if exp is end else records + 1 + sum(1 for _ in expected)
                n_pq = records if act is end else records + 1 + sum(1 for _ in actual)
                print(f"MISMATCH row count: {n_avro} Avro records, {n_pq} Parquet rows")
                check.mismatches += 1
                break
            (afile, arec, columns, erow), (pfile, prow, names, arow) = exp, act
            where = f"{afile} record {arec} (= {os.path.basename(pfile)} row {prow})"
            if (afile, pfile) not in seen:  # the columns, once per pair of files
                seen.add((afile, pfile))
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
