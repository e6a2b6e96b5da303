package aether.llm.server;

import aether.llm.chat.ChatTemplate;
import aether.llm.engine.EngineOptions;
import aether.llm.engine.LoadedModel;
import aether.llm.engine.Pooling;
import aether.llm.tokenizer.Tokenizer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A running {@code serve}: the model opened on the CPU ({@link LoadedModel#open}) or the GPU (see {@link
 * ServeDevice}), its {@link ServingEngine} and the {@link OpenAiServer} in front. {@link #close()} stops accepting,
 * ends in-flight requests and frees the model.
 */
public final class InferenceServer implements AutoCloseable {

    /** ChatML, as llama.cpp falls back to when a model has no template. */
    static final String CHATML = """
            {%- for message in messages -%}
            {{- '<|im_start|>' + message['role'] + '\\n' + (message['content'] or '') + '<|im_end|>\\n' -}}
            {%- endfor -%}
            {%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}
            """;

    /** For base models: the turns' texts one per line, so a chat request continues the conversation as text. */
    static final String PLAIN = """
            {%- for message in messages -%}
            {{- (message['content'] or '') + '\\n' -}}
            {%- endfor -%}
            """;

    private final LoadedModel model;
    private final ServerMetrics metrics;
    private final ServingEngine engine;
    private final OpenAiServer http;
    private final String modelId;
    private final String templateName;
    private final Pooling pooling;
    private final String device;
    private final String deviceLine;

    private InferenceServer(ServeSettings s) {
        Path path = s.model() != null ? s.model() : defaultModel();
        var options = EngineOptions.DEFAULTS.withContextSize(s.ctx()).withMaxSequences(s.parallel())
                .withBatchSize(s.batch()).withThreads(s.threads());
        ServeDevice.Opened opened = ServeDevice.open(s.device(), path, options, s.gpuLayers());
        this.model = opened.model();
        this.device = opened.device();
        this.deviceLine = opened.line();
        try {
            Tokenizer tokenizer = model.tokenizer();
            if (tokenizer.vocabSize() != model.model().config().vocabSize()) {
                // sampled ids must all be detokenizable, and every prompt id must have a row in the model
                throw new IllegalArgumentException(path + ": the tokenizer has " + tokenizer.vocabSize()
                        + " tokens but the model's embedding has " + model.model().config().vocabSize() + " rows");
            }
            ChatTemplate template = template(s.chatTemplate(), model, tokenizer);
            this.templateName = s.chatTemplate() != null ? s.chatTemplate()
                    : model.chatTemplate().isPresent() ? "the model's" : "chatml (the model has none)";
            this.modelId = s.modelId() != null ? s.modelId()
                    : path.getFileName().toString().replaceFirst("(?i)\\.gguf$", "");
            this.metrics = new ServerMetrics();
            this.engine = new ServingEngine(model.model(), tokenizer,
                    TokenSamplers.standard(model.model().contextSize(), tokenizer),
                    new ServingEngine.Settings(s.maxConcurrency(), s.queue(), s.batch(), s.prefixCache()), metrics);
            try {
                int maxPrompt = s.maxPromptTokens() == 0 ? Integer.MAX_VALUE : s.maxPromptTokens();
                ModelCard card = ModelCard.of(model);
                this.pooling = card.pooling();
                this.http = OpenAiServer.start(engine, tokenizer, template, new OpenAiServer.Settings(s.host(),
                        s.port(), s.apiKeys(), s.rateLimit(), s.maxBodyBytes(), maxPrompt, modelId), metrics, card);
            } catch (RuntimeException e) {
                engine.close();
                throw e;
            }
        } catch (RuntimeException e) {
            model.close();
            throw e;
        }
    }

    /** Where the model runs: {@code cpu} or {@code cuda}. */
    public String device() {
        return device;
    }

    /** One line: the device and why it was chosen (for {@code --device auto}: what the driver probe found). */
    public String deviceLine() {
        return deviceLine;
    }

    /**
     * Opens the model (on the CPU or the GPU, as {@link ServeSettings#device()} says) and starts listening.
     *
     * @throws IllegalArgumentException for a missing model or template file, {@link IllegalStateException} when the
     *                                  address cannot be bound; model-format errors as {@link LoadedModel#open}
     */
    public static InferenceServer start(ServeSettings settings) {
        return new InferenceServer(settings);
    }

    public int port() {
        return http.port();
    }

    public String modelId() {
        return modelId;
    }

    public String templateName() {
        return templateName;
    }

    public int contextSize() {
        return engine.contextSize();
    }

    /** How {@code /v1/embeddings} pools hidden states (the model's {@code <arch>.pooling_type}, else mean). */
    public Pooling pooling() {
        return pooling;
    }

    public ServerMetrics metrics() {
        return metrics;
    }

    @Override
    public void close() {
        engine.close();   // first: running streams end with an error event and [DONE] instead of a cut connection
        http.close();
        model.close();
    }

    /** The bundled model ({@code models/stories260K.gguf}, found as {@code run} and {@code chat} find it). */
    static Path defaultModel() {
        try {
            return aether.llm.cli.BundledModel.locate();
        } catch (IllegalStateException e) {
            throw new IllegalArgumentException("no model given (-m FILE): " + e.getMessage(), e);
        }
    }

    private static ChatTemplate template(String choice, LoadedModel model, Tokenizer tokenizer) {
        if (choice == null && model.chatTemplate().isPresent()) {
            return model.chatTemplate().get();
        }
        String bos = tokenizer.specialTokens().bos() >= 0 ? tokenizer.tokenText(tokenizer.specialTokens().bos()) : "";
        String eos = tokenizer.specialTokens().eos() >= 0 ? tokenizer.tokenText(tokenizer.specialTokens().eos()) : "";
        String name = choice == null ? "chatml" : choice;
        String source = switch (name) {
            case "chatml" -> CHATML;
            case "plain" -> PLAIN;
            default -> {
                try {
                    yield Files.readString(Path.of(name));
                } catch (IOException e) {
                    throw new IllegalArgumentException("chat-template " + name + ": not chatml or plain, and not a "
                            + "readable file (" + e + ")", e);
                }
            }
        };
        return ChatTemplate.compile(name, source, bos, eos);
    }

    /** For messages: where the server listens. */
    @Override
    public String toString() {
        return "aether serve of " + modelId + " on port " + port();
    }

}
