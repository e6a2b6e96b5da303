package aether.llm.tokenizer;

/**
 * The ids of a vocabulary's special tokens, each -1 when the vocabulary has none. {@code cls} is the BERT
 * classification token ({@code tokenizer.ggml.cls_token_id}, or BOS for WordPiece vocabularies, which is where
 * llama.cpp keeps it).
 */
public record SpecialTokens(int bos, int eos, int eot, int eom, int unk, int sep, int pad, int mask, int cls,
        int fimPre, int fimSuf, int fimMid, int fimPad, int fimRep, int fimSep) {
}
