package aether.serve;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/** A java.net.http client for one running server: plain JSON calls and server-sent-event streams. */
final class ServerClient {

    static final ObjectMapper JSON = new ObjectMapper();

    final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    final String base;
    final String key;

    ServerClient(int port, String key) {
        this.base = "http://127.0.0.1:" + port;
        this.key = key;
    }

    ServerClient withKey(String k) {
        return new ServerClient(Integer.parseInt(base.substring(base.lastIndexOf(':') + 1)), k);
    }

    HttpRequest.Builder request(String path) {
        var b = HttpRequest.newBuilder(URI.create(base + path)).timeout(Duration.ofSeconds(120));
        if (key != null) {
            b.header("Authorization", "Bearer " + key);
        }
        return b;
    }

    HttpResponse<String> get(String path) {
        return send(request(path).GET().build());
    }

    HttpResponse<String> post(String path, String body) {
        return send(request(path).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body)).build());
    }

    HttpResponse<String> send(HttpRequest r) {
        try {
            return http.send(r, HttpResponse.BodyHandlers.ofString());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    JsonNode postJson(String path, String body) {
        HttpResponse<String> r = post(path, body);
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        return parse(r.body());
    }

    static JsonNode parse(String s) {
        try {
            return JSON.readTree(s);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** One SSE response: its content type and its events' data lines, in order (the last should be [DONE]). */
    record Stream(int status, String contentType, List<String> data, String raw) {
        List<JsonNode> chunks() {
            var out = new ArrayList<JsonNode>();
            for (String d : data) {
                if (!d.equals("[DONE]")) {
                    out.add(parse(d));
                }
            }
            return out;
        }
    }

    /** Posts a streaming request and reads the whole event stream, checking the SSE framing as it goes. */
    Stream stream(String path, String body) {
        try {
            HttpResponse<java.io.InputStream> r = http.send(request(path).header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofInputStream());
            var data = new ArrayList<String>();
            var raw = new StringBuilder();
            try (var in = new BufferedReader(new InputStreamReader(r.body(), StandardCharsets.UTF_8))) {
                String line;
                boolean expectBlank = false;
                while ((line = in.readLine()) != null) {
                    raw.append(line).append('\n');
                    if (r.statusCode() != 200) {
                        continue;
                    }
                    if (expectBlank) {
                        assertThat(line).as("an event ends with a blank line").isEmpty();
                        expectBlank = false;
                        continue;
                    }
                    assertThat(line).as("an SSE data line").startsWith("data: ");
                    data.add(line.substring(6));
                    expectBlank = true;
                }
            }
            return new Stream(r.statusCode(), r.headers().firstValue("Content-Type").orElse(""), data,
                    raw.toString());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /** KV blocks held by running sequences: used minus those the prefix cache keeps (one scrape). */
    double activeBlocks() {
        String body = get("/metrics").body();
        return metric(body, "aether_kv_blocks_used") - metric(body, "aether_kv_blocks_cached");
    }

    /** The value of an unlabelled metric in /metrics. */
    double metric(String name) {
        return metric(get("/metrics").body(), name);
    }

    static double metric(String body, String name) {
        for (String line : body.split("\n")) {
            if (line.startsWith(name + " ")) {
                return Double.parseDouble(line.substring(name.length() + 1).trim());
            }
        }
        throw new AssertionError("no metric " + name + " in:\n" + body);
    }
}
