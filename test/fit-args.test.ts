/**
 * fitBalanced takes model.fit's arguments and callbacks and behaves as model.fit does with them:
 * every ModelFitArgs field honoured or rejected by name, unknown keys named (closest suggested),
 * callbacks (tf.Callback, CustomCallbackArgs, arrays, earlyStopping) called with the logs model.fit
 * gives, setModel/setParams, model.stopTraining, initialEpoch, lossWeights (Keras loss_weights).
 * Reference in each case: model.fit on an identical model.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { BalancedTrainer } from '../src/train/trainer.js';
import { initBackend } from '../src/train/backend.js';
import { fitBalanced } from '../src/train/fit.js';
import { MODEL_FIT_KEYS } from '../src/train/fit-args.js';

beforeAll(() => initBackend('cpu'));

function build(lossScale: [number, number] = [1, 1]): tf.LayersModel {
  const input = tf.input({ shape: [3] });
  const h = tf.layers.dense({ units: 6, activation: 'tanh', kernelInitializer: tf.initializers.glorotNormal({ seed: 7 }) }).apply(input) as tf.SymbolicTensor;
  const a = tf.layers.dense({ units: 1, name: 'a', kernelInitializer: tf.initializers.glorotNormal({ seed: 8 }) }).apply(h) as tf.SymbolicTensor;
  const b = tf.layers.dense({ units: 1, name: 'b', kernelInitializer: tf.initializers.glorotNormal({ seed: 9 }) }).apply(h) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: [a, b] });
  const [sa, sb] = lossScale;
  const loss = [
    sa === 1 ? 'meanSquaredError' : (yt: tf.Tensor, yp: tf.Tensor) => tf.losses.meanSquaredError(yt, yp, undefined, tf.Reduction.NONE).mul(sa),
    sb === 1 ? 'meanSquaredError' : (yt: tf.Tensor, yp: tf.Tensor) => tf.losses.meanSquaredError(yt, yp, undefined, tf.Reduction.NONE).mul(sb),
  ] as (string | ((a: tf.Tensor, b: tf.Tensor) => tf.Tensor))[];
  model.compile({ optimizer: tf.train.sgd(0.05), loss: loss as never });
  return model;
}

const x = () => tf.randomNormal([24, 3], 0, 1, 'float32', 21);
const ys = () => [tf.randomNormal([24, 1], 0, 1, 'float32', 22), tf.randomNormal([24, 1], 0, 2, 'float32', 23)];

/** A callback recording every hook call: name, index, and the logs (numbers) it received. */
function recorder(calls: unknown[], extra: tf.CustomCallbackArgs = {}): tf.CustomCallbackArgs {
  // the balancing keys (alpha/<out>, val_loss/<out>) are extra: compared apart
  const keep = (logs?: tf.Logs) => Object.fromEntries(Object.entries(logs ?? {}).filter(([k]) => !k.includes('/')).map(([k, v]) => [k, +(v as number).toFixed(5)]));
  let clock = 0;
  return {
    onTrainBegin: (logs) => void calls.push(['trainBegin', keep(logs)]),
    onTrainEnd: (logs) => void calls.push(['trainEnd', keep(logs)]),
    onEpochBegin: (e, logs) => void calls.push(['epochBegin', e, keep(logs)]),
    onEpochEnd: (e, logs) => void calls.push(['epochEnd', e, keep(logs)]),
    onBatchBegin: (b, logs) => void calls.push(['batchBegin', b, keep(logs)]),
    onBatchEnd: (b, logs) => void calls.push(['batchEnd', b, keep(logs)]),
    onYield: (e, b, logs) => void calls.push(['yield', e, b, keep(logs)]),
    nowFunc: () => (clock += 1000), // every batch is "late": onYield fires each batch
    ...extra,
  };
}

async function both(args: tf.ModelFitArgs | ((calls: unknown[]) => tf.ModelFitArgs)) {
  const X = x();
  const Y = ys();
  const refCalls: unknown[] = [];
  const gotCalls: unknown[] = [];
  const ma = build();
  const mb = build();
  const argsOf = (calls: unknown[]) => (typeof args === 'function' ? args(calls) : args);
  const ref = await ma.fit(X, Y, { ...argsOf(refCalls) });
  const got = await fitBalanced(mb, X, Y, { ...argsOf(gotCalls) });
  tf.dispose([X, ...Y]);
  return { ref, got, refCalls, gotCalls, ma, mb };
}

describe('fitBalanced arguments', () => {
  it('rejects unknown and misspelt keys, naming them and the closest known key', async () => {
    const m = build();
    const X = x();
    const Y = ys();
    await expect(fitBalanced(m, X, Y, { epoch: 2 } as never)).rejects.toThrow(/unknown argument "epoch"; did you mean "epochs"\?/);
    await expect(fitBalanced(m, X, Y, { batch_size: 2 } as never)).rejects.toThrow(/unknown argument "batch_size"; did you mean "batchSize"\?/);
    await expect(fitBalanced(m, X, Y, { validation_split: 0.1 } as never)).rejects.toThrow(/did you mean "validationSplit"/);
    await expect(fitBalanced(m, X, Y, { callback: [] } as never)).rejects.toThrow(/did you mean "callbacks"/);
    await expect(fitBalanced(m, X, Y, { zzzzzzzz: 1 } as never)).rejects.toThrow(/unknown argument "zzzzzzzz" \(known: /);
    tf.dispose([X, ...Y]);
    m.dispose();
  });

  it('every ModelFitArgs field is listed; those model.fit rejects are rejected by name', async () => {
    // the fields of tfjs-layers 4.22 ModelFitArgs (node_modules/@tensorflow/tfjs-layers/dist/engine/training_tensors.d.ts)
    expect(Object.keys(MODEL_FIT_KEYS).sort()).toEqual(
      ['batchSize', 'callbacks', 'classWeight', 'epochs', 'initialEpoch', 'sampleWeight', 'shuffle', 'stepsPerEpoch', 'validationData', 'validationSplit', 'validationSteps', 'verbose', 'yieldEvery'].sort(),
    );
    const m = build();
    const X = x();
    const Y = ys();
    const w = tf.ones([24]);
    await expect(m.fit(X, Y, { sampleWeight: w })).rejects.toThrow(/sample weight is not supported/);
    await expect(fitBalanced(m, X, Y, { sampleWeight: w })).rejects.toThrow(/argument "sampleWeight" is not supported/);
    await expect(fitBalanced(m, X, Y, { stepsPerEpoch: 2 })).rejects.toThrow(/argument "stepsPerEpoch"/);
    await expect(fitBalanced(m, X, Y, { validationSteps: 2 })).rejects.toThrow(/argument "validationSteps"/);
    await expect(fitBalanced(m, X, Y, { shuffle: 'batch' as never })).rejects.toThrow(/argument "shuffle"/);
    await expect(fitBalanced(m, X, Y, { validationData: [X, Y, Y] as never })).rejects.toThrow(/argument "validationData" has 3 items/);
    await expect(fitBalanced(m, X, Y, { validationSplit: 1.5 })).rejects.toThrow(/argument "validationSplit" got 1.5/);
    await expect(fitBalanced(m, X, Y, { epochs: -1 })).rejects.toThrow(/argument "epochs" got -1/);
    await expect(fitBalanced(m, X, Y, { batchSize: 0 })).rejects.toThrow(/batchSize is required to be a positive integer, but got 0/);
    await expect(fitBalanced(m, X, [Y[0]])).rejects.toThrow(/Error when checking model target/);
    await expect(fitBalanced(m, X, Y, { lossWeights: [1] })).rejects.toThrow(/"lossWeights" has 1 entries; the model has 2 outputs \(a, b\)/);
    await expect(fitBalanced(m, X, Y, { lossWeights: { c: 1 } })).rejects.toThrow(/"lossWeights" names "c"/);
    await expect(fitBalanced(m, X, Y, { lossWeights: [1, 2], balancer: { name: 'fixed', baseWeights: { a: 2 } } })).rejects.toThrow(/"lossWeights" or the balancer's "baseWeights", not both/);
    const n0 = tf.memory().numTensors;
    await expect(fitBalanced(m, X, Y, { classWeight: { a: { 0: 1 }, b: { 0: 1 } }, epochs: 1, verbose: 0 })).rejects.toThrow(/classWeight must contain all classes/);
    expect(tf.memory().numTensors).toBe(n0); // nothing left behind on the error path
    // not training any more after an error: a new call starts
    await fitBalanced(m, X, Y, { epochs: 1, verbose: 0 });
    tf.dispose([X, ...Y, w]);
    m.dispose();
  });

  it('shuffle: true draws from Math.random as model.fit does (same stream, same run); seed makes it reproducible', async () => {
    let state = 1;
    const lcg = () => ((state = (state * 1664525 + 1013904223) >>> 0) / 2 ** 32);
    const spy = vi.spyOn(Math, 'random').mockImplementation(lcg);
    try {
      const X = x();
      const Y = ys();
      const ma = build();
      const mb = build();
      state = 1;
      const ref = await ma.fit(X, Y, { epochs: 2, batchSize: 7, verbose: 0 });
      state = 1;
      const got = await fitBalanced(mb, X, Y, { epochs: 2, batchSize: 7, verbose: 0 });
      (ref.history.loss as number[]).forEach((v, i) => expect(got.history.loss[i] as number).toBeCloseTo(v, 5));
      const wb = mb.getWeights();
      ma.getWeights().forEach((w, i) => expect(tf.max(tf.abs(tf.sub(w, wb[i]))).dataSync()[0]).toBeLessThan(1e-5));
      // with seed: Math.random is not used, and two runs agree
      const calls = spy.mock.calls.length;
      const mc = build();
      const md = build();
      const h1 = await fitBalanced(mc, X, Y, { epochs: 2, batchSize: 7, verbose: 0, seed: 3 });
      const h2 = await fitBalanced(md, X, Y, { epochs: 2, batchSize: 7, verbose: 0, seed: 3 });
      expect(h2.history.loss).toEqual(h1.history.loss);
      expect(spy.mock.calls.length).toBe(calls);
      tf.dispose([X, ...Y]);
      [ma, mb, mc, md].forEach((m) => m.dispose());
    } finally {
      spy.mockRestore();
    }
  });

  it('epochs: 0 trains nothing, as model.fit', async () => {
    const { ref, got, ma, mb } = await both({ epochs: 0, verbose: 0 });
    expect(got.epoch).toEqual(ref.epoch);
    expect(got.history).toEqual(ref.history);
    expect(got.trainer.stepCount).toBe(0);
    ma.dispose();
    mb.dispose();
  });

  it('lossWeights are Keras loss_weights: the same run as compiled losses scaled by them', async () => {
    const X = x();
    const Y = ys();
    const scaled = build([2, 0.5]); // reference: model.fit with per-output losses multiplied by 2 and 0.5
    const mb = build();
    const ref = await scaled.fit(X, Y, { epochs: 2, batchSize: 8, shuffle: false, verbose: 0 });
    const got = await fitBalanced(mb, X, Y, { epochs: 2, batchSize: 8, shuffle: false, verbose: 0, lossWeights: { a: 2, b: 0.5 } });
    (ref.history.loss as number[]).forEach((v, i) => expect(got.history.loss[i] as number).toBeCloseTo(v, 5));
    // fit logs the scaled per-output loss; fitBalanced the raw one (as Keras), and the weight beside it
    (ref.history.a_loss as number[]).forEach((v, i) => expect(2 * (got.history.a_loss[i] as number)).toBeCloseTo(v, 5));
    expect(got.history['alpha/a']).toEqual([2, 2]);
    expect(got.history['alpha/b']).toEqual([0.5, 0.5]);
    const wa = scaled.getWeights();
    mb.getWeights().forEach((w, i) => expect(tf.max(tf.abs(tf.sub(w, wa[i]))).dataSync()[0]).toBeLessThan(1e-5));
    tf.dispose([X, ...Y]);
    scaled.dispose();
    mb.dispose();
  });
});

describe('fitBalanced validation keys', () => {
  it("val_* are model.fit's values (shifted by tfjs for several outputs); val_loss/<out> are each output's own", async () => {
    const build2 = () => {
      const input = tf.input({ shape: [3] });
      const a = tf.layers.dense({ units: 1, name: 'a', kernelInitializer: 'ones' }).apply(input) as tf.SymbolicTensor;
      const b = tf.layers.dense({ units: 1, name: 'b', kernelInitializer: 'zeros' }).apply(input) as tf.SymbolicTensor;
      const m = tf.model({ inputs: input, outputs: [a, b] });
      m.compile({ optimizer: tf.train.sgd(0), loss: 'meanSquaredError' });
      return m;
    };
    // by hand: prediction a = 3 (bias 0) against 0 → L_a = 9; prediction b = 0 against 2 → L_b = 4
    const X = tf.ones([4, 3]);
    const Y = [tf.zeros([4, 1]), tf.fill([4, 1], 2)];
    const ma = build2();
    const mb = build2();
    const ref = await ma.fit(X, Y, { epochs: 1, validationData: [X, Y], verbose: 0 });
    const got = await fitBalanced(mb, X, Y, { epochs: 1, validationData: [X, Y], verbose: 0 });
    expect(ref.history).toEqual({ val_loss: [9], val_a_loss: [13], val_b_loss: [9], loss: [13], a_loss: [9], b_loss: [4] });
    for (const k of Object.keys(ref.history)) expect(got.history[k]).toEqual(ref.history[k]);
    expect(got.history['val_loss/a']).toEqual([9]);
    expect(got.history['val_loss/b']).toEqual([4]);
    tf.dispose([X, ...Y]);
    ma.dispose();
    mb.dispose();
  });
});

describe('fitBalanced validation metric keys (several outputs)', () => {
  // The new-user case: output size (MSE) and cls (BCE, accuracy). tfjs's val_cls_acc holds cls's
  // validation BCE, not the accuracy; val_acc/cls must be model.evaluate's accuracy.
  const build3 = (metrics: Record<string, string[]>) => {
    const input = tf.input({ shape: [2] });
    const size = tf.layers.dense({ units: 1, name: 'size', kernelInitializer: 'ones' }).apply(input) as tf.SymbolicTensor;
    const cls = tf.layers.dense({ units: 1, name: 'cls', activation: 'sigmoid', kernelInitializer: 'ones' }).apply(input) as tf.SymbolicTensor;
    const m = tf.model({ inputs: input, outputs: [size, cls] });
    m.compile({ optimizer: tf.train.sgd(0), loss: ['meanSquaredError', 'binaryCrossentropy'], metrics: metrics as never }); // tfjs's type lacks per-output arrays; compile takes them
    return m;
  };
  // by hand (weights 1, biases 0, lr 0): size predicts x0 + x1 = [1, -1, 3, -2] against [0, 1, 3, 0]
  // → L_size = (1 + 4 + 0 + 4) / 4 = 2.25; cls predicts σ(x0 + x1) > 0.5 for rows 1 and 3 only,
  // against [1, 1, 0, 0] → accuracy 2/4 = 0.5 (rows 1 and 4 right).
  const X = () => tf.tensor2d([[1, 0], [0, -1], [2, 1], [-1, -1]]);
  const Y = () => [tf.tensor2d([[0], [1], [3], [0]]), tf.tensor2d([[1], [1], [0], [0]])];

  it("val_acc/cls is evaluate's accuracy; tfjs's shifted val_cls_acc and params.metrics stay model.fit's", async () => {
    const x = X();
    const y = Y();
    const ma = build3({ cls: ['acc'] });
    const mb = build3({ cls: ['acc'] });
    const ev = (mb.evaluate(x, y) as tf.Scalar[]).map((t) => { const v = t.dataSync()[0]; t.dispose(); return v; });
    // evaluate: [L_size, L_size + L_cls, L_size, L_cls, acc] (tfjs's running sums, then metricsTensors)
    expect(ev[0]).toBeCloseTo(2.25, 6);
    expect(ev[4]).toBe(0.5);
    const lCls = ev[3];
    const ref = await ma.fit(x, y, { epochs: 1, validationData: [x, y], verbose: 0 });
    const seen: tf.Logs[] = [];
    const got = await fitBalanced(mb, x, y, { epochs: 1, validationData: [x, y], verbose: 0, callbacks: { onEpochEnd: (_e, logs) => void seen.push({ ...logs }) } });
    expect(seen[0]['val_acc/cls']).toBe(0.5); // callbacks (earlyStopping's monitor) see the added keys
    // tfjs's keys, as plain model.fit gives them: val_cls_acc is cls's BCE, not the accuracy
    expect(ref.history.val_cls_acc[0]).toBeCloseTo(lCls, 6);
    for (const k of Object.keys(ref.history)) expect(got.history[k], k).toEqual(ref.history[k]);
    expect(got.params.metrics).toEqual(ref.params.metrics);
    // the corrected keys: evaluate's values
    expect(got.history['val_acc/cls']).toEqual([0.5]);
    expect(got.history['val_loss/size'][0]).toBeCloseTo(2.25, 6);
    expect(got.history['val_loss/cls'][0]).toBeCloseTo(lCls, 6);
    expect(Object.keys(got.history).filter((k) => k.startsWith('val_')).sort()).toEqual(
      ['val_acc/cls', 'val_cls_acc', 'val_cls_loss', 'val_loss', 'val_loss/cls', 'val_loss/size', 'val_size_loss'],
    );
    tf.dispose([x, ...y]);
    ma.dispose();
    mb.dispose();
  });

  it('deduplicated metric labels (cls_acc_0, cls_acc_1) and a metric on each output get their own keys', async () => {
    const x = X();
    const y = Y();
    const m = build3({ size: ['mae'], cls: ['acc', 'acc'] });
    const labels = (m as unknown as { getDedupedMetricsNames(): string[] }).getDedupedMetricsNames();
    expect(labels).toEqual(['loss', 'size_loss', 'cls_loss', 'size_mae', 'cls_acc_0', 'cls_acc_1']);
    const ev = (m.evaluate(x, y) as tf.Scalar[]).map((t) => { const v = t.dataSync()[0]; t.dispose(); return v; });
    const got = await fitBalanced(m, x, y, { epochs: 1, validationData: [x, y], verbose: 0 });
    // mae of size by hand: (1 + 2 + 0 + 2) / 4 = 1.25
    expect(got.history['val_mae/size'][0]).toBeCloseTo(1.25, 6);
    expect(got.history['val_mae/size'][0]).toBeCloseTo(ev[4], 6);
    expect(got.history['val_acc_0/cls']).toEqual([0.5]);
    expect(got.history['val_acc_1/cls']).toEqual([0.5]);
    tf.dispose([x, ...y]);
    m.dispose();
  });
});

describe('fitBalanced callbacks, as model.fit calls them', () => {
  it('CustomCallbackArgs (every hook, onYield) and arrays get the same calls and logs as model.fit', async () => {
    const { ref, got, refCalls, gotCalls, ma, mb } = await both((calls) => ({
      epochs: 2, batchSize: 10, shuffle: false, validationSplit: 0.25, verbose: 0, yieldEvery: 1,
      callbacks: [recorder(calls), { onEpochEnd: (e: number) => void calls.push(['second', e]) }],
    }));
    expect(gotCalls).toEqual(refCalls);
    expect(refCalls.filter((c) => (c as unknown[])[0] === 'yield').length).toBeGreaterThan(0);
    expect(got.params).toEqual(ref.params);
    ma.dispose();
    mb.dispose();
  });

  it('a tf.Callback instance gets setModel (the model) and setParams, and may stop training', async () => {
    class Stopper extends tf.Callback {
      seen: unknown[] = [];
      override async onBatchEnd(batch: number) {
        this.seen.push([batch, this.params.samples, this.model === mbRef]);
        if (batch === 1) this.model.stopTraining = true;
      }
    }
    let mbRef: tf.LayersModel | null = null;
    const X = x();
    const Y = ys();
    const ma = build();
    const mb = build();
    const sa = new Stopper();
    mbRef = ma;
    const ref = await ma.fit(X, Y, { epochs: 3, batchSize: 8, verbose: 0, callbacks: sa });
    const sb = new Stopper();
    mbRef = mb;
    const got = await fitBalanced(mb, X, Y, { epochs: 3, batchSize: 8, verbose: 0, callbacks: sb });
    expect(sb.seen).toEqual(sa.seen);
    expect(sb.seen).toEqual([[0, 24, true], [1, 24, true]]);
    expect(got.epoch).toEqual(ref.epoch);
    expect(got.epoch).toEqual([0]);
    expect(got.trainer.stepCount).toBe(2);
    expect(mb.history).toBe(got);
    tf.dispose([X, ...Y]);
    ma.dispose();
    mb.dispose();
  });

  it("tf.callbacks.earlyStopping({ monitor: 'val_loss' }) stops where model.fit stops", async () => {
    const args = () => ({ epochs: 6, batchSize: 8, shuffle: false, verbose: 0 as const, validationSplit: 0.25, callbacks: [tf.callbacks.earlyStopping({ monitor: 'val_loss', minDelta: 1e9 })] });
    const { ref, got, ma, mb } = await both(() => args());
    expect(ref.epoch).toEqual([0, 1]);
    expect(got.epoch).toEqual(ref.epoch);
    (ref.history.val_loss as number[]).forEach((v, i) => expect(got.history.val_loss[i] as number).toBeCloseTo(v, 5));
    ma.dispose();
    mb.dispose();
  });

  it('initialEpoch: epochs counted from it, as model.fit, and the trainer records those epochs', async () => {
    const { ref, got, ma, mb } = await both({ epochs: 4, initialEpoch: 2, batchSize: 12, shuffle: false, verbose: 0 });
    expect(ref.epoch).toEqual([2, 3]);
    expect(got.epoch).toEqual([2, 3]);
    expect(got.params.initialEpoch).toBe(2);
    (ref.history.loss as number[]).forEach((v, i) => expect(got.history.loss[i] as number).toBeCloseTo(v, 5));
    expect(got.trainer.history.records.map((r) => r.epoch)).toEqual([2, 2, 3, 3]);
    ma.dispose();
    mb.dispose();
  });

  it('the README switch: the same script with model.fit and with fitBalanced + fixed gives the same History', async () => {
    const X = x();
    const Y = ys();
    const script = async (fit: (m: tf.LayersModel, args: tf.ModelFitArgs) => Promise<tf.History>) => {
      const model = build();
      const log: number[] = [];
      const args: tf.ModelFitArgs = {
        epochs: 4, batchSize: 8, shuffle: false, validationSplit: 0.25, verbose: 0,
        callbacks: [tf.callbacks.earlyStopping({ monitor: 'val_loss', patience: 2 }), new tf.CustomCallback({ onEpochEnd: (_e, logs) => void log.push(logs!.val_loss) })],
      };
      const h = await fit(model, args);
      model.dispose();
      return { h, log };
    };
    const a = await script((model, args) => model.fit(X, Y, args));
    const b = await script((model, args) => fitBalanced(model, X, Y, { ...args, balancer: 'fixed' }));
    expect(b.h.epoch).toEqual(a.h.epoch);
    a.log.forEach((v, i) => expect(b.log[i]).toBeCloseTo(v, 5));
    tf.dispose([X, ...Y]);
  });
});

describe('fitBalanced with balancing strategies', () => {
  it('a gradient strategy on a model with regularisers: the penalty is a frozen term of weight 1, logged apart', async () => {
    const input = tf.input({ shape: [3] });
    const h = tf.layers.dense({ units: 6, activation: 'tanh', kernelInitializer: tf.initializers.glorotNormal({ seed: 1 }), kernelRegularizer: tf.regularizers.l2({ l2: 0.01 }) }).apply(input) as tf.SymbolicTensor;
    const a = tf.layers.dense({ units: 1, name: 'a', kernelInitializer: tf.initializers.glorotNormal({ seed: 2 }), kernelRegularizer: tf.regularizers.l2({ l2: 0.01 }) }).apply(h) as tf.SymbolicTensor;
    const b = tf.layers.dense({ units: 1, name: 'b', kernelInitializer: tf.initializers.glorotNormal({ seed: 3 }) }).apply(h) as tf.SymbolicTensor;
    const m = tf.model({ inputs: input, outputs: [a, b] });
    m.compile({ optimizer: tf.train.adam(0.01), loss: 'meanSquaredError' });
    const X = x();
    const Y = ys();
    const got = await fitBalanced(m, X, Y, { epochs: 2, batchSize: 8, verbose: 0, balancer: 'gradnorm', validationSplit: 0.25 });
    const recs = got.trainer.history.records;
    expect(got.trainer.history.meta!.terms).toEqual(['a', 'b', 'regularization']);
    expect(recs.every((r) => r.weight.regularization === 1)).toBe(true);
    expect(recs.every((r) => r.loss.regularization > 0)).toBe(true);
    // the Gram matrix is over the variables both outputs reach (the trunk), not the heads
    expect(Object.keys(recs[0].gradNorm!)).toEqual(['a', 'b', 'regularization']);
    expect(got.history['alpha/a'][1]).not.toBe(1);
    expect(Object.keys(got.history).sort()).toEqual(['a_loss', 'alpha/a', 'alpha/b', 'b_loss', 'loss', 'regularization', 'val_a_loss', 'val_b_loss', 'val_loss', 'val_loss/a', 'val_loss/b']);
    tf.dispose([X, ...Y]);
    m.dispose();
  });

  it('a Balancer instance without the regularisation term is refused with the fix named', async () => {
    const { create } = await import('../src/core/registry.js');
    const input = tf.input({ shape: [3] });
    const h = tf.layers.dense({ units: 2, kernelRegularizer: tf.regularizers.l2() }).apply(input) as tf.SymbolicTensor;
    const m = tf.model({ inputs: input, outputs: [tf.layers.dense({ units: 1 }).apply(h) as tf.SymbolicTensor, tf.layers.dense({ units: 1 }).apply(h) as tf.SymbolicTensor] });
    m.compile({ optimizer: 'sgd', loss: 'meanSquaredError' });
    const X = x();
    const Y = ys();
    await expect(fitBalanced(m, X, Y, { balancer: create('dwa') })).rejects.toThrow(/frozen: \{ regularization: 1 \}/);
    await fitBalanced(m, X, Y, { balancer: create({ name: 'dwa', frozen: { regularization: 1 } }), verbose: 0 });
    await expect(fitBalanced(m, X, Y, { balancer: create({ name: 'dwa', frozen: { regularization: 1 } }), lossWeights: [1, 2] })).rejects.toThrow(/"lossWeights" cannot be applied to a Balancer instance/);
    await expect(fitBalanced(m, X, Y, { balancer: { name: 'fixed', frozen: { regularization: 2 } } })).rejects.toThrow(/always has weight 1/);
    await expect(fitBalanced(m, X, Y, { balancer: 'mgda', representation: m.layers[1].name })).rejects.toThrow(/"representation" cannot be used with a model that has layer regularisation penalties/);
    tf.dispose([X, ...Y]);
    m.dispose();
  });
});

describe('BalancedTrainer: non-trainable variables', () => {
  it('are skipped as optimizer.minimize skips them (loss-only and Gram strategies)', () => {
    for (const balancer of ['loss-ratio', 'mgda']) {
      const w = tf.variable(tf.tensor2d([[1], [2]]), true);
      const frozen = tf.variable(tf.tensor2d([[3], [4]]), false);
      const xx = tf.tensor2d([[1, 1], [2, 0]]);
      const trainer = new BalancedTrainer({
        terms: () => ({ p: tf.mean(tf.square(xx.matMul(w).add(xx.matMul(frozen)))) as tf.Scalar, q: tf.mean(tf.square(xx.matMul(w))) as tf.Scalar }),
        optimizer: tf.train.sgd(0.01),
        balancer,
        variables: [w, frozen],
      });
      const res = trainer.step();
      expect(res.skipped).toBeUndefined();
      expect(Array.from(frozen.dataSync())).toEqual([3, 4]);
      expect(Array.from(w.dataSync())).not.toEqual([1, 2]);
      tf.dispose([w, frozen, xx]);
    }
  });
});
