package aether.llm.sampling;

/**
 * What an engine needs to compute one entry's sampling {@link Candidates} instead of handing out its logits, and to
 * know afterwards whether they suffice. Made by the request's sampler before the step; valid until its next token.
 */
public interface CandidateRequest {

    /** The sparse adjustments (bias, penalties) to apply to the raw logits before selecting the candidates. */
    LogitAdjustments adjustments();

    /**
     * Whether row {@code row} of {@code candidates} decides this step's token (and whatever else the request reads from
     * the logits, such as log-probabilities) exactly as the whole logits row would. Pure: it draws no random number and
     * gives the same answer when asked again. When false, the engine hands out the raw logits row as well.
     */
    boolean decides(Candidates candidates, int row);

    /**
     * Whether {@link #decides} (and the sampling after it) reads {@link Candidates#expSum}: an engine computing the
     * candidates on the host may then skip the pass of {@code exp} over the whole row (a device computes it anyway).
     */
    default boolean needsExpSum() {
        return true;
    }

    /**
     * The uniform number in [0, 1) of this step's draw over the whole adjusted row ({@link Sampler#fullDrawUniform}),
     * or NaN when the token is not such a draw (the default): with it, the engine also computes the draw's token
     * ({@link Candidates#drawnId}) so that the row need not leave the device.
     */
    default double drawUniform() {
        return Double.NaN;
    }

    /** The inverse temperature of that draw ({@link Sampler#inverseTemperature}); read only with a {@link #drawUniform}. */
    default double drawInverseTemperature() {
        return Double.NaN;
    }
}
