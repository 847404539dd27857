/** Checkpoints restore the optimizer's hyperparameters (or warn naming each one that differs). */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadState, saveState } from '../src/node/checkpoint.js';
import { BalancedTrainer } from '../src/train/trainer.js';
import { initBackend } from '../src/train/backend.js';

beforeAll(() => initBackend('cpu'));

/** One step of a tiny problem with `opt`, from w = [1, 2]; returns the new w. */
function stepWith(opt: tf.Optimizer, w: tf.Variable): number[] {
  const trainer = new BalancedTrainer({ terms: () => ({ a: tf.sum(tf.square(w)) as tf.Scalar, b: tf.sum(w) as tf.Scalar }), optimizer: opt, variables: [w] });
  trainer.step();
  return Array.from(w.dataSync());
}

describe('checkpoint: optimizer hyperparameters', () => {
  const cases: [string, () => tf.Optimizer, () => tf.Optimizer][] = [
    ['sgd', () => tf.train.sgd(0.05), () => tf.train.sgd(0.5)],
    ['momentum', () => tf.train.momentum(0.05, 0.9, true), () => tf.train.momentum(0.2, 0.5, false)],
    ['adam', () => tf.train.adam(0.01, 0.8, 0.99, 1e-6), () => tf.train.adam(0.1)],
    ['rmsprop', () => tf.train.rmsprop(0.01, 0.8, 0.1, 1e-6, true), () => tf.train.rmsprop(0.1)],
  ];
  for (const [name, saved, other] of cases) {
    it(`${name}: restored from the file; the next step equals the uninterrupted run's`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'lb-hyper-'));
      const w1 = tf.variable(tf.tensor1d([1, 2]));
      const opt1 = saved();
      const t1 = new BalancedTrainer({ terms: () => ({ a: tf.sum(tf.square(w1)) as tf.Scalar, b: tf.sum(w1) as tf.Scalar }), optimizer: opt1, variables: [w1] });
      t1.step();
      const path = join(dir, 'c.json');
      await saveState(path, t1, { optimizer: opt1, variables: [w1] });
      const want = stepWith(opt1, w1);

      const w2 = tf.variable(tf.tensor1d([0, 0]));
      const opt2 = other();
      const t2 = new BalancedTrainer({ terms: () => ({ a: tf.sum(tf.square(w2)) as tf.Scalar, b: tf.sum(w2) as tf.Scalar }), optimizer: opt2, variables: [w2] });
      const warnings: string[] = [];
      await loadState(path, t2, { optimizer: opt2, variables: [w2], warn: (m) => warnings.push(m) });
      expect(warnings).toEqual([]);
      expect(opt2.getConfig()).toEqual(opt1.getConfig());
      expect(stepWith(opt2, w2)).toEqual(want);
      tf.dispose([w1, w2]);
    });
  }

  it("hyperparameters: 'keep' keeps the given ones and warns naming each that differs", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lb-hyper-'));
    const w = tf.variable(tf.tensor1d([1, 2]));
    const opt1 = tf.train.adam(0.01, 0.8);
    const t1 = new BalancedTrainer({ terms: () => ({ a: tf.sum(tf.square(w)) as tf.Scalar }), optimizer: opt1, variables: [w] });
    t1.step();
    const path = join(dir, 'c.json');
    await saveState(path, t1, { optimizer: opt1 });
    const opt2 = tf.train.adam(0.1);
    const t2 = new BalancedTrainer({ terms: () => ({ a: tf.sum(tf.square(w)) as tf.Scalar }), optimizer: opt2, variables: [w] });
    const warnings: string[] = [];
    await loadState(path, t2, { optimizer: opt2, hyperparameters: 'keep', warn: (m) => warnings.push(m) });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/optimizer Adam hyperparameters differ from the checkpoint and kept as given .*learningRate 0.1 \(checkpoint: 0.01\), beta1 0.9 \(checkpoint: 0.8\)/);
    expect(opt2.getConfig().learningRate).toBe(0.1);
    w.dispose();
  });
});
