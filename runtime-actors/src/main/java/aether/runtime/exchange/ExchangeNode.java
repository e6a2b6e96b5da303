package aether.runtime.exchange;

import io.aeron.Aeron;
import io.aeron.ExclusivePublication;
import io.aeron.Subscription;
import io.aeron.driver.MediaDriver;
import io.aeron.driver.ThreadingMode;
import io.aeron.exceptions.DriverTimeoutException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Objects;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.agrona.CloseHelper;
import org.agrona.ErrorHandler;
import org.agrona.concurrent.Agent;
import org.agrona.concurrent.AgentRunner;
import org.agrona.concurrent.AgentTerminationException;
import org.agrona.concurrent.BackoffIdleStrategy;
import org.agrona.concurrent.DynamicCompositeAgent;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A process's end of the buffer exchange: an Aeron client, optionally the embedded media driver it talks to, and one
 * agent thread ({@code aether-exchange}) that runs every sender and receiver of the node as a duty cycle. Create it
 * once per process, make senders and receivers from it, close it last: {@link #close} stops the agent thread (failing
 * transfers still in flight), then closes the client, then the driver, whose directory it deletes.
 *
 * <p>The embedded driver runs in {@link ThreadingMode#SHARED} (one thread for conductor, sender and receiver), which
 * is the right trade on small machines; a host with spare cores runs a dedicated external driver and uses
 * {@link #connect}. Thread-safe.
 */
public final class ExchangeNode implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(ExchangeNode.class);
    private static final String THREAD_NAME = "aether-exchange";

    private final ExchangeConfig config;
    private final MediaDriver driver;
    private final Aeron aeron;
    private final DynamicCompositeAgent agents;
    private final AgentRunner runner;
    private final Thread agentThread;
    private final AtomicLong errors = new AtomicLong();
    private volatile boolean closed;   // written under the monitor, read without it by ensureOpen
    private volatile boolean driverGone;

    private ExchangeNode(ExchangeConfig config, MediaDriver driver, String aeronDirectory) {
        this.config = config;
        this.driver = driver;
        Aeron client = null;
        AgentRunner started = null;
        try {
            client = Aeron.connect(new Aeron.Context().aeronDirectoryName(aeronDirectory).errorHandler(this::onError));
            this.agents = new DynamicCompositeAgent(THREAD_NAME);
            long maxIdleNs = config.maxIdle().toNanos();
            started = new AgentRunner(new BackoffIdleStrategy(10, 10, Math.min(1_000, maxIdleNs), maxIdleNs),
                    this::onError, null, agents);
            this.agentThread = AgentRunner.startOnThread(started, r -> {
                Thread t = new Thread(r, THREAD_NAME);
                t.setDaemon(true);   // close() stops it; daemon only so a forgotten node cannot keep the JVM alive
                return t;
            });
            while (agents.status() == DynamicCompositeAgent.Status.INIT) {
                Thread.onSpinWait();
            }
        } catch (RuntimeException e) {
            CloseHelper.quietCloseAll(started, client, driver);
            throw e;
        }
        this.aeron = client;
        this.runner = started;
    }

    /**
     * Starts an embedded media driver in a fresh directory ({@link ExchangeConfig#aeronDirectory()} or a unique one
     * under {@code /dev/shm}) and connects to it.
     */
    public static ExchangeNode launchEmbedded(ExchangeConfig config) {
        Objects.requireNonNull(config, "config");
        String dir = config.aeronDirectory() != null ? config.aeronDirectory() : uniqueDirectory();
        MediaDriver.Context ctx = new MediaDriver.Context()
                .aeronDirectoryName(dir)
                .threadingMode(ThreadingMode.SHARED)
                .sharedIdleStrategy(new BackoffIdleStrategy(10, 10, 1_000, config.maxIdle().toNanos()))
                .dirDeleteOnStart(true)
                .dirDeleteOnShutdown(true)
                .warnIfDirectoryExists(false);
        MediaDriver driver = MediaDriver.launchEmbedded(ctx);
        try {
            return new ExchangeNode(config.withAeronDirectory(driver.aeronDirectoryName()), driver,
                    driver.aeronDirectoryName());
        } catch (RuntimeException e) {
            driver.close();
            throw e;
        }
    }

    /** Connects to a media driver that already runs (another process's embedded one, or a standalone driver). */
    public static ExchangeNode connect(String aeronDirectory, ExchangeConfig config) {
        Objects.requireNonNull(aeronDirectory, "aeronDirectory");
        return new ExchangeNode(config.withAeronDirectory(aeronDirectory), null, aeronDirectory);
    }

    private static String uniqueDirectory() {
        Path shm = Path.of("/dev/shm");
        Path base = Files.isDirectory(shm) && Files.isWritable(shm) ? shm : Path.of(System.getProperty("java.io.tmpdir"));
        return base.resolve("aether-exchange-" + ProcessHandle.current().pid() + "-" + UUID.randomUUID()).toString();
    }

    /** The media driver's directory: what another process passes to {@link #connect}. */
    public String aeronDirectory() {
        return config.aeronDirectory();
    }

    /** Whether this node runs its own media driver. */
    public boolean embedded() {
        return driver != null;
    }

    /** The thread that runs every sender and receiver of this node (tests measure its allocations). */
    Thread agentThread() {
        return agentThread;
    }

    /** Errors reported by Aeron or thrown by an agent since the node started (each is logged). */
    public long errorCount() {
        return errors.get();
    }

    /**
     * A sender on its own exclusive publication to {@code channel}/{@code streamId}. Blocks briefly while the driver
     * sets the publication up: create senders at startup or off the actor threads.
     */
    public TensorSender newSender(String channel, int streamId) {
        return newAeronSender(channel, streamId);
    }

    AeronTensorSender newAeronSender(String channel, int streamId) {
        ensureOpen();
        ExclusivePublication publication = aeron.addExclusivePublication(channel, streamId);
        AeronTensorSender sender;
        try {
            sender = new AeronTensorSender(this, publication, config);
        } catch (RuntimeException e) {
            publication.close();
            throw e;
        }
        add(sender, publication);
        return sender;
    }

    /**
     * A receiver subscribed to {@code channel}/{@code streamId}; tensors that arrive before anybody expects them go
     * into {@code defaultAllocator}'s memory. Blocks briefly while the driver sets the subscription up.
     */
    public TensorReceiver newReceiver(String channel, int streamId, TensorAllocator defaultAllocator) {
        return newAeronReceiver(channel, streamId, defaultAllocator);
    }

    AeronTensorReceiver newAeronReceiver(String channel, int streamId, TensorAllocator defaultAllocator) {
        ensureOpen();
        AeronTensorReceiver receiver = new AeronTensorReceiver(this, channel, streamId, defaultAllocator, config);
        Subscription subscription = aeron.addSubscription(channel, streamId, image -> {},
                image -> receiver.onUnavailableImage(image.sessionId()));
        receiver.subscription(subscription);
        add(receiver, subscription);
        return receiver;
    }

    /**
     * Not synchronized on purpose: the agent thread must never wait for this node's monitor, whose holder (an add or
     * a remove on another thread) may itself be waiting for the agent thread.
     */
    private void ensureOpen() {
        if (Thread.currentThread() == agentThread) {    // adding waits for the agent thread: it would wait for itself
            throw new IllegalStateException("senders and receivers cannot be made on the exchange's own thread "
                    + "(from a future's inline continuation): use an *Async continuation");
        }
        if (closed) {
            throw new IllegalStateException("exchange node on " + aeronDirectory() + " is closed");
        }
    }

    private void add(Agent agent, AutoCloseable resource) {
        if (Thread.currentThread() == agentThread) {    // it would wait for itself
            CloseHelper.quietClose(resource);
            throw new IllegalStateException("senders and receivers cannot be made on the exchange's own thread "
                    + "(from a future's inline continuation): use an *Async continuation");
        }
        synchronized (this) {
            if (closed) {
                CloseHelper.quietClose(resource);
                throw new IllegalStateException("exchange node on " + aeronDirectory() + " is closed");
            }
            while (!agents.tryAdd(agent)) {
                Thread.onSpinWait();
            }
            while (!agents.hasAddAgentCompleted()) {
                Thread.yield();
            }
        }
    }

    /**
     * Takes an agent off the duty cycle and waits until its onClose has run on the agent thread (at once if the node
     * is closed: closing the node closed it). Called on the agent thread itself (a continuation closing a sender), it
     * cannot wait for itself, so another thread does the removal.
     */
    void remove(Agent agent) {
        if (Thread.currentThread() == agentThread) {
            CompletableFuture.runAsync(() -> remove(agent));
            return;
        }
        synchronized (this) {
            if (closed || runner.isClosed()) {
                return;
            }
            while (!agents.tryRemove(agent)) {
                Thread.onSpinWait();
            }
            while (!agents.hasRemoveAgentCompleted()) {
                Thread.yield();
            }
        }
    }

    private void onError(Throwable error) {
        if (driver == null && (error instanceof DriverTimeoutException
                || (driverGone && error instanceof AgentTerminationException))) {
            // a client of another process's driver: that process stopped (or died). Expected when a peer node
            // leaves; transfers through this client fail on their own (closed publication, unavailable image).
            if (!driverGone) {
                driverGone = true;
                LOG.info("exchange node {}: the media driver went away ({}); this client is closed",
                        aeronDirectory(), error.getMessage());
            }
            return;
        }
        errors.incrementAndGet();
        LOG.error("exchange node {}: {}", aeronDirectory(), error.toString(), error);
    }

    /** True once the (other process's) media driver this client connected to has gone away. */
    public boolean driverGone() {
        return driverGone;
    }

    /** Stops the agent thread (failing transfers in flight), then closes the Aeron client and the embedded driver. */
    @Override
    public void close() {
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
        }
        CloseHelper.closeAll(runner, aeron, driver);
        try {
            agentThread.join(TimeUnit.SECONDS.toMillis(10));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
