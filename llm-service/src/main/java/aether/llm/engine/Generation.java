package aether.llm.engine;

import java.util.List;

/**
 * The result of a greedy generation.
 *
 * @param ids  the generated token ids, in order (the prompt is not included)
 * @param top  for each generated position, the {@code k} most likely tokens by logit, descending (ties: lower id
 *             first); {@code top.get(i).get(0).id() == ids[i]}
 */
public record Generation(int[] ids, List<List<TokenLogprob>> top) {

    public Generation {
        ids = ids.clone();
        top = List.copyOf(top);
    }

    @Override
    public int[] ids() {
        return ids.clone();
    }
}
