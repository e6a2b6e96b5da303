package aether.llm.engine;

/** A token and its natural-log probability under the full softmax of one step's logits. */
public record TokenLogprob(int id, double logprob) {}
