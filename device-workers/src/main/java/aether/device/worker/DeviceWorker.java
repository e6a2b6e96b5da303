package aether.device.worker;

import aether.device.spi.CompletionEvent;
import aether.device.spi.Device;
import aether.device.spi.DeviceBuffer;
import aether.device.spi.DeviceMemoryException;
import aether.device.spi.ResidentBuffers;
import aether.device.spi.SegmentExecutionException;
import aether.runtime.ir.Node;
import aether.runtime.memory.MemoryManager;
import aether.runtime.protocol.BufferId;
import aether.runtime.protocol.Location;
import aether.runtime.protocol.MemoryAction;
import aether.runtime.protocol.JobId;
import aether.runtime.protocol.SegmentEvent;
import aether.runtime.protocol.ServiceKeys;
import aether.runtime.protocol.TensorBytes;
import aether.runtime.protocol.TensorRef;
import aether.runtime.protocol.WorkerCapabilities;
import aether.runtime.protocol.WorkerCommand;
import aether.runtime.protocol.WorkerCommand.CancelSegment;
import aether.runtime.protocol.WorkerCommand.DescribeWorker;
import aether.runtime.protocol.WorkerCommand.ReleaseTensors;
import aether.runtime.protocol.WorkerCommand.RunSegment;
import aether.runtime.protocol.WorkerDescribed;
import aether.runtime.protocol.WorkerMessage;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import org.apache.pekko.actor.NoSerializationVerificationNeeded;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;

/**
 * Drives one {@link Device}: registers with the Receptionist under {@link ServiceKeys#WORKERS}, answers
 * {@link DescribeWorker} with its capabilities, and runs {@link RunSegment}s. Inputs on this node are read in place
 * from the {@link TensorStore} (zero copy); inputs elsewhere are fetched first. Outputs go into device buffers that
 * are put into the store under the scheduler's ids and freed on {@link ReleaseTensors}. The handler never waits:
 * fetches come back as messages ({@code pipeToSelf}); a finished segment is answered from the device's completion
 * callback (thread-safe work only) and then reported to the actor. A segment that fails is answered with a
 * {@link SegmentEvent.SegmentFailed} naming the node, and the worker keeps serving.
 *
 * <p>A device with its own memory (a GPU: {@link Device#residency()} not null) keeps copies between segments: the
 * outputs it produced stay on the device after being copied to host memory, and so do inputs it uploaded that the
 * memory manager booked there (its prefetch of the scheduler's hint). A segment whose input is held there reads that copy
 * and uploads nothing. The host copy in the store remains the tensor (other workers, nodes and clients read it), so a
 * device copy is only ever a cache: the worker subscribes to the node's memory manager and frees a copy the manager
 * evicts or invalidates at its location, frees it when the store releases the tensor, and, when an allocation does not
 * fit, frees least recently used copies no segment is reading. A copy a running segment reads is freed only after it.
 *
 * <p>The worker does not own the device or the store: whoever created them closes them after the worker stops.
 */
public final class DeviceWorker extends AbstractBehavior<WorkerMessage> {

    private record Key(JobId jobId, int segment) {}

    /** Inputs fetched from other nodes (or the reason they could not be). */
    private record InputsFetched(Key key, List<TensorStore.Entry> entries, Throwable error)
            implements WorkerMessage, NoSerializationVerificationNeeded {}

    /** An action of the memory manager; this worker carries out those at its device's location. */
    private record ResidencyUpdate(MemoryManager.ResidencyChanged changed)
            implements WorkerMessage, NoSerializationVerificationNeeded {}

    /** A segment between {@link RunSegment} and its answer. */
    private static final class Running {
        final RunSegment request;
        List<DeviceBuffer> outputs = List.of();
        /** Host copies of outputs that live in device-only memory (null for host-addressable outputs). */
        List<MemorySegment> hostCopies = List.of();
        List<DeviceBuffer> uploaded = List.of();
        /** The inputs behind {@link #uploaded}, in the same order. */
        List<TensorRef> uploadedRefs = List.of();
        /** Inputs read from the device's kept copies, released when the segment is done. */
        List<BufferId> acquired = List.of();
        volatile CompletionEvent event;
        volatile boolean cancelled;

        Running(RunSegment request) {
            this.request = request;
        }
    }

    private final WorkerCapabilities capabilities;
    private final Device device;
    private final TensorStore store;
    private final TensorFetcher fetcher;
    /** Segments between RunSegment and their answer; device threads remove the ones they finish. */
    private final Map<Key, Running> running = new ConcurrentHashMap<>();
    /** The device's kept copies, or null when it keeps none. */
    private final ResidentBuffers resident;
    /** The memory manager's name for the device's memory. */
    private final Location here;
    /** Buffers the memory manager booked a copy of at {@link #here} (prefetches): an upload of one is kept. */
    private final Set<BufferId> booked = ConcurrentHashMap.newKeySet();
    private final Consumer<BufferId> onRelease;

    /**
     * @param workerId unique in the cluster (e.g. {@code node-a/cpu-0})
     * @param device   the device to drive
     * @param store    this node's tensors; its node id is the worker's
     * @param fetcher  brings tensors from other nodes
     */
    public static Behavior<WorkerMessage> create(String workerId, Device device, TensorStore store,
            TensorFetcher fetcher) {
        return create(workerId, device, store, fetcher, null);
    }

    /**
     * A worker that also carries out {@code memory}'s evictions of its device's kept copies (when the device keeps
     * any; see the class comment).
     *
     * @param memory the node's memory manager, or null (kept copies are then freed only when their tensors are
     *               released or the device needs room)
     */
    public static Behavior<WorkerMessage> create(String workerId, Device device, TensorStore store,
            TensorFetcher fetcher, ActorRef<MemoryManager.Command> memory) {
        WorkerCapabilities capabilities = device.capabilities().forWorker(workerId, store.nodeId());
        return Behaviors.setup(context -> new DeviceWorker(context, capabilities, device, store, fetcher, memory));
    }

    private DeviceWorker(ActorContext<WorkerMessage> context, WorkerCapabilities capabilities, Device device,
            TensorStore store, TensorFetcher fetcher, ActorRef<MemoryManager.Command> memory) {
        super(context);
        this.capabilities = capabilities;
        this.device = device;
        this.store = store;
        this.fetcher = fetcher;
        this.resident = device.residency();
        this.here = Location.device(capabilities.ordinal());
        if (resident != null) {
            onRelease = id -> {
                booked.remove(id);
                resident.evict(id);
            };
            store.addReleaseListener(onRelease);
            if (memory != null) {
                memory.tell(new MemoryManager.Subscribe(
                        context.messageAdapter(MemoryManager.ResidencyChanged.class, ResidencyUpdate::new)));
            }
        } else {
            onRelease = null;
        }
        context.getSystem().receptionist().tell(Receptionist.register(ServiceKeys.WORKERS,
                context.getSelf().<WorkerCommand>narrow()));
    }

    @Override
    public Receive<WorkerMessage> createReceive() {
        return newReceiveBuilder()
                .onMessage(WorkerMessage.class, this::on)
                .onSignal(PostStop.class, stop -> onStop())
                .build();
    }

    private Behavior<WorkerMessage> on(WorkerMessage message) {
        return switch (message) {
            case WorkerCommand command -> switch (command) {
                case RunSegment run -> onRun(run);
                case CancelSegment cancel -> onCancel(cancel);
                case ReleaseTensors release -> onRelease(release);
                case DescribeWorker describe -> onDescribe(describe);
            };
            case InputsFetched fetched -> onFetched(fetched);
            case ResidencyUpdate update -> onResidency(update.changed().action());
            default -> Behaviors.unhandled();
        };
    }

    /** Carries out what the memory manager booked at this device: keep uploads it prefetched, free what it evicted. */
    private Behavior<WorkerMessage> onResidency(MemoryAction action) {
        if (resident == null || !action.location().equals(here)) {
            return this;
        }
        switch (action) {
            case MemoryAction.Prefetch prefetch -> booked.add(prefetch.bufferId());
            // COPY_TO_HOST_THEN_FREE needs no copy: every kept copy's bytes are in the store's host copy already (the
            // worker copies outputs back before keeping them), or the tensor was released and nobody reads it
            case MemoryAction.Evict evict -> {
                booked.remove(evict.bufferId());
                resident.evict(evict.bufferId());
            }
            case MemoryAction.Invalidate invalidate -> {
                booked.remove(invalidate.bufferId());
                resident.evict(invalidate.bufferId());
            }
        }
        return this;
    }

    private Behavior<WorkerMessage> onDescribe(DescribeWorker describe) {
        describe.replyTo().tell(new WorkerDescribed(getContext().getSelf().narrow(), capabilities));
        return this;
    }

    private Behavior<WorkerMessage> onRun(RunSegment run) {
        Key key = new Key(run.jobId(), run.segment().index());
        if (running.containsKey(key)) {
            getContext().getLog().warn("{} segment {} is already running on {}; duplicate ignored", run.jobId(),
                    key.segment(), capabilities.workerId());
            return this;
        }
        Running state = new Running(run);
        running.put(key, state);
        List<MemorySegment> local = new ArrayList<>(run.inputs().size());
        List<CompletableFuture<TensorStore.Entry>> remote = new ArrayList<>();
        for (TensorRef ref : run.inputs()) {
            if (ref.nodeId().equals(store.nodeId())) {
                MemorySegment bytes = store.get(ref);
                if (bytes == null) {
                    return fail(key, -1, "", "input " + ref + " is not held by node " + store.nodeId());
                }
                local.add(bytes);
            } else {
                try {
                    remote.add(fetcher.fetch(ref));
                } catch (RuntimeException e) {
                    remote.add(CompletableFuture.failedFuture(e));
                }
            }
        }
        if (remote.isEmpty()) {
            return start(key, state, local);
        }
        getContext().pipeToSelf(CompletableFuture.allOf(remote.toArray(CompletableFuture[]::new)),
                (ok, error) -> new InputsFetched(key, error == null ? remote.stream().map(CompletableFuture::join)
                        .toList() : List.of(), error));
        return this;
    }

    private Behavior<WorkerMessage> onFetched(InputsFetched fetched) {
        Running state = running.get(fetched.key());
        if (fetched.error() == null) {
            for (TensorStore.Entry e : fetched.entries()) {
                if (!store.putIfAbsent(e)) {
                    e.free().run();   // another segment fetched it first
                }
            }
        }
        if (state == null || state.cancelled) {
            running.remove(fetched.key());
            return this;
        }
        if (fetched.error() != null) {
            return fail(fetched.key(), -1, "", "fetching inputs failed: " + unwrap(fetched.error()).getMessage());
        }
        List<MemorySegment> inputs = new ArrayList<>();
        for (TensorRef ref : state.request.inputs()) {
            MemorySegment bytes = store.get(ref.nodeId().equals(store.nodeId()) ? ref : localCopy(ref));
            if (bytes == null) {
                return fail(fetched.key(), -1, "", "input " + ref + " is not held by node " + store.nodeId());
            }
            inputs.add(bytes);
        }
        return start(fetched.key(), state, inputs);
    }

    private TensorRef localCopy(TensorRef ref) {
        return new TensorRef(ref.id(), ref.version(), ref.type(), store.nodeId(), ref.location());
    }

    private Behavior<WorkerMessage> start(Key key, Running state, List<MemorySegment> inputs) {
        RunSegment run = state.request;
        List<DeviceBuffer> outputs = new ArrayList<>();
        List<DeviceBuffer> uploaded = new ArrayList<>();
        List<TensorRef> uploadedRefs = new ArrayList<>();
        List<BufferId> acquired = new ArrayList<>();
        List<DeviceBuffer> in = new ArrayList<>(inputs.size());
        try {
            for (int output : run.segment().graph().outputs()) {
                Node node = run.segment().graph().node(output);
                outputs.add(allocate(TensorBytes.byteSize(node.type())));
            }
            for (int i = 0; i < inputs.size(); i++) {
                MemorySegment host = inputs.get(i);
                TensorRef ref = run.inputs().get(i);
                DeviceBuffer view = device.importHost(host);
                if (view == null && resident != null) {
                    view = resident.acquire(ref.id(), ref.version());   // kept from an earlier segment: no upload
                    if (view != null) {
                        acquired.add(ref.id());
                    }
                }
                if (view == null) {
                    view = allocate(host.byteSize());
                    uploaded.add(view);
                    uploadedRefs.add(ref);
                    device.upload(host, view);   // ordered before the segment on the device's queue
                }
                in.add(view);
            }
        } catch (DeviceMemoryException e) {
            outputs.forEach(device::free);
            uploaded.forEach(device::free);
            acquired.forEach(id -> resident.release(id));   // not empty only with a resident set
            return fail(key, -1, "", e.getMessage());
        }
        state.outputs = outputs;
        state.uploaded = uploaded;
        state.uploadedRefs = uploadedRefs;
        state.acquired = acquired;
        state.event = device.submit(run.segment(), in, outputs);
        // Outputs in device-only memory (a GPU's) are copied to host memory once the segment is done (started from its
        // completion, so any device's ordering will do), and the store holds the host copy: segments on other workers
        // and the client read host tensors. A failed segment downloads nothing and its failure (naming the node) stands.
        CompletableFuture<?> done = state.event.stage().toCompletableFuture();
        List<MemorySegment> hostCopies = new ArrayList<>(outputs.size());
        boolean anyDeviceOnly = false;
        for (DeviceBuffer b : outputs) {
            MemorySegment host = null;
            if (b.host() == null) {
                host = java.lang.foreign.Arena.ofAuto().allocate(Math.max(b.byteSize(), 1), 64)
                        .asSlice(0, b.byteSize());
                anyDeviceOnly = true;
            }
            hostCopies.add(host);
        }
        state.hostCopies = hostCopies;
        if (anyDeviceOnly) {
            done = done.thenCompose(ok -> {
                List<CompletableFuture<Void>> downloads = new ArrayList<>();
                for (int i = 0; i < outputs.size(); i++) {
                    if (hostCopies.get(i) != null) {
                        downloads.add(device.download(outputs.get(i), hostCopies.get(i)).stage()
                                .toCompletableFuture());
                    }
                }
                return CompletableFuture.allOf(downloads.toArray(CompletableFuture[]::new));
            });
        }
        // The answer goes out from the device's thread as soon as the event completes: a hop through this actor's
        // mailbox first would add a thread wake-up to every segment's dispatch latency. What runs there is thread-safe
        // (the store, the device's free, tell, the concurrent map of running segments); no message comes back here.
        done.whenComplete((ok, error) -> {
            try {
                answer(state, error == null ? null : unwrap(error));
            } finally {
                running.remove(key, state);
            }
        });
        return this;
    }

    /**
     * Allocates device memory; when it does not fit, frees the device's least recently used kept copies that no segment
     * reads (their host copies stay in the store) and tries once more.
     */
    private DeviceBuffer allocate(long bytes) {
        try {
            return device.allocate(bytes);
        } catch (DeviceMemoryException e) {
            List<DeviceBuffer> room = resident == null ? List.of() : resident.takeUnused(bytes);
            if (room.isEmpty()) {
                throw e;
            }
            room.forEach(device::free);
            return device.allocate(bytes);
        }
    }

    /** Publishes the outputs and answers, or frees them; on the device's thread. */
    private void answer(Running state, Throwable error) {
        state.acquired.forEach(id -> resident.release(id));   // not empty only with a resident set
        boolean ok = error == null && !state.cancelled;
        for (int i = 0; i < state.uploaded.size(); i++) {
            DeviceBuffer buffer = state.uploaded.get(i);
            TensorRef ref = state.uploadedRefs.get(i);
            // an upload the memory manager booked here stays for later segments; any other is freed as before
            if (!(ok && resident != null && booked.contains(ref.id()) && store.entry(ref.id()) != null
                    && resident.adopt(ref.id(), ref.version(), buffer))) {
                device.free(buffer);
            }
        }
        RunSegment run = state.request;
        if (state.cancelled || error instanceof CancellationException) {
            state.outputs.forEach(device::free);
            return;
        }
        if (error != null) {
            state.outputs.forEach(device::free);
            int node = error instanceof SegmentExecutionException s ? s.node() : -1;
            String op = error instanceof SegmentExecutionException s ? s.op() : "";
            String message = error.getMessage() != null ? error.getMessage() : error.toString();
            run.replyTo().tell(new SegmentEvent.SegmentFailed(run.jobId(), run.segment().index(),
                    capabilities.workerId(), node, op, message));
            return;
        }
        List<TensorRef> refs = new ArrayList<>(state.outputs.size());
        List<Integer> outs = run.segment().graph().outputs();
        for (int i = 0; i < state.outputs.size(); i++) {
            DeviceBuffer buffer = state.outputs.get(i);
            MemorySegment copy = state.hostCopies.isEmpty() ? null : state.hostCopies.get(i);
            if (copy != null && !(resident != null && resident.adopt(run.outputIds().get(i), 0, buffer))) {
                device.free(buffer);   // downloaded: the host copy is the tensor from here on
            }
            TensorRef ref = new TensorRef(run.outputIds().get(i), 0, run.segment().graph().node(outs.get(i)).type(),
                    store.nodeId(), copy != null ? aether.runtime.protocol.Location.HOST : buffer.location());
            try {
                store.put(copy != null ? new TensorStore.Entry(ref, copy, () -> { })
                        : new TensorStore.Entry(ref, buffer.host(), () -> device.free(buffer)));
            } catch (IllegalArgumentException e) {
                if (resident != null) {
                    resident.evict(run.outputIds().get(i));
                }
                for (int j = i; j < state.outputs.size(); j++) {
                    device.free(state.outputs.get(j));
                }
                store.release(refs.stream().map(TensorRef::id).toList());
                fail(run, -1, "", e.getMessage());
                return;
            }
            refs.add(ref);
        }
        run.replyTo().tell(new SegmentEvent.SegmentCompleted(run.jobId(), run.segment().index(),
                capabilities.workerId(), refs, state.event.elapsedNanos()));
    }

    private Behavior<WorkerMessage> onCancel(CancelSegment cancel) {
        Running state = running.get(new Key(cancel.jobId(), cancel.segment()));
        if (state != null) {
            state.cancelled = true;
            if (state.event != null) {
                state.event.cancel();   // a segment already running finishes; its result is dropped
            }
        }
        return this;
    }

    private Behavior<WorkerMessage> onRelease(ReleaseTensors release) {
        store.release(release.ids());
        return this;
    }

    private Behavior<WorkerMessage> onStop() {
        if (onRelease != null) {
            store.removeReleaseListener(onRelease);
        }
        for (Running state : running.values()) {
            if (state.event != null) {
                state.event.cancel();
            }
        }
        return this;
    }

    private Behavior<WorkerMessage> fail(Key key, int node, String op, String message) {
        Running state = running.remove(key);
        return state == null ? this : fail(state.request, node, op, message);
    }

    private Behavior<WorkerMessage> fail(RunSegment run, int node, String op, String message) {
        run.replyTo().tell(new SegmentEvent.SegmentFailed(run.jobId(), run.segment().index(), capabilities.workerId(),
                node, op, message));
        return this;
    }

    private static Throwable unwrap(Throwable t) {
        while (t instanceof CompletionException && t.getCause() != null) {
            t = t.getCause();
        }
        return t;
    }
}
