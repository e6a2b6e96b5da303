/** JMH benchmarks of the scheduler actor's dispatch path (run with scripts/jmh scheduler ...). */
package aether.scheduler.actor.bench;
