/**
 * Exact mode's layer-wise Gram matrix (src/train/layerwise.ts, issue 27): for dense layers the Gram
 * matrix over the shared parameters comes from each layer's input and per-term output gradients, and
 * the combined gradient from aᵀ(Σ w_i D_i). Checked against the per-term path (setLayerwise(false):
 * T backward passes, M Mᵀ, Σ w_i g_i) and against an independent reference (one tf.variableGrads per
 * term, the Gram matrix in float64 here).
 */
import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Balancer } from '../src/core/balancer.js';
import type { Strategy, StepInput } from '../src/core/types.js';
import { setLayerwise, termGradientsLayered } from '../src/train/grads.js';
import { BalancedTrainer } from '../src/train/trainer.js';
import { fitBalanced } from '../src/train/fit.js';
import { useTestBackend } from './helpers.js';

beforeAll(() => useTestBackend());
// the trainer takes the layer-wise reading from LAYERWISE_MIN_TERMS (8) terms on; these models have fewer
beforeEach(() => setLayerwise(true, 1));
afterEach(() => setLayerwise(true));

/** A Gram strategy (no stats) that records what it reads and returns fixed weights. */
function spy(weights: number[], seen: StepInput[], headWeights: 'weighted' | 'unit' = 'weighted'): Balancer {
  const s: Strategy = {
    name: 'spy-gram',
    summary: 'records its input',
    options: { parse: (x: unknown) => x, safeParse: (x: unknown) => ({ success: true, data: x }) } as never,
    needs: () => ({ gradients: 'gram' }),
    init: () => null,
    update: (_o, state, input) => {
      seen.push(input);
      return { weights: [...weights], state };
    },
    ...(headWeights === 'unit' ? { headWeights } : {}),
  };
  return new Balancer(s, {}) as Balancer;
}

let uid = 0;
/**
 * x (B×4) → dense 4→12 (+b1) → tanh → dense 12→12 (+b2) → relu, plus a residual sigmoid(h1) → z.
 * Terms: T linear heads on z (one a two-layer head), one term minus a constant. B = 8: the first
 * layer takes the per-term-gradient form (in 4 < B), the second the K = a aᵀ form (in 12 > B).
 */
function model(T = 4, B = 8) {
  const id = uid++;
  let seed = 1;
  const v = (shape: number[]) => tf.variable(tf.randomNormal(shape, 0, 0.6, 'float32', seed++), true, `lw${id}_${seed}`);
  const W1 = v([4, 12]);
  const b1 = v([12]);
  const W2 = v([12, 12]);
  const b2 = v([12]);
  const heads = Array.from({ length: T }, () => v([12, 1]));
  const deep = v([1, 3]);
  const x = tf.randomNormal([B, 4], 0, 1, 'float32', 100);
  const y = tf.randomNormal([B, 1], 0, 1, 'float32', 101);
  const trunk = () => {
    const h1 = tf.tanh(tf.add(tf.matMul(x, W1), b1));
    return tf.add(tf.relu(tf.add(tf.matMul(h1, W2), b2)), tf.sigmoid(h1));
  };
  const names = heads.map((_, i) => `t${i}`);
  const terms = () => {
    const z = trunk();
    const out: Record<string, tf.Scalar> = {};
    heads.forEach((h, i) => {
      const u = tf.matMul(z, h);
      out[names[i]] = (i === 0 ? tf.mean(tf.square(tf.matMul(u, deep))) : tf.sub(tf.mean(tf.square(tf.sub(u, y))), 0.1 * i)) as tf.Scalar;
    });
    return out;
  };
  const vars = [W1, b1, W2, b2, ...heads, deep];
  return { vars, shared: [W1, b1, W2, b2], names, terms, dispose: () => tf.dispose([...vars, x, y]) };
}

/** The independent reference: per-term gradients by one tf.variableGrads each, G over `over` in float64. */
function gramReference(terms: () => Record<string, tf.Scalar>, names: readonly string[], over: tf.Variable[]): number[][] {
  const rows = names.map((n) =>
    tf.tidy(() => {
      const { grads } = tf.variableGrads(() => terms()[n], over);
      return over.flatMap((v) => Array.from(grads[v.name].dataSync()));
    }),
  );
  return rows.map((a) => rows.map((b) => a.reduce((s, x, k) => s + x * b[k], 0)));
}
const reference = (m: ReturnType<typeof model>) => gramReference(m.terms, m.names, m.shared);

/** Two steps of a trainer with `spy`, layer-wise on or off: the Gram matrices read and the variables after. */
function train(layerwise: boolean, w: number[], headWeights: 'weighted' | 'unit' = 'weighted', shared?: 'first' | 'kernels') {
  setLayerwise(layerwise, 1);
  const m = model(w.length);
  const seen: StepInput[] = [];
  const t = new BalancedTrainer({ terms: m.terms, optimizer: tf.train.sgd(0.1), balancer: spy(w, seen, headWeights), variables: m.vars, ...(shared ? { shared: shared === 'first' ? m.shared.slice(0, 2) : [m.shared[0], m.shared[2]] } : {}) });
  const want = reference(m);
  t.step();
  t.step();
  const after = m.vars.map((v) => Array.from(v.dataSync()));
  m.dispose();
  return { grams: seen.map((s) => s.gram!), want, after };
}

const close = (a: number, b: number, rel: number) => expect(Math.abs(a - b)).toBeLessThanOrEqual(rel * Math.max(1, Math.abs(b)));

describe('exact mode, layer-wise Gram for dense layers', () => {
  it('takes the layer-wise form on dense layers with tanh, relu, sigmoid and a residual sum', () => {
    const m = model();
    tf.tidy(() => {
      const r = termGradientsLayered(m.terms, m.names, m.vars, () => {}, null);
      expect(r.kind).toBe('layerwise');
      if (r.kind === 'layerwise') {
        expect(r.shared.map((v) => v.name)).toEqual(m.shared.map((v) => v.name));
        // the second layer (in 12 > B) in the K form, the first (in 4 + 1 ≤ B) as per-term gradients
        expect(r.parts.map((p) => (p.kind !== 'bias' && p.bias ? `${p.kind}+bias` : p.kind))).toEqual(['dense+bias', 'grads+bias']);
      }
    });
    m.dispose();
  });

  it('reads the Gram matrix of the per-term path and of an independent reference, and applies the same update', () => {
    const w = [0.5, 2, 1, 0.25];
    const lw = train(true, w);
    const pt = train(false, w);
    lw.want.forEach((row, i) => row.forEach((x, j) => {
      close(lw.grams[0][i][j], x, 1e-4);
      close(pt.grams[0][i][j], x, 1e-4);
    }));
    lw.grams[1].flat().forEach((x, k) => close(x, pt.grams[1].flat()[k], 1e-4));
    lw.after.flat().forEach((x, k) => close(x, pt.after.flat()[k], 1e-5));
  });

  it('unit head weights, and a `shared` option naming part of the shared layers, agree with the per-term path', () => {
    const w = [0.3, 1.5, 0.7, 2];
    // 'first': the first layer's kernel and bias (per-term-gradient form); 'kernels': both kernels
    // without their biases (the first layer then in the other form, its bias left out of the Gram)
    for (const shared of ['first', 'kernels'] as const) {
      const a = train(true, w, 'unit', shared);
      const b = train(false, w, 'unit', shared);
      a.grams.flat(2).forEach((x, k) => close(x, b.grams.flat(2)[k], 1e-4));
      a.after.flat().forEach((x, k) => close(x, b.after.flat()[k], 1e-5));
    }
  });

  it('a Gram matrix that overflows float32 is read again in the scaled form, as on the per-term path', () => {
    const read = (layerwise: boolean) => {
      setLayerwise(layerwise, 1);
      const m = model();
      const seen: StepInput[] = [];
      const terms = () => {
        const t = m.terms();
        return { ...t, t3: tf.mul(t.t3, 1e20) as tf.Scalar };
      };
      const t = new BalancedTrainer({ terms, optimizer: tf.train.sgd(0), balancer: spy([1, 1, 1, 1], seen), variables: m.vars, onNonFinite: 'skip', warn: () => {} });
      tf.tidy(() => {
        if (layerwise) expect(termGradientsLayered(terms, m.names, m.vars, () => {}, null).kind).toBe('layerwise');
      });
      t.step();
      m.dispose();
      return seen[0].gram!;
    };
    const a = read(true);
    const b = read(false);
    expect(Number.isFinite(a[3][3])).toBe(true);
    a.flat().forEach((x, k) => close(x, b.flat()[k], 1e-4));
  });

  it('reads the tensors the engine kept, not the forward ones (disposed inside a layer tf.tidy, as tfjs-layers does)', () => {
    const grads = (layerwise: boolean) => {
      setLayerwise(layerwise, 1);
      const m = model(3);
      const [W1, b1, W2, b2, h0, h1, h2] = m.vars;
      const x = tf.randomNormal([8, 4], 0, 1, 'float32', 7);
      // each layer in its own tidy: its product and sum are disposed when it returns
      const dense = (a: tf.Tensor, W: tf.Tensor, b: tf.Tensor, act: (t: tf.Tensor) => tf.Tensor) => tf.tidy(() => act(tf.add(tf.matMul(a, W), b)));
      const terms = () => {
        const z = dense(dense(x, W1, b1, tf.tanh), W2, b2, tf.relu);
        return Object.fromEntries([h0, h1, h2].map((h, i) => [`t${i}`, tf.tidy(() => tf.mean(tf.square(tf.matMul(z, h))) as tf.Scalar)]));
      };
      const seen: StepInput[] = [];
      const vars = [W1, b1, W2, b2, h0, h1, h2];
      tf.tidy(() => {
        if (layerwise) expect(termGradientsLayered(terms, ['t0', 't1', 't2'], vars, () => {}, null).kind).toBe('layerwise');
      });
      const t = new BalancedTrainer({ terms, optimizer: tf.train.sgd(0.1), balancer: spy([1, 2, 0.5], seen), variables: vars });
      t.step();
      const after = vars.map((v) => Array.from(v.dataSync()));
      x.dispose();
      m.dispose();
      return { gram: seen[0].gram!, after };
    };
    const a = grads(true);
    const b = grads(false);
    a.gram.flat().forEach((x, k) => close(x, b.gram.flat()[k], 1e-4));
    a.after.flat().forEach((x, k) => close(x, b.after.flat()[k], 1e-5));
  });

  it('a first layer without a bias (per-term-gradient form, its input the right operand), as the independent reference; the input stays right as a right operand of another shape', () => {
    let seed = 40;
    const v = (shape: number[], name: string) => tf.variable(tf.randomNormal(shape, 0, 0.6, 'float32', seed++), true, `lwnb_${name}`);
    const [W1, W2, b2] = [v([4, 12], 'W1'), v([12, 12], 'W2'), v([12], 'b2')];
    const heads = Array.from({ length: 3 }, (_, i) => v([12, 1], `h${i}`));
    const x = tf.randomNormal([8, 4], 0, 1, 'float32', 100);
    const terms = () => {
      const z = tf.relu(tf.add(tf.matMul(tf.tanh(tf.matMul(x, W1)), W2), b2));
      return Object.fromEntries(heads.map((h, i) => [`t${i}`, tf.mean(tf.square(tf.sub(tf.matMul(z, h), i))) as tf.Scalar]));
    };
    const names = heads.map((_, i) => `t${i}`);
    const shared = [W1, W2, b2];
    const want = gramReference(terms, names, shared);
    tf.tidy(() => {
      const r = termGradientsLayered(terms, names, [...shared, ...heads], () => {}, null);
      expect(r.kind).toBe('layerwise');
      if (r.kind !== 'layerwise') return;
      expect(r.parts.map((p) => `${p.kind}${p.kind !== 'bias' && p.bias ? '+bias' : ''}`)).toEqual(['dense+bias', 'grads']);
      const got = r.gram.arraySync();
      want.forEach((row, i) => row.forEach((q, j) => close(got[i][j], q, 1e-4)));
    });
    // x as a right operand of another shape afterwards: right values. tfjs-wasm caches a right operand's
    // packing by buffer, not shape (bench/wasm-matmul.ts); the reading packs the engine's saved copy of
    // x (wasm's Identity copies), never x's own buffer
    const other = tf.randomNormal([3, 32], 0, 1, 'float32', 7) as tf.Tensor2D;
    const xs = Array.from(x.dataSync());
    const got = Array.from(tf.matMul(other, tf.reshape(x, [32, 1]) as tf.Tensor2D).dataSync());
    const o = other.arraySync();
    got.forEach((g, i) => close(g, o[i].reduce((acc, q, k) => acc + q * xs[k], 0), 1e-5));
    tf.dispose([W1, W2, b2, ...heads, x, other]);
  });

  it('a tail after the dense layers (one [h, T] head variable split by tf.unstack; per-sample terms): the Gram matrix and the step of the per-term path and of the reference', () => {
    // terms that split only after other operations on a shared output: the per-term gradients at the
    // tail's input come from T passes through the tail, the dense layers' from the batched pass
    let seed = 60;
    const v = (shape: number[], name: string) => tf.variable(tf.randomNormal(shape, 0, 0.5, 'float32', seed++), true, `lwtail_${name}_${seed}`);
    const x = tf.randomNormal([8, 5], 0, 1, 'float32', 200);
    const y = tf.randomNormal([8, 4], 0, 1, 'float32', 201);
    const models = {
      // z·H + hb (H [6, 4]: the heads as one variable), squared error per column, mean over the batch
      'joint head': () => {
        const [W1, b1, H, hb] = [v([5, 6], 'W1'), v([6], 'b1'), v([6, 4], 'H'), v([4], 'hb')];
        const terms = () => {
          const u = tf.add(tf.matMul(tf.tanh(tf.add(tf.matMul(x, W1), b1)), H), hb);
          const per = tf.unstack(tf.mean(tf.square(tf.sub(u, y)), 0));
          return Object.fromEntries(per.map((l, i) => [`c${i}`, l as tf.Scalar]));
        };
        return { vars: [W1, b1, H, hb], terms, names: ['c0', 'c1', 'c2', 'c3'] };
      },
      // instance-wise: each sample's loss a term (T = B = 8)
      'per-sample terms': () => {
        const [W1, b1, w2] = [v([5, 6], 'W1'), v([6], 'b1'), v([6, 1], 'w2')];
        const terms = () => {
          const u = tf.matMul(tf.relu(tf.add(tf.matMul(x, W1), b1)), w2);
          const per = tf.unstack(tf.reshape(tf.abs(tf.sub(u, y.slice([0, 0], [8, 1]))), [8]));
          return Object.fromEntries(per.map((l, i) => [`s${i}`, l as tf.Scalar]));
        };
        return { vars: [W1, b1, w2], terms, names: Array.from({ length: 8 }, (_, i) => `s${i}`) };
      },
    };
    for (const [what, make] of Object.entries(models)) {
      const m = make();
      const want = gramReference(m.terms, m.names, m.vars);
      tf.tidy(() => {
        const r = termGradientsLayered(m.terms, m.names, m.vars, () => {}, null);
        expect(r.kind, what).toBe('layerwise');
        if (r.kind !== 'layerwise') return;
        const got = r.gram.arraySync();
        want.forEach((row, i) => row.forEach((q, j) => close(got[i][j], q, 1e-4)));
      });
      // the trainer's step, layer-wise against per-term, from the same start
      const start = m.vars.map((s) => s.clone());
      const step = (layerwise: boolean) => {
        setLayerwise(layerwise, 1);
        m.vars.forEach((s, k) => s.assign(start[k]));
        const w = m.names.map((_, i) => 0.5 + (i % 3));
        const seen: StepInput[] = [];
        const t = new BalancedTrainer({ terms: m.terms, optimizer: tf.train.sgd(0.05), balancer: spy(w, seen), variables: m.vars });
        const before = tf.memory().numTensors;
        t.step();
        t.step();
        expect(tf.memory().numTensors, what).toBe(before);
        return { path: t.readingPath, after: m.vars.map((s) => Array.from(s.dataSync())), gram: seen[1].gram! };
      };
      const lw = step(true);
      const pt = step(false);
      expect(lw.path, what).toBe('exact, layer-wise');
      expect(pt.path, what).toBe('exact, per-term');
      lw.gram.flat().forEach((q, k) => close(q, pt.gram.flat()[k], 1e-4));
      lw.after.flat().forEach((q, k) => close(q, pt.after.flat()[k], 1e-5));
      tf.dispose([...m.vars, ...start]);
    }
    tf.dispose([x, y]);
  });

  it('falls back to per-term gradients when the tail has a variable, reads two tensors of the dense part, or its input is also read by a dense layer', () => {
    let seed = 80;
    const v = (shape: number[], name: string) => tf.variable(tf.randomNormal(shape, 0, 0.5, 'float32', seed++), true, `lwtailfb_${name}_${seed}`);
    const x = tf.randomNormal([8, 5], 0, 1, 'float32', 300);
    const [W1, W2, s] = [v([5, 6], 'W1'), v([6, 6], 'W2'), v([6], 's')];
    const split = (u: tf.Tensor) => {
      const per = tf.unstack(tf.mean(u, 0));
      return { a: per[0] as tf.Scalar, b: per[1] as tf.Scalar, c: per[2] as tf.Scalar };
    };
    const cases: Record<string, [() => Record<string, tf.Scalar>, tf.Variable[]]> = {
      'a variable in the tail': [() => split(tf.mul(tf.square(tf.matMul(x, W1)), s)), [W1, s]],
      'two tensors of the dense part into the tail': [() => { const h = tf.matMul(x, W1); return split(tf.mul(tf.square(h), tf.matMul(tf.relu(h), W2))); }, [W1, W2]],
      'the tail input read by a dense layer too': [() => { const h = tf.relu(tf.matMul(x, W1)); return split(tf.add(tf.square(h), tf.matMul(h, W2))); }, [W1, W2]],
    };
    for (const [what, [terms, vars]] of Object.entries(cases)) {
      tf.tidy(() => {
        const r = termGradientsLayered(terms, ['a', 'b', 'c'], vars, () => {}, null);
        expect(r.kind, what).toBe('per-term');
      });
    }
    tf.dispose([x, W1, W2, s]);
  });

  it('a tfjs-layers Dense trunk whose product is fused (tanh, sigmoid, linear, with and without bias): layer-wise, the reference Gram matrix, the per-term step, no leak', () => {
    // A new user's trial (2026-12-06): a trunk of tf.layers.dense with tanh or sigmoid never took the
    // layer-wise path although the docs said so: tfjs-layers then calls tf.fused.matMul (a
    // custom-gradient node over [1, B, in] and [1, in, out] views, the bias fused when linear)
    const x = tf.randomNormal([8, 5], 0, 1, 'float32', 400);
    for (const [act, useBias] of [['tanh', true], ['sigmoid', false], ['linear', true], ['linear', false]] as const) {
      const what = `${act}, bias ${useBias}`;
      const d1 = tf.layers.dense({ units: 6, activation: act, inputShape: [5], useBias, kernelInitializer: tf.initializers.glorotNormal({ seed: 3 }), biasInitializer: tf.initializers.randomNormal({ seed: 4 }) });
      const d2 = tf.layers.dense({ units: 6, activation: act, useBias, kernelInitializer: tf.initializers.glorotNormal({ seed: 5 }), biasInitializer: tf.initializers.randomNormal({ seed: 6 }) });
      d2.apply(d1.apply(x));
      const trunkVars = [...d1.trainableWeights, ...d2.trainableWeights].map((w) => (w as unknown as { val: tf.Variable }).val);
      const heads = Array.from({ length: 3 }, (_, i) => tf.variable(tf.randomNormal([6, 1], 0, 0.5, 'float32', 410 + i), true, `lwfused_${act}${useBias}_${i}`));
      const names = heads.map((_, i) => `t${i}`);
      const terms = () => {
        const z = d2.apply(d1.apply(x)) as tf.Tensor2D;
        return Object.fromEntries(heads.map((h, i) => [names[i], tf.mean(tf.square(tf.sub(tf.matMul(z, h), i))) as tf.Scalar]));
      };
      const want = gramReference(terms, names, trunkVars);
      tf.tidy(() => {
        const r = termGradientsLayered(terms, names, [...trunkVars, ...heads], () => {}, null);
        expect(r.kind, what).toBe('layerwise');
        if (r.kind !== 'layerwise') return;
        const got = r.gram.arraySync();
        want.forEach((row, i) => row.forEach((q, j) => close(got[i][j], q, 1e-4)));
      });
      const vars = [...trunkVars, ...heads];
      const start = vars.map((v) => v.clone());
      const step = (layerwise: boolean) => {
        setLayerwise(layerwise, 1);
        vars.forEach((v, k) => v.assign(start[k]));
        const seen: StepInput[] = [];
        const t = new BalancedTrainer({ terms, optimizer: tf.train.sgd(0.05), balancer: spy([0.5, 2, 1], seen), variables: vars });
        t.step();
        const before = tf.memory().numTensors;
        t.step();
        expect(tf.memory().numTensors, what).toBe(before);
        return { path: t.readingPath, after: vars.map((v) => Array.from(v.dataSync())) };
      };
      const lw = step(true);
      const pt = step(false);
      expect(lw.path, what).toBe('exact, layer-wise');
      lw.after.flat().forEach((q, k) => close(q, pt.after.flat()[k], 1e-5));
      tf.dispose([...heads, ...start]);
      d1.dispose();
      d2.dispose();
    }
    x.dispose();
  });

  it('Adam keeps each variable\'s moments when layer-wise steps and `every: k` steps in between build their gradient maps in other orders', () => {
    // tfjs's optimizers keep their slots by the position of a name in the gradient map. The layer-wise
    // combination lists the layers from the output; `every`'s steps in between list the variables in
    // order: Adam gave W2 W1's moments (bench/grad-read.ts crashed: shapes 256,256 and 64,256). Here W1
    // and W2 have the same shape, so a swap would be silent: compared with the per-term path.
    const run = (layerwise: boolean) => {
      setLayerwise(layerwise, 1);
      let seed = 500;
      // names that are not integers: an object keeps integer-like keys in numeric order whatever the insertion order
      const v = (shape: number[]) => tf.variable(tf.randomNormal(shape, 0, 0.5, 'float32', seed++), true, `lwadam${layerwise ? 'L' : 'P'}_${seed}`);
      const [W1, b1, W2, b2] = [v([6, 6]), v([6]), v([6, 6]), v([6])];
      const heads = Array.from({ length: 4 }, () => v([6, 1]));
      const x = tf.randomNormal([8, 6], 0, 1, 'float32', 510);
      const terms = () => {
        const z = tf.relu(tf.add(tf.matMul(tf.tanh(tf.add(tf.matMul(x, W1), b1)), W2), b2));
        return Object.fromEntries(heads.map((h, i) => [`t${i}`, tf.mean(tf.square(tf.sub(tf.matMul(z, h), i))) as tf.Scalar]));
      };
      const vars = [W1, b1, W2, b2, ...heads];
      const optimizer = tf.train.adam(0.05);
      const t = new BalancedTrainer({ terms, optimizer, balancer: 'upgrad', variables: vars, every: 2, warn: () => {} });
      for (let i = 0; i < 5; i++) t.step();
      const slots = (optimizer as unknown as { accumulatedFirstMoment: { originalName: string }[] }).accumulatedFirstMoment.map((m) => m.originalName);
      expect(slots).toEqual(vars.map((w) => `${w.name}/m`));
      const path = t.readingPath;
      const after = vars.map((w) => Array.from(w.dataSync()));
      optimizer.dispose();
      tf.dispose([...vars, x]);
      return { after, path };
    };
    const lw = run(true);
    const pt = run(false);
    expect(lw.path).toBe('exact, layer-wise');
    lw.after.flat().forEach((q, k) => close(q, pt.after.flat()[k], 1e-4));
  });

  it('falls back to per-term gradients when the shared part has another operation or a variable is read twice', () => {
    const m = model();
    const W = m.vars[0];
    const cases: Record<string, () => Record<string, tf.Scalar>> = {
      // (an exp after the last dense layer is a tail: the test above)
      'an exp between two dense layers': () => {
        const z = tf.relu(tf.matMul(tf.exp(tf.matMul(tf.randomNormal([8, 4], 0, 1, 'float32', 3), W)), m.vars[2]));
        return { a: tf.mean(tf.matMul(z, m.vars[4])) as tf.Scalar, b: tf.mean(tf.matMul(z, m.vars[5])) as tf.Scalar };
      },
      'a variable read by two nodes': () => {
        const x = tf.randomNormal([8, 4], 0, 1, 'float32', 3);
        const z = tf.add(tf.matMul(x, W), tf.matMul(tf.mul(x, 2), W));
        return { a: tf.mean(tf.matMul(z, m.vars[4])) as tf.Scalar, b: tf.mean(tf.matMul(z, m.vars[5])) as tf.Scalar };
      },
      'a head reading a shared variable': () => {
        const z = tf.matMul(tf.randomNormal([8, 4], 0, 1, 'float32', 3), W);
        return { a: tf.mean(tf.matMul(z, m.vars[4])) as tf.Scalar, b: tf.add(tf.mean(tf.matMul(z, m.vars[5])), tf.sum(W)) as tf.Scalar };
      },
    };
    for (const [what, terms] of Object.entries(cases)) {
      tf.tidy(() => {
        const r = termGradientsLayered(terms, ['a', 'b'], [W, m.vars[2], m.vars[4], m.vars[5]], () => {}, null);
        expect(r.kind, what).toBe('per-term');
      });
    }
    m.dispose();
  });

  it('leaks no tensor over steps, nor when terms() throws after the forward', () => {
    const m = model();
    const seen: StepInput[] = [];
    const t = new BalancedTrainer({ terms: m.terms, optimizer: tf.train.sgd(0.1), balancer: spy([1, 1, 1, 1], seen), variables: m.vars });
    t.step();
    const before = tf.memory().numTensors;
    t.step();
    t.step();
    expect(tf.memory().numTensors).toBe(before);
    let fail = false;
    const bad = new BalancedTrainer({
      terms: () => {
        const out = m.terms();
        if (fail) throw new Error('terms failed');
        return out;
      },
      optimizer: tf.train.sgd(0.1),
      balancer: spy([1, 1, 1, 1], seen),
      variables: m.vars,
    });
    bad.step();
    fail = true;
    const mid = tf.memory().numTensors;
    expect(() => bad.step()).toThrow(/terms failed/);
    expect(tf.memory().numTensors).toBe(mid);
    m.dispose();
  });

  it('a tf.layers model with a relu trunk (its pre-activation disposed inside the layer): same step as the per-term path, also through fitBalanced', async () => {
    // A new user's trial (2026-12-06): the README's fitBalanced example crashed on wasm ("Cannot read
    // properties of undefined (reading 'backend')") because relu's gradient read the Dense layer's
    // pre-activation, which the layer's own tidy had disposed; the tape's saved clone is read now.
    const build = () => {
      const input = tf.input({ shape: [4] });
      const h = tf.layers.dense({ units: 16, activation: 'relu', kernelInitializer: tf.initializers.glorotNormal({ seed: 5 }) }).apply(input) as tf.SymbolicTensor;
      const h2 = tf.layers.dense({ units: 8, activation: 'relu', kernelInitializer: tf.initializers.glorotNormal({ seed: 6 }) }).apply(h) as tf.SymbolicTensor;
      const a = tf.layers.dense({ units: 1, name: 'size', kernelInitializer: tf.initializers.glorotNormal({ seed: 7 }) }).apply(h2) as tf.SymbolicTensor;
      const b = tf.layers.dense({ units: 1, activation: 'sigmoid', name: 'cls', kernelInitializer: tf.initializers.glorotNormal({ seed: 8 }) }).apply(h2) as tf.SymbolicTensor;
      return tf.model({ inputs: input, outputs: [a, b] });
    };
    const x = tf.randomNormal([32, 4], 0, 1, 'float32', 11);
    const y1 = tf.tidy(() => x.sum(1, true).mul(30));
    const y2 = tf.tidy(() => x.slice([0, 0], [32, 1]).greater(0).cast('float32'));
    const run = (layerwise: boolean) => {
      setLayerwise(layerwise, 1);
      const m = build();
      const seen: StepInput[] = [];
      const terms = () => {
        const [p1, p2] = m.apply(x) as tf.Tensor[];
        return { size: tf.losses.meanSquaredError(y1, p1) as tf.Scalar, cls: tf.losses.sigmoidCrossEntropy(y2, p2) as tf.Scalar };
      };
      const t = new BalancedTrainer({ terms, optimizer: tf.train.sgd(0.01), balancer: spy([0.5, 2], seen), variables: m.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val) });
      t.step();
      t.step();
      const values = m.getWeights().map((w) => Array.from(w.dataSync()));
      m.dispose();
      return { values, gram: seen.map((s) => s.gram), path: t.readingPath };
    };
    const per = run(false);
    const lw = run(true);
    expect(per.path).toBe('exact, per-term');
    expect(lw.path).toBe('exact, layer-wise');
    lw.gram.forEach((g, k) => g!.forEach((row, i) => row.forEach((v, j) => expect(v).toBeCloseTo(per.gram[k]![i][j], 2))));
    lw.values.forEach((v, k) => v.forEach((z, i) => expect(z).toBeCloseTo(per.values[k][i], 4)));
    // the README's example, through fitBalanced, on the test backend
    setLayerwise(true, 1);
    const m = build();
    m.compile({ optimizer: tf.train.adam(1e-2), loss: ['meanSquaredError', 'binaryCrossentropy'] });
    const h = await fitBalanced(m, x, [y1, y2], { epochs: 2, batchSize: 16, verbose: 0, balancer: 'gradnorm' });
    expect(h.history.loss.every((v) => Number.isFinite(v as number))).toBe(true);
    m.dispose();
    tf.dispose([x, y1, y2]);
  });
});
