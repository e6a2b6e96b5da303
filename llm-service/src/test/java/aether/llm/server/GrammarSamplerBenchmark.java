package aether.llm.server;

import aether.llm.gguf.GgufFile;
import aether.llm.sampling.Sampler;
import aether.llm.sampling.SamplerConfig;
import aether.llm.tokenizer.Tokenizer;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
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
import org.openjdk.jmh.annotations.Warmup;

/**
 * Cost of one constrained ({@code json_schema}) token choice on the 32,000-token Llama vocabulary
 * ({@code ../shared/models/vocab/ggml-vocab-llama-spm.gguf}), at three places in a document: inside a string value
 * (most tokens fit), at a key (few fit), after a colon. {@code candidate}: the sampled token fits, so only it is
 * checked; {@code fullMask}: it does not, so the whole vocabulary is masked and the sample drawn again. Next to it,
 * {@code plain}: the unconstrained sampler alone. A decode step of the 1B model takes ~25 ms here.
 *
 * <pre>scripts/jmh llm-service GrammarSamplerBenchmark</pre>
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector"})
public class GrammarSamplerBenchmark {

    static final String SCHEMA = """
            {"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer","minimum":0,
             "maximum":120},"tags":{"type":"array","items":{"type":"string"}}},
             "required":["name","age","tags"],"additionalProperties":false}""";

    /** string: inside a string value; key: where a key starts; value: after a colon */
    @Param({"string", "key", "value"})
    String at;

    Tokenizer tokenizer;
    GrammarSampler sampler;
    List<SchemaGrammar.State> primed;
    float[] fitting;
    float[] refused;
    float[] logits;
    Sampler plain;

    @Setup(Level.Trial)
    public void setUp() throws Exception {
        Path vocab = Path.of("../shared/models/vocab/ggml-vocab-llama-spm.gguf");
        try (GgufFile f = GgufFile.open(vocab)) {
            tokenizer = Tokenizer.fromGguf(f.metadata());
        }
        var index = new VocabIndex(tokenizer);
        var grammar = new SchemaGrammar(JsonSchemaCompiler.compile(new ObjectMapper().readTree(SCHEMA)));
        sampler = new GrammarSampler(new Sampler(SamplerConfig.greedy(), tokenizer.vocabSize()), tokenizer, index,
                grammar, 4096);
        sampler.prime(switch (at) {
            case "string" -> "{\"name\":\"Tom";
            case "key" -> "{\"name\":\"Tom\",";
            default -> "{\"name\":\"Tom\",\"age\":";
        });
        primed = sampler.state();
        Random r = new Random(42);
        fitting = new float[tokenizer.vocabSize()];
        for (int i = 0; i < fitting.length; i++) {
            fitting[i] = (float) (r.nextGaussian() * 3);
        }
        refused = fitting.clone();
        // argmax on a fitting token (one that the full mask keeps) or on an ordinary token it refuses
        List<Integer> allowed = sampler.allowedTokens(4096);
        fitting[allowed.get(allowed.size() / 2)] = 100;
        var fits = new java.util.HashSet<>(allowed);
        int refusedToken = -1;
        for (int t = index.order.length - 1; t >= 0 && refusedToken < 0; t--) {
            if (!fits.contains(index.order[t])) {
                refusedToken = index.order[t];
            }
        }
        refused[refusedToken] = 100;
        logits = new float[fitting.length];
        plain = new Sampler(SamplerConfig.greedy(), tokenizer.vocabSize());
        int before = sampler.fullMasks;
        fullMask();
        candidate();
        if (sampler.fullMasks != before + 1) {
            throw new IllegalStateException("the benchmark's refused/fitting tokens do not take the intended paths");
        }
    }

    @Benchmark
    public int candidate() {
        System.arraycopy(fitting, 0, logits, 0, logits.length);
        sampler.state(primed, 0);
        return sampler.sample(logits, 0, logits.length);
    }

    @Benchmark
    public int fullMask() {
        System.arraycopy(refused, 0, logits, 0, logits.length);
        sampler.state(primed, 0);
        return sampler.sample(logits, 0, logits.length);
    }

    @Benchmark
    public int plain() {
        System.arraycopy(fitting, 0, logits, 0, logits.length);
        return plain.sample(logits, 0);
    }
}
