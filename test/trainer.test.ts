/** BalancedTrainer, fitBalanced, sinks and summary on the tfjs backend (wasm, as shipped). */
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, readFileSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { BalancedTrainer, JsonlSink, fitBalanced, list, readJsonl, summarize } from '../src/index.js';
import { makeToy, useTestBackend } from './helpers.js';

beforeAll(() => useTestBackend());

describe('BalancedTrainer', () => {
  it('the README example: named terms, a strategy by name, a step, the history', () => {
    const toy = makeToy([1, 20], { names: ['recon', 'kl'] });
    const trainer = new BalancedTrainer({
      terms: toy.terms,
      optimizer: tf.train.adam(1e-2),
      balancer: { name: 'gradnorm', alpha: 1.5 },
      variables: toy.variables,
    });
    const { losses, weights } = trainer.step();
    expect(Object.keys(losses)).toEqual(['recon', 'kl']);
    expect(weights).toEqual({ recon: 1, kl: 1 });
    for (let i = 0; i < 9; i++) trainer.step();
    expect(trainer.history.length).toBe(10);
    expect(trainer.history.weights('kl')).toHaveLength(10);
    expect(trainer.history.last!.gradNorm!.kl).toBeGreaterThan(0);
    expect(trainer.history.meta!.backend).toBe(tf.getBackend());
    toy.dispose();
  });

  it('loss-only strategies evaluate the terms once per step (no per-term gradients)', () => {
    const toy = makeToy([1, 2, 3]);
    const spy = vi.fn(toy.terms);
    const trainer = new BalancedTrainer({ terms: spy, optimizer: tf.train.sgd(0.01), balancer: 'uncertainty', variables: toy.variables });
    trainer.step();
    const afterFirst = spy.mock.calls.length; // one to learn the names, one for the step
    trainer.step();
    trainer.step();
    expect(spy.mock.calls.length - afterFirst).toBe(2);
    expect(trainer.history.last!.gradNorm).toBeUndefined();
    toy.dispose();
  });

  it('applies exactly Σ w_i g_i (SGD lr 1 makes the update the combined gradient)', () => {
    const toy = makeToy([1, 5]);
    const names = ['t0', 't1'];
    const perTerm = names.map((n) => tf.variableGrads(() => toy.terms()[n], toy.variables));
    const before = toy.variables.map((v) => v.clone());
    const trainer = new BalancedTrainer({
      terms: toy.terms,
      optimizer: tf.train.sgd(1),
      balancer: { name: 'grad-magnitude', statistic: 'norm' },
      variables: toy.variables,
    });
    const { weights, gradNorms } = trainer.step();
    const w = names.map((n) => weights[n]);
    // grad-magnitude/norm: w_1 = 0.1 + 0.9·‖g_0‖/‖g_1‖ over the shared trunk
    const trunkNorms = perTerm.map((p) => Math.sqrt(p.grads[toy.trunk.name].square().sum().dataSync()[0]));
    expect(gradNorms!.t0).toBeCloseTo(trunkNorms[0], 4);
    expect(w[1]).toBeCloseTo(0.1 + (0.9 * trunkNorms[0]) / trunkNorms[1], 4);
    toy.variables.forEach((v, k) => {
      const expected = tf.tidy(() => {
        let g = tf.zerosLike(v) as tf.Tensor;
        perTerm.forEach((p, i) => {
          if (p.grads[v.name]) g = g.add(p.grads[v.name].mul(w[i]));
        });
        return before[k].sub(g);
      });
      expect(Array.from(v.dataSync())).toEqual(Array.from(expected.dataSync()).map((x, j) => expect.closeTo(x, 5) as unknown as number));
      expected.dispose();
    });
    tf.dispose([...before, ...perTerm.flatMap((p) => [p.value, ...Object.values(p.grads)])]);
    toy.dispose();
  });

  it('updates only the variables it is given (a discriminator stays untouched)', () => {
    const toy = makeToy([1, 1]);
    const disc = tf.variable(tf.ones([8, 1]), true, `disc_${Math.random()}`);
    const terms = () => {
      const t = toy.terms();
      const z = tf.tanh(tf.matMul(toy.x, toy.trunk));
      return { ...t, adv: tf.mean(tf.matMul(z, disc)).square() as tf.Scalar };
    };
    const before = disc.dataSync().slice();
    for (const balancer of ['fixed', 'gradnorm']) {
      const trainer = new BalancedTrainer({ terms, optimizer: tf.train.adam(0.1), balancer, variables: toy.variables });
      for (let i = 0; i < 3; i++) trainer.step();
    }
    expect(Array.from(disc.dataSync())).toEqual(Array.from(before));
    disc.dispose();
    toy.dispose();
  });

  it('a NaN loss skips the step: no optimizer update, balancer state kept, warning names term and step', () => {
    const toy = makeToy([1, 1]);
    let poison = false;
    const terms = () => {
      const t = toy.terms();
      return poison ? { ...t, t1: t.t1.mul(NaN) as tf.Scalar } : t;
    };
    for (const balancer of ['uncertainty', 'gradnorm']) {
      const warn = vi.fn();
      const trainer = new BalancedTrainer({ terms, optimizer: tf.train.adam(0.1), balancer, variables: toy.variables, warn });
      trainer.step();
      const state = trainer.balancer.state();
      const vars = toy.variables.map((v) => Array.from(v.dataSync()));
      poison = true;
      const r = trainer.step();
      poison = false;
      expect(r.skipped).toMatch(/step 1: loss of term "t1" is NaN/);
      expect(warn).toHaveBeenCalledTimes(1);
      // everything kept but the call counter that messages name (it counts the skipped step too)
      const after = trainer.balancer.state();
      expect(after.core!.cadence!.tick).toBe(state.core!.cadence!.tick + 1);
      expect({ ...after, core: { ...after.core, cadence: state.core!.cadence } }).toEqual(state);
      expect(toy.variables.map((v) => Array.from(v.dataSync()))).toEqual(vars);
      expect(trainer.history.last!.skipped).toBeDefined();
      trainer.step();
      expect(trainer.balancer.step).toBe(2);
    }
    toy.dispose();
  });

  it('errors name the term at fault', () => {
    const toy = makeToy([1, 1]);
    const constant = tf.scalar(3);
    const noPath = new BalancedTrainer({
      terms: () => ({ ...toy.terms(), prior: constant.clone() as tf.Scalar }),
      optimizer: tf.train.sgd(0.1),
      balancer: 'gradnorm',
      variables: toy.variables,
    });
    expect(() => noPath.step()).toThrow(/term "prior" has no gradient path/);
    const vector = new BalancedTrainer({
      terms: () => ({ ...toy.terms(), bad: tf.ones([3]) as unknown as tf.Scalar }),
      optimizer: tf.train.sgd(0.1),
      variables: toy.variables,
    });
    expect(() => vector.step()).toThrow(/term "bad" must be a scalar loss; got shape \[3\]/);
    let extra = false;
    const changing = new BalancedTrainer({
      terms: () => (extra ? { ...toy.terms(), kl: toy.terms().t0 } : toy.terms()),
      optimizer: tf.train.sgd(0.1),
      variables: toy.variables,
    });
    changing.step();
    extra = true;
    expect(() => changing.step()).toThrow(/the terms changed: .*unexpected "kl"/);
    expect(() => new BalancedTrainer({ terms: 3 as never, optimizer: tf.train.sgd(1) })).toThrow(/"terms" must be a function/);
    expect(() => new BalancedTrainer({ terms: toy.terms, optimizer: {} as never })).toThrow(/"optimizer" must be a tf.Optimizer/);
    constant.dispose();
    toy.dispose();
  });

  it('every registered strategy: 100 steps, no tensor leak, finite non-negative weights', async () => {
    const toy = makeToy([1, 30, 0.02]);
    for (const { name } of list().filter((s) => s.kind !== 'selector')) {
      // one strategy at a time, yielding in between: a long synchronous loop starves vitest's worker RPC
      await new Promise((res) => setImmediate(res));
      const optimizer = tf.train.sgd(0.01);
      // Some strategies drive the scale-30 term to an infinite loss on this toy: those steps are
      // skipped with a warning (captured and checked here, not printed), weights kept.
      const warnings: string[] = [];
      const trainer = new BalancedTrainer({ terms: toy.terms, optimizer, balancer: name, variables: toy.variables, keepHistory: true, warn: (m) => warnings.push(m) });
      trainer.step();
      const n0 = tf.memory().numTensors;
      for (let i = 0; i < 100; i++) trainer.step();
      expect(tf.memory().numTensors, name).toBe(n0);
      const skipped = trainer.history.records.filter((r) => r.skipped).length;
      const skipWarnings = warnings.filter((w) => /is (NaN|-?Infinity); balancer update skipped, weights kept/.test(w));
      expect(skipWarnings.length, `${name}: one warning per skipped step`).toBe(skipped);
      for (const r of trainer.history.records) {
        for (const w of Object.values(r.weight)) {
          expect(Number.isFinite(w), name).toBe(true);
        }
      }
      optimizer.dispose();
    }
    toy.dispose();
  }, 600_000); // one run of 101 steps per registered strategy: grows with the registry

  it('state() / load() continue a run identically', () => {
    const mk = () => makeToy([1, 10], { seed: 3 });
    const a = mk();
    const ta = new BalancedTrainer({ terms: a.terms, optimizer: tf.train.sgd(0.05), balancer: 'gradnorm', variables: a.variables });
    for (let i = 0; i < 5; i++) ta.step();
    const saved = JSON.parse(JSON.stringify(ta.state()));
    const vars = a.variables.map((v) => v.clone());
    const restA = Array.from({ length: 5 }, () => ta.step().weights);
    const b = mk();
    b.variables.forEach((v, i) => v.assign(vars[i]));
    const tb = new BalancedTrainer({ terms: b.terms, optimizer: tf.train.sgd(0.05), balancer: 'gradnorm', variables: b.variables });
    tb.load(saved);
    const restB = Array.from({ length: 5 }, () => tb.step().weights);
    expect(restB).toEqual(restA);
    expect(tb.stepCount).toBe(10);
    tf.dispose(vars);
    a.dispose();
    b.dispose();
  });
});

describe('sinks and summary', () => {
  it('JSONL: a meta line then one line per step; raw, weighted and regulariser kept apart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lb-'));
    const toy = makeToy([1, 1]);
    const trainer = new BalancedTrainer({
      terms: toy.terms,
      optimizer: tf.train.sgd(0.01),
      balancer: 'uncertainty',
      variables: toy.variables,
      sinks: [new JsonlSink(join(dir, 'run', 'trajectory.jsonl'))],
    });
    for (let i = 0; i < 4; i++) trainer.step();
    await trainer.close();
    const lines = readFileSync(join(dir, 'run', 'trajectory.jsonl'), 'utf8').trim().split('\n');
    expect(lines).toHaveLength(5);
    const t = readJsonl(join(dir, 'run', 'trajectory.jsonl'));
    expect(t.meta!.strategy).toBe('uncertainty');
    expect(t.records).toHaveLength(4);
    const r = t.records[3];
    expect(r.weighted.t0).toBeCloseTo(r.loss.t0 * r.weight.t0, 10);
    expect(r.total).toBeCloseTo(r.weighted.t0 + r.weighted.t1 + r.regularizer!.t0 + r.regularizer!.t1, 10);
    toy.dispose();
  });

  it('readJsonl drops a torn last line and reports it; a bad middle line is an error', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lb-'));
    const file = join(dir, 't.jsonl');
    writeFileSync(file, '{"kind":"meta","strategy":"fixed"}\n{"kind":"step","step":0,"loss":{"a":1},"weight":{"a":1},"weighted":{"a":1},"total":1}\n');
    appendFileSync(file, '{"kind":"step","step":1,"lo');
    const t = readJsonl(file);
    expect(t.records).toHaveLength(1);
    expect(t.tornLastLine).toBe(true);
    writeFileSync(file, '{"kind":"meta"}\nnot json\n{"kind":"step"}\n');
    expect(() => readJsonl(file)).toThrow(/t.jsonl:2: not a JSON line/);
  });

  it('the console summary gives start/end/mean alpha and the learned ratio', () => {
    const rec = (step: number, a: number, k: number) => ({ step, loss: { recon: 1, kl: 1 }, weight: { recon: a, kl: k }, weighted: { recon: a, kl: k }, total: a + k });
    const text = summarize([rec(0, 1, 1), rec(1, 10, 0.5), rec(2, 18.7, 1)], { strategy: 'gradnorm', backend: 'wasm', terms: ['recon', 'kl'], options: {}, gradients: 'shared', startedAt: '' });
    expect(text).toMatch(/strategy gradnorm on backend wasm, 3 steps/);
    expect(text).toMatch(/recon\s+1\s+18.7\s+9.9\s+18.7×/);
    expect(text).toMatch(/learned: recon ended at 18.7× kl/);
    // weights that never moved (a fixed strategy, or auto's fixed winner) are not called learned
    const fixed = summarize([rec(0, 62.4, 1), rec(1, 62.4, 1)]);
    expect(fixed).toMatch(/fixed: recon at 62.4× kl throughout/);
    expect(fixed).not.toMatch(/learned/);
    // a term whose alpha ended at 0 (mgda can do that) is not the reference; the header counts it
    const rec3 = (step: number, a: number, k: number, c: number) => ({ step, loss: { a: 1, k: 1, c: 1 }, weight: { a, k, c }, weighted: { a, k, c }, total: a + k + c });
    const zero = summarize([rec3(0, 1, 1, 1), rec3(1, 2, 0.5, 0), rec3(2, 4, 0.25, 0)]);
    expect(zero).toMatch(/ratios against k \(the smallest positive end alpha; 1 term\(s\) ended at alpha 0\)/);
  });
});

describe('BalancedTrainer: variables that terms() creates', () => {
  // A new user's trial (2026-12-06) read `layer.trainableWeights` before the layers were built (empty),
  // passed the heads only as `variables`, and the trunk was never trained, silently.
  const setup = (withTrunkListed: boolean) => {
    const dense = tf.layers.dense({ units: 4, activation: 'tanh', inputShape: [3] });
    const listed = dense.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val); // [] before apply()
    const heads = [tf.variable(tf.randomNormal([4, 1], 0, 1, 'float32', 1)), tf.variable(tf.randomNormal([4, 1], 0, 1, 'float32', 2))];
    const x = tf.randomNormal([6, 3], 0, 1, 'float32', 3);
    const terms = () => {
      const z = dense.apply(x) as tf.Tensor2D;
      return { a: tf.mean(tf.square(tf.matMul(z, heads[0]))) as tf.Scalar, b: tf.mean(tf.square(tf.sub(tf.matMul(z, heads[1]), 1))) as tf.Scalar };
    };
    if (withTrunkListed) dense.apply(x);
    const variables = [...(withTrunkListed ? dense.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val) : listed), ...heads];
    return { dense, heads, x, terms, variables, dispose: () => { tf.dispose([...heads, x]); dense.dispose(); } };
  };

  it('warns once, naming them, when option "variables" leaves out trainable variables created in the first step', () => {
    const m = setup(false);
    const warn = vi.fn();
    const t = new BalancedTrainer({ terms: m.terms, optimizer: tf.train.sgd(0.1), balancer: 'mgda', variables: m.variables, warn });
    t.step();
    t.step();
    const msgs = warn.mock.calls.map((c) => String(c[0])).filter((w) => /created/.test(w));
    expect(msgs).toHaveLength(1);
    expect(msgs[0]).toMatch(/terms\(\) created 2 trainable variables during step 0 that option "variables" does not list \(".*kernel", ".*bias"\): the trainer does not update them/);
    expect(msgs[0]).toMatch(/apply the model once before reading layer.trainableWeights, or leave "variables" out/);
    m.dispose();
  });

  it('without option "variables": layers not built yet are built before the first step and trained; the optimizer\'s own variables are not trained', () => {
    // A new user's trial (2026-12-06): unbuilt tf.layers.dense layers and no `variables`: the first
    // step failed, "term "a" has no gradient path to any of the trained variables (2 variables)", the
    // 2 being Adam's β powers, which tfjs creates trainable
    for (const balancer of ['upgrad', 'fixed'] as const) {
      const dense = tf.layers.dense({ units: 4, activation: 'tanh', inputShape: [3], kernelInitializer: tf.initializers.glorotNormal({ seed: 9 }) });
      const head = tf.layers.dense({ units: 2, kernelInitializer: tf.initializers.glorotNormal({ seed: 10 }) });
      const x = tf.randomNormal([6, 3], 0, 1, 'float32', 11);
      const terms = () => {
        const out = head.apply(dense.apply(x)) as tf.Tensor2D;
        const [a, b] = tf.split(out, 2, 1);
        return { a: tf.mean(tf.square(a)) as tf.Scalar, b: tf.mean(tf.square(tf.sub(b, 1))) as tf.Scalar };
      };
      const optimizer = tf.train.adam(0.05);
      const t = new BalancedTrainer({ terms, optimizer, balancer, warn: () => {} });
      const first = t.step();
      for (let i = 0; i < 20; i++) t.step();
      const last = t.step();
      const names = t.variables.map((v) => v.name);
      expect(names.filter((n) => /dense/.test(n)), balancer).toHaveLength(4);
      const own = optimizer as unknown as { accBeta1: tf.Variable; accBeta2: tf.Variable };
      expect(names, balancer).not.toContain(own.accBeta1.name);
      expect(names, balancer).not.toContain(own.accBeta2.name);
      expect(last.losses.a + last.losses.b, balancer).toBeLessThan(first.losses.a + first.losses.b);
      optimizer.dispose();
      dense.dispose();
      head.dispose();
      x.dispose();
    }
  });

  it('option "variables": a LayerVariable is named with the fix; an empty list (read before the layers were built) names the cause', () => {
    const dense = tf.layers.dense({ units: 2, inputShape: [3] });
    const x = tf.randomNormal([4, 3], 0, 1, 'float32', 20);
    const terms = () => {
      const out = dense.apply(x) as tf.Tensor2D;
      return { a: tf.mean(tf.square(out)) as tf.Scalar, b: tf.mean(out) as tf.Scalar };
    };
    const early = dense.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val); // [] before apply()
    const t = new BalancedTrainer({ terms, optimizer: tf.train.sgd(0.1), balancer: 'fixed', variables: early, warn: () => {} });
    const before = tf.memory().numTensors; // after the optimizer's own constant
    expect(() => t.step()).toThrow(/option "variables" lists no trainable variable \(0 given\)\. A tfjs-layers layer creates its weights on its first apply\(\): apply the model once before reading layer\.trainableWeights, or leave "variables" out/);
    expect(tf.memory().numTensors).toBe(before);
    dense.apply(x);
    expect(() => new BalancedTrainer({ terms, optimizer: tf.train.sgd(0.1), variables: dense.trainableWeights as never })).toThrow(
      /option "variables": element 0 \(".*kernel"\) is not a tf\.Variable: it is a tfjs-layers LayerVariable \(layer\.trainableWeights\); pass its variable: layer\.trainableWeights\.map\(\(w\) => w\.read\(\)\)/,
    );
    const t2 = new BalancedTrainer({ terms, optimizer: tf.train.sgd(0.1), variables: dense.trainableWeights.map((w) => w.read() as tf.Variable), warn: () => {} });
    t2.step();
    dense.dispose();
    x.dispose();
  });

  it('no warning when they are listed, or when "variables" is left out', () => {
    for (const listed of [true, false]) {
      const m = setup(listed);
      const warn = vi.fn();
      const t = new BalancedTrainer({ terms: m.terms, optimizer: tf.train.sgd(0.1), balancer: 'mgda', ...(listed ? { variables: m.variables } : {}), warn });
      t.step();
      t.step();
      expect(warn.mock.calls.filter((c) => /created/.test(String(c[0])))).toEqual([]);
      m.dispose();
    }
  });
});

describe('fitBalanced', () => {
  const build = () => {
    const input = tf.input({ shape: [4] });
    const h = tf.layers.dense({ units: 8, activation: 'tanh', kernelInitializer: tf.initializers.glorotNormal({ seed: 1 }) }).apply(input) as tf.SymbolicTensor;
    const o1 = tf.layers.dense({ units: 1, name: 'reg', kernelInitializer: tf.initializers.glorotNormal({ seed: 2 }) }).apply(h) as tf.SymbolicTensor;
    const o2 = tf.layers.dense({ units: 1, activation: 'sigmoid', name: 'cls', kernelInitializer: tf.initializers.glorotNormal({ seed: 3 }) }).apply(h) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: [o1, o2] });
    const x = tf.randomNormal([64, 4], 0, 1, 'float32', 1);
    const y1 = tf.tidy(() => x.sum(1, true).mul(10));
    const y2 = tf.tidy(() => x.slice([0, 0], [64, 1]).greater(0).cast('float32'));
    return { model, x, y1, y2 };
  };

  it('trains a compiled multi-output model with its per-output losses, returns a fit-like History', async () => {
    const { model, x, y1, y2 } = build();
    model.compile({ optimizer: tf.train.adam(1e-2), loss: ['meanSquaredError', 'binaryCrossentropy'] });
    const epochs: number[] = [];
    const h = await fitBalanced(model, x, [y1, y2], {
      balancer: 'grad-magnitude',
      epochs: 3,
      batchSize: 16,
      validationData: [x, [y1, y2]],
      callbacks: { onEpochEnd: (e) => void epochs.push(e) },
    });
    expect(h.epoch).toEqual([0, 1, 2]);
    expect(epochs).toEqual([0, 1, 2]);
    for (const k of ['loss', 'reg_loss', 'cls_loss', 'alpha/reg', 'alpha/cls', 'val_loss', 'val_reg_loss', 'val_cls_loss']) {
      expect(h.history[k], k).toHaveLength(3);
    }
    expect(h.history['alpha/cls'][2]).toBeGreaterThan(1); // the small-gradient classification term is up-weighted
    expect(h.trainer.history.length).toBe(12);
    // no leak across epochs: a fourth epoch adds no tensor
    const n0 = tf.memory().numTensors;
    await fitBalanced(model, x, [y1, y2], { balancer: h.trainer.balancer, epochs: 1, batchSize: 16 });
    expect(tf.memory().numTensors).toBe(n0);
    tf.dispose([x, y1, y2]);
    model.dispose();
  });

  it('errors are clear: uncompiled model, wrong target count, bad epochs', async () => {
    const { model, x, y1, y2 } = build();
    await expect(fitBalanced(model, x, [y1, y2])).rejects.toThrow(/You must compile a model before training/);
    model.compile({ optimizer: tf.train.sgd(0.1), loss: ['meanSquaredError', 'binaryCrossentropy'] });
    await expect(fitBalanced(model, x, [y1])).rejects.toThrow(/Error when checking model target/);
    await expect(fitBalanced(model, x, [y1, y2], { epochs: 1.5 })).rejects.toThrow(/argument "epochs" got 1.5/);
    tf.dispose([x, y1, y2]);
    model.dispose();
  });
});
