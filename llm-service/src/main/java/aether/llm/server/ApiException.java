package aether.llm.server;

/**
 * A request the API refuses, mapped once to OpenAI's error JSON {@code {"error":{"message","type","param","code"}}}
 * with {@link #status()}. Thrown while a request is decoded or admitted; never for an internal bug.
 */
public final class ApiException extends RuntimeException {

    private final int status;
    private final String type;
    private final String param;
    private final String code;
    private final long retryAfterSeconds;

    public ApiException(int status, String type, String param, String code, String message, long retryAfterSeconds) {
        super(message, null, false, false);
        this.status = status;
        this.type = type;
        this.param = param;
        this.code = code;
        this.retryAfterSeconds = retryAfterSeconds;
    }

    /** 400: a field is missing, has the wrong type or an out-of-range value. */
    public static ApiException invalid(String param, String message) {
        return new ApiException(400, "invalid_request_error", param, null, message, 0);
    }

    /** 400 with an error code, e.g. {@code context_length_exceeded}. */
    public static ApiException invalid(String param, String code, String message) {
        return new ApiException(400, "invalid_request_error", param, code, message, 0);
    }

    public static ApiException unsupported(String param, String message) {
        return new ApiException(400, "invalid_request_error", param, "unsupported_parameter", message, 0);
    }

    public static ApiException unauthorized(String message) {
        return new ApiException(401, "invalid_request_error", null, "invalid_api_key", message, 0);
    }

    public static ApiException notFound(String param, String code, String message) {
        return new ApiException(404, "invalid_request_error", param, code, message, 0);
    }

    public static ApiException tooLarge(String message) {
        return new ApiException(413, "invalid_request_error", null, "request_too_large", message, 0);
    }

    /** 429 for a full queue ({@code code} {@code server_overloaded}) or an exhausted rate limit. */
    public static ApiException tooMany(String code, String message, long retryAfterSeconds) {
        return new ApiException(429, code.equals("rate_limit_exceeded") ? "requests" : "server_error", null, code,
                message, Math.max(1, retryAfterSeconds));
    }

    /** 501: a feature the server's engine does not run (e.g. embeddings on the GPU engine). */
    public static ApiException notImplemented(String param, String message) {
        return new ApiException(501, "invalid_request_error", param, "not_implemented", message, 0);
    }

    public static ApiException unavailable(String message) {
        return new ApiException(503, "server_error", null, "unavailable", message, 1);
    }

    public int status() {
        return status;
    }

    public String type() {
        return type;
    }

    /** The request field at fault (dotted path, e.g. {@code messages[2].role}), or null. */
    public String param() {
        return param;
    }

    public String code() {
        return code;
    }

    /** For 429/503: seconds a client should wait (the {@code Retry-After} header); 0 otherwise. */
    public long retryAfterSeconds() {
        return retryAfterSeconds;
    }
}
