package aether.llm.server;

import aether.llm.engine.InferenceModel.KvStats;
import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.expositionformats.PrometheusTextFormatWriter;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.function.IntSupplier;
import java.util.function.Supplier;

/**
 * The server's Prometheus metrics, in a registry of its own (so several servers in one JVM, as in tests, do not
 * collide). Counters and histograms are updated from the HTTP and engine threads (the client's types are
 * thread-safe); gauges read the engine's published values when scraped.
 */
public final class ServerMetrics {

    private static final double[] LATENCY_BOUNDS = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
        5, 10, 30, 60};

    private final PrometheusRegistry registry = new PrometheusRegistry();
    private final PrometheusTextFormatWriter writer = PrometheusTextFormatWriter.create();
    private final Counter requests = Counter.builder().name("aether_requests_total")
            .help("HTTP requests by endpoint and response status").labelNames("endpoint", "status")
            .register(registry);
    private final Counter promptTokens = Counter.builder().name("aether_prompt_tokens_total")
            .help("Prompt tokens of admitted generation requests").register(registry);
    private final Counter completionTokens = Counter.builder().name("aether_completion_tokens_total")
            .help("Generated tokens").register(registry);
    private final Counter embeddingInputs = Counter.builder().name("aether_embedding_inputs_total")
            .help("Inputs embedded by /v1/embeddings (one vector each)").register(registry);
    private final Counter embeddingTokens = Counter.builder().name("aether_embedding_tokens_total")
            .help("Tokens of the inputs embedded by /v1/embeddings").register(registry);
    private final Counter tokenChoices = Counter.builder().name("aether_token_choices_total")
            .help("Generated tokens by what they were chosen from: argmax (greedy, the model's argmax), candidates "
                    + "(sampled from the row's top candidates), logits (sampled from the whole logits row)")
            .labelNames("from").register(registry);
    private final io.prometheus.metrics.core.datapoints.CounterDataPoint fromArgmax = tokenChoices.labelValues("argmax");
    private final io.prometheus.metrics.core.datapoints.CounterDataPoint fromCandidates =
            tokenChoices.labelValues("candidates");
    private final io.prometheus.metrics.core.datapoints.CounterDataPoint fromLogits = tokenChoices.labelValues("logits");
    private final Counter preemptions = Counter.builder().name("aether_preemptions_total")
            .help("Sequences evicted from a full KV pool and recomputed later").register(registry);
    private final Histogram timeToFirstToken = Histogram.builder().name("aether_time_to_first_token_seconds")
            .help("From admission to the queue until the first generated token").classicOnly()
            .classicUpperBounds(LATENCY_BOUNDS).register(registry);
    private final Histogram interToken = Histogram.builder().name("aether_inter_token_latency_seconds")
            .help("Between consecutive generated tokens of one sequence").classicOnly()
            .classicUpperBounds(LATENCY_BOUNDS).register(registry);

    private final Counter prefixHits = Counter.builder().name("aether_prefix_cache_hits_total")
            .help("Admitted requests whose prompt prefix was found in the prefix cache").register(registry);
    private final Counter prefixMisses = Counter.builder().name("aether_prefix_cache_misses_total")
            .help("Admitted requests (prefix cache on) that found no cached prefix").register(registry);
    private final Counter prefixTokens = Counter.builder().name("aether_prefix_cache_reused_tokens_total")
            .help("Prompt tokens not prefilled because their KV was reused from the prefix cache").register(registry);

    /** Registers the gauges that read the engine's state when scraped. */
    public void bindEngine(IntSupplier queueDepth, IntSupplier activeSequences, Supplier<KvStats> kv,
            IntSupplier cachedBlocks) {
        GaugeWithCallback.builder().name("aether_kv_blocks_cached")
                .help("KV cache blocks held by finished sequences kept in the prefix cache (part of used)")
                .callback(cb -> cb.call(cachedBlocks.getAsInt())).register(registry);
        GaugeWithCallback.builder().name("aether_prefix_cache_hit_ratio")
                .help("Prefix cache hits over lookups since start")
                .callback(cb -> {
                    double hits = prefixHits.get();
                    double all = hits + prefixMisses.get();
                    cb.call(all == 0 ? 0 : hits / all);
                }).register(registry);
        GaugeWithCallback.builder().name("aether_queue_depth").help("Requests waiting for a sequence slot")
                .callback(cb -> cb.call(queueDepth.getAsInt())).register(registry);
        GaugeWithCallback.builder().name("aether_active_sequences").help("Sequences in the running batch")
                .callback(cb -> cb.call(activeSequences.getAsInt())).register(registry);
        GaugeWithCallback.builder().name("aether_kv_blocks_used").help("KV cache blocks held by sequences")
                .callback(cb -> cb.call(kv.get().usedBlocks())).register(registry);
        GaugeWithCallback.builder().name("aether_kv_blocks_free").help("KV cache blocks free in the pool")
                .callback(cb -> cb.call(kv.get().freeBlocks())).register(registry);
    }

    void request(String endpoint, int status) {
        requests.labelValues(endpoint, Integer.toString(status)).inc();
    }

    void promptTokens(int n) {
        promptTokens.inc(n);
    }

    /** A finished embeddings request: {@code inputs} vectors over {@code tokens} tokens. */
    void embeddings(int inputs, int tokens) {
        embeddingInputs.inc(inputs);
        embeddingTokens.inc(tokens);
    }

    void completionToken() {
        completionTokens.inc();
    }

    /** One admitted request looked for a cached prefix and reused {@code tokens} of it (0: a miss). */
    void prefixLookup(int tokens) {
        if (tokens > 0) {
            prefixHits.inc();
            prefixTokens.inc(tokens);
        } else {
            prefixMisses.inc();
        }
    }

    /** A generated token was taken from the model's argmax. */
    void tokenFromArgmax() {
        fromArgmax.inc();
    }

    /** A generated token was sampled from its row's candidates. */
    void tokenFromCandidates() {
        fromCandidates.inc();
    }

    /** A generated token was sampled from its whole logits row. */
    void tokenFromLogits() {
        fromLogits.inc();
    }

    void preemption() {
        preemptions.inc();
    }

    void firstToken(long nanos) {
        timeToFirstToken.observe(nanos / 1e9);
    }

    void interToken(long nanos) {
        interToken.observe(nanos / 1e9);
    }

    /** The Prometheus text exposition format (version 0.0.4). */
    public String contentType() {
        return writer.getContentType();
    }

    public byte[] scrape() {
        var out = new ByteArrayOutputStream(4096);
        try {
            writer.write(out, registry.scrape());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toByteArray();
    }
}
