/**
 * fitDatasetBalanced with the `fixed` balancer (all weights 1) against tfjs's own model.fitDataset
 * on the same model (same initial weights) and the same dataset: History (keys, values, params),
 * compiled metrics, validation (dataset and tensors), class weights, regularisers, BatchNormalization,
 * batchesPerEpoch, initialEpoch and final weights agree to 1e-5, on the cpu and the wasm backend.
 * Independent reference: tfjs-layers' model.fitDataset (src/engine/training_dataset.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../src/train/backend.js';
import { fitBalanced } from '../src/train/fit.js';
import { fitDatasetBalanced } from '../src/train/fit-dataset.js';

const TOL = 1e-5;

/** Two outputs (regression `reg`, binary `cls`), an L2-regularised trunk with BatchNormalization. */
function twoHeads(opt: () => tf.Optimizer, regularised = true): tf.LayersModel {
  const input = tf.input({ shape: [5] });
  let h = tf.layers.dense({ units: 8, activation: 'relu', kernelInitializer: tf.initializers.glorotNormal({ seed: 1 }), ...(regularised ? { kernelRegularizer: tf.regularizers.l2({ l2: 0.01 }) } : {}) }).apply(input) as tf.SymbolicTensor;
  h = tf.layers.batchNormalization({ momentum: 0.9 }).apply(h) as tf.SymbolicTensor;
  const reg = tf.layers.dense({ units: 1, name: 'reg', kernelInitializer: tf.initializers.glorotNormal({ seed: 2 }) }).apply(h) as tf.SymbolicTensor;
  const cls = tf.layers.dense({ units: 1, activation: 'sigmoid', name: 'cls', kernelInitializer: tf.initializers.glorotNormal({ seed: 3 }) }).apply(h) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: [reg, cls] });
  model.compile({ optimizer: opt(), loss: ['meanSquaredError', 'binaryCrossentropy'], metrics: { reg: 'mae', cls: 'acc' } });
  return model;
}

/** One output with an accuracy metric. */
function oneHead(opt: () => tf.Optimizer): tf.LayersModel {
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [5], units: 6, activation: 'tanh', kernelInitializer: tf.initializers.glorotNormal({ seed: 4 }) }),
      tf.layers.dense({ units: 1, activation: 'sigmoid', kernelInitializer: tf.initializers.glorotNormal({ seed: 5 }) }),
    ],
  });
  model.compile({ optimizer: opt(), loss: 'binaryCrossentropy', metrics: ['accuracy'] });
  return model;
}

function data(n: number, seed: number) {
  const x = tf.randomNormal([n, 5], 0, 1, 'float32', seed);
  const yReg = tf.tidy(() => x.sum(1, true).mul(3).add(1));
  const yCls = tf.tidy(() => x.slice([0, 0], [n, 1]).greater(0.3).cast('float32'));
  return { x, yReg, yCls };
}

/** A dataset of batches { xs, ys } cut from fixed tensors (fresh slices each time: fitDataset disposes them). */
function batches(d: { x: tf.Tensor; yReg: tf.Tensor; yCls: tf.Tensor }, size: number, ys: 'map' | 'array' | 'cls') {
  const n = d.x.shape[0];
  return tf.data.generator(function* () {
    for (let s = 0; s < n; s += size) {
      const k = Math.min(size, n - s);
      const cut = (t: tf.Tensor) => t.slice(s, k);
      const y = ys === 'map' ? { reg: cut(d.yReg), cls: cut(d.yCls) } : ys === 'array' ? [cut(d.yReg), cut(d.yCls)] : cut(d.yCls);
      yield { xs: cut(d.x), ys: y } as tf.TensorContainer;
    }
  });
}

function maxDiff(a: number[], b: number[]): number {
  expect(a.length).toBe(b.length);
  return Math.max(0, ...a.map((v, i) => Math.abs(v - b[i])));
}

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
  wa.forEach((w, i) => expect(maxDiff(Array.from(w.dataSync()), Array.from(wb[i].dataSync())), `weight ${a.weights[i].name}`).toBeLessThan(TOL));
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`fitDatasetBalanced + fixed equals model.fitDataset (${backend})`, () => {
    it('two outputs, regulariser, BatchNorm, metrics, validation dataset, classWeight (sgd); nothing leaks', async () => {
      await initBackend(backend);
      const train = data(40, 11);
      const val = data(16, 12);
      const a = twoHeads(() => tf.train.sgd(0.05));
      const b = twoHeads(() => tf.train.sgd(0.05));
      const args = { epochs: 3, verbose: 0 as const, validationData: batches(val, 6, 'map'), classWeight: { cls: { 0: 1, 1: 3 } } };
      let before = tf.memory().numTensors;
      const ref = await a.fitDataset(batches(train, 12, 'map'), args);
      const tfjsAdds = tf.memory().numTensors - before; // what model.fitDataset keeps on a first call
      before = tf.memory().numTensors;
      const got = await fitDatasetBalanced(b, batches(train, 12, 'array'), args);
      expect(tf.memory().numTensors - before).toBeLessThanOrEqual(tfjsAdds);
      expectSame(ref, got, a, b);
      expect(Object.keys(got.history)).toEqual(expect.arrayContaining([...Object.keys(ref.history), 'alpha/reg', 'alpha/cls', 'regularization']));
      expect(got.history['alpha/cls']).toEqual([1, 1, 1]);
      tf.dispose([train.x, train.yReg, train.yCls, val.x, val.yReg, val.yCls]);
    });

    it('one output, tensor validation data with validationBatchSize, batchesPerEpoch over a repeated dataset, initialEpoch (adam)', async () => {
      await initBackend(backend);
      const train = data(30, 13);
      const val = data(10, 14);
      const a = oneHead(() => tf.train.adam(0.01));
      const b = oneHead(() => tf.train.adam(0.01));
      const args = { epochs: 4, initialEpoch: 1, batchesPerEpoch: 2, verbose: 0 as const, validationData: [val.x, val.yCls] as [tf.Tensor, tf.Tensor], validationBatchSize: 4 };
      const ref = await a.fitDataset(batches(train, 8, 'cls').repeat(), args);
      const got = await fitDatasetBalanced(b, batches(train, 8, 'cls').repeat(), args);
      expectSame(ref, got, a, b);
      expect(got.epoch).toEqual([1, 2, 3]);
      tf.dispose([train.x, train.yReg, train.yCls, val.x, val.yReg, val.yCls]);
    });

    it('callbacks see the same batch and epoch logs; stopTraining from a callback ends the run as in fitDataset', async () => {
      await initBackend(backend);
      const train = data(24, 15);
      const logsOf = (model: tf.LayersModel) => {
        const seen: string[] = [];
        const cb = new tf.CustomCallback({
          onBatchEnd: async (batch, logs) => void seen.push(`b${batch}:${Object.keys(logs ?? {}).filter((k) => !k.includes('/') && k !== 'regularization').sort().join(',')}`),
          onEpochEnd: async (epoch) => {
            seen.push(`e${epoch}`);
            if (epoch === 1) model.stopTraining = true;
          },
        });
        return { seen, cb };
      };
      const a = twoHeads(() => tf.train.sgd(0.05));
      const b = twoHeads(() => tf.train.sgd(0.05));
      const ra = logsOf(a);
      const rb = logsOf(b);
      const ref = await a.fitDataset(batches(train, 10, 'map'), { epochs: 5, verbose: 0, callbacks: ra.cb });
      const got = await fitDatasetBalanced(b, batches(train, 10, 'map'), { epochs: 5, verbose: 0, callbacks: rb.cb });
      expect(rb.seen).toEqual(ra.seen);
      expectSame(ref, got, a, b);
      tf.dispose([train.x, train.yReg, train.yCls]);
    });
  });
}

describe('fitDatasetBalanced reads the dataset as fitDataset reads it', () => {
  it('one iterator per epoch (one for the run with batchesPerEpoch), each batch read once, its tensors disposed after the step', async () => {
    await initBackend('cpu');
    const train = data(24, 31);
    /** The dataset of `batches`, counting iterator() calls and elements read. */
    const counted = (base: tf.data.Dataset<tf.TensorContainer>) => {
      const c = { iterators: 0, elements: 0 };
      const ds = Object.create(base) as tf.data.Dataset<tf.TensorContainer>;
      ds.iterator = async () => {
        c.iterators += 1;
        const it = await base.iterator();
        return Object.assign(Object.create(it), { next: async () => { const r = await it.next(); if (!r.done) c.elements += 1; return r; } });
      };
      return { ds, c };
    };
    for (const extra of [{}, { batchesPerEpoch: 2 }]) {
      const a = twoHeads(() => tf.train.sgd(0.05));
      const b = twoHeads(() => tf.train.sgd(0.05));
      const ra = counted(extra.batchesPerEpoch ? batches(train, 8, 'map').repeat() : batches(train, 8, 'map'));
      const rb = counted(extra.batchesPerEpoch ? batches(train, 8, 'map').repeat() : batches(train, 8, 'map'));
      await a.fitDataset(ra.ds, { epochs: 3, verbose: 0, ...extra });
      const before = tf.memory().numTensors;
      await fitDatasetBalanced(b, rb.ds, { epochs: 3, verbose: 0, ...extra });
      expect(rb.c, JSON.stringify(extra)).toEqual(ra.c);
      expect(tf.memory().numTensors - before).toBeLessThanOrEqual(4); // the optimizer's slots at most, no batch kept
    }
    tf.dispose([train.x, train.yReg, train.yCls]);
  });
});

describe('fitDatasetBalanced: arguments and errors', () => {
  it('a dataset given to fitBalanced gets an error naming fitDatasetBalanced (was tfjs\'s "No data provided")', async () => {
    await initBackend('cpu');
    const train = data(8, 1);
    const model = twoHeads(() => tf.train.sgd(0.05));
    await expect(fitBalanced(model, batches(train, 4, 'map') as unknown as tf.Tensor, undefined as unknown as tf.Tensor, { epochs: 1 })).rejects.toThrow(/fitDatasetBalanced/);
    tf.dispose([train.x, train.yReg, train.yCls]);
  });

  it('rejects unknown keys with the closest one, validationSplit, seed and a missing epochs, naming them', async () => {
    await initBackend('cpu');
    const train = data(8, 2);
    const model = twoHeads(() => tf.train.sgd(0.05));
    const ds = batches(train, 4, 'map');
    await expect(fitDatasetBalanced(model, ds, { epochs: 1, batchPerEpoch: 2 } as never)).rejects.toThrow(/unknown argument "batchPerEpoch"; did you mean "batchesPerEpoch"/);
    await expect(fitDatasetBalanced(model, ds, { epochs: 1, validationSplit: 0.2 } as never)).rejects.toThrow(/"validationSplit" is not supported/);
    await expect(fitDatasetBalanced(model, ds, { epochs: 1, seed: 3 } as never)).rejects.toThrow(/"seed"/);
    await expect(fitDatasetBalanced(model, ds, {} as never)).rejects.toThrow(/"epochs"/);
    await expect(fitDatasetBalanced(model, train.x as never, { epochs: 1 })).rejects.toThrow(/not a tf\.data\.Dataset.*fitBalanced/);
    expect((model as unknown as { isTraining: boolean }).isTraining).toBe(false);
    tf.dispose([train.x, train.yReg, train.yCls]);
  });

  it('warns as fitDataset does when batchesPerEpoch outruns the dataset', async () => {
    await initBackend('cpu');
    const train = data(8, 3);
    const model = twoHeads(() => tf.train.sgd(0.05));
    const warnings: string[] = [];
    const h = await fitDatasetBalanced(model, batches(train, 4, 'map'), { epochs: 2, batchesPerEpoch: 3, verbose: 0, warn: (m) => warnings.push(m) });
    expect(warnings.some((w) => w.includes('ran out of data after 2 batches'))).toBe(true);
    expect(h.trainer.history.length).toBe(2);
    tf.dispose([train.x, train.yReg, train.yCls]);
  });
});

describe('fitDatasetBalanced with auto', () => {
  it('selects with monitor val_loss scored on the validation dataset; the History is the winner\'s', async () => {
    await initBackend('cpu');
    const train = data(48, 21);
    const val = data(16, 22);
    const model = twoHeads(() => tf.train.adam(0.01), false);
    const before = tf.memory().numTensors;
    const h = await fitDatasetBalanced(model, batches(train, 8, 'map'), {
      epochs: 3, verbose: 0, validationData: batches(val, 8, 'map'),
      balancer: { name: 'auto', monitor: 'val_loss', trialSteps: 2, candidates: ['fixed', 'gradnorm', 'uncertainty'] } as never,
      harm: false,
    });
    const t = h.trainer.tournament!;
    expect(t.phase).toBe('done');
    expect(t.winner).toBeTruthy();
    expect(t.score).toBe('user');
    expect(h.selectionEpochs!.length).toBeGreaterThan(0);
    expect(h.history.val_loss).toHaveLength(3);
    await h.trainer.close();
    expect(tf.memory().numTensors - before).toBeLessThan(40); // the model's optimizer slots, not the data
    tf.dispose([train.x, train.yReg, train.yCls, val.x, val.yReg, val.yCls]);
  });

  it("passes the run's planned steps to auto as totalSteps when the epoch length is known (batchesPerEpoch, a dataset of known size), not otherwise", async () => {
    await initBackend('cpu');
    const train = data(24, 24);
    const run = async (ds: tf.data.Dataset<tf.TensorContainer>, extra: Record<string, unknown>) => {
      const model = twoHeads(() => tf.train.adam(0.01), false);
      const h = await fitDatasetBalanced(model, ds, { epochs: 3, verbose: 0, harm: false, warn: () => {}, balancer: 'auto', ...extra });
      const total = h.trainer.tournament!.totalSteps;
      await h.trainer.close();
      return total;
    };
    expect(await run(batches(train, 8, 'map').repeat(), { batchesPerEpoch: 2 })).toBe(6);
    expect(await run(batches(train, 8, 'map').repeat(), { batchesPerEpoch: 2, initialEpoch: 1 })).toBe(4);
    const rows = [tf.unstack(train.x), tf.unstack(train.yReg), tf.unstack(train.yCls)];
    const sized = tf.data.zip({ xs: tf.data.array(rows[0]), ys: tf.data.zip({ reg: tf.data.array(rows[1]), cls: tf.data.array(rows[2]) }) }).batch(8);
    expect(sized.size).toBe(3);
    expect(await run(sized as tf.data.Dataset<tf.TensorContainer>, {})).toBe(9);
    expect(await run(batches(train, 8, 'map'), {})).toBeUndefined(); // a generator: size unknown
    tf.dispose([train.x, train.yReg, train.yCls, ...rows.flat()]);
  });

  it('refuses a training monitor key (the training data is not in memory), naming the option', async () => {
    await initBackend('cpu');
    const train = data(8, 23);
    const model = twoHeads(() => tf.train.adam(0.01));
    await expect(fitDatasetBalanced(model, batches(train, 4, 'map'), { epochs: 1, verbose: 0, balancer: { name: 'auto', monitor: 'cls_acc' } as never })).rejects.toThrow(/fitDatasetBalanced: balancer option "monitor" \("cls_acc"\)/);
    tf.dispose([train.x, train.yReg, train.yCls]);
  });
});
