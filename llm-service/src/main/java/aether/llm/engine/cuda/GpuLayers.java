package aether.llm.engine.cuda;

/**
 * {@code --gpu-layers N}: how many of a model's transformer layers run on the GPU, counted from the last one, as
 * llama.cpp's {@code -ngl} counts them. {@code -1} (or any N at least the model's layer count) puts every layer on the
 * GPU; {@code 0} none (the CPU engine alone, no GPU needed); between, the CPU runs the embeddings and the first
 * {@code n - N} layers and the GPU the last N.
 *
 * <p>Unlike llama.cpp, which keeps the output norm and head on the CPU until N exceeds the layer count ({@code -ngl
 * n+1}), any N ≥ 1 puts them on the GPU with the last layer: then only the residual stream crosses, once per step and
 * in one direction, and the head, the largest matrix of a small model, runs where the bandwidth is.
 *
 * @param requested the option's value: -1 or more
 */
public record GpuLayers(int requested) {

    /** Every layer on the GPU. */
    public static final GpuLayers ALL = new GpuLayers(-1);

    public GpuLayers {
        if (requested < -1) {
            throw new IllegalArgumentException("--gpu-layers " + requested + " (expected -1 = every layer on the GPU, "
                    + "0 = none (CPU only), or a number of layers to put on the GPU, counted from the last)");
        }
    }

    /** Layers on the GPU for a model of {@code layerCount} layers. */
    public int onGpu(int layerCount) {
        return requested == -1 ? layerCount : Math.min(requested, layerCount);
    }

    /** The first layer the GPU runs ({@code layerCount} when it runs none). */
    public int firstGpuLayer(int layerCount) {
        return layerCount - onGpu(layerCount);
    }

    /** True when no layer runs on the GPU (the CPU engine alone). */
    public boolean none() {
        return requested == 0;
    }

    @Override
    public String toString() {
        return requested == -1 ? "all" : Integer.toString(requested);
    }
}
