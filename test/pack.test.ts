/**
 * The published package, as a user gets it: build, `npm pack`, check the tarball's content (docs with
 * no broken links, source maps with their sources), install it into a fresh project that already pins
 * `@tensorflow/tfjs@4.21.0` (from the npm cache when it can, else the registry), then check what an
 * existing tfjs project sees: one copy of tfjs-core, no "already registered" warning when the library
 * is imported after a top-level op, ≤ 15 MB added by a production install without the plotting peers,
 * an error naming those peers when a chart is asked for, `require()`, the browser condition, types for
 * every entry, the bin, and one balanced step. Slow (a full build and two installs), so it runs only
 * with LB_PACK_TEST=1 (.ci/run sets it).
 */
import { execFile, type ExecFileOptions } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { build } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { skipBecause } from './skip.js';

const ROOT = resolve(import.meta.dirname, '..');
const RUN = process.env.LB_PACK_TEST === '1';
const work = RUN ? mkdtempSync(join(tmpdir(), 'lb-pack-')) : '';
afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
}, 300_000);

// Asynchronous, so that vitest's worker stays responsive during minutes of build and install.
const execFileP = promisify(execFile);
const sh = async (cmd: string, args: string[], opts: ExecFileOptions = {}): Promise<string> =>
  String((await execFileP(cmd, args, { encoding: 'utf8', timeout: 300_000, maxBuffer: 64 << 20, ...opts })).stdout);
/** Exit status, stdout and stderr of a command that may fail. */
const run = async (cmd: string, args: string[], opts: ExecFileOptions = {}) => {
  try {
    const r = await execFileP(cmd, args, { encoding: 'utf8', timeout: 300_000, ...opts });
    return { status: 0, stdout: String(r.stdout), stderr: String(r.stderr) };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { status: typeof x.code === 'number' ? x.code : 1, stdout: String(x.stdout ?? ''), stderr: String(x.stderr ?? '') };
  }
};
/** Disk use of a folder in bytes (`du -sb`, apparent size as npm reports it). */
const du = async (dir: string) => Number((await sh('du', ['-sb', dir])).split('\t')[0]);
/** Every installed copy of a package under `dir/node_modules` (nested ones included). */
const copiesOf = async (dir: string, name: string): Promise<string[]> =>
  (await sh('find', [join(dir, 'node_modules'), '-path', `*/node_modules/${name}/package.json`, '-not', '-path', '*/test/*']))
    .trim()
    .split('\n')
    .filter(Boolean)
    .map(dirname);

describe.skipIf(skipBecause(!RUN, 'npm pack test', 'runs in CI only (build, npm pack, an offline install; about a minute); set LB_PACK_TEST=1 to run it'))('npm pack (LB_PACK_TEST=1)', () => {
  it('packs dist with types and no tests or runs; a tfjs 4.21 project installs it with one tfjs-core, ≤ 15 MB more, no side effects; require, types and bin work', async () => {
    await sh('npm', ['run', 'build', '--silent'], { cwd: ROOT });
    const packed = JSON.parse(await sh('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: ROOT }));
    const files: string[] = packed[0].files.map((f: { path: string }) => f.path);
    const tarball = join(work, packed[0].filename);

    expect(files).toContain('dist/src/index.js');
    expect(files).toContain('dist/src/index.d.ts');
    expect(files).toContain('dist/src/node/cli.js');
    expect(files).toContain('dist/strategies/index.d.ts');
    expect(files).toContain('README.md');
    expect(files).toContain('dist/src/browser.js');
    // examples/pinn/jet.ts ships on purpose: docs/guide-pinn.md tells PINN users to copy it from the package
    expect(files).toContain('examples/pinn/jet.ts');
    const forbidden = files.filter((f) => f !== 'examples/pinn/jet.ts' && /(^|\/)(test|tests|runs|examples|bench|node_modules|coverage)\/|\.test\.|^docs\/api\/|\.tgz$/.test(f));
    expect(forbidden).toEqual([]);
    expect(files.filter((f) => !/^(dist\/(src|strategies|chunks)\/|docs\/[^/]+\.md$|docs\/img\/[^/]+\.svg$|examples\/pinn\/jet\.ts$|README\.md$|package\.json$|LICENSE)/.test(f))).toEqual([]);
    // Packed docs: every relative link points at a packed file.
    const broken: string[] = [];
    for (const md of files.filter((f) => f.endsWith('.md'))) {
      for (const m of readFileSync(join(ROOT, md), 'utf8').matchAll(/\]\(([^)\s#]+)(?:#[^)]*)?\)/g)) {
        if (/^[a-z]+:/i.test(m[1])) continue;
        const to = join(dirname(md), m[1]).replace(/\\/g, '/');
        if (!files.includes(to)) broken.push(`${md} -> ${m[1]}`);
      }
    }
    expect(broken).toEqual([]);
    // Source maps carry their sources (the .ts files are not packed).
    for (const map of files.filter((f) => f.endsWith('.js.map'))) {
      const m = JSON.parse(readFileSync(join(ROOT, map), 'utf8')) as { sources: string[]; sourcesContent?: (string | null)[] };
      expect(m.sourcesContent?.length, map).toBe(m.sources.length);
      expect(m.sourcesContent!.every((c) => typeof c === 'string'), map).toBe(true);
    }
    // Every `exports` entry points at packed files.
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    for (const [entry, target] of Object.entries<Record<string, string> | string>(pkg.exports)) {
      if (typeof target === 'string') continue;
      for (const cond of ['types', 'import', 'require', 'browser']) {
        if (target[cond]) expect(files, `${entry} ${cond}`).toContain(target[cond].replace(/^\.\//, ''));
      }
    }

    // A fresh project that already uses tfjs 4.21.0.
    const proj = join(work, 'proj');
    await sh('mkdir', ['-p', proj]);
    writeFileSync(
      join(proj, 'package.json'),
      JSON.stringify({ name: 'lb-pack-check', version: '1.0.0', type: 'module', private: true, dependencies: { '@tensorflow/tfjs': '4.21.0' } }),
    );
    const npmInstall = async (args: string[]) => {
      const base = ['install', '--omit=dev', '--no-audit', '--no-fund', '--loglevel=error', ...args];
      try {
        await sh('npm', [...base, '--offline'], { cwd: proj });
      } catch {
        await sh('npm', [...base, '--prefer-offline'], { cwd: proj }); // something missing from the cache
      }
    };
    await npmInstall([]);
    const withTfjs = await du(join(proj, 'node_modules'));
    await npmInstall([tarball]);
    const added = (await du(join(proj, 'node_modules'))) - withTfjs;
    console.log(`production install of loss-balancer beside tfjs 4.21.0 adds ${(added / 1e6).toFixed(1)} MB`);
    expect(added).toBeLessThanOrEqual(15e6);

    // One tfjs: the user's pin is kept and no second tfjs-core is installed.
    expect(JSON.parse(readFileSync(join(proj, 'node_modules/@tensorflow/tfjs/package.json'), 'utf8')).version).toBe('4.21.0');
    expect(await copiesOf(proj, '@tensorflow/tfjs-core')).toHaveLength(1);
    expect(await copiesOf(proj, '@tensorflow/tfjs')).toHaveLength(1);
    // The optional peers are not installed by a plain install.
    for (const p of ['vega', 'vega-lite', '@resvg/resvg-js', '@tensorflow/tfjs-backend-wasm']) expect(existsSync(join(proj, 'node_modules', p)), p).toBe(false);

    // A top-level op, then the import: no "already registered" warning, no error, the backend unchanged.
    writeFileSync(
      join(proj, 'top-level.mjs'),
      `import * as tf from '@tensorflow/tfjs';
const before = tf.tensor1d([1, 2, 3]).sum().dataSync()[0];
const backends = Object.keys(tf.engine().registryFactory).join(',');
const lb = await import('loss-balancer');
await import('loss-balancer/browser');
const after = tf.tensor1d([1, 2, 3]).sum().dataSync()[0];
console.log(JSON.stringify({ before, after, same: backends === Object.keys(tf.engine().registryFactory).join(','), backend: tf.getBackend(), kept: await lb.initBackend() }));
`,
    );
    const top = await run('node', ['top-level.mjs'], { cwd: proj, env: { ...process.env, LOSS_BALANCER_BACKEND: '' } });
    expect(top.status, top.stderr).toBe(0);
    expect(top.stderr + top.stdout).not.toMatch(/already registered|Error|has not yet been initialized/i);
    expect(JSON.parse(top.stdout.trim().split('\n').pop()!)).toEqual({ before: 6, after: 6, same: true, backend: 'cpu', kept: 'cpu' });

    // require() (Node ≥ 20.19 loads ES modules without top-level await).
    writeFileSync(join(proj, 'req.cjs'), `const lb = require('loss-balancer'); const b = require('loss-balancer/browser');\nconsole.log(typeof lb.BalancedTrainer, lb.BalancedTrainer === b.BalancedTrainer, lb.list().length);\n`);
    expect((await sh('node', ['req.cjs'], { cwd: proj })).trim()).toMatch(/^function true \d+$/);

    // Charts without the plotting peers: an error that names them.
    writeFileSync(join(proj, 'plot.mjs'), `import { plotSvg } from 'loss-balancer/plot';\ntry { await plotSvg([]); } catch (e) { console.log(e.message); }\n`);
    expect(await sh('node', ['plot.mjs'], { cwd: proj })).toMatch(/vega, vega-lite and @resvg\/resvg-js.*npm install vega vega-lite @resvg\/resvg-js/);

    // A bundler resolves 'loss-balancer' to the browser entry under the browser condition.
    writeFileSync(join(proj, 'web.mjs'), `import { BalancedTrainer } from 'loss-balancer';\nconsole.log(BalancedTrainer);\n`);
    const web = await build({ entryPoints: [join(proj, 'web.mjs')], absWorkingDir: proj, bundle: true, platform: 'browser', format: 'esm', write: false, metafile: true, external: ['@tensorflow/*'], logLevel: 'silent' });
    expect(Object.keys(web.metafile.inputs).some((f) => f.endsWith('dist/src/browser.js'))).toBe(true);

    const listed = (await sh(join(proj, 'node_modules', '.bin', 'loss-balancer'), ['list'], { cwd: proj })).trim().split('\n');
    expect(listed.length).toBeGreaterThanOrEqual(5);
    expect(listed.some((l) => /^gradnorm\s+losses\+gram\s+\S/.test(l))).toBe(true);
    expect((await sh(join(proj, 'node_modules', '.bin', 'loss-balancer'), ['--version'], { cwd: proj })).trim()).toBe(pkg.version);

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
    await sh(
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
    const w = JSON.parse((await sh('node', ['step.mjs'], { cwd: proj })).trim());
    expect(Object.keys(w)).toEqual(['t0', 't1']);
  }, 900_000); // a full build and an npm install, alongside the rest of the suite on 2 cores
});
