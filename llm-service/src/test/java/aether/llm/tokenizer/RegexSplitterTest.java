package aether.llm.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import org.junit.jupiter.api.Test;

/**
 * The pre-tokenizer splitter: hand-checked splits of the LLaMA-3, Qwen2, GPT-2 and DeepSeek regexes (as the HF
 * tokenizers split the same strings), and llama.cpp's hand-written GPT-2 and LLaMA-3 splitters against the same
 * regexes run through the collapsed-text regex path on random text, and the character-class fast path against
 * java.util.regex for the deepseek regexes.
 */
class RegexSplitterTest {

    private static List<String> split(RegexSplitter splitter, String text) {
        int[] cpts = text.codePoints().toArray();
        IntList lengths = splitter.split(cpts);
        List<String> words = new ArrayList<>();
        int at = 0;
        for (int i = 0; i < lengths.size(); i++) {
            words.add(new String(cpts, at, lengths.get(i)));
            at += lengths.get(i);
        }
        assertThat(at).isEqualTo(cpts.length);
        return words;
    }

    @Test
    void shouldSplitLikeTheLlama3Regex() {
        RegexSplitter llama3 = new RegexSplitter(PreTokenizer.LLAMA3.expressions());
        assertThat(split(llama3, "Hello world 1234567 it's  \n\n  OK!!\n"))
                .containsExactly("Hello", " world", " ", "123", "456", "7", " it", "'s", "  \n\n", " ", " OK", "!!\n");
        assertThat(split(llama3, "I'LL go")).containsExactly("I", "'LL", " go");
    }

    @Test
    void shouldSplitDigitsOneByOneForQwen2() {
        RegexSplitter qwen2 = new RegexSplitter(PreTokenizer.QWEN2.expressions());
        assertThat(split(qwen2, "abc 123 ¼")).containsExactly("abc", " ", "1", "2", "3", " ", "¼");
        assertThat(split(qwen2, "x   y\t\n")).containsExactly("x", "  ", " y", "\t\n");
    }

    @Test
    void shouldSplitLikeTheGpt2Regex() {
        RegexSplitter gpt2 = new RegexSplitter(PreTokenizer.GPT2.expressions());
        assertThat(split(gpt2, "Hello, world!  I've 42 cats   "))
                .containsExactly("Hello", ",", " world", "!", " ", " I", "'ve", " 42", " cats", "   ");
    }

    @Test
    void shouldNotTreatTildeAsPunctuationInCollapsedCategories() {
        // llama.cpp's ASCII members of \p{P} and \p{S} leave out '~', so deepseek-coder's \s?\p{P}+ skips it
        RegexSplitter coder = new RegexSplitter(PreTokenizer.DEEPSEEK_CODER.expressions());
        assertThat(split(coder, "a~!b")).containsExactly("a", "~", "!", "b");
    }

    @Test
    void shouldCutAtEmptyLookaheadMatches() {
        // llama.cpp turns an empty match into a cut (its empty piece tokenizes to nothing), e.g. superbpe's digits
        RegexSplitter groups = new RegexSplitter(List.of("\\p{N}+", "(?=(\\d{3})+(?!\\d))"));
        assertThat(split(groups, "x1234567")).containsExactly("x", "1", "234", "567");
    }

    @Test
    void shouldCompileEveryPreTokenizer() {
        for (PreTokenizer pre : PreTokenizer.values()) {
            RegexSplitter splitter = new RegexSplitter(pre.expressions());
            assertThat(String.join("", split(splitter, "Hello, wörld! 12345 — 你好 🚀\n\t x")))
                    .as(pre.name()).isEqualTo("Hello, wörld! 12345 — 你好 🚀\n\t x");
        }
    }

    @Property(tries = 500)
    void handWrittenSplittersAgreeWithTheirRegexes(@ForAll("texts") String text) {
        for (List<String> expressions : List.of(List.of(RegexSplitter.GPT2), List.of(RegexSplitter.LLAMA3),
                List.of(RegexSplitter.LLAMA3_ORIGINAL.replace("(?i:", "(?:")), PreTokenizer.DEEPSEEK_LLM.expressions(),
                PreTokenizer.DEEPSEEK_CODER.expressions(), PreTokenizer.DEEPSEEK3_LLM.expressions())) {
            RegexSplitter custom = new RegexSplitter(expressions, true);
            RegexSplitter generic = new RegexSplitter(expressions, false);
            assertThat(split(custom, text)).as(expressions.getFirst()).isEqualTo(split(generic, text));
        }
    }

    @Provide
    Arbitrary<String> texts() {
        Arbitrary<String> chars = Arbitraries.of("a", "Z", "é", "ж", "中", "1", "٣", "'", "s", "t", "l", "L", "e",
                "v", " ", " ", " ", "\n", "\r", "\t", "\u00A0", "\u3000", "!", ".", "~", "$", "😀", "Ω",
                "\u1FBE", "\u2126", "ｆ", "！", "，", "\u3001", "한", "\uD801\uDC00", "\u0800");
        return Arbitraries.oneOf(chars.list().ofMaxSize(30).map(cs -> {
            StringBuilder sb = new StringBuilder();
            cs.forEach(sb::append);
            return sb.toString();
        }), TokenizerProperties.unicodeText());
    }
}
