/**
 * Exact mode's Gram matrix layer by layer (issue 27), in the manner of torchjd's autogram: the Gram
 * matrix over the shared parameters from each dense layer's input and its per-term output gradients,
 * without the T per-term parameter gradients (the T×P matrix) and without T backward passes.
 *
 * For a dense layer y = a W (+ b), a: B×in, with per-term output gradients D_i = ∂L_i/∂y (B×out), the
 * per-term weight gradient is aᵀ D_i and the bias gradient 1ᵀ D_i, so
 *
 *   ⟨aᵀD_i, aᵀD_j⟩ = tr(D_iᵀ a aᵀ D_j) = Σ_{p,q} (a aᵀ)_pq (D_i D_jᵀ)_pq,     ⟨1ᵀD_i, 1ᵀD_j⟩.
 *
 * With K = a aᵀ (B×B) that costs T·B²·out + T²·B·out multiply-adds against T·B·in·out + T²·in·out
 * for the per-term gradients and their Gram product: the K form is taken when B < in, the per-term
 * weight gradients (made in one product aᵀ[D_1 … D_T]) otherwise. A bias fed by the layer's output
 * is a kernel row whose input is 1: it joins the layer's Gram matrix as a column of ones in a.
 *
 * The D_i come from the recorded forward pass without T backward passes:
 * 1. The tape's nodes are labelled with the terms they lead to (src/train/subtape.ts). A node leading
 *    to one term is a head node, to two or more a shared node.
 * 2. Every head node's output leads to one term, so ∂(Σ_i L_i)/∂u = ∂L_{i(u)}/∂u: ONE backward pass of
 *    Σ_i L_i gives the gradient at the output of every head node that reads a shared tensor, and every
 *    head variable's own gradient.
 * 3. Each such head node's own vector-Jacobian product (its tape gradient, with its saved tensors)
 *    gives the term's gradient over the shared tensor it reads.
 * 4. One backward pass through the shared nodes carries all T gradients at once, stacked on a leading
 *    axis (T×B×width): a dense layer's input gradient is one product of (T·B)×out by Wᵀ, an
 *    activation's is its tape gradient (which broadcasts over the leading axis).
 *
 * It applies when the shared part is made of the operations in {@link SUPPORTED}: `tf.matMul(a, W)`
 * with W a shared variable (2-D, no transpose flag), `tf.add`/`tf.sub` of equal shapes or of a shared
 * bias variable broadcast over the leading axes, and `relu`, `tanh`, `sigmoid`; every shared variable
 * is read by one such node; and each term's loss leads only to itself. Otherwise {@link planLayerwise}
 * returns null and the caller reads per-term gradients as before.
 */
import * as tf from '@tensorflow/tfjs';
import { gramProduct, transposeInner, transposeRows } from './gram-product.js';
import { FUSED_MATMUL, isBatchView, keptKernel, plainProduct } from './head-gram.js';
import { bitsOf, labelTape, type TapeNode } from './subtape.js';

/** Kernels the shared part may contain (see the file comment). */
const UNARY = new Set(['Relu', 'Tanh', 'Sigmoid']);
export const SUPPORTED: readonly string[] = ['BatchMatMul', 'Add', 'Sub', ...UNARY];


interface Node extends TapeNode {
  gradient?: (dys: tf.Tensor[]) => Record<string, () => tf.Tensor>;
}

/** What {@link planLayerwise} found on the tape. */
export interface LayerwisePlan {
  /** Shared nodes on the path from the shared variables, in reverse tape order. */
  shared: Node[];
  /** Head nodes that read a shared tensor: the node, the input's name, the term. */
  frontier: { node: Node; input: string; term: number }[];
  /** Variables one term reaches, with that term. */
  headVars: { v: tf.Variable; term: number }[];
  /** Variables two or more terms reach (each a dense kernel or a bias). */
  sharedVars: tf.Variable[];
  /** Ids of the tensors that carry gradient to a shared variable: the shared nodes' outputs and the variables. */
  carries: Set<number>;
  /** Terms no trainable variable leads to (an error for the caller, as in the per-term path). */
  unreached: number[];
  /**
   * The tail's input: the one shared tensor, made by a supported node, that the tail reads (or null
   * without a tail). The tail is the shared nodes after the supported ones (a loss computed from a
   * shared output by other operations: squares, means, `tf.unstack` into the terms, …), without
   * variables. The per-term gradients at its input come from T backward passes through it (and the
   * head nodes after it), which are cheap: it holds no dense layer.
   */
  boundary: tf.Tensor | null;
  /**
   * Views of shared variables: the output of a `Reshape` of a shared kernel W to [1, …W.shape] (how
   * `tf.fused.matMul`, used by a tfjs-layers `Dense` whose activation is fused or linear, reads W),
   * by tensor id.
   */
  alias: Map<number, tf.Variable>;
}

const popcount = (l: Uint32Array | null | undefined) => bitsOf(l).length;

/**
 * The layer-wise plan for the tape recorded so far, or null when the model is not of the supported
 * form (then read per-term gradients). `ys`: the terms' losses; `vars`: the trainable variables.
 */
export function planLayerwise(tape: unknown, ys: readonly tf.Tensor[], vars: readonly tf.Variable[]): LayerwisePlan | null {
  if (ys.length < 2 || !Array.isArray(tape)) return null;
  const labels = labelTape(tape, ys);
  if (!labels) return null;
  // each loss leads only to itself (a loss computed from another is not a head's output)
  if (ys.some((y) => popcount(labels.tensors.get(y.id)) !== 1)) return null;
  const nodes = tape as Node[];
  const reach = new Map(vars.map((v) => [v.id, bitsOf(labels.tensors.get(v.id))]));
  const sharedVars = vars.filter((v) => reach.get(v.id)!.length >= 2);
  if (!sharedVars.length) return null;
  const sharedIds = new Set(sharedVars.map((v) => v.id));
  const headVars = vars.filter((v) => reach.get(v.id)!.length === 1).map((v) => ({ v, term: reach.get(v.id)![0] }));
  // tensors computed from a shared variable, and which node made each
  const down = new Set<number>(sharedIds);
  const producer = new Map<number, number>();
  const readers = new Map<number, number>(); // shared variable id → nodes reading it
  const shared: Node[] = [];
  let frontier: LayerwisePlan['frontier'] = [];
  const tailOut = new Set<number>(); // outputs of tail nodes
  const boundaries = new Map<number, tf.Tensor>(); // supported shared tensors the tail reads
  const readBySupported = new Set<number>();
  const alias = new Map<number, tf.Variable>();
  for (let k = 0; k < nodes.length; k++) {
    const node = nodes[k];
    const entries = Object.entries(node.inputs).filter(([, t]) => !!t);
    const onPath = entries.filter(([, t]) => down.has(t.id));
    if (!onPath.length) continue;
    for (const o of node.outputs) if (o) down.add(o.id);
    const terms = bitsOf(labels.nodes[k]);
    if (terms.length === 0) continue; // leads to no loss (tfjs also records a node per op's input, which leads nowhere)
    for (const [, t] of entries) if (sharedIds.has(t.id)) readers.set(t.id, (readers.get(t.id) ?? 0) + 1);
    const x = node.inputs.x;
    if (terms.length >= 2 && x && sharedIds.has(x.id) && isBatchView(node, x)) {
      alias.set(node.outputs[0].id, x as tf.Variable); // a kernel as tf.fused.matMul reads it
      continue;
    }
    if (terms.length >= 2 && (onPath.some(([, t]) => tailOut.has(t.id)) || !supported(node, down, sharedIds, alias))) {
      // the tail (see LayerwisePlan.boundary): no variable in it, nor a view of one
      if (onPath.some(([, t]) => sharedIds.has(t.id) || alias.has(t.id))) return null;
      for (const [, t] of onPath) if (!tailOut.has(t.id)) boundaries.set(t.id, t);
      for (const o of node.outputs) if (o) tailOut.add(o.id);
      continue;
    }
    if (node.outputs.length !== 1) return null;
    if (terms.length === 1) {
      // a head node: it may read shared tensors made by shared nodes, not shared variables
      for (const [name, t] of onPath) {
        if (sharedIds.has(t.id)) return null;
        const p = producer.get(t.id);
        if (p !== undefined && popcount(labels.nodes[p]) >= 2) frontier.push({ node, input: name, term: terms[0] });
      }
      producer.set(node.outputs[0].id, k);
      continue;
    }
    producer.set(node.outputs[0].id, k);
    for (const [, t] of onPath) readBySupported.add(t.id);
    shared.push(node);
  }
  if (sharedVars.some((v) => readers.get(v.id) !== 1)) return null;
  // one tail input, read by no supported node: the per-term gradients there (total derivatives, over
  // every path from it) then add to no other path of the batched pass
  if (boundaries.size > 1) return null;
  const boundary = boundaries.size ? [...boundaries.values()][0] : null;
  if (boundary && readBySupported.has(boundary.id)) return null;
  // head nodes after the tail or reading its input: their paths are in the per-term passes
  if (boundary) frontier = frontier.filter((f) => { const t = f.node.inputs[f.input]; return !tailOut.has(t.id) && t.id !== boundary.id; });
  if ((!frontier.length && !boundary) || frontier.some((f) => !f.node.gradient)) return null;
  const carries = new Set<number>([...sharedIds, ...shared.map((n) => n.outputs[0].id)]);
  const reached = new Set([...reach.values()].flat());
  const unreached = ys.map((_, i) => i).filter((i) => !reached.has(i));
  // a view of a shared kernel read by anything but a fused dense product
  for (const node of shared) for (const [name, t] of Object.entries(node.inputs)) if (t && alias.has(t.id) && !(node.kernelName === FUSED_MATMUL && name === '1')) return null;
  return { shared: shared.reverse(), frontier, headVars, sharedVars, carries, unreached, boundary, alias };
}


/** Whether the batched backward pass handles `node` (see the file comment). */
function supported(node: Node, down: Set<number>, sharedIds: Set<number>, alias: Map<number, tf.Variable>): boolean {
  const out = node.outputs[0];
  const { a, b, x } = node.inputs;
  switch (node.kernelName) {
    case FUSED_MATMUL: {
      const [a3, b3, bias] = [node.inputs['0'], node.inputs['1'], node.inputs['2']];
      if (!plainProduct(node) || !!node.attrs!.bias !== !!bias) return false;
      // with a bias: a shared [out] variable (tfjs-layers passes the layer's own)
      if (bias && (!sharedIds.has(bias.id) || bias.rank !== 1 || bias.shape[0] !== out.shape[1])) return false;
      if (Object.keys(node.inputs).length !== (bias ? 3 : 2) || node.saved?.length !== (bias ? 4 : 3)) return false;
      if (!alias.has(b3.id) || out.rank !== 2) return false;
      return !sharedIds.has(a3.id) && !alias.has(a3.id);
    }
    case 'Reshape':
      // a reshape of a tensor on the path (its gradient: the stacked gradients reshaped back)
      return !!x && down.has(x.id) && !sharedIds.has(x.id) && !alias.has(x.id);
    case 'BatchMatMul':
      if (!plainProduct(node)) return false;
      if (node.saved?.length !== 2) return false; // a and b as the engine kept them
      if (down.has(b.id) && !sharedIds.has(b.id)) return false; // W computed from a shared variable
      return !sharedIds.has(a.id);
    case 'Add':
    case 'Sub':
      for (const t of [a, b]) {
        if (!t || !down.has(t.id) || sameShape(t.shape, out.shape)) continue;
        // a shared bias broadcast over the leading axes (only for Add)
        if (node.kernelName !== 'Add' || !sharedIds.has(t.id) || !trailing(t.shape, out.shape)) return false;
      }
      return true;
    default:
      return UNARY.has(node.kernelName ?? '') && !!x && node.saved?.length === 1 && !sharedIds.has(x.id);
  }
}

const sameShape = (p: readonly number[], q: readonly number[]) => p.length === q.length && p.every((d, i) => d === q[i]);
const trailing = (p: readonly number[], q: readonly number[]) => p.length > 0 && p.length < q.length && sameShape(p, q.slice(q.length - p.length));

/**
 * A dense layer's input a (B×in), its per-term output gradients laid out batch-first as
 * `cat` = B × (out·T) (column o·T + t holds D_t[·, o]: one transpose of the stacked T×B×out, made
 * once; the products below take it as their left operand or as their small side, which on wasm
 * avoids re-packing a large right operand), and the bias its output feeds, if any; or a bias
 * elsewhere, with its per-term gradients R (T×size).
 */
export type LayerParts =
  | { kind: 'dense'; v: tf.Variable; a: tf.Tensor2D; cat: tf.Tensor2D; bias: tf.Variable | null }
  | {
      /**
       * A dense layer read in the per-term-gradient form (B ≥ in'): its per-term gradients as columns,
       * C = (out·in') × T, row o·in' + i holding ∂L_t/∂W[i, o] for i < in and ∂L_t/∂b[o] for i = in
       * (when the layer has a bias). No `cat`: the combination is C·w.
       */
      kind: 'grads';
      v: tf.Variable;
      C: tf.Tensor2D;
      /** in' = the kernel's rows, plus one for the bias. */
      inputs: number;
      bias: tf.Variable | null;
    }
  | { kind: 'bias'; v: tf.Variable; R: tf.Tensor2D };

/** The tensors a part holds (what the caller keeps until the combination, then disposes). */
export function partTensors(p: LayerParts): tf.Tensor[] {
  return p.kind === 'dense' ? [p.a, p.cat] : p.kind === 'grads' ? [p.C] : [p.R];
}

/**
 * The input a layer's Gram matrix reads: a (for the kernel), a column of ones (for the bias, whose
 * gradient is the kernel's with input 1), or both side by side. Null when neither is wanted.
 */
function inputOf(a: tf.Tensor2D, kernel: boolean, bias: boolean): tf.Tensor2D | null {
  const ones = () => tf.ones([a.shape[0], 1]) as tf.Tensor2D;
  if (kernel && bias) return tf.tidy(() => tf.concat([a, ones()], 1));
  return kernel ? a : bias ? ones() : null;
}

/**
 * A dense layer's (kernel and/or bias) Gram matrix from its input a' (B×in'), the stacked D (T×B×out)
 * and `cat`: with K = a' a'ᵀ, G_ij = Σ_pq K_pq (D_i D_jᵀ)_pq when B < in' (K·cat, then one product
 * with D), else the per-term gradients a'ᵀ D_t from one product a'ᵀ·cat and their Gram product.
 */
function denseGram(a: tf.Tensor2D, D: tf.Tensor, cat: tf.Tensor2D, T: number): tf.Tensor2D {
  return tf.tidy(() => {
    const [B, inn] = a.shape;
    const out = cat.shape[1] / T;
    if (B < inn) {
      const K = tf.matMul(a, tf.transpose(a));
      const KS = tf.reshape(tf.matMul(K, cat), [B * out, T]) as tf.Tensor2D;
      const G = tf.matMul(tf.reshape(D, [T, B * out]) as tf.Tensor2D, KS);
      return tf.mul(tf.add(G, tf.transpose(G)), 0.5) as tf.Tensor2D;
    }
    const X = denseColumns(a, cat, T);
    return tf.matMul(tf.transpose(X), X) as tf.Tensor2D;
  });
}

/** The per-term gradients a'ᵀ D_t as columns, (in'·out) × T, from one product a'ᵀ·cat. */
function denseColumns(a: tf.Tensor2D, cat: tf.Tensor2D, T: number): tf.Tensor2D {
  return tf.reshape(tf.matMul(tf.transpose(a), cat), [a.shape[1] * (cat.shape[1] / T), T]) as tf.Tensor2D;
}

/**
 * Run the plan on the recorded tape (inside `withTape`): each dense layer's parts, each bias's
 * per-term gradients, each head variable's gradient (of its one term), and the Gram matrix over
 * `gramVars` (T×T). `gradsOf` is the tape's backward pass; `unrecorded` runs a function without
 * recording it.
 */
export function runLayerwise(
  plan: LayerwisePlan,
  ys: readonly tf.Scalar[],
  gradsOf: (y: tf.Tensor, xs: readonly tf.Tensor[]) => (tf.Tensor | null)[],
  gradsEach: (ys: readonly tf.Tensor[], xs: readonly tf.Tensor[]) => (tf.Tensor | null)[][],
  unrecorded: <R>(f: () => R) => R,
  gramVars: readonly tf.Variable[],
): { parts: LayerParts[]; head: (tf.Tensor | null)[]; gram: tf.Tensor2D } {
  const T = ys.length;
  const us = [...new Set(plan.frontier.map((f) => f.node.outputs[0]))];
  // 2. one backward pass of Σ L_i: every head node output's gradient (its term's), every head variable's
  const xs = [...us, ...plan.headVars.map((h) => h.v)];
  const got = xs.length ? gradsOf(tf.addN([...ys]), xs) : [];
  const E = new Map(us.map((u, n) => [u.id, got[n]]));
  const head = got.slice(us.length);
  // 2'. the tail's input: each term's gradient there, by T backward passes through the tail only
  const boundary = plan.boundary;
  const atBoundary = boundary ? gradsEach(ys, [boundary]).map((g) => g[0]) : [];
  return unrecorded(() => {
    const D = new Map<number, tf.Tensor>();
    const kept = new Set<tf.Tensor>();
    const release = (g: tf.Tensor) => {
      if (!kept.has(g) && ![...D.values()].includes(g)) g.dispose();
    };
    const addTo = (t: tf.Tensor, g: tf.Tensor) => {
      const old = D.get(t.id);
      D.set(t.id, old ? tf.add(old, g) : g);
      if (old) {
        release(old);
        release(g);
      }
    };
    // 3. each head node's vector-Jacobian product over the shared tensor it reads, stacked per term
    for (const [t, g] of tf.tidy(() => frontierGradients(plan, E, T))) addTo(t, g);
    if (boundary) {
      // by shape: the forward's own tensor may be disposed by now
      addTo(boundary, tf.tidy(() => tf.stack(atBoundary.map((g) => g ?? tf.zeros(boundary.shape, boundary.dtype)))));
      tf.dispose(atBoundary.filter((g): g is tf.Tensor => !!g));
    }
    // 4. one backward pass through the shared nodes with all T gradients stacked; each dense layer's
    // Gram matrix formed as soon as its output gradient is complete, so that only its `cat` stays
    // (for the combination), not the temporaries
    const gramIds = new Set(gramVars.map((v) => v.id));
    let gram: tf.Tensor2D | null = null;
    const addGram = (g: tf.Tensor2D) => {
      if (!gram) return void (gram = g);
      const sum: tf.Tensor2D = tf.add(gram, g);
      tf.dispose([gram, g]);
      gram = sum;
    };
    const parts: LayerParts[] = [];
    const biases: { v: tf.Variable; g: tf.Tensor; rank: number }[] = [];
    const isShared = (t: tf.Tensor | undefined) => !!t && plan.sharedVars.some((v) => v.id === t.id);
    for (const node of plan.shared) {
      const y = node.outputs[0];
      const Dy = D.get(y.id);
      if (!Dy) continue;
      D.delete(y.id);
      const { a, b, x } = node.inputs;
      if (node.kernelName === 'Reshape') {
        addTo(x, tf.reshape(Dy, [T, ...x.shape]));
      } else if (node.kernelName === 'BatchMatMul' || node.kernelName === FUSED_MATMUL) {
        const fused = node.kernelName === FUSED_MATMUL;
        const ain = fused ? node.inputs['0'] : a;
        const [B, out] = y.shape as [number, number];
        // the engine's kept copies of a and W: the forward's own may be disposed by now (a layer's tidy)
        const a0 = node.saved![0];
        const Wk = keptKernel(node);
        const W = fused ? plan.alias.get(node.inputs['1'].id)! : isShared(b) ? (b as tf.Variable) : null;
        if (W) {
          const A = (fused ? tf.reshape(a0, [B, a0.shape[2] as number]) : a0) as tf.Tensor2D;
          // the bias this layer's output feeds directly (or the fused product adds): its gradient is
          // the kernel's with input 1
          const fusedBias = fused ? (node.inputs['2'] as tf.Variable | undefined) : undefined;
          const q = fusedBias ? { v: fusedBias, g: Dy } : biases.find((c) => c.g === Dy && c.v.rank === 1 && c.v.size === out);
          if (q && !fusedBias) biases.splice(biases.indexOf(q as (typeof biases)[number]), 1);
          const inputs = A.shape[1] + (q ? 1 : 0);
          if (B >= inputs && gramIds.has(W.id) && (!q || gramIds.has(q.v.id))) {
            // the per-term gradients S_t = a'ᵀ D_t from one product with a' as the small right operand
            // (D laid out term by term as out × B rows): on wasm a new right operand is re-packed at
            // about 5 ns an element, so a'ᵀ·cat (cat 2·10⁶ elements at T = 64) cost more than the
            // transposition of D (docs/benchmarks.md, issue 27)
            const { C, G } = tf.tidy(() => {
              const full = inputOf(A, true, !!q)!;
              const R = tf.reshape(tf.matMul(transposeInner(Dy, T, B, out), full), [T, out * inputs]) as tf.Tensor2D;
              const C = transposeRows(R);
              return { C, G: tf.matMul(R, C) as tf.Tensor2D };
            });
            addGram(G);
            parts.push({ kind: 'grads', v: W, C, inputs, bias: q?.v ?? null });
            kept.add(C);
          } else {
            const cat = tf.tidy(() => tf.reshape(transposeRows(tf.reshape(Dy, [T, B * out]) as tf.Tensor2D), [B, out * T]) as tf.Tensor2D);
            const input = inputOf(A, gramIds.has(W.id), !!q && gramIds.has(q.v.id));
            if (input) {
              addGram(denseGram(input, Dy, cat, T));
              if (input !== A) input.dispose();
            }
            parts.push({ kind: 'dense', v: W, a: A, cat, bias: q?.v ?? null });
            kept.add(cat);
          }
          if (q) kept.delete(q.g);
        }
        // the input's gradient after the Gram matrix: the Gram's temporaries are gone by then (peak memory)
        if (ain && plan.carries.has(ain.id)) {
          addTo(ain, tf.tidy(() => tf.reshape(tf.matMul(tf.reshape(Dy, [T * B, out]) as tf.Tensor2D, tf.transpose(Wk)), [T, ...ain.shape])));
        }
        if (fused) Wk.dispose();
      } else if (node.kernelName === 'Add' || node.kernelName === 'Sub') {
        for (const [name, t] of [['a', a], ['b', b]] as const) {
          if (!t || !plan.carries.has(t.id)) continue;
          const g = node.kernelName === 'Sub' && name === 'b' ? tf.neg(Dy) : Dy;
          if (isShared(t)) {
            biases.push({ v: t as tf.Variable, g, rank: y.rank });
            kept.add(g);
          } else addTo(t, g);
        }
      } else addTo(x, tf.tidy(() => unaryGradient(node, Dy, T)));
      release(Dy);
    }
    // biases not right after a dense layer: their per-term gradients by a sum over the leading axes
    const rows: tf.Tensor2D[] = [];
    for (const q of biases) {
      const lead = Array.from({ length: q.rank - q.v.rank }, (_, i) => i + 1);
      const R = tf.tidy(() => tf.reshape(lead.length ? tf.sum(q.g, lead) : q.g, [T, q.v.size]) as tf.Tensor2D);
      parts.push({ kind: 'bias', v: q.v, R });
      if (gramIds.has(q.v.id)) rows.push(R);
    }
    if (rows.length) addGram(tf.tidy(() => gramProduct(rows.length === 1 ? rows[0] : tf.concat(rows, 1))));
    const G: tf.Tensor2D = gram ?? tf.zeros([T, T]);
    return { parts, head, gram: G };
  });
}

/**
 * The per-term gradients over each shared tensor the head nodes read, stacked (T × shape): by each
 * head node's tape gradient, or, when every head reads z through one `z w_i` with w_i of one column
 * (a linear head), all at once as the outer products e_i w_iᵀ (one broadcast product).
 */
function frontierGradients(plan: LayerwisePlan, E: Map<number, tf.Tensor | null>, T: number): [tf.Tensor, tf.Tensor][] {
  const byInput = new Map<number, { t: tf.Tensor; fs: LayerwisePlan['frontier'] }>();
  for (const f of plan.frontier) {
    const t = f.node.inputs[f.input];
    let entry = byInput.get(t.id);
    if (!entry) byInput.set(t.id, (entry = { t, fs: [] }));
    entry.fs.push(f);
  }
  const out: [tf.Tensor, tf.Tensor][] = [];
  for (const { t, fs } of byInput.values()) {
    const terms = fs.map((f) => f.term);
    const linear = t.rank === 2 && new Set(terms).size === fs.length && fs.every((f) => {
      const { a, b } = f.node.inputs;
      return f.node.kernelName === 'BatchMatMul' && f.input === 'a' && a?.id === t.id && b?.rank === 2 && b.shape[1] === 1 && f.node.saved?.length === 2 && !!f.node.attrs && !f.node.attrs.transposeA && !f.node.attrs.transposeB;
    });
    if (linear) {
      const [B, d] = t.shape;
      const ecols: tf.Tensor[] = new Array(T).fill(null);
      const wcols: tf.Tensor[] = new Array(T).fill(null);
      fs.forEach((f) => {
        ecols[f.term] = E.get(f.node.outputs[0].id) ?? tf.zeros([B, 1]);
        wcols[f.term] = f.node.saved![1];
      });
      const e = tf.concat(ecols.map((c) => c ?? tf.zeros([B, 1])), 1); // B × T
      const w = tf.concat(wcols.map((c) => c ?? tf.zeros([d, 1])), 1); // d × T
      out.push([t, tf.mul(tf.reshape(tf.transpose(e), [T, B, 1]), tf.reshape(tf.transpose(w), [T, 1, d]))]);
      continue;
    }
    const rows: (tf.Tensor | null)[] = new Array(T).fill(null);
    for (const f of fs) {
      const e = E.get(f.node.outputs[0].id);
      if (!e) continue;
      const g = f.node.gradient!([e])[f.input]();
      rows[f.term] = rows[f.term] ? tf.add(rows[f.term]!, g) : g;
    }
    out.push([t, tf.stack(rows.map((r) => r ?? tf.zeros(t.shape, t.dtype)))]); // by shape: t may be disposed
  }
  return out;
}

/**
 * An activation's input gradient for all T stacked output gradients: the local derivative (from the
 * node's input or output, B×…) times each of the T, as a [T, size] × [1, size] product (a broadcast
 * over the leading axis only, the fast one on wasm).
 */
function unaryGradient(node: Node, Dy: tf.Tensor, T: number): tf.Tensor {
  // what the engine kept for the gradient: relu's input, tanh's and sigmoid's output
  const s = node.saved![0];
  const local =
    node.kernelName === 'Relu' ? tf.cast(tf.step(s), 'float32')
    : node.kernelName === 'Tanh' ? tf.sub(1, tf.square(s))
    : tf.mul(s, tf.sub(1, s)); // Sigmoid
  return tf.reshape(tf.mul(tf.reshape(Dy, [T, s.size]), tf.reshape(local, [1, s.size])), Dy.shape);
}

/**
 * The T × P matrix of per-term gradients over `vars` (for the scaled reading after an overflow):
 * each dense layer's kernel (and bias) gradients a'ᵀ D_t, then the other biases' rows.
 */
export function layerMatrix(parts: readonly LayerParts[], vars: readonly tf.Variable[], T: number): tf.Tensor2D {
  return tf.tidy(() => {
    const ids = new Set(vars.map((v) => v.id));
    const rows: tf.Tensor2D[] = [];
    for (const p of parts) {
      if (p.kind === 'bias') {
        if (ids.has(p.v.id)) rows.push(p.R);
        continue;
      }
      // a layer read in the per-term-gradient form has its kernel and bias (if any) in the Gram
      // matrix (runLayerwise takes that form only then): its rows are all of C's
      if (p.kind === 'grads') {
        rows.push(tf.transpose(p.C));
        continue;
      }
      const input = inputOf(p.a, ids.has(p.v.id), !!p.bias && ids.has(p.bias.id));
      if (input) rows.push(tf.transpose(denseColumns(input, p.cat, T)));
    }
    return (rows.length === 1 ? rows[0] : tf.concat(rows, 1)) as tf.Tensor2D;
  });
}

/**
 * `Σ_i w_i g_i` of every shared variable: with Σ_t w_t D_t = cat·w (cat as the left operand), a
 * dense kernel's is aᵀ(Σ_t w_t D_t) and its bias's the column sums of Σ_t w_t D_t; another bias's w·R.
 */
export function layerCombine(parts: readonly LayerParts[], weights: readonly number[]): tf.NamedTensorMap {
  const out: tf.NamedTensorMap = {};
  const T = weights.length;
  for (const p of parts) {
    // one tidy per variable: its temporaries are released before the next (the results are returned)
    const got = tf.tidy((): tf.NamedTensorMap => {
      if (p.kind === 'bias') return { [p.v.name]: tf.reshape(tf.matMul(tf.tensor2d(weights as number[], [1, T]), p.R), p.v.shape) };
      if (p.kind === 'grads') {
        // Σ_t w_t S_t = C·w, out × in': the kernel is its transpose (without the bias column)
        const out = p.C.shape[0] / p.inputs;
        const S = tf.reshape(tf.matMul(p.C, tf.tensor2d(weights as number[], [T, 1])), [out, p.inputs]) as tf.Tensor2D;
        const k = p.bias ? p.inputs - 1 : p.inputs;
        const r: tf.NamedTensorMap = { [p.v.name]: tf.reshape(tf.transpose(p.bias ? tf.slice(S, [0, 0], [out, k]) : S), p.v.shape) };
        if (p.bias) r[p.bias.name] = tf.reshape(tf.slice(S, [0, k], [out, 1]), p.bias.shape);
        return r;
      }
      const [B, outT] = p.cat.shape;
      const o = outT / T;
      const Dw = tf.reshape(tf.matMul(tf.reshape(p.cat, [B * o, T]) as tf.Tensor2D, tf.tensor2d(weights as number[], [T, 1])), [B, o]) as tf.Tensor2D;
      const r: tf.NamedTensorMap = { [p.v.name]: tf.matMul(tf.transpose(p.a), Dw) };
      if (p.bias) r[p.bias.name] = tf.reshape(tf.sum(Dw, 0), p.bias.shape);
      return r;
    });
    Object.assign(out, got);
  }
  return out;
}
