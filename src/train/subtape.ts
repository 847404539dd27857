/**
 * Per-output sub-tapes (issue 27). tfjs's `engine.gradients(y, xs)` filters the whole recorded tape
 * for every call (`getFilteredNodesXToY`, two sweeps over every node). Reading T per-term gradients
 * from one recorded forward pass calls it T times over a tape that itself grows with T (each term's
 * head adds its nodes), so the filtering costs O(T²): at T = 64 heads on the benchmark MLP it was 15%
 * of a representation-mode step (bench/profile.ts, docs/benchmarks.md). Here one reverse sweep
 * labels every node with the outputs it leads to (a bit set per node); the nodes of output i, in
 * tape order, form its sub-tape. A node on a path from any x to y_i leads to y_i, so filtering the
 * sub-tape gives exactly the nodes filtering the whole tape gives: same gradients, same order of
 * operations. Reads the engine's tape (`engine.state.activeTape`, an array of nodes with `inputs`
 * and `outputs`); when it is not there in that form, returns null and the caller filters as before.
 */
import type * as tf from '@tensorflow/tfjs';

/** The part of a tfjs tape node read here (`attrs`: noted by `withMatMulAttrs` in src/train/head-gram.ts). */
export interface TapeNode {
  kernelName?: string;
  inputs: Record<string, tf.Tensor>;
  outputs: tf.Tensor[];
  attrs?: { transposeA?: boolean; transposeB?: boolean; activation?: unknown; bias?: boolean; prelu?: boolean };
  /**
   * The tensors the node's gradient reads, kept by the engine until the tape ends (its own copies:
   * the forward's own tensors may already be disposed, e.g. by a layer's `tf.tidy`).
   */
  saved?: tf.Tensor[];
}

/** What {@link labelTape} finds: the outputs each tensor and each node lead to (one bit per output). */
export interface TapeLabels {
  /** Tensor id → bit set of the outputs it leads to (absent: leads to none). */
  tensors: Map<number, Uint32Array>;
  /** Per node, in tape order: the bit set of the outputs it leads to, or null. */
  nodes: (Uint32Array | null)[];
}

/**
 * One reverse sweep over `tape`: for every tensor and node, the set of `ys` it leads to (a bit per
 * y). Null when the tape is not readable in the expected form.
 */
export function labelTape(tape: unknown, ys: readonly tf.Tensor[]): TapeLabels | null {
  if (!Array.isArray(tape)) return null;
  const nodes = tape as TapeNode[];
  const W = (ys.length + 31) >>> 5;
  const labels = new Map<number, Uint32Array>();
  const labelOf = (id: number) => {
    let l = labels.get(id);
    if (!l) labels.set(id, (l = new Uint32Array(W)));
    return l;
  };
  ys.forEach((y, i) => (labelOf(y.id)[i >>> 5] |= 1 << (i & 31)));
  const nodeLabels: (Uint32Array | null)[] = new Array(nodes.length).fill(null);
  for (let k = nodes.length - 1; k >= 0; k--) {
    const node = nodes[k];
    if (!node || !Array.isArray(node.outputs) || !node.inputs || typeof node.inputs !== 'object') return null;
    let acc: Uint32Array | null = null;
    for (const out of node.outputs) {
      const l = out && labels.get(out.id);
      if (!l) continue;
      acc ??= new Uint32Array(W);
      for (let w = 0; w < W; w++) acc[w] |= l[w];
    }
    if (!acc) continue;
    nodeLabels[k] = acc;
    for (const inp of Object.values(node.inputs)) {
      if (!inp) continue;
      const l = labelOf(inp.id);
      for (let w = 0; w < W; w++) l[w] |= acc[w];
    }
  }
  return { tensors: labels, nodes: nodeLabels };
}

/** The outputs a bit set names, in increasing order. */
export function bitsOf(l: Uint32Array | null | undefined): number[] {
  const out: number[] = [];
  if (!l) return out;
  for (let w = 0; w < l.length; w++) {
    let bits = l[w];
    while (bits) {
      const b = 31 - Math.clz32(bits);
      out.push((w << 5) + b);
      bits &= ~(1 << b);
    }
  }
  return out.sort((a, b) => a - b);
}

/** For each of `ys`, the nodes of `tape` that lead to it, in tape order; null when the tape is unreadable. */
export function subTapes(tape: unknown, ys: readonly tf.Tensor[]): unknown[][] | null {
  const labels = labelTape(tape, ys);
  if (!labels) return null;
  const nodes = tape as TapeNode[];
  const W = (ys.length + 31) >>> 5;
  const out: unknown[][] = ys.map(() => []);
  labels.nodes.forEach((l, k) => {
    if (!l) return;
    for (let w = 0; w < W; w++) {
      let bits = l[w];
      while (bits) {
        const b = 31 - Math.clz32(bits);
        out[(w << 5) + b].push(nodes[k]);
        bits &= ~(1 << b);
      }
    }
  });
  // bits were visited high to low within a word, nodes in tape order: each sub-tape is in tape order
  return out;
}
