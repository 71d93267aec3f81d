//! Decode throughput (MB/s of Avro): inflate, then Avro -> Arrow, single-threaded.
//!
//! - `inflate`: libdeflate (what parqour uses) against zlib (zlib-rs through flate2) on the same
//!   deflate blocks: the reason for libdeflate.
//! - `decode`: parqour's columnar decoder against arrow-avro's reader (arrow-rs) on the same
//!   files: the reason for our own decoder. Both produce Arrow record batches.
//!
//! The data is `parqour demo`'s ad-network events (nested records, arrays, maps, unions,
//! decimals, timestamps) in ~64 KB blocks, as Java and Firehose write them.

#![allow(clippy::unwrap_used, missing_docs)]

use std::io::Read;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use parqour::avro::codec::Codec;
use parqour::avro::container::{Limits, split_all};
use parqour::decode::{BatchDecoder, plan};

const EVENTS: u64 = 50_000;

fn inflate(c: &mut Criterion) {
    let file = parqour::demo::write_events(Vec::new(), Codec::Deflate, 0, EVENTS, 1).unwrap();
    let (_, blocks) = split_all(&file, Limits::default()).unwrap();
    let mut g = c.benchmark_group("inflate");
    g.throughput(Throughput::Bytes(file.len() as u64));
    g.sample_size(20);
    g.bench_function("libdeflate", |b| {
        let mut out = Vec::new();
        b.iter(|| {
            for blk in &blocks {
                Codec::Deflate
                    .decompress(&blk.data, &mut out, 1 << 28)
                    .unwrap();
            }
        })
    });
    g.bench_function("zlib-rs (flate2)", |b| {
        let mut out = Vec::new();
        b.iter(|| {
            for blk in &blocks {
                out.clear();
                flate2::read::DeflateDecoder::new(&blk.data[..])
                    .read_to_end(&mut out)
                    .unwrap();
            }
        })
    });
    g.finish();
}

fn decode(c: &mut Criterion) {
    for codec in [Codec::Null, Codec::Deflate] {
        let file = parqour::demo::write_events(Vec::new(), codec, 0, EVENTS, 1).unwrap();
        let mut g = c.benchmark_group(format!("decode/{}", codec.name()));
        g.throughput(Throughput::Bytes(file.len() as u64));
        g.sample_size(10);
        g.bench_function("parqour", |b| {
            b.iter(|| {
                let (header, blocks) = split_all(&file, Limits::default()).unwrap();
                let p = Arc::new(plan(&header.schema).unwrap());
                let mut dec = BatchDecoder::new(p);
                let mut buf = Vec::new();
                let mut rows = 0;
                for blk in &blocks {
                    let data: &[u8] = if codec == Codec::Null {
                        &blk.data
                    } else {
                        codec.decompress(&blk.data, &mut buf, 1 << 28).unwrap();
                        &buf
                    };
                    dec.decode_block(data, blk.count).unwrap();
                    if dec.rows() >= 8192 {
                        rows += dec.flush().unwrap().unwrap().num_rows();
                    }
                }
                rows += dec.flush().unwrap().map_or(0, |b| b.num_rows());
                assert_eq!(rows as u64, EVENTS);
            })
        });
        g.bench_function("arrow-avro", |b| {
            b.iter(|| {
                let reader = arrow_avro::reader::ReaderBuilder::new()
                    .with_batch_size(8192)
                    .build(std::io::BufReader::new(&file[..]))
                    .unwrap();
                let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
                assert_eq!(rows as u64, EVENTS);
            })
        });
        g.finish();
    }
}

criterion_group!(benches, inflate, decode);
criterion_main!(benches);
