package aether.llm.engine.cuda;

import aether.runtime.memory.MemoryManager;
import aether.runtime.protocol.BufferId;
import aether.runtime.protocol.BufferOrigin;
import aether.runtime.protocol.Location;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Function;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.AskPattern;

/**
 * A GPU model's device memory booked with a node's {@link MemoryManager}: each region (the weights, the KV cache, a
 * split model's hand-over buffers) is registered as resident on the device and pinned for as long as the model is
 * open, so the manager counts it against the device's budget and never evicts it: the weights are uploaded once and
 * stay, and the KV cache and activations have no other copy. {@link #close()} unpins and frees them.
 *
 * <p>The manager only keeps the books; the model allocated the memory itself and frees it on close (close this first,
 * or together). Buffer ids are random negative longs, as {@code ComputeClient} takes them, so they do not meet the
 * scheduler's counter.
 */
public final class DeviceMemoryRegistration implements AutoCloseable {

    /** One piece of device memory: what it is (for messages), its size, and whether a file backs it (weights). */
    public record Region(String name, long bytes, BufferOrigin origin) {
        public Region {
            if (bytes < 0) {
                throw new IllegalArgumentException("region '" + name + "' of " + bytes + " bytes (expected 0+)");
            }
        }
    }

    private final ActorRef<MemoryManager.Command> manager;
    private final ActorSystem<?> system;
    private final Duration timeout;
    private final List<BufferId> booked = new ArrayList<>();
    private boolean closed;

    private DeviceMemoryRegistration(ActorRef<MemoryManager.Command> manager, ActorSystem<?> system, Duration timeout) {
        this.manager = manager;
        this.system = system;
        this.timeout = timeout;
    }

    /**
     * Registers and pins {@code regions} as resident on CUDA device {@code ordinal}, waiting for each answer.
     *
     * @throws IllegalStateException when the manager refuses one (the message names the region and the reason; the
     *                               regions booked before it are released) or does not answer within {@code timeout}
     */
    public static DeviceMemoryRegistration register(ActorRef<MemoryManager.Command> manager, ActorSystem<?> system,
            int ordinal, List<Region> regions, Duration timeout) {
        var r = new DeviceMemoryRegistration(manager, system, timeout);
        Location device = Location.device(ordinal);
        try {
            for (Region region : regions) {
                BufferId id = new BufferId(ThreadLocalRandom.current().nextLong() | Long.MIN_VALUE);
                r.ask(region, reply -> new MemoryManager.Register(id, region.bytes(), region.origin(),
                        Set.of(device), reply));
                r.booked.add(id);   // freed on failure from here on
                r.ask(region, reply -> new MemoryManager.Pin(id, reply));
            }
        } catch (RuntimeException e) {
            r.close();
            throw e;
        }
        return r;
    }

    private void ask(Region region, Function<ActorRef<MemoryManager.Ack>, MemoryManager.Command> message) {
        MemoryManager.Ack ack;
        try {
            ack = AskPattern.ask(manager, message::apply, timeout, system.scheduler()).toCompletableFuture().join();
        } catch (CompletionException e) {
            throw new IllegalStateException("memory manager did not book device region '" + region.name() + "' ("
                    + region.bytes() + " bytes) within " + timeout.toMillis() + " ms: " + e.getCause(), e);
        }
        if (ack instanceof MemoryManager.Refused refused) {
            throw new IllegalStateException("memory manager refused device region '" + region.name() + "' ("
                    + region.bytes() + " bytes): " + refused.reason());
        }
    }

    /** Buffers booked now (one per region). */
    public List<BufferId> bufferIds() {
        return List.copyOf(booked);
    }

    /** Unpins and frees every booked region (the manager forgets them); idempotent. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        for (BufferId id : booked) {
            manager.tell(new MemoryManager.Unpin(id));
            manager.tell(new MemoryManager.Free(id, system.ignoreRef()));
        }
        booked.clear();
    }
}
