/**
 * Measurement helpers shared by benchmarks and {@code ./aether bench}: the machine's own limits (memory read
 * bandwidth), measured in the same run as the thing compared against them. Depends only on the JDK.
 */
package aether.runtime.bench;
