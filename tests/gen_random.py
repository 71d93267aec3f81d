#!/usr/bin/env python3
"""Random Avro schemas and data, for a differential test of the decoder (tests/cli.rs) and of
schema resolution (tests/evolution.rs).

    python3 tests/gen_random.py OUT_DIR SEED COUNT [--evolve | --evolve-java]

writes COUNT files OUT_DIR/random-<SEED>-<n>.avro, each with a schema and records drawn from
random.Random(SEED * 1_000_003 + n), and prints one line per file: its name, codec, record
count and schema. The same arguments write byte-identical files. With --evolve, each also gets
a reader schema OUT_DIR/random-<SEED>-<n>.avsc that its data resolves to (see `Evolve`), its
writer schema as random-<SEED>-<n>.writer.avsc, and random-<SEED>-<n>.envelopes.avro: the same
records in DataWrapper envelopes of data type `rnd`, for tests/evolution.rs. --evolve-java does
the same for Avro Java 1.8.2 as the oracle (tests/java_resolve.java) instead of fastavro: unions
may hold competing branches; no enum defaults, promotions to float, empty blocks or zstandard.

Why: tests/gen_fixtures.py holds the corners someone thought of; this finds the ones nobody did.
Schemas nest records, arrays, maps and unions (of null and one type, of several types, of one
branch) to depth 5, reuse named types by short and full name across namespaces, refer to a
record from inside itself (recursive types, through arrays, maps and `[null, T]`), and annotate
with every logical type, valid or not (an invalid annotation is ignored, as the spec says). The
data is encoded here, by a writer of its own rather than fastavro's, so that it also holds what
fastavro never writes but other writers do: arrays and maps split into several blocks, blocks
with byte sizes (negative counts), decimals sign-extended beyond their minimal bytes, NaN and
infinities, strings with NUL and astral characters, empty blocks and many codecs. The oracle is
tests/roundtrip.py, which decodes the same bytes with fastavro and reads parqour's Parquet with
pyarrow: the files are valid Avro, so every one must convert and compare equal.
"""

import bz2
import json
import lzma
import os
import random
import struct
import sys
import uuid
import zlib

import cramjam
import zstandard

CODECS = ["null", "deflate", "snappy", "zstandard", "bzip2", "xz", "lz4"]
FIELD_NAMES = ["id", "value", "name", "a", "b", "x_1", "_hidden", "type", "member_int",
               "key", "items", "Map", "ts", "amount", "nested", "list", "element", "f"]
NAMESPACES = [None, "com.example", "org.parqour.test", "a.b"]
MAX_DEPTH = 5
I64 = (-(1 << 63), (1 << 63) - 1)
I32 = (-(1 << 31), (1 << 31) - 1)
# Logical types on long whose values pyarrow must turn into datetimes: years 1 to 9999.
MICROS_RANGE = (-62135596800_000000, 253402300799_999999)
TIMESTAMP_SCALE = {"timestamp-millis": 1000, "timestamp-micros": 1,
                   "local-timestamp-millis": 1000, "local-timestamp-micros": 1}


def zigzag(n):
    """The varint of a zig-zag encoded 64-bit integer."""
    n = (n << 1) ^ (n >> 63)
    n &= (1 << 64) - 1
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def length_prefixed(b):
    return zigzag(len(b)) + b


def min_twos_complement(v):
    """The shortest big-endian two's complement bytes of `v`."""
    n = 1
    while not -(1 << (8 * n - 1)) <= v < (1 << (8 * n - 1)):
        n += 1
    return v.to_bytes(n, "big", signed=True)


def fixed_digits(size):
    """The most decimal digits a signed two's complement of `size` bytes always holds."""
    return len(str((1 << (8 * size - 1)) - 1)) - 1


class Schemas:
    """Draws a schema as (JSON, node); a node is what `Values` needs to encode a datum. Named
    types are remembered, so that later types may reference them by name."""

    def __init__(self, rng, distinct_in_python=False, one_branch_fields=False):
        self.rng = rng
        self.count = 0
        self.named = []  # (full name, short name, namespace, node)
        # For --evolve-java: some union fields hold one branch in every record (the field says
        # which, in a property of its own), so that a reader may read them as that branch alone.
        self.one_branch_fields = one_branch_fields
        # For --evolve: a union's branches must differ in the Python type fastavro returns, so
        # that tests/roundtrip.py can tell which branch a resolved value took.
        self.distinct_in_python = distinct_in_python

    def name(self, kind):
        self.count += 1
        return f"{kind}{self.count}"

    def namespace(self):
        return self.rng.choice(NAMESPACES) if self.rng.random() < 0.3 else None

    def referable(self, ns, recursive=False):
        """The named types defined so far that a type in namespace `ns` can reference: a record
        still being defined only where `recursive` (a recursive type: items of an array, values
        of a map, the non-null branch of `[null, T]`, where the data can end), and no type of
        the null namespace from within another namespace (its name would resolve there)."""
        return [n for n in self.named
                if n[3].get("open", False) == recursive and (n[2] or not ns)]

    def reference(self, ns, recursive=False):
        """A reference to a named type defined earlier: by short name within its namespace,
        else by full name."""
        full, short, named_ns, node = self.rng.choice(self.referable(ns, recursive))
        if named_ns == ns and self.rng.random() < 0.5:
            return short, node
        return full, node

    def define(self, short, ns, node, enclosing_ns):
        """Registers a named type; its JSON gets a namespace if it differs from the enclosing
        one (sometimes as a dotted name, sometimes as the `namespace` attribute)."""
        full = f"{ns}.{short}" if ns else short
        node["full"] = full
        self.named.append((full, short, ns, node))
        json_ = {"name": short}
        if ns != enclosing_ns:
            if ns and self.rng.random() < 0.5:
                json_ = {"name": full}
            else:
                json_["namespace"] = ns or ""
        return json_

    def draw(self, depth, ns, in_union=False, null_ok=False, recursive=False):
        if recursive and self.referable(ns, True) and self.rng.random() < 0.2:
            return self.reference(ns, True)
        r = self.rng.random()
        if r < 0.05 and self.referable(ns):
            return self.reference(ns)
        composite = 0.45 if depth < MAX_DEPTH else 0.0
        if r < 0.05 + composite:
            kind = self.rng.choice(["record", "record", "array", "map", "union", "union"])
            if kind == "union" and in_union:
                kind = "array"
            return getattr(self, kind)(depth + 1, ns)
        if r < 0.05 + composite + 0.2:
            return self.logical(ns)
        return self.primitive(ns, null_ok)

    def primitive(self, ns, null_ok=False):
        """A primitive, fixed or enum. null only where asked for: a record of nothing but
        nulls, or an array or map of them, has no Parquet form (a clear error, tested in
        tests/cli.rs), and these files must convert."""
        t = self.rng.choice(["null" if null_ok else "int", "boolean", "int", "long", "float",
                             "double", "bytes", "string", "string", "long", "fixed", "enum"])
        if t == "fixed":
            return self.fixed(self.rng.choice([0, 1, 2, 3, 7, 8, 16, 20]), ns)
        if t == "enum":
            short = self.name("E")
            symbols = [f"S{i}" for i in range(self.rng.randint(1, 6))]
            node = {"t": "enum", "symbols": symbols}
            j = {"type": "enum", **self.define(short, self.namespace() or ns, node, ns),
                 "symbols": symbols}
            return j, node
        j = t if self.rng.random() < 0.7 else {"type": t}
        return j, {"t": t}

    def fixed(self, size, ns, extra=None):
        short = self.name("F")
        node = {"t": "fixed", "size": size}
        j = {"type": "fixed", **self.define(short, self.namespace() or ns, node, ns),
             "size": size, **(extra or {})}
        return j, node

    def logical(self, ns):
        kind = self.rng.choice(["decimal-bytes", "decimal-fixed", "uuid", "uuid-fixed", "date",
                                "time-millis", "time-micros", "timestamp-millis",
                                "timestamp-micros", "timestamp-nanos", "local-timestamp-millis",
                                "local-timestamp-micros", "local-timestamp-nanos", "duration",
                                "big-decimal", "invalid"])
        # One decimal in five is wider than Athena's DECIMAL(38): stored as text.
        wide = self.rng.random() < 0.2
        if kind == "decimal-bytes":
            p = self.rng.randint(39, 120) if wide else self.rng.randint(1, 38)
            s = self.rng.randint(0, p)
            return ({"type": "bytes", "logicalType": "decimal", "precision": p, "scale": s},
                    {"t": "decimal", "precision": p, "size": None, "base": "bytes"})
        if kind == "decimal-fixed":
            if wide:
                size = self.rng.randint(17, 48)
                p = self.rng.randint(39, fixed_digits(size))
            else:
                size = self.rng.randint(1, 20)
                p = self.rng.randint(1, min(38, fixed_digits(size)))
            s = self.rng.randint(0, p)
            j, node = self.fixed(size, ns, {"logicalType": "decimal", "precision": p,
                                            "scale": s})
            node.update(t="decimal", precision=p)
            return j, node
        if kind == "big-decimal":  # Avro 1.12: the scale in each value
            return {"type": "bytes", "logicalType": kind}, {"t": kind, "base": "bytes"}
        if kind == "uuid":
            return {"type": "string", "logicalType": "uuid"}, {"t": "uuid", "base": "string"}
        if kind == "uuid-fixed":
            j, node = self.fixed(16, ns, {"logicalType": "uuid"})
            return j, node
        if kind == "duration":
            j, node = self.fixed(12, ns, {"logicalType": "duration"})
            return j, node
        if kind == "invalid":
            # Annotations a reader must ignore: the value is its underlying type's.
            j, node = self.rng.choice([
                ({"type": "bytes", "logicalType": "decimal", "precision": 4, "scale": 6},
                 {"t": "bytes"}),
                ({"type": "bytes", "logicalType": "decimal", "precision": 0}, {"t": "bytes"}),
                ({"type": "string", "logicalType": "decimal", "precision": 4}, {"t": "string"}),
                ({"type": "int", "logicalType": "uuid"}, {"t": "int"}),
                ({"type": "int", "logicalType": "timestamp-millis"}, {"t": "int"}),
                ({"type": "long", "logicalType": "date"}, {"t": "long"}),
                ({"type": "string", "logicalType": "no-such-type"}, {"t": "string"}),
                ({"type": "long", "logicalType": "time-millis"}, {"t": "long"}),
            ])
            return j, node
        base = "int" if kind in ("date", "time-millis") else "long"
        return {"type": base, "logicalType": kind}, {"t": kind, "base": base}

    def record(self, depth, ns):
        short = self.name("R")
        own_ns = self.namespace() or ns
        node = {"t": "record", "fields": [], "open": True}  # open: referable recursively
        # fastavro gives an `error` read through a union as a dict, like a map: not in a
        # union of --evolve, where roundtrip.py tells branches by the Python type.
        kinds = ["record"] if self.distinct_in_python else ["record", "record", "record", "error"]
        j = {"type": self.rng.choice(kinds),
             **self.define(short, own_ns, node, ns)}
        n = self.rng.choice([1, 1, 2, 2, 3, 3, 4, 5, 7])
        names = self.rng.sample(FIELD_NAMES, n)
        fields = []
        for k, fname in enumerate(names):
            fj, fnode = self.draw(depth, own_ns, null_ok=k > 0)
            field = {"name": fname, "type": fj}
            if self.rng.random() < 0.1:
                field["doc"] = "a field's doc, ignored"
            if self.one_branch_fields and fnode["t"] == "union" and \
                    not any(b.get("open") for b in fnode["branches"]) and \
                    self.rng.random() < 0.3:
                branches = [i for i, b in enumerate(fnode["branches"]) if b["t"] != "null"]
                if branches:
                    fnode["only"] = self.rng.choice(branches)
                    field[ONE_BRANCH] = fnode["only"]
            fields.append(field)
            node["fields"].append(fnode)
        j["fields"] = fields
        del node["open"]
        return j, node

    def array(self, depth, ns):
        ij, inode = self.draw(depth, ns, recursive=True)
        return {"type": "array", "items": ij}, {"t": "array", "items": inode}

    def map(self, depth, ns):
        vj, vnode = self.draw(depth, ns, recursive=True)
        return {"type": "map", "values": vj}, {"t": "map", "values": vnode}

    def union(self, depth, ns):
        shape = self.rng.random()
        if shape < 0.5:  # [null, T] or [T, null]
            tj, tnode = self.draw(depth, ns, in_union=True, recursive=True)
            while tnode["t"] == "null":
                tj, tnode = self.draw(depth, ns, in_union=True, recursive=True)
            branches = [("null", {"t": "null"}), (tj, tnode)]
            if self.rng.random() < 0.3:
                branches.reverse()
        elif shape < 0.6:  # [T]
            branches = [self.draw(depth, ns, in_union=True)]
        else:  # several types, maybe with null
            branches = []
            seen = set()
            for _ in range(self.rng.randint(2, 5)):
                defined = len(self.named)
                bj, bnode = self.draw(depth, ns, in_union=True, null_ok=True)
                # Avro: no two branches of the same type, except named types of other names
                # (a logical type counts as its underlying type).
                key = bnode.get("full") or bnode.get("base") or bnode["t"]
                if self.distinct_in_python:
                    key = COMPETING.get(python_class(bnode), python_class(bnode))
                if key in seen:
                    del self.named[defined:]  # the types it defined are not in the schema
                    continue
                seen.add(key)
                branches.append((bj, bnode))
            if all(node["t"] == "null" for _, node in branches):
                branches.append(("string", {"t": "string"}))
        return [b[0] for b in branches], {"t": "union", "branches": [b[1] for b in branches]}


# Branches that compete for a writer's value when a reader resolves a union: an int may be read
# as a float or double, a string as bytes and bytes as a string. Java's Avro takes the branch of
# the same type first, as parqour does; fastavro takes the first branch it can promote to. So
# under --evolve, no union holds two of a kind.
COMPETING = {"int": "number", "float": "number", "str": "text", "bytes": "text"}


def python_class(node):
    """The type of the value fastavro returns for a node (records: their name)."""
    t = node["t"]
    if t in ("int", "long", "date", "time-millis", "time-micros") or "timestamp" in t:
        return "int"
    if t in ("string", "uuid", "enum"):
        return "str"
    if t in ("bytes", "fixed", "decimal", "big-decimal"):
        return "bytes"
    if t == "double":
        return "float"
    return node["full"] if t == "record" else t


class Values:
    """Encodes random data for a node (Avro binary encoding)."""

    def __init__(self, rng):
        self.rng = rng
        self.records = []  # ids of the records being encoded, outermost first

    def deep(self):
        """Inside a recursive type twice over: arrays and maps are empty, `[null, T]` null, so
        that the data ends."""
        return len(self.records) - len(set(self.records)) >= 2

    def string(self):
        r = self.rng.random()
        if r < 0.1:
            return ""
        alphabet = "abcXYZ019 _-" if r < 0.7 else "aé中\U0001F600\x00\n\"\\ñ"
        return "".join(self.rng.choice(alphabet) for _ in range(self.rng.randint(1, 40)))

    def integer(self, lo, hi):
        r = self.rng.random()
        if r < 0.1:
            return self.rng.choice([lo, hi, 0, -1, 1])
        if r < 0.6:
            return self.rng.randint(-300, 300)
        return self.rng.randint(lo, hi)

    def double(self):
        r = self.rng.random()
        if r < 0.15:
            return self.rng.choice([float("nan"), float("inf"), float("-inf"), -0.0, 0.0,
                                    5e-324, 1.7976931348623157e308])
        return self.rng.uniform(-1e6, 1e6)

    def blocks(self, items, encode_item):
        """An array's or map's items, in one block or several, each with a byte size (a
        negative count) or without."""
        out = bytearray()
        i = 0
        while i < len(items):
            n = self.rng.randint(1, len(items) - i)
            body = b"".join(encode_item(x) for x in items[i:i + n])
            if self.rng.random() < 0.3:
                out += zigzag(-n) + zigzag(len(body))
            else:
                out += zigzag(n)
            out += body
            i += n
        return bytes(out + zigzag(0))

    def encode(self, node):
        t = node["t"]
        rng = self.rng
        if t == "null":
            return b""
        if t == "boolean":
            return bytes([rng.random() < 0.5])
        if t == "int":
            return zigzag(self.integer(*I32))
        if t == "long":
            return zigzag(self.integer(*I64))
        if t == "float":
            if rng.random() < 0.15:
                return struct.pack("<f", rng.choice([float("nan"), float("inf"), -0.0, 1e-45,
                                                     3.4028234663852886e38]))
            return struct.pack("<f", rng.uniform(-1e3, 1e3))
        if t == "double":
            return struct.pack("<d", self.double())
        if t == "bytes":
            return length_prefixed(rng.randbytes(rng.randint(0, 30)))
        if t == "string":
            return length_prefixed(self.string().encode())
        if t == "fixed":
            return rng.randbytes(node["size"])
        if t == "enum":
            return zigzag(rng.randrange(len(node["symbols"])))
        if t == "decimal":
            p = node["precision"]
            bound = 10 ** p - 1
            v = rng.choice([bound, -bound, 0, rng.randint(-bound, bound),
                            rng.randint(-min(bound, 999), min(bound, 999))])
            if node["size"] is None:
                b = min_twos_complement(v)
                if rng.random() < 0.2:  # sign-extended beyond the minimal bytes
                    b = (b"\xff" if v < 0 else b"\x00") * rng.randint(1, 4) + b
                return length_prefixed(b)
            return v.to_bytes(node["size"], "big", signed=True)
        if t == "big-decimal":
            # The unscaled value as Avro bytes, then the scale as an Avro int, inside bytes: up
            # to 1000 digits and a scale of +-1000, parqour's bounds for a decimal's text.
            bound = 10 ** rng.choice([1, 2, 18, 38, 39, 76, 200, 1000]) - 1
            v = rng.choice([bound, -bound, 0, rng.randint(-bound, bound),
                            rng.randint(-min(bound, 999), min(bound, 999))])
            scale = rng.choice([0, 2, -3, 1000, -1000, rng.randint(-1000, 1000),
                                rng.randint(-20, 40)])
            return length_prefixed(length_prefixed(min_twos_complement(v)) + zigzag(scale))
        if t == "uuid":
            u = str(uuid.UUID(bytes=rng.randbytes(16)))
            return length_prefixed(u.encode())
        if t == "date":
            return zigzag(rng.randint(-719162, 2932896))
        if t == "time-millis":
            return zigzag(rng.randint(0, 86_399_999))
        if t == "time-micros":
            return zigzag(rng.randint(0, 86_399_999_999))
        if t in TIMESTAMP_SCALE:
            scale = TIMESTAMP_SCALE[t]
            return zigzag(rng.randint(MICROS_RANGE[0] // scale, MICROS_RANGE[1] // scale))
        if t in ("timestamp-nanos", "local-timestamp-nanos"):
            return zigzag(self.integer(*I64))
        if t == "record":
            self.records.append(id(node))
            try:
                return b"".join(self.encode(f) for f in node["fields"])
            finally:
                self.records.pop()
        if t == "array":
            n = 0 if self.deep() else rng.choice([0, 0, 1, 2, 3, 5, 8])
            return self.blocks([None] * n, lambda _: self.encode(node["items"]))
        if t == "map":
            n = 0 if self.deep() else rng.choice([0, 0, 1, 2, 3, 5])
            # Distinct keys in a drawn order (not a set's: its order follows the process's
            # string hashes, and the files must be the same on every run).
            keys = list(dict.fromkeys(self.string() for _ in range(n)))
            rng.shuffle(keys)
            return self.blocks(keys, lambda k: length_prefixed(k.encode())
                               + self.encode(node["values"]))
        if t == "union":
            branches = node["branches"]
            i = node["only"] if "only" in node else rng.randrange(len(branches))
            if self.deep() and "only" not in node and any(b["t"] == "null" for b in branches):
                i = next(k for k, b in enumerate(branches) if b["t"] == "null")
            return zigzag(i) + self.encode(branches[i])
        raise ValueError(f"unknown node {t}")


# The field property (ignored by readers, as any unknown one) naming the one branch of a
# union field that the data holds (see Schemas.one_branch_fields).
ONE_BRANCH = "parqour.test.branch"
PRIMITIVE_NAMES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
NAMED_KINDS = {"record", "error", "enum", "fixed"}
# Promotions a reader may make (Avro's schema resolution). long -> float is left out: Python
# would round through a double, which can differ from rounding straight to a float.
PROMOTIONS = {"int": ["long", "float", "double"], "long": ["double"], "float": ["double"],
              "string": ["bytes"]}
ADDED_FIELDS = [  # (type, default) of fields a reader adds
    (["null", "string"], None), ("long", 42), ("int", -7), ("double", 1.5), ("boolean", True),
    ("string", "dflt"), ({"type": "array", "items": "long"}, [1, 2]),
    ({"type": "map", "values": "string"}, {"k": "v"}), (["string", "null"], "s"),
    ("bytes", "\u00ff\u0000"), ({"type": "long", "logicalType": "timestamp-millis"}, 1000),
    ("enum", "B"), ("record", {"x": 5}), ("fixed", "\u0001\u0002"),
]


def full_name(j, ns):
    """A named type's full name, and the namespace its own fields are in."""
    name = j["name"]
    if "." in name:
        return name, name.rsplit(".", 1)[0]
    own = j["namespace"] if "namespace" in j else ns
    return (f"{own}.{name}" if own else name), (own or None)


def is_null_schema(j):
    """null, or a union of nothing but null: a field of it gets no column."""
    if isinstance(j, list):
        return all(map(is_null_schema, j))
    return (j if isinstance(j, str) else j["type"]) == "null"


def has_named(j):
    """Whether a schema defines or references a named type."""
    if isinstance(j, list):
        return any(map(has_named, j))
    if isinstance(j, str):
        return j not in PRIMITIVE_NAMES
    return j["type"] in NAMED_KINDS or any(has_named(j[k]) for k in ("items", "values")
                                           if k in j) or any(has_named(f["type"])
                                                             for f in j.get("fields", []))


def has_definitions(j):
    """Whether a schema defines a named type (dropping it would leave references dangling)."""
    if isinstance(j, list):
        return any(map(has_definitions, j))
    if isinstance(j, str):
        return False
    return j["type"] in NAMED_KINDS or any(has_definitions(j[k]) for k in ("items", "values")
                                           if k in j)


class Evolve:
    """Derives a reader schema from a writer schema by the changes Avro's resolution allows:
    fields dropped, added with defaults, renamed with aliases and reordered; numeric and
    string-to-bytes promotions; enum symbols added, or removed behind a default; a type made
    nullable; union branches added and reordered; named types renamed, with the writer's name
    as an alias (and every reference renamed with them)."""

    def __init__(self, rng, writer, java=False):
        self.rng = rng
        # For Java's Avro 1.8.2 as the oracle (--evolve-java): no enum defaults (Avro 1.9's),
        # but unions may hold competing branches. No promotion to float: 1.8.2 refuses one
        # into a union.
        self.java = java
        self.count = 0
        self.names = {}  # full name -> definition, in the writer (and renamed, in the reader)
        self.renamed = {}  # writer's full name -> reader's, for the references
        self.collect(writer, None)

    def rename(self, j, ns):
        """A named type renamed by the reader, with the writer's full name as an alias."""
        old, _ = full_name(j, ns)
        out = dict(j, name=f"{j['name']}V2", aliases=[old])
        new, _ = full_name(out, ns)
        self.renamed[old] = new
        self.names[new] = self.names[old]
        return out

    def collect(self, j, ns):
        if isinstance(j, list):
            for b in j:
                self.collect(b, ns)
        elif isinstance(j, dict):
            if j["type"] in NAMED_KINDS:
                full, ns = full_name(j, ns)
                self.names[full] = j
            for k in ("items", "values"):
                if k in j:
                    self.collect(j[k], ns)
            for f in j.get("fields", []):
                self.collect(f["type"], ns)

    def python_class(self, j, ns):
        """`python_class` of a JSON schema."""
        if isinstance(j, dict) and j["type"] in NAMED_KINDS:
            kind, full = j["type"], full_name(j, ns)[0]
        elif isinstance(j, str) and j not in PRIMITIVE_NAMES:
            full = j if "." in j or not ns else f"{ns}.{j}"
            full = full if full in self.names else j
            kind = self.names[full]["type"]
        else:
            t = j if isinstance(j, str) else j["type"]
            return {"int": "int", "long": "int", "float": "float", "double": "float",
                    "string": "str", "bytes": "bytes"}.get(t, t)
        return {"enum": "str", "fixed": "bytes"}.get(kind, full)

    def schema(self, j, ns, in_union=False, top=False):
        rng = self.rng
        if isinstance(j, list):
            return self.union(j, ns)
        t = j if isinstance(j, str) else j["type"]
        if t in NAMED_KINDS:
            # Renamed before its fields are evolved: a reference to it from inside itself (a
            # recursive type) takes the new name.
            renamed = self.rename(j, ns) if rng.random() < 0.12 else None
            out = self.record(j, ns) if t in ("record", "error") else \
                self.enum(j) if t == "enum" else j
            if renamed is not None:
                out = dict(out, name=renamed["name"], aliases=renamed["aliases"])
        elif isinstance(j, str) and j not in PRIMITIVE_NAMES:  # a reference
            full = j if "." in j or not ns else f"{ns}.{j}"
            out = self.renamed.get(full if full in self.names else j, j)
        elif t == "array":
            out = dict(j, items=self.schema(j["items"], ns))
        elif t == "map":
            out = dict(j, values=self.schema(j["values"], ns))
        elif t in PROMOTIONS and not in_union and rng.random() < 0.25 and \
                (isinstance(j, str) or "logicalType" not in j):
            promoted = rng.choice([p for p in PROMOTIONS[t] if not (self.java and p == "float")])
            out = promoted if isinstance(j, str) else dict(j, type=promoted)
        else:
            out = j
        if not (in_union or top) and t != "null" and rng.random() < 0.08:
            out = ["null", out] if rng.random() < 0.7 else [out, "null"]
        elif self.java and not (in_union or top) and out == t and t in PROMOTIONS and \
                rng.random() < 0.15:
            # Into a union whose first branch the value could be promoted to: Java (and
            # parqour) take the branch of its own type.
            out = [rng.choice(PROMOTIONS[t]), t]
        return out

    def record(self, j, ns):
        rng = self.rng
        inner = full_name(j, ns)[1]
        fields = []
        for f in j["fields"]:
            if rng.random() < 0.15 and not has_definitions(f["type"]):
                continue  # the reader drops the field
            written = f["type"]
            only = f.get(ONE_BRANCH)
            if only is not None and rng.random() < 0.5 and not any(
                    has_definitions(b) for i, b in enumerate(written) if i != only):
                # The writer's union, of which the data holds one branch, read as that branch.
                # (Evolved once: a named type in it is renamed or not, and so are references.)
                written = written[only]
            field = dict(f, type=self.schema(written, inner))
            if rng.random() < 0.1:
                field["name"] = f"renamed_{f['name']}"
                field["aliases"] = [f["name"]]
            fields.append(field)
        for _ in range(rng.choice([0, 0, 0, 1, 2])):
            fields.append(self.added(rng.choice(ADDED_FIELDS)))
        if all(is_null_schema(f["type"]) for f in fields):
            fields.append(self.added(("long", 42)))
        if rng.random() < 0.3 and sum(has_named(f["type"]) for f in fields) <= 1:
            rng.shuffle(fields)
        return dict(j, fields=fields)

    def added(self, spec):
        type_, default = spec
        self.count += 1
        name = f"Added{self.count}"
        if type_ == "enum":
            type_ = {"type": "enum", "name": name, "symbols": ["A", "B"]}
        elif type_ == "record":
            type_ = {"type": "record", "name": name, "fields": [{"name": "x", "type": "int"}]}
        elif type_ == "fixed":
            type_ = {"type": "fixed", "name": name, "size": 2}
        return {"name": f"added_{self.count}", "type": type_, "default": default}

    def enum(self, j):
        rng = self.rng
        symbols = list(j["symbols"])
        r = rng.random()
        if r < 0.3:
            symbols += [f"NEW{i}" for i in range(rng.randint(1, 2))]
            rng.shuffle(symbols)
            return dict(j, symbols=symbols)
        if r < 0.45 and len(symbols) > 1 and not self.java:
            kept = rng.sample(symbols, rng.randint(1, len(symbols) - 1))
            return dict(j, symbols=kept, default=rng.choice(kept))
        return j

    def union(self, branches, ns):
        rng = self.rng
        out = [self.schema(b, ns, in_union=True) for b in branches]

        def kind(j):
            c = self.python_class(j, ns)
            if self.java:  # Avro's rule only: one branch per type, or per name
                return c if isinstance(j, str) and j not in PRIMITIVE_NAMES or \
                    isinstance(j, dict) and j["type"] in NAMED_KINDS else \
                    (j if isinstance(j, str) else j["type"])
            return COMPETING.get(c, c)

        kinds = set(map(kind, out))
        if rng.random() < 0.25:
            new = [p for p in ["null", "boolean", "int", "long", "float", "double", "string",
                               "bytes"] if kind(p) not in kinds]
            if new:
                out.insert(rng.randint(0, len(out)), rng.choice(new))
        if rng.random() < 0.3 and sum(map(has_named, out)) <= 1:
            rng.shuffle(out)
        return out


ENVELOPE = {"type": "record", "name": "DataWrapper", "namespace": "com.acme.pipeline",
            "fields": [{"name": "dataType", "type": "string"},
                       {"name": "schemaFingerprint", "type": "long"},
                       {"name": "data", "type": "bytes"}]}


def java_fingerprint(schema):
    """Java's SchemaNormalization.parsingFingerprint64 (CRC-64-AVRO of the Parsing Canonical
    Form) as a signed long, computed by fastavro."""
    import fastavro.schema as fs

    from roundtrip import strip_logical  # fastavro refuses some invalid annotations

    pcf = fs.to_parsing_canonical_form(fs.parse_schema(strip_logical(schema)))
    return struct.unpack("<q", bytes.fromhex(fs.fingerprint(pcf, "CRC-64-AVRO")))[0]


def compress(codec, data):
    if codec == "null":
        return data
    if codec == "deflate":
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        return c.compress(data) + c.flush()
    if codec == "snappy":
        return bytes(cramjam.snappy.compress_raw(data)) + struct.pack(">I", zlib.crc32(data))
    if codec == "zstandard":
        return zstandard.ZstdCompressor().compress(data)
    if codec == "bzip2":
        return bz2.compress(data)
    if codec == "xz":
        return lzma.compress(data)
    if codec == "lz4":  # fastavro's: Python's lz4.block.compress (the length, then the block)
        import lz4.block
        return lz4.block.compress(data)
    raise ValueError(codec)


def container(schema_json, codec, records, rng, empty_blocks=True):
    """An object container file: header, then the records in blocks of random sizes (an empty
    block now and then, unless not `empty_blocks`: Avro Java 1.8.2 stops reading at one)."""
    sync = rng.randbytes(16)
    meta = {"avro.schema": json.dumps(schema_json).encode(), "avro.codec": codec.encode()}
    if rng.random() < 0.3:
        meta["user.note"] = rng.randbytes(rng.randint(0, 20))
    out = bytearray(b"Obj\x01")
    out += zigzag(len(meta))
    for k, v in meta.items():
        out += length_prefixed(k.encode()) + length_prefixed(v)
    out += zigzag(0) + sync
    i = 0
    while i < len(records) or (i == 0 and rng.random() < 0.1):
        n = 0 if empty_blocks and rng.random() < 0.05 else \
            rng.randint(1, max(1, len(records) - i))
        n = min(n, len(records) - i, rng.choice([1, 7, 50, 1000]))
        body = compress(codec, b"".join(records[i:i + n]))
        out += zigzag(n) + zigzag(len(body)) + body + sync
        i += n
        if not records:
            break
    return bytes(out)


def main():
    args = sys.argv[1:]
    java = "--evolve-java" in args
    evolve = "--evolve" in args or java
    args = [a for a in args if a not in ("--evolve", "--evolve-java")]
    if len(args) != 3:
        sys.exit(__doc__.split("\n\n")[1])
    out_dir, seed, count = args[0], int(args[1]), int(args[2])
    os.makedirs(out_dir, exist_ok=True)
    for n in range(count):
        rng = random.Random(seed * 1_000_003 + n)
        schemas = Schemas(rng, distinct_in_python=evolve and not java, one_branch_fields=java)
        if rng.random() < 0.9:
            schema, node = schemas.record(0, None)
        else:
            schema, node = schemas.draw(1, None)
        values = Values(rng)
        records = [values.encode(node) for _ in range(rng.choice([0, 1, 5, 40, 300]))]
        # Avro Java 1.8.2 has no zstandard (1.9+) and no lz4 (fastavro's own).
        codec = rng.choice([c for c in CODECS if not (java and c in ("zstandard", "lz4"))])
        name = f"random-{seed}-{n:04}"
        with open(os.path.join(out_dir, f"{name}.avro"), "wb") as f:
            f.write(container(schema, codec, records, rng, empty_blocks=not java))
        print(f"{name}.avro {codec} {len(records)} {json.dumps(schema)}")
        if evolve:
            reader = Evolve(rng, schema, java).schema(schema, None, top=True)
            with open(os.path.join(out_dir, f"{name}.avsc"), "w") as f:
                json.dump(reader, f)
            print(f"{name}.avsc {json.dumps(reader)}")
            # The same records as the pipeline sends them: DataWrapper envelopes naming the
            # writer schema by its fingerprint, which fastavro computes (not parqour).
            with open(os.path.join(out_dir, f"{name}.writer.avsc"), "w") as f:
                json.dump(schema, f)
            fp = java_fingerprint(schema)
            envelopes = [length_prefixed(b"rnd") + zigzag(fp) + length_prefixed(r)
                         for r in records]
            with open(os.path.join(out_dir, f"{name}.envelopes.avro"), "wb") as f:
                f.write(container(ENVELOPE, rng.choice(CODECS), envelopes, rng))


if __name__ == "__main__":
    main()
