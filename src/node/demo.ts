/**
 * The seed's story, runnable: a small VAE whose loss has two reconstruction terms and a KL term of
 * very different gradient scales, trained once with equal fixed weights and once with each automatic
 * strategy, on generated 8×8 images (a Gaussian blob whose position and width are the true latent
 * factors). Prints per-term outcomes on held-out images and the learned alpha ratios, and writes each
 * run's trajectory as JSONL under `runs/demo/`.
 */
import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import { initBackend } from '../train/backend.js';
import type { History } from '../core/history.js';
import { normal, seedRng, tfjsSeed, uniform, type RngState } from '../core/rng.js';
import { JsonlSink } from './sinks.js';
import { BalancerError } from '../core/errors.js';
import { fmt, summarizeData } from '../core/summary.js';
import { summarizeTournament, type Tournament } from '../core/tournament.js';
import { BalancedTrainer } from '../train/trainer.js';
import type { BalancerSpec } from '../core/types.js';

const SIDE = 8;
const PIXELS = SIDE * SIDE;
const LATENT = 4;
const HIDDEN = 48;

/** Generated images: a Gaussian blob with random centre and width, plus a little noise. */
export function blobImages(n: number, seed: number): Float32Array {
  const out = new Float32Array(n * PIXELS);
  let s: RngState = seedRng(seed);
  const draw = () => {
    let u: number;
    [u, s] = uniform(s);
    return u;
  };
  for (let k = 0; k < n; k++) {
    const cx = 1.5 + 4.5 * draw();
    const cy = 1.5 + 4.5 * draw();
    const w = 0.8 + 1.2 * draw();
    for (let i = 0; i < SIDE; i++) {
      for (let j = 0; j < SIDE; j++) {
        let e: number;
        [e, s] = normal(s);
        const v = Math.exp(-((i - cx) ** 2 + (j - cy) ** 2) / (2 * w * w)) + 0.02 * e;
        out[k * PIXELS + i * SIDE + j] = Math.min(1, Math.max(0, v));
      }
    }
  }
  return out;
}

interface Vae {
  vars: tf.Variable[];
  terms(x: tf.Tensor2D, eps: tf.Tensor2D): Record<string, tf.Scalar>;
}

function dense(name: string, inp: number, out: number, seed: number): [tf.Variable, tf.Variable] {
  const w = tf.variable(tf.randomNormal([inp, out], 0, Math.sqrt(1 / inp), 'float32', tfjsSeed(seed)), true, `${name}_w_${seed}`);
  const b = tf.variable(tf.zeros([out]), true, `${name}_b_${seed}`);
  return [w, b];
}

function makeVae(seed: number, tag: string): Vae {
  const [e1w, e1b] = dense(`${tag}_enc1`, PIXELS, HIDDEN, seed + 1);
  const [muw, mub] = dense(`${tag}_mu`, HIDDEN, LATENT, seed + 2);
  const [lvw, lvb] = dense(`${tag}_logvar`, HIDDEN, LATENT, seed + 3);
  const [d1w, d1b] = dense(`${tag}_dec1`, LATENT, HIDDEN, seed + 4);
  const [d2w, d2b] = dense(`${tag}_dec2`, HIDDEN, PIXELS, seed + 5);
  const vars = [e1w, e1b, muw, mub, lvw, lvb, d1w, d1b, d2w, d2b];
  const pool = (t: tf.Tensor2D) => tf.avgPool(t.reshape([-1, SIDE, SIDE, 1]) as tf.Tensor4D, 2, 2, 'valid').reshape([-1, PIXELS / 4]);
  return {
    vars,
    terms(x, eps) {
      const h = tf.tanh(tf.add(tf.matMul(x, e1w), e1b));
      const mu = tf.add(tf.matMul(h, muw), mub);
      const logvar = tf.add(tf.matMul(h, lvw), lvb).clipByValue(-8, 8);
      const z = tf.add(mu, tf.mul(tf.exp(tf.mul(logvar, 0.5)), eps));
      const d = tf.tanh(tf.add(tf.matMul(z, d1w), d1b));
      const xhat = tf.sigmoid(tf.add(tf.matMul(d, d2w), d2b)) as tf.Tensor2D;
      return {
        // pixel MSE, mean over pixels: small values, small gradients
        recon_a: tf.mean(tf.square(tf.sub(xhat, x))) as tf.Scalar,
        // a second view: L1 between 2×-downsampled images
        recon_b: tf.mean(tf.abs(tf.sub(pool(xhat), pool(x)))) as tf.Scalar,
        // KL(q(z|x) || N(0, I)), summed over latent dimensions, mean over the batch
        kl: tf.mean(tf.sum(tf.mul(-0.5, tf.sub(tf.sub(tf.add(1, logvar), tf.square(mu)), tf.exp(logvar))), 1)) as tf.Scalar,
      };
    },
  };
}

/**
 * The demo's runs: the two hand settings (equal weights; the seed's hand fix, reconstruction ×20) and
 * two automatic strategies. grad-magnitude uses kl as its reference term (weight 1), so the weights
 * it finds for the reconstruction terms read directly as "× kl".
 */
export const DEFAULT_RUNS: Record<string, BalancerSpec> = {
  'equal weights': 'fixed',
  'hand: recon ×20': { name: 'fixed', weights: { recon_a: 20, recon_b: 20 } },
  'grad-magnitude': { name: 'grad-magnitude', statistic: 'norm', reference: 'kl' },
  gradnorm: 'gradnorm',
  // Strategy selection: the demo's loop fills in the score (held-out pixel error on a validation split).
  auto: 'auto',
};

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** Training steps per run. @default 1500 */
  steps?: number;
  /** Batch size. @default 64 */
  batchSize?: number;
  /** Where the JSONL trajectories go. @default 'runs/demo' */
  outDir?: string;
  /** The runs: label → strategy. @default {@link DEFAULT_RUNS} */
  runs?: Record<string, BalancerSpec>;
  /** Seed of data and initial weights. @default 7 */
  seed?: number;
  /** Where progress and results are printed. @default console.log */
  log?: (line: string) => void;
  /** Backend. @default LOSS_BALANCER_BACKEND or auto */
  backend?: 'auto' | 'tensorflow' | 'wasm' | 'cpu';
}

/** Per-run results of {@link runDemo}. */
export interface DemoRun {
  label: string;
  strategy: string;
  /** Held-out raw losses per term after training. */
  test: Record<string, number>;
  /** Final weights per term. */
  alpha: Record<string, number>;
  /** Final weight of recon_a divided by that of kl. */
  ratioReconToKl: number;
  seconds: number;
  history: History;
  /** The `auto` run's tournament (candidates, scores per round, winner, cost). */
  tournament?: Tournament;
}

/** Train the demo VAE with each strategy and print what was found. */
export async function runDemo(options: DemoOptions = {}): Promise<DemoRun[]> {
  const log = options.log ?? ((l: string) => console.log(l));
  const steps = options.steps ?? 1500;
  const batch = options.batchSize ?? 64;
  const seed = options.seed ?? 7;
  const outDir = options.outDir ?? join('runs', 'demo');
  // "" would put the trajectories in the current folder (join('', f) is f)
  if (typeof outDir !== 'string' || !outDir) throw new BalancerError(`runDemo: option "outDir" got ${JSON.stringify(outDir)}; allowed: a non-empty folder path`);
  const runs = options.runs ?? DEFAULT_RUNS;
  const backend = await initBackend(options.backend);
  log(`loss-balancer demo: VAE on generated 8×8 blob images, terms recon_a (pixel MSE), recon_b (L1 on 2× downsampled), kl`);
  log(`backend ${backend}; ${steps} steps of batch ${batch} per run; trajectories in ${outDir}/`);

  const nTrain = 2048;
  const nTest = 512;
  const train = tf.tensor2d(blobImages(nTrain, seed), [nTrain, PIXELS]);
  const test = tf.tensor2d(blobImages(nTest, seed + 1), [nTest, PIXELS]);
  const testEps = tf.zeros([nTest, LATENT]) as tf.Tensor2D;
  // A validation split, apart from train and test: the score `auto` selects on (pixel MSE, lower is better).
  const nVal = 256;
  const val = tf.tensor2d(blobImages(nVal, seed + 2), [nVal, PIXELS]);
  const valEps = tf.zeros([nVal, LATENT]) as tf.Tensor2D;
  const results: DemoRun[] = [];
  try {
    for (const [label, spec] of Object.entries(runs)) {
      const vae = makeVae(seed, label.replace(/\W+/g, '_'));
      let xb: tf.Tensor2D | null = null;
      let eb: tf.Tensor2D | null = null;
      const file = join(outDir, `${label.replace(/\W+/g, '-')}.jsonl`);
      const isAuto = spec === 'auto' || (typeof spec === 'object' && spec.name === 'auto');
      const balancer: BalancerSpec = isAuto
        ? { ...(typeof spec === 'object' ? spec : { name: 'auto' }), score: () => vae.terms(val, valEps).recon_a.dataSync()[0] }
        : spec;
      const trainer = new BalancedTrainer({
        terms: () => vae.terms(xb!, eb!),
        optimizer: tf.train.adam(3e-3),
        balancer,
        variables: vae.vars,
        sinks: [new JsonlSink(file)],
        totalSteps: steps, // auto sizes its selection to the run
        meta: { run: label, example: 'demo-vae' },
        // A run shorter than the selection is reported in the demo's own summary below (its
        // "ended during the selection" line), so close()'s warning about it is not repeated.
        // Warnings arrive while the run trains, before its block is printed: name the run in each.
        warn: (m) => {
          if (!/strategy selection is still running/.test(m)) console.warn(`loss-balancer: [${label}] ${m.replace(/^loss-balancer: /, '')}`);
        },
      });
      const t0 = Date.now();
      let rng = seedRng(seed + 99);
      for (let step = 0; step < steps; step++) {
        const idx: number[] = [];
        for (let k = 0; k < batch; k++) {
          let u: number;
          [u, rng] = uniform(rng);
          idx.push(Math.floor(u * nTrain));
        }
        const ix = tf.tensor1d(idx, 'int32');
        xb = tf.gather(train, ix) as tf.Tensor2D;
        eb = tf.randomNormal([batch, LATENT], 0, 1, 'float32', tfjsSeed(seed * 1000 + step)) as tf.Tensor2D;
        trainer.step();
        tf.dispose([ix, xb, eb]);
      }
      await trainer.close();
      const seconds = (Date.now() - t0) / 1000;
      const testLoss = tf.tidy(() => {
        const t = vae.terms(test, testEps);
        return Object.fromEntries(Object.entries(t).map(([k, v]) => [k, v.dataSync()[0]]));
      });
      const last = trainer.history.last!;
      const run: DemoRun = {
        label,
        strategy: trainer.balancer.name,
        test: testLoss,
        alpha: last.weight,
        ratioReconToKl: last.weight.recon_a / last.weight.kl,
        seconds,
        history: trainer.history,
      };
      results.push(run);
      // A run shorter than an `auto` selection has followed equal weights' trajectory only.
      const followed = trainer.history.records.length ? trainer.history.records : trainer.history.trials.filter((r) => r.candidate === 'equal');
      const s = summarizeData(followed);
      log(
        `\n[${label}] ${fmt(seconds)} s  held-out: ` +
          Object.entries(testLoss).map(([k, v]) => `${k} ${fmt(v)}`).join(', '),
      );
      log(`  alphas (start → end, mean): ${s.terms.map((t) => `${t.term} ${fmt(t.start)} → ${fmt(t.end)} (${fmt(t.mean)})`).join('; ')}`);
      if (trainer.tournament) {
        run.tournament = trainer.tournament;
        log(summarizeTournament(trainer.tournament).replace(/^/gm, '  '));
      }
      vae.vars.forEach((v) => v.dispose());
    }
  } finally {
    tf.dispose([train, test, testEps, val, valEps]);
  }

  log('\nwhat it found');
  const w = results.reduce((m, r) => Math.max(m, r.label.length), 0);
  log(`${'run'.padEnd(w)}  ${'recon_a'.padStart(9)}  ${'recon_b'.padStart(9)}  ${'kl'.padStart(7)}   alpha recon_a : recon_b : kl`);
  for (const r of results) {
    const a = r.alpha;
    const base = a.kl > 0 ? a.kl : 1;
    log(
      `${r.label.padEnd(w)}  ${fmt(r.test.recon_a).padStart(9)}  ${fmt(r.test.recon_b).padStart(9)}  ${fmt(r.test.kl).padStart(7)}   ${fmt(a.recon_a / base)} : ${fmt(a.recon_b / base)} : 1`,
    );
  }
  const baseline = results[0];
  for (const r of results.slice(1)) {
    if (r.tournament) {
      const t = r.tournament;
      const won = t.candidates.find((c) => c.label === t.winner);
      if (!won) {
        log(`${r.label}: the run ended during the selection (it lasts ${t.cost.plannedTrainerSteps} steps); it followed equal weights (use more steps or a smaller trialSteps)`);
        continue;
      }
      log(
        `${r.label} picked ${t.winner} (${won?.family ?? ''}) by itself among ${t.candidates.length} candidates, on held-out pixel error: ${t.reason}; ` +
          `cost ${t.cost.candidateSteps} candidate steps during the first ${t.cost.trainerSteps} steps`,
      );
    }
    if (r.strategy === 'fixed') continue;
    log(
      `${r.label} found by itself: recon_a ${fmt(r.alpha.recon_a / r.alpha.kl)}× kl, recon_b ${fmt(r.alpha.recon_b / r.alpha.kl)}× kl; ` +
        `held-out pixel error ${fmt(r.test.recon_a)} (equal weights ${fmt(baseline.test.recon_a)}), kl ${fmt(r.test.kl)} (equal weights ${fmt(baseline.test.kl)}: ${baseline.test.kl < 0.01 ? 'posterior collapse' : 'ok'})`,
    );
  }
  return results;
}
