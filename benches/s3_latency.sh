#!/usr/bin/env bash
# How much S3's time to first byte slows `parqour convert`, in one run:
#
#   bash benches/s3_latency.sh [--latency MS] [--data DIR] [--rounds N] [--no-build]
#
# Serves DIR's *.avro (default: the dataset of benches/compare.sh, generated if missing) from
# tests/flaky_s3.py, a read-only S3 look-alike on 127.0.0.1 that delays every response by MS
# milliseconds (default 20; S3 answers in 10-50), and times, alternating, `parqour convert` of
# the files from there and from the local folder. Prints wall, cpu, peak RSS and MB/s of Avro for
# each (median of the rounds) and the ratio. Reading from S3 is bound by the bytes in flight per
# object (`SourceOptions::remote_read_ahead` ranges of 1 MiB); this shows whether they suffice.
# The server is Python and runs on the same cores, so the remote runs also pay for serving.
set -euo pipefail
cd "$(dirname "$0")/.."

latency=20
data=
rounds=3
build=1
while [[ $# -gt 0 ]]; do
  case $1 in
    --latency) latency=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "s3_latency.sh: unknown argument $1 (see --help)" >&2; exit 64 ;;
  esac
done
target=${CARGO_TARGET_DIR:-target}
if (( build )); then
  cargo build --release --quiet --bin parqour --example events
fi
if [[ -z $data ]]; then
  data=$target/compare-data/deflate-2000000-16
  if [[ ! -f $data/.complete ]]; then
    rm -rf "$data"
    "$target/release/examples/events" --dir "$data" --records 2000000 --files 16 --codec deflate
    touch "$data/.complete"
  fi
fi
data=$(cd "$data" && pwd)

work=$(mktemp -d)
trap 'kill "${server:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/root/raw"
urls=()
for f in "$data"/*.avro; do
  ln -s "$f" "$work/root/raw/$(basename "$f")"
  urls+=("s3://raw/$(basename "$f")")
done
FLAKY_S3_LATENCY_MS=$latency python3 tests/flaky_s3.py "$work/root" - >"$work/port" 2>/dev/null &
server=$!
for _ in $(seq 50); do [[ -s $work/port ]] && break; sleep 0.1; done
port=$(cat "$work/port")
bytes=$(stat -c %s "$data"/*.avro | awk '{ n += $1 } END { print n }')

run() {  # run NAME INPUT...: prints "NAME wall cpu rss_kib"
  local name=$1; shift
  rm -rf "$work/out"
  /usr/bin/time -f "$name %e %U %S %M" -o "$work/time" \
    env AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 \
      AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ALLOW_HTTP=true \
      "$target/release/parqour" --log warn convert "$@" --output "$work/out" >/dev/null
  awk '{print $1, $2, $3 + $4, $5}' "$work/time"
}

echo "data: $data ($((bytes / 1000000)) MB); latency ${latency} ms per request; $rounds rounds"
for _ in $(seq "$rounds"); do
  run local "$data"
  run s3 "${urls[@]}"
done | python3 -c '
import sys, statistics as st
bytes_in = int(sys.argv[1]); runs = {}
for line in sys.stdin:
    name, wall, cpu, rss = line.split(); runs.setdefault(name, []).append((float(wall), float(cpu), int(rss)))
med = {k: [st.median(r[i] for r in v) for i in range(3)] for k, v in runs.items()}
for k, (wall, cpu, rss) in med.items():
    print(f"{k:6} wall {wall:6.2f} s  cpu {cpu:6.2f} s  peak RSS {rss / 1024:5.0f} MiB  {bytes_in / 1e6 / wall:6.1f} MB/s")
ratio = med["local"][0] / med["s3"][0]
print(f"s3 / local throughput: {ratio:.2f}x")
' "$bytes"
