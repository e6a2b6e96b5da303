package aether.llm.server;

import aether.llm.chat.ChatTemplate;
import aether.llm.server.GenerationListener.FinishReason;
import aether.llm.server.GenerationListener.GeneratedToken;
import aether.llm.server.RequestDecoder.Decoded;
import aether.llm.tokenizer.Tokenizer;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.json.JsonReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.logging.Level;
import java.util.logging.Logger;
import org.apache.pekko.Done;
import org.apache.pekko.actor.ActorSystem;
import org.apache.pekko.http.javadsl.Http;
import org.apache.pekko.http.javadsl.ServerBinding;
import org.apache.pekko.http.javadsl.model.ContentType;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.HttpEntities;
import org.apache.pekko.http.javadsl.model.HttpMethods;
import org.apache.pekko.http.javadsl.model.HttpRequest;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.MediaTypes;
import org.apache.pekko.http.javadsl.model.headers.RawHeader;
import org.apache.pekko.http.scaladsl.model.EntityStreamSizeException;
import org.apache.pekko.japi.Pair;
import org.apache.pekko.stream.BoundedSourceQueue;
import org.apache.pekko.stream.QueueOfferResult;
import org.apache.pekko.stream.javadsl.Source;
import org.apache.pekko.util.ByteString;

/**
 * The OpenAI-compatible HTTP API over a {@link ServingEngine}: {@code POST /v1/chat/completions},
 * {@code POST /v1/completions} (streamed as server-sent events ending in {@code data: [DONE]}, or whole),
 * {@code POST /v1/embeddings} ({@link EmbeddingsRoute}), {@code GET /v1/models[/{id}]}, {@code GET /health},
 * {@code GET /ready}, {@code GET /metrics}. Pekko HTTP serves the connections; each generation request is decoded on
 * a virtual thread, so a large body or a slow template never holds a Pekko dispatcher thread. A streaming client
 * that disconnects cancels its request, which frees its KV blocks before the engine's next step.
 *
 * <p>Errors are OpenAI's JSON ({@code {"error":{"message","type","param","code"}}}): 400 for malformed JSON and bad
 * fields (named), 401 without the right {@code Authorization: Bearer} key, 404 for unknown paths and models, 405,
 * 413 for bodies over the limit, 429 with {@code Retry-After} for a full queue or an exhausted rate limit.
 */
public final class OpenAiServer implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(OpenAiServer.class.getName());
    private static final JsonNodeFactory JSON = JsonNodeFactory.instance;
    private static final ContentType EVENT_STREAM = MediaTypes.TEXT_EVENT_STREAM.toContentType();
    private static final ByteString DONE_EVENT = ByteString.fromString("data: [DONE]\n\n");
    static final int MAX_JSON_DEPTH = 64;

    /**
     * HTTP-side settings.
     *
     * @param apiKeys            accepted {@code Bearer} keys; empty = no authentication
     * @param rateLimitPerMinute requests per minute per key (token bucket); 0 = unlimited
     * @param maxBodyBytes       request bodies above this are refused with 413
     * @param maxPromptTokens    prompts above this many tokens are refused with 400 (also capped by the context)
     * @param modelId            the id {@code /v1/models} lists and requests must name (or omit)
     */
    public record Settings(String host, int port, Set<String> apiKeys, int rateLimitPerMinute, long maxBodyBytes,
            int maxPromptTokens, String modelId) {
        public Settings {
            Objects.requireNonNull(host, "host");
            apiKeys = Set.copyOf(apiKeys);
            if (port < 0 || port > 65535 || rateLimitPerMinute < 0 || maxBodyBytes < 1 || maxPromptTokens < 1) {
                throw new IllegalArgumentException("server settings port " + port + ", rate limit "
                        + rateLimitPerMinute + "/min, max body " + maxBodyBytes + " bytes, max prompt "
                        + maxPromptTokens + " tokens (expected port 0..65535, rate limit >= 0, limits >= 1)");
            }
            for (String k : apiKeys) {
                if (k.isBlank()) {
                    throw new IllegalArgumentException("an API key is blank");
                }
            }
        }
    }

    private final ServingEngine engine;
    private final Tokenizer tokenizer;
    private final Settings settings;
    private final ServerMetrics metrics;
    private final RequestDecoder decoder;
    private final EmbeddingsRoute embeddings;
    private final ModelCard card;
    private final RateLimiter rateLimiter;
    private final byte[][] keyDigests;
    private final ObjectMapper mapper;
    private final ActorSystem system;
    private final ExecutorService requests = Executors.newVirtualThreadPerTaskExecutor();
    private final long createdSeconds = System.currentTimeMillis() / 1000;
    private final ServerBinding binding;

    private OpenAiServer(ServingEngine engine, Tokenizer tokenizer, ChatTemplate template, Settings settings,
            ServerMetrics metrics, ModelCard card) {
        this.engine = engine;
        this.tokenizer = tokenizer;
        this.settings = settings;
        this.metrics = metrics;
        this.decoder = new RequestDecoder(tokenizer, template, settings.modelId(), engine.contextSize(),
                settings.maxPromptTokens(), engine.maxConcurrency());
        this.card = card;
        this.embeddings = new EmbeddingsRoute(engine, tokenizer, settings.modelId(), card.pooling(),
                engine.modelConfig().embeddingLength(), Math.min(settings.maxPromptTokens(), engine.contextSize()),
                metrics);
        this.rateLimiter = settings.rateLimitPerMinute() > 0
                ? new RateLimiter(settings.rateLimitPerMinute(), System::nanoTime) : null;
        this.keyDigests = settings.apiKeys().stream().map(OpenAiServer::sha256).toArray(byte[][]::new);
        this.mapper = JsonMapper.builder()
                .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
                .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
                .disable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS)
                .build();
        mapper.getFactory().setStreamReadConstraints(StreamReadConstraints.builder()
                .maxNestingDepth(MAX_JSON_DEPTH)
                .maxNumberLength(100)
                .maxStringLength((int) Math.min(Integer.MAX_VALUE, settings.maxBodyBytes()))
                .build());
        Config config = ConfigFactory.parseString("""
                pekko.loglevel = WARNING
                pekko.stdout-loglevel = WARNING
                pekko.coordinated-shutdown.run-by-jvm-shutdown-hook = off
                pekko.http.server.request-timeout = 30 min
                pekko.http.server.idle-timeout = 30 min
                pekko.http.server.server-header = aether
                pekko.http.server.parsing.max-content-length = %d
                """.formatted(settings.maxBodyBytes())).withFallback(ConfigFactory.load());
        this.system = ActorSystem.create("aether-serve", config);
        try {
            // per connection, so that a whole (non-streamed) request whose client hangs up is cancelled too
            var materializer = org.apache.pekko.stream.SystemMaterializer.get(system).materializer();
            this.binding = Http.get(system).newServerAt(settings.host(), settings.port()).connectionSource()
                    .to(org.apache.pekko.stream.javadsl.Sink.foreach(connection -> {
                        var client = new ClientConnection();
                        // the request side ends when the client closes the connection (its response may still be
                        // pending: Pekko then waits for it), the response side when the connection is torn down
                        connection.handleWith(org.apache.pekko.stream.javadsl.Flow.of(HttpRequest.class)
                                .watchTermination((mat, done) -> {
                                    done.whenComplete((ok, failure) -> client.close());
                                    return mat;
                                })
                                .mapAsync(1, r -> handle(r, client))
                                .watchTermination((mat, done) -> {
                                    done.whenComplete((ok, failure) -> client.close());
                                    return mat;
                                }), materializer);
                    }))
                    .run(materializer).toCompletableFuture().get(30, TimeUnit.SECONDS);
        } catch (Exception e) {
            system.terminate();
            throw new IllegalStateException("cannot listen on " + settings.host() + ":" + settings.port() + ": "
                    + (e.getCause() != null ? e.getCause().getMessage() : e.getMessage()), e);
        }
    }

    /**
     * Starts listening. The engine and the template stay owned by the caller, who closes the engine after the server.
     *
     * @param template the chat template for {@code /v1/chat/completions}
     * @throws IllegalStateException when the address cannot be bound
     */
    public static OpenAiServer start(ServingEngine engine, Tokenizer tokenizer, ChatTemplate template,
            Settings settings, ServerMetrics metrics) {
        return start(engine, tokenizer, template, settings, metrics, ModelCard.of(engine.modelConfig()));
    }

    /**
     * {@link #start(ServingEngine, Tokenizer, ChatTemplate, Settings, ServerMetrics)} with what {@code /v1/models}
     * reports and how {@code /v1/embeddings} pools ({@code card}).
     */
    public static OpenAiServer start(ServingEngine engine, Tokenizer tokenizer, ChatTemplate template,
            Settings settings, ServerMetrics metrics, ModelCard card) {
        return new OpenAiServer(engine, tokenizer, template, settings, metrics, card);
    }

    /** The bound port (the actual one when {@link Settings#port()} was 0). */
    public int port() {
        return binding.localAddress().getPort();
    }

    @Override
    public void close() {
        try {
            binding.terminate(Duration.ofSeconds(2)).toCompletableFuture().get(10, TimeUnit.SECONDS);
        } catch (Exception e) {
            LOG.log(Level.FINE, "unbinding failed", e);
        }
        requests.shutdownNow();
        system.terminate();
        try {
            system.getWhenTerminated().toCompletableFuture().get(10, TimeUnit.SECONDS);
        } catch (Exception e) {
            LOG.log(Level.FINE, "actor system did not stop in time", e);
        }
    }

    /** One client connection: what to cancel when it closes. */
    private static final class ClientConnection {
        private final java.util.Set<Runnable> onClose = java.util.concurrent.ConcurrentHashMap.newKeySet();
        private volatile boolean closed;

        /** Runs {@code action} when the connection closes (at once if it has); returns a deregistration. */
        Runnable whenClosed(Runnable action) {
            onClose.add(action);
            if (closed && onClose.remove(action)) {
                action.run();
            }
            return () -> onClose.remove(action);
        }

        void close() {
            closed = true;
            for (Runnable r : onClose) {
                if (onClose.remove(r)) {
                    r.run();
                }
            }
        }
    }

    private CompletionStage<HttpResponse> handle(HttpRequest request, ClientConnection client) {
        String path = request.getUri().path();
        boolean get = request.method().equals(HttpMethods.GET);
        boolean post = request.method().equals(HttpMethods.POST);
        try {
            if (path.startsWith("/v1/models/")) {
                if (!get) {
                    return done(request, "models", methodNotAllowed("GET"));
                }
                authorize(request);
                return done(request, "models", json(200, model(path)));
            }
            switch (path) {
                case "/health" -> {
                    return done(request, "health", get ? json(200, JSON.objectNode().put("status", "ok"))
                            : methodNotAllowed("GET"));
                }
                case "/ready" -> {
                    if (!get) {
                        return done(request, "ready", methodNotAllowed("GET"));
                    }
                    return done(request, "ready", engine.isRunning()
                            ? json(200, JSON.objectNode().put("status", "ready"))
                            : error(ApiException.unavailable("the engine is not running")));
                }
                case "/metrics" -> {
                    if (!get) {
                        return done(request, "metrics", methodNotAllowed("GET"));
                    }
                    metrics.request("metrics", 200);
                    request.discardEntityBytes(system);
                    return CompletableFuture.completedFuture(HttpResponse.create().withEntity(
                            ContentTypes.parse(metrics.contentType()), metrics.scrape()));
                }
                case "/v1/models" -> {
                    if (!get) {
                        return done(request, "models", methodNotAllowed("GET"));
                    }
                    authorize(request);
                    return done(request, "models", json(200, models()));
                }
                case "/v1/embeddings" -> {
                    if (!post) {
                        return done(request, "embeddings", methodNotAllowed("POST"));
                    }
                    limitRate(authorize(request));
                    return generate(request, "embeddings", client);
                }
                case "/v1/chat/completions", "/v1/completions" -> {
                    String endpoint = path.equals("/v1/completions") ? "completions" : "chat_completions";
                    if (!post) {
                        return done(request, endpoint, methodNotAllowed("POST"));
                    }
                    String key = authorize(request);
                    limitRate(key);
                    return generate(request, endpoint, client);
                }
                default -> {
                    return done(request, "other", error(ApiException.notFound(null, "not_found",
                            "no route for " + request.method().name() + " " + path)));
                }
            }
        } catch (ApiException e) {
            return done(request, "other".equals(endpointOf(path)) ? "other" : endpointOf(path), error(e));
        }
    }

    private static String endpointOf(String path) {
        return switch (path) {
            case "/v1/completions" -> "completions";
            case "/v1/chat/completions" -> "chat_completions";
            case "/v1/models" -> "models";
            case "/v1/embeddings" -> "embeddings";
            default -> path.startsWith("/v1/models/") ? "models" : "other";
        };
    }

    private CompletionStage<HttpResponse> done(HttpRequest request, String endpoint, HttpResponse response) {
        request.discardEntityBytes(system);
        metrics.request(endpoint, response.status().intValue());
        return CompletableFuture.completedFuture(response);
    }

    /** Checks the bearer key (constant-time compare); returns the key, or "" when authentication is off. */
    private String authorize(HttpRequest request) {
        if (keyDigests.length == 0) {
            return "";
        }
        var header = request.getHeader("Authorization");
        if (header.isEmpty()) {
            throw ApiException.unauthorized("missing API key: send 'Authorization: Bearer <key>'");
        }
        String value = header.get().value();
        if (!value.regionMatches(true, 0, "Bearer ", 0, 7)) {
            throw ApiException.unauthorized("the Authorization header must be 'Bearer <key>'");
        }
        String key = value.substring(7).trim();
        byte[] digest = sha256(key);
        boolean ok = false;
        for (byte[] d : keyDigests) {
            ok |= MessageDigest.isEqual(d, digest);
        }
        if (!ok) {
            throw ApiException.unauthorized("incorrect API key provided");
        }
        return key;
    }

    private void limitRate(String key) {
        if (rateLimiter != null) {
            long wait = rateLimiter.acquire(key);
            if (wait > 0) {
                throw ApiException.tooMany("rate_limit_exceeded", "rate limit of " + settings.rateLimitPerMinute()
                        + " requests per minute reached; retry in " + wait + " s", wait);
            }
        }
    }

    /**
     * Reads the body, then decodes and answers it on a virtual thread. A body over the limit is still read (and
     * dropped) up to {@link #drainLimit()} bytes before the 413 goes out: a server that stops reading while the
     * client is still sending makes the client's TCP stack reset the connection, and the client never sees the 413.
     */
    private CompletionStage<HttpResponse> generate(HttpRequest request, String endpoint, ClientConnection client) {
        var length = request.entity().getContentLengthOption();
        if (length.isPresent() && length.getAsLong() > drainLimit()) {
            return done(request, endpoint, error(tooLarge(length.getAsLong())));
        }
        var body = new BodyReader(settings.maxBodyBytes(), drainLimit());
        return request.entity().withoutSizeLimit().getDataBytes()
                .takeWhile(body::accepts)
                .runForeach(body::add, system)
                .thenApplyAsync(finished -> {
                    if (body.overflow()) {
                        HttpResponse r = error(tooLarge(length.isPresent() ? length.getAsLong() : -1));
                        metrics.request(endpoint, r.status().intValue());
                        return r;
                    }
                    return respond(endpoint, body.bytes(), client);
                }, requests)
                .exceptionally(e -> {
                    Throwable cause = e instanceof CompletionException && e.getCause() != null ? e.getCause() : e;
                    HttpResponse r = cause instanceof EntityStreamSizeException
                            ? error(tooLarge(-1)) : error(internal(cause));
                    metrics.request(endpoint, r.status().intValue());
                    return r;
                });
    }

    /** Bytes of an oversized body read and dropped before answering 413 (beyond it the connection is closed). */
    private long drainLimit() {
        return Math.max(settings.maxBodyBytes() * 16, 64L << 20);
    }

    /** Collects a body up to {@code max} bytes; past that only counts (up to {@code drain}). Stream-thread only. */
    private static final class BodyReader {
        private final long max;
        private final long drain;
        private final org.apache.pekko.util.ByteStringBuilder data = new org.apache.pekko.util.ByteStringBuilder();
        private long total;

        BodyReader(long max, long drain) {
            this.max = max;
            this.drain = drain;
        }

        boolean accepts(ByteString chunk) {
            return total <= drain;
        }

        void add(ByteString chunk) {
            total += chunk.size();
            if (total <= max) {
                data.append(chunk);
            }
        }

        boolean overflow() {
            return total > max;
        }

        byte[] bytes() {
            return data.result().toArray();
        }
    }

    private ApiException tooLarge(long length) {
        return ApiException.tooLarge("the request body" + (length >= 0 ? " of " + length + " bytes" : "")
                + " exceeds the limit of " + settings.maxBodyBytes() + " bytes");
    }

    private static ApiException internal(Throwable t) {
        LOG.log(Level.SEVERE, "request failed", t);
        return new ApiException(500, "server_error", null, null, "internal error: " + t, 0);
    }

    private HttpResponse respond(String endpoint, byte[] body, ClientConnection client) {
        HttpResponse response;
        try {
            JsonNode json = parse(body);
            if (endpoint.equals("embeddings")) {
                response = json(200, embeddings.respond(json, client::whenClosed));
                metrics.request(endpoint, response.status().intValue());
                return response;
            }
            boolean chat = endpoint.equals("chat_completions");
            Decoded d = chat ? decoder.chat(json) : decoder.completion(json);
            List<List<GeneratedToken>> scores = chat ? null : promptLogprobs(d, client);
            response = d.stream() ? stream(d, chat, scores) : whole(d, chat, client, scores);
        } catch (ApiException e) {
            response = error(e);
        } catch (RuntimeException e) {
            response = error(internal(e));
        }
        metrics.request(endpoint, response.status().intValue());
        return response;
    }

    private JsonNode parse(byte[] body) {
        if (body.length == 0) {
            throw ApiException.invalid(null, "the request body is empty; expected a JSON object");
        }
        try {
            JsonNode node = mapper.readTree(body);
            if (node == null || node.isMissingNode()) {
                throw ApiException.invalid(null, "the request body is empty; expected a JSON object");
            }
            return node;
        } catch (JsonProcessingException e) {
            String where = e.getLocation() == null ? ""
                    : " at line " + e.getLocation().getLineNr() + ", column " + e.getLocation().getColumnNr();
            throw ApiException.invalid(null, "malformed JSON" + where + ": " + e.getOriginalMessage());
        } catch (java.io.IOException e) {
            throw ApiException.invalid(null, "unreadable request body: " + e.getMessage());
        }
    }

    // ---- whole (non-streamed) responses

    /**
     * For {@code echo} with {@code logprobs}: each prompt token's log-probability given those before it (the first
     * has none), from a {@link ScoringJob} through the engine's admission; null when not asked.
     */
    private List<List<GeneratedToken>> promptLogprobs(Decoded d, ClientConnection client) {
        if (!d.echo() || d.logprobs() < 0) {
            return null;
        }
        var scored = new ArrayList<int[]>();
        for (int[] p : d.prompts()) {
            if (p.length > 1) {
                scored.add(p);
            }
        }
        List<List<GeneratedToken>> results = List.of();
        if (!scored.isEmpty()) {
            ScoringJob job = (ScoringJob) engine.submit(new ScoringJob(scored.toArray(int[][]::new), d.logprobs()),
                    "prompt");
            Runnable deregister = client.whenClosed(job::cancel);
            try {
                results = job.await("prompt scoring");
            } finally {
                deregister.run();
            }
        }
        var out = new ArrayList<List<GeneratedToken>>();
        int k = 0;
        for (int[] p : d.prompts()) {
            out.add(p.length > 1 ? results.get(k++)
                    : List.of(new GeneratedToken(p[0], Double.NaN, Logprobs.NO_IDS, Logprobs.NO_VALUES)));
        }
        return out;
    }

    private HttpResponse whole(Decoded d, boolean chat, ClientConnection client, List<List<GeneratedToken>> scores) {
        int n = d.choices();
        var collectors = new java.util.concurrent.CopyOnWriteArrayList<Collector>();
        var handles = new java.util.concurrent.CopyOnWriteArrayList<ServingEngine.Handle>();
        // the client hangs up: stop generating (frees the KV blocks) and stop waiting
        Runnable deregister = client.whenClosed(() -> {
            handles.forEach(ServingEngine.Handle::cancel);
            collectors.forEach(c -> c.done.completeExceptionally(
                    ApiException.invalid(null, "the client closed the connection")));
        });
        try {
            for (int i = 0; i < n; i++) {
                var c = new Collector();
                collectors.add(c);
                if (d.maxTokens().get(d.promptOf(i)) == 0) {   // echo only: nothing to generate
                    c.onFinish(FinishReason.LENGTH, d.prompts().get(d.promptOf(i)).length, 0);
                } else {
                    handles.add(engine.submit(d.request(i), c));
                }
            }
        } catch (ApiException e) {
            handles.forEach(ServingEngine.Handle::cancel);
            deregister.run();
            throw e;
        }
        try {
            for (Collector c : collectors) {
                c.done.get();
            }
        } catch (InterruptedException e) {
            handles.forEach(ServingEngine.Handle::cancel);
            Thread.currentThread().interrupt();
            throw ApiException.unavailable("the server is shutting down");
        } catch (ExecutionException e) {
            handles.forEach(ServingEngine.Handle::cancel);
            if (e.getCause() instanceof ApiException api) {
                throw api;
            }
            throw new IllegalStateException(e.getCause());
        } finally {
            deregister.run();
        }
        ObjectNode out = JSON.objectNode();
        String id = (chat ? "chatcmpl-" : "cmpl-") + UUID.randomUUID();
        out.put("id", id).put("object", chat ? "chat.completion" : "text_completion")
                .put("created", System.currentTimeMillis() / 1000).put("model", d.model());
        ArrayNode choices = out.putArray("choices");
        int prompt = 0;
        int completion = 0;
        for (int i = 0; i < n; i++) {
            Collector c = collectors.get(i);
            ObjectNode choice = choices.addObject().put("index", i);
            FinishReason reason = c.reason;
            if (chat) {
                ObjectNode message = choice.putObject("message").put("role", "assistant");
                ToolCalls.Parsed parsed = d.tools() != null && d.tools().parses()
                        ? ToolCalls.parse(c.text.toString(), d.tools()) : null;
                if (parsed != null && !parsed.calls().isEmpty()) {
                    if (parsed.content() == null) {
                        message.putNull("content");
                    } else {
                        message.put("content", parsed.content());
                    }
                    message.set("tool_calls", toolCalls(parsed.calls(), false));
                    reason = FinishReason.TOOL_CALLS;
                } else {
                    message.put("content", c.text.toString());
                }
                choice.set("logprobs", d.logprobs() >= 0 ? chatLogprobs(c.tokens) : JSON.nullNode());
            } else {
                int p = d.promptOf(i);
                String echo = d.echo() ? (d.promptTexts().get(p) != null ? d.promptTexts().get(p)
                        : tokenizer.decode(d.prompts().get(p))) : "";
                choice.put("text", echo + c.text);
                choice.set("logprobs", d.logprobs() < 0 ? JSON.nullNode() : scores != null
                        ? echoLogprobs(d.prompts().get(p), scores.get(p), c.tokens, echo.length())
                        : completionLogprobs(c.tokens, 0));
            }
            choice.put("finish_reason", reason.json());
            if (i % d.n() == 0) {
                prompt += c.promptTokens;   // a prompt counts once, however many choices answer it
            }
            completion += c.completionTokens;
        }
        out.set("usage", usage(prompt, completion));
        return json(200, out);
    }

    /** Gathers one request's output for a whole response. */
    private static final class Collector implements GenerationListener {
        final CompletableFuture<Void> done = new CompletableFuture<>();
        final StringBuilder text = new StringBuilder();
        final List<GeneratedToken> tokens = new ArrayList<>();
        FinishReason reason;
        int promptTokens;
        int completionTokens;

        @Override
        public void onText(String t, List<GeneratedToken> generated) {
            text.append(t);
            tokens.addAll(generated);
        }

        @Override
        public void onFinish(FinishReason r, int prompt, int completion) {
            reason = r;
            promptTokens = prompt;
            completionTokens = completion;
            done.complete(null);
        }

        @Override
        public void onError(RuntimeException error) {
            done.completeExceptionally(error);
        }
    }

    // ---- streamed responses (server-sent events)

    private HttpResponse stream(Decoded d, boolean chat, List<List<GeneratedToken>> scores) {
        int n = d.choices();
        int capacity = 16;
        for (int i = 0; i < n; i++) {
            capacity += Math.min(d.maxTokens().get(d.promptOf(i)), engine.contextSize()) + 4;
        }
        Pair<Pair<BoundedSourceQueue<ByteString>, CompletionStage<Done>>, Source<ByteString, org.apache.pekko.NotUsed>>
                materialized = Source.<ByteString>queue(capacity)
                        .watchTermination(Pair::create)
                        .preMaterialize(system);
        BoundedSourceQueue<ByteString> queue = materialized.first().first();
        var events = new EventStream(d, chat, queue, n);
        for (int i = 0; i < n; i++) {
            if (chat) {
                ObjectNode delta = JSON.objectNode().put("role", "assistant").put("content", "");
                events.send(events.chunk(i, delta, null, null));
            } else if (d.echo()) {
                int p = d.promptOf(i);
                String echo = d.promptTexts().get(p) != null ? d.promptTexts().get(p)
                        : tokenizer.decode(d.prompts().get(p));
                ObjectNode chunk = events.chunk(i, echo, null, null);
                if (scores != null) {   // the prompt's tokens and log-probabilities come with the echoed text
                    ((ObjectNode) chunk.get("choices").get(0)).set("logprobs",
                            echoLogprobs(d.prompts().get(p), scores.get(p), List.of(), echo.length()));
                }
                events.send(chunk);
            }
        }
        try {
            for (int i = 0; i < n; i++) {   // echo only (max_tokens 0) first: no engine thread reports yet
                if (d.maxTokens().get(d.promptOf(i)) == 0) {
                    events.listener(i).onFinish(FinishReason.LENGTH, d.prompts().get(d.promptOf(i)).length, 0);
                }
            }
            for (int i = 0; i < n; i++) {
                if (d.maxTokens().get(d.promptOf(i)) > 0) {
                    events.handles.add(engine.submit(d.request(i), events.listener(i)));
                }
            }
        } catch (ApiException e) {
            events.cancelAll();
            events.complete();
            throw e;
        }
        // the client went away (or the stream ended): stop generating and free the sequences' KV blocks
        materialized.first().second().whenComplete((ok, failure) -> events.cancelAll());
        return HttpResponse.create().withEntity(HttpEntities.createChunked(EVENT_STREAM, materialized.second()))
                .addHeader(RawHeader.create("Cache-Control", "no-cache"));
    }

    /** One response's SSE stream: chunks from the engine thread, into a bounded queue Pekko drains to the socket. */
    private final class EventStream {
        final Decoded d;
        final boolean chat;
        final BoundedSourceQueue<ByteString> queue;
        final List<ServingEngine.Handle> handles = new java.util.concurrent.CopyOnWriteArrayList<>();
        final AtomicInteger remaining;
        final String id;
        final long created = System.currentTimeMillis() / 1000;
        int promptTokens;
        int completionTokens;
        volatile boolean closed;

        EventStream(Decoded d, boolean chat, BoundedSourceQueue<ByteString> queue, int n) {
            this.d = d;
            this.chat = chat;
            this.queue = queue;
            this.remaining = new AtomicInteger(n);
            this.id = (chat ? "chatcmpl-" : "cmpl-") + UUID.randomUUID();
        }

        void cancelAll() {
            closed = true;
            handles.forEach(ServingEngine.Handle::cancel);
        }

        void send(ObjectNode event) {
            try {
                send(ByteString.fromString("data: " + mapper.writeValueAsString(event) + "\n\n"));
            } catch (JsonProcessingException e) {
                throw new IllegalStateException(e);
            }
        }

        void send(ByteString bytes) {
            if (closed) {
                return;
            }
            QueueOfferResult r = queue.offer(bytes);
            if (!(r instanceof QueueOfferResult.Enqueued$)) {
                // the client is gone (queue closed) or not reading: stop generating for it
                cancelAll();
                complete();
            }
        }

        void complete() {
            closed = true;
            if (!queue.isCompleted()) {
                try {
                    queue.complete();
                } catch (IllegalStateException alreadyDone) {
                    // completed concurrently by the stream's own termination: nothing left to do
                }
            }
        }

        ObjectNode chunk(int index, Object content, List<GeneratedToken> tokens, FinishReason reason) {
            ObjectNode c = JSON.objectNode().put("id", id)
                    .put("object", chat ? "chat.completion.chunk" : "text_completion").put("created", created)
                    .put("model", d.model());
            ObjectNode choice = c.putArray("choices").addObject().put("index", index);
            if (chat) {
                choice.set("delta", content instanceof ObjectNode o ? o
                        : content == null ? JSON.objectNode() : JSON.objectNode().put("content", (String) content));
                choice.set("logprobs", tokens != null && !tokens.isEmpty() && d.logprobs() >= 0
                        ? chatLogprobs(tokens) : JSON.nullNode());
            } else {
                choice.put("text", content == null ? "" : (String) content);
                choice.set("logprobs", tokens != null && !tokens.isEmpty() && d.logprobs() >= 0
                        ? completionLogprobs(tokens, 0) : JSON.nullNode());
            }
            if (reason == null) {
                choice.putNull("finish_reason");
            } else {
                choice.put("finish_reason", reason.json());
            }
            return c;
        }

        GenerationListener listener(int index) {
            // with tools the output is held back until it is known to be a call or text, then sent in one delta
            boolean hold = chat && d.tools() != null && d.tools().parses();
            var held = new StringBuilder();
            var heldTokens = new ArrayList<GeneratedToken>();
            return new GenerationListener() {
                @Override
                public void onText(String text, List<GeneratedToken> tokens) {
                    if (hold) {
                        held.append(text);
                        heldTokens.addAll(tokens);
                    } else {
                        send(chunk(index, text, tokens, null));
                    }
                }

                @Override
                public void onFinish(FinishReason reason, int prompt, int completion) {
                    if (hold) {
                        ToolCalls.Parsed parsed = ToolCalls.parse(held.toString(), d.tools());
                        if (parsed.calls().isEmpty()) {
                            send(chunk(index, held.toString(), heldTokens, null));
                        } else {
                            ObjectNode delta = JSON.objectNode();
                            if (parsed.content() != null) {
                                delta.put("content", parsed.content());
                            }
                            delta.set("tool_calls", toolCalls(parsed.calls(), true));
                            send(chunk(index, delta, heldTokens, null));
                            reason = FinishReason.TOOL_CALLS;
                        }
                    }
                    send(chunk(index, chat ? null : "", null, reason));
                    if (index % d.n() == 0) {
                        promptTokens += prompt;   // once per prompt, however many choices answer it
                    }
                    completionTokens += completion;
                    if (remaining.decrementAndGet() == 0) {
                        end();
                    }
                }

                @Override
                public void onError(RuntimeException error) {
                    ApiException api = error instanceof ApiException a ? a : internal(error);
                    send(errorBody(api));
                    send(DONE_EVENT);
                    cancelAll();
                    complete();
                }
            };
        }

        void end() {
            if (d.includeUsage()) {
                ObjectNode c = JSON.objectNode().put("id", id)
                        .put("object", chat ? "chat.completion.chunk" : "text_completion").put("created", created)
                        .put("model", d.model());
                c.putArray("choices");
                c.set("usage", usage(promptTokens, completionTokens));
                send(c);
            }
            send(DONE_EVENT);
            complete();
        }
    }

    // ---- JSON pieces

    private ObjectNode models() {
        ObjectNode out = JSON.objectNode().put("object", "list");
        out.putArray("data").add(card.json(settings.modelId(), createdSeconds, engine.contextSize()));
        return out;
    }

    /** {@code GET /v1/models/{id}}: the model object, or 404 naming the id. */
    private ObjectNode model(String path) {
        String id = java.net.URLDecoder.decode(path.substring("/v1/models/".length()), StandardCharsets.UTF_8);
        if (!id.equals(settings.modelId())) {
            throw ApiException.notFound("model", "model_not_found", "the model '" + id
                    + "' does not exist; this server serves '" + settings.modelId() + "'");
        }
        return card.json(id, createdSeconds, engine.contextSize());
    }

    /** OpenAI's {@code tool_calls} array; in a stream delta each call also carries its {@code index}. */
    private static ArrayNode toolCalls(List<ToolCalls.Call> calls, boolean delta) {
        ArrayNode out = JSON.arrayNode();
        for (int i = 0; i < calls.size(); i++) {
            ToolCalls.Call c = calls.get(i);
            ObjectNode call = out.addObject();
            if (delta) {
                call.put("index", i);
            }
            call.put("id", c.id()).put("type", "function");
            call.putObject("function").put("name", c.name()).put("arguments", c.arguments());
        }
        return out;
    }

    private static ObjectNode usage(int prompt, int completion) {
        return JSON.objectNode().put("prompt_tokens", prompt).put("completion_tokens", completion)
                .put("total_tokens", prompt + completion);
    }

    private ObjectNode chatLogprobs(List<GeneratedToken> tokens) {
        ObjectNode out = JSON.objectNode();
        ArrayNode content = out.putArray("content");
        for (GeneratedToken t : tokens) {
            ObjectNode entry = tokenEntry(t.id(), t.logprob());
            ArrayNode top = entry.putArray("top_logprobs");
            for (int i = 0; i < t.topIds().length; i++) {
                top.add(tokenEntry(t.topIds()[i], t.topLogprobs()[i]));
            }
            content.add(entry);
        }
        return out;
    }

    private ObjectNode tokenEntry(int id, double logprob) {
        byte[] bytes = tokenizer.tokenBytes(id);
        ObjectNode e = JSON.objectNode().put("token", new String(bytes, StandardCharsets.UTF_8))
                .put("logprob", logprob);
        ArrayNode b = e.putArray("bytes");
        for (byte x : bytes) {
            b.add(x & 0xff);
        }
        return e;
    }

    /**
     * The legacy shape for {@code echo} with {@code logprobs}: the prompt's tokens first (the first one's logprob and
     * top alternatives null, as OpenAI's), their offsets the length of the decoded text before them, then the
     * generated tokens from {@code echoLength} on.
     */
    private ObjectNode echoLogprobs(int[] prompt, List<GeneratedToken> scores, List<GeneratedToken> generated,
            int echoLength) {
        ObjectNode out = completionLogprobs(scores, 0);
        ArrayNode lps = (ArrayNode) out.get("token_logprobs");
        ArrayNode tops = (ArrayNode) out.get("top_logprobs");
        ArrayNode offsets = (ArrayNode) out.get("text_offset");
        lps.set(0, JSON.nullNode());
        tops.set(0, JSON.nullNode());
        for (int i = 0; i < prompt.length; i++) {
            offsets.set(i, JSON.numberNode(tokenizer.decode(java.util.Arrays.copyOf(prompt, i)).length()));
        }
        ObjectNode rest = completionLogprobs(generated, echoLength);
        for (String field : List.of("tokens", "token_logprobs", "top_logprobs", "text_offset")) {
            ((ArrayNode) out.get(field)).addAll((ArrayNode) rest.get(field));
        }
        return out;
    }

    /** The legacy completions shape: parallel arrays of tokens, their logprobs, top alternatives, text offsets. */
    private ObjectNode completionLogprobs(List<GeneratedToken> tokens, int textOffset) {
        ObjectNode out = JSON.objectNode();
        ArrayNode toks = out.putArray("tokens");
        ArrayNode lps = out.putArray("token_logprobs");
        ArrayNode tops = out.putArray("top_logprobs");
        ArrayNode offsets = out.putArray("text_offset");
        int offset = textOffset;
        for (GeneratedToken t : tokens) {
            String piece = new String(tokenizer.tokenBytes(t.id()), StandardCharsets.UTF_8);
            toks.add(piece);
            lps.add(t.logprob());
            ObjectNode top = tops.addObject();
            for (int i = 0; i < t.topIds().length; i++) {
                String alt = new String(tokenizer.tokenBytes(t.topIds()[i]), StandardCharsets.UTF_8);
                if (!top.has(alt)) {
                    top.put(alt, t.topLogprobs()[i]);
                }
            }
            offsets.add(offset);
            offset += piece.length();
        }
        return out;
    }

    private HttpResponse json(int status, JsonNode body) {
        try {
            return HttpResponse.create().withStatus(status)
                    .withEntity(ContentTypes.APPLICATION_JSON, mapper.writeValueAsBytes(body));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    private static ObjectNode errorBody(ApiException e) {
        ObjectNode err = JSON.objectNode();
        ObjectNode inner = err.putObject("error").put("message", e.getMessage()).put("type", e.type());
        if (e.param() == null) {
            inner.putNull("param");
        } else {
            inner.put("param", e.param());
        }
        if (e.code() == null) {
            inner.putNull("code");
        } else {
            inner.put("code", e.code());
        }
        return err;
    }

    private HttpResponse error(ApiException e) {
        HttpResponse r = json(e.status(), errorBody(e));
        if (e.retryAfterSeconds() > 0) {
            r = r.addHeader(RawHeader.create("Retry-After", Long.toString(e.retryAfterSeconds())));
        }
        if (e.status() == 401) {
            r = r.addHeader(RawHeader.create("WWW-Authenticate", "Bearer"));
        }
        return r;
    }

    private HttpResponse methodNotAllowed(String allowed) {
        return error(new ApiException(405, "invalid_request_error", null, "method_not_allowed",
                "method not allowed; use " + allowed, 0)).addHeader(RawHeader.create("Allow", allowed));
    }

    private static byte[] sha256(String key) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(key.getBytes(StandardCharsets.UTF_8));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
