#!/usr/bin/env python3
"""Times Avro -> snappy Parquet converters on one dataset; run by benches/compare.sh.

Runs the tools alternately (A B C, A B C, ...) for --rounds rounds, each as a child process
measured with wait4(): wall seconds, cpu seconds (user + sys, the child and everything it
waited for) and peak RSS. After every run it counts the rows of the output with pyarrow (from the
Parquet footers) and fails unless they equal the records in the input. Prints every run, then
the medians and the ratios.
"""

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent


def tool_commands(args, name: str, out: Path):
    data = str(args.data)
    threads = ["--threads", str(args.threads)] if args.threads else []
    if args.envelopes:
        # parqour reads the same events as DataWrapper envelopes, through their registry.
        source = [str(args.envelopes), "--registry", str(args.envelopes / "registry")]
    else:
        source = [data]
    parqour = [args.parqour, "convert", *source, "--output", str(out), "--overwrite"]
    if args.parquet == "zstd":
        parqour += ["--compression", "zstd:3"]
    zstd = ["--zstd"] if args.parquet == "zstd" else []
    if name == "parqour":
        return [*parqour, *threads]
    if name == "parqour-uuid16":
        return [*parqour, "--uuid", "binary", *threads]
    if name == "parqour-delta":
        return [*parqour, "--byte-array-encoding", "delta-length", *threads]
    if name in ("parqour-1t", "parqour-1core"):
        return [*parqour, "--threads", "1"]
    if name == "baseline":
        if not args.baseline:
            raise SystemExit("compare: the baseline tool needs --baseline BIN")
        return [args.baseline, *parqour[1:], *threads]
    if name == "reference":
        return [args.reference, *zstd, str(out / "reference.parquet"), data]
    if name == "datafusion":
        codec = ["--compression", args.parquet]
        return [sys.executable, str(HERE / "datafusion_convert.py"), *threads, *codec, str(out), data]
    raise SystemExit(
        f"compare: unknown tool {name!r} (parqour, parqour-uuid16, parqour-delta, parqour-1t, parqour-1core, baseline, reference, datafusion)"
    )


def warm(paths):
    """Reads every file once, so that it is in the page cache."""
    for p in paths:
        with open(p, "rb") as f:
            while f.read(1 << 24):
                pass


def one_core():
    """Pins the child to the first cpu it may use: `parqour-1core` is parqour on a 1-core
    machine (its reader, driver and upload threads share that core, unlike `--threads 1`)."""
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def measure(cmd, log: Path, pin=None):
    """Runs cmd; returns (exit code, wall s, cpu s, peak RSS bytes)."""
    with open(log, "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=err, stderr=subprocess.STDOUT, preexec_fn=pin)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    return proc.returncode, wall, cpu, usage.ru_maxrss * 1024  # Linux: KiB


def parquet_files(out: Path):
    return sorted(p for p in out.rglob("*.parquet") if p.is_file())


def output_stats(out: Path):
    """(rows, bytes, files, compressed bytes per top-level column) of the Parquet under out."""
    files = parquet_files(out)
    rows, columns = 0, {}
    for p in files:
        meta = pq.ParquetFile(p).metadata
        rows += meta.num_rows
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            for c in range(group.num_columns):
                chunk = group.column(c)
                top = chunk.path_in_schema.split(".", 1)[0]
                columns[top] = columns.get(top, 0) + chunk.total_compressed_size
    return rows, sum(p.stat().st_size for p in files), len(files), columns


def size_ratio(a, b) -> str:
    """Output size of a vs b: whole files, and the columns both wrote if they differ."""
    (a_bytes, a_cols), (b_bytes, b_cols) = a, b
    text = fmt_ratio(a_bytes, b_bytes)
    common = a_cols.keys() & b_cols.keys()
    if common != a_cols.keys() or common != b_cols.keys():
        ca = sum(a_cols[c] for c in common)
        cb = sum(b_cols[c] for c in common)
        text += f" ({fmt_ratio(ca, cb)} on the {len(common)} columns both wrote)"
    return text


def fmt_ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b > 0 else "-"


def main() -> int:
    ap = argparse.ArgumentParser(description="Time Avro -> Parquet converters, alternating.")
    ap.add_argument("--data", type=Path, required=True, help="folder of .avro files")
    ap.add_argument("--records", type=int, required=True, help="records in the data")
    ap.add_argument("--out", type=Path, required=True, help="scratch folder for the outputs")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="parqour and DataFusion threads (0: all cores)")
    ap.add_argument("--tools", default="parqour,parqour-1core,reference,datafusion")
    ap.add_argument("--parquet", choices=["snappy", "zstd"], default="snappy", help="output codec (zstd: level 3)")
    ap.add_argument("--parqour", required=True, help="parqour binary")
    ap.add_argument("--reference", required=True, help="reference example binary")
    ap.add_argument("--baseline", help="another parqour binary (an earlier commit's), the baseline tool")
    ap.add_argument(
        "--envelopes",
        type=Path,
        help="the same records as DataWrapper envelopes, with their registry under registry/: "
        "the parqour tools read these, the others --data",
    )
    args = ap.parse_args()

    tools = [t for t in args.tools.split(",") if t]
    avro = sorted(args.data.glob("*.avro"))
    bytes_in = sum(p.stat().st_size for p in avro)
    if not avro:
        raise SystemExit(f"compare: no .avro files in {args.data}")
    # Warm the page cache so the first tool does not pay for the disk.
    warm(avro)

    print(
        f"data: {args.data} ({len(avro)} files, {bytes_in / 1e6:.1f} MB, {args.records:,} records)"
    )
    if args.envelopes:
        wrapped = sorted(args.envelopes.glob("*.avro"))
        if not wrapped:
            raise SystemExit(f"compare: no .avro files in {args.envelopes}")
        warm(wrapped)
        print(
            f"parqour reads them as envelopes: {args.envelopes} "
            f"({sum(p.stat().st_size for p in wrapped) / 1e6:.1f} MB, registry under registry/); "
            "MB/s are of the plain files"
        )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cpus, {cpu_model()}; "
        f"load average at start {os.getloadavg()[0]:.2f}"
    )
    print(
        f"threads: {args.threads or 'all cores'} (reference: 1); rounds: {args.rounds}; "
        f"Parquet codec: {args.parquet}\n"
    )
    print(f"{'round':>5} {'tool':<15} {'wall s':>7} {'cpu s':>7} {'RSS MiB':>8} {'out MB':>8}")

    runs = {t: [] for t in tools}
    out_bytes = {}
    for r in range(1, args.rounds + 1):
        # A B C, C B A, A B C, ...: a tool's place in the round (after which tool, how long
        # into the round) varies, so a drift of the machine's speed within rounds does not
        # favour one tool every round.
        for t in tools if r % 2 else tools[::-1]:
            out = args.out / t
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            log = args.out / f"{t}.log"
            pin = one_core if t == "parqour-1core" else None
            code, wall, cpu, rss = measure(tool_commands(args, t, out), log, pin)
            if code != 0:
                sys.stderr.write(log.read_text(errors="replace")[-4000:])
                raise SystemExit(f"compare: {t} failed (exit {code}); its output is in {log}")
            rows, size, nfiles, columns = output_stats(out)
            if rows != args.records:
                raise SystemExit(
                    f"compare: {t} wrote {rows} rows in {nfiles} files under {out}, "
                    f"expected {args.records}"
                )
            runs[t].append((wall, cpu, rss))
            out_bytes[t] = (size, columns)
            print(f"{r:>5} {t:<15} {wall:7.2f} {cpu:7.2f} {rss / 2**20:8.0f} {size / 1e6:8.1f}")
            sys.stdout.flush()
    print(f"\nload average at end {os.getloadavg()[0]:.2f}; row counts checked: all {args.records:,}\n")

    med = {
        t: tuple(statistics.median(x[i] for x in runs[t]) for i in range(3)) for t in tools
    }
    header = (
        f"{'median of ' + str(args.rounds):<15} {'wall s':>7} {'cpu s':>7} {'RSS MiB':>8} "
        f"{'MB/s':>7} {'rec/cpu-s':>10} {'out MB':>8}"
    )
    print(header)
    print("-" * len(header))
    for t in tools:
        wall, cpu, rss = med[t]
        print(
            f"{t:<15} {wall:7.2f} {cpu:7.2f} {rss / 2**20:8.0f} {bytes_in / 1e6 / wall:7.1f} "
            f"{args.records / cpu:10,.0f} {out_bytes[t][0] / 1e6:8.1f}"
        )
    for base in ("baseline", "reference", "datafusion"):
        if base not in med:
            continue
        for t in (x for x in tools if x.startswith("parqour")):
            w, c, m = med[t]
            bw, bc, bm = med[base]
            print(
                f"{t} vs {base}: throughput {fmt_ratio(bw, w)}, records per cpu-s "
                f"{fmt_ratio(bc, c)}, peak RSS {fmt_ratio(m, bm)}, output size "
                f"{size_ratio(out_bytes[t], out_bytes[base])}"
            )
    print("\ncompressed MB per top-level column (last round):")
    names = []
    for t in tools:
        names += [c for c in out_bytes[t][1] if c not in names]
    print(f"  {'column':<14}" + "".join(f"{t:>15}" for t in tools))
    for c in names:
        cells = "".join(
            f"{out_bytes[t][1][c] / 1e6:15.2f}" if c in out_bytes[t][1] else f"{'-':>15}"
            for t in tools
        )
        print(f"  {c:<14}{cells}")
    if "parqour" in med and "parqour-1t" in med and args.threads != 1:
        print(f"parqour thread scaling (1 -> {args.threads or os.cpu_count()} threads): {fmt_ratio(med['parqour-1t'][0], med['parqour'][0])}")
    if "parqour" in med and "parqour-1core" in med:
        cores = len(os.sched_getaffinity(0))
        print(f"parqour core scaling (1 core -> {cores} cores): {fmt_ratio(med['parqour-1core'][0], med['parqour'][0])}")
    return 0


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown cpu"


if __name__ == "__main__":
    sys.exit(main())
