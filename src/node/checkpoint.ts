/**
 * Checkpoints: one versioned JSON file holding a trainer's (or a bare balancer's) state and, when
 * asked, the optimizer's slots and the model's variables, so that a run resumed in a fresh process
 * continues bit-exactly where it stopped.
 *
 * What must be saved for a bit-exact resume:
 *
 * - the balancer state (`trainer.state()`): every strategy's learned parameters, moving averages,
 *   reference losses, step counters and RNG state, plus the trainer's step and epoch counters;
 * - the model's variables, exactly (float32 values are stored as raw little-endian bytes, base64);
 * - the optimizer's state: Adam's moments *and* its running `β₁ᵗ`, `β₂ᵗ` products. tfjs's
 *   `optimizer.setWeights()` restores the moments but recomputes `β₁ᵗ` as `pow(β₁, t+1)`, which can
 *   differ in the last bit from the product accumulated step by step; {@link saveOptimizer} therefore
 *   also stores every scalar `tf.Variable` the optimizer holds (Adam: `accBeta1`, `accBeta2`) and
 *   {@link loadOptimizer} writes them back after `setWeights`.
 *
 * The file is written atomically (a temporary file in the same folder, `fsync`, then `rename`), so a
 * process killed while saving leaves the previous checkpoint intact, never a half-written one.
 *
 * @example
 * ```ts
 * await saveState('ckpt.json', trainer, { optimizer, variables: model.trainableWeights.map((w) => w.read() as tf.Variable) });
 * // ... later, in a new process, after building the same model, optimizer and trainer:
 * await loadState('ckpt.json', trainer, { optimizer, variables });
 * ```
 * With a `tf.LayersModel` you may instead save the model with `model.save(...)` and pass only the
 * optimizer here; the balancer state never depends on how the model is stored.
 * @module
 */
import { createHash } from 'node:crypto';
import { MAX_CHECKPOINT_DEPTH, shortPath, textDepthExceeded } from '../core/json-depth.js';
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { Balancer, type BalancerState } from '../core/balancer.js';
import { BalancerError } from '../core/errors.js';
import { StateError } from '../core/state-check.js';
import { BalancedTrainer, type TrainerState } from '../train/trainer.js';
import type { PreparedAuto } from '../train/auto.js';

/** `format` of a checkpoint file. */
export const CHECKPOINT_FORMAT = 'loss-balancer/checkpoint';
/**
 * Version of the checkpoint file layout; bumped on any incompatible change. Version 2 (issue 26)
 * checksums `optimizer.config`; files of version 1 still load (their config is checked, not
 * checksummed).
 */
export const CHECKPOINT_VERSION = 2;
/** The versions {@link loadState} reads. */
const READABLE_VERSIONS = [1, 2];

/** A tensor stored exactly: dtype, shape and the raw little-endian bytes, base64-encoded. */
export interface SavedTensor {
  /** The variable's name (or the key it was saved under). */
  name: string;
  /** tfjs dtype. */
  dtype: tf.DataType;
  /** Tensor shape. */
  shape: number[];
  /** base64 of the little-endian bytes (float32 / int32: 4 bytes per element; bool: 1). */
  data: string;
}

/** An optimizer's state as {@link saveOptimizer} stores it. */
export interface SavedOptimizer {
  /** `optimizer.getClassName()`, checked on load. */
  className: string;
  /**
   * `optimizer.getConfig()` (learning rate, betas, ...): restored on load (see
   * `CheckpointExtras.hyperparameters`). Checked before anything is applied: only the keys of the
   * given optimizer's `getConfig()`, each a finite number or a boolean as there.
   */
  config: unknown;
  /** `await optimizer.getWeights()`: the iteration count, then the slot variables. */
  weights: SavedTensor[];
  /** Scalar variables held by the optimizer outside its weights (Adam's `accBeta1`, `accBeta2`). */
  extras: SavedTensor[];
}

/** The checkpoint file. */
export interface Checkpoint {
  /** Always {@link CHECKPOINT_FORMAT}. */
  format: typeof CHECKPOINT_FORMAT;
  /** Version of the checkpoint format. */
  version: number;
  /** ISO time of saving. */
  savedAt: string;
  /** What `state` holds. */
  kind: 'trainer' | 'balancer';
  /** The trainer's or balancer's state. */
  state: TrainerState | BalancerState;
  /** The optimizer's slots, when it was given. */
  optimizer?: SavedOptimizer;
  /** Model variables, in the order (array) or under the keys (record) they were given. */
  variables?: SavedTensor[];
  /**
   * SHA-256 (first 16 hex digits) of each part of the file, by field (`state.step`,
   * `state.balancer.weights`, `optimizer.weights.0`, `variables.2`, ...): a value changed after
   * saving (a flipped digit that still parses) is an error naming the field. Absent in files saved
   * before checksums existed (then not checked).
   */
  checksums?: Record<string, string>;
}

/** Variables to save or restore: in a fixed order, or by name of your choosing. */
export type VariableSet = readonly tf.Variable[] | Readonly<Record<string, tf.Variable>>;

/** Optional parts of a checkpoint beside the balancer state. */
export interface CheckpointExtras {
  /** The optimizer that trains the model (for a bit-exact resume its slots must be saved). */
  optimizer?: tf.Optimizer;
  /** The model's variables. */
  variables?: VariableSet;
  /**
   * On load: the optimizer's hyperparameters (`getConfig()`: learning rate, betas, momentum, ...)
   * saved in the checkpoint are written back into the optimizer given (`'restore'`), or the given
   * ones are kept (`'keep'`, e.g. to resume with a new learning rate). Either way a warning names
   * each hyperparameter that differs from the saved one afterwards. @default 'restore'
   */
  hyperparameters?: 'restore' | 'keep';
  /** Where load warnings go. @default console.warn */
  warn?: (message: string) => void;
}

// ---------------------------------------------------------------------------------------------------
// Tensors

/** Store a tensor exactly. */
export function saveTensor(name: string, t: tf.Tensor): SavedTensor {
  const values = t.dataSync();
  let bytes: Uint8Array;
  if (values instanceof Float32Array || values instanceof Int32Array || values instanceof Uint8Array) {
    const copy = values.slice();
    bytes = new Uint8Array(copy.buffer, copy.byteOffset, copy.byteLength);
  } else {
    throw new BalancerError(`cannot save tensor "${name}" of dtype ${t.dtype} (only float32, int32 and bool)`);
  }
  if (!littleEndian()) throw new BalancerError('checkpoints are only written on little-endian machines');
  return { name, dtype: t.dtype, shape: [...t.shape], data: Buffer.from(bytes).toString('base64') };
}

/** A new tensor from {@link saveTensor}'s output (the caller disposes it). Errors name the field. */
export function loadTensor(saved: SavedTensor, owner = 'saved tensor', field = ''): tf.Tensor {
  const { values, shape, dtype } = decodeTensor(saved, owner, field);
  return tf.tensor(values, shape, dtype);
}

const BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1 };
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Decode a {@link SavedTensor} into typed values without creating a tensor, checking every field:
 * `name` a string, `dtype` float32/int32/bool, `shape` a list of integers >= 0, `data` strict base64
 * of exactly the right number of bytes (the values themselves are not judged: an optimizer slot may
 * legitimately hold Infinity; the file's checksums catch changed bytes). Throws a {@link StateError} naming
 * `owner` and `field.<key>`.
 */
export function decodeTensor(saved: SavedTensor, owner = 'saved tensor', field = ''): { name: string; values: Float32Array | Int32Array | Uint8Array; shape: number[]; dtype: tf.DataType } {
  const at = (k: string) => (field ? `${field}.${k}` : k);
  if (!saved || typeof saved !== 'object') throw new StateError(owner, field || '(tensor)', saved, 'must be a saved tensor { name, dtype, shape, data }');
  if (typeof saved.name !== 'string') throw new StateError(owner, at('name'), saved.name, 'must be a string');
  if (!(saved.dtype in BYTES)) throw new StateError(owner, at('dtype'), saved.dtype, 'must be "float32", "int32" or "bool"');
  if (!Array.isArray(saved.shape) || saved.shape.some((d) => !Number.isInteger(d) || d < 0) || saved.shape.length > 8) {
    throw new StateError(owner, at('shape'), saved.shape, 'must be a list of integers >= 0');
  }
  const n = saved.shape.reduce((a, b) => a * b, 1);
  if (typeof saved.data !== 'string' || saved.data.length % 4 !== 0 || !BASE64.test(saved.data)) {
    throw new StateError(owner, at('data'), saved.data, 'must be base64 text (A-Z, a-z, 0-9, +, /, padded with =)');
  }
  const buf = Buffer.from(saved.data, 'base64');
  if (buf.byteLength !== n * BYTES[saved.dtype]) {
    throw new StateError(owner, at('data'), saved.data, `must hold ${n * BYTES[saved.dtype]} bytes (${n} ${saved.dtype} values for shape [${saved.shape.join(', ')}]); it holds ${buf.byteLength}`);
  }
  const bytes = new Uint8Array(buf.byteLength);
  bytes.set(buf);
  const values = saved.dtype === 'float32' ? new Float32Array(bytes.buffer) : saved.dtype === 'int32' ? new Int32Array(bytes.buffer) : bytes;
  return { name: saved.name, values, shape: [...saved.shape], dtype: saved.dtype };
}

function littleEndian(): boolean {
  return new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
}

/** Store variables exactly, in order or by key. */
export function saveVariables(vars: VariableSet): SavedTensor[] {
  const entries: [string, tf.Variable][] = Array.isArray(vars)
    ? (vars as tf.Variable[]).map((v, i) => [String(i), v])
    : Object.entries(vars as Record<string, tf.Variable>);
  return entries.map(([k, v]) => saveTensor(k, v));
}

/**
 * Assign saved values to variables (same order, or same keys, as when saved). A missing variable or a
 * shape mismatch is an error naming it.
 */
export function loadVariables(saved: readonly SavedTensor[], vars: VariableSet): void {
  const entries: [string, tf.Variable][] = Array.isArray(vars)
    ? (vars as tf.Variable[]).map((v, i) => [String(i), v])
    : Object.entries(vars as Record<string, tf.Variable>);
  if (entries.length !== saved.length) {
    throw new BalancerError(`checkpoint holds ${saved.length} variables, ${entries.length} were given to restore`);
  }
  const decoded = decodeVariables(saved, vars, 'checkpoint', 'variables');
  // Everything decoded and checked: now assign.
  for (const [v, d] of decoded) {
    const t = tf.tensor(d.values, d.shape, d.dtype);
    v.assign(t);
    t.dispose();
  }
}

/** Decode and match every saved variable against `vars` before anything is assigned. */
function decodeVariables(saved: readonly SavedTensor[], vars: VariableSet, owner: string, field: string): [tf.Variable, ReturnType<typeof decodeTensor>][] {
  if (!Array.isArray(saved)) throw new StateError(owner, field, saved, 'must be a list of saved tensors');
  const entries: [string, tf.Variable][] = Array.isArray(vars)
    ? (vars as tf.Variable[]).map((v, i) => [String(i), v])
    : Object.entries(vars as Record<string, tf.Variable>);
  if (entries.length !== saved.length) {
    throw new StateError(owner, field, `${saved.length} saved tensors`, `the checkpoint holds ${saved.length} variables, ${entries.length} were given to restore; the counts must match`);
  }
  const decoded = saved.map((s, i) => decodeTensor(s, owner, `${field}.${i}`));
  const byName = new Map(decoded.map((d, i) => [d.name, i]));
  return entries.map(([k, v]) => {
    const i = byName.get(k);
    if (i === undefined) throw new StateError(owner, field, saved.map((x) => x.name), `holds no variable "${k}"`);
    const d = decoded[i];
    if (d.shape.join(',') !== v.shape.join(',') || d.dtype !== v.dtype) {
      throw new StateError(owner, `${field}.${i}`, `${d.dtype} [${d.shape.join(', ')}]`, `variable "${k}" (${v.name}): the checkpoint has ${d.dtype} [${d.shape.join(', ')}], the variable is ${v.dtype} [${v.shape.join(', ')}]`);
    }
    return [v, d];
  });
}

// ---------------------------------------------------------------------------------------------------
// Optimizers

/** Scalar variables an optimizer holds as own properties (Adam's running β products), by key. */
function scalarVariables(opt: tf.Optimizer): [string, tf.Variable][] {
  return Object.entries(opt as unknown as Record<string, unknown>).filter(
    (e): e is [string, tf.Variable] => e[1] instanceof tf.Variable && e[1].rank === 0,
  );
}

/**
 * The optimizer's complete state: `getWeights()` (iteration count and slot variables) plus the scalar
 * variables it keeps beside them (see the module note on Adam's `β₁ᵗ`). Works for every tfjs optimizer
 * that implements `getWeights` (sgd, momentum, adagrad, adadelta, rmsprop, adam; not adamax).
 */
export async function saveOptimizer(opt: tf.Optimizer): Promise<SavedOptimizer> {
  let weights: Awaited<ReturnType<tf.Optimizer['getWeights']>>;
  try {
    weights = await opt.getWeights();
  } catch (e) {
    throw new BalancerError(`cannot save optimizer ${opt.getClassName()}: ${(e as Error).message}`);
  }
  const saved = weights.map((w) => saveTensor(w.name, w.tensor));
  // getWeights() returns a fresh scalar for the iteration count; the slot variables are the optimizer's own.
  for (const w of weights) if (!(w.tensor instanceof tf.Variable)) w.tensor.dispose();
  return {
    className: opt.getClassName(),
    config: opt.getConfig(),
    weights: saved,
    extras: scalarVariables(opt).map(([k, v]) => saveTensor(k, v)),
  };
}

/**
 * Restore {@link saveOptimizer}'s output into an optimizer of the same class that has not been used
 * yet (its slots are created from the saved values).
 */
export async function loadOptimizer(
  saved: SavedOptimizer,
  opt: tf.Optimizer,
  options: Pick<CheckpointExtras, 'hyperparameters' | 'warn'> = {},
): Promise<void> {
  if (saved.className !== opt.getClassName()) {
    throw new BalancerError(`checkpoint holds a ${saved.className} optimizer state; the optimizer given is ${opt.getClassName()}`);
  }
  await applyOptimizer(decodeOptimizer(saved, opt, 'checkpoint', 'optimizer'), opt, options);
}

/** Slot variables per trained variable of the tfjs optimizers whose layout is known. */
const SLOTS: Record<string, number[]> = { SGD: [0], Momentum: [1], Adagrad: [1], Adadelta: [2], Adam: [2], RMSProp: [2, 3] };

type DecodedOptimizer = { config: unknown; weights: ReturnType<typeof decodeTensor>[]; extras: ReturnType<typeof decodeTensor>[] };

/** Check and decode a saved optimizer for `opt` without touching it. */
function decodeOptimizer(saved: SavedOptimizer, opt: tf.Optimizer, owner: string, field: string): DecodedOptimizer {
  if (!saved || typeof saved !== 'object') throw new StateError(owner, field, saved, 'must be a saved optimizer { className, weights, extras }');
  if (saved.className !== opt.getClassName()) {
    throw new StateError(owner, `${field}.className`, saved.className, `the checkpoint holds a ${saved.className} optimizer state; the optimizer given is ${opt.getClassName()}`);
  }
  if (!Array.isArray(saved.weights) || saved.weights.length === 0) throw new StateError(owner, `${field}.weights`, saved.weights, 'must be a list starting with the iteration count');
  const extras = saved.extras ?? [];
  if (!Array.isArray(extras)) throw new StateError(owner, `${field}.extras`, extras, 'must be a list of saved tensors');
  const weights = saved.weights.map((w, i) => decodeTensor(w, owner, `${field}.weights.${i}`));
  if (weights[0].shape.length !== 0) throw new StateError(owner, `${field}.weights.0.shape`, weights[0].shape, 'must be [] (the iteration count comes first)');
  const slots = SLOTS[saved.className];
  const n = weights.length - 1;
  if (slots && !slots.some((k) => (k === 0 ? n === 0 : n % k === 0))) {
    throw new StateError(owner, `${field}.weights`, `${n} slot variables`, `a ${saved.className} keeps ${slots.join(' or ')} per trained variable`);
  }
  checkConfig(saved.config, opt, owner, `${field}.config`);
  const decodedExtras = extras.map((e, i) => decodeTensor(e, owner, `${field}.extras.${i}`));
  decodedExtras.forEach((e, i) => {
    if (e.shape.length !== 0) throw new StateError(owner, `${field}.extras.${i}.shape`, e.shape, 'must be [] (a scalar)');
  });
  return { config: saved.config, weights, extras: decodedExtras };
}

/**
 * The saved `getConfig()` of an optimizer, checked against `opt`: a plain object (or absent) whose
 * keys are all keys of `opt.getConfig()` (an allow-list: nothing else is ever written), each value
 * of the type it has there (a finite number, a boolean).
 */
function checkConfig(config: unknown, opt: tf.Optimizer, owner: string, field: string): void {
  if (config === undefined) return;
  if (!config || typeof config !== 'object' || Array.isArray(config)) throw new StateError(owner, field, config, "must be the optimizer's getConfig() (an object)");
  const mine = opt.getConfig() as Record<string, unknown>;
  for (const [k, v] of Object.entries(config)) {
    if (!Object.hasOwn(mine, k)) {
      throw new StateError(owner, `${field}.${k}`, v, `is not a hyperparameter of ${opt.getClassName()} (its getConfig() holds ${Object.keys(mine).join(', ')})`);
    }
    const want = typeof mine[k];
    const ok = want === 'number' ? typeof v === 'number' && Number.isFinite(v) : want === 'boolean' ? typeof v === 'boolean' : Object.is(v, mine[k]);
    if (!ok) throw new StateError(owner, `${field}.${k}`, v, want === 'number' ? 'must be a finite number' : want === 'boolean' ? 'must be true or false' : `must be ${JSON.stringify(mine[k])}`);
  }
}

/** Setters tfjs optimizers have for a hyperparameter (they also refresh the optimizer's cached scalars). */
const SETTERS: Record<string, string> = { learningRate: 'setLearningRate', momentum: 'setMomentum' };

/** Write decoded optimizer state into `opt` (after every check passed). */
async function applyOptimizer(
  d: DecodedOptimizer,
  opt: tf.Optimizer,
  options: Pick<CheckpointExtras, 'hyperparameters' | 'warn'> = {},
): Promise<void> {
  // Hyperparameters first: setWeights reads some of them (RMSProp's `centered` decides the slot layout).
  restoreHyperparameters(d.config, opt, options);
  const tensors = d.weights.map((w) => ({ name: w.name, tensor: tf.tensor(w.values, w.shape, w.dtype) }));
  await opt.setWeights(tensors);
  // setWeights makes variables of the given tensors (sharing their data); our copies can go.
  tensors.forEach((t) => t.tensor.dispose());
  const own = new Map(scalarVariables(opt));
  for (const e of d.extras) {
    const v = own.get(e.name);
    if (!v) continue;
    const t = tf.tensor(e.values, e.shape, e.dtype);
    v.assign(t);
    t.dispose();
  }
}

/**
 * Write the saved `getConfig()` values back into `opt` (`setLearningRate` / `setMomentum` where the
 * optimizer has them, as they also refresh its cached scalars; else its own numeric or boolean field
 * of that name), unless `hyperparameters: 'keep'`; then warn naming every value that still differs.
 */
function restoreHyperparameters(config: unknown, opt: tf.Optimizer, options: Pick<CheckpointExtras, 'hyperparameters' | 'warn'>): void {
  if (!config || typeof config !== 'object') return;
  const saved = config as Record<string, unknown>;
  const current = () => opt.getConfig() as Record<string, unknown>;
  const o = opt as unknown as Record<string, unknown>;
  if (options.hyperparameters !== 'keep') {
    // Only keys of the optimizer's own getConfig() (checkConfig ran before anything was applied).
    for (const [k, v] of Object.entries(saved)) {
      if (!Object.hasOwn(current(), k) || Object.is(current()[k], v)) continue;
      const setter = Object.hasOwn(SETTERS, k) ? o[SETTERS[k]] : undefined;
      if (typeof setter === 'function' && typeof v === 'number') (setter as (x: number) => void).call(opt, v);
      else if (Object.hasOwn(o, k) && typeof o[k] === typeof v && (typeof v === 'number' || typeof v === 'boolean')) o[k] = v;
    }
    // tfjs's MomentumOptimizer caches the momentum as the scalar `m`, which setMomentum leaves stale.
    if (o.m instanceof tf.Tensor && typeof o.momentum === 'number' && o.m.dataSync()[0] !== Math.fround(o.momentum)) {
      o.m.dispose();
      o.m = tf.keep(tf.scalar(o.momentum));
    }
  }
  const now = current();
  const differ = Object.keys(saved).filter((k) => !Object.is(now[k], saved[k]));
  if (differ.length) {
    const what = differ.map((k) => `${k} ${JSON.stringify(now[k])} (checkpoint: ${JSON.stringify(saved[k])})`).join(', ');
    const why = options.hyperparameters === 'keep' ? 'kept as given (hyperparameters: "keep")' : 'could not be restored';
    (options.warn ?? console.warn)(`loadState: optimizer ${opt.getClassName()} hyperparameters differ from the checkpoint and ${why}: ${what}; the resume is not exact`);
  }
}

// ---------------------------------------------------------------------------------------------------
// Files

/**
 * Write `text` (one string, or its pieces in order) to `path` atomically: temporary file, fsync,
 * rename.
 */
export function writeFileAtomic(path: string, text: string | Iterable<string>): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  // A fresh file: a leftover (or a link planted at the name) is removed, never followed; 'wx' fails
  // rather than open anything that appeared since. rename() replaces a link at `path` itself.
  try {
    unlinkSync(tmp);
  } catch {
    /* none */
  }
  const fd = openSync(tmp, 'wx');
  try {
    if (typeof text === 'string') writeSync(fd, text);
    else for (const piece of text) writeSync(fd, piece);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, path);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      /* already gone */
    }
    throw e;
  }
}

/** The checkpoint object (what {@link saveState} writes). */
export async function checkpointOf(source: BalancedTrainer | Balancer, extras: CheckpointExtras = {}): Promise<Checkpoint> {
  if (!(source instanceof BalancedTrainer) && !(source instanceof Balancer)) {
    throw new BalancerError('saveState: the source must be a BalancedTrainer or a Balancer');
  }
  const ckpt: Checkpoint = {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    savedAt: new Date().toISOString(),
    kind: source instanceof BalancedTrainer ? 'trainer' : 'balancer',
    state: source.state(),
  };
  if (extras.optimizer) ckpt.optimizer = await saveOptimizer(extras.optimizer);
  if (extras.variables) ckpt.variables = saveVariables(extras.variables);
  ckpt.checksums = Object.fromEntries(checksummedParts(ckpt).map(([f, v]) => [f, digest(v)]));
  return ckpt;
}

/** The parts of a checkpoint that carry checksums, by field (informational fields excluded). */
function checksummedParts(c: Checkpoint): [string, unknown][] {
  const parts: [string, unknown][] = [];
  const st = c.state as unknown as Record<string, unknown> | null;
  if (st && typeof st === 'object') {
    for (const [k, v] of Object.entries(st)) {
      if (k === 'balancer' && v && typeof v === 'object') for (const [bk, bv] of Object.entries(v)) parts.push([`state.balancer.${bk}`, bv]);
      else parts.push([`state.${k}`, v]);
    }
  }
  if (c.optimizer && typeof c.optimizer === 'object') {
    parts.push(['optimizer.className', c.optimizer.className]);
    // version 1 did not cover the config (an "informational" field then)
    if (c.version !== 1) parts.push(['optimizer.config', c.optimizer.config]);
    if (Array.isArray(c.optimizer.weights)) c.optimizer.weights.forEach((w, i) => parts.push([`optimizer.weights.${i}`, w]));
    if (Array.isArray(c.optimizer.extras)) c.optimizer.extras.forEach((w, i) => parts.push([`optimizer.extras.${i}`, w]));
  }
  if (Array.isArray(c.variables)) c.variables.forEach((v, i) => parts.push([`variables.${i}`, v]));
  return parts;
}

function digest(v: unknown): string {
  const h = createHash('sha256');
  let any = false;
  for (const piece of jsonPieces(v)) {
    h.update(piece);
    any = true;
  }
  if (!any) h.update('undefined');
  return h.digest('hex').slice(0, 16);
}

/**
 * `JSON.stringify(v)` (no replacer, no indent) in pieces of about 1 MiB, in order, so that a state
 * holding hundreds of MiB (an `auto` selection's copies of a large model) is written and hashed
 * without one string of that size (V8 caps a string at 2^29 - 24 characters). The pieces join to
 * exactly the text `JSON.stringify` gives for JSON data (plain objects and arrays, strings, numbers,
 * booleans, null), so checksums of files written before stay valid. Yields nothing for undefined.
 */
export function* jsonPieces(v: unknown): Generator<string> {
  let buf = '';
  const LIMIT = 1 << 20;
  function* walk(x: unknown, inArray: boolean): Generator<string> {
    if (x !== null && typeof x === 'object' && typeof (x as { toJSON?: unknown }).toJSON === 'function') x = (x as { toJSON: () => unknown }).toJSON();
    if (x === undefined || typeof x === 'function' || typeof x === 'symbol') {
      if (inArray) buf += 'null';
      return;
    }
    if (x === null || typeof x !== 'object') {
      const text = JSON.stringify(x);
      if (text.length >= LIMIT) {
        if (buf) yield buf;
        buf = '';
        yield text;
      } else buf += text;
    } else if (Array.isArray(x)) {
      buf += '[';
      for (let i = 0; i < x.length; i++) {
        if (i) buf += ',';
        yield* walk(x[i], true);
      }
      buf += ']';
    } else {
      buf += '{';
      let first = true;
      for (const [k, y] of Object.entries(x)) {
        if (y === undefined || typeof y === 'function' || typeof y === 'symbol') continue;
        buf += `${first ? '' : ','}${JSON.stringify(k)}:`;
        first = false;
        yield* walk(y, false);
      }
      buf += '}';
    }
    if (buf.length >= LIMIT) {
      yield buf;
      buf = '';
    }
  }
  yield* walk(v, false);
  if (buf) yield buf;
}

/**
 * A part the caller asked for is absent: a damaged file when the file's checksums list the field
 * (it was saved, then removed or renamed), else a file saved without it (`notSaved` says how to save it).
 */
function missingPart(ckpt: { checksums?: unknown }, path: string, field: string, notSaved: string): BalancerError {
  const sums = ckpt.checksums;
  if (sums && typeof sums === 'object' && !Array.isArray(sums) && Object.keys(sums).some((k) => k === field || k.startsWith(`${field}.`))) {
    return new StateError(path, field, undefined, "the file's checksums list it, so it was saved: the file was changed after it was saved (a field removed or renamed)");
  }
  return new BalancerError(`${path} ${notSaved}`);
}

/** Verify the checksums a file carries (none: nothing to verify). Errors name the field. */
function verifyChecksums(c: Checkpoint, owner: string): void {
  const sums = c.checksums;
  if (sums === undefined) return;
  if (!sums || typeof sums !== 'object' || Array.isArray(sums)) throw new StateError(owner, 'checksums', sums, 'must be an object { field: sha256 prefix }');
  const parts = new Map(checksummedParts(c));
  for (const [field, sum] of Object.entries(sums)) {
    if (!parts.has(field)) throw new StateError(owner, `checksums.${field}`, sum, `names a field the file does not hold (${field})`);
  }
  for (const [field, value] of parts) {
    if (!(field in sums)) throw new StateError(owner, `checksums.${field}`, undefined, `is required (the file has a checksum for every part)`);
    if (sums[field] !== digest(value)) throw new StateError(owner, field, value, 'does not match its checksum: the file was changed after it was saved');
  }
}

/**
 * Save a trainer's or balancer's state (and optionally the optimizer and model variables) to one JSON
 * file, atomically.
 */
export async function saveState(path: string, source: BalancedTrainer | Balancer, extras: CheckpointExtras = {}): Promise<Checkpoint> {
  const ckpt = await checkpointOf(source, extras);
  writeFileAtomic(path, (function* () {
    yield* jsonPieces(ckpt);
    yield '\n';
  })());
  return ckpt;
}

/** Check a parsed checkpoint's format and version; `where` names it in errors. */
export function checkCheckpoint(raw: unknown, where = '(checkpoint)'): Checkpoint {
  const c = raw as Partial<Checkpoint> | null;
  if (!c || typeof c !== 'object' || c.format !== CHECKPOINT_FORMAT) {
    throw new StateError(where, 'format', c && typeof c === 'object' ? c.format : c, `${where} is not a loss-balancer checkpoint (format must be "${CHECKPOINT_FORMAT}")`);
  }
  if (!READABLE_VERSIONS.includes(c.version as number)) {
    throw new StateError(where, 'version', c.version, `${where} is a checkpoint of version ${JSON.stringify(c.version)}; this version of loss-balancer reads version ${CHECKPOINT_VERSION} (and the older ${READABLE_VERSIONS.filter((v) => v !== CHECKPOINT_VERSION).join(', ')})`);
  }
  if (c.kind !== 'trainer' && c.kind !== 'balancer') {
    throw new StateError(where, 'kind', c.kind, 'must be "trainer" or "balancer"');
  }
  if (!c.state || typeof c.state !== 'object') throw new StateError(where, 'state', c.state, 'must be the saved trainer or balancer state (an object)');
  return c as Checkpoint;
}

/** Read and check a checkpoint file (format and version) without restoring anything. */
export function readCheckpoint(path: string): Checkpoint {
  let text: string;
  try {
    // A file above BIG_CHECKPOINT (an auto selection's copies of a large model) is parsed from its
    // bytes: V8 cannot hold it as one string.
    if (statSync(path).size > BIG_CHECKPOINT) {
      let raw: unknown;
      try {
        raw = parseJsonBytes(readFileSync(path), MAX_CHECKPOINT_DEPTH);
      } catch (e) {
        if (!(e instanceof JsonBytesError)) throw e;
        throw new BalancerError(`cannot read checkpoint ${path}: field "${e.field}": ${e.message}`);
      }
      return checkCheckpoint(raw, path);
    }
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (e instanceof BalancerError) throw e;
    throw new BalancerError(`cannot read checkpoint ${path}: ${(e as Error).message}`);
  }
  // Iteratively, before anything recursive (the error position finder below, the checks after).
  const deep = textDepthExceeded(text, MAX_CHECKPOINT_DEPTH);
  if (deep) throw new BalancerError(`cannot read checkpoint ${path}: field "${shortPath(deep.path)}": nested more than ${MAX_CHECKPOINT_DEPTH} levels deep at line ${deep.line}, column ${deep.column} (not a checkpoint loss-balancer wrote)`);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    const at = jsonErrorAt(text);
    throw new BalancerError(
      `cannot read checkpoint ${path}: field "${at.field}": not valid JSON at line ${at.line}, column ${at.column} (${(e as Error).message.slice(0, 120)})`,
    );
  }
  return checkCheckpoint(raw, path);
}

/** Checkpoint files larger than this (bytes) are parsed from their bytes by {@link parseJsonBytes}. */
export const BIG_CHECKPOINT = 256 * 2 ** 20;

/** {@link parseJsonBytes} found no valid JSON: `field` is the dotted path being read, `byte` where. */
export class JsonBytesError extends SyntaxError {
  constructor(
    message: string,
    readonly field: string,
    readonly byte: number,
  ) {
    super(message);
  }
}

/**
 * `JSON.parse` of UTF-8 bytes without first making them one string (V8 caps a string at 2^29 - 24
 * characters, a checkpoint of an `auto` selection of a large model can be larger): the same value
 * for valid JSON; each string is decoded on its own. Containers nested deeper than `maxDepth` are
 * an error. Throws a {@link JsonBytesError} naming the field and byte offset.
 */
export function parseJsonBytes(buf: Uint8Array, maxDepth = Infinity): unknown {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = b.length;
  const path: string[] = [];
  let i = 0;
  const fail = (what: string): never => {
    throw new JsonBytesError(`not valid JSON at byte ${i}: ${what}`, path.join('.') || '(root)', i);
  };
  const ws = () => {
    while (i < n) {
      const c = b[i];
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
  };
  const str = (): string => {
    if (b[i] !== 0x22) fail('a string was expected');
    const start = i + 1;
    let end = b.indexOf(0x22, start);
    let escaped = false;
    for (;;) {
      if (end < 0) fail('unterminated string');
      let k = end - 1;
      while (k >= start && b[k] === 0x5c) k--;
      if ((end - 1 - k) % 2 === 0) break;
      escaped = true;
      end = b.indexOf(0x22, end + 1);
    }
    const raw = b.toString('utf8', start, end);
    i = end + 1;
    // control characters are invalid in JSON strings: looked for by bytes (a regular expression over
    // a string of many MiB is slow)
    let control = false;
    for (let k = start; k < end && !control; k++) control = b[k] < 0x20;
    if (escaped || control || b.subarray(start, end).indexOf(0x5c) >= 0) {
      try {
        return JSON.parse(`"${raw}"`) as string;
      } catch {
        i = start;
        return fail('a bad escape or control character in a string');
      }
    }
    return raw;
  };
  const NUMBER = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/;
  const value = (depth: number): unknown => {
    ws();
    const c = b[i];
    if (c === 0x7b || c === 0x5b) {
      if (depth >= maxDepth) fail(`nested more than ${maxDepth} levels deep`);
      i++;
      ws();
      if (c === 0x7b) {
        const o: Record<string, unknown> = {};
        if (b[i] === 0x7d) return i++, o;
        for (;;) {
          ws();
          const k = str();
          ws();
          if (b[i] !== 0x3a) fail('":" was expected');
          i++;
          path.push(k);
          const v = value(depth + 1);
          path.pop();
          Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
          ws();
          if (b[i] === 0x2c) i++;
          else if (b[i] === 0x7d) return i++, o;
          else fail('"," or "}" was expected');
        }
      }
      const a: unknown[] = [];
      if (b[i] === 0x5d) return i++, a;
      for (;;) {
        path.push(String(a.length));
        a.push(value(depth + 1));
        path.pop();
        ws();
        if (b[i] === 0x2c) i++;
        else if (b[i] === 0x5d) return i++, a;
        else fail('"," or "]" was expected');
      }
    }
    if (c === 0x22) return str();
    const head = b.toString('latin1', i, Math.min(n, i + 400));
    for (const [word, v] of [['true', true], ['false', false], ['null', null]] as const) {
      if (head.startsWith(word)) return (i += word.length), v;
    }
    const m = NUMBER.exec(head);
    if (!m) return fail(i >= n ? 'unexpected end' : 'a value was expected');
    i += m[0].length;
    return Number(m[0]);
  };
  const out = value(0);
  ws();
  if (i < n) fail('unexpected text after the value');
  return out;
}

/**
 * Where JSON text stops being valid: the field (dotted path) being read at that point, and the line
 * and column. Used for error messages only (after `JSON.parse` has failed).
 */
export function jsonErrorAt(text: string): { field: string; line: number; column: number } {
  let i = 0;
  const path: string[] = [];
  const ws = () => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\n' || text[i] === '\r' || text[i] === '\t')) i++;
  };
  const fail = (): never => {
    throw i;
  };
  const str = (): string => {
    if (text[i] !== '"') fail();
    const start = ++i;
    while (i < text.length && text[i] !== '"') {
      if (text.charCodeAt(i) < 0x20) fail();
      i += text[i] === '\\' ? 2 : 1;
    }
    if (i >= text.length) fail();
    return text.slice(start, i++);
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') return void i++;
      for (;;) {
        ws();
        const k = str();
        ws();
        if (text[i] !== ':') fail();
        i++;
        path.push(k);
        value();
        path.pop();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === '}') return void i++;
        else fail();
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') return void i++;
      for (let n = 0; ; n++) {
        path.push(String(n));
        value();
        path.pop();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === ']') return void i++;
        else fail();
      }
    }
    if (c === '"') return void str();
    const m = /^(-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?|true|false|null)/.exec(text.slice(i, i + 64));
    if (!m) fail();
    i += m![0].length;
  };
  try {
    value();
    ws();
    if (i < text.length) fail();
  } catch (e) {
    if (typeof e !== 'number') throw e;
  }
  const before = text.slice(0, i);
  const line = before.split('\n').length;
  const column = i - before.lastIndexOf('\n');
  return { field: path.join('.') || '(root)', line, column };
}

/**
 * Read a checkpoint file and, when a target is given, restore it: the trainer's or balancer's state,
 * and the optimizer and variables given in `extras` (each must be present in the file). A trainer
 * checkpoint can be loaded into a bare balancer (its balancer part); not the other way round.
 */
export async function loadState(path: string, into?: BalancedTrainer | Balancer, extras: CheckpointExtras = {}): Promise<Checkpoint> {
  const ckpt = readCheckpoint(path);
  const within = (e: unknown, prefix: string): unknown => (e instanceof StateError ? e.within(path, prefix) : e);
  // 1. Check and decode everything; nothing is changed yet. Field checks first (they give the most
  // precise messages), then the checksums (a changed value that is still valid).
  if (into !== undefined && !(into instanceof BalancedTrainer) && !(into instanceof Balancer)) {
    throw new BalancerError('loadState: the target must be a BalancedTrainer or a Balancer');
  }
  let balancerPart: BalancerState | undefined;
  let checkedAuto: PreparedAuto | null | undefined;
  if (into instanceof BalancedTrainer) {
    if (ckpt.kind !== 'trainer') throw new BalancerError(`${path} holds a bare balancer state; a BalancedTrainer needs a trainer checkpoint`);
    try {
      checkedAuto = into.checkState(ckpt.state as TrainerState);
    } catch (e) {
      // the trainer names its own fields (step, epoch, balancer.<field>)
      throw within(e, 'state.');
    }
  } else if (into instanceof Balancer) {
    balancerPart = ckpt.kind === 'trainer' ? (ckpt.state as TrainerState)?.balancer : (ckpt.state as BalancerState);
    try {
      into.checkState(balancerPart);
    } catch (e) {
      throw within(e, ckpt.kind === 'trainer' ? 'state.balancer.' : 'state.');
    }
  }
  let optimizer: DecodedOptimizer | undefined;
  if (extras.optimizer) {
    if (!ckpt.optimizer) throw missingPart(ckpt, path, 'optimizer', 'holds no optimizer state (save it with saveState(path, source, { optimizer }))');
    optimizer = decodeOptimizer(ckpt.optimizer, extras.optimizer, path, 'optimizer');
  }
  let variables: ReturnType<typeof decodeVariables> | undefined;
  if (extras.variables) {
    if (!ckpt.variables) throw missingPart(ckpt, path, 'variables', 'holds no model variables (save them with saveState(path, source, { variables }))');
    variables = decodeVariables(ckpt.variables, extras.variables, path, 'variables');
  }
  verifyChecksums(ckpt, path);
  // 2. Apply: every check has passed.
  // the selection state decoded once (a large auto selection takes seconds to decode)
  if (into instanceof BalancedTrainer) into.load(ckpt.state as TrainerState, checkedAuto);
  else if (into instanceof Balancer) into.load(balancerPart!);
  if (optimizer) await applyOptimizer(optimizer, extras.optimizer!, extras);
  if (variables) {
    for (const [v, d] of variables) {
      const t = tf.tensor(d.values, d.shape, d.dtype);
      v.assign(t);
      t.dispose();
    }
  }
  return ckpt;
}
