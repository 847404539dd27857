/**
 * `BalancedTrainer`: wraps a custom tfjs training loop. Each `step()` evaluates the named loss terms,
 * asks the balancer for weights (reading per-term gradients only when the strategy needs them),
 * applies Σ w_i g_i to the trained variables with the user's optimizer, and logs the step.
 */
import * as tf from '@tensorflow/tfjs';
import { accumulatedStep, microFractions, type MicroBatches } from './accumulate.js';
import { Balancer, checkSameTerms, type BalancerState, type UpdateResult } from '../core/balancer.js';
import { BalancerError } from '../core/errors.js';
import {
  checkRepresentation, combine, detectShared, gradientMatrix, perTermGradients, readGram, representationGradients, scalarOf, tapeWorks, termGradientsOnce,
  type GramReading, type Representation,
} from './grads.js';
import { History, type PerTerm, type RunMeta, type Sink, type StepRecord } from '../core/history.js';
import { create } from '../core/registry.js';
import { HarmMonitor, type HarmOptions } from '../core/harm.js';
import type { BalancerSpec, NonFinitePolicy } from '../core/types.js';

/** Options of {@link BalancedTrainer}. */
export interface BalancedTrainerOptions {
  /**
   * Computes the named scalar loss terms from the model. Called inside the trainer's gradient
   * functions, possibly several times a step; it must return the same names every time.
   * Give either `terms` or {@link represent}, not both.
   */
  terms?: () => Record<string, tf.Scalar>;
  /**
   * Representation mode (instead of `terms`): the model split at a shared representation z.
   * `trunk()` computes z, `heads(z)` the named scalar losses from it. Gram strategies then read the
   * per-term gradients ∂L_i/∂z (backward passes through the heads only) and one backward pass runs
   * through the trunk with upstream Σ w_i ∂L_i/∂z. Cheap and approximate: the Gram matrix is over
   * z, not over the trunk's parameters (MGDA-UB's bound, Sener & Koltun 2018).
   */
  represent?: Representation;
  /**
   * Read gradients and refresh the weights only every `every` steps (steps 0, k, 2k, ...); the other
   * steps reuse the last weights with one plain backward pass of Σ w_i L_i. @default 1
   */
  every?: number;
  /**
   * Exact mode: run `terms()` once per step and backpropagate T times over that one recorded
   * forward pass (`false`: one `tf.variableGrads` per term, T forward passes). Falls back to the
   * per-term way by itself when the installed tfjs does not support it. @default true
   */
  singleForward?: boolean;
  /** The optimizer that applies the balanced gradient. */
  optimizer: tf.Optimizer;
  /** A strategy name, `{ name, ...options }`, or a {@link Balancer}. @default 'fixed' */
  balancer?: BalancerSpec | Balancer;
  /**
   * The variables this trainer updates, as `optimizer.minimize(f, returnCost, varList)` takes them.
   * A discriminator trained by its own optimizer must not be in this list.
   * @default every trainable variable
   */
  variables?: tf.Variable[];
  /**
   * The variables the terms share (the Gram matrix is formed over these). Must be a subset of
   * `variables`. @default the variables reached by two or more terms
   */
  shared?: tf.Variable[];
  /** Extra sinks (e.g. a {@link JsonlSink}); the in-memory history is always kept. */
  sinks?: Sink[];
  /** A NaN/Inf loss or gradient: skip the step (warn) or throw. @default 'skip' */
  onNonFinite?: NonFinitePolicy;
  /** Keep records in {@link BalancedTrainer.history}. Turn off for very long runs. @default true */
  keepHistory?: boolean;
  /** Where warnings go. @default console.warn */
  warn?: (message: string) => void;
  /** Extra facts for the run's meta record (e.g. the model's name). */
  meta?: Record<string, unknown>;
  /**
   * Live harm checks (a starved term, a weight pinned at a bound, runaway weight ratios, a loss rising
   * while the others fall), reported through `warn`, rate-limited: thresholds as in {@link HarmOptions},
   * or `false` to turn them off. @default {} (on, default thresholds)
   */
  harm?: HarmOptions | false;
}

/** What {@link BalancedTrainer.step} returns. */
export interface StepResult {
  /** The trainer step (0-based). */
  step: number;
  /** Raw loss of each term. */
  losses: PerTerm;
  /** Weight applied to each term. */
  weights: PerTerm;
  /** ‖∂L_i/∂θ_shared‖ per term, when gradients were read this step. */
  gradNorms?: PerTerm;
  /** Σ w_i L_i + Σ regulariser: the balanced objective. */
  total: number;
  /** Why the step was skipped (no optimizer update), if it was. */
  skipped?: string;
  /** Whether the weights were refreshed (gradients read, if the strategy reads any) this step. */
  refreshed?: boolean;
}

/** The serialised form of a trainer (see {@link BalancedTrainer.state}). */
export interface TrainerState {
  /** Always `'loss-balancer/trainer'`. */
  format: 'loss-balancer/trainer';
  /** Format version (1). */
  version: number;
  /** Steps taken. */
  step: number;
  /** Epochs ended. */
  epoch: number;
  /** The balancer's complete state. */
  balancer: BalancerState;
}

/** Balances a multi-term loss in a custom training loop. */
export class BalancedTrainer {
  /** The balancer choosing the weights. */
  readonly balancer: Balancer;
  /** Every step so far, in memory (unless `keepHistory: false`). */
  readonly history = new History();
  private readonly opts: BalancedTrainerOptions;
  private readonly sinks: Sink[];
  private names: string[] | null = null;
  private sharedVars: tf.Variable[] | null;
  private _step = 0;
  private _epoch = 0;
  private opened = false;

  private readonly termsFn: () => Record<string, tf.Scalar>;
  private readonly every: number;

  constructor(options: BalancedTrainerOptions) {
    const rep = options?.represent;
    if (rep !== undefined && options.terms !== undefined) {
      throw new BalancerError('BalancedTrainer: give either option "terms" or option "represent", not both');
    }
    if (rep !== undefined) {
      if (!rep || typeof rep.trunk !== 'function' || typeof rep.heads !== 'function') {
        throw new BalancerError('BalancedTrainer: option "represent" must be { trunk: () => z, heads: (z) => named scalar losses }');
      }
      if (options.shared) throw new BalancerError('BalancedTrainer: option "shared" cannot be used with option "represent" (the Gram matrix is formed over z)');
      this.termsFn = () => rep.heads(checkRepresentation(rep.trunk()));
    } else if (typeof options?.terms !== 'function') {
      throw new BalancerError('BalancedTrainer: option "terms" must be a function returning named scalar losses (or give option "represent")');
    } else {
      this.termsFn = options.terms;
    }
    this.every = options.every ?? 1;
    if (!Number.isInteger(this.every) || this.every < 1) {
      throw new BalancerError(`BalancedTrainer: option "every" got ${JSON.stringify(options.every)}; must be an integer >= 1`);
    }
    if (!options.optimizer || typeof (options.optimizer as tf.Optimizer).applyGradients !== 'function') {
      throw new BalancerError('BalancedTrainer: option "optimizer" must be a tf.Optimizer (e.g. tf.train.adam(1e-3))');
    }
    this.opts = options;
    // One cadence mechanism: the trainer's `every: k` is the balancer's `updateEvery: k`; the balancer
    // decides each step whether the strategy runs, and the trainer asks it (wantsUpdate) before
    // reading any per-term gradient.
    this.balancer = create(options.balancer ?? 'fixed', {
      onNonFinite: options.onNonFinite,
      warn: options.warn,
      ...(this.every > 1 ? { updateEvery: this.every } : {}),
    });
    if (this.every > 1 && this.balancer.config.updateEvery !== this.every) {
      throw new BalancerError(
        `BalancedTrainer: option "every" is ${this.every} but the balancer has updateEvery ${JSON.stringify(this.balancer.config.updateEvery)}; set the cadence in one place (updateEvery in the balancer spec, or every here)`,
      );
    }
    this.sinks = [...(options.keepHistory === false ? [] : [this.history]), ...(options.sinks ?? [])];
    if (options.harm !== false) this.sinks.push(new HarmMonitor({ ...options.harm, warn: options.warn }));
    this.sharedVars = options.shared ?? null;
    if (options.shared && options.variables) {
      const names = new Set(options.variables.map((v) => v.name));
      const outside = options.shared.find((v) => !names.has(v.name));
      if (outside) throw new BalancerError(`BalancedTrainer: shared variable "${outside.name}" is not in "variables"`);
    }
  }

  /** Steps taken so far. */
  get stepCount(): number {
    return this._step;
  }

  /** The term names (known after the first step). */
  get terms(): readonly string[] | null {
    return this.names;
  }

  /** The variables updated: the `variables` option, else every trainable variable now registered. */
  get variables(): tf.Variable[] {
    if (this.opts.variables) return this.opts.variables;
    return Object.values(tf.engine().registeredVariables).filter((v) => v.trainable);
  }

  /** Mark the end of an epoch (used by strategies and records that count epochs). */
  endEpoch(): void {
    this._epoch += 1;
  }

  /**
   * One optimizer step on the balanced loss. With `{ microBatches: k, setMicroBatch }` the step's
   * batch is evaluated in k micro-batches whose per-term losses and gradients are accumulated before
   * the balancer sees them: the step equals one step on the whole batch (see {@link MicroBatches}).
   */
  step(micro?: MicroBatches): StepResult {
    const vars = this.variables;
    if (vars.length === 0) throw new BalancerError('BalancedTrainer: there are no trainable variables to update');
    if (!this.names) this.bindNames();
    const names = this.names!;
    const needs = this.balancer.needs;
    const refresh = this.balancer.wantsUpdate(this._epoch);
    const perTerm = refresh && (needs.gradients === 'gram' || !!needs.stats);
    const check = (t: Record<string, tf.Scalar>) => checkSameTerms(names, Object.keys(t));
    if (micro !== undefined) return this.stepMicro(micro, vars, names, perTerm, check, refresh);

    const snapshot = this.balancer.state();
    let outcome!: { losses: number[]; result: UpdateResult; gram?: number[][] };
    tf.tidy(() => {
      let losses: number[];
      let result: UpdateResult;
      let reading: GramReading | undefined;
      let grads: tf.NamedTensorMap;
      if (perTerm && this.opts.represent) {
        let res: UpdateResult | undefined;
        let read: number[] = [];
        const out = representationGradients(this.opts.represent, names, vars, check, (vals, M) => {
          read = vals;
          reading = readGram(M, !!needs.stats);
          res = this.balancer.update({ losses: vals, gram: reading.gram, stats: reading.stats, epoch: this._epoch });
          return res.skipped ? null : res.weights;
        }, this.balancer.headWeights);
        losses = read;
        result = res!;
        grads = out.grads;
      } else if (perTerm) {
        const read = this.opts.singleForward !== false && tapeWorks() ? termGradientsOnce : perTermGradients;
        const { values, grads: termGrads } = read(this.termsFn, names, vars, check);
        losses = Array.from(tf.stack(values).dataSync());
        this.sharedVars ??= detectShared(termGrads, vars);
        reading = readGram(gradientMatrix(termGrads, this.sharedVars), !!needs.stats);
        result = this.balancer.update({ losses, gram: reading.gram, stats: reading.stats, epoch: this._epoch });
        grads = result.skipped ? {} : combine(termGrads, result.weights, vars, this.balancer.headWeights);
      } else {
        let res: UpdateResult | undefined;
        let vals: number[] = [];
        const out = tf.variableGrads(() => {
          const t = this.termsFn();
          check(t);
          const scalars = names.map((n) => scalarOf(t, n));
          vals = Array.from(tf.stack(scalars).dataSync());
          // Between refreshes the balancer reuses its last weights without calling the strategy.
          res = this.balancer.update({ losses: vals, epoch: this._epoch });
          const w = res.skipped ? names.map(() => 0) : res.weights;
          return tf.addN(scalars.map((s, i) => s.mul(w[i]))) as tf.Scalar;
        }, vars);
        losses = vals;
        result = res!;
        grads = result.skipped ? {} : out.grads;
      }
      result = this.apply(grads, result, snapshot);
      outcome = { losses, result, gram: reading?.gram };
    });

    return { ...this.record(names, outcome.losses, outcome.result, outcome.gram), refreshed: refresh };
  }

  /** {@link step} with gradient accumulation over micro-batches (src/train/accumulate.ts). */
  private stepMicro(
    micro: MicroBatches,
    vars: tf.Variable[],
    names: string[],
    perTerm: boolean,
    check: (t: Record<string, tf.Scalar>) => void,
    refresh: boolean,
  ): StepResult {
    if (this.opts.represent) throw new BalancerError('BalancedTrainer: step({ microBatches }) cannot be used with option "represent"');
    microFractions(micro);
    const snapshot = this.balancer.state();
    let outcome!: { losses: number[]; result: UpdateResult; gram?: number[][] };
    tf.tidy(() => {
      const out = accumulatedStep(
        {
          terms: this.termsFn,
          names,
          vars,
          check,
          balancer: this.balancer,
          epoch: this._epoch,
          perTerm,
          withStats: !!this.balancer.needs.stats,
          shared: this.sharedVars,
          read: this.opts.singleForward !== false && tapeWorks() ? termGradientsOnce : perTermGradients,
        },
        micro,
      );
      if (perTerm) this.sharedVars ??= out.shared;
      outcome = { losses: out.losses, result: this.apply(out.grads, out.result, snapshot), gram: out.gram };
    });
    return { ...this.record(names, outcome.losses, outcome.result, outcome.gram), refreshed: refresh };
  }

  /** Guard the combined gradients, then apply them with the user's optimizer (unless skipped). */
  private apply(grads: tf.NamedTensorMap, result: UpdateResult, snapshot: BalancerState): UpdateResult {
    if (result.skipped || !Object.keys(grads).length) return result;
    const guarded = this.guardGradients(grads, result, snapshot);
    if (!guarded.skipped) this.opts.optimizer.applyGradients(grads);
    return guarded;
  }

  /**
   * A NaN/Inf in the combined gradient of any trained variable (possible with finite losses, e.g. the
   * gradient of sqrt at 0, and not seen by the balancer when it reads no gradient, or for variables
   * outside the shared ones): the optimizer step is skipped and the balancer state restored to
   * `snapshot` (skip, with a warning naming the variable and step), or an error is thrown.
   * One small download (one boolean per variable) per step.
   */
  private guardGradients(grads: tf.NamedTensorMap, result: UpdateResult, snapshot: BalancerState): UpdateResult {
    const names = Object.keys(grads);
    const finite = tf.tidy(() => tf.stack(names.map((n) => tf.all(tf.isFinite(grads[n])))).dataSync());
    const i = finite.findIndex((v) => !v);
    if (i < 0) return result;
    const reason = `step ${this._step}: the gradient of variable "${names[i]}" is not finite (NaN or Inf) although every loss is; optimizer step skipped, balancer state kept`;
    this.balancer.load(snapshot);
    this.balancer.reportNonFinite(reason);
    return { weights: this.balancer.weights, step: result.step, skipped: reason };
  }

  /** Flush and close every sink. */
  async close(): Promise<void> {
    for (const s of this.sinks) await s.close?.();
  }

  /** The whole trainer state (balancer state, step and epoch counters) as one JSON object. */
  state(): TrainerState {
    return { format: 'loss-balancer/trainer', version: 1, step: this._step, epoch: this._epoch, balancer: this.balancer.state() };
  }

  /** Restore a state saved by {@link BalancedTrainer.state}. */
  load(state: TrainerState): void {
    if (!state || state.format !== 'loss-balancer/trainer') throw new BalancerError('not a loss-balancer trainer state');
    if (state.version !== 1) throw new BalancerError(`trainer state version ${state.version} is not supported (this version reads 1)`);
    for (const k of ['step', 'epoch'] as const) {
      if (!Number.isInteger(state[k]) || state[k] < 0) throw new BalancerError(`trainer state: field "${k}" is ${JSON.stringify(state[k])}; must be an integer >= 0`);
    }
    this.balancer.load(state.balancer);
    this._step = state.step;
    this._epoch = state.epoch;
    this.names = state.balancer.terms ? [...state.balancer.terms] : null;
  }

  private bindNames(): void {
    const names = tf.tidy(() => {
      const t = this.termsFn();
      if (!t || typeof t !== 'object') throw new BalancerError('terms() must return an object of named scalar losses');
      const keys = Object.keys(t);
      keys.forEach((k) => scalarOf(t, k));
      return keys;
    });
    if (this.balancer.terms) checkSameTerms(this.balancer.terms, names);
    this.balancer.bind(this.balancer.terms ?? names);
    this.names = [...this.balancer.terms!];
  }

  private record(names: string[], losses: number[], result: UpdateResult, gram?: number[][]): StepResult {
    const per = (xs: readonly number[]): PerTerm => Object.fromEntries(names.map((n, i) => [n, xs[i]]));
    const weighted = losses.map((l, i) => l * result.weights[i]);
    const reg = result.regularizer;
    const total = weighted.reduce((a, b) => a + b, 0) + (reg ? reg.reduce((a, b) => a + b, 0) : 0);
    const rec: StepRecord = {
      step: this._step,
      epoch: this._epoch,
      loss: per(losses),
      weight: per(result.weights),
      weighted: per(weighted),
      total,
    };
    if (reg) rec.regularizer = per(reg);
    if (gram) rec.gradNorm = per(gram.map((row, i) => Math.sqrt(Math.max(0, row[i]))));
    if (result.info) rec.info = Object.fromEntries(Object.entries(result.info).map(([k, v]) => [k, per(v)]));
    if (result.skipped) rec.skipped = result.skipped;
    if (result.clamped?.length) rec.clamped = [...result.clamped];
    if (!this.opened) {
      this.opened = true;
      const meta: RunMeta = {
        strategy: this.balancer.name,
        options: this.balancer.options,
        terms: names,
        backend: tf.getBackend(),
        gradients: this.balancer.needs.gradients === 'gram' || this.balancer.needs.stats ? (this.opts.represent ? 'representation' : 'shared') : 'none',
        ...(this.every > 1 ? { every: this.every } : {}),
        startedAt: new Date().toISOString(),
        ...this.opts.meta,
      };
      for (const s of this.sinks) s.open?.(meta);
    }
    for (const s of this.sinks) s.write(rec);
    this._step += 1;
    return { step: rec.step, losses: rec.loss, weights: rec.weight, gradNorms: rec.gradNorm, total, skipped: rec.skipped };
  }
}
