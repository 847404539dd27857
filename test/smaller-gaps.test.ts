/**
 * Smaller gaps of issue 25, each a bug with its test:
 * - a compiled output without a loss: Keras trains the others; fitBalanced threw
 *   `TypeError: lossFns[i] is not a function` (and tfjs's own fit throws `lossFunction is not a
 *   function`). Reference: model.fit on the same network with only the output that has a loss.
 * - BalancedTrainer accepted unknown options silently (a Keras-style `lossWeights` left the weights at 1).
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/train/backend.js';
import { fitBalanced } from '../src/train/fit.js';
import { BalancedTrainer } from '../src/train/trainer.js';

beforeAll(() => initBackend('cpu'));

/** A trunk with heads `a` and `b`; `both`: the two-output model, else the one-output model (trunk + a), same initial weights. */
function net(both: boolean): tf.LayersModel {
  const input = tf.input({ shape: [3] });
  const h = tf.layers.dense({ units: 4, activation: 'tanh', kernelInitializer: tf.initializers.glorotNormal({ seed: 1 }) }).apply(input) as tf.SymbolicTensor;
  const a = tf.layers.dense({ units: 1, name: 'a', kernelInitializer: tf.initializers.glorotNormal({ seed: 2 }) }).apply(h) as tf.SymbolicTensor;
  const b = tf.layers.dense({ units: 1, name: 'b', kernelInitializer: tf.initializers.glorotNormal({ seed: 3 }) }).apply(h) as tf.SymbolicTensor;
  const m = tf.model({ inputs: input, outputs: both ? [a, b] : a });
  m.compile({ optimizer: tf.train.sgd(0.1), loss: both ? ({ a: 'meanSquaredError' } as never) : 'meanSquaredError' });
  return m;
}

describe('an output compiled without a loss', () => {
  it('is not trained and not a term; the others train as model.fit trains them alone (training and validation numbers)', async () => {
    const warn = console.warn;
    const tfjsWarnings: string[] = [];
    console.warn = (m: string) => void tfjsWarnings.push(m); // tfjs's compile warns about the missing loss
    let two: tf.LayersModel;
    try {
      two = net(true);
    } finally {
      console.warn = warn;
    }
    expect(tfjsWarnings.join('\n')).toMatch(/Output "b" is missing from loss dictionary/);
    const one = net(false);
    const x = tf.randomNormal([20, 3], 0, 1, 'float32', 5);
    const ya = tf.tidy(() => x.sum(1, true));
    const yb = tf.tidy(() => x.mean(1, true));
    const bBefore = two.getLayer('b').getWeights().map((w) => Array.from(w.dataSync()));
    const args = { epochs: 3, batchSize: 8, shuffle: false, validationSplit: 0.25, verbose: 0 as const };
    const ref = await one.fit(x, ya, args);
    const got = await fitBalanced(two, x, [ya, yb], args);
    expect(Object.keys(got.trainer.history.records[0].loss)).toEqual(['a']);
    expect(got.history['alpha/a']).toEqual([1, 1, 1]);
    for (const k of ['loss', 'val_loss']) {
      (ref.history[k] as number[]).forEach((v, i) => expect((got.history[k] as number[])[i], `${k}[${i}]`).toBeCloseTo(v, 5));
    }
    expect(got.history.a_loss).toEqual(got.history.loss);
    // b's head never moved; the trunk and a's head equal the one-output model's.
    expect(two.getLayer('b').getWeights().map((w) => Array.from(w.dataSync()))).toEqual(bBefore);
    const wOne = one.getWeights().map((w) => Array.from(w.dataSync()));
    const wTwo = [...two.layers[1].getWeights(), ...two.getLayer('a').getWeights()].map((w) => Array.from(w.dataSync()));
    wOne.forEach((w, i) => w.forEach((v, j) => expect(wTwo[i][j]).toBeCloseTo(v, 5)));
    tf.dispose([x, ya, yb]);
  });
});

describe('BalancedTrainer options', () => {
  const toy = () => {
    const w = tf.variable(tf.scalar(1));
    return { w, terms: () => ({ a: w.square() as tf.Scalar, b: w.abs() as tf.Scalar }) };
  };
  it('rejects an unknown option by name, with the closest known one (was: accepted silently)', () => {
    const { w, terms } = toy();
    const opt = tf.train.sgd(0.1);
    expect(() => new BalancedTrainer({ terms, optimizer: opt, variables: [w], sink: [] } as never)).toThrow(/BalancedTrainer: unknown option "sink"; did you mean "sinks"\?/);
    expect(() => new BalancedTrainer({ terms, optimiser: opt, variables: [w] } as never)).toThrow(/unknown option "optimiser"; did you mean "optimizer"\?/);
    expect(() => new BalancedTrainer({ terms, optimizer: opt, variables: [w], lossWeights: { a: 10 } } as never)).toThrow(/unknown option "lossWeights"; fixed per-term weights are the balancer's "baseWeights"/);
    w.dispose();
  });
});

describe('auto in fitBalanced with layer penalties and lossWeights', () => {
  it("trains (was: auto: option \"frozen\" unknown); every candidate keeps the penalties frozen at 1 and the lossWeights as base weights", async () => {
    const input = tf.input({ shape: [3] });
    const h = tf.layers.dense({ units: 4, kernelInitializer: tf.initializers.glorotNormal({ seed: 7 }), kernelRegularizer: tf.regularizers.l2({ l2: 0.01 }) }).apply(input) as tf.SymbolicTensor;
    const m = tf.model({ inputs: input, outputs: [
      tf.layers.dense({ units: 1, name: 'a', kernelInitializer: tf.initializers.glorotNormal({ seed: 8 }) }).apply(h) as tf.SymbolicTensor,
      tf.layers.dense({ units: 1, name: 'b', kernelInitializer: tf.initializers.glorotNormal({ seed: 9 }) }).apply(h) as tf.SymbolicTensor,
    ] });
    m.compile({ optimizer: tf.train.adam(0.01), loss: ['meanSquaredError', 'meanSquaredError'] });
    const x = tf.randomNormal([32, 3], 0, 1, 'float32', 3);
    const ya = tf.tidy(() => x.sum(1, true).mul(10));
    const yb = tf.tidy(() => x.mean(1, true));
    const hist = await fitBalanced(m, x, [ya, yb], {
      epochs: 3, batchSize: 8, verbose: 0, harm: false, warn: () => {}, lossWeights: { a: 0.5, b: 2 },
      balancer: { name: 'auto', trialSteps: 2, candidates: ['gradnorm', 'uncertainty'] } as never,
    });
    const t = hist.trainer.tournament!;
    expect(t.candidates.map((c) => c.label)).toEqual(expect.arrayContaining(['gradnorm', 'uncertainty']));
    expect(t.candidates.every((c) => !c.failed)).toBe(true);
    for (const r of hist.trainer.history.trials) expect(r.weight.regularization, `${r.candidate} step ${r.step}`).toBe(1);
    const eq = hist.trainer.history.trials.find((r) => r.candidate === 'equal')!;
    expect(eq.weight.a).toBeCloseTo(0.5, 12);
    expect(eq.weight.b).toBeCloseTo(2, 12);
    await hist.trainer.close();
    tf.dispose([x, ya, yb]);
  });
});
