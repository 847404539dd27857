/**
 * Issue 26, item 13: invalid `candidates`/`families` specs of `auto` passed the `BalancedTrainer`
 * constructor and `loss-balancer run`'s config check; they failed at the first step, after the run
 * folder was written, and left the trainer unusable. Each spec is now checked by the registry when
 * the options are parsed (`parseAuto(spec, checkSpec)`), and the error names the option and the
 * index (`candidates.1.alpha`), before anything is built or written.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OptionError } from '../src/core/errors.js';
import { parseAuto } from '../src/core/auto-config.js';
import { checkSpec } from '../src/core/registry.js';
import { ConfigError, runExample, validateRunConfig } from '../src/node/run.js';
import { BalancedTrainer } from '../src/train/trainer.js';
import { makeToy, useTestBackend } from './helpers.js';

beforeAll(() => useTestBackend());
const dir = mkdtempSync(join(tmpdir(), 'lb-autospecs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** [auto options, the field the error must name, a pattern of the message] */
const BAD: [Record<string, unknown>, string, RegExp][] = [
  [{ candidates: ['fixed', { name: 'gradnorm', alpha: -1 }] }, 'candidates.1.alpha', /got -1; gradnorm: /],
  [{ candidates: ['fixed', 'nope'] }, 'candidates.1', /unknown strategy "nope"/],
  [{ candidates: [{ name: 'mgda', bogus: 1 }] }, 'candidates.0.bogus', /unknown option/],
  [{ candidates: [{ name: 'fixed', label: 7 }] }, 'candidates.0.label', /label/],
  [{ candidates: [{ name: 'fixed', weights: [1, -2] }] }, 'candidates.0.weights.1', /fixed/],
  [{ families: ['softadapt', { name: 'softadapt', beta: 'hot' }] }, 'families.1.beta', /softadapt/],
  [{ families: ['mgda', 'nope'] }, 'families.1', /unknown strategy "nope"/],
  [{ families: [{ name: 'pcgrad', onNonFinite: 'explode' }] }, 'families.0.onNonFinite', /onNonFinite/],
];

describe('auto: every candidate and family spec is checked when the options are parsed', () => {
  it.each(BAD)('%j → an OptionError naming %s', (opts, field, msg) => {
    let err: unknown;
    try {
      parseAuto({ name: 'auto', ...opts }, checkSpec);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OptionError);
    expect((err as OptionError).field).toBe(field);
    expect((err as Error).message).toMatch(new RegExp(`^auto: option "${field.replace(/\./g, '\\.')}"`));
    expect((err as Error).message).toMatch(msg);
  });

  it('valid specs (labels included) pass unchanged', () => {
    const cfg = parseAuto({ name: 'auto', candidates: ['fixed', { name: 'gradnorm', alpha: 1, label: 'gn' }], families: [{ name: 'mgda', normalization: 'l2' }] }, checkSpec)!;
    expect(cfg.candidates).toEqual(['fixed', { name: 'gradnorm', alpha: 1, label: 'gn' }]);
  });

  it.each(BAD)('the BalancedTrainer constructor refuses %j, naming %s; nothing is half-built', (opts, field) => {
    const toy = makeToy([1, 2], { names: ['a', 'b'] });
    const optimizer = tf.train.sgd(0.1);
    const before = tf.memory().numTensors;
    try {
      expect(() => new BalancedTrainer({ terms: toy.terms, optimizer, variables: toy.variables, balancer: { name: 'auto', ...opts } as never })).toThrow(
        new RegExp(`option "${field.replace(/\./g, '\\.')}"`),
      );
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      optimizer.dispose();
      toy.dispose();
    }
  });

  it.each(BAD)('loss-balancer run\'s config check refuses %j as field strategy.%s', (opts, field) => {
    let err: unknown;
    try {
      validateRunConfig({ strategy: { name: 'auto', ...opts } }, 'c.yaml');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).field).toBe(`strategy.${field}`);
    expect((err as Error).message).toMatch(/^config c\.yaml: field "strategy\./);
  });

  it('runExample with a config built in code: refused before the run folder is made', async () => {
    const cfg = { ...validateRunConfig({ strategy: 'fixed', steps: 2, output: join(dir, 'out'), name: 'r' }), strategy: { name: 'auto', candidates: ['fixed', { name: 'gradnorm', alpha: -1 }] } };
    await expect(runExample(cfg as never)).rejects.toThrow(/candidates\.1\.alpha/);
    expect(existsSync(join(dir, 'out'))).toBe(false);
  });
});
