/**
 * Optimizers that update the parameter leaves of a {@link aether.scheduler.graph.Graph} from evaluated gradients: {@link
 * aether.scheduler.optim.Sgd} (with momentum, optionally Nesterov) and {@link aether.scheduler.optim.AdamW} (decoupled
 * weight decay). State (momentum, moments) lives in host arrays, one per parameter, allocated on the first step.
 */
package aether.scheduler.optim;
