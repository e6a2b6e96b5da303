package aether.llm.tokenizer;

import aether.llm.gguf.GgufMetadata;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Objects;

/**
 * Text to token ids and back, with the ids llama.cpp's {@code llama_tokenize} gives for the same vocabulary. Created
 * from GGUF metadata by {@link #fromGguf}; {@code tokenizer.ggml.model} picks the algorithm: {@code llama} →
 * SentencePiece-style BPE over scores with byte fallback, {@code gpt2} → byte-level BPE over merges (pre-tokenized by
 * the regexes of {@code tokenizer.ggml.pre}), {@code bert} → WordPiece.
 *
 * <p>Encoding first cuts the text at occurrences of special tokens (user-defined tokens always, control and unknown
 * tokens only when {@code parseSpecial} is set; longest token text first, honouring llama.cpp's lstrip/rstrip
 * attributes), then tokenizes each remaining piece of text on its own. {@code addSpecial} adds BOS/EOS as the
 * vocabulary's flags say (WordPiece: CLS first and SEP last).
 *
 * <p>Immutable and thread-safe: every call works on its own buffers. A tokenizer does not keep the GGUF file open;
 * it copies what it needs at creation.
 */
public abstract sealed class Tokenizer permits SpmTokenizer, BpeTokenizer, WpmTokenizer {

    private static final int SPECIAL = Vocabulary.ATTR_CONTROL | Vocabulary.ATTR_UNKNOWN;

    final Vocabulary vocab;
    /** Special-token texts as Java strings, indexed like {@link Vocabulary#specialCache}. */
    private final String[] specialTexts;

    Tokenizer(Vocabulary vocab) {
        this.vocab = vocab;
        this.specialTexts = new String[vocab.specialCache.length];
        for (int i = 0; i < specialTexts.length; i++) {
            specialTexts[i] = new String(vocab.text[vocab.specialCache[i]], StandardCharsets.UTF_8);
        }
    }

    /**
     * Builds the tokenizer that {@code tokenizer.ggml.*} metadata describes.
     *
     * @throws IllegalArgumentException for an unsupported {@code tokenizer.ggml.model} or {@code tokenizer.ggml.pre}
     *                                  (the message lists the supported values), or inconsistent metadata
     * @throws aether.llm.gguf.GgufFormatException for missing keys or keys of the wrong type
     */
    public static Tokenizer fromGguf(GgufMetadata metadata) {
        Vocabulary vocab = Vocabulary.load(metadata);
        return switch (vocab.model) {
            case SPM -> new SpmTokenizer(vocab);
            case BPE -> new BpeTokenizer(vocab, Vocabulary.merges(metadata));
            case WPM -> new WpmTokenizer(vocab);
        };
    }

    /**
     * Tokenizes {@code text} as {@code llama_tokenize(vocab, text, addSpecial, parseSpecial)}.
     *
     * @param addSpecial   add BOS (and EOS) as the vocabulary's add-BOS/add-EOS flags say; WordPiece adds CLS and SEP
     * @param parseSpecial turn occurrences of control-token texts such as {@code <s>} into those tokens
     */
    public final int[] encode(String text, boolean addSpecial, boolean parseSpecial) {
        Objects.requireNonNull(text, "text");
        Fragments fragments = partition(text, parseSpecial);
        IntList out = new IntList(text.length() / 3 + 8);
        encode(text, fragments, addSpecial, out);
        return out.toArray();
    }

    abstract void encode(String text, Fragments fragments, boolean addSpecial, IntList out);

    /** The model family: "llama", "gpt2" or "bert", as {@code tokenizer.ggml.model}. */
    public final String model() {
        return vocab.model.ggufName;
    }

    /** The pre-tokenizer name ({@code tokenizer.ggml.pre}, "default" when absent). */
    public final String preTokenizer() {
        return vocab.preName;
    }

    public final int vocabSize() {
        return vocab.size();
    }

    public final SpecialTokens specialTokens() {
        return vocab.special;
    }

    public final boolean addBos() {
        return vocab.addBos;
    }

    public final boolean addEos() {
        return vocab.addEos;
    }

    /** Whether llama.cpp appends SEP for this vocabulary (WordPiece and some BERT-like BPE vocabularies). */
    public final boolean addSep() {
        return vocab.addSep;
    }

    /** Whether SentencePiece encoding prepends a space to text at the start and after special tokens. */
    public final boolean addSpacePrefix() {
        return vocab.addSpacePrefix;
    }

    public final TokenType tokenType(int id) {
        return vocab.type(checkId(id, -1));
    }

    /** True for tokens that end generation (EOS, EOT, EOM and llama.cpp's list of end-of-turn texts). */
    public final boolean isEndOfGeneration(int id) {
        return vocab.endOfGeneration[checkId(id, -1)];
    }

    /** True for control and unknown tokens, which {@link #decode} does not render. */
    public final boolean isSpecial(int id) {
        return (vocab.attrs[checkId(id, -1)] & SPECIAL) != 0;
    }

    /** The token's text exactly as stored in the vocabulary (e.g. {@code ▁Hello}, {@code ĠHello}, {@code <0x0A>}). */
    public final String tokenText(int id) {
        return new String(vocab.text[checkId(id, -1)], StandardCharsets.UTF_8);
    }

    /**
     * The bytes the token stands for, as llama.cpp's {@code token_to_piece(special = true)}: byte-fallback tokens give
     * their byte, GPT-2 byte-level text is mapped back to bytes, SentencePiece {@code ▁} becomes a space, control and
     * user-defined tokens give their text. May be an incomplete UTF-8 sequence. Returns a fresh copy.
     */
    public final byte[] tokenBytes(int id) {
        return vocab.pieces[checkId(id, -1)].clone();
    }

    /**
     * Decodes ids to text as a client sees generated output: control and unknown tokens are not rendered, and for
     * vocabularies with the add-space-prefix flag the leading space of the first token is dropped (llama.cpp's
     * {@code llama_detokenize(remove_special = false, unparse_special = false)} without its clean-up of spaces
     * before punctuation). Invalid UTF-8 becomes U+FFFD. {@code decode(encode(s, false, false))} is {@code s} for
     * SentencePiece and byte-level BPE vocabularies whose pieces cover all bytes.
     */
    public final String decode(int[] ids) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(ids.length * 4);
        for (int i = 0; i < ids.length; i++) {
            appendPiece(out, ids[i], i, i == 0 && vocab.addSpacePrefix, false);
        }
        return out.toString(StandardCharsets.UTF_8);
    }

    /**
     * Exactly llama.cpp's {@code llama_detokenize(tokens, remove_special, unparse_special)}, including the
     * clean-up of spaces before punctuation and contractions that some vocabularies ask for.
     */
    public final String detokenize(int[] ids, boolean removeSpecial, boolean unparseSpecial) {
        int from = 0;
        int to = ids.length;
        boolean removeSpace = vocab.addSpacePrefix;
        if (removeSpecial && vocab.addBos && to > 0 && ids[0] == vocab.special.bos()) {
            removeSpace = false;
            from++;
        }
        if (removeSpecial && vocab.addEos && to > from && ids[to - 1] == vocab.special.eos()) {
            to--;
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream(ids.length * 4);
        for (int i = from; i < to; i++) {
            appendPiece(out, ids[i], i, removeSpace, unparseSpecial);
            removeSpace = false;
        }
        byte[] text = out.toByteArray();
        int total = text.length;
        if (vocab.cleanSpaces && total > 0) {
            total = cleanSpaces(text, total);
        }
        return new String(text, 0, total, StandardCharsets.UTF_8);
    }

    /** llama.cpp's three clean-up passes over the detokenized bytes, in place; returns the new length. */
    private static int cleanSpaces(byte[] text, int total1) {
        int total = 1;
        for (int i = 1; i < total1; i++) { // " ?", " !", " .", " ,"
            byte x = text[i];
            if (text[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) {
                total--;
            }
            text[total++] = x;
        }
        int total2 = total;
        total = 1;
        for (int i = 1; i < total2; i++) { // " ' "
            byte x = text[i];
            if (x == '\'' && i + 1 < total2 && text[i - 1] == ' ' && text[i + 1] == ' ') {
                total--;
                text[++i] = 0;
            }
            text[total++] = x;
        }
        int total3 = total;
        total = 1;
        for (int i = 1; i < total3; i++) { // " 's", " 'm", " 're", " 've"
            byte x = text[i];
            if (text[i - 1] == ' ' && x == '\'' && i + 1 < total3) {
                byte x1 = text[i + 1];
                if (x1 == 's' || x1 == 'm') {
                    total--;
                } else if (x1 != 't' && x1 != 'd' && i + 2 < total3) {
                    byte x2 = text[i + 2];
                    if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) {
                        total--;
                    }
                }
            }
            text[total++] = x;
        }
        return total;
    }

    /** Appends token_to_piece(id, lstrip = stripSpace ? 1 : 0, special = renderSpecial). */
    final void appendPiece(ByteArrayOutputStream out, int id, int position, boolean stripSpace, boolean renderSpecial) {
        byte[] piece = piece(id, position, renderSpecial);
        int skip = pieceSkip(piece, stripSpace);
        out.write(piece, skip, piece.length - skip);
    }

    /** The shared piece bytes of {@code id} (do not modify), empty for hidden special tokens. */
    final byte[] piece(int id, int position, boolean renderSpecial) {
        checkId(id, position);
        if (!renderSpecial && (vocab.attrs[id] & SPECIAL) != 0) {
            return EMPTY;
        }
        return vocab.pieces[id];
    }

    /** 1 if the piece's leading space is to be dropped, else 0. */
    static int pieceSkip(byte[] piece, boolean stripSpace) {
        return stripSpace && piece.length > 0 && piece[0] == ' ' ? 1 : 0;
    }

    private static final byte[] EMPTY = new byte[0];

    /** A new decoder for one generated sequence; see {@link StreamingDecoder}. */
    public final StreamingDecoder streamingDecoder() {
        return new StreamingDecoder(this);
    }

    final int checkId(int id, int position) {
        if (id < 0 || id >= vocab.size()) {
            throw new IllegalArgumentException("token id %d%s is outside the vocabulary [0, %d)"
                    .formatted(id, position >= 0 ? " at index " + position : "", vocab.size()));
        }
        return id;
    }

    /** The text cut at special tokens: a token id, or a range of the text (token -1). */
    static final class Fragments {
        final IntList token = new IntList(8);
        final IntList offset = new IntList(8);
        final IntList length = new IntList(8);

        void addToken(int id) {
            token.add(id);
            offset.add(0);
            length.add(0);
        }

        void addText(int from, int len) {
            token.add(-1);
            offset.add(from);
            length.add(len);
        }

        int size() {
            return token.size();
        }
    }

    /** llama.cpp's {@code tokenizer_st_partition}. */
    private Fragments partition(String text, boolean parseSpecial) {
        Fragments fragments = new Fragments();
        if (text.isEmpty()) {
            return fragments;
        }
        fragments.addText(0, text.length());
        TextFilter filter = new TextFilter(text);
        int[] cache = vocab.specialCache;
        for (int s = 0; s < cache.length; s++) {
            int id = cache[s];
            int attr = vocab.attrs[id];
            if (!parseSpecial && (attr & SPECIAL) != 0) {
                continue; // user-defined tokens are still split out, as in HF tokenizers
            }
            String special = specialTexts[s];
            if (special.isEmpty() || !filter.mayContain(special) || !text.contains(special)) {
                continue;
            }
            Fragments next = new Fragments();
            for (int f = 0; f < fragments.size(); f++) {
                if (fragments.token.get(f) >= 0) {
                    next.addToken(fragments.token.get(f));
                    continue;
                }
                int base = fragments.offset.get(f);
                int len = fragments.length.get(f);
                while (true) {
                    // bounded to this fragment, so many fragments do not each rescan the rest of the text
                    int match = text.indexOf(special, base, base + len);
                    if (match < 0) {
                        break;
                    }
                    if (match > base) {
                        int leftLength = match - base;
                        if ((attr & Vocabulary.ATTR_LSTRIP) != 0) {
                            while (leftLength > 0 && isSpace(text.charAt(base + leftLength - 1))) {
                                leftLength--;
                            }
                        }
                        if (leftLength > 0) {
                            next.addText(base, leftLength);
                        }
                    }
                    next.addToken(id);
                    int rightOffset = match + special.length();
                    int rightLength = base + len - rightOffset;
                    if ((attr & Vocabulary.ATTR_RSTRIP) != 0) {
                        while (rightLength > 0 && isSpace(text.charAt(rightOffset))) {
                            rightOffset++;
                            rightLength--;
                        }
                    }
                    base = rightOffset;
                    len = rightLength;
                    if (len == 0) {
                        break;
                    }
                }
                if (len > 0) {
                    next.addText(base, len);
                }
            }
            fragments = next;
        }
        return fragments;
    }

    /**
     * Which characters and adjacent character pairs occur in a text (hashed into bit sets), so that most of a large
     * special-token list (deepseek has 2,400, mostly {@code [PADnnnnn]}) is ruled out without scanning the text.
     */
    private static final class TextFilter {
        private static final int BITS = 1 << 16;
        private final long[] chars = new long[BITS / 64];
        private final long[] pairs = new long[BITS / 64];

        TextFilter(String text) {
            char previous = 0;
            for (int i = 0; i < text.length(); i++) {
                char c = text.charAt(i);
                chars[c >>> 6] |= 1L << c;
                if (i > 0) {
                    int h = pair(previous, c);
                    pairs[h >>> 6] |= 1L << h;
                }
                previous = c;
            }
        }

        private static int pair(char a, char b) {
            return (a * 31 + b) & (BITS - 1);
        }

        boolean mayContain(String s) {
            for (int i = 0; i < s.length(); i++) {
                char c = s.charAt(i);
                if ((chars[c >>> 6] & (1L << c)) == 0) {
                    return false;
                }
                if (i > 0) {
                    int h = pair(s.charAt(i - 1), c);
                    if ((pairs[h >>> 6] & (1L << h)) == 0) {
                        return false;
                    }
                }
            }
            return true;
        }
    }

    /** C's {@code isspace} in the "C" locale, which llama.cpp applies byte by byte. */
    private static boolean isSpace(char c) {
        return c == ' ' || (c >= '\t' && c <= '\r');
    }

    @Override
    public String toString() {
        return getClass().getSimpleName() + "[" + vocab + "]";
    }
}
