package aether.scheduler.client;

import aether.device.cpu.CpuDevice;
import aether.device.cuda.GpuWorkers;
import aether.device.spi.Device;
import aether.device.spi.HostSegmentRunner;
import aether.device.worker.DeviceWorker;
import aether.device.worker.TensorFetcher;
import aether.device.worker.TensorStore;
import aether.runtime.memory.MemoryManager;
import aether.runtime.protocol.JobCommand;
import aether.runtime.protocol.Location;
import aether.runtime.protocol.SchedulerState;
import org.apache.pekko.actor.typed.javadsl.AskPattern;
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
import org.apache.pekko.actor.typed.DispatcherSelector;
import org.apache.pekko.actor.typed.Props;
import org.apache.pekko.actor.typed.javadsl.Behaviors;

/**
 * One node's compute runtime in an existing actor system: a memory manager, one CPU {@link DeviceWorker} per
 * configured pool (each a {@link CpuDevice} over the {@link HostSegmentExecutor}), one per CUDA GPU when there are
 * any ({@link GpuWorkers}), and a {@link Scheduler}, all under
 * one parent actor. The workers register with the Receptionist, so schedulers on other nodes of a cluster find them
 * too. {@link #start} returns once the scheduler knows this node's workers; {@link #close} stops the actors, then the
 * devices' threads.
 */
public final class ComputeRuntime implements AutoCloseable {

    /**
     * @param nodeId              this node's id in tensor descriptors
     * @param cpuWorkers          CPU workers (pools) to start
     * @param concurrency         segments each runs at once
     * @param memoryBytesPerWorker the budget of each worker's output buffers
     * @param hostBudgetBytes     the memory manager's soft budget for host memory
     * @param dispatcher          config path of the dispatcher the runtime's actors run on ({@link #DISPATCHER}
     *                            unless told otherwise), or "" for the system's default dispatcher
     */
    public record Settings(String nodeId, int cpuWorkers, int concurrency, long memoryBytesPerWorker,
            long hostBudgetBytes, String dispatcher) {
        public Settings {
            if (nodeId == null || nodeId.isBlank() || cpuWorkers < 0 || concurrency < 1 || memoryBytesPerWorker < 0
                    || hostBudgetBytes < 0) {
                throw new IllegalArgumentException("compute runtime: nodeId '" + nodeId + "', cpuWorkers "
                        + cpuWorkers + ", concurrency " + concurrency + ", memoryBytesPerWorker "
                        + memoryBytesPerWorker + ", hostBudgetBytes " + hostBudgetBytes
                        + " (expected: a name, 0+, 1+, 0+, 0+)");
            }
        }

        /**
         * The compute actors' dispatcher, defined in runtime-actors' reference.conf: one thread that spins 50 us
         * before it parks, so the scheduler, workers and memory manager hand messages to each other without thread
         * wake-ups (BENCHMARKS.md: dispatch overhead per segment, against Pekko's default dispatcher).
         */
        public static final String DISPATCHER = "aether.compute-dispatcher";

        /** Settings on the compute dispatcher ({@link #DISPATCHER}). */
        public Settings(String nodeId, int cpuWorkers, int concurrency, long memoryBytesPerWorker,
                long hostBudgetBytes) {
            this(nodeId, cpuWorkers, concurrency, memoryBytesPerWorker, hostBudgetBytes, DISPATCHER);
        }

        /** {@code cpuWorkers} workers running one segment each, 1 GiB of outputs each, 8 GiB of host budget. */
        public static Settings of(String nodeId, int cpuWorkers) {
            return new Settings(nodeId, cpuWorkers, 1, 1L << 30, 8L << 30);
        }

        public Settings withDispatcher(String path) {
            return new Settings(nodeId, cpuWorkers, concurrency, memoryBytesPerWorker, hostBudgetBytes, path);
        }

        Props props() {
            return dispatcher == null || dispatcher.isEmpty() ? Props.empty() : DispatcherSelector.fromConfig(dispatcher);
        }
    }

    /** What the runtime's parent actor is told (local only). */
    private sealed interface ParentCommand extends NoSerializationVerificationNeeded {}

    private enum Stop implements ParentCommand { INSTANCE }

    private record StopChild(ActorRef<?> child) implements ParentCommand {}

    private record Started(ActorRef<JobCommand> scheduler, ActorRef<MemoryManager.Command> memory,
            List<ActorRef<?>> workers) {}

    private static final AtomicInteger INSTANCES = new AtomicInteger();

    private final ActorSystem<?> system;
    private final TensorStore store;
    private final List<Device> devices;
    private final ActorRef<ParentCommand> parent;
    private final Started started;

    private ComputeRuntime(ActorSystem<?> system, TensorStore store, List<Device> devices,
            ActorRef<ParentCommand> parent,
            Started started) {
        this.system = system;
        this.store = store;
        this.devices = devices;
        this.parent = parent;
        this.started = started;
    }

    /**
     * Starts the runtime with CPU devices over the standard {@link HostSegmentExecutor} and, as the system property
     * {@value GpuWorkers#PROPERTY} says ({@code auto} when unset), one CUDA worker per GPU.
     */
    public static ComputeRuntime start(ActorSystem<?> system, Settings settings) {
        return start(system, settings, GpuWorkers.fromSystemProperty());
    }

    /**
     * Starts the runtime with CPU devices over the standard {@link HostSegmentExecutor} and, as {@code gpus} says, one
     * CUDA worker per GPU the driver sees (without a driver or a GPU, {@code auto} logs one line and runs CPU workers
     * only). Each GPU's memory budget is registered with the memory manager at its {@link Location#device}.
     */
    public static ComputeRuntime start(ActorSystem<?> system, Settings settings, GpuWorkers gpus) {
        List<Device> devices = cpuDevices(settings);
        devices.addAll(gpus.open(line -> system.log().info("compute runtime {}: {}", settings.nodeId(), line)));
        try {
            return start(system, settings, devices);
        } catch (RuntimeException e) {
            devices.forEach(Device::close);
            throw e;
        }
    }

    /** The CPU devices of {@code settings}: {@code cpuWorkers} pools over one shared {@link HostSegmentExecutor}. */
    public static List<Device> cpuDevices(Settings settings) {
        HostSegmentExecutor executor = new HostSegmentExecutor();
        List<Device> devices = new ArrayList<>();
        for (int i = 0; i < settings.cpuWorkers(); i++) {
            devices.add(new CpuDevice(i, settings.concurrency(), settings.memoryBytesPerWorker(), executor,
                    HostSegmentExecutor.ops(), HostSegmentExecutor.dtypes(), HostSegmentExecutor.quantTypes(),
                    CpuDevice.inlineMaxElements()));
        }
        return devices;
    }

    /**
     * The memory manager's budgets: host memory as the settings say, and each non-CPU device's memory (its
     * capabilities' budget) at {@link Location#device} of its ordinal.
     */
    public static Map<Location, Long> memoryBudgets(long hostBudgetBytes, List<Device> devices) {
        Map<Location, Long> budgets = new java.util.LinkedHashMap<>();
        budgets.put(Location.HOST, hostBudgetBytes);
        for (Device d : devices) {
            if (d.capabilities().kind() != aether.runtime.protocol.DeviceKind.CPU) {
                budgets.merge(Location.device(d.capabilities().ordinal()), d.capabilities().memoryBytes(), Long::sum);
            }
        }
        return budgets;
    }

    /** A worker's id on its node: {@code cpu-<index>} for CPU pools, {@code <kind>-<ordinal>} for devices. */
    public static String workerName(Device device, int index) {
        var caps = device.capabilities();
        return caps.kind().name().toLowerCase(java.util.Locale.ROOT) + "-"
                + (caps.kind() == aether.runtime.protocol.DeviceKind.CPU ? index : caps.ordinal());
    }

    /** Starts the runtime over the given devices (e.g. CPU devices with a custom {@link HostSegmentRunner}). */
    public static ComputeRuntime start(ActorSystem<?> system, Settings settings, List<Device> devices) {
        TensorStore store = new TensorStore(settings.nodeId());
        return start(system, settings, devices, store, TensorFetcher.localOnly(settings.nodeId()), true);
    }

    /**
     * Starts the runtime over the given devices, store and fetcher (a cluster node passes its exchange-backed
     * fetcher); {@code withScheduler} false starts only the memory manager and the workers (a worker-only node). The
     * store's node id must be the settings' node id.
     */
    public static ComputeRuntime start(ActorSystem<?> system, Settings settings, List<Device> devices,
            TensorStore store, TensorFetcher fetcher, boolean withScheduler) {
        if (!store.nodeId().equals(settings.nodeId())) {
            throw new IllegalArgumentException("compute runtime " + settings.nodeId() + ": the store is node "
                    + store.nodeId());
        }
        CompletableFuture<Started> ready = new CompletableFuture<>();
        Behavior<ParentCommand> behavior = Behaviors.setup(context -> {
            ActorRef<MemoryManager.Command> memory = context.spawn(
                    MemoryManager.create(memoryBudgets(settings.hostBudgetBytes(), devices)), "memory",
                    settings.props());
            List<ActorRef<?>> workers = new ArrayList<>();
            for (int i = 0; i < devices.size(); i++) {
                String id = settings.nodeId() + "/" + workerName(devices.get(i), i);
                workers.add(context.spawn(DeviceWorker.create(id, devices.get(i), store, fetcher, memory), "worker-" + i,
                        settings.props()));
            }
            ActorRef<aether.runtime.protocol.SchedulerMessage> scheduler = withScheduler ? context.spawn(
                    Scheduler.create(store, fetcher, memory), "scheduler", settings.props()) : null;
            ready.complete(new Started(scheduler == null ? null : scheduler.<JobCommand>narrow(), memory, workers));
            return Behaviors.receive(ParentCommand.class)
                    .onMessage(Stop.class, stop -> Behaviors.stopped())
                    .onMessage(StopChild.class, stop -> {
                        context.stop(stop.child());
                        return Behaviors.same();
                    })
                    .build();
        });
        String name = "compute-" + settings.nodeId().replaceAll("[^A-Za-z0-9_-]", "_") + "-"
                + INSTANCES.incrementAndGet();
        ActorRef<ParentCommand> parent = system.systemActorOf(behavior, name, Props.empty());
        Started started = ready.orTimeout(30, java.util.concurrent.TimeUnit.SECONDS).join();
        if (withScheduler) {
            awaitWorkers(system, started.scheduler(), settings.nodeId(), devices.size());
        }
        return new ComputeRuntime(system, store, List.copyOf(devices), parent, started);
    }

    /** Waits (on the caller's thread, at most 30 s) until the scheduler has described this node's workers. */
    private static void awaitWorkers(ActorSystem<?> system, ActorRef<JobCommand> scheduler, String nodeId, int count) {
        long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(30);
        while (true) {
            SchedulerState state = AskPattern.<JobCommand, SchedulerState>ask(scheduler,
                    JobCommand.GetSchedulerState::new, Duration.ofSeconds(5), system.scheduler())
                    .toCompletableFuture().join();
            long local = state.workers().stream().filter(w -> w.capabilities().nodeId().equals(nodeId)).count();
            if (local >= count) {
                return;
            }
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("compute runtime " + nodeId + ": the scheduler knows " + local + " of "
                        + count + " workers after 30 s");
            }
            try {
                Thread.sleep(5);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while starting the compute runtime", e);
            }
        }
    }

    /** A client of this runtime's scheduler; large inputs go by reference through this node's store. */
    public ComputeClient client() {
        return client(ComputeClient.DEFAULT_TIMEOUT);
    }

    /** A client that waits at most {@code timeout} for jobs without a deadline. */
    public ComputeClient client(Duration timeout) {
        return new ComputeClient(system, scheduler(), timeout, store);
    }

    /** This node's scheduler; fails on a worker-only runtime. */
    public ActorRef<JobCommand> scheduler() {
        if (started.scheduler() == null) {
            throw new IllegalStateException("this compute runtime runs no scheduler (a worker-only node)");
        }
        return started.scheduler();
    }

    public ActorRef<MemoryManager.Command> memoryManager() {
        return started.memory();
    }

    /** The device workers, in device order. */
    public List<ActorRef<?>> workers() {
        return started.workers();
    }

    /**
     * Stops worker {@code index} as if its process had died: the scheduler sees it terminate and fails or retries its
     * segments. Its device keeps running whatever it had started; {@link #close} stops it.
     */
    public void stopWorker(int index) {
        parent.tell(new StopChild(started.workers().get(index)));
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
