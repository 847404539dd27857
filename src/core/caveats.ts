/**
 * Where a strategy's published default is a poor first choice for common problems, and why (from the
 * paper's own update rule). Shown by `list()` (`caveats`), docs/strategies.md and the harm warnings
 * of {@link HarmMonitor}. The formulas are not changed: these are notes for the user.
 *
 * @module
 */

/** One caveat: what goes wrong with a default, the paper's reason, and what to do. */
export interface StrategyCaveat {
  /** The option whose default is at issue (e.g. `'reference'`), or `'(method)'` for the rule itself. */
  option: string;
  /** What goes wrong, the paper's reason, and the way out, in one paragraph. */
  text: string;
  /** The harm flags ({@link HarmKind}) this caveat explains. */
  flags: readonly string[];
}

/** Caveats by strategy name. Strategies absent here have none recorded. */
export const STRATEGY_CAVEATS: Readonly<Record<string, readonly StrategyCaveat[]>> = {
  'grad-magnitude': [
    {
      option: 'reference',
      text:
        'The reference term (default: the first term) keeps weight 1 and every other term is scaled to its gradient magnitude ' +
        '(Wang, Teng & Perdikaris 2021, Alg. 1: λ̂_i = max|∇L_ref| / mean|∇L_i|). With the default statistic a maximum is compared ' +
        'with a mean, so λ̂_i ≫ 1 even when the gradients are alike, and a small-gradient term (a VAE\'s KL, a boundary condition) ' +
        'is pushed up by orders of magnitude until the reference term no longer drives the update. Pick the reference deliberately, ' +
        "or use { numerator: 'mean', statistic: 'norm' } (jaxpi's grad-norm weighting), or cap the weights with bounds.max.",
      flags: ['runaway', 'starved', 'rising'],
    },
  ],
  uncertainty: [
    {
      option: '(method)',
      text:
        'Minimising exp(−s)·L + s/2 over the log-variance s gives the weight exp(−s) = 1/(2L) (Kendall, Gal & Cipolla 2018, eq. 7–8): ' +
        'a term whose loss tends to 0 (a collapsing KL, an already fitted boundary term) is up-weighted without limit, which deepens ' +
        'the collapse. Freeze such a term (frozen) or cap it (bounds.max).',
      flags: ['runaway', 'starved'],
    },
  ],
  gradnorm: [
    {
      option: 'minWeight',
      text:
        'GradNorm equalises the weighted gradient norms w_i‖g_i‖ under Σ w_i = T (Chen et al. 2018, eq. 1–2), so w_i ∝ 1/‖g_i‖: a term ' +
        'whose gradient is orders of magnitude larger needs a weight below the clip minWeight (default 1e-3) and sits at the clip for the ' +
        'whole run: the weights are renormalised to Σ = T after clipping, so the balance is then set by the clip, not by the method, ' +
        'and the pinned term barely trains. Normalise the ' +
        'targets (or the losses) first, lower minWeight, or use a scale-free method (db-mtl, mgda).',
      flags: ['pinned', 'starved'],
    },
  ],
};

/** The caveats of a strategy (empty when none is recorded). */
export function caveatsOf(strategy: string): readonly StrategyCaveat[] {
  return STRATEGY_CAVEATS[strategy] ?? [];
}
