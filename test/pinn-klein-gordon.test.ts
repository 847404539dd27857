/**
 * The Klein–Gordon problem of bench:pinn (bench/pinn/problems.ts, after Wang, Teng & Perdikaris 2021 and
 * GradientPathologiesPINNs@93e752b "Klein Gordon/"): the closed-form source term against central finite
 * differences of the exact solution, the three loss terms against finite differences of the network,
 * representation mode against exact mode, the learning-rate-annealing weights of its two condition
 * terms against a hand computation of the authors' formula, and a few-step smoke run.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { kleinGordon, kleinGordonExact, kleinGordonOperator, disposeBatch } from '../bench/pinn/problems.js';
import { PINN_ROWS, pinnTable, runPinn } from '../bench/pinn.js';
import { BalancedTrainer } from '../src/train/trainer.js';
import { useTestBackend } from './helpers.js';

beforeAll(() => useTestBackend());

const arr = (t: tf.Tensor) => Array.from(t.dataSync());
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const { u: exactU } = kleinGordonExact;

describe('klein-gordon: u_tt − u_xx + u³ = f on [0, 1]², u = x·cos(5πt) + (xt)³', () => {
  it('the exact solution satisfies the equation (finite differences, through the problem operator) and the batch conditions', () => {
    const before = tf.memory().numTensors;
    const model = kleinGordon().build(0);
    const batch = model.sample();
    const pts = batch.residual.arraySync();
    const q = arr(batch.source);
    // central differences of the exact u in float64, h = 1e-4 (truncation ≈ h²·(5π)⁴/12 ≈ 5e-5)
    const h = 1e-4;
    const utt = pts.map(([t, x]) => (exactU(t + h, x) - 2 * exactU(t, x) + exactU(t - h, x)) / h ** 2);
    const uxx = pts.map(([t, x]) => (exactU(t, x + h) - 2 * exactU(t, x) + exactU(t, x - h)) / h ** 2);
    const r = tf.tidy(() =>
      arr(kleinGordonOperator(tf.tensor2d(pts.map(([t, x]) => [exactU(t, x)])), [tf.tensor2d(utt, [utt.length, 1]), tf.tensor2d(uxx, [uxx.length, 1])])),
    );
    expect(Math.max(...q.map(Math.abs))).toBeGreaterThan(100); // f reaches 25π²·x: the test is not vacuous
    r.forEach((ri, i) => expect(Math.abs(ri - q[i])).toBeLessThan(2e-3));
    // the conditions: u(0, x) = x and u_t(0, x) = 0 on the same points; u(t, 0) = 0; u(t, 1) = cos 5πt + t³
    const [ic, icT, b0, b1] = batch.boundary.map((p) => p.arraySync());
    const [vIc, vIcT, v0, v1] = batch.boundaryValue.map(arr);
    expect(icT).toEqual(ic);
    ic.forEach(([t, x], i) => {
      expect(t).toBe(0);
      expect(vIc[i]).toBeCloseTo(exactU(0, x), 6);
      expect(vIcT[i]).toBe(0);
      expect((exactU(h, x) - exactU(-h, x)) / (2 * h)).toBeCloseTo(vIcT[i], 6);
    });
    b0.forEach(([, x], i) => (expect(x).toBe(0), expect(v0[i]).toBe(0)));
    b1.forEach(([t, x], i) => (expect(x).toBe(1), expect(v1[i]).toBeCloseTo(Math.cos(5 * Math.PI * t) + t ** 3, 5)));
    disposeBatch(batch);
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('terms() match finite differences of the network; represent() gives the same terms', () => {
    const before = tf.memory().numTensors;
    const model = kleinGordon().build(1);
    expect(model.termNames).toEqual(['residual', 'initial', 'boundary']);
    const batch = model.sample();
    // zero source: the residual term is then mean (u_tt − u_xx + u³)², comparable with the network's own FD
    const zeroSource = { ...batch, source: tf.zerosLike(batch.source) };
    const got = tf.tidy(() => Object.fromEntries(Object.entries(model.terms(zeroSource)).map(([k, v]) => [k, v.dataSync()[0]])));
    const rep = model.represent(batch);
    const viaRep = tf.tidy(() => Object.fromEntries(Object.entries(rep.heads(rep.trunk())).map(([k, v]) => [k, v.dataSync()[0]])));
    const exactMode = tf.tidy(() => Object.fromEntries(Object.entries(model.terms(batch)).map(([k, v]) => [k, v.dataSync()[0]])));
    expect(Object.keys(viaRep)).toEqual(['residual', 'initial', 'boundary']);
    for (const k of model.termNames) expect(viaRep[k]).toBeCloseTo(exactMode[k], 3 - Math.ceil(Math.log10(Math.abs(exactMode[k]) + 1e-9)));

    const net = (q: number[][]) => tf.tidy(() => arr(model.net.predict(tf.tensor2d(q))));
    const pts = batch.residual.arraySync();
    const h = 1e-2; // float32: rounding ≈ 4·6e-8/h² ≈ 2e-3, truncation ≈ h²·u''''/12
    const u0 = net(pts);
    const tp = net(pts.map(([t, x]) => [t + h, x]));
    const tm = net(pts.map(([t, x]) => [t - h, x]));
    const xp = net(pts.map(([t, x]) => [t, x + h]));
    const xm = net(pts.map(([t, x]) => [t, x - h]));
    const res = u0.map((u, i) => (tp[i] - 2 * u + tm[i]) / h ** 2 - (xp[i] - 2 * u + xm[i]) / h ** 2 + u ** 3);
    expect(got.residual).toBeGreaterThan(1e-3);
    expect(Math.abs(got.residual - mean(res.map((r) => r * r))) / got.residual).toBeLessThan(1e-2);

    const ic = batch.boundary[0].arraySync();
    const vIc = arr(batch.boundaryValue[0]);
    const uIc = net(ic);
    const utIc = net(ic.map(([t, x]) => [t + h, x])).map((up, i) => (up - net(ic.map(([t, x]) => [t - h, x]))[i]) / (2 * h));
    const initial = mean(uIc.map((u, i) => (u - vIc[i]) ** 2)) + mean(utIc.map((d) => d * d));
    expect(Math.abs(got.initial - initial) / initial).toBeLessThan(1e-3);
    // the u_t(0, x) part alone: with the network's own u(0, x) as the target, only mean u_t(0, x)² is left
    const ownTarget = { ...zeroSource, boundaryValue: [tf.tidy(() => model.net.predict(batch.boundary[0])), ...batch.boundaryValue.slice(1)] };
    const utPart = tf.tidy(() => model.terms(ownTarget).initial.dataSync()[0]);
    expect(utPart).toBeGreaterThan(1e-4);
    expect(Math.abs(utPart - mean(utIc.map((d) => d * d))) / utPart).toBeLessThan(1e-3);
    const boundary = [2, 3].reduce((acc, i) => {
      const ub = net(batch.boundary[i].arraySync());
      const vb = arr(batch.boundaryValue[i]);
      return acc + mean(ub.map((u, j) => (u - vb[j]) ** 2));
    }, 0);
    expect(got.boundary).toBeCloseTo(boundary, 4);

    tf.dispose([zeroSource.source, ownTarget.boundaryValue[0]]);
    disposeBatch(batch);
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it("lra-code gives one weight per condition term: λ_i = 0.9 + 0.1·max|∇L_r| / mean|∇L_i| over the weight matrices at step 0 (the code's adaptive_constant_ics and _bcs)", () => {
    const before = tf.memory().numTensors;
    const model = kleinGordon().build(2);
    const batch = model.sample();
    const kernels = model.net.kernels;
    // by hand: per-term gradients on the weight matrices (biases excluded, as in the code)
    const stats = tf.tidy(() =>
      model.termNames.map((name) => {
        const { grads } = tf.variableGrads(() => model.terms(batch)[name], kernels);
        const flat = tf.concat(kernels.map((k) => tf.abs(grads[k.name]).flatten()));
        return { max: flat.max().dataSync()[0], mean: flat.mean().dataSync()[0] };
      }),
    );
    const row = PINN_ROWS.find((r) => r.key === 'lra-code')!;
    const opt = tf.train.adam(1e-3);
    const trainer = new BalancedTrainer({
      optimizer: opt, balancer: row.spec, variables: model.net.variables, shared: kernels, keepHistory: false, warn: () => {},
      terms: () => model.terms(batch),
    });
    const w = trainer.step().weights;
    expect(w.residual).toBe(1);
    for (const [i, name] of [[1, 'initial'], [2, 'boundary']] as const) {
      const expected = 0.9 * 1 + 0.1 * (stats[0].max / (1 * stats[i].mean));
      expect(w[name] / expected).toBeCloseTo(1, 4);
    }
    expect(Math.abs(w.initial - w.boundary)).toBeGreaterThan(1e-3);
    void trainer.close();
    opt.dispose();
    disposeBatch(batch);
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a few steps of equal and lra-code run (exact and representation mode), leak nothing, and tabulate every condition weight', () => {
    const before = tf.memory().numTensors;
    const results = [];
    for (const key of ['equal', 'lra-code']) {
      for (const mode of ['exact', 'representation'] as const) {
        const r = runPinn({ problem: 'klein-gordon', row: PINN_ROWS.find((x) => x.key === key)!, seed: 0, steps: 2, mode });
        expect(Number.isFinite(r.error)).toBe(true);
        expect(Object.keys(r.weights!)).toEqual(['residual', 'initial', 'boundary']);
        expect(Object.keys(r.losses!)).toEqual(['residual', 'initial', 'boundary']);
        results.push(r);
      }
    }
    expect(results[0].weights).toEqual({ residual: 1, initial: 1, boundary: 1 });
    expect(results[2].weights!.boundary).not.toBe(1);
    expect(tf.memory().numTensors).toBe(before);
    const table = pinnTable(results);
    expect(table).toContain('| klein-gordon | equal weights | 2 | exact | 1 (0) |');
    expect(table).toContain('residual 1.00, initial 1.00, boundary 1.00');
  });
});
