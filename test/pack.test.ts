/**
 * The published package, as a user gets it: build, `npm pack`, check the tarball's content, install it
 * in a fresh project from the npm cache (offline), check that its types resolve for every entry and
 * that the `loss-balancer` bin runs. Slow (≈45 s: a full build and an install), so it runs only with
 * LB_PACK_TEST=1 (.ci/run sets it).
 */
import { execFileSync, type ExecFileSyncOptions } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');
const RUN = process.env.LB_PACK_TEST === '1';
const work = RUN ? mkdtempSync(join(tmpdir(), 'lb-pack-')) : '';
afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

const sh = (cmd: string, args: string[], opts: ExecFileSyncOptions = {}) =>
  execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000, ...opts }) as unknown as string;

describe.skipIf(!RUN)('npm pack (LB_PACK_TEST=1)', () => {
  it('packs dist with types and no tests or runs; installed offline, its types resolve and its bin runs', () => {
    sh('npm', ['run', 'build', '--silent'], { cwd: ROOT });
    const packed = JSON.parse(sh('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: ROOT }));
    const files: string[] = packed[0].files.map((f: { path: string }) => f.path);
    const tarball = join(work, packed[0].filename);

    expect(files).toContain('dist/src/index.js');
    expect(files).toContain('dist/src/index.d.ts');
    expect(files).toContain('dist/src/node/cli.js');
    expect(files).toContain('dist/strategies/index.d.ts');
    expect(files).toContain('README.md');
    const forbidden = files.filter((f) => /(^|\/)(test|tests|runs|examples|bench|node_modules|coverage)\/|\.test\.|^docs\/api\/|\.tgz$/.test(f));
    expect(forbidden).toEqual([]);
    expect(files.every((f) => /^(dist\/(src|strategies)\/|docs\/[^/]+\.md$|README\.md$|package\.json$|LICENSE)/.test(f))).toBe(true);
    // Every `exports` entry points at packed files.
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    for (const [entry, target] of Object.entries<{ types: string; import: string } | string>(pkg.exports)) {
      if (typeof target === 'string') continue;
      expect(files, entry).toContain(target.types.replace(/^\.\//, ''));
      expect(files, entry).toContain(target.import.replace(/^\.\//, ''));
    }

    const proj = join(work, 'proj');
    sh('mkdir', ['-p', proj]);
    writeFileSync(join(proj, 'package.json'), JSON.stringify({ name: 'lb-pack-check', version: '1.0.0', type: 'module', private: true }));
    const install = (mode: string) => sh('npm', ['install', mode, '--no-audit', '--no-fund', '--loglevel=error', tarball], { cwd: proj });
    try {
      install('--offline');
    } catch {
      install('--prefer-offline'); // a dependency missing from the cache
    }

    const listed = sh(join(proj, 'node_modules', '.bin', 'loss-balancer'), ['list'], { cwd: proj }).trim().split('\n');
    expect(listed.length).toBeGreaterThanOrEqual(5);
    expect(listed.some((l) => /^gradnorm\s+losses\+gram\s+\S/.test(l))).toBe(true);
    expect(sh(join(proj, 'node_modules', '.bin', 'loss-balancer'), ['--version'], { cwd: proj }).trim()).toBe(pkg.version);

    writeFileSync(
      join(proj, 'check.ts'),
      `import { BalancedTrainer, TensorBoardSink, list, type StepRecord } from 'loss-balancer';
import { builtinStrategies } from 'loss-balancer/strategies';
import { BalancedTrainer as BrowserTrainer, makeToyProblem } from 'loss-balancer/browser';
import { report, type ReportResult } from 'loss-balancer/report';
import { plotSvg } from 'loss-balancer/plot';
import { readEvents } from 'loss-balancer/tensorboard';
const same: typeof BalancedTrainer = BrowserTrainer;
const n: number = list().length + builtinStrategies.length;
const r: Promise<ReportResult> = report('x');
const s: Promise<string> = plotSvg([] as StepRecord[]);
const t = new TensorBoardSink('logs');
const e: number = readEvents('f').events.length;
// @ts-expect-error: fails only if the types resolved (an untyped module would accept anything)
makeToyProblem({ hidden: 'wide' });
export { same, n, r, s, t, e };
`,
    );
    sh(
      join(ROOT, 'node_modules', '.bin', 'tsc'),
      ['--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--skipLibCheck', '--types', 'node', '--typeRoots', join(ROOT, 'node_modules', '@types'), 'check.ts'],
      { cwd: proj },
    );

    // The installed library runs: import it and take one balanced step on the cpu backend.
    writeFileSync(
      join(proj, 'step.mjs'),
      `import * as tf from '@tensorflow/tfjs';
import { BalancedTrainer } from 'loss-balancer';
import { makeToyProblem } from 'loss-balancer/browser';
await tf.setBackend('cpu');
const toy = makeToyProblem({ scales: [1, 100] });
const tr = new BalancedTrainer({ terms: toy.terms, optimizer: tf.train.sgd(0.01), balancer: 'gradnorm', variables: toy.variables });
tr.step(); tr.step();
console.log(JSON.stringify(tr.history.last.weight));
`,
    );
    const w = JSON.parse(sh('node', ['step.mjs'], { cwd: proj }).trim());
    expect(Object.keys(w)).toEqual(['t0', 't1']);
  }, 400_000); // a full build and an npm install, alongside the rest of the suite on 2 cores
});
