/**
 * Issue 26, item 10: `fitBalanced` (and `fitDatasetBalanced`) with `auto` and a callback that
 * throws releases every candidate's copy; the sinks are closed on success and on error (one open
 * file descriptor per call before). Each test failed before the change.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JsonlSink } from '../src/node/sinks.js';
import { fitBalanced } from '../src/train/fit.js';
import { twoOutputModel, useTestBackend } from './helpers.js';

let dir: string;
beforeAll(async () => {
  await useTestBackend();
  dir = mkdtempSync(join(tmpdir(), 'lb-fit-release-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const openFds = () => readdirSync('/proc/self/fd').length;

function twoOutputs() {
  const model = twoOutputModel();
  const x = tf.randomNormal([32, 3], 0, 1, 'float32', 4);
  const ya = tf.randomNormal([32, 1], 0, 1, 'float32', 5);
  const yb = tf.mul(tf.randomNormal([32, 1], 0, 1, 'float32', 6), 100);
  return { model, x, y: [ya, yb], dispose: () => (tf.dispose([x, ya, yb]), model.dispose()) };
}

const AUTO = { name: 'auto', trialSteps: 2, candidates: ['fixed', 'mgda', 'softadapt', { name: 'fixed', weights: [1, 0.01] }] };

describe('item 10: fitBalanced releases what it holds', () => {
  it('a callback that throws during the selection: the error propagates, every candidate copy is released, the sink is closed', async () => {
    const p = twoOutputs();
    // warm up: tfjs keeps a few tensors of its own after the first fit (e.g. the optimizer's), not ours
    await fitBalanced(p.model, p.x, p.y, { balancer: 'fixed', epochs: 1, batchSize: 8, verbose: 0 });
    for (let k = 0; k < 3; k++) {
      const tensors = tf.memory().numTensors;
      const fds = openFds();
      const sink = new JsonlSink(join(dir, `throw-${k}.jsonl`));
      await expect(
        fitBalanced(p.model, p.x, p.y, {
          balancer: AUTO,
          epochs: 2,
          batchSize: 8,
          verbose: 0,
          sinks: [sink],
          callbacks: { onBatchEnd: async (b) => { if (b === 2) throw new Error('user callback failed'); } },
        }),
      ).rejects.toThrow('user callback failed');
      // the optimizer's Adam slots are created at the first fit's first step and kept: compare from the second call
      if (k > 0) expect(tf.memory().numTensors, `call ${k}`).toBe(tensors);
      expect(openFds(), `call ${k}: file descriptors`).toBe(fds);
      expect(readFileSync(join(dir, `throw-${k}.jsonl`), 'utf8').split('\n').filter(Boolean).length).toBeGreaterThan(1);
    }
    p.dispose();
  });

  it('a successful fit closes its sinks: no file descriptor left per call; the file is complete', async () => {
    const p = twoOutputs();
    const fds = openFds();
    for (let k = 0; k < 3; k++) {
      const path = join(dir, `ok-${k}.jsonl`);
      const notices: string[] = [];
      const out = await fitBalanced(p.model, p.x, p.y, { balancer: AUTO, epochs: 3, batchSize: 8, verbose: 0, sinks: [new JsonlSink(path)], warn: (m) => void notices.push(m) });
      expect(out.trainer.tournament!.phase).toBe('done');
      // the only message: auto's notice when it keeps equal weights (captured, not printed)
      expect(notices.filter((m) => !/auto kept equal weights/.test(m))).toEqual([]);
      expect(readFileSync(path, 'utf8').endsWith('\n')).toBe(true);
    }
    expect(openFds()).toBe(fds);
    p.dispose();
  });

  it('a sink closed by a fit and written again continues its file (append), never truncates it', () => {
    const path = join(dir, 'continue.jsonl');
    const sink = new JsonlSink(path);
    const rec = { step: 0, epoch: 0, loss: { a: 1 }, weight: { a: 1 }, weighted: { a: 1 }, total: 1 };
    sink.write(rec);
    sink.close();
    sink.write({ ...rec, step: 1 });
    sink.close();
    expect(readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l).step)).toEqual([0, 1]);
  });
});
