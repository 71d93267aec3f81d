/*
 * Java's schema fingerprints, as the reference to check parqour's against. A single-file
 * program (Debian's libavro-java, Avro 1.8.2):
 *
 *     java -cp JARS tests/java_fingerprints.java SCHEMA.avsc...
 *
 * prints, for each schema file, a line `<path> <SchemaNormalization.parsingFingerprint64>`
 * (the signed long producers put in DataWrapper.schemaFingerprint), or `<path> ERROR <message>`
 * when Java refuses the schema. tests/cli.rs runs it on random schemas (tests/gen_random.py).
 */

import java.io.File;
import org.apache.avro.Schema;
import org.apache.avro.SchemaNormalization;

public class JavaFingerprints {
    public static void main(String[] args) throws Exception {
        for (String path : args) {
            try {
                Schema schema = new Schema.Parser().parse(new File(path));
                System.out.println(path + " " + SchemaNormalization.parsingFingerprint64(schema));
            } catch (Exception e) {
                String message = String.valueOf(e.getMessage()).replace('\n', ' ');
                System.out.println(path + " ERROR " + message);
            }
        }
    }
}
