import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { digitSplit, loadAllDigits } from '../bench/digits.js';
import { adviceRows, inceptionScore, makeSeedModel, runSeedBench, seedSection, seedTable, verdict, writeSection } from '../bench/seed.js';
import { BalancedTrainer } from '../src/train/trainer.js';
import { useTestBackend } from './helpers.js';

beforeAll(() => useTestBackend());

describe('the digits of the mnist package', () => {
  it('are 10,000 real 28×28 digits in [0, 1], all ten classes; the split is seeded, fixed and disjoint', () => {
    const all = loadAllDigits();
    expect(all.n).toBe(10000);
    expect(all.images.length).toBe(10000 * 784);
    expect(new Set(all.labels).size).toBe(10);
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of all.images) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    expect(lo).toBe(0);
    expect(hi).toBeLessThanOrEqual(1);
    const a = digitSplit({ nTrain: 50, nTest: 20, pooled: true });
    const b = digitSplit({ nTrain: 50, nTest: 20, pooled: true });
    expect(a.train.side).toBe(14);
    expect(Array.from(a.train.images.slice(0, 500))).toEqual(Array.from(b.train.images.slice(0, 500)));
    expect(Array.from(a.test.labels)).toEqual(Array.from(b.test.labels));
    expect(() => digitSplit({ nTrain: 9000, nTest: 2000 })).toThrow(/exceeds/);
  });
});

describe('the seed VAE and its discriminator', () => {
  it('trainer.step() on the balanced generator loss never touches the discriminator', () => {
    const before = tf.memory().numTensors;
    const model = makeSeedModel(14, 3, { hidden: 16, latent: 4, discHidden: 8 });
    const x = tf.randomUniform([8, 196], 0, 1, 'float32', 5) as tf.Tensor2D;
    const eps = tf.randomNormal([8, 4], 0, 1, 'float32', 6) as tf.Tensor2D;
    const opt = tf.train.adam(1e-2);
    for (const balancer of ['fixed', 'gradnorm', { name: 'grad-magnitude', statistic: 'mean-mean' }] as const) {
      const trainer = new BalancedTrainer({ terms: () => model.terms(x, eps), optimizer: opt, balancer, variables: model.generatorVars, warn: () => {} });
      const disc = model.discriminatorVars.map((v) => v.arraySync());
      const gen = model.generatorVars.map((v) => v.arraySync());
      trainer.step();
      trainer.step();
      expect(model.discriminatorVars.map((v) => v.arraySync())).toEqual(disc);
      // while the generator did move (so the step was real)
      expect(model.generatorVars.map((v) => v.arraySync())).not.toEqual(gen);
      expect(trainer.terms).toEqual(['recon_a', 'recon_b', 'kl', 'adv']);
    }
    opt.dispose();
    tf.dispose([x, eps]);
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('the inception-style sample score', () => {
  it('is exp(E KL(p(y|x) ‖ p(y))): 1 for identical rows, the class count for confident rows spread evenly, a hand-worked value otherwise', () => {
    expect(inceptionScore([[0.5, 0.5], [0.5, 0.5]])).toBeCloseTo(1, 12);
    expect(inceptionScore([[1, 0, 0], [0, 1, 0], [0, 0, 1]])).toBeCloseTo(3, 9);
    // P = [[0.9, 0.1], [0.5, 0.5]]: p̄ = [0.7, 0.3];
    // KL_1 = 0.9 ln(0.9/0.7) + 0.1 ln(0.1/0.3) = 0.116326; KL_2 = 0.5 ln(0.5/0.7) + 0.5 ln(0.5/0.3) = 0.087177
    const kl1 = 0.9 * Math.log(0.9 / 0.7) + 0.1 * Math.log(0.1 / 0.3);
    const kl2 = 0.5 * Math.log(0.5 / 0.7) + 0.5 * Math.log(0.5 / 0.3);
    expect(kl1).toBeCloseTo(0.116326, 5);
    expect(kl2).toBeCloseTo(0.087177, 5);
    expect(inceptionScore([[0.9, 0.1], [0.5, 0.5]])).toBeCloseTo(Math.exp((kl1 + kl2) / 2), 9);
  });
});

describe('bench:seed smoke run (tiny settings)', () => {
  it('runs the hand grid and named strategies, measures every run, writes its docs section between the markers only', async () => {
    const lines: string[] = [];
    const bench = await runSeedBench({
      seeds: 1,
      steps: 4,
      nTrain: 256,
      nTest: 64,
      batchSize: 16,
      strategies: ['grad-magnitude', 'gradnorm', 'no-such-strategy'],
      sizes: { hidden: 16, latent: 4, discHidden: 8 },
      log: (l) => lines.push(l),
    });
    expect(bench.rows.map((r) => r.label).slice(0, 6)).toEqual([
      'equal weights (recon_a ×1)',
      'hand: recon_a ×2',
      'hand: recon_a ×5',
      'hand: recon_a ×10',
      'hand: recon_a ×20',
      'hand: recon_a ×50',
    ]);
    const byLabel = Object.fromEntries(bench.rows.map((r) => [r.label, r]));
    expect(byLabel['hand: recon_a ×20'].results[0].ratioAtoKl).toBeCloseTo(20, 6);
    // defaults in the headline; the tuned variant in its own, labelled row with its options
    expect(byLabel['grad-magnitude'].kind).toBe('auto');
    expect(byLabel['tuned: grad-magnitude {"statistic":"norm","reference":"kl"}'].kind).toBe('tuned');
    for (const r of bench.rows.filter((x) => x.label !== 'no-such-strategy')) {
      const res = r.results[0];
      expect(res.sampleScore).toBeGreaterThanOrEqual(1 - 1e-9);
      expect(res.sampleScore).toBeLessThanOrEqual(10 + 1e-9);
      expect(res.accuracy).toBeGreaterThanOrEqual(0);
      expect(res.accuracy).toBeLessThanOrEqual(1);
      for (const k of ['recon_a', 'recon_b', 'kl'] as const) expect(Number.isFinite(res[k])).toBe(true);
    }
    // a strategy that throws is skipped and reported, not fatal
    expect(byLabel['no-such-strategy'].error).toMatch(/unknown strategy/);
    expect(seedTable(bench)).toContain('| no-such-strategy | skipped: unknown strategy');
    expect(verdict(bench)).toMatch(/Best automatic strategy/);
    expect(verdict(bench)).toMatch(/Sample score of prior samples/);
    expect(seedTable(bench)).toContain('sample score');

    // the production advice: fixed weights from diagnose() of the best automatic run, retrained
    const advice = await adviceRows(bench, { top: 1, seeds: 1, sizes: { hidden: 16, latent: 4, discHidden: 8 }, log: (l) => lines.push(l) });
    expect(advice).toHaveLength(1);
    expect(advice[0].kind).toBe('advice');
    expect(advice[0].label).toMatch(/^fixed at diagnose\((grad-magnitude|gradnorm)/);
    expect(advice[0].results[0].status).toBe('converged');
    bench.rows.push(...advice);
    expect(verdict(bench)).toMatch(/Fixed weights from `diagnose` of one/);

    const dir = mkdtempSync(join(tmpdir(), 'bench-seed-'));
    const md = join(dir, 'benchmarks.md');
    writeFileSync(md, '# Benchmarks\n\nother helper text\n\n<!-- seed:start -->\nold\n<!-- seed:end -->\n\n<!-- other:start -->\nkeep\n<!-- other:end -->\n');
    writeSection(md, await seedSection(bench, { command: 'npm run bench:seed', imgDir: join(dir, 'img'), imgRel: 'img' }));
    const text = readFileSync(md, 'utf8');
    expect(text).toContain('other helper text');
    expect(text).toContain('<!-- other:start -->\nkeep\n<!-- other:end -->');
    expect(text).not.toContain('\nold\n');
    expect(text).toContain('npm run bench:seed');
    expect(text).toContain('```text');
    expect(text).toMatch(/Recommended fixed weights/);
    expect(readFileSync(join(dir, 'img', 'seed-ratio.svg'), 'utf8')).toContain('<svg');
  });
});
