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
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { Balancer, type BalancerState } from '../core/balancer.js';
import { BalancerError } from '../core/errors.js';
import { BalancedTrainer, type TrainerState } from '../train/trainer.js';

/** `format` of a checkpoint file. */
export const CHECKPOINT_FORMAT = 'loss-balancer/checkpoint';
/** Version of the checkpoint file layout; bumped on any incompatible change. */
export const CHECKPOINT_VERSION = 1;

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
  /** `optimizer.getConfig()` (learning rate, betas, ...): restored on load (see `CheckpointExtras.hyperparameters`). */
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

/** A new tensor from {@link saveTensor}'s output (the caller disposes it). */
export function loadTensor(saved: SavedTensor): tf.Tensor {
  const buf = Buffer.from(saved.data, 'base64');
  const bytes = new Uint8Array(buf.byteLength);
  bytes.set(buf);
  const n = saved.shape.reduce((a, b) => a * b, 1);
  let values: Float32Array | Int32Array | Uint8Array;
  if (saved.dtype === 'float32') values = new Float32Array(bytes.buffer);
  else if (saved.dtype === 'int32') values = new Int32Array(bytes.buffer);
  else if (saved.dtype === 'bool') values = bytes;
  else throw new BalancerError(`saved tensor "${saved.name}" has unsupported dtype ${JSON.stringify(saved.dtype)}`);
  if (values.length !== n) {
    throw new BalancerError(`saved tensor "${saved.name}" holds ${values.length} values for shape [${saved.shape.join(', ')}]`);
  }
  return tf.tensor(values, saved.shape, saved.dtype);
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
  const byName = new Map(saved.map((s) => [s.name, s]));
  for (const [k, v] of entries) {
    const s = byName.get(k);
    if (!s) throw new BalancerError(`checkpoint holds no variable "${k}"; it holds ${saved.map((x) => `"${x.name}"`).join(', ')}`);
    if (s.shape.join(',') !== v.shape.join(',') || s.dtype !== v.dtype) {
      throw new BalancerError(
        `variable "${k}" (${v.name}): checkpoint has ${s.dtype} [${s.shape.join(', ')}], the variable is ${v.dtype} [${v.shape.join(', ')}]`,
      );
    }
    const t = loadTensor(s);
    v.assign(t);
    t.dispose();
  }
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
  // Hyperparameters first: setWeights reads some of them (RMSProp's `centered` decides the slot layout).
  restoreHyperparameters(saved.config, opt, options);
  const tensors = saved.weights.map((w) => ({ name: w.name, tensor: loadTensor(w) }));
  await opt.setWeights(tensors);
  // setWeights makes variables of the given tensors (sharing their data); our copies can go.
  tensors.forEach((t) => t.tensor.dispose());
  const own = new Map(scalarVariables(opt));
  for (const e of saved.extras) {
    const v = own.get(e.name);
    if (!v) continue;
    const t = loadTensor(e);
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
    for (const [k, v] of Object.entries(saved)) {
      if (Object.is(current()[k], v)) continue;
      const setter = o[`set${k[0].toUpperCase()}${k.slice(1)}`];
      if (typeof setter === 'function' && typeof v === 'number') (setter as (x: number) => void).call(opt, v);
      else if (k in o && typeof o[k] === typeof v && (typeof v === 'number' || typeof v === 'boolean')) o[k] = v;
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

/** Write `text` to `path` atomically: temporary file, fsync, rename. */
export function writeFileAtomic(path: string, text: string): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, text);
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
  return ckpt;
}

/**
 * Save a trainer's or balancer's state (and optionally the optimizer and model variables) to one JSON
 * file, atomically.
 */
export async function saveState(path: string, source: BalancedTrainer | Balancer, extras: CheckpointExtras = {}): Promise<Checkpoint> {
  const ckpt = await checkpointOf(source, extras);
  writeFileAtomic(path, `${JSON.stringify(ckpt)}\n`);
  return ckpt;
}

/** Check a parsed checkpoint's format and version; `where` names it in errors. */
export function checkCheckpoint(raw: unknown, where = '(checkpoint)'): Checkpoint {
  const c = raw as Partial<Checkpoint> | null;
  if (!c || typeof c !== 'object' || c.format !== CHECKPOINT_FORMAT) {
    throw new BalancerError(`${where} is not a loss-balancer checkpoint (format is not "${CHECKPOINT_FORMAT}")`);
  }
  if (c.version !== CHECKPOINT_VERSION) {
    throw new BalancerError(
      `${where} is a checkpoint of version ${JSON.stringify(c.version)}; this version of loss-balancer reads version ${CHECKPOINT_VERSION} only`,
    );
  }
  if (c.kind !== 'trainer' && c.kind !== 'balancer') {
    throw new BalancerError(`${where}: "kind" must be "trainer" or "balancer"; got ${JSON.stringify(c.kind)}`);
  }
  return c as Checkpoint;
}

/** Read and check a checkpoint file (format and version) without restoring anything. */
export function readCheckpoint(path: string): Checkpoint {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new BalancerError(`cannot read checkpoint ${path}: ${(e as Error).message}`);
  }
  return checkCheckpoint(raw, path);
}

/**
 * Read a checkpoint file and, when a target is given, restore it: the trainer's or balancer's state,
 * and the optimizer and variables given in `extras` (each must be present in the file). A trainer
 * checkpoint can be loaded into a bare balancer (its balancer part); not the other way round.
 */
export async function loadState(path: string, into?: BalancedTrainer | Balancer, extras: CheckpointExtras = {}): Promise<Checkpoint> {
  const ckpt = readCheckpoint(path);
  if (into instanceof BalancedTrainer) {
    if (ckpt.kind !== 'trainer') throw new BalancerError(`${path} holds a bare balancer state; a BalancedTrainer needs a trainer checkpoint`);
    into.load(ckpt.state as TrainerState);
  } else if (into instanceof Balancer) {
    into.load(ckpt.kind === 'trainer' ? (ckpt.state as TrainerState).balancer : (ckpt.state as BalancerState));
  } else if (into !== undefined) {
    throw new BalancerError('loadState: the target must be a BalancedTrainer or a Balancer');
  }
  if (extras.optimizer) {
    if (!ckpt.optimizer) throw new BalancerError(`${path} holds no optimizer state (save it with saveState(path, source, { optimizer }))`);
    await loadOptimizer(ckpt.optimizer, extras.optimizer, extras);
  }
  if (extras.variables) {
    if (!ckpt.variables) throw new BalancerError(`${path} holds no model variables (save them with saveState(path, source, { variables }))`);
    loadVariables(ckpt.variables, extras.variables);
  }
  return ckpt;
}
