#!/usr/bin/env python3
"""Benchmark data of other shapes than the demo's ad events, for benches/compare.sh --shape,
written by fastavro (an Avro implementation independent of parqour's writer):

    shapes.py SHAPE --dir DIR --records N --files F --codec C

- metrics: flat records of numbers (8 longs of growing ranges, 6 doubles, 4 ints, 3 booleans,
  a timestamp-millis), 4 low-cardinality strings, 2 nullable longs and a nullable id string;
  what telemetry and ad-reporting pipelines write.
- logs: log lines: a timestamp-micros, an enum level, a host, a message of 5-30 words, a
  nullable JSON payload (a few hundred bytes) and an array of tags; text-heavy, strings of
  varied lengths.
- otel: OpenTelemetry-style spans: fixed-size trace and span ids, a name, times, an enum status,
  a map of 6 resource attributes, a map of 10-30 span attributes (of 60 keys; values of few or
  many distinct strings) and an array of 0-5 event strings.

Blocks of ~64 KB (fastavro's sync_interval, as Java and Firehose write them); codecs null,
deflate, snappy (cramjam), zstandard (zstandard), bzip2, xz. Files are DIR/part-NNN.avro, each
written under a temporary name and renamed; file i is seeded with i, so the same arguments give
the same bytes whatever the number of processes.
"""

import argparse
import json
import multiprocessing
import os
import random
import string
import sys

import fastavro

COUNTRIES = ["US", "DE", "FR", "GB", "JP", "BR", "IN", "CA", "ES", "IT", "NL", "SE", "PL", "MX", "AU"]
DEVICES = ["ios", "android", "web", "tv", "console"]
WORDS = ["request", "user", "session", "timeout", "error", "ok", "cache", "miss", "hit", "db",
         "query", "latency", "ms", "retry", "upstream", "GET", "POST", "/api/v1/items",
         "/api/v2/users", "status"]


def metrics_schema():
    fields = [{"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}}]
    fields += [{"name": f"l{i}", "type": "long"} for i in range(8)]
    fields += [{"name": f"d{i}", "type": "double"} for i in range(6)]
    fields += [{"name": f"i{i}", "type": "int"} for i in range(4)]
    fields += [{"name": f"b{i}", "type": "boolean"} for i in range(3)]
    fields += [{"name": n, "type": "string"} for n in ("country", "device", "app", "version")]
    fields += [
        {"name": "nl0", "type": ["null", "long"]},
        {"name": "nl1", "type": ["null", "long"]},
        {"name": "user", "type": ["null", "string"]},
    ]
    return {"type": "record", "name": "Metric", "namespace": "bench", "fields": fields}


def metrics_record(rnd, k):
    r = {"ts": 1764000000000 + k * 7}
    for i in range(8):
        r[f"l{i}"] = rnd.randrange(10 ** (i + 1))
    for i in range(6):
        r[f"d{i}"] = rnd.random() * 10**i
    for i in range(4):
        r[f"i{i}"] = rnd.randrange(1000 * (i + 1))
    for i in range(3):
        r[f"b{i}"] = rnd.random() < 0.3
    r["country"] = rnd.choice(COUNTRIES)
    r["device"] = rnd.choice(DEVICES)
    r["app"] = "app-%d" % rnd.randrange(200)
    r["version"] = "%d.%d.%d" % (rnd.randrange(5), rnd.randrange(20), rnd.randrange(50))
    r["nl0"] = None if rnd.random() < 0.5 else rnd.randrange(10**6)
    r["nl1"] = None if rnd.random() < 0.9 else rnd.randrange(10**12)
    r["user"] = None if rnd.random() < 0.2 else "u%08x" % rnd.randrange(1 << 32)
    return r


def logs_schema():
    return {
        "type": "record",
        "name": "Log",
        "namespace": "bench",
        "fields": [
            {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-micros"}},
            {"name": "level", "type": {"type": "enum", "name": "Level",
                                       "symbols": ["DEBUG", "INFO", "WARN", "ERROR"]}},
            {"name": "host", "type": "string"},
            {"name": "message", "type": "string"},
            {"name": "payload", "type": ["null", "string"]},
            {"name": "tags", "type": {"type": "array", "items": "string"}},
        ],
    }


def logs_record(rnd, k):
    message = " ".join(rnd.choice(WORDS) for _ in range(rnd.randrange(5, 30)))
    payload = None
    if rnd.random() >= 0.1:
        items = [
            {"sku": "sku-%d" % rnd.randrange(10**5), "qty": rnd.randrange(9),
             "price": round(rnd.random() * 100, 2)}
            for _ in range(rnd.randrange(1, 12))
        ]
        note = "".join(rnd.choice(string.ascii_letters) for _ in range(rnd.randrange(0, 60)))
        payload = json.dumps({"id": rnd.randrange(10**9), "items": items, "note": note})
    return {
        "ts": 1764000000000000 + k * 13,
        "level": rnd.choice(["DEBUG", "INFO", "INFO", "INFO", "WARN", "ERROR"]),
        "host": "host-%03d" % rnd.randrange(300),
        "message": message,
        "payload": payload,
        "tags": [rnd.choice(WORDS) for _ in range(rnd.randrange(0, 5))],
    }


# The shapes session 25 found slow and made faster (README, "Latest results").
_SPARSE_TYPES = ["long", "double", "string", "int", "boolean", "long", "string", "double"]
# Field i of `sparse` is set with a probability between 1% and 20%.
_SPARSE_P = [0.01 + 0.19 * ((i * 7) % 48) / 47 for i in range(48)]


def sparse_schema():
    fields = [{"name": "id", "type": "long"},
              {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}}]
    for i in range(48):
        fields.append({"name": f"f{i}", "type": ["null", _SPARSE_TYPES[i % 8]], "default": None})
    return {"type": "record", "name": "Sparse", "fields": fields}


def sparse_record(rnd, k):
    r = {"id": k, "ts": 1764000000000 + k * 5}
    for i in range(48):
        if rnd.random() >= _SPARSE_P[i]:
            r[f"f{i}"] = None
            continue
        t = _SPARSE_TYPES[i % 8]
        if t == "long":
            r[f"f{i}"] = rnd.randrange(10 ** (3 + i % 10))
        elif t == "double":
            r[f"f{i}"] = round(rnd.gauss(100, 30), 2) if i % 2 else rnd.random() * 1e4
        elif t == "string":
            r[f"f{i}"] = WORDS[rnd.randrange(20)] + "-%d" % rnd.randrange(10 ** (1 + i % 5))
        elif t == "int":
            r[f"f{i}"] = rnd.randrange(1000 * (1 + i % 7))
        else:
            r[f"f{i}"] = rnd.random() < 0.4
    return r


# Flag b{i} is true with a probability between 0.01 and 0.99.
_FLAG_P = [0.01 + 0.98 * ((i * 13) % 40) / 39 for i in range(40)]


def flags_schema():
    fields = [{"name": "id", "type": "long"}]
    fields += [{"name": f"b{i}", "type": "boolean"} for i in range(40)]
    fields += [{"name": f"nb{i}", "type": ["null", "boolean"]} for i in range(8)]
    return {"type": "record", "name": "Flags", "fields": fields}


def flags_record(rnd, k):
    r = {"id": k}
    for i in range(40):
        r[f"b{i}"] = rnd.random() < _FLAG_P[i]
    for i in range(8):
        r[f"nb{i}"] = None if rnd.random() < 0.3 else rnd.random() < 0.5
    return r


def deep_schema():
    leaf = {"type": "record", "name": "Leaf", "fields": [
        {"name": "x", "type": "long"}, {"name": "y", "type": {"type": "array", "items": "long"}},
        {"name": "z", "type": ["null", "string"]}]}
    l4 = {"type": "record", "name": "L4", "fields": [
        {"name": "m", "type": {"type": "map", "values": leaf}}, {"name": "n", "type": "int"}]}
    l3 = {"type": "record", "name": "L3", "fields": [
        {"name": "items", "type": {"type": "array", "items": l4}}, {"name": "tag", "type": "string"}]}
    l2 = {"type": "record", "name": "L2", "fields": [
        {"name": "inner", "type": l3}, {"name": "w", "type": "double"}]}
    return {"type": "record", "name": "Deep", "fields": [
        {"name": "id", "type": "long"},
        {"name": "groups", "type": {"type": "map", "values": {"type": "array", "items": l2}}}]}


def deep_record(rnd, k):
    ri = rnd.randrange

    def leaf():
        return {"x": ri(10**9), "y": [ri(1000) for _ in range(ri(0, 4))],
                "z": None if ri(3) == 0 else WORDS[ri(20)]}

    def l4():
        return {"m": {"k%d" % j: leaf() for j in range(ri(1, 4))}, "n": ri(100)}

    def l2():
        return {"inner": {"items": [l4() for _ in range(ri(1, 5))], "tag": WORDS[ri(20)]},
                "w": rnd.random()}
    return {"id": k, "groups": {"g%d" % j: [l2() for _ in range(ri(1, 5))] for j in range(ri(2, 5))}}


# Six string fields of 3 to 100 distinct values.
_LOW = [["val-%d-%d" % (i, j) + "x" * (j % 7) for j in range(n)]
        for i, n in enumerate([3, 10, 30, 100, 5, 50])]


def lowcard_schema():
    fields = [{"name": "id", "type": "long"}]
    fields += [{"name": f"s{i}", "type": "string"} for i in range(6)]
    fields += [{"name": "ns", "type": ["null", "string"]}]
    return {"type": "record", "name": "Card", "fields": fields}


def lowcard_record(rnd, k):
    r = {"id": k}
    for i in range(6):
        values = _LOW[i]
        r[f"s{i}"] = values[rnd.randrange(len(values))] + ("-%d" % i) + "abcdefgh"
    r["ns"] = None if rnd.random() < 0.2 else _LOW[3][rnd.randrange(100)] + "zzzzzzzzzz"
    return r


def tiny_schema():
    return {"type": "record", "name": "Tiny", "fields": [
        {"name": "n", "type": "int"},
        {"name": "id", "type": "long"},
        {"name": "code", "type": "string"},
    ]}


def tiny_record(rnd, k):
    return {"n": rnd.randrange(1000), "id": k,
            "code": "".join(rnd.choice(string.ascii_uppercase) for _ in range(4))}


# OpenTelemetry-style spans: ids, a name, times, a status, and the maps of string attributes
# (and an array of string events) that tracing and telemetry pipelines carry.
_ATTR_KEYS = ["http.method", "http.status_code", "http.route", "http.url", "http.user_agent",
              "net.peer.name", "net.peer.port", "db.system", "db.statement", "db.name",
              "rpc.system", "rpc.service", "rpc.method", "messaging.system", "messaging.destination",
              "user.id", "tenant.id", "region", "zone", "feature.flag"] + \
             ["app.attr.%02d" % i for i in range(40)]
_SPAN_NAMES = ["GET /api/v1/items", "POST /api/v1/orders", "SELECT orders", "redis GET",
               "kafka publish", "grpc Check", "render", "auth"] + ["op-%d" % i for i in range(22)]


def otel_schema():
    attrs = {"type": "map", "values": "string"}
    return {"type": "record", "name": "Span", "namespace": "bench", "fields": [
        {"name": "trace_id", "type": {"type": "fixed", "name": "TraceId", "size": 16}},
        {"name": "span_id", "type": {"type": "fixed", "name": "SpanId", "size": 8}},
        {"name": "parent_span_id", "type": ["null", {"type": "fixed", "name": "ParentId", "size": 8}]},
        {"name": "name", "type": "string"},
        {"name": "start_ns", "type": "long"},
        {"name": "duration_ns", "type": "long"},
        {"name": "status", "type": {"type": "enum", "name": "Status",
                                    "symbols": ["UNSET", "OK", "ERROR"]}},
        {"name": "resource", "type": attrs},
        {"name": "attributes", "type": attrs},
        {"name": "events", "type": {"type": "array", "items": "string"}},
    ]}


def _attr_value(rnd, key):
    h = sum(map(ord, key)) % 4
    if h == 0:
        return "v%d" % rnd.randrange(8)
    if h == 1:
        return str(rnd.randrange(10**6))
    if h == 2:
        return "%016x" % rnd.getrandbits(64)
    return "/%s/%s/%d" % (rnd.choice(WORDS), rnd.choice(WORDS), rnd.randrange(10**4))


def otel_record(rnd, k):
    keys = rnd.sample(_ATTR_KEYS, rnd.randrange(10, 31))
    return {
        "trace_id": rnd.getrandbits(128).to_bytes(16, "little"),
        "span_id": rnd.getrandbits(64).to_bytes(8, "little"),
        "parent_span_id": None if rnd.random() < 0.2 else rnd.getrandbits(64).to_bytes(8, "little"),
        "name": rnd.choice(_SPAN_NAMES),
        "start_ns": 1764000000000000000 + k * 1000 + rnd.randrange(1000),
        "duration_ns": rnd.randrange(10**9),
        "status": rnd.choice(["UNSET", "UNSET", "OK", "ERROR"]),
        "resource": {"service.name": "svc-%d" % rnd.randrange(20),
                     "host.name": "host-%03d" % rnd.randrange(200),
                     "deployment.environment": rnd.choice(["prod", "staging"]),
                     "telemetry.sdk.language": rnd.choice(["java", "go", "python"]),
                     "service.version": "1.%d.%d" % (rnd.randrange(5), rnd.randrange(30)),
                     "cloud.region": rnd.choice(["us-east-1", "eu-west-1", "ap-south-1"])},
        "attributes": {key: _attr_value(rnd, key) for key in keys},
        "events": [rnd.choice(WORDS) for _ in range(rnd.randrange(0, 6))],
    }


SHAPES = {
    "metrics": (metrics_schema, metrics_record),
    "logs": (logs_schema, logs_record),
    "sparse": (sparse_schema, sparse_record),
    "flags": (flags_schema, flags_record),
    "deep": (deep_schema, deep_record),
    "lowcard": (lowcard_schema, lowcard_record),
    "tiny": (tiny_schema, tiny_record),
    "otel": (otel_schema, otel_record),
}


def write_file(job):
    shape, path, first, n, codec, seed = job
    schema, record = SHAPES[shape]
    rnd = random.Random(seed)
    parsed = fastavro.parse_schema(schema())
    tmp = path + ".tmp"
    with open(tmp, "wb") as out:
        records = (record(rnd, first + k) for k in range(n))
        fastavro.writer(out, parsed, records, codec=codec, sync_interval=64000)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("shape", choices=sorted(SHAPES))
    ap.add_argument("--dir", required=True)
    ap.add_argument("--records", type=int, default=2_000_000)
    ap.add_argument("--files", type=int, default=16)
    ap.add_argument("--codec", default="deflate",
                    choices=["null", "deflate", "snappy", "zstandard", "bzip2", "xz"])
    args = ap.parse_args()
    if args.records < 1 or args.files < 1:
        sys.exit("shapes.py: --records and --files must be positive")
    os.makedirs(args.dir, exist_ok=True)
    per_file = -(-args.records // args.files)
    jobs = []
    for f in range(args.files):
        first = f * per_file
        n = min(per_file, args.records - first)
        if n > 0:
            jobs.append((args.shape, os.path.join(args.dir, f"part-{f:03d}.avro"), first, n,
                         args.codec, f))
    with multiprocessing.Pool(min(len(jobs), os.cpu_count() or 1)) as pool:
        pool.map(write_file, jobs)


if __name__ == "__main__":
    main()
