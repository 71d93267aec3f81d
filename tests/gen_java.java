/*
 * Avro files written by the Apache Avro project's Java implementation (DataFileWriter and
 * GenericDatumWriter of Debian's libavro-java, Avro 1.8.2), an Avro writer independent of this
 * crate, of fastavro and of the Python and C implementations. A single-file program:
 *
 *     java -cp JARS tests/gen_java.java DIR
 *
 * JARS: avro, jackson-core-asl, jackson-mapper-asl, commons-compress, xz, snappy-java, slf4j-api
 * and slf4j-nop from /usr/share/java (tests/cli.rs::java_classpath lists them).
 *
 * Writes DIR/java-<codec>.avro for every codec Avro 1.8.2 has (null, deflate, snappy, bzip2,
 * xz): 1,500 records each of a schema with every Avro type and the logical types Athena can
 * hold, with what Java's tools put in schemas (avro.java.string properties, doc strings, field
 * aliases, defaults, two namespaces), decimals encoded by Java's own DecimalConversion, extreme
 * numbers (NaN, inf, -0.0, subnormals, the int and long bounds, which the first two records
 * hold), empty and 5,000-character strings, multi-byte UTF-8 and NUL characters, empty arrays
 * and maps; blocks are cut at 4 KiB, so each file has hundreds. Every file holds the same
 * records, the same on every run (the sync markers are random). Also writes
 * DIR/java-empty.avro: a header and no block, as Java writes a file closed without records.
 * tests/cli.rs converts them and checks them with tests/roundtrip.py.
 */

import java.io.File;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.UUID;

import org.apache.avro.Conversions;
import org.apache.avro.Schema;
import org.apache.avro.file.CodecFactory;
import org.apache.avro.file.DataFileWriter;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;

public class GenJava {
    // "avro.java.string": "String" on string and map types is what Java's code generators
    // write (avro-maven-plugin's stringType=String). No \u0000 in the schema: Avro C's JSON
    // parser (jansson) refuses it, and tests/cli.rs re-encodes these files with Avro C.
    static final String SCHEMA = """
        {"type": "record", "name": "Everything", "namespace": "org.example.java",
         "doc": "Every Avro type, written by Avro Java's GenericDatumWriter",
         "fields": [
          {"name": "b", "type": "boolean", "doc": "a boolean"},
          {"name": "i", "type": "int", "aliases": ["int_value", "n"]},
          {"name": "l", "type": "long", "default": -1},
          {"name": "f", "type": "float", "default": 0.5},
          {"name": "d", "type": "double", "default": "NaN"},
          {"name": "s", "type": {"type": "string", "avro.java.string": "String"},
           "default": "déjà vu"},
          {"name": "by", "type": "bytes", "default": "\\u00ff\\u0001"},
          {"name": "e", "type": {"type": "enum", "name": "Color", "doc": "three colors",
                                 "aliases": ["Colour"], "symbols": ["RED", "GREEN", "BLUE"]},
           "default": "GREEN"},
          {"name": "fx", "type": {"type": "fixed", "name": "F4", "size": 4}},
          {"name": "arr", "type": {"type": "array", "items": ["null", "long"]}, "default": []},
          {"name": "m", "type": {"type": "map", "avro.java.string": "String", "values":
             {"type": "array", "items": {"type": "string", "avro.java.string": "String"}}},
           "default": {}},
          {"name": "opt", "type": ["null", {"type": "string", "avro.java.string": "String"}],
           "default": null},
          {"name": "optr", "type": ["null", {"type": "record", "name": "Inner",
             "namespace": "org.example.other", "aliases": ["Innermost"], "fields": [
               {"name": "x", "type": "int"},
               {"name": "y", "type": [{"type": "string", "avro.java.string": "String"}, "null"],
                "default": ""}]}],
           "default": null},
          {"name": "u", "type": ["null", "int", {"type": "string", "avro.java.string": "String"},
                                 "org.example.other.Inner"]},
          {"name": "u2", "type": ["long", "double", "bytes", "Color", "F4",
                                  {"type": "array", "items": "int"}], "default": 0},
          {"name": "dec", "type": {"type": "bytes", "logicalType": "decimal",
                                   "precision": 20, "scale": 4}},
          {"name": "decf", "type": {"type": "fixed", "name": "D12", "size": 12,
                                    "logicalType": "decimal", "precision": 25, "scale": 2}},
          {"name": "uid", "type": {"type": "string", "logicalType": "uuid"}},
          {"name": "date", "type": {"type": "int", "logicalType": "date"}},
          {"name": "tms", "type": {"type": "int", "logicalType": "time-millis"}},
          {"name": "tus", "type": {"type": "long", "logicalType": "time-micros"}},
          {"name": "tsm", "type": {"type": "long", "logicalType": "timestamp-millis"}},
          {"name": "tsu", "type": {"type": "long", "logicalType": "timestamp-micros"}},
          {"name": "ltsm", "type": {"type": "long", "logicalType": "local-timestamp-millis"}},
          {"name": "nested", "type": {"type": "array", "items": {"type": "map", "values":
             ["null", "org.example.other.Inner"]}}, "aliases": ["deep"]}
         ]}
        """;

    static final String[] STRINGS = {
        "", "ascii", "ünïcødé ✓ 😀", "日本語のテキスト", "nul\u0000inside", "ends with space "
    };
    static final float[] FLOATS = {
        0.0f, -0.0f, 1.5f, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.MAX_VALUE,
        Float.MIN_VALUE, Float.NaN
    };
    static final double[] DOUBLES = {
        0.0, -0.0, 2.5e300, Double.POSITIVE_INFINITY, -1e-320, 1.0 / 3, Double.NaN,
        -Double.MAX_VALUE
    };

    final Schema schema;
    final Schema inner;
    final Schema color;
    final Schema f4;
    final Schema d12;
    Random rng;

    GenJava(Schema schema) {
        this.schema = schema;
        this.inner = schema.getField("optr").schema().getTypes().get(1);
        this.color = schema.getField("e").schema();
        this.f4 = schema.getField("fx").schema();
        this.d12 = schema.getField("decf").schema();
    }

    long longBetween(long lo, long hi) { // inclusive, hi - lo < 2^63
        return lo + (long) (rng.nextDouble() * (hi - lo + 1));
    }

    byte[] bytes(int n) {
        byte[] b = new byte[n];
        rng.nextBytes(b);
        return b;
    }

    String string() {
        int k = rng.nextInt(STRINGS.length + 1);
        return k < STRINGS.length ? STRINGS[k] : "x".repeat(rng.nextInt(5001));
    }

    GenericRecord inner() {
        GenericRecord r = new GenericData.Record(inner);
        r.put("x", rng.nextInt());
        int k = rng.nextInt(4);
        r.put("y", k == 0 ? null : k == 1 ? "" : k == 2 ? "héllo" : "z".repeat(rng.nextInt(301)));
        return r;
    }

    GenericRecord record(int k) {
        GenericRecord r = new GenericData.Record(schema);
        r.put("b", rng.nextBoolean());
        // The first two records hold the integer bounds.
        r.put("i", k == 0 ? Integer.MIN_VALUE : k == 1 ? Integer.MAX_VALUE : rng.nextInt());
        r.put("l", k == 0 ? Long.MIN_VALUE : k == 1 ? Long.MAX_VALUE : rng.nextLong());
        r.put("f", FLOATS[rng.nextInt(FLOATS.length)]);
        r.put("d", DOUBLES[rng.nextInt(DOUBLES.length)]);
        r.put("s", string());
        r.put("by", ByteBuffer.wrap(bytes(rng.nextInt(41))));
        r.put("e", new GenericData.EnumSymbol(color, color.getEnumSymbols().get(rng.nextInt(3))));
        r.put("fx", new GenericData.Fixed(f4, bytes(4)));
        List<Long> arr = new ArrayList<>();
        for (int j = rng.nextInt(7); j > 0; j--) {
            arr.add(rng.nextInt(3) == 0 ? null : rng.nextLong());
        }
        r.put("arr", arr);
        Map<String, List<String>> m = new LinkedHashMap<>();
        for (int j = rng.nextInt(5); j > 0; j--) {
            List<String> v = new ArrayList<>();
            for (int n = rng.nextInt(4); n > 0; n--) {
                v.add(Double.toString(rng.nextDouble()));
            }
            m.put(j == 1 ? "" : j == 2 ? "ключ" : "k" + j, v);
        }
        r.put("m", m);
        r.put("opt", rng.nextBoolean() ? null : "v" + k);
        r.put("optr", rng.nextBoolean() ? null : inner());
        int u = rng.nextInt(4);
        r.put("u", switch (u) {
            case 0 -> null;
            case 1 -> (Object) (rng.nextInt(11) - 5);
            case 2 -> "str";
            default -> inner();
        });
        int u2 = rng.nextInt(6);
        List<Integer> ints = new ArrayList<>();
        for (int j = rng.nextInt(4); j > 0; j--) {
            ints.add(rng.nextInt());
        }
        r.put("u2", switch (u2) {
            case 0 -> (Object) rng.nextLong();
            case 1 -> (Object) DOUBLES[rng.nextInt(DOUBLES.length)];
            case 2 -> ByteBuffer.wrap(bytes(rng.nextInt(9)));
            case 3 -> new GenericData.EnumSymbol(color, "BLUE");
            case 4 -> new GenericData.Fixed(f4, bytes(4));
            default -> ints;
        });
        // BigDecimals, encoded by Java's DecimalConversion (the writer's GenericData has it).
        BigInteger e19 = BigInteger.TEN.pow(19), e24 = BigInteger.TEN.pow(24);
        BigInteger dec = new BigInteger(64, rng).mod(e19.shiftLeft(1)).subtract(e19);
        BigInteger decf = new BigInteger(84, rng).mod(e24.shiftLeft(1)).subtract(e24);
        r.put("dec", new BigDecimal(dec, 4));
        r.put("decf", new BigDecimal(decf, 2));
        r.put("uid", new UUID(rng.nextLong(), rng.nextLong())); // UUIDConversion: a string
        r.put("date", (int) longBetween(-700000, 2000000));
        r.put("tms", rng.nextInt(86400000));
        r.put("tus", longBetween(0, 86400000000L - 1));
        r.put("tsm", longBetween(-1000000000000L, 10000000000000L));
        r.put("tsu", longBetween(-1000000000000000L, 10000000000000000L));
        r.put("ltsm", longBetween(-1000000000000L, 10000000000000L));
        List<Map<String, GenericRecord>> nested = new ArrayList<>();
        for (int j = rng.nextInt(4); j > 0; j--) {
            Map<String, GenericRecord> e = new LinkedHashMap<>();
            for (int n = rng.nextInt(4); n > 0; n--) {
                e.put("n" + n, rng.nextBoolean() ? null : inner());
            }
            nested.add(e);
        }
        r.put("nested", nested);
        return r;
    }

    DataFileWriter<GenericRecord> writer(File file, CodecFactory codec) throws Exception {
        GenericData data = new GenericData();
        data.addLogicalTypeConversion(new Conversions.DecimalConversion());
        data.addLogicalTypeConversion(new Conversions.UUIDConversion());
        DataFileWriter<GenericRecord> w =
            new DataFileWriter<>(new GenericDatumWriter<GenericRecord>(schema, data));
        w.setCodec(codec);
        w.setSyncInterval(4096);
        w.setMeta("org.example.writer", "tests/gen_java.java");
        return w.create(schema, file);
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 1) {
            System.err.println("usage: java -cp JARS tests/gen_java.java DIR");
            System.exit(2);
        }
        File out = new File(args[0]);
        out.mkdirs();
        Schema schema = new Schema.Parser().parse(SCHEMA);
        GenJava gen = new GenJava(schema);
        Map<String, CodecFactory> codecs = new LinkedHashMap<>();
        codecs.put("null", CodecFactory.nullCodec());
        codecs.put("deflate", CodecFactory.deflateCodec(9));
        codecs.put("snappy", CodecFactory.snappyCodec());
        codecs.put("bzip2", CodecFactory.bzip2Codec());
        codecs.put("xz", CodecFactory.xzCodec(6));
        for (Map.Entry<String, CodecFactory> c : codecs.entrySet()) {
            gen.rng = new Random(5);
            try (DataFileWriter<GenericRecord> w =
                     gen.writer(new File(out, "java-" + c.getKey() + ".avro"), c.getValue())) {
                for (int k = 0; k < 1500; k++) {
                    w.append(gen.record(k));
                }
            }
        }
        gen.writer(new File(out, "java-empty.avro"), CodecFactory.deflateCodec(6)).close();
    }
}
