package aether.scheduler.actor;

import aether.device.worker.TensorFetcher;
import aether.device.worker.TensorStore;
import aether.runtime.ir.Node;
import aether.runtime.ir.Op;
import aether.runtime.ir.OpGraph;
import aether.runtime.ir.TensorType;
import aether.runtime.memory.MemoryManager;
import aether.runtime.protocol.BufferId;
import aether.runtime.protocol.BufferOrigin;
import aether.runtime.protocol.DeviceKind;
import aether.runtime.protocol.JobCommand;
import aether.runtime.protocol.JobCommand.CancelJob;
import aether.runtime.protocol.JobCommand.GetSchedulerState;
import aether.runtime.protocol.JobCommand.SubmitJob;
import aether.runtime.protocol.JobId;
import aether.runtime.protocol.JobInput;
import aether.runtime.protocol.JobOptions;
import aether.runtime.protocol.JobReply;
import aether.runtime.protocol.JobReply.JobFailed;
import aether.runtime.protocol.JobReply.JobFailed.Reason;
import aether.runtime.protocol.JobStats;
import aether.runtime.protocol.Location;
import aether.runtime.protocol.SchedulerMessage;
import aether.runtime.protocol.SchedulerState;
import aether.runtime.protocol.SegmentEvent;
import aether.runtime.protocol.SegmentEvent.SegmentCompleted;
import aether.runtime.protocol.SegmentEvent.SegmentFailed;
import aether.runtime.protocol.ServiceKeys;
import aether.runtime.protocol.TensorPayload;
import aether.runtime.protocol.TensorRef;
import aether.runtime.protocol.WorkerCapabilities;
import aether.runtime.protocol.WorkerCommand;
import aether.runtime.protocol.WorkerDescribed;
import aether.runtime.transfer.NodeIds;
import aether.scheduler.exec.StorageFormat;
import aether.scheduler.exec.TensorValue;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ThreadLocalRandom;
import org.apache.pekko.actor.NoSerializationVerificationNeeded;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import org.apache.pekko.actor.typed.receptionist.Receptionist;

/**
 * Runs compute jobs on the device workers it finds through the Receptionist ({@link ServiceKeys#WORKERS}).
 *
 * <p>A {@link SubmitJob} is checked (every input bound with its exact type), compiled and split into segments
 * ({@link JobPlanner}). A segment whose inputs are all available is placed on a worker that can run it (its op kinds,
 * dtypes and memory), preferring the worker that produced its largest input and otherwise the least loaded, and
 * queued there. Each worker runs at most its {@code concurrency} segments at once; a CPU worker with a free slot and an
 * empty queue steals the newest queued segment of a busy CPU worker on the same node. Tensors stay where they are
 * produced: messages carry {@link TensorRef}s, and on one node the next segment reads the same buffer from the
 * {@link TensorStore}. Every buffer is registered with the memory manager, pinned while a segment reads it, and freed
 * (store and manager) once no remaining segment reads it and it is not a job output.
 *
 * <p>Exactly one {@link JobReply} answers each job: its outputs, or a failure naming the segment, node and op that
 * failed, the deadline that passed, or the worker that was lost; {@link CancelJob} answers the submitter with
 * {@link JobReply.JobCancelled}. Handlers only do bookkeeping and send messages: nothing blocks.
 */
public final class Scheduler extends AbstractBehavior<SchedulerMessage> {

    /** A segment bigger than this many bytes of inputs from another node costs as much as one queued segment. */
    static final long REMOTE_BYTES_PER_SEGMENT = 1L << 20;
    /** How many queued segments the worker holding a segment's largest input may have beyond the least loaded one. */
    static final int LOCALITY_SLACK = 2;
    /**
     * Outputs larger than this go to a client on another node as references its node pulls over the tensor exchange
     * (Artery's frames are 256 KiB; a large tensor never rides in an actor message).
     */
    public static final long REMOTE_INLINE_LIMIT_BYTES = 64 * 1024;
    /** How long outputs sent by reference wait for the client's {@code ReleaseOutputs} before they are freed anyway. */
    static final Duration OUTPUT_RETENTION = Duration.ofMinutes(2);
    /** Job plans kept for replay (least recently used dropped first). */
    static final int MAX_CACHED_PLANS = 64;

    private record PlanKey(OpGraph graph, JobOptions.Granularity granularity, int maxGroupsPerSegment) {}

    private record WorkersListed(Set<ActorRef<WorkerCommand>> workers)
            implements SchedulerMessage, NoSerializationVerificationNeeded {}

    private record WorkerStopped(ActorRef<WorkerCommand> worker)
            implements SchedulerMessage, NoSerializationVerificationNeeded {}

    private record DeadlineReached(JobId jobId) implements SchedulerMessage, NoSerializationVerificationNeeded {}

    private record RetentionExpired(JobId jobId) implements SchedulerMessage, NoSerializationVerificationNeeded {}

    /** Timer key of a job's output retention (the deadline timer is keyed by the job id). */
    private record RetentionKey(JobId jobId) {}

    private record OutputsFetched(JobId jobId, List<TensorStore.Entry> entries, Throwable error)
            implements SchedulerMessage, NoSerializationVerificationNeeded {}

    private enum Status { WAITING, QUEUED, RUNNING, DONE }

    private static final class WorkerEntry {
        final ActorRef<WorkerCommand> ref;
        final WorkerCapabilities caps;
        final ArrayDeque<Task> queue = new ArrayDeque<>();
        int running;
        long completed;

        WorkerEntry(ActorRef<WorkerCommand> ref, WorkerCapabilities caps) {
            this.ref = ref;
            this.caps = caps;
        }

        String id() {
            return caps.workerId();
        }
    }

    private record Task(Job job, int segment) {}

    private static final class SegmentState {
        Status status = Status.WAITING;
        int depsLeft;
        WorkerEntry placedOn;
        WorkerEntry ranOn;
        int attempts;
        long runNanos;
        List<BufferId> pinned = List.of();
        /** The worker the pins in {@link #pinned} were taken for. */
        ActorRef<WorkerCommand> pinnedFor;
    }

    private static final class Job {
        final SubmitJob request;
        final JobPlan plan;
        final long startNanos;
        final TensorRef[] values;
        final ActorRef<WorkerCommand>[] producer;
        /** Workers on other nodes than a value's that read it: they hold fetched copies to release with it. */
        final Map<Integer, Set<ActorRef<WorkerCommand>>> remoteReaders = new HashMap<>();
        final boolean[] owned;
        final boolean[] released;
        final boolean[] registered;
        /** Values on another node that this node's memory manager tracks (declared lost if their holder dies). */
        final boolean[] tracked;
        final int[] consumersLeft;
        final boolean[] isOutput;
        /** Values sent to the client by reference: kept until it releases them. */
        final boolean[] retained;
        final SegmentState[] segments;
        final List<List<Integer>> dependents = new ArrayList<>();
        int done;
        int stolen;
        boolean finishing;

        @SuppressWarnings("unchecked")
        Job(SubmitJob request, JobPlan plan) {
            this.request = request;
            this.plan = plan;
            this.startNanos = System.nanoTime();
            int n = plan.graph().size();
            values = new TensorRef[n];
            producer = new ActorRef[n];
            owned = new boolean[n];
            released = new boolean[n];
            registered = new boolean[n];
            tracked = new boolean[n];
            consumersLeft = new int[n];
            isOutput = new boolean[n];
            retained = new boolean[n];
            for (int o : plan.outputs()) {
                isOutput[o] = true;
            }
            segments = new SegmentState[plan.segments().size()];
            for (int s = 0; s < segments.length; s++) {
                segments[s] = new SegmentState();
                dependents.add(new ArrayList<>());
            }
            for (int s = 0; s < segments.length; s++) {
                JobPlan.Segment seg = plan.segments().get(s);
                segments[s].depsLeft = seg.dependsOn().size();
                for (int d : seg.dependsOn()) {
                    dependents.get(d).add(s);
                }
                for (int x : seg.inputs()) {
                    consumersLeft[x]++;
                }
            }
        }

        JobId id() {
            return request.jobId();
        }
    }

    private final TensorStore store;
    private final TensorFetcher fetcher;
    private final ActorRef<MemoryManager.Command> memory;
    /** Memory-manager acknowledgements nobody reads: the manager logs its refusals itself. */
    private final ActorRef<MemoryManager.Ack> acks;
    /** What one message's handling books with the memory manager, sent as one batch when the handler returns. */
    private final List<MemoryManager.Command> memoryBatch = new ArrayList<>();
    private final TimerScheduler<SchedulerMessage> timers;
    private final JobPlanner planner = new JobPlanner();
    /** Plans of recent graphs: a repeated job (a decode step) replays its plan instead of compiling again. */
    private final Map<PlanKey, JobPlan> plans = new LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<PlanKey, JobPlan> eldest) {
            return size() > MAX_CACHED_PLANS;
        }
    };
    private final Map<ActorRef<WorkerCommand>, WorkerEntry> workers = new LinkedHashMap<>();
    private final Map<String, WorkerEntry> workersById = new HashMap<>();
    private final Set<ActorRef<WorkerCommand>> describing = new HashSet<>();
    private final Map<JobId, Job> jobs = new LinkedHashMap<>();
    /** Ended jobs whose outputs a client on another node still has to pull. */
    private final Map<JobId, Job> retainedOutputs = new HashMap<>();
    private final List<Task> unplaced = new ArrayList<>();
    private long nextBuffer;
    private long jobsCompleted;
    private long jobsFailed;
    private long jobsCancelled;
    private long segmentsDispatched;
    private long segmentsStolen;

    /**
     * @param store   this node's tensors: job inputs are put here, outputs on this node read from here
     * @param fetcher brings outputs that live on other nodes
     * @param memory  the node's memory manager, or null to run without one
     */
    public static Behavior<SchedulerMessage> create(TensorStore store, TensorFetcher fetcher,
            ActorRef<MemoryManager.Command> memory) {
        return Behaviors.setup(context -> Behaviors.withTimers(timers -> new Scheduler(context, timers, store, fetcher,
                memory)));
    }

    private Scheduler(ActorContext<SchedulerMessage> context, TimerScheduler<SchedulerMessage> timers,
            TensorStore store, TensorFetcher fetcher, ActorRef<MemoryManager.Command> memory) {
        super(context);
        this.timers = timers;
        this.store = store;
        this.fetcher = fetcher;
        this.memory = memory;
        this.acks = context.getSystem().ignoreRef();
        // buffer ids: a random high half per scheduler incarnation, a counter below
        this.nextBuffer = (ThreadLocalRandom.current().nextLong() & 0x7fff_ffffL) << 32;
        ActorRef<Receptionist.Listing> listings = context.messageAdapter(Receptionist.Listing.class,
                listing -> new WorkersListed(listing.getServiceInstances(ServiceKeys.WORKERS)));
        context.getSystem().receptionist().tell(Receptionist.subscribe(ServiceKeys.WORKERS, listings));
        context.getSystem().receptionist().tell(Receptionist.register(ServiceKeys.SCHEDULERS,
                context.getSelf().<JobCommand>narrow()));
    }

    @Override
    public Receive<SchedulerMessage> createReceive() {
        return newReceiveBuilder().onMessage(SchedulerMessage.class, this::on).build();
    }

    private Behavior<SchedulerMessage> on(SchedulerMessage message) {
        try {
            return handle(message);
        } finally {
            flushMemory();
        }
    }

    /** Sends what the handler booked with the memory manager: one message per handled message at most. */
    private void flushMemory() {
        if (memoryBatch.isEmpty()) {
            return;
        }
        memory.tell(memoryBatch.size() == 1 ? memoryBatch.getFirst() : new MemoryManager.Batch(memoryBatch));
        memoryBatch.clear();
    }

    private void toMemory(MemoryManager.Command command) {
        memoryBatch.add(command);
    }

    private Behavior<SchedulerMessage> handle(SchedulerMessage message) {
        return switch (message) {
            case JobCommand command -> switch (command) {
                case SubmitJob submit -> onSubmit(submit);
                case CancelJob cancel -> onCancel(cancel);
                case GetSchedulerState get -> onGetState(get);
                case JobCommand.ReleaseOutputs release -> releaseOutputs(release.jobId());
            };
            case SegmentEvent event -> switch (event) {
                case SegmentCompleted completed -> onCompleted(completed);
                case SegmentFailed failed -> onFailed(failed);
            };
            case WorkerDescribed described -> onDescribed(described);
            case WorkersListed listed -> onListed(listed);
            case WorkerStopped stopped -> onWorkerGone(workers.get(stopped.worker()), "stopped");
            case DeadlineReached deadline -> onDeadline(deadline);
            case RetentionExpired expired -> onRetentionExpired(expired);
            case OutputsFetched fetched -> onOutputsFetched(fetched);
            default -> Behaviors.unhandled();
        };
    }

    // ---- workers ---------------------------------------------------------------------------------------------------

    private Behavior<SchedulerMessage> onListed(WorkersListed listed) {
        for (ActorRef<WorkerCommand> ref : listed.workers()) {
            if (!workers.containsKey(ref) && describing.add(ref)) {
                ref.tell(new WorkerCommand.DescribeWorker(getContext().getSelf().narrow()));
            }
        }
        for (WorkerEntry entry : List.copyOf(workers.values())) {
            if (!listed.workers().contains(entry.ref)) {
                onWorkerGone(entry, "left the worker listing");
            }
        }
        describing.retainAll(listed.workers());
        return this;
    }

    private Behavior<SchedulerMessage> onDescribed(WorkerDescribed described) {
        ActorRef<WorkerCommand> ref = described.worker();
        if (workers.containsKey(ref)) {
            return this;
        }
        describing.remove(ref);
        WorkerEntry entry = new WorkerEntry(ref, described.capabilities());
        workers.put(ref, entry);
        workersById.put(entry.id(), entry);
        getContext().watchWith(ref, new WorkerStopped(ref));
        List<Task> waiting = List.copyOf(unplaced);
        unplaced.clear();
        for (Task t : waiting) {
            if (jobs.get(t.job().id()) == t.job()) {
                place(t.job(), t.segment());
            }
        }
        dispatch();
        return this;
    }

    private Behavior<SchedulerMessage> onWorkerGone(WorkerEntry entry, String how) {
        if (entry == null || workers.remove(entry.ref) == null) {
            return this;
        }
        workersById.remove(entry.id());
        getContext().unwatch(entry.ref);
        boolean nodeGone = workers.values().stream().noneMatch(w -> w.caps.nodeId().equals(entry.caps.nodeId()));
        List<Task> queued = List.copyOf(entry.queue);
        entry.queue.clear();
        for (Job job : List.copyOf(jobs.values())) {
            if (jobs.get(job.id()) != job) {
                continue;
            }
            String lost = nodeGone && !store.nodeId().equals(entry.caps.nodeId())
                    ? liveValuesOn(job, entry.caps.nodeId()) : "";
            if (!lost.isEmpty()) {
                failJob(job, Reason.WORKER_LOST, -1, -1, "", entry.id(), "worker " + entry.id() + " " + how
                        + " and node " + entry.caps.nodeId() + " held tensors of this job that are still needed: "
                        + lost);
                continue;
            }
            for (int s = 0; s < job.segments.length; s++) {
                SegmentState st = job.segments[s];
                if (st.status == Status.RUNNING && st.ranOn == entry) {
                    unpin(st);
                    if (st.attempts < job.request.options().maxAttempts()) {
                        st.status = Status.WAITING;
                        place(job, s);
                    } else {
                        failJob(job, Reason.WORKER_LOST, s, -1, "", entry.id(), "worker " + entry.id() + " " + how
                                + " while running segment " + s + " (" + describe(job, s) + "), attempt "
                                + st.attempts + " of " + job.request.options().maxAttempts());
                        break;
                    }
                }
            }
        }
        for (Task t : queued) {
            if (jobs.get(t.job().id()) == t.job()) {
                t.job().segments[t.segment()].status = Status.WAITING;
                place(t.job(), t.segment());
            }
        }
        dispatch();
        return this;
    }

    /** The job's unreleased values whose only copy is on {@code nodeId}, named for a failure message ("" if none). */
    private static String liveValuesOn(Job job, String nodeId) {
        StringBuilder names = new StringBuilder();
        int count = 0;
        for (int x = 0; x < job.values.length; x++) {
            TensorRef ref = job.values[x];
            if (ref != null && !job.released[x] && ref.nodeId().equals(nodeId)) {
                if (count++ < 8) {
                    names.append(names.isEmpty() ? "" : ", ").append(ref.id()).append(' ').append(ref.type())
                            .append(" (value %").append(x).append(')');
                }
            }
        }
        return count > 8 ? names + " and " + (count - 8) + " more" : names.toString();
    }

    // ---- submission ------------------------------------------------------------------------------------------------

    private Behavior<SchedulerMessage> onSubmit(SubmitJob submit) {
        if (jobs.containsKey(submit.jobId())) {
            submit.replyTo().tell(new JobFailed(submit.jobId(), Reason.INVALID_JOB, -1, -1, "", "",
                    submit.jobId() + " is already running"));
            return this;
        }
        Map<Integer, TensorPayload> bound;
        JobPlan plan;
        try {
            bound = checkInputs(submit.graph(), submit.inputs());
            plan = plan(submit.graph(), submit.options());
        } catch (RuntimeException e) {
            jobsFailed++;
            submit.replyTo().tell(new JobFailed(submit.jobId(), Reason.INVALID_JOB, -1, -1, "", "", e.getMessage()));
            return this;
        }
        Job job = new Job(submit, plan);
        jobs.put(job.id(), job);
        try {
            for (Map.Entry<Integer, Integer> in : plan.jobInputs().entrySet()) {
                bindInput(job, in.getKey(), bound.get(in.getValue()));
            }
            for (Map.Entry<Integer, TensorValue> c : plan.constants().entrySet()) {
                store(job, c.getKey(), StorageFormat.bytes(c.getValue()));
            }
        } catch (RuntimeException e) {
            failJob(job, Reason.INVALID_JOB, -1, -1, "", "", "binding inputs: " + e.getMessage());
            return this;
        }
        if (submit.options().deadlineMillis() > 0) {
            timers.startSingleTimer(job.id(), new DeadlineReached(job.id()),
                    Duration.ofMillis(submit.options().deadlineMillis()));
        }
        if (job.segments.length == 0) {
            finish(job);
            return this;
        }
        for (int s = 0; s < job.segments.length && jobs.get(job.id()) == job; s++) {
            if (job.segments[s].depsLeft == 0) {
                place(job, s);
            }
        }
        dispatch();
        return this;
    }

    private JobPlan plan(OpGraph graph, JobOptions options) {
        PlanKey key = new PlanKey(graph, options.granularity(), options.maxGroupsPerSegment());
        JobPlan plan = plans.get(key);
        if (plan == null) {
            plan = planner.plan(graph, options);
            plans.put(key, plan);
        }
        return plan;
    }

    /** The payload of each submitted {@code Input} node; every one bound exactly once with its exact type. */
    private static Map<Integer, TensorPayload> checkInputs(OpGraph graph, List<JobInput> inputs) {
        Map<Integer, TensorPayload> bound = new HashMap<>();
        for (JobInput in : inputs) {
            if (in.node() < 0 || in.node() >= graph.size() || !(graph.node(in.node()).op() instanceof Op.Input)) {
                throw new IllegalArgumentException("input binding for %" + in.node() + ": not an input node of the"
                        + " graph (" + graph.size() + " nodes)");
            }
            Node node = graph.node(in.node());
            if (!in.value().type().equals(node.type())) {
                throw new IllegalArgumentException("input %" + in.node() + " '" + ((Op.Input) node.op()).label()
                        + "': expected " + node.type() + ", found " + in.value().type());
            }
            if (bound.put(in.node(), in.value()) != null) {
                throw new IllegalArgumentException("input %" + in.node() + " is bound twice");
            }
        }
        for (Node node : graph.nodes()) {
            if (node.op() instanceof Op.Input input && !bound.containsKey(node.id())) {
                throw new IllegalArgumentException("input %" + node.id() + " '" + input.label() + "' " + node.type()
                        + " is not bound");
            }
        }
        return bound;
    }

    private void bindInput(Job job, int value, TensorPayload payload) {
        switch (payload) {
            case TensorPayload.Inline inline -> store(job, value, inline.bytes());
            case TensorPayload.Stored stored -> job.values[value] = stored.ref();   // the client owns it
        }
    }

    /** Copies {@code bytes} into a new buffer of this node that the job owns. */
    private void store(Job job, int value, byte[] bytes) {
        TensorType type = job.plan.graph().node(value).type();
        BufferId id = new BufferId(nextBuffer++);
        TensorRef ref = new TensorRef(id, 0, type, store.nodeId(), Location.HOST);
        // an automatic arena: closing a shared one per input would cost a handshake with every thread
        MemorySegment segment = Arena.ofAuto().allocate(Math.max(bytes.length, 1), 64).asSlice(0, bytes.length);
        MemorySegment.copy(MemorySegment.ofArray(bytes), 0, segment, 0, bytes.length);
        store.put(new TensorStore.Entry(ref, segment, () -> { }));
        job.values[value] = ref;
        job.owned[value] = true;
        register(job, value, BufferOrigin.ACTIVATION);
    }

    /**
     * Books a buffer of this node with its memory manager. A value produced on another node counts against that node's
     * budgets, not this one's; the manager only tracks it with its producer, so that it is declared lost (and the
     * manager's books stay right) when that worker dies.
     */
    private void register(Job job, int value, BufferOrigin origin) {
        if (memory == null) {
            return;
        }
        TensorRef ref = job.values[value];
        if (ref.nodeId().equals(store.nodeId())) {
            toMemory(new MemoryManager.Register(ref.id(), ref.byteSize(), origin, residency(job, value), acks));
            job.registered[value] = true;
        } else if (job.producer[value] != null) {
            toMemory(new MemoryManager.Track(ref.id(), ref.byteSize(), job.producer[value]));
            job.tracked[value] = true;
        }
    }

    /**
     * Where this node's copies of a value are: where its ref says, and, for an output a device worker of this node
     * produced into host memory, also that device's memory: such a worker keeps the device copy of each output it
     * produced (a GPU worker: {@code DeviceWorker}'s residency) until the memory manager evicts it or it is released.
     */
    private Set<Location> residency(Job job, int value) {
        TensorRef ref = job.values[value];
        ActorRef<WorkerCommand> producer = job.producer[value];
        WorkerEntry w = producer == null ? null : workers.get(producer);
        if (w == null || w.caps.kind() == DeviceKind.CPU || !w.caps.nodeId().equals(store.nodeId())
                || !ref.location().equals(Location.HOST)) {
            return Set.of(ref.location());
        }
        return Set.of(Location.HOST, Location.device(w.caps.ordinal()));
    }

    // ---- placement and dispatch ------------------------------------------------------------------------------------

    private void place(Job job, int s) {
        JobPlan.Segment seg = job.plan.segments().get(s);
        WorkerEntry best = null;
        long bestCost = Long.MAX_VALUE;
        int bestLoad = Integer.MAX_VALUE;
        String why = null;
        WorkerEntry holder = largestInputHolder(job, seg);
        for (WorkerEntry w : workers.values()) {
            String cannot = cannotRun(w.caps, seg);
            if (cannot != null) {
                why = cannot;
                continue;
            }
            int load = w.queue.size() + w.running;
            long cost = load - (w == holder ? LOCALITY_SLACK : 0) + remoteBytes(job, seg, w) / REMOTE_BYTES_PER_SEGMENT;
            if (cost < bestCost || (cost == bestCost && load < bestLoad)) {
                best = w;
                bestCost = cost;
                bestLoad = load;
            }
        }
        SegmentState st = job.segments[s];
        if (best == null) {
            if (workers.isEmpty()) {
                unplaced.add(new Task(job, s));   // waits for the first worker to register
                return;
            }
            failJob(job, Reason.NO_WORKER, s, -1, "", "", "no worker can run segment " + s + " (" + describe(job, s)
                    + "): " + why);
            return;
        }
        st.status = Status.QUEUED;
        st.placedOn = best;
        best.queue.addLast(new Task(job, s));
        prefetch(job, seg, best);
    }

    /** Tells the memory manager which of this node's buffers a device (not host) worker will read soon. */
    private void prefetch(Job job, JobPlan.Segment seg, WorkerEntry w) {
        if (memory == null || w.caps.kind() == DeviceKind.CPU || !w.caps.nodeId().equals(store.nodeId())) {
            return;
        }
        List<BufferId> ids = new ArrayList<>();
        for (int x : seg.inputs()) {
            if (job.registered[x]) {
                ids.add(job.values[x].id());
            }
        }
        if (!ids.isEmpty()) {
            toMemory(new MemoryManager.PrefetchHint(ids, Location.device(w.caps.ordinal())));
        }
    }

    private static String cannotRun(WorkerCapabilities caps, JobPlan.Segment seg) {
        for (Node n : seg.spec().graph().nodes()) {
            if (n.op() instanceof Op.Input) {
                if (n.dtype().isQuantized() && !caps.quantTypes().contains(n.dtype().ggml())) {
                    return "weight type " + n.dtype() + " is not supported by " + caps.workerId();
                }
                // an input's value type too (a GPU computes f32 only: an f16 input cast to f32 stays on the CPU)
                if (!n.dtype().isQuantized() && !caps.dtypes().contains(n.dtype().ggml())) {
                    return "input dtype " + n.dtype() + " is not supported by " + caps.workerId();
                }
                continue;
            }
            String why = caps.cannotRun(n.op(), n.type());
            if (why != null) {
                return why;
            }
        }
        if (seg.outputBytes() > caps.memoryBytes()) {
            return "outputs need " + seg.outputBytes() + " bytes, " + caps.workerId() + " has " + caps.memoryBytes();
        }
        return null;
    }

    private WorkerEntry largestInputHolder(Job job, JobPlan.Segment seg) {
        WorkerEntry holder = null;
        long largest = -1;
        for (int x : seg.inputs()) {
            ActorRef<WorkerCommand> p = job.producer[x];
            if (p != null && job.values[x].byteSize() > largest && workers.containsKey(p)) {
                holder = workers.get(p);
                largest = job.values[x].byteSize();
            }
        }
        return holder;
    }

    private static long remoteBytes(Job job, JobPlan.Segment seg, WorkerEntry w) {
        long bytes = 0;
        for (int x : seg.inputs()) {
            TensorRef ref = job.values[x];
            if (!ref.nodeId().equals(w.caps.nodeId())) {
                bytes += ref.byteSize();
            }
        }
        return bytes;
    }

    private void dispatch() {
        for (WorkerEntry w : workers.values()) {
            while (w.running < w.caps.concurrency()) {
                Task t = w.queue.pollFirst();
                if (t == null) {
                    t = steal(w);
                    if (t == null) {
                        break;
                    }
                }
                send(w, t);
            }
        }
    }

    /** The newest queued segment of a busy CPU worker on the same node that {@code thief} can run, or null. */
    private Task steal(WorkerEntry thief) {
        if (thief.caps.kind() != DeviceKind.CPU) {
            return null;
        }
        WorkerEntry victim = null;
        for (WorkerEntry w : workers.values()) {
            if (w != thief && w.caps.kind() == DeviceKind.CPU && w.caps.nodeId().equals(thief.caps.nodeId())
                    && w.running >= w.caps.concurrency() && !w.queue.isEmpty()
                    && (victim == null || w.queue.size() > victim.queue.size())) {
                victim = w;
            }
        }
        if (victim == null) {
            return null;
        }
        for (Iterator<Task> it = victim.queue.descendingIterator(); it.hasNext(); ) {
            Task t = it.next();
            if (cannotRun(thief.caps, t.job().plan.segments().get(t.segment())) == null) {
                it.remove();
                t.job().stolen++;
                segmentsStolen++;
                return t;
            }
        }
        return null;
    }

    private void send(WorkerEntry w, Task t) {
        Job job = t.job();
        JobPlan.Segment seg = job.plan.segments().get(t.segment());
        SegmentState st = job.segments[t.segment()];
        st.status = Status.RUNNING;
        st.ranOn = w;
        st.attempts++;
        List<TensorRef> inputs = new ArrayList<>(seg.inputs().size());
        List<BufferId> pinned = new ArrayList<>();
        for (int x : seg.inputs()) {
            TensorRef ref = job.values[x];
            inputs.add(ref);
            if (!ref.nodeId().equals(w.caps.nodeId())) {
                job.remoteReaders.computeIfAbsent(x, k -> new HashSet<>()).add(w.ref);
            }
            if (memory != null && job.registered[x]) {
                toMemory(new MemoryManager.PinFor(ref.id(), w.ref, acks));
                pinned.add(ref.id());
            }
        }
        st.pinned = pinned;
        st.pinnedFor = w.ref;
        List<BufferId> outputIds = new ArrayList<>(seg.outputs().size());
        for (int i = 0; i < seg.outputs().size(); i++) {
            outputIds.add(new BufferId(nextBuffer++));
        }
        w.running++;
        segmentsDispatched++;
        w.ref.tell(new WorkerCommand.RunSegment(job.id(), seg.spec(), inputs, outputIds,
                getContext().getSelf().narrow()));
    }

    private void unpin(SegmentState st) {
        if (memory != null) {
            for (BufferId id : st.pinned) {
                toMemory(new MemoryManager.UnpinFor(id, st.pinnedFor));
            }
        }
        st.pinned = List.of();
        st.pinnedFor = null;
    }

    // ---- segment results -------------------------------------------------------------------------------------------

    private Behavior<SchedulerMessage> onCompleted(SegmentCompleted done) {
        WorkerEntry w = workersById.get(done.worker());
        Job job = jobs.get(done.jobId());
        SegmentState st = job == null || done.segment() < 0 || done.segment() >= job.segments.length ? null
                : job.segments[done.segment()];
        if (st == null || st.status != Status.RUNNING || st.ranOn != w || job.finishing) {
            // a job that ended (cancelled, failed) while this segment ran: nobody will read its outputs
            if (w != null) {
                w.ref.tell(new WorkerCommand.ReleaseTensors(done.outputs().stream().map(TensorRef::id).toList()));
            }
            return this;
        }
        JobPlan.Segment seg = job.plan.segments().get(done.segment());
        String wrong = checkOutputs(seg, done.outputs());
        if (wrong != null) {
            w.ref.tell(new WorkerCommand.ReleaseTensors(done.outputs().stream().map(TensorRef::id).toList()));
            return onFailed(new SegmentFailed(done.jobId(), done.segment(), done.worker(), -1, "", wrong));
        }
        w.running--;
        w.completed++;
        st.status = Status.DONE;
        st.runNanos = done.runNanos();
        unpin(st);
        for (int i = 0; i < seg.outputs().size(); i++) {
            int x = seg.outputs().get(i);
            job.values[x] = done.outputs().get(i);
            job.producer[x] = w.ref;
            register(job, x, BufferOrigin.INTERMEDIATE);
        }
        for (int x : seg.inputs()) {
            if (--job.consumersLeft[x] == 0 && !job.isOutput[x]) {
                release(job, x);
            }
        }
        job.done++;
        for (int d : job.dependents.get(done.segment())) {
            if (--job.segments[d].depsLeft == 0 && jobs.get(job.id()) == job) {
                place(job, d);
            }
        }
        if (jobs.get(job.id()) == job && job.done == job.segments.length) {
            finish(job);
        }
        dispatch();
        return this;
    }

    /** Why a worker's outputs are not what the segment computes, or null when they are. */
    private static String checkOutputs(JobPlan.Segment seg, List<TensorRef> outputs) {
        if (outputs.size() != seg.outputs().size()) {
            return "the worker returned " + outputs.size() + " outputs (expected: " + seg.outputs().size() + ")";
        }
        for (int i = 0; i < outputs.size(); i++) {
            TensorType expected = seg.spec().graph().node(seg.spec().graph().outputs().get(i)).type();
            if (!outputs.get(i).type().equals(expected)) {
                return "output " + i + " is " + outputs.get(i).type() + " (expected: " + expected + ")";
            }
        }
        return null;
    }

    private Behavior<SchedulerMessage> onFailed(SegmentFailed failed) {
        WorkerEntry w = workersById.get(failed.worker());
        Job job = jobs.get(failed.jobId());
        SegmentState st = job == null || failed.segment() < 0 || failed.segment() >= job.segments.length ? null
                : job.segments[failed.segment()];
        if (st == null || st.status != Status.RUNNING || st.ranOn != w) {
            return this;
        }
        w.running--;
        st.status = Status.DONE;
        unpin(st);
        JobPlan.Segment seg = job.plan.segments().get(failed.segment());
        int node = failed.node() >= 0 && failed.node() < seg.spec().sourceNodes().size()
                ? seg.spec().sourceNodes().get(failed.node()) : -1;
        String where = failed.node() >= 0 ? " at node %" + node + " (" + failed.op() + ")" : "";
        failJob(job, Reason.SEGMENT_FAILED, failed.segment(), node, failed.op(), failed.worker(), "segment "
                + failed.segment() + " (" + describe(job, failed.segment()) + ") failed on worker " + failed.worker()
                + where + ": " + failed.message());
        dispatch();
        return this;
    }

    // ---- ending jobs -----------------------------------------------------------------------------------------------

    private void finish(Job job) {
        job.finishing = true;
        boolean remoteClient = !clientNode(job).equals(store.nodeId());
        List<CompletableFuture<TensorStore.Entry>> remote = new ArrayList<>();
        for (int o : job.plan.outputs()) {
            TensorRef ref = job.values[o];
            if (remoteClient && ref.byteSize() > REMOTE_INLINE_LIMIT_BYTES) {
                continue;       // goes by reference: the client's node pulls it from where it is
            }
            if (!ref.nodeId().equals(store.nodeId())) {
                remote.add(fetch(fetcher, ref));
            }
        }
        if (remote.isEmpty()) {
            complete(job, List.of());
            return;
        }
        JobId id = job.id();
        getContext().pipeToSelf(CompletableFuture.allOf(remote.toArray(CompletableFuture[]::new)),
                (ok, error) -> new OutputsFetched(id, error == null ? remote.stream().map(CompletableFuture::join)
                        .toList() : List.of(), error));
    }

    /** {@code fetcher.fetch(ref)}, with a fetcher that throws turned into a failed future. */
    static CompletableFuture<TensorStore.Entry> fetch(TensorFetcher fetcher, TensorRef ref) {
        try {
            return fetcher.fetch(ref);
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
    }

    private Behavior<SchedulerMessage> onOutputsFetched(OutputsFetched fetched) {
        Job job = jobs.get(fetched.jobId());
        if (job == null) {
            fetched.entries().forEach(e -> e.free().run());
            return this;
        }
        if (fetched.error() != null) {
            failJob(job, Reason.WORKER_LOST, -1, -1, "", "", "fetching the outputs failed: "
                    + fetched.error().getMessage());
            return this;
        }
        try {
            complete(job, fetched.entries());
        } finally {
            fetched.entries().forEach(e -> e.free().run());
        }
        return this;
    }

    private String clientNode(Job job) {
        return NodeIds.of(job.request.replyTo(), store.nodeId());
    }

    private void complete(Job job, List<TensorStore.Entry> fetched) {
        List<TensorPayload> outputs = new ArrayList<>();
        boolean remoteClient = !clientNode(job).equals(store.nodeId());
        boolean byReference = false;
        for (int o : job.plan.outputs()) {
            TensorRef ref = job.values[o];
            if (remoteClient && ref.byteSize() > REMOTE_INLINE_LIMIT_BYTES) {
                outputs.add(new TensorPayload.Stored(ref));
                job.retained[o] = true;
                byReference = true;
                continue;
            }
            MemorySegment bytes = store.get(ref);
            for (TensorStore.Entry e : fetched) {
                if (bytes == null && e.ref().id().equals(ref.id())) {
                    bytes = e.bytes();
                }
            }
            if (bytes == null) {
                failJob(job, Reason.WORKER_LOST, -1, -1, "", "", "output " + ref + " is gone");
                return;
            }
            outputs.add(new TensorPayload.Inline(ref.type(), bytes.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE)));
        }
        jobsCompleted++;
        job.request.replyTo().tell(new JobReply.JobCompleted(job.id(), outputs, stats(job)));
        end(job);
        if (byReference) {
            retainedOutputs.put(job.id(), job);
            timers.startSingleTimer(new RetentionKey(job.id()), new RetentionExpired(job.id()), OUTPUT_RETENTION);
        }
    }

    /** Frees the outputs a client on another node was sent by reference (it pulled them, or never will). */
    private Behavior<SchedulerMessage> releaseOutputs(JobId jobId) {
        Job job = retainedOutputs.remove(jobId);
        if (job != null) {
            timers.cancel(new RetentionKey(jobId));
            for (int x = 0; x < job.values.length; x++) {
                if (job.retained[x] && !job.released[x]) {
                    job.retained[x] = false;
                    release(job, x);
                }
            }
        }
        return this;
    }

    private Behavior<SchedulerMessage> onRetentionExpired(RetentionExpired expired) {
        if (retainedOutputs.containsKey(expired.jobId())) {
            getContext().getLog().warn("{}: the client did not release its outputs within {}; freeing them",
                    expired.jobId(), OUTPUT_RETENTION);
        }
        return releaseOutputs(expired.jobId());
    }

    private JobStats stats(Job job) {
        List<JobStats.SegmentStat> segments = new ArrayList<>();
        for (int s = 0; s < job.segments.length; s++) {
            SegmentState st = job.segments[s];
            JobPlan.Segment seg = job.plan.segments().get(s);
            segments.add(new JobStats.SegmentStat(s, seg.spec().groups(), seg.spec().graph().size()
                    - seg.inputs().size(), st.placedOn == null ? "" : st.placedOn.id(),
                    st.ranOn == null ? "" : st.ranOn.id(), st.attempts, st.runNanos));
        }
        return new JobStats(System.nanoTime() - job.startNanos, job.stolen, segments);
    }

    private void failJob(Job job, Reason reason, int segment, int node, String op, String worker, String message) {
        jobsFailed++;
        job.request.replyTo().tell(new JobFailed(job.id(), reason, segment, node, op, worker, message));
        abort(job);
    }

    private Behavior<SchedulerMessage> onCancel(CancelJob cancel) {
        Job job = jobs.get(cancel.jobId());
        if (job != null) {
            jobsCancelled++;
            job.request.replyTo().tell(new JobReply.JobCancelled(job.id(), cancel.reason()));
            abort(job);
            dispatch();
        }
        return this;
    }

    private Behavior<SchedulerMessage> onDeadline(DeadlineReached deadline) {
        Job job = jobs.get(deadline.jobId());
        if (job == null || job.finishing) {
            return this;
        }
        StringBuilder running = new StringBuilder();
        List<Integer> waiting = new ArrayList<>();
        for (int s = 0; s < job.segments.length; s++) {
            SegmentState st = job.segments[s];
            if (st.status == Status.RUNNING) {
                running.append(running.isEmpty() ? "" : ", ").append("segment ").append(s).append(" on ")
                        .append(st.ranOn.id());
            } else if (st.status != Status.DONE) {
                waiting.add(s);
            }
        }
        long elapsedMs = (System.nanoTime() - job.startNanos) / 1_000_000;
        failJob(job, Reason.DEADLINE_EXCEEDED, -1, -1, "", "", "deadline of " + job.request.options().deadlineMillis()
                + " ms exceeded after " + elapsedMs + " ms: " + job.done + " of " + job.segments.length
                + " segments done; running: " + (running.isEmpty() ? "none" : running) + "; not started: " + waiting);
        dispatch();
        return this;
    }

    /** Stops every segment of the job (queued ones dropped, running ones cancelled) and frees its buffers. */
    private void abort(Job job) {
        for (WorkerEntry w : workers.values()) {
            w.queue.removeIf(t -> t.job() == job);
        }
        unplaced.removeIf(t -> t.job() == job);
        for (int s = 0; s < job.segments.length; s++) {
            SegmentState st = job.segments[s];
            if (st.status == Status.RUNNING) {
                st.ranOn.ref.tell(new WorkerCommand.CancelSegment(job.id(), s));
                st.ranOn.running--;
                unpin(st);
            }
            st.status = Status.DONE;
        }
        end(job);
    }

    private void end(Job job) {
        timers.cancel(job.id());
        for (int x = 0; x < job.values.length; x++) {
            if (job.values[x] != null && !job.released[x] && !job.retained[x]) {
                release(job, x);
            }
        }
        jobs.remove(job.id());
    }

    /**
     * Frees value {@code x}: the worker (or this scheduler) that holds it, the copies fetched by workers on other
     * nodes, and the memory manager's record.
     */
    private void release(Job job, int x) {
        TensorRef ref = job.values[x];
        job.released[x] = true;
        ActorRef<WorkerCommand> holder = job.producer[x];
        if (holder != null) {
            holder.tell(new WorkerCommand.ReleaseTensors(List.of(ref.id())));
        } else if (job.owned[x]) {
            store.release(List.of(ref.id()));
        }
        for (ActorRef<WorkerCommand> reader : job.remoteReaders.getOrDefault(x, Set.of())) {
            reader.tell(new WorkerCommand.ReleaseTensors(List.of(ref.id())));
        }
        if (memory != null && (job.registered[x] || job.tracked[x])) {
            toMemory(new MemoryManager.Free(ref.id(), acks));
        }
    }

    private Behavior<SchedulerMessage> onGetState(GetSchedulerState get) {
        List<SchedulerState.WorkerState> states = new ArrayList<>();
        for (WorkerEntry w : workers.values()) {
            states.add(new SchedulerState.WorkerState(w.caps, w.queue.size(), w.running, w.completed));
        }
        get.replyTo().tell(new SchedulerState(states, List.copyOf(jobs.keySet()), jobsCompleted, jobsFailed,
                jobsCancelled, segmentsDispatched, segmentsStolen));
        return this;
    }

    /** "3 kernels, nodes %4..%9" for messages. */
    private static String describe(Job job, int s) {
        JobPlan.Segment seg = job.plan.segments().get(s);
        int lo = Integer.MAX_VALUE;
        int hi = -1;
        for (int i = 0; i < seg.spec().graph().size(); i++) {
            int src = seg.spec().sourceNodes().get(i);
            if (!(seg.spec().graph().node(i).op() instanceof Op.Input) && src >= 0) {
                lo = Math.min(lo, src);
                hi = Math.max(hi, src);
            }
        }
        String nodes = hi < 0 ? "compiler-made nodes" : lo == hi ? "node %" + lo : "nodes %" + lo + "..%" + hi;
        return seg.spec().groups() + " kernel" + (seg.spec().groups() == 1 ? "" : "s") + ", " + nodes;
    }
}
