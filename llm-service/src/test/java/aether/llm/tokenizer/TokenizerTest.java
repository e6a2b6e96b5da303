package aether.llm.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import aether.llm.gguf.GgufArray;
import aether.llm.gguf.GgufFormatException;
import aether.llm.gguf.GgufMetadata;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Metadata handling, special tokens, pieces and errors, on the shared vocab files and small synthesized vocabularies. */
class TokenizerTest {

    /** A byte-level vocabulary: the 256 byte pieces, then {@code extra} tokens; merges as given. */
    private static GgufMetadata.Builder byteLevel(String pre, List<String> extra, List<String> merges) {
        List<String> tokens = new ArrayList<>();
        for (int b = 0; b < 256; b++) {
            tokens.add(new String(ByteUnicode.encode(b), StandardCharsets.UTF_8));
        }
        tokens.addAll(extra);
        GgufMetadata.Builder b = GgufMetadata.builder()
                .putString("tokenizer.ggml.model", "gpt2")
                .putArray("tokenizer.ggml.tokens", GgufArray.ofStrings(tokens))
                .putArray("tokenizer.ggml.merges", GgufArray.ofStrings(merges));
        return pre == null ? b : b.putString("tokenizer.ggml.pre", pre);
    }

    private static int piece(char c) {
        for (int b = 0; b < 256; b++) {
            if (new String(ByteUnicode.encode(b), StandardCharsets.UTF_8).equals(String.valueOf(c))) {
                return b;
            }
        }
        throw new AssertionError(c);
    }

    @Test
    void shouldRejectAnUnknownModelNamingTheSupportedOnes() {
        var md = byteLevel(null, List.of(), List.of()).set("tokenizer.ggml.model",
                aether.llm.gguf.MetadataValue.Str.of("t5")).build();
        assertThatThrownBy(() -> Tokenizer.fromGguf(md)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("'t5'").hasMessageContaining("llama").hasMessageContaining("gpt2")
                .hasMessageContaining("bert");
    }

    @Test
    void shouldRejectAnUnknownPreTokenizerNamingTheSupportedOnes() {
        assertThatThrownBy(() -> Tokenizer.fromGguf(byteLevel("kimi-k2", List.of(), List.of()).build()))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("'kimi-k2'")
                .hasMessageContaining("llama-bpe").hasMessageContaining("qwen2").hasMessageContaining("deepseek-llm");
    }

    @Test
    void shouldRejectMissingTokensAndMerges() {
        var noTokens = GgufMetadata.builder().putString("tokenizer.ggml.model", "llama").build();
        assertThatThrownBy(() -> Tokenizer.fromGguf(noTokens)).isInstanceOf(GgufFormatException.class)
                .hasMessageContaining("tokenizer.ggml.tokens");
        var noMerges = byteLevel("gpt-2", List.of(), List.of()).remove("tokenizer.ggml.merges").build();
        assertThatThrownBy(() -> Tokenizer.fromGguf(noMerges)).isInstanceOf(GgufFormatException.class)
                .hasMessageContaining("tokenizer.ggml.merges");
    }

    @Test
    void shouldRejectDuplicateTokensAndShortScores() {
        var duplicate = byteLevel("gpt-2", List.of("ab", "ab"), List.of()).build();
        assertThatThrownBy(() -> Tokenizer.fromGguf(duplicate)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("'ab'").hasMessageContaining("256").hasMessageContaining("257");
        var shortScores = GgufMetadata.builder().putString("tokenizer.ggml.model", "llama")
                .putArray("tokenizer.ggml.tokens", GgufArray.ofStrings(List.of("<unk>", "<s>", "</s>", "a")))
                .putArray("tokenizer.ggml.scores", GgufArray.ofFloat32(0f, 0f)).build();
        assertThatThrownBy(() -> Tokenizer.fromGguf(shortScores)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("tokenizer.ggml.scores").hasMessageContaining("2 entries for 4 tokens");
    }

    @Test
    void shouldRejectAddBosWithoutABosToken() {
        var md = GgufMetadata.builder().putString("tokenizer.ggml.model", "llama")
                .putArray("tokenizer.ggml.tokens", GgufArray.ofStrings(List.of("<unk>")))
                .putBool("tokenizer.ggml.add_bos_token", true).build();
        assertThatThrownBy(() -> Tokenizer.fromGguf(md)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("add_bos_token").hasMessageContaining("bos_token_id");
    }

    @Test
    void shouldRejectIdsOutsideTheVocabulary() {
        Tokenizer t = Vocabs.get("llama-spm");
        assertThatThrownBy(() -> t.decode(new int[] {1, 32000})).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("32000").hasMessageContaining("index 1").hasMessageContaining("[0, 32000)");
        assertThatThrownBy(() -> t.streamingDecoder().accept(-1)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> t.tokenBytes(40000)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void shouldUseIgnoreMergesForLlama3AndMergesOtherwise() {
        // "ab" is a token but there is no merge for it: LLaMA-3 looks whole words up first, GPT-2 does not
        int ab = 256;
        Tokenizer llama3 = Tokenizer.fromGguf(byteLevel("llama-bpe", List.of("ab"), List.of())
                .putUInt32("tokenizer.ggml.bos_token_id", 1).build());
        assertThat(llama3.addBos()).isTrue();
        assertThat(llama3.encode("ab", false, false)).containsExactly(ab);
        assertThat(llama3.encode("ab", true, false)).containsExactly(1, ab);
        Tokenizer gpt2 = Tokenizer.fromGguf(byteLevel("gpt-2", List.of("ab"), List.of()).build());
        assertThat(gpt2.addBos()).isFalse();
        assertThat(gpt2.encode("ab", true, false)).containsExactly(piece('a'), piece('b'));
    }

    @Test
    void shouldMergeLowestRankFirstAndThroughPiecesThatAreNotTokens() {
        // merges: rank 0 "b c", rank 1 "a bc", rank 2 "a b"; "bc" is not a token itself, "abc" is
        Tokenizer t = Tokenizer.fromGguf(byteLevel("gpt-2", List.of("ab", "abc"), List.of("b c", "a bc", "a b"))
                .build());
        assertThat(t.encode("abc", false, false)).containsExactly(257);
        assertThat(t.encode("ab", false, false)).containsExactly(256);
        // "bc" alone merges to a piece with no token: llama.cpp falls back to one-byte tokens of its text
        assertThat(t.encode("bc", false, false)).containsExactly(piece('b'), piece('c'));
    }

    @Test
    void shouldReadSpecialTokensAndFlagsOfRealVocabularies() {
        Tokenizer spm = Vocabs.get("llama-spm");
        assertThat(spm.model()).isEqualTo("llama");
        assertThat(spm.vocabSize()).isEqualTo(32000);
        assertThat(spm.specialTokens().bos()).isEqualTo(1);
        assertThat(spm.specialTokens().eos()).isEqualTo(2);
        assertThat(spm.specialTokens().unk()).isZero();
        assertThat(spm.addBos()).isTrue();
        assertThat(spm.addEos()).isFalse();
        assertThat(spm.addSpacePrefix()).isTrue();
        assertThat(spm.tokenType(0)).isEqualTo(TokenType.UNKNOWN);
        assertThat(spm.tokenType(1)).isEqualTo(TokenType.CONTROL);
        assertThat(spm.tokenType(13)).isEqualTo(TokenType.BYTE);
        assertThat(spm.tokenType(15043)).isEqualTo(TokenType.NORMAL);
        assertThat(spm.isEndOfGeneration(2)).isTrue();
        assertThat(spm.isEndOfGeneration(1)).isFalse();

        Tokenizer bert = Vocabs.get("bert-bge");
        assertThat(bert.model()).isEqualTo("bert");
        assertThat(bert.specialTokens().cls()).isEqualTo(101);
        assertThat(bert.specialTokens().sep()).isEqualTo(102);
        assertThat(bert.specialTokens().mask()).isEqualTo(103);
        assertThat(bert.specialTokens().pad()).isZero();
        assertThat(bert.specialTokens().unk()).isEqualTo(100);

        Tokenizer phi3 = Vocabs.get("phi-3");
        assertThat(phi3.specialTokens().eos()).isEqualTo(32000);
        assertThat(phi3.tokenText(phi3.specialTokens().eot())).isEqualTo("<|end|>");
        assertThat(phi3.isEndOfGeneration(32000)).isTrue();
        assertThat(phi3.isEndOfGeneration(phi3.specialTokens().eot())).isTrue();

        Tokenizer neox = Vocabs.get("gpt-neox");
        assertThat(neox.preTokenizer()).isEqualTo("default");
        assertThat(neox.addBos()).isFalse();

        // stories260K: seperator/padding ids of 2^32 - 1 are out of range and ignored, as in llama.cpp
        Tokenizer stories = Vocabs.load(aether.runtime.testing.SharedData.require("models/stories260K.gguf"));
        assertThat(stories.vocabSize()).isEqualTo(512);
        assertThat(stories.specialTokens().sep()).isEqualTo(-1);
        assertThat(stories.specialTokens().pad()).isEqualTo(-1);
        assertThat(stories.decode(stories.encode("Once upon a time", false, false))).isEqualTo("Once upon a time");
    }

    @Test
    void shouldGiveTheBytesOfEachPiece() {
        Tokenizer spm = Vocabs.get("llama-spm");
        assertThat(spm.tokenBytes(13)).containsExactly('\n');           // <0x0A>
        assertThat(spm.tokenBytes(15043)).isEqualTo(" Hello".getBytes(StandardCharsets.UTF_8)); // ▁Hello
        assertThat(spm.tokenBytes(1)).isEqualTo("<s>".getBytes(StandardCharsets.UTF_8));
        Tokenizer gpt2 = Vocabs.get("gpt-2");
        assertThat(gpt2.tokenText(220)).isEqualTo("Ġ");
        assertThat(gpt2.tokenBytes(220)).containsExactly(' ');
        assertThat(gpt2.tokenBytes(gpt2.vocab.idOf("\u0100"))).containsExactly(0); // Ā stands for byte 0
        assertThat(gpt2.tokenBytes(50256)).isEqualTo("<|endoftext|>".getBytes(StandardCharsets.UTF_8));
    }

    @Test
    void shouldHideControlTokensWhenDecodingAndDetokenizeLikeLlamaCpp() {
        Tokenizer spm = Vocabs.get("llama-spm");
        int[] ids = spm.encode("Hello world", true, false);
        assertThat(ids).containsExactly(1, 15043, 3186);
        assertThat(spm.decode(ids)).isEqualTo(" Hello world"); // BOS is first, so no leading space is dropped
        assertThat(spm.decode(spm.encode("Hello world", false, false))).isEqualTo("Hello world");
        assertThat(spm.detokenize(ids, false, true)).isEqualTo("<s> Hello world");
        Tokenizer gpt2 = Vocabs.get("gpt-2");
        int[] punct = gpt2.encode("Hello , world . It 's", false, false);
        assertThat(gpt2.decode(punct)).isEqualTo("Hello , world . It 's");
        assertThat(gpt2.detokenize(punct, false, false)).isEqualTo("Hello, world. It's"); // clean_spaces
    }

    @Test
    void shouldStripAccentsLikeLlamaCppWithAndWithoutNormalizerKeys() throws java.io.IOException {
        try (var file = aether.llm.gguf.GgufFile.open(
                aether.runtime.testing.SharedData.require("models/vocab/ggml-vocab-bert-bge.gguf"))) {
            Tokenizer plain = Tokenizer.fromGguf(file.metadata());
            // precomposed letters map to their base letter; a standalone combining mark stays (golden-commit llama.cpp)
            assertThat(plain.encode("Café", false, false)).isEqualTo(plain.encode("cafe", false, false));
            assertThat(plain.encode("cafe\u0301", false, false)).isNotEqualTo(plain.encode("cafe", false, false));
            // with the newer normalizer keys, combining marks are dropped when stripping accents ...
            Tokenizer keyed = Tokenizer.fromGguf(file.metadata().toBuilder()
                    .putBool("tokenizer.ggml.normalizer.strip_accents", true).build());
            assertThat(keyed.encode("cafe\u0301", false, false)).isEqualTo(keyed.encode("cafe", false, false));
            // ... and lower-casing can be turned off
            Tokenizer cased = Tokenizer.fromGguf(file.metadata().toBuilder()
                    .putBool("tokenizer.ggml.normalizer.lowercase", false).build());
            assertThat(cased.encode("Hello", false, false)).isNotEqualTo(cased.encode("hello", false, false));
        }
    }

    @Test
    void shouldEncodeUnpairedSurrogatesAsReplacementCharacters() {
        // a Java string can hold what UTF-8 cannot; every tokenizer sees U+FFFD, as llama.cpp does for invalid bytes
        for (String vocab : new String[] {"llama-spm", "gpt-2"}) {
            Tokenizer t = Vocabs.get(vocab);
            assertThat(t.encode("a\uD800b", false, false)).as(vocab).isEqualTo(t.encode("a\uFFFDb", false, false));
        }
    }

    @Test
    void shouldSplitUserDefinedTokensEvenWithoutParseSpecial() {
        // deepseek-coder marks some added tokens user-defined: they are matched before BPE either way
        Tokenizer coder = Vocabs.get("deepseek-coder");
        int userDefined = -1;
        for (int id = 0; id < coder.vocabSize() && userDefined < 0; id++) {
            if (coder.tokenType(id) == TokenType.USER_DEFINED && coder.tokenText(id).length() > 1) {
                userDefined = id;
            }
        }
        assertThat(userDefined).isNotNegative();
        String text = "x" + coder.tokenText(userDefined) + "y";
        assertThat(coder.encode(text, false, false)).contains(userDefined);
        int eos = coder.specialTokens().eos();
        assertThat(coder.encode(coder.tokenText(eos), false, false)).doesNotContain(eos);
        assertThat(coder.encode(coder.tokenText(eos), false, true)).containsExactly(eos);
    }
}
