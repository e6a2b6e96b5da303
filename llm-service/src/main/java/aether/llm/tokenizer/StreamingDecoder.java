package aether.llm.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/**
 * Turns one sequence's generated token ids into text as they arrive, emitting only complete characters: a
 * multi-byte UTF-8 character split across tokens (byte-fallback or byte-level pieces) is held back until its last byte
 * arrives, and bytes that can never form a valid character become U+FFFD as soon as that is certain. The text of
 * every {@link #accept} plus {@link #finish} is exactly {@link Tokenizer#decode} of all ids: control tokens are not
 * rendered and, for add-space-prefix vocabularies, the first token's leading space is dropped.
 *
 * <p>One instance per sequence; not thread-safe. Reusable after {@link #finish}.
 */
public final class StreamingDecoder {

    private final Tokenizer tokenizer;
    private final CharsetDecoder utf8 = StandardCharsets.UTF_8.newDecoder()
            .onMalformedInput(CodingErrorAction.REPLACE)
            .onUnmappableCharacter(CodingErrorAction.REPLACE);
    /** Bytes not yet decoded: at most an incomplete character between calls. */
    private ByteBuffer pending = ByteBuffer.allocate(64);
    private final ByteArrayOutputStream piece = new ByteArrayOutputStream(64);
    private CharBuffer chars = CharBuffer.allocate(64);
    private int position;

    StreamingDecoder(Tokenizer tokenizer) {
        this.tokenizer = tokenizer;
    }

    /**
     * Adds one token and returns the text that is now complete (possibly empty).
     *
     * @throws IllegalArgumentException if {@code id} is not in the vocabulary
     */
    public String accept(int id) {
        piece.reset();
        tokenizer.appendPiece(piece, id, position, position == 0 && tokenizer.addSpacePrefix(), false);
        position++;
        byte[] bytes = piece.toByteArray();
        if (pending.remaining() < bytes.length) {
            ByteBuffer bigger = ByteBuffer.allocate(Math.max(pending.capacity() * 2, pending.position() + bytes.length));
            pending.flip();
            bigger.put(pending);
            pending = bigger;
        }
        pending.put(bytes);
        return drain(false);
    }

    /**
     * Ends the sequence: returns what is still held back (an incomplete character at the end becomes U+FFFD) and
     * resets the decoder for a new sequence.
     */
    public String finish() {
        String tail = drain(true);
        utf8.reset();
        pending.clear();
        position = 0;
        return tail;
    }

    private String drain(boolean endOfInput) {
        pending.flip();
        chars.clear();
        while (true) {
            var result = utf8.decode(pending, chars, endOfInput);
            if (result.isOverflow()) {
                CharBuffer bigger = CharBuffer.allocate(chars.capacity() * 2);
                chars.flip();
                bigger.put(chars);
                chars = bigger;
                continue;
            }
            if (endOfInput) {
                while (utf8.flush(chars).isOverflow()) {
                    CharBuffer bigger = CharBuffer.allocate(chars.capacity() * 2);
                    chars.flip();
                    bigger.put(chars);
                    chars = bigger;
                }
            }
            break;
        }
        pending.compact();
        chars.flip();
        return chars.toString();
    }
}
