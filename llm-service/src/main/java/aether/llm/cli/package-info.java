/**
 * The {@code ./aether} subcommands that llm-service owns ({@code inspect}, …), as picocli commands. They parse
 * arguments, call the library packages and print; logic that another caller could want (summaries, loading) lives in
 * those packages, not here. Registered in {@code aether.cluster.cli.AetherMain}.
 */
package aether.llm.cli;
