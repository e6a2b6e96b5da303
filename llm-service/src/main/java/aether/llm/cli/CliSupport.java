package aether.llm.cli;

import aether.llm.chat.ChatTemplateException;
import aether.llm.gguf.GgufFormatException;
import aether.llm.model.ModelLoadException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.NoSuchFileException;
import picocli.CommandLine;

/**
 * What the commands share: one-line error reporting (exit code {@link #EXIT_BAD_INPUT} for bad input, no stack trace
 * unless {@code --debug}), and a picocli configuration that reports bad options the same way.
 */
public final class CliSupport {

    /** Bad input: a missing or invalid model file, a bad option value. */
    public static final int EXIT_BAD_INPUT = 2;
    /** A failure while running (not the input's fault). */
    public static final int EXIT_FAILURE = 1;

    private CliSupport() {}

    /**
     * Makes option parsing errors (unknown option, a value of the wrong type) one line on stderr,
     * {@code aether CMD: MESSAGE (see aether CMD --help)}, with exit code 2, for {@code cli} and all its subcommands.
     */
    public static CommandLine configure(CommandLine cli) {
        return cli.setParameterExceptionHandler((e, args) -> {
            CommandLine failed = e.getCommandLine();
            String name = qualifiedName(failed);
            PrintWriter err = failed.getErr();
            err.println(name + ": " + oneLine(e.getMessage()) + " (see " + name + " --help)");
            err.flush();
            return EXIT_BAD_INPUT;
        });
    }

    private static String qualifiedName(CommandLine cli) {
        String name = cli.getCommandName();
        for (CommandLine p = cli.getParent(); p != null; p = p.getParent()) {
            name = p.getCommandName() + " " + name;
        }
        return name.startsWith("aether") ? name : "aether " + name;
    }

    /** The one-line description of a failure, and whether it was bad input (exit 2) or not (exit 1). */
    record Failure(String message, int exitCode) {}

    static Failure describe(Throwable e) {
        return switch (e) {
            case UncheckedIOException u when u.getCause() instanceof NoSuchFileException n ->
                    new Failure(n.getFile() + ": no such file", EXIT_BAD_INPUT);
            case UncheckedIOException u when u.getCause() instanceof AccessDeniedException a ->
                    new Failure(a.getFile() + ": permission denied", EXIT_BAD_INPUT);
            case UncheckedIOException u -> new Failure(oneLine(u.getMessage()), EXIT_BAD_INPUT);
            case GgufFormatException g -> new Failure(oneLine(g.getMessage()), EXIT_BAD_INPUT);
            case ModelLoadException m -> new Failure(oneLine(m.getMessage()), EXIT_BAD_INPUT);
            case ChatTemplateException c -> new Failure(oneLine(c.getMessage()), EXIT_BAD_INPUT);
            case IllegalArgumentException i -> new Failure(oneLine(i.getMessage()), EXIT_BAD_INPUT);
            default -> new Failure("unexpected " + oneLine(String.valueOf(e)), EXIT_FAILURE);
        };
    }

    /** Prints {@code aether CMD: message} for {@code e} (and its stack trace under {@code debug}); returns the exit code. */
    static int fail(CommandLine cli, Throwable e, boolean debug) {
        Failure f = describe(e);
        return fail(cli, f.message(), f.exitCode(), debug ? e : null);
    }

    static int fail(CommandLine cli, String message, int exitCode, Throwable trace) {
        PrintWriter err = cli.getErr();
        err.println("aether " + cli.getCommandName() + ": " + oneLine(message));
        if (trace != null) {
            trace.printStackTrace(err);
        }
        err.flush();
        return exitCode;
    }

    static String oneLine(String s) {
        return s == null ? "" : s.replace("\r\n", " ").replace('\n', ' ').replace('\r', ' ');
    }
}
