/**
 * The two designs for fitBalanced, measured on one model (docs/design.md, "fitBalanced"):
 *
 * A. `model.fit` itself, each output's compiled loss multiplied by a non-trainable alpha variable that a
 *    callback sets between batches from the logged per-output losses (prototype below, loss-only
 *    strategies only: fit never exposes per-term gradients).
 * B. fitBalanced (src/train/fit.ts): fitLoop's steps re-done around BalancedTrainer, with the
 *    model's own standardizeUserData / evaluate / tf.CallbackList / tf.History.
 *
 * Printed: own lines of code of each; max |difference| from model.fit (History values, final weights)
 * with fixed weights 1; and, with loss-ratio, which losses the weights of step t were computed from.
 *
 *   npx tsx bench/fit-designs.ts
 */
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { create } from '../src/core/registry.js';
import type { BalancerSpec } from '../src/core/types.js';
import { initBackend } from '../src/train/backend.js';
import { fitBalanced } from '../src/train/fit.js';

type LossFn = (a: tf.Tensor, b: tf.Tensor) => tf.Tensor;

// ---- design A: the prototype (begin) ----
async function fitViaModelFit(model: tf.LayersModel, x: tf.Tensor, ys: tf.Tensor[], args: tf.ModelFitArgs & { balancer: BalancerSpec }) {
  const m = model as unknown as { lossFunctions: LossFn[] };
  const names = model.outputNames;
  const alphas = names.map(() => tf.variable(tf.scalar(1), false));
  const original = m.lossFunctions.slice();
  m.lossFunctions = original.map((fn, i) => (yt: tf.Tensor, yp: tf.Tensor) => tf.mul(fn(yt, yp), alphas[i]));
  const balancer = create(args.balancer);
  balancer.bind(names);
  const seen: number[][] = [];
  class Balance extends tf.Callback {
    override async onBatchEnd(_b: number, logs?: tf.Logs) {
      const weighted = await Promise.all(names.map((n) => (logs![`${n}_loss`] as unknown as tf.Scalar).data()));
      const w0 = await Promise.all(alphas.map((a) => a.data()));
      const raw = weighted.map((v, i) => v[0] / w0[i][0]);
      seen.push(raw);
      const res = balancer.update({ losses: raw });
      alphas.forEach((a, i) => a.assign(tf.scalar(res.weights[i])));
    }
  }
  const user = args.callbacks == null ? [] : Array.isArray(args.callbacks) ? args.callbacks : [args.callbacks];
  try {
    const h = await model.fit(x, ys, { ...args, balancer: undefined, callbacks: [new Balance(), ...(user as tf.Callback[])] } as tf.ModelFitArgs);
    return { h, seen };
  } finally {
    m.lossFunctions = original;
    tf.dispose(alphas);
  }
}
// ---- design A: the prototype (end) ----

function build(): tf.LayersModel {
  const input = tf.input({ shape: [5] });
  let h = tf.layers.dense({ units: 8, activation: 'relu', kernelInitializer: tf.initializers.glorotNormal({ seed: 1 }), kernelRegularizer: tf.regularizers.l2({ l2: 0.01 }) }).apply(input) as tf.SymbolicTensor;
  h = tf.layers.batchNormalization().apply(h) as tf.SymbolicTensor;
  const reg = tf.layers.dense({ units: 1, name: 'reg', kernelInitializer: tf.initializers.glorotNormal({ seed: 2 }) }).apply(h) as tf.SymbolicTensor;
  const cls = tf.layers.dense({ units: 1, activation: 'sigmoid', name: 'cls', kernelInitializer: tf.initializers.glorotNormal({ seed: 3 }) }).apply(h) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: [reg, cls] });
  model.compile({ optimizer: tf.train.adam(0.01), loss: ['meanSquaredError', 'binaryCrossentropy'], metrics: { cls: 'acc' } });
  return model;
}

function diff(ref: tf.History, got: tf.History, a: tf.LayersModel, b: tf.LayersModel): { history: number; weights: number } {
  let hist = 0;
  for (const k of Object.keys(ref.history)) {
    (ref.history[k] as number[]).forEach((v, i) => (hist = Math.max(hist, Math.abs(v - (got.history[k][i] as number)))));
  }
  const wb = b.getWeights();
  const w = Math.max(...a.getWeights().map((t, i) => tf.max(tf.abs(tf.sub(t, wb[i]))).dataSync()[0]));
  return { history: hist, weights: w };
}

/** Non-blank, non-comment lines. */
function ownLines(text: string): number {
  return text.split('\n').filter((l) => l.trim() && !/^\s*(\/\/|\*|\/\*\*|\*\/)/.test(l)).length;
}

await initBackend(process.env.LOSS_BALANCER_BACKEND as 'cpu' | 'wasm' | undefined);
const x = tf.randomNormal([48, 5], 0, 1, 'float32', 11);
const ys = [tf.tidy(() => x.sum(1, true).mul(3)), tf.tidy(() => x.slice([0, 0], [48, 1]).greater(0).cast('float32'))];
const args = { epochs: 3, batchSize: 16, shuffle: false, validationSplit: 0.25, verbose: 0 as const };

const ref = build();
const hRef = await ref.fit(x, ys, args);
const a = build();
const { h: hA } = await fitViaModelFit(a, x, ys, { ...args, balancer: 'fixed' });
const b = build();
const hB = await fitBalanced(b, x, ys, { ...args, balancer: 'fixed' });

const me = readFileSync(new URL(import.meta.url), 'utf8');
const protoA = me.slice(me.indexOf('// ---- design A: the prototype (begin)'), me.indexOf('// ---- design A: the prototype (end)'));
const src = (f: string) => readFileSync(new URL(`../src/train/${f}`, import.meta.url), 'utf8');
const linesB = ['fit.ts', 'fit-args.ts', 'fit-balancer.ts'].map((f) => ownLines(src(f)));

console.log(`backend ${tf.getBackend()}; model: 2 outputs, L2 kernel regulariser, BatchNorm, acc metric; 36 train + 12 validation samples, 3 epochs, batch 16, adam`);
console.log(`A (model.fit + alpha variables): ${ownLines(protoA)} own lines (prototype: loss-only strategies, no argument checks); parity with fixed weights: ${JSON.stringify(diff(hRef, hA, ref, a))}`);
console.log(`B (own loop, src/train/fit*.ts): ${linesB.reduce((p, q) => p + q, 0)} own lines (${linesB.join(' + ')}; all strategies, argument checks); parity with fixed weights: ${JSON.stringify(diff(hRef, hB, ref, b))}`);

// Which losses the weights in force at step t come from (loss-ratio: w_t = L(t)/L(0) for B).
const a2 = build();
const { seen } = await fitViaModelFit(a2, x, ys, { ...args, epochs: 1, balancer: 'loss-ratio' });
const b2 = build();
const hB2 = await fitBalanced(b2, x, ys, { ...args, epochs: 1, balancer: 'loss-ratio' });
const recs = hB2.trainer.history.records;
console.log(`loss-ratio, step 1: B applies weights ${JSON.stringify(recs[1].weight)} computed from step 1's own losses; A applied at step 1 the weights computed from step 0's losses ${JSON.stringify(seen[0])} (one step late; step 0 always runs at weight 1)`);
console.log(`A logs <out>_loss and val_<out>_loss already multiplied by alpha (fit sees only the scaled losses): val_reg_loss A ${(await fitViaModelFit(build(), x, ys, { ...args, epochs: 1, balancer: { name: 'fixed', weights: { reg: 2, cls: 1 } } })).h.history.val_reg_loss} vs B raw ${(await fitBalanced(build(), x, ys, { ...args, epochs: 1, balancer: { name: 'fixed', weights: { reg: 2, cls: 1 } } })).history.val_reg_loss}`);
