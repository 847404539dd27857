/**
 * A complete PINN in tfjs with a balanced loss: −u'' = f on [0, 1], u(0) = u(1) = 0, exact
 * u = sin(4πx). The input derivatives come from the forward-mode jet of ./jet.ts; the trainer reads
 * per-term gradients of the two terms and balances them with learning-rate annealing as in the
 * authors' code.
 *
 *   npx tsx examples/pinn/poisson.ts            (3,000 steps)
 */
import * as tf from '@tensorflow/tfjs';
import { fileURLToPath } from 'node:url';
import { BalancedTrainer, initBackend, type BalancerSpec } from '../../src/index.js';
import { makeJetMlp } from './jet.js';

/**
 * Learning-rate annealing as in the authors' code (Wang, Teng & Perdikaris 2021,
 * GradientPathologiesPINNs): max|∇L_r| / mean|λ·∇L_b| over the weight matrices, smoothed 0.9/0.1
 * every 10 steps. The paper's formula without `weighted: true` can run away (docs/guide-pinn.md).
 */
export const AUTHORS_LRA: BalancerSpec = { name: 'grad-magnitude', statistic: 'max-mean', alpha: 0.1, updateEvery: 10, weighted: true };

/** Trains the PINN for `steps` steps and returns the relative L2 error of u on 200 points. */
export function trainPoisson(steps: number, balancer: BalancerSpec = AUTHORS_LRA): number {
  const k = 4 * Math.PI;
  const net = makeJetMlp([1, 50, 50, 1], { seed: 0, shift: [0.5], scale: [0.29] });
  const ends = tf.tensor2d([[0], [1]]);
  let x = tf.randomUniform([128, 1], 0, 1, 'float32', 1) as tf.Tensor2D; // tfjs ignores a seed of 0
  const terms = () => {
    const { value, d2 } = net.jet(x); // u, [u_x], [u_xx] at the collocation points
    const f = tf.mul(k * k, tf.sin(tf.mul(k, x)));
    return {
      residual: tf.mean(tf.square(tf.add(d2[0], f))) as tf.Scalar, // (−u'' − f)² = (u'' + f)²
      boundary: tf.mean(tf.square(net.predict(ends))) as tf.Scalar,
    };
  };
  const optimizer = tf.train.adam(1e-3);
  // `shared`: gradient statistics on the weight matrices only, as the authors' code
  const trainer = new BalancedTrainer({ terms, optimizer, balancer, variables: net.variables, shared: net.kernels });
  for (let s = 0; s < steps; s++) {
    trainer.step();
    x.dispose();
    x = tf.randomUniform([128, 1], 0, 1, 'float32', s + 2) as tf.Tensor2D; // fresh points each step
  }
  const error = tf.tidy(() => {
    const g = tf.linspace(0, 1, 200).reshape([200, 1]) as tf.Tensor2D;
    const exact = tf.sin(tf.mul(k, g));
    return tf.div(tf.norm(tf.sub(net.predict(g), exact)), tf.norm(exact)).dataSync()[0];
  });
  tf.dispose([x, ends]);
  optimizer.dispose();
  net.dispose();
  return error;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await initBackend('wasm');
  const runs: [string, BalancerSpec][] = [['equal weights', 'fixed'], ["authors' learning-rate annealing", AUTHORS_LRA], ['grad-magnitude at its defaults', 'grad-magnitude']];
  for (const [label, b] of runs) console.log(`${label}: relative L2 error ${trainPoisson(3000, b).toExponential(2)}`);
}
