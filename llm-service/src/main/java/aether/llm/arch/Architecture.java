package aether.llm.arch;

import aether.llm.gguf.GgufFile;
import aether.llm.model.ModelConfig;
import aether.llm.model.ModelLoadException;
import aether.llm.model.ModelWeights;
import java.util.List;

/**
 * A decoder-only transformer architecture with its weights bound: it builds the forward graph for a batch of new tokens
 * after a number of cached positions. Implementations are immutable; the graphs they build are not thread-safe, and
 * the weights they hold are valid while the {@link GgufFile} they were loaded from stays open.
 */
public sealed interface Architecture
        permits LlamaArchitecture, Phi3Architecture, Gemma2Architecture {

    /** The GGUF {@code general.architecture} values this build runs. */
    List<String> SUPPORTED = List.of("llama", "qwen2", "qwen3", "phi3", "gemma2");

    ModelConfig config();

    /**
     * A new forward graph for {@code tokens} new tokens at positions {@code [past, past + tokens)} that attend to {@code
     * past} cached positions, rounding activations as {@code numerics} says.
     *
     * @throws IllegalArgumentException when {@code tokens < 1}, {@code past < 0} or the end passes the context length
     */
    default ForwardGraph buildForward(int tokens, int past, Numerics numerics) {
        return buildForward(tokens, past, numerics, StepShape.Output.LOGITS);
    }

    /**
     * {@link #buildForward(int, int, Numerics)} ending with {@code output}: the last token's logits, or its final
     * hidden state (after the output norm, no LM head) for {@link StepShape.Output#HIDDEN}.
     */
    ForwardGraph buildForward(int tokens, int past, Numerics numerics, StepShape.Output output);

    /**
     * A new shape-stable step graph over a paged KV cache: built once per {@code shape} (tokens in the step, output
     * rows, cache geometry, logits or hidden states) and run for every step of that shape, whatever sequences and
     * positions it covers.
     */
    StepGraph buildStep(StepShape shape, Numerics numerics);

    /**
     * {@link #buildStep(StepShape, Numerics)} for the layers of {@code layers} only (one device's share of a model split
     * between devices; see {@link LayerRange} for what such a graph takes and gives).
     *
     * @throws IllegalArgumentException when the architecture cannot run a part of its layers (only the llama family
     *                                  can), or the range is not of this model
     */
    default StepGraph buildStep(StepShape shape, Numerics numerics, LayerRange layers) {
        if (layers.count() != config().blockCount()) {
            throw new IllegalArgumentException(config().architecture() + ": " + layers + " for a model of "
                    + config().blockCount() + " layers");
        }
        if (layers.isAll()) {
            return buildStep(shape, numerics);
        }
        throw new IllegalArgumentException(config().architecture() + ": running " + layers + " (a model split between "
                + "devices) is implemented for llama, qwen2 and qwen3 only");
    }

    /**
     * The architecture named by {@code file}'s {@code general.architecture}, with its config read and every tensor it
     * needs looked up (nothing is copied).
     *
     * @throws ModelLoadException for an unknown architecture (the message lists {@link #SUPPORTED}), a missing or
     *                            mis-shaped tensor (named), or a bad hyper-parameter (named)
     */
    static Architecture load(GgufFile file) {
        String name = file.metadata().getString("general.architecture")
                .orElseThrow(() -> new ModelLoadException("?", "metadata 'general.architecture' is missing from "
                        + file.path().getFileName() + " (supported architectures: " + String.join(", ", SUPPORTED)
                        + ")"));
        if (!SUPPORTED.contains(name)) {
            throw new ModelLoadException(name, "unsupported architecture '" + name + "' in "
                    + file.path().getFileName() + " (supported architectures: " + String.join(", ", SUPPORTED) + ")");
        }
        ModelConfig config = ModelConfig.read(file);
        ModelWeights weights = new ModelWeights(file, name);
        return switch (name) {
            case "llama" -> new LlamaArchitecture(config, weights, LlamaArchitecture.Variant.LLAMA);
            case "qwen2" -> new LlamaArchitecture(config, weights, LlamaArchitecture.Variant.QWEN2);
            case "qwen3" -> new LlamaArchitecture(config, weights, LlamaArchitecture.Variant.QWEN3);
            case "phi3" -> new Phi3Architecture(config, weights);
            case "gemma2" -> new Gemma2Architecture(config, weights);
            default -> throw new IllegalStateException("SUPPORTED lists '" + name + "' without a class");
        };
    }
}
