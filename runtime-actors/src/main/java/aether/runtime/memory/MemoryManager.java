package aether.runtime.memory;

import aether.runtime.protocol.BufferId;
import aether.runtime.protocol.BufferOrigin;
import aether.runtime.protocol.CborSerializable;
import aether.runtime.protocol.Location;
import aether.runtime.protocol.MemoryAction;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
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
 * counted in {@link MemoryState#refusedRequests()}.
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

    private final BufferRegistry registry;
    private final Set<ActorRef<ResidencyChanged>> subscribers = new LinkedHashSet<>();

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
            register.replyTo().tell(new Refused(register.bufferId(), e.getMessage()));
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
        try {
            registry.pin(pin.bufferId());
            pin.replyTo().tell(new Confirmed(pin.bufferId()));
        } catch (MemoryRequestException e) {
            pin.replyTo().tell(new Refused(pin.bufferId(), e.getMessage()));
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
            write.replyTo().tell(new Refused(write.bufferId(), e.getMessage()));
        }
        return this;
    }

    private Behavior<Command> onFree(Free free) {
        try {
            registry.free(free.bufferId());
            free.replyTo().tell(new Confirmed(free.bufferId()));
        } catch (MemoryRequestException e) {
            free.replyTo().tell(new Refused(free.bufferId(), e.getMessage()));
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
        get.replyTo().tell(registry.snapshot());
        return this;
    }

    private Behavior<Command> onSubscribe(Subscribe subscribe) {
        if (subscribers.add(subscribe.subscriber())) {
            getContext().watchWith(subscribe.subscriber(), new SubscriberTerminated(subscribe.subscriber()));
        }
        return this;
    }

    private Behavior<Command> onUnsubscribe(ActorRef<ResidencyChanged> subscriber) {
        if (subscribers.remove(subscriber)) {
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
