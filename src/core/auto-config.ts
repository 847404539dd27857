/**
 * The options of the `auto` balancer (strategy selection by successive halving, src/train/auto.ts):
 * types, defaults and validation. Browser-safe, no tfjs, so that configs can be checked without
 * loading a backend.
 *
 * @module
 */
import { BalancerError, OptionError } from './errors.js';
import type { BalancerSpec } from './types.js';

/** Options of the `auto` balancer: `{ name: 'auto', ...AutoOptions }`. */
export interface AutoOptions {
  /**
   * The candidates (strategy names or `{ name, label?, ...options }`), in order of simplicity (ties
   * go to the earlier one). Equal weights (`'fixed'`) are always added first when absent. A `fixed`
   * candidate whose weight vector (terms not named at 1) equals an earlier one's is dropped.
   * @default equal weights, {@link AutoOptions.weights}, the fixed-weight grid, then {@link AutoOptions.families}
   */
  candidates?: BalancerSpec[];
  /**
   * New steps each live candidate takes in the first round; round r lasts `trialSteps × growth^r`
   * steps. @default from {@link AutoOptions.totalSteps} and {@link AutoOptions.budget} when the run's
   * length is known (at least 1), else 10
   */
  trialSteps?: number;
  /**
   * Each round lasts this many times the previous one (successive halving's equal budget per round:
   * half the candidates, twice the steps each; Karnin et al. 2013). 1 gives rounds of equal length.
   * @default the value of {@link AutoOptions.eta}
   */
  growth?: number;
  /**
   * The number of `step()` calls the whole run will make (`fitBalanced` passes epochs × batches).
   * With it, the trial length is sized to the run: the selection's extra candidate steps stay
   * within {@link AutoOptions.budget} × totalSteps and the selection within half the run.
   * @default unknown (then `trialSteps` defaults to 10)
   */
  totalSteps?: number;
  /**
   * With {@link AutoOptions.totalSteps}: the most extra candidate steps (beyond the run's own steps),
   * as a fraction of totalSteps, that the selection may take. Candidates that read per-term
   * gradients cost more than a plain step (about 2.6× on bench:auto-cost's problem), so the extra
   * wall time is larger: 0.12 kept the selection's at 26–28 % of a 5,000-step run there; the
   * winner's {@link AutoOptions.probation} is not counted in it (it added about 10 points more;
   * docs/benchmarks.md, "auto's cost"). @default 0.12
   */
  budget?: number;
  /**
   * With the default score: the winner's probation. A challenger that wins the last round does not
   * take over yet: it and equal weights train on side by side, on the same batches, until the run
   * reaches `probation × totalSteps` steps, but for at most 4 times the selection's length (without
   * {@link AutoOptions.totalSteps}: for 4 times the selection's length; at least one last round's
   * length either way). Then the default score
   * is taken once more, over the probation's second half: the challenger takes over only if it
   * still beats equal weights beyond the noise (a term's loss counted T times, a gain capped at
   * ×10; {@link AutoOptions.maxWorse} does not apply here: over a longer run a balance gives up part
   * of the dominant term's loss for the others', as the Helmholtz PINN's winner did, residual +69 %
   * for a boundary loss 11× lower); otherwise the run continues from equal weights' copy, as if
   * trained with equal weights throughout. This catches a method that helps early and harms later (on a 1 / 1000 / 0.001
   * multi-output problem db-mtl led the first 120 of 1,500 steps, then left the 0.001 head 50–150×
   * worse; docs/guide-auto.md). Cost: one extra step of equal weights per step of the probation
   * (docs/benchmarks.md, "auto's cost").
   * 0 turns it off. With your `score`, your metric judges alone and there is no probation.
   * @default 0.4
   */
  probation?: number;
  /**
   * With the default score: drop a challenger whose trial raises a harm flag (a weight pinned at a
   * bound or floor, a starved term: src/core/harm.ts, judged over the round) that equal weights'
   * trial does not raise on the same term. Not `runaway` (weights moving towards the terms' scale
   * ratios look the same in a short trial) nor `rising` (a regulariser that stops collapsing, as a
   * VAE's KL, rises by design); with your `score`, your metric judges alone. @default true
   */
  disqualify?: boolean;
  /** Most rounds; after the last one the best live candidate wins. @default until ≤ 2 challengers remain */
  rounds?: number;
  /** Keep the best ⌈n/eta⌉ challengers after each round. @default 2 */
  eta?: number;
  /**
   * The selection score, evaluated with each candidate's variable values in place (e.g. a
   * validation loss or metric on held-out data). Called once per live candidate per round; must
   * return a number (tensors it creates are disposed). @default the comparison with equal weights
   * described in {@link AutoOptions.window}
   */
  score?: () => number;
  /**
   * For `fitBalanced`: a History key (`'val_loss'`, `'val_loss/<out>'`, `'val_<out>_loss'`, a compiled
   * metric such as `'val_acc'`, or the same without `val_` for the training part; not training
   * `'loss'`) whose value, computed with each candidate's weights in place, is the score (Keras'
   * `val_loss`: Σ lossWeights_i·L_i + penalties). `fitBalanced` turns it into {@link AutoOptions.score}
   * and, unless given, {@link AutoOptions.mode} (`'max'` for accuracies, else `'min'`); see
   * docs/guide-auto.md. A `BalancedTrainer` given `monitor` without `score` is an error.
   * @default none
   */
  monitor?: string;
  /** `'min'`: lower scores are better; `'max'`: higher (as Keras' `monitor`/`mode`). @default 'min' */
  mode?: 'min' | 'max';
  /**
   * Without `score`, a candidate is compared with equal weights term by term over the last `window`
   * steps of each round: d_i = mean over those steps of log(L_i / L_i^equal), with L_i its raw loss
   * of term i on that step's batch before its update and L_i^equal equal weights' loss on the same
   * batch (every candidate sees the same batches, so the batch is held out for both). Terms whose
   * loss can be ≤ 0 use (L_i − L_i^equal) / (|L_i^equal| + 1e-12). The score is the mean over terms
   * of max(d_i, −ln 10) (lower is better; equal weights score 0): the geometric mean of the loss
   * ratios, each term's credit capped at a loss 10× lower, so crushing one term cannot win. A
   * challenger is eligible only when no term is worse than under equal weights beyond the noise
   * (see {@link AutoOptions.maxWorse}), and wins only when its score is below 0 by twice its
   * standard error over the window; otherwise equal weights are kept and a warning names the
   * option to pass (`score`, or `monitor` in fitBalanced). @default half of each round's length,
   * rounded up
   */
  window?: number;
  /**
   * With the default score: how much a term's held-out loss may rise against equal weights' in a
   * candidate that wins, beyond the window's noise (the term's mean log ratio minus twice its
   * standard error, as a fraction: 0.05 is 5 %). A candidate that lets any term lose more ranks
   * after all others and cannot win. 0: no term may be worse beyond the noise. The default lets a
   * well-trained dominant term give up a negligible part of its loss for the others (on the
   * multi-output benchmark: 0.02–0.15 %, beyond the noise of its very steady loss). @default 0.1
   */
  maxWorse?: number;
  /** Your own fixed weights (by term name or in term order), added as a candidate. @default none */
  weights?: Record<string, number> | number[];
  /**
   * Multipliers of the fixed-weight grid around the measured gradient-magnitude ratio of each term.
   * `[]` turns the grid off. @default [0.1, 1, 10]
   */
  grid?: number[];
  /**
   * The method representatives added after the fixed-weight candidates.
   * @default ['softadapt', 'uncertainty', 'db-mtl', 'grad-magnitude', 'mgda', 'pcgrad']
   */
  families?: BalancerSpec[];
  /**
   * Most candidates (memory: one copy of the variables and optimizer slots each). When the default
   * list is longer, grid points are dropped, the largest multipliers first. @default 16
   */
  maxCandidates?: number;
  /**
   * A challenger must beat every earlier (simpler) candidate by this relative margin to be preferred
   * (`|Δscore| > tolerance · |score|`). @default 0
   */
  tolerance?: number;
}

/** The validated options (defaults filled). */
export interface AutoConfig extends Required<Omit<AutoOptions, 'candidates' | 'score' | 'weights' | 'monitor' | 'trialSteps' | 'window' | 'totalSteps' | 'growth'>> {
  /** See {@link AutoOptions.trialSteps}; undefined: derived at the first step. */
  trialSteps?: number;
  /** See {@link AutoOptions.window}; undefined: half of each round. */
  window?: number;
  /** See {@link AutoOptions.totalSteps}. */
  totalSteps?: number;
  /** See {@link AutoOptions.growth}; undefined: eta. */
  growth?: number;
  /** See {@link AutoOptions.monitor}. */
  monitor?: string;
  /** See {@link AutoOptions.candidates}. */
  candidates?: BalancerSpec[];
  /** See {@link AutoOptions.score}. */
  score?: () => number;
  /** See {@link AutoOptions.weights}. */
  weights?: Record<string, number> | number[];
}

/** The default representatives of the method families. */
export const AUTO_FAMILIES: readonly string[] = ['softadapt', 'uncertainty', 'db-mtl', 'grad-magnitude', 'mgda', 'pcgrad'];

/** The family of each registered strategy, as the tournament reports it. */
export const FAMILY: Record<string, string> = {
  fixed: 'fixed', softadapt: 'loss', dwa: 'loss', 'loss-ratio': 'loss', relobralo: 'loss', famo: 'loss', cov: 'loss', rlw: 'loss',
  uncertainty: 'learned', gradnorm: 'learned',
  'grad-magnitude': 'gradient', 'db-mtl': 'gradient',
  mgda: 'aggregation', pcgrad: 'aggregation', cagrad: 'aggregation', 'nash-mtl': 'aggregation', imtl: 'aggregation', 'aligned-mtl': 'aggregation', upgrad: 'aggregation',
};

/** The options `{ name: 'auto', ... }` takes, in the order {@link AutoOptions} documents them. */
export const AUTO_OPTION_NAMES: readonly string[] = ['candidates', 'trialSteps', 'growth', 'totalSteps', 'budget', 'probation', 'disqualify', 'rounds', 'eta', 'score', 'monitor', 'mode', 'window', 'maxWorse', 'weights', 'grid', 'families', 'maxCandidates', 'tolerance'];

/** What `list()` says about `auto` (a strategy selector, not a strategy: `create()` does not build it). */
export const AUTO_INFO = {
  name: 'auto',
  summary:
    'Strategy selection during training: equal weights, a fixed-weight grid around the measured gradient-magnitude ratios and one method per family train from the same state on the same batches; successive halving keeps the best, training continues with the winner (docs/guide-auto.md)',
  paper:
    'Jamieson & Talwalkar, "Non-stochastic Best Arm Identification and Hyperparameter Optimization", AISTATS 2016, https://arxiv.org/abs/1502.07943 (successive halving; Karnin, Koren & Somekh, ICML 2013)',
} as const;

/**
 * Checks one candidate or family spec (its `label` removed) and throws what the registry throws for
 * it: an `OptionError` naming the option, or a `BalancerError` for an unknown strategy. The registry's
 * `checkSpec` is one; this module does not import the registry, so that it stays browser-safe and
 * free of tfjs.
 */
export type SpecChecker = (spec: BalancerSpec) => void;

/**
 * `'auto'` or `{ name: 'auto', ... }` → validated options; anything else → null. Errors name the
 * option. With `checkSpec` (the registry's `checkSpec`; the `BalancedTrainer` and `loss-balancer run`
 * pass it), every `candidates`/`families` spec is checked too, and an error names the option, the
 * index and the field inside the spec, e.g. `auto: option "candidates.1.alpha" got -1; ...`.
 */
export function parseAuto(spec: unknown, checkSpec?: SpecChecker): AutoConfig | null {
  if (spec === 'auto') return parseAuto({ name: 'auto' }, checkSpec);
  if (!spec || typeof spec !== 'object' || (spec as { name?: unknown }).name !== 'auto') return null;
  const o = spec as Record<string, unknown>;
  const bad = (key: string, rule: string): never => {
    throw new OptionError('auto', key, o[key], rule);
  };
  for (const k of Object.keys(o)) if (k !== 'name' && !AUTO_OPTION_NAMES.includes(k)) bad(k, `unknown option; allowed: ${AUTO_OPTION_NAMES.join(', ')}`);
  const int = (k: string, d: number | undefined, min: number) => {
    const v = o[k] ?? d;
    if (v !== undefined && (!Number.isInteger(v) || (v as number) < min)) bad(k, `allowed: an integer >= ${min}`);
    return v as number;
  };
  const trialSteps = int('trialSteps', undefined, 1) as number | undefined;
  const cfg: AutoConfig = {
    trialSteps,
    totalSteps: int('totalSteps', undefined, 1) as number | undefined,
    budget: 0.12,
    probation: 0.4,
    disqualify: true,
    maxWorse: 0.1,
    rounds: int('rounds', Number.MAX_SAFE_INTEGER, 1),
    eta: 2,
    mode: 'min',
    window: int('window', undefined, 1) as number | undefined,
    grid: [0.1, 1, 10],
    families: [...AUTO_FAMILIES],
    maxCandidates: int('maxCandidates', 16, 1),
    tolerance: 0,
  };
  if (cfg.window !== undefined && trialSteps !== undefined && cfg.window > trialSteps) bad('window', `allowed: an integer <= trialSteps (${trialSteps})`);
  if (o.budget !== undefined) {
    if (typeof o.budget !== 'number' || !Number.isFinite(o.budget) || !(o.budget > 0)) bad('budget', 'allowed: a number > 0 (a fraction of totalSteps)');
    cfg.budget = o.budget as number;
  }
  if (o.probation !== undefined) {
    if (typeof o.probation !== 'number' || !Number.isFinite(o.probation) || o.probation < 0 || o.probation > 1) bad('probation', 'allowed: a number from 0 to 1 (a fraction of totalSteps; 0 turns the probation off)');
    cfg.probation = o.probation as number;
  }
  if (o.maxWorse !== undefined) {
    if (typeof o.maxWorse !== 'number' || !Number.isFinite(o.maxWorse) || !(o.maxWorse >= 0)) bad('maxWorse', 'allowed: a number >= 0 (0.05 is 5 %)');
    cfg.maxWorse = o.maxWorse as number;
  }
  if (o.growth !== undefined) {
    if (typeof o.growth !== 'number' || !Number.isFinite(o.growth) || o.growth < 1 || o.growth > 16) bad('growth', 'allowed: a number from 1 to 16');
    cfg.growth = o.growth as number;
  }
  if (o.disqualify !== undefined) {
    if (typeof o.disqualify !== 'boolean') bad('disqualify', 'allowed: true or false');
    cfg.disqualify = o.disqualify as boolean;
  }
  if (o.eta !== undefined) {
    if (typeof o.eta !== 'number' || !Number.isFinite(o.eta) || o.eta <= 1) bad('eta', 'allowed: a number > 1');
    cfg.eta = o.eta as number;
  }
  if (o.mode !== undefined) {
    if (o.mode !== 'min' && o.mode !== 'max') bad('mode', "allowed: 'min' or 'max'");
    cfg.mode = o.mode as 'min' | 'max';
  }
  if (o.score !== undefined) {
    if (typeof o.score !== 'function') bad('score', 'allowed: a function () => number');
    cfg.score = o.score as () => number;
  }
  if (o.monitor !== undefined) {
    if (typeof o.monitor !== 'string' || !o.monitor) bad('monitor', "allowed: a History key such as 'val_loss' (resolved by fitBalanced)");
    cfg.monitor = o.monitor as string;
  }
  if (o.tolerance !== undefined) {
    if (typeof o.tolerance !== 'number' || !(o.tolerance >= 0) || !Number.isFinite(o.tolerance)) bad('tolerance', 'allowed: a number >= 0');
    cfg.tolerance = o.tolerance as number;
  }
  if (o.grid !== undefined) {
    if (!Array.isArray(o.grid) || o.grid.some((m) => typeof m !== 'number' || !(m > 0) || !Number.isFinite(m))) bad('grid', 'allowed: a list of positive numbers');
    cfg.grid = [...(o.grid as number[])];
  }
  const specs = (k: string): BalancerSpec[] | undefined => {
    const v = o[k];
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.some((s) => typeof s !== 'string' && !(s && typeof s === 'object' && typeof (s as { name?: unknown }).name === 'string'))) {
      bad(k, "allowed: a list of strategy names or { name, ...options }");
    }
    if ((v as BalancerSpec[]).some((s) => (typeof s === 'string' ? s : s.name) === 'auto')) bad(k, "'auto' cannot be its own candidate");
    (v as BalancerSpec[]).forEach((s, i) => {
      if (typeof s === 'object' && 'label' in s && (typeof s.label !== 'string' || !s.label)) {
        throw new OptionError('auto', `${k}.${i}.label`, s.label, 'allowed: a non-empty string (the candidate\'s name in the tournament)');
      }
      if (!checkSpec) return;
      try {
        checkSpec(typeof s === 'string' || !('label' in s) ? s : (({ label: _l, ...rest }) => rest as BalancerSpec)(s));
      } catch (e) {
        if (e instanceof OptionError) throw new OptionError('auto', `${k}.${i}.${e.field}`, e.value, `${e.strategy}: ${e.allowed}`);
        if (e instanceof BalancerError) throw new OptionError('auto', `${k}.${i}`, s, e.message);
        throw e;
      }
    });
    return (v as BalancerSpec[]).map((s) => (typeof s === 'string' ? s : { ...s }));
  };
  cfg.candidates = specs('candidates');
  if (cfg.candidates && cfg.candidates.length === 0) bad('candidates', 'allowed: a non-empty list');
  cfg.families = specs('families') ?? cfg.families;
  if (o.weights !== undefined) {
    const w = o.weights;
    const ok = Array.isArray(w)
      ? w.every((v) => typeof v === 'number' && v >= 0 && Number.isFinite(v))
      : !!w && typeof w === 'object' && Object.values(w).every((v) => typeof v === 'number' && v >= 0 && Number.isFinite(v));
    if (!ok) bad('weights', 'allowed: finite weights >= 0, by term name or in term order');
    cfg.weights = Array.isArray(w) ? [...w] : { ...(w as Record<string, number>) };
  }
  return cfg;
}

