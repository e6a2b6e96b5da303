package aether.llm.tokenizer.bench;

import aether.llm.gguf.GgufFile;
import aether.llm.gguf.GgufMetadata;
import aether.llm.tokenizer.StreamingDecoder;
import aether.llm.tokenizer.Tokenizer;
import aether.runtime.testing.SharedData;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Tokenizer load time (metadata to ready tokenizer) and encode throughput on llama.cpp's tokenizer test text
 * repeated to about 36 kB, plus one 20,000-letter word (the pathological case for merge loops), and streaming
 * decode per token. The result is checked against the token count of a first encode. Smoke run:
 * {@code -f 1 -wi 1 -i 1 -w 1s -r 1s}.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1)
public class TokenizerBenchmark {

    @Param({"llama-spm", "gpt-2", "deepseek-llm", "bert-bge"})
    public String vocab;

    private GgufFile file;
    private GgufMetadata metadata;
    private Tokenizer tokenizer;
    private String prose;
    private String longWord;
    private int[] proseIds;
    private StreamingDecoder decoder;
    private final StringBuilder out = new StringBuilder();

    @Setup(Level.Trial)
    public void setUp() throws IOException {
        file = GgufFile.open(SharedData.require("models/vocab/ggml-vocab-" + vocab + ".gguf"));
        metadata = file.metadata();
        tokenizer = Tokenizer.fromGguf(metadata);
        Path inp = SharedData.require("golden/tokenizer/llamacpp-tests/ggml-vocab-gpt-2.gguf.inp");
        prose = Files.readString(inp, StandardCharsets.UTF_8).repeat(20);
        longWord = "pneumonoultramicroscopic".repeat(20_000 / 24);
        proseIds = tokenizer.encode(prose, false, false);
        decoder = tokenizer.streamingDecoder();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        file.close();
    }

    @Benchmark
    public Tokenizer load() {
        return Tokenizer.fromGguf(metadata);
    }

    @Benchmark
    public int encodeProse() {
        int n = tokenizer.encode(prose, false, false).length;
        if (n != proseIds.length) {
            throw new IllegalStateException("encode changed: " + n + " != " + proseIds.length);
        }
        return n;
    }

    @Benchmark
    public int encodeLongWord() {
        return tokenizer.encode(longWord, false, false).length;
    }

    @Benchmark
    public int streamDecode() {
        out.setLength(0);
        for (int id : proseIds) {
            decoder.accept(id, out);
        }
        out.append(decoder.flush());
        return out.length();
    }
}
