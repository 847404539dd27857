/**
 * Issue 26, item 1: a link planted inside an existing run folder (at `config.json`,
 * `trajectory.jsonl`, `report.html`, `plots/` or a chart) must not redirect a write. Before the fix,
 * `runExample` overwrote the link targets outside the output folder, wrote the charts into the folder
 * `plots` pointed to, and finished normally. Now every file the CLI and the sinks write is opened
 * without following a link (`src/node/safe-file.ts`), and `runExample` refuses such a folder before it
 * writes or trains anything, naming the link.
 */
import { closeSync, existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runExample, validateRunConfig } from '../src/node/run.js';
import { JsonlSink } from '../src/node/sinks.js';
import { TensorBoardSink } from '../src/node/tensorboard.js';
import { openForWrite, UnsafePathError, writeFileSafe } from '../src/node/safe-file.js';
import { report } from '../src/viz/report.js';
import { writePlots } from '../src/viz/plot.js';
import { useTestBackend } from './helpers.js';
import type { StepRecord } from '../src/core/history.js';

const root = mkdtempSync(join(tmpdir(), 'lb-links-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => {
  const d = join(root, `case${n++}`);
  mkdirSync(d, { recursive: true });
  return d;
};

const records: StepRecord[] = [1, 2, 3].map((step) => ({ step, loss: { a: 1 / step, b: 2 / step }, weight: { a: 1, b: 1 }, weighted: { a: 1 / step, b: 2 / step }, total: 3 / step }));

/** An output folder with run folder `r` holding a link `name` → a file (or folder) outside it. */
function planted(name: string, target: 'file' | 'dir') {
  const base = fresh();
  const out = join(base, 'runs');
  const run = join(out, 'r');
  const outside = join(base, 'outside');
  mkdirSync(run, { recursive: true });
  mkdirSync(outside, { recursive: true });
  const victim = join(outside, target === 'file' ? 'victim.txt' : 'victim-dir');
  if (target === 'file') writeFileSync(victim, 'precious');
  else mkdirSync(victim);
  symlinkSync(victim, join(run, name));
  return { out, run, outside, victim };
}

describe('runExample refuses a run folder with a planted link, before writing anything', () => {
  beforeAll(() => useTestBackend());

  it.each([
    ['config.json', 'file'],
    ['trajectory.jsonl', 'file'],
    ['report.html', 'file'],
    ['plots', 'dir'],
  ] as const)('a symlink at %s', async (name, kind) => {
    const { out, run, outside, victim } = planted(name, kind);
    const cfg = validateRunConfig({ strategy: 'fixed', steps: 2, output: out, name: 'r', example: { samples: 8, hidden: 4 } });
    let err: unknown;
    try {
      await runExample(cfg);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UnsafePathError);
    expect((err as Error).message).toContain(join(run, name));
    expect((err as Error).message).toMatch(/symbolic link/);
    // nothing written outside, nothing written inside
    if (kind === 'file') expect(readFileSync(victim, 'utf8')).toBe('precious');
    else expect(readdirSync(victim)).toEqual([]);
    expect(readdirSync(outside)).toHaveLength(1);
    expect(readdirSync(run)).toEqual([name]);
  });

  it('a symlink at a chart file inside a real plots/ folder', async () => {
    const base = fresh();
    const out = join(base, 'runs');
    mkdirSync(join(out, 'r', 'plots'), { recursive: true });
    writeFileSync(join(base, 'victim.svg'), 'precious');
    symlinkSync(join(base, 'victim.svg'), join(out, 'r', 'plots', 'alpha.svg'));
    const cfg = validateRunConfig({ strategy: 'fixed', steps: 2, output: out, name: 'r', example: { samples: 8, hidden: 4 } });
    await expect(runExample(cfg)).rejects.toThrow(/alpha\.svg: it is a symbolic link/);
    expect(readFileSync(join(base, 'victim.svg'), 'utf8')).toBe('precious');
    expect(existsSync(join(out, 'r', 'config.json'))).toBe(false);
  });
});

describe('sinks, charts and reports never write through a link', () => {
  it('JsonlSink (new file and append) refuses a symlink at its path', () => {
    for (const append of [false, true]) {
      const { run, victim } = planted('trajectory.jsonl', 'file');
      const sink = new JsonlSink(join(run, 'trajectory.jsonl'), { append });
      expect(() => sink.open({ strategy: 'fixed', terms: ['a'] } as never)).toThrow(UnsafePathError);
      sink.close();
      expect(readFileSync(victim, 'utf8')).toBe('precious');
    }
  });

  it('JsonlSink refuses a hard-linked file (truncating it would change the other name)', () => {
    const d = fresh();
    writeFileSync(join(d, 'other.jsonl'), 'precious');
    linkSync(join(d, 'other.jsonl'), join(d, 'trajectory.jsonl'));
    const sink = new JsonlSink(join(d, 'trajectory.jsonl'));
    expect(() => sink.open({ strategy: 'fixed', terms: ['a'] } as never)).toThrow(/hard links/);
    expect(readFileSync(join(d, 'other.jsonl'), 'utf8')).toBe('precious');
  });

  it('TensorBoardSink refuses a symlinked auto/ folder (the candidates\' sub-runs)', () => {
    const { run, victim } = planted('auto', 'dir');
    const tb = new TensorBoardSink(run, { host: 'h', now: () => 1 });
    expect(() => tb.write({ ...records[0], candidate: 'fixed' })).toThrow(/auto: it is a symbolic link/);
    tb.close();
    expect(readdirSync(victim)).toEqual([]);
  });

  it('TensorBoardSink refuses a symlink at its event file name', () => {
    const d = fresh();
    writeFileSync(join(d, 'victim'), 'precious');
    symlinkSync(join(d, 'victim'), join(d, 'events.out.tfevents.1.h'));
    const tb = new TensorBoardSink(d, { host: 'h', now: () => 1 });
    expect(() => tb.open()).toThrow(UnsafePathError);
    tb.close();
    expect(readFileSync(join(d, 'victim'), 'utf8')).toBe('precious');
  });

  it('writePlots refuses a symlink at a chart file; report() at report.html', async () => {
    const d = fresh();
    writeFileSync(join(d, 'victim'), 'precious');
    symlinkSync(join(d, 'victim'), join(d, 'alpha.svg'));
    await expect(writePlots(records, d, { quantities: ['alpha'], png: false })).rejects.toThrow(UnsafePathError);
    expect(readFileSync(join(d, 'victim'), 'utf8')).toBe('precious');

    const sink = new JsonlSink(join(d, 'trajectory.jsonl'));
    sink.open({ strategy: 'fixed', terms: ['a', 'b'] } as never);
    for (const r of records) sink.write(r);
    sink.close();
    symlinkSync(join(d, 'victim'), join(d, 'report.html'));
    await expect(report(d, { quantities: [], diagnosis: null })).rejects.toThrow(/report\.html: it is a symbolic link/);
    expect(readFileSync(join(d, 'victim'), 'utf8')).toBe('precious');
  });

  it('openForWrite/writeFileSafe write ordinary files, truncating or appending', () => {
    const d = fresh();
    const f = join(d, 'x.txt');
    writeFileSafe(f, 'hello world');
    writeFileSafe(f, 'bye');
    expect(readFileSync(f, 'utf8')).toBe('bye');
    const fd = openForWrite(f, 'a');
    writeFileSync(fd, '!');
    closeSync(fd);
    expect(readFileSync(f, 'utf8')).toBe('bye!');
  });
});

describe('checkpoint files', () => {
  it('writeFileAtomic neither follows a link planted at its temporary name nor at the target', async () => {
    const { writeFileAtomic } = await import('../src/node/checkpoint.js');
    const d = fresh();
    writeFileSync(join(d, 'victim'), 'precious');
    symlinkSync(join(d, 'victim'), join(d, `.ckpt.json.${process.pid}.tmp`));
    symlinkSync(join(d, 'victim'), join(d, 'ckpt.json'));
    writeFileAtomic(join(d, 'ckpt.json'), '{"ok":1}');
    expect(readFileSync(join(d, 'victim'), 'utf8')).toBe('precious');
    expect(readFileSync(join(d, 'ckpt.json'), 'utf8')).toBe('{"ok":1}');
  });
});
