package aether.llm.tokenizer;

/**
 * The kind of a vocabulary entry, as {@code tokenizer.ggml.token_type} encodes it (llama.cpp's
 * {@code llama_token_type}), after llama.cpp's load-time corrections (end-of-generation texts become control tokens,
 * control tokens named "unused" become unused).
 */
public enum TokenType {
    UNDEFINED,
    /** Ordinary text. */
    NORMAL,
    /** The unknown-token placeholder. */
    UNKNOWN,
    /** Control tokens such as BOS/EOS: hidden when decoding unless asked, parsed from text only when asked. */
    CONTROL,
    /** Added tokens that are always split out of the text before tokenizing and always rendered. */
    USER_DEFINED,
    UNUSED,
    /** SentencePiece byte-fallback tokens {@code <0xAB>}. */
    BYTE
}
