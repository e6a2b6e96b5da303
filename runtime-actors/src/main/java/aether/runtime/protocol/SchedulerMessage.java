package aether.runtime.protocol;

/**
 * Anything a scheduler actor receives. Not sealed: the scheduler adds its own private messages (timers, adapters);
 * what other actors and nodes send it is the sealed {@link JobCommand}, {@link SegmentEvent} and
 * {@link WorkerDescribed}.
 */
public interface SchedulerMessage {}
