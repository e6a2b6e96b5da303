package aether.llm.model;

import aether.llm.gguf.GgufFile;
import aether.llm.gguf.GgufFormatException;
import aether.llm.gguf.GgufMetadata;
import java.util.Locale;

/**
 * The hyper-parameters of a decoder-only transformer, read from GGUF metadata ({@code <arch>.embedding_length} and
 * friends) with llama.cpp's defaults, and validated here once so that graph builders can trust them.
 *
 * @param architecture       GGUF {@code general.architecture} ({@code llama}, {@code qwen2}, ...)
 * @param vocabSize          number of tokens (rows of the embedding and output matrices)
 * @param embeddingLength    model width n_embd
 * @param blockCount         number of transformer layers
 * @param feedForwardLength  hidden width of the feed-forward network n_ff
 * @param headCount          query heads
 * @param headCountKv        key/value heads (a divisor of {@code headCount}: grouped-query attention)
 * @param headDim            size of one query/key head ({@code attention.key_length}, default n_embd / n_head)
 * @param valueHeadDim       size of one value head ({@code attention.value_length}, default {@code headDim})
 * @param ropeDimensions     leading dimensions of each head that RoPE rotates ({@code rope.dimension_count})
 * @param ropeFreqBase       RoPE base θ ({@code rope.freq_base}, default 10000)
 * @param ropeFreqScale      position scale of linear RoPE scaling (1 / {@code rope.scaling.factor}; 1 = none)
 * @param rmsEps             epsilon of every RMSNorm
 * @param contextLength      training context length in tokens ({@code context_length})
 * @param slidingWindow      sliding-window size of the layers that use one (0 = none): a key at p0 is visible to a
 *                           query at p1 only if {@code p1 - p0 < slidingWindow}
 * @param attentionSoftCap   soft-capping of attention scores {@code c * tanh(s / c)} (0 = off)
 * @param finalSoftCap       soft-capping of the output logits (0 = off)
 */
public record ModelConfig(
        String architecture,
        int vocabSize,
        int embeddingLength,
        int blockCount,
        int feedForwardLength,
        int headCount,
        int headCountKv,
        int headDim,
        int valueHeadDim,
        int ropeDimensions,
        double ropeFreqBase,
        double ropeFreqScale,
        double rmsEps,
        int contextLength,
        int slidingWindow,
        double attentionSoftCap,
        double finalSoftCap) {

    public ModelConfig {
        if (architecture == null || architecture.isEmpty()) {
            throw new IllegalArgumentException("model config: architecture is required");
        }
        positive(architecture, "vocab size", vocabSize);
        positive(architecture, "embedding_length", embeddingLength);
        positive(architecture, "block_count", blockCount);
        positive(architecture, "feed_forward_length", feedForwardLength);
        positive(architecture, "attention.head_count", headCount);
        positive(architecture, "attention.head_count_kv", headCountKv);
        positive(architecture, "attention.key_length", headDim);
        positive(architecture, "attention.value_length", valueHeadDim);
        positive(architecture, "context_length", contextLength);
        if (headCount % headCountKv != 0) {
            throw invalid(architecture, "attention.head_count " + headCount
                    + " must be a multiple of attention.head_count_kv " + headCountKv);
        }
        if (ropeDimensions <= 0 || ropeDimensions % 2 != 0 || ropeDimensions > headDim) {
            throw invalid(architecture, "rope.dimension_count " + ropeDimensions + " (expected: even, 2.." + headDim
                    + " = the head size)");
        }
        if (!(ropeFreqBase > 0) || !Double.isFinite(ropeFreqBase)) {
            throw invalid(architecture, "rope.freq_base " + ropeFreqBase + " (expected: finite, > 0)");
        }
        if (!(ropeFreqScale > 0) || !Double.isFinite(ropeFreqScale)) {
            throw invalid(architecture, "rope frequency scale " + ropeFreqScale + " (expected: finite, > 0)");
        }
        if (!(rmsEps >= 0) || !Double.isFinite(rmsEps)) {
            throw invalid(architecture, "attention.layer_norm_rms_epsilon " + rmsEps + " (expected: finite, >= 0)");
        }
        if (slidingWindow < 0) {
            throw invalid(architecture, "attention.sliding_window " + slidingWindow + " (expected: 0+, 0 = none)");
        }
        if (!(attentionSoftCap >= 0) || !Double.isFinite(attentionSoftCap)
                || !(finalSoftCap >= 0) || !Double.isFinite(finalSoftCap)) {
            throw invalid(architecture, "soft-capping " + attentionSoftCap + " / " + finalSoftCap
                    + " (expected: finite, >= 0, 0 = off)");
        }
    }

    /** Width of all query heads together (n_head * head_dim). */
    public int queryWidth() {
        return headCount * headDim;
    }

    /** Width of all key heads together (n_head_kv * head_dim): one row of the K cache per token. */
    public int keyWidth() {
        return headCountKv * headDim;
    }

    /** Width of all value heads together (n_head_kv * value_head_dim): one row of the V cache per token. */
    public int valueWidth() {
        return headCountKv * valueHeadDim;
    }

    /**
     * Reads the config of {@code file}'s {@code general.architecture}. The vocabulary size is the length of {@code
     * tokenizer.ggml.tokens}, else {@code <arch>.vocab_size}, else the rows of {@code token_embd.weight}.
     *
     * @throws ModelLoadException naming the key when a required key is missing, mistyped or out of range, or when the
     *                            file asks for a RoPE scaling this build does not implement
     */
    public static ModelConfig read(GgufFile file) {
        GgufMetadata md = file.metadata();
        String arch = md.getString("general.architecture").orElse("?");
        try {
            return read(arch, md, embeddingRows(file));
        } catch (GgufFormatException e) {
            throw new ModelLoadException(arch, e.getMessage());
        }
    }

    private static int embeddingRows(GgufFile file) {
        return file.tensor("token_embd.weight")
                .map(t -> t.rank() >= 2 ? (int) Math.min(t.dim(1), Integer.MAX_VALUE) : 0)
                .orElse(0);
    }

    private static ModelConfig read(String arch, GgufMetadata md, int embeddingRows) {
        String p = arch + ".";
        int nEmbd = md.requireInt(p + "embedding_length");
        int nHead = md.requireInt(p + "attention.head_count");
        int nHeadKv = md.getInt(p + "attention.head_count_kv", nHead);
        if (nHead <= 0) {
            throw invalid(arch, p + "attention.head_count " + nHead + " (expected: 1+)");
        }
        int headDim = md.getInt(p + "attention.key_length", nEmbd / nHead);
        int valueHeadDim = md.getInt(p + "attention.value_length", headDim);
        int vocab = md.contains("tokenizer.ggml.tokens")
                ? (int) Math.min(md.requireArray("tokenizer.ggml.tokens").size(), Integer.MAX_VALUE)
                : md.getInt(p + "vocab_size", embeddingRows);
        boolean gemma2 = arch.equals("gemma2");
        return new ModelConfig(
                arch,
                vocab,
                nEmbd,
                md.requireInt(p + "block_count"),
                md.requireInt(p + "feed_forward_length"),
                nHead,
                nHeadKv,
                headDim,
                valueHeadDim,
                md.getInt(p + "rope.dimension_count", headDim),
                md.getDouble(p + "rope.freq_base", 10000.0),
                ropeFreqScale(arch, md),
                md.requireDouble(p + "attention.layer_norm_rms_epsilon"),
                md.requireInt(p + "context_length"),
                // llama.cpp's defaults for Gemma 2 when the converter left the keys out
                md.getInt(p + "attention.sliding_window", gemma2 ? 4096 : 0),
                md.getDouble(p + "attn_logit_softcapping", gemma2 ? 50.0 : 0.0),
                md.getDouble(p + "final_logit_softcapping", gemma2 ? 30.0 : 0.0));
    }

    /**
     * Linear RoPE scaling divides positions by {@code rope.scaling.factor}. Llama 3's frequency-dependent scaling needs
     * no key: it comes as the {@code rope_freqs.weight} tensor, which the graph builder applies.
     */
    private static double ropeFreqScale(String arch, GgufMetadata md) {
        String p = arch + ".";
        String type = md.getString(p + "rope.scaling.type", "none").toLowerCase(Locale.ROOT);
        double factor = switch (type) {
            case "none", "" -> 1.0;
            case "linear" -> md.getDouble(p + "rope.scaling.factor", 1.0);
            default -> throw new ModelLoadException(arch, "metadata '" + p + "rope.scaling.type' is '" + type
                    + "' (supported: none, linear; Llama 3 scaling comes as the rope_freqs.weight tensor)");
        };
        if (md.contains(p + "rope.scale_linear")) {   // the key older converters wrote
            factor = md.requireDouble(p + "rope.scale_linear");
        }
        if (!(factor > 0) || !Double.isFinite(factor)) {
            throw invalid(arch, "rope scaling factor " + factor + " (expected: finite, > 0)");
        }
        return factor == 0 ? 1.0 : 1.0 / factor;
    }

    private static void positive(String arch, String key, int value) {
        if (value <= 0) {
            throw invalid(arch, key + " " + value + " (expected: 1+)");
        }
    }

    private static ModelLoadException invalid(String arch, String what) {
        return new ModelLoadException(arch, "invalid hyper-parameter: " + what);
    }
}
