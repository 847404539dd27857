/**
 * Jacobian-kind strategies (issue 11): the contract (Balancer: checks, tensor state, snapshots;
 * BalancedTrainer: wiring, representation mode rejected) and every Jacobian-kind strategy of the
 * registry through the shared properties (finite output, permutation equivariance where it applies,
 * state round trip, no tensor leak), on wasm and cpu; reference values from torchjd / LibMTL in
 * test/fixtures/jacobian.json (provenance inside).
 */
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Balancer } from '../src/core/balancer.js';
import { create, getStrategy, list } from '../src/core/registry.js';
import { BalancedTrainer } from '../src/train/trainer.js';
import { graddropDirection } from '../strategies/graddrop.js';
import { trimmedMeanDirection } from '../strategies/trimmed-mean.js';
import { makeToy, tidyValue, useTestBackend } from './helpers.js';
import { lcg } from './fixtures/degenerate-cases.js';

const fixture = () => JSON.parse(readFileSync(new URL('./fixtures/jacobian.json', import.meta.url), 'utf8')) as {
  source: string;
  provenance: Record<string, string>;
  cases: Record<string, any>[];
};
const jacobianNames = list().filter((s) => s.kind === 'jacobian').map((s) => s.name);
const termNames = (T: number) => Array.from({ length: T }, (_, i) => `t${i}`);
const randomJ = (T: number, P: number, seed: number) => {
  const r = lcg(seed);
  return Array.from({ length: T }, (_, i) => Array.from({ length: P }, () => (r() * 2 - 1) * 10 ** (i % 3 - 1)));
};
const relDev = (a: ArrayLike<number>, b: ArrayLike<number>) =>
  Math.max(...Array.from(a, (x, i) => Math.abs(x - b[i]) / Math.max(1, Math.abs(b[i]))));

/** One balancer update on an explicit Jacobian; returns weights, direction values and the result. */
function updateOn(b: Balancer, J: number[][], losses?: number[]) {
  return tidyValue(() => {
    const r = b.update({ losses: losses ?? J.map((_, i) => 1 + i), jacobian: tf.tensor2d(J), tf });
    return { weights: r.weights, skipped: r.skipped, direction: r.direction ? Array.from(r.direction.dataSync()) : null, info: r.info };
  });
}

describe.each(['wasm', 'cpu'])('backend %s', (backend) => {
  beforeAll(async () => {
    await useTestBackend();
    await tf.setBackend(backend);
    await tf.ready();
  });
  afterAll(async () => {
    await useTestBackend();
    await tf.setBackend('wasm');
  });

  it('reference values (torchjd / LibMTL, test/fixtures/jacobian.json)', () => {
    const f = fixture();
    for (const c of f.cases.filter((x) => x.method === 'trimmed-mean' || x.method === 'graddrop')) {
      const got = tidyValue(() => {
        const J = tf.tensor2d(c.jacobian);
        if (c.method === 'trimmed-mean') return Array.from(trimmedMeanDirection(tf, J, c.trimNumber).dataSync());
        return Array.from(graddropDirection(tf, J, tf.tensor1d(c.U), c.leak).dataSync());
      });
      expect(relDev(got, c.direction), `${c.method} ${c.id}`).toBeLessThan(1e-5);
    }
  });

  it('moco and excess-mtl: LibMTL, four consecutive updates through a Balancer (tensor state carried on the backend)', () => {
    const f = fixture();
    const seq = f.cases.filter((c) => c.method === 'moco' || c.method === 'excess-mtl');
    expect(seq.length).toBe(6);
    const before = tf.memory().numTensors;
    for (const c of seq) {
      const b = c.method === 'moco' ? create('moco') : create({ name: 'excess-mtl', stepSize: c.stepSize });
      b.bind(termNames(c.steps[0].jacobian.length));
      for (const [t, s] of c.steps.entries()) {
        const r = updateOn(b, s.jacobian, s.losses);
        if (c.method === 'moco') {
          expect(relDev(r.weights, s.lambda_), `${c.id} step ${t} λ`).toBeLessThan(1e-5);
          expect(relDev(r.direction!, s.direction), `${c.id} step ${t} direction`).toBeLessThan(1e-4);
        } else {
          expect(r.direction).toBeNull();
          expect(relDev(r.weights, s.weights), `${c.id} step ${t} weights`).toBeLessThan(1e-5);
        }
      }
      b.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('tensor state: written into state() as numbers, rebuilt by load(); a rollback snapshot restores the replaced tensors', () => {
    const b = create('moco');
    b.bind(termNames(3));
    const before = tf.memory().numTensors;
    updateOn(b, randomJ(3, 4, 1));
    expect(tf.memory().numTensors).toBe(before + 1); // y
    const s1 = b.state();
    expect((s1.tensors as Record<string, { shape: number[] }>).y.shape).toEqual([3, 4]);
    const snap = b.snapshot();
    expect(snap.tensors).toBe('live');
    const after1 = updateOn(b, randomJ(3, 4, 2));
    b.load(snap); // the step is rolled back: y of step 1 again
    expect(b.state()).toEqual(s1);
    expect(updateOn(b, randomJ(3, 4, 2))).toEqual(after1);
    b.settle();
    expect(tf.memory().numTensors).toBe(before + 1);
    const c = create('moco');
    c.load(JSON.parse(JSON.stringify(s1)));
    expect(updateOn(c, randomJ(3, 4, 2))).toEqual(after1);
    expect(() => c.load({ ...s1, tensors: { y: { shape: [3, 4], values: [1] } } })).toThrow(/field "tensors.y"/);
    b.dispose();
    c.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  describe.each(jacobianNames)('%s (shared properties)', (name) => {
    const T = 5;
    const P = 7;
    it('finite direction of shape [P] and finite weights; no tensor leak; state JSON round trip', () => {
      const b = create(name);
      b.bind(termNames(T));
      const before = tf.memory().numTensors;
      const outs = [0, 1, 2].map((k) => updateOn(b, randomJ(T, P, 11 + k)));
      for (const o of outs) {
        expect(o.skipped).toBeUndefined();
        expect(o.weights.every(Number.isFinite)).toBe(true);
        if (o.direction) {
          expect(o.direction).toHaveLength(P);
          expect(o.direction.every(Number.isFinite)).toBe(true);
        }
      }
      // Resume from a JSON copy of the state: the same next update.
      const saved = JSON.parse(JSON.stringify(b.state()));
      const c = create(name);
      c.load(saved);
      const next = randomJ(T, P, 99);
      expect(updateOn(c, next)).toEqual(updateOn(b, next));
      b.dispose();
      c.dispose();
      expect(tf.memory().numTensors).toBe(before);
    });

    it('permutation equivariance: permuting the terms permutes the weights and keeps the direction', () => {
      const opts = getStrategy(name).options.parse({}) as Record<string, unknown>;
      if ('seed' in opts) {
        // random strategies: equivariant given the same random draws (the draw does not depend on the order)
      }
      const J = randomJ(T, P, 5);
      const perm = [3, 0, 4, 1, 2];
      const a = create(name);
      a.bind(termNames(T));
      const p = create(name);
      p.bind(termNames(T));
      const losses = J.map((_, i) => 1 + i);
      const ra = updateOn(a, J, losses);
      const rp = updateOn(p, perm.map((i) => J[i]), perm.map((i) => losses[i]));
      perm.forEach((src, k) => expect(rp.weights[k]).toBeCloseTo(ra.weights[src], 5));
      if (ra.direction) expect(relDev(rp.direction!, ra.direction)).toBeLessThan(1e-5);
      a.dispose();
      p.dispose();
    });
  });
});

describe('through BalancedTrainer', () => {
  beforeAll(() => useTestBackend());

  /** Per-term gradients of the toy, by variable, computed independently (one variableGrads per term). */
  function termGrads(toy: ReturnType<typeof makeToy>, names: string[]) {
    return names.map((n) => tidyValue(() => {
      const { grads } = tf.variableGrads(() => toy.terms()[n], toy.variables);
      return Object.fromEntries(Object.entries(grads).map(([k, g]) => [k, Array.from(g.dataSync())]));
    }));
  }

  it('trimmed-mean: the trunk moves by −lr·3·median of the three gradients per coordinate, each head by its own gradient', () => {
    const toy = makeToy([1, 20, 0.05], { seed: 3 });
    const names = ['t0', 't1', 't2'];
    const g = termGrads(toy, names);
    const trunk0 = Array.from(toy.trunk.dataSync());
    const heads0 = toy.heads.map((h) => Array.from(h.dataSync()));
    const lr = 0.01;
    const optimizer = tf.train.sgd(lr);
    const trainer = new BalancedTrainer({ terms: toy.terms, optimizer, balancer: 'trimmed-mean', variables: toy.variables });
    const before = tf.memory().numTensors;
    const r = trainer.step();
    expect(tf.memory().numTensors).toBe(before);
    expect(r.weights).toEqual({ t0: 1, t1: 1, t2: 1 });
    expect(r.gradNorms!.t1).toBeGreaterThan(0);
    const tn = toy.trunk.name;
    const want = trunk0.map((w, p) => {
      const v = [g[0][tn][p], g[1][tn][p], g[2][tn][p]].sort((a, b) => a - b);
      return w - lr * 3 * v[1];
    });
    expect(relDev(Array.from(toy.trunk.dataSync()), want)).toBeLessThan(1e-6);
    toy.heads.forEach((h, i) => {
      const wantH = heads0[i].map((w, p) => w - lr * g[i][h.name][p]);
      expect(relDev(Array.from(h.dataSync()), wantH)).toBeLessThan(1e-6);
    });
    optimizer.dispose();
    toy.dispose();
  });

  it.each(['graddrop', 'moco', 'trimmed-mean'])('%s with every: 3 and Adam: the reuse steps apply (gradients keyed in the variables\' order, so Adam\'s slots stay with their variables)', (name) => {
    // Found by `npm run bench` (issue 15): the refresh step put the shared variables first, the reuse
    // step keeps the variables' order, and tfjs's Adam keeps its slots by position in the map.
    const toy = makeToy([1, 20, 0.05], { seed: 3 });
    const optimizer = tf.train.adam(0.01);
    const trainer = new BalancedTrainer({ terms: toy.terms, optimizer, balancer: name, variables: toy.variables, every: 3, warn: () => undefined });
    for (let i = 0; i < 7; i++) trainer.step();
    const slots = (optimizer as unknown as { accumulatedFirstMoment: { originalName: string; variable: tf.Variable }[] }).accumulatedFirstMoment;
    expect(slots.map((s) => s.originalName)).toEqual(toy.variables.map((v) => `${v.name}/m`));
    slots.forEach((s, i) => expect(s.variable.shape).toEqual(toy.variables[i].shape));
    optimizer.dispose();
    toy.dispose();
  });

  it('trimmed-mean with trimNumber 0 takes the same steps as the plain sum (fixed), heads unit', () => {
    const run = (balancer: string | { name: string; trimNumber: number }) => {
      const toy = makeToy([1, 20, 0.05], { seed: 5 });
      const optimizer = tf.train.adam(0.01);
      const trainer = new BalancedTrainer({ terms: toy.terms, optimizer, balancer: balancer as never, variables: toy.variables });
      for (let k = 0; k < 4; k++) trainer.step();
      const out = toy.variables.map((v) => Array.from(v.dataSync()));
      optimizer.dispose();
      toy.dispose();
      return out;
    };
    const a = run({ name: 'trimmed-mean', trimNumber: 0 });
    const b = run('fixed');
    a.forEach((v, i) => expect(relDev(v, b[i])).toBeLessThan(1e-5));
  });

  it('graddrop: seeded, reproducible, resumes exactly from trainer.state(); every: 2 reuses the weights in between', () => {
    const make = (every = 1) => {
      const toy = makeToy([1, 20, 0.05], { seed: 7 });
      const optimizer = tf.train.sgd(0.01);
      const trainer = new BalancedTrainer({ terms: toy.terms, optimizer, balancer: { name: 'graddrop', seed: 4 }, variables: toy.variables, every });
      return { toy, optimizer, trainer };
    };
    const a = make();
    const b = make();
    for (let k = 0; k < 3; k++) {
      a.trainer.step();
      b.trainer.step();
    }
    const saved = JSON.parse(JSON.stringify(a.trainer.state()));
    const c = make();
    c.toy.variables.forEach((v, i) => v.assign(a.toy.variables[i]));
    c.trainer.load(saved);
    for (let k = 0; k < 2; k++) {
      a.trainer.step();
      c.trainer.step();
    }
    b.trainer.step();
    b.trainer.step();
    a.toy.variables.forEach((v, i) => {
      expect(Array.from(v.dataSync())).toEqual(Array.from(b.toy.variables[i].dataSync()));
      expect(Array.from(v.dataSync())).toEqual(Array.from(c.toy.variables[i].dataSync()));
    });
    const e = make(2);
    const rs = [0, 1, 2, 3].map(() => e.trainer.step());
    expect(rs.map((r) => r.refreshed)).toEqual([true, false, true, false]);
    expect(rs.every((r) => r.skipped === undefined)).toBe(true);
    for (const x of [a, b, c, e]) {
      x.optimizer.dispose();
      x.toy.dispose();
    }
  });

  it('representation mode and micro-batches are rejected with an error naming the option', () => {
    const toy = makeToy([1, 2], { seed: 1 });
    const optimizer = tf.train.sgd(0.01);
    expect(
      () => new BalancedTrainer({ represent: { trunk: () => tf.matMul(toy.x, toy.trunk), heads: () => ({}) }, optimizer, balancer: 'graddrop' }),
    ).toThrow(/Jacobian kind.*option "represent"/);
    const t = new BalancedTrainer({ terms: toy.terms, optimizer, balancer: 'graddrop', variables: toy.variables });
    expect(() => t.step({ microBatches: 2, setMicroBatch: () => {} })).toThrow(/microBatches.*"graddrop" \(Jacobian kind\)/);
    expect(() => create({ name: 'graddrop', frozen: { a: 1 } })).toThrow(/option "frozen".*Jacobian kind/);
    expect(() => create({ name: 'trimmed-mean' }).bind(['a', 'b'])).toThrow(/needs at least 3 balanced terms; got 2/);
    optimizer.dispose();
    toy.dispose();
  });

  it('list() names the kind and what it reads', () => {
    for (const n of jacobianNames) {
      const info = list().find((s) => s.name === n)!;
      expect(info.kind).toBe('jacobian');
      expect(info.reads).toBe('losses+jacobian');
    }
    expect(list().find((s) => s.name === 'pcgrad')!.kind).toBe('gram');
  });
});
