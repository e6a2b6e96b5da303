package aether.runtime.protocol;

import org.apache.pekko.actor.typed.receptionist.ServiceKey;

/** Receptionist keys under which the runtime's actors register, cluster-wide. */
public final class ServiceKeys {
    private ServiceKeys() {}

    /** Device workers (CPU pools, GPUs); schedulers subscribe to this listing and ask each for its capabilities. */
    public static final ServiceKey<WorkerCommand> WORKERS = ServiceKey.create(WorkerCommand.class, "aether-workers");

    /** Schedulers; clients on any node submit jobs to one of them. */
    public static final ServiceKey<JobCommand> SCHEDULERS = ServiceKey.create(JobCommand.class, "aether-schedulers");
}
