// Avro files written by avsc, the JavaScript implementation of Avro (npm package `avsc`).
//
//     node tests/gen_avsc.js OUT_DIR
//
// Writes avsc-null.avro and avsc-deflate.avro (1,500 records each; the two codecs avsc has
// built in) and avsc-empty.avro (a header and no block), with avsc's own encoder and header
// writer. The same records on every run; the sync markers are random. avsc comes from the npm
// registry (.ci/run installs it under target/npm and the test sets NODE_PATH). See
// tests/data/README.md, section 3e.
'use strict';

const path = require('path');
const avro = require('avsc');

const out = process.argv[2];
if (!out) {
  console.error('usage: node tests/gen_avsc.js OUT_DIR');
  process.exit(2);
}
require('fs').mkdirSync(out, {recursive: true});

const schema = {
  type: 'record', name: 'Event', namespace: 'com.example.js',
  doc: 'written by avsc',
  fields: [
    {name: 'id', type: 'long'},
    {name: 'i', type: 'int'},
    {name: 'f', type: 'float'},
    {name: 'd', type: 'double'},
    {name: 'b', type: 'boolean'},
    {name: 's', type: 'string'},
    {name: 'raw', type: 'bytes'},
    {name: 'maybe', type: ['null', 'string'], default: null},
    {name: 'later', type: ['string', 'null'], default: 'x'},
    {name: 'multi', type: ['null', 'long', 'string', {
      type: 'record', name: 'Inner', fields: [{name: 'x', type: 'int'}],
    }]},
    {name: 'color', type: {type: 'enum', name: 'Color', symbols: ['RED', 'GREEN', 'BLUE']}},
    {name: 'fx', type: {type: 'fixed', name: 'Four', size: 4}},
    {name: 'tags', type: {type: 'array', items: 'string'}},
    {name: 'attrs', type: {type: 'map', values: ['null', 'double']}},
    {name: 'nested', type: {type: 'array', items: {type: 'map', values: 'Inner'}}},
    {name: 'ts', type: {type: 'long', logicalType: 'timestamp-millis'}},
    {name: 'micros', type: ['null', {type: 'long', logicalType: 'timestamp-micros'}]},
    {name: 'day', type: {type: 'int', logicalType: 'date'}},
    {name: 'amount', type: {type: 'bytes', logicalType: 'decimal', precision: 12, scale: 3}},
    {name: 'uid', type: {type: 'string', logicalType: 'uuid'}},
  ],
};

// Logical types the way avsc users declare them: a class over the underlying type. These pass
// the raw values through (the records below hold raw values) and export their attributes, so
// the file's schema keeps logicalType, precision and scale.
class Raw extends avro.types.LogicalType {
  constructor(attrs, opts) {
    super(attrs, opts);
    this._declared = attrs;
  }
  _fromValue(v) { return v; }
  _toValue(v) { return v; }
  _export(attrs) {
    for (const k of ['precision', 'scale']) {
      if (this._declared[k] !== undefined) attrs[k] = this._declared[k];
    }
  }
}
const logicalTypes = {
  'timestamp-millis': Raw, 'timestamp-micros': Raw, date: Raw, decimal: Raw, uuid: Raw,
};
const type = avro.Type.forSchema(schema, {wrapUnions: true, logicalTypes});

// A fixed pseudo-random sequence, so every run writes the same records.
function rng(seed) {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  };
}

// A decimal's unscaled value as big-endian two's complement, in as few bytes as Java writes.
function decimal(v) {
  let bytes = 1;
  while (v >= 1n << BigInt(8 * bytes - 1) || v < -(1n << BigInt(8 * bytes - 1))) bytes++;
  const u = v < 0n ? (1n << BigInt(8 * bytes)) + v : v;
  return Buffer.from(u.toString(16).padStart(2 * bytes, '0'), 'hex');
}

const STRINGS = ['', 'héllo', 'a\u0000b', '✓'.repeat(3), 'x'.repeat(5000), '🦀 emoji'];
const DOUBLES = [NaN, Infinity, -Infinity, -0, 5e-324, Number.MAX_VALUE];

function record(r, n) {
  const pick = n % 4;
  return {
    // Longs are JavaScript numbers in avsc, which writes them up to 2^53 - 2.
    id: n < 2 ? [9007199254740990, -9007199254740990][n] : n * 1000003 - 5e9,
    i: n < 2 ? [2147483647, -2147483648][n] : (n % 2 ? -1 : 1) * Math.floor(r() * 2147483647),
    f: n < DOUBLES.length ? DOUBLES[n] : Math.fround(r() * 1e6 - 5e5),
    d: n < DOUBLES.length ? DOUBLES[n] : (r() - 0.5) * 1e300,
    b: r() < 0.5,
    s: n < STRINGS.length ? STRINGS[n] : 'event ' + n + ' ' + 'é'.repeat(n % 5),
    raw: Buffer.from([n & 255, 0, 255, (n >> 8) & 255]).subarray(0, n % 5),
    maybe: n % 3 === 0 ? null : {string: 'v' + n},
    later: n % 5 === 0 ? null : {string: STRINGS[n % STRINGS.length].slice(0, 10)},
    multi: [null, {long: -n}, {string: 's' + n}, {'com.example.js.Inner': {x: n}}][pick],
    color: ['RED', 'GREEN', 'BLUE'][n % 3],
    fx: Buffer.from([n & 255, 1, 2, (n * 7) & 255]),
    tags: Array.from({length: n % 4}, (_, k) => (k === 1 ? '' : 't' + k)),
    attrs: Object.fromEntries(
      Array.from({length: n % 4}, (_, k) => [k === 2 ? '' : 'k' + k, k === 1 ? null : {double: k + n / 7}]),
    ),
    nested: Array.from({length: n % 3}, (_, k) => (k === 1 ? {} : {a: {x: k}, b: {x: -k}})),
    ts: 1700000000000 + n * 1001 - (n % 7 === 0 ? 2e12 : 0),
    micros: n % 6 === 0 ? null : {long: 1700000000000000 + n * 1000001},
    day: 19000 + (n % 400) - (n % 11 === 0 ? 30000 : 0),
    amount: decimal(n < 2 ? [999999999999n, -999999999999n][n] : BigInt(Math.floor((r() - 0.5) * 1e12))),
    uid: '123e4567-e89b-12d3-a456-' + String(426614174000 + n).padStart(12, '0'),
  };
}

function write(name, codec, count, blockSize) {
  return new Promise((resolve, reject) => {
    // writeHeader 'always': a file even without records (avsc writes nothing at all by default).
    const enc = avro.createFileEncoder(path.join(out, name), type, {codec, blockSize, writeHeader: 'always'});
    enc.on('error', reject);
    enc.on('finish', resolve);
    const r = rng(42);
    for (let n = 0; n < count; n++) enc.write(record(r, n));
    enc.end();
  });
}

(async () => {
  await write('avsc-null.avro', 'null', 1500, 4096);
  await write('avsc-deflate.avro', 'deflate', 1500, 2048);
  await write('avsc-empty.avro', 'deflate', 0, 4096);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
