/**
 * relobralo — Relative Loss Balancing with Random Lookback: softmax of loss ratios to the previous
 * step and (randomly) to the first step, smoothed by an exponential moving average.
 *
 * Paper: R. Bischof, M. Kraus, "Multi-Objective Loss Balancing for Physics-Informed Deep Learning",
 * arXiv:2110.09813, 2021. https://arxiv.org/abs/2110.09813 (authors' code: github.com/rbischof/relative_balancing).
 *
 * In words: for T terms, with L_i(t) the raw loss of term i at update t,
 *
 *   bal_i(t, t') = T · exp(L_i(t) / (τ·L_i(t') + ε)) / Σ_j exp(L_j(t) / (τ·L_j(t') + ε))
 *   hist_i(t)    = ρ(t)·λ_i(t−1) + (1 − ρ(t))·bal_i(t, 0)
 *   λ_i(t)       = α·hist_i(t) + (1 − α)·bal_i(t, t−1)
 *
 * where ρ(t) ~ Bernoulli(E[ρ]) is drawn each update: with probability 1 − E[ρ] the history "looks
 * back" to the first update's losses L(0) instead of keeping λ(t−1). The draw comes from the seeded
 * generator of src/core/rng.ts whose state is kept in the strategy state, so a run (and a resumed
 * checkpoint) is reproducible. The weights sum to T. At t = 0, L(−1) = L(0) = L(t) and λ(−1) = 1,
 * so every ratio is 1/τ and λ(0) = 1. ε = LOSS_EPS (the authors' code adds 1e-12); a zero previous
 * loss with a positive current one gives a very large ratio: that term's bal is ≈ T (finite).
 * Dividing by the previous loss makes the weights invariant to a common scale of all losses.
 *
 * The authors' training script starts with α = 1, then α = 0 for one update, and takes L(0) from the
 * second update (its defaults: α = 0.999, E[ρ] = 1, τ = 1); this implementation applies the paper's
 * formula from the first update on, with this library's defaults below (issue 3).
 *
 * Options: `alpha` (EMA weight of the history) @default 0.95; `expectedLookback` (E[ρ], probability
 * of keeping λ(t−1)) @default 0.99; `temperature` (τ) @default 1; `seed` @default 0.
 */
import * as z from 'zod/mini';
import { stateSchemas as ss } from '../src/core/state-check.js';
import { LOSS_EPS, softmax } from '../src/core/gram.js';
import { seedRng, uniform, type RngState } from '../src/core/rng.js';
import type { Strategy } from '../src/core/types.js';

const options = z.strictObject({
  /** α: weight of the history term in the moving average. @default 0.95 */
  alpha: z._default(z.number().check(z.minimum(0), z.maximum(1)), 0.95),
  /** E[ρ]: probability that the history keeps λ(t−1) rather than looking back to L(0). @default 0.99 */
  expectedLookback: z._default(z.number().check(z.minimum(0), z.maximum(1)), 0.99),
  /** τ: softmax temperature. @default 1 */
  temperature: z._default(z.number().check(z.positive()), 1),
  /** Seed of the Bernoulli draws. @default 0 */
  seed: z._default(z.number().check(z.int()), 0),
});

/**
 * Options of {@link relobralo}.
 * @useDeclaredType
 */
export type ReLoBRaLoOptions = z.infer<typeof options>;

/** State of {@link relobralo}. */
export interface ReLoBRaLoState {
  /** λ(t−1), Σ = T. */
  lambda: number[];
  /** L(0); null before the first update. */
  initialLosses: number[] | null;
  /** L(t−1); null before the first update. */
  previousLosses: number[] | null;
  /** State of the seeded generator. */
  rng: RngState;
}

/** bal(t, t'): T · softmax_i(L_i(t) / (τ·L_i(t') + ε)). */
export function relativeBalance(losses: readonly number[], reference: readonly number[], temperature: number): number[] {
  const T = losses.length;
  return softmax(losses.map((l, i) => l / (temperature * reference[i] + LOSS_EPS))).map((p) => T * p);
}

/**
 * The `relobralo` strategy (Bischof & Kraus, 2021): ReLoBRaLo, softmax of loss ratios to the previous
 * and (with a seeded random lookback) the first step, EMA-smoothed. Options: {@link ReLoBRaLoOptions};
 * state: {@link ReLoBRaLoState}.
 */
export const relobralo: Strategy<ReLoBRaLoOptions, ReLoBRaLoState> = {
  name: 'relobralo',
  summary: 'ReLoBRaLo (Bischof & Kraus 2021): softmax of loss ratios to the last and (randomly) first step, EMA-smoothed; seeded.',
  paper: 'Bischof & Kraus, "Multi-Objective Loss Balancing for Physics-Informed Deep Learning", arXiv:2110.09813, 2021',
  options,
  needs: () => ({ gradients: 'none' }),
  nonNegativeLosses: true,
  /** Checked by `Balancer.load()` before a saved state is loaded. */
  state: (terms) =>
    z.strictObject({
      lambda: ss.perTerm(terms.length, 'nonNegative'),
      initialLosses: z.nullable(ss.perTerm(terms.length)),
      previousLosses: z.nullable(ss.perTerm(terms.length)),
      rng: ss.rng,
    }),
  init: (o, terms) => ({ lambda: terms.map(() => 1), initialLosses: null, previousLosses: null, rng: seedRng(o.seed) }),
  update(o, state, { losses }) {
    const L0 = state.initialLosses ?? [...losses];
    const prev = state.previousLosses ?? [...losses];
    const [u, rng] = uniform(state.rng);
    const rho = u < o.expectedLookback ? 1 : 0;
    const balPrev = relativeBalance(losses, prev, o.temperature);
    const balInit = relativeBalance(losses, L0, o.temperature);
    const lambda = state.lambda.map(
      (l, i) => o.alpha * (rho * l + (1 - rho) * balInit[i]) + (1 - o.alpha) * balPrev[i],
    );
    return {
      weights: [...lambda],
      state: { lambda, initialLosses: L0, previousLosses: [...losses], rng },
      info: { rho: lambda.map(() => rho), balancePrevious: balPrev, balanceInitial: balInit },
    };
  },
};
