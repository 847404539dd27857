/**
 * uncertainty — homoscedastic uncertainty weighting: each term gets a learned log-variance.
 *
 * Paper: A. Kendall, Y. Gal, R. Cipolla, "Multi-Task Learning Using Uncertainty to Weigh Losses for
 * Scene Geometry and Semantics", CVPR 2018. https://arxiv.org/abs/1705.07115
 *
 * In words: with s_i = log σ_i² learned per term, the objective is
 *
 *   regression form:      Σ_i ½·exp(−s_i)·L_i + ½·s_i
 *   classification form:  Σ_i    exp(−s_i)·L_i + ½·s_i
 *
 * so the effective weight on L_i is c·exp(−s_i) (c = ½ or 1), which is what this strategy reports, and
 * ½·s_i is a regulariser that keeps σ from growing without bound (logged separately: it makes the total
 * negative once s_i < 0, which is expected). The log-variance is learned, never σ itself, so it cannot
 * become negative. Its closed-form gradient is ∂/∂s_i = −c·exp(−s_i)·L_i + ½ (minimum at
 * s_i = log(2c·L_i)); the strategy steps it with its own optimiser. The weights returned at step t use
 * s(t); s is then updated with step t's losses.
 *
 * Options: `form` ('regression' | 'classification', per term as an object) @default 'regression';
 * `lr` @default 0.01; `optimizer` ('adam' | 'sgd') @default 'adam'; `initialLogVariance` @default 0.
 */
import * as z from 'zod/mini';
import { stateSchemas as ss } from '../src/core/state-check.js';
import { MAX_WEIGHT_LR } from '../src/core/limits.js';
import { adamInit, adamStep, sgdStep, type AdamState } from '../src/core/optim.js';
import { BalancerError } from '../src/core/errors.js';
import type { Strategy } from '../src/core/types.js';

const form = z.enum(['regression', 'classification']);
const options = z.strictObject({
  /** Objective form, for all terms or per term name. @default 'regression' */
  form: z._default(z.union([form, z.record(z.string(), form)]), 'regression'),
  /** Learning rate of the log-variances, at most 10 (MAX_WEIGHT_LR, src/core/limits.ts). @default 0.01 */
  lr: z._default(z.number().check(z.positive(), z.maximum(MAX_WEIGHT_LR)), 0.01),
  /** Optimiser of the log-variances. @default 'adam' */
  optimizer: z._default(z.enum(['adam', 'sgd']), 'adam'),
  /** Initial s_i = log σ_i². @default 0 */
  initialLogVariance: z._default(z.number(), 0),
});

/**
 * Options of {@link uncertainty}.
 * @useDeclaredType
 */
export type UncertaintyOptions = z.infer<typeof options>;

/** State of {@link uncertainty}. */
export interface UncertaintyState {
  /** s_i = log σ_i². */
  logVariance: number[];
  /** c_i: ½ (regression) or 1 (classification). */
  scale: number[];
  /** Adam moments of the log-variances. */
  adam: AdamState;
}

/**
 * The `uncertainty` strategy (Kendall, Gal & Cipolla, CVPR 2018): learned log-variances s_i, weight
 * c·exp(−s_i) and regulariser s_i/2 (loss values only). Options: {@link UncertaintyOptions}; state:
 * {@link UncertaintyState}.
 */
export const uncertainty: Strategy<UncertaintyOptions, UncertaintyState> = {
  name: 'uncertainty',
  summary: 'Kendall et al. uncertainty weighting: learned log-variances, weight c·exp(-s), regulariser s/2.',
  paper: 'Kendall, Gal & Cipolla, CVPR 2018',
  options,
  needs: () => ({ gradients: 'none' }),
  /** Checked by `Balancer.load()` before a saved state is loaded. */
  state: (terms) =>
    z.strictObject({
      logVariance: ss.perTerm(terms.length),
      scale: ss.perTerm(terms.length, 'positive'),
      adam: ss.adam(terms.length),
    }),
  init(o, terms) {
    let scale: number[];
    if (typeof o.form === 'string') scale = terms.map(() => (o.form === 'regression' ? 0.5 : 1));
    else {
      const forms = o.form as Record<string, string>;
      for (const k of Object.keys(forms)) {
        if (!terms.includes(k)) {
          throw new BalancerError(`uncertainty: option "form" names unknown term "${k}"; terms are ${terms.join(', ')}`);
        }
      }
      scale = terms.map((t) => ((forms[t] ?? 'regression') === 'regression' ? 0.5 : 1));
    }
    return { logVariance: terms.map(() => o.initialLogVariance), scale, adam: adamInit(terms.length) };
  },
  initialWeights: (_o, s) => s.logVariance.map((si, i) => s.scale[i] * Math.exp(-si)),
  update(o, state, { losses }) {
    const s = state.logVariance;
    const weights = s.map((si, i) => state.scale[i] * Math.exp(-si));
    const grad = losses.map((l, i) => -weights[i] * l + 0.5);
    let next: number[];
    let adam = state.adam;
    if (o.optimizer === 'adam') ({ params: next, state: adam } = adamStep(s, grad, state.adam, { lr: o.lr }));
    else next = sgdStep(s, grad, o.lr);
    return {
      weights,
      state: { logVariance: next, scale: state.scale, adam },
      regularizer: s.map((si) => 0.5 * si),
      info: { logVariance: [...s] },
    };
  },
};
