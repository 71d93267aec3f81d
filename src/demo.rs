//! A realistic sample: ad-network events as Avro container files.
//!
//! Used by `parqour demo` (the README's first command), by the benchmarks and by the tests. The
//! schema has what production event schemas have: nested records, arrays of records, maps,
//! nullable fields, a multi-branch union, enums, decimals, uuids, dates and timestamps. Values
//! come from a fixed-seed generator, so the same arguments give the same bytes.

use std::collections::BTreeMap;
use std::io::{self, Write};

use crate::avro::codec::Codec;
use crate::avro::writer::{ContainerWriter, Datum};

/// The writer schema of the sample events.
pub const SCHEMA: &str = r#"{
  "type": "record", "name": "AdEvent", "namespace": "com.parqour.demo",
  "fields": [
    {"name": "event_id", "type": {"type": "string", "logicalType": "uuid"}},
    {"name": "event_time", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "received_at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    {"name": "event_date", "type": {"type": "int", "logicalType": "date"}},
    {"name": "event_type", "type": {"type": "enum", "name": "EventType",
      "symbols": ["IMPRESSION", "CLICK", "CONVERSION", "VIEWABLE"]}},
    {"name": "campaign_id", "type": "long"},
    {"name": "creative_id", "type": "string"},
    {"name": "publisher", "type": "string"},
    {"name": "page_url", "type": "string"},
    {"name": "user_id", "type": ["null", "string"], "default": null},
    {"name": "device", "type": {"type": "record", "name": "Device", "fields": [
      {"name": "os", "type": {"type": "enum", "name": "Os", "symbols": ["ANDROID", "IOS", "WINDOWS", "MACOS", "LINUX", "OTHER"]}},
      {"name": "os_version", "type": "string"},
      {"name": "model", "type": ["null", "string"], "default": null},
      {"name": "is_mobile", "type": "boolean"},
      {"name": "screen", "type": ["null", {"type": "record", "name": "Screen", "fields": [
        {"name": "width", "type": "int"}, {"name": "height", "type": "int"}]}], "default": null}
    ]}},
    {"name": "geo", "type": {"type": "record", "name": "Geo", "fields": [
      {"name": "country", "type": "string"},
      {"name": "region", "type": ["null", "string"], "default": null},
      {"name": "lat", "type": ["null", "double"], "default": null},
      {"name": "lon", "type": ["null", "double"], "default": null}
    ]}},
    {"name": "bid_floor", "type": "float"},
    {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 6}},
    {"name": "segments", "type": {"type": "array", "items": "string"}},
    {"name": "attributes", "type": {"type": "map", "values": "string"}},
    {"name": "bids", "type": {"type": "array", "items": {"type": "record", "name": "Bid", "fields": [
      {"name": "bidder", "type": "string"},
      {"name": "amount", "type": {"type": "fixed", "name": "Money", "size": 8, "logicalType": "decimal", "precision": 12, "scale": 4}},
      {"name": "latency", "type": {"type": "int", "logicalType": "time-millis"}},
      {"name": "won", "type": "boolean"}
    ]}}},
    {"name": "payload", "type": ["null",
      {"type": "record", "name": "Click", "fields": [
        {"name": "x", "type": "int"}, {"name": "y", "type": "int"}, {"name": "target", "type": "string"}]},
      {"name": "Conversion", "type": "record", "fields": [
        {"name": "order_id", "type": "string"}, {"name": "revenue", "type": "double"}]},
      "string"], "default": null},
    {"name": "request_hash", "type": {"type": "fixed", "name": "Md5", "size": 16}},
    {"name": "local_time", "type": {"type": "long", "logicalType": "local-timestamp-millis"}},
    {"name": "session_id", "type": {"type": "fixed", "name": "SessionId", "size": 16, "logicalType": "uuid"}}
  ]
}"#;

/// A small fast deterministic generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

const PUBLISHERS: [&str; 8] = [
    "news.example.com",
    "sports.example.net",
    "weather.example.org",
    "recipes.example.com",
    "games.example.io",
    "video.example.tv",
    "shop.example.store",
    "blog.example.dev",
];
const COUNTRIES: [&str; 10] = ["US", "DE", "FR", "GB", "BR", "IN", "JP", "CA", "AU", "ES"];
const SEGMENTS: [&str; 12] = [
    "sports", "travel", "auto", "finance", "gaming", "parents", "pets", "fitness", "music", "tech",
    "fashion", "food",
];
const BIDDERS: [&str; 6] = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"];
const MODELS: [&str; 5] = [
    "Pixel 9",
    "iPhone 16",
    "Galaxy S25",
    "ThinkPad",
    "MacBook Air",
];

fn hex(rng: &mut Rng, out: &mut String, n: usize) {
    const H: &[u8; 16] = b"0123456789abcdef";
    for _ in 0..n {
        out.push(H[rng.below(16) as usize] as char);
    }
}

/// Encodes the `i`-th sample event into `d` (cleared first).
pub fn encode_event(rng: &mut Rng, i: u64, d: &mut Datum) {
    d.clear();
    let mut s = String::with_capacity(64);
    // event_id (uuid string)
    for (k, n) in [8, 4, 4, 4, 12].iter().enumerate() {
        if k > 0 {
            s.push('-');
        }
        hex(rng, &mut s, *n);
    }
    d.string(&s);
    let t_ms: i64 = 1_795_000_000_000 + (i as i64) * 37 + rng.below(1000) as i64;
    d.long(t_ms);
    d.long(t_ms * 1000 + rng.below(5_000_000) as i64);
    d.long(t_ms / 86_400_000);
    let event_type = match rng.below(100) {
        0..=79 => 0,
        80..=93 => 1,
        94..=96 => 2,
        _ => 3,
    };
    d.long(event_type);
    d.long(1_000 + rng.below(500) as i64);
    s.clear();
    s.push_str("cr-");
    hex(rng, &mut s, 10);
    d.string(&s);
    let publisher = PUBLISHERS[rng.below(PUBLISHERS.len() as u64) as usize];
    d.string(publisher);
    s.clear();
    s.push_str("https://");
    s.push_str(publisher);
    s.push_str("/articles/");
    hex(rng, &mut s, 16);
    s.push_str("?utm_source=parqour&ref=");
    hex(rng, &mut s, 6);
    d.string(&s);
    // user_id: ["null", "string"]
    if rng.chance(0.2) {
        d.long(0);
    } else {
        s.clear();
        s.push_str("u-");
        hex(rng, &mut s, 12);
        d.long(1).string(&s);
    }
    // device
    let os = rng.below(6);
    d.long(os as i64);
    s.clear();
    s.push_str(&format!("{}.{}", 10 + rng.below(8), rng.below(10)));
    d.string(&s);
    if rng.chance(0.3) {
        d.long(0);
    } else {
        d.long(1)
            .string(MODELS[rng.below(MODELS.len() as u64) as usize]);
    }
    d.boolean(os < 2);
    if rng.chance(0.1) {
        d.long(0);
    } else {
        d.long(1)
            .long(320 + rng.below(3000) as i64)
            .long(480 + rng.below(2000) as i64);
    }
    // geo
    d.string(COUNTRIES[rng.below(COUNTRIES.len() as u64) as usize]);
    if rng.chance(0.4) {
        d.long(0);
    } else {
        s.clear();
        s.push('R');
        hex(rng, &mut s, 2);
        d.long(1).string(&s);
    }
    if rng.chance(0.5) {
        d.long(0).long(0);
    } else {
        d.long(1)
            .double(rng.below(180_000) as f64 / 1000.0 - 90.0)
            .long(1)
            .double(rng.below(360_000) as f64 / 1000.0 - 180.0);
    }
    d.float(rng.below(500) as f32 / 100.0);
    d.decimal_bytes(rng.below(50_000_000) as i128 - 1_000_000);
    // segments
    let n = rng.below(5) as usize;
    d.items(n);
    for _ in 0..n {
        d.string(SEGMENTS[rng.below(SEGMENTS.len() as u64) as usize]);
    }
    d.end_items();
    // attributes
    let n = rng.below(4) as usize;
    d.items(n);
    for k in 0..n {
        d.string(["ab_test", "consent", "placement", "format"][k]);
        s.clear();
        hex(rng, &mut s, 4);
        d.string(&s);
    }
    d.end_items();
    // bids
    let n = rng.below(4) as usize;
    d.items(n);
    let winner = rng.below(n.max(1) as u64) as usize;
    for k in 0..n {
        d.string(BIDDERS[rng.below(BIDDERS.len() as u64) as usize]);
        let amount = rng.below(20_000_000) as i64;
        d.fixed(&amount.to_be_bytes());
        d.long(rng.below(300) as i64);
        d.boolean(k == winner);
    }
    d.end_items();
    // payload: [null, Click, Conversion, string]
    match event_type {
        1 => {
            s.clear();
            s.push_str("#cta-");
            hex(rng, &mut s, 3);
            d.long(1)
                .long(rng.below(1920) as i64)
                .long(rng.below(1080) as i64)
                .string(&s);
        }
        2 => {
            s.clear();
            s.push_str("ord-");
            hex(rng, &mut s, 10);
            d.long(2)
                .string(&s)
                .double(rng.below(100_000) as f64 / 100.0);
        }
        3 => {
            d.long(3).string("viewable:50%");
        }
        _ => {
            d.long(0);
        }
    }
    let mut hash = [0u8; 16];
    for b in hash.iter_mut() {
        *b = rng.below(256) as u8;
    }
    d.fixed(&hash);
    d.long(t_ms + 3_600_000);
    let mut sid = [0u8; 16];
    for b in sid.iter_mut() {
        *b = rng.below(256) as u8;
    }
    d.fixed(&sid);
}

/// A container file of `schema` on `out`, and the generator of the events from number `first`
/// on (which drew its sync marker first).
fn sample_file<W: Write>(
    out: W,
    schema: &str,
    codec: Codec,
    first: u64,
    seed: u64,
) -> io::Result<(ContainerWriter<W>, Rng)> {
    let mut rng = Rng::new(seed ^ first.wrapping_mul(0x2545_f491_4f6c_dd1d));
    let mut sync = [0u8; 16];
    for b in sync.iter_mut() {
        *b = rng.below(256) as u8;
    }
    let mut meta = BTreeMap::new();
    meta.insert("writer".to_string(), b"parqour demo".to_vec());
    Ok((ContainerWriter::new(out, schema, codec, sync, &meta)?, rng))
}

/// Writes `records` sample events, starting at event number `first`, as one container file.
pub fn write_events<W: Write>(
    out: W,
    codec: Codec,
    first: u64,
    records: u64,
    seed: u64,
) -> io::Result<W> {
    let (mut w, mut rng) = sample_file(out, SCHEMA, codec, first, seed)?;
    let mut d = Datum::new();
    for i in first..first + records {
        encode_event(&mut rng, i, &mut d);
        w.append(&d.buf)?;
    }
    w.finish()
}

/// Writes `records` sample events as [`write_events`] does, each wrapped in a `DataWrapper`
/// envelope of data type `data_type` and [`SCHEMA`]'s fingerprint, as one container file: the
/// producers' format, to be read through a registry holding [`SCHEMA`].
pub fn write_event_envelopes<W: Write>(
    out: W,
    codec: Codec,
    first: u64,
    records: u64,
    seed: u64,
    data_type: &str,
) -> io::Result<W> {
    let fingerprint = crate::avro::fingerprint::fingerprint(SCHEMA)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    let (mut w, mut rng) = sample_file(
        out,
        crate::avro::envelope::DATA_WRAPPER_SCHEMA,
        codec,
        first,
        seed,
    )?;
    let mut d = Datum::new();
    let mut envelope = Datum::new();
    for i in first..first + records {
        encode_event(&mut rng, i, &mut d);
        envelope.clear();
        envelope.string(data_type).long(fingerprint).bytes(&d.buf);
        w.append(&envelope.buf)?;
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::avro::container::{Limits, split_all};
    use crate::avro::schema::Schema;
    use crate::decode::{BatchDecoder, plan};
    use std::sync::Arc;

    /// The envelopes hold the same events, datum for datum, as the plain file of the same
    /// arguments, under the schema's fingerprint.
    #[test]
    fn sample_envelopes_wrap_the_same_events() {
        use crate::avro::envelope::EnvelopeLayout;
        let plain = write_events(Vec::new(), Codec::Deflate, 10, 700, 3).unwrap();
        let wrapped =
            write_event_envelopes(Vec::new(), Codec::Deflate, 10, 700, 3, "events").unwrap();
        let (header, blocks) = split_all(&plain, Limits::default()).unwrap();
        let (wheader, wblocks) = split_all(&wrapped, Limits::default()).unwrap();
        let layout = EnvelopeLayout::of(&wheader.schema).expect("a DataWrapper schema");
        let p = Arc::new(plan(&Schema::parse_str(&header.schema_json).unwrap()).unwrap());
        let (mut a, mut b) = (BatchDecoder::new(p.clone()), BatchDecoder::new(p));
        let mut buf = Vec::new();
        for blk in &blocks {
            header
                .codec
                .decompress(&blk.data, &mut buf, 1 << 24)
                .unwrap();
            a.decode_block(&buf, blk.count).unwrap();
        }
        let fp = crate::avro::fingerprint::fingerprint(SCHEMA).unwrap();
        let mut n = 0;
        for blk in &wblocks {
            wheader
                .codec
                .decompress(&blk.data, &mut buf, 1 << 24)
                .unwrap();
            let mut cur = crate::avro::cursor::Cursor::new(&buf);
            for _ in 0..blk.count {
                let (data_type, fingerprint, datum) = layout.read_fields(&mut cur).unwrap();
                assert_eq!((data_type, fingerprint), (&b"events"[..], fp));
                b.decode_datum(datum).unwrap();
                n += 1;
            }
            assert_eq!(cur.remaining(), 0);
        }
        assert_eq!(n, 700);
        assert_eq!(a.flush().unwrap(), b.flush().unwrap());
    }

    #[test]
    fn sample_events_decode() {
        let file = write_events(Vec::new(), Codec::Deflate, 0, 5000, 42).unwrap();
        let (header, blocks) = split_all(&file, Limits::default()).unwrap();
        let p = Arc::new(plan(&Schema::parse_str(&header.schema_json).unwrap()).unwrap());
        let mut dec = BatchDecoder::new(p);
        let mut buf = Vec::new();
        for b in &blocks {
            header.codec.decompress(&b.data, &mut buf, 1 << 24).unwrap();
            dec.decode_block(&buf, b.count).unwrap();
        }
        assert_eq!(dec.flush().unwrap().unwrap().num_rows(), 5000);
        // Deterministic.
        assert_eq!(
            write_events(Vec::new(), Codec::Deflate, 0, 5000, 42).unwrap(),
            file
        );
    }
}
