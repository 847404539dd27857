/**
 * The weighting methods of issue 11 that fit the existing kinds: resnorm, ntk (NVIDIA Modulus Sym),
 * stch, gls, fairgrad, rgw, sdmgrad, modo (LibMTL).
 *
 * 1. Reference values: test/fixtures/weighting-i11.json holds weights produced by running LibMTL's and
 *    Modulus Sym's own files on fixed inputs (its `_provenance` names repository, commit, file and
 *    harness).
 * 2. Modulus Sym's regression setup (test/test_aggregator: FitToPoly, x of Sum_data.npz, 1000 SGD steps,
 *    lr 0.01 with ConstantLR's ×1/3 for 5 steps) replayed through BalancedTrainer: with `fixed` it
 *    reproduces Modulus's stored Sum result; with `ntk` and `resnorm` the Modulus runs of the fixture.
 * 3. Hand-checked identities, options errors, no tensor leak. The shared property suites (robustness,
 *    determinism, resume, options fuzzing, docs) loop over the registry and cover these too.
 */
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { BalancedTrainer, create, type BalancerInput } from '../src/index.js';
import { useTestBackend } from './helpers.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const FX: Record<string, any> = JSON.parse(readFileSync(new URL('./fixtures/weighting-i11.json', import.meta.url), 'utf8'));
const names = (T: number) => ['a', 'b', 'c', 'd', 'e'].slice(0, T);

function run(spec: Parameters<typeof create>[0], inputs: BalancerInput[]) {
  const b = create(spec, { onNonFinite: 'throw' });
  b.bind(names(inputs[0].losses.length));
  return inputs.map((x) => b.update(x));
}

function expectClose(got: number[][], want: number[][], rel: number, what = '') {
  expect(got.length).toBe(want.length);
  got.forEach((row, t) =>
    row.forEach((v, i) => {
      const w = want[t][i];
      if (!(Math.abs(v - w) <= rel * Math.max(1, Math.abs(w)))) throw new Error(`${what} step ${t}, term ${i}: got ${v}, expected ${w}`);
    }),
  );
}
const ones = (T: number) => new Array(T).fill(1);

describe('reference fixtures (LibMTL, see test/fixtures/weighting-i11.json)', () => {
  it('gls: T·(gradient of the geometric mean) = GM/L_i', () => {
    const r = run('gls', FX.gls.losses.map((losses: number[]) => ({ losses })));
    expectClose(r.map((x) => x.weights), FX.gls.weights, 1e-12);
  });

  for (const key of ['stch_mu1', 'stch_mu05']) {
    it(`${key}: log-loss warm-up, nadir averaging epoch, then smooth Tchebycheff (epochs passed)`, () => {
      const f = FX[key];
      const r = run({ name: 'stch', mu: f.mu, warmupEpochs: f.warmupEpochs }, f.losses.map((losses: number[], t: number) => ({ losses, epoch: f.epochs[t] })));
      expectClose(r.map((x) => x.weights), f.weights, 1e-12);
      expect(r.at(-1)!.info!.nadir).toEqual(f.nadir.map((v: number) => expect.closeTo(v, 12)));
    });
  }

  it('fairgrad: G·w = w^(−1/α) (α = 1, 0.5, 2; T = 2…4) agrees with LibMTL\'s least_squares to 1e-8', () => {
    for (const c of FX.fairgrad) {
      const [r] = run({ name: 'fairgrad', alpha: c.alpha }, [{ losses: ones(c.gram.length), gram: c.gram }]);
      expectClose([r.weights], [c.tight], 1e-8, `alpha ${c.alpha}`);
      expectClose([r.weights], [c.weights], 1e-8, `alpha ${c.alpha} (LibMTL)`);
      // LibMTL backpropagates Σ w_i L_i: heads are weighted too
      expect(c.headGrad).toEqual(c.weights.map((w: number) => expect.closeTo(w, 12)));
    }
  });

  it('rgw: LibMTL RGW (v1.1.6) with the same normals = T·softmax(z); heads get their own gradient', () => {
    const f = FX.rgw_seed0;
    const r = run('rgw', f.samples.map(() => ({ losses: ones(3), gram: [[1, 0, 0], [0, 1, 0], [0, 0, 1]] })));
    expectClose(r.map((x) => x.weights), f.weights, 1e-12);
    expect(r.map((x) => x.info!.sample)).toEqual(f.samples);
    expect(f.headGrad.flat().every((g: number) => g === 1)).toBe(true);
    // the same draws as rlw: the two differ only in how heads are scaled
    expect(run('rlw', f.samples.map(() => ({ losses: ones(3) }))).map((x) => x.weights)).toEqual(r.map((x) => x.weights));
    expect(create('rgw').headWeights).toBe('unit');
  });

  for (const key of ['sdmgrad_default', 'sdmgrad_l08']) {
    it(`${key}: one-batch SDMGrad, 4 steps with w carried over`, () => {
      const f = FX[key];
      const r = run({ name: 'sdmgrad', lambda: f.lambda, iterations: f.iterations }, f.grams.map((gram: number[][]) => ({ losses: ones(3), gram })));
      expectClose(r.map((x) => x.weights), f.weights, 1e-9);
    });
  }

  for (const key of ['modo_default', 'modo_fast']) {
    it(`${key}: one-batch MoDo, 4 steps with λ carried over`, () => {
      const f = FX[key];
      const r = run({ name: 'modo', gamma: f.gamma, rho: f.rho }, f.grams.map((gram: number[][]) => ({ losses: ones(3), gram })));
      expectClose(r.map((x) => x.weights), f.weights, 1e-12);
    });
  }
});

describe('hand-checked identities', () => {
  it('ntk: n_i = √G_ii/(2√L_i), w_i = Σn/n_i (scale sum) or mean n/n_i (scale mean)', () => {
    // G = diag(4, 1), L = (1, 0.25): n = (2/2, 1/1) = (1, 1) → all 2 ('sum') or all 1 ('mean')
    expect(run('ntk', [{ losses: [1, 0.25], gram: [[4, 0], [0, 1]] }])[0].weights).toEqual([2, 2]);
    expect(run({ name: 'ntk', scale: 'mean' }, [{ losses: [1, 0.25], gram: [[4, 0], [0, 1]] }])[0].weights).toEqual([1, 1]);
    // G = diag(16, 1), L = (1, 1): n = (2, 0.5), Σ = 2.5 → (1.25, 5)
    expect(run('ntk', [{ losses: [1, 1], gram: [[16, 3], [3, 1]] }])[0].weights).toEqual([1.25, 5]);
  });
  it('ntk: a zero gradient keeps that term\'s previous weight; negative losses use |L|', () => {
    const r = run('ntk', [{ losses: [1, 1], gram: [[16, 0], [0, 1]] }, { losses: [-1, 1], gram: [[16, 0], [0, 0]] }]);
    expect(r[1].weights).toEqual([1, 5]);
  });
  it('resnorm: first move with SGD: λ_i ← −lr·sign(w_i L_i − mean L·r_i^α)·w_i L_i, then Σ exp λ = T', () => {
    // L(0) = (1, 3): r = (1, 1), mean L = 2 → signs (−, +), grad = (−1, +3); λ = (0.1, −0.3) with lr 0.1
    const r = run({ name: 'resnorm', optimizer: 'sgd', lr: 0.1 }, [{ losses: [1, 3] }, { losses: [1, 3] }]);
    expect(r[0].weights).toEqual([1, 1]);
    const e = [Math.exp(0.1), Math.exp(-0.3)];
    const s = e[0] + e[1];
    expect(r[1].weights[0]).toBeCloseTo((2 * e[0]) / s, 12);
    expect(r[1].weights[1]).toBeCloseTo((2 * e[1]) / s, 12);
  });
  it('gls and stch leave equal losses at equal weights; gls is scale-invariant per term', () => {
    expect(run('gls', [{ losses: [2, 2, 2] }])[0].weights).toEqual([1, 1, 1]);
    const a = run('gls', [{ losses: [1, 4] }])[0].weights;
    const b = run('gls', [{ losses: [10, 4] }])[0].weights;
    expect(a[0] * 1).toBeCloseTo(Math.sqrt(4), 12); // GM/L_0 = 2
    expect(b[0] * 10).toBeCloseTo(a[0] * 1 * Math.sqrt(10), 12); // w_i·L_i = GM
  });
  it('fairgrad: orthogonal gradients give w_i = G_ii^(−α/(α+1)); a zero gradient gets 0; all-zero G all ones', () => {
    const [r] = run('fairgrad', [{ losses: [1, 1], gram: [[4, 0], [0, 0.25]] }]);
    expect(r.weights[0]).toBeCloseTo(0.5, 9);
    expect(r.weights[1]).toBeCloseTo(2, 7); // FAIRGRAD_RIDGE moves it by ~1e-9
    expect(run('fairgrad', [{ losses: [1, 1], gram: [[4, 0], [0, 0]] }])[0].weights).toEqual([expect.closeTo(0.5, 9), 0]);
    expect(run('fairgrad', [{ losses: [1, 1], gram: [[0, 0], [0, 0]] }])[0].weights).toEqual([1, 1]);
    const opp = run('fairgrad', [{ losses: [1, 1], gram: [[1, -1], [-1, 1]] }])[0].weights;
    expect(opp.every(Number.isFinite)).toBe(true);
  });
  it('stch without epochs counts each update as an epoch', () => {
    const r = run({ name: 'stch', warmupEpochs: 1 }, [{ losses: [1, 2] }, { losses: [3, 4] }, { losses: [3, 4] }]);
    expect(r[0].weights).toEqual([1, 0.5]);
    expect(r[2].info!.nadir).toEqual([3, 4]);
  });
  it('options: errors name the option', () => {
    expect(() => create({ name: 'fairgrad', alpha: 0 })).toThrow(/alpha/);
    expect(() => create({ name: 'stch', mu: -1 })).toThrow(/mu/);
    expect(() => create({ name: 'stch', warmupEpochs: 1.5 })).toThrow(/warmupEpochs/);
    expect(() => create({ name: 'sdmgrad', iterations: -1 })).toThrow(/iterations/);
    expect(() => create({ name: 'modo', gamma: -1 })).toThrow(/gamma/);
    expect(() => create({ name: 'ntk', scale: 'max' })).toThrow(/scale/);
    expect(() => create({ name: 'resnorm', lr: 0 })).toThrow(/lr/);
    expect(() => create({ name: 'gls', mu: 1 })).toThrow(/unknown option/);
  });
});

// ------------------------------------------------ Modulus Sym's aggregator test, through BalancedTrainer
describe("Modulus Sym's aggregator regression setup through BalancedTrainer", () => {
  beforeAll(() => useTestBackend());
  const M = FX.modulus;

  /** FitToPoly of modulus-sym test/test_aggregator: three losses of one 512×512 linear map. */
  function fitToPoly() {
    const [w0, b0] = [tf.ones([512, 512]), tf.ones([512, 1])];
    const w = tf.variable(w0);
    const b = tf.variable(b0);
    tf.dispose([w0, b0]);
    const x = tf.tensor2d(M.x as number[][]);
    const cols = [0, 1, 2].map((k) => x.slice([0, k], [512, 1]));
    const sign = [-1, -1, 1];
    const terms = () => {
      const out: Record<string, tf.Scalar> = {};
      ['loss_x', 'loss_y', 'loss_z'].forEach((n, k) => {
        out[n] = tf.tidy(() => tf.relu(tf.matMul(w, cols[k]).add(b).add(cols[k].square().mul(sign[k]))).abs().mean() as tf.Scalar);
      });
      return out;
    };
    const dispose = () => tf.dispose([w, b, x, ...cols]);
    return { w, b, terms, dispose };
  }

  /** 1000 steps of SGD(lr) with ConstantLR's factor 1/3 for the first 5 steps; weights recorded. */
  async function replay(balancer: Parameters<typeof create>[0]) {
    const m = fitToPoly();
    const lr = M.learningRate as number;
    const optimizer = tf.train.sgd(lr / 3);
    const trainer = new BalancedTrainer({ terms: m.terms, optimizer, balancer, variables: [m.w, m.b] });
    const weights: Record<number, number[]> = {};
    const losses: Record<number, number[]> = {};
    let live = 0;
    try {
      for (let step = 0; step < M.totalSteps; step++) {
        if (step === 5) optimizer.setLearningRate(lr);
        // a long synchronous loop would starve vitest's worker RPC: yield now and then
        if (step % 10 === 9) await new Promise((res) => setImmediate(res));
        if (step === 1) live = tf.memory().numTensors;
        const r = trainer.step();
        weights[step] = Object.values(r.weights);
        losses[step] = Object.values(r.losses);
      }
      expect(tf.memory().numTensors, 'tensors leaked by the steps').toBe(live);
      const final = tf.tidy(() => Object.values(m.terms()).map((s) => s.dataSync()[0]));
      const wRow0 = Array.from(m.w.slice([0, 0], [1, 512]).dataSync());
      const wRowSpread = tf.tidy(() => m.w.sub(m.w.slice([0, 0], [1, 512])).abs().max().dataSync()[0]);
      const bv = Array.from(m.b.dataSync());
      const wSum = tf.tidy(() => m.w.sum().dataSync()[0]);
      return { weights, losses, final, wRow0, wRowSpread, b0: bv[0], bSpread: Math.max(...bv.map((v) => Math.abs(v - bv[0]))), wSum };
    } finally {
      m.dispose();
      optimizer.dispose();
    }
  }

  const close = (got: number, want: number, tol: number, what: string) => {
    if (!(Math.abs(got - want) <= tol * Math.max(1, Math.abs(want)))) throw new Error(`${what}: got ${got}, expected ${want}`);
  };

  it("fixed (= Modulus's Sum): reproduces the stored result of modulus-sym's test_sum.py (rtol 1e-4)", async () => {
    const r = await replay('fixed');
    const s = M.sum;
    r.wRow0.forEach((v, j) => close(v, s.npzWRow0[j], 1e-4, `w[0][${j}]`));
    expect(r.wRowSpread).toBe(0);
    close(r.b0, s.npzB0, 1e-4, 'b');
    expect(r.bSpread).toBe(0);
    // Modulus's loss_np is the aggregated loss of the last step (before its update)
    close(r.losses[M.totalSteps - 1].reduce((a, v) => a + v, 0), s.lossNpz, 1e-4, 'loss');
  }, 900_000);

  it('ntk ({ updateEvery: 1, warmup: { steps: 1 } } = Modulus NTK(run_per_step = 1)): weights and model as Modulus', async () => {
    const r = await replay({ name: 'ntk', warmup: { steps: 1 } });
    const n = M.ntk;
    for (const [step, rec] of Object.entries(n.record) as [string, { weights: number[]; losses: number[] }][]) {
      rec.weights.forEach((w, i) => close(r.weights[+step][i], w, 1e-4, `ntk weight, step ${step}, term ${i}`));
      rec.losses.forEach((l, i) => close(r.losses[+step][i], l, 1e-4, `ntk loss, step ${step}, term ${i}`));
    }
    n.finalLosses.forEach((l: number, i: number) => close(r.final[i], l, 1e-4, `final loss ${i}`));
    r.wRow0.forEach((v, j) => close(v, n.wRow0[j], 1e-4, `w[0][${j}]`));
    close(r.b0, n.b0, 1e-4, 'b');
  }, 900_000);

  it('resnorm ({ optimizer: sgd, lr: 0.01 }, λ trained as in Modulus\'s Trainer): weights and model as Modulus', async () => {
    const r = await replay({ name: 'resnorm', optimizer: 'sgd', lr: M.learningRate });
    const s = M.resnorm;
    // λ moves by ±lr·w_i·L_i ≈ ±2.6 per step (a sign rule on float32 losses of ≈ 260): Modulus's float32
    // λ and ours (float64) drift apart by up to 1.5e-3 in the weights (seen at step 100), while the
    // model stays within 1e-6 of Modulus's
    for (const [step, rec] of Object.entries(s.record) as [string, { weights: number[]; losses: number[] }][]) {
      rec.weights.forEach((w, i) => {
        if (!(Math.abs(r.weights[+step][i] - w) <= 2e-3)) throw new Error(`resnorm weight, step ${step}, term ${i}: got ${r.weights[+step][i]}, expected ${w}`);
      });
      rec.losses.forEach((l, i) => close(r.losses[+step][i], l, 1e-4, `resnorm loss, step ${step}, term ${i}`));
    }
    s.finalLosses.forEach((l: number, i: number) => close(r.final[i], l, 1e-4, `final loss ${i}`));
    r.wRow0.forEach((v, j) => close(v, s.wRow0[j], 1e-4, `w[0][${j}]`));
    close(r.b0, s.b0, 1e-4, 'b');
  }, 900_000);
});
