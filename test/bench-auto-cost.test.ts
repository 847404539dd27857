/** `npm run bench:auto-cost -- --quick` (CI smoke run): runs, reports a ratio, leaks nothing. */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { autoCost } from '../bench/auto-cost.js';
import { useTestBackend } from './helpers.js';

beforeAll(async () => {
  await useTestBackend();
});

describe('bench:auto-cost --quick', () => {
  it('times equal weights and bare auto on the same problem, and leaks no tensor', async () => {
    const before = tf.memory().numTensors;
    const r = await autoCost({ steps: 120, rounds: 1 });
    expect(r.rounds).toHaveLength(1);
    expect(r.rounds[0].candidateSteps).toBeGreaterThan(r.rounds[0].trainerSteps);
    expect(Number.isFinite(r.extra)).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
  });
});
