/**
 * The Gram-kind aggregators of issue 11 (dualproj, config, krum, gradvac): reference values from
 * torchjd and LibMTL (test/fixtures/aggregators-gram.json, provenance inside), hand-worked cases and
 * properties (permutation equivariance, the direction never conflicts for dualproj). The registry-wide
 * suites (robustness, options fuzz, determinism, resume, trainer) cover them as every other strategy.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Balancer } from '../src/core/balancer.js';
import { gramTimes } from '../src/core/gram.js';
import { config, dualproj, gradvac, krum } from '../strategies/index.js';
import { configWeights } from '../strategies/config.js';
import { dualprojWeights } from '../strategies/dualproj.js';
import { gradvacStep } from '../strategies/gradvac.js';
import { krumWeights } from '../strategies/krum.js';
import type { Strategy } from '../src/core/types.js';
import { lcg } from './fixtures/degenerate-cases.js';

const f = JSON.parse(readFileSync(new URL('./fixtures/aggregators-gram.json', import.meta.url), 'utf8')) as { source: string; provenance: Record<string, string>; cases: Record<string, any>[] };
const cases = (m: string) => f.cases.filter((c) => c.method === m);
const relDev = (a: readonly number[], b: readonly number[]) => Math.max(...a.map((x, i) => Math.abs(x - b[i]) / Math.max(1, Math.abs(b[i]))));
/** Jᵀw. */
const direction = (J: number[][], w: readonly number[]) => J[0].map((_, p) => J.reduce((s, row, i) => s + w[i] * row[p], 0));
const gramOf = (J: number[][]) => J.map((a) => J.map((b) => a.reduce((s, x, k) => s + x * b[k], 0)));
const randomJ = (T: number, P: number, seed: number) => {
  const r = lcg(seed);
  return Array.from({ length: T }, (_, i) => Array.from({ length: P }, () => (r() * 2 - 1) * 10 ** ((i % 3) - 1)));
};

describe('reference values (torchjd / LibMTL)', () => {
  it('provenance is recorded', () => {
    expect(f.provenance.torchjd).toMatch(/46962c2/);
    expect(f.provenance.LibMTL).toMatch(/4336804/);
  });
  it('dualproj: torchjd DualProjWeighting × T (5 Gram matrices, T = 2…5, one near-dependent)', () => {
    for (const c of cases('dualproj')) expect(relDev(dualprojWeights(c.gram, c.gram.map(() => 1)), c.weights), c.id).toBeLessThan(1e-6);
  });
  it('config: the direction of torchjd ConFIG (6 Jacobians, one rank-deficient)', () => {
    for (const c of cases('config')) {
      const d = direction(c.jacobian, configWeights(c.gram, c.gram.map(() => 1)));
      expect(relDev(d, c.direction), c.id).toBeLessThan(1e-8);
    }
  });
  it('krum: torchjd KrumWeighting × T (f = 0…2, m = 1…3, an outlier never selected)', () => {
    for (const c of cases('krum')) {
      const { weights } = krumWeights(c.gram, c.nByzantine, c.nSelected);
      expect(weights, c.id).toEqual(c.weights);
      expect(weights[weights.length - 1]).toBe(0);
    }
  });
  it('gradvac: LibMTL GradVac, three consecutive steps with the orders it drew (direction and targets)', () => {
    for (const c of cases('gradvac')) {
      let targets = c.steps[0].gram.map((r: number[]) => r.map(() => 0));
      for (const [t, s] of c.steps.entries()) {
        const out = gradvacStep(s.gram, targets, s.orders, c.beta, 1e-8);
        // LibMTL keeps rho_T in float32: from the second step on, the targets carry its rounding.
        expect(relDev(direction(s.jacobian, out.weights), s.direction), `${c.id} step ${t}`).toBeLessThan(t === 0 ? 1e-8 : 1e-6);
        out.targets.forEach((row, i) => row.forEach((v, j) => i !== j && expect(v).toBeCloseTo(s.targets[i][j], 6)));
        targets = s.targets; // continue from LibMTL's own (float32) targets
      }
    }
  });
});

describe('hand-worked values and properties', () => {
  it('config, orthogonal gradients of norms 1 and 2: equal angles, d = (g1/1 + g2/2)·(3/2)·… = g1 + g2/2 scaled to the projections', () => {
    // g1 = (1,0), g2 = (0,2): d̂ = (1,1)/√2, Σ⟨g_i, d̂⟩ = 3/√2, d = (1.5, 1.5) = 1.5 g1 + 0.75 g2.
    const w = configWeights([[1, 0], [0, 4]], [1, 1]);
    expect(w[0]).toBeCloseTo(1.5, 12);
    expect(w[1]).toBeCloseTo(0.75, 12);
  });
  it('dualproj: no conflict → the plain sum; a conflict → ⟨d, g_i⟩ ≥ −regEps·tr(G)·w_i (0 up to the ridge)', () => {
    expect(dualprojWeights([[1, 0], [0, 1]], [1, 1])).toEqual([1, 1]);
    for (let s = 0; s < 20; s++) {
      const G = gramOf(randomJ(4, 3, s));
      const tr = G.reduce((a, r, i) => a + r[i], 0);
      const w = dualprojWeights(G, [1, 1, 1, 1]);
      // KKT of min vᵀ(G/tr + εI)v, v ≥ u: (G v)/tr + εv ≥ 0.
      gramTimes(G, w).forEach((v, i) => expect(v).toBeGreaterThanOrEqual(-1e-4 * tr * w[i] * (1 + 1e-6) - 1e-9 * tr));
    }
  });
  it('gradvac with beta 0 and targets 0 is PCGrad (projection to orthogonality)', () => {
    // g1 = (1,0), g2 = (−1,1): PCGrad gives w = (2, 1.5) (strategies-grad.test.ts); GradVac with φ̂ = 0, ε = 0 too.
    const G = gramOf([[1, 0], [-1, 1]]);
    const { weights } = gradvacStep(G, [[0, 0], [0, 0]], [[1], [0]], 0, 0);
    expect(weights[0]).toBeCloseTo(2, 12);
    expect(weights[1]).toBeCloseTo(1.5, 12);
  });
  it('permutation equivariance (dualproj, config, krum; gradvac with the orders carried along)', () => {
    const run = (s: Strategy, G: number[][]) => {
      const b = new Balancer(s, s.options.parse({}), { onNonFinite: 'throw' });
      b.bind(G.map((_, i) => `t${i}`));
      return b.update({ losses: G.map(() => 1), gram: G }).weights;
    };
    for (let seed = 0; seed < 10; seed++) {
      const J = randomJ(5, 4, 100 + seed);
      const G = gramOf(J);
      const p = [2, 4, 0, 3, 1];
      const Gp = p.map((i) => p.map((j) => G[i][j]));
      for (const s of [dualproj, config, krum]) {
        const w = run(s, G);
        const wp = run(s, Gp);
        p.forEach((src, k) => expect(wp[k], s.name).toBeCloseTo(w[src], 6));
      }
      const orders = G.map((_, i) => G.map((_, k) => (i + 1 + k) % 5).filter((j) => j !== i));
      const inv = p.map((_, k) => p.indexOf(k));
      const ordersP = p.map((old) => orders[old].map((j) => inv[j]));
      const zeros = G.map((r) => r.map(() => 0));
      const a = gradvacStep(G, zeros, orders, 0.5, 1e-8).weights;
      const b = gradvacStep(Gp, zeros, ordersP, 0.5, 1e-8).weights;
      p.forEach((src, k) => expect(b[k]).toBeCloseTo(a[src], 9));
    }
    expect(gradvac.needs(gradvac.options.parse({})).gradients).toBe('gram');
  });
});
