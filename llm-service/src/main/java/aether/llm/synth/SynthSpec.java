package aether.llm.synth;

import aether.runtime.tensor.GgmlType;

/**
 * The shape of a synthetic Llama-architecture model: what {@code ./aether synth} writes.
 *
 * @param name          {@code general.name} written into the file
 * @param layers        transformer blocks
 * @param dim           embedding width ({@code n_embd})
 * @param ffn           feed-forward hidden width
 * @param heads         attention heads
 * @param kvHeads       key/value heads (GQA when fewer than {@code heads})
 * @param contextLength {@code llama.context_length}
 * @param ropeFreqBase  RoPE θ base
 * @param rmsEps        RMSNorm epsilon
 * @param weightType    ggml type of every 2-D weight (norms stay F32, as with {@code llama-quantize --pure})
 * @param seed          makes the weights reproducible: the same spec and seed give a byte-identical file
 */
public record SynthSpec(
        String name,
        int layers,
        int dim,
        int ffn,
        int heads,
        int kvHeads,
        int contextLength,
        float ropeFreqBase,
        float rmsEps,
        GgmlType weightType,
        long seed) {

    public SynthSpec {
        require(layers >= 1, "layers", layers, "1+");
        require(dim >= 1, "dim", dim, "1+");
        require(ffn >= 1, "ffn", ffn, "1+");
        require(heads >= 1 && dim % heads == 0, "heads", heads, "1+ and a divisor of dim " + dim);
        require(kvHeads >= 1 && heads % kvHeads == 0, "kv-heads", kvHeads, "1+ and a divisor of heads " + heads);
        require(contextLength >= 1, "context", contextLength, "1+");
        require(ropeFreqBase > 0, "rope-base", ropeFreqBase, "> 0");
        require(rmsEps > 0, "rms-eps", rmsEps, "> 0");
        if (weightType == null || !weightType.isFloat() && !weightType.isQuantized() || weightType == GgmlType.F64) {
            throw new IllegalArgumentException("type: %s (expected: F32, F16, BF16 or a block format)".formatted(weightType));
        }
        for (int width : new int[] {dim, ffn}) {
            if (width % weightType.blockSize() != 0) {
                throw new IllegalArgumentException("type %s needs rows that are multiples of %d elements, but a row has %d"
                        .formatted(weightType, weightType.blockSize(), width));
            }
        }
    }

    /** Width of one attention head. */
    public int headDim() {
        return dim / heads;
    }

    /** A copy with another weight type. */
    public SynthSpec withType(GgmlType type) {
        return new SynthSpec(name, layers, dim, ffn, heads, kvHeads, contextLength, ropeFreqBase, rmsEps, type, seed);
    }

    /** A copy with another seed. */
    public SynthSpec withSeed(long newSeed) {
        return new SynthSpec(name, layers, dim, ffn, heads, kvHeads, contextLength, ropeFreqBase, rmsEps, weightType, newSeed);
    }

    private static void require(boolean ok, String field, Object value, String expected) {
        if (!ok) {
            throw new IllegalArgumentException("%s: %s (expected: %s)".formatted(field, value, expected));
        }
    }

    /** The named presets: {@code tiny} for tests, {@code 1b} and {@code 8b} at the shapes benchmarks use. */
    public static SynthSpec preset(String preset, GgmlType type, long seed) {
        return switch (preset.toLowerCase()) {
            case "tiny" -> new SynthSpec("synth-tiny", 2, 256, 512, 4, 2, 2048, 10000f, 1e-5f, type, seed);
            case "1b" -> new SynthSpec("synth-1b", 16, 2048, 8192, 32, 8, 4096, 500000f, 1e-5f, type, seed);
            case "8b" -> new SynthSpec("synth-8b", 32, 4096, 14336, 32, 8, 8192, 500000f, 1e-5f, type, seed);
            default -> throw new IllegalArgumentException("preset: %s (expected: tiny, 1b or 8b)".formatted(preset));
        };
    }
}
