/**
 * fitBalanced with the `fixed` balancer (all weights 1) against model.fit on the same model (same
 * initial weights), same data, shuffle: false: History (keys, values, params), compiled metrics,
 * validation, class weights, regularisers, BatchNormalization statistics and final weights agree to
 * 1e-5, on the cpu and the wasm backend. Independent reference: tfjs-layers' own model.fit.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../src/train/backend.js';
import { fitBalanced } from '../src/train/fit.js';

const TOL = 1e-5;

/** Two outputs (regression `reg`, binary `cls`), an L2-regularised trunk with BatchNormalization. */
function twoHeads(opt: () => tf.Optimizer, withMetrics = true): tf.LayersModel {
  const input = tf.input({ shape: [5] });
  let h = tf.layers.dense({ units: 8, activation: 'relu', kernelInitializer: tf.initializers.glorotNormal({ seed: 1 }), kernelRegularizer: tf.regularizers.l2({ l2: 0.01 }) }).apply(input) as tf.SymbolicTensor;
  h = tf.layers.batchNormalization({ momentum: 0.9 }).apply(h) as tf.SymbolicTensor;
  const reg = tf.layers.dense({ units: 1, name: 'reg', kernelInitializer: tf.initializers.glorotNormal({ seed: 2 }), biasRegularizer: tf.regularizers.l1({ l1: 0.001 }) }).apply(h) as tf.SymbolicTensor;
  const cls = tf.layers.dense({ units: 1, activation: 'sigmoid', name: 'cls', kernelInitializer: tf.initializers.glorotNormal({ seed: 3 }) }).apply(h) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: [reg, cls] });
  model.compile({ optimizer: opt(), loss: ['meanSquaredError', 'binaryCrossentropy'], ...(withMetrics ? { metrics: { reg: 'mae', cls: 'acc' } } : {}) });
  return model;
}

/** One output, regularised, with an accuracy metric. */
function oneHead(opt: () => tf.Optimizer): tf.LayersModel {
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [5], units: 6, activation: 'tanh', kernelInitializer: tf.initializers.glorotNormal({ seed: 4 }), kernelRegularizer: tf.regularizers.l1l2({ l1: 0.001, l2: 0.01 }) }),
      tf.layers.dense({ units: 1, activation: 'sigmoid', kernelInitializer: tf.initializers.glorotNormal({ seed: 5 }) }),
    ],
  });
  model.compile({ optimizer: opt(), loss: 'binaryCrossentropy', metrics: ['accuracy'] });
  return model;
}

function data(n = 40) {
  const x = tf.randomNormal([n, 5], 0, 1, 'float32', 11);
  const yReg = tf.tidy(() => x.sum(1, true).mul(3).add(1));
  const yCls = tf.tidy(() => x.slice([0, 0], [n, 1]).greater(0.3).cast('float32'));
  return { x, yReg, yCls };
}

function maxDiff(a: number[], b: number[]): number {
  expect(a.length).toBe(b.length);
  return Math.max(0, ...a.map((v, i) => Math.abs(v - b[i])));
}

/** Compare two Histories key by key and the two models' weights (trainable and not). */
function expectSame(ref: tf.History, got: tf.History, a: tf.LayersModel, b: tf.LayersModel) {
  expect(got.epoch).toEqual(ref.epoch);
  expect(got.params).toEqual(ref.params);
  for (const key of Object.keys(ref.history)) {
    expect(got.history[key], `history key ${key}`).toBeDefined();
    const d = maxDiff(ref.history[key] as number[], got.history[key] as number[]);
    expect(d, `history key ${key}: ${ref.history[key]} vs ${got.history[key]}`).toBeLessThan(TOL);
  }
  const wa = a.getWeights();
  const wb = b.getWeights();
  expect(wb.length).toBe(wa.length);
  wa.forEach((w, i) => {
    const d = maxDiff(Array.from(w.dataSync()), Array.from(wb[i].dataSync()));
    expect(d, `weight ${i} (${a.weights[i].name})`).toBeLessThan(TOL);
  });
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`fitBalanced + fixed equals model.fit (${backend})`, () => {
    const setup = () => initBackend(backend);

    it('two outputs, regularisers, BatchNorm, metrics, validationSplit, classWeight (sgd)', async () => {
      await setup();
      const { x, yReg, yCls } = data();
      const a = twoHeads(() => tf.train.sgd(0.05));
      const b = twoHeads(() => tf.train.sgd(0.05));
      const args = { epochs: 3, batchSize: 12, shuffle: false, validationSplit: 0.25, classWeight: { cls: { 0: 1, 1: 3 } }, verbose: 0 as const };
      let before = tf.memory().numTensors;
      const ref = await a.fit(x, [yReg, yCls], args);
      const fitAdds = tf.memory().numTensors - before; // what model.fit keeps on a first call
      before = tf.memory().numTensors;
      const got = await fitBalanced(b, x, [yReg, yCls], { ...args, balancer: 'fixed' });
      expect(tf.memory().numTensors - before).toBe(fitAdds);
      expect(Object.keys(ref.history).sort()).toEqual(['cls_acc', 'cls_loss', 'loss', 'reg_loss', 'reg_mae', 'val_cls_acc', 'val_cls_loss', 'val_loss', 'val_reg_loss', 'val_reg_mae']);
      expectSame(ref, got, a, b);
      // balancing keys beside: alpha per output (all 1) and the regularisation penalty
      expect(got.history['alpha/reg']).toEqual([1, 1, 1]);
      expect(got.history['alpha/cls']).toEqual([1, 1, 1]);
      expect(got.history.regularization.every((v) => (v as number) > 0)).toBe(true);
      tf.dispose([x, yReg, yCls]);
      a.dispose();
      b.dispose();
    });

    it('two outputs with validationData (adam), history keys as model.fit names them', async () => {
      await setup();
      const { x, yReg, yCls } = data();
      const v = data(16);
      const a = twoHeads(() => tf.train.adam(0.01));
      const b = twoHeads(() => tf.train.adam(0.01));
      const args = { epochs: 2, batchSize: 16, shuffle: false, validationData: [v.x, [v.yReg, v.yCls]] as [tf.Tensor, tf.Tensor[]], verbose: 0 as const };
      const ref = await a.fit(x, [yReg, yCls], args);
      const got = await fitBalanced(b, x, [yReg, yCls], args);
      expect(Object.keys(ref.history)).toContain('val_loss');
      expect(Object.keys(ref.history)).toContain('val_reg_loss');
      expectSame(ref, got, a, b);
      tf.dispose([x, yReg, yCls, v.x, v.yReg, v.yCls]);
      a.dispose();
      b.dispose();
    });

    it('one output, regulariser, accuracy metric, validationSplit (sgd)', async () => {
      await setup();
      const { x, yCls } = data();
      const a = oneHead(() => tf.train.sgd(0.1));
      const b = oneHead(() => tf.train.sgd(0.1));
      const args = { epochs: 3, batchSize: 8, shuffle: false, validationSplit: 0.2, verbose: 0 as const };
      const ref = await a.fit(x, yCls, args);
      const got = await fitBalanced(b, x, yCls, args);
      expect(Object.keys(ref.history).sort()).toEqual(['acc', 'loss', 'val_acc', 'val_loss']);
      expectSame(ref, got, a, b);
      tf.dispose([x, yCls]);
      a.dispose();
      b.dispose();
    });
  });
}

describe('fitBalanced: one forward pass per step', () => {
  it('a BatchNormalization moving mean moves once per batch, as in model.fit', async () => {
    await initBackend('cpu');
    const build = () => {
      const m = tf.sequential({ layers: [tf.layers.batchNormalization({ inputShape: [1], momentum: 0.5 }), tf.layers.dense({ units: 1, kernelInitializer: 'ones' })] });
      m.compile({ optimizer: tf.train.sgd(0), loss: 'meanSquaredError' });
      return m;
    };
    const x = tf.ones([4, 1]);
    const y = tf.zeros([4, 1]);
    const a = build();
    const b = build();
    await a.fit(x, y, { epochs: 1, batchSize: 4, verbose: 0 });
    await fitBalanced(b, x, y, { epochs: 1, batchSize: 4, verbose: 0 });
    const mm = (m: tf.LayersModel) => m.layers[0].getWeights()[2].dataSync()[0];
    expect(mm(a)).toBeCloseTo(0.5, 6); // 0·0.5 + 1·0.5
    expect(mm(b)).toBeCloseTo(mm(a), 7);
    tf.dispose([x, y]);
    a.dispose();
    b.dispose();
  });

  it('also with a gradient strategy, exact and representation mode (BatchNorm in the trunk)', async () => {
    await initBackend('cpu');
    const build = () => {
      const input = tf.input({ shape: [2] });
      const n = tf.layers.batchNormalization({ momentum: 0.5, name: 'bn' }).apply(input) as tf.SymbolicTensor;
      const z = tf.layers.dense({ units: 3, activation: 'tanh', name: 'shared', kernelInitializer: tf.initializers.glorotNormal({ seed: 1 }) }).apply(n) as tf.SymbolicTensor;
      const a = tf.layers.dense({ units: 1, name: 'a', kernelInitializer: tf.initializers.glorotNormal({ seed: 2 }) }).apply(z) as tf.SymbolicTensor;
      const b = tf.layers.dense({ units: 1, name: 'b', kernelInitializer: tf.initializers.glorotNormal({ seed: 3 }) }).apply(z) as tf.SymbolicTensor;
      const m = tf.model({ inputs: input, outputs: [a, b] });
      m.compile({ optimizer: tf.train.sgd(0.01), loss: 'meanSquaredError' });
      return m;
    };
    const x = tf.tensor2d([[1, 2], [3, 4], [5, 6], [7, 9]]);
    const ys = [tf.zeros([4, 1]), tf.ones([4, 1])];
    const ref = build();
    await ref.fit(x, ys, { epochs: 1, batchSize: 2, shuffle: false, verbose: 0 });
    const mm = (m: tf.LayersModel) => Array.from(m.getLayer('bn').getWeights()[2].dataSync());
    for (const extra of [{}, { representation: 'shared' }]) {
      const m = build();
      await fitBalanced(m, x, ys, { epochs: 1, batchSize: 2, shuffle: false, verbose: 0, balancer: 'mgda', ...extra });
      expect(mm(m), JSON.stringify(extra)).toEqual(mm(ref));
      m.dispose();
    }
    tf.dispose([x, ...ys]);
    ref.dispose();
  });
});
