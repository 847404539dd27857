/**
 * Splitting a `tf.LayersModel` at a layer for representation mode: the trunk is the model from its
 * inputs to that layer's output (a `tf.model` on the same layers, so the same weights); the heads are
 * the layers downstream of it, run eagerly from a given z by walking the model's graph (each layer's
 * inbound node, in the model's topological layer order).
 *
 * Limit: every path from the trunk to an output must pass through the split layer. A downstream layer
 * may also read the model's own inputs (those are fed as they are), but not an intermediate tensor of
 * the trunk (a skip connection around the split layer): that is an error naming both layers.
 */
import * as tf from '@tensorflow/tfjs';
import { BalancerError } from '../core/errors.js';

/** A model split at a layer. */
export interface ModelSplit {
  /** The split layer's output for the model inputs `xs`. */
  trunk(xs: tf.Tensor[], training: boolean): tf.Tensor;
  /** The model's outputs computed from `z` (and the model inputs `xs`, for layers that read them). */
  heads(z: tf.Tensor, xs: tf.Tensor[], training: boolean): tf.Tensor[];
}

type Sym = tf.SymbolicTensor;
interface Step {
  layer: tf.layers.Layer;
  inputs: Sym[];
  outputs: Sym[];
  callArgs: Record<string, unknown>;
}

/** Split `model` at the layer named `layerName` (see the module note for the limits). */
export function splitModel(model: tf.LayersModel, layerName: string): ModelSplit {
  const where = `fitBalanced: option "representation" ("${layerName}")`;
  let layer: tf.layers.Layer;
  try {
    layer = model.getLayer(layerName);
  } catch {
    throw new BalancerError(`${where}: the model has no layer of that name; its layers: ${model.layers.map((l) => l.name).join(', ')}`);
  }
  let zSym: Sym;
  try {
    const out = layer.output;
    if (Array.isArray(out)) throw new Error('several outputs');
    zSym = out;
  } catch (e) {
    throw new BalancerError(`${where}: the layer must have exactly one output tensor (${(e as Error).message})`);
  }
  if (model.inputs.some((i) => i.id === zSym.id)) throw new BalancerError(`${where}: the split layer is an input layer; choose a layer after it`);
  if (model.outputs.some((o) => o.id === zSym.id)) throw new BalancerError(`${where}: the split layer is an output of the model; choose a shared layer before the heads`);

  // Forward reachability from z through the layers' inbound nodes, in topological layer order.
  const downstream = new Set<number>([zSym.id]);
  const inputIds = new Set(model.inputs.map((i) => i.id));
  const steps: Step[] = [];
  for (const l of model.layers) {
    for (const node of l.inboundNodes) {
      const ins = node.inputTensors as Sym[];
      if (!ins.some((t) => downstream.has(t.id))) continue;
      const bad = ins.find((t) => !downstream.has(t.id) && !inputIds.has(t.id));
      if (bad) {
        throw new BalancerError(
          `${where}: layer "${l.name}" after the split also reads "${bad.name}" from before it (a skip connection around "${layerName}"); every path from the shared layers to the outputs must pass through the split layer`,
        );
      }
      steps.push({ layer: l, inputs: ins, outputs: node.outputTensors as Sym[], callArgs: (node.callArgs ?? {}) as Record<string, unknown> });
      for (const o of node.outputTensors as Sym[]) downstream.add(o.id);
    }
  }
  const missing = model.outputs.filter((o) => !downstream.has(o.id));
  if (missing.length) {
    throw new BalancerError(`${where}: output(s) ${missing.map((o) => `"${o.name}"`).join(', ')} do not depend on that layer; the split layer must feed every head`);
  }
  const trunkModel = tf.model({ inputs: model.inputs, outputs: zSym, name: `${model.name}_trunk_${layerName}` });

  return {
    trunk: (xs, training) => trunkModel.apply(xs.length === 1 ? xs[0] : xs, { training }) as tf.Tensor,
    heads: (z, xs, training) => {
      const values = new Map<number, tf.Tensor>([[zSym.id, z]]);
      model.inputs.forEach((s, i) => values.set(s.id, xs[i]));
      for (const st of steps) {
        const ins = st.inputs.map((s) => values.get(s.id)!);
        const out = st.layer.apply(ins.length === 1 ? ins[0] : ins, { ...st.callArgs, training }) as tf.Tensor | tf.Tensor[];
        const outs = Array.isArray(out) ? out : [out];
        st.outputs.forEach((s, k) => values.set(s.id, outs[k]));
      }
      return model.outputs.map((o) => values.get(o.id)!);
    },
  };
}
