import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadRunConfig, validateRunConfig } from '../src/node/run.js';
import { createProgress, formatSeconds, termsLine, wantsPlain } from '../src/node/progress.js';

const dir = mkdtempSync(join(tmpdir(), 'lb-cfg-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('run config', () => {
  it('fills defaults and names the run after the strategy', () => {
    const c = validateRunConfig({ strategy: 'grad-magnitude' });
    expect(c).toMatchObject({ name: 'grad-magnitude', steps: 200, lr: 0.01, seed: 1, output: 'runs', backend: 'auto', logScale: true });
    expect(c.example.scales).toEqual([1, 10, 100]);
  });

  it.each([
    [{ strategy: 'fixed', steps: 1.5 }, 'steps', 1.5, 'an integer from 1 to 100000'],
    [{ strategy: 'fixed', lr: 11 }, 'lr', 11, 'a number > 0 and ≤ 10'],
    [{ strategy: 'fixed', seed: -1 }, 'seed', -1, 'an integer from 0 to 2147483647'],
    [{ strategy: 'fixed', backend: 'gpu' }, 'backend', 'gpu', 'one of auto, tensorflow, wasm, cpu'],
    [{ strategy: 'fixed', name: 'a/b' }, 'name', 'a/b', 'letters, digits'],
    [{ strategy: 'fixed', example: { scales: [] } }, 'example.scales', [], 'a list of 1 to 16 positive numbers'],
    [{ strategy: 'fixed', example: { scales: [1, 0] } }, 'example.scales.1', 0, 'a number > 0'],
    [{ strategy: 'fixed', example: { scales: [1, 2], names: ['a'] } }, 'example.names', ['a'], '2 distinct names'],
    [{ strategy: 'fixed', extra: 1 }, 'extra', 1, 'no such field; known fields: name, strategy'],
    [{ strategy: 'nope' }, 'strategy', 'nope', 'known strategies:'],
    [{ strategy: { name: 'fixed', wieghts: [1] } }, 'strategy.wieghts', [1], 'unknown option'],
  ])('%j → field %s', (raw, field, value, allowed) => {
    let err: unknown;
    try {
      validateRunConfig(raw, 'c.json');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const e = err as ConfigError;
    expect(e.field).toBe(field);
    expect(e.value).toEqual(value);
    expect(e.allowed).toContain(allowed);
    expect(e.message.match(/allowed: /g)).toHaveLength(1);
    expect(e.message).toMatch(new RegExp(`^config c\\.json: field "${field.replace(/\./g, '\\.')}" got `));
  });

  it('reads YAML and JSON files', () => {
    writeFileSync(join(dir, 'a.yml'), 'strategy: uncertainty\nsteps: 5\n');
    writeFileSync(join(dir, 'b.json'), '{"strategy": {"name": "fixed"}, "steps": 7}');
    writeFileSync(join(dir, 'c.conf'), 'strategy: fixed\n');
    expect(loadRunConfig(join(dir, 'a.yml')).steps).toBe(5);
    expect(loadRunConfig(join(dir, 'b.json')).steps).toBe(7);
    expect(loadRunConfig(join(dir, 'c.conf')).strategy).toBe('fixed');
    expect(() => loadRunConfig(join(dir, 'missing.json'))).toThrow(/missing\.json: field "\(file\)"/);
  });
});

describe('progress helpers', () => {
  it('plain lines when not a TTY or in CI', () => {
    const old = process.env.CI;
    try {
      delete process.env.CI;
      expect(wantsPlain({ isTTY: false })).toBe(true);
      expect(wantsPlain({ isTTY: true })).toBe(false);
      process.env.CI = 'true';
      expect(wantsPlain({ isTTY: true })).toBe(true);
    } finally {
      if (old === undefined) delete process.env.CI;
      else process.env.CI = old;
    }
  });

  it('draws a bar on a TTY and plain lines otherwise', () => {
    const rec = (s: number) => ({ step: s, loss: { a: 1 / (s + 1), b: 2 }, weight: { a: 1 + s, b: 0.5 }, weighted: {}, total: 0 });
    const sink = (isTTY: boolean) => {
      const chunks: string[] = [];
      const stream = { isTTY, columns: 200, write: (c: string) => (chunks.push(c), true), cursorTo: () => true, clearLine: () => true, moveCursor: () => true, on: () => stream, removeListener: () => stream } as any;
      return { stream, text: () => chunks.join('') };
    };
    const tty = sink(true);
    let t = 0;
    const bar = createProgress(10, 'run', { stream: tty.stream, plain: false, now: () => (t += 100) });
    for (let s = 1; s <= 10; s++) bar.update(s, rec(s - 1));
    bar.stop();
    expect(tty.text()).toMatch(/run .*step 10\/10 \| ETA \S+ \| a L=0\.1 α=10 \| b L=2 α=0\.5/);

    const plain = sink(false);
    let clock = 0; // one second per step
    const lines = createProgress(10, 'run', { stream: plain.stream, plain: true, every: 5, now: () => clock * 1000 });
    for (let s = 1; s <= 10; s++) {
      clock = s;
      lines.update(s, rec(s - 1));
    }
    lines.stop();
    expect(plain.text().trim().split('\n')).toEqual([
      'run step 5/10 (50%) ETA 5s | a L=0.2 α=5 | b L=2 α=0.5',
      'run step 10/10 (100%) ETA 0s | a L=0.1 α=10 | b L=2 α=0.5',
    ]);
  });

  it('formats terms and times', () => {
    expect(termsLine({ step: 0, loss: { a: 1.23456, b: 1e-6 }, weight: { a: 2, b: 0.5 }, weighted: {}, total: 0 })).toBe('a L=1.235 α=2 | b L=1.00e-6 α=0.5');
    expect(formatSeconds(65.4)).toBe('1m05s');
    expect(formatSeconds(Number.NaN)).toBe('?');
  });
});
