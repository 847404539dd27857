/**
 * Issue 26, item 18: misleading messages.
 * - `validationData: "abc"` was reported as "has 3 items";
 * - `seed: NaN` was accepted by fitBalanced;
 * - `demo --out ""` wrote into the current folder;
 * - `run <dir>` gave a bare EISDIR;
 * - "terms changed" and "non-scalar" named no step, which the robustness guide promises (the whole
 *   bad-input matrix now checks the step for these kinds too: test/bad-input-matrix.test.ts).
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { checkFitArgs } from '../src/train/fit-args.js';
import { ConfigError, loadRunConfig } from '../src/node/run.js';
import { runDemo } from '../src/node/demo.js';
import { main } from '../src/node/cli.js';
import { BalancedTrainer } from '../src/train/trainer.js';
import { makeToy, useTestBackend } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'lb-msgs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeAll(() => useTestBackend());

describe('fitBalanced arguments', () => {
  it.each([['abc'], [42], [{ xs: 1 }]])('validationData %j: says what it got, not "has N items"', (vd) => {
    let msg = '';
    try {
      checkFitArgs({ validationData: vd });
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toMatch(/argument "validationData" must be \[xVal, yVal\]; got /);
    expect(msg).not.toMatch(/items/);
  });

  it('validationData with 3 items still says so', () => {
    expect(() => checkFitArgs({ validationData: [1, 2, 3] })).toThrow(/has 3 items/);
  });

  it.each([Number.NaN, Number.POSITIVE_INFINITY, 1.5, '1', -1])('seed %j is refused naming the argument', (seed) => {
    expect(() => checkFitArgs({ seed })).toThrow(/fitBalanced: argument "seed" got .*; must be an integer from 0 to 4294967295/);
  });

  it('seeds 0 and 2^32 - 1 are accepted', () => {
    expect(() => checkFitArgs({ seed: 0 })).not.toThrow();
    expect(() => checkFitArgs({ seed: 2 ** 32 - 1 })).not.toThrow();
  });
});

describe('the CLI', () => {
  it('run <a folder>: a ConfigError naming it, not a bare EISDIR', () => {
    let err: unknown;
    try {
      loadRunConfig(dir);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain(dir);
    expect((err as Error).message).toMatch(/is a folder/);
    expect((err as Error).message).not.toMatch(/EISDIR/);
  });

  it('runDemo({ outDir: "" }) and `demo --out ""` are refused before anything is written', async () => {
    await expect(runDemo({ outDir: '', steps: 1, log: () => undefined })).rejects.toThrow(/outDir.*non-empty/);
    const cwd = process.cwd();
    const empty = mkdtempSync(join(dir, 'cwd-'));
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const code = process.exitCode;
    try {
      process.chdir(empty);
      await main(['node', 'loss-balancer', 'demo', '--out', '', '--steps', '1']);
      expect(process.exitCode).toBe(1);
      expect(String(err.mock.calls.map((c) => c[0]).join(''))).toMatch(/--out.*non-empty/);
      expect(readdirSync(empty)).toEqual([]);
    } finally {
      process.chdir(cwd);
      err.mockRestore();
      process.exitCode = code;
    }
  });
});

describe('the trainer names the step', () => {
  it.each([
    ['non-scalar', (t: Record<string, tf.Scalar>) => ({ ...t, t1: t.t1.mul(tf.ones([2])) as unknown as tf.Scalar }), /^step 2: term "t1" must be a scalar loss/],
    ['terms changed', (t: Record<string, tf.Scalar>) => ({ t0: t.t0 }), /^step 2: the terms changed: .*missing "t1"/],
  ] as const)('%s at step 2', (_k, spoil, msg) => {
    const toy = makeToy([1, 2]);
    const optimizer = tf.train.sgd(0.01);
    let bad = false;
    const trainer = new BalancedTrainer({ terms: () => (bad ? spoil(toy.terms()) : toy.terms()), optimizer, variables: toy.variables, balancer: 'mgda' });
    try {
      trainer.step();
      trainer.step();
      bad = true;
      expect(() => trainer.step()).toThrow(msg);
    } finally {
      optimizer.dispose();
      toy.dispose();
    }
  });
});
