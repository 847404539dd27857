/**
 * famo — Fast Adaptive Multitask Optimization: learned task logits that steer the update towards the
 * terms whose log-loss has been falling slowest, at O(1) cost (loss values only, no per-term gradient).
 *
 * Paper: B. Liu, Y. Feng, P. Stone, Q. Liu, "FAMO: Fast Adaptive Multitask Optimization", NeurIPS 2023.
 * https://arxiv.org/abs/2306.03792 (official code: github.com/Cranial-XIX/FAMO, famo.py; also LibMTL,
 * LibMTL/weighting/FAMO.py).
 *
 * In words: logits ξ (start 0), z = softmax(ξ), D_i(t) = L_i(t) − L_min,i + ε. The network step
 * descends Σ_i z_i log D_i / c with c = Σ_j z_j / D_j held constant, whose gradient is
 * Σ_i (z_i / (c·D_i)) ∇L_i: the weight on term i is
 *
 *   w_i(t) = T · z_i / (c · D_i(t)),     Σ_i w_i = T,
 *
 * (the official code's weights sum to 1; the factor T makes equal losses with equal logits give all
 * ones, as for this library's other strategies). Then, when the next losses are known, the logits
 * take one Adam step (own lr, PyTorch-style L2 weight decay γ) on the gradient
 *
 *   δ_i = log D_i(t) − log D_i(t+1),   ∂_ξ = J_softmax(ξ)ᵀ δ = z ⊙ (δ − ⟨z, δ⟩),   + γ·ξ.
 *
 * The official loop re-evaluates the losses of the same batch after the model step to get L(t+1);
 * here, to stay at one forward/backward per step, L(t+1) is the next update's loss (the next batch),
 * so update t first steps ξ with (L(t−1), L(t)) and then returns the weights from L(t) (update 0 only
 * records L(0)). With identical inputs this is the exact sequence of the official code.
 *
 * Pitfall: log(L − L_min + ε) is undefined when a loss falls below L_min − ε (e.g. a negative
 * log-likelihood with the default L_min = 0): such an input is rejected with an error naming the term
 * and step; set `minLoss` to a known lower bound of that term (shifting it) instead. ε = 1e-8
 * (FAMO_EPS, as in the official code). With L_min = 0 (and up to ε), ξ's update (log-ratios) and the
 * weights (normalised z_i/D_i) are invariant to a common scale of the losses.
 *
 * Options: `lr` (Adam learning rate of ξ) @default 0.025; `weightDecay` (γ) @default 1e-3 (LibMTL;
 * the official example uses 0.01); `minLoss` (L_min: one number, an array in term order, or
 * `{ term: value }`) @default 0.
 */
import * as z from 'zod/mini';
import { stateSchemas as ss } from '../src/core/state-check.js';
import { MAX_WEIGHT_LR } from '../src/core/limits.js';
import { BalancerError } from '../src/core/errors.js';
import { softmax } from '../src/core/gram.js';
import { adamInit, adamStep, type AdamState } from '../src/core/optim.js';
import type { Strategy } from '../src/core/types.js';

/** ε inside log(L − L_min + ε), as in the official code. */
export const FAMO_EPS = 1e-8;

const options = z.strictObject({
  /** Learning rate of the logits (Adam), at most 10 (MAX_WEIGHT_LR, src/core/limits.ts). @default 0.025 */
  lr: z._default(z.number().check(z.positive(), z.maximum(MAX_WEIGHT_LR)), 0.025),
  /** L2 weight decay γ of the logits. @default 1e-3 */
  weightDecay: z._default(z.number().check(z.nonnegative()), 1e-3),
  /** L_min: lower bound of each loss. @default 0 */
  minLoss: z._default(z.union([z.number(), z.array(z.number()), z.record(z.string(), z.number())]), 0),
});

/**
 * Options of {@link famo}.
 * @useDeclaredType
 */
export type FamoOptions = z.infer<typeof options>;

/** State of {@link famo}. */
export interface FamoState {
  /** Term names (for error messages). */
  terms: string[];
  /** L_min per term. */
  minLoss: number[];
  /** ξ: the task logits. */
  logits: number[];
  /** Adam moments of ξ. */
  adam: AdamState;
  /** L(t−1); null before the first update. */
  previous: number[] | null;
}

function resolveMinLoss(given: FamoOptions['minLoss'], terms: readonly string[]): number[] {
  if (typeof given === 'number') return terms.map(() => given);
  if (Array.isArray(given)) {
    if (given.length !== terms.length) {
      throw new BalancerError(`famo: option "minLoss" has ${given.length} entries for ${terms.length} terms (${terms.join(', ')})`);
    }
    return [...given];
  }
  for (const k of Object.keys(given)) {
    if (!terms.includes(k)) throw new BalancerError(`famo: option "minLoss" names unknown term "${k}"; terms are ${terms.join(', ')}`);
  }
  return terms.map((t) => given[t] ?? 0);
}

/**
 * The `famo` strategy (Liu et al., NeurIPS 2023): Fast Adaptive Multitask Optimization, softmax task
 * logits stepped by Adam on the log-loss decrease; O(1), loss values only. Options:
 * {@link FamoOptions}; state: {@link FamoState}.
 */
export const famo: Strategy<FamoOptions, FamoState> = {
  name: 'famo',
  summary: 'FAMO (Liu et al. 2023): softmax logits stepped by Adam on log-loss decrease; O(1), loss values only.',
  paper: 'Liu, Feng, Stone & Liu, "FAMO: Fast Adaptive Multitask Optimization", NeurIPS 2023, https://arxiv.org/abs/2306.03792',
  options,
  needs: () => ({ gradients: 'none' }),
  /** Checked by `Balancer.load()` before a saved state is loaded. */
  state: (terms) =>
    z.strictObject({
      terms: ss.termNames(terms),
      minLoss: ss.perTerm(terms.length),
      logits: ss.perTerm(terms.length),
      adam: ss.adam(terms.length),
      previous: z.nullable(ss.perTerm(terms.length)),
    }).check(z.superRefine((s, ctx) => {
      // L(t−1) enters log(L − L_min + ε): it must lie above L_min, as at the update that stored it
      s.previous?.forEach((l, i) => {
        if (!(l - s.minLoss[i] + FAMO_EPS > 0)) ctx.addIssue({ code: 'custom', path: ['previous', i], message: `must be above minLoss (${s.minLoss[i]})` });
      });
    })),
  init: (o, terms) => ({
    terms: [...terms],
    minLoss: resolveMinLoss(o.minLoss, terms),
    logits: terms.map(() => 0),
    adam: adamInit(terms.length),
    previous: null,
  }),
  update(o, state, { step, losses }) {
    const D = losses.map((l, i) => l - state.minLoss[i] + FAMO_EPS);
    const bad = D.findIndex((d) => !(d > 0));
    if (bad >= 0) {
      throw new BalancerError(
        `famo: step ${step}: loss of term "${state.terms[bad]}" is ${losses[bad]}, below its minLoss ${state.minLoss[bad]}; log(L − minLoss + ε) is undefined. Set option minLoss for that term to a lower bound of its loss (e.g. { minLoss: { ${state.terms[bad]}: ${losses[bad] - 1} } })`,
      );
    }
    let logits = state.logits;
    let adam = state.adam;
    let delta: number[] | undefined;
    if (state.previous) {
      const prev = state.previous;
      const d = delta = D.map((di, i) => Math.log(prev[i] - state.minLoss[i] + FAMO_EPS) - Math.log(di));
      const zs = softmax(logits);
      const zd = zs.reduce((a, zi, i) => a + zi * d[i], 0);
      const grad = zs.map((zi, i) => zi * (d[i] - zd) + o.weightDecay * logits[i]);
      ({ params: logits, state: adam } = adamStep(logits, grad, adam, { lr: o.lr }));
    }
    const zs = softmax(logits);
    const c = zs.reduce((a, zi, i) => a + zi / D[i], 0);
    const T = losses.length;
    const weights = zs.map((zi, i) => (T * zi) / (c * D[i]));
    return {
      weights,
      state: { terms: state.terms, minLoss: state.minLoss, logits, adam, previous: [...losses] },
      info: { taskWeight: zs, logit: [...logits], ...(delta ? { logDecrease: delta } : {}) },
    };
  },
};
