package aether.runtime.protocol;

/**
 * Anything a device worker actor receives. Not sealed: a worker adds its own private messages (completions piped to
 * itself); what other actors and nodes send it is the sealed {@link WorkerCommand}.
 */
public interface WorkerMessage {}
