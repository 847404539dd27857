/**
 * Task-specific heads: strategies with `headWeights: 'unit'` (the gradient-aggregation methods)
 * give a variable that only one term reaches that term's own unweighted gradient, as the papers and
 * LibMTL do (isl-org/MultiObjectiveOptimization#12); shared variables take Σ w_i g_i. Checked with
 * SGD at lr 1, where the update equals the applied gradient, against per-term gradients computed
 * directly with tf.variableGrads.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { BalancedTrainer, Balancer, create, list, getStrategy, type Strategy } from '../src/index.js';
import { makeToy, useTestBackend } from './helpers.js';

beforeAll(() => useTestBackend());

/** Fixed, possibly negative weights, with the given head weighting. */
function fixedSigned(weights: number[], headWeights: 'weighted' | 'unit'): Balancer {
  const s: Strategy = {
    name: `fixed-${headWeights}`,
    summary: 'test',
    options: z.strictObject({}),
    needs: () => ({ gradients: 'gram' }),
    signedWeights: true,
    headWeights,
    init: () => ({}),
    update: (_o, state) => ({ weights: [...weights], state }),
  };
  return new Balancer(s, {});
}

const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => a.sub(b).abs().max().dataSync()[0]);

describe("headWeights: 'unit'", () => {
  it('every gradient-aggregation strategy declares it; loss-weighting strategies do not', () => {
    const unit = list().filter((s) => s.kind !== 'selector' && getStrategy(s.name).headWeights === 'unit').map((s) => s.name).sort();
    expect(unit).toEqual(['aligned-mtl', 'cagrad', 'config', 'dualproj', 'gradvac', 'imtl', 'krum', 'mgda', 'modo', 'nash-mtl', 'pcgrad', 'rgw', 'sdmgrad', 'upgrad']);
    expect(getStrategy('gradnorm').headWeights ?? 'weighted').toBe('weighted');
    // in force: the Jacobian kind defaults to 'unit' (excess-mtl declares 'weighted')
    const inForce = list().filter((s) => s.kind !== 'selector' && create(s.name).headWeights === 'unit').map((s) => s.name).sort();
    expect(inForce).toEqual([...unit, 'graddrop', 'moco', 'trimmed-mean'].sort());
    expect(create('excess-mtl').headWeights).toBe('weighted');
  });

  for (const mode of ['exact', 'representation'] as const) {
    for (const hw of ['unit', 'weighted'] as const) {
      it(`${mode} mode, ${hw} heads: trunk gets Σ w_i g_i, each head ${hw === 'unit' ? 'its own g_i' : 'w_i g_i'}`, () => {
        const toy = makeToy([1, 3], { seed: 5 });
        const w = [2, -0.5];
        const per = ['t0', 't1'].map((n) => tf.variableGrads(() => toy.terms()[n], toy.variables));
        const before = toy.variables.map((v) => v.clone());
        const trunk = () => tf.tanh(tf.matMul(toy.x, toy.trunk));
        const heads = (zz: tf.Tensor) =>
          Object.fromEntries(
            toy.heads.map((h, i) => [`t${i}`, tf.mean(tf.square(tf.sub(tf.matMul(zz, h), toy.ys[i]))).mul([1, 3][i]) as tf.Scalar]),
          );
        const trainer = new BalancedTrainer({
          ...(mode === 'exact' ? { terms: toy.terms } : { represent: { trunk, heads } }),
          optimizer: tf.train.sgd(1),
          balancer: fixedSigned(w, hw),
          variables: toy.variables,
        });
        trainer.step();
        const expectStep = (v: tf.Variable, k: number, coef: number[]) => {
          const want = tf.tidy(() => {
            let g = tf.zerosLike(v) as tf.Tensor;
            per.forEach((p, i) => {
              if (p.grads[v.name]) g = g.add(p.grads[v.name].mul(coef[i]));
            });
            return before[k].sub(g);
          });
          expect(maxDiff(v, want), v.name).toBeLessThan(1e-4);
          want.dispose();
        };
        expectStep(toy.trunk, 0, w);
        toy.heads.forEach((h, i) => expectStep(h, i + 1, hw === 'unit' ? [1, 1] : w));
        tf.dispose([...before, ...per.flatMap((p) => [p.value, ...Object.values(p.grads)])]);
        toy.dispose();
      });
    }
  }
});
