/**
 * Input derivatives for physics-informed networks in tfjs, by forward-mode propagation.
 *
 * Why: tfjs 4.22's nested `tf.grad` cannot differentiate a `tf.tanh` MLP twice with respect to its
 * input (the inner gradient of `tanh` is built from its saved output, which the outer tape does not
 * see: "Cannot compute gradient of y=f(x) with respect to x", on wasm and cpu). A PINN residual needs
 * u_x and u_xx, and the trainer then needs reverse-mode gradients of the residual loss with respect to
 * the weights (one per term for the balancers that read per-term gradients).
 *
 * How: every Dense + activation layer carries a "jet" — the value h, its first derivatives ∂h/∂x_k and
 * its pure second derivatives ∂²h/∂x_k² — through the network together. For a = h·W + b:
 *   a = h·W + b,   ∂a/∂x_k = (∂h/∂x_k)·W,   ∂²a/∂x_k² = (∂²h/∂x_k²)·W
 * and for t = σ(a):
 *   ∂t/∂x_k = σ'(a) ∂a/∂x_k,   ∂²t/∂x_k² = σ'(a) ∂²a/∂x_k² + σ''(a) (∂a/∂x_k)²
 * with tanh' = 1 − t², tanh'' = −2t(1 − t²) and sin' = cos, sin'' = −sin. Everything is ordinary tfjs
 * ops (matMul, tanh, mul, concat), so `tf.variableGrads` of any loss built from the jet gives the
 * weight gradients by ordinary reverse mode: exactly what `BalancedTrainer` reads per term.
 *
 * The jet of N points in D input dimensions is stacked into one [(1 + 2D)·N, width] tensor — rows
 * 0..N−1 the values, then D blocks of N rows of first derivatives, then D blocks of second
 * derivatives — so each layer is ONE matMul for the value and all 2D derivatives. That stacked
 * tensor of the last hidden layer is also a natural representation z for the trainer's
 * representation mode (see `represent` in bench/pinn/problems.ts).
 *
 * Cost: (1 + 2D) times a plain forward pass (5× for D = 2), one reverse pass of the same size.
 */
import * as tf from '@tensorflow/tfjs';

/** An activation of the jet MLP: value, first and second derivative from the pre-activation. */
export type JetActivation = 'tanh' | 'sin';

/** Options of {@link makeJetMlp}. */
export interface JetMlpOptions {
  /** Hidden activation. @default 'tanh' */
  activation?: JetActivation;
  /** Seed of the Xavier-normal initialisation (std √(2 / (fan_in + fan_out)), biases 0). @default 0 */
  seed?: number;
  /**
   * Inputs are normalised as x̃_k = (x_k − shift_k) / scale_k before the first layer; derivatives are
   * still with respect to the unnormalised x (the jet starts with ∂x̃/∂x_k = e_k / scale_k).
   * @default shift 0, scale 1
   */
  shift?: number[];
  /** See {@link JetMlpOptions.shift}. */
  scale?: number[];
  /** Prefix of the variable names. @default 'pinn' */
  name?: string;
}

/** Value and pure derivatives of a network output on N points. */
export interface Jet {
  /** u, [N, out]. */
  value: tf.Tensor2D;
  /** ∂u/∂x_k for k = 0..D−1, each [N, out]. */
  d1: tf.Tensor2D[];
  /** ∂²u/∂x_k² for k = 0..D−1, each [N, out]. */
  d2: tf.Tensor2D[];
}

/** A Dense/activation MLP that returns input derivatives along with its value. */
export interface JetMlp {
  /** Layer sizes, e.g. [2, 50, 50, 50, 1]. */
  readonly sizes: readonly number[];
  /** Every variable: W0, b0, W1, b1, ... */
  readonly variables: tf.Variable[];
  /** The weight matrices only (the authors of the Helmholtz benchmark read gradient statistics on these). */
  readonly kernels: tf.Variable[];
  /** Input dimension D. */
  readonly inputDim: number;
  /** Plain forward pass: u(x), [N, out]. */
  predict(x: tf.Tensor2D): tf.Tensor2D;
  /** Stacked jet of the LAST HIDDEN layer at x: [(1 + 2D)·N, width]. */
  hiddenJet(x: tf.Tensor2D): tf.Tensor2D;
  /** Plain forward pass up to the last hidden layer: [N, width]. */
  hidden(x: tf.Tensor2D): tf.Tensor2D;
  /** The output layer on a stacked hidden jet of `n` points, split into value and derivatives. */
  headJet(z: tf.Tensor2D, n: number): Jet;
  /** The output layer on plain hidden values: [N, out]. */
  head(h: tf.Tensor2D): tf.Tensor2D;
  /** `headJet(hiddenJet(x), N)`. */
  jet(x: tf.Tensor2D): Jet;
  /** Disposes the variables. */
  dispose(): void;
}

let counter = 0;

/**
 * Builds an MLP with `sizes` (input, hidden..., output), the given hidden activation and a linear
 * output layer, whose {@link JetMlp.jet} gives u, ∂u/∂x_k and ∂²u/∂x_k² with ordinary tfjs ops.
 */
export function makeJetMlp(sizes: number[], options: JetMlpOptions = {}): JetMlp {
  if (sizes.length < 3 || sizes.some((s) => !Number.isInteger(s) || s < 1)) {
    throw new Error(`makeJetMlp: sizes must be positive integers [input, hidden..., output], got ${JSON.stringify(sizes)}`);
  }
  const act = options.activation ?? 'tanh';
  if (act !== 'tanh' && act !== 'sin') throw new Error(`makeJetMlp: activation must be 'tanh' or 'sin', got ${JSON.stringify(act)}`);
  const D = sizes[0];
  const shift = options.shift ?? new Array(D).fill(0);
  const scale = options.scale ?? new Array(D).fill(1);
  if (shift.length !== D || scale.length !== D || scale.some((s) => !(s > 0))) {
    throw new Error(`makeJetMlp: shift and scale must have ${D} entries and scale must be > 0`);
  }
  const seed = options.seed ?? 0;
  const prefix = `${options.name ?? 'pinn'}_${counter++}`;
  const kernels: tf.Variable[] = [];
  const biases: tf.Variable[] = [];
  for (let l = 0; l + 1 < sizes.length; l++) {
    const [i, o] = [sizes[l], sizes[l + 1]];
    // tfjs ignores a seed of 0 (`seed ? seed : Math.random()`), so layer 0 of seed 0 takes 0.5 instead
    const s = seed * 1000 + l;
    kernels.push(tf.tidy(() => tf.variable(tf.randomNormal([i, o], 0, Math.sqrt(2 / (i + o)), 'float32', s === 0 ? 0.5 : s), true, `${prefix}_W${l}`)));
    biases.push(tf.tidy(() => tf.variable(tf.zeros([o]), true, `${prefix}_b${l}`)));
  }
  const variables = kernels.flatMap((k, l) => [k, biases[l]]);
  const nHidden = kernels.length - 1;

  const normalise = (x: tf.Tensor2D) => tf.div(tf.sub(x, shift), scale) as tf.Tensor2D;

  // σ(a), σ'(a), σ''(a) from the pre-activation a (values block only).
  const sigma = <R extends tf.Rank>(a: tf.Tensor<R>): [tf.Tensor<R>, tf.Tensor<R>, tf.Tensor<R>] => {
    if (act === 'tanh') {
      const t = tf.tanh(a);
      const s = tf.sub(1, tf.square(t)) as tf.Tensor<R>;
      return [t, s, tf.mul(-2, tf.mul(t, s))];
    }
    const v = tf.sin(a);
    return [v, tf.cos(a), tf.neg(v)];
  };
  const activate = (a: tf.Tensor2D) => (act === 'tanh' ? tf.tanh(a) : tf.sin(a)) as tf.Tensor2D;

  /**
   * One Dense layer on a stacked jet of n points, split into its [1, n, width] value block and
   * [D, n, width] blocks of first and second derivatives; the bias goes on the value block only.
   * Blocks are separated by reshape + split (not slice, whose gradient is a Pad) and σ' is broadcast
   * over the D derivative blocks (not tiled): the same numbers in fewer and cheaper kernels. On wasm,
   * Tile and Pad had been a third of a Klein–Gordon step (docs/benchmarks.md, PINN).
   */
  const denseBlocks = (z: tf.Tensor2D, l: number, n: number): [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D] => {
    const a = tf.matMul(z, kernels[l] as tf.Tensor2D);
    const [v, a1, a2] = tf.split(tf.reshape(a, [1 + 2 * D, n, a.shape[1] as number]), [1, D, D], 0) as tf.Tensor3D[];
    return [tf.add(v, biases[l]) as tf.Tensor3D, a1, a2];
  };

  const hiddenJet = (x: tf.Tensor2D): tf.Tensor2D => {
    const n = x.shape[0];
    // Seed jet: value x̃; ∂x̃/∂x_k = e_k / scale_k on every point; second derivatives 0.
    const rows: tf.Tensor2D[] = [normalise(x)];
    for (let k = 0; k < D; k++) {
      const e = new Array(D).fill(0);
      e[k] = 1 / scale[k];
      rows.push(tf.tensor2d(Array.from({ length: n }, () => e)));
    }
    rows.push(tf.zeros([D * n, D]));
    let z = tf.concat(rows, 0);
    for (let l = 0; l < nHidden; l++) {
      const [v, a1, a2] = denseBlocks(z, l, n);
      const [t, s1, s2] = sigma(v);
      // t, s1, s2 are [1, n, w]: broadcast over the D derivative blocks
      const next = tf.concat([t, tf.mul(s1, a1), tf.add(tf.mul(s1, a2), tf.mul(s2, tf.square(a1)))], 0);
      z = tf.reshape(next, [(1 + 2 * D) * n, next.shape[2] as number]);
    }
    return z;
  };

  const headJet = (z: tf.Tensor2D, n: number): Jet => {
    const L = kernels.length - 1;
    const blocks = tf.split(tf.matMul(z, kernels[L] as tf.Tensor2D), 1 + 2 * D, 0) as tf.Tensor2D[];
    return { value: tf.add(blocks[0], biases[L]) as tf.Tensor2D, d1: blocks.slice(1, 1 + D), d2: blocks.slice(1 + D) };
  };

  const hidden = (x: tf.Tensor2D): tf.Tensor2D => {
    let h = normalise(x);
    for (let l = 0; l < nHidden; l++) h = activate(tf.add(tf.matMul(h, kernels[l] as tf.Tensor2D), biases[l]) as tf.Tensor2D);
    return h;
  };
  const head = (h: tf.Tensor2D) => tf.add(tf.matMul(h, kernels[nHidden] as tf.Tensor2D), biases[nHidden]) as tf.Tensor2D;

  return {
    sizes: [...sizes],
    variables,
    kernels,
    inputDim: D,
    predict: (x) => head(hidden(x)),
    hidden,
    head,
    hiddenJet,
    headJet,
    jet: (x) => headJet(hiddenJet(x), x.shape[0]),
    dispose: () => variables.forEach((v) => v.dispose()),
  };
}

/**
 * Second derivatives ∂²u/∂x_k² (k = 0..D−1, each [N, 1]) of a scalar-output network `u` by nested
 * `tf.grad`. In tfjs 4.22 this is correct only when every op's gradient is built from the op's INPUTS
 * (sin, cos, mul, add, matMul, pow with a constant exponent, ...). Ops whose gradient reuses their
 * OUTPUT (tanh, exp, sigmoid) break it: `tf.tanh` throws "Cannot compute gradient of y=f(x) with
 * respect to x", and tanh written with `tf.exp` returns WRONG numbers without any error (measured:
 * test/pinn.test.ts). Use it for sin networks only; {@link makeJetMlp} works for both.
 */
export function secondDerivativesByNestedGrad(u: (x: tf.Tensor2D) => tf.Tensor2D, x: tf.Tensor2D): tf.Tensor2D[] {
  const D = x.shape[1];
  const out: tf.Tensor2D[] = [];
  for (let k = 0; k < D; k++) {
    const g = (xx: tf.Tensor2D) => tf.grad((y: tf.Tensor) => u(y as tf.Tensor2D).sum())(xx) as tf.Tensor2D;
    const gk = (xx: tf.Tensor2D) => g(xx).slice([0, k], [xx.shape[0], 1]).sum();
    out.push((tf.grad(gk as (t: tf.Tensor) => tf.Tensor)(x) as tf.Tensor2D).slice([0, k], [x.shape[0], 1]));
  }
  return out;
}
