/**
 * Issue 12, item 1: a run folder is confined to `output`. Names such as ".", "..", separators,
 * absolute paths or empty names are rejected with an error naming the field, and every path
 * `runExample` writes is resolved and checked to stay inside the folder the user gave (a symlinked
 * run folder that points elsewhere is refused too).
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, runExample, runFolder, validateRunConfig } from '../src/node/run.js';
import { useTestBackend } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'lb-paths-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('run folder names', () => {
  it.each(['.', '..', '...', '', 'a/b', '../x', '/tmp/x', 'a\\b', 'C:x', '.hidden', 'a\0b'])('name %j is rejected naming the field', (name) => {
    let err: unknown;
    try {
      validateRunConfig({ strategy: 'fixed', name }, 'c.json');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).field).toBe('name');
    expect((err as Error).message).toMatch(/config c\.json: field "name"/);
  });

  it('ordinary names are accepted', () => {
    for (const name of ['run', 'gradnorm-toy', 'a.b_c-1', 'x..y']) expect(validateRunConfig({ strategy: 'fixed', name }).name).toBe(name);
  });

  it('runFolder() resolves the folder and refuses one outside the output folder, even for a config built in code', () => {
    const out = join(dir, 'out');
    expect(runFolder(out, 'ok')).toBe(join(out, 'ok'));
    for (const name of ['.', '..', '../escape', '/abs', 'a/../..', '']) {
      expect(() => runFolder(out, name), name).toThrow(/run folder|name/);
    }
  });

  it('a symlinked run folder pointing outside the output folder is refused', () => {
    const out = join(dir, 'sym-out');
    const elsewhere = join(dir, 'elsewhere');
    mkdirSync(out, { recursive: true });
    mkdirSync(elsewhere, { recursive: true });
    symlinkSync(elsewhere, join(out, 'link'));
    expect(() => runFolder(out, 'link')).toThrow(/outside/);
  });
});

describe('runExample never writes outside output', () => {
  beforeAll(() => useTestBackend());

  it('name ".." given in code (config not validated) is refused before anything is written', async () => {
    const parent = join(dir, 'parent');
    const out = join(parent, 'runs');
    mkdirSync(out, { recursive: true });
    // another run's files beside `runs`, which a ".." run would overwrite
    writeFileSync(join(parent, 'config.json'), 'keep');
    const cfg = { ...validateRunConfig({ strategy: 'fixed', steps: 1, output: out }), name: '..' };
    await expect(runExample(cfg)).rejects.toThrow(/name|run folder/);
    expect(readdirSync(parent).sort()).toEqual(['config.json', 'runs']);
    expect(readFileSync(join(parent, 'config.json'), 'utf8')).toBe('keep');
    expect(existsSync(join(out, 'config.json'))).toBe(false);
  });
});
