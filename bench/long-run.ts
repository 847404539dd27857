/**
 * Long runs: `diagnose` and `report` on trajectories of 10⁵ … 10⁷ steps, each in its own process, with
 * that process's peak resident memory (`process.resourceUsage().maxRSS`). Memory must stay flat as the
 * run grows (the readers stream; nothing holds every record), and the largest file is over 512 MiB
 * (V8's longest string), which a whole-file read could not take.
 *
 * `npx tsx bench/long-run.ts [--sizes 100000,1000000,10000000] [--padded 150000:4096] [--keep]`: writes
 * synthetic trajectories (2 terms, gradient norms, GradNorm-like weights; 1 step in 1000 skipped) to a
 * temporary folder, runs `diagnoseJsonl` (what `loss-balancer diagnose` runs) and `report()` on each,
 * each in a fresh process, prints a Markdown table, and deletes the files (unless `--keep`).
 * `--padded STEPS:BYTES` adds a run whose records carry BYTES of padding each (a file over 512 MiB
 * without parsing millions of lines). Not a timed test: the numbers go to docs/benchmarks.md.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** Write a synthetic trajectory of `steps` records (buffered writes of about 8 MB). */
export function writeLongRun(path: string, steps: number, pad = 0): number {
  const padding = pad > 0 ? 'x'.repeat(pad) : '';
  const fd = openSync(path, 'w');
  let buf: string[] = [];
  let size = 0;
  const flush = () => {
    writeSync(fd, buf.join(''));
    buf = [];
    size = 0;
  };
  const meta = { kind: 'meta', strategy: 'gradnorm', options: { alpha: 1.5, lr: 0.025, optimizer: 'adam', minWeight: 1e-3 }, terms: ['recon', 'kl'], backend: 'cpu', gradients: 'shared', startedAt: new Date(0).toISOString() };
  buf.push(`${JSON.stringify(meta)}\n`);
  for (let s = 0; s < steps; s++) {
    const wr = 1.5 + 0.3 * Math.sin(s / 5000);
    const w = { recon: wr, kl: 2 - wr };
    const l = { recon: 0.1 + 1 / (1 + s / 1000), kl: 3 + Math.cos(s / 777) };
    const g = { recon: 0.5 + 0.1 * Math.sin(s), kl: 0.05 };
    const rec: Record<string, unknown> = { kind: 'step', step: s, epoch: 0, loss: l, weight: w, weighted: { recon: w.recon * l.recon, kl: w.kl * l.kl }, gradNorm: g, total: w.recon * l.recon + w.kl * l.kl };
    if (padding) rec.note = padding;
    if (s % 1000 === 999) rec.skipped = 'non-finite loss of term "kl"';
    const line = `${JSON.stringify(rec)}\n`;
    buf.push(line);
    size += line.length;
    if (size > 8e6) flush();
  }
  flush();
  closeSync(fd);
  return statSync(path).size;
}

interface ChildResult {
  maxRssMiB: number;
  seconds: number;
  out: string;
}

/** Run diagnose or report on `file` in a fresh process; its peak RSS and time. */
function child(what: 'diagnose' | 'report', file: string): ChildResult {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(here, 'long-run.ts'), '--child', what, file], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${what} on ${file} failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as ChildResult;
}

async function runChild(what: string, file: string): Promise<void> {
  const t0 = Date.now();
  let out = '';
  if (what === 'diagnose') {
    const { diagnoseJsonl } = await import('../src/node/sinks.js');
    const d = diagnoseJsonl(file).diagnosis;
    out = `${d.steps} steps, ${d.skipped} skipped, status ${d.status}, recommended ${JSON.stringify(d.recommended)}, harm flags ${d.harm.length}`;
  } else {
    const { report } = await import('../src/viz/report.js');
    const { html } = await report(file, { out: `${file}.html` });
    out = `report ${html.length} bytes`;
  }
  const maxRssMiB = process.resourceUsage().maxRSS / 1024;
  console.log(JSON.stringify({ maxRssMiB, seconds: (Date.now() - t0) / 1000, out }));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const argv = process.argv.slice(2);
  if (argv[0] === '--child') {
    await runChild(argv[1], argv[2]);
  } else {
    const i = argv.indexOf('--sizes');
    const sizes = (i >= 0 ? argv[i + 1] : '100000,1000000,10000000').split(',').map(Number);
    if (sizes.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`--sizes got "${argv[i + 1]}"; allowed: positive integers, comma-separated`);
    const runs: [number, number][] = sizes.map((n) => [n, 0]);
    const j = argv.indexOf('--padded');
    if (j >= 0) {
      const m = /^(\d+):(\d+)$/.exec(argv[j + 1] ?? '');
      if (!m) throw new Error(`--padded got "${argv[j + 1]}"; allowed: STEPS:BYTES`);
      runs.push([Number(m[1]), Number(m[2])]);
    }
    const dir = mkdtempSync(join(tmpdir(), 'lb-long-'));
    console.error(`long runs in ${dir} on ${cpus().length} × ${cpus()[0]?.model}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${new Date().toISOString()}`);
    const rows: string[] = ['| steps | file | diagnose: peak RSS | diagnose: time | report: peak RSS | report: time |', '|---:|---:|---:|---:|---:|---:|'];
    try {
      for (const [n, pad] of runs) {
        const file = join(dir, `run-${n}-${pad}.jsonl`);
        const t0 = Date.now();
        const bytes = writeLongRun(file, n, pad);
        console.error(`  wrote ${n} steps, ${(bytes / 2 ** 20).toFixed(0)} MiB in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
        const d = child('diagnose', file);
        console.error(`  diagnose: ${d.out}; ${d.maxRssMiB.toFixed(0)} MiB, ${d.seconds.toFixed(0)} s`);
        const r = child('report', file);
        console.error(`  report: ${r.out}; ${r.maxRssMiB.toFixed(0)} MiB, ${r.seconds.toFixed(0)} s`);
        rows.push(`| ${n.toLocaleString('en')}${pad ? ` (+${pad} B padding a line)` : ''} | ${(bytes / 2 ** 20).toFixed(0)} MiB | ${d.maxRssMiB.toFixed(0)} MiB | ${d.seconds.toFixed(0)} s | ${r.maxRssMiB.toFixed(0)} MiB | ${r.seconds.toFixed(0)} s |`);
        if (!argv.includes('--keep')) rmSync(file, { force: true });
      }
    } finally {
      if (!argv.includes('--keep')) rmSync(dir, { recursive: true, force: true });
    }
    console.log(rows.join('\n'));
  }
}
