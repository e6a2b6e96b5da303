package aether.llm.tokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * WordPiece ({@code tokenizer.ggml.model = bert}), a port of llama.cpp's {@code llm_tokenizer_wpm_session}: the text
 * is lower-cased and stripped of accents (llama.cpp's "NFD" keeps the first code point of each decomposition, so a
 * precomposed "é" becomes "e"; standalone combining marks are kept, and dropped only when the GGUF carries the newer
 * {@code tokenizer.ggml.normalizer.*} keys), split at whitespace, and punctuation, ASCII symbols and CJK ideographs
 * become words of their own. Each word, prefixed with {@code ▁} (the GGUF form of a word start; continuation pieces have no prefix),
 * is matched greedily longest-first; a word with any unmatched position becomes the unknown token.
 */
final class WpmTokenizer extends Tokenizer {

    private static final int[] WORD_START = {0xE2, 0x96, 0x81};

    WpmTokenizer(Vocabulary vocab) {
        super(vocab);
    }

    @Override
    void encode(String text, Fragments fragments, boolean addSpecial, IntList out) {
        if (addSpecial) {
            if (vocab.special.bos() < 0 || vocab.special.sep() < 0) {
                throw new IllegalStateException(("WordPiece vocabulary without a CLS/BOS (%d) or SEP (%d) token "
                        + "cannot add special tokens").formatted(vocab.special.bos(), vocab.special.sep()));
            }
            out.add(vocab.special.bos());
        }
        for (int f = 0; f < fragments.size(); f++) {
            int token = fragments.token.get(f);
            if (token >= 0) {
                out.add(token);
                continue;
            }
            int from = fragments.offset.get(f);
            for (byte[] word : preprocess(Unicode.codePoints(text, from, from + fragments.length.get(f)))) {
                tokenizeWord(word, out);
            }
        }
        if (addSpecial) {
            out.add(vocab.special.sep());
        }
    }

    private void tokenizeWord(byte[] word, IntList out) {
        int n = word.length;
        int current = out.size();
        for (int i = 0; i < n; i++) {
            boolean match = false;
            for (int j = Math.min(n, i + vocab.maxTokenLength + 1); j > i; j--) {
                int id = vocab.index.get(word, i, j - i);
                if (id >= 0) {
                    out.add(id);
                    match = true;
                    i = j - 1;
                    break;
                }
            }
            if (!match) { // discard the whole word
                out.truncate(current);
                break;
            }
        }
        if (current == out.size() && vocab.special.unk() >= 0) {
            out.add(vocab.special.unk());
        }
    }

    /** llama.cpp's {@code preprocess}: returns each word's UTF-8 bytes with the {@code ▁} prefix. */
    private List<byte[]> preprocess(int[] cpts) {
        List<byte[]> words = new ArrayList<>();
        byte[] word = new byte[64];
        int length = 0;
        for (int cp : cpts) {
            int c = vocab.stripAccents ? Unicode.nfdFirst(cp) : cp;
            int flags = Unicode.flags(c);
            if ((flags & Unicode.WHITESPACE) != 0) {
                length = finish(words, word, length);
                continue;
            }
            if (c == 0 || c == 0xFFFD || (flags & Unicode.CONTROL) != 0) {
                continue;
            }
            if (vocab.normalizerKeys && vocab.stripAccents && (flags & Unicode.MARK) != 0) {
                continue;
            }
            int lower = vocab.lowercase ? Unicode.toLower(c) : c;
            if (word.length < length + 4) {
                word = Arrays.copyOf(word, word.length * 2);
            }
            if ((flags & Unicode.PUNCTUATION) != 0 || (c < 0x7F && (flags & Unicode.SYMBOL) != 0) || isChinese(c)) {
                length = finish(words, word, length);
                length = finish(words, word, Unicode.putUtf8(word, 0, lower));
            } else {
                length = Unicode.putUtf8(word, length, lower);
            }
        }
        finish(words, word, length);
        return words;
    }

    private static int finish(List<byte[]> words, byte[] word, int length) {
        if (length > 0) {
            byte[] w = new byte[length + WORD_START.length];
            for (int i = 0; i < WORD_START.length; i++) {
                w[i] = (byte) WORD_START[i];
            }
            System.arraycopy(word, 0, w, WORD_START.length, length);
            words.add(w);
        }
        return 0;
    }

    private static boolean isChinese(int cp) {
        return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF)
                || (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F)
                // 0x2B920, not 0x2B820, as in HF's Rust code
                || (cp >= 0x2B920 && cp <= 0x2CEAF) || (cp >= 0x0F900 && cp <= 0x0FAFF)
                || (cp >= 0x2F800 && cp <= 0x2FA1F);
    }
}
