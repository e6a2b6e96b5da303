package aether.llm.tokenizer;

import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.stream.Collectors;

/**
 * The BPE pre-tokenizers of llama.cpp, chosen by {@code tokenizer.ggml.pre}: the regex list that splits text into
 * words before merging (copied from {@code llm_tokenizer_bpe}'s constructor) and the flags llama.cpp sets with it.
 * A missing {@code tokenizer.ggml.pre} means {@link #DEFAULT}, as in llama.cpp.
 */
enum PreTokenizer {

    DEFAULT(List.of("default"), true, false, false, List.of(
            "[\\p{P}\\$\\+<=>\\^~\\|]+",
            RegexSplitter.GPT2,
            "\\p{N}+",
            "[0-9][0-9][0-9]")),
    LLAMA3(List.of("llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2",
            "jina-v5-nano"),
            true, true, true, List.of(RegexSplitter.LLAMA3)),
    DBRX(List.of("dbrx", "smaug-bpe"), true, false, false, List.of(RegexSplitter.LLAMA3)),
    DEEPSEEK_LLM(List.of("deepseek-llm"), false, false, false, List.of(
            "[\r\n]",
            "\\s?["
            + "A-Za-z\u00B5\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u01BA\u01BC-\u01BF\u01C4-\u0293"
            + "\u0295-\u02AF\u0370-\u0373\u0376\u0377\u037B-\u037D\u037F\u0386\u0388-\u038A"
            + "\u038C\u038E-\u03A1\u03A3-\u03F5\u03F7-\u0481\u048A-\u052F\u0531-\u0556"
            + "\u10A0-\u10C5\u13A0-\u13F5\u13F8-\u13FD\u1C90-\u1CBA\u1CBD-\u1CBF\u1D00-\u1D2B"
            + "\u1D6B-\u1D77\u1D79-\u1D9A\u1E00-\u1F15\u1F18-\u1F1D\u1F20-\u1F45\u1F48-\u1F4D"
            + "\u1F50-\u1F57\u1F59\u1F5B\u1F5D\u1F5F-\u1F7D\u1F80-\u1FB4\u1FB6-\u1FBC\u1FBE"
            + "\u1FC2-\u1FC4\u1FC6-\u1FCC\u1FD0-\u1FD3\u1FD6-\u1FDB\u1FE0-\u1FEC\u1FF2-\u1FF4"
            + "\u1FF6-\u1FFC\u2102\u2107\u210A-\u2113\u2115\u2119-\u211D\u2124\u2126\u2128"
            + "\u212A-\u212D\u212F-\u2134\u2139\u213C-\u213F\u2145-\u2149\u214E\u2183\u2184"
            + "\u2C00-\u2C7B\u2C7E-\u2CE4\u2CEB-\u2CEE\u2CF2\u2CF3\uA640-\uA66D\uA680-\uA69B"
            + "\uA722-\uA76F\uA771-\uA787\uA78B-\uA78E\uAB70-\uABBF\uFB00-\uFB06\uFB13-\uFB17"
            + "\uFF21-\uFF3A\uFF41-\uFF5A\uD801\uDC00-\uD801\uDC4F\uD801\uDCB0-\uD801\uDCD3"
            + "\uD801\uDCD8-\uD801\uDCFB\uD803\uDC80-\uD803\uDCB2\uD803\uDCC0-\uD803\uDCF2"
            + "\uD806\uDCA0-\uD806\uDCDF\uD83A\uDD00-\uD83A\uDD43]+",
            "\\s?[!-/:-~\uFF01-\uFF0F\uFF1A-\uFF5E\u2018-\u201F\u3000-\u3002]+",
            "\\s+$",
            "[\u4E00-\u9FA5\u0800-\u4E00\uAC00-\uD7FF]+",
            "\\p{N}+")),
    DEEPSEEK_CODER(List.of("deepseek-coder"), false, false, false, List.of(
            "[\r\n]",
            "\\s?\\p{L}+",
            "\\s?\\p{P}+",
            "[\u4E00-\u9FA5\u0800-\u4E00\uAC00-\uD7FF]+",
            "\\p{N}")),
    DEEPSEEK3_LLM(List.of("deepseek-v3"), false, false, false, List.of(
            "\\p{N}{1,3}",
            "[\u4E00-\u9FA5\u3040-\u309F\u30A0-\u30FF]+",
            "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+")),
    FALCON(List.of("falcon"), true, false, false, List.of(
            "[\\p{P}\\$\\+<=>\\^~\\|`]+",
            RegexSplitter.GPT2,
            "[0-9][0-9][0-9]")),
    STARCODER(List.of("starcoder", "refact", "codeshell", "exaone", "minerva-7b"), true, false, false, List.of(
            "\\p{N}",
            RegexSplitter.GPT2)),
    STARCODER_NO_CLEAN(List.of("command-r", "smollm"), false, false, false, List.of(
            "\\p{N}",
            RegexSplitter.GPT2)),
    GPT2(List.of("gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum",
            "modern-bert", "exaone4", "mpt", "olmo", "jais", "jina-v1-en", "jina-v2-code", "roberta-bpe"),
            true, false, false, List.of(RegexSplitter.GPT2)),
    GPT2_NO_CLEAN(List.of("trillion"), false, false, false, List.of(RegexSplitter.GPT2)),
    QWEN2(List.of("qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "hunyuan"), false, false, false, List.of(
            "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")),
    QWEN35(List.of("qwen35"), false, false, false, List.of(
            "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")),
    STABLELM2(List.of("stablelm2", "megrez"), true, false, false, QWEN2.expressions),
    CHATGLM4(List.of("glm4", "chatglm-bpe"), true, false, false, List.of(RegexSplitter.LLAMA3)),
    QWEN2_NO_CLEAN_CONTRACTIONS(List.of("grok-2"), false, false, false, QWEN2.expressions),
    SEED_CODER(List.of("seed-coder"), false, false, false, List.of(
            "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")),
    BLOOM(List.of("bloom", "gpt3-finnish"), true, false, false, List.of(
            " ?[^(\\s|.,!?\u2026\u3002\uFF0C\u3001\u0964\u06D4\u060C)]+")),
    PORO(List.of("poro-chat"), false, false, false, BLOOM.expressions);

    private final List<String> names;
    final boolean cleanSpaces;
    final boolean ignoreMerges;
    /** Whether llama.cpp turns add-BOS on by default for this pre-tokenizer (the GGUF key still overrides). */
    final boolean addBosByDefault;
    private final List<String> expressions;

    PreTokenizer(List<String> names, boolean cleanSpaces, boolean ignoreMerges, boolean addBosByDefault,
            List<String> expressions) {
        this.names = names;
        this.cleanSpaces = cleanSpaces;
        this.ignoreMerges = ignoreMerges;
        this.addBosByDefault = addBosByDefault;
        this.expressions = expressions;
    }

    List<String> expressions() {
        return expressions;
    }

    static Optional<PreTokenizer> byName(String name) {
        for (PreTokenizer p : values()) {
            if (p.names.contains(name)) {
                return Optional.of(p);
            }
        }
        return Optional.empty();
    }

    /** Every supported {@code tokenizer.ggml.pre} value, for error messages. */
    static String supportedNames() {
        return Arrays.stream(values()).flatMap(p -> p.names.stream()).sorted().collect(Collectors.joining(", "));
    }
}
