/**
 * Gradient accumulation for {@link BalancedTrainer.step}: one optimizer step over a batch that is
 * evaluated in micro-batches (to fit memory). The per-term losses and per-term gradients are
 * accumulated over the micro-batches *before* the Gram matrix, the statistics and the weights are
 * formed, so the step is the one a single big batch would take:
 *
 *   L_i = Σ_j f_j L_i^(j),   g_i = Σ_j f_j g_i^(j),   G = [<g_i, g_k>],   f_j = n_j / Σ n
 *
 * (losses that are means over their micro-batch; `f_j = 1/k` for equal micro-batches). Forming G
 * per micro-batch and averaging would not give the big-batch G (Σ_j G^(j) ≠ G), which is why the
 * gradients are accumulated first.
 *
 * - Strategies that read gradients (or a step that refreshes their weights): per micro-batch, the
 *   per-term gradients, accumulated; then G and `Σ w_i g_i` from the sums.
 * - Loss-only strategies: a forward pass per micro-batch gives the big-batch losses, the balancer
 *   gives the weights, then one backward pass of `Σ_i w_i f_j L_i^(j)` per micro-batch, accumulated
 *   (one extra forward pass per micro-batch, no per-term gradient).
 *
 * Every function here runs inside the caller's `tf.tidy`.
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import type { Balancer, UpdateResult } from '../core/balancer.js';
import { BalancerError } from '../core/errors.js';
import { combine, detectShared, gradientMatrix, readGram, scalarOf, variableGrads, type TermGrads } from './grads.js';

/** Gradient accumulation for one {@link BalancedTrainer.step}. */
export interface MicroBatches {
  /** Into how many micro-batches this step's batch is split (an integer ≥ 1). */
  microBatches: number;
  /**
   * Called with `i = 0 … microBatches − 1` before `terms()` is evaluated on micro-batch `i`: point
   * the tensors your `terms()` reads at micro-batch `i`. The trainer does not dispose anything you
   * create here.
   */
  setMicroBatch: (i: number) => void;
  /**
   * Relative sizes of the micro-batches (e.g. their sample counts) when they differ: the big-batch
   * loss of a term is then the size-weighted mean of its micro-batch losses. Terms must be means over
   * their micro-batch (as `tf.losses.*` and `tf.mean` give). @default equal sizes
   */
  sizes?: number[];
}

/** Validate the options and return the fractions `f_j` (summing to 1). */
export function microFractions(o: MicroBatches): number[] {
  if (!o || typeof o !== 'object') throw new BalancerError('step(): the argument must be { microBatches, setMicroBatch }');
  const k = o.microBatches;
  if (!Number.isInteger(k) || k < 1) {
    throw new BalancerError(`step(): option "microBatches" got ${JSON.stringify(k)}; must be an integer >= 1`);
  }
  if (typeof o.setMicroBatch !== 'function') {
    throw new BalancerError('step(): option "setMicroBatch" must be a function (i) => void that selects micro-batch i');
  }
  if (o.sizes === undefined) return new Array(k).fill(1 / k);
  if (!Array.isArray(o.sizes) || o.sizes.length !== k) {
    throw new BalancerError(`step(): option "sizes" must have ${k} entries (one per micro-batch); got ${JSON.stringify(o.sizes)}`);
  }
  const bad = o.sizes.findIndex((n) => !Number.isFinite(n) || n <= 0);
  if (bad >= 0) throw new BalancerError(`step(): option "sizes" entry ${bad} is ${o.sizes[bad]}; sizes must be finite and > 0`);
  const total = o.sizes.reduce((a, b) => a + b, 0);
  return o.sizes.map((n) => n / total);
}

/** What one accumulated step needs from the trainer. */
export interface AccumulateContext {
  terms: () => Record<string, tf.Scalar>;
  names: readonly string[];
  vars: tf.Variable[];
  check: (t: Record<string, tf.Scalar>) => void;
  balancer: Balancer;
  epoch: number;
  /** Read per-term gradients (the strategy reads G or statistics and refreshes this step). */
  perTerm: boolean;
  withStats: boolean;
  /** The shared variables, or null to detect them from the accumulated gradients. */
  shared: tf.Variable[] | null;
  /** Per-term gradients of one evaluation of `terms` (the trainer's choice of method). */
  read: (
    terms: () => Record<string, tf.Scalar>,
    names: readonly string[],
    vars: readonly tf.Variable[],
    check: (t: Record<string, tf.Scalar>) => void,
  ) => { values: tf.Scalar[]; grads: TermGrads[] };
}

/** The outcome: losses, balancer result, the gradients to apply, the Gram matrix if read. */
export interface AccumulateOutcome {
  losses: number[];
  result: UpdateResult;
  grads: tf.NamedTensorMap;
  gram?: number[][];
  shared: tf.Variable[] | null;
}

/** One step over `micro`'s micro-batches, as one big batch. Call inside `tf.tidy`. */
export function accumulatedStep(ctx: AccumulateContext, micro: MicroBatches): AccumulateOutcome {
  const f = microFractions(micro);
  const { names, vars, check, balancer } = ctx;
  const T = names.length;
  if (ctx.perTerm) {
    let lossAcc: tf.Tensor1D = tf.zeros([T]);
    let acc: tf.NamedTensorMap[] = names.map(() => ({}));
    f.forEach((fj, j) => {
      micro.setMicroBatch(j);
      const next = tf.tidy(() => {
        const { values, grads } = ctx.read(ctx.terms, names, vars, check);
        const sums = grads.map((g, i) => {
          const out: tf.NamedTensorMap = {};
          const keys = new Set([...Object.keys(acc[i]), ...g.keys()]);
          for (const k of keys) {
            const gi = g.get(k);
            const prev = acc[i][k];
            const add = gi ? gi.mul(fj) : null;
            out[k] = prev && add ? prev.add(add) : (add ?? prev.clone());
          }
          return out;
        });
        return { losses: lossAcc.add(tf.stack(values).mul(fj)) as tf.Tensor1D, sums };
      });
      tf.dispose([lossAcc, ...acc.flatMap((m) => Object.values(m))]);
      lossAcc = next.losses;
      acc = next.sums;
    });
    const losses = Array.from(lossAcc.dataSync());
    const termGrads: TermGrads[] = acc.map((m) => new Map(Object.entries(m)));
    const shared = ctx.shared ?? detectShared(termGrads, vars);
    const reading = readGram(gradientMatrix(termGrads, shared), ctx.withStats);
    const result = balancer.update({ losses, gram: reading.gram, stats: reading.stats, epoch: ctx.epoch });
    const grads = result.skipped ? {} : combine(termGrads, result.weights, vars, balancer.headWeights);
    return { losses, result, grads, gram: reading.gram, shared };
  }
  // Loss-only: the big-batch losses first (forward passes only), then the weighted backward passes.
  const lossSum = new Array<number>(T).fill(0);
  f.forEach((fj, j) => {
    micro.setMicroBatch(j);
    const vals = tf.tidy(() => {
      const t = ctx.terms();
      check(t);
      return tf.stack(names.map((n) => scalarOf(t, n))).dataSync();
    });
    vals.forEach((v, i) => (lossSum[i] += fj * v));
  });
  const result = balancer.update({ losses: lossSum, epoch: ctx.epoch });
  let grads: tf.NamedTensorMap = {};
  if (!result.skipped) {
    const w = result.weights;
    f.forEach((fj, j) => {
      micro.setMicroBatch(j);
      const next = tf.tidy(() => {
        const { grads: g } = variableGrads(() => {
          const t = ctx.terms();
          check(t);
          return tf.addN(names.map((n, i) => scalarOf(t, n).mul(w[i] * fj))) as tf.Scalar;
        }, vars);
        const out: tf.NamedTensorMap = {};
        for (const k of new Set([...Object.keys(grads), ...Object.keys(g)])) {
          out[k] = grads[k] && g[k] ? grads[k].add(g[k]) : (g[k] ?? grads[k]).clone();
        }
        return out;
      });
      tf.dispose(Object.values(grads));
      grads = next;
    });
  }
  return { losses: lossSum, result, grads, shared: ctx.shared };
}
