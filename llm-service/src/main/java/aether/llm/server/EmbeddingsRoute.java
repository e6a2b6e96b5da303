package aether.llm.server;

import aether.llm.engine.Pooling;
import aether.llm.tokenizer.Tokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;

/**
 * {@code POST /v1/embeddings}, as OpenAI's API: {@code input} (a string, a list of strings, a list of token ids or a
 * list of such lists), {@code model}, {@code encoding_format} ({@code float} or {@code base64}: little-endian float32),
 * {@code dimensions} (1..n_embd: the pooled vector is truncated, then L2-normalised, as OpenAI's text-embedding-3
 * models do), {@code user} (ignored). Each input's final hidden states (after the output norm, before the LM head) are
 * pooled as the model's {@code <arch>.pooling_type} says (mean when absent) and L2-normalised. The inputs run as one
 * {@link EmbeddingJob} through the serving engine's admission, so max-concurrency, the queue, the rate limit and
 * authentication apply as to generations. Thread-safe.
 */
final class EmbeddingsRoute {

    private static final JsonNodeFactory JSON = JsonNodeFactory.instance;
    private static final Set<String> FIELDS = Set.of("input", "model", "encoding_format", "dimensions", "user");
    /** Inputs per request at most, as OpenAI's API. */
    static final int MAX_INPUTS = 2048;

    /**
     * A decoded request.
     *
     * @param inputs     token ids of each input, in order
     * @param dimensions components of each returned vector
     */
    record EmbeddingRequest(String model, List<int[]> inputs, boolean base64, int dimensions) {
        int tokens() {
            int n = 0;
            for (int[] i : inputs) {
                n += i.length;
            }
            return n;
        }
    }

    private final ServingEngine engine;
    private final Tokenizer tokenizer;
    private final String modelId;
    private final Pooling pooling;
    private final String architecture;
    private final int width;
    private final int maxTokens;
    private final int vocab;
    private final ServerMetrics metrics;

    /**
     * @param width     the model's embedding length (n_embd)
     * @param maxTokens tokens one input may have (the context, or a lower prompt limit)
     */
    EmbeddingsRoute(ServingEngine engine, Tokenizer tokenizer, String modelId, Pooling pooling, int width,
            int maxTokens, ServerMetrics metrics) {
        this.architecture = engine.modelConfig().architecture();
        this.engine = engine;
        this.tokenizer = tokenizer;
        this.modelId = modelId;
        this.pooling = pooling;
        this.width = width;
        this.maxTokens = maxTokens;
        this.vocab = tokenizer.vocabSize();
        this.metrics = metrics;
    }

    Pooling pooling() {
        return pooling;
    }

    /**
     * Answers one request: decodes it, waits for its job, returns the response body.
     *
     * @param whenClosed registers an action for when the client disconnects; returns its deregistration
     * @throws ApiException for a bad request (400 naming the field), 404 for another model, 429/503 from admission
     */
    ObjectNode respond(JsonNode body, Function<Runnable, Runnable> whenClosed) {
        EmbeddingRequest r = decode(body);
        if (pooling == Pooling.NONE || pooling == Pooling.RANK) {
            throw ApiException.unsupported("model", "the model's pooling type is '" + pooling.label() + "' (GGUF key "
                    + Pooling.key(architecture) + "): it gives " + (pooling == Pooling.NONE ? "one vector per token"
                    : "a rerank score") + ", not one embedding per input");
        }
        var job = new EmbeddingJob(r.inputs().toArray(int[][]::new), pooling, width, r.dimensions());
        engine.submit(job, "input");
        Runnable deregister = whenClosed.apply(job::cancel);   // the client hangs up: free the sequences at once
        float[][] vectors;
        try {
            vectors = job.await("embedding");
        } finally {
            deregister.run();
        }
        metrics.embeddings(vectors.length, r.tokens());
        return response(r, vectors);
    }

    ObjectNode response(EmbeddingRequest r, float[][] vectors) {
        ObjectNode out = JSON.objectNode().put("object", "list");
        ArrayNode data = out.putArray("data");
        for (int i = 0; i < vectors.length; i++) {
            ObjectNode e = data.addObject().put("object", "embedding").put("index", i);
            if (r.base64()) {
                e.put("embedding", base64(vectors[i]));
            } else {
                ArrayNode values = e.putArray("embedding");
                for (float v : vectors[i]) {
                    values.add(v);
                }
            }
        }
        out.put("model", r.model());
        int tokens = r.tokens();
        out.putObject("usage").put("prompt_tokens", tokens).put("total_tokens", tokens);
        return out;
    }

    /** Little-endian float32, base64 (what OpenAI's clients decode with {@code Float32Array}). */
    static String base64(float[] v) {
        ByteBuffer b = ByteBuffer.allocate(v.length * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
        for (float x : v) {
            b.putFloat(x);
        }
        return Base64.getEncoder().encodeToString(b.array());
    }

    EmbeddingRequest decode(JsonNode body) {
        JsonFields f = JsonFields.of(body, "");
        for (Iterator<Map.Entry<String, JsonNode>> it = f.fields(); it.hasNext(); ) {
            String name = it.next().getKey();
            if (!FIELDS.contains(name)) {
                throw ApiException.invalid(name, "unrecognized request argument supplied: '" + name
                        + "' (expected input, model, encoding_format, dimensions, user)");
            }
        }
        String model = f.optString("model", modelId);
        if (!model.equals(modelId)) {
            throw ApiException.notFound("model", "model_not_found", "the model '" + model
                    + "' does not exist; this server serves '" + modelId + "'");
        }
        String format = f.optString("encoding_format", "float");
        if (!format.equals("float") && !format.equals("base64")) {
            throw ApiException.invalid("encoding_format", "'encoding_format' is '" + format
                    + "', expected 'float' or 'base64'");
        }
        int dimensions = f.has("dimensions") ? (int) (long) f.optLong("dimensions", null, 1, width) : width;
        f.optString("user", null);   // type-checked, otherwise ignored
        return new EmbeddingRequest(model, inputs(f.get("input")), format.equals("base64"), dimensions);
    }

    private List<int[]> inputs(JsonNode input) {
        if (input == null || input.isNull()) {
            throw ApiException.invalid("input", "missing required field 'input'");
        }
        var out = new ArrayList<int[]>();
        if (input.isTextual()) {
            out.add(encode(input.textValue(), "input"));
        } else if (input.isArray()) {
            if (input.isEmpty()) {
                throw ApiException.invalid("input", "'input' is an empty list; expected at least one string or token "
                        + "id");
            }
            if (input.size() > MAX_INPUTS) {
                throw ApiException.invalid("input", "'input' holds " + input.size() + " items, at most " + MAX_INPUTS);
            }
            if (input.get(0).isNumber()) {
                out.add(tokenIds(input, "input"));
            } else {
                for (int i = 0; i < input.size(); i++) {
                    JsonNode item = input.get(i);
                    String path = "input[" + i + "]";
                    if (item.isTextual()) {
                        out.add(encode(item.textValue(), path));
                    } else if (item.isArray()) {
                        out.add(tokenIds(item, path));
                    } else {
                        throw ApiException.invalid(path, "'" + path + "' must be a string or an array of token ids "
                                + "(all items of one kind), found " + JsonFields.describe(item));
                    }
                }
            }
        } else {
            throw ApiException.invalid("input", "'input' must be a string, an array of strings, an array of token ids "
                    + "or an array of such arrays, found " + JsonFields.describe(input));
        }
        return out;
    }

    private int[] encode(String text, String path) {
        if (text.isEmpty()) {
            throw ApiException.invalid(path, "'" + path + "' is an empty string");
        }
        return checkLength(tokenizer.encode(text, true, true), path);
    }

    private int[] tokenIds(JsonNode array, String path) {
        if (array.isEmpty()) {
            throw ApiException.invalid(path, "'" + path + "' is an empty list of token ids");
        }
        int[] ids = new int[array.size()];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = (int) JsonFields.integer(array.get(i), path + "[" + i + "]", 0, vocab - 1);
        }
        return checkLength(ids, path);
    }

    private int[] checkLength(int[] ids, String path) {
        if (ids.length > maxTokens) {
            throw ApiException.invalid(path, "context_length_exceeded", "'" + path + "' has " + ids.length
                    + " tokens; this model accepts at most " + maxTokens + " per input");
        }
        return ids;
    }
}
