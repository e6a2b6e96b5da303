package aether.cluster.cli;

import aether.runtime.bench.StartupTrace;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The {@code ./aether} entry point: one picocli command whose subcommands come from the modules below. It lives in
 * cluster-config because that module sees every other one (the {@code node} command is its own).
 */
@Command(
        name = "aether",
        mixinStandardHelpOptions = true,
        versionProvider = AetherVersion.class,
        description = "Actor-based distributed compute runtime for the JVM with an LLM inference service.",
        subcommands = {CommandLine.HelpCommand.class, aether.llm.cli.InspectCommand.class, aether.llm.cli.SynthCommand.class,
                aether.llm.cli.RunCommand.class, aether.llm.cli.ChatCommand.class, aether.llm.cli.BenchCommand.class,
                aether.llm.server.ServeCommand.class, aether.llm.server.LoadTestCommand.class,
                aether.cluster.node.NodeCommand.class})
public final class AetherMain implements Runnable {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }

    public static void main(String[] args) {
        StartupTrace.mark("main");
        System.exit(commandLine().execute(args));
    }

    /** The configured command line (tests call it to run subcommands in-process). */
    public static CommandLine commandLine() {
        return aether.llm.cli.CliSupport.configure(new CommandLine(new AetherMain()).setCaseInsensitiveEnumValuesAllowed(true));
    }
}
