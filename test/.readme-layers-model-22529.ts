import * as tf from '@tensorflow/tfjs';
import { fitBalanced, initBackend } from '../src/index.js';

await initBackend();
const input = tf.input({ shape: [4] });
const h = tf.layers.dense({ units: 16, activation: 'relu' }).apply(input) as tf.SymbolicTensor;
const model = tf.model({ inputs: input, outputs: [
  tf.layers.dense({ units: 1, name: 'size' }).apply(h) as tf.SymbolicTensor,
  tf.layers.dense({ units: 1, activation: 'sigmoid', name: 'cls' }).apply(h) as tf.SymbolicTensor,
] });
model.compile({ optimizer: tf.train.adam(1e-2), loss: ['meanSquaredError', 'binaryCrossentropy'] });
const x = tf.randomNormal([256, 4]);
const [y1, y2] = [x.sum(1, true).mul(30), x.slice([0, 0], [256, 1]).greater(0).cast('float32')];
const { history } = await fitBalanced(model, x, [y1, y2], { balancer: 'gradnorm', epochs: 3, batchSize: 64 });
console.log(history['alpha/cls']); // per-epoch mean alpha, beside loss/<term>, val_loss/<term>
