/**
 * The Java API of the compute runtime: {@link aether.scheduler.client.ComputeClient} submits graphs as job messages
 * and returns a {@code CompletionStage} of {@link aether.scheduler.client.JobResult};
 * {@link aether.scheduler.client.ComputeRuntime} starts one node's memory manager, CPU workers and scheduler in an
 * actor system. Depends on the scheduler actor and the Graph API.
 */
package aether.scheduler.client;
