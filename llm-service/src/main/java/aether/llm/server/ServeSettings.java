package aether.llm.server;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Everything {@code ./aether serve} needs, validated once. Built from the {@code aether.serve} HOCON block (see
 * {@code reference.conf}: every key can also be set by an {@code AETHER_SERVE_*} environment variable), then
 * overridden by command-line options.
 *
 * @param model           the GGUF file; null = the bundled default model
 * @param apiKeys         accepted keys (from {@code api-key} and the lines of {@code api-key-file}); empty = open
 * @param maxConcurrency  sequences decoded together at most
 * @param queue           requests waiting beyond those before 429
 * @param rateLimit       requests per minute per key; 0 = unlimited
 * @param ctx             context positions per sequence; 0 = the model's context length
 * @param parallel        sequences the KV pool is sized for
 * @param batch           prompt tokens per engine step at most (prefill chunk)
 * @param threads         compute threads; 0 = one per core
 * @param maxBodyBytes    request bodies above this get 413
 * @param maxPromptTokens prompts above this get 400; 0 = the context size
 * @param chatTemplate    for models without one (or to override it): a Jinja file, or {@code chatml} / {@code plain};
 *                        null = the model's, else {@code chatml} (llama.cpp's fallback)
 * @param modelId         the name {@code /v1/models} shows; null = the file name without {@code .gguf}
 * @param prefixCache     finished sequences kept for prefix reuse (their KV blocks are given back when needed); 0 = off
 * @param device          where the model runs: {@code cpu}, {@code cuda} (GPU 0) or {@code auto} (CUDA when the driver
 *                        finds a usable GPU and the CUDA engine runs the model, else the CPU)
 * @param gpuLayers       on the GPU: how many layers run there, counted from the last ({@code --gpu-layers}, as
 *                        llama.cpp's {@code -ngl}); -1 = all, 0 = none (the CPU engine); ignored for {@code cpu}
 */
public record ServeSettings(Path model, String host, int port, Set<String> apiKeys, int maxConcurrency, int queue,
        int rateLimit, int ctx, int parallel, int batch, int threads, long maxBodyBytes, int maxPromptTokens,
        String chatTemplate, String modelId, int prefixCache, String device, int gpuLayers) {

    /** On the CPU. */
    public ServeSettings(Path model, String host, int port, Set<String> apiKeys, int maxConcurrency, int queue,
            int rateLimit, int ctx, int parallel, int batch, int threads, long maxBodyBytes, int maxPromptTokens,
            String chatTemplate, String modelId, int prefixCache) {
        this(model, host, port, apiKeys, maxConcurrency, queue, rateLimit, ctx, parallel, batch, threads, maxBodyBytes,
                maxPromptTokens, chatTemplate, modelId, prefixCache, "cpu", -1);
    }

    /** With a prefix cache of {@code parallel} sequences, on the CPU. */
    public ServeSettings(Path model, String host, int port, Set<String> apiKeys, int maxConcurrency, int queue,
            int rateLimit, int ctx, int parallel, int batch, int threads, long maxBodyBytes, int maxPromptTokens,
            String chatTemplate, String modelId) {
        this(model, host, port, apiKeys, maxConcurrency, queue, rateLimit, ctx, parallel, batch, threads, maxBodyBytes,
                maxPromptTokens, chatTemplate, modelId, parallel, "cpu", -1);
    }

    public ServeSettings {
        check(prefixCache >= 0, "prefix-cache", prefixCache, "0+ (0 = off)");
        apiKeys = Set.copyOf(apiKeys);
        check(port >= 0 && port <= 65535, "port", port, "0..65535");
        check(maxConcurrency >= 1, "max-concurrency", maxConcurrency, "1+");
        check(queue >= 0, "queue", queue, "0+");
        check(rateLimit >= 0, "rate-limit", rateLimit, "0+ requests per minute (0 = unlimited)");
        check(ctx >= 0, "ctx", ctx, "0+ (0 = the model's context length)");
        check(parallel >= 1, "parallel", parallel, "1+");
        check(batch >= 1, "batch", batch, "1+");
        check(threads >= 0, "threads", threads, "0+ (0 = one per core)");
        check(maxBodyBytes >= 1024, "max-body-bytes", maxBodyBytes, "1024+");
        check(maxPromptTokens >= 0, "max-prompt-tokens", maxPromptTokens, "0+ (0 = the context size)");
        if (!ServeDevice.NAMES.contains(device)) {
            throw new IllegalArgumentException("device: " + device + " (expected one of " + ServeDevice.NAMES + ")");
        }
        check(gpuLayers >= -1, "gpu-layers", gpuLayers, "-1 = every layer on the GPU, 0 = none, or a layer count");
        if (device.equals("cpu") && gpuLayers > 0) {
            throw new IllegalArgumentException("gpu-layers: " + gpuLayers + " puts layers on the GPU, but device cpu "
                    + "runs the model on the CPU only (use device cuda or auto, or gpu-layers 0)");
        }
        if (host == null || host.isBlank()) {
            throw new IllegalArgumentException("host: blank (expected an address to listen on, e.g. 127.0.0.1)");
        }
    }

    private static void check(boolean ok, String name, long value, String expected) {
        if (!ok) {
            throw new IllegalArgumentException(name + ": " + value + " (expected " + expected + ")");
        }
    }

    /**
     * Reads {@code config}'s {@code aether.serve} block.
     *
     * @throws IllegalArgumentException naming the key for a wrong type, a bad value or an unreadable key file
     */
    public static ServeSettings fromConfig(Config config) {
        Config c = config.getConfig("aether.serve");
        try {
            String model = c.getString("model");
            int maxConcurrency = c.getInt("max-concurrency");
            int parallel = c.getInt("parallel");
            return new ServeSettings(model.isBlank() ? null : Path.of(model), c.getString("host"), c.getInt("port"),
                    keys(c.getString("api-key"), c.getString("api-key-file")),
                    maxConcurrency == 0 ? parallel : maxConcurrency, c.getInt("queue"), c.getInt("rate-limit"),
                    c.getInt("ctx"), parallel, c.getInt("batch"), c.getInt("threads"),
                    c.getBytes("max-body-bytes"), c.getInt("max-prompt-tokens"),
                    blankToNull(c.getString("chat-template")), blankToNull(c.getString("model-id")),
                    c.getInt("prefix-cache"), c.getString("device").strip().toLowerCase(java.util.Locale.ROOT), c.getInt("gpu-layers"));
        } catch (ConfigException e) {
            throw new IllegalArgumentException("configuration aether.serve: " + e.getMessage(), e);
        }
    }

    /** The keys of {@code key} (if not blank) and of {@code file} (one per line, blank lines and #-comments skipped). */
    public static Set<String> keys(String key, String file) {
        var out = new LinkedHashSet<String>();
        if (key != null && !key.isBlank()) {
            out.add(key.strip());
        }
        if (file != null && !file.isBlank()) {
            List<String> lines;
            try {
                lines = Files.readAllLines(Path.of(file));
            } catch (IOException e) {
                throw new IllegalArgumentException("api-key-file " + file + ": cannot read it (" + e + ")", e);
            }
            for (String line : lines) {
                String k = line.strip();
                if (!k.isEmpty() && !k.startsWith("#")) {
                    out.add(k);
                }
            }
            if (out.isEmpty()) {
                throw new IllegalArgumentException("api-key-file " + file + ": holds no key");
            }
        }
        return out;
    }

    private static String blankToNull(String s) {
        return s == null || s.isBlank() ? null : s;
    }

    public ServeSettings withModel(Path p) {
        return new ServeSettings(p, host, port, apiKeys, maxConcurrency, queue, rateLimit, ctx, parallel, batch,
                threads, maxBodyBytes, maxPromptTokens, chatTemplate, modelId, prefixCache, device, gpuLayers);
    }

    public ServeSettings withPort(int p) {
        return new ServeSettings(model, host, p, apiKeys, maxConcurrency, queue, rateLimit, ctx, parallel, batch,
                threads, maxBodyBytes, maxPromptTokens, chatTemplate, modelId, prefixCache, device, gpuLayers);
    }

    public ServeSettings withApiKeys(Set<String> keys) {
        return new ServeSettings(model, host, port, keys, maxConcurrency, queue, rateLimit, ctx, parallel, batch,
                threads, maxBodyBytes, maxPromptTokens, chatTemplate, modelId, prefixCache, device, gpuLayers);
    }

    public ServeSettings withLimits(int maxConcurrency, int queue, int rateLimit) {
        return new ServeSettings(model, host, port, apiKeys, maxConcurrency, queue, rateLimit, ctx, parallel, batch,
                threads, maxBodyBytes, maxPromptTokens, chatTemplate, modelId, prefixCache, device, gpuLayers);
    }

    public ServeSettings withContext(int ctx, int parallel, int batch) {
        return new ServeSettings(model, host, port, apiKeys, maxConcurrency, queue, rateLimit, ctx, parallel, batch,
                threads, maxBodyBytes, maxPromptTokens, chatTemplate, modelId, prefixCache, device, gpuLayers);
    }

    public ServeSettings withBodyAndPromptLimits(long maxBodyBytes, int maxPromptTokens) {
        return new ServeSettings(model, host, port, apiKeys, maxConcurrency, queue, rateLimit, ctx, parallel, batch,
                threads, maxBodyBytes, maxPromptTokens, chatTemplate, modelId, prefixCache, device, gpuLayers);
    }

    public ServeSettings withChatTemplate(String t) {
        return new ServeSettings(model, host, port, apiKeys, maxConcurrency, queue, rateLimit, ctx, parallel, batch,
                threads, maxBodyBytes, maxPromptTokens, t, modelId, prefixCache, device, gpuLayers);
    }

    public ServeSettings withHost(String h) {
        return new ServeSettings(model, h, port, apiKeys, maxConcurrency, queue, rateLimit, ctx, parallel, batch,
                threads, maxBodyBytes, maxPromptTokens, chatTemplate, modelId, prefixCache, device, gpuLayers);
    }

    public ServeSettings withThreads(int t) {
        return new ServeSettings(model, host, port, apiKeys, maxConcurrency, queue, rateLimit, ctx, parallel, batch,
                t, maxBodyBytes, maxPromptTokens, chatTemplate, modelId, prefixCache, device, gpuLayers);
    }

    public ServeSettings withPrefixCache(int n) {
        return new ServeSettings(model, host, port, apiKeys, maxConcurrency, queue, rateLimit, ctx, parallel, batch,
                threads, maxBodyBytes, maxPromptTokens, chatTemplate, modelId, n, device, gpuLayers);
    }

    public ServeSettings withModelId(String id) {
        return new ServeSettings(model, host, port, apiKeys, maxConcurrency, queue, rateLimit, ctx, parallel, batch,
                threads, maxBodyBytes, maxPromptTokens, chatTemplate, id, prefixCache, device, gpuLayers);
    }

    public ServeSettings withDevice(String d) {
        return new ServeSettings(model, host, port, apiKeys, maxConcurrency, queue, rateLimit, ctx, parallel, batch,
                threads, maxBodyBytes, maxPromptTokens, chatTemplate, modelId, prefixCache, d, gpuLayers);
    }

    public ServeSettings withGpuLayers(int n) {
        return new ServeSettings(model, host, port, apiKeys, maxConcurrency, queue, rateLimit, ctx, parallel, batch,
                threads, maxBodyBytes, maxPromptTokens, chatTemplate, modelId, prefixCache, device, n);
    }
}
