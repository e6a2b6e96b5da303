package aether.llm.cli;

import aether.llm.engine.InferenceModel;
import aether.llm.engine.InferenceModel.BatchEntry;
import aether.llm.engine.LoadedModel;
import aether.llm.engine.PagedInferenceModel;
import aether.llm.engine.Sequence;
import aether.llm.engine.cuda.CudaInferenceModel;
import aether.llm.engine.cuda.HybridInferenceModel;
import aether.llm.gguf.GgufFile;
import aether.llm.gguf.ModelSummary;
import aether.llm.gguf.TensorInfo;
import aether.runtime.bench.MemoryBandwidth;
import aether.runtime.bench.StartupTrace;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.PrintWriter;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code ./aether bench}: prompt processing and generation speed as llama-bench measures them, with the machine's
 * memory read bandwidth measured in the same run and the roofline fraction of decode.
 *
 * <p>Like llama-bench, the two tests are separate and use random token ids: {@code ppN} runs an N-token prompt (in
 * {@code --batch} chunks) into an empty sequence; {@code tgN} decodes N single tokens one step at a time from an
 * empty sequence (starting with BOS), without sampling. Each test runs {@code -r} times after an untimed warm-up (one
 * prompt test, up to 16 decode steps); the report is mean ± sample standard deviation of tokens/s. The roofline fraction is the weight bytes one
 * decode step must read (every tensor except the token embedding, of which one row; the whole of it when the output
 * is tied to it) times the decode rate, over the measured read bandwidth.
 */
@Command(name = "bench", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Measure prompt and decode tokens/s (llama-bench style) with the memory bandwidth and roofline fraction.")
public final class BenchCommand implements Callable<Integer> {

    @Option(names = {"-p", "--n-prompt"}, paramLabel = "N", defaultValue = "128",
            description = "prompt tokens of the pp test; 0 skips it (default: ${DEFAULT-VALUE})")
    int promptTokens;

    @Option(names = {"-n", "--n-gen"}, paramLabel = "N", defaultValue = "64",
            description = "generated tokens of the tg test; 0 skips it (default: ${DEFAULT-VALUE})")
    int genTokens;

    @Option(names = {"-r", "--repetitions"}, paramLabel = "N", defaultValue = "3",
            description = "repetitions of each test (default: ${DEFAULT-VALUE})")
    int repetitions;

    @Option(names = "--json", description = "print one JSON document instead of the table")
    boolean json;

    @Option(names = "--bandwidth-mib", paramLabel = "MIB", defaultValue = "512",
            description = "buffer of the bandwidth measurement; larger than the last-level cache (default: ${DEFAULT-VALUE})")
    int bandwidthMib;

    @Mixin
    ModelOptions modelOptions;

    @Spec
    CommandSpec spec;

    /** One test's rates, tokens per second. */
    record Rates(double[] samples) {
        double mean() {
            double s = 0;
            for (double v : samples) {
                s += v;
            }
            return samples.length == 0 ? 0 : s / samples.length;
        }

        double sd() {
            if (samples.length < 2) {
                return 0;
            }
            double m = mean();
            double s = 0;
            for (double v : samples) {
                s += (v - m) * (v - m);
            }
            return Math.sqrt(s / (samples.length - 1));
        }
    }

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        try {
            if (promptTokens < 0 || genTokens < 0 || promptTokens + genTokens == 0) {
                throw new IllegalArgumentException("-p " + promptTokens + " -n " + genTokens
                        + " (expected 0+ each, not both 0)");
            }
            if (repetitions < 1) {
                throw new IllegalArgumentException("-r " + repetitions + " (expected 1+)");
            }
            if (bandwidthMib < 16) {
                throw new IllegalArgumentException("--bandwidth-mib " + bandwidthMib + " (expected 16+)");
            }
            modelOptions.engineOptions(1);
            StartupTrace.mark("bench command");
            long commandStart = System.currentTimeMillis();
            long openStart = System.nanoTime();
            long cpuStart = processCpuNanos();
            try (LoadedModel m = modelOptions.open(1, err)) {
                long openNanos = System.nanoTime() - openStart;
                long openCpu = processCpuNanos();
                InferenceModel model = m.model();
                Optional<ProcessMemory> afterLoad = ProcessMemory.read();
                int needed = Math.max(promptTokens, genTokens);
                if (needed > model.contextSize()) {
                    throw new IllegalArgumentException("a test of " + needed + " tokens does not fit the context of "
                            + model.contextSize() + " (lower -p/-n or raise --ctx)");
                }
                int bos = m.tokenizer().addBos() ? m.tokenizer().specialTokens().bos() : -1;
                var random = new SplittableRandom(42);
                int vocab = model.config().vocabSize();
                float[] logits = new float[vocab];
                // the first token comes from a short prompt's prefill, as a user's does. Not from a 1-token decode
                // step: a decode step before any prefill left Q8_0/Q4_K prefill at a third of its speed for the rest
                // of the process (measured 13.8 vs 39.3 t/s pp128 on the 1B Q8_0 model; a JIT-order effect whose
                // mechanism is not pinned down yet, see BENCHMARKS.md)
                long firstTokenNanos = prompt(model, randomTokens(random, FIRST_TOKEN_PROMPT, vocab), logits);
                long firstTokenAt = System.currentTimeMillis();
                StartupTrace.mark("first token");
                long firstCpu = processCpuNanos();
                Optional<ProcessMemory> afterFirstToken = ProcessMemory.read();
                var startup = new Startup(processStartMillis(), jvmStartMillis(), commandStart, openNanos,
                        firstTokenNanos, firstTokenAt, cpuStart < 0 ? -1 : openCpu - cpuStart, cpuStart < 0 ? -1 : firstCpu - openCpu);
                // warm-up (untimed): one whole prompt test and a few decode steps, so the JIT has compiled the
                // paths the timed runs take (llama-bench warms up less, but has no JIT)
                if (promptTokens > 0) {
                    prompt(model, randomTokens(random, promptTokens, vocab), logits);
                }
                if (genTokens > 0) {
                    generate(model, Math.min(genTokens, 16), bos, random, logits);
                }
                double[] pp = new double[promptTokens > 0 ? repetitions : 0];
                double[] tg = new double[genTokens > 0 ? repetitions : 0];
                for (int r = 0; r < pp.length; r++) {
                    long ns = prompt(model, randomTokens(random, promptTokens, vocab), logits);
                    pp[r] = promptTokens * 1e9 / ns;
                }
                for (int r = 0; r < tg.length; r++) {
                    long ns = generate(model, genTokens, bos, random, logits);
                    tg[r] = genTokens * 1e9 / ns;
                }
                // before the bandwidth probe, whose buffer would count as resident too
                var memory = new Memory(fileBytes(m), kvBytes(model), afterLoad, afterFirstToken, ProcessMemory.read());
                int threads = modelOptions.threads > 0 ? modelOptions.threads : Runtime.getRuntime().availableProcessors();
                MemoryBandwidth.Result bw;
                long weightBytes;
                if (model instanceof CudaInferenceModel gpu) {
                    // the GPU's roofline: a device-to-device copy, bytes read plus written
                    err.println("aether bench: measuring device-to-device copy bandwidth on " + gpu.deviceName()
                            + " (1 GiB)");
                    err.flush();
                    double gbs = gpu.copyBandwidthGBs(1L << 30);
                    bw = new MemoryBandwidth.Result(0, 1L << 30, 15, gbs);
                    weightBytes = gpu.weightBytesPerToken();
                } else if (model instanceof HybridInferenceModel split) {
                    // the CPU part is the bottleneck of a split model: its roofline is the CPU's bandwidth over the
                    // weights its layers read (the GPU part's are read ~10x faster)
                    err.println("aether bench: measuring memory read bandwidth (" + threads + " threads, "
                            + bandwidthMib + " MiB) for the CPU part, layers 0.." + (split.gpuPart().firstLayer() - 1));
                    err.flush();
                    bw = MemoryBandwidth.measureRead(threads, (long) bandwidthMib << 20, 8);
                    weightBytes = cpuPartWeightBytes(m.file(), vocab, split.gpuPart().firstLayer());
                } else {
                    err.println("aether bench: measuring memory read bandwidth (" + threads + " threads, "
                            + bandwidthMib + " MiB)");
                    err.flush();
                    bw = MemoryBandwidth.measureRead(threads, (long) bandwidthMib << 20, 8);
                    weightBytes = weightBytesPerToken(m.file(), vocab);
                }
                Rates ppRates = new Rates(pp);
                Rates tgRates = new Rates(tg);
                double roofline = tg.length == 0 ? 0 : weightBytes * tgRates.mean() / (bw.readGBs() * 1e9);
                if (json) {
                    out.println(json(m, threads, ppRates, tgRates, bw, weightBytes, roofline, startup, memory));
                } else {
                    table(out, m, threads, ppRates, tgRates, bw, weightBytes, roofline);
                    startup.print(out);
                    memory.print(out);
                }
                out.flush();
                return 0;
            }
        } catch (RuntimeException e) {
            return CliSupport.fail(spec.commandLine(), e, modelOptions.debug);
        }
    }

    private static int[] randomTokens(SplittableRandom random, int n, int vocab) {
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) {
            ids[i] = random.nextInt(vocab);
        }
        return ids;
    }

    /** Runs {@code ids} into a fresh sequence in {@code --batch} chunks; returns the wall time. */
    /** Tokens of the prompt whose prefill gives the start-up figure's first token. */
    static final int FIRST_TOKEN_PROMPT = 16;

    private long prompt(InferenceModel model, int[] ids, float[] logits) {
        int batch = modelOptions.batchSize;
        try (Sequence s = model.newSequence()) {
            long t0 = System.nanoTime();
            for (int from = 0; from < ids.length; from += batch) {
                model.step(List.of(new BatchEntry(s, ids, from, Math.min(ids.length, from + batch))), logits);
            }
            return System.nanoTime() - t0;
        }
    }

    /** Decodes {@code n} single tokens into a fresh sequence, starting with BOS (or a random id); returns the time. */
    private static long generate(InferenceModel model, int n, int bos, SplittableRandom random, float[] logits) {
        int vocab = model.config().vocabSize();
        int[] tokens = randomTokens(random, n, vocab);
        if (bos >= 0) {
            tokens[0] = bos;
        }
        try (Sequence s = model.newSequence()) {
            long t0 = System.nanoTime();
            for (int i = 0; i < n; i++) {
                model.step(List.of(new BatchEntry(s, tokens, i, i + 1)), logits);
            }
            return System.nanoTime() - t0;
        }
    }

    /** Bytes of weights the CPU part of a split model reads per decode step: one embedding row, layers below {@code first}. */
    static long cpuPartWeightBytes(GgufFile file, int vocab, int first) {
        long total = 0;
        for (TensorInfo t : file.tensors()) {
            String n = t.name();
            if (n.equals("token_embd.weight")) {
                total += t.sizeBytes() / Math.max(1, vocab);
            } else if (n.startsWith("blk.") && Integer.parseInt(n, 4, n.indexOf('.', 4), 10) < first) {
                total += t.sizeBytes();
            }
        }
        return total;
    }

    /** Bytes of weights one decode step reads: all tensors but the token embedding, of which one row (unless tied). */
    static long weightBytesPerToken(GgufFile file, int vocab) {
        boolean tied = file.tensors().stream().noneMatch(t -> t.name().equals("output.weight"));
        long total = 0;
        for (TensorInfo t : file.tensors()) {
            if (t.name().equals("token_embd.weight")) {
                total += tied ? t.sizeBytes() : t.sizeBytes() / Math.max(1, vocab);
            } else {
                total += t.sizeBytes();
            }
        }
        return total;
    }

    private void table(PrintWriter out, LoadedModel m, int threads, Rates pp, Rates tg, MemoryBandwidth.Result bw,
            long weightBytes, double roofline) {
        long params = m.file().tensors().stream().mapToLong(TensorInfo::elementCount).sum();
        out.printf("model %s: %s, %s, %s parameters; engine %s, %d threads, batch %d, KV %s%n",
                m.path().getFileName(), m.model().config().architecture(), ModelSummary.humanBytes(fileBytes(m)),
                ModelSummary.humanCount(params), m.model().getClass().getSimpleName(),
                m.model() instanceof CudaInferenceModel ? 0 : threads,
                modelOptions.batchSize, modelOptions.kvType);
        out.printf("| %-8s | %22s |%n", "test", "t/s");
        out.printf("| %-8s | %22s |%n", "--------", "----------------------");
        if (pp.samples().length > 0) {
            out.printf(Locale.ROOT, "| %-8s | %22s |%n", "pp" + promptTokens, "%.2f ± %.2f".formatted(pp.mean(), pp.sd()));
        }
        if (tg.samples().length > 0) {
            out.printf(Locale.ROOT, "| %-8s | %22s |%n", "tg" + genTokens, "%.2f ± %.2f".formatted(tg.mean(), tg.sd()));
        }
        if (m.model() instanceof CudaInferenceModel gpu) {
            out.printf(Locale.ROOT, "GPU %s: device-to-device copy bandwidth %.1f GB/s (bytes read + written, 1 GiB, "
                    + "median of %d); %s; decode fusions: %s%n",
                    gpu.deviceName(), bw.readGBs(), bw.passes(), gpu.promptPath(promptTokens), gpu.fusions().describe());
        } else if (m.model() instanceof HybridInferenceModel split) {
            int first = split.gpuPart().firstLayer();
            out.printf(Locale.ROOT, "split model (--gpu-layers %d): layers 0..%d on the CPU (%d threads), %d..%d and the "
                    + "head on %s; the roofline below is the CPU part's: its weights against the CPU's read bandwidth%n",
                    split.gpuLayers(), first - 1, threads, first, split.config().blockCount() - 1,
                    split.gpuPart().deviceName());
            out.printf(Locale.ROOT, "memory read bandwidth: %s%n", bw);
        } else {
            out.printf(Locale.ROOT, "memory read bandwidth: %s%n", bw);
        }
        if (tg.samples().length > 0) {
            out.printf(Locale.ROOT, "decode reads %s of weights per token: %.2f GB/s at %.2f t/s = %.1f%% of the "
                    + "measured bandwidth (roofline fraction %.4f)%s%n", ModelSummary.humanBytes(weightBytes),
                    weightBytes * tg.mean() / 1e9, tg.mean(), roofline * 100, roofline,
                    roofline > 1 ? "; above 1: the weights are small enough to be read from cache" : "");
        }
    }

    private static long fileBytes(LoadedModel m) {
        try {
            return java.nio.file.Files.size(m.path());
        } catch (java.io.IOException e) {
            return -1;
        }
    }

    private String json(LoadedModel m, int threads, Rates pp, Rates tg, MemoryBandwidth.Result bw, long weightBytes,
            double roofline, Startup startup, Memory memory) {
        var mapper = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        ObjectNode root = mapper.createObjectNode();
        root.put("model", m.path().toString());
        root.put("modelBytes", fileBytes(m));
        root.put("architecture", m.model().config().architecture());
        root.put("engine", m.model().getClass().getSimpleName());
        root.put("threads", threads);
        root.put("batchSize", modelOptions.batchSize);
        root.put("kvType", modelOptions.kvType);
        root.put("contextSize", m.model().contextSize());
        root.put("promptTokens", promptTokens);
        root.put("genTokens", genTokens);
        root.put("repetitions", repetitions);
        if (pp.samples().length > 0) {
            rates(root.putObject("prompt"), pp);
        }
        if (tg.samples().length > 0) {
            rates(root.putObject("decode"), tg);
        }
        root.put("memoryBandwidthGBs", bw.readGBs());
        root.put("bandwidthThreads", bw.threads());
        root.put("bandwidthBufferBytes", bw.bufferBytes());
        root.put("weightBytesPerToken", weightBytes);
        if (tg.samples().length > 0) {
            root.put("rooflineFraction", roofline);
        }
        startup.json(root.putObject("startup"));
        memory.json(root.putObject("memory"));
        try {
            return mapper.writeValueAsString(root);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    private static void rates(ObjectNode node, Rates r) {
        node.put("tokensPerSecond", r.mean());
        node.put("sd", r.sd());
        var samples = node.putArray("samples");
        for (double v : r.samples()) {
            samples.add(v);
        }
    }

    /** Bytes of the model's KV pool, or -1 for an engine that does not say. */
    /** KV cache bytes in host memory: the CPU engine's, none for the CUDA engine (device memory), the CPU part's. */
    private static long kvBytes(InferenceModel model) {
        return switch (model) {
            case PagedInferenceModel p -> p.kvCacheBytes();
            case aether.llm.engine.cuda.CudaInferenceModel c -> 0;
            case aether.llm.engine.cuda.HybridInferenceModel h -> h.hostKvCacheBytes();
            default -> -1;
        };
    }

    /**
     * When this process started, in epoch milliseconds: the launcher's own clock reading ({@code
     * -Daether.launch.epochMicros}, bash's {@code EPOCHREALTIME} as its first step) when it passes one, else the
     * kernel's ({@link ProcessHandle.Info#startInstant()}), which on Linux is the boot time from {@code /proc/stat}
     * — a whole second, truncated — plus the process's start in clock ticks, so it reads up to a second early (0.94 s
     * on the dev machine: bench's "process to JVM" read ~1 s for a launcher that takes ~0.1 s).
     */
    static long processStartMillis() {
        return launchMillis(System.getProperty("aether.launch.epochMicros"))
                .orElseGet(() -> ProcessHandle.current().info().startInstant().map(java.time.Instant::toEpochMilli)
                        .orElse(-1L));
    }

    /** The launcher's start time in epoch milliseconds from its microseconds, if {@code micros} is one. */
    static Optional<Long> launchMillis(String micros) {
        if (micros == null || micros.isBlank()) {
            return Optional.empty();
        }
        try {
            long us = Long.parseLong(micros.trim());
            return us > 0 ? Optional.of(us / 1000) : Optional.empty();
        } catch (NumberFormatException e) {
            return Optional.empty();   // not the launcher's: fall back to the kernel's figure
        }
    }

    /** CPU time of the whole process (all threads: the JIT compilers' too), or -1 where the JVM does not say. */
    private static long processCpuNanos() {
        return java.lang.management.ManagementFactory.getOperatingSystemMXBean()
                instanceof com.sun.management.OperatingSystemMXBean os ? os.getProcessCpuTime() : -1;
    }

    private static long jvmStartMillis() {
        return java.lang.management.ManagementFactory.getRuntimeMXBean().getStartTime();
    }

    /**
     * Where start-up time goes: from the process's start (the launcher script, which {@code exec}s the JVM; see {@link
     * #processStartMillis()}) to the JVM's start, from there to this command, the model's open (mapping, metadata, tokenizer, architecture), and the first
     * token (the prefill of a {@value #FIRST_TOKEN_PROMPT}-token prompt into an empty sequence: it builds and compiles the graph,
     * repacks the weights that need it and runs with whatever the JIT has compiled so far). Epoch milliseconds for
     * the instants (-1 where unknown), nanoseconds for the durations. The CPU times (all threads of the process,
     * the JIT compiler threads included; -1 where unknown) do not depend on how busy the machine is, which the wall
     * times do: on a quiet machine of n cores the wall time is at least CPU time / n.
     */
    record Startup(long processStart, long jvmStart, long commandStart, long openNanos, long firstTokenNanos,
            long firstTokenAt, long openCpuNanos, long firstTokenCpuNanos) {

        /** Issue 5's load to first token: from the model's open to its first token (the JVM's start not counted). */
        long loadToFirstTokenMillis() {
            return Math.round((openNanos + firstTokenNanos) / 1e6);
        }

        /** From the process's start (the launcher's first step) to the first token; -1 where the start is unknown. */
        long processToFirstTokenMillis() {
            return processStart < 0 ? -1 : firstTokenAt - processStart;
        }

        void print(PrintWriter out) {
            out.printf(Locale.ROOT, "start-up: process to JVM %s, JVM to command %d ms, model open %.0f ms (CPU %.0f "
                    + "ms), first token %.0f ms (CPU %.0f ms; " + FIRST_TOKEN_PROMPT + "-token prompt: builds the graph, repacks weights, "
                    + "runs unwarmed); load to first token %d ms%s (model open to first token); process start to "
                    + "first token %s%n",
                    processStart < 0 ? "unknown" : (jvmStart - processStart) + " ms", commandStart - jvmStart,
                    openNanos / 1e6, openCpuNanos / 1e6, firstTokenNanos / 1e6, firstTokenCpuNanos / 1e6,
                    loadToFirstTokenMillis(), loadToFirstTokenMillis() < 1000 ? " (< 1 s)" : " (over 1 s)",
                    processStart < 0 ? "unknown" : processToFirstTokenMillis() + " ms");
        }

        void json(ObjectNode node) {
            node.put("processToJvmMillis", processStart < 0 ? -1 : jvmStart - processStart);
            node.put("jvmToCommandMillis", commandStart - jvmStart);
            node.put("openMillis", openNanos / 1e6);
            node.put("firstTokenMillis", firstTokenNanos / 1e6);
            node.put("openCpuMillis", openCpuNanos / 1e6);
            node.put("firstTokenCpuMillis", firstTokenCpuNanos / 1e6);
            node.put("loadToFirstTokenMillis", loadToFirstTokenMillis());
            node.put("processToFirstTokenMillis", processToFirstTokenMillis());
        }
    }

    /**
     * Resident memory against issue 5's budget: the resident set must stay within the model file, the KV cache and
     * {@value #SLACK_MIB} MiB (the JVM, the graphs' arenas, repacked weights beyond that count against the slack).
     * Measured after the model's open, after the first token and at the end of the tests (before the bandwidth probe);
     * the peak is the kernel's high-water mark at that point.
     */
    record Memory(long fileBytes, long kvBytes, Optional<ProcessMemory> afterLoad, Optional<ProcessMemory> afterFirst,
            Optional<ProcessMemory> atEnd) {

        static final long SLACK_MIB = 300;

        long budget() {
            return fileBytes + Math.max(0, kvBytes) + (SLACK_MIB << 20);
        }

        void print(PrintWriter out) {
            if (atEnd.isEmpty()) {
                out.println("memory: /proc/self/status not readable; resident set unknown");
                return;
            }
            ProcessMemory end = atEnd.get();
            out.printf(Locale.ROOT, "memory: resident after open %s, after first token %s, at end %s; peak %s%n",
                    describe(afterLoad), describe(afterFirst), describe(atEnd), ModelSummary.humanBytes(end.peakRss()));
            out.printf(Locale.ROOT, "memory: model file %s + KV cache %s + %d MiB = %s; peak resident %s %s it%n",
                    ModelSummary.humanBytes(fileBytes), kvBytes < 0 ? "unknown" : ModelSummary.humanBytes(kvBytes),
                    SLACK_MIB, ModelSummary.humanBytes(budget()), ModelSummary.humanBytes(end.peakRss()),
                    end.peakRss() <= budget() ? "is within" : "EXCEEDS");
        }

        private static String describe(Optional<ProcessMemory> m) {
            return m.map(p -> ModelSummary.humanBytes(p.rss()) + " (file " + ModelSummary.humanBytes(p.file())
                    + ", anon " + ModelSummary.humanBytes(p.anon()) + ")").orElse("unknown");
        }

        void json(ObjectNode node) {
            node.put("modelFileBytes", fileBytes);
            node.put("kvCacheBytes", kvBytes);
            node.put("budgetBytes", budget());
            afterLoad.ifPresent(p -> put(node.putObject("afterOpen"), p));
            afterFirst.ifPresent(p -> put(node.putObject("afterFirstToken"), p));
            atEnd.ifPresent(p -> {
                put(node.putObject("atEnd"), p);
                node.put("withinBudget", p.peakRss() <= budget());
            });
        }

        private static void put(ObjectNode node, ProcessMemory p) {
            node.put("rssBytes", p.rss());
            node.put("peakRssBytes", p.peakRss());
            node.put("fileBytes", p.file());
            node.put("anonBytes", p.anon());
        }
    }
}
