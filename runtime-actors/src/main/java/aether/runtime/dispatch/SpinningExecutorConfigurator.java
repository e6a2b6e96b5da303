package aether.runtime.dispatch;

import com.typesafe.config.Config;
import java.time.Duration;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.ThreadFactory;
import org.apache.pekko.dispatch.DispatcherPrerequisites;
import org.apache.pekko.dispatch.ExecutorServiceConfigurator;
import org.apache.pekko.dispatch.ExecutorServiceFactory;

/**
 * Lets a Pekko dispatcher run on a {@link SpinningExecutorService}:
 * {@code executor = "aether.runtime.dispatch.SpinningExecutorConfigurator"} with a {@code spinning-executor} block
 * ({@code threads}, {@code spin}); see {@code aether.compute-dispatcher} in runtime-actors' reference.conf.
 */
public final class SpinningExecutorConfigurator extends ExecutorServiceConfigurator {

    private final int threads;
    private final Duration spin;

    public SpinningExecutorConfigurator(Config config, DispatcherPrerequisites prerequisites) {
        super(config, prerequisites);
        Config own = config.getConfig("spinning-executor");
        this.threads = own.getInt("threads");
        this.spin = own.getDuration("spin");
        if (threads < 1 || spin.isNegative()) {
            throw new IllegalArgumentException("spinning-executor: threads = " + threads + ", spin = " + spin
                    + " (expected: threads 1+, spin 0 or more)");
        }
    }

    @Override
    public ExecutorServiceFactory createExecutorServiceFactory(String id, ThreadFactory threadFactory) {
        return new ExecutorServiceFactory() {
            @Override
            public ExecutorService createExecutorService() {
                return new SpinningExecutorService(threads, spin, threadFactory);
            }
        };
    }
}
