package aether.llm.cli;

import aether.llm.gguf.GgufArray;
import aether.llm.gguf.GgufFile;
import aether.llm.gguf.GgufFormatException;
import aether.llm.gguf.MetadataValue;
import aether.llm.gguf.ModelSummary;
import aether.llm.gguf.TensorInfo;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.PrintWriter;
import java.math.BigInteger;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code ./aether inspect FILE}: validates a GGUF file and prints what it holds. A file that fails validation or
 * cannot be read gives exactly one line on stderr, {@code aether inspect: <message>}, and exit code 2 (with the stack
 * trace too under {@code --debug}).
 */
@Command(name = "inspect", sortOptions = false,
        description = "Validate a GGUF model file and summarize it: architecture, size, quantization, "
                + "hyperparameters, tokenizer.")
public final class InspectCommand implements Callable<Integer> {

    static final int EXIT_BAD_FILE = 2;
    private static final int ARRAY_JSON_ELEMENTS = 8;
    private static final int STRING_DISPLAY_CHARS = 80;

    @Parameters(paramLabel = "FILE", description = "the .gguf file")
    Path file;

    @Option(names = "--tensors", description = "list every tensor: name, type, shape, bytes")
    boolean tensors;

    @Option(names = "--metadata", description = "list every metadata key with its type and value (long values abbreviated)")
    boolean metadata;

    @Option(names = "--json", description = "print a JSON document instead of text")
    boolean json;

    @Option(names = "--verify", description = "read the whole data section and print its SHA-256")
    boolean verify;

    @Option(names = "--debug", description = "print the stack trace of a failure")
    boolean debug;

    @Option(names = {"-h", "--help"}, usageHelp = true, description = "show this help and exit")
    boolean help;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        try {
            if (Files.isDirectory(file)) {
                return fail(file + ": is a directory, expected a .gguf file", null);
            }
            try (GgufFile gguf = GgufFile.open(file)) {
                ModelSummary summary = ModelSummary.of(gguf);
                String sha = verify ? gguf.dataSha256() : null;
                if (json) {
                    out.println(json(gguf, summary, sha));
                } else {
                    printText(out, gguf, summary, sha);
                }
                out.flush();
                return 0;
            }
        } catch (GgufFormatException e) {
            return fail(e.getMessage(), e);
        } catch (NoSuchFileException e) {
            return fail(file + ": no such file", e);
        } catch (AccessDeniedException e) {
            return fail(file + ": permission denied", e);
        } catch (IOException e) {
            return fail(file + ": " + e.getMessage(), e);
        } catch (RuntimeException e) {
            return fail(file + ": unexpected " + e, e);
        }
    }

    private int fail(String message, Exception cause) {
        PrintWriter err = spec.commandLine().getErr();
        err.println("aether inspect: " + message.replace('\n', ' '));
        if (debug && cause != null) {
            cause.printStackTrace(err);
        }
        err.flush();
        return EXIT_BAD_FILE;
    }

    // ---- text ----

    private void printText(PrintWriter out, GgufFile gguf, ModelSummary s, String sha) {
        out.printf("%s: GGUF v%d, %s, %,d tensors, %,d metadata keys%n", s.file(), s.ggufVersion(),
                ModelSummary.humanBytes(s.fileSizeBytes()), s.tensorCount(), gguf.metadata().size());
        row(out, "architecture", s.architecture());
        row(out, "name", s.name());
        row(out, "parameters", s.tensorCount() == 0 ? "-"
                : "%s (%,d)".formatted(ModelSummary.humanCount(s.parameterCount()), s.parameterCount()));
        row(out, "file type", s.fileType() == null ? null : "%s (general.file_type = %d)".formatted(s.fileType(), s.fileTypeId()));
        row(out, "tensor types", s.tensorTypes().isEmpty() ? null : s.tensorTypes().entrySet().stream()
                .map(e -> e.getKey() + " ×" + e.getValue()).collect(Collectors.joining(", ")));
        row(out, "context length", s.contextLength());
        row(out, "layers", s.blockCount());
        row(out, "heads", s.headCount());
        row(out, "kv heads", s.headCountKv());
        row(out, "embedding dim", s.embeddingLength());
        row(out, "ffn dim", s.feedForwardLength());
        row(out, "head dim", s.headDim());
        ModelSummary.Rope rope = s.rope();
        row(out, "rope", "freq base %s, dims %s, scaling %s%s".formatted(dash(number(rope.freqBase())),
                dash(rope.dimensionCount()), dash(rope.scalingType()),
                rope.scalingFactor() == null ? "" : " ×" + number(rope.scalingFactor())));
        ModelSummary.Tokenizer tok = s.tokenizer();
        row(out, "tokenizer", tok.model() == null && tok.vocabSize() == null ? null
                : "%s, %s tokens".formatted(dash(tok.model()), tok.vocabSize() == null ? "-" : "%,d".formatted(tok.vocabSize())));
        row(out, "pre-tokenizer", tok.pre());
        row(out, "special tokens", tok.specialTokens().isEmpty() ? null : tok.specialTokens().stream()
                .map(t -> t.text() != null ? "%s %d %s".formatted(t.role(), t.id(), quote(t.text()))
                        : t.id() == 0xFFFF_FFFFL || t.id() < 0 ? t.role() + " none"
                        : "%s %d (out of range)".formatted(t.role(), t.id()))
                .collect(Collectors.joining(", ")));
        row(out, "chat template", s.chatTemplateChars() == null ? "none"
                : "present (%,d chars)".formatted(s.chatTemplateChars()));
        if (sha != null) {
            row(out, "data sha256", "%s (%,d bytes)".formatted(sha, gguf.dataSection().byteSize()));
        }
        if (tensors) {
            printTensors(out, gguf.tensors());
        }
        if (metadata) {
            printMetadata(out, gguf);
        }
    }

    private static void row(PrintWriter out, String label, Object value) {
        out.printf("  %-16s%s%n", label, value == null ? "-" : value);
    }

    private static String dash(Object value) {
        return value == null ? "-" : value.toString();
    }

    private static String number(Double d) {
        if (d == null) {
            return null;
        }
        return d == Math.rint(d) && Math.abs(d) < 1e15 ? Long.toString(d.longValue()) : d.toString();
    }

    private static void printTensors(PrintWriter out, List<TensorInfo> infos) {
        out.printf("%ntensors (%,d):%n", infos.size());
        int nameWidth = Math.max(4, infos.stream().mapToInt(t -> t.name().length()).max().orElse(4));
        int shapeWidth = Math.max(5, infos.stream().mapToInt(t -> shape(t).length()).max().orElse(5));
        String format = "  %-" + nameWidth + "s  %-8s  %-" + shapeWidth + "s  %14s%n";
        out.printf(format, "name", "type", "shape", "bytes");
        for (TensorInfo t : infos) {
            out.printf(format, t.name(), t.type(), shape(t), "%,d".formatted(t.sizeBytes()));
        }
    }

    private static String shape(TensorInfo t) {
        return t.rank() == 0 ? "scalar" : Arrays.stream(t.shape()).mapToObj(Long::toString).collect(Collectors.joining(" x "));
    }

    private static void printMetadata(PrintWriter out, GgufFile gguf) {
        Map<String, MetadataValue> all = gguf.metadata().asMap();
        out.printf("%nmetadata (%,d keys):%n", all.size());
        int keyWidth = all.keySet().stream().mapToInt(String::length).max().orElse(3);
        String format = "  %-" + keyWidth + "s  %-8s  %s%n";
        for (var e : all.entrySet()) {
            MetadataValue v = e.getValue();
            String shown = switch (v) {
                case MetadataValue.Str str -> quote(str.text());
                default -> v.toString();
            };
            out.printf(format, e.getKey(), v.type(), shown);
        }
    }

    private static String quote(String s) {
        var sb = new StringBuilder("\"");
        int n = Math.min(s.length(), STRING_DISPLAY_CHARS);
        for (int i = 0; i < n; i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                default -> sb.append(c < 0x20 || c == 0x7F ? String.format(Locale.ROOT, "\\x%02x", (int) c) : String.valueOf(c));
            }
        }
        if (s.length() > n) {
            sb.append("…\" (%,d chars)".formatted(s.length()));
            return sb.toString();
        }
        return sb.append('"').toString();
    }

    // ---- JSON ----

    private String json(GgufFile gguf, ModelSummary summary, String sha) throws IOException {
        var mapper = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        ObjectNode root = mapper.valueToTree(summary);
        root.put("parameters", ModelSummary.humanCount(summary.parameterCount()));
        if (sha != null) {
            root.put("dataSha256", sha);
            root.put("dataBytes", gguf.dataSection().byteSize());
        }
        if (tensors) {
            ArrayNode list = root.putArray("tensors");
            for (TensorInfo t : gguf.tensors()) {
                ObjectNode node = list.addObject().put("name", t.name()).put("type", t.type().name());
                ArrayNode shape = node.putArray("shape");
                for (long d : t.shape()) {
                    shape.add(d);
                }
                node.put("offset", t.offset()).put("bytes", t.sizeBytes());
            }
        }
        if (metadata) {
            ObjectNode md = root.putObject("metadata");
            gguf.metadata().asMap().forEach((key, value) ->
                    md.putObject(key).put("type", value.type().name()).set("value", jsonValue(value)));
        }
        return mapper.writeValueAsString(root);
    }

    private static JsonNode jsonValue(MetadataValue value) {
        var f = JsonNodeFactory.instance;
        return switch (value) {
            case MetadataValue.Int i -> i.fitsLong() ? f.numberNode(i.value()) : f.numberNode(new BigInteger(i.toString()));
            case MetadataValue.Float32 x -> f.numberNode(x.value());
            case MetadataValue.Float64 x -> f.numberNode(x.value());
            case MetadataValue.Bool b -> f.booleanNode(b.value());
            case MetadataValue.Str s -> f.textNode(s.text());
            case MetadataValue.Array(GgufArray a) -> {
                ObjectNode node = f.objectNode().put("elementType", a.elementType().name()).put("length", a.size());
                ArrayNode first = node.putArray("first");
                for (long k = 0; k < Math.min(a.size(), ARRAY_JSON_ELEMENTS); k++) {
                    first.add(jsonValue(a.valueAt(k)));
                }
                yield node;
            }
        };
    }
}
