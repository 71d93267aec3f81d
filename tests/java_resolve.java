/*
 * Java's schema resolution, as the reference to check parqour's against. A single-file program
 * (Debian's libavro-java, Avro 1.8.2):
 *
 *     java -cp JARS tests/java_resolve.java IN.avro READER.avsc OUT.avro [IN READER OUT]...
 *
 * reads each IN with GenericDatumReader(writer schema of IN, READER), so that every record is
 * resolved the way Java resolves it (record fields by name and alias, defaults, promotions,
 * union branches: the same type first, then a promotion), and writes the resolved records to
 * OUT, an uncompressed container file of READER. tests/roundtrip.py then compares parqour's
 * Parquet (converted with --reader-schema READER) with OUT value by value, union branches
 * included. Prints `IN ERROR <exception>` (and writes no OUT) when Java cannot resolve a file.
 */

import java.io.File;
import java.util.LinkedHashMap;
import org.apache.avro.Schema;
import org.apache.avro.file.DataFileReader;
import org.apache.avro.file.DataFileWriter;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericDatumWriter;

public class JavaResolve {
    public static void main(String[] args) throws Exception {
        if (args.length % 3 != 0) {
            throw new IllegalArgumentException("arguments: (IN.avro READER.avsc OUT.avro)...");
        }
        for (int i = 0; i < args.length; i += 3) {
            File in = new File(args[i]);
            File out = new File(args[i + 2]);
            try {
                Schema reader = new Schema.Parser().parse(new File(args[i + 1]));
                // Maps keep their order (GenericDatumReader's own are HashMaps), so that Java
                // writes their entries in the order of the input.
                GenericDatumReader<Object> resolving =
                        new GenericDatumReader<Object>(null, reader) {
                            @Override
                            protected Object newMap(Object old, int size) {
                                return new LinkedHashMap<Object, Object>();
                            }
                        };
                try (DataFileReader<Object> records = new DataFileReader<>(in, resolving);
                        DataFileWriter<Object> writer =
                                new DataFileWriter<>(new GenericDatumWriter<>(reader))) {
                    writer.create(reader, out);
                    for (Object record : records) {
                        writer.append(record);
                    }
                }
            } catch (Exception e) {
                System.out.println(args[i] + " ERROR " + e);
                out.delete();
            }
        }
    }
}
