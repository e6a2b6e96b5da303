/**
 * The scheduler actor: accepts compute jobs as messages ({@link aether.runtime.protocol.JobCommand}), compiles them,
 * splits them into segments, places segments on the device workers found through the Receptionist, keeps per-worker
 * ready queues with work stealing between CPU workers, and answers each job once (outputs, or a failure naming the
 * segment and op). Depends on the compiler and the device workers' protocol and tensor store; never on a device's
 * implementation.
 */
package aether.scheduler.actor;
