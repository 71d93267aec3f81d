//! Encode throughput (MB/s of Arrow data in): Arrow batches -> snappy Parquet.
//!
//! - `parqour`: [`FileEncoder`], the leaf columns of each batch encoded in parallel on rayon.
//! - `ArrowWriter`: parquet's single-threaded writer with the same properties, as the baseline.

#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use arrow_array::RecordBatch;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use parqour::avro::codec::Codec;
use parqour::avro::container::{Limits, split_all};
use parqour::decode::{BatchDecoder, plan};
use parqour::encode::{EncodeOptions, FileEncoder};
use parquet::arrow::ArrowWriter;

fn batches() -> Vec<RecordBatch> {
    let file = parqour::demo::write_events(Vec::new(), Codec::Null, 0, 100_000, 1).unwrap();
    let (header, blocks) = split_all(&file, Limits::default()).unwrap();
    let mut dec = BatchDecoder::new(Arc::new(plan(&header.schema).unwrap()));
    let mut out = Vec::new();
    for blk in &blocks {
        dec.decode_block(&blk.data, blk.count).unwrap();
        if dec.rows() >= 16_384 {
            out.push(dec.flush().unwrap().unwrap());
        }
    }
    out.extend(dec.flush().unwrap());
    out
}

fn encode(c: &mut Criterion) {
    let batches = batches();
    let bytes: usize = batches.iter().map(|b| b.get_array_memory_size()).sum();
    let schema = batches[0].schema();
    let options = EncodeOptions::default();
    let mut g = c.benchmark_group("encode/snappy");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.sample_size(10);
    for threads in [1, 2] {
        let pool = Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap(),
        );
        g.bench_function(format!("parqour ({threads} threads)"), |b| {
            b.iter(|| {
                let out = Vec::with_capacity(64 << 20);
                let mut enc =
                    FileEncoder::new(out, schema.clone(), &options, pool.clone()).unwrap();
                for batch in &batches {
                    enc.write(batch).unwrap();
                }
                enc.finish().unwrap().0.len()
            })
        });
    }
    g.bench_function("ArrowWriter (1 thread)", |b| {
        b.iter(|| {
            let props = options.properties(&schema);
            let mut w =
                ArrowWriter::try_new(Vec::with_capacity(64 << 20), schema.clone(), Some(props))
                    .unwrap();
            for batch in &batches {
                w.write(batch).unwrap();
            }
            w.into_inner().unwrap().len()
        })
    });
    g.finish();
}

criterion_group!(benches, encode);
criterion_main!(benches);
