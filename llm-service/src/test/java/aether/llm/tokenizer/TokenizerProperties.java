package aether.llm.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;

import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.lifecycle.BeforeContainer;
import net.jqwik.api.Tuple;

/**
 * Round trips on random Unicode text (ASCII, whitespace runs, Latin-1, Cyrillic, CJK, emoji, any non-surrogate code
 * point). {@code decode(encode(text, false, false)) == text} holds for SentencePiece vocabularies (whose added leading
 * space {@code decode} drops again) and for byte-level BPE vocabularies when every byte of the text has a piece. Exceptions, not
 * generated here: text containing a user-defined token's text after which SentencePiece adds a space, and WordPiece,
 * which lower-cases, strips accents and drops whitespace; for WordPiece the properties are those normalizations.
 */
class TokenizerProperties {

    /** Skips the whole container (as the other shared-data properties do) when ../shared is absent. */
    @BeforeContainer
    static void requireVocabularies() {
        aether.runtime.testing.SharedData.require("models/vocab");
    }

    @Property(tries = 300)
    void spmRoundTrips(@ForAll("texts") String text) {
        for (String vocab : new String[] {"llama-spm", "phi-3", "baichuan"}) {
            Tokenizer tokenizer = Vocabs.get(vocab);
            assertThat(tokenizer.decode(tokenizer.encode(text, false, false))).as(vocab).isEqualTo(text);
        }
    }

    @Property(tries = 300)
    void byteLevelBpeRoundTrips(@ForAll("texts") String text) {
        for (String vocab : new String[] {"gpt-2", "gpt-neox", "deepseek-coder", "deepseek-llm", "falcon", "starcoder",
                "refact", "mpt"}) {
            Tokenizer tokenizer = Vocabs.get(vocab);
            if (everyByteHasAPiece(tokenizer, text)) {
                assertThat(tokenizer.decode(tokenizer.encode(text, false, false))).as(vocab).isEqualTo(text);
            }
        }
    }

    /**
     * Byte-level vocabularies may lack the pieces of bytes that no training text had (falcon: some C0 controls and
     * 0xF2; starcoder: 0xF1; most: 0xC0, 0xC1, 0xF5..0xFF); llama.cpp drops such bytes, so those texts cannot round
     * trip.
     */
    private static boolean everyByteHasAPiece(Tokenizer tokenizer, String text) {
        for (byte b : text.getBytes(java.nio.charset.StandardCharsets.UTF_8)) {
            byte[] piece = ByteUnicode.encode(b);
            if (tokenizer.vocab.index.get(piece, 0, piece.length) < 0) {
                return false;
            }
        }
        return true;
    }

    @Property(tries = 200)
    void addSpecialOnlyAddsTheFlaggedTokens(@ForAll("texts") String text) {
        for (String vocab : new String[] {"llama-spm", "gpt-2", "deepseek-coder", "bert-bge"}) {
            Tokenizer tokenizer = Vocabs.get(vocab);
            int[] plain = tokenizer.encode(text, false, false);
            int[] special = tokenizer.encode(text, true, false);
            int head = tokenizer.model().equals("bert") || tokenizer.addBos() ? 1 : 0;
            int tail = tokenizer.model().equals("bert") || tokenizer.addEos() ? 1 : 0;
            assertThat(special).as(vocab).hasSize(plain.length + head + tail);
            for (int i = 0; i < plain.length; i++) {
                assertThat(special[i + head]).isEqualTo(plain[i]);
            }
            if (head == 1) {
                assertThat(special[0]).isEqualTo(tokenizer.specialTokens().bos());
            }
        }
    }

    @Property(tries = 200)
    void wordPieceIgnoresAsciiCaseAndWhitespaceRuns(@ForAll("asciiWords") String text) {
        Tokenizer bert = Vocabs.get("bert-bge");
        int[] expected = bert.encode(text, true, false);
        assertThat(bert.encode(text.toUpperCase(java.util.Locale.ROOT), true, false)).isEqualTo(expected);
        assertThat(bert.encode(" \t" + text.replace(" ", " \n  ") + "\r\n", true, false)).isEqualTo(expected);
    }

    @Provide
    Arbitrary<String> texts() {
        return unicodeText();
    }

    @Provide
    Arbitrary<String> asciiWords() {
        return Arbitraries.strings().withChars("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?' ")
                .ofMaxLength(60);
    }

    static Arbitrary<String> unicodeText() {
        Arbitrary<Integer> ascii = Arbitraries.integers().between(0x20, 0x7E);
        Arbitrary<Integer> space = Arbitraries.of(0x20, 0x20, 0x20, 0x09, 0x0A, 0x0D, 0xA0, 0x3000, 0x2028, 0x85);
        Arbitrary<Integer> latin = Arbitraries.integers().between(0xA1, 0x24F);
        Arbitrary<Integer> cyrillic = Arbitraries.integers().between(0x400, 0x4FF);
        Arbitrary<Integer> cjk = Arbitraries.integers().between(0x4E00, 0x9FFF);
        Arbitrary<Integer> emoji = Arbitraries.oneOf(Arbitraries.integers().between(0x1F300, 0x1FAFF),
                Arbitraries.of(0x200D, 0xFE0F, 0x1F1E6, 0x1F1FA));
        Arbitrary<Integer> anyCodePoint = Arbitraries.integers().between(0, 0x10FFFF)
                .filter(cp -> cp < 0xD800 || cp > 0xDFFF);
        Arbitrary<Integer> codePoint = Arbitraries.frequencyOf(Tuple.of(10, ascii), Tuple.of(4, space),
                Tuple.of(2, latin), Tuple.of(2, cyrillic), Tuple.of(2, cjk), Tuple.of(2, emoji),
                Tuple.of(1, anyCodePoint));
        return codePoint.list().ofMaxSize(40).map(cps -> {
            StringBuilder sb = new StringBuilder();
            cps.forEach(sb::appendCodePoint);
            return sb.toString();
        });
    }
}
