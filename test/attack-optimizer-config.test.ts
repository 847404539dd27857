/**
 * Issue 26, item 3: a checkpoint's `optimizer.config` is checksummed and checked before anything
 * is applied. Keys are taken by an allow-list (the optimizer's own `getConfig()` keys), each of the
 * type it has now; only `setLearningRate` / `setMomentum` are called. Each test failed before.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHECKPOINT_VERSION, loadState, saveState } from '../src/node/checkpoint.js';
import { BalancedTrainer } from '../src/train/trainer.js';
import { makeToy, useTestBackend, type Toy } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'lb-optcfg-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeAll(() => useTestBackend());

function fresh(toy: Toy, optimizer: tf.Optimizer = tf.train.adam(0.01)) {
  return { optimizer, trainer: new BalancedTrainer({ terms: toy.terms, optimizer, balancer: 'gradnorm', variables: toy.variables, warn: () => {} }) };
}

async function snapshot(trainer: BalancedTrainer, opt: tf.Optimizer, toy: Toy) {
  const ws = await opt.getWeights();
  const optimizer = ws.map((w) => ({ name: w.name, values: Array.from(w.tensor.dataSync()) }));
  for (const w of ws) if (!(w.tensor instanceof tf.Variable)) w.tensor.dispose();
  return { trainer: trainer.state(), step: trainer.stepCount, config: opt.getConfig(), variables: toy.variables.map((v) => Array.from(v.dataSync())), optimizer };
}

async function saved(toy: Toy): Promise<{ path: string; text: string }> {
  const source = fresh(toy);
  for (let i = 0; i < 3; i++) source.trainer.step();
  const path = join(dir, `ckpt-${Math.random().toString(36).slice(2)}.json`);
  await saveState(path, source.trainer, { optimizer: source.optimizer, variables: toy.variables });
  source.optimizer.dispose();
  return { path, text: readFileSync(path, 'utf8') };
}

describe('item 3: optimizer.config is checked and checksummed before anything is applied', () => {
  const cases: [string, (c: Record<string, unknown>) => void, RegExp][] = [
    ['a key "weights": 1 (would call setWeights(1))', (c) => (c.weights = 1), /field "optimizer\.config\.weights"/],
    ['a key "" (would throw a raw TypeError after the step was applied)', (c) => (c[''] = 1), /field "optimizer\.config\."/],
    ['a key "applyGradients"', (c) => (c.applyGradients = 1), /field "optimizer\.config\.applyGradients"/],
    ['a string learning rate', (c) => (c.learningRate = '0.01'), /field "optimizer\.config\.learningRate"/],
    ['a negative-infinite beta (null in JSON)', (c) => (c.beta1 = null), /field "optimizer\.config\.beta1"/],
    ['a list instead of the config', (c) => Object.assign(c, { 0: 1 }), /field "optimizer\.config\.0"/],
  ];
  it.each(cases)('%s: refused naming the field and file, nothing changed, no unhandled rejection', async (_n, edit, field) => {
    const toy = makeToy([1, 3], { seed: 31 });
    const { path, text } = await saved(toy);
    const c = JSON.parse(text);
    edit(c.optimizer.config);
    writeFileSync(path, JSON.stringify(c));
    const target = fresh(toy);
    tf.tidy(() => toy.variables.forEach((v) => v.assign(tf.zerosLike(v))));
    const before = await snapshot(target.trainer, target.optimizer, toy);
    const tensors = tf.memory().numTensors;
    const err = await loadState(path, target.trainer, { optimizer: target.optimizer, variables: toy.variables }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toContain(path);
    expect((err as Error).message).toMatch(field);
    expect((err as Error).constructor.name).not.toMatch(/^(TypeError|RangeError)$/);
    expect(await snapshot(target.trainer, target.optimizer, toy)).toEqual(before);
    expect(tf.memory().numTensors).toBe(tensors);
    // the trainer still steps from where it was
    target.trainer.step();
    expect(target.trainer.stepCount).toBe(1);
    target.optimizer.dispose();
    toy.dispose();
  });

  it('a flipped digit in learningRate (0.01 → 0.91) is refused by its checksum', async () => {
    const toy = makeToy([1, 3], { seed: 32 });
    const { path, text } = await saved(toy);
    expect(text).toContain('"learningRate":0.01');
    writeFileSync(path, text.replace('"learningRate":0.01', '"learningRate":0.91'));
    const target = fresh(toy);
    await expect(loadState(path, target.trainer, { optimizer: target.optimizer, variables: toy.variables })).rejects.toThrow(/field "optimizer\.config".*checksum/);
    expect(target.optimizer.getConfig().learningRate).toBe(0.01);
    target.optimizer.dispose();
    toy.dispose();
  });

  it(`files of version 1 (config not checksummed) still load; new files are version ${CHECKPOINT_VERSION}`, async () => {
    const toy = makeToy([1, 3], { seed: 33 });
    const { path, text } = await saved(toy);
    const c = JSON.parse(text);
    expect(c.version).toBe(2);
    c.version = 1;
    delete c.checksums['optimizer.config'];
    writeFileSync(path, JSON.stringify(c));
    const target = fresh(toy);
    await loadState(path, target.trainer, { optimizer: target.optimizer, variables: toy.variables });
    expect(target.trainer.stepCount).toBe(3);
    // a version-2 file must carry the config's checksum
    c.version = 2;
    writeFileSync(path, JSON.stringify(c));
    const other = fresh(toy);
    await expect(loadState(path, other.trainer, { optimizer: other.optimizer, variables: toy.variables })).rejects.toThrow(/checksums\.optimizer\.config/);
    target.optimizer.dispose();
    other.optimizer.dispose();
    toy.dispose();
  });

  it('momentum and learning rate are still restored through their setters (SGD momentum)', async () => {
    const toy = makeToy([1, 3], { seed: 34 });
    const a = fresh(toy, tf.train.momentum(0.05, 0.8));
    a.trainer.step();
    const path = join(dir, 'mom.json');
    await saveState(path, a.trainer, { optimizer: a.optimizer, variables: toy.variables });
    const b = fresh(toy, tf.train.momentum(0.1, 0.5));
    await loadState(path, b.trainer, { optimizer: b.optimizer, variables: toy.variables });
    expect(b.optimizer.getConfig()).toEqual({ learningRate: 0.05, momentum: 0.8, useNesterov: false });
    a.optimizer.dispose();
    b.optimizer.dispose();
    toy.dispose();
  });
});
