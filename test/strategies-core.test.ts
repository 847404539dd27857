/**
 * Reference values for the five core strategies, worked by hand from each paper's formula (the
 * arithmetic is in the comments; it was re-checked with a few lines of plain Python arithmetic written
 * independently of this library, not by running our code).
 */
import { describe, expect, it } from 'vitest';
import { create } from '../src/index.js';

const diag = (a: number, b: number) => [[a, 0], [0, b]];

function run(spec: Parameters<typeof create>[0], steps: { losses: number[]; gram?: number[][]; stats?: { meanAbs: number[]; maxAbs: number[] } }[]) {
  const b = create(spec);
  b.bind(['a', 'b']);
  return steps.map((s) => b.update(s));
}

describe('fixed', () => {
  it('returns the user weights every step, by name or in order', () => {
    const r = run({ name: 'fixed', weights: { a: 20 } }, [{ losses: [1, 2] }, { losses: [3, 4] }]);
    expect(r.map((x) => x.weights)).toEqual([[20, 1], [20, 1]]);
    expect(run({ name: 'fixed', weights: [2, 3] }, [{ losses: [1, 1] }])[0].weights).toEqual([2, 3]);
  });
  it('rejects weights for unknown terms and wrong lengths', () => {
    const b = create({ name: 'fixed', weights: { recon: 2 } });
    expect(() => b.bind(['a', 'b'])).toThrow(/unknown term "recon"/);
    const c = create({ name: 'fixed', weights: [1, 2, 3] });
    expect(() => c.bind(['a', 'b'])).toThrow(/3 entries for 2 terms/);
  });
});

describe('gradnorm (Chen et al. 2018), SGD on the weights, lr 0.1, alpha 1.5', () => {
  // G = diag(4, 1): ‖g_a‖ = 2, ‖g_b‖ = 1. Losses L(0) = (2, 0.5), then (1, 0.5), (1, 0.5).
  // step 0: w = (1,1) is used. G_i = w_i‖g_i‖ = (2, 1), Ḡ = 1.5, r = (1, 1), target = (1.5, 1.5);
  //   ∂/∂w = sign(G − target)·‖g‖ = (+2, −1); w ← (1 − 0.2, 1 + 0.1) = (0.8, 1.1); Σ = 1.9 →
  //   renormalised to Σ = 2: (0.8·2/1.9, 1.1·2/1.9) = (0.842105, 1.157895).
  // step 1: w = (0.842105, 1.157895) used. G = (1.684211, 1.157895), Ḡ = 1.421053;
  //   L̃ = (0.5, 1), mean 0.75, r = (2/3, 4/3), r^1.5 = (0.544331, 1.539601), target = (0.773523, 2.187854);
  //   ∂/∂w = (+2, −1) → (0.642105, 1.257895), Σ = 1.9 → (0.675900, 1.324100) used at step 2.
  it('matches the hand computation on three steps', () => {
    const r = run({ name: 'gradnorm', optimizer: 'sgd', lr: 0.1 }, [
      { losses: [2, 0.5], gram: diag(4, 1) },
      { losses: [1, 0.5], gram: diag(4, 1) },
      { losses: [1, 0.5], gram: diag(4, 1) },
    ]);
    expect(r[0].weights).toEqual([1, 1]);
    expect(r[1].weights[0]).toBeCloseTo(0.842105, 5);
    expect(r[1].weights[1]).toBeCloseTo(1.157895, 5);
    expect(r[2].weights[0]).toBeCloseTo(0.675900, 5);
    expect(r[2].weights[1]).toBeCloseTo(1.324100, 5);
    expect(r[1].info!.targetNorm[0]).toBeCloseTo(0.773523, 5);
    expect(r[1].info!.targetNorm[1]).toBeCloseTo(2.187854, 5);
  });
  it('with Adam (default) the first move is lr·sign(grad): (0.975, 1.025)', () => {
    // Adam's first bias-corrected step is lr·g/|g| = 0.025·sign(g); Σ stays 2.
    const r = run('gradnorm', [{ losses: [2, 0.5], gram: diag(4, 1) }, { losses: [2, 0.5], gram: diag(4, 1) }]);
    expect(r[1].weights[0]).toBeCloseTo(0.975, 6);
    expect(r[1].weights[1]).toBeCloseTo(1.025, 6);
  });
  it('L_i(0) is each term\'s own first loss, kept across steps (GradNorm#2)', () => {
    const b = create('gradnorm');
    b.bind(['a', 'b']);
    b.update({ losses: [2, 0.5], gram: diag(4, 1) });
    b.update({ losses: [7, 9], gram: diag(4, 1) });
    expect((b.state().state as { initialLosses: number[] }).initialLosses).toEqual([2, 0.5]);
  });
  it('weights never go negative and always sum to T', () => {
    const b = create({ name: 'gradnorm', optimizer: 'sgd', lr: 10 });
    b.bind(['a', 'b']);
    for (let i = 0; i < 5; i++) {
      const w = b.update({ losses: [1, 1 + i], gram: diag(100, 1e-4) }).weights;
      expect(w.every((x) => x >= 0)).toBe(true);
      expect(w[0] + w[1]).toBeCloseTo(2, 9);
    }
  });
});

describe('uncertainty (Kendall et al. 2018), SGD lr 0.1', () => {
  // regression: w_i = ½e^{−s_i}, ∂/∂s_i = −½e^{−s_i}L_i + ½. s = (0,0), L = (2, 0.5):
  //   step 0: w = (0.5, 0.5); grad = (−0.5, 0.25); s ← (0.05, −0.025).
  //   step 1: w = (½e^{−0.05}, ½e^{0.025}) = (0.475615, 0.512658); regulariser ½s = (0.025, −0.0125).
  //   grad = (−0.475615·2 + 0.5, −0.512658·0.5 + 0.5) = (−0.451229, 0.243671); s ← (0.095123, −0.049367)
  //   step 2: w = (0.454631, 0.525303).
  it('matches the hand computation (regression form)', () => {
    const r = run({ name: 'uncertainty', optimizer: 'sgd', lr: 0.1 }, [
      { losses: [2, 0.5] },
      { losses: [2, 0.5] },
      { losses: [1, 1] },
    ]);
    expect(r[0].weights).toEqual([0.5, 0.5]);
    expect(r[1].weights[0]).toBeCloseTo(0.475615, 6);
    expect(r[1].weights[1]).toBeCloseTo(0.512658, 6);
    expect(r[1].regularizer![0]).toBeCloseTo(0.025, 9);
    expect(r[1].regularizer![1]).toBeCloseTo(-0.0125, 9);
    expect(r[2].weights[0]).toBeCloseTo(0.454631, 6);
    expect(r[2].weights[1]).toBeCloseTo(0.525303, 6);
  });
  it('classification form weights exp(−s) (LibMTL#40): 1 at s = 0', () => {
    const r = run({ name: 'uncertainty', form: { a: 'classification' }, optimizer: 'sgd', lr: 0.1 }, [{ losses: [2, 0.5] }, { losses: [2, 0.5] }]);
    expect(r[0].weights).toEqual([1, 0.5]);
    // ∂/∂s_a = −1·2 + 0.5 = −1.5 → s_a = 0.15 → w_a = e^{−0.15} = 0.860708
    expect(r[1].weights[0]).toBeCloseTo(0.860708, 6);
  });
  it('converges to the closed-form optimum s = log(2cL), so the weighted loss tends to ½', () => {
    const b = create({ name: 'uncertainty', lr: 0.05 });
    b.bind(['a', 'b']);
    let w: number[] = [];
    for (let i = 0; i < 3000; i++) w = b.update({ losses: [4, 0.01] }).weights;
    expect(w[0] * 4).toBeCloseTo(0.5, 2);
    expect(w[1] * 0.01).toBeCloseTo(0.5, 2);
  });
});

describe('loss-ratio', () => {
  // initial: w ∝ 1/L(0) = (1/2, 1/0.5) = (0.5, 2), Σ = 2.5 → ×2/2.5 = (0.4, 1.6), kept.
  it('initial reference, normalised to sum T', () => {
    const r = run('loss-ratio', [{ losses: [2, 0.5] }, { losses: [1, 1] }]);
    expect(r[0].weights[0]).toBeCloseTo(0.4, 12);
    expect(r[0].weights[1]).toBeCloseTo(1.6, 12);
    expect(r[1].weights[0]).toBeCloseTo(0.4, 12);
  });
  // ema β = 0.5: ref(0) = (2, 0.5); ref(1) = 0.5·ref + 0.5·(1, 1) = (1.5, 0.75) → 1/ref = (2/3, 4/3), Σ = 2.
  it('EMA reference', () => {
    const r = run({ name: 'loss-ratio', reference: 'ema', decay: 0.5 }, [{ losses: [2, 0.5] }, { losses: [1, 1] }]);
    expect(r[1].weights[0]).toBeCloseTo(2 / 3, 12);
    expect(r[1].weights[1]).toBeCloseTo(4 / 3, 12);
  });
  it('without normalisation the weights are 1/ref, and a zero loss is guarded', () => {
    const r = run({ name: 'loss-ratio', normalize: 'none' }, [{ losses: [4, 0] }]);
    expect(r[0].weights[0]).toBe(0.25);
    expect(Number.isFinite(r[0].weights[1])).toBe(true);
  });
  it('rejects a negative loss naming the term', () => {
    const b = create('loss-ratio');
    b.bind(['recon', 'adv']);
    expect(() => b.update({ losses: [1, -0.3] })).toThrow(/term "adv" is -0.3/);
  });
});

describe('grad-magnitude (Wang, Teng & Perdikaris 2021, Algorithm 1)', () => {
  // max-mean, α = 0.9, reference a. step 0: max|∇L_a| = 3, mean|∇L_b| = 0.1 → λ̂ = 30,
  //   λ_b = 0.1·1 + 0.9·30 = 27.1. step 1: max 2, mean 0.2 → λ̂ = 10 → λ_b = 0.1·27.1 + 9 = 11.71.
  it('max-mean statistic', () => {
    const r = run('grad-magnitude', [
      { losses: [1, 1], stats: { maxAbs: [3, 9], meanAbs: [1, 0.1] } },
      { losses: [1, 1], stats: { maxAbs: [2, 9], meanAbs: [1, 0.2] } },
    ]);
    expect(r[0].weights[0]).toBe(1);
    expect(r[0].weights[1]).toBeCloseTo(27.1, 10);
    expect(r[1].weights[1]).toBeCloseTo(11.71, 10);
  });
  // mean-mean, α = 0.5, reference b: λ̂_a = mean_b/mean_a = 0.1/1 → λ_a = 0.5 + 0.05 = 0.55.
  it('mean-mean statistic with a named reference', () => {
    const r = run({ name: 'grad-magnitude', statistic: 'mean-mean', alpha: 0.5, reference: 'b' }, [
      { losses: [1, 1], stats: { maxAbs: [3, 9], meanAbs: [1, 0.1] } },
    ]);
    expect(r[0].weights[0]).toBeCloseTo(0.55, 12);
    expect(r[0].weights[1]).toBe(1);
  });
  // norm: ‖g_a‖ = 2, ‖g_b‖ = 0.1 → λ̂ = 20 → λ_b = 0.1 + 18 = 18.1: the automatic "×20".
  it('norm statistic finds the ×20', () => {
    const r = run({ name: 'grad-magnitude', statistic: 'norm' }, [{ losses: [1, 1], gram: diag(4, 0.01) }]);
    expect(r[0].weights[1]).toBeCloseTo(18.1, 10);
  });
  it('a zero gradient keeps the previous weight instead of producing Infinity', () => {
    const r = run('grad-magnitude', [
      { losses: [1, 1], stats: { maxAbs: [3, 0], meanAbs: [1, 0] } },
    ]);
    expect(r[0].weights).toEqual([1, 1]);
  });
  it('an unknown reference term is an error naming it', () => {
    const b = create({ name: 'grad-magnitude', reference: 'physics' });
    expect(() => b.bind(['a', 'b'])).toThrow(/"physics", not a term/);
  });
});
