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
 * 3. Round r lasts `trialSteps × growth^r` steps (growth defaults to eta: half the candidates,
 *    twice the steps each). At its end the live candidates are scored and the best ⌈n/eta⌉
 *    challengers are kept (successive halving: Karnin, Koren & Somekh, "Almost Optimal
 *    Exploration in Multi-Armed Bandits", ICML 2013, https://proceedings.mlr.press/v28/karnin13.html;
 *    Jamieson & Talwalkar, "Non-stochastic Best Arm Identification and Hyperparameter Optimization",
 *    AISTATS 2016, https://arxiv.org/abs/1502.07943). Each survivor continues from its own state, so
 *    no step is paid twice. Under the default score, a challenger whose trial raised a harm flag (src/core/harm.ts) that equal
 *    weights' trial did not raise on the same term is disqualified. Equal weights are never dropped.
 * 4. When two challengers or fewer are left (or after `rounds` rounds), the winner is chosen: with
 *    the user's score the best live candidate; without one, the best challenger only when it beats
 *    equal weights term by term on the same held-out batches ({@link compareWithEqual}: on average
 *    over the terms, beyond the noise, no term more than `maxWorse` worse), else equal weights (and
 *    a one-line notice names the option to pass). The user's variables receive the winner's values,
 *    the user's optimizer object receives its slots, and training continues with its balancer (its
 *    state and step count), i.e. from the winner's own trial state, not from a restart.
 *
 * The first round's length comes from `totalSteps` (the run's planned steps) and `budget` when
 * `trialSteps` is not given ({@link trialStepsFor}).
 *
 * Cost: with n candidates, the selection takes Σ_r (live candidates) × (length of round r) candidate
 * steps (each as costly as one step of that candidate's strategy) over Σ_r (length of round r) calls
 * of `step()`, and holds one copy of the trained variables and of the optimizer slots per live
 * candidate. `maxCandidates`, `trialSteps` and `rounds` cap both. The cost is reported in the
 * {@link Tournament}.
 *
 * @module
 */
import * as tf from '@tensorflow/tfjs';
import { decodeBase64, encodeBase64 } from '../core/base64.js';
import { BalancerError, OptionError } from '../core/errors.js';
import * as z from 'zod/mini';
import { checkWithSchema, stateSchemas, StateError } from '../core/state-check.js';
import { AUTO_FAMILIES, FAMILY, type AutoConfig } from '../core/auto-config.js';
import { HarmDetector } from '../core/harm.js';
import { create } from '../core/registry.js';
import type { StepRecord } from '../core/history.js';
import type { Tournament, TournamentCandidate, TournamentRound } from '../core/tournament.js';
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

/**
 * A tensor stored bit-exactly in JSON: dtype, shape and the raw little-endian bytes, base64
 * (4/3 of a byte per byte: a float32 takes 5⅓ characters, whatever its value).
 */
export interface SavedBits {
  /** tfjs dtype (float32, int32 or bool). */
  dtype: tf.DataType;
  /** Shape. */
  shape: number[];
  /** base64 of the little-endian bytes (float32 / int32: 4 bytes per element; bool: 1). */
  data?: string;
  /**
   * Read only, from states saved before `data` existed: the 32-bit words as decimal integers
   * (float32 bits as int32), or the values for bool.
   */
  bits?: number[];
}

const OWNER = 'trainer state';
const BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1 };
const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function toBits(t: tf.Tensor): SavedBits {
  const v = t.dataSync();
  if (!(v instanceof Float32Array || v instanceof Int32Array || v instanceof Uint8Array)) throw new BalancerError(`auto: cannot store a tensor of dtype ${t.dtype}`);
  if (!littleEndian) throw new BalancerError('auto: a selection state is only saved on little-endian machines');
  return { dtype: t.dtype, shape: [...t.shape], data: encodeBase64(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)) };
}

/** A checked, decoded {@link SavedBits}: typed values, not yet a tensor. */
interface Decoded {
  dtype: tf.DataType;
  shape: number[];
  values: Float32Array | Int32Array | Uint8Array;
}

/**
 * Check and decode `s` (field `field` of the trainer state) without creating a tensor. With `like`,
 * its dtype and shape must be `like`'s (`what` names it in the error).
 */
function decodeBits(s: SavedBits, field: string, like?: { dtype: tf.DataType; shape: readonly number[] }, what = ''): Decoded {
  if (!s || typeof s !== 'object' || Array.isArray(s)) throw new StateError(OWNER, field, s, 'must be a saved tensor { dtype, shape, data }');
  if (!(typeof s.dtype === 'string' && s.dtype in BYTES)) throw new StateError(OWNER, `${field}.dtype`, s.dtype, 'must be "float32", "int32" or "bool"');
  if (!Array.isArray(s.shape) || s.shape.length > 8 || s.shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new StateError(OWNER, `${field}.shape`, s.shape, 'must be a list of integers >= 0');
  }
  if (like && (s.dtype !== like.dtype || s.shape.join() !== like.shape.join())) {
    throw new StateError(OWNER, `${field}.shape`, s.shape, `${what} is ${like.dtype} [${like.shape.join(', ')}]; the saved tensor is ${s.dtype} [${s.shape.join(', ')}]: the model or optimizer changed since the state was saved`);
  }
  const n = s.shape.reduce((a, b) => a * b, 1);
  let values: Float32Array | Int32Array | Uint8Array;
  if (s.data !== undefined) {
    const bytes = decodeBase64(s.data);
    if (!bytes) throw new StateError(OWNER, `${field}.data`, s.data, 'must be base64 text (A-Z, a-z, 0-9, +, /, padded with =)');
    if (bytes.length !== n * BYTES[s.dtype]) {
      throw new StateError(OWNER, `${field}.data`, s.data, `must hold ${n * BYTES[s.dtype]} bytes (${n} ${s.dtype} values for shape [${s.shape.join(', ')}]); it holds ${bytes.length}`);
    }
    if (!littleEndian) throw new BalancerError('auto: a selection state is only loaded on little-endian machines');
    values = s.dtype === 'bool' ? bytes : s.dtype === 'int32' ? new Int32Array(bytes.buffer) : new Float32Array(bytes.buffer);
  } else {
    const bits = s.bits;
    const max = s.dtype === 'bool' ? 1 : 2147483647;
    const min = s.dtype === 'bool' ? 0 : -2147483648;
    if (!Array.isArray(bits)) throw new StateError(OWNER, `${field}.data`, undefined, 'is required (base64 of the raw bytes)');
    if (bits.length !== n) throw new StateError(OWNER, `${field}.bits`, `${bits.length} values`, `must hold ${n} values for shape [${s.shape.join(', ')}]`);
    const bad = bits.findIndex((b) => !Number.isInteger(b) || b < min || b > max);
    if (bad >= 0) throw new StateError(OWNER, `${field}.bits.${bad}`, bits[bad], `must be an integer from ${min} to ${max}`);
    const words = s.dtype === 'bool' ? Uint8Array.from(bits) : Int32Array.from(bits);
    values = s.dtype === 'float32' ? new Float32Array(words.buffer) : words;
  }
  return { dtype: s.dtype, shape: [...s.shape], values };
}

function tensorOf(d: Decoded): tf.Tensor {
  return tf.tensor(d.values, d.shape, d.dtype);
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

const isPlain = (v: unknown): boolean => v === null || ['number', 'string', 'boolean', 'undefined'].includes(typeof v) || (Array.isArray(v) && v.length === 0);

function saveOptimizerState(opt: tf.Optimizer): SavedOptimizerState {
  const out: SavedOptimizerState = {};
  for (const [k, v] of Object.entries(opt)) {
    if (v instanceof tf.Tensor) out[k] = { kind: 'tensor', variable: v instanceof tf.Variable, value: toBits(v) };
    else if (isSlots(v)) out[k] = { kind: 'slots', items: v.map((s) => ({ originalName: s.originalName, value: toBits(s.variable) })) };
    else if (isPlain(v)) out[k] = { kind: 'value', value: v };
  }
  return out;
}

/** A checked, decoded optimizer state: what {@link applyOptimizerState} writes, field by field. */
type DecodedOptimizer = (
  | { key: string; kind: 'tensor'; variable: boolean; value: Decoded }
  | { key: string; kind: 'slots'; items: { originalName: string; value: Decoded }[] }
  | { key: string; kind: 'value'; value: unknown }
)[];

/**
 * Properties tfjs optimizers create at their first step, so absent from a fresh one: allowed in a
 * saved state although the optimizer given does not hold them yet.
 */
const CREATED_LATER: Record<string, 'count'> = { iterations_: 'count' };

/**
 * Check a saved optimizer state against `opt` (a fresh copy of the user's optimizer: same class)
 * and the trained `vars`, and decode it, without changing anything. Keys are taken by an allow-list:
 * the optimizer's own saveable properties (plus those tfjs creates at the first step), each of the
 * kind it holds now: a tensor of the same dtype and shape, slots of a trained variable's shape, or
 * a plain value of the same type. Every saved property must be there, none may be missing.
 */
function decodeOptimizerState(saved: SavedOptimizerState, opt: tf.Optimizer, vars: readonly tf.Variable[], field: string): DecodedOptimizer {
  if (!saved || typeof saved !== 'object' || Array.isArray(saved)) throw new StateError(OWNER, field, saved, 'must be a saved optimizer state (an object)');
  const own = opt as unknown as Record<string, unknown>;
  const expected = Object.keys(saveOptimizerState0(opt));
  const out: DecodedOptimizer = [];
  for (const key of Object.keys(saved)) {
    const at = `${field}.${key}`;
    const s = saved[key];
    const has = Object.hasOwn(own, key) && expected.includes(key);
    if (!has && !Object.hasOwn(CREATED_LATER, key)) {
      throw new StateError(OWNER, at, s, `no such field in a ${opt.getClassName()} optimizer state (allowed: ${[...expected, ...Object.keys(CREATED_LATER).filter((k) => !expected.includes(k))].join(', ')})`);
    }
    if (!s || typeof s !== 'object' || !['tensor', 'slots', 'value'].includes(s.kind)) throw new StateError(OWNER, `${at}.kind`, s?.kind, 'must be "tensor", "slots" or "value"');
    const cur = has ? own[key] : undefined;
    if (s.kind === 'tensor') {
      if (!(cur instanceof tf.Tensor)) throw new StateError(OWNER, `${at}.kind`, s.kind, `the optimizer's "${key}" is not a tensor`);
      if (s.variable !== (cur instanceof tf.Variable)) throw new StateError(OWNER, `${at}.variable`, s.variable, `must be ${cur instanceof tf.Variable}`);
      out.push({ key, kind: 'tensor', variable: s.variable, value: decodeBits(s.value, `${at}.value`, cur, `the optimizer's "${key}"`) });
    } else if (s.kind === 'slots') {
      if (!Array.isArray(cur)) throw new StateError(OWNER, `${at}.kind`, s.kind, `the optimizer's "${key}" is not a list of slots`);
      if (!Array.isArray(s.items) || s.items.length === 0 || s.items.length > vars.length) {
        throw new StateError(OWNER, `${at}.items`, s.items, `must be a list of 1 to ${vars.length} slots (one per trained variable)`);
      }
      const items = s.items.map((it, i) => {
        const ia = `${at}.items.${i}`;
        if (!it || typeof it !== 'object' || typeof it.originalName !== 'string') throw new StateError(OWNER, `${ia}.originalName`, it?.originalName, 'must be a string (the slot\'s name)');
        // Slot i belongs to the i-th variable the optimizer was given (variable names differ between processes).
        const shape = Array.isArray(it.value?.shape) ? it.value.shape.join() : null;
        const v = s.items.length === vars.length ? vars[i] : vars.find((x) => x.shape.join() === shape);
        if (!v) throw new StateError(OWNER, `${ia}.value.shape`, it.value?.shape, 'must be the shape of a trained variable');
        return { originalName: it.originalName, value: decodeBits(it.value, `${ia}.value`, v, `the slot of variable "${v.name}"`) };
      });
      out.push({ key, kind: 'slots', items });
    } else {
      const v = s.value;
      const ok = !has
        ? Number.isInteger(v) && (v as number) >= 0
        : Array.isArray(cur) ? Array.isArray(v) && v.length === 0 : typeof v === typeof cur && (typeof v !== 'number' || Number.isFinite(v)) && (v !== null) === (cur !== null);
      if (!ok) throw new StateError(OWNER, `${at}.value`, v, !has ? 'must be an integer >= 0' : Array.isArray(cur) ? 'must be [] (no slots yet)' : `must be a ${cur === null ? 'null' : typeof cur}${typeof cur === 'number' ? ' (finite)' : ''}, as the optimizer's "${key}"`);
      out.push({ key, kind: 'value', value: Array.isArray(v) ? [] : v });
    }
  }
  const missing = expected.find((k) => !Object.hasOwn(saved, k) && !Object.hasOwn(CREATED_LATER, k));
  if (missing) throw new StateError(OWNER, `${field}.${missing}`, undefined, 'is required');
  return out;
}

/** The keys {@link saveOptimizerState} would write for `opt` (without reading any tensor). */
function saveOptimizerState0(opt: tf.Optimizer): Record<string, true> {
  const out: Record<string, true> = {};
  for (const [k, v] of Object.entries(opt)) if (v instanceof tf.Tensor || isSlots(v) || isPlain(v)) out[k] = true;
  return out;
}

function disposeOwn(opt: tf.Optimizer, key: string): void {
  const v = (opt as unknown as Record<string, unknown>)[key];
  if (v instanceof tf.Tensor) v.dispose();
  else if (isSlots(v)) v.forEach((s) => s.variable.dispose());
}

/** Write a state checked by {@link decodeOptimizerState} into `opt` (only the allowed keys). */
function applyOptimizerState(opt: tf.Optimizer, d: DecodedOptimizer): void {
  const o = opt as unknown as Record<string, unknown>;
  for (const f of d) {
    disposeOwn(opt, f.key);
    if (f.kind === 'tensor') {
      const t = tensorOf(f.value);
      o[f.key] = f.variable ? tf.variable(t, false) : tf.keep(t);
      if (f.variable) t.dispose();
    } else if (f.kind === 'slots') {
      o[f.key] = f.items.map((it) => {
        const t = tensorOf(it.value);
        const variable = tf.variable(t, false);
        t.dispose();
        return { originalName: it.originalName, variable };
      });
    } else {
      o[f.key] = f.value;
    }
  }
}

/**
 * Slot variables `opt` keeps per trained variable (Adam: 2 moments), for the memory the candidates'
 * copies take: the tfjs optimizers' known layouts, else the slot lists it holds now (an optimizer
 * creates its slots at its first step).
 */
export function slotsPerVariable(opt: tf.Optimizer): number {
  const known: Record<string, number> = { SGD: 0, Momentum: 1, Adagrad: 1, Adadelta: 2, Adam: 2, Adamax: 2 };
  const name = opt.getClassName();
  if (name === 'RMSProp') return (opt as unknown as { centered?: boolean }).centered ? 3 : 2;
  if (name in known) return known[name];
  return Object.values(opt).filter((v) => Array.isArray(v)).length;
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
  /** The trainer's `warn` option (the one-line notice when equal weights are kept). */
  warn?: (message: string) => void;
}

/** One live candidate: its trainer (balancer, own optimizer) and its parked variable values. */
interface Live {
  index: number;
  trainer: BalancedTrainer;
  optimizer: tf.Optimizer;
  values: tf.Tensor[];
  recent: number[][];
  /** Its step records of the current round (for the harm checks that can disqualify it). */
  trace: StepRecord[];
}

/** The selection's serialised state (inside {@link TrainerState}). */
export interface AutoState {
  /** The tournament so far (candidates, rounds, cost). */
  tournament: Tournament;
  /**
   * While running: the `auto` options the selection runs with (functions as `score: 'user'`); it
   * loads only into a trainer built with the same ones. Absent in states saved before it existed.
   */
  options?: Record<string, unknown>;
  /** While running: steps taken in the current round. */
  stepsInRound?: number;
  /** While running: the raw losses at the common start. */
  start?: SavedLoss[] | null;
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
  /** Its raw losses of the current round's last steps (for the default score); non-finite ones as strings. */
  recent: SavedLoss[][];
  /** Its step records of the current round (harm checks); absent in states saved before they existed. */
  trace?: StepRecord[];
}

/** The `auto` options as JSON, for the saved state (see {@link AutoState.options}). */
function optionsOf(cfg: AutoConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(cfg)) if (k !== 'score' && v !== undefined && typeof v !== 'function') out[k] = JSON.parse(JSON.stringify(v));
  out.score = cfg.score ? 'user' : 'default';
  return out;
}

const finite = stateSchemas.finite;
const count = stateSchemas.count;
const label = z.string({ message: 'must be a string' });
const scoreValue = z.nullable(finite);
/** A saved raw loss: a number, or `"NaN"` / `"Infinity"` / `"-Infinity"` (null: NaN, from states saved before). */
const lossValue = z.union([finite, z.null(), z.enum(['NaN', 'Infinity', '-Infinity'])], { message: 'must be a number, "NaN", "Infinity" or "-Infinity"' });
/** A loss as JSON keeps it exactly (JSON has no NaN or Infinity). */
export type SavedLoss = number | 'NaN' | 'Infinity' | '-Infinity';
const saveLoss = (x: number): SavedLoss => (Number.isFinite(x) ? x : (String(x) as SavedLoss));
const readLoss = (x: SavedLoss | null): number => (x === null ? Number.NaN : typeof x === 'string' ? Number(x) : x);
/**
 * The structure of a saved selection state. The tournament's objects are loose (informational
 * fields may be added); the state around it is strict.
 */
const autoStateSchema = z.strictObject({
  tournament: z.looseObject({
    phase: z.enum(['running', 'done'], { message: 'must be "running" or "done"' }),
    startStep: count,
    trialSteps: count,
    eta: finite,
    score: z.enum(['user', 'default'], { message: 'must be "user" or "default"' }),
    mode: z.enum(['min', 'max'], { message: 'must be "min" or "max"' }),
    candidates: z
      .array(
        z.looseObject({
          label,
          spec: z.union([label, z.looseObject({ name: label })], { message: 'must be a strategy name or { name, ...options }' }),
          family: label,
          scores: z.array(scoreValue, { message: 'must be a list of scores' }),
          steps: count,
          droppedAfter: z.optional(count),
          failed: z.optional(label),
        }),
        { message: 'must be a list of candidates' },
      )
      .check(z.minLength(1, { message: 'must list at least equal weights' })),
    rounds: z.array(z.looseObject({ step: count, scores: z.record(label, scoreValue), kept: z.array(label) }), { message: 'must be a list of rounds' }),
    gradNorms: z.optional(z.record(label, z.nullable(stateSchemas.nonNegative))),
    winner: z.optional(label),
    reason: z.optional(label),
    probation: z.optional(
      z.looseObject({ candidate: label, round: count, steps: count.check(z.positive({ message: 'must be a positive integer' })), outcome: z.optional(z.enum(['kept', 'fell back'], { message: 'must be "kept" or "fell back"' })) }),
    ),
    cost: z.looseObject({ candidateSteps: count, plannedCandidateSteps: count, trainerSteps: count, plannedTrainerSteps: count, copies: count, bytes: stateSchemas.nonNegative }),
  }),
  options: z.optional(z.record(label, z.unknown())),
  stepsInRound: z.optional(count),
  start: z.optional(z.nullable(z.array(lossValue, { message: 'must be a list of numbers' }))),
  live: z.optional(
    z.array(
      z.strictObject({
        index: count,
        trainer: z.looseObject({}),
        optimizer: z.record(label, z.unknown()),
        values: z.array(z.unknown(), { message: 'must be a list of saved tensors' }),
        recent: z.array(z.array(lossValue, { message: 'must be a list of losses' }), { message: 'must be a list of per-term loss lists' }),
        trace: z.optional(
          z.array(
            z.looseObject({ step: count, loss: z.record(label, z.nullable(z.number())), weight: z.record(label, z.nullable(z.number())) }),
            { message: 'must be a list of step records (the round so far)' },
          ),
        ),
      }),
      { message: 'must be a list of live candidates' },
    ),
  ),
});

/** A saved selection state checked and decoded by {@link AutoSelector.prepare}: applying it cannot fail. */
export interface PreparedAuto {
  tournament: Tournament;
  stepsInRound?: number;
  start?: number[] | null;
  live: { index: number; spec: BalancerSpec; trainer: TrainerState; optimizer: DecodedOptimizer; values: Decoded[]; recent: number[][]; trace: StepRecord[] }[];
}
const preparedStates = new WeakSet<object>();
const isPrepared = (s: object): s is PreparedAuto => preparedStates.has(s);

/** What {@link AutoSelector.step} returns. */
export interface AutoStepOutput {
  /** Equal weights' step result (the values the variables hold between steps). */
  result: StepResult;
  /** Every live candidate's step result, by label. */
  candidates: Record<string, StepResult>;
  /** The candidates' step records, tagged with `candidate`, for the trainer's sinks. */
  records: StepRecord[];
  /** The error of this round's scoring, when it failed (the trainer throws it after writing the records). */
  error?: unknown;
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
    this.checkSpecs(names);
    this.vars = [...vars];
    const norms = this.measure(names);
    const list = this.buildCandidates(names, norms);
    const bytes = vars.reduce((a, v) => a + v.size * 4, 0) * (1 + slotsPerVariable(this.host.optimizer));
    const growth = this.cfg.growth ?? this.cfg.eta;
    this.tournament = {
      phase: 'running',
      startStep: step,
      trialSteps: this.cfg.trialSteps ?? trialStepsFor(list.length, this.cfg, growth),
      growth,
      ...(this.cfg.totalSteps !== undefined ? { totalSteps: this.cfg.totalSteps } : {}),
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

  /**
   * The specs the user gave (`candidates`, `weights`, `families` other than the default) against
   * the term names, known at the first step: each must build a balancer for these terms (a misspelt
   * term in a `fixed` weight, a list of the wrong length, ...), else an error names the option, its
   * index and the rule, before anything is built. (Before, such a candidate failed at its first
   * step and was dropped without a word.)
   */
  private checkSpecs(names: readonly string[]): void {
    const check = (spec: BalancerSpec, field: string) => {
      try {
        tf.tidy(() => {
          const b = create(stripLabel(spec));
          try {
            b.bind(names);
          } finally {
            b.dispose();
          }
        });
      } catch (e) {
        if (!(e instanceof BalancerError)) throw e;
        throw new OptionError('auto', field, spec, `does not fit the terms ${JSON.stringify(names)}: ${e.message}`);
      }
    };
    this.cfg.candidates?.forEach((s, i) => check(s, `candidates.${i}`));
    if (this.cfg.weights) check({ name: 'fixed', weights: this.cfg.weights }, 'weights');
    if (JSON.stringify(this.cfg.families) !== JSON.stringify(AUTO_FAMILIES)) this.cfg.families.forEach((s, i) => check(s, `families.${i}`));
  }

  private makeLive(index: number, epoch: number): Live {
    const optimizer = cloneOptimizer(this.host.optimizer);
    const trainer = this.host.makeTrainer(stripLabel(this.specs[index]), optimizer, this.vars);
    for (let e = 0; e < epoch; e++) trainer.endEpoch();
    return { index, trainer, optimizer, values: this.vars.map((v) => tf.keep(v.clone())), recent: [], trace: [] };
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
    const left = roundLength(t, rounds) - this.stepsInRound;
    let steps = t.cost.candidateSteps + n * left;
    let trainer = t.cost.trainerSteps + left;
    while (true) {
      rounds += 1;
      if (n - 1 <= 2 || rounds >= this.cfg.rounds) break;
      n = Math.ceil((n - 1) / this.cfg.eta) + 1;
      steps += n * roundLength(t, rounds);
      trainer += roundLength(t, rounds);
    }
    // the probation a challenger that wins would serve (equal weights and it: two steps per step)
    if (!t.probation && t.score === 'default') {
      const p = this.probationSteps(t.startStep + trainer, roundLength(t, rounds - 1));
      steps += 2 * p;
      trainer += p;
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
    // b_i = max_j ‖g_j‖ / ‖g_i‖ over the terms with a finite, positive norm (others at 1), at most
    // MAX_RATIO so that every grid point stays a valid fixed weight (≤ 1e12 after × 10 and more).
    const top = norms.reduce((m, n) => (Number.isFinite(n) && n > 0 ? Math.max(m, n) : m), 0);
    const b = norms.map((n) => (Number.isFinite(n) && n > 0 && top > 0 ? Math.min(MAX_RATIO, top / n) : 1));
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
        if (Math.abs(Math.log(w)) < 1e-6 || !(w <= MAX_GRID_WEIGHT)) return;
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
   * Whether the last round's scoring failed (the `score` option threw or returned no number): it is
   * scored again, by {@link scorePending}, before the next step.
   */
  get pending(): boolean {
    return !!this.tournament && !this.done && this.stepsInRound >= roundLength(this.tournament, this.tournament.rounds.length);
  }

  /**
   * Score the round whose scoring failed at the previous step (see {@link pending}); `step` is the
   * trainer's step count now. Throws as that scoring did when the score fails again (nothing
   * changed then). Afterwards the selection may be done: the trainer then takes an ordinary step.
   */
  scorePending(step: number): void {
    if (!this.pending) return;
    try {
      this.endRound(step);
    } finally {
      if (this.live.length) this.swapIn(this.live[0]);
    }
  }

  /**
   * One trainer step during the selection: every live candidate takes one step on the current batch.
   * Returns equal weights' result (always live) with every candidate's, and the tagged records.
   * When the round ends with this step and its scoring fails (the `score` option throws or returns
   * no number), the step stands (every candidate took it) and the error is returned in `error`, for
   * the trainer to throw once the step's records are written; the variables hold equal weights'
   * values and the round is scored again before the next step ({@link scorePending}).
   */
  step(micro: MicroBatches | undefined, step: number, epoch: number): AutoStepOutput {
    const run = this.openStep();
    for (const c of [...this.live]) {
      this.enter(c);
      let r: StepResult;
      try {
        r = c.trainer.step(micro);
      } catch (e) {
        this.failed(c, e, run);
        continue;
      }
      this.leave(c, r, run, step, epoch);
    }
    return this.closeStep(run, step);
  }

  /** {@link step} with each candidate's `stepAsync()` (browser backends): the same records and values. */
  async stepAsync(step: number, epoch: number): Promise<AutoStepOutput> {
    const run = this.openStep();
    for (const c of [...this.live]) {
      this.enter(c);
      let r: StepResult;
      try {
        r = await c.trainer.stepAsync();
      } catch (e) {
        this.failed(c, e, run);
        continue;
      }
      this.leave(c, r, run, step, epoch);
    }
    return this.closeStep(run, step);
  }

  /**
   * The bookkeeping of one selection step ({@link step}, {@link stepAsync}). Between steps the
   * variables hold equal weights' values. A write the user made to them since (clipping, a
   * constraint, another trainer on shared variables) is kept: equal weights continue from the
   * variables, not from their parked copy. Without a write the two are the same values, so a run
   * (and a resume, whose variables are restored from the same file) is unchanged.
   */
  private openStep(): { results: Record<string, StepResult>; records: StepRecord[]; first: StepResult | null; replan: boolean } {
    this.stepWarnings = new Set();
    this.swapOut(this.live[0]);
    return { results: {}, records: [], first: null, replan: false };
  }

  /** A candidate's values in place and its label current, before its step. */
  private enter(c: Live): void {
    // equal weights' values are in place already (openStep read them from the variables)
    if (c !== this.live[0]) this.swapIn(c);
    this.current = this.tournament!.candidates[c.index].label;
    syncHyperparameters(c.optimizer, this.host.optimizer);
  }

  /** A candidate's step threw: the values of a failed step are not kept; equal weights failing is the user's error. */
  private failed(c: Live, e: unknown, run: ReturnType<AutoSelector['openStep']>): void {
    this.current = null;
    if (c.index === 0 || !(e instanceof BalancerError)) throw e;
    this.tournament!.candidates[c.index].failed = (e as Error).message;
    this.drop(c);
    run.replan = true;
  }

  /** A candidate's step done: its values kept, its losses, steps and record counted. */
  private leave(c: Live, r: StepResult, run: ReturnType<AutoSelector['openStep']>, step: number, epoch: number): void {
    const t = this.tournament!;
    const label = t.candidates[c.index].label;
    this.current = null;
    this.swapOut(c);
    c.recent.push(c.trainer.terms!.map((n) => r.losses[n]));
    if (c.recent.length > this.window(t.rounds.length)) c.recent.shift();
    t.candidates[c.index].steps += 1;
    t.cost.candidateSteps += 1;
    run.results[label] = r;
    run.first ??= r;
    const rec = c.trainer.history.last;
    if (rec) {
      run.records.push({ ...rec, step, epoch, candidate: label });
      if (this.cfg.disqualify) {
        c.trace.push(rec);
        // a probation is long: its harm checks judge its last window
        if (t.probation && t.rounds.length === t.probation.round && c.trace.length > this.window(t.rounds.length)) c.trace.shift();
      }
    }
    c.trainer.history.records.length = 0;
  }

  /** After every live candidate stepped: equal weights' values back in place, the round scored when it ends. */
  private closeStep(run: ReturnType<AutoSelector['openStep']>, step: number): AutoStepOutput {
    const t = this.tournament!;
    if (!this.startLosses) this.startLosses = this.live[0].recent[0];
    this.swapIn(this.live[0]);
    this.stepsInRound += 1;
    t.cost.trainerSteps += 1;
    let error: unknown;
    if (this.stepsInRound >= roundLength(t, t.rounds.length)) {
      try {
        this.endRound(step + 1);
      } catch (e) {
        // endRound scores every live candidate before it changes anything: nothing to undo but the
        // variables, which hold the last scored candidate's values.
        this.swapIn(this.live[0]);
        if (run.replan) this.plan();
        error = e;
      }
    } else if (run.replan) this.plan();
    return { result: { ...run.first!, step }, candidates: run.results, records: run.records, ...(error !== undefined ? { error } : {}) };
  }

  /** The warnings given during the current selection step (see {@link relayWarning}). */
  private stepWarnings = new Set<string>();

  /**
   * A candidate trainer's warning, passed to `warn` unless the same words were passed on during
   * this selection step already (a bad batch that every candidate skips warns once, not once per
   * candidate).
   */
  relayWarning(message: string, warn: (message: string) => void): void {
    if (this.stepWarnings.has(message)) return;
    this.stepWarnings.add(message);
    warn(message);
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
    c.trainer.balancer.dispose(); // its own, built from the candidate's spec (a Jacobian kind's tensor state)
    this.live = this.live.filter((x) => x !== c);
  }

  /** Steps of round `r` whose losses the default score compares: `window`, or half the round. */
  private window(r: number): number {
    const len = roundLength(this.tournament!, r);
    return Math.min(len, this.cfg.window ?? Math.ceil(len / 2));
  }

  /**
   * The user's score of candidate `c`, with its values in place. Tensors the score creates are
   * released, a tensor it returns included; a throw, or anything but a number, is an error naming
   * the option, the candidate and the round.
   */
  private userScore(c: Live): number {
    this.swapIn(c);
    const label = this.tournament!.candidates[c.index].label;
    const where = `while scoring candidate "${label}" at the end of round ${this.tournament!.rounds.length + 1}`;
    const after = "; the step was taken and recorded, the variables hold equal weights' values, and the round is scored again at the next step()";
    let s: unknown;
    let tensor: tf.Tensor | null = null;
    try {
      tf.tidy(() => {
        const v = this.cfg.score!() as unknown;
        if (v instanceof tf.Tensor) tensor = v;
        else s = v;
      });
    } catch (e) {
      throw new BalancerError(`auto: option "score" threw ${where}: ${(e as Error)?.message ?? String(e)}${after}`);
    }
    if (tensor) {
      const t = tensor as tf.Tensor;
      throw new OptionError('auto', 'score', `a tensor (${t.dtype} [${t.shape.join(', ')}])`, `the score must return a number (read a tensor with .dataSync()[0]); ${where}${after}`);
    }
    if (typeof s !== 'number') throw new OptionError('auto', 'score', s, `the score must return a number; ${where}${after}`);
    return s;
  }

  /**
   * The harm flags (`kind:term`) a candidate's trial raised this round: every check of
   * src/core/harm.ts over the round's records, judged once at its end with a window of the round.
   */
  private harmFlags(c: Live): Set<string> {
    const recs = c.trace.filter((r) => !r.skipped);
    if (recs.length < 4) return new Set();
    const det = new HarmDetector({ window: recs.length, lossWindow: recs.length, checkEvery: recs.length, cooldown: 1 });
    const cfg = c.trainer.balancer.config as { minWeight?: unknown };
    det.open({ strategy: c.trainer.balancer.name, terms: [...(c.trainer.terms ?? [])], options: { minWeight: cfg.minWeight } });
    const out = new Set<string>();
    // Only a weight pinned at a bound or floor, or a starved term, disqualifies. `runaway` (weights
    // 100× apart and growing) is what a balancing strategy does on its way to the terms' scale
    // ratios (db-mtl, grad-magnitude on terms 1e4 apart), and `rising` is what a regulariser does
    // when it stops collapsing (a VAE's KL): a rise that harms shows in the comparison with equal
    // weights (maxWorse).
    for (const r of recs) for (const f of det.push(r)) if (f.kind === 'pinned' || f.kind === 'starved') out.add(`${f.kind}:${f.term}`);
    return out;
  }

  private endRound(step: number): void {
    const t = this.tournament!;
    const round = t.rounds.length;
    const user = !!this.cfg.score;
    const sign = user && this.cfg.mode === 'max' ? -1 : 1;
    const eqLive = this.live[0];
    // Default: every candidate against equal weights on the same batches (see AutoOptions.window).
    const cmp = user ? null : this.live.map((c) => compareWithEqual(c.recent, eqLive.recent));
    const raw = user ? this.live.map((c) => this.userScore(c)) : cmp!.map((x) => x.score);
    this.swapIn(eqLive);
    // Harm checks (default score only: with the user's score, their metric judges): a challenger
    // raising a flag that equal weights' trial does not raise is out.
    const disqualify = this.cfg.disqualify && !user;
    const base = disqualify ? this.harmFlags(eqLive) : new Set<string>();
    const out = new Map<number, string>();
    if (disqualify) {
      for (const c of this.live.slice(1)) {
        const extra = [...this.harmFlags(c)].filter((f) => !base.has(f));
        if (extra.length) out.set(c.index, extra.map((f) => f.replace(':', ' on ')).join(', '));
      }
    }
    // By default a candidate that lets a term lose more than maxWorse against equal weights ranks
    // after every one that does not (by how much it lost), and cannot win. Not in the probation:
    // over a longer run a balance gives up part of the dominant term's loss for the others' (the
    // Helmholtz PINN's winner, at 4,000 of 10,000 steps: residual +69 %, boundary 11× lower), which
    // the score charges T times; there the score alone decides.
    const probation = t.probation !== undefined && round === t.probation.round ? t.probation : null;
    const limit = Math.log1p(this.cfg.maxWorse);
    const eligible = (i: number) => !cmp || probation !== null || !(cmp[i].worst > limit);
    const rankScore = (i: number) => (!Number.isFinite(raw[i]) ? Number.POSITIVE_INFINITY : eligible(i) ? sign * raw[i] : INELIGIBLE + cmp![i].worst);
    const keyed = this.live.map((c, i) => ({ c, s: rankScore(i), upper: cmp ? cmp[i].upper : 0, ok: eligible(i) }));
    this.live.forEach((c, i) => t.candidates[c.index].scores.push(Number.isFinite(raw[i]) ? raw[i] : null));
    // Best first; a later (less simple) candidate must beat an earlier one by the tolerance.
    const better = (a: { c: Live; s: number }, b: { c: Live; s: number }) => {
      const margin = this.cfg.tolerance * Math.max(Math.abs(a.s), Math.abs(b.s));
      if (Math.abs(a.s - b.s) <= margin || a.s === b.s) return a.c.index - b.c.index;
      return a.s - b.s;
    };
    const ranked = [...keyed].sort(better);
    const challengers = ranked.filter((k) => k.c.index !== 0 && !out.has(k.c.index));
    const last = challengers.length <= 2 || round + 1 >= this.cfg.rounds;
    const record = { step, scores: Object.fromEntries(this.live.map((c, i) => [t.candidates[c.index].label, t.candidates[c.index].scores[round]])), kept: [] as string[] };
    t.rounds.push(record);
    this.stepsInRound = 0;
    for (const [index, why] of out) t.candidates[index].disqualified = `round ${round + 1}: ${why}`;
    const eq = keyed[0];
    if (last) {
      // With the user's score, the best candidate wins (equal weights included). By default the
      // best eligible challenger wins only when its score is below 0 beyond the window's noise and
      // was below 0 in the round before too (when there was one): a candidate that beat equal
      // weights only in the last window is as likely noise as a lead.
      const before = (k: { c: Live }) => {
        const prev = t.candidates[k.c.index].scores[round - 1];
        return round === 0 || (typeof prev === 'number' && prev < 0);
      };
      const win = user ? ranked.find((k) => !out.has(k.c.index))! : (challengers.find((k) => k.ok && k.upper < 0 && k.s < 0 && before(k)) ?? eq);
      // By default a challenger that wins the selection serves its probation first (AutoOptions.probation).
      if (!user && win.c.index !== 0 && !t.probation) {
        const steps = this.probationSteps(step, roundLength(t, round));
        if (steps > 0) {
          this.startProbation(win.c, round, steps, record);
          return;
        }
      }
      record.kept = [t.candidates[win.c.index].label];
      t.winner = t.candidates[win.c.index].label;
      const what = `${user ? 'your score' : 'default score'}, ${this.cfg.mode === 'min' || !user ? 'lower' : 'higher'} is better`;
      if (win.c.index !== 0) {
        t.reason = `score ${fmtScore(win.s * sign)} vs equal weights ${fmtScore(eq.s * sign)} (${what})`;
        if (probation) {
          probation.outcome = 'kept';
          t.reason += `, at the end of its probation beside equal weights (steps ${step - probation.steps}–${step}); it led the selection with ${fmtScore(t.candidates[win.c.index].scores[round - 1] ?? Number.NaN)}`;
        }
      } else if (probation) this.fellBack(probation, step, keyed, cmp!, out);
      else if (user) t.reason = `no candidate scored better than equal weights (${fmtScore(eq.s * sign)})`;
      else {
        const best = challengers[0];
        const bi = best ? this.live.indexOf(best.c) : -1;
        t.reason = !best
          ? 'kept equal weights: every challenger failed or was disqualified'
          : best.ok && best.upper < 0 && best.s < 0 && !before(best)
            ? `kept equal weights: the best, ${t.candidates[best.c.index].label}, beat equal weights' held-out losses beyond the noise in the last round only (score ${fmtScore(cmp![bi].score)}, + 2 standard errors ${fmtScore(cmp![bi].upper)}; the round before: ${fmtScore(t.candidates[best.c.index].scores[round - 1] ?? Number.NaN)}); a winner must be below equal weights' 0 in the last two rounds`
          : best.ok
            ? `kept equal weights: no candidate's held-out losses beat equal weights' beyond the noise (the best, ${t.candidates[best.c.index].label}: score ${fmtScore(cmp![bi].score)}, + 2 standard errors ${fmtScore(cmp![bi].upper)}, lower is better, equal weights 0)`
            : `kept equal weights: every candidate let a term's held-out loss rise more than ${fmtPct(limit)} against equal weights' (the best, ${t.candidates[best.c.index].label}: term "${this.live[0].trainer.terms?.[cmp![bi].worstTerm] ?? cmp![bi].worstTerm}" ${fmtPct(cmp![bi].worst)})`;
        (this.host.warn ?? ((m: string) => console.warn(m)))(
          `loss-balancer: auto kept equal weights at step ${step}: without your metric it switches only to a candidate whose held-out losses beat equal weights' (on average over the terms, beyond the noise, in its last two rounds, no term more than ${fmtPct(limit)} worse), and none did; ` +
            'pass score: () => number (BalancedTrainer) or monitor: \'val_…\' (fitBalanced) to let it judge by your metric (docs/guide-auto.md)',
        );
      }
      for (const [index] of out) t.candidates[index].droppedAfter = round;
      this.finish(win.c);
      return;
    }
    this.nextRound(round, record, new Set([0, ...challengers.slice(0, Math.ceil(challengers.length / this.cfg.eta)).map((k) => k.c.index)]));
  }

  /**
   * After round `round`: the candidates whose index is not in `keep` are dropped, `record.kept` names
   * the others, their windows start afresh, and the plan is revised.
   */
  private nextRound(round: number, record: TournamentRound, keep: ReadonlySet<number>): void {
    const t = this.tournament!;
    for (const c of [...this.live]) {
      if (!keep.has(c.index)) {
        t.candidates[c.index].droppedAfter = round;
        this.drop(c);
      }
    }
    record.kept = this.live.map((c) => t.candidates[c.index].label);
    for (const c of this.live) {
      c.recent = [];
      c.trace = [];
    }
    this.plan();
  }

  /**
   * Steps of the probation of a challenger that wins the selection when the selection's last round
   * ends at trainer step `step` and lasted `last` steps (see AutoOptions.probation): until the run
   * reaches probation × totalSteps but at most PROBATION_SPAN (4) times the selection's length (that
   * alone without totalSteps); at least `last`, at most up to the run's end. 0: no probation (off,
   * with the user's score, or no room left in the run).
   */
  private probationSteps(step: number, last: number): number {
    const t = this.tournament!;
    if (!(this.cfg.probation > 0) || t.score !== 'default') return 0;
    // its cost, one plain step per step, stays proportional to the selection's
    const span = PROBATION_SPAN * (step - t.startStep);
    let n = t.totalSteps !== undefined ? Math.min(Math.round(this.cfg.probation * t.totalSteps) - step, span) : span;
    n = Math.max(n, last);
    if (t.totalSteps !== undefined) n = Math.min(n, t.totalSteps - step);
    return n >= last ? n : 0;
  }

  /** The challenger `win` won the selection's last round `round`: it and equal weights go on for `steps` more. */
  private startProbation(win: Live, round: number, steps: number, record: TournamentRound): void {
    const t = this.tournament!;
    t.probation = { candidate: t.candidates[win.index].label, round: round + 1, steps };
    this.nextRound(round, record, new Set([0, win.index]));
  }

  /**
   * The challenger on probation did not win its probation: equal weights win, the reason says why
   * (a term worse than under equal weights, a score that no longer beats theirs, a harm flag, a
   * failed step) and one warning line tells the user.
   */
  private fellBack(probation: NonNullable<Tournament['probation']>, step: number, keyed: { c: Live; ok: boolean }[], cmp: ReturnType<typeof compareWithEqual>[], out: Map<number, string>): void {
    const t = this.tournament!;
    probation.outcome = 'fell back';
    const index = t.candidates.findIndex((c) => c.label === probation.candidate);
    const at = keyed.findIndex((k) => k.c.index === index);
    const names = this.live[0].trainer.terms ?? [];
    let why: string;
    if (at < 0) why = `its step failed (${t.candidates[index].failed ?? 'dropped'})`;
    else if (out.has(index)) why = `its probation raised ${out.get(index)} (harm checks)`;
    else {
      const terms = cmp[at].perTerm.map((d, i) => `${names[i] ?? i} ${fmtPct(d)}`).join(', ');
      why = `its score ${fmtScore(cmp[at].score)} (+ 2 standard errors: ${fmtScore(cmp[at].upper)}) no longer beats equal weights' 0 beyond the noise (its losses against equal weights', geometric means over steps ${step - this.window(probation.round)}–${step}: ${terms})`;
    }
    const from = step - probation.steps;
    t.reason = `kept equal weights: ${probation.candidate} won the selection at step ${from}, but not its probation beside equal weights (steps ${from}–${step}): ${why}`;
    (this.host.warn ?? ((m: string) => console.warn(m)))(
      `loss-balancer: auto kept equal weights at step ${step}: ${probation.candidate} won the selection at step ${from}, but over its probation beside equal weights ${why}; ` +
        "the run continues from equal weights' copy, as if trained with equal weights throughout. Pass score: () => number (BalancedTrainer) or monitor: 'val_…' (fitBalanced) to let auto judge by your metric (docs/guide-auto.md)",
    );
  }

  /** The winner: its values into the user's variables, its optimizer state into the user's optimizer. */
  private winner: BalancedTrainer | null = null;

  private finish(win: Live, adopt = true): void {
    const t = this.tournament!;
    this.swapIn(win);
    if (adopt) adoptOptimizer(this.host.optimizer, win.optimizer);
    else disposeOptimizer(win.optimizer);
    win.values.forEach((v) => v.dispose());
    for (const c of this.live) if (c !== win) this.drop(c);
    this.live = [];
    this.winner = win.trainer;
    t.phase = 'done';
    t.cost.plannedCandidateSteps = t.cost.candidateSteps;
    t.cost.plannedTrainerSteps = t.cost.trainerSteps;
  }

  /**
   * End a running selection now, with equal weights as the winner (for a run that ends before the
   * selection would): the variables keep equal weights' values, the user's optimizer takes equal
   * weights' slots (unless `adopt` is false: the run is over, e.g. at `close()`, and the user's
   * optimizer may be disposed already), every other copy is released. Nothing happens when no
   * selection is running.
   */
  conclude(reason: string, adopt = true): void {
    const t = this.tournament;
    if (!t || this.done || !this.live.length) return;
    const eq = this.live[0];
    t.winner = t.candidates[eq.index].label;
    t.reason = reason;
    t.rounds.push({ step: t.startStep + t.cost.trainerSteps, scores: {}, kept: [t.winner] });
    this.finish(eq, adopt);
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
      options: optionsOf(this.cfg),
      stepsInRound: this.stepsInRound,
      start: this.startLosses ? this.startLosses.map(saveLoss) : null,
      live: this.live.map((c) => ({
        index: c.index,
        trainer: c.trainer.state(),
        optimizer: saveOptimizerState(c.optimizer),
        values: c.values.map(toBits),
        recent: c.recent.map((r) => r.map(saveLoss)),
        trace: c.trace.map((r) => ({ ...r })),
      })),
    };
  }

  /**
   * Check a saved selection state for this selector, the trainer's variables `vars` and its `terms`,
   * and decode it, without changing anything. Throws a {@link StateError} naming the field
   * (`auto.<path>`) otherwise: the tournament's structure, the options it was run with (a running
   * selection loads only into a trainer built with the same `auto` options), every live candidate's
   * trainer state, optimizer state (by an allow-list of keys) and variable values (dtype and shape
   * of each variable).
   */
  prepare(saved: AutoState, vars: readonly tf.Variable[], terms: readonly string[] | null): PreparedAuto {
    if (!saved || typeof saved !== 'object' || Array.isArray(saved)) throw new StateError(OWNER, 'auto', saved, 'must be an auto selection state (an object)');
    checkWithSchema(autoStateSchema, saved, OWNER, 'auto', terms ?? []);
    const t = saved.tournament;
    const labels = t.candidates.map((c) => c.label);
    const dup = labels.findIndex((l, i) => labels.indexOf(l) !== i);
    if (dup >= 0) throw new StateError(OWNER, `auto.tournament.candidates.${dup}.label`, labels[dup], 'must be unique among the candidates');
    t.rounds.forEach((r, i) => {
      const k = [...r.kept, ...Object.keys(r.scores)].find((l) => !labels.includes(l));
      if (k !== undefined) throw new StateError(OWNER, `auto.tournament.rounds.${i}`, k, 'names a label that is not one of the candidates');
    });
    if (t.gradNorms && terms && Object.keys(t.gradNorms).join('\0') !== terms.join('\0')) {
      throw new StateError(OWNER, 'auto.tournament.gradNorms', Object.keys(t.gradNorms), `must name the terms ${JSON.stringify(terms)}, in order`);
    }
    if (t.phase === 'done') {
      if (t.winner === undefined || !labels.includes(t.winner)) throw new StateError(OWNER, 'auto.tournament.winner', t.winner, 'must be the label of one of the candidates once the selection is done');
      const p: PreparedAuto = { tournament: t, live: [] };
      preparedStates.add(p);
      return p;
    }
    // A running selection continues under this trainer's options: they must be the ones it ran with.
    const mine = optionsOf(this.cfg);
    const differ = (k: string, was: unknown, now: unknown, field: string) => {
      const show = (v: unknown) => (v === undefined ? '(not set)' : JSON.stringify(v));
      throw new StateError(OWNER, field, was, `the selection was saved by a trainer with auto option "${k}" ${show(was)}; this trainer has ${show(now)}: build it with the same auto options to resume`);
    };
    for (const k of ['eta', 'score', 'mode'] as const) if (!Object.is(t[k], mine[k])) differ(k, t[k], mine[k], `auto.tournament.${k}`);
    // trialSteps is derived at the first step unless given; growth is absent in older states (1)
    if (this.cfg.trialSteps !== undefined && t.trialSteps !== this.cfg.trialSteps) differ('trialSteps', t.trialSteps, this.cfg.trialSteps, 'auto.tournament.trialSteps');
    if ((t.growth ?? 1) !== (this.cfg.growth ?? this.cfg.eta)) differ('growth', t.growth ?? 1, this.cfg.growth ?? this.cfg.eta, 'auto.tournament.growth');
    if (saved.options !== undefined) {
      for (const k of new Set([...Object.keys(saved.options), ...Object.keys(mine)])) {
        if (JSON.stringify(saved.options[k]) !== JSON.stringify(mine[k])) differ(k, saved.options[k], mine[k], `auto.options.${k}`);
      }
    }
    const live = saved.live ?? [];
    if (!live.length) throw new StateError(OWNER, 'auto.live', saved.live, 'must list the live candidates while the selection is running');
    if (t.probation) {
      const pi = labels.indexOf(t.probation.candidate);
      if (pi <= 0) throw new StateError(OWNER, 'auto.tournament.probation.candidate', t.probation.candidate, 'must be the label of a challenger (not equal weights)');
      if (t.probation.round !== t.rounds.length) throw new StateError(OWNER, 'auto.tournament.probation.round', t.probation.round, `must be the running round (${t.rounds.length}) while the selection runs`);
      if (t.probation.outcome !== undefined) throw new StateError(OWNER, 'auto.tournament.probation.outcome', t.probation.outcome, 'must be absent while the probation runs');
      if (live.length > 2 || (live.length === 2 && live[1].index !== pi)) throw new StateError(OWNER, 'auto.live', live.map((c) => c.index), `must be equal weights and the candidate on probation (${pi}) while the probation runs`);
    }
    if (t.candidates[0].spec !== 'fixed') throw new StateError(OWNER, 'auto.tournament.candidates.0.spec', t.candidates[0].spec, 'must be "fixed" (equal weights come first)');
    if ((saved.stepsInRound ?? 0) > roundLength(t, t.rounds.length)) throw new StateError(OWNER, 'auto.stepsInRound', saved.stepsInRound, `must be an integer from 0 to the round's length (${roundLength(t, t.rounds.length)})`);
    if (t.cost.trainerSteps > 0 && (!saved.start || (terms && saved.start.length !== terms.length))) {
      throw new StateError(OWNER, 'auto.start', saved.start, `must be the ${terms?.length ?? ''} raw losses at the start of the selection, one per term`);
    }
    const out: PreparedAuto['live'] = [];
    live.forEach((s, i) => {
      const at = `auto.live.${i}`;
      if (s.index >= t.candidates.length || (i > 0 && s.index <= live[i - 1].index) || (i === 0 && s.index !== 0)) {
        throw new StateError(OWNER, `${at}.index`, s.index, `must be a candidate index below ${t.candidates.length}, increasing, starting with 0 (equal weights stay live)`);
      }
      const cand = t.candidates[s.index];
      if (cand.droppedAfter !== undefined || cand.failed !== undefined) throw new StateError(OWNER, `${at}.index`, s.index, `candidate "${cand.label}" was dropped; it cannot be live`);
      const w = Math.min(roundLength(t, t.rounds.length), this.cfg.window ?? Math.ceil(roundLength(t, t.rounds.length) / 2));
      if (s.recent.length > w || (terms && s.recent.some((r) => r.length !== terms.length))) {
        throw new StateError(OWNER, `${at}.recent`, s.recent, `must be at most ${w} lists of per-term losses`);
      }
      let spec: BalancerSpec;
      let check: BalancedTrainer;
      try {
        spec = stripLabel(cand.spec as BalancerSpec);
        check = this.host.makeTrainer(spec, this.host.optimizer, [...vars]);
      } catch (e) {
        throw new StateError(OWNER, `auto.tournament.candidates.${s.index}.spec`, cand.spec, `is not a strategy this library can build (${(e as Error).message})`);
      }
      try {
        check.checkState(s.trainer);
      } catch (e) {
        if (e instanceof StateError) throw e.within(OWNER, `${at}.trainer.`);
        throw e;
      }
      if (s.values.length !== vars.length) {
        throw new StateError(OWNER, `${at}.values`, `${s.values.length} tensors`, `must hold one tensor per trained variable (${vars.length}); the model changed since the state was saved`);
      }
      const values = s.values.map((b, k) => decodeBits(b, `${at}.values.${k}`, vars[k], `variable "${vars[k].name}"`));
      const optimizer = decodeOptimizerState(s.optimizer, this.host.optimizer, vars, `${at}.optimizer`);
      out.push({ index: s.index, spec, trainer: s.trainer, optimizer, values, recent: s.recent.map((r) => r.map(readLoss)), trace: (s.trace ?? []) as StepRecord[] });
    });
    const p: PreparedAuto = { tournament: t, stepsInRound: saved.stepsInRound ?? 0, start: saved.start ? saved.start.map(readLoss) : null, live: out };
    preparedStates.add(p);
    return p;
  }

  /**
   * Restore {@link state}; `vars` are the trainer's variables (whose values the caller restores).
   * All or nothing: everything is checked ({@link prepare}) before the running selection is replaced.
   */
  load(saved: AutoState | PreparedAuto, vars: tf.Variable[], terms: readonly string[] | null = null): void {
    const p = isPrepared(saved) ? saved : this.prepare(saved, vars, terms);
    this.dispose();
    this.released = false;
    this.tournament = JSON.parse(JSON.stringify(p.tournament)) as Tournament;
    this.specs = this.tournament.candidates.map((c) => c.spec as BalancerSpec);
    this.vars = [...vars];
    if (this.tournament.phase === 'done') return;
    this.stepsInRound = p.stepsInRound ?? 0;
    this.startLosses = p.start ? [...p.start] : null;
    this.live = p.live.map((s) => {
      const optimizer = cloneOptimizer(this.host.optimizer);
      applyOptimizerState(optimizer, s.optimizer);
      const trainer = this.host.makeTrainer(s.spec, optimizer, this.vars);
      trainer.load(s.trainer);
      return { index: s.index, trainer, optimizer, values: s.values.map((d) => tf.keep(tensorOf(d))), recent: s.recent.map((r) => [...r]), trace: s.trace.map((r) => ({ ...r })) };
    });
  }

  /** Dispose every copy held (variables and optimizers of live candidates). */
  dispose(): void {
    for (const c of [...this.live]) this.drop(c);
    this.live = [];
    if (this.tournament && !this.done) this.released = true;
  }

  /**
   * Back to before the first step (for a trainer state saved before the selection began): the
   * copies released, no tournament; the next step begins a new selection.
   */
  reset(): void {
    this.dispose();
    this.tournament = null;
    this.released = false;
    this.stepsInRound = 0;
    this.startLosses = null;
    this.specs = [];
    this.winner = null;
  }

  /** Whether an unfinished selection's copies were released ({@link dispose}): it cannot step on. */
  private released = false;

  /** Throw when the running selection's copies were released (a step after `close()`). */
  checkOpen(): void {
    if (this.released) {
      throw new BalancerError(
        "auto: the strategy selection's copies were released (trainer.close(), or a fitBalanced that failed) before it ended, so it cannot step on; build a new trainer, or load a checkpoint",
      );
    }
  }
}

/**
 * The probation lasts at most this many times the selection's length (AutoOptions.probation): on
 * the trial problem that motivated it the harm showed 2.5–5 selection lengths after the selection
 * (steps 300–600 after a 120-step selection); on bench:auto-cost's 5,000-step run this caps the
 * probation at 540 steps instead of 1,865.
 */
const PROBATION_SPAN = 4;

/** Rank offset of a candidate the default score finds ineligible (after every eligible one). */
const INELIGIBLE = 1e6;

/** The largest gradient-magnitude ratio the fixed-weight grid is placed around. */
const MAX_RATIO = 1e9;
/** The largest grid weight (the `fixed` strategy allows up to 1e12). */
const MAX_GRID_WEIGHT = 1e12;

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

/**
 * Round `r`'s length (0-based): `trialSteps × growth^r`, rounded, at least 1 (tournaments saved
 * before `growth` existed have rounds of equal length).
 */
export function roundLength(t: Pick<Tournament, 'trialSteps' | 'growth' | 'probation'>, r: number): number {
  if (t.probation && r >= t.probation.round) return t.probation.steps;
  return Math.max(1, Math.round(t.trialSteps * (t.growth ?? 1) ** r));
}

/**
 * The first round's length when `trialSteps` is not given: with `totalSteps` known, the largest
 * length whose planned extra candidate steps (beyond one per trainer step) stay within
 * `budget × totalSteps` and whose selection stays within half the run, but at least MIN_TRIAL (8)
 * steps when half the run holds the selection at that length (at least 1); else 10.
 */
/** The shortest first round sized from totalSteps, when the run is long enough for it. */
const MIN_TRIAL = 8;

export function trialStepsFor(candidates: number, cfg: Pick<AutoConfig, 'totalSteps' | 'budget' | 'eta' | 'rounds'>, growth: number): number {
  if (cfg.totalSteps === undefined) return 10;
  let n = candidates;
  let extra = 0;
  let span = 0;
  for (let r = 0; ; r++) {
    extra += (n - 1) * growth ** r;
    span += growth ** r;
    if (n - 1 <= 2 || r + 1 >= cfg.rounds) break;
    n = Math.ceil((n - 1) / cfg.eta) + 1;
  }
  const byCost = extra > 0 ? (cfg.budget * cfg.totalSteps) / extra : Infinity;
  const bySpan = cfg.totalSteps / 2 / span;
  // A short run still gets trials of MIN_TRIAL steps when half the run holds them.
  return Math.max(1, Math.floor(Math.min(Math.max(byCost, MIN_TRIAL), bySpan)));
}

/** A term's improvement counts up to this (ln 10: a loss 10× below equal weights'). */
const CREDIT_CAP = Math.log(10);

/**
 * The default score of a candidate against equal weights, from their raw losses on the same
 * batches (rows: steps; columns: terms). Per term i and step k, d_i(k) = log(L_i / L_i^equal) (the
 * relative difference where a loss is ≤ 0); per term its mean d_i over the steps.
 * - `score`: the mean over terms of max(d_i, −ln 10): the geometric mean of the loss ratios, each
 *   term's credit capped at a loss 10× below equal weights' (crushing one term cannot win).
 * - `worst`: the largest d_i − 2·se_i (se_i: the standard error of d_i(k) over the steps): above 0,
 *   some term is worse than under equal weights beyond the window's noise.
 * - `upper`: `score` plus twice the standard error of its per-step values (below 0: better than
 *   equal weights beyond the window's noise).
 */
export function compareWithEqual(mine: readonly number[][], equal: readonly number[][]): { score: number; worst: number; worstTerm: number; upper: number; perTerm: number[] } {
  const n = Math.min(mine.length, equal.length);
  if (n === 0) return { score: Number.NaN, worst: Number.NaN, worstTerm: -1, upper: Number.NaN, perTerm: [] };
  const a = mine.slice(mine.length - n);
  const b = equal.slice(equal.length - n);
  const T = b[0].length;
  const d: number[][] = [];
  for (let i = 0; i < T; i++) {
    const positive = a.every((r) => r[i] > 0) && b.every((r) => r[i] > 0);
    d.push(a.map((r, k) => (positive ? Math.log(r[i] / b[k][i]) : (r[i] - b[k][i]) / (Math.abs(b[k][i]) + 1e-12))));
  }
  const mean = (xs: number[]) => xs.reduce((x, y) => x + y, 0) / xs.length;
  const se = (xs: number[], m: number) => (xs.length > 1 ? Math.sqrt(xs.reduce((x, y) => x + (y - m) ** 2, 0) / (xs.length - 1) / xs.length) : 0);
  const perTerm = d.map(mean);
  // the worst term once its noise is allowed for: the largest d_i − 2·se_i
  const lows = perTerm.map((m, i) => m - 2 * se(d[i], m));
  const worst = lows.reduce((w, v) => Math.max(w, v), -Infinity);
  const worstTerm = lows.indexOf(worst);
  // a term's gain counts up to ln 10; a term's loss counts T times (the mean over terms then
  // charges it in full): a candidate must gain more on the average term than its worse terms lose
  const capped = perTerm.map((x) => (x > 0 ? T * x : Math.max(x, -CREDIT_CAP)));
  const score = mean(capped);
  // per-step score: each term's step value mapped as its mean (× T when worse, shifted when capped)
  const steps = Array.from({ length: n }, (_, k) => mean(d.map((di, i) => (perTerm[i] > 0 ? T * di[k] : di[k] + (capped[i] - perTerm[i])))));
  return { score, worst, worstTerm, upper: score + 2 * se(steps, score), perTerm };
}

function fmtPct(logRatio: number): string {
  if (!Number.isFinite(logRatio)) return String(logRatio);
  const p = (Math.exp(logRatio) - 1) * 100;
  return `${p >= 0 ? '+' : ''}${Number(p.toPrecision(2))} %`;
}
