/**
 * The {@code ./aether} subcommands that llm-service owns ({@code inspect}, {@code synth}, {@code run}, {@code chat},
 * {@code bench}), as picocli commands. They parse arguments, call the library packages and print; logic that another
 * caller could want (summaries, loading, generation, chat sessions) lives in those packages, not here. Shared:
 * {@link aether.llm.cli.CliSupport} (one-line errors, exit code 2 for bad input), the {@code ModelOptions} and
 * {@code SamplingOptions} mixins and {@link aether.llm.cli.BundledModel}. Registered in
 * {@code aether.cluster.cli.AetherMain}.
 */
package aether.llm.cli;
