/**
 * `npx tsx bench/pinn-overhead.ts`: what balancing costs per step on a PINN, measured in one process.
 *
 * Three trainers of the same problem and seed take turns, `--steps` steps each per round, for
 * `--rounds` rounds (the order rotates every round, so drift in machine load falls on all three):
 * - `plain`: tfjs alone, `optimizer.minimize(() => Σ terms)`;
 * - `equal`: `BalancedTrainer` with equal weights (`fixed`): per-term losses, no gradient reading;
 * - `lra-code`: `BalancedTrainer` with the authors' learning-rate annealing (bench/pinn.ts's row
 *   `lra-code`: per-term gradient statistics on the weight matrices every 10 steps).
 * Only the step is timed (sampling the next batch is not). It prints the median ms/step of each and
 * its ratio to `plain`; the ratios are what to read, since the machine's load moves the absolute times.
 *
 * Usage: npx tsx bench/pinn-overhead.ts [--problem helmholtz|poisson1d|klein-gordon] [--steps 20]
 *        [--rounds 10] [--quick] [--help]
 */
import * as tf from '@tensorflow/tfjs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../src/train/backend.js';
import { BalancedTrainer } from '../src/train/trainer.js';
import { median, PINN_ROWS, wholeNumber } from './pinn.js';
import { disposeBatch, PINN_PROBLEMS, type PinnBatch, type PinnModel } from './pinn/problems.js';

const USAGE = 'usage: npx tsx bench/pinn-overhead.ts [--problem helmholtz|poisson1d|klein-gordon] [--steps N] [--rounds N] [--quick] [--help]';

/** One variant's result. */
export interface OverheadResult {
  variant: 'plain' | 'equal' | 'lra-code';
  /** Median wall time of one step, ms. */
  msPerStep: number;
  /** msPerStep / plain's msPerStep. */
  ratio: number;
  steps: number;
}

/** The command line; returns the three variants' medians and ratios. */
export async function main(argv: string[]): Promise<OverheadResult[]> {
  const known = ['--problem', '--steps', '--rounds', '--backend'];
  for (let i = 0; i < argv.length; i++) {
    if (known.includes(argv[i])) i++;
    else if (!['--quick', '--help'].includes(argv[i])) throw new Error(`unknown argument "${argv[i]}"\n${USAGE}`);
  }
  const arg = (name: string) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined);
  if (argv.includes('--help')) {
    console.log(USAGE);
    return [];
  }
  const quick = argv.includes('--quick');
  const problem = arg('--problem') ?? 'helmholtz';
  if (!PINN_PROBLEMS[problem]) throw new Error(`--problem got "${problem}"; known: ${Object.keys(PINN_PROBLEMS).join(', ')}`);
  const steps = wholeNumber('--steps', arg('--steps') ?? (quick ? '3' : '20'), 1);
  const rounds = wholeNumber('--rounds', arg('--rounds') ?? (quick ? '2' : '10'), 1);
  await initBackend((arg('--backend') as 'wasm' | 'cpu' | undefined) ?? 'wasm', () => {});

  const lra = PINN_ROWS.find((r) => r.key === 'lra-code')!;
  type Runner = { variant: OverheadResult['variant']; model: PinnModel; step: () => void; times: number[]; dispose: () => void };
  const runners: Runner[] = [];
  try {
    for (const variant of ['plain', 'equal', 'lra-code'] as const) {
      const model = PINN_PROBLEMS[problem]().build(0);
      const opt = tf.train.adam(1e-3);
      let batch: PinnBatch = model.sample();
      const trainer =
        variant === 'plain'
          ? undefined
          : new BalancedTrainer({
              optimizer: opt,
              balancer: variant === 'equal' ? 'fixed' : lra.spec,
              variables: model.net.variables,
              ...(variant === 'lra-code' ? { shared: model.net.kernels } : {}),
              terms: () => model.terms(batch),
              keepHistory: false,
              warn: () => {},
            });
      const r: Runner = {
        variant,
        model,
        times: [],
        step: () => {
          const a = performance.now();
          if (trainer) trainer.step();
          else opt.minimize(() => tf.addN(Object.values(model.terms(batch))) as tf.Scalar, false, model.net.variables);
          r.times.push(performance.now() - a);
          disposeBatch(batch);
          batch = model.sample();
        },
        dispose: () => {
          void trainer?.close();
          disposeBatch(batch);
          opt.dispose();
          model.dispose();
        },
      };
      runners.push(r);
    }
    for (const r of runners) for (let s = 0; s < 3; s++) r.step(); // warm-up: kernels compiled, slots created
    for (const r of runners) r.times.length = 0;
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < runners.length; k++) {
        const r = runners[(round + k) % runners.length];
        for (let s = 0; s < steps; s++) r.step();
      }
    }
    const plain = median(runners[0].times);
    const results = runners.map((r) => {
      const ms = median(r.times);
      return { variant: r.variant, msPerStep: ms, ratio: ms / plain, steps: r.times.length };
    });
    console.log(`bench/pinn-overhead: ${problem}, ${rounds} rounds × ${steps} steps per trainer, ${tf.getBackend()}, ${cpus().length}× ${cpus()[0]?.model ?? 'CPU'}, ${new Date().toISOString()}`);
    console.log('| trainer | median ms/step | ratio to plain |\n|---|---:|---:|');
    for (const r of results) console.log(`| ${r.variant} | ${r.msPerStep.toFixed(1)} | ${r.ratio.toFixed(2)} |`);
    return results;
  } finally {
    for (const r of runners) r.dispose();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
