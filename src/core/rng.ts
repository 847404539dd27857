/**
 * A seeded random number generator whose whole state is one 32-bit integer, so that a strategy that
 * draws random numbers (PCGrad's order, RLW's weights, ReLoBRaLo's lookback) checkpoints and resumes
 * bit-exactly. The generator is mulberry32 (Tommy Ettinger, public domain): small, fast, and good
 * enough for shuffles and Bernoulli draws; this is not for cryptography.
 *
 * All functions are pure: they take a state and return `[value, nextState]`.
 */

/** The state of the generator: an unsigned 32-bit integer. */
export type RngState = number;

/** The initial state for a seed (any finite number; hashed to 32 bits). */
export function seedRng(seed: number): RngState {
  let h = Math.floor(seed) ^ 0x9e3779b9;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * The seed to hand to a tfjs random op (`tf.randomNormal`, `tf.randomUniform`, ...). tfjs ignores a
 * seed of 0: its generators take `seed ? seed : Math.random()` (tfjs-core `ops/rand_util.js`), so a
 * tensor "seeded" with 0 differs from process to process. This maps 0 to 0.5, which no integer seed
 * reaches, and returns every other value unchanged (so results for non-zero seeds stay the same).
 */
export function tfjsSeed(seed: number): number {
  return seed === 0 ? 0.5 : seed;
}

/** A uniform number in [0, 1). */
export function uniform(state: RngState): [number, RngState] {
  const next = (state + 0x6d2b79f5) >>> 0;
  let t = next;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return [((t ^ (t >>> 14)) >>> 0) / 4294967296, next];
}

/** A standard normal sample (Box–Muller, one of the pair). */
export function normal(state: RngState): [number, RngState] {
  const [u1, s1] = uniform(state);
  const [u2, s2] = uniform(s1);
  const r = Math.sqrt(-2 * Math.log(1 - u1));
  return [r * Math.cos(2 * Math.PI * u2), s2];
}

/** A random permutation of 0..n-1 (Fisher–Yates). */
export function permutation(state: RngState, n: number): [number[], RngState] {
  const out = Array.from({ length: n }, (_, i) => i);
  let s = state;
  for (let i = n - 1; i > 0; i--) {
    let u: number;
    [u, s] = uniform(s);
    const j = Math.floor(u * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return [out, s];
}
