package aether.llm.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeType;
import java.util.Iterator;
import java.util.Map;

/**
 * Typed, range-checked reads of one JSON object's fields. Every failure is a 400 {@link ApiException} whose
 * {@code param} is the field's path and whose message says what was expected and what was found. JSON {@code null}
 * counts as absent, as the OpenAI API treats it.
 */
final class JsonFields {

    private final JsonNode object;
    private final String path;

    private JsonFields(JsonNode object, String path) {
        this.object = object;
        this.path = path;
    }

    /** The fields of {@code node}, which must be an object. */
    static JsonFields of(JsonNode node, String path) {
        if (node == null || !node.isObject()) {
            throw ApiException.invalid(path.isEmpty() ? null : path, (path.isEmpty() ? "the request body" : path)
                    + " must be a JSON object, found " + describe(node));
        }
        return new JsonFields(node, path);
    }

    String path(String field) {
        return path.isEmpty() ? field : path + "." + field;
    }

    JsonNode node() {
        return object;
    }

    Iterator<Map.Entry<String, JsonNode>> fields() {
        return object.properties().iterator();
    }

    boolean has(String field) {
        JsonNode v = object.get(field);
        return v != null && !v.isNull();
    }

    JsonNode get(String field) {
        JsonNode v = object.get(field);
        return v == null || v.isNull() ? null : v;
    }

    String requireString(String field) {
        JsonNode v = get(field);
        if (v == null) {
            throw ApiException.invalid(path(field), "missing required field '" + path(field) + "'");
        }
        return string(v, path(field));
    }

    String optString(String field, String fallback) {
        JsonNode v = get(field);
        return v == null ? fallback : string(v, path(field));
    }

    static String string(JsonNode v, String path) {
        if (!v.isTextual()) {
            throw ApiException.invalid(path, "'" + path + "' must be a string, found " + describe(v));
        }
        return v.textValue();
    }

    boolean optBoolean(String field, boolean fallback) {
        JsonNode v = get(field);
        if (v == null) {
            return fallback;
        }
        if (!v.isBoolean()) {
            throw ApiException.invalid(path(field), "'" + path(field) + "' must be a boolean, found " + describe(v));
        }
        return v.booleanValue();
    }

    double optDouble(String field, double fallback, double min, double max) {
        JsonNode v = get(field);
        return v == null ? fallback : number(v, path(field), min, max);
    }

    static double number(JsonNode v, String path, double min, double max) {
        if (!v.isNumber()) {
            throw ApiException.invalid(path, "'" + path + "' must be a number, found " + describe(v));
        }
        double d = v.doubleValue();
        if (!(d >= min && d <= max)) {
            throw ApiException.invalid(path, "'" + path + "' is " + v.asText() + ", expected a number from "
                    + fmt(min) + " to " + fmt(max));
        }
        return d;
    }

    /** An integer field; {@code fallback} when absent (may be null). */
    Long optLong(String field, Long fallback, long min, long max) {
        JsonNode v = get(field);
        return v == null ? fallback : integer(v, path(field), min, max);
    }

    static long integer(JsonNode v, String path, long min, long max) {
        if (!v.isIntegralNumber() && !(v.isFloatingPointNumber() && v.doubleValue() == Math.rint(v.doubleValue())
                && Math.abs(v.doubleValue()) < 1e15)) {
            throw ApiException.invalid(path, "'" + path + "' must be an integer, found " + describe(v));
        }
        if (!v.canConvertToLong() || v.longValue() < min || v.longValue() > max) {
            throw ApiException.invalid(path, "'" + path + "' is " + v.asText() + ", expected an integer from " + min
                    + " to " + max);
        }
        return v.longValue();
    }

    private static String fmt(double d) {
        return d == Math.rint(d) && Math.abs(d) < 1e15 ? Long.toString((long) d) : Double.toString(d);
    }

    /** What a value is, for messages: its JSON type and a short excerpt. */
    static String describe(JsonNode v) {
        if (v == null || v.isMissingNode()) {
            return "nothing";
        }
        JsonNodeType t = v.getNodeType();
        String excerpt = switch (t) {
            case STRING -> {
                String s = v.textValue();
                yield s.length() > 40 ? "\"" + s.substring(0, 40) + "...\" (" + s.length() + " chars)" : "\"" + s + "\"";
            }
            case OBJECT -> "an object";
            case ARRAY -> "an array of " + v.size();
            case NULL -> "null";
            default -> {
                String s = v.asText();
                yield s.length() > 40 ? s.substring(0, 40) + "..." : s;
            }
        };
        return switch (t) {
            case STRING -> "the string " + excerpt;
            case NUMBER -> "the number " + excerpt;
            case BOOLEAN -> "the boolean " + excerpt;
            default -> excerpt;
        };
    }
}
