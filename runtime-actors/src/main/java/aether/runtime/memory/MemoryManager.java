package aether.runtime.memory;

import aether.runtime.protocol.BufferId;
import aether.runtime.protocol.BufferOrigin;
import aether.runtime.protocol.CborSerializable;
import aether.runtime.protocol.Location;
import aether.runtime.protocol.MemoryAction;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.pekko.actor.NoSerializationVerificationNeeded;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;

/**
 * Owns one node's {@link BufferRegistry}: which copies of which buffers live where, budgets, pins and LRU eviction.
 * It never touches bytes: every eviction, prefetch or invalidation it books is published as a {@link ResidencyChanged}
 * to subscribers (the workers that own the locations carry them out) and, for allocations, also listed in the grant.
 * Handlers only do bookkeeping, so nothing here blocks. Invalid requests are answered with {@link Refused} or
 * {@link AllocateReply.Rejected} and the actor keeps serving; fire-and-forget requests that are invalid are logged and
 * counted in {@link MemoryState#refusedRequests()}, as are refusals of requests whose {@code replyTo} is the system's
 * {@code ignoreRef()} (a sender that wants no acknowledgement, e.g. the scheduler on its dispatch path).
 *
 * <p>Workers die (their process is killed, their node leaves the cluster). Pins taken for a worker ({@link PinFor}) and
 * buffers whose only copy a worker holds ({@link Track}) are tied to it: the manager watches the worker and, when it
 * terminates, releases its pins itself and declares its buffers lost; a later pin of a lost buffer is refused with a
 * message naming the buffer and the worker. So nothing stays pinned, or counted, for a worker that will never answer,
 * whether or not the scheduler that took the pins is still there to release them.
 */
public final class MemoryManager extends AbstractBehavior<MemoryManager.Command> {

    public sealed interface Command extends CborSerializable {}

    /** A buffer that already exists at {@code residency} (empty only for an unmapped weight). Answers {@link Ack}. */
    public record Register(
            BufferId bufferId, long sizeBytes, BufferOrigin origin, Set<Location> residency, ActorRef<Ack> replyTo)
            implements Command {}

    /** A use of the buffer at {@code location}: counts a hit or miss and makes it most recently used. */
    public record Touch(BufferId bufferId, Location location) implements Command {}

    /** Pins the buffer for an in-flight use: its copies are not evicted until the matching {@link Unpin}. */
    public record Pin(BufferId bufferId, ActorRef<Ack> replyTo) implements Command {}

    public record Unpin(BufferId bufferId) implements Command {}

    /**
     * Pins the buffer for a use by {@code holder} (the worker reading it). Released by the matching {@link UnpinFor},
     * or by the manager when {@code holder} terminates. Answers {@link Ack}.
     */
    public record PinFor(BufferId bufferId, ActorRef<?> holder, ActorRef<Ack> replyTo) implements Command {}

    /** Releases one pin {@code holder} holds; ignored when the manager already released it (the holder died). */
    public record UnpinFor(BufferId bufferId, ActorRef<?> holder) implements Command {}

    /**
     * A buffer of this node's jobs whose only copy lives in {@code holder}'s memory on another node: outside this
     * node's budgets, but known, so that it is declared lost when {@code holder} terminates. {@link Free} forgets it.
     */
    public record Track(BufferId bufferId, long sizeBytes, ActorRef<?> holder) implements Command {}

    private record HolderTerminated(ActorRef<?> holder) implements Command {}

    /**
     * Several requests from one sender, handled in order as if sent one by one: a scheduler books everything one
     * segment's dispatch or completion changes in one message, so the manager runs once per segment event. Sent only
     * within a node (the manager is the node's own), so it is never serialized.
     */
    public record Batch(List<Command> commands) implements Command, NoSerializationVerificationNeeded {
        public Batch {
            commands = List.copyOf(commands);
        }
    }

    /**
     * Books {@code sizeBytes} at {@code location} for a new buffer or a new copy of a known one; {@code pin} also pins
     * it on grant. Answers {@link AllocateReply.Granted} or {@link AllocateReply.Rejected}. For an upload, allocate
     * with {@code pin} and unpin when the transfer is done: the grant never evicts the buffer's other copies (they are
     * the transfer's source); the last unpin rebalances every location the buffer is at.
     */
    public record Allocate(
            BufferId bufferId,
            BufferOrigin origin,
            long sizeBytes,
            Location location,
            boolean pin,
            ActorRef<AllocateReply> replyTo) implements Command {}

    /** The buffer was written at {@code location}: other copies are stale and get invalidated. Answers {@link Ack}. */
    public record RecordWrite(BufferId bufferId, Location location, ActorRef<Ack> replyTo) implements Command {}

    /** Forgets the buffer (refused while pinned). Answers {@link Ack}. */
    public record Free(BufferId bufferId, ActorRef<Ack> replyTo) implements Command {}

    /** The scheduler expects these buffers to be used at {@code location} soon. */
    public record PrefetchHint(List<BufferId> bufferIds, Location location) implements Command {
        public PrefetchHint {
            bufferIds = List.copyOf(bufferIds);
        }
    }

    public record SetBudget(Location location, long budgetBytes) implements Command {}

    public record GetState(ActorRef<MemoryState> replyTo) implements Command {}

    /** {@code subscriber} gets a {@link ResidencyChanged} for every action booked from now on, until it stops. */
    public record Subscribe(ActorRef<ResidencyChanged> subscriber) implements Command {}

    public record Unsubscribe(ActorRef<ResidencyChanged> subscriber) implements Command {}

    private record SubscriberTerminated(ActorRef<ResidencyChanged> subscriber) implements Command {}

    /** The answer to requests that change one buffer. */
    public sealed interface Ack extends CborSerializable {}

    public record Confirmed(BufferId bufferId) implements Ack {}

    /** Nothing changed; {@code reason} names what was wrong. */
    public record Refused(BufferId bufferId, String reason) implements Ack {}

    /**
     * An action booked by the manager, for the worker owning {@code action.location()} to carry out.
     *
     * @param version   the buffer's version the action is about
     * @param residency where current copies are once every action of the same request is done
     */
    public record ResidencyChanged(MemoryAction action, long version, Set<Location> residency)
            implements CborSerializable {}

    /** Lost buffers remembered for refusals, at most this many (the oldest forgotten first). */
    static final int MAX_LOST_REMEMBERED = 4096;

    private record Held(long sizeBytes, ActorRef<?> holder) {}

    private final BufferRegistry registry;
    private final Set<ActorRef<ResidencyChanged>> subscribers = new LinkedHashSet<>();
    /** holder → buffer → pins taken for it. */
    private final Map<ActorRef<?>, Map<BufferId, Integer>> pinsByHolder = new HashMap<>();
    private final Map<BufferId, Held> held = new HashMap<>();
    private final Map<ActorRef<?>, Set<BufferId>> heldBy = new HashMap<>();
    private final Set<ActorRef<?>> watchedHolders = new HashSet<>();
    private final Map<BufferId, String> lost = new LinkedHashMap<>(16, 0.75f, false) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<BufferId, String> eldest) {
            return size() > MAX_LOST_REMEMBERED;
        }
    };
    private long heldBytes;
    private long lostBuffers;
    private long reclaimedPins;

    /**
     * A manager whose locations have these soft limits in bytes (host memory is unlimited unless listed). Each spawn
     * (and restart) starts from an empty registry.
     *
     * @throws IllegalArgumentException on a negative limit, here rather than when spawned
     */
    public static Behavior<Command> create(Map<Location, Long> budgetBytes) {
        Map<Location, Long> budgets = Map.copyOf(budgetBytes);
        new BufferRegistry(budgets);   // validates now
        return Behaviors.setup(context -> new MemoryManager(context, new BufferRegistry(budgets)));
    }

    private MemoryManager(ActorContext<Command> context, BufferRegistry registry) {
        super(context);
        this.registry = registry;
    }

    @Override
    public Receive<Command> createReceive() {
        return newReceiveBuilder().onMessage(Command.class, this::on).build();
    }

    private Behavior<Command> on(Command message) {
        return switch (message) {
            case Register register -> onRegister(register);
            case Touch touch -> onTouch(touch);
            case Pin pin -> onPin(pin);
            case Unpin unpin -> onUnpin(unpin);
            case PinFor pin -> onPinFor(pin);
            case UnpinFor unpin -> onUnpinFor(unpin);
            case Track track -> onTrack(track);
            case HolderTerminated terminated -> onHolderTerminated(terminated.holder());
            case Batch batch -> {
                for (Command command : batch.commands()) {
                    on(command);
                }
                yield this;
            }
            case Allocate allocate -> onAllocate(allocate);
            case RecordWrite write -> onWrite(write);
            case Free free -> onFree(free);
            case PrefetchHint hint -> onPrefetchHint(hint);
            case SetBudget budget -> onSetBudget(budget);
            case GetState get -> onGetState(get);
            case Subscribe subscribe -> onSubscribe(subscribe);
            case Unsubscribe unsubscribe -> onUnsubscribe(unsubscribe.subscriber());
            case SubscriberTerminated terminated -> onUnsubscribe(terminated.subscriber());
        };
    }

    private Behavior<Command> onRegister(Register register) {
        try {
            publish(registry.register(register.bufferId(), register.sizeBytes(), register.origin(),
                    register.residency()));
            register.replyTo().tell(new Confirmed(register.bufferId()));
        } catch (MemoryRequestException e) {
            refuse(register.replyTo(), new Refused(register.bufferId(), e.getMessage()));
        }
        return this;
    }

    private Behavior<Command> onTouch(Touch touch) {
        try {
            registry.touch(touch.bufferId(), touch.location());
        } catch (MemoryRequestException e) {
            getContext().getLog().warn("Touch refused: {}", e.getMessage());
        }
        return this;
    }

    private Behavior<Command> onPin(Pin pin) {
        if (refuseLost(pin.bufferId(), pin.replyTo())) {
            return this;
        }
        try {
            registry.pin(pin.bufferId());
            pin.replyTo().tell(new Confirmed(pin.bufferId()));
        } catch (MemoryRequestException e) {
            refuse(pin.replyTo(), new Refused(pin.bufferId(), e.getMessage()));
        }
        return this;
    }

    private Behavior<Command> onUnpin(Unpin unpin) {
        try {
            publish(registry.unpin(unpin.bufferId()));
        } catch (MemoryRequestException e) {
            getContext().getLog().warn("Unpin refused: {}", e.getMessage());
        }
        return this;
    }

    private Behavior<Command> onPinFor(PinFor pin) {
        if (refuseLost(pin.bufferId(), pin.replyTo())) {
            return this;
        }
        try {
            registry.pin(pin.bufferId());
        } catch (MemoryRequestException e) {
            refuse(pin.replyTo(), new Refused(pin.bufferId(), e.getMessage()));
            return this;
        }
        watch(pin.holder());
        pinsByHolder.computeIfAbsent(pin.holder(), h -> new HashMap<>()).merge(pin.bufferId(), 1, Integer::sum);
        pin.replyTo().tell(new Confirmed(pin.bufferId()));
        return this;
    }

    private Behavior<Command> onUnpinFor(UnpinFor unpin) {
        Map<BufferId, Integer> pins = pinsByHolder.get(unpin.holder());
        Integer count = pins == null ? null : pins.get(unpin.bufferId());
        if (count == null) {
            // released when the holder terminated (or never taken): nothing is pinned for it any more
            getContext().getLog().debug("UnpinFor {} by {}: no pin held", unpin.bufferId(), unpin.holder());
            return this;
        }
        if (count == 1) {
            pins.remove(unpin.bufferId());
            if (pins.isEmpty()) {
                pinsByHolder.remove(unpin.holder());
            }
        } else {
            pins.put(unpin.bufferId(), count - 1);
        }
        try {
            publish(registry.unpin(unpin.bufferId()));
        } catch (MemoryRequestException e) {
            getContext().getLog().warn("UnpinFor refused: {}", e.getMessage());
        }
        return this;
    }

    private Behavior<Command> onTrack(Track track) {
        if (track.sizeBytes() < 0 || track.sizeBytes() > BufferRegistry.MAX_BUFFER_BYTES) {
            getContext().getLog().warn("Track {}: size {} (expected: 0..{})", track.bufferId(), track.sizeBytes(),
                    BufferRegistry.MAX_BUFFER_BYTES);
            return this;
        }
        Held previous = held.put(track.bufferId(), new Held(track.sizeBytes(), track.holder()));
        if (previous != null) {
            untrack(track.bufferId(), previous);
            held.put(track.bufferId(), new Held(track.sizeBytes(), track.holder()));
        }
        heldBytes += track.sizeBytes();
        heldBy.computeIfAbsent(track.holder(), h -> new HashSet<>()).add(track.bufferId());
        watch(track.holder());
        return this;
    }

    private void untrack(BufferId id, Held entry) {
        heldBytes -= entry.sizeBytes();
        Set<BufferId> ids = heldBy.get(entry.holder());
        if (ids != null && ids.remove(id) && ids.isEmpty()) {
            heldBy.remove(entry.holder());
        }
    }

    private void watch(ActorRef<?> holder) {
        if (watchedHolders.add(holder) && !subscribers.contains(holder)) {
            getContext().watchWith(holder, new HolderTerminated(holder));
        }
    }

    /**
     * {@code holder} terminated: the pins taken for it are released (it will never read those buffers) and the buffers
     * only it held are lost.
     */
    private Behavior<Command> onHolderTerminated(ActorRef<?> holder) {
        watchedHolders.remove(holder);
        subscribers.remove(holder);
        int released = 0;
        Map<BufferId, Integer> pins = pinsByHolder.remove(holder);
        if (pins != null) {
            for (Map.Entry<BufferId, Integer> pin : pins.entrySet()) {
                for (int i = 0; i < pin.getValue(); i++) {
                    try {
                        publish(registry.unpin(pin.getKey()));
                        released++;
                    } catch (MemoryRequestException e) {
                        getContext().getLog().warn("releasing a pin of terminated {}: {}", holder, e.getMessage());
                    }
                }
            }
        }
        reclaimedPins += released;
        Set<BufferId> ids = heldBy.remove(holder);
        int gone = 0;
        if (ids != null) {
            for (BufferId id : ids) {
                Held entry = held.remove(id);
                if (entry != null) {
                    heldBytes -= entry.sizeBytes();
                    lost.put(id, "%s is lost: its only copy (%d bytes) was held by worker %s, which terminated"
                            .formatted(id, entry.sizeBytes(), holder.path()));
                    gone++;
                }
            }
        }
        lostBuffers += gone;
        if (released > 0 || gone > 0) {
            getContext().getLog().warn("worker {} terminated: released {} pins taken for it, {} buffers it held are lost",
                    holder.path(), released, gone);
        }
        return this;
    }

    /** Answers a refusal; one nobody will read (sent to the ignore ref) is logged instead. */
    private void refuse(ActorRef<Ack> replyTo, Refused refused) {
        if (replyTo.equals(getContext().getSystem().ignoreRef())) {
            getContext().getLog().warn("refused a request for {}: {}", refused.bufferId(), refused.reason());
        } else {
            replyTo.tell(refused);
        }
    }

    /** Answers a request for a lost buffer with the reason it is lost; false when the buffer is not lost. */
    private boolean refuseLost(BufferId id, ActorRef<Ack> replyTo) {
        String why = lost.get(id);
        if (why == null) {
            return false;
        }
        refuse(replyTo, new Refused(id, why));
        return true;
    }

    private Behavior<Command> onAllocate(Allocate allocate) {
        AllocateReply reply = registry.allocate(allocate.bufferId(), allocate.origin(), allocate.sizeBytes(),
                allocate.location(), allocate.pin());
        if (reply instanceof AllocateReply.Granted granted) {
            publish(granted.evictions());
        }
        allocate.replyTo().tell(reply);
        return this;
    }

    private Behavior<Command> onWrite(RecordWrite write) {
        try {
            publish(registry.written(write.bufferId(), write.location()));
            write.replyTo().tell(new Confirmed(write.bufferId()));
        } catch (MemoryRequestException e) {
            refuse(write.replyTo(), new Refused(write.bufferId(), e.getMessage()));
        }
        return this;
    }

    private Behavior<Command> onFree(Free free) {
        Held entry = held.remove(free.bufferId());
        if (entry != null) {
            untrack(free.bufferId(), entry);
            free.replyTo().tell(new Confirmed(free.bufferId()));
            return this;
        }
        if (lost.remove(free.bufferId()) != null) {
            free.replyTo().tell(new Confirmed(free.bufferId()));   // its owner lets go of it too
            return this;
        }
        try {
            registry.free(free.bufferId());
            free.replyTo().tell(new Confirmed(free.bufferId()));
        } catch (MemoryRequestException e) {
            refuse(free.replyTo(), new Refused(free.bufferId(), e.getMessage()));
        }
        return this;
    }

    private Behavior<Command> onPrefetchHint(PrefetchHint hint) {
        try {
            publish(registry.prefetch(hint.bufferIds(), hint.location()));
        } catch (MemoryRequestException e) {
            getContext().getLog().warn("Prefetch hint dropped: {}", e.getMessage());
        }
        return this;
    }

    private Behavior<Command> onSetBudget(SetBudget budget) {
        try {
            publish(registry.setBudget(budget.location(), budget.budgetBytes()));
        } catch (MemoryRequestException e) {
            getContext().getLog().warn("SetBudget refused: {}", e.getMessage());
        }
        return this;
    }

    private Behavior<Command> onGetState(GetState get) {
        get.replyTo().tell(registry.snapshot().withHolders(held.size(), heldBytes, lostBuffers, reclaimedPins));
        return this;
    }

    private Behavior<Command> onSubscribe(Subscribe subscribe) {
        // one watch per actor: a worker that holds pins and also subscribes is watched as a holder
        if (subscribers.add(subscribe.subscriber()) && !watchedHolders.contains(subscribe.subscriber())) {
            getContext().watchWith(subscribe.subscriber(), new SubscriberTerminated(subscribe.subscriber()));
        }
        return this;
    }

    private Behavior<Command> onUnsubscribe(ActorRef<ResidencyChanged> subscriber) {
        if (subscribers.remove(subscriber) && !watchedHolders.contains(subscriber)) {
            getContext().unwatch(subscriber);
        }
        return this;
    }

    private void publish(List<MemoryAction> actions) {
        for (MemoryAction action : actions) {
            BufferRecord buffer = registry.record(action.bufferId());
            ResidencyChanged changed = new ResidencyChanged(action, buffer.version(), buffer.residency());
            for (ActorRef<ResidencyChanged> subscriber : subscribers) {
                subscriber.tell(changed);
            }
        }
    }
}
