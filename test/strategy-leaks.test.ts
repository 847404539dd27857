/**
 * No tensor is left behind by a whole run, for every registered strategy: build the shipped toy
 * problem (three terms), train 12 steps, close the trainer, dispose the optimizer and the toy; the
 * tensor count is back where it started. (The loop in trainer.test.ts checks per-step leaks on one
 * shared toy, whose variables diverge under some strategies so that later strategies' updates are
 * skipped; here each strategy gets a fresh toy and must really update.)
 *
 * Found by the benchmark suite: moco and excess-mtl kept their tensor state (moco's y, excess-mtl's
 * accumulated squared gradients) allocated after close(): one tensor per run.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { BalancedTrainer, fitBalanced, list } from '../src/index.js';
import { makeToyProblem } from '../src/train/toy.js';
import { useTestBackend } from './helpers.js';

beforeAll(() => useTestBackend());

/** The strategies keeping tensor state between updates (they leaked before close() released it). */
const WITH_TENSOR_STATE = ['moco', 'excess-mtl'];

describe('whole-run tensor leaks', () => {
  it('makeToyProblem then dispose() leaves no tensor (the variables\' initial values included)', () => {
    const start = tf.memory().numTensors;
    makeToyProblem().dispose();
    expect(tf.memory().numTensors).toBe(start);
  });

  it('every registered strategy: 12 steps on the toy, close(), optimizer and toy disposed: no tensor left', async () => {
    const strategies = list().filter((s) => s.kind !== 'selector');
    for (const name of WITH_TENSOR_STATE) expect(strategies.map((s) => s.name)).toContain(name);
    for (const { name } of strategies) {
      await new Promise((res) => setImmediate(res)); // yield: a long synchronous loop starves vitest's worker RPC
      const start = tf.memory().numTensors;
      const toy = makeToyProblem({ seed: 7 });
      const optimizer = tf.train.adam(1e-2); // with slots, released by its own dispose()
      const trainer = new BalancedTrainer({ terms: toy.terms, optimizer, balancer: name, variables: toy.variables, keepHistory: true, warn: () => {} });
      for (let i = 0; i < 12; i++) trainer.step();
      expect(trainer.history.records.some((r) => !r.skipped), `${name}: at least one step applied`).toBe(true);
      const state = trainer.balancer.state();
      if (WITH_TENSOR_STATE.includes(name)) expect(state.tensors, `${name}: has tensor state`).toBeTruthy();
      await trainer.close();
      // close() moves the tensor state off the backend without losing it
      expect(trainer.balancer.state(), `${name}: state() after close()`).toEqual(state);
      optimizer.dispose();
      toy.dispose();
      expect(tf.memory().numTensors, `${name}: tensors left after the run`).toBe(start);
    }
  }, 600_000);

  it.each(WITH_TENSOR_STATE)('%s: a run continued after close() equals the uninterrupted run, bit for bit', async (name) => {
    const run = async (closeAt: number | null) => {
      const toy = makeToyProblem({ seed: 3 });
      const optimizer = tf.train.sgd(1e-2);
      const trainer = new BalancedTrainer({ terms: toy.terms, optimizer, balancer: name, variables: toy.variables });
      const weights: Record<string, number>[] = [];
      for (let i = 0; i < 10; i++) {
        if (i === closeAt) await trainer.close();
        weights.push(trainer.step().weights);
      }
      const values = toy.variables.map((v) => Array.from(v.dataSync()));
      await trainer.close();
      optimizer.dispose();
      toy.dispose();
      return { weights, values };
    };
    const start = tf.memory().numTensors;
    expect(await run(5)).toEqual(await run(null));
    expect(tf.memory().numTensors).toBe(start);
  });

  it('auto with moco and excess-mtl among the candidates: dropped candidates\' balancers released; none left after close()', async () => {
    const start = tf.memory().numTensors;
    const toy = makeToyProblem({ seed: 5 });
    const optimizer = tf.train.sgd(1e-2);
    const trainer = new BalancedTrainer({
      terms: toy.terms,
      optimizer,
      balancer: { name: 'auto', trialSteps: 2, candidates: ['fixed', 'moco', 'excess-mtl'] },
      variables: toy.variables,
      warn: () => {},
    });
    for (let i = 0; i < 30; i++) trainer.step();
    expect(trainer.tournament?.phase).toBe('done');
    await trainer.close();
    optimizer.dispose();
    toy.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });

  it('fitBalanced with moco: the trainer it returns holds no tensor once the fit ends', async () => {
    const input = tf.input({ shape: [4] });
    const h = tf.layers.dense({ units: 8, activation: 'tanh', kernelInitializer: tf.initializers.glorotNormal({ seed: 1 }) }).apply(input) as tf.SymbolicTensor;
    const o1 = tf.layers.dense({ units: 1, name: 'a', kernelInitializer: tf.initializers.glorotNormal({ seed: 2 }) }).apply(h) as tf.SymbolicTensor;
    const o2 = tf.layers.dense({ units: 1, name: 'b', kernelInitializer: tf.initializers.glorotNormal({ seed: 3 }) }).apply(h) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: [o1, o2] });
    model.compile({ optimizer: tf.train.sgd(1e-2), loss: ['meanSquaredError', 'meanSquaredError'] });
    const x = tf.randomNormal([32, 4], 0, 1, 'float32', 1);
    const y1 = tf.tidy(() => x.sum(1, true));
    const y2 = tf.tidy(() => x.slice([0, 0], [32, 1]).mul(3));
    const before = tf.memory().numTensors;
    const out = await fitBalanced(model, x, [y1, y2], { balancer: 'moco', epochs: 2, batchSize: 16, verbose: 0 });
    expect(out.trainer.balancer.state().tensors).toBeTruthy();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, y1, y2]);
    model.dispose();
  });
});
