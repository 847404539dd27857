/**
 * The failing runs, each with the harm flags its trajectory raises (the same checks the
 * trainer runs live): the seed VAE with `grad-magnitude` and `gradnorm` at their defaults (1,500 steps,
 * batch 64, seed 1, as in the issue), equal weights beside them, and the 1-D PINN of bench/harm-pinn.ts
 * with `grad-magnitude` (reference: the residual) beside equal weights.
 *
 * `npx tsx bench/harm-runs.ts [--steps N] [--fixtures] [--vae-only | --pinn-only] [--no-control]
 * [--strategies gradnorm,...]` (VAE runs to do, by label): prints one block per run; `--fixtures` also
 * writes the VAE trajectories (weights, losses, gradient norms, 4 significant digits) to
 * test/fixtures/harm/ for test/harm-real.test.ts.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpus } from 'node:os';
import { digitSplit, trainClassifier } from './digits.js';
import { seedRun } from './seed.js';
import { pinnRun } from './harm-pinn.js';
import { HarmDetector } from '../src/core/harm.js';
import type { StepRecord } from '../src/core/history.js';
import { initBackend } from '../src/train/backend.js';
import type { BalancerSpec } from '../src/core/types.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The flags a trajectory raises, one line each (first occurrence; how many checks raised it). */
export function harmLines(records: readonly StepRecord[], strategy: string, options: unknown = {}): string[] {
  const d = new HarmDetector();
  d.open({ strategy, terms: Object.keys(records[0].weight), options });
  for (const r of records) d.push(r);
  return d.summary.map((s) => `${s.first.kind} ${s.first.term}: first at step ${s.first.step}, raised at ${s.checks} checks — ${s.first.message.split(' Note on')[0]}`);
}

const round = (x: number) => Number(x.toPrecision(4));
const per = (o: Record<string, number> | undefined) => (o ? Object.fromEntries(Object.entries(o).map(([k, v]) => [k, round(v)])) : undefined);

/** A compact JSONL of a trajectory (what the harm checks read). */
export function compactJsonl(records: readonly StepRecord[], meta: Record<string, unknown>): string {
  const lines = [JSON.stringify({ kind: 'meta', ...meta })];
  for (const r of records) {
    lines.push(JSON.stringify({ kind: 'step', step: r.step, loss: per(r.loss), weight: per(r.weight), weighted: per(r.weighted), gradNorm: per(r.gradNorm), total: round(r.total), ...(r.skipped ? { skipped: r.skipped } : {}), ...(r.clamped ? { clamped: r.clamped } : {}) }));
  }
  return `${lines.join('\n')}\n`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const argv = process.argv.slice(2);
  const i = argv.indexOf('--steps');
  const steps = i >= 0 ? Number(argv[i + 1]) : 1500;
  const fixtures = argv.includes('--fixtures');
  const backend = await initBackend();
  console.log(`harm runs on ${backend}, ${cpus().length} × ${cpus()[0]?.model}, Node ${process.version}, ${new Date().toISOString()}`);
  const only = argv.includes('--pinn-only') ? 'pinn' : argv.includes('--vae-only') ? 'vae' : '';
  if (only !== 'pinn') {
    const { train, test } = digitSplit({ nTrain: 8000, nTest: 2000, pooled: true });
    const classifier = trainClassifier(train, test);
    const runs: [string, BalancerSpec, Record<string, unknown>][] = [
      ...(argv.includes('--no-control') ? [] : [['fixed', 'fixed', {}] as [string, BalancerSpec, Record<string, unknown>]]),
      ['grad-magnitude', 'grad-magnitude', {}],
      ['gradnorm', 'gradnorm', { minWeight: 1e-3 }],
    ];
    const k = argv.indexOf('--strategies');
    const wanted = k >= 0 ? argv[k + 1].split(',') : undefined;
    for (const [label, spec, options] of runs.filter(([l]) => !wanted || wanted.includes(l))) {
      const r = seedRun({ train, test, classifier, spec, seed: 1, steps, batchSize: 64, label });
      console.log(`\nVAE ${label} (defaults, ${steps} steps, batch 64, seed 1): accuracy on reconstructions ${r.accuracy.toFixed(3)}, recon_a ${r.recon_a.toFixed(4)}, kl ${r.kl.toFixed(2)}, ${r.seconds.toFixed(0)} s`);
      const lines = harmLines(r.records, label, options);
      console.log(lines.length ? lines.map((l) => `  ${l}`).join('\n') : '  no harm flag');
      if (fixtures && label !== 'fixed') {
        const dir = join(root, 'test', 'fixtures', 'harm');
        mkdirSync(dir, { recursive: true });
        const meta = { strategy: label, options, terms: Object.keys(r.records[0].weight), backend, gradients: 'shared', startedAt: new Date().toISOString(), source: `bench/harm-runs.ts: seedRun(spec '${label}', seed 1, ${steps} steps, batch 64, nTrain 8000 pooled 14×14); accuracy ${r.accuracy.toFixed(3)}` };
        writeFileSync(join(dir, `vae-${label}.jsonl`), compactJsonl(r.records, meta));
      }
    }
  }
  if (only !== 'vae') {
    for (const [label, spec] of [['fixed', 'fixed'], ['grad-magnitude (reference residual)', { name: 'grad-magnitude', reference: 'residual' }]] as [string, BalancerSpec][]) {
      const t0 = Date.now();
      const r = pinnRun({ spec, steps });
      console.log(`\nPINN ${label} (${steps} steps): max error ${r.maxError.toFixed(3)}, ${((Date.now() - t0) / 1000).toFixed(0)} s`);
      const lines = harmLines(r.records, typeof spec === 'string' ? spec : spec.name);
      console.log(lines.length ? lines.map((l) => `  ${l}`).join('\n') : '  no harm flag');
    }
  }
}
