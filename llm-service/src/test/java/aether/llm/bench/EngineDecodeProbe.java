package aether.llm.bench;

import aether.llm.engine.EngineOptions;
import aether.llm.engine.InferenceModel;
import aether.llm.engine.LoadedModel;
import aether.llm.engine.PagedInferenceModel;
import aether.llm.engine.Sequence;
import java.lang.management.ManagementFactory;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * Prefill and decode throughput of {@link LoadedModel#open} on one model, with the split of a decode step between
 * matmul kernels, the other kernels and the runtime around them (graph dispatch, staging of the step's I32 inputs,
 * logits copy), and the bytes allocated per decode step. A command-line probe, not a JMH benchmark: run with
 * {@code java -cp <app lib>:<test classes> aether.llm.bench.EngineDecodeProbe MODEL [prompt] [decode] [threads] [kv]}.
 */
public final class EngineDecodeProbe {

    private EngineDecodeProbe() {}

    public static void main(String[] args) {
        Path model = Path.of(args[0]);
        int promptLength = args.length > 1 ? Integer.parseInt(args[1]) : 32;
        int decode = args.length > 2 ? Integer.parseInt(args[2]) : 64;
        int threads = args.length > 3 ? Integer.parseInt(args[3]) : 0;
        String kv = args.length > 4 ? args[4] : "f16";
        EngineOptions options = EngineOptions.DEFAULTS
                .withContextSize(promptLength + Integer.getInteger("warmup", decode) + decode + 8)
                .withThreads(threads).withKvType(kv);
        long t0 = System.nanoTime();
        try (LoadedModel loaded = LoadedModel.open(model, options)) {
            InferenceModel m = loaded.model();
            int vocab = m.config().vocabSize();
            System.out.printf(Locale.ROOT, "open: %.0f ms%n", (System.nanoTime() - t0) / 1e6);
            int[] prompt = new int[promptLength];
            for (int i = 0; i < promptLength; i++) {
                prompt[i] = 1 + (i * 7919) % (vocab - 1);
            }
            float[] logits = new float[vocab];
            var threadsBean = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
            try (Sequence s = m.newSequence()) {
                long p0 = System.nanoTime();
                m.step(List.of(InferenceModel.BatchEntry.of(s, prompt)), logits);
                long p1 = System.nanoTime();
                int[] token = {argmax(logits)};
                List<InferenceModel.BatchEntry> batch = List.of(InferenceModel.BatchEntry.of(s, token));
                long c0 = System.nanoTime();
                m.step(batch, logits);                 // the first decode step builds and compiles its graph
                System.out.printf(Locale.ROOT, "first decode step (graph build + compile, cold code): %.0f ms%n",
                        (System.nanoTime() - c0) / 1e6);
                int warmup = Integer.getInteger("warmup", decode);
                for (int i = 0; i < warmup; i++) {   // warm-up: JIT
                    token[0] = argmax(logits);
                    m.step(batch, logits);
                }
                token[0] = argmax(logits);
                s.truncate(promptLength);
                PagedInferenceModel paged = (PagedInferenceModel) m;
                paged.setProfiling(true);
                long bytes0 = threadsBean.getCurrentThreadAllocatedBytes();
                long d0 = System.nanoTime();
                for (int i = 0; i < decode; i++) {
                    m.step(batch, logits);
                    token[0] = argmax(logits);
                }
                long d1 = System.nanoTime();
                long bytes = threadsBean.getCurrentThreadAllocatedBytes() - bytes0;
                long[] k = paged.kernelNanos();
                double stepMs = (d1 - d0) / 1e6 / decode;
                double matmulMs = k[0] / 1e6 / decode;
                double otherMs = k[1] / 1e6 / decode;
                double overheadMs = stepMs - matmulMs - otherMs;
                System.out.printf(Locale.ROOT, "prefill %d tokens: %.1f tok/s (cold: graph build + compile + JIT)%n",
                        promptLength, promptLength / ((p1 - p0) / 1e9));
                System.out.printf(Locale.ROOT, "decode %d tokens: %.2f tok/s, %.3f ms/step: matmul %.3f ms, other"
                        + " kernels %.3f ms (attention %.3f ms), runtime %.4f ms (%.2f%%), %d B allocated/step%n", decode,
                        1000 / stepMs, stepMs, matmulMs, otherMs, k[2] / 1e6 / decode, overheadMs,
                        100 * overheadMs / stepMs, bytes / decode);
                paged.setProfiling(false);
                s.truncate(0);
                long q0 = System.nanoTime();
                m.step(List.of(InferenceModel.BatchEntry.of(s, prompt)), logits);
                System.out.printf(Locale.ROOT, "prefill %d tokens (warm): %.1f tok/s%n", promptLength,
                        promptLength / ((System.nanoTime() - q0) / 1e9));
                s.truncate(0);
                paged.setProfiling(true);   // resets the counters
                long r0 = System.nanoTime();
                m.step(List.of(InferenceModel.BatchEntry.of(s, prompt)), logits);
                double prefillMs = (System.nanoTime() - r0) / 1e6;
                long[] pk = paged.kernelNanos();
                paged.setProfiling(false);
                System.out.printf(Locale.ROOT, "prefill %d tokens (warm, profiled): %.1f ms: matmul %.1f ms, attention"
                        + " %.1f ms, other kernels %.1f ms, runtime %.1f ms%n", promptLength, prefillMs, pk[0] / 1e6,
                        pk[2] / 1e6, (pk[1] - pk[2]) / 1e6, prefillMs - (pk[0] + pk[1]) / 1e6);
            }
        }
    }

    private static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
    }
}
