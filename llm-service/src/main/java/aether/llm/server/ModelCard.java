package aether.llm.server;

import aether.llm.engine.LoadedModel;
import aether.llm.engine.Pooling;
import aether.llm.gguf.GgufMetadata;
import aether.llm.gguf.ModelSummary;
import aether.llm.model.ModelConfig;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Objects;

/**
 * What {@code GET /v1/models} and {@code GET /v1/models/{id}} say about the served model (OpenAI's model object plus
 * the context length and a {@code meta} block, as llama.cpp's server adds), and how {@code /v1/embeddings} pools it.
 *
 * @param ownedBy        the GGUF {@code general.organization} when present, else {@code aether}
 * @param name           {@code general.name}, or null
 * @param parameters     the parameter count (every tensor's elements)
 * @param fileType       llama.cpp's name of the file type ({@code MOSTLY_Q4_0}), or null
 * @param sizeBytes      the model file's size
 * @param config         the hyper-parameters
 * @param pooling        how embeddings pool the hidden states ({@code <arch>.pooling_type}, else mean)
 * @param poolingDeclared whether the file declares its pooling
 */
public record ModelCard(String ownedBy, String name, long parameters, String fileType, long sizeBytes,
        ModelConfig config, Pooling pooling, boolean poolingDeclared) {

    private static final JsonNodeFactory JSON = JsonNodeFactory.instance;

    public ModelCard {
        Objects.requireNonNull(ownedBy, "ownedBy");
        Objects.requireNonNull(config, "config");
        Objects.requireNonNull(pooling, "pooling");
    }

    /**
     * The card of an opened model.
     *
     * @throws IllegalArgumentException for a {@code pooling_type} outside llama.cpp's values
     */
    public static ModelCard of(LoadedModel model) {
        GgufMetadata md = model.file().metadata();
        ModelConfig c = model.model().config();
        ModelSummary s = ModelSummary.of(model.file());
        var declared = Pooling.fromGguf(md, c.architecture());
        return new ModelCard(md.getString("general.organization", "aether"), s.name(), s.parameterCount(),
                s.fileType(), s.fileSizeBytes(), c, declared.orElse(Pooling.MEAN), declared.isPresent());
    }

    /** A card from hyper-parameters alone (no file metadata): owned by aether, mean pooling. */
    public static ModelCard of(ModelConfig config) {
        return new ModelCard("aether", null, 0, null, 0, config, Pooling.MEAN, false);
    }

    /**
     * OpenAI's model object for {@code id}, with {@code context_length} (positions a request may use here) and
     * {@code meta}.
     */
    ObjectNode json(String id, long created, int contextSize) {
        ObjectNode m = JSON.objectNode().put("id", id).put("object", "model").put("created", created)
                .put("owned_by", ownedBy).put("context_length", contextSize);
        ObjectNode meta = m.putObject("meta").put("architecture", config.architecture());
        if (name != null) {
            meta.put("name", name);
        }
        meta.put("n_ctx_train", config.contextLength()).put("n_embd", config.embeddingLength())
                .put("n_layer", config.blockCount()).put("n_vocab", config.vocabSize())
                .put("n_params", parameters).put("size", sizeBytes);
        if (fileType != null) {
            meta.put("file_type", fileType);
        }
        meta.put("pooling", pooling.label());
        return m;
    }
}
