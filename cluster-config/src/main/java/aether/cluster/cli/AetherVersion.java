package aether.cluster.cli;

import picocli.CommandLine;

/** Version line for {@code ./aether --version}: the build's version and the JVM it runs on. */
final class AetherVersion implements CommandLine.IVersionProvider {
    @Override
    public String[] getVersion() {
        String v = AetherMain.class.getPackage().getImplementationVersion();
        return new String[] {"aether " + (v == null ? "dev" : v),
                "JVM " + Runtime.version() + " (" + System.getProperty("java.vm.vendor") + ")"};
    }
}
