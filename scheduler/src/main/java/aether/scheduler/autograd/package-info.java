/**
 * Reverse-mode automatic differentiation over the Graph API. {@link aether.scheduler.autograd.Autograd#backward}
 * appends, for a scalar output, the vector-Jacobian products of every op as ordinary graph nodes (so gradient graphs are
 * optimized and executed like forward ones) and returns {@link aether.scheduler.autograd.Gradients}. Broadcasting is
 * undone by summing over broadcast dimensions. Not differentiable (zero gradient or constant): argmax, comparisons,
 * indices (get_rows ids, rope positions), masks and quantized weights.
 */
package aether.scheduler.autograd;
