package aether.llm.tokenizer;

import aether.llm.gguf.GgufArray;
import aether.llm.gguf.GgufMetadata;
import aether.llm.gguf.GgufValueType;
import aether.llm.gguf.MetadataValue;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Optional;

/**
 * A vocabulary as llama.cpp's {@code llama_vocab::impl::load} builds it from GGUF metadata: token texts, scores and
 * attributes (with llama.cpp's text-based corrections), special-token ids with their defaults per tokenizer model,
 * the add-BOS/EOS/space flags, the special-token list that text is partitioned on, and each token's piece (its
 * decoded bytes). Every metadata array is read exactly once here. Immutable after construction.
 */
final class Vocabulary {

    // llama_token_attr bits
    static final int ATTR_UNKNOWN = 1;
    static final int ATTR_UNUSED = 1 << 1;
    static final int ATTR_NORMAL = 1 << 2;
    static final int ATTR_CONTROL = 1 << 3;
    static final int ATTR_USER_DEFINED = 1 << 4;
    static final int ATTR_BYTE = 1 << 5;
    static final int ATTR_LSTRIP = 1 << 7;
    static final int ATTR_RSTRIP = 1 << 8;

    enum Model {
        SPM("llama"), BPE("gpt2"), WPM("bert");

        final String ggufName;

        Model(String ggufName) {
            this.ggufName = ggufName;
        }
    }

    private static final String KEY = "tokenizer.ggml.";
    private static final byte[] SPACE_MARK = "\u2581".getBytes(StandardCharsets.UTF_8);

    final Model model;
    /** The {@code tokenizer.ggml.pre} value, or "default" when absent. */
    final String preName;
    /** For BPE only. */
    final PreTokenizer pre;
    final byte[][] text;
    final float[] scores;
    final int[] attrs;
    final ByteSequenceIndex index;
    final int maxTokenLength;
    final SpecialTokens special;
    final boolean addSpacePrefix;
    final boolean addBos;
    final boolean addEos;
    final boolean addSep;
    final boolean cleanSpaces;
    final boolean lowercase;
    final boolean stripAccents;
    /** Whether the BERT normalizer options came from metadata (newer llama.cpp semantics) rather than defaults. */
    final boolean normalizerKeys;
    /** Control, user-defined and unknown tokens, longest text first (ties by id). */
    final int[] specialCache;
    final boolean[] endOfGeneration;
    /** Each token's bytes as llama.cpp's token_to_piece renders it with special = true. */
    final byte[][] pieces;

    private Vocabulary(GgufMetadata md) {
        String modelName = md.requireString(KEY + "model");
        model = switch (modelName) {
            case "llama" -> Model.SPM;
            case "gpt2" -> Model.BPE;
            case "bert" -> Model.WPM;
            default -> throw new IllegalArgumentException(
                    "unsupported %smodel '%s' (supported: llama (SentencePiece), gpt2 (byte-level BPE), bert (WordPiece))"
                            .formatted(KEY, modelName));
        };
        Optional<String> preKey = md.getString(KEY + "pre");
        preName = preKey.orElse("default");

        int bos = -1, eos = -1, unk = -1, sep = -1, pad = -1, mask = -1;
        boolean spacePrefix = false, bosFlag = false, eosFlag = false, sepFlag = false, clean = false;
        PreTokenizer preTokenizer = null;
        switch (model) {
            case SPM -> {
                bos = 1; eos = 2; unk = 0;
                spacePrefix = true; bosFlag = true;
            }
            case WPM -> {
                bos = 101; unk = 100; sep = 102; pad = 0; mask = 103;
                sepFlag = true; clean = true; bosFlag = true;
            }
            case BPE -> {
                bos = 11; eos = 11;
                preTokenizer = PreTokenizer.byName(preName).orElseThrow(() -> new IllegalArgumentException(
                        "unsupported %spre '%s' for the gpt2 tokenizer (supported: %s)"
                                .formatted(KEY, preName, PreTokenizer.supportedNames())));
                clean = preTokenizer.cleanSpaces;
                bosFlag = preTokenizer.addBosByDefault;
                if (preTokenizer == PreTokenizer.CHATGLM4) {
                    bos = -1;
                }
            }
        }
        pre = preTokenizer;
        if (model == Model.BPE) {
            merges(md); // fail before the larger work of reading the tokens
        }
        addSpacePrefix = md.getBoolean(KEY + "add_space_prefix", spacePrefix);

        GgufArray tokens = requireArray(md, KEY + "tokens", GgufValueType.STRING);
        int n = tokens.intSize();
        if (n == 0) {
            throw new IllegalArgumentException("metadata '%stokens' is empty (expected at least one token)".formatted(KEY));
        }
        GgufArray scoreArray = md.getArray(KEY + "scores").orElse(null);
        if (scoreArray != null) {
            checkLength(scoreArray, KEY + "scores", n, scoreArray.elementType() == GgufValueType.FLOAT32
                    || scoreArray.elementType() == GgufValueType.INT32, "FLOAT32 or INT32");
        }
        GgufArray typeArray = md.getArray(KEY + "token_type").orElse(null);
        if (typeArray != null) {
            checkLength(typeArray, KEY + "token_type", n, typeArray.elementType() == GgufValueType.INT32, "INT32");
        }

        text = new byte[n][];
        scores = new float[n];
        attrs = new int[n];
        index = new ByteSequenceIndex(n);
        int maxLength = 0;
        for (int i = 0; i < n; i++) {
            byte[] word = tokens.stringBytesAt(i);
            if (word.length == 0) {
                word = ("[EMPTY_" + i + "]").getBytes(StandardCharsets.UTF_8);
            }
            int existing = index.putIfAbsent(word, i);
            if (existing != i) {
                throw new IllegalArgumentException("duplicate token in vocabulary: '%s' has ids %d and %d"
                        .formatted(new String(word, StandardCharsets.UTF_8), existing, i));
            }
            text[i] = word;
            maxLength = Math.max(maxLength, word.length);
            scores[i] = scoreArray == null ? 0f : (float) scoreArray.doubleAt(i);
            attrs[i] = typeArray == null ? ATTR_NORMAL : attrOfType(typeArray.longAt(i));
        }
        maxTokenLength = maxLength;

        int[] ids = {bos, eos, -1, -1, unk, sep, pad, mask, -1, -1, -1, -1, -1, -1};
        String[] keys = {"bos_token_id", "eos_token_id", "eot_token_id", "eom_token_id", "unknown_token_id",
                "seperator_token_id", "padding_token_id", "mask_token_id", "fim_pre_token_id", "fim_suf_token_id",
                "fim_mid_token_id", "fim_pad_token_id", "fim_rep_token_id", "fim_sep_token_id"};
        for (int k = 0; k < keys.length; k++) {
            ids[k] = specialId(md, KEY + keys[k], ids[k], n);
        }
        // deprecated spellings of the FIM keys, read after the new ones as llama.cpp does
        ids[8] = specialId(md, KEY + "prefix_token_id", ids[8], n);
        ids[9] = specialId(md, KEY + "suffix_token_id", ids[9], n);
        ids[10] = specialId(md, KEY + "middle_token_id", ids[10], n);

        addBos = md.getBoolean(KEY + "add_bos_token", bosFlag);
        addEos = md.getBoolean(KEY + "add_eos_token", eosFlag);
        addSep = md.getBoolean(KEY + "add_sep_token", sepFlag);
        checkAddSpecial(addBos, ids[0], "add_bos_token", "bos_token_id");
        checkAddSpecial(addEos, ids[1], "add_eos_token", "eos_token_id");
        checkAddSpecial(addSep, ids[5], "add_sep_token", "seperator_token_id");
        cleanSpaces = clean;
        // Without normalizer keys, llama.cpp (up to at least the golden commit) always lower-cases and maps each code
        // point to the first of its NFD decomposition, keeping standalone combining marks; newer llama.cpp reads these
        // keys and, when stripping accents, also drops combining marks
        normalizerKeys = md.contains(KEY + "normalizer.lowercase") || md.contains(KEY + "normalizer.strip_accents");
        lowercase = md.getBoolean(KEY + "normalizer.lowercase", true);
        stripAccents = md.getBoolean(KEY + "normalizer.strip_accents", lowercase);

        // llama.cpp finds EOT/EOM/FIM tokens by their text when the metadata does not name them, and makes them
        // control tokens; where several texts exist, the first in llama.cpp's list wins here
        ids[2] = detect(ids[2], "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                "<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>");
        ids[3] = detect(ids[3], "<|eom_id|>");
        ids[8] = detect(ids[8], "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>",
                "▁<PRE>", "<|code_prefix|>", "<|prefix|>");
        ids[9] = detect(ids[9], "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>",
                "▁<SUF>", "<|code_suffix|>", "<|suffix|>");
        ids[10] = detect(ids[10], "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>",
                "▁<MID>", "<|code_middle|>", "<|middle|>");
        ids[11] = detect(ids[11], "<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]");
        ids[12] = detect(ids[12], "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>");
        ids[13] = detect(ids[13], "<|file_sep|>");

        for (int i = 0; i < n; i++) {
            if ((attrs[i] & ATTR_CONTROL) != 0 && contains(text[i], "unused")) {
                attrs[i] |= ATTR_UNUSED;
            }
        }

        endOfGeneration = new boolean[n];
        for (int k : new int[] {11, 12, 13}) {
            if (ids[k] >= 0) {
                endOfGeneration[ids[k]] = true;
            }
        }
        for (String eog : new String[] {"<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>",
                "<|flush|>", "<|calls|>", "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>",
                "[EOT]", "[EOS]", "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
                "<｜end▁of▁sentence｜>", "[e~["}) {
            int id = idOf(eog);
            if (id >= 0) {
                endOfGeneration[id] = true;
                attrs[id] |= ATTR_CONTROL;
            }
        }
        for (String rendered : new String[] {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"}) {
            int id = idOf(rendered); // llama.cpp's gpt-oss rule: always rendered
            if (id >= 0) {
                attrs[id] = ATTR_USER_DEFINED;
            }
        }
        for (int k : new int[] {1, 2, 3}) {
            if (ids[k] >= 0) {
                endOfGeneration[ids[k]] = true;
            }
        }
        int end = idOf("<|end|>");
        if (end >= 0 && endOfGeneration[end]) { // o200k_harmony and solar-open: <|end|> is not end of generation
            boolean hasReturn = eogText("<|return|>"), hasCall = eogText("<|call|>") || eogText("<|calls|>");
            if ((hasReturn && hasCall) || (hasCall && eogText("<|flush|>"))) {
                endOfGeneration[end] = false;
                attrs[end] = ATTR_USER_DEFINED;
            }
        }
        int closeS = idOf("</s>");
        if (closeS >= 0 && endOfGeneration[closeS] && eogText("<|tool_response>")) { // gemma4 and paddleocr
            endOfGeneration[closeS] = false;
            attrs[closeS] = ATTR_NORMAL;
        }

        int cls = specialId(md, KEY + "cls_token_id", model == Model.WPM ? ids[0] : -1, n);
        special = new SpecialTokens(ids[0], ids[1], ids[2], ids[3], ids[4], ids[5], ids[6], ids[7], cls, ids[8],
                ids[9], ids[10], ids[11], ids[12], ids[13]);

        List<Integer> specials = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            if ((attrs[i] & (ATTR_CONTROL | ATTR_USER_DEFINED | ATTR_UNKNOWN)) != 0) {
                specials.add(i);
            }
        }
        // llama.cpp sorts by length with std::sort, which leaves ties in no particular order; ties go by id here
        specials.sort(Comparator.<Integer>comparingInt(i -> -text[i].length).thenComparingInt(i -> i));
        specialCache = specials.stream().mapToInt(Integer::intValue).toArray();

        pieces = new byte[n][];
        for (int i = 0; i < n; i++) {
            pieces[i] = piece(i);
        }

        applyPerModelAttributes(md);
    }

    static Vocabulary load(GgufMetadata md) {
        return new Vocabulary(md);
    }

    /** The BPE merges ("first second", in rank order); a view of the metadata, valid while its file is open. */
    static GgufArray merges(GgufMetadata md) {
        return requireArray(md, KEY + "merges", GgufValueType.STRING);
    }

    int size() {
        return text.length;
    }

    private void applyPerModelAttributes(GgufMetadata md) {
        String name = md.getString("general.name", "").toLowerCase(Locale.ROOT);
        String arch = md.getString("general.architecture", "");
        if (preName.contains("jina-v2-de") || preName.contains("jina-v2-es") || preName.contains("jina-v2-code")
                || arch.contains("nomic-bert-moe") || arch.contains("jina-bert-v3")) {
            setAttr("<mask>", ATTR_LSTRIP, true);
        } else if (name.contains("phi-3") || name.contains("phi3")) {
            for (int id : specialCache) {
                attrs[id] |= ATTR_RSTRIP;
            }
            setAttr("</s>", ATTR_RSTRIP, true);
            setAttr("<unk>", ATTR_RSTRIP, false);
            setAttr("<s>", ATTR_RSTRIP, false);
            setAttr("<|endoftext|>", ATTR_RSTRIP, false);
        } else if (name.contains("modern-bert")) {
            setAttr("[MASK]", ATTR_LSTRIP, true);
        }
    }

    private void setAttr(String token, int attr, boolean value) {
        int id = idOf(token);
        if (id >= 0) {
            attrs[id] = value ? attrs[id] | attr : attrs[id] & ~attr;
        }
    }

    private boolean eogText(String token) {
        int id = idOf(token);
        return id >= 0 && endOfGeneration[id];
    }

    private int detect(int current, String... candidates) {
        if (current >= 0) {
            return current;
        }
        for (String candidate : candidates) {
            int id = idOf(candidate);
            if (id >= 0) {
                attrs[id] |= ATTR_CONTROL;
                return id;
            }
        }
        return -1;
    }

    int idOf(String token) {
        byte[] bytes = token.getBytes(StandardCharsets.UTF_8);
        return index.get(bytes, 0, bytes.length);
    }

    private static boolean contains(byte[] haystack, String needle) {
        return new String(haystack, StandardCharsets.ISO_8859_1).contains(needle);
    }

    private static int attrOfType(long type) {
        return switch ((int) type) {
            case 1 -> ATTR_NORMAL;
            case 2 -> ATTR_UNKNOWN;
            case 3 -> ATTR_CONTROL;
            case 4 -> ATTR_USER_DEFINED;
            case 5 -> ATTR_UNUSED;
            case 6 -> ATTR_BYTE;
            default -> 0;
        };
    }

    TokenType type(int id) {
        int a = attrs[id];
        if ((a & ATTR_UNUSED) != 0) {
            return TokenType.UNUSED;
        } else if ((a & ATTR_CONTROL) != 0) {
            return TokenType.CONTROL;
        } else if ((a & ATTR_USER_DEFINED) != 0) {
            return TokenType.USER_DEFINED;
        } else if ((a & ATTR_UNKNOWN) != 0) {
            return TokenType.UNKNOWN;
        } else if ((a & ATTR_BYTE) != 0) {
            return TokenType.BYTE;
        } else if ((a & ATTR_NORMAL) != 0) {
            return TokenType.NORMAL;
        }
        return TokenType.UNDEFINED;
    }

    /** llama.cpp's token_to_piece(special = true), which its piece cache holds. */
    private byte[] piece(int id) {
        int a = attrs[id];
        byte[] t = text[id];
        if ((a & (ATTR_UNKNOWN | ATTR_CONTROL | ATTR_USER_DEFINED)) != 0) {
            return t;
        }
        if ((a & ATTR_NORMAL) != 0) {
            return model == Model.BPE ? decodeByteLevel(t) : unescapeSpaces(t);
        }
        if ((a & ATTR_BYTE) != 0) {
            return new byte[] {(byte) byteValue(t)};
        }
        return new byte[0];
    }

    /** The byte of a {@code <0xAB>} token, as llama.cpp's {@code strtol(text.substr(3, 2), 16)}. */
    static int byteValue(byte[] t) {
        int v = 0;
        for (int i = 3; i < Math.min(5, t.length); i++) {
            int d = Character.digit(t[i], 16);
            if (d < 0) {
                break;
            }
            v = v * 16 + d;
        }
        return v;
    }

    private static byte[] unescapeSpaces(byte[] t) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(t.length);
        for (int i = 0; i < t.length; i++) {
            if (i + 2 < t.length && t[i] == SPACE_MARK[0] && t[i + 1] == SPACE_MARK[1] && t[i + 2] == SPACE_MARK[2]) {
                out.write(' ');
                i += 2;
            } else {
                out.write(t[i]);
            }
        }
        return out.toByteArray();
    }

    /** llama.cpp's {@code llama_decode_text}: undoes the GPT-2 byte mapping, marking characters outside it. */
    private static byte[] decodeByteLevel(byte[] t) {
        String s = new String(t, StandardCharsets.UTF_8);
        ByteArrayOutputStream out = new ByteArrayOutputStream(t.length);
        for (int i = 0; i < s.length(); ) {
            int cp = s.codePointAt(i);
            i += Character.charCount(cp);
            int b = ByteUnicode.decode(cp);
            if (b >= 0) {
                out.write(b);
            } else {
                StringBuilder marker = new StringBuilder("[UNK_BYTE_0x");
                for (byte u : Character.toString(cp).getBytes(StandardCharsets.UTF_8)) {
                    marker.append(String.format("%02x", u & 0xFF));
                }
                marker.append(s).append(']');
                out.writeBytes(marker.toString().getBytes(StandardCharsets.UTF_8));
            }
        }
        return out.toByteArray();
    }

    private static GgufArray requireArray(GgufMetadata md, String key, GgufValueType elementType) {
        GgufArray a = md.requireArray(key);
        if (a.elementType() != elementType) {
            throw new IllegalArgumentException("metadata '%s': expected an ARRAY of %s, found an ARRAY of %s"
                    .formatted(key, elementType, a.elementType()));
        }
        a.intSize();
        return a;
    }

    private static void checkLength(GgufArray a, String key, int n, boolean typeOk, String expectedType) {
        if (!typeOk) {
            throw new IllegalArgumentException("metadata '%s': expected an ARRAY of %s, found an ARRAY of %s"
                    .formatted(key, expectedType, a.elementType()));
        }
        if (a.size() < n) {
            throw new IllegalArgumentException("metadata '%s': %,d entries for %,d tokens (expected at least one per token)"
                    .formatted(key, a.size(), n));
        }
    }

    /** A special-token id from metadata; out-of-range values keep the default, as llama.cpp does. */
    private static int specialId(GgufMetadata md, String key, int defaultId, int n) {
        int id = defaultId >= n ? -1 : defaultId;
        Optional<MetadataValue> v = md.get(key);
        if (v.isEmpty()) {
            return id;
        }
        if (!(v.get() instanceof MetadataValue.Int value)) {
            throw new IllegalArgumentException("metadata '%s': expected an integer token id, found %s"
                    .formatted(key, v.get().type()));
        }
        long raw = value.value();
        return raw >= 0 && raw < n ? (int) raw : id;
    }

    private static void checkAddSpecial(boolean add, int id, String addKey, String idKey) {
        if (add && id < 0) {
            throw new IllegalArgumentException(
                    "%s%s is true, but %s%s is not set (or out of range)".formatted(KEY, addKey, KEY, idKey));
        }
    }

    @Override
    public String toString() {
        return "Vocabulary[%s, pre=%s, %,d tokens]".formatted(model.ggufName, preName, text.length);
    }
}
