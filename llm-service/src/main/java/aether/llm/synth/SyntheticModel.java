package aether.llm.synth;

import aether.llm.gguf.GgufFile;
import aether.llm.gguf.GgufMetadata;
import aether.llm.gguf.GgufValueType;
import aether.llm.gguf.GgufWriter;
import aether.llm.gguf.LlamaFileType;
import aether.llm.gguf.MetadataValue;
import aether.runtime.quant.BlockCodec;
import aether.runtime.quant.BlockCodecs;
import aether.runtime.tensor.GgmlType;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.LongConsumer;

/**
 * A random-weight Llama model of a given {@link SynthSpec}, with the tokenizer of a real vocab GGUF, written as a
 * GGUF file that llama.cpp and Aether both load. Weights are N(0, 0.02²) (norm weights 1 + N(0, 0.1²)), quantized
 * with the reference quantizers while streaming, so multi-gigabyte files need only a few megabytes of memory.
 *
 * <p>Tensor names and shapes are llama.cpp's for {@code general.architecture = llama}; every 2-D weight has the spec's
 * type (like {@code llama-quantize --pure}), norms are F32, and {@code output.weight} is separate (not tied).
 */
public final class SyntheticModel {

    static final float WEIGHT_STD = 0.02f;
    static final float NORM_STD = 0.1f;

    /** One planned tensor: its GGUF name, ggml shape ({@code ne[0]} = row length), type and value distribution. */
    public record PlannedTensor(String name, long[] ne, GgmlType type, float mean, float std) {
        public long elements() {
            long n = 1;
            for (long d : ne) {
                n = Math.multiplyExact(n, d);
            }
            return n;
        }

        public long bytes() {
            return type.bytesFor(ne);
        }
    }

    private final SynthSpec spec;
    private final Path vocabFile;
    private final int vocabSize;

    private SyntheticModel(SynthSpec spec, Path vocabFile, int vocabSize) {
        this.spec = spec;
        this.vocabFile = vocabFile;
        this.vocabSize = vocabSize;
    }

    /**
     * A model of {@code spec} using the {@code tokenizer.*} metadata of {@code vocabFile} (vocab size = its token
     * count). The vocab file is read here and again while writing.
     *
     * @throws IllegalArgumentException if the vocab file has no {@code tokenizer.ggml.tokens}, or the weight type
     *                                  cannot be written (no quantizer for it)
     */
    public static SyntheticModel of(SynthSpec spec, Path vocabFile) throws IOException {
        BlockCodec codec = BlockCodecs.require(spec.weightType());
        if (!codec.canQuantize()) {
            throw new IllegalArgumentException("type: %s cannot be written (no quantizer for it; expected one of %s)"
                    .formatted(spec.weightType(), writableTypes()));
        }
        try (GgufFile vocab = GgufFile.open(vocabFile)) {
            GgufMetadata source = vocab.metadata();
            if (!source.contains("tokenizer.ggml.tokens")) {
                throw new IllegalArgumentException("vocab file %s has no tokenizer.ggml.tokens".formatted(vocabFile));
            }
            return new SyntheticModel(spec, vocabFile, source.requireArray("tokenizer.ggml.tokens").intSize());
        }
    }

    /** Types {@code synth} can write: every type with a quantizer except F64 and the integer types. */
    public static List<GgmlType> writableTypes() {
        var out = new ArrayList<GgmlType>();
        for (GgmlType t : GgmlType.values()) {
            if ((t.isQuantized() || t == GgmlType.F32 || t == GgmlType.F16 || t == GgmlType.BF16)
                    && BlockCodecs.find(t).map(BlockCodec::canQuantize).orElse(false)) {
                out.add(t);
            }
        }
        return out;
    }

    public SynthSpec spec() {
        return spec;
    }

    public int vocabSize() {
        return vocabSize;
    }

    /** Every tensor in file order: embeddings, then each block, then the output norm and head. */
    public List<PlannedTensor> tensors() {
        GgmlType w = spec.weightType();
        long dim = spec.dim(), ffn = spec.ffn(), kv = (long) spec.kvHeads() * spec.headDim();
        var out = new ArrayList<PlannedTensor>();
        out.add(new PlannedTensor("token_embd.weight", new long[] {dim, vocabSize}, w, 0, WEIGHT_STD));
        for (int l = 0; l < spec.layers(); l++) {
            String b = "blk." + l + ".";
            out.add(new PlannedTensor(b + "attn_norm.weight", new long[] {dim}, GgmlType.F32, 1, NORM_STD));
            out.add(new PlannedTensor(b + "attn_q.weight", new long[] {dim, dim}, w, 0, WEIGHT_STD));
            out.add(new PlannedTensor(b + "attn_k.weight", new long[] {dim, kv}, w, 0, WEIGHT_STD));
            out.add(new PlannedTensor(b + "attn_v.weight", new long[] {dim, kv}, w, 0, WEIGHT_STD));
            out.add(new PlannedTensor(b + "attn_output.weight", new long[] {dim, dim}, w, 0, WEIGHT_STD));
            out.add(new PlannedTensor(b + "ffn_norm.weight", new long[] {dim}, GgmlType.F32, 1, NORM_STD));
            out.add(new PlannedTensor(b + "ffn_gate.weight", new long[] {dim, ffn}, w, 0, WEIGHT_STD));
            out.add(new PlannedTensor(b + "ffn_up.weight", new long[] {dim, ffn}, w, 0, WEIGHT_STD));
            out.add(new PlannedTensor(b + "ffn_down.weight", new long[] {ffn, dim}, w, 0, WEIGHT_STD));
        }
        out.add(new PlannedTensor("output_norm.weight", new long[] {dim}, GgmlType.F32, 1, NORM_STD));
        out.add(new PlannedTensor("output.weight", new long[] {dim, vocabSize}, w, 0, WEIGHT_STD));
        return out;
    }

    /** Total parameters (elements of every tensor). */
    public long parameterCount() {
        long n = 0;
        for (PlannedTensor t : tensors()) {
            n += t.elements();
        }
        return n;
    }

    /** Bytes of tensor data (without header and padding). */
    public long tensorBytes() {
        long n = 0;
        for (PlannedTensor t : tensors()) {
            n += t.bytes();
        }
        return n;
    }

    /**
     * The file's metadata: llama hyper-parameters in llama.cpp's key names, then the {@code tokenizer.*} keys of
     * {@code vocab} (whose arrays view its mapping: use the result while {@code vocab} is open).
     */
    GgufMetadata metadata(GgufMetadata vocab) {
        var m = GgufMetadata.builder()
                .put("general.architecture", MetadataValue.Str.of("llama"))
                .put("general.name", MetadataValue.Str.of(spec.name()))
                .put(LlamaFileType.KEY, u32(fileType(spec.weightType()).id()))
                .put("general.quantization_version", u32(2))
                .put("general.alignment", u32(GgufMetadata.DEFAULT_ALIGNMENT))
                .put("aether.synth.seed", new MetadataValue.Int(GgufValueType.UINT64, spec.seed()))
                .put("llama.vocab_size", u32(vocabSize))
                .put("llama.context_length", u32(spec.contextLength()))
                .put("llama.embedding_length", u32(spec.dim()))
                .put("llama.block_count", u32(spec.layers()))
                .put("llama.feed_forward_length", u32(spec.ffn()))
                .put("llama.rope.dimension_count", u32(spec.headDim()))
                .put("llama.attention.head_count", u32(spec.heads()))
                .put("llama.attention.head_count_kv", u32(spec.kvHeads()))
                .put("llama.attention.layer_norm_rms_epsilon", new MetadataValue.Float32(spec.rmsEps()))
                .put("llama.rope.freq_base", new MetadataValue.Float32(spec.ropeFreqBase()));
        for (String key : vocab.keys()) {
            if (key.startsWith("tokenizer.")) {
                m.put(key, vocab.require(key));
            }
        }
        return m.build();
    }

    /**
     * Writes the model to {@code path} using {@code threads} threads for generation and quantization; the bytes do
     * not depend on the thread count. {@code progress} receives the tensor bytes written so far.
     */
    public long write(Path path, int threads, LongConsumer progress) throws IOException {
        List<PlannedTensor> plan = tensors();
        try (var vocab = GgufFile.open(vocabFile); var generator = new RowGenerator(spec.seed(), threads)) {
            var written = new long[] {0};
            var tensors = new ArrayList<GgufWriter.Tensor>(plan.size());
            for (int i = 0; i < plan.size(); i++) {
                PlannedTensor t = plan.get(i);
                int index = i;
                tensors.add(new GgufWriter.Tensor(t.name(), t.type(), t.ne(), (offset, window) -> {
                    generator.fill(index, t, offset, window);
                    written[0] += window.byteSize();
                    progress.accept(written[0]);
                }));
            }
            return GgufWriter.write(path, metadata(vocab.metadata()), tensors);
        }
    }

    /** llama.cpp's file type for a model whose matrices all have {@code type}. */
    static LlamaFileType fileType(GgmlType type) {
        return switch (type) {
            case F32 -> LlamaFileType.ALL_F32;
            case F16 -> LlamaFileType.MOSTLY_F16;
            case BF16 -> LlamaFileType.MOSTLY_BF16;
            case Q4_0 -> LlamaFileType.MOSTLY_Q4_0;
            case Q4_1 -> LlamaFileType.MOSTLY_Q4_1;
            case Q5_0 -> LlamaFileType.MOSTLY_Q5_0;
            case Q5_1 -> LlamaFileType.MOSTLY_Q5_1;
            case Q8_0 -> LlamaFileType.MOSTLY_Q8_0;
            case Q2_K -> LlamaFileType.MOSTLY_Q2_K;
            case Q3_K -> LlamaFileType.MOSTLY_Q3_K_M;
            case Q4_K -> LlamaFileType.MOSTLY_Q4_K_M;
            case Q5_K -> LlamaFileType.MOSTLY_Q5_K_M;
            case Q6_K -> LlamaFileType.MOSTLY_Q6_K;
            case IQ4_NL -> LlamaFileType.MOSTLY_IQ4_NL;
            case IQ4_XS -> LlamaFileType.MOSTLY_IQ4_XS;
            case TQ1_0 -> LlamaFileType.MOSTLY_TQ1_0;
            case TQ2_0 -> LlamaFileType.MOSTLY_TQ2_0;
            default -> LlamaFileType.GUESSED;
        };
    }

    private static MetadataValue u32(long v) {
        return new MetadataValue.Int(GgufValueType.UINT32, v);
    }
}
