package aether.llm.server;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code ./aether serve}: the OpenAI-compatible server. Settings come from the {@code aether.serve} configuration
 * ({@code reference.conf} defaults, {@code AETHER_SERVE_*} environment variables, a {@code --config} file), then these
 * options. Bad settings or an unusable model give one line on stderr and exit code 2; the server runs until the
 * process is stopped (Ctrl-C / SIGTERM close it cleanly).
 */
@Command(name = "serve", mixinStandardHelpOptions = true, sortOptions = false, description = "Serve a GGUF model over an OpenAI-compatible HTTP API "
        + "(/v1/chat/completions, /v1/completions, /v1/models, /health, /ready, /metrics).")
public final class ServeCommand implements Callable<Integer> {

    static final int EXIT_BAD_SETTINGS = 2;

    @Option(names = {"-m", "--model"}, description = "GGUF model file (default: the bundled stories260K)")
    Path model;

    @Option(names = "--host", description = "address to listen on (default 127.0.0.1)")
    String host;

    @Option(names = "--port", description = "port (default 8080; 0 = any free port)")
    Integer port;

    @Option(names = "--api-key", description = "require 'Authorization: Bearer KEY'")
    String apiKey;

    @Option(names = "--api-key-file", description = "require one of the keys in this file (one per line)")
    String apiKeyFile;

    @Option(names = "--max-concurrency", description = "sequences decoded together (default: --parallel)")
    Integer maxConcurrency;

    @Option(names = "--queue", description = "requests waiting beyond those, then 429 (default 64)")
    Integer queue;

    @Option(names = "--rate-limit", paramLabel = "R/min",
            description = "requests per minute per API key, e.g. 60 or 60/min (default: unlimited)")
    String rateLimit;

    @Option(names = {"-c", "--ctx"}, description = "context positions per sequence (default: the model's)")
    Integer ctx;

    @Option(names = {"-np", "--parallel"}, description = "sequences the KV cache is sized for (default 4)")
    Integer parallel;

    @Option(names = {"-b", "--batch"}, description = "prompt tokens per engine step (default 256)")
    Integer batch;

    @Option(names = {"-t", "--threads"}, description = "compute threads (default: one per core)")
    Integer threads;

    @Option(names = "--prefix-cache", description = "finished sequences kept for prompt-prefix reuse (default 4; 0 = off)")
    Integer prefixCache;

    @Option(names = "--chat-template", description = "Jinja file, or chatml / plain (default: the model's, else chatml)")
    String chatTemplate;

    @Option(names = "--model-id", description = "model name for /v1/models (default: the file name)")
    String modelId;

    @Option(names = "--device", paramLabel = "DEVICE", description = "cpu, cuda (GPU 0) or auto: CUDA when the driver "
            + "finds a usable GPU and the CUDA engine runs the model, else the CPU (default auto). The GPU engine "
            + "answers 501 to embeddings and echo+logprobs scoring (use --device cpu for those)")
    String device;

    @Option(names = {"-ngl", "--gpu-layers"}, paramLabel = "N", description = "on the GPU: how many layers run there, "
            + "counted from the last, as llama.cpp's -ngl (default -1 = all; 0 = none: the CPU engine); the others "
            + "run on the CPU")
    Integer gpuLayers;

    @Option(names = "--config", description = "HOCON file with an aether.serve block")
    Path config;

    @Override
    public Integer call() {
        InferenceServer server;
        try {
            server = InferenceServer.start(settings());
        } catch (RuntimeException e) {
            System.err.println("aether serve: " + e.getMessage());
            return EXIT_BAD_SETTINGS;
        }
        var stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            server.close();
            stopped.countDown();
        }, "aether-serve-shutdown"));
        System.out.println("aether serve: " + server.deviceLine());
        System.out.println("aether serve: " + server.modelId() + " (context " + server.contextSize() + ", chat template "
                + server.templateName() + ") on http://" + (host != null ? host : "127.0.0.1") + ":" + server.port());
        System.out.flush();
        try {
            stopped.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return 0;
    }

    /** The settings: configuration first, options over it. */
    ServeSettings settings() {
        Config base = ConfigFactory.load();
        if (config != null) {
            if (!Files.isRegularFile(config)) {
                throw new IllegalArgumentException("--config " + config + ": no such file");
            }
            base = ConfigFactory.parseFile(config.toFile()).withFallback(base).resolve();
        }
        ServeSettings s = ServeSettings.fromConfig(base);
        if (model != null) {
            s = s.withModel(model);
        }
        if (host != null) {
            s = s.withHost(host);
        }
        if (port != null) {
            s = s.withPort(port);
        }
        if (apiKey != null || apiKeyFile != null) {
            s = s.withApiKeys(ServeSettings.keys(apiKey, apiKeyFile));
        }
        int p = parallel != null ? parallel : s.parallel();
        s = s.withContext(ctx != null ? ctx : s.ctx(), p, batch != null ? batch : s.batch());
        int mc = maxConcurrency != null ? maxConcurrency : (parallel != null && !explicitConcurrency(base) ? p
                : s.maxConcurrency());
        s = s.withLimits(mc, queue != null ? queue : s.queue(), rateLimit != null ? rate(rateLimit) : s.rateLimit());
        if (threads != null) {
            s = s.withThreads(threads);
        }
        if (prefixCache != null) {
            s = s.withPrefixCache(prefixCache);
        }
        if (chatTemplate != null) {
            s = s.withChatTemplate(chatTemplate);
        }
        if (modelId != null) {
            s = s.withModelId(modelId);
        }
        if (device != null) {
            s = s.withDevice(device.strip().toLowerCase(java.util.Locale.ROOT));
        }
        if (gpuLayers != null) {
            s = s.withGpuLayers(gpuLayers);
        }
        return s;
    }

    private static boolean explicitConcurrency(Config c) {
        return c.getInt("aether.serve.max-concurrency") != 0;
    }

    /** {@code 60}, {@code 60/min}, {@code 60/m} or {@code 1/s} as requests per minute. */
    static int rate(String text) {
        String t = text.strip().toLowerCase(java.util.Locale.ROOT);
        int scale = 1;
        if (t.endsWith("/min") || t.endsWith("/m")) {
            t = t.substring(0, t.indexOf('/'));
        } else if (t.endsWith("/s") || t.endsWith("/sec")) {
            t = t.substring(0, t.indexOf('/'));
            scale = 60;
        }
        try {
            long v = Long.parseLong(t) * scale;
            if (v < 0 || v > Integer.MAX_VALUE) {
                throw new NumberFormatException();
            }
            return (int) v;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--rate-limit '" + text + "' (expected requests per minute, e.g. 60 or "
                    + "60/min, or per second as 2/s)");
        }
    }
}
