/**
 * `auto`: strategy selection inside training, by successive halving.
 *
 * A user no longer picks one of the library's methods, nor sweeps fixed weights by hand: with
 * `balancer: 'auto'` the trainer runs a small tournament on the first steps of training.
 *
 * 1. At the start it reads each term's gradient norm ‖∂L_i/∂θ_shared‖ once and builds the
 *    candidates, in order of simplicity: equal weights (`fixed`), the user's own fixed weights when
 *    given, fixed-weight points spaced logarithmically around the gradient-magnitude ratios
 *    `b_i = max_j ‖g_j‖ / ‖g_i‖` (all terms at b, then one term at a time at `b_i × m` for `m` in
 *    `grid`: the hand grid, searched for the user), then one or two representatives of each family
 *    of methods (loss-based, learned, gradient-magnitude, aggregation). A candidate equal to an
 *    earlier one (for `fixed`: the same weight vector, terms not named at 1) is dropped, the
 *    earlier kept; a dropped grid point leaves its slot to the next one.
 * 2. Every candidate starts from the SAME state (the variables' values, a copy of the optimizer's
 *    slots, a fresh balancer) and each `step()` call advances every live candidate on the SAME
 *    batch: its variable values and optimizer are swapped in, it takes one ordinary trainer step,
 *    its new values are swapped out.
 * 3. After every `trialSteps` steps (a round) the live candidates are scored and the best
 *    ⌈n/eta⌉ challengers are kept (successive halving: Karnin, Koren & Somekh, "Almost Optimal
 *    Exploration in Multi-Armed Bandits", ICML 2013, https://proceedings.mlr.press/v28/karnin13.html;
 *    Jamieson & Talwalkar, "Non-stochastic Best Arm Identification and Hyperparameter Optimization",
 *    AISTATS 2016, https://arxiv.org/abs/1502.07943). Here each survivor takes `trialSteps` new
 *    steps per round and continues from its own state, so no step is paid twice. Equal weights are
 *    never dropped, so the winner is never worse than equal weights on the score at selection time;
 *    ties go to the simpler (earlier) candidate.
 * 4. When two challengers or fewer are left (or after `rounds` rounds), the best live candidate
 *    wins: the user's variables receive its values, the user's optimizer object receives its slots,
 *    and training continues with its balancer (its state and step count), i.e. from the winner's
 *    own trial state, not from a restart.
 *
 * Cost: with n candidates, the selection takes `trialSteps × Σ_rounds (live candidates)` candidate
 * steps (each as costly as one step of that candidate's strategy) over `trialSteps × rounds` calls
 * of `step()`, and holds one copy of the trained variables and of the optimizer slots per live
 * candidate. `maxCandidates`, `trialSteps` and `rounds` cap both. The cost is reported in the
 * {@link Tournament}.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import { BalancerError, OptionError } from '../core/errors.js';
import { FAMILY, type AutoConfig } from '../core/auto-config.js';
import type { StepRecord } from '../core/history.js';
import type { Tournament, TournamentCandidate } from '../core/tournament.js';
import type { BalancerSpec } from '../core/types.js';
import { resolveTermWeights } from '../../strategies/fixed.js';
import type { MicroBatches } from './accumulate.js';
import { detectShared, gradientMatrix, perTermGradients, readGram } from './grads.js';
import type { BalancedTrainer, StepResult, TrainerState } from './trainer.js';

export { AUTO_FAMILIES, parseAuto, type AutoConfig, type AutoOptions } from '../core/auto-config.js';

// -------------------------------------------------------------------------------------------------
// Optimizer state, synchronously and generically (tfjs optimizers keep their whole state in own
// properties: tensors such as Adam's accBeta1, arrays of { originalName, variable } slots, numbers).

type Slot = { originalName: string; variable: tf.Variable };
const isSlots = (v: unknown): v is Slot[] =>
  Array.isArray(v) && v.length > 0 && v.every((e) => e && typeof e === 'object' && (e as Slot).variable instanceof tf.Variable);

/** A tensor stored bit-exactly as JSON: its 32-bit words as integers. */
export interface SavedBits {
  /** tfjs dtype (float32, int32 or bool). */
  dtype: tf.DataType;
  /** Shape. */
  shape: number[];
  /** The raw 32-bit words (float32 bits as int32), or the values for bool. */
  bits: number[];
}

function toBits(t: tf.Tensor): SavedBits {
  const v = t.dataSync();
  let bits: number[];
  if (v instanceof Float32Array) bits = Array.from(new Int32Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength)));
  else if (v instanceof Int32Array || v instanceof Uint8Array) bits = Array.from(v);
  else throw new BalancerError(`auto: cannot store a tensor of dtype ${t.dtype}`);
  return { dtype: t.dtype, shape: [...t.shape], bits };
}

function fromBits(s: SavedBits): tf.Tensor {
  if (s.dtype === 'float32') return tf.tensor(new Float32Array(Int32Array.from(s.bits).buffer), s.shape, 'float32');
  return tf.tensor(s.dtype === 'int32' ? Int32Array.from(s.bits) : Uint8Array.from(s.bits), s.shape, s.dtype);
}

/** One own property of an optimizer, saved: a tensor, a list of slot variables, or a plain value. */
export type SavedOptimizerField =
  | {
      /** A tensor property (Adam's `accBeta1`). */
      kind: 'tensor';
      /** Whether it was a `tf.Variable`. */
      variable: boolean;
      /** Its value. */
      value: SavedBits;
    }
  | {
      /** A list of `{ originalName, variable }` slots (Adam's moments). */
      kind: 'slots';
      /** The slots, in order. */
      items: SavedSlot[];
    }
  | {
      /** A number, string, boolean, null or empty list (`iterations_`, `learningRate`). */
      kind: 'value';
      /** The value. */
      value: unknown;
    };

/** One optimizer slot, saved. */
export interface SavedSlot {
  /** The slot's name (e.g. `dense/kernel/m`). */
  originalName: string;
  /** Its value. */
  value: SavedBits;
}

/** The state of an optimizer as JSON, per own property. */
export type SavedOptimizerState = Record<string, SavedOptimizerField>;

function saveOptimizerState(opt: tf.Optimizer): SavedOptimizerState {
  const out: SavedOptimizerState = {};
  for (const [k, v] of Object.entries(opt)) {
    if (v instanceof tf.Tensor) out[k] = { kind: 'tensor', variable: v instanceof tf.Variable, value: toBits(v) };
    else if (isSlots(v)) out[k] = { kind: 'slots', items: v.map((s) => ({ originalName: s.originalName, value: toBits(s.variable) })) };
    else if (v === null || ['number', 'string', 'boolean', 'undefined'].includes(typeof v) || (Array.isArray(v) && v.length === 0)) out[k] = { kind: 'value', value: v };
  }
  return out;
}

function disposeOwn(opt: tf.Optimizer, key: string): void {
  const v = (opt as unknown as Record<string, unknown>)[key];
  if (v instanceof tf.Tensor) v.dispose();
  else if (isSlots(v)) v.forEach((s) => s.variable.dispose());
}

function loadOptimizerState(opt: tf.Optimizer, saved: SavedOptimizerState): void {
  const o = opt as unknown as Record<string, unknown>;
  for (const [k, s] of Object.entries(saved)) {
    disposeOwn(opt, k);
    if (s.kind === 'tensor') {
      const t = fromBits(s.value);
      o[k] = s.variable ? tf.variable(t, false) : t;
      if (s.variable) t.dispose();
    } else if (s.kind === 'slots') {
      o[k] = s.items.map((it) => {
        const t = fromBits(it.value);
        const variable = tf.variable(t, false);
        t.dispose();
        return { originalName: it.originalName, variable };
      });
    } else {
      o[k] = Array.isArray(s.value) ? [] : s.value;
    }
  }
}

/** A new optimizer of the same class holding a copy of `opt`'s state (its own tensors). */
export function cloneOptimizer(opt: tf.Optimizer): tf.Optimizer {
  const copy = Object.create(Object.getPrototypeOf(opt)) as Record<string, unknown>;
  for (const [k, v] of Object.entries(opt)) {
    if (v instanceof tf.Variable) copy[k] = tf.variable(v, false);
    else if (v instanceof tf.Tensor) copy[k] = tf.keep(v.clone());
    else if (isSlots(v)) copy[k] = v.map((s) => ({ originalName: s.originalName, variable: tf.variable(s.variable, false) }));
    else copy[k] = Array.isArray(v) ? [...v] : v;
  }
  return copy as unknown as tf.Optimizer;
}

/**
 * Copy `source`'s hyperparameters (the keys of its `getConfig()` that hold numbers or booleans:
 * learningRate, beta1, momentum, ...) into `target`, so that a learning-rate schedule or callback
 * that sets the user's optimizer during the selection reaches every candidate, and the winner's copy
 * does not bring back a stale value. The learning rate goes through `setLearningRate` where the
 * class has it (SGD and Momentum keep a tensor of it).
 */
export function syncHyperparameters(target: tf.Optimizer, source: tf.Optimizer): void {
  const t = target as unknown as Record<string, unknown> & { setLearningRate?: (lr: number) => void };
  const s = source as unknown as Record<string, unknown>;
  for (const k of Object.keys(source.getConfig())) {
    const v = s[k];
    if ((typeof v !== 'number' && typeof v !== 'boolean') || t[k] === v) continue;
    if (k === 'learningRate' && typeof t.setLearningRate === 'function') t.setLearningRate(v as number);
    else t[k] = v;
  }
}

/** Give `target` (the user's optimizer object) the whole state of `source`; `target`'s own tensors are disposed. */
function adoptOptimizer(target: tf.Optimizer, source: tf.Optimizer): void {
  // the user's hyperparameters as they are now, not as they were when the candidate was cloned
  syncHyperparameters(source, target);
  const t = target as unknown as Record<string, unknown>;
  for (const k of Object.keys(target)) disposeOwn(target, k);
  for (const [k, v] of Object.entries(source)) t[k] = v;
}

function disposeOptimizer(opt: tf.Optimizer): void {
  for (const k of Object.keys(opt)) disposeOwn(opt, k);
}

// -------------------------------------------------------------------------------------------------

/** What the trainer gives the selector. */
export interface AutoHost {
  /** The trainer's loss terms (as given, or trunk + heads). */
  terms: () => Record<string, tf.Scalar>;
  /** The user's optimizer: the common starting state, and the object that receives the winner's. */
  optimizer: tf.Optimizer;
  /** A trainer like the host, with another balancer and optimizer, no sinks, over `variables`. */
  makeTrainer(balancer: BalancerSpec, optimizer: tf.Optimizer, variables: tf.Variable[]): BalancedTrainer;
  /** The shared variables, when the user named them. */
  shared?: tf.Variable[];
}

/** One live candidate: its trainer (balancer, own optimizer) and its parked variable values. */
interface Live {
  index: number;
  trainer: BalancedTrainer;
  optimizer: tf.Optimizer;
  values: tf.Tensor[];
  recent: number[][];
}

/** The selection's serialised state (inside {@link TrainerState}). */
export interface AutoState {
  /** The tournament so far (candidates, rounds, cost). */
  tournament: Tournament;
  /** While running: steps taken in the current round. */
  stepsInRound?: number;
  /** While running: the raw losses at the common start. */
  start?: number[] | null;
  /** While running: every live candidate's trainer, optimizer, variable values and recent losses. */
  live?: SavedCandidate[];
}

/** One live candidate of a running selection, saved. */
export interface SavedCandidate {
  /** Its index among the tournament's candidates. */
  index: number;
  /** Its trainer's state (balancer, step and epoch counters). */
  trainer: TrainerState;
  /** Its optimizer's state. */
  optimizer: SavedOptimizerState;
  /** Its variable values, in the trainer's variable order. */
  values: SavedBits[];
  /** Its raw losses of the current round's last steps (for the default score). */
  recent: number[][];
}

/** What {@link AutoSelector.step} returns. */
export interface AutoStepOutput {
  /** Equal weights' step result (the values the variables hold between steps). */
  result: StepResult;
  /** Every live candidate's step result, by label. */
  candidates: Record<string, StepResult>;
  /** The candidates' step records, tagged with `candidate`, for the trainer's sinks. */
  records: StepRecord[];
}

/** Runs the tournament for a {@link BalancedTrainer} (see the module's description). */
export class AutoSelector {
  private readonly cfg: AutoConfig;
  private readonly host: AutoHost;
  private live: Live[] = [];
  private vars: tf.Variable[] = [];
  private startLosses: number[] | null = null;
  private stepsInRound = 0;
  private specs: BalancerSpec[] = [];
  /** The tournament so far; null before the first step. */
  tournament: Tournament | null = null;

  constructor(cfg: AutoConfig, host: AutoHost) {
    if (cfg.monitor !== undefined && !cfg.score) {
      throw new OptionError('auto', 'monitor', cfg.monitor, 'a History key is resolved by fitBalanced; with a BalancedTrainer pass score: () => number instead');
    }
    this.cfg = cfg;
    this.host = host;
  }

  /** Whether the winner has taken over. */
  get done(): boolean {
    return this.tournament?.phase === 'done';
  }

  /** Whether the tournament has started (candidates exist). */
  get started(): boolean {
    return this.tournament !== null;
  }

  /** Measure the gradient norms, build the candidates and their copies. Called at the first step. */
  begin(names: string[], vars: tf.Variable[], step: number, epoch: number): void {
    this.vars = [...vars];
    const norms = this.measure(names);
    const list = this.buildCandidates(names, norms);
    const bytes = vars.reduce((a, v) => a + v.size * 4, 0);
    this.tournament = {
      phase: 'running',
      startStep: step,
      trialSteps: this.cfg.trialSteps,
      eta: this.cfg.eta,
      score: this.cfg.score ? 'user' : 'default',
      mode: this.cfg.mode,
      candidates: list.map(({ label, spec }) => ({ label, spec: spec as TournamentCandidate['spec'], family: FAMILY[specName(spec)] ?? 'other', scores: [], steps: 0 })),
      rounds: [],
      gradNorms: Object.fromEntries(names.map((n, i) => [n, norms[i]])),
      cost: { candidateSteps: 0, plannedCandidateSteps: 0, trainerSteps: 0, plannedTrainerSteps: 0, copies: list.length, bytes: bytes * list.length },
    };
    this.plan();
    this.specs = list.map((c) => c.spec);
    this.live = list.map((c, index) => this.makeLive(index, epoch));
  }

  private makeLive(index: number, epoch: number): Live {
    const optimizer = cloneOptimizer(this.host.optimizer);
    const trainer = this.host.makeTrainer(stripLabel(this.specs[index]), optimizer, this.vars);
    for (let e = 0; e < epoch; e++) trainer.endEpoch();
    return { index, trainer, optimizer, values: this.vars.map((v) => tf.keep(v.clone())), recent: [] };
  }

  /**
   * The plan: candidate steps and trainer steps the whole selection takes, from what was taken so
   * far (`cost.candidateSteps`, `cost.trainerSteps`) and the halving rule for the rest. Revised
   * after each round and when a candidate fails.
   */
  private plan(): void {
    const t = this.tournament!;
    let n = this.live.length || t.candidates.filter((c) => !c.failed && c.droppedAfter === undefined).length;
    let rounds = t.rounds.length;
    const left = this.cfg.trialSteps - this.stepsInRound;
    let steps = t.cost.candidateSteps + n * left;
    let trainer = t.cost.trainerSteps + left;
    while (true) {
      rounds += 1;
      if (n - 1 <= 2 || rounds >= this.cfg.rounds) break;
      n = Math.ceil((n - 1) / this.cfg.eta) + 1;
      steps += n * this.cfg.trialSteps;
      trainer += this.cfg.trialSteps;
    }
    t.cost.plannedCandidateSteps = steps;
    t.cost.plannedTrainerSteps = trainer;
  }

  /** ‖∂L_i/∂θ_shared‖ per term at the common start (one per-term gradient read). */
  private measure(names: string[]): number[] {
    return tf.tidy(() => {
      const check = () => undefined;
      const { grads } = perTermGradients(this.host.terms, names, this.vars, check);
      const shared = this.host.shared ?? detectShared(grads, this.vars);
      const { gram } = readGram(gradientMatrix(grads, shared), false);
      return gram.map((row, i) => Math.sqrt(Math.max(0, row[i])));
    });
  }

  private buildCandidates(names: string[], norms: number[]): { label: string; spec: BalancerSpec }[] {
    const out: { label: string; spec: BalancerSpec }[] = [];
    const seen = new Set<string>();
    // Two candidates are the same when their specs are (label aside) or, for `fixed`, when their
    // effective weight vectors are (terms not named at 1): the first, simplest, one is kept.
    const add = (label: string, spec: BalancerSpec): boolean => {
      const key = candidateKey(spec, names);
      if (seen.has(key)) return false;
      let l = label;
      for (let i = 2; out.some((c) => c.label === l); i++) l = `${label}#${i}`;
      seen.add(key);
      out.push({ label: l, spec });
      return true;
    };
    add('equal', 'fixed');
    if (this.cfg.candidates) {
      for (const s of this.cfg.candidates) add(labelOf(s), s);
      if (this.cfg.weights) add('user-weights', { name: 'fixed', weights: this.cfg.weights });
      return out.slice(0, this.cfg.maxCandidates);
    }
    if (this.cfg.weights) add('user-weights', { name: 'fixed', weights: this.cfg.weights });
    const fixedPart = out.length;
    const top = norms.reduce((m, n) => Math.max(m, n), -Infinity);
    const b = norms.map((n) => (n > 0 && top > 0 ? top / n : 1));
    const r = (x: number) => Number(x.toPrecision(3));
    const grid: { label: string; spec: BalancerSpec; rank: number }[] = [];
    if (this.cfg.grid.length && b.some((x) => Math.abs(Math.log(x)) > 1e-6)) {
      grid.push({ label: `fixed[${names.map((n, i) => `${n}=${r(b[i])}`).join(',')}]`, spec: { name: 'fixed', weights: names.map((_, i) => r(b[i])) }, rank: 0 });
    }
    // One term at a time, at b_i × m; multipliers nearest 1 first (so a cap drops the far ones).
    const ms = [...this.cfg.grid].sort((x, y) => Math.abs(Math.log(x)) - Math.abs(Math.log(y)));
    ms.forEach((m, rank) => {
      names.forEach((n, i) => {
        const w = r(b[i] * m);
        if (Math.abs(Math.log(w)) < 1e-6) return;
        grid.push({ label: `fixed[${n}=${w}]`, spec: { name: 'fixed', weights: { [n]: w } }, rank: rank + 1 });
      });
    });
    const families = this.cfg.families.map((s) => ({ label: labelOf(s), spec: s }));
    const room = Math.max(0, this.cfg.maxCandidates - fixedPart - families.length);
    // A grid point equal to an earlier candidate frees its slot for the next point.
    let taken = 0;
    for (const g of grid) {
      if (taken >= room) break;
      if (add(g.label, g.spec)) taken += 1;
    }
    for (const f of families) add(f.label, f.spec);
    return out.slice(0, this.cfg.maxCandidates);
  }

  /**
   * One trainer step during the selection: every live candidate takes one step on the current batch.
   * Returns equal weights' result (always live) with every candidate's, and the tagged records.
   */
  step(micro: MicroBatches | undefined, step: number, epoch: number): AutoStepOutput {
    const t = this.tournament!;
    const results: Record<string, StepResult> = {};
    const records: StepRecord[] = [];
    let first: StepResult | null = null;
    let replan = false;
    for (const c of [...this.live]) {
      const label = t.candidates[c.index].label;
      this.swapIn(c);
      let r: StepResult;
      this.current = label;
      try {
        syncHyperparameters(c.optimizer, this.host.optimizer);
        r = c.trainer.step(micro);
      } catch (e) {
        this.current = null;
        // The values of a failed step are not kept; equal weights failing is the user's error.
        if (c.index === 0 || !(e instanceof BalancerError)) throw e;
        t.candidates[c.index].failed = (e as Error).message;
        this.drop(c);
        replan = true;
        continue;
      }
      this.current = null;
      this.swapOut(c);
      c.recent.push(c.trainer.terms!.map((n) => r.losses[n]));
      if (c.recent.length > this.cfg.window) c.recent.shift();
      t.candidates[c.index].steps += 1;
      t.cost.candidateSteps += 1;
      results[label] = r;
      first ??= r;
      const rec = c.trainer.history.last;
      if (rec) records.push({ ...rec, step, epoch, candidate: label });
      c.trainer.history.records.length = 0;
    }
    if (!this.startLosses) this.startLosses = this.live[0].recent[0];
    this.swapIn(this.live[0]);
    this.stepsInRound += 1;
    t.cost.trainerSteps += 1;
    if (this.stepsInRound >= this.cfg.trialSteps) this.endRound(step + 1);
    else if (replan) this.plan();
    return { result: { ...first!, step }, candidates: results, records };
  }

  /** The label of the candidate whose step is running (inside its `terms()` calls), else null. */
  current: string | null = null;

  /**
   * With each live candidate's variable values in place in turn (equal weights first), call `fn`
   * with its label; equal weights' values are in place again afterwards, also when `fn` throws.
   * Nothing happens when no selection is running.
   */
  async forEachLive(fn: (label: string) => void | Promise<void>): Promise<void> {
    if (!this.tournament || this.done || !this.live.length) return;
    try {
      for (const c of [...this.live]) {
        this.swapIn(c);
        await fn(this.tournament.candidates[c.index].label);
      }
    } finally {
      this.swapIn(this.live[0]);
    }
  }

  private swapIn(c: Live): void {
    this.vars.forEach((v, i) => v.assign(c.values[i]));
  }

  private swapOut(c: Live): void {
    c.values.forEach((t) => t.dispose());
    c.values = this.vars.map((v) => tf.keep(v.clone()));
  }

  private drop(c: Live): void {
    c.values.forEach((t) => t.dispose());
    disposeOptimizer(c.optimizer);
    this.live = this.live.filter((x) => x !== c);
  }

  /** The score of a live candidate (lower is better after the sign of `mode`). */
  private scoreOf(c: Live): number {
    if (this.cfg.score) {
      this.swapIn(c);
      const s = tf.tidy(() => this.cfg.score!());
      if (typeof s !== 'number') throw new OptionError('auto', 'score', s, 'the score function must return a number');
      return s;
    }
    const L0 = this.startLosses!;
    const eps = 1e-12;
    const per = c.recent.map((ls) =>
      ls.reduce((a, l, i) => a + (L0[i] > 0 && l > 0 ? Math.log(l / L0[i]) : (l - L0[i]) / (Math.abs(L0[i]) + eps)), 0),
    );
    return per.reduce((a, b) => a + b, 0) / per.length;
  }

  private endRound(step: number): void {
    const t = this.tournament!;
    const round = t.rounds.length;
    const sign = this.cfg.mode === 'max' ? -1 : 1;
    const raw = this.live.map((c) => this.scoreOf(c));
    this.swapIn(this.live[0]);
    const keyed = this.live.map((c, i) => ({ c, s: Number.isFinite(raw[i]) ? sign * raw[i] : Number.POSITIVE_INFINITY }));
    this.live.forEach((c, i) => t.candidates[c.index].scores.push(Number.isFinite(raw[i]) ? raw[i] : null));
    // Best first; a later (less simple) candidate must beat an earlier one by the tolerance.
    const better = (a: { c: Live; s: number }, b: { c: Live; s: number }) => {
      const margin = this.cfg.tolerance * Math.max(Math.abs(a.s), Math.abs(b.s));
      if (Math.abs(a.s - b.s) <= margin || a.s === b.s) return a.c.index - b.c.index;
      return a.s - b.s;
    };
    const ranked = [...keyed].sort(better);
    const challengers = ranked.filter((k) => k.c.index !== 0);
    const last = challengers.length <= 2 || round + 1 >= this.cfg.rounds;
    const record = { step, scores: Object.fromEntries(this.live.map((c, i) => [t.candidates[c.index].label, t.candidates[c.index].scores[round]])), kept: [] as string[] };
    t.rounds.push(record);
    this.stepsInRound = 0;
    if (last) {
      const win = ranked[0].c;
      record.kept = [t.candidates[win.index].label];
      const eq = keyed.find((k) => k.c.index === 0)!;
      t.winner = t.candidates[win.index].label;
      t.reason =
        win.index === 0
          ? `no candidate scored better than equal weights (${fmtScore(eq.s * sign)})`
          : `score ${fmtScore(ranked[0].s * sign)} vs equal weights ${fmtScore(eq.s * sign)} (${this.cfg.score ? 'your score' : 'default score'}, ${this.cfg.mode === 'min' ? 'lower' : 'higher'} is better)`;
      this.finish(win);
      return;
    }
    const keep = new Set([0, ...challengers.slice(0, Math.ceil(challengers.length / this.cfg.eta)).map((k) => k.c.index)]);
    for (const c of [...this.live]) {
      if (!keep.has(c.index)) {
        t.candidates[c.index].droppedAfter = round;
        this.drop(c);
      }
    }
    record.kept = this.live.map((c) => t.candidates[c.index].label);
    for (const c of this.live) c.recent = [];
    this.plan();
  }

  /** The winner: its values into the user's variables, its optimizer state into the user's optimizer. */
  private winner: BalancedTrainer | null = null;

  private finish(win: Live): void {
    const t = this.tournament!;
    this.swapIn(win);
    adoptOptimizer(this.host.optimizer, win.optimizer);
    win.values.forEach((v) => v.dispose());
    for (const c of this.live) if (c !== win) this.drop(c);
    this.live = [];
    this.winner = win.trainer;
    t.phase = 'done';
    t.cost.plannedCandidateSteps = t.cost.candidateSteps;
    t.cost.plannedTrainerSteps = t.cost.trainerSteps;
  }

  /** The winning candidate's trainer, once done (its balancer continues the run). */
  takeWinner(): BalancedTrainer | null {
    const w = this.winner;
    this.winner = null;
    return w;
  }

  /** The winner's balancer spec, once done. */
  winnerSpec(): BalancerSpec | null {
    return this.tournament ? winnerSpecOf(this.tournament) : null;
  }

  /** Forward the end of an epoch to every live candidate. */
  endEpoch(): void {
    for (const c of this.live) c.trainer.endEpoch();
  }

  /** The selection's state (bit-exact: every live candidate's variables and optimizer slots). */
  state(): AutoState | null {
    if (!this.tournament) return null;
    const tournament = JSON.parse(JSON.stringify(this.tournament)) as Tournament;
    if (this.done) return { tournament };
    return {
      tournament,
      stepsInRound: this.stepsInRound,
      start: this.startLosses ? [...this.startLosses] : null,
      live: this.live.map((c) => ({
        index: c.index,
        trainer: c.trainer.state(),
        optimizer: saveOptimizerState(c.optimizer),
        values: c.values.map(toBits),
        recent: c.recent.map((r) => [...r]),
      })),
    };
  }

  /** Restore {@link state}; `vars` are the trainer's variables (whose values the caller restores). */
  load(saved: AutoState, vars: tf.Variable[]): void {
    if (!saved?.tournament || !Array.isArray(saved.tournament.candidates)) throw new BalancerError('trainer state: field "auto" is not an auto selection state');
    this.dispose();
    this.tournament = JSON.parse(JSON.stringify(saved.tournament)) as Tournament;
    this.specs = this.tournament.candidates.map((c) => c.spec as BalancerSpec);
    this.vars = [...vars];
    if (this.tournament.phase === 'done') return;
    if (!saved.live?.length) throw new BalancerError('trainer state: field "auto.live" is empty while the selection is running');
    this.stepsInRound = saved.stepsInRound ?? 0;
    this.startLosses = saved.start ?? null;
    this.live = saved.live.map((s) => {
      const c = this.makeLive(s.index, 0);
      c.trainer.load(s.trainer);
      loadOptimizerState(c.optimizer, s.optimizer);
      if (s.values.length !== vars.length) throw new BalancerError(`trainer state: field "auto.live" holds ${s.values.length} variables, the trainer has ${vars.length}`);
      c.values.forEach((v) => v.dispose());
      c.values = s.values.map((b, i) => {
        const t = fromBits(b);
        if (t.shape.join() !== vars[i].shape.join()) throw new BalancerError(`trainer state: field "auto.live" variable ${i} has shape [${t.shape}], "${vars[i].name}" has [${vars[i].shape}]`);
        return tf.keep(t);
      });
      c.recent = s.recent.map((r) => [...r]);
      return c;
    });
  }

  /** Dispose every copy held (variables and optimizers of live candidates). */
  dispose(): void {
    for (const c of [...this.live]) this.drop(c);
    this.live = [];
  }
}

function specName(s: BalancerSpec): string {
  return typeof s === 'string' ? s : s.name;
}

function labelOf(s: BalancerSpec): string {
  if (typeof s === 'string') return s;
  if (typeof s.label === 'string') return s.label;
  const { name, ...rest } = s;
  const opts = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
  return opts.length ? `${name}[${opts.join(',')}]` : name;
}

function stripLabel(s: BalancerSpec): BalancerSpec {
  if (typeof s === 'string' || !('label' in s)) return s;
  const { label: _l, ...rest } = s;
  return rest as BalancerSpec;
}

/**
 * The identity of a candidate for de-duplication: a `fixed` spec by its effective weight vector in
 * term order (terms not named at 1), any other by its spec without the label. A `fixed` spec whose
 * weights do not resolve keeps its spec as key (its trainer reports the error).
 */
function candidateKey(s: BalancerSpec, names: readonly string[]): string {
  const spec = stripLabel(s);
  if (specName(spec) === 'fixed') {
    const given = typeof spec === 'string' ? undefined : (spec as { weights?: number[] | Record<string, number> }).weights;
    const rest = typeof spec === 'string' ? [] : Object.keys(spec).filter((k) => k !== 'name' && k !== 'weights');
    if (rest.length === 0) {
      try {
        return JSON.stringify({ name: 'fixed', weights: resolveTermWeights('fixed', given, names) });
      } catch {
        /* an invalid spec: keyed by itself below */
      }
    }
  }
  return JSON.stringify(spec);
}

function fmtScore(x: number): string {
  return Number.isFinite(x) ? Number(x.toPrecision(4)).toString() : String(x);
}

/** The winner's balancer spec of a tournament (saved or live), or null while the selection runs. */
export function winnerSpecOf(t: Tournament): BalancerSpec | null {
  if (!t?.winner || !Array.isArray(t.candidates)) return null;
  const c = t.candidates.find((x) => x.label === t.winner);
  if (!c) throw new BalancerError(`trainer state: field "auto.tournament.winner" names "${t.winner}", which is not one of its candidates`);
  return stripLabel(c.spec as BalancerSpec);
}
