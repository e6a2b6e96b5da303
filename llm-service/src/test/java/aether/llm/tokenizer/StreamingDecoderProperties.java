package aether.llm.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;

import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Example;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.lifecycle.BeforeContainer;

/**
 * The streaming decoder on arbitrary id sequences, including byte-fallback tokens that cut multi-byte characters and
 * bytes that never form one: every chunk is well-formed UTF-16 (no split surrogate pair, no partial character) and the
 * chunks plus {@code flush()} are exactly {@link Tokenizer#decode} of all ids.
 */
class StreamingDecoderProperties {

    /** Skips the whole container (as the other shared-data properties do) when ../shared is absent. */
    @BeforeContainer
    static void requireVocabularies() {
        aether.runtime.testing.SharedData.require("models/vocab");
    }

    @Property(tries = 300)
    void spmChunksAreWholeCharactersAndConcatenateToDecode(@ForAll("spmIds") int[] ids) {
        check(Vocabs.get("llama-spm"), ids);
    }

    @Property(tries = 300)
    void byteLevelChunksAreWholeCharactersAndConcatenateToDecode(@ForAll("gpt2Ids") int[] ids) {
        check(Vocabs.get("gpt-2"), ids);
    }

    @Property(tries = 200)
    void encodedTextStreamsBackWithoutReplacementCharacters(@ForAll("texts") String text) {
        Tokenizer tokenizer = Vocabs.get("llama-spm");
        int[] ids = tokenizer.encode(text, true, false);
        check(tokenizer, ids);
        StreamingDecoder decoder = tokenizer.streamingDecoder();
        StringBuilder all = new StringBuilder();
        for (int id : ids) {
            all.append(decoder.accept(id));
        }
        all.append(decoder.flush());
        assertThat(all.toString()).doesNotContain("\uFFFD").isEqualTo(tokenizer.decode(ids));
    }

    @Example
    void holdsBackSplitCharactersAndReplacesInvalidBytes() {
        Tokenizer spm = Vocabs.get("llama-spm");
        int byte0 = 3; // <0x00>
        StreamingDecoder decoder = spm.streamingDecoder();
        // "é" is C3 A9: nothing until its second byte
        assertThat(decoder.accept(byte0 + 0xC3)).isEmpty();
        assertThat(decoder.accept(byte0 + 0xA9)).isEqualTo("é");
        // 😀 is F0 9F 98 80, delivered one byte at a time
        assertThat(decoder.accept(byte0 + 0xF0)).isEmpty();
        assertThat(decoder.accept(byte0 + 0x9F)).isEmpty();
        assertThat(decoder.accept(byte0 + 0x98)).isEmpty();
        assertThat(decoder.accept(byte0 + 0x80)).isEqualTo("😀");
        // 0xFF can never start a character: replaced at once; a lone lead byte followed by ASCII likewise
        assertThat(decoder.accept(byte0 + 0xFF)).isEqualTo("\uFFFD");
        assertThat(decoder.accept(byte0 + 0xE2)).isEmpty();
        assertThat(decoder.accept(byte0 + 'a')).isEqualTo("\uFFFDa");
        // an incomplete character at the end becomes U+FFFD on flush
        assertThat(decoder.accept(byte0 + 0xE2)).isEmpty();
        assertThat(decoder.accept(byte0 + 0x96)).isEmpty();
        assertThat(decoder.flush()).isEqualTo("\uFFFD");
        // reusable: the first token of the next sequence has its leading space dropped (▁Hello)
        StringBuilder out = new StringBuilder();
        assertThat(decoder.accept(15043, out)).isEqualTo(5);
        assertThat(decoder.accept(3186, out)).isEqualTo(6);
        assertThat(out.toString()).isEqualTo("Hello world");
        assertThat(decoder.flush()).isEmpty();
    }

    private static void check(Tokenizer tokenizer, int[] ids) {
        StreamingDecoder decoder = tokenizer.streamingDecoder();
        StringBuilder all = new StringBuilder();
        for (int id : ids) {
            String chunk = decoder.accept(id);
            assertThat(isWellFormed(chunk)).as("chunk %s", chunk).isTrue();
            all.append(chunk);
        }
        String tail = decoder.flush();
        assertThat(isWellFormed(tail)).isTrue();
        all.append(tail);
        assertThat(all.toString()).isEqualTo(tokenizer.decode(ids));
        // the decoder is reusable after flush()
        StringBuilder again = new StringBuilder();
        for (int id : ids) {
            again.append(decoder.accept(id));
        }
        again.append(decoder.flush());
        assertThat(again.toString()).isEqualTo(all.toString());
    }

    /** No unpaired surrogate: a chunk never ends inside a character. */
    static boolean isWellFormed(String s) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (Character.isHighSurrogate(c)) {
                if (i + 1 >= s.length() || !Character.isLowSurrogate(s.charAt(i + 1))) {
                    return false;
                }
                i++;
            } else if (Character.isLowSurrogate(c)) {
                return false;
            }
        }
        return true;
    }

    @Provide
    Arbitrary<int[]> spmIds() {
        // llama-spm: 0-2 special, 3..258 byte tokens <0x00>..<0xFF> (multi-byte lead and continuation bytes), the rest text
        Arbitrary<Integer> bytes = Arbitraries.integers().between(3, 258);
        Arbitrary<Integer> utf8Bytes = Arbitraries.of(0xE2, 0x96, 0x81, 0xF0, 0x9F, 0x98, 0x80, 0xC3, 0xA9, 0x80, 0xBF)
                .map(b -> b + 3);
        Arbitrary<Integer> any = Arbitraries.integers().between(0, 31999);
        return Arbitraries.frequencyOf(net.jqwik.api.Tuple.of(3, bytes), net.jqwik.api.Tuple.of(4, utf8Bytes),
                        net.jqwik.api.Tuple.of(3, any))
                .array(int[].class).ofMaxSize(40);
    }

    @Provide
    Arbitrary<int[]> gpt2Ids() {
        // gpt-2: ids 0..255 are the 256 single-byte pieces (in GPT-2's byte order), the rest merged text
        Arbitrary<Integer> single = Arbitraries.integers().between(0, 255);
        Arbitrary<Integer> any = Arbitraries.integers().between(0, 50256);
        return Arbitraries.frequencyOf(net.jqwik.api.Tuple.of(3, single), net.jqwik.api.Tuple.of(1, any))
                .array(int[].class).ofMaxSize(40);
    }

    @Provide
    Arbitrary<String> texts() {
        return TokenizerProperties.unicodeText();
    }
}
