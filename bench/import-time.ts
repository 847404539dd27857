/**
 * Import-time and bundle-size benchmark of the built package (dist/, as users get it).
 *
 * Import time: fresh `node` processes, each timing one `import()` (wall: `performance.now()`; CPU:
 * `process.cpuUsage()`, user + system of all the process's threads, which a busy machine inflates
 * much less than wall time), all configurations interleaved in rounds; medians are printed.
 *   - tfjs alone: `import('@tensorflow/tfjs')` (what a tfjs project already pays);
 *   - loss-balancer after tfjs: `import('loss-balancer')` in a process that has imported tfjs (the
 *     library's own cost in an existing tfjs project: the ≤ 150 ms target);
 *   - loss-balancer/browser after tfjs;
 *   - cold: `import('loss-balancer')` first (tfjs included).
 * Bundle size: `dist/src/browser.js` bundled by esbuild for the browser (ESM, minified, tfjs
 * external), gzipped at the default level (target ≤ 80 KB), with the largest inputs.
 *
 *   npm run bench:import                  # builds dist first; 7 rounds
 *   npm run bench:import -- --rounds 3 --no-build
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { bundleForBrowser } from './browser-bundle.js';

const argv = process.argv.slice(2);
const opt = (name: string, def: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : def;
};
const ROUNDS = Number(opt('rounds', '7'));
const ROOT = resolve(import.meta.dirname, '..');
const url = (p: string) => pathToFileURL(join(ROOT, p)).href;

if (!argv.includes('--no-build')) execFileSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' });

const timed = (pre: string, target: string) =>
  `${pre}const c0 = process.cpuUsage(); const t0 = performance.now(); await import(${JSON.stringify(target)});\n` +
  `const c = process.cpuUsage(c0); console.log(performance.now() - t0, (c.user + c.system) / 1000);`;
const preTf = `await import('@tensorflow/tfjs');\n`;
const configs: Record<string, string> = {
  'tfjs alone': timed('', '@tensorflow/tfjs'),
  'loss-balancer after tfjs': timed(preTf, url('dist/src/index.js')),
  'loss-balancer/browser after tfjs': timed(preTf, url('dist/src/browser.js')),
  'loss-balancer cold (tfjs included)': timed('', url('dist/src/index.js')),
};
const times: Record<string, number[]> = Object.fromEntries(Object.keys(configs).map((k) => [k, []]));
const cpu: Record<string, number[]> = Object.fromEntries(Object.keys(configs).map((k) => [k, []]));
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, code] of Object.entries(configs)) {
    const p = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: ROOT, encoding: 'utf8' });
    if (p.status !== 0) throw new Error(`${name}: ${p.stderr}`);
    const [wall, used] = p.stdout.trim().split('\n').pop()!.split(' ').map(Number);
    times[name].push(wall);
    cpu[name].push(used);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${ROUNDS} rounds, ${new Date().toISOString()}`);
console.log(`load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} (wall times grow with it; CPU time much less)`);
console.log('\nimport time, median ms [min, max]:     wall                    process CPU (user+sys)');
for (const [name, xs] of Object.entries(times)) {
  const c = cpu[name];
  const f = (v: number[]) => `${median(v).toFixed(0).padStart(6)}  [${Math.min(...v).toFixed(0)}, ${Math.max(...v).toFixed(0)}]`.padEnd(24);
  console.log(`  ${name.padEnd(36)} ${f(xs)} ${f(c)}`);
}

const res = await bundleForBrowser(join(ROOT, 'dist/src/browser.js'));
const out = res.outputFiles[0].contents;
console.log(`\nbrowser bundle (esbuild, platform browser, minified, tfjs external): ${(out.length / 1024).toFixed(1)} KB, ${(gzipSync(out).length / 1024).toFixed(1)} KB gzipped`);
// Where the bytes come from: the same bundle made from the sources (dist/ holds pre-bundled chunks).
const fromSrc = await bundleForBrowser(join(ROOT, 'src/browser.ts'));
const by: Record<string, number> = {};
for (const [f, i] of Object.entries(Object.values(fromSrc.metafile.outputs)[0].inputs)) {
  const parts = f.split('/');
  const k = parts[0] === 'node_modules' ? parts.slice(0, parts[1].startsWith('@') ? 3 : 2).join('/') : parts.slice(0, 3).join('/');
  by[k] = (by[k] ?? 0) + i.bytesInOutput;
}
for (const [k, b] of Object.entries(by).sort((a, b) => b[1] - a[1]).slice(0, 6)) console.log(`  ${k.padEnd(36)} ${(b / 1024).toFixed(1)} KB minified`);
