package aether.llm.engine;

/**
 * How a model is opened for inference.
 *
 * @param contextSize positions per sequence; 0 means the model's context length
 * @param maxSequences sequences the KV pool is sized for (each may reach {@code contextSize})
 * @param batchSize   tokens per prefill step at most (longer prompts are split into chunks)
 * @param threads     compute threads; 0 means one per available core
 * @param kvType      KV cache element type: {@code f16} (default), {@code q8_0} or {@code f32}
 */
public record EngineOptions(int contextSize, int maxSequences, int batchSize, int threads, String kvType) {

    public static final EngineOptions DEFAULTS = new EngineOptions(0, 1, 512, 0, "f16");

    public EngineOptions {
        if (contextSize < 0 || maxSequences < 1 || batchSize < 1 || threads < 0) {
            throw new IllegalArgumentException("engine options context " + contextSize + ", sequences "
                    + maxSequences + ", batch " + batchSize + ", threads " + threads
                    + " (expected context >= 0, sequences >= 1, batch >= 1, threads >= 0)");
        }
        if (!kvType.equals("f16") && !kvType.equals("q8_0") && !kvType.equals("f32")) {
            throw new IllegalArgumentException("KV cache type '" + kvType + "' (expected f16, q8_0 or f32)");
        }
    }

    public EngineOptions withContextSize(int n) {
        return new EngineOptions(n, maxSequences, batchSize, threads, kvType);
    }

    public EngineOptions withMaxSequences(int n) {
        return new EngineOptions(contextSize, n, batchSize, threads, kvType);
    }

    public EngineOptions withBatchSize(int n) {
        return new EngineOptions(contextSize, maxSequences, n, threads, kvType);
    }

    public EngineOptions withThreads(int n) {
        return new EngineOptions(contextSize, maxSequences, batchSize, n, kvType);
    }

    public EngineOptions withKvType(String t) {
        return new EngineOptions(contextSize, maxSequences, batchSize, threads, t);
    }
}
