/**
 * Executors for the compute actors' dispatcher: a few threads that spin briefly before parking, so that a message
 * answered within microseconds (a segment's completion) is picked up without a thread wake-up.
 */
package aether.runtime.dispatch;
