package aether.llm.chat;

/**
 * A chat template that could not be compiled or rendered: a syntax error, a {@code raise_exception(...)} call, or an
 * expression that failed. The message names the template, the line (and column when known) and the cause; it is meant
 * for users, so it never carries the Jinja engine's own stack trace.
 */
public final class ChatTemplateException extends RuntimeException {

    private final String templateName;
    private final int line;
    private final int column;
    private final String reason;
    private final boolean raisedByTemplate;

    ChatTemplateException(String templateName, int line, int column, String reason, boolean raisedByTemplate) {
        super(format(templateName, line, column, reason, raisedByTemplate), null, false, false);
        this.templateName = templateName;
        this.line = line;
        this.column = column;
        this.reason = reason;
        this.raisedByTemplate = raisedByTemplate;
    }

    private static String format(String name, int line, int column, String reason, boolean raised) {
        var sb = new StringBuilder("chat template '").append(name).append('\'');
        if (line > 0) {
            sb.append(", line ").append(line);
            if (column > 0) {
                sb.append(", column ").append(column);
            }
        }
        sb.append(raised ? ": raise_exception: " : ": ").append(reason);
        return sb.toString();
    }

    /** The template's name ({@code "default"} or the suffix of {@code tokenizer.chat_template.<name>}). */
    public String templateName() {
        return templateName;
    }

    /** 1-based template line, or 0 when unknown. */
    public int line() {
        return line;
    }

    /** 1-based column within {@link #line()}, or 0 when unknown. */
    public int column() {
        return column;
    }

    /** The cause without the location: the {@code raise_exception} message, or what the engine reported. */
    public String reason() {
        return reason;
    }

    /** True when the template itself called {@code raise_exception} (the conversation was refused, not broken). */
    public boolean raisedByTemplate() {
        return raisedByTemplate;
    }
}
