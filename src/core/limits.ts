/**
 * Upper bounds on options, so that no accepted option makes every step fail. Each bound says why.
 * Browser-safe (no tfjs).
 * @module
 */

/**
 * The largest weight an option may set: `fixed` weights, `aligned-mtl` preferences, and the core
 * settings `baseWeights`, `frozen`, `warmup.weights` and `bounds`.
 *
 * Why 1e12: the weighted loss `w·L` and the gradient `w·g` are formed in float32, whose largest
 * value is about 3.4e38. A weight of 1e12 leaves 26 orders of magnitude for the loss and its
 * gradient; a weight of 1e308 (accepted before this bound) overflowed on every step, so that every
 * step was skipped.
 */
export const MAX_WEIGHT = 1e12;

/**
 * The largest learning rate of a strategy's own learned weights (`gradnorm`, `uncertainty`, `famo`).
 *
 * Why 10: Adam moves each parameter by about `lr` per step; these parameters are weights or
 * log-weights, so `lr` above a few units changes a weight by orders of magnitude in one step, and a
 * rate of 1e308 made every update non-finite (every step skipped). The published defaults are
 * 0.01–0.025.
 */
export const MAX_WEIGHT_LR = 10;

/** The message of a weight option above {@link MAX_WEIGHT}. */
export const MAX_WEIGHT_RULE = `must be at most ${MAX_WEIGHT} (a larger weight times an ordinary loss or gradient leaves the float32 range)`;

/** The message of a learning rate above {@link MAX_WEIGHT_LR}. */
export const MAX_WEIGHT_LR_RULE = `must be at most ${MAX_WEIGHT_LR} (Adam moves a weight parameter by about lr per step; larger rates overflow the weights)`;
