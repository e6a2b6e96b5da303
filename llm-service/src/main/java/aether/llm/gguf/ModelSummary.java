package aether.llm.gguf;

import aether.runtime.tensor.GgmlType;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What a user wants to know about a model file at a glance, read from an open {@link GgufFile}: architecture, size,
 * quantization, hyperparameters, RoPE, tokenizer. Hyperparameters come from the {@code <arch>.…} keys llama.cpp uses;
 * a key that is absent, or holds something other than a number, leaves its field {@code null} (a summary describes
 * any file it can; loaders are the strict ones). Per-layer arrays (e.g. head counts) are summarized by their maximum.
 *
 * <p>Everything is copied out of the file, so a summary stays valid after the file is closed.
 *
 * @param parameterCount    sum of all tensors' element counts
 * @param fileType          llama.cpp name of {@code general.file_type} ({@code MOSTLY_Q4_0}), or {@code null}
 * @param tensorTypes       how many tensors of each type, most frequent first
 * @param headDim           {@code <arch>.attention.key_length}, else embedding length / head count
 * @param chatTemplateChars length of {@code tokenizer.chat_template}, or {@code null} when there is none
 */
public record ModelSummary(String file, long fileSizeBytes, int ggufVersion, String architecture, String name,
                           long parameterCount, Long fileTypeId, String fileType, Map<String, Integer> tensorTypes,
                           int tensorCount, Long contextLength, Long blockCount, Long headCount, Long headCountKv,
                           Long embeddingLength, Long feedForwardLength, Long headDim, Rope rope, Tokenizer tokenizer,
                           Integer chatTemplateChars) {

    /** RoPE settings; {@code null} fields were absent. */
    public record Rope(Double freqBase, Long dimensionCount, String scalingType, Double scalingFactor) {}

    /** The tokenizer as GGUF describes it. {@code model} is {@code tokenizer.ggml.model} (llama, gpt2, bert, …). */
    public record Tokenizer(String model, Long vocabSize, String pre, List<SpecialToken> specialTokens) {}

    /** A special token: its role (bos, eos, unk, pad, sep, eot), id and text ({@code null} if the id is out of range). */
    public record SpecialToken(String role, long id, String text) {}

    private static final String[][] SPECIAL_TOKEN_KEYS = {
        {"bos", "tokenizer.ggml.bos_token_id"},
        {"eos", "tokenizer.ggml.eos_token_id"},
        {"eot", "tokenizer.ggml.eot_token_id"},
        {"unk", "tokenizer.ggml.unknown_token_id"},
        {"pad", "tokenizer.ggml.padding_token_id"},
        {"sep", "tokenizer.ggml.seperator_token_id"}, // sic: llama.cpp's spelling
    };

    public static ModelSummary of(GgufFile file) {
        GgufMetadata md = file.metadata();
        String arch = string(md, "general.architecture");
        String prefix = (arch == null ? "" : arch) + ".";
        long params = 0;
        var byType = new EnumMap<GgmlType, Integer>(GgmlType.class);
        for (TensorInfo t : file.tensors()) {
            params += t.elementCount();
            byType.merge(t.type(), 1, Integer::sum);
        }
        var histogram = new LinkedHashMap<String, Integer>();
        byType.entrySet().stream()
                .sorted(Map.Entry.<GgmlType, Integer>comparingByValue().reversed())
                .forEach(e -> histogram.put(e.getKey().name(), e.getValue()));
        Long fileTypeId = integer(md, LlamaFileType.KEY);
        String fileType = fileTypeId == null ? null
                : LlamaFileType.byId(fileTypeId).map(Enum::name).orElse("unknown (" + fileTypeId + ")");
        Long heads = integer(md, prefix + "attention.head_count");
        Long embedding = integer(md, prefix + "embedding_length");
        Long headDim = integer(md, prefix + "attention.key_length");
        if (headDim == null && heads != null && embedding != null && heads > 0) {
            headDim = embedding / heads;
        }
        var rope = new Rope(number(md, prefix + "rope.freq_base"), integer(md, prefix + "rope.dimension_count"),
                string(md, prefix + "rope.scaling.type"), number(md, prefix + "rope.scaling.factor"));
        String template = string(md, "tokenizer.chat_template");
        return new ModelSummary(String.valueOf(file.path().getFileName()), file.sizeBytes(), file.version(), arch,
                string(md, "general.name"), params, fileTypeId, fileType, histogram, file.tensors().size(),
                integer(md, prefix + "context_length"), integer(md, prefix + "block_count"), heads,
                integer(md, prefix + "attention.head_count_kv"), embedding, integer(md, prefix + "feed_forward_length"),
                headDim, rope, tokenizer(md), template == null ? null : template.length());
    }

    private static Tokenizer tokenizer(GgufMetadata md) {
        GgufArray tokens = md.get("tokenizer.ggml.tokens").orElse(null) instanceof MetadataValue.Array(GgufArray a)
                && a.elementType() == GgufValueType.STRING ? a : null;
        var special = new ArrayList<SpecialToken>();
        for (String[] roleAndKey : SPECIAL_TOKEN_KEYS) {
            Long id = integer(md, roleAndKey[1]);
            if (id != null) {
                String text = tokens != null && id >= 0 && id < tokens.size() ? tokens.stringAt(id) : null;
                special.add(new SpecialToken(roleAndKey[0], id, text));
            }
        }
        return new Tokenizer(string(md, "tokenizer.ggml.model"), tokens == null ? null : tokens.size(),
                string(md, "tokenizer.ggml.pre"), List.copyOf(special));
    }

    private static String string(GgufMetadata md, String key) {
        return md.get(key).orElse(null) instanceof MetadataValue.Str s ? s.text() : null;
    }

    private static Long integer(GgufMetadata md, String key) {
        return switch (md.get(key).orElse(null)) {
            case MetadataValue.Int i when i.fitsLong() -> i.value();
            case MetadataValue.Array(GgufArray a) when a.elementType().isInteger() && a.size() > 0 -> {
                long max = Long.MIN_VALUE;
                for (long k = 0; k < a.size(); k++) {
                    max = Math.max(max, a.longAt(k));
                }
                yield max;
            }
            case null, default -> null;
        };
    }

    private static Double number(GgufMetadata md, String key) {
        return switch (md.get(key).orElse(null)) {
            case MetadataValue.Float32 f -> (double) f.value();
            case MetadataValue.Float64 f -> f.value();
            case MetadataValue.Int i when i.fitsLong() -> (double) i.value();
            case null, default -> null;
        };
    }

    /** A count for people: 999, 1.5K, 260K, 1.24B (three significant digits, SI-style suffixes). */
    public static String humanCount(long n) {
        if (n < 1000) {
            return Long.toString(n);
        }
        String[] units = {"K", "M", "B", "T"};
        double v = n;
        int u = -1;
        while (v >= 999.5 && u < units.length - 1) {
            v /= 1000;
            u++;
        }
        String pattern = v >= 99.95 ? "%.0f" : v >= 9.995 ? "%.1f" : "%.2f";
        String digits = String.format(Locale.ROOT, pattern, v);
        return digits + units[u];
    }

    /** Bytes for people: 1.13 MiB, 4.21 GiB. */
    public static String humanBytes(long bytes) {
        if (bytes < 1024) {
            return bytes + " B";
        }
        String[] units = {"KiB", "MiB", "GiB", "TiB"};
        double v = bytes;
        int u = -1;
        while (v >= 1023.995 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return String.format(Locale.ROOT, "%.2f %s", v, units[u]);
    }
}
