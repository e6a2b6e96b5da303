package aether.llm.gguf;

import java.nio.file.Path;

/**
 * A GGUF file (or metadata built in memory) that breaks the format or a documented limit. It names the file, the byte
 * offset where the offending field starts, the field and what was expected versus found, e.g.
 * {@code stories260K.gguf @ 1234: tensor 'blk.0.attn_q.weight': data needs 65,536 bytes at offset 9,999, only 5,000
 * remain}.
 */
public final class GgufFormatException extends RuntimeException {

    private final Path file;
    private final long offset;
    private final String field;
    private final String detail;

    /**
     * @param file   the file, or {@code null} for metadata that never came from a file
     * @param offset byte offset of the field in the file, or -1 when there is none (e.g. a missing key)
     * @param field  which field, e.g. {@code "tensor 'output.weight'"} or {@code "metadata 'general.alignment'"}
     * @param detail what was expected and what was found
     */
    public GgufFormatException(Path file, long offset, String field, String detail) {
        super(format(file, offset, field, detail));
        this.file = file;
        this.offset = offset;
        this.field = field;
        this.detail = detail;
    }

    private static String format(Path file, long offset, String field, String detail) {
        String where = file == null ? "<in memory>" : String.valueOf(file.getFileName());
        String at = offset >= 0 ? " @ " + offset : "";
        return where + at + ": " + field + ": " + detail;
    }

    /** The file, or {@code null} for metadata built in memory. */
    public Path file() {
        return file;
    }

    /** Byte offset of the offending field from the start of the file, or -1 if it has none. */
    public long offset() {
        return offset;
    }

    /** The offending field, e.g. {@code "header.version"} or {@code "tensor 'token_embd.weight'"}. */
    public String field() {
        return field;
    }

    /** What was expected and what was found, without file and offset. */
    public String detail() {
        return detail;
    }
}
