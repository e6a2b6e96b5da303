/**
 * The tensor model: element types (every ggml block format), shapes and off-heap storage. Depends on nothing but the
 * JDK; every other package of the runtime builds on it.
 */
package aether.runtime.tensor;
