package aether.scheduler.client;

import aether.device.cpu.CpuDevice;
import aether.device.spi.Device;
import aether.device.spi.HostSegmentRunner;
import aether.device.worker.DeviceWorker;
import aether.device.worker.TensorFetcher;
import aether.device.worker.TensorStore;
import aether.runtime.memory.MemoryManager;
import aether.runtime.protocol.JobCommand;
import aether.runtime.protocol.Location;
import aether.scheduler.actor.Scheduler;
import aether.scheduler.exec.HostSegmentExecutor;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.pekko.actor.NoSerializationVerificationNeeded;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.Props;
import org.apache.pekko.actor.typed.javadsl.Behaviors;

/**
 * One node's compute runtime in an existing actor system: a memory manager, one CPU {@link DeviceWorker} per
 * configured pool (each a {@link CpuDevice} over the {@link HostSegmentExecutor}), and a {@link Scheduler}, all under
 * one parent actor. The workers register with the Receptionist, so schedulers on other nodes of a cluster find them
 * too. {@link #close} stops the actors, then the devices' threads.
 */
public final class ComputeRuntime implements AutoCloseable {

    /**
     * @param nodeId              this node's id in tensor descriptors
     * @param cpuWorkers          CPU workers (pools) to start
     * @param concurrency         segments each runs at once
     * @param memoryBytesPerWorker the budget of each worker's output buffers
     * @param hostBudgetBytes     the memory manager's soft budget for host memory
     */
    public record Settings(String nodeId, int cpuWorkers, int concurrency, long memoryBytesPerWorker,
            long hostBudgetBytes) {
        public Settings {
            if (nodeId == null || nodeId.isBlank() || cpuWorkers < 0 || concurrency < 1 || memoryBytesPerWorker < 0
                    || hostBudgetBytes < 0) {
                throw new IllegalArgumentException("compute runtime: nodeId '" + nodeId + "', cpuWorkers "
                        + cpuWorkers + ", concurrency " + concurrency + ", memoryBytesPerWorker "
                        + memoryBytesPerWorker + ", hostBudgetBytes " + hostBudgetBytes
                        + " (expected: a name, 0+, 1+, 0+, 0+)");
            }
        }

        /** {@code cpuWorkers} workers running one segment each, 1 GiB of outputs each, 8 GiB of host budget. */
        public static Settings of(String nodeId, int cpuWorkers) {
            return new Settings(nodeId, cpuWorkers, 1, 1L << 30, 8L << 30);
        }
    }

    private enum Stop implements NoSerializationVerificationNeeded { INSTANCE }

    private record Started(ActorRef<JobCommand> scheduler, ActorRef<MemoryManager.Command> memory,
            List<ActorRef<?>> workers) {}

    private static final AtomicInteger INSTANCES = new AtomicInteger();

    private final ActorSystem<?> system;
    private final TensorStore store;
    private final List<Device> devices;
    private final ActorRef<Stop> parent;
    private final Started started;

    private ComputeRuntime(ActorSystem<?> system, TensorStore store, List<Device> devices, ActorRef<Stop> parent,
            Started started) {
        this.system = system;
        this.store = store;
        this.devices = devices;
        this.parent = parent;
        this.started = started;
    }

    /** Starts the runtime with CPU devices over the standard {@link HostSegmentExecutor}. */
    public static ComputeRuntime start(ActorSystem<?> system, Settings settings) {
        HostSegmentExecutor executor = new HostSegmentExecutor();
        List<Device> devices = new ArrayList<>();
        for (int i = 0; i < settings.cpuWorkers(); i++) {
            devices.add(new CpuDevice(i, settings.concurrency(), settings.memoryBytesPerWorker(), executor,
                    HostSegmentExecutor.ops(), HostSegmentExecutor.dtypes(), HostSegmentExecutor.quantTypes()));
        }
        return start(system, settings, devices);
    }

    /** Starts the runtime over the given devices (e.g. CPU devices with a custom {@link HostSegmentRunner}). */
    public static ComputeRuntime start(ActorSystem<?> system, Settings settings, List<Device> devices) {
        TensorStore store = new TensorStore(settings.nodeId());
        TensorFetcher fetcher = TensorFetcher.localOnly(settings.nodeId());
        CompletableFuture<Started> ready = new CompletableFuture<>();
        Behavior<Stop> behavior = Behaviors.setup(context -> {
            ActorRef<MemoryManager.Command> memory = context.spawn(
                    MemoryManager.create(Map.of(Location.HOST, settings.hostBudgetBytes())), "memory");
            List<ActorRef<?>> workers = new ArrayList<>();
            for (int i = 0; i < devices.size(); i++) {
                String id = settings.nodeId() + "/" + devices.get(i).capabilities().kind().name().toLowerCase(
                        java.util.Locale.ROOT) + "-" + i;
                workers.add(context.spawn(DeviceWorker.create(id, devices.get(i), store, fetcher), "worker-" + i));
            }
            ActorRef<aether.runtime.protocol.SchedulerMessage> scheduler = context.spawn(
                    Scheduler.create(store, fetcher, memory), "scheduler");
            ready.complete(new Started(scheduler.narrow(), memory, workers));
            return Behaviors.receive(Stop.class).onMessage(Stop.class, stop -> Behaviors.stopped()).build();
        });
        String name = "compute-" + settings.nodeId().replaceAll("[^A-Za-z0-9_-]", "_") + "-"
                + INSTANCES.incrementAndGet();
        ActorRef<Stop> parent = system.systemActorOf(behavior, name, Props.empty());
        Started started = ready.orTimeout(30, java.util.concurrent.TimeUnit.SECONDS).join();
        return new ComputeRuntime(system, store, List.copyOf(devices), parent, started);
    }

    /** A client of this runtime's scheduler. */
    public ComputeClient client() {
        return new ComputeClient(system, started.scheduler());
    }

    /** A client that waits at most {@code timeout} for jobs without a deadline. */
    public ComputeClient client(Duration timeout) {
        return new ComputeClient(system, started.scheduler(), timeout);
    }

    public ActorRef<JobCommand> scheduler() {
        return started.scheduler();
    }

    public ActorRef<MemoryManager.Command> memoryManager() {
        return started.memory();
    }

    public TensorStore store() {
        return store;
    }

    public List<Device> devices() {
        return devices;
    }

    @Override
    public void close() {
        parent.tell(Stop.INSTANCE);
        for (Device d : devices) {
            d.close();
        }
    }
}
