package aether.runtime.protocol;

import org.apache.pekko.actor.typed.ActorRef;

/** A worker's answer to {@link WorkerCommand.DescribeWorker}. */
public record WorkerDescribed(ActorRef<WorkerCommand> worker, WorkerCapabilities capabilities)
        implements SchedulerMessage, CborSerializable {}
