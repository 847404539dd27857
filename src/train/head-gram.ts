/**
 * Representation mode's Gram matrix from the heads' first dense layers (issue 27), in the manner of
 * torchjd's autogram (a layer's Gramian from its input and its output gradients, never the full
 * per-term gradients).
 *
 * When every term reads z (B×d) only through its own matrix products u_n = z W_n (W_n: d×k_n, not
 * computed from z), the per-term gradient over z is ∂L_i/∂z = Σ_{n of term i} E_n W_nᵀ with
 * E_n = ∂L_i/∂u_n (B×k_n), and
 *
 *   G_ij = ⟨∂L_i/∂z, ∂L_j/∂z⟩ = Σ_{n of i, m of j} Σ_{a,b} (E_nᵀ E_m)_ab (W_nᵀ W_m)_ab,
 *
 * i.e. with E = [E_1 … E_K] (B×K) and W = [W_1 … W_K] (d×K): G = Sᵀ ((EᵀE) ⊙ (WᵀW)) S, S the K×T
 * indicator of the term of each column. That costs K²(B + d) instead of T²·B·d for M Mᵀ (K = T for
 * linear heads with one output: 64²·384 against 64²·32768 multiply-adds on the benchmark model).
 * Since each u_n leads to one term only, ∂(Σ_i L_i)/∂u_n = ∂L_{i(n)}/∂u_n: every E_n comes from ONE
 * backward pass of Σ_i L_i through the heads, instead of T passes.
 *
 * The structure is read off the recorded tape (src/train/subtape.ts): the nodes that consume z and
 * lead to a term must all be `BatchMatMul` nodes with z as the untransposed left operand and a right
 * operand not computed from z, each leading to exactly one term. Transpose flags are not stored on
 * tfjs's tape nodes; {@link withMatMulAttrs} notes them while the forward is recorded.
 */
import * as tf from '@tensorflow/tfjs';
import { bitsOf, labelTape, type TapeNode } from './subtape.js';

/** The heads' first dense layers found on the tape: u_n = z W_n, term of each n. */
export interface HeadDense {
  us: tf.Tensor2D[];
  ws: tf.Tensor2D[];
  /** Index of the term each u_n leads to. */
  termOf: number[];
  /** Σ k_n: the columns of E and W. */
  K: number;
}

/** `tf.fused.matMul`'s tape node: a custom-gradient op, named after the op, over [1, B, in] and [1, in, out] views. */
export const FUSED_MATMUL = 'fusedMatMul__op';

/**
 * Whether `node` is a 2-D product y = a W, W its second input, without transpose flags: a
 * `tf.matMul` (BatchMatMul) of 2-D a and W, or a `tf.fused.matMul` with a linear activation and no
 * PReLU over [1, B, in] and [1, in, out] views. The flags are those {@link withMatMulAttrs} noted; a
 * node without them is not one.
 */
export function plainProduct(node: TapeNode): boolean {
  const at = node.attrs;
  if (!at || at.transposeA || at.transposeB) return false;
  if (node.kernelName === 'BatchMatMul') return node.inputs.a?.rank === 2 && node.inputs.b?.rank === 2;
  const view = (t: tf.Tensor | undefined) => t?.rank === 3 && t.shape[0] === 1;
  return node.kernelName === FUSED_MATMUL && at.activation === 'linear' && !at.prelu && view(node.inputs['0']) && view(node.inputs['1']);
}

/**
 * The W (in × out) the engine kept for a product node's gradient: for a fused product a new 2-D view
 * of its [1, in, out] copy (the caller disposes it), else the copy itself.
 */
export function keptKernel(node: TapeNode): tf.Tensor2D {
  const w = node.saved![1];
  return (node.kernelName === FUSED_MATMUL ? tf.reshape(w, [w.shape[1], w.shape[2]] as [number, number]) : w) as tf.Tensor2D;
}

/** Whether `node` reshapes `t` to [1, …t.shape]: how `tf.fused.matMul` reads a 2-D operand. */
export function isBatchView(node: TapeNode, t: tf.Tensor): boolean {
  const y = node.outputs[0];
  return node.kernelName === 'Reshape' && node.inputs.x?.id === t.id && node.outputs.length === 1 && !!y && y.rank === t.rank + 1 && y.shape[0] === 1 && t.shape.every((n, i) => y.shape[i + 1] === n);
}

/**
 * Run `f` (a forward pass being recorded) with the tape's `BatchMatMul` nodes noting their transpose
 * flags (`node.attrs`), which tfjs keeps only inside the node's gradient closure. The engine's
 * `addTapeNode` is wrapped on the engine instance for the duration of `f` only and restored after, on
 * every path.
 */
export function withMatMulAttrs<R>(f: () => R): R {
  type Add = (kernelName: string, inputs: unknown, outputs: unknown, grad: unknown, saved: unknown, attrs: Record<string, unknown>) => void;
  type Run = (kernelName: string, inputs: Record<string, tf.Tensor | undefined>, attrs?: Record<string, unknown>) => tf.Tensor | tf.Tensor[];
  const e = tf.engine() as unknown as { addTapeNode?: Add; runKernel?: Run; state: { activeTape: TapeNode[] | null } };
  const original = e.addTapeNode;
  const run = e.runKernel;
  if (typeof original !== 'function' || typeof run !== 'function') return f();
  const own = Object.prototype.hasOwnProperty.call(e, 'addTapeNode');
  const ownRun = Object.prototype.hasOwnProperty.call(e, 'runKernel');
  // tf.fused.matMul's flags, by its kernel output's data (its tape node, a custom-gradient op's, has none)
  const fused = new WeakMap<object, Record<string, unknown>>();
  e.runKernel = function (kernelName, inputs, attrs) {
    const out = run.call(e, kernelName, inputs, attrs);
    if (kernelName === '_FusedMatMul' && !Array.isArray(out)) {
      fused.set(out.dataId, { transposeA: !!attrs?.transposeA, transposeB: !!attrs?.transposeB, activation: attrs?.activation, bias: !!inputs.bias, prelu: !!inputs.preluActivationWeights });
    }
    return out;
  };
  e.addTapeNode = function (kernelName, inputs, outputs, grad, saved, attrs) {
    original.call(e, kernelName, inputs, outputs, grad, saved, attrs);
    const tape = e.state.activeTape;
    if (kernelName === 'BatchMatMul' && tape?.length) {
      tape[tape.length - 1].attrs = { transposeA: !!attrs?.transposeA, transposeB: !!attrs?.transposeB };
    }
    const y = Array.isArray(outputs) ? (outputs[0] as tf.Tensor | undefined) : undefined;
    if (kernelName === FUSED_MATMUL && tape?.length && y && fused.has(y.dataId)) tape[tape.length - 1].attrs = fused.get(y.dataId);
  };
  try {
    return f();
  } finally {
    if (own) e.addTapeNode = original;
    else delete e.addTapeNode;
    if (ownRun) e.runKernel = run;
    else delete e.runKernel;
  }
}

/**
 * The heads' first dense layers of `tape` (see the file comment), or null when the terms read z in
 * any other way, or when the layer-wise Gram would not be cheaper than M Mᵀ (K²(B + d) ≥ T²·B·d).
 */
export function headDenseLayers(tape: unknown, z: tf.Tensor, ys: readonly tf.Tensor[], labels = labelTape(tape, ys)): HeadDense | null {
  if (z.rank !== 2 || !Array.isArray(tape) || !labels) return null;
  const nodes = tape as TapeNode[];
  const down = new Set<number>([z.id]);
  const out: HeadDense = { us: [], ws: [], termOf: [], K: 0 };
  // z viewed as [1, B, d] for tf.fused.matMul (a tfjs-layers Dense head): view id → its term, until
  // the fused product that reads it is found
  const views = new Map<number, number>();
  for (let k = 0; k < nodes.length; k++) {
    const node = nodes[k];
    const inputs = Object.values(node.inputs).filter(Boolean);
    if (!inputs.some((t) => down.has(t.id))) continue;
    for (const o of node.outputs) if (o) down.add(o.id);
    if (!labels.nodes[k]) continue;
    const viewRead = inputs.filter((t) => views.has(t.id));
    if (!viewRead.length && !inputs.some((t) => t.id === z.id)) continue;
    const terms = bitsOf(labels.nodes[k]);
    if (terms.length !== 1) return null;
    if (!viewRead.length && isBatchView(node, z)) {
      views.set(node.outputs[0].id, terms[0]);
      continue;
    }
    // a node that reads z (or its view) and leads to a term: it must be u = z W, W not computed from
    // z (a fused product's bias, if any, does not change ∂u/∂z)
    const [a, b] = node.kernelName === FUSED_MATMUL ? [node.inputs['0'], node.inputs['1']] : [node.inputs.a, node.inputs.b];
    const fromView = viewRead.length === 1 && a?.id === viewRead[0].id && views.get(a.id) === terms[0];
    if (!plainProduct(node) || !a || !b || !(fromView || (!viewRead.length && a.id === z.id)) || down.has(b.id) || node.outputs.length !== 1 || (node.saved?.length ?? 0) < 2) return null;
    if (fromView) views.delete(a.id);
    const w = keptKernel(node); // the engine's kept copy: a head layer's own W may be disposed by now
    out.us.push(node.outputs[0] as tf.Tensor2D);
    out.ws.push(w);
    out.termOf.push(terms[0]);
    out.K += w.shape[1];
  }
  if (!out.us.length || views.size) return null;
  const [B, d] = z.shape;
  const T = ys.length;
  return out.K * out.K * (B + d) < T * T * B * d ? out : null;
}

/**
 * One head layer for all terms (a `[d, K]` head variable, or a tfjs-layers Dense with K units, whose
 * output columns the terms are computed from): u = z W is the only operation that reads z, and it
 * leads to two or more terms. Then ∂L_i/∂z = E_i Wᵀ with E_i = ∂L_i/∂u (B×K), each from a backward
 * pass through the operations after u only, and G_ij = Σ_b E_i[b] (WᵀW) E_j[b]ᵀ: T·B·K² + T²·B·K
 * multiply-adds instead of T²·B·d. Null when z is read otherwise or that is not cheaper.
 */
export interface JointHead {
  u: tf.Tensor2D;
  /** W (d×K), the engine's kept copy (a 2-D view for a fused product). */
  w: tf.Tensor2D;
}

export function jointHeadLayer(tape: unknown, z: tf.Tensor, ys: readonly tf.Tensor[], labels = labelTape(tape, ys)): JointHead | null {
  if (z.rank !== 2 || !Array.isArray(tape) || !labels) return null;
  const nodes = tape as TapeNode[];
  let view: number | null = null;
  let found: JointHead | null = null;
  for (let k = 0; k < nodes.length; k++) {
    const node = nodes[k];
    const inputs = Object.values(node.inputs).filter(Boolean);
    const readsZ = inputs.some((t) => t.id === z.id);
    const readsView = view !== null && inputs.some((t) => t.id === view);
    if ((!readsZ && !readsView) || !bitsOf(labels.nodes[k]).length) continue;
    if (found) return null; // a second reader of z
    if (readsZ && view === null && isBatchView(node, z)) {
      view = node.outputs[0].id;
      continue;
    }
    const a = node.kernelName === FUSED_MATMUL ? node.inputs['0'] : node.inputs.a;
    if (!plainProduct(node) || a?.id !== (readsView ? view : z.id) || (node.saved?.length ?? 0) < 2) return null;
    if (bitsOf(labels.nodes[k]).length < 2 || node.outputs.length !== 1) return null;
    found = { u: node.outputs[0] as tf.Tensor2D, w: keptKernel(node) };
  }
  if (!found) return null;
  const [B, d] = z.shape;
  const K = found.w.shape[1];
  const T = ys.length;
  return B * K * (K + T) < T * B * d ? found : null;
}

/** `[E_1 … E_T]` stacked (T × B × K) from the per-term gradients over u (null: zeros). */
export function stackE(j: JointHead, E: readonly (tf.Tensor | null)[]): tf.Tensor3D {
  return tf.stack(E.map((e) => e ?? tf.zeros(j.u.shape, j.u.dtype))) as tf.Tensor3D;
}

/** `G_ij = Σ_b E_i[b] (WᵀW) E_j[b]ᵀ` (T×T); call inside a `tf.tidy`. */
export function jointGram(j: JointHead, Es: tf.Tensor3D): tf.Tensor2D {
  const [T, B, K] = Es.shape;
  const F = tf.matMul(tf.reshape(Es, [T * B, K]) as tf.Tensor2D, tf.matMul(tf.transpose(j.w), j.w));
  const rows = tf.reshape(Es, [T, B * K]) as tf.Tensor2D;
  return tf.matMul(rows, tf.transpose(tf.reshape(F, [T, B * K]))) as tf.Tensor2D;
}

/** The T × (B·d) per-term gradients over z, rows E_t Wᵀ. */
export function jointRows(j: JointHead, Es: tf.Tensor3D): tf.Tensor2D {
  return tf.tidy(() => {
    const [T, B, K] = Es.shape;
    return tf.reshape(tf.matMul(tf.reshape(Es, [T * B, K]) as tf.Tensor2D, tf.transpose(j.w)), [T, -1]) as tf.Tensor2D;
  });
}

/** `Σ_t w_t ∂L_t/∂z = (Σ_t w_t E_t) Wᵀ` (B×d). */
export function jointUpstream(j: JointHead, Es: tf.Tensor3D, w: readonly number[]): tf.Tensor2D {
  return tf.tidy(() => {
    const [T, B, K] = Es.shape;
    const Ew = tf.reshape(tf.matMul(tf.tensor2d(w as number[], [1, T]), tf.reshape(Es, [T, B * K]) as tf.Tensor2D), [B, K]) as tf.Tensor2D;
    return tf.matMul(Ew, tf.transpose(j.w)) as tf.Tensor2D;
  });
}

/** The K×T indicator S (column k of E and W belongs to term S's column), or null when it is the identity. */
function indicator(h: HeadDense, T: number): tf.Tensor2D | null {
  const cols = h.ws.flatMap((w, n) => new Array<number>(w.shape[1]).fill(h.termOf[n]));
  if (cols.length === T && cols.every((c, k) => c === k)) return null;
  // built on the CPU side: tf.oneHot's float32 output is zeros on tfjs-backend-wasm 4.22
  const S = new Float32Array(cols.length * T);
  cols.forEach((c, k) => (S[k * T + c] = 1));
  return tf.tensor2d(S, [cols.length, T]);
}

/** `[E_1 … E_K]` (B×K) from the gradients over each u_n (null: zeros). */
function concatE(h: HeadDense, E: readonly (tf.Tensor | null)[]): tf.Tensor2D {
  // zeros by shape: u itself may be disposed (a tf.layers head disposes its intermediate outputs)
  const parts = h.us.map((u, n) => (E[n] ?? tf.zeros(u.shape, u.dtype)) as tf.Tensor2D);
  return parts.length === 1 ? parts[0] : tf.concat(parts, 1);
}

/** `G = Sᵀ ((EᵀE) ⊙ (WᵀW)) S` (T×T); call inside a `tf.tidy`. */
export function headGram(h: HeadDense, E: readonly (tf.Tensor | null)[], T: number): tf.Tensor2D {
  const Ec = concatE(h, E);
  const Wc = h.ws.length === 1 ? h.ws[0] : tf.concat(h.ws, 1);
  // explicit transposes: a transposed operand is the slow kernel on wasm (see gram-product.ts)
  const H = tf.mul(tf.matMul(tf.transpose(Ec), Ec), tf.matMul(tf.transpose(Wc), Wc)) as tf.Tensor2D;
  const S = indicator(h, T);
  return S ? tf.matMul(tf.transpose(S), tf.matMul(H, S)) : H;
}

/** The T × (B·d) matrix of per-term gradients over z, rows `Σ_{n of i} E_n W_nᵀ` (zeros for a term without a head layer). */
export function headRows(h: HeadDense, E: readonly (tf.Tensor | null)[], z: tf.Tensor, T: number): tf.Tensor2D {
  return tf.tidy(() => {
    const rows: (tf.Tensor | null)[] = new Array(T).fill(null);
    h.us.forEach((u, n) => {
      const g = tf.matMul((E[n] ?? tf.zeros(u.shape, u.dtype)) as tf.Tensor2D, tf.transpose(h.ws[n])); // by shape: u may be disposed
      const i = h.termOf[n];
      rows[i] = rows[i] ? tf.add(rows[i]!, g) : g;
    });
    return tf.stack(rows.map((r) => (r ?? tf.zeros(z.shape, z.dtype)).reshape([-1]))) as tf.Tensor2D;
  });
}

/** `Σ_i w_i ∂L_i/∂z = (E ⊙ w_cols) Wᵀ` (B×d): the trunk's upstream gradient for weights `w`. */
export function headUpstream(h: HeadDense, E: readonly (tf.Tensor | null)[], w: readonly number[]): tf.Tensor2D {
  return tf.tidy(() => {
    const cols = h.ws.flatMap((ww, n) => new Array<number>(ww.shape[1]).fill(w[h.termOf[n]]));
    const Wc = h.ws.length === 1 ? h.ws[0] : tf.concat(h.ws, 1);
    return tf.matMul(tf.mul(concatE(h, E), tf.tensor2d(cols, [1, cols.length])), tf.transpose(Wc)) as tf.Tensor2D;
  });
}
