#!/usr/bin/env bash
# parqour against other Avro -> Parquet converters, side by side, in one run.
#
#   bash benches/compare.sh [--shape events|metrics|logs|sparse|flags|deep|lowcard|tiny|otel] [--records N] [--files N]
#                           [--codec C[,C...]] [--rounds N] [--threads N] [--tools T[,T...]]
#                           [--parquet snappy|zstd] [--stages] [--no-build] [--baseline BIN]
#                           [--envelopes]
#
# For each codec (default deflate), generates N records in F Avro container files of ~64 KB
# blocks once (cached under target/compare-data/), then times, in rounds and alternating
# (A B C, C B A, A B C, ...):
#   parqour     `parqour convert` (release build), snappy, --threads N (default: all cores)
#   parqour-uuid16  the same with --uuid binary: uuids as 16 bytes, the types DataFusion writes
#               (not run by default; the default writes them as the 36-character strings Athena shows)
#   parqour-delta  the same with --byte-array-encoding delta-length: strings and binaries without
#               a dictionary as DELTA_LENGTH_BYTE_ARRAY instead of PLAIN (not run by default)
#   parqour-1t  the same with --threads 1 (not run by default)
#   baseline    another parqour binary (--baseline BIN, e.g. an earlier commit's release build)
#               with parqour's arguments: a change measured against the binary before it, in
#               the same run (not run by default)
#   parqour-1core  --threads 1 pinned to one cpu: parqour on a 1-core machine, for the 1 -> N
#               core scaling (with --threads 1 alone, the reader and upload threads still use
#               the other cores)
#   reference   arrow-avro reader -> parquet ArrowWriter, snappy, one thread
#               (benches/compare/reference.rs, the `reference` example)
#   datafusion  DataFusion's Python package: COPY (SELECT ...) TO '...' STORED AS PARQUET,
#               snappy, target partitions = --threads (benches/compare/datafusion_convert.py)
# and prints wall and cpu seconds, peak RSS, MB/s of Avro, records per cpu-second, output size
# and the ratios (medians over the rounds), after checking every output's row count.
# Shapes (--shape, default events):
#   events   `parqour demo`'s ad-network events (written by parqour's own Avro writer): nested
#            records, maps, arrays, a union, decimals, uuids, timestamps
#   metrics  flat records of numbers, low-cardinality strings and a few nullable fields
#   logs     log lines: a message, a JSON payload of a few hundred bytes, tags; text-heavy
#   sparse   48 optional fields, each set in 1-20% of the records
#   flags    40 booleans (true with probabilities 0.01-0.99) and 8 optional ones
#   deep     maps of arrays of records of arrays of maps of records with arrays (6 deep)
#   lowcard  six strings of 3 to 100 distinct values
#   tiny     three fields a record: an int, a sequential long, a 4-letter string
#   otel     OpenTelemetry-style spans: fixed-size ids, maps of 6 and 10-30 string attributes, an
#            array of strings
# All but events are written by fastavro (benches/compare/shapes.py), an independent writer.
# --parquet zstd has every tool write zstd (level 3) Parquet instead of snappy.
# --envelopes (events only): the parqour tools read the same events as DataWrapper envelopes (the
# producers' format; generated beside the data, with the schema published to a registry in it)
# through `--registry`; reference and DataFusion read the plain files.
# --stages also prints where parqour's cpu time goes on the data, stage by stage and column by
# column, on one thread (benches/compare/stages.rs, the `stages` example).
#
# Needs python3 with pyarrow and datafusion (and fastavro, cramjam and zstandard for the other
# shapes): pip install -r benches/requirements.txt
# Codecs: deflate, snappy, zstandard, null, bzip2, xz, or (events only) mixed (deflate, snappy,
# zstandard and null files in turn, as `parqour demo` writes them).
set -euo pipefail
cd "$(dirname "$0")/.."

shape=events
records=2000000
files=16
codecs=deflate
rounds=3
threads=0
tools=parqour,parqour-1core,reference,datafusion
build=1
stages=0
parquet=snappy
baseline=
envelopes=0

usage() { sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; }
need_value() { [[ $# -ge 2 && -n $2 ]] || { echo "compare.sh: $1 needs a value" >&2; exit 64; }; }
while [[ $# -gt 0 ]]; do
  case $1 in
    --shape) need_value "$@"; shape=$2; shift 2 ;;
    --records) need_value "$@"; records=$2; shift 2 ;;
    --files) need_value "$@"; files=$2; shift 2 ;;
    --codec) need_value "$@"; codecs=$2; shift 2 ;;
    --rounds) need_value "$@"; rounds=$2; shift 2 ;;
    --threads) need_value "$@"; threads=$2; shift 2 ;;
    --tools) need_value "$@"; tools=$2; shift 2 ;;
    --stages) stages=1; shift ;;
    --parquet) need_value "$@"; parquet=$2; shift 2 ;;
    --baseline) need_value "$@"; baseline=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --envelopes) envelopes=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "compare.sh: unknown argument $1 (see --help)" >&2; exit 64 ;;
  esac
done
for n in "$records" "$files" "$rounds" "$threads"; do
  [[ $n =~ ^[0-9]+$ ]] || { echo "compare.sh: '$n' is not a number" >&2; exit 64; }
done
(( records > 0 && files > 0 && rounds > 0 )) || { echo "compare.sh: --records, --files and --rounds must be positive" >&2; exit 64; }
(( ! envelopes )) || [[ $shape == events ]] || { echo "compare.sh: --envelopes is for --shape events" >&2; exit 64; }
case $shape in
  events) ;;
  metrics|logs|sparse|flags|deep|lowcard|tiny|otel)
    [[ ,$codecs, != *,mixed,* ]] || { echo "compare.sh: --codec mixed is for --shape events" >&2; exit 64; } ;;
  *) echo "compare.sh: unknown shape '$shape' (events, metrics, logs, sparse, flags, deep, lowcard, tiny or otel)" >&2; exit 64 ;;
esac

command -v python3 >/dev/null || { echo "compare.sh: python3 not found" >&2; exit 69; }
python3 -c 'import pyarrow' 2>/dev/null || {
  echo "compare.sh: pyarrow is missing (row counts are checked with it): pip install -r benches/requirements.txt" >&2
  exit 69
}
if [[ $shape != events ]] && ! python3 -c 'import fastavro, cramjam, zstandard' 2>/dev/null; then
  echo "compare.sh: --shape $shape is written with fastavro (and cramjam, zstandard): pip install -r benches/requirements.txt" >&2
  exit 69
fi
if [[ ,$tools, == *,datafusion,* ]] && ! python3 -c 'import datafusion' 2>/dev/null; then
  echo "compare.sh: DataFusion's Python package is not installed: pip install -r benches/requirements.txt" >&2
  echo "            (or leave it out: --tools parqour,reference)" >&2
  exit 69
fi

if [[ ,$tools, == *,baseline,* ]]; then
  [[ -n $baseline ]] || { echo "compare.sh: the baseline tool needs --baseline BIN" >&2; exit 64; }
  [[ -x $baseline ]] || { echo "compare.sh: $baseline is not an executable" >&2; exit 69; }
fi

if (( build )); then
  echo "== building (release): parqour, examples reference, events and stages"
  cargo build --release --quiet --bin parqour --example reference --example events --example stages
fi
target=${CARGO_TARGET_DIR:-target}
bin=$target/release
for b in "$bin/parqour" "$bin/examples/reference" "$bin/examples/events" "$bin/examples/stages"; do
  [[ -x $b ]] || { echo "compare.sh: $b is missing (run without --no-build)" >&2; exit 69; }
done

IFS=, read -r -a codec_list <<<"$codecs"
for codec in "${codec_list[@]}"; do
  if [[ $shape == events ]]; then
    data=$target/compare-data/$codec-$records-$files
  else
    data=$target/compare-data/$shape-$codec-$records-$files
  fi
  if [[ ! -f $data/.complete ]]; then
    echo "== generating $records $shape records in $files $codec files under $data"
    rm -rf "$data"
    if [[ $shape == events ]]; then
      "$bin/examples/events" --dir "$data" --records "$records" --files "$files" --codec "$codec"
    else
      python3 benches/compare/shapes.py "$shape" --dir "$data" --records "$records" \
        --files "$files" --codec "$codec"
    fi
    touch "$data/.complete"
  fi
  wrapped=
  if (( envelopes )); then
    wrapped=$data-envelopes
    if [[ ! -f $wrapped/.complete ]]; then
      echo "== generating the same events as DataWrapper envelopes under $wrapped"
      rm -rf "$wrapped"
      "$bin/examples/events" --dir "$wrapped" --records "$records" --files "$files" \
        --codec "$codec" --envelopes
      "$bin/parqour" schema publish --data-type events --registry "$wrapped/registry" \
        "$wrapped/events.avsc"
      touch "$wrapped/.complete"
    fi
  fi
  echo "== $shape, $codec${wrapped:+ (parqour: envelopes)}"
  python3 benches/compare/compare.py --data "$data" --records "$records" \
    --out "$target/compare-out" --rounds "$rounds" --threads "$threads" --tools "$tools" \
    --parquet "$parquet" \
    --parqour "$bin/parqour" --reference "$bin/examples/reference" \
    ${baseline:+--baseline "$baseline"} ${wrapped:+--envelopes "$wrapped"}
  if (( stages )); then
    echo
    echo "== $codec: parqour's stages on one thread (cpu clock)"
    "$bin/examples/stages" "$data"
  fi
  echo
done
