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
    LLAMA3(List.of("llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2"),
            true, true, true, List.of(RegexSplitter.LLAMA3)),
    DBRX(List.of("dbrx", "smaug-bpe"), true, false, false, List.of(RegexSplitter.LLAMA3)),
    DEEPSEEK_LLM(List.of("deepseek-llm"), false, false, false, List.of(
            "[\r\n]",
            "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
            "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
            "\\s+$",
            "[一-龥ࠀ-一가-퟿]+",
            "\\p{N}+")),
    DEEPSEEK_CODER(List.of("deepseek-coder"), false, false, false, List.of(
            "[\r\n]",
            "\\s?\\p{L}+",
            "\\s?\\p{P}+",
            "[一-龥ࠀ-一가-퟿]+",
            "\\p{N}")),
    DEEPSEEK3_LLM(List.of("deepseek-v3"), false, false, false, List.of(
            "\\p{N}{1,3}",
            "[一-龥぀-ゟ゠-ヿ]+",
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
    QWEN2(List.of("qwen2", "deepseek-r1-qwen", "hunyuan"), false, false, false, List.of(
            "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")),
    STABLELM2(List.of("stablelm2", "megrez"), true, false, false, QWEN2.expressions),
    CHATGLM4(List.of("glm4", "chatglm-bpe"), true, false, false, List.of(RegexSplitter.LLAMA3));

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
