/**
 * fitBalanced with the automatic selection (`balancer: { name: 'auto', monitor, ... }`): the monitor key
 * becomes the selector's score, evaluated on the validation data with each candidate's weights in
 * place (the model's compiled losses, as fit's evaluation); bad keys are errors naming the option;
 * `harm` reaches the trainer. Reference for the score's numbers: tfjs's own `model.evaluate`.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/train/backend.js';
import { fitBalanced } from '../src/train/fit.js';
import { monitorScore, type MonitorContext } from '../src/train/fit-monitor.js';

beforeAll(() => initBackend('cpu'));

/** Two outputs on one trunk; `metrics` optional. */
function build(metrics?: string[]): tf.LayersModel {
  const input = tf.input({ shape: [3] });
  const h = tf.layers.dense({ units: 8, activation: 'tanh', kernelInitializer: tf.initializers.glorotNormal({ seed: 1 }) }).apply(input) as tf.SymbolicTensor;
  const a = tf.layers.dense({ units: 1, name: 'small', kernelInitializer: tf.initializers.glorotNormal({ seed: 2 }) }).apply(h) as tf.SymbolicTensor;
  const b = tf.layers.dense({ units: 1, name: 'big', kernelInitializer: tf.initializers.glorotNormal({ seed: 3 }) }).apply(h) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: [a, b] });
  model.compile({ optimizer: tf.train.adam(0.01), loss: ['meanSquaredError', 'meanSquaredError'], metrics });
  return model;
}

/** Targets on very different scales: `small` ~ 0.01, `big` ~ 100. */
function data(n = 40) {
  const x = tf.randomNormal([n, 3], 0, 1, 'float32', 11);
  const s = x.sum(1, true);
  return { x, ys: [s.mul(0.01), s.square().mul(100)], dispose: () => tf.dispose([x, s]) };
}

const AUTO = { name: 'auto', candidates: ['fixed', 'grad-magnitude', 'uncertainty'], trialSteps: 2 } as const;

describe('fitBalanced with auto and monitor', () => {
  it("monitor 'val_loss' with validationSplit: runs, picks a winner, History has fit's keys, no tensor leak", async () => {
    const d = data();
    const args = { epochs: 3, batchSize: 8, validationSplit: 0.25, verbose: 0, seed: 1, harm: false } as const;
    // Baseline: what a plain fit of the same model leaves behind (e.g. the optimizer's slots).
    let before = tf.memory().numTensors;
    const m0 = build();
    const h0 = await fitBalanced(m0, d.x, d.ys, args);
    await h0.trainer.close();
    m0.dispose();
    const plain = tf.memory().numTensors - before;
    before = tf.memory().numTensors;
    const model = build();
    const h = await fitBalanced(model, d.x, d.ys, { ...args, balancer: { ...AUTO, monitor: 'val_loss' } });
    const t = h.trainer.tournament!;
    await h.trainer.close();
    model.dispose();
    expect(tf.memory().numTensors).toBe(before + plain);
    expect(t.phase).toBe('done');
    expect(t.score).toBe('user');
    expect(t.mode).toBe('min');
    expect(AUTO.candidates.map((c) => (c === 'fixed' ? 'equal' : c))).toContain(t.winner);
    for (const k of ['loss', 'small_loss', 'big_loss', 'val_loss', 'val_small_loss', 'val_big_loss', 'val_loss/small', 'val_loss/big', 'alpha/small', 'alpha/big']) {
      expect(h.history[k], k).toHaveLength(3);
    }
    // every scored candidate got a finite validation loss
    for (const c of t.candidates) for (const s of c.scores) expect(Number.isFinite(s)).toBe(true);
    d.dispose();
  });

  it('the scores are the validation losses tfjs evaluate computes (val_loss = Σ lossWeights·L_i, val_loss/<out>, val_<out>_loss)', async () => {
    const model = build(['mae']);
    const d = data(20);
    const vx = [d.x.slice(0, 12)];
    const vy = d.ys.map((y) => y.slice(0, 12));
    const ctx: MonitorContext = {
      model, outputNames: model.outputNames,
      labels: (model as unknown as { getDedupedMetricsNames(): string[] }).getDedupedMetricsNames(),
      lossFns: (model as unknown as { lossFunctions: MonitorContext['lossFns'] }).lossFunctions,
      metricsTensors: (model as unknown as { metricsTensors: MonitorContext['metricsTensors'] }).metricsTensors,
      baseWeights: { small: 3, big: 0.5 }, hasReg: false, batchSize: 5,
      val: { x: vx, y: vy }, train: { x: [d.x], y: d.ys },
    };
    const ev = model.evaluate(vx[0], vy, { batchSize: 5 }) as tf.Scalar[];
    const v = ev.map((t) => t.dataSync()[0]);
    tf.dispose(ev);
    // tfjs evaluate: [total, ...]; entries 2..3 are each output's own loss (see fit.ts)
    const [ls, lb] = [v[2], v[3]];
    expect(monitorScore('val_loss/small', ctx).score()).toBeCloseTo(ls, 4);
    expect(monitorScore('val_big_loss', ctx).score()).toBeCloseTo(lb, 2);
    expect(monitorScore('val_loss', ctx).score()).toBeCloseTo(3 * ls + 0.5 * lb, 2);
    // a metric: mean absolute error of output small, by hand
    const p = (model.predict(vx[0]) as tf.Tensor[])[0];
    const mae = tf.tidy(() => tf.mean(tf.abs(tf.sub(p, vy[0]))).dataSync()[0]);
    p.dispose();
    const mk = ctx.labels.find((l) => l.startsWith('small_') && l !== 'small_loss')!;
    expect(monitorScore(`val_${mk}`, ctx).score()).toBeCloseTo(mae, 5);
    expect(monitorScore('val_loss', ctx).mode).toBe('min');
    tf.dispose([...vx, ...vy]);
    d.dispose();
    model.dispose();
  });

  it("mode comes from the key ('max' for an accuracy) unless given", async () => {
    const model = build(['acc']);
    const d = data(20);
    const warnings: string[] = [];
    const warn = (w: string) => void warnings.push(w);
    const h = await fitBalanced(model, d.x, d.ys, { epochs: 1, batchSize: 5, validationSplit: 0.25, verbose: 0, harm: false, warn, balancer: { ...AUTO, monitor: 'val_small_acc' } });
    expect(h.trainer.tournament!.mode).toBe('max');
    const h2 = await fitBalanced(model, d.x, d.ys, { epochs: 1, batchSize: 5, validationSplit: 0.25, verbose: 0, harm: false, warn, balancer: { ...AUTO, monitor: 'val_small_acc', mode: 'min' } });
    expect(h2.trainer.tournament!.mode).toBe('min');
    // val_small_acc is one of tfjs's shifted keys: each fit warns once, naming the key that holds the scored value.
    expect(warnings).toHaveLength(2);
    for (const w of warnings) expect(w).toMatch(/"val_small_acc" is shifted.*monitor "val_acc\/small"/);
    d.dispose();
    model.dispose();
  });

  it("the added per-output keys (val_acc/<out>) score evaluate's metric; tfjs-shifted keys score the same but warn once, naming the History key", async () => {
    const model = build(['acc']);
    const d = data(20);
    const vx = [d.x.slice(0, 12)];
    const vy = d.ys.map((y) => y.slice(0, 12));
    const warnings: string[] = [];
    const ctx: MonitorContext = {
      model, outputNames: model.outputNames,
      labels: (model as unknown as { getDedupedMetricsNames(): string[] }).getDedupedMetricsNames(),
      lossFns: (model as unknown as { lossFunctions: MonitorContext['lossFns'] }).lossFunctions,
      metricsTensors: (model as unknown as { metricsTensors: MonitorContext['metricsTensors'] }).metricsTensors,
      hasReg: false, batchSize: 5, val: { x: vx, y: vy }, train: { x: [d.x], y: d.ys }, warn: (w) => void warnings.push(w),
    };
    expect(ctx.labels).toEqual(['loss', 'small_loss', 'big_loss', 'small_acc', 'big_acc']);
    const ev = model.evaluate(vx[0], vy, { batchSize: 5 }) as tf.Scalar[];
    const v = ev.map((t) => t.dataSync()[0]);
    tf.dispose(ev);
    // evaluate: [L_s, L_s + L_b, L_s, L_b, acc_small, acc_big]
    const own = monitorScore('val_acc/big', ctx);
    expect(own.score()).toBeCloseTo(v[5], 6);
    expect(own.mode).toBe('max');
    expect(monitorScore('val_acc/small', ctx).score()).toBeCloseTo(v[4], 6);
    expect(monitorScore('acc/small', ctx).score()).toBeGreaterThanOrEqual(0); // the training twin exists
    expect(warnings).toEqual([]);
    // tfjs's key: History holds L_b under val_big_acc, the score is still the accuracy; one warning
    const shifted = monitorScore('val_big_acc', ctx);
    expect(shifted.score()).toBeCloseTo(v[5], 6);
    expect(shifted.mode).toBe('max');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/"val_big_acc".*shifted.*scores big_acc itself.*monitor "val_acc\/big"/);
    // 'val_loss' (the documented, recommended monitor) scores Keras' total and does not warn: no
    // History key holds that total, so there is nothing to point to; docs/guide-auto.md says so
    monitorScore('val_loss', ctx);
    expect(warnings).toHaveLength(1);
    monitorScore('big_acc', ctx); // training keys are not shifted
    expect(warnings).toHaveLength(1);
    tf.dispose([...vx, ...vy]);
    d.dispose();
    model.dispose();
  });

  it('fitBalanced warns once for a tfjs-shifted monitor key and not for the added key; the added key is in History', async () => {
    const model = build(['acc']);
    const d = data(20);
    const run = async (monitor: string) => {
      const warnings: string[] = [];
      const h = await fitBalanced(model, d.x, d.ys, { epochs: 2, batchSize: 5, validationSplit: 0.25, verbose: 0, harm: false, warn: (w) => void warnings.push(w), balancer: { ...AUTO, monitor } });
      await h.trainer.close();
      return { h, monitorWarnings: warnings.filter((w) => w.includes('"monitor"')) };
    };
    const a = await run('val_small_acc');
    expect(a.monitorWarnings).toHaveLength(1);
    expect(a.monitorWarnings[0]).toContain('val_acc/small');
    const b = await run('val_acc/small');
    expect(b.monitorWarnings).toEqual([]);
    expect(b.h.history['val_acc/small']).toHaveLength(2);
    expect(b.h.trainer.tournament!.mode).toBe('max');
    d.dispose();
    model.dispose();
  });

  it("a training key other than 'loss' is computed on the training data", async () => {
    const model = build();
    const d = data(20);
    const h = await fitBalanced(model, d.x, d.ys, { epochs: 1, batchSize: 5, verbose: 0, harm: false, balancer: { ...AUTO, monitor: 'big_loss' } });
    expect(h.trainer.tournament!.score).toBe('user');
    expect(h.trainer.tournament!.phase).toBe('done');
    d.dispose();
    model.dispose();
  });

  it('bad monitor keys are errors naming the option, with no tensor leak', async () => {
    const model = build();
    const d = data(20);
    const before = tf.memory().numTensors;
    const run = (balancer: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
      fitBalanced(model, d.x, d.ys, { epochs: 1, batchSize: 5, verbose: 0, balancer: balancer as never, ...extra });
    await expect(run({ ...AUTO, monitor: 'val_loss' })).rejects.toThrow(/"monitor" \("val_loss"\) needs validation data: give argument "validationData" or "validationSplit"/);
    await expect(run({ ...AUTO, monitor: 'loss' })).rejects.toThrow(/"monitor" \("loss"\).*balanced objective/);
    await expect(run({ ...AUTO, monitor: 'val_nope' }, { validationSplit: 0.25 })).rejects.toThrow(/"monitor" \("val_nope"\) is not a quantity of this model; allowed: val_loss, val_small_loss/);
    await expect(run({ ...AUTO, monitor: 'val_loss', score: () => 0 }, { validationSplit: 0.25 })).rejects.toThrow(/"monitor" or "score", not both/);
    await expect(run({ ...AUTO, monitor: 'val_loss', mode: 'up' }, { validationSplit: 0.25 })).rejects.toThrow(/option "mode"/);
    expect(tf.memory().numTensors).toBe(before);
    d.dispose();
    model.dispose();
  });

  it('harm options reach the trainer (false: no harm warnings; thresholds: passed through)', async () => {
    const model = build();
    const d = data(20);
    const warnings: string[] = [];
    await fitBalanced(model, d.x, d.ys, { epochs: 1, batchSize: 5, verbose: 0, harm: false, warn: (m) => warnings.push(m) });
    expect(warnings.filter((w) => /harm/i.test(w))).toEqual([]);
    await expect(fitBalanced(model, d.x, d.ys, { epochs: 1, batchSize: 5, verbose: 0, harm: { nope: 1 } as never })).rejects.toThrow(/nope/);
    d.dispose();
    model.dispose();
  });
});
