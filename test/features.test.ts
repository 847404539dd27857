/**
 * Issue 8: base weights, partial balancing (frozen terms), cadence (updateEvery, epochs, warm-up),
 * gradient accumulation over micro-batches, variants under one name, weight bounds, and logs that
 * keep raw loss, weight, weighted loss and regulariser apart.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BalancedTrainer,
  create,
  fitBalanced,
  getStrategy,
  JsonlSink,
  OptionError,
  readJsonl,
  register,
  unregister,
  type Strategy,
  type StepInput,
} from '../src/index.js';
import { makeToy, useTestBackend } from './helpers.js';

const diag = (...d: number[]) => d.map((v, i) => d.map((_, j) => (i === j ? v : 0)));
const close = (a: readonly number[], b: readonly number[], tol: number) =>
  a.length === b.length && a.every((v, i) => Math.abs(v - b[i]) <= tol * Math.max(1, Math.abs(b[i])));

/** A test strategy that records what it is given; weights 2, 3, 4, ... (its own term count). */
const seen: { terms: string[][]; inputs: StepInput[] } = { terms: [], inputs: [] };
const spy: Strategy<{ gram: boolean; stats: boolean }, { calls: number }> = {
  name: 'spy-features',
  summary: 'records its inputs (test strategy)',
  options: getStrategy('fixed').options as never,
  needs: () => ({ gradients: 'gram', stats: true }),
  init: (_o, terms) => {
    seen.terms.push([...terms]);
    return { calls: 0 };
  },
  update: (_o, s, input) => {
    seen.inputs.push(JSON.parse(JSON.stringify(input)));
    return { weights: input.losses.map((_, i) => i + 2 + s.calls), state: { calls: s.calls + 1 }, info: { k: input.losses.map(() => 7) } };
  },
};
const lossSpy: Strategy = { ...spy, name: 'spy-losses', needs: () => ({ gradients: 'none' }) };

beforeAll(async () => {
  await useTestBackend();
  register(spy);
  register(lossSpy);
});
afterAll(() => {
  unregister(spy.name);
  unregister(lossSpy.name);
});
const reset = () => {
  seen.terms.length = 0;
  seen.inputs.length = 0;
};
const stats3 = { meanAbs: [1, 2, 3], maxAbs: [4, 5, 6] };
const gram3 = [[1, 0.1, 0.2], [0.1, 4, 0.3], [0.2, 0.3, 9]];

describe('base weights and frozen terms (config keys through create())', () => {
  it('{ name, baseWeights, frozen } works: base × adaptive, frozen fixed', () => {
    const b = create({ name: 'gradnorm', baseWeights: { kl: 0.1 }, frozen: { adv: 0.5 } });
    b.bind(['recon', 'kl', 'adv']);
    expect(b.balancedTerms).toEqual(['recon', 'kl']);
    expect(b.weights).toEqual([1, 0.1, 0.5]);
    const r = b.update({ losses: [2, 1, -3], gram: gram3 });
    expect(r.weights).toEqual([1, 0.1, 0.5]); // GradNorm's first step uses w(0) = 1
    const r2 = b.update({ losses: [1, 1, -3], gram: gram3 });
    // GradNorm normalises its own two weights to sum 2; the prior and the frozen weight stay outside.
    const adaptive = [r2.weights[0], r2.weights[1] / 0.1];
    expect(adaptive[0] + adaptive[1]).toBeCloseTo(2, 12);
    expect(r2.weights[2]).toBe(0.5);
  });
  it('the strategy sees only the balanced subset: its T, losses, Gram sub-matrix, statistics', () => {
    reset();
    const b = create({ name: 'spy-features', frozen: { b: 0.25 } });
    b.bind(['a', 'b', 'c']);
    expect(seen.terms).toEqual([['a', 'c']]);
    const r = b.update({ losses: [10, 20, 30], gram: gram3, stats: stats3 });
    expect(seen.inputs[0].losses).toEqual([10, 30]);
    expect(seen.inputs[0].gram).toEqual([[1, 0.2], [0.2, 9]]);
    expect(seen.inputs[0].stats).toEqual({ meanAbs: [1, 3], maxAbs: [4, 6] });
    expect(r.weights).toEqual([2, 0.25, 3]);
    expect(r.info!.k[0]).toBe(7);
    expect(Number.isNaN(r.info!.k[1])).toBe(true); // not defined for a frozen term
  });
  it('a frozen term may have a negative loss under a strategy that needs non-negative ones', () => {
    const b = create({ name: 'dwa', frozen: { adv: 1 } });
    b.bind(['recon', 'adv']);
    for (let i = 0; i < 3; i++) expect(b.update({ losses: [1 / (i + 1), -5] }).weights).toHaveLength(2);
    const c = create('dwa');
    c.bind(['recon', 'adv']);
    expect(() => c.update({ losses: [1, -5] })).toThrow(/"adv" is -5.*frozen/);
  });
  it('uncertainty with a frozen term: regulariser 0 for it, weights c·exp(−s) for the others', () => {
    const b = create({ name: 'uncertainty', frozen: { z: 3 }, baseWeights: { x: 2 } });
    b.bind(['x', 'z', 'y']);
    const r = b.update({ losses: [1, 1, 1] });
    expect(r.weights).toEqual([2 * 0.5, 3, 0.5]);
    expect(r.regularizer).toEqual([0, 0, 0]);
  });
  it('validation errors name the option, the term and the value', () => {
    expect(() => create({ name: 'gradnorm', baseWeights: { kl: -1 } })).toThrow(OptionError);
    expect(() => create({ name: 'gradnorm', baseWeights: { kl: -1 } })).toThrow(/option "baseWeights\.kl" got -1.*term "kl"/);
    expect(() => create({ name: 'gradnorm', frozen: { adv: Number.NaN } })).toThrow(/"frozen\.adv" got NaN/);
    expect(() => create({ name: 'gradnorm', frozen: ['adv'] })).toThrow(/"frozen"/);
    const b = create({ name: 'gradnorm', baseWeights: { kll: 0.1 } });
    expect(() => b.bind(['recon', 'kl'])).toThrow(/"baseWeights\.kll" got 0\.1; "kll" is not a term; terms are recon, kl/);
    const c = create({ name: 'gradnorm', frozen: { a: 1, b: 1 } });
    expect(() => c.bind(['a', 'b'])).toThrow(/every term is frozen/);
    const d = create({ name: 'gradnorm', frozen: { a: 1 }, baseWeights: { a: 2 } });
    expect(() => d.bind(['a', 'b'])).toThrow(/"baseWeights\.a".*also frozen/);
    expect(() => create({ name: 'fixed', updateEvery: 0 })).toThrow(/"updateEvery" got 0/);
    expect(() => create({ name: 'fixed', updateEvery: 'batch' })).toThrow(/"updateEvery" got "batch"/);
    expect(() => create({ name: 'fixed', warmup: { steps: -2 } })).toThrow(/"warmup\.steps" got -2/);
    expect(() => create({ name: 'fixed', bounds: { min: 2, max: 1 } })).toThrow(/min must not exceed max/);
    expect(() => create({ name: 'fixed', bounds: { mx: 1 } })).toThrow(/"bounds\.mx".*unknown option/);
  });
  it('the checkpoint holds the settings and bookkeeping: a reloaded balancer continues identically', () => {
    const spec = { name: 'gradnorm', baseWeights: { kl: 0.1 }, frozen: { adv: 0.5 }, updateEvery: 2, warmup: { steps: 1 }, bounds: { max: 1.5 } };
    const inputs = [1, 2, 3, 4, 5, 6].map((k) => ({ losses: [2 / k, 1 / k, -1], gram: [[4, 0.5, 0], [0.5, 1 / k, 0], [0, 0, 1]] }));
    const a = create(spec);
    a.bind(['recon', 'kl', 'adv']);
    inputs.slice(0, 3).forEach((x) => a.update(x));
    const saved = JSON.parse(JSON.stringify(a.state()));
    expect(saved.core.config).toMatchObject({ baseWeights: { kl: 0.1 }, frozen: { adv: 0.5 }, updateEvery: 2 });
    const b = create(spec);
    b.load(saved);
    const ra = inputs.slice(3).map((x) => a.update(x));
    const rb = inputs.slice(3).map((x) => b.update(x));
    expect(rb).toEqual(ra);
    // a state saved with other settings: warned, and the saved settings win
    const warns: string[] = [];
    const c = create({ name: 'gradnorm', warn: (m: string) => warns.push(m) });
    c.load(saved);
    expect(warns.join()).toMatch(/other balancer settings/);
    expect(c.config.frozen).toEqual({ adv: 0.5 });
  });
});

describe('cadence: updateEvery, epochs, warm-up', () => {
  it("updateEvery k: the strategy runs at steps 0, k, 2k; in between the weights are reused and wantsUpdate() is false", () => {
    reset();
    const b = create({ name: 'spy-features', updateEvery: 3 });
    b.bind(['a', 'b']);
    const calls: boolean[] = [];
    const w: number[][] = [];
    for (let t = 0; t < 7; t++) {
      const wants = b.wantsUpdate();
      calls.push(wants);
      const r = b.update(wants ? { losses: [1, 1], gram: diag(1, 1), stats: { meanAbs: [1, 1], maxAbs: [1, 1] } } : { losses: [1, 1] });
      expect(r.updated).toBe(wants);
      w.push(r.weights);
    }
    expect(calls).toEqual([true, false, false, true, false, false, true]);
    expect(seen.inputs.map((i) => i.step)).toEqual([0, 1, 2]);
    expect(w).toEqual([[2, 3], [2, 3], [2, 3], [3, 4], [3, 4], [3, 4], [4, 5]]);
  });
  it('uncertainty between updates keeps its regulariser, so the logged total stays consistent', () => {
    const b = create({ name: 'uncertainty', updateEvery: 2, optimizer: 'sgd', lr: 0.5 });
    b.bind(['a', 'b']);
    b.update({ losses: [4, 0.1] });
    const r1 = b.update({ losses: [4, 0.1] }); // reused: s(1) not yet used
    const r2 = b.update({ losses: [4, 0.1] });
    expect(r1.regularizer).toEqual([0, 0]);
    // s ← s − lr·(−½e^{−s}L + ½): the big loss raises s_a, the small one lowers s_b (½·s_b < 0)
    expect(r2.regularizer![0]).toBeGreaterThan(0);
    expect(r2.regularizer![1]).toBeLessThan(0);
    const r3 = b.update({ losses: [4, 0.1] });
    expect(r3.regularizer).toEqual(r2.regularizer);
    expect(r3.weights).toEqual(r2.weights);
  });
  it("updateEvery 'epoch': no call in epoch 0, then once per epoch with the previous epoch's mean losses", () => {
    reset();
    const b = create({ name: 'spy-losses', updateEvery: 'epoch' });
    b.bind(['a', 'b']);
    const plan = [[0, 1, 10], [0, 3, 30], [1, 5, 50], [1, 7, 70], [1, 9, 90], [2, 2, 20]];
    const updated = plan.map(([epoch, x, y]) => {
      expect(b.wantsUpdate(epoch)).toBe(epoch > 0 && (epoch !== 1 || x === 5) && (epoch !== 2 || x === 2));
      return b.update({ losses: [x, y], epoch }).updated;
    });
    expect(updated).toEqual([false, false, true, false, false, true]);
    expect(seen.inputs.map((i) => i.losses)).toEqual([[2, 20], [7, 70]]);
    expect(seen.inputs.map((i) => i.epoch)).toEqual([1, 2]);
  });
  it('balancer.endEpoch() marks the boundary when no epoch index is passed', () => {
    reset();
    const b = create({ name: 'spy-losses', updateEvery: 'epoch' });
    b.bind(['a']);
    b.update({ losses: [1] });
    b.update({ losses: [3] });
    b.endEpoch();
    expect(b.wantsUpdate()).toBe(true);
    b.update({ losses: [100] });
    expect(seen.inputs.map((i) => [i.losses, i.epoch])).toEqual([[[2], 1]]);
  });
  it('warm-up: fixed weights for N steps, then the strategy starts at its own step 0', () => {
    reset();
    const b = create({ name: 'spy-losses', warmup: { steps: 2, weights: { a: 5 } }, baseWeights: { b: 0.5 } });
    b.bind(['a', 'b']);
    const r = [0, 1, 2].map(() => b.update({ losses: [1, 1] }));
    expect(r.map((x) => x.weights)).toEqual([[5, 0.5], [5, 0.5], [2, 1.5]]);
    expect(r.map((x) => x.updated)).toEqual([false, false, true]);
    expect(seen.inputs.map((i) => i.step)).toEqual([0]);
  });
  it('a skipped step (NaN loss) leaves the cadence untouched: the due update happens at the next step', () => {
    reset();
    const warns: string[] = [];
    const b = create({ name: 'spy-losses', updateEvery: 2, warn: (m: string) => warns.push(m) });
    b.bind(['a']);
    b.update({ losses: [1] });
    b.update({ losses: [1] });
    const before = b.state();
    expect(b.update({ losses: [Number.NaN] }).skipped).toMatch(/term "a"/);
    // only the call counter that messages name advances (issue 12: messages name the trainer's step)
    const after = b.state();
    expect(after.core!.cadence!.tick).toBe(before.core!.cadence!.tick + 1);
    expect(JSON.stringify({ ...after, core: { ...after.core, cadence: { ...after.core!.cadence, tick: before.core!.cadence!.tick } } })).toBe(JSON.stringify(before));
    expect(b.update({ losses: [1] }).updated).toBe(true);
  });
  it('the trainer reads per-term gradients only on refresh steps; every: k is the same as updateEvery: k', async () => {
    const run = (spec: object, every?: number) => {
      const toy = makeToy([1, 20], { seed: 3 });
      const trainer = new BalancedTrainer({ terms: toy.terms, optimizer: tf.train.sgd(0.05), variables: toy.variables, balancer: spec as never, every });
      const res = Array.from({ length: 7 }, () => trainer.step());
      toy.dispose();
      return { res, records: trainer.history.records };
    };
    const a = run({ name: 'grad-magnitude', statistic: 'norm', updateEvery: 3 });
    expect(a.records.map((r) => r.gradNorm !== undefined)).toEqual([true, false, false, true, false, false, true]);
    expect(a.res.map((r) => r.refreshed)).toEqual([true, false, false, true, false, false, true]);
    expect(a.records[1].weight).toEqual(a.records[0].weight);
    const b = run({ name: 'grad-magnitude', statistic: 'norm' }, 3);
    expect(b.records.map((r) => r.weight)).toEqual(a.records.map((r) => r.weight));
    expect(() => new BalancedTrainer({ terms: () => ({}), optimizer: tf.train.sgd(0.1), balancer: { name: 'fixed', updateEvery: 2 }, every: 3 })).toThrow(
      /"every" is 3 but the balancer has updateEvery 2/,
    );
  });
  it("DWA's average: 'epoch' gets the epoch index from the trainer: weights constant within an epoch", async () => {
    const toy = makeToy([1, 3], { seed: 4 });
    const trainer = new BalancedTrainer({ terms: toy.terms, optimizer: tf.train.sgd(0.05), variables: toy.variables, balancer: { name: 'dwa', average: 'epoch' } });
    for (let e = 0; e < 4; e++) {
      for (let s = 0; s < 3; s++) trainer.step();
      trainer.endEpoch();
    }
    const recs = trainer.history.records;
    expect(recs.map((r) => r.epoch)).toEqual([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]);
    for (let e = 0; e < 4; e++) {
      const w = recs.slice(3 * e, 3 * e + 3).map((r) => r.weight.t0);
      expect(new Set(w).size).toBe(1);
    }
    expect(recs[9].weight.t0).not.toBe(1); // epoch 3 uses the means of epochs 1 and 2
    toy.dispose();
  });
  it("fitBalanced with updateEvery: 'epoch' refreshes once per epoch from the second epoch on", async () => {
    const input = tf.input({ shape: [3] });
    const h = tf.layers.dense({ units: 4, activation: 'tanh', kernelInitializer: tf.initializers.glorotNormal({ seed: 1 }) }).apply(input) as tf.SymbolicTensor;
    const o1 = tf.layers.dense({ units: 1, kernelInitializer: tf.initializers.glorotNormal({ seed: 2 }), name: 'o1' }).apply(h) as tf.SymbolicTensor;
    const o2 = tf.layers.dense({ units: 1, kernelInitializer: tf.initializers.glorotNormal({ seed: 3 }), name: 'o2' }).apply(h) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: [o1, o2] });
    model.compile({ optimizer: tf.train.sgd(0.01), loss: ['meanSquaredError', 'meanSquaredError'] });
    const x = tf.randomNormal([16, 3], 0, 1, 'float32', 5);
    const y1 = tf.randomNormal([16, 1], 0, 1, 'float32', 6);
    const y2 = tf.randomNormal([16, 1], 0, 10, 'float32', 7);
    const out = await fitBalanced(model, x, [y1, y2], { balancer: { name: 'grad-magnitude', statistic: 'norm', updateEvery: 'epoch' }, epochs: 3, batchSize: 8 });
    const recs = out.trainer.history.records;
    expect(recs.map((r) => r.gradNorm !== undefined)).toEqual([false, false, true, false, true, false]);
    expect(recs[0].weight).toEqual({ o1: 1, o2: 1 });
    expect(recs[2].weight.o2).not.toBe(1);
    tf.dispose([x, y1, y2]);
    model.dispose();
  });
});

describe('gradient accumulation', () => {
  /** A two-head model on 16 samples; `sel` picks the rows the terms see. */
  function problem() {
    const W = tf.variable(tf.randomNormal([3, 5], 0, 0.7, 'float32', 11));
    const h1 = tf.variable(tf.randomNormal([5, 1], 0, 0.7, 'float32', 12));
    const h2 = tf.variable(tf.randomNormal([5, 1], 0, 0.7, 'float32', 13));
    const x = tf.randomNormal([16, 3], 0, 1, 'float32', 14);
    const y1 = tf.randomNormal([16, 1], 0, 1, 'float32', 15);
    const y2 = tf.randomNormal([16, 1], 0, 5, 'float32', 16);
    let rows: [number, number] = [0, 16];
    const terms = () => {
      const [a, n] = rows;
      const z = tf.tanh(tf.matMul(x.slice(a, n), W));
      return {
        fit: tf.losses.meanSquaredError(y1.slice(a, n), tf.matMul(z, h1)) as tf.Scalar,
        aux: tf.losses.meanSquaredError(y2.slice(a, n), tf.matMul(z, h2)) as tf.Scalar,
      };
    };
    return {
      vars: [W, h1, h2],
      terms,
      select: (a: number, n: number) => (rows = [a, n]),
      dispose: () => tf.dispose([W, h1, h2, x, y1, y2]),
    };
  }
  const cases: [string, object][] = [
    ['gradnorm (Gram)', { name: 'gradnorm', lr: 0.1 }],
    ['grad-magnitude max-mean (statistics)', 'grad-magnitude' as never],
    ['uncertainty (losses only)', { name: 'uncertainty', lr: 0.1 }],
    ['gradnorm with updateEvery 2 (steps between refreshes take the loss-only path)', { name: 'gradnorm', lr: 0.1, updateEvery: 2 }],
  ];
  for (const [label, spec] of cases) {
    it(`${label}: 4 micro-batches give the same losses, Gram, weights and parameters as one batch`, () => {
      const runs = [1, 4].map((k) => {
        const p = problem();
        const trainer = new BalancedTrainer({ terms: p.terms, optimizer: tf.train.sgd(0.05), variables: p.vars, balancer: spec as never });
        const n0 = tf.memory().numTensors;
        const res = Array.from({ length: 4 }, () =>
          k === 1 ? trainer.step() : trainer.step({ microBatches: k, setMicroBatch: (i) => p.select(i * 4, 4) }),
        );
        expect(tf.memory().numTensors).toBe(n0);
        const params = p.vars.map((v) => Array.from(v.dataSync()));
        p.dispose();
        return { res, params };
      });
      const [one, four] = runs;
      for (let s = 0; s < 4; s++) {
        expect(close(Object.values(four.res[s].losses), Object.values(one.res[s].losses), 1e-5)).toBe(true);
        expect(close(Object.values(four.res[s].weights), Object.values(one.res[s].weights), 1e-4)).toBe(true);
        if (one.res[s].gradNorms) expect(close(Object.values(four.res[s].gradNorms!), Object.values(one.res[s].gradNorms!), 1e-4)).toBe(true);
      }
      one.params.forEach((p, i) => expect(close(four.params[i], p, 1e-4)).toBe(true));
    });
  }
  it('unequal micro-batches are weighted by their sizes', () => {
    const runs = [0, 1].map((split) => {
      const p = problem();
      const trainer = new BalancedTrainer({ terms: p.terms, optimizer: tf.train.sgd(0.05), variables: p.vars, balancer: 'gradnorm' });
      const parts: [number, number][] = [[0, 8], [8, 4], [12, 4]];
      const r = split
        ? trainer.step({ microBatches: 3, setMicroBatch: (i) => p.select(...parts[i]), sizes: [8, 4, 4] })
        : trainer.step();
      p.dispose();
      return r;
    });
    expect(close(Object.values(runs[1].losses), Object.values(runs[0].losses), 1e-5)).toBe(true);
    expect(close(Object.values(runs[1].gradNorms!), Object.values(runs[0].gradNorms!), 1e-4)).toBe(true);
  });
  it('bad micro-batch options are errors naming the option', () => {
    const p = problem();
    const trainer = new BalancedTrainer({ terms: p.terms, optimizer: tf.train.sgd(0.05), variables: p.vars });
    expect(() => trainer.step({ microBatches: 0, setMicroBatch: () => {} })).toThrow(/"microBatches" got 0/);
    expect(() => trainer.step({ microBatches: 2, setMicroBatch: 3 as never })).toThrow(/"setMicroBatch" must be a function/);
    expect(() => trainer.step({ microBatches: 2, setMicroBatch: () => {}, sizes: [1, -1] })).toThrow(/"sizes" entry 1 is -1/);
    p.dispose();
  });
});

describe('variants under one name', () => {
  it("grad-magnitude 'mean-mean' defaults to Modulus Sym's EMA 0.01 with the first term as reference", () => {
    const b = create({ name: 'grad-magnitude', statistic: 'mean-mean' });
    b.bind(['pde', 'bc']);
    // λ̂_bc = mean_pde / mean_bc = 1 / 0.1 = 10; λ_bc = 0.99·1 + 0.01·10 = 1.09
    const r = b.update({ losses: [1, 1], stats: { meanAbs: [1, 0.1], maxAbs: [5, 5] } });
    expect(r.weights[0]).toBe(1);
    expect(r.weights[1]).toBeCloseTo(1.09, 12);
  });
  it("grad-magnitude 'max-mean' keeps the paper's α = 0.9; an explicit alpha always wins", () => {
    const r = create('grad-magnitude');
    r.bind(['r', 'b']);
    // λ̂ = max_r / mean_b = 5 / 0.5 = 10 → 0.1 + 9 = 9.1
    expect(r.update({ losses: [1, 1], stats: { meanAbs: [1, 0.5], maxAbs: [5, 1] } }).weights[1]).toBeCloseTo(9.1, 12);
    const s = create({ name: 'grad-magnitude', statistic: 'mean-mean', alpha: 1 });
    s.bind(['r', 'b']);
    expect(s.update({ losses: [1, 1], stats: { meanAbs: [1, 0.5], maxAbs: [5, 1] } }).weights[1]).toBeCloseTo(2, 12);
  });
  it("grad-magnitude numerator 'mean' with the norm statistic is jaxpi's grad-norm weighting", () => {
    const b = create({ name: 'grad-magnitude', statistic: 'norm', numerator: 'mean', alpha: 1 });
    b.bind(['a', 'b', 'c']);
    // norms 1, 2, 3 → mean 2 → λ = (2, 1, 2/3): every term gets a weight, none is fixed at 1
    const w = b.update({ losses: [1, 1, 1], gram: diag(1, 4, 9) }).weights;
    expect(w[0]).toBeCloseTo(2, 12);
    expect(w[1]).toBeCloseTo(1, 12);
    expect(w[2]).toBeCloseTo(2 / 3, 12);
    const m = create({ name: 'grad-magnitude', statistic: 'norm', numerator: 'mean', alpha: 0.1 });
    m.bind(['a', 'b']);
    // jaxpi: running average keeping 0.9 of the old weight: 0.9·1 + 0.1·(1.5/1) = 1.05
    expect(m.update({ losses: [1, 1], gram: diag(1, 4) }).weights[0]).toBeCloseTo(1.05, 12);
  });
  it('gradnorm on a chosen subset of shared variables: the Gram matrix is formed over those only', () => {
    const toy = makeToy([1, 5], { seed: 7 });
    const extra = tf.variable(tf.randomNormal([8, 8], 0, 0.3, 'float32', 70));
    const terms = () => {
      const z = tf.tanh(tf.matMul(tf.tanh(tf.matMul(toy.x, toy.trunk)), extra)); // `extra` is the last shared layer
      return Object.fromEntries(toy.heads.map((h, i) => [`t${i}`, tf.mean(tf.square(tf.sub(tf.matMul(z, h), toy.ys[i]))).mul([1, 5][i])])) as Record<string, tf.Scalar>;
    };
    // expected: ‖∂L_i/∂extra‖ computed directly
    const expected = [0, 1].map((i) =>
      tf.tidy(() => {
        const g = tf.variableGrads(() => terms()[`t${i}`], [extra]).grads[extra.name];
        return Math.sqrt(tf.sum(tf.square(g)).dataSync()[0]);
      }),
    );
    const trainer = new BalancedTrainer({ terms, optimizer: tf.train.sgd(0.01), variables: [toy.trunk, extra, ...toy.heads], shared: [extra], balancer: 'gradnorm' });
    const r = trainer.step();
    expect(close([r.gradNorms!.t0, r.gradNorms!.t1], expected, 1e-4)).toBe(true);
    toy.dispose();
    extra.dispose();
  });
  it("uncertainty: regression ½·exp(−s) and classification exp(−s), per term by name", () => {
    const b = create({ name: 'uncertainty', form: { cls: 'classification' }, initialLogVariance: Math.log(2) });
    b.bind(['reg', 'cls']);
    const r = b.update({ losses: [1, 1] });
    expect(r.weights[0]).toBeCloseTo(0.25, 12);
    expect(r.weights[1]).toBeCloseTo(0.5, 12);
    expect(r.regularizer![0]).toBeCloseTo(Math.log(2) / 2, 12);
  });
  it("MGDA offers the normalisations none / l2 / loss / loss+", () => {
    for (const normalization of ['none', 'l2', 'loss', 'loss+']) {
      const b = create({ name: 'mgda', normalization });
      b.bind(['a', 'b']);
      const w = b.update({ losses: [2, 0.5], gram: [[4, 0.5], [0.5, 1]] }).weights;
      expect(w.every((v) => Number.isFinite(v) && v >= 0)).toBe(true);
    }
    expect(() => create({ name: 'mgda', normalization: 'l1' })).toThrow(/normalization/);
  });
});

describe('weight bounds', () => {
  it('min / max clamp the balanced weights after the strategy, and name the terms they changed', () => {
    const b = create({ name: 'grad-magnitude', statistic: 'norm', alpha: 1, bounds: { min: 0.5, max: 10 } });
    b.bind(['a', 'b', 'c']);
    const r = b.update({ losses: [1, 1, 1], gram: diag(1, 1e-4, 16) });
    // unbounded: (1, 100, 0.25)
    expect(r.weights).toEqual([1, 10, 0.5]);
    expect(r.clamped).toEqual(['b', 'c']);
    const r2 = b.update({ losses: [1, 1, 1], gram: diag(1, 1, 1) });
    expect(r2.weights).toEqual([1, 1, 1]);
    expect(r2.clamped).toBeUndefined();
  });
  it('maxChange limits the relative change per refresh (factor 1 + maxChange either way)', () => {
    const b = create({ name: 'grad-magnitude', statistic: 'norm', alpha: 1, bounds: { maxChange: 0.5 } });
    b.bind(['a', 'b']);
    const w = [0, 1, 2].map(() => b.update({ losses: [1, 1], gram: diag(1, 1e-4) }).weights[1]);
    expect(w).toEqual([1.5, 2.25, 3.375]);
    const down = b.update({ losses: [1, 1], gram: diag(1, 1e4) });
    expect(down.weights[1]).toBeCloseTo(3.375 / 1.5, 12);
    expect(down.clamped).toEqual(['b']);
  });
  it('bounds leave frozen terms alone; the trainer logs clamped terms in the step record', () => {
    const b = create({ name: 'fixed', weights: { a: 100 }, frozen: { c: 50 }, bounds: { max: 3 } });
    b.bind(['a', 'b', 'c']);
    expect(b.update({ losses: [1, 1, 1] }).weights).toEqual([3, 1, 50]);
    const toy = makeToy([1, 30], { seed: 2 });
    const trainer = new BalancedTrainer({
      terms: toy.terms,
      optimizer: tf.train.sgd(0.01),
      variables: toy.variables,
      balancer: { name: 'grad-magnitude', statistic: 'norm', reference: 't1', bounds: { max: 2 } },
    });
    trainer.step();
    expect(trainer.history.last!.clamped).toEqual(['t0']);
    expect(trainer.history.last!.weight.t0).toBe(2);
    toy.dispose();
  });
});

describe('properties', () => {
  it('for random Gram matrices, bounds and frozen weights: frozen terms fixed, min/max hold, maxChange holds, clamped is exact', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 1e-6, max: 1e6, noNaN: true }), { minLength: 3, maxLength: 3 }),
        fc.double({ min: 0.01, max: 1, noNaN: true }),
        fc.double({ min: 1, max: 50, noNaN: true }),
        fc.double({ min: 0.05, max: 2, noNaN: true }),
        fc.double({ min: 0, max: 10, noNaN: true }),
        (d, min, max, maxChange, frozen) => {
          const b = create({ name: 'grad-magnitude', statistic: 'norm', alpha: 1, frozen: { f: frozen }, bounds: { min, max, maxChange } });
          b.bind(['a', 'f', 'c']);
          let prev = b.weights;
          for (let k = 0; k < 3; k++) {
            const r = b.update({ losses: [1, 1, 1], gram: diag(d[0], d[1], d[(k + 2) % 3]) });
            if (r.weights[1] !== frozen) return false;
            for (const i of [0, 2]) {
              const w = r.weights[i];
              if (w < min || w > max) return false;
              const f = 1 + maxChange;
              if (prev[i] > 0 && (w > prev[i] * f * (1 + 1e-12) || w < (prev[i] / f) * (1 - 1e-12)) && w !== min && w !== max) return false;
            }
            if ((r.clamped ?? []).includes('f')) return false;
            prev = r.weights;
          }
          return true;
        },
      ),
      { numRuns: 200, seed: 8 },
    );
  });
});

describe('partial balancing in the trainer', () => {
  it('gradnorm balances two of three terms (weights sum to 2); the frozen one stays at its weight', () => {
    const toy = makeToy([1, 10, 100], { seed: 9, names: ['a', 'b', 'adv'] });
    const trainer = new BalancedTrainer({
      terms: toy.terms,
      optimizer: tf.train.sgd(0.001),
      variables: toy.variables,
      balancer: { name: 'gradnorm', lr: 0.05, frozen: { adv: 0.01 } },
    });
    for (let i = 0; i < 6; i++) trainer.step();
    for (const r of trainer.history.records) {
      expect(r.weight.adv).toBe(0.01);
      expect(r.weight.a + r.weight.b).toBeCloseTo(2, 5);
    }
    expect(trainer.history.last!.weight.a).not.toBe(1);
    toy.dispose();
  });
});

describe('logs keep raw loss, weight, weighted loss and regulariser apart', () => {
  it('an uncertainty run with a negative total is explained by its fields; the JSONL sink keeps them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lb-features-'));
    const path = join(dir, 'run.jsonl');
    const toy = makeToy([0.01, 0.02], { seed: 5 });
    // small losses: s goes negative fast (s* = log(2cL) < 0), so ½·s makes the total negative
    const trainer = new BalancedTrainer({
      terms: toy.terms,
      optimizer: tf.train.sgd(0.01),
      variables: toy.variables,
      balancer: { name: 'uncertainty', lr: 0.2 },
      sinks: [new JsonlSink(path)],
    });
    for (let i = 0; i < 30; i++) trainer.step();
    await trainer.close();
    const last = trainer.history.last!;
    expect(last.total).toBeLessThan(0);
    const { records } = readJsonl(path);
    expect(records).toHaveLength(30);
    for (const r of records) {
      const terms = Object.keys(r.loss);
      expect(terms).toEqual(['t0', 't1']);
      for (const t of terms) {
        expect(r.loss[t]).toBeGreaterThanOrEqual(0);
        expect(r.weighted[t]).toBeCloseTo(r.loss[t] * r.weight[t], 10);
      }
      const explained = terms.reduce((acc, t) => acc + r.weighted[t] + r.regularizer![t], 0);
      expect(r.total).toBeCloseTo(explained, 10);
    }
    expect(records[29]).toEqual(JSON.parse(JSON.stringify(last)));
    toy.dispose();
    rmSync(dir, { recursive: true, force: true });
  });
});
