/**
 * Crash safety (issue 7, item 3): a training process killed with SIGKILL mid-run leaves a JSONL
 * trajectory whose every line but possibly the last is valid (and the reader drops a torn last line),
 * a TensorBoard event file whose every complete record passes its checksums, and a checkpoint that
 * loads (checkpoints are written atomically). Torn tails are also produced deliberately by truncation.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCheckpoint } from '../src/node/checkpoint.js';
import type { StepRecord } from '../src/core/history.js';
import { JsonlSink, readJsonl } from '../src/node/sinks.js';
import { readEvents } from '../src/node/tensorboard.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'lb-crash-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const lineCount = (p: string) => (existsSync(p) ? readFileSync(p, 'utf8').split('\n').length - 1 : 0);

describe('a process killed with SIGKILL mid-run', () => {
  it('leaves readable JSONL, TensorBoard and checkpoint files', async () => {
    const run = join(dir, 'killed');
    const child = spawn(process.execPath, ['--import', 'tsx', join('test', 'fixtures', 'crash-child.ts'), run], {
      cwd: join(import.meta.dirname, '..'),
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.on('exit', (code, sig) => resolve(sig ?? code)));
    const jsonl = join(run, 'trajectory.jsonl');
    const deadline = Date.now() + 45_000;
    while (lineCount(jsonl) < 40 && child.exitCode === null) {
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    child.kill('SIGKILL');
    expect(await exited, stderr).toBe('SIGKILL');

    // JSONL: every line but possibly the last parses; the reader returns every complete record.
    const lines = readFileSync(jsonl, 'utf8').split('\n');
    const last = lines.pop()!; // '' when the file ends with a newline, else a torn line
    expect(lines.length).toBeGreaterThanOrEqual(40);
    for (const l of lines) expect(() => JSON.parse(l)).not.toThrow();
    const traj = readJsonl(jsonl);
    expect(traj.meta?.strategy).toBe('gradnorm');
    expect(traj.tornLastLine).toBe(last !== '');
    expect(traj.records.length).toBe(lines.length - 1);
    traj.records.forEach((r, i) => expect(r.step).toBe(i));

    // TensorBoard: every complete record passes its CRCs; a torn tail is reported, not thrown.
    const tbDir = join(run, 'tb');
    const [file] = readdirSync(tbDir);
    const events = readEvents(join(tbDir, file));
    expect(events.events.length).toBeGreaterThan(10);

    // Checkpoint: atomically written, so the last one is whole and loads.
    const ckpt = readCheckpoint(join(run, 'checkpoint.json'));
    expect(ckpt.kind).toBe('trainer');
    expect(ckpt.state.step).toBeGreaterThanOrEqual(5);
    expect(ckpt.variables).toHaveLength(4);
  });
});

describe('torn tails', () => {
  const rec = (step: number): StepRecord => ({ step, loss: { a: 1 }, weight: { a: 1 }, weighted: { a: 1 }, total: 1 });

  function writeRun(path: string, n: number): void {
    const sink = new JsonlSink(path);
    sink.open({ strategy: 'fixed', options: {}, terms: ['a'], backend: 'cpu', gradients: 'none', startedAt: 'now' });
    for (let i = 0; i < n; i++) sink.write(rec(i));
    sink.close();
  }

  it('readJsonl drops a last line cut at any byte, and keeps every complete one', () => {
    const path = join(dir, 'torn.jsonl');
    writeRun(path, 3);
    const full = readFileSync(path);
    const lastStart = full.lastIndexOf(0x0a, full.length - 2) + 1;
    for (let cut = lastStart + 1; cut < full.length - 1; cut++) {
      writeFileSync(path, full.subarray(0, cut));
      const t = readJsonl(path);
      expect(t.tornLastLine, `cut at ${cut}`).toBe(true);
      expect(t.records.map((r) => r.step)).toEqual([0, 1]);
    }
  });

  it('a bad line that is not the last is an error naming the line', () => {
    const path = join(dir, 'bad.jsonl');
    writeRun(path, 3);
    const lines = readFileSync(path, 'utf8').split('\n');
    lines[2] = lines[2].slice(0, 10);
    writeFileSync(path, lines.join('\n'));
    expect(() => readJsonl(path)).toThrow(/bad\.jsonl:3: not a JSON line/);
  });

  it('JsonlSink with append: true repairs a torn tail before continuing (a resumed run)', () => {
    const path = join(dir, 'resume.jsonl');
    writeRun(path, 3);
    truncateSync(path, statSync(path).size - 7);
    const sink = new JsonlSink(path, { append: true });
    sink.write(rec(2));
    sink.write(rec(3));
    sink.close();
    const t = readJsonl(path);
    expect(t.tornLastLine).toBe(false);
    expect(t.records.map((r) => r.step)).toEqual([0, 1, 2, 3]);
    // append to a missing file creates it
    const fresh = new JsonlSink(join(dir, 'sub', 'new.jsonl'), { append: true });
    fresh.write(rec(0));
    fresh.close();
    expect(readJsonl(join(dir, 'sub', 'new.jsonl')).records).toHaveLength(1);
    // append to an intact file keeps it
    appendFileSync(path, '');
    const again = new JsonlSink(path, { append: true });
    again.write(rec(4));
    again.close();
    expect(readJsonl(path).records.map((r) => r.step)).toEqual([0, 1, 2, 3, 4]);
  });

  it('readEvents reports a TensorBoard file cut at any byte as truncated, with every whole event', async () => {
    const { TensorBoardSink } = await import('../src/node/tensorboard.js');
    const sink = new TensorBoardSink(join(dir, 'tbcut'), { now: () => 1000, host: 'h' });
    sink.open();
    for (let i = 0; i < 3; i++) sink.write(rec(i));
    await sink.close?.();
    const path = sink.path!;
    const full = readFileSync(path);
    const whole = readEvents(path).events.length;
    let sizes = 0;
    for (let cut = 1; cut < full.length; cut++) {
      writeFileSync(path, full.subarray(0, cut));
      const r = readEvents(path);
      expect(r.events.length).toBeLessThan(whole + 1);
      if (r.truncated) sizes++;
    }
    expect(sizes).toBeGreaterThan(0);
  });
});

describe('non-finite numbers in the trajectory', () => {
  it('a NaN or infinite loss of a skipped step survives the JSONL round trip as that number', () => {
    const path = join(dir, 'nan.jsonl');
    const sink = new JsonlSink(path);
    sink.write({ step: 0, loss: { a: Number.NaN, b: Number.POSITIVE_INFINITY, c: Number.NEGATIVE_INFINITY }, weight: { a: 1, b: 1, c: 1 }, weighted: { a: Number.NaN, b: 1, c: 1 }, total: Number.NaN, skipped: 'step 0: loss of term "a" is NaN' });
    sink.close();
    expect(readFileSync(path, 'utf8')).toContain('"a":"NaN"');
    const [r] = readJsonl(path).records;
    expect(r.loss.a).toBeNaN();
    expect(r.loss.b).toBe(Number.POSITIVE_INFINITY);
    expect(r.loss.c).toBe(Number.NEGATIVE_INFINITY);
    expect(r.total).toBeNaN();
  });
});
