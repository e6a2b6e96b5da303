package aether.cluster.node;

import aether.device.cpu.CpuDevice;
import aether.device.spi.Device;
import aether.device.worker.DeviceWorker;
import aether.runtime.exchange.ExchangeNode;
import aether.runtime.memory.MemoryManager;
import aether.runtime.protocol.BufferId;
import aether.runtime.protocol.JobCommand;
import aether.runtime.protocol.Location;
import aether.runtime.protocol.SchedulerMessage;
import aether.runtime.transfer.NodeIds;
import aether.runtime.transfer.TensorService;
import aether.runtime.transfer.TensorSource;
import aether.runtime.transfer.TensorStore;
import aether.runtime.transfer.TransferSettings;
import aether.scheduler.actor.Scheduler;
import aether.scheduler.exec.HostSegmentExecutor;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import org.apache.pekko.actor.NoSerializationVerificationNeeded;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.SelfUp;
import org.apache.pekko.cluster.typed.Subscribe;

/**
 * The node's root actor. It spawns the node's services: the tensor service (bytes between nodes), the memory
 * manager, one device worker per CPU device (registered with the Receptionist, so every scheduler of the cluster may
 * place segments on them), and a scheduler (registered too: clients on any node may submit to it). Workers and the
 * scheduler fetch tensors of other nodes through the tensor service. It reports, through futures that
 * {@link AetherNode} waits on, when they exist and when this member is Up; on stop it closes the devices.
 */
final class NodeGuardian extends AbstractBehavior<NodeGuardian.Command> {

    sealed interface Command {}

    private record BecameUp(SelfUp event) implements Command, NoSerializationVerificationNeeded {}

    /** What the guardian started, handed back to {@link AetherNode}. */
    record Started(String nodeId, TensorStore store, aether.device.worker.TensorStore workerStore,
            ActorRef<TensorService.Command> tensorService, ActorRef<JobCommand> scheduler,
            ActorRef<MemoryManager.Command> memory, List<ActorRef<?>> workers,
            aether.device.worker.TensorFetcher fetcher) {}

    private final CompletableFuture<Void> up;
    private final List<Device> devices;

    static Behavior<Command> create(NodeSettings settings, ExchangeNode exchange, TransferSettings transfer,
            CompletableFuture<Started> started, CompletableFuture<Void> up) {
        return Behaviors.setup(ctx -> {
            List<Device> devices = new ArrayList<>();
            try {
                String nodeId = NodeIds.of(ctx.getSystem());
                TensorStore store = new TensorStore(nodeId);
                var workerStore = new aether.device.worker.TensorStore(nodeId);
                TensorSource workerOutputs = (id, version) -> {
                    var entry = workerStore.entry(new BufferId(id));
                    return entry != null && entry.ref().version() == version ? entry.bytes() : null;
                };
                ActorRef<TensorService.Command> service =
                        ctx.spawn(TensorService.create(store, workerOutputs, exchange, transfer), "tensor-service");
                var fetcher = new ClusterTensorFetcher(ctx.getSystem(), service, store,
                        transfer.answerTimeout().plus(transfer.transferTimeout()).plusSeconds(5));
                // the compute path (memory manager, workers, scheduler) shares the compute dispatcher's thread
                var compute = org.apache.pekko.actor.typed.DispatcherSelector.fromConfig(
                        aether.scheduler.client.ComputeRuntime.Settings.DISPATCHER);
                // GPUs first: their memory budgets go to the memory manager (the driver is asked once, at start)
                List<aether.device.cuda.CudaDevice> gpus = settings.gpuWorkers().open(
                        line -> ctx.getLog().info("node {}: {}", nodeId, line));
                devices.addAll(gpus);
                ActorRef<MemoryManager.Command> memory = ctx.spawn(MemoryManager.create(
                        aether.scheduler.client.ComputeRuntime.memoryBudgets(settings.hostBudgetBytes(),
                                List.copyOf(gpus))), "memory", compute);
                HostSegmentExecutor executor = new HostSegmentExecutor();
                List<ActorRef<?>> workers = new ArrayList<>();
                for (int i = 0; i < settings.cpuWorkers(); i++) {
                    CpuDevice device = new CpuDevice(i, settings.cpuThreads(), settings.workerMemoryBytes(), executor,
                            HostSegmentExecutor.ops(), HostSegmentExecutor.dtypes(), HostSegmentExecutor.quantTypes(),
                            CpuDevice.inlineMaxElements());
                    devices.add(device);
                    workers.add(ctx.spawn(DeviceWorker.create(nodeId + "/cpu-" + i, device, workerStore, fetcher),
                            "cpu-worker-" + i, compute));
                }
                for (aether.device.cuda.CudaDevice gpu : gpus) {
                    String name = "cuda-" + gpu.capabilities().ordinal();
                    workers.add(ctx.spawn(DeviceWorker.create(nodeId + "/" + name, gpu, workerStore, fetcher, memory),
                            name + "-worker", compute));
                }
                ActorRef<SchedulerMessage> scheduler = ctx.spawn(Scheduler.create(workerStore, fetcher, memory),
                        "scheduler", compute);
                started.complete(new Started(nodeId, store, workerStore, service, scheduler.narrow(), memory,
                        List.copyOf(workers), fetcher));
                return new NodeGuardian(ctx, up, devices);
            } catch (RuntimeException | Error e) {
                devices.forEach(Device::close);
                started.completeExceptionally(e);
                throw e;
            }
        });
    }

    private NodeGuardian(ActorContext<Command> context, CompletableFuture<Void> up, List<Device> devices) {
        super(context);
        this.up = up;
        this.devices = devices;
        Cluster.get(context.getSystem()).subscriptions().tell(
                Subscribe.create(context.messageAdapter(SelfUp.class, BecameUp::new), SelfUp.class));
    }

    @Override
    public Receive<Command> createReceive() {
        return newReceiveBuilder()
                .onMessage(BecameUp.class, m -> {
                    up.complete(null);
                    return this;
                })
                .onSignal(PostStop.class, s -> {
                    devices.forEach(Device::close);     // children (the workers) have stopped by now
                    return this;
                })
                .build();
    }
}
