/**
 * db-mtl — Dual-Balancing: balance loss scales with a log transform and gradient scales by lifting
 * every term's (smoothed) log-gradient norm to the largest one. READS THE GRAM DIAGONAL: it needs
 * the per-term gradient norms ‖g_i‖ = sqrt(G[i][i]), so the trainer computes per-term gradients.
 *
 * Paper: B. Lin, W. Jiang, F. Ye, Y. Zhang, P. Chen, Y.-C. Chen, S. Liu, J. T. Kwok, "Dual-Balancing
 * for Multi-Task Learning", arXiv:2308.12029, 2023. https://arxiv.org/abs/2308.12029 (also LibMTL,
 * LibMTL/weighting/DB_MTL.py).
 *
 * In words: loss-scale balancing replaces L_i by log(L_i + ε), whose gradient is h_i = g_i / (L_i + ε);
 * gradient-magnitude balancing keeps an exponential moving average of each term's log-gradient and
 * rescales every term to the largest norm:
 *
 *   n_i(t) = ‖h_i‖ = sqrt(G[i][i]) / (L_i + ε)
 *   m_i(t) = n_i(t) + (β / k^σ)·(m_i(t−1) − n_i(t)),  k = t+1, m(−1) = 0
 *   α_i    = max_j m_j / (m_i + ε),     w_i = α_i / (L_i + ε)   (the weight on g_i: α_i·h_i = w_i·g_i)
 *
 * ε = 1e-8 (DB_EPS, LibMTL's). The weights are not normalised (α_i ≥ 1, as in the paper). A term with
 * a zero gradient (m_i ≤ NORM_EPS) has nothing to rescale and gets α_i = 1.
 *
 * Difference from LibMTL (stated, not hidden): LibMTL keeps the EMA of the log-gradient *vectors*
 * and steps along Σ_i α_i·EMA(h_i) (a momentum on the gradients), with α from the norms of those EMA
 * vectors. This library hands strategies the Gram matrix of the current step only, so here the EMA
 * is of the *norms* and the weights apply to the current gradients. The two agree exactly on α when
 * each term's gradient keeps its direction over time (only its length changes); otherwise the
 * norm-EMA is an upper bound of the EMA-norm. Global loss scale: h_i is invariant, so α is too, the
 * weights scale as 1/scale and the combined gradient Σ w_i g_i is invariant.
 *
 * Options: `beta` (β, EMA weight of the past) @default 0.9 (LibMTL); `betaSigma` (σ, decay of β with
 * the step count) @default 0 (LibMTL).
 */
import * as z from 'zod/mini';
import { stateSchemas as ss } from '../src/core/state-check.js';
import { NORM_EPS } from '../src/core/gram.js';
import type { Strategy } from '../src/core/types.js';

/** ε of log(L + ε) and of the norm ratio, as in LibMTL. */
export const DB_EPS = 1e-8;

const options = z.strictObject({
  /** β: weight of the past in the moving average of the log-gradient norms. @default 0.9 */
  beta: z._default(z.number().check(z.minimum(0), z.maximum(1)), 0.9),
  /** σ: β is divided by k^σ at update k (1-based). @default 0 */
  betaSigma: z._default(z.number().check(z.nonnegative()), 0),
});

/**
 * Options of {@link dbMtl}.
 * @useDeclaredType
 */
export type DbMtlOptions = z.infer<typeof options>;

/** State of {@link dbMtl}. */
export interface DbMtlState {
  /** Number of updates so far. */
  t: number;
  /** m_i: moving average of ‖∇ log(L_i + ε)‖. */
  emaNorm: number[];
}

/**
 * The `db-mtl` strategy (Lin et al., 2023): Dual-Balancing, log-transformed losses and every term's
 * EMA log-gradient norm lifted to the largest one (reads the Gram diagonal). Options:
 * {@link DbMtlOptions}; state: {@link DbMtlState}.
 */
export const dbMtl: Strategy<DbMtlOptions, DbMtlState> = {
  name: 'db-mtl',
  summary: 'DB-MTL (Lin et al. 2023): log losses + each term lifted to the largest EMA log-gradient norm (reads the Gram diagonal).',
  paper: 'Lin et al., "Dual-Balancing for Multi-Task Learning", arXiv:2308.12029, 2023, https://arxiv.org/abs/2308.12029',
  options,
  needs: () => ({ gradients: 'gram' }),
  nonNegativeLosses: true,
  /** Checked by `Balancer.load()` before a saved state is loaded. */
  state: (terms) => z.strictObject({ t: ss.count, emaNorm: ss.perTerm(terms.length, 'nonNegative') }),
  init: (_o, terms) => ({ t: 0, emaNorm: terms.map(() => 0) }),
  update(o, state, { losses, gram }) {
    const k = state.t + 1;
    const n = losses.map((l, i) => Math.sqrt(Math.max(gram![i][i], 0)) / (l + DB_EPS));
    const f = o.beta / k ** o.betaSigma;
    const emaNorm = n.map((ni, i) => ni + f * (state.emaNorm[i] - ni));
    const top = Math.max(...emaNorm);
    const alpha = emaNorm.map((m) => (m > NORM_EPS ? top / (m + DB_EPS) : 1));
    const weights = alpha.map((a, i) => a / (losses[i] + DB_EPS));
    return { weights, state: { t: k, emaNorm }, info: { alpha, logGradNorm: n } };
  },
};
