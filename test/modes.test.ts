/**
 * Fast gradient reading: one forward pass with T backward passes (exact mode), representation mode
 * (Gram over ∂L_i/∂z, one VJP through the trunk), `every: k`, and their errors and memory hygiene.
 */
import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Balancer } from '../src/core/balancer.js';
import {
  perTermGradients, representationGradients, setTapeWorks, tapeWorks, termGradientsOnce, withTape,
} from '../src/train/grads.js';
import { BalancedTrainer } from '../src/train/trainer.js';
import type { Strategy, StepInput } from '../src/core/types.js';
import { makeToy, useTestBackend } from './helpers.js';

beforeAll(() => useTestBackend());
afterEach(() => setTapeWorks(null));

const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => a.sub(b).abs().max().dataSync()[0]);

/** A gram strategy that records what it is given and returns fixed weights. */
function spyStrategy(weights: number[], seen: StepInput[]): Balancer {
  const s: Strategy = {
    name: 'spy',
    summary: 'records its input',
    options: { parse: (x: unknown) => x, safeParse: (x: unknown) => ({ success: true, data: x }) } as never,
    needs: () => ({ gradients: 'gram', stats: true }),
    init: () => null,
    update: (_o, state, input) => {
      seen.push(input);
      return { weights: [...weights], state };
    },
  };
  return new Balancer(s, {}) as Balancer;
}

/** Trunk z = tanh(x W), heads: per-term linear heads; `trunk`/`heads` split for representation mode. */
function split(toy: ReturnType<typeof makeToy>, names: string[], scales: number[]) {
  const trunk = () => tf.tanh(tf.matMul(toy.x, toy.trunk));
  const heads = (z: tf.Tensor) =>
    Object.fromEntries(
      toy.heads.map((h, i) => [names[i], tf.mean(tf.square(tf.sub(tf.matMul(z, h), toy.ys[i]))).mul(scales[i]) as tf.Scalar]),
    );
  return { trunk, heads };
}

describe('withTape: one recorded forward pass, several backward passes', () => {
  it('the engine supports it here', () => {
    expect(tapeWorks()).toBe(true);
  });

  it('gives the gradients of several outputs and a vector-Jacobian product, without leaking', () => {
    const v = tf.variable(tf.tensor1d([1, 2, 3]), true, `tape-v-${Math.random()}`);
    const before = tf.memory().numTensors;
    const got = tf.tidy(() => {
      const r = withTape((tape) => {
        const sq = tf.square(v); // [1, 4, 9]
        const y1 = tf.sum(sq);
        const [g1] = tape.grads(y1, [v]); // 2v
        const [vjp] = tape.grads(sq, [v], tf.tensor1d([1, 0, -1])); // 2v ⊙ dy
        const [none] = tape.grads(tf.scalar(5), [v]);
        expect(none).toBeNull();
        return { g1: g1!, vjp: vjp! };
      });
      return [Array.from(r.g1.dataSync()), Array.from(r.vjp.dataSync())];
    });
    expect(got).toEqual([[2, 4, 6], [2, 0, -6]]);
    expect(tf.memory().numTensors).toBe(before);
    v.dispose();
  });

  it('releases everything when the function throws', () => {
    const v = tf.variable(tf.tensor1d([1, 2]), true, `tape-w-${Math.random()}`);
    const before = tf.memory().numTensors;
    expect(() =>
      tf.tidy(() =>
        withTape((tape) => {
          const y = tf.sum(tf.exp(v));
          tape.grads(y, [v]);
          throw new Error('boom');
        }),
      ),
    ).toThrow('boom');
    expect(tf.memory().numTensors).toBe(before);
    // and the engine still works afterwards
    const g = tf.tidy(() => Array.from(tf.grad((x: tf.Tensor) => tf.sum(tf.square(x)))(tf.tensor1d([3])).dataSync()));
    expect(g).toEqual([6]);
    v.dispose();
  });
});

describe('exact mode from one forward pass', () => {
  it('termGradientsOnce equals one variableGrads per term', () => {
    const toy = makeToy([1, 7, 0.3]);
    const names = ['t0', 't1', 't2'];
    tf.tidy(() => {
      const a = perTermGradients(toy.terms, names, toy.variables, () => {});
      const b = termGradientsOnce(toy.terms, names, toy.variables, () => {});
      names.forEach((_, i) => {
        expect(maxDiff(a.values[i], b.values[i])).toBe(0);
        expect([...b.grads[i].keys()].sort()).toEqual([...a.grads[i].keys()].sort());
        for (const [k, g] of a.grads[i]) expect(maxDiff(g, b.grads[i].get(k)!)).toBeLessThan(1e-6);
      });
    });
    toy.dispose();
  });

  it('runs terms() once per step instead of T times', () => {
    const toy = makeToy([1, 2, 3]);
    let calls = 0;
    const terms = () => (calls++, toy.terms());
    const t = new BalancedTrainer({ terms, optimizer: tf.train.sgd(0.01), balancer: 'gradnorm', variables: toy.variables });
    t.step();
    const c0 = calls;
    t.step();
    expect(calls - c0).toBe(1);
    const slow = new BalancedTrainer({ terms, optimizer: tf.train.sgd(0.01), balancer: 'gradnorm', variables: toy.variables, singleForward: false });
    slow.step();
    const c1 = calls;
    slow.step();
    expect(calls - c1).toBe(3);
    toy.dispose();
  });

  it('single forward, per-term recomputation and the automatic fallback train identically', () => {
    const run = (singleForward: boolean, forceFallback: boolean) => {
      setTapeWorks(forceFallback ? false : null);
      const toy = makeToy([1, 10, 0.1], { seed: 3 });
      const t = new BalancedTrainer({ terms: toy.terms, optimizer: tf.train.adam(1e-2), balancer: 'gradnorm', variables: toy.variables, singleForward });
      for (let i = 0; i < 5; i++) t.step();
      const out = { w: t.history.last!.weight, g: t.history.last!.gradNorm, trunk: Array.from(toy.trunk.dataSync()) };
      toy.dispose();
      return out;
    };
    const a = run(true, false);
    for (const b of [run(false, false), run(true, true)]) {
      for (const k of Object.keys(a.w)) {
        expect(b.w[k]).toBeCloseTo(a.w[k], 5);
        expect(b.g![k]).toBeCloseTo(a.g![k], 5);
      }
      b.trunk.forEach((x, i) => expect(x).toBeCloseTo(a.trunk[i], 5));
    }
  });

  it('a term that reaches no trained variable is an error naming it', () => {
    const toy = makeToy([1, 1]);
    const terms = () => ({ ...toy.terms(), c: tf.scalar(2) as tf.Scalar });
    const before = tf.memory().numTensors;
    expect(() => tf.tidy(() => void termGradientsOnce(terms, ['t0', 't1', 'c'], toy.variables, () => {}))).toThrow(/term "c" has no gradient path/);
    expect(tf.memory().numTensors).toBe(before);
    toy.dispose();
  });
});

describe('representation mode', () => {
  it('with an identity trunk it reads the same Gram matrix and trains like exact mode over z', () => {
    const names = ['a', 'b'];
    const scales = [1, 5];
    const run = (mode: 'exact' | 'rep') => {
      const toy = makeToy(scales, { seed: 5, names });
      const Z = tf.variable(tf.tanh(tf.matMul(toy.x, toy.trunk)), true, `Z-${Math.random()}`);
      const heads = (z: tf.Tensor) =>
        Object.fromEntries(toy.heads.map((h, i) => [names[i], tf.mean(tf.square(tf.sub(tf.matMul(z, h), toy.ys[i]))).mul(scales[i]) as tf.Scalar]));
      const variables = [Z, ...toy.heads];
      const common = { optimizer: tf.train.sgd(0.05), balancer: { name: 'grad-magnitude', statistic: 'norm' as const }, variables };
      const t =
        mode === 'exact'
          ? new BalancedTrainer({ ...common, terms: () => heads(Z), shared: [Z] })
          : new BalancedTrainer({ ...common, represent: { trunk: () => tf.mul(Z, 1), heads } });
      for (let i = 0; i < 4; i++) t.step();
      const out = { rec: t.history.records.map((r) => ({ w: r.weight, g: r.gradNorm })), Z: Array.from(Z.dataSync()), h: Array.from(toy.heads[1].dataSync()) };
      Z.dispose();
      toy.dispose();
      return out;
    };
    const ex = run('exact');
    const rp = run('rep');
    ex.rec.forEach((r, s) => {
      for (const n of names) {
        expect(rp.rec[s].w[n]).toBeCloseTo(r.w[n], 5);
        expect(rp.rec[s].g![n]).toBeCloseTo(r.g![n], 5);
      }
    });
    ex.Z.forEach((x, i) => expect(rp.Z[i]).toBeCloseTo(x, 5));
    ex.h.forEach((x, i) => expect(rp.h[i]).toBeCloseTo(x, 5));
  });

  it('the Gram matrix is that of the flattened ∂L_i/∂z, and the update is the gradient of Σ w_i L_i', () => {
    const names = ['t0', 't1', 't2'];
    const scales = [1, 3, 0.5];
    const toy = makeToy(scales, { seed: 8 });
    const { trunk, heads } = split(toy, names, scales);
    const seen: StepInput[] = [];
    const w = [0.5, 2, 1.5];
    const before = toy.variables.map((v) => v.clone());
    const t = new BalancedTrainer({ represent: { trunk, heads }, optimizer: tf.train.sgd(1), balancer: spyStrategy(w, seen), variables: toy.variables });
    const [wantGram, wantGrads] = tf.tidy(() => {
      const z = trunk();
      const dz = names.map((n) => tf.grad((zz: tf.Tensor) => heads(zz)[n])(z).reshape([-1]));
      const M = tf.stack(dz);
      const G = tf.matMul(M, M, false, true).arraySync() as number[][];
      const ref = tf.variableGrads(() => {
        const l = heads(trunk());
        return tf.addN(names.map((n, i) => l[n].mul(w[i]))) as tf.Scalar;
      }, toy.variables);
      return [G, toy.variables.map((v) => Array.from(ref.grads[v.name].dataSync()))] as const;
    });
    t.step();
    expect(seen).toHaveLength(1);
    seen[0].gram!.forEach((row, i) => row.forEach((x, j) => expect(x).toBeCloseTo(wantGram[i][j], 4)));
    expect(seen[0].stats!.maxAbs).toHaveLength(3);
    toy.variables.forEach((v, k) => {
      const delta = tf.tidy(() => Array.from(before[k].sub(v).dataSync()));
      delta.forEach((d, i) => expect(d).toBeCloseTo(wantGrads[k][i], 4));
    });
    tf.dispose(before);
    toy.dispose();
  });

  it('a head variable reached by several terms gets Σ w_i g_i', () => {
    const toy = makeToy([1, 1], { seed: 9 });
    const shared = toy.heads[0];
    const trunk = () => tf.tanh(tf.matMul(toy.x, toy.trunk));
    const heads = (z: tf.Tensor) => {
      const p = tf.matMul(z, shared);
      return { u: tf.mean(tf.square(tf.sub(p, toy.ys[0]))) as tf.Scalar, v: tf.mean(tf.abs(tf.sub(p, toy.ys[1]))) as tf.Scalar };
    };
    const vars = [toy.trunk, shared];
    const w = [0.25, 3];
    tf.tidy(() => {
      const got = representationGradients({ trunk, heads }, ['u', 'v'], vars, () => {}, () => w);
      const ref = tf.variableGrads(() => {
        const l = heads(trunk());
        return tf.add(l.u.mul(w[0]), l.v.mul(w[1])) as tf.Scalar;
      }, vars);
      for (const v of vars) expect(maxDiff(got.grads[v.name], ref.grads[v.name])).toBeLessThan(1e-5);
    });
    toy.dispose();
  });

  it('works without the shared tape (fallback), with the same result', () => {
    const names = ['t0', 't1'];
    const scales = [1, 4];
    const grads = (fallback: boolean) => {
      setTapeWorks(fallback ? false : null);
      const toy = makeToy(scales, { seed: 11 });
      const { trunk, heads } = split(toy, names, scales);
      let gram: number[][] = [];
      const out = tf.tidy(() => {
        const r = representationGradients({ trunk, heads }, names, toy.variables, () => {}, (_l, M) => {
          gram = tf.matMul(M, M, false, true).arraySync() as number[][];
          return [1, 0.5];
        });
        return toy.variables.map((v) => Array.from(r.grads[v.name].dataSync()));
      });
      toy.dispose();
      return { out, gram };
    };
    const a = grads(false);
    const b = grads(true);
    a.gram.flat().forEach((x, i) => expect(b.gram.flat()[i]).toBeCloseTo(x, 5));
    a.out.flat().forEach((x, i) => expect(b.out.flat()[i]).toBeCloseTo(x, 5));
  });

  it('a term that does not depend on z has a zero row (a defined case), not an error', () => {
    const toy = makeToy([1, 1], { seed: 12 });
    const { trunk, heads } = split(toy, ['t0', 't1'], [1, 1]);
    const seen: StepInput[] = [];
    const t = new BalancedTrainer({
      represent: { trunk, heads: (z) => ({ ...heads(z), reg: tf.sum(tf.square(toy.heads[0])) as tf.Scalar }) },
      optimizer: tf.train.sgd(0.01),
      balancer: spyStrategy([1, 1, 1], seen),
      variables: toy.variables,
    });
    t.step();
    expect(seen[0].gram![2]).toEqual([0, 0, 0]);
    expect(t.history.last!.gradNorm!.reg).toBe(0);
    toy.dispose();
  });
});

describe('every: k', () => {
  it('reads gradients and refreshes the weights exactly on steps 0, k, 2k, ...', () => {
    const toy = makeToy([1, 10]);
    const t = new BalancedTrainer({ terms: toy.terms, optimizer: tf.train.sgd(0.01), balancer: 'gradnorm', variables: toy.variables, every: 3 });
    const refreshed: number[] = [];
    for (let i = 0; i < 10; i++) if (t.step().refreshed) refreshed.push(i);
    expect(refreshed).toEqual([0, 3, 6, 9]);
    const recs = t.history.records;
    expect(recs.filter((r) => r.gradNorm).map((r) => r.step)).toEqual([0, 3, 6, 9]);
    expect(t.balancer.step).toBe(4);
    // between refreshes the weights are the last ones
    expect(recs[4].weight).toEqual(recs[3].weight);
    expect(recs[5].weight).toEqual(recs[3].weight);
    expect(t.history.meta!.every).toBe(3);
    toy.dispose();
  });

  it('also paces loss-only strategies and representation mode', () => {
    const toy = makeToy([1, 2]);
    const a = new BalancedTrainer({ terms: toy.terms, optimizer: tf.train.sgd(0.01), balancer: 'uncertainty', variables: toy.variables, every: 2 });
    for (let i = 0; i < 5; i++) a.step();
    expect(a.balancer.step).toBe(3);
    const { trunk, heads } = split(toy, ['t0', 't1'], [1, 2]);
    const b = new BalancedTrainer({ represent: { trunk, heads }, optimizer: tf.train.sgd(0.01), balancer: 'gradnorm', variables: toy.variables, every: 4 });
    for (let i = 0; i < 9; i++) b.step();
    expect(b.history.records.filter((r) => r.gradNorm).map((r) => r.step)).toEqual([0, 4, 8]);
    expect(b.history.meta!.gradients).toBe('representation');
    toy.dispose();
  });
});

describe('memory', () => {
  const modes: [string, (toy: ReturnType<typeof makeToy>) => BalancedTrainer][] = [
    ['exact, single forward', (toy) => new BalancedTrainer({ terms: toy.terms, optimizer: tf.train.adam(1e-3), balancer: 'gradnorm', variables: toy.variables })],
    ['exact, per term', (toy) => new BalancedTrainer({ terms: toy.terms, optimizer: tf.train.adam(1e-3), balancer: 'gradnorm', variables: toy.variables, singleForward: false })],
    ['representation', (toy) => new BalancedTrainer({ represent: split(toy, ['t0', 't1', 't2'], [1, 2, 3]), optimizer: tf.train.adam(1e-3), balancer: 'gradnorm', variables: toy.variables })],
    ['every 5', (toy) => new BalancedTrainer({ terms: toy.terms, optimizer: tf.train.adam(1e-3), balancer: 'gradnorm', variables: toy.variables, every: 5 })],
    ['loss only', (toy) => new BalancedTrainer({ terms: toy.terms, optimizer: tf.train.adam(1e-3), balancer: 'uncertainty', variables: toy.variables })],
  ];
  it.each(modes)('no tensor growth over 50 steps: %s', (_name, make) => {
    const toy = makeToy([1, 2, 3]);
    const t = make(toy);
    for (let i = 0; i < 3; i++) t.step(); // optimizer slots are created on the first steps
    const before = tf.memory().numTensors;
    for (let i = 0; i < 50; i++) t.step();
    expect(tf.memory().numTensors).toBe(before);
    toy.dispose();
  });
});

describe('option errors', () => {
  const toy = () => makeToy([1, 1]);
  it('name the option at fault', () => {
    const t = toy();
    const rep = split(t, ['t0', 't1'], [1, 1]);
    const opt = tf.train.sgd(0.1);
    expect(() => new BalancedTrainer({ terms: t.terms, represent: rep, optimizer: opt })).toThrow(/either option "terms" or option "represent"/);
    expect(() => new BalancedTrainer({ optimizer: opt })).toThrow(/option "terms" must be a function/);
    expect(() => new BalancedTrainer({ represent: { trunk: rep.trunk } as never, optimizer: opt })).toThrow(/option "represent" must be/);
    expect(() => new BalancedTrainer({ represent: rep, optimizer: opt, shared: [t.trunk] })).toThrow(/"shared" cannot be used with option "represent"/);
    for (const every of [0, 1.5, -2, NaN]) {
      expect(() => new BalancedTrainer({ terms: t.terms, optimizer: opt, every })).toThrow(/option "every" got .*integer >= 1/);
    }
    const bad = new BalancedTrainer({ represent: { trunk: () => [rep.trunk()] as never, heads: rep.heads }, optimizer: opt, balancer: 'gradnorm', variables: t.variables });
    const before = tf.memory().numTensors;
    expect(() => bad.step()).toThrow(/option "represent": trunk\(\) must return one tensor/);
    expect(tf.memory().numTensors).toBe(before);
    t.dispose();
  });
});

describe('fitBalanced: representation at a layer, every', () => {
  function model(opts: { skip?: boolean } = {}) {
    const x = tf.input({ shape: [6] });
    const h1 = tf.layers.dense({ units: 12, activation: 'tanh', name: 'trunk1', kernelInitializer: tf.initializers.glorotNormal({ seed: 1 }) }).apply(x) as tf.SymbolicTensor;
    const z = tf.layers.dense({ units: 10, activation: 'tanh', name: 'shared', kernelInitializer: tf.initializers.glorotNormal({ seed: 2 }) }).apply(h1) as tf.SymbolicTensor;
    const a1 = tf.layers.dense({ units: 5, activation: 'relu', name: 'a_hidden', kernelInitializer: tf.initializers.glorotNormal({ seed: 3 }) }).apply(z) as tf.SymbolicTensor;
    const a = tf.layers.dense({ units: 1, name: 'out_a', kernelInitializer: tf.initializers.glorotNormal({ seed: 4 }) }).apply(a1) as tf.SymbolicTensor;
    const bIn = opts.skip ? (tf.layers.concatenate().apply([z, h1]) as tf.SymbolicTensor) : (tf.layers.concatenate({ name: 'with_x' }).apply([z, x]) as tf.SymbolicTensor);
    const b = tf.layers.dense({ units: 1, name: 'out_b', kernelInitializer: tf.initializers.glorotNormal({ seed: 5 }) }).apply(bIn) as tf.SymbolicTensor;
    const m = tf.model({ inputs: x, outputs: [a, b] });
    m.compile({ optimizer: tf.train.sgd(0.05), loss: ['meanSquaredError', 'meanSquaredError'] });
    return m;
  }

  it('the split reproduces the model: heads(trunk(x)) equals predict(x), with layers reading the inputs too', async () => {
    const { splitModel } = await import('../src/train/split.js');
    const m = model();
    const s = splitModel(m, 'shared');
    const x = tf.randomNormal([7, 6], 0, 1, 'float32', 3);
    const diff = tf.tidy(() => {
      const want = m.predict(x) as tf.Tensor[];
      const got = s.heads(s.trunk([x], false), [x], false);
      return Math.max(...want.map((w, i) => maxDiff(w, got[i])));
    });
    expect(diff).toBeLessThan(1e-6);
    x.dispose();
    m.dispose();
  });

  it('trains with representation: "<layer>" and every, and reads the Gram over that layer', async () => {
    const { fitBalanced } = await import('../src/train/fit.js');
    const m = model();
    const x = tf.randomNormal([32, 6], 0, 1, 'float32', 4);
    const ys = [tf.randomNormal([32, 1], 0, 1, 'float32', 5), tf.randomNormal([32, 1], 0, 3, 'float32', 6)];
    const before = tf.memory().numTensors;
    const h = await fitBalanced(m, x, ys, { balancer: 'gradnorm', representation: 'shared', every: 2, epochs: 2, batchSize: 8, warn: () => {} });
    const recs = h.trainer.history.records;
    expect(recs).toHaveLength(8);
    expect(recs.filter((r) => r.gradNorm).map((r) => r.step)).toEqual([0, 2, 4, 6]);
    expect(h.trainer.history.meta!.gradients).toBe('representation');
    expect(recs.every((r) => Number.isFinite(r.total))).toBe(true);
    expect(tf.memory().numTensors - before).toBeLessThan(20); // optimizer slots only
    tf.dispose([x, ...ys]);
    m.dispose();
  });

  it('errors name the layer and the problem', async () => {
    const { splitModel } = await import('../src/train/split.js');
    const m = model();
    expect(() => splitModel(m, 'nope')).toThrow(/option "representation" \("nope"\): the model has no layer of that name; its layers: .*shared/);
    expect(() => splitModel(m, 'out_a')).toThrow(/is an output of the model/);
    expect(() => splitModel(m, 'a_hidden')).toThrow(/output\(s\) "out_b.*" do not depend on that layer/);
    const sk = model({ skip: true });
    expect(() => splitModel(sk, 'shared')).toThrow(/reads "trunk1.*" from before it \(a skip connection around "shared"\)/);
    m.dispose();
    sk.dispose();
  });
});
