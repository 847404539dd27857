/**
 * `BalancedTrainer.stepAsync()` (values read with `await data()`) against `step()` (`dataSync()`): on
 * wasm and cpu, the same records and the same variables after a few steps, for loss-only strategies
 * (with and without a regulariser), Gram strategies (with and without gradient statistics) and a
 * refresh cadence; no tensor leak; a non-finite gradient is skipped the same way; `represent` refused.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { list } from '../src/core/registry.js';
import { BalancedTrainer, type BalancedTrainerOptions } from '../src/train/trainer.js';
import type { StepRecord } from '../src/core/history.js';
import { makeToy, useTestBackend } from './helpers.js';

type Spec = BalancedTrainerOptions['balancer'];
const SPECS: [string, Spec, number?][] = [
  ['fixed', 'fixed'],
  ['uncertainty (loss-only, regulariser)', 'uncertainty'],
  ['dwa (loss-only)', 'dwa'],
  ['gradnorm (Gram)', 'gradnorm'],
  ['grad-magnitude max-mean (stats)', { name: 'grad-magnitude' }],
  ['mgda (Gram), every 2', 'mgda', 2],
];

function run(spec: Spec, every: number | undefined, async: boolean): Promise<{ records: StepRecord[]; vars: number[][] }> {
  const toy = makeToy([1, 30, 0.1], { seed: 7 });
  const trainer = new BalancedTrainer({ terms: toy.terms, optimizer: tf.train.adam(0.05), balancer: spec, variables: toy.variables, every });
  return (async () => {
    for (let i = 0; i < 5; i++) {
      if (async) await trainer.stepAsync();
      else trainer.step();
    }
    const vars = toy.variables.map((v) => Array.from(v.dataSync()));
    toy.dispose();
    return { records: trainer.history.records.map((r) => JSON.parse(JSON.stringify(r))), vars };
  })();
}

describe.each(['wasm', 'cpu'])('stepAsync on %s', (backend) => {
  beforeAll(async () => {
    await useTestBackend();
    await tf.setBackend(backend);
  });
  afterAll(async () => {
    await tf.setBackend('wasm');
  });

  it.each(SPECS)('%s: the same records and variables as step()', async (_, spec, every) => {
    const sync = await run(spec, every, false);
    const asyncRun = await run(spec, every, true);
    expect(asyncRun.records).toEqual(sync.records);
    expect(asyncRun.vars).toEqual(sync.vars);
  });

  it('auto: stepAsync runs the selection as step() does (was: never selected, equal weights throughout): the same records, trials, tournament and variables', async () => {
    const autoRun = async (async: boolean) => {
      const toy = makeToy([1, 30, 0.1], { seed: 7 });
      const trainer = new BalancedTrainer({
        terms: toy.terms, optimizer: tf.train.adam(0.05), variables: toy.variables, harm: false, warn: () => {},
        balancer: { name: 'auto', trialSteps: 3, candidates: ['gradnorm', 'uncertainty', 'dwa'] } as never,
      });
      // 9 selection steps (rounds of 3 and 6), then the winner's probation (4 × 9 steps)
      for (let i = 0; i < 48; i++) {
        if (async) await trainer.stepAsync();
        else trainer.step();
      }
      const out = {
        records: JSON.parse(JSON.stringify(trainer.history.records)) as StepRecord[],
        trials: JSON.parse(JSON.stringify(trainer.history.trials)) as StepRecord[],
        tournament: JSON.parse(JSON.stringify(trainer.tournament)),
        vars: toy.variables.map((v) => Array.from(v.dataSync())),
      };
      await trainer.close();
      toy.dispose();
      return out;
    };
    const sync = await autoRun(false);
    const asyncRun = await autoRun(true);
    expect(sync.tournament.phase).toBe('done');
    expect(sync.tournament.probation).toMatchObject({ round: 2, steps: 36 });
    expect(asyncRun.tournament).toEqual(sync.tournament);
    expect(asyncRun.trials).toEqual(sync.trials);
    expect(asyncRun.records).toEqual(sync.records);
    expect(asyncRun.records).toHaveLength(48);
    expect(asyncRun.vars).toEqual(sync.vars);
  });

  it('leaks no tensor (steady state after the optimizer made its slots)', async () => {
    for (const spec of ['fixed', 'gradnorm'] as const) {
      const toy = makeToy([1, 2], { seed: 3 });
      const trainer = new BalancedTrainer({ terms: toy.terms, optimizer: tf.train.adam(0.01), balancer: spec, variables: toy.variables });
      await trainer.stepAsync();
      const before = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) await trainer.stepAsync();
      expect(tf.memory().numTensors, spec).toBe(before);
      toy.dispose();
    }
  });

  it('a non-finite gradient with finite losses: skipped as by step(), state kept, no leak', async () => {
    const w = tf.variable(tf.scalar(0), true, `w_async_${backend}_${Math.random().toString(36).slice(2)}`);
    const terms = () => ({ a: tf.sqrt(tf.abs(w)) as tf.Scalar, b: w.square() as tf.Scalar });
    const warnings: string[] = [];
    const trainer = new BalancedTrainer({ terms, optimizer: tf.train.sgd(0.1), balancer: { name: 'fixed', warn: (m: string) => warnings.push(m) } as never, variables: [w] });
    const before = tf.memory().numTensors;
    const r = await trainer.stepAsync();
    expect(r.skipped).toMatch(/gradient of variable .* is not finite/);
    expect(w.dataSync()[0]).toBe(0);
    expect(tf.memory().numTensors).toBe(before);
    w.dispose();
  });

  it('represent and every Jacobian strategy: the same records and variables as step() (was: refused / "needs the Jacobian" errors)', async () => {
    const repRun = async (async: boolean) => {
      const toy = makeToy([1, 2], { seed: 4 });
      const z = () => tf.tanh(tf.matMul(toy.x, toy.trunk));
      const trainer = new BalancedTrainer({
        represent: { trunk: z, heads: (zz: tf.Tensor) => ({ t0: zz.mean().square() as tf.Scalar, t1: zz.square().mean() as tf.Scalar }) },
        optimizer: tf.train.sgd(0.1), balancer: 'mgda', variables: toy.variables,
      });
      for (let i = 0; i < 3; i++) {
        if (async) await trainer.stepAsync();
        else trainer.step();
      }
      const out = { records: JSON.parse(JSON.stringify(trainer.history.records)), vars: toy.variables.map((v) => Array.from(v.dataSync())) };
      toy.dispose();
      return out;
    };
    expect(await repRun(true)).toEqual(await repRun(false));
    const jacobian = list().filter((s) => s.kind !== 'selector' && /jacobian/.test(s.reads)).map((s) => s.name);
    expect(jacobian.length).toBeGreaterThan(0);
    for (const name of jacobian) {
      const sync = await run(name, undefined, false);
      const asyncRun = await run(name, undefined, true);
      expect(asyncRun.records, name).toEqual(sync.records);
      expect(asyncRun.vars, name).toEqual(sync.vars);
    }
  });
});
