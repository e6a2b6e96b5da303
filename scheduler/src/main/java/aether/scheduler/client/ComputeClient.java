package aether.scheduler.client;

import aether.device.worker.TensorFetcher;
import aether.device.worker.TensorStore;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.CompletionException;
import aether.runtime.ir.Op;
import aether.runtime.protocol.BufferId;
import aether.runtime.protocol.Location;
import aether.runtime.protocol.TensorBytes;
import aether.runtime.protocol.TensorRef;
import aether.scheduler.exec.CodecWeightRows;
import aether.scheduler.exec.SegmentWeightRows;
import aether.scheduler.exec.WeightTensor;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.ThreadLocalRandom;
import aether.runtime.ir.OpGraph;
import aether.runtime.protocol.JobCommand;
import aether.runtime.protocol.JobId;
import aether.runtime.protocol.JobInput;
import aether.runtime.protocol.JobOptions;
import aether.runtime.protocol.JobReply;
import aether.runtime.protocol.TensorPayload;
import aether.scheduler.compile.Program;
import aether.scheduler.exec.StorageFormat;
import aether.scheduler.exec.TensorValue;
import aether.scheduler.graph.Graph;
import aether.scheduler.graph.Tensor;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeoutException;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.AskPattern;

/**
 * Submits compute jobs to a scheduler with the same messages a client on another node sends
 * ({@link JobCommand.SubmitJob}, answered by one {@link JobReply}). Input values travel inline in the message, or,
 * for a client with a tensor store (a node's), large ones by reference: they stay in the client node's store and the
 * workers that read them pull the bytes over the tensor exchange, so a scheduler on another node gets only
 * descriptors. A scheduler on another node likewise answers large outputs by reference; a client with a
 * {@link TensorFetcher} pulls them and then tells the scheduler to free them ({@link JobCommand.ReleaseOutputs}). The
 * stage completes with a {@link JobResult}, or fails with {@link JobFailedException} (the scheduler's failure, naming
 * the segment and op), {@link JobCancelledException}, or a {@link TimeoutException} when no answer came within the
 * client's timeout (the job is then cancelled). Thread-safe; never blocks.
 */
public final class ComputeClient {

    /** Time a job without a deadline may take before the client gives up on it. */
    public static final Duration DEFAULT_TIMEOUT = Duration.ofMinutes(5);

    /** Inputs larger than this go by reference through the node's tensor store when the client has one. */
    public static final long INLINE_LIMIT_BYTES = 64 * 1024;

    private final ActorSystem<?> system;
    private final ActorRef<JobCommand> scheduler;
    private final Duration timeout;
    private final TensorStore store;
    private final TensorFetcher fetcher;

    public ComputeClient(ActorSystem<?> system, ActorRef<JobCommand> scheduler) {
        this(system, scheduler, DEFAULT_TIMEOUT, null, null);
    }

    public ComputeClient(ActorSystem<?> system, ActorRef<JobCommand> scheduler, Duration timeout, TensorStore store) {
        this(system, scheduler, timeout, store, null);
    }

    /**
     * @param timeout how long to wait for a job without a deadline (one with a deadline: the deadline + 10 s)
     * @param store   the tensor store of the scheduler's node when the client runs there, or null: inputs over
     *                {@link #INLINE_LIMIT_BYTES} are then put into it and sent as references (weights read from
     *                memory, e.g. a mapped model file, without any copy), and released when the job is answered;
     *                a scheduler on another node reaches them through the node's tensor service
     * @param fetcher pulls outputs a scheduler on another node sends by reference, or null (such a reply then fails)
     */
    public ComputeClient(ActorSystem<?> system, ActorRef<JobCommand> scheduler, Duration timeout, TensorStore store,
            TensorFetcher fetcher) {
        this.system = Objects.requireNonNull(system, "system");
        this.scheduler = Objects.requireNonNull(scheduler, "scheduler");
        this.timeout = Objects.requireNonNull(timeout, "timeout");
        this.store = store;
        this.fetcher = fetcher;
    }

    /** Computes {@code outputs} of {@code graph} with the values currently bound to its leaves. */
    public CompletionStage<JobResult> submit(Graph graph, Tensor... outputs) {
        return submit(JobId.random(), graph, JobOptions.DEFAULT, outputs);
    }

    /** As {@link #submit(Graph, Tensor...)} with the job's id (for {@link #cancel}) and options. */
    public CompletionStage<JobResult> submit(JobId jobId, Graph graph, JobOptions options, Tensor... outputs) {
        Program.Snapshot snapshot;
        List<JobInput> inputs = new ArrayList<>();
        List<BufferId> stored = new ArrayList<>();
        try {
            snapshot = Program.from(graph, List.of(), outputs);
            int[] mapping = snapshot.mapping();
            for (int old = 0; old < mapping.length; old++) {
                if (mapping[old] >= 0 && graph.node(old).op() instanceof Op.Input input) {
                    TensorValue value = graph.value(graph.tensor(old));
                    if (value == null) {
                        throw new IllegalArgumentException("input %" + old + " '" + input.label() + "' "
                                + input.type() + " has no value: bind it with Graph.set before submitting");
                    }
                    inputs.add(new JobInput(mapping[old], payload(value, stored)));
                }
            }
        } catch (RuntimeException e) {
            if (store != null) {
                store.release(stored);
            }
            return CompletableFuture.failedFuture(e);
        }
        CompletionStage<JobResult> result = submit(jobId, snapshot.program().graph(), inputs, options);
        if (stored.isEmpty()) {
            return result;
        }
        return result.whenComplete((r, error) -> store.release(stored));
    }

    /** The value inline, or (large, with a store) by reference: a weight's own memory, or a copy of a host tensor. */
    private TensorPayload payload(TensorValue value, List<BufferId> stored) {
        long size = TensorBytes.byteSize(value.type());
        if (store == null || size <= INLINE_LIMIT_BYTES) {
            return new TensorPayload.Inline(value.type(), StorageFormat.bytes(value));
        }
        MemorySegment bytes = switch (value) {
            case WeightTensor w when w.rows() instanceof CodecWeightRows c -> c.data();
            case WeightTensor w when w.rows() instanceof SegmentWeightRows r -> r.data();
            default -> MemorySegment.ofArray(StorageFormat.bytes(value));
        };
        // negative ids: schedulers number their buffers from the positive half
        BufferId id = new BufferId(ThreadLocalRandom.current().nextLong() | Long.MIN_VALUE);
        TensorRef ref = new TensorRef(id, 0, value.type(), store.nodeId(), Location.HOST);
        store.put(new TensorStore.Entry(ref, bytes, () -> { }));
        stored.add(id);
        return new TensorPayload.Stored(ref);
    }

    /** Runs {@code graph} with {@code inputs} bound to its input nodes; outputs are {@code graph.outputs()}. */
    public CompletionStage<JobResult> submit(JobId jobId, OpGraph graph, List<JobInput> inputs, JobOptions options) {
        Duration wait = options.deadlineMillis() > 0
                ? Duration.ofMillis(options.deadlineMillis()).plusSeconds(10) : timeout;
        CompletionStage<JobReply> reply = AskPattern.ask(scheduler,
                replyTo -> new JobCommand.SubmitJob(jobId, graph, inputs, options, replyTo), wait, system.scheduler());
        return reply.handle((answer, error) -> {
            if (error != null) {
                scheduler.tell(new JobCommand.CancelJob(jobId, "client gave up after " + wait));
                TimeoutException t = new TimeoutException(jobId + ": no answer within " + wait);
                t.initCause(error);
                throw new CompletionException(t);
            }
            return switch (answer) {
                case JobReply.JobCompleted done -> done;
                case JobReply.JobFailed failed -> throw new JobFailedException(failed);
                case JobReply.JobCancelled cancelled -> throw new JobCancelledException(cancelled.jobId(),
                        cancelled.reason());
            };
        }).thenCompose(this::pullOutputs);
    }

    /** The reply with every output inline: those sent by reference are pulled, then released at the scheduler. */
    private CompletionStage<JobResult> pullOutputs(JobReply.JobCompleted done) {
        List<CompletableFuture<TensorPayload>> outputs = new ArrayList<>(done.outputs().size());
        boolean byReference = false;
        for (int i = 0; i < done.outputs().size(); i++) {
            TensorPayload p = done.outputs().get(i);
            if (p instanceof TensorPayload.Stored stored) {
                byReference = true;
                outputs.add(pull(i, stored.ref()));
            } else {
                outputs.add(CompletableFuture.completedFuture(p));
            }
        }
        if (!byReference) {
            return CompletableFuture.completedFuture(new JobResult(done));
        }
        return CompletableFuture.allOf(outputs.toArray(CompletableFuture[]::new))
                .whenComplete((ok, error) -> scheduler.tell(new JobCommand.ReleaseOutputs(done.jobId())))
                .thenApply(ok -> new JobResult(new JobReply.JobCompleted(done.jobId(),
                        outputs.stream().map(CompletableFuture::join).toList(), done.stats())));
    }

    /** Output {@code i}'s bytes, from this node's store or pulled from its node, as an inline value. */
    private CompletableFuture<TensorPayload> pull(int i, TensorRef ref) {
        if (store != null && ref.nodeId().equals(store.nodeId())) {
            MemorySegment bytes = store.get(ref);
            if (bytes != null) {
                return CompletableFuture.completedFuture(new TensorPayload.Inline(ref.type(),
                        bytes.toArray(ValueLayout.JAVA_BYTE)));
            }
        }
        if (fetcher == null) {
            return CompletableFuture.failedFuture(new IllegalStateException("output " + i + " (" + ref.type() + ", "
                    + ref.byteSize() + " bytes) was sent by reference from node " + ref.nodeId() + ", and this client"
                    + " has no tensor fetcher to pull it: use a node's client (AetherNode.client)"));
        }
        CompletableFuture<TensorStore.Entry> fetched;
        try {
            fetched = fetcher.fetch(ref);
        } catch (RuntimeException e) {
            fetched = CompletableFuture.failedFuture(e);
        }
        return fetched.thenApply(entry -> {
            try {
                return new TensorPayload.Inline(ref.type(), entry.bytes().toArray(ValueLayout.JAVA_BYTE));
            } finally {
                entry.free().run();
            }
        });
    }

    /** Asks the scheduler to stop the job; its stage then fails with {@link JobCancelledException}. */
    public void cancel(JobId jobId, String reason) {
        scheduler.tell(new JobCommand.CancelJob(jobId, reason));
    }
}
