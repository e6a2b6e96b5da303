package aether.llm.tokenizer;

import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/**
 * Turns one sequence's generated token ids into text as they arrive, emitting only complete characters: a
 * multi-byte UTF-8 character split across tokens (byte-fallback or byte-level pieces) is held back until its last byte
 * arrives, and bytes that can never form a valid character become U+FFFD as soon as that is certain. The text of
 * every {@link #accept} plus {@link #flush} is exactly {@link Tokenizer#decode} of all ids: control tokens are not
 * rendered and, for add-space-prefix vocabularies, the first token's leading space is dropped (llama.cpp's
 * {@code token_to_piece} with {@code lstrip = 1} for the first token, as {@code llama_detokenize} does).
 *
 * <p>One instance per sequence; not thread-safe. Reusable after {@link #flush}. Once its buffers have grown to the
 * longest piece, {@link #accept(int, StringBuilder)} allocates nothing.
 */
public final class StreamingDecoder {

    private final Tokenizer tokenizer;
    private final CharsetDecoder utf8 = StandardCharsets.UTF_8.newDecoder()
            .onMalformedInput(CodingErrorAction.REPLACE)
            .onUnmappableCharacter(CodingErrorAction.REPLACE);
    /** Bytes not yet decoded (write mode): at most an incomplete character between calls. */
    private ByteBuffer pending = ByteBuffer.allocate(64);
    private CharBuffer chars = CharBuffer.allocate(64);
    private int position;

    StreamingDecoder(Tokenizer tokenizer) {
        this.tokenizer = tokenizer;
    }

    /**
     * Adds one token and appends the text that is now complete (possibly none) to {@code out}.
     *
     * @return the number of chars appended
     * @throws IllegalArgumentException if {@code id} is not in the vocabulary
     */
    public int accept(int id, StringBuilder out) {
        byte[] piece = tokenizer.piece(id, position, false);
        int skip = Tokenizer.pieceSkip(piece, position == 0 && tokenizer.addSpacePrefix());
        position++;
        int length = piece.length - skip;
        if (pending.remaining() < length) {
            ByteBuffer bigger = ByteBuffer.allocate(Math.max(pending.capacity() * 2, pending.position() + length));
            pending.flip();
            bigger.put(pending);
            pending = bigger;
        }
        pending.put(piece, skip, length);
        return drain(false, out);
    }

    /** Adds one token and returns the text that is now complete (possibly empty). */
    public String accept(int id) {
        StringBuilder out = new StringBuilder();
        accept(id, out);
        return out.toString();
    }

    /**
     * Ends the sequence: returns what is still held back (an incomplete character at the end becomes U+FFFD) and
     * resets the decoder for a new sequence.
     */
    public String flush() {
        StringBuilder out = new StringBuilder();
        drain(true, out);
        utf8.reset();
        pending.clear();
        position = 0;
        return out.toString();
    }

    private int drain(boolean endOfInput, StringBuilder out) {
        pending.flip();
        int appended = 0;
        while (true) {
            chars.clear();
            CoderResult result = utf8.decode(pending, chars, endOfInput);
            if (endOfInput && !result.isOverflow()) {
                result = utf8.flush(chars);
            }
            chars.flip();
            appended += chars.remaining();
            out.append(chars);
            if (!result.isOverflow()) {
                break;
            }
        }
        pending.compact();
        return appended;
    }
}
