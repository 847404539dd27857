/**
 * Gradient reading on the tfjs backend: per-term gradients w.r.t. the trained variables, the Gram
 * matrix and statistics over the shared ones, and the weighted combination. Only T×T (+2T) numbers
 * leave the backend. Every function here is called inside the caller's `tf.tidy`.
 */
import * as tf from '@tensorflow/tfjs';
import { checkSameTerms } from '../core/balancer.js';
import { BalancerError } from '../core/errors.js';
import type { GradientStats } from '../core/types.js';
import { gramProduct } from './gram-product.js';
import { headDenseLayers, headGram, headRows, headUpstream, jointGram, jointHeadLayer, jointRows, jointUpstream, stackE, withMatMulAttrs, type HeadDense } from './head-gram.js';
import { planLayerwise, runLayerwise, type LayerParts } from './layerwise.js';
import { labelTape, subTapes } from './subtape.js';

/** A term's gradients, by variable name (variables the term does not reach are absent). */
export type TermGrads = Map<string, tf.Tensor>;

/**
 * Per-term gradients: one `tf.variableGrads` per term (each re-evaluates `terms`, then keeps one
 * term). Returns the loss value tensors and the gradients. A term that reaches none of `vars` is an
 * error naming it.
 */
export function perTermGradients(
  terms: () => Record<string, tf.Scalar>,
  names: readonly string[],
  vars: readonly tf.Variable[],
  check: (got: Record<string, tf.Scalar>) => void,
): { values: tf.Scalar[]; grads: TermGrads[] } {
  const values: tf.Scalar[] = [];
  const grads: TermGrads[] = [];
  for (const name of names) {
    let out: { value: tf.Scalar; grads: tf.NamedTensorMap };
    try {
      out = variableGrads(() => {
        const t = terms();
        check(t);
        return scalarOf(t, name);
      }, vars as tf.Variable[]);
    } catch (e) {
      if (e instanceof BalancerError) throw e;
      const msg = (e as Error).message ?? String(e);
      if (/connection between any variable/i.test(msg)) {
        throw new BalancerError(
          `term "${name}" has no gradient path to any of the trained variables (${vars.length} variables); check that it is computed from the model inside terms()`,
        );
      }
      throw e;
    }
    values.push(out.value);
    grads.push(new Map(Object.entries(out.grads)));
  }
  return { values, grads };
}

/**
 * `tf.variableGrads`, releasing the tape's saved tensors when `f` (or the backward pass) throws.
 * tfjs keeps every tensor the tape saved for the backward pass until the next outermost gradient
 * call replaces the tape; after an exception (a rejected step: terms changed, a non-scalar term, a
 * balancer error thrown inside `f`) they would never be freed. On wasm, transposed matrix products
 * run as transpose + plain product (see `withPlainMatMul`).
 */
export function variableGrads(f: () => tf.Scalar, vars: readonly tf.Variable[]): { value: tf.Scalar; grads: tf.NamedTensorMap } {
  const engine = tf.engine();
  const outermost = engine.state.gradientDepth === 0;
  const transposed: TransposeCache = new Map();
  try {
    return withPlainMatMul(engine, transposed, () => tf.variableGrads(f, vars as tf.Variable[]));
  } catch (e) {
    if (outermost) releaseTape(engine);
    throw e;
  } finally {
    for (const t of transposed.values()) t?.dispose();
  }
}

/**
 * The trainer's check of one `terms()` result: the same names as bound, each a scalar tensor.
 * Errors name the term and the trainer's `step` (`step 12: the terms changed: ...`,
 * `step 12: term "b" must be a scalar loss; ...`).
 */
export function checkTerms(names: readonly string[], t: Record<string, tf.Tensor>, step: number): void {
  try {
    checkSameTerms(names, Object.keys(t));
    for (const n of names) scalarOf(t, n);
  } catch (e) {
    if (e instanceof BalancerError && !/^step \d+: /.test(e.message)) throw new BalancerError(`step ${step}: ${e.message}`);
    throw e;
  }
}

/** `t[name]` checked to be a scalar tensor; errors name the term. */
export function scalarOf(t: Record<string, tf.Tensor>, name: string): tf.Scalar {
  const v = t[name];
  if (!(v instanceof tf.Tensor)) throw new BalancerError(`term "${name}" is not a tensor (got ${typeof v})`);
  if (v.rank !== 0) {
    throw new BalancerError(`term "${name}" must be a scalar loss; got shape [${v.shape.join(', ')}] (reduce it with tf.mean)`);
  }
  return v as tf.Scalar;
}

/**
 * Variables that two or more terms reach: the shared trunk. With one term, or when no variable is
 * reached by two terms, every variable some term reaches.
 */
export function detectShared(grads: readonly TermGrads[], vars: readonly tf.Variable[]): tf.Variable[] {
  const count = (v: tf.Variable) => grads.filter((g) => g.has(v.name)).length;
  const shared = vars.filter((v) => count(v) >= 2);
  return shared.length ? shared : vars.filter((v) => count(v) >= 1);
}

/**
 * The T×P matrix of per-term gradients flattened over `shared` (zeros where a term does not reach).
 * Built by one concatenation in its own `tf.tidy`, so that no per-row copies outlive the call.
 */
export function gradientMatrix(grads: readonly TermGrads[], shared: readonly tf.Variable[]): tf.Tensor2D {
  return tf.tidy(() => {
    const parts = grads.flatMap((g) => shared.map((v) => (g.get(v.name) ?? tf.zerosLike(v)).reshape([-1])));
    const flat = tf.concat(parts);
    // The flattened views are released before the reshape (tfjs counts a view's bytes as its own).
    const own = new Set(grads.flatMap((g) => [...g.values()]));
    tf.dispose(parts.filter((t) => !own.has(t)));
    return flat.reshape([grads.length, -1]) as tf.Tensor2D;
  });
}

/** What {@link readGram} downloads. */
export interface GramReading {
  gram: number[][];
  stats?: GradientStats;
}

/**
 * `G = M Mᵀ` (and mean/max |g| per row when `withStats`), downloaded as plain numbers. When a
 * diagonal entry comes back non-finite, the matrix is read again in a scaled form
 * ({@link readGramScaled}): a finite gradient then never gives a non-finite entry, even when `Σ g²`
 * is beyond float32 (a gradient of 4.8e19), and a row stays non-finite only when its gradient is.
 */
export function readGram(M: tf.Tensor2D, withStats: boolean): GramReading {
  const flat = gramTensor(M, withStats);
  let reading: GramReading;
  try {
    reading = parseGram(flat.dataSync(), M.shape[0], withStats);
  } finally {
    flat.dispose();
  }
  return gramOverflowed(reading.gram) ? readGramScaled(M, withStats) : reading;
}

/**
 * What {@link readGram} downloads, as one flat tensor: `G = M Mᵀ` row by row (T×T), then with
 * `withStats` mean |g_i| and max |g_i| (T each). For a caller that reads it asynchronously; when
 * {@link gramOverflowed} says so, read it again with {@link readGramScaled}.
 */
export function gramTensor(M: tf.Tensor2D, withStats: boolean): tf.Tensor1D {
  return tf.tidy(() => gramTensorOf(M, withStats));
}

function gramTensorOf(M: tf.Tensor2D, withStats: boolean): tf.Tensor1D {
  const G = gramProduct(M);
  const parts: tf.Tensor[] = [G.reshape([-1])];
  if (withStats) {
    const abs = M.abs();
    parts.push(abs.mean(1), abs.max(1));
  }
  return tf.concat(parts) as tf.Tensor1D;
}

/**
 * Whether a float32 Gram matrix must be read again with {@link readGramScaled}: a diagonal entry is
 * not finite. That happens when a gradient is not finite, and also when a finite one has
 * `Σ g² > 3.4e38` (‖g‖ above about 1.8e19), which float32 cannot hold.
 */
export function gramOverflowed(gram: readonly (readonly number[])[]): boolean {
  return gram.some((row, i) => !Number.isFinite(row[i]));
}

/** Binary exponents allowed for a row scale (2^-126 … 2^127: normal float32 numbers). */
const SCALE_EXP = [-126, 127] as const;

/**
 * {@link readGram} in a scaled form: each gradient row is divided by a power of two `s_i` near its
 * largest |entry| (1 for a zero or non-finite row), `Ĝ = (S⁻¹M)(S⁻¹M)ᵀ` is formed in float32 with
 * entries of magnitude about P, and `G_ij = s_i s_j Ĝ_ij` in float64 on the CPU side. A division by a
 * power of two is exact, so for ordinary gradients this equals the plain float32 `M Mᵀ`; a finite
 * gradient never gives a non-finite entry; a non-finite gradient is left unscaled, so its row stays
 * non-finite and the Balancer's message about it is true. It costs a pass over M for the row maxima
 * and one for the division (about 2× the plain reading on wasm), hence only after an overflow.
 */
export function readGramScaled(M: tf.Tensor2D, withStats: boolean): GramReading {
  const T = M.shape[0];
  const flat = tf.tidy(() => {
    // max |M_ij| per row, without a T×P temporary
    const rowMax = tf.maximum(M.max(1), M.min(1).neg());
    const ok = tf.logicalAnd(tf.isFinite(rowMax), tf.greater(rowMax, 0));
    const exp = tf.clipByValue(tf.floor(tf.div(tf.log(tf.where(ok, rowMax, tf.onesLike(rowMax))), Math.LN2)), SCALE_EXP[0], SCALE_EXP[1]);
    const scale = tf.where(ok, tf.pow(tf.scalar(2), exp), tf.onesLike(rowMax));
    return tf.concat([gramTensorOf(tf.div(M, scale.reshape([T, 1])) as tf.Tensor2D, false), scale]) as tf.Tensor1D;
  });
  let scaled: number[][];
  try {
    const v = flat.dataSync();
    const s = v.subarray(T * T);
    scaled = Array.from({ length: T }, (_, i) => Array.from(v.subarray(i * T, (i + 1) * T), (g, j) => g * s[i] * s[j]));
  } finally {
    flat.dispose();
  }
  if (!withStats) return { gram: scaled };
  const stats = tf.tidy(() => {
    const abs = M.abs();
    return tf.concat([abs.mean(1), abs.max(1)]);
  });
  try {
    const v = stats.dataSync();
    return { gram: scaled, stats: { meanAbs: Array.from(v.subarray(0, T)), maxAbs: Array.from(v.subarray(T)) } };
  } finally {
    stats.dispose();
  }
}

/** The values of {@link gramTensor} (downloaded) as a {@link GramReading}. */
export function parseGram(flat: Float32Array | Int32Array | Uint8Array, T: number, withStats: boolean): GramReading {
  const gram = Array.from({ length: T }, (_, i) => Array.from(flat.subarray(i * T, (i + 1) * T)));
  if (!withStats) return { gram };
  const off = T * T;
  return {
    gram,
    stats: {
      meanAbs: Array.from(flat.subarray(off, off + T)),
      maxAbs: Array.from(flat.subarray(off + T, off + 2 * T)),
    },
  };
}

/** `Σ_i w_i g_i` for every variable some term reaches (terms with weight 0 still count as reached). */
export function combine(
  grads: readonly TermGrads[],
  weights: readonly number[],
  vars: readonly tf.Variable[],
  headWeights: 'weighted' | 'unit' = 'weighted',
): tf.NamedTensorMap {
  const out: tf.NamedTensorMap = {};
  for (const v of vars) {
    const head = headWeights === 'unit' && grads.filter((g) => g.has(v.name)).length === 1;
    // One tidy per variable: the products and partial sums of one variable are released before the
    // next is combined (peak memory), the numbers are the same.
    if (!grads.some((g) => g.has(v.name))) continue;
    out[v.name] = tf.tidy(() => {
      let acc: tf.Tensor | null = null;
      grads.forEach((g, i) => {
        const gi = g.get(v.name);
        if (!gi) return;
        const term = head ? gi : gi.mul(weights[i]);
        acc = acc ? acc.add(term) : term;
      });
      return acc!;
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// One forward pass, several backward passes.
//
// `tf.variableGrads(f)` records a tape while running `f`, backpropagates once and throws the tape
// away, so T per-term gradients cost T forward passes. The engine supports nested gradient calls
// (that is how tf.grad(tf.grad(f)) works): while an outer `engine.gradients` call is recording, an
// inner one does not start a new tape but filters the outer one from its `xs` to its `y`, and keeps
// the saved forward tensors (they are released only when the outermost call ends). So: open an
// outer call whose own gradient is never wanted, run the forward once inside it, and call the inner
// `engine.gradients(() => y_i, xs)` once per output. Only the public `tf.engine().gradients` is used.
// ---------------------------------------------------------------------------------------------

/** Backpropagation over the tape recorded so far inside {@link withTape}. */
export interface Tape {
  /**
   * ∂y/∂x for each x in `xs` (`null` where y does not depend on x), from the forward already
   * recorded: nothing is recomputed. `dy` is the upstream gradient (same shape as y; default ones),
   * which makes this a vector-Jacobian product for a non-scalar y.
   */
  grads(y: tf.Tensor, xs: readonly tf.Tensor[], dy?: tf.Tensor): (tf.Tensor | null)[];
  /**
   * `grads(y, xs)` for each y of `ys` (element k: the gradients of `ys[k]`), with the tape split once
   * into one sub-tape per y (src/train/subtape.ts), so that T outputs cost O(T) filtering instead of
   * O(T²). Same gradients as calling {@link grads} for each.
   */
  gradsEach(ys: readonly tf.Tensor[], xs: readonly tf.Tensor[]): (tf.Tensor | null)[][];
  /**
   * Run `f` without recording its operations on the tape: for tensors that are read (losses, the
   * gradient matrix, an upstream gradient) but never differentiated. Saves the copies of saved
   * tensors that recording would keep until the end of {@link withTape}.
   */
  unrecorded<R>(f: () => R): R;
  /** The nodes recorded so far (tfjs's `activeTape`), read-only: for structure checks (src/train/head-gram.ts). */
  recorded(): unknown;
}

/**
 * Run `fn` with a gradient tape open: every op it runs is recorded once, and `tape.grads(y, xs)` can
 * backpropagate from any tensor computed so far, as often as needed. The tensors of the map `fn`
 * returns are handed back (tracked by the caller's scope, like any op result); everything else
 * created inside is released. On an exception the tape's saved tensors are released too.
 */
export function withTape(fn: (tape: Tape) => tf.NamedTensorMap): tf.NamedTensorMap {
  const engine = tf.engine();
  const outermost = engine.state.gradientDepth === 0;
  const kept: tf.NamedTensorMap = {};
  const probe = tf.scalar(0);
  const transposed: TransposeCache = new Map();
  const tape: Tape = {
    grads: (y, xs, dy) => {
      const { grads } = withPlainMatMul(engine, transposed, () => unrecorded(engine, () => engine.gradients(() => y, xs as tf.Tensor[], dy, true)));
      return grads.map((g) => g ?? null);
    },
    gradsEach: (ys, xs) => {
      const state = engine.state as unknown as { activeTape: unknown[] | null };
      const full = state.activeTape;
      const parts = ys.length > 1 ? subTapes(full, ys) : null;
      return ys.map((y, k) => {
        if (!parts) return tape.grads(y, xs);
        // engine.gradients filters `activeTape`; during this nested call nothing is recorded on it
        // (backward passes run unrecorded), so it is swapped for y's sub-tape and restored after.
        state.activeTape = parts[k];
        try {
          return tape.grads(y, xs);
        } finally {
          state.activeTape = full;
        }
      });
    },
    unrecorded: (f) => unrecorded(engine, f),
    recorded: () => (engine.state as unknown as { activeTape: unknown }).activeTape,
  };
  try {
    const out = engine.gradients(
      () => {
        const res = fn(tape);
        for (const [k, t] of Object.entries(res)) kept[k] = tf.keep(t);
        return tf.scalar(0);
      },
      [probe],
      undefined,
      true,
    );
    out.value.dispose();
    for (const g of out.grads) g?.dispose();
  } catch (e) {
    if (outermost) releaseTape(engine);
    tf.dispose([...new Set(Object.values(kept))]);
    throw e;
  } finally {
    probe.dispose();
    for (const t of transposed.values()) t?.dispose();
  }
  // Hand the results over as ordinary (non-kept) tensors of the caller's scope. One tensor may stand
  // under several keys (terms() returned the same tensor under two names): clone every key first,
  // then dispose each kept tensor once.
  const result: tf.NamedTensorMap = {};
  for (const [k, t] of Object.entries(kept)) result[k] = t.clone();
  for (const t of new Set(Object.values(kept))) t.dispose();
  return result;
}

/** Transposed operands by the id of the operand: `null` after its first use, the kept transpose after the second. */
type TransposeCache = Map<number, tf.Tensor | null>;

/**
 * Run a backward pass with every transposed matrix product (`BatchMatMul` with `transposeA` or
 * `transposeB`, which is what tfjs's MatMul gradient asks for) computed as an explicit transpose
 * followed by a plain product, on the wasm backend only. Same numbers; on tfjs-backend-wasm 4.x the
 * transposed-operand kernel is about 10× slower than transpose + plain product at the sizes of a
 * Dense layer (128×256ᵀ·128×256: 25 ms against 2 ms, bench/grad-read.ts, docs/benchmarks.md). The
 * transposed operands are cached by tensor id in `cache` from their second use on (the trunk's saved
 * activations and weights are the same tensors in each of the T backward passes), kept, and disposed
 * by the caller; an operand's first transpose is released right after its product, so an operand
 * used once (each head's own saved copy of z) costs no memory beyond that product. The engine's
 * `runKernel` is wrapped on the engine instance for the duration of `f` only (synchronous) and
 * restored after, on every path: nothing outside this backward pass sees it, and tfjs's gradient
 * registry is not touched.
 */
function withPlainMatMul<R>(engine: ReturnType<typeof tf.engine>, cache: TransposeCache, f: () => R): R {
  if (!plainMatMulOn || tf.getBackend() !== 'wasm') return f();
  type RunKernel = (name: string, inputs: Record<string, tf.Tensor>, attrs?: Record<string, unknown>) => tf.Tensor | tf.Tensor[];
  const e = engine as unknown as { runKernel: RunKernel };
  const own = Object.prototype.hasOwnProperty.call(e, 'runKernel');
  const original = e.runKernel;
  const temporary: tf.Tensor[] = [];
  const swap = (t: tf.Tensor): tf.Tensor => {
    const cached = cache.get(t.id);
    if (cached) return cached;
    const perm = t.shape.map((_, i) => i);
    const r = perm.length;
    [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
    const u = original.call(e, 'Transpose', { x: t }, { perm }) as tf.Tensor;
    // Cached from its second use on: an operand used once (a head's copy of z, in the one pass of
    // that head) is released right after its product instead of staying until the end of the step.
    if (cache.has(t.id)) cache.set(t.id, tf.keep(u));
    else {
      cache.set(t.id, null);
      temporary.push(u);
    }
    return u;
  };
  e.runKernel = function (name, inputs, attrs) {
    if (name === 'BatchMatMul' && attrs && (attrs.transposeA || attrs.transposeB)) {
      try {
        const a = attrs.transposeA ? swap(inputs.a) : inputs.a;
        const b = attrs.transposeB ? swap(inputs.b) : inputs.b;
        return original.call(e, name, { a, b }, { ...attrs, transposeA: false, transposeB: false });
      } finally {
        for (const u of temporary.splice(0)) u.dispose();
      }
    }
    return original.call(e, name, inputs, attrs);
  };
  try {
    return f();
  } finally {
    if (own) e.runKernel = original;
    else delete (e as { runKernel?: RunKernel }).runKernel;
  }
}

/**
 * Run a backward pass inside {@link withTape} without recording its operations on the open tape.
 * While the outer gradient call of `withTape` records, tfjs records every operation of a nested
 * backward pass too (for higher-order gradients) and keeps a copy of each tensor those operations
 * save for their own backward pass until the outer call ends; nothing differentiates the per-term
 * gradients again, so that was pure cost (at T = 16 on the benchmark MLP about 2.4 MB per pass).
 * The engine's own switch is used: it stops recording while `kernelDepth > 0` (that is how it keeps
 * the insides of a kernel off the tape). The user's forward (`terms()`, which may contain its own
 * `tf.grad`) is still recorded in full; only the library's backward passes are not.
 */
function unrecorded<R>(engine: ReturnType<typeof tf.engine>, f: () => R): R {
  const state = engine.state;
  state.kernelDepth++;
  try {
    return f();
  } finally {
    state.kernelDepth--;
  }
}

/** After a failed forward the engine keeps the tape's saved tensors; release them. */
function releaseTape(engine: ReturnType<typeof tf.engine>): void {
  const state = engine.state as unknown as { activeTape?: { saved?: tf.Tensor[] }[] | null; gradientDepth: number };
  if (state.gradientDepth !== 0 || !Array.isArray(state.activeTape)) return;
  for (const node of state.activeTape) for (const t of node.saved ?? []) t.dispose();
  state.activeTape = null;
}

let tapeChecked: boolean | null = null;

/**
 * Whether {@link withTape} works with the installed tfjs: checked once per process on a two-output
 * function with known gradients (y1 = Σ 2v, y2 = Σ v², v = [1, 2, 3]), after the backend is ready.
 * When it does not, the trainers fall back to one forward pass per term.
 */
export function tapeWorks(): boolean {
  if (tapeChecked !== null) return tapeChecked;
  const before = tf.memory().numTensors;
  try {
    const init = tf.tensor1d([1, 2, 3]);
    const v = tf.variable(init, true, `loss-balancer-tape-check-${Math.random().toString(36).slice(2)}`);
    init.dispose();
    try {
      const got = tf.tidy(() => {
        const r = withTape((tape) => {
          const y1 = tf.sum(tf.mul(v, 2));
          const y2 = tf.sum(tf.square(v));
          const [g1] = tape.grads(y1, [v]);
          const [g2] = tape.grads(y2, [v]);
          return { g1: g1!, g2: g2! };
        });
        return Array.from(tf.concat([r.g1, r.g2]).dataSync());
      });
      const want = [2, 2, 2, 2, 4, 6];
      tapeChecked = got.length === 6 && got.every((x, i) => Math.abs(x - want[i]) < 1e-6);
    } finally {
      v.dispose();
    }
    if (tf.memory().numTensors !== before) tapeChecked = false;
  } catch {
    tapeChecked = false;
  }
  return tapeChecked;
}

/** For tests: forget the result of {@link tapeWorks} (or force it). */
export function setTapeWorks(value: boolean | null): void {
  tapeChecked = value;
}

function noPathError(name: string, what: string): BalancerError {
  return new BalancerError(
    `term "${name}" has no gradient path to ${what}; check that it is computed from the model inside terms()`,
  );
}

/**
 * Per-term gradients from ONE forward pass of `terms` and T backward passes (see {@link withTape}):
 * the same result as {@link perTermGradients}, which runs `terms` once per term. A term that reaches
 * none of `vars` is an error naming it.
 */
export function termGradientsOnce(
  terms: () => Record<string, tf.Scalar>,
  names: readonly string[],
  vars: readonly tf.Variable[],
  check: (got: Record<string, tf.Scalar>) => void,
): { values: tf.Scalar[]; grads: TermGrads[] } {
  const trainable = vars.filter((v) => v.trainable);
  const flat = withTape((tape) => {
    const t = terms();
    check(t);
    const out: tf.NamedTensorMap = {};
    const ys = names.map((name) => scalarOf(t, name));
    ys.forEach((y, i) => (out[`v${i}`] = y));
    putTermGrads(out, tape.gradsEach(ys, trainable), names, trainable);
    return out;
  });
  return { values: names.map((_, i) => flat[`v${i}`] as tf.Scalar), grads: termGradsOf(flat, names, trainable) };
}

/**
 * The per-term passes' gradients (`each[i][k]`: term i, variable k) into `out` as `g<i>:<k>`, to
 * leave a `withTape` scope; a term that reaches none of `trainable` is an error naming it.
 */
function putTermGrads(out: tf.NamedTensorMap, each: (tf.Tensor | null)[][], names: readonly string[], trainable: readonly tf.Variable[]): void {
  names.forEach((name, i) => {
    if (each[i].every((g) => g === null)) throw noPathError(name, `any of the trained variables (${trainable.length} variables)`);
    each[i].forEach((g, k) => {
      if (g) out[`g${i}:${k}`] = g;
    });
  });
}

/** {@link putTermGrads}'s gradients back, per term, by variable name. */
function termGradsOf(flat: tf.NamedTensorMap, names: readonly string[], trainable: readonly tf.Variable[]): TermGrads[] {
  return names.map((_, i) => {
    const m: TermGrads = new Map();
    trainable.forEach((v, k) => {
      const g = flat[`g${i}:${k}`];
      if (g) m.set(v.name, g);
    });
    return m;
  });
}

/** What {@link termGradientsLayered} read: per-term gradients (its fallback), or the layers' parts. */
export type LayeredReading =
  | { kind: 'per-term'; values: tf.Scalar[]; grads: TermGrads[] }
  | {
      kind: 'layerwise';
      values: tf.Scalar[];
      /** Dense layers' inputs and per-term output gradients, biases' per-term gradients (src/train/layerwise.ts). */
      parts: LayerParts[];
      /** Variables one term reaches: that term and its gradient. */
      head: { v: tf.Variable; term: number; g: tf.Tensor }[];
      /** Variables two or more terms reach. */
      shared: tf.Variable[];
      /** The Gram matrix (T×T) over `shared` as given, else over the variables two or more terms reach. */
      gram: tf.Tensor2D;
    };

/**
 * {@link termGradientsOnce}, or, when the model's shared part is of the form src/train/layerwise.ts
 * handles (dense layers, biases, relu/tanh/sigmoid) and `shared` (if given) lies in it, the
 * layer-wise reading: no per-term parameter gradients and no T backward passes, only the dense
 * layers' inputs and per-term output gradients. One forward pass either way; the form is checked on
 * the recorded tape before any backward pass.
 */
export function termGradientsLayered(
  terms: () => Record<string, tf.Scalar>,
  names: readonly string[],
  vars: readonly tf.Variable[],
  check: (got: Record<string, tf.Scalar>) => void,
  shared: readonly tf.Variable[] | null,
): LayeredReading {
  const trainable = vars.filter((v) => v.trainable);
  type Meta = { parts: { kind: LayerParts['kind']; v: tf.Variable; bias: tf.Variable | null; inputs: number }[]; head: { v: tf.Variable; term: number; k: number }[]; shared: tf.Variable[] };
  const found: Meta[] = [];
  const flat = withTape((tape) => {
    const t = withMatMulAttrs(() => terms());
    check(t);
    const out: tf.NamedTensorMap = {};
    const ys = names.map((name) => scalarOf(t, name));
    ys.forEach((y, i) => (out[`v${i}`] = y));
    const plan = planLayerwise(tape.recorded(), ys, trainable);
    if (plan?.unreached.length) throw noPathError(names[plan.unreached[0]], `any of the trained variables (${trainable.length} variables)`);
    const covered = (v: tf.Variable) => plan!.sharedVars.some((s) => s.id === v.id);
    if (plan && (!shared || shared.every(covered))) {
      const run = runLayerwise(plan, ys, (y, xs) => tape.grads(y, xs), (ys2, xs) => tape.gradsEach(ys2, xs), tape.unrecorded, shared ?? plan.sharedVars);
      const done = new Set(run.parts.flatMap((p) => (p.kind !== 'bias' && p.bias ? [p.v.id, p.bias.id] : [p.v.id])));
      if (plan.sharedVars.every((v) => done.has(v.id))) {
        run.parts.forEach((p, k) => {
          if (p.kind === 'dense') {
            out[`a${k}`] = tf.clone(p.a); // a may be the caller's own input tensor: hand back a view
            out[`D${k}`] = p.cat;
          } else if (p.kind === 'grads') out[`C${k}`] = p.C;
          else out[`R${k}`] = p.R;
        });
        out.gram = run.gram;
        const head: { v: tf.Variable; term: number; k: number }[] = [];
        plan.headVars.forEach((h, k) => {
          const g = run.head[k];
          if (!g) return;
          out[`h${k}`] = g;
          head.push({ ...h, k });
        });
        found.push({ parts: run.parts.map((p) => ({ kind: p.kind, v: p.v, bias: p.kind === 'bias' ? null : p.bias, inputs: p.kind === 'grads' ? p.inputs : 0 })), head, shared: plan.sharedVars });
        return out;
      }
      tf.dispose([run.gram, ...run.parts.map((p): tf.Tensor => (p.kind === 'dense' ? p.cat : p.kind === 'grads' ? p.C : p.R))]);
    }
    // the per-term passes on the same recorded forward (termGradientsOnce)
    putTermGrads(out, tape.gradsEach(ys, trainable), names, trainable);
    return out;
  });
  const values = names.map((_, i) => flat[`v${i}`] as tf.Scalar);
  const m = found[0];
  if (m) {
    const parts: LayerParts[] = m.parts.map((p, k) =>
      p.kind === 'dense' ? { kind: 'dense', v: p.v, a: flat[`a${k}`] as tf.Tensor2D, cat: flat[`D${k}`] as tf.Tensor2D, bias: p.bias }
      : p.kind === 'grads' ? { kind: 'grads', v: p.v, C: flat[`C${k}`] as tf.Tensor2D, inputs: p.inputs, bias: p.bias }
      : { kind: 'bias', v: p.v, R: flat[`R${k}`] as tf.Tensor2D },
    );
    return { kind: 'layerwise', values, parts, head: m.head.map((h) => ({ v: h.v, term: h.term, g: flat[`h${h.k}`] })), shared: m.shared, gram: flat.gram as tf.Tensor2D };
  }
  return { kind: 'per-term', values, grads: termGradsOf(flat, names, trainable) };
}

/** A model split at a shared representation z: `trunk()` computes z, `heads(z)` the named terms. */
export interface Representation {
  /** Computes the shared representation z from the model (the trunk's output). */
  trunk: () => tf.Tensor;
  /** Computes the named scalar loss terms from z. */
  heads: (z: tf.Tensor) => Record<string, tf.Scalar>;
}

/** What the caller decides from the losses and the per-term gradients w.r.t. z (T × size(z)). */
export type Decide = (losses: number[], M: tf.Tensor2D) => number[] | null;

/**
 * Representation mode's per-term gradients over z as the caller's decision reads them: `read` gives
 * the Gram matrix (and with `withStats` mean/max |∂L_i/∂z| per term) as {@link readGram} does;
 * `matrix` the T × size(z) matrix M itself (made on first call, released after the decision).
 */
export interface ZGradients {
  read(withStats: boolean): GramReading;
  matrix(): tf.Tensor2D;
}

/** {@link Decide} reading {@link ZGradients}: the trainer's form, which lets the Gram matrix come without M. */
export type DecideRead = (losses: number[], z: ZGradients) => number[] | null;

/**
 * Representation mode: one forward of trunk and heads; per-term ∂L_i/∂z by T backward passes through
 * the heads only; `decide(losses, M)` (M: T × size(z), rows = flattened ∂L_i/∂z) returns the weights
 * (or null to apply nothing); then ONE backward pass of Σ w_i L_i through heads and trunk on the same
 * recorded forward, which is the vector-Jacobian product of the trunk with upstream Σ w_i ∂L_i/∂z and
 * gives each head variable Σ w_i g_i over the terms that reach it. Returns the loss values and the
 * combined gradients (empty when `decide` returned null).
 */
export function representationGradients(
  rep: Representation,
  names: readonly string[],
  vars: readonly tf.Variable[],
  check: (got: Record<string, tf.Scalar>) => void,
  decide: Decide,
  headWeights: 'weighted' | 'unit' = 'weighted',
): { values: tf.Scalar[]; grads: tf.NamedTensorMap } {
  return representationReading(rep, names, vars, check, (losses, zg) => decide(losses, zg.matrix()), headWeights, false);
}

/**
 * {@link representationGradients} for a decision that reads the Gram matrix (the trainer's). With
 * `layerwise` (and a tape), when every term reads z only through its own dense layer u = z W
 * (src/train/head-gram.ts) and that is cheaper, the Gram matrix comes from the layers' inputs and
 * output gradients, all from ONE backward pass of Σ L_i through the heads; when all terms read z
 * through one dense layer, from its per-term output gradients (passes through the operations after
 * it only). M is made only if the decision asks for it (stats, or a Gram matrix that overflowed
 * float32). Same weights, same combined gradients as the per-term passes (up to float32 rounding).
 */
export function representationReading(
  rep: Representation,
  names: readonly string[],
  vars: readonly tf.Variable[],
  check: (got: Record<string, tf.Scalar>) => void,
  decide: DecideRead,
  headWeights: 'weighted' | 'unit' = 'weighted',
  layerwise = layerwiseOn,
): { values: tf.Scalar[]; grads: tf.NamedTensorMap; layerwise: boolean } {
  const trainable = vars.filter((v) => v.trainable);
  const T = names.length;
  let usedHeads = false;
  const body = (tape: Tape | null): tf.NamedTensorMap => {
    const forward = () => {
      const z = checkRepresentation(rep.trunk());
      return { z, t: rep.heads(z) };
    };
    const { z, t } = tape && layerwise ? withMatMulAttrs(forward) : forward();
    if (!t || typeof t !== 'object') throw new BalancerError('represent.heads(z) must return an object of named scalar losses');
    check(t);
    const ys = names.map((n) => scalarOf(t, n));
    const labels = tape && layerwise ? labelTape(tape.recorded(), ys) : null;
    const head: HeadDense | null = labels ? headDenseLayers(tape!.recorded(), z, ys, labels) : null;
    // one head layer for all terms (z W, the terms from its columns): per-term E_t over u by passes after it
    const joint = !head && labels ? jointHeadLayer(tape!.recorded(), z, ys, labels) : null;
    usedHeads = head !== null || joint !== null;
    // head layers: every E_n = ∂L_i/∂u_n from one backward pass of Σ L_i (each u_n leads to one term)
    const E = head && tape ? tape.grads(ys.length === 1 ? ys[0] : tf.addN([...ys]), head.us) : null;
    const Es = joint && tape ? (() => {
      const per = tape.gradsEach(ys, [joint.u]).map((g) => g[0]);
      return tape.unrecorded(() => tf.tidy(() => stackE(joint, per)));
    })() : null;
    const dz = head || joint ? null : tape ? tape.gradsEach(ys, [z]).map((g) => g[0]) : headGradsByRecomputation(rep, names, z);
    // Losses, M and the strategy's reading are never differentiated: not recorded on the tape. M is
    // released as soon as `decide` has read it (the backward pass below does not need it).
    const w = (tape ? tape.unrecorded.bind(tape) : <R>(f: () => R) => f())(() => {
      const losses = Array.from(tf.stack(ys).dataSync());
      let M: tf.Tensor2D | null = null;
      const matrix = () =>
        (M ??= head
          ? headRows(head, E!, z, T)
          : joint
          ? jointRows(joint, Es!)
          : tf.tidy(() => tf.concat(dz!.map((g) => (g ?? tf.zerosLike(z)).reshape([-1]))).reshape([T, -1]) as tf.Tensor2D));
      const read = (withStats: boolean): GramReading => {
        if ((!head && !joint) || withStats) return readGram(matrix(), withStats);
        const flat = tf.tidy(() => (head ? headGram(head, E!, T) : jointGram(joint!, Es!)).reshape([-1]));
        let reading: GramReading;
        try {
          reading = parseGram(flat.dataSync(), T, false);
        } finally {
          flat.dispose();
        }
        return gramOverflowed(reading.gram) ? readGramScaled(matrix(), false) : reading;
      };
      try {
        return decide(losses, { read, matrix });
      } finally {
        (M as tf.Tensor2D | null)?.dispose();
      }
    });
    const out: tf.NamedTensorMap = {};
    ys.forEach((y, i) => (out[`v${i}`] = y));
    if (!w) return out;
    const total = () => tf.addN(ys.map((y, i) => tf.mul(y, w[i]))) as tf.Scalar;
    const upstream = () =>
      head ? headUpstream(head, E!, w) : joint ? jointUpstream(joint, Es!, w) : tf.tidy(() => tf.addN(dz!.map((g, i) => (g ?? tf.zerosLike(z)).mul(w[i]))));
    const gs = tape && headWeights === 'unit'
      ? unitHeadGrads(tape, z, upstream, ys, trainable)
      : tape
      ? tape.grads(total(), trainable)
      : (() => {
          const r = variableGrads(() => tf.addN(names.map((n, i) => tf.mul(scalarOf(rep.heads(rep.trunk()), n), w[i]))) as tf.Scalar, trainable);
          return trainable.map((v) => r.grads[v.name] ?? null);
        })();
    gs.forEach((g, k) => {
      if (g) out[`g:${k}`] = g;
    });
    return out;
  };
  const flat = tapeWorks() ? withTape((tape) => body(tape)) : body(null);
  return { ...unflattenRepresentation(flat, names, trainable), layerwise: usedHeads };
}

let layerwiseOn = true;
/**
 * The layer-wise exact reading (src/train/layerwise.ts) is used from this many terms on. Below it
 * the per-term passes were as fast or faster: bench/auto.ts's multi-output net (T = 3, batch 32),
 * 2,000 steps of db-mtl, 2.71 / 2.47 s layer-wise against 2.51 / 2.26 s per term, mgda 2.57 / 2.54
 * against 2.40 / 2.38 s (two rounds, 2026-12-06 05:25 UTC); from T = 16 up layer-wise took 0.6–0.9×
 * the time (docs/benchmarks.md, "Many terms").
 */
export const LAYERWISE_MIN_TERMS = 8;
let layerwiseMin = LAYERWISE_MIN_TERMS;
/**
 * For benchmarks and tests (not exported by the package): turn off (false) or on (true, the default)
 * the layer-wise Gram readings (exact mode: src/train/layerwise.ts; representation mode:
 * src/train/head-gram.ts), so that bench/many-terms.ts can measure them beside the per-term
 * gradients in one run; `minTerms` sets the exact reading's threshold (tests pass 1 to run it on
 * a few terms; default {@link LAYERWISE_MIN_TERMS}).
 */
export function setLayerwise(on: boolean, minTerms = LAYERWISE_MIN_TERMS): void {
  layerwiseOn = on;
  layerwiseMin = minTerms;
}
/** Whether the layer-wise readings are on (see {@link setLayerwise}). */
export function layerwiseEnabled(): boolean {
  return layerwiseOn;
}
/** The fewest terms for which a trainer takes the layer-wise exact reading (see {@link LAYERWISE_MIN_TERMS}). */
export function layerwiseMinTerms(): number {
  return layerwiseMin;
}

let plainMatMulOn = true;
/**
 * For benchmarks and tests (not exported by the package): turn off (false) or on (true, the default)
 * the rewrite of transposed matrix products in backward passes on wasm (see `withPlainMatMul`), so
 * that bench/grad-read.ts can measure tfjs's own MatMul gradient beside it in one run.
 */
export function setPlainMatMul(on: boolean): void {
  plainMatMulOn = on;
}

function unflattenRepresentation(flat: tf.NamedTensorMap, names: readonly string[], trainable: readonly tf.Variable[]): { values: tf.Scalar[]; grads: tf.NamedTensorMap } {
  const values = names.map((_, i) => flat[`v${i}`] as tf.Scalar);
  const grads: tf.NamedTensorMap = {};
  trainable.forEach((v, k) => {
    const g = flat[`g:${k}`];
    if (g) grads[v.name] = g;
  });
  return { values, grads };
}

/**
 * Representation mode for strategies whose heads take unit gradients: the trunk gets the
 * vector-Jacobian product of z with `Σ w_i ∂L_i/∂z`, the variables beyond z (the heads) the
 * gradient of the unweighted `Σ L_i`. Both from the one recorded forward.
 */
function unitHeadGrads(
  tape: Tape,
  z: tf.Tensor,
  upstreamOf: () => tf.Tensor,
  ys: readonly tf.Scalar[],
  trainable: readonly tf.Variable[],
): (tf.Tensor | null)[] {
  const upstream = tape.unrecorded(upstreamOf);
  const trunk = tape.grads(z, trainable, upstream);
  const headVars = trainable.filter((_, k) => trunk[k] === null);
  const heads = headVars.length ? tape.grads(tf.addN([...ys]), headVars) : [];
  let h = 0;
  return trunk.map((g) => g ?? heads[h++] ?? null);
}

/** Fallback without a shared tape: ∂L_i/∂z by one `tf.grad` of the heads per term (z held fixed). */
function headGradsByRecomputation(rep: Representation, names: readonly string[], z: tf.Tensor): (tf.Tensor | null)[] {
  return names.map((n) => tf.grad((zz: tf.Tensor) => scalarOf(rep.heads(zz), n))(z));
}

/** `z` checked to be one float32 tensor; errors name the option. */
export function checkRepresentation(z: unknown): tf.Tensor {
  if (!(z instanceof tf.Tensor)) {
    throw new BalancerError(`option "represent": trunk() must return one tensor (the shared representation z); got ${Array.isArray(z) ? 'an array' : typeof z}`);
  }
  if (z.dtype !== 'float32') throw new BalancerError(`option "represent": trunk() returned a ${z.dtype} tensor; z must be float32`);
  return z;
}
