package aether.runtime.quant.bench;

import aether.runtime.bench.MemoryBandwidth;
import aether.runtime.tensor.GgmlType;
import java.util.ArrayList;
import java.util.List;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.options.CommandLineOptions;
import org.openjdk.jmh.runner.options.OptionsBuilder;

/**
 * Runs {@link DequantizeBenchmark} and prints a Markdown table of GB/s of blocks read per type, next to the
 * single-thread read bandwidth measured in the same run (the benchmark is single-threaded, so that is its roofline).
 *
 * <pre>scripts/jmh runtime-actors --main aether.runtime.quant.bench.DequantizeReport [JMH options, e.g. -p type=Q4_0]</pre>
 */
public final class DequantizeReport {

    public static void main(String[] args) throws Exception {
        CommandLineOptions cli = new CommandLineOptions(args);
        MemoryBandwidth.Result before = MemoryBandwidth.measureRead(1, 512L << 20, 8);
        var options = new OptionsBuilder().parent(cli)
                .include("^" + java.util.regex.Pattern.quote(DequantizeBenchmark.class.getName()) + "\\.").build();
        List<RunResult> results = new ArrayList<>(new Runner(options).run());
        MemoryBandwidth.Result after = MemoryBandwidth.measureRead(1, 512L << 20, 8);
        double bandwidth = Math.max(before.readGBs(), after.readGBs());

        System.out.printf("%nRead bandwidth, 1 thread, same run: %.1f GB/s (before %.1f, after %.1f)%n%n",
                bandwidth, before.readGBs(), after.readGBs());
        System.out.println("| type | GB/s of blocks read | f32 GB/s written | fraction of read bandwidth |");
        System.out.println("|---|---:|---:|---:|");
        results.sort((a, b) -> a.getParams().getParam("type").compareTo(b.getParams().getParam("type")));
        for (RunResult r : results) {
            GgmlType t = GgmlType.valueOf(r.getParams().getParam("type"));
            double us = r.getPrimaryResult().getScore();
            double gbs = DequantizeBenchmark.bytesPerOp(t) / (us * 1e3);
            double elements = (double) DequantizeBenchmark.bytesPerOp(t) / t.blockBytes() * t.blockSize();
            System.out.printf("| %s | %.2f | %.2f | %.2f |%n", t, gbs, elements * 4 / (us * 1e3), gbs / bandwidth);
        }
    }
}
