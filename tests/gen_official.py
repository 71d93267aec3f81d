#!/usr/bin/env python3
"""Avro files written by the Apache Avro project's own Python implementation (the `avro`
package), an Avro writer independent of this crate, of fastavro and of the apache-avro crate.

    python3 tests/gen_official.py DIR

Writes DIR/official-<codec>.avro for the codecs that implementation supports without extra
packages (null, deflate, bzip2, zstandard): 1,500 records each of a schema with every Avro type
and the logical types Athena can hold, nullable and multi-branch unions, nested arrays and
maps, namespaces, extreme numbers (inf, -0.0, subnormals, i64 bounds) and multi-byte UTF-8, in
the blocks that implementation cuts (about 16 KB). Every file holds the same records, the same
on every run (the sync markers are random); the first two hold the int and long bounds. tests/cli.rs converts them and checks them with tests/roundtrip.py.
"""

import datetime as dt
import decimal
import json
import os
import random
import sys
import uuid
import warnings

import avro.datafile
import avro.io
import avro.schema

# The package does not know local-timestamp-millis and reads it as a long, which is what the
# test needs; its warning would only add noise.
warnings.filterwarnings("ignore", category=avro.errors.IgnoredLogicalType)

schema_json = {
 "type":"record","name":"Everything","namespace":"org.example.test",
 "fields":[
  {"name":"b","type":"boolean"},
  {"name":"i","type":"int"},
  {"name":"l","type":"long"},
  {"name":"f","type":"float"},
  {"name":"d","type":"double"},
  {"name":"s","type":"string"},
  {"name":"by","type":"bytes"},
  {"name":"e","type":{"type":"enum","name":"Color","symbols":["RED","GREEN","BLUE"]}},
  {"name":"fx","type":{"type":"fixed","name":"F4","size":4}},
  {"name":"arr","type":{"type":"array","items":["null","long"]}},
  {"name":"m","type":{"type":"map","values":{"type":"array","items":"string"}}},
  {"name":"opt","type":["null","string"],"default":None},
  {"name":"optr","type":["null",{"type":"record","name":"Inner","fields":[{"name":"x","type":"int"},{"name":"y","type":["string","null"]}]}],"default":None},
  {"name":"u","type":["null","int","string","Inner"]},
  {"name":"dec","type":{"type":"bytes","logicalType":"decimal","precision":20,"scale":4}},
  {"name":"decf","type":{"type":"fixed","name":"D12","size":12,"logicalType":"decimal","precision":25,"scale":2}},
  {"name":"uid","type":{"type":"string","logicalType":"uuid"}},
  {"name":"date","type":{"type":"int","logicalType":"date"}},
  {"name":"tms","type":{"type":"int","logicalType":"time-millis"}},
  {"name":"tus","type":{"type":"long","logicalType":"time-micros"}},
  {"name":"tsm","type":{"type":"long","logicalType":"timestamp-millis"}},
  {"name":"tsu","type":{"type":"long","logicalType":"timestamp-micros"}},
  {"name":"ltsm","type":{"type":"long","logicalType":"local-timestamp-millis"}},
  {"name":"nested","type":{"type":"array","items":{"type":"map","values":["null","Inner"]}}}
 ]}
schema = avro.schema.parse(json.dumps(schema_json))
rng = random.Random(5)
def rec(k):
    inner = lambda: {"x": rng.randint(-2**31, 2**31-1), "y": rng.choice([None, "", "héllo", "z"*rng.randint(0,300)])}
    # The first two records of each file hold the integer bounds.
    bound = [min, max][k % 2] if k < 2 else None
    return {
      "b": rng.random()<0.5,
      "i": bound(-2**31, 2**31-1) if bound else rng.randint(-2**31,2**31-1),
      "l": bound(-2**63, 2**63-1) if bound else rng.randint(-2**63,2**63-1),
      "f": rng.choice([0.0,-0.0,1.5,float('inf'),float('-inf'),3.4e38, 1e-45]),
      "d": rng.choice([0.0,-0.0,2.5e300,float('inf'),-1e-320, 1/3]),
      "s": rng.choice(["", "ascii", "ünïcødé ✓ 😀", "x"*rng.randint(0,5000)]),
      "by": bytes(rng.getrandbits(8) for _ in range(rng.randint(0,40))),
      "e": rng.choice(["RED","GREEN","BLUE"]), "fx": bytes(rng.getrandbits(8) for _ in range(4)),
      "arr": [rng.choice([None, rng.randint(-2**63,2**63-1)]) for _ in range(rng.randint(0,6))],
      "m": {f"k{j}": [str(rng.random()) for _ in range(rng.randint(0,3))] for j in range(rng.randint(0,4))},
      "opt": rng.choice([None, "v"+str(k)]),
      "optr": rng.choice([None, inner()]),
      "u": rng.choice([None, rng.randint(-5,5), "str", inner()]),
      "dec": decimal.Decimal(rng.randint(-10**19+1, 10**19-1)).scaleb(-4),
      "decf": decimal.Decimal(rng.randint(-10**24+1, 10**24-1)).scaleb(-2),
      "uid": str(uuid.UUID(int=rng.getrandbits(128))),
      "date": dt.date(1970,1,1)+dt.timedelta(days=rng.randint(-700000, 2000000)),
      "tms": dt.time(rng.randint(0,23), rng.randint(0,59), rng.randint(0,59), rng.randint(0,999)*1000),
      "tus": dt.time(rng.randint(0,23), rng.randint(0,59), rng.randint(0,59), rng.randint(0,999999)),
      "tsm": dt.datetime(1970,1,1,tzinfo=dt.timezone.utc)+dt.timedelta(milliseconds=rng.randint(-10**12, 10**13)),
      "tsu": dt.datetime(1970,1,1,tzinfo=dt.timezone.utc)+dt.timedelta(microseconds=rng.randint(-10**15, 10**16)),
      "ltsm": rng.randint(-10**12, 10**13),
      "nested": [{f"n{j}": rng.choice([None, inner()]) for j in range(rng.randint(0,3))} for _ in range(rng.randint(0,3))],
    }


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for codec in ["null", "deflate", "bzip2", "zstandard"]:
        rng.seed(5)
        with open(os.path.join(out, f"official-{codec}.avro"), "wb") as fo:
            w = avro.datafile.DataFileWriter(fo, avro.io.DatumWriter(), schema, codec=codec)
            for k in range(1500):
                w.append(rec(k))
            w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
