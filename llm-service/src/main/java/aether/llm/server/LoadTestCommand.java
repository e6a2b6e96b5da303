package aether.llm.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code ./aether loadtest}: streams greedy (or, with {@code --temperature}, sampled) completions at several concurrency levels against a server (a running one
 * at {@code --url}, or one started in-process on {@code -m}) and reports, per level, the aggregate decode rate
 * (generated tokens over the level's wall time) and p50/p99 time to first token and inter-token latency as the client
 * sees them (one SSE chunk per token; {@code ignore_eos} makes every request generate exactly {@code --max-tokens}).
 * {@code --warmup} requests run first, untimed, so that level 1 does not pay for the JIT. The in-process server runs
 * on {@code --device} (as {@code serve}: auto = the GPU when there is one); {@code --budget-s} skips the levels that
 * would start after the budget is spent (scripts/gpu-check.sh bounds its serving run so). The in-process server keeps
 * one finished sequence per slot of the highest level for prefix reuse (llama-server's per-slot prompt cache).
 * {@code scripts/llama-cpp-load.mjs} puts the same load on llama.cpp and {@code scripts/load-table.sh} runs both.
 */
@Command(name = "loadtest", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Measure aggregate decode tokens/s and TTFT / inter-token latency percentiles under load.")
public final class LoadTestCommand implements Callable<Integer> {

    @Option(names = "--url", description = "server base URL, e.g. http://127.0.0.1:8080 (default: start one on -m)")
    String url;

    @Option(names = {"-m", "--model"}, description = "model for an in-process server (default: the bundled one)")
    Path model;

    @Option(names = "--api-key", description = "Bearer key for --url")
    String apiKey;

    @Option(names = {"-c", "--concurrency"}, split = ",", description = "concurrency levels (default 1,8,32)")
    int[] levels = {1, 8, 32};

    @Option(names = "--requests", description = "requests per level (default: 2 x concurrency, at least 4)")
    Integer requests;

    @Option(names = {"-n", "--max-tokens"}, description = "tokens generated per request (default 64)")
    int maxTokens = 64;

    @Option(names = {"-p", "--prompt"}, description = "prompt text (default: a short story opening)")
    String prompt = "Once upon a time, in a small village by the sea, there lived";

    @Option(names = "--prompt-file", paramLabel = "FILE", description = "prompt from a file: its text, or a JSON "
            + "array of token ids sent as they are (scripts/llama-cpp-load.mjs reads the same file)")
    Path promptFile;

    @Option(names = "--warmup", description = "untimed requests, one at a time, before the first level (default 1)")
    int warmup = 1;

    @Option(names = "--ctx", description = "context per sequence of the in-process server (default 0: the model's)")
    int ctx;

    @Option(names = "--prefix-cache", description = "finished sequences the in-process server keeps for prompt-prefix "
            + "reuse (default: the highest level, one per slot as llama-server's cache_prompt; 0 = off)")
    Integer prefixCache;

    @Option(names = {"-t", "--threads"}, description = "compute threads of the in-process server (default: serve's)")
    Integer threads;

    @Option(names = "--device", paramLabel = "DEVICE", description = "device of the in-process server: cpu, cuda or "
            + "auto (default: serve's, auto)")
    String device;

    @Option(names = "--budget-s", paramLabel = "S", description = "time budget in seconds: levels that would start "
            + "after it are skipped, with a line saying so (default 0: no budget)")
    int budgetSeconds;

    /** The clock {@code --budget-s} is counted on (a test advances it instead of waiting). */
    java.util.function.LongSupplier budgetClock = System::nanoTime;

    @Option(names = "--temperature", paramLabel = "T", description = "sampling temperature of every request (default "
            + "0: greedy); with T > 0 request i sends seed i, so a rerun samples the same tokens")
    double temperature;

    @Option(names = "--top-p", paramLabel = "P", description = "top_p of every request, in (0, 1] (default: not sent)")
    Double topP;

    @Option(names = "--top-k", paramLabel = "K", description = "top_k of every request, 0+ (default: not sent)")
    Integer topK;

    @Option(names = "--json", description = "print JSON instead of a table")
    boolean json;

    /** One level's figures. */
    public record Level(int concurrency, int requests, long tokens, double seconds, double tokensPerSecond,
            double ttftP50Ms, double ttftP99Ms, double itlP50Ms, double itlP99Ms) {}

    @Override
    public Integer call() {
        try {
            return measureAll(System.out);
        } catch (Exception e) {
            System.err.println("aether loadtest: " + (e.getMessage() != null ? e.getMessage() : e.toString()));
            return ServeCommand.EXIT_BAD_SETTINGS;
        }
    }

    private int measureAll(PrintStream out) throws Exception {
        for (int c : levels) {
            if (c < 1) {
                throw new IllegalArgumentException("--concurrency " + c + " (expected levels of 1+)");
            }
        }
        if (maxTokens < 1 || requests != null && requests < 1) {
            throw new IllegalArgumentException("--max-tokens " + maxTokens + ", --requests " + requests
                    + " (expected 1+)");
        }
        if (budgetSeconds < 0) {
            throw new IllegalArgumentException("--budget-s " + budgetSeconds + " (expected 0+ seconds; 0 = no budget)");
        }
        if (device != null && url != null) {
            throw new IllegalArgumentException("--device " + device + " with --url (it chooses the in-process "
                    + "server's device; a server at --url runs where it was started)");
        }
        if (prefixCache != null && prefixCache < 0) {
            throw new IllegalArgumentException("--prefix-cache " + prefixCache + " (expected 0+, 0 = off)");
        }
        if (warmup < 0 || ctx < 0 || threads != null && threads < 1) {
            throw new IllegalArgumentException("--warmup " + warmup + ", --ctx " + ctx + ", --threads " + threads
                    + " (expected 0+ warm-up requests, a context of 0+ tokens, 1+ threads)");
        }
        if (!(temperature >= 0 && temperature <= 2) || topP != null && !(topP > 0 && topP <= 1)
                || topK != null && topK < 0) {
            throw new IllegalArgumentException("--temperature " + temperature + ", --top-p " + topP + ", --top-k "
                    + topK + " (expected a temperature in [0, 2], top-p in (0, 1], top-k 0+)");
        }
        JsonNode promptNode = promptNode(new ObjectMapper());
        int maxLevel = Arrays.stream(levels).max().orElse(1);
        long started = budgetClock.getAsLong();
        InferenceServer server = null;
        try {
            String base = url;
            if (base == null) {
                server = InferenceServer.start(inProcessSettings(maxLevel));
                base = "http://127.0.0.1:" + server.port();
                System.err.println("loadtest: started " + server.modelId() + " in-process on " + base + ", "
                        + server.deviceLine());
            }
            if (warmup > 0) {
                run(base, promptNode, 1, warmup);
            }
            var results = new ArrayList<Level>();
            for (int c : levels) {
                double elapsed = (budgetClock.getAsLong() - started) / 1e9;
                if (budgetSeconds > 0 && elapsed > budgetSeconds) {
                    System.err.printf(java.util.Locale.ROOT, "loadtest: concurrency %d skipped (%.0f s of the "
                            + "--budget-s %d spent)%n", c, elapsed, budgetSeconds);
                    continue;
                }
                int n = requests != null ? requests : Math.max(4, 2 * c);
                results.add(run(base, promptNode, c, n));
                if (!json) {
                    print(out, results.getLast(), results.size() == 1);
                }
            }
            if (json) {
                out.println(new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsString(results));
            }
            if (server != null) {
                System.err.println("loadtest: " + tokenChoices(server.metrics()));
            }
            return 0;
        } finally {
            if (server != null) {
                server.close();
            }
        }
    }

    /**
     * What the in-process server's tokens were chosen from ({@code aether_token_choices_total}), warm-up included:
     * e.g. "tokens from argmax 0, candidates 8000, logits 192".
     */
    static String tokenChoices(ServerMetrics metrics) {
        String text = new String(metrics.scrape(), StandardCharsets.UTF_8);
        var sb = new StringBuilder("tokens from");
        for (String from : new String[] {"argmax", "candidates", "logits"}) {
            String prefix = "aether_token_choices_total{from=\"" + from + "\"} ";
            String count = text.lines().filter(l -> l.startsWith(prefix)).map(l -> l.substring(prefix.length()))
                    .findFirst().orElse("?");
            sb.append(from.equals("argmax") ? " " : ", ").append(from).append(' ')
                    .append(count.endsWith(".0") ? count.substring(0, count.length() - 2) : count);
        }
        return sb.toString();
    }

    private static void print(PrintStream out, Level l, boolean header) {
        if (header) {
            out.println("| concurrency | requests | tokens | decode t/s | TTFT p50 ms | TTFT p99 ms | ITL p50 ms | ITL p99 ms |");
            out.println("|---:|---:|---:|---:|---:|---:|---:|---:|");
        }
        out.printf("| %d | %d | %d | %.1f | %.1f | %.1f | %.2f | %.2f |%n", l.concurrency(), l.requests(), l.tokens(),
                l.tokensPerSecond(), l.ttftP50Ms(), l.ttftP99Ms(), l.itlP50Ms(), l.itlP99Ms());
    }

    /** The request's {@code prompt}: {@code --prompt-file}'s text or token ids, else {@code --prompt}. */
    JsonNode promptNode(ObjectMapper mapper) throws IOException {
        if (promptFile == null) {
            return mapper.getNodeFactory().textNode(prompt);
        }
        String content = java.nio.file.Files.readString(promptFile);
        if (!content.stripLeading().startsWith("[")) {
            return mapper.getNodeFactory().textNode(content);
        }
        JsonNode ids;
        try {
            ids = mapper.readTree(content);
        } catch (IOException e) {
            ids = null;
        }
        if (ids == null || !ids.isArray() || ids.isEmpty()
                || !java.util.stream.StreamSupport.stream(ids.spliterator(), false).allMatch(JsonNode::canConvertToInt)) {
            throw new IllegalArgumentException("--prompt-file " + promptFile
                    + " (expected text, or a non-empty JSON array of token ids)");
        }
        return ids;
    }

    /** The in-process server's settings: serve's config, sized for {@code maxLevel} concurrent streams. */
    ServeSettings inProcessSettings(int maxLevel) {
        // a prefix cache of one sequence per slot by default, as llama-server's per-slot cache_prompt (and
        // scripts/llama-cpp-load.mjs): with serve's 4, every level above 4 re-prefilled the shared prompt of each
        // request past the 4th, which llama.cpp did not
        var s = ServeSettings.fromConfig(com.typesafe.config.ConfigFactory.load()).withPort(0)
                .withContext(ctx, maxLevel, 256).withLimits(maxLevel, 4 * maxLevel, 0)
                .withPrefixCache(prefixCache != null ? prefixCache : maxLevel).withApiKeys(Set.of());
        if (model != null) {
            s = s.withModel(model);
        }
        if (threads != null) {
            s = s.withThreads(threads);
        }
        if (device != null) {
            s = s.withDevice(device.strip().toLowerCase(java.util.Locale.ROOT));
        }
        return s;
    }

    /** Request {@code index}'s body: streamed, {@code ignore_eos}, greedy or sampled with seed {@code index}. */
    ObjectNode requestBody(ObjectMapper mapper, JsonNode promptValue, int index) {
        ObjectNode body = mapper.createObjectNode().set("prompt", promptValue);
        body.put("max_tokens", maxTokens)
                .put("temperature", temperature).put("ignore_eos", true).put("stream", true);
        if (topP != null) {
            body.put("top_p", topP);
        }
        if (topK != null) {
            body.put("top_k", topK);
        }
        if (temperature > 0) {
            body.put("seed", index);
        }
        body.putObject("stream_options").put("include_usage", true);
        return body;
    }

    /** Runs {@code n} streamed requests, {@code concurrency} at a time. */
    Level run(String base, JsonNode promptValue, int concurrency, int n) throws Exception {
        HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
        ObjectMapper mapper = new ObjectMapper();
        byte[][] bodies = new byte[n][];
        for (int i = 0; i < n; i++) {
            bodies[i] = mapper.writeValueAsBytes(requestBody(mapper, promptValue, i));
        }
        var ttft = new double[n];
        var gaps = new ArrayList<double[]>();
        var tokens = new long[n];
        ExecutorService pool = Executors.newFixedThreadPool(concurrency, Thread.ofVirtual().factory());
        long start = System.nanoTime();
        try {
            var futures = new ArrayList<Future<double[]>>();
            for (int i = 0; i < n; i++) {
                int index = i;
                futures.add(pool.submit(() -> one(http, mapper, base, bodies[index], index, ttft, tokens)));
            }
            for (Future<double[]> f : futures) {
                gaps.add(f.get());
            }
        } finally {
            pool.shutdownNow();
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        long total = Arrays.stream(tokens).sum();
        double[] itl = gaps.stream().flatMapToDouble(Arrays::stream).toArray();
        return new Level(concurrency, n, total, seconds, total / seconds, percentile(ttft, 50), percentile(ttft, 99),
                percentile(itl, 50), percentile(itl, 99));
    }

    /** One streamed request: records its TTFT and token count, returns its inter-token gaps (ms). */
    private double[] one(HttpClient http, ObjectMapper mapper, String base, byte[] body, int index, double[] ttft,
            long[] tokens) throws IOException, InterruptedException {
        var b = HttpRequest.newBuilder(URI.create(base + "/v1/completions")).timeout(Duration.ofMinutes(30))
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofByteArray(body));
        if (apiKey != null) {
            b.header("Authorization", "Bearer " + apiKey);
        }
        long sent = System.nanoTime();
        HttpResponse<java.io.InputStream> r = http.send(b.build(), HttpResponse.BodyHandlers.ofInputStream());
        var gaps = new double[maxTokens];
        int gapCount = 0;
        long last = 0;
        try (var in = new BufferedReader(new InputStreamReader(r.body(), StandardCharsets.UTF_8))) {
            if (r.statusCode() != 200) {
                throw new IOException("HTTP " + r.statusCode() + ": " + in.readLine());
            }
            String line;
            while ((line = in.readLine()) != null) {
                if (!line.startsWith("data: ") || line.equals("data: [DONE]")) {
                    continue;
                }
                JsonNode chunk = mapper.readTree(line.substring(6));
                if (chunk.hasNonNull("usage")) {
                    tokens[index] = chunk.get("usage").get("completion_tokens").asLong();
                    continue;
                }
                if (chunk.has("error")) {
                    throw new IOException("stream error: " + chunk.get("error"));
                }
                JsonNode choice = chunk.get("choices").get(0);
                if (!choice.hasNonNull("finish_reason") || !choice.get("text").asText().isEmpty()) {
                    long now = System.nanoTime();
                    if (last == 0) {
                        ttft[index] = (now - sent) / 1e6;
                    } else if (gapCount < gaps.length) {
                        gaps[gapCount++] = (now - last) / 1e6;
                    }
                    last = now;
                }
            }
        }
        return Arrays.copyOf(gaps, gapCount);
    }

    static double percentile(double[] values, double p) {
        if (values.length == 0) {
            return Double.NaN;
        }
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        int rank = (int) Math.ceil(p / 100 * sorted.length) - 1;
        return sorted[Math.max(0, Math.min(sorted.length - 1, rank))];
    }

    /** For tests: the figures of one level against {@code base}. */
    static List<Level> measure(String base, int[] levels, int requests, int maxTokens) throws Exception {
        var cmd = new LoadTestCommand();
        cmd.maxTokens = maxTokens;
        var out = new ArrayList<Level>();
        JsonNode promptValue = cmd.promptNode(new ObjectMapper());
        for (int c : levels) {
            out.add(cmd.run(base, promptValue, c, requests));
        }
        return out;
    }
}
