#!/usr/bin/env python3
"""The DataFusion baseline of benches/compare.sh: Avro files -> snappy Parquet with DataFusion's
Python package (`pip install datafusion`), as a user would run it:

    COPY (SELECT ... FROM t) TO 'OUT/' STORED AS PARQUET OPTIONS ('format.compression' 'snappy')

usage: datafusion_convert.py [--threads N] [--unions drop|struct] [--compression snappy|zstd]
       OUTPUT_DIR INPUT_DIR

DataFusion reads Avro with arrow-avro, so it gets the same Arrow types as benches/compare/
reference.rs. Avro unions of more than `null` and one type (Arrow unions) need help:

- DataFusion 55 drops the `avro.name`/`avro.namespace` metadata of union branches from the table
  schema it infers, then refuses to adapt the file's own schema to it ("Cannot adapt Union
  child"), even for `count(*)`. The table is therefore registered with the inferred schema with
  that metadata put back.
- The arrow-avro inside DataFusion 55 fails on the second batch of a dense union column
  ("Offsets must be non-negative and within the length of the Array": apache/arrow-rs#10876,
  fixed by #10971 in later arrow-avro releases). So by default (`--unions drop`) union columns are
  left out of the output (`SELECT * EXCEPT (...)`): DataFusion does a little less work than the
  other tools, which only flatters it. With a DataFusion that has the fix, `--unions struct`
  writes each union column as a struct with one field per non-null branch, null where the value
  is null, as parqour and the reference program do
  (`named_struct(..., union_extract(col, branch), ...)`).

Prints the number of rows written on stdout.
"""

import argparse
import sys

import pyarrow as pa
from datafusion import SessionConfig, SessionContext


def with_branch_metadata(schema: pa.Schema) -> pa.Schema:
    """The schema with the Avro name metadata arrow-avro puts on named union branches."""
    for i, field in enumerate(schema):
        if not pa.types.is_union(field.type):
            continue
        branches = []
        for branch in field.type:
            named = pa.types.is_struct(branch.type) or pa.types.is_fixed_size_binary(branch.type) or (
                pa.types.is_dictionary(branch.type)
            )
            if named:
                namespace, _, name = branch.name.rpartition(".")
                meta = {"avro.name": name}
                if namespace:
                    meta["avro.namespace"] = namespace
                branch = branch.with_metadata(meta)
            branches.append(branch)
        if field.type.mode == "dense":
            union = pa.dense_union(branches, type_codes=list(field.type.type_codes))
        else:
            union = pa.sparse_union(branches, type_codes=list(field.type.type_codes))
        schema = schema.set(i, field.with_type(union))
    return schema


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def select_list(schema: pa.Schema, unions: str) -> str:
    """Every column; union columns as structs of their non-null branches, or left out."""
    out = []
    for field in schema:
        col = quote(field.name)
        if not pa.types.is_union(field.type):
            out.append(col)
            continue
        if unions == "drop":
            continue
        members = [b for b in field.type if not pa.types.is_null(b.type)]
        args = ", ".join(
            f"{literal(b.name)}, union_extract({col}, {literal(b.name)})" for b in members
        )
        nulls = [b.name for b in field.type if pa.types.is_null(b.type)]
        value = f"named_struct({args})"
        if nulls:
            tags = ", ".join(literal(n) for n in nulls)
            value = f"CASE WHEN union_tag({col}) IN ({tags}) THEN NULL ELSE {value} END"
        out.append(f"{value} AS {col}")
    return ",\n  ".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=0, help="target partitions (0: one per core)")
    ap.add_argument(
        "--unions",
        choices=["drop", "struct"],
        default="drop",
        help="union columns: left out (default, see above) or written as structs",
    )
    ap.add_argument(
        "--compression", choices=["snappy", "zstd"], default="snappy", help="zstd: level 3"
    )
    ap.add_argument("output", help="output folder (Parquet files are written inside)")
    ap.add_argument("input", help="folder of .avro files")
    args = ap.parse_args()

    config = SessionConfig()
    if args.threads > 0:
        config = config.with_target_partitions(args.threads)
    probe = SessionContext(config)
    probe.register_avro("probe", args.input)
    schema = with_branch_metadata(probe.table("probe").schema())

    ctx = SessionContext(config)
    ctx.register_avro("t", args.input, schema=schema)
    out = args.output.rstrip("/") + "/"
    codec = "zstd(3)" if args.compression == "zstd" else "snappy"
    sql = (
        f"COPY (SELECT\n  {select_list(schema, args.unions)}\nFROM t) TO {literal(out)} "
        f"STORED AS PARQUET OPTIONS ('format.compression' '{codec}')"
    )
    dropped = [f.name for f in schema if pa.types.is_union(f.type)] if args.unions == "drop" else []
    if dropped:
        print(f"datafusion_convert: left out union columns: {', '.join(dropped)}", file=sys.stderr)
    result = ctx.sql(sql).collect()
    rows = result[0].column(0)[0].as_py() if result and result[0].num_rows else 0
    print(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
