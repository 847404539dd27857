/**
 * The problems that bench:suite adds to those of bench/auto.ts, bench/seed.ts and
 * bench/pinn/problems.ts, each a {@link BenchProblem} with its own held-out metric:
 *
 * - {@link autoencoderProblem}: an autoencoder with reconstruction + sparsity + classification terms
 *   on very different scales (≈1e4, ≈0.1, ≈100 at the start), as a new user's trial wrote it;
 * - {@link distillationProblem}: knowledge distillation as in the Keras example, which hand-tunes
 *   `alpha=0.1` (student loss 0.1, distillation loss 0.9) at temperature 10, on real digits;
 * - {@link ticketProblem}: the multi-input, multi-output "ticket priority / department" model of the
 *   Keras functional-API guide, which hand-tunes `loss_weights=[1.0, 0.2]`, on synthetic data of the
 *   guide's shapes (the guide itself trains on random arrays).
 *
 * The autoencoder and the ticket model: metric = a clearly defined combination of two held-out errors, each in [0, ~1] (lower is
 * better), the two parts shown next to it; the validation score for `auto` is the same combination on
 * a validation split (apart from the test set).
 */
import * as tf from '@tensorflow/tfjs';
import type { BalancerSpec } from '../../src/core/types.js';
import type { BalancedTrainerOptions } from '../../src/train/trainer.js';
import { batchSampler, trainerOf, type BenchProblem, type ProblemRun, type RunHooks } from '../auto.js';
import { digitSplit, subset, trainClassifier } from '../digits.js';
import { uniformSource } from '../pinn/problems.js';

/** A dense layer's variables, Xavier-normal weights (seeded) and zero biases. */
function dense(inp: number, out: number, seed: number, gain = 1): [tf.Variable, tf.Variable] {
  return tf.tidy(() => [tf.variable(tf.randomNormal([inp, out], 0, gain * Math.sqrt(2 / (inp + out)), 'float32', seed), true), tf.variable(tf.zeros([out]), true)]);
}

const affine = (x: tf.Tensor, [w, b]: tf.Variable[]) => tf.add(tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D), b) as tf.Tensor2D;

/** Fraction of rows whose arg-max logit is the label. */
function accuracyOf(logits: tf.Tensor2D, labels: tf.Tensor1D): number {
  return tf.tidy(() => tf.mean(tf.cast(tf.equal(tf.argMax(logits, 1), labels), 'float32')).dataSync()[0]);
}

const isAuto = (spec: BalancerSpec) => spec === 'auto' || (typeof spec === 'object' && spec.name === 'auto');

/** `auto` with `score` (and its direction) when asked for a validation score; the spec unchanged otherwise. */
const withScore = (spec: BalancerSpec, validationScore: boolean, score: () => number, mode: 'min' | 'max' = 'min'): BalancerSpec =>
  isAuto(spec) && validationScore ? { ...(typeof spec === 'object' ? spec : { name: 'auto' }), score, mode } : spec;

/**
 * The training loop these problems share: builds the trainer (through `hooks`), takes `steps` seeded
 * minibatches of `n` rows (`gather` makes a batch's tensors from the row indices; `use` hands them to
 * the terms), calls the step hook, frees each batch, then evaluates. The trainer, the optimizer and
 * the variables are released on every path.
 */
function trainAndEvaluate(o: {
  options: BalancedTrainerOptions;
  hooks: RunHooks | undefined;
  vars: tf.Variable[];
  steps: number;
  batchSeed: number;
  n: number;
  batch: number;
  gather: (ix: tf.Tensor1D) => tf.Tensor2D[];
  use: (batch: tf.Tensor2D[]) => void;
  evaluate: () => { metric: number; extra?: Record<string, number> };
}): ProblemRun {
  const trainer = trainerOf(o.hooks, o.options);
  const draw = batchSampler(o.batchSeed, o.n, o.batch);
  const t0 = Date.now();
  try {
    for (let s = 0; s < o.steps; s++) {
      const ix = draw();
      const b = tf.tidy(() => o.gather(ix));
      o.use(b);
      try {
        trainer.step();
      } finally {
        tf.dispose([ix, ...b]);
      }
      o.hooks?.onStep?.(s);
    }
    return { ...o.evaluate(), seconds: (Date.now() - t0) / 1000, tournament: trainer.tournament ?? undefined };
  } finally {
    void trainer.close();
    o.options.optimizer.dispose();
    o.vars.forEach((v) => v.dispose());
  }
}

// -------------------------------------------------------------------------------------------------

/** Data sizes common to these problems: training rows (the validation split included), test rows, batch. */
export interface DataSizes {
  nTrain?: number;
  nTest?: number;
  batch?: number;
}

/** Sizes of {@link autoencoderProblem}. */
export interface AutoencoderSizes extends DataSizes {
  hidden?: number;
  code?: number;
}

/**
 * An autoencoder on real digits (bench/digits.ts, 14×14) with a classifier on its code, written as a
 * new user wrote it (issue 24's trial): encoder 196 → 64 (tanh) → code 16 (ReLU), decoder 16 → 64
 * (tanh) → 196 (linear), classifier code → 10. Terms, in the user's units:
 * - `reconstruction`: mean squared error of the decoded pixels against the raw 0–255 pixel values
 *   (≈1e4 at the start);
 * - `sparsity`: mean |code| (an L1 activity penalty; ≈0.1 at the start);
 * - `classification`: softmax cross-entropy SUMMED over the batch of 64 (≈150 at the start).
 * Adam 3e-3. Metric: ½·(reconstruction MSE ÷ pixel variance + (1 − accuracy)) on held-out digits
 * (lower is better); both parts are shown. Validation score: the same on 500 digits split off the
 * training set.
 */
export function autoencoderProblem(steps = 500, sizes: AutoencoderSizes = {}, learningRate = 3e-3): BenchProblem {
  const { nTrain = 3000, nTest = 1000, batch = 64, hidden = 64, code = 16 } = sizes;
  const split = digitSplit({ nTrain, nTest, pooled: true, seed: 4242 });
  const nVal = Math.min(500, Math.floor(nTrain / 5));
  const sets = [subset(split.train, [...Array(nTrain - nVal).keys()]), subset(split.train, [...Array(nVal).keys()].map((i) => nTrain - nVal + i)), split.test];
  const px = split.test.side ** 2;
  const [train, val, test] = sets.map((d) =>
    tf.tidy(() => {
      const x = tf.keep(tf.tensor2d(d.images, [d.n, px]));
      const raw = tf.keep(tf.mul(x, 255));
      const labels = tf.keep(tf.tensor1d(d.labels, 'int32'));
      const variance = tf.moments(raw).variance.dataSync()[0];
      return { x, raw, labels, n: d.n, variance };
    }),
  );
  const grid: { label: string; spec: BalancerSpec }[] = [
    { label: 'equal weights', spec: 'fixed' },
    // the hand normalisation a user reaches for: each term divided by its starting order of magnitude
    { label: 'hand: 1/L⁰ (1e-4, 10, 1e-2)', spec: { name: 'fixed', weights: { reconstruction: 1e-4, sparsity: 10, classification: 1e-2 } } },
    ...[1e-2, 1e-4, 1e-6].map((k) => ({ label: `fixed reconstruction ×${k}`, spec: { name: 'fixed', weights: { reconstruction: k } } as BalancerSpec })),
  ];
  return {
    name: 'autoencoder',
    metricName: '½·(held-out reconstruction MSE ÷ variance + classification error) (lower is better)',
    higherIsBetter: false,
    steps,
    grid,
    run(spec, seed, validationScore, hooks) {
      const enc = dense(px, hidden, seed * 101 + 1);
      const codeL = dense(hidden, code, seed * 101 + 2);
      const dec1 = dense(code, hidden, seed * 101 + 3);
      const dec2 = dense(hidden, px, seed * 101 + 4);
      const cls = dense(code, 10, seed * 101 + 5);
      const vars = [...enc, ...codeL, ...dec1, ...dec2, ...cls];
      const forward = (x: tf.Tensor2D) => {
        const z = tf.relu(affine(tf.tanh(affine(x, enc)), codeL));
        return { z, xhat: affine(tf.tanh(affine(z, dec1)), dec2), logits: affine(z, cls) };
      };
      const parts = (set: typeof train) =>
        tf.tidy(() => {
          const f = forward(set.x);
          const recon = tf.mean(tf.squaredDifference(f.xhat, set.raw)).dataSync()[0] / set.variance;
          return { recon, accuracy: accuracyOf(f.logits, set.labels) };
        });
      const combined = (p: { recon: number; accuracy: number }) => (p.recon + 1 - p.accuracy) / 2;
      let bt: tf.Tensor2D[] = [];
      const terms = () => {
        const [x, raw, y] = bt;
        const f = forward(x);
        return {
          reconstruction: tf.mean(tf.squaredDifference(f.xhat, raw)) as tf.Scalar,
          sparsity: tf.mean(tf.abs(f.z)) as tf.Scalar,
          classification: tf.losses.softmaxCrossEntropy(y, f.logits, undefined, undefined, tf.Reduction.SUM) as tf.Scalar,
        };
      };
      return trainAndEvaluate({
        options: { terms, optimizer: tf.train.adam(learningRate), balancer: withScore(spec, validationScore, () => combined(parts(val))), variables: vars, keepHistory: false, warn: () => undefined },
        hooks,
        vars,
        steps,
        batchSeed: seed * 1000 + 9,
        n: train.n,
        batch,
        gather: (ix) => [tf.gather(train.x, ix), tf.gather(train.raw, ix), tf.oneHot(tf.gather(train.labels, ix), 10)] as tf.Tensor2D[],
        use: (b) => (bt = b),
        evaluate: () => {
          const p = parts(test);
          return { metric: combined(p), extra: { 'recon MSE/var': p.recon, accuracy: p.accuracy } };
        },
      });
    },
    dispose() {
      for (const s of [train, val, test]) tf.dispose([s.x, s.raw, s.labels]);
    },
  };
}

// -------------------------------------------------------------------------------------------------

/** Sizes of {@link ticketProblem}. */
export interface TicketSizes extends DataSizes {
  vocabulary?: number;
  embedding?: number;
}

/**
 * The "ticket priority / department" model of the Keras functional-API guide
 * (keras-team/keras-io, guides/functional_api.py, "Models with multiple inputs and outputs";
 * https://keras.io/guides/functional_api/), which compiles with
 * `loss_weights=[1.0, 0.2]` for [priority (binary cross-entropy from logits), department
 * (categorical cross-entropy from logits)] and RMSprop 1e-3. Inputs: a title (10 word ids), a body
 * (the guide: 100 word ids; here 30), 12 binary tags. Reduced for 2 CPU cores: vocabulary 10,000 → 500
 * and the two LSTMs (128 and 32 units) → mean-pooled 16-dim embeddings through a dense tanh layer
 * (32 and 16 units); the heads are the guide's (Dense(1) and Dense(4) on the concatenated features).
 * The guide trains on random arrays; here the data come from a seeded teacher of the same shapes
 * (word topics, tags → priority in (0, 1) and one of 4 departments), so the tasks are learnable.
 * Metric: ½·(priority MSE ÷ Var(priority) + department error rate) on held-out tickets (lower is
 * better); both parts are shown. Validation score: the same on a validation split.
 */
export function ticketProblem(steps = 300, sizes: TicketSizes = {}): BenchProblem {
  const { nTrain = 2000, nTest = 1000, batch = 32, vocabulary = 500, embedding = 16 } = sizes;
  const nVal = 500;
  const numTags = 12;
  const departments = 4;
  const titleLen = 10;
  const bodyLen = 30;
  const topics = 6;
  // the teacher: each word has a topic mix; priority and department depend on the mean topics of the
  // title and body and on the tags
  const rnd = uniformSource(20_240_611);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
  const wordTopic = Array.from({ length: vocabulary }, () => Array.from({ length: topics }, gauss));
  const featureDim = 2 * topics + numTags;
  const wPriority = Array.from({ length: featureDim }, gauss);
  const wDepartment = Array.from({ length: departments }, () => Array.from({ length: featureDim }, gauss));
  const make = (n: number) => {
    const title = new Float32Array(n * vocabulary);
    const body = new Float32Array(n * vocabulary);
    const tags = new Float32Array(n * numTags);
    const priority = new Float32Array(n);
    const department = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const f = new Array(featureDim).fill(0);
      // words drawn with a skew towards a per-ticket "theme" so that the mean topics vary between tickets
      const theme = Math.floor(rnd() * vocabulary);
      const word = () => (rnd() < 0.4 ? (theme + Math.floor(rnd() * 20)) % vocabulary : Math.floor(rnd() * vocabulary));
      for (const [len, bag, off] of [[titleLen, title, 0], [bodyLen, body, topics]] as const) {
        for (let k = 0; k < len; k++) {
          const w = word();
          bag[i * vocabulary + w] += 1 / len;
          for (let t = 0; t < topics; t++) f[off + t] += wordTopic[w][t] / Math.sqrt(len);
        }
      }
      for (let t = 0; t < numTags; t++) {
        tags[i * numTags + t] = rnd() < 0.3 ? 1 : 0;
        f[2 * topics + t] = tags[i * numTags + t];
      }
      const dot = (w: number[]) => w.reduce((a, wi, k) => a + wi * f[k], 0) / Math.sqrt(featureDim);
      priority[i] = 1 / (1 + Math.exp(-(1.5 * dot(wPriority) + 0.3 * gauss())));
      const scores = wDepartment.map(dot);
      department[i] = scores.indexOf(Math.max(...scores));
    }
    return tf.tidy(() => {
      const yPriority = tf.keep(tf.tensor2d(priority, [n, 1]));
      return {
        n,
        title: tf.keep(tf.tensor2d(title, [n, vocabulary])),
        body: tf.keep(tf.tensor2d(body, [n, vocabulary])),
        tags: tf.keep(tf.tensor2d(tags, [n, numTags])),
        priority: yPriority,
        department: tf.keep(tf.tensor1d(department, 'int32')),
        variance: tf.moments(yPriority).variance.dataSync()[0],
      };
    });
  };
  const train = make(nTrain);
  const val = make(nVal);
  const test = make(nTest);
  const sets = [train, val, test];
  const grid: { label: string; spec: BalancerSpec }[] = [
    { label: 'equal weights', spec: 'fixed' },
    { label: 'hand: Keras guide [1.0, 0.2]', spec: { name: 'fixed', weights: { priority: 1, department: 0.2 } } },
    ...[0.05, 5].map((k) => ({ label: `fixed department ×${k}`, spec: { name: 'fixed', weights: { department: k } } as BalancerSpec })),
  ];
  return {
    name: 'keras-ticket',
    metricName: '½·(held-out priority MSE ÷ variance + department error) (lower is better)',
    higherIsBetter: false,
    steps,
    grid,
    run(spec, seed, validationScore, hooks) {
      const embed = tf.tidy(() => tf.variable(tf.randomUniform([vocabulary, embedding], -0.05, 0.05, 'float32', seed * 37 + 1), true));
      const titleL = dense(embedding, 32, seed * 37 + 2);
      const bodyL = dense(embedding, 16, seed * 37 + 3);
      const priorityL = dense(32 + 16 + numTags, 1, seed * 37 + 4);
      const departmentL = dense(32 + 16 + numTags, departments, seed * 37 + 5);
      const vars = [embed, ...titleL, ...bodyL, ...priorityL, ...departmentL];
      const forward = (t: tf.Tensor2D, b: tf.Tensor2D, g: tf.Tensor2D) => {
        // a bag of words times the embedding = the mean of the words' embeddings
        const x = tf.concat([tf.tanh(affine(tf.matMul(t, embed), titleL)), tf.tanh(affine(tf.matMul(b, embed), bodyL)), g], 1);
        return { priority: affine(x, priorityL), department: affine(x, departmentL) };
      };
      const parts = (set: typeof train) =>
        tf.tidy(() => {
          const f = forward(set.title, set.body, set.tags);
          const mse = tf.mean(tf.squaredDifference(tf.sigmoid(f.priority), set.priority)).dataSync()[0] / set.variance;
          return { priority: mse, accuracy: accuracyOf(f.department, set.department) };
        });
      const combined = (p: { priority: number; accuracy: number }) => (p.priority + 1 - p.accuracy) / 2;
      let bt: tf.Tensor2D[] = [];
      const terms = () => {
        const [t, b, g, yp, yd] = bt;
        const f = forward(t, b, g);
        return {
          priority: tf.losses.sigmoidCrossEntropy(yp, f.priority) as tf.Scalar,
          department: tf.losses.softmaxCrossEntropy(yd, f.department) as tf.Scalar,
        };
      };
      return trainAndEvaluate({
        options: { terms, optimizer: tf.train.rmsprop(1e-3), balancer: withScore(spec, validationScore, () => combined(parts(val))), variables: vars, keepHistory: false, warn: () => undefined },
        hooks,
        vars,
        steps,
        batchSeed: seed * 1000 + 13,
        n: train.n,
        batch,
        gather: (ix) => [tf.gather(train.title, ix), tf.gather(train.body, ix), tf.gather(train.tags, ix), tf.gather(train.priority, ix), tf.oneHot(tf.gather(train.department, ix), departments)] as tf.Tensor2D[],
        use: (b) => (bt = b),
        evaluate: () => {
          const p = parts(test);
          return { metric: combined(p), extra: { 'priority MSE/var': p.priority, 'department acc': p.accuracy } };
        },
      });
    },
    dispose() {
      for (const s of sets) tf.dispose([s.title, s.body, s.tags, s.priority, s.department]);
    },
  };
}

// -------------------------------------------------------------------------------------------------

/** Sizes of {@link distillationProblem}. */
export interface DistillationSizes extends DataSizes {
  hidden?: number;
  teacherEpochs?: number;
}

/**
 * Knowledge distillation as in the Keras example "Knowledge Distillation" (Kenneth Borup,
 * keras-team/keras-io, examples/vision/knowledge_distillation.py;
 * https://keras.io/examples/vision/knowledge_distillation/; after Hinton, Vinyals & Dean 2015,
 * https://arxiv.org/abs/1503.02531): a student is trained on
 * `alpha · student_loss + (1 − alpha) · distillation_loss` with the hand-tuned `alpha=0.1` and
 * temperature 10, Adam. Two terms:
 * - `student`: softmax cross-entropy of the student's logits against the labels (mean over the batch);
 * - `distillation`: KL(softmax(teacher / T) ‖ softmax(student / T)), summed over classes and averaged
 *   over the batch (Keras' `KLDivergence`), T = 10. The example does not multiply it by T² (Hinton et
 *   al. do), so it is about 1e-2 of the student term: a scale gap the weights must bridge.
 * Reduced for 2 CPU cores: the example's CNNs on 28×28 MNIST → MLPs on 14×14 digits (teacher: the
 * digit classifier of bench/digits.ts, 196 → 64 → 10; student 196 → 16 (leaky ReLU 0.2) → 10), 3,000
 * training digits, 300 steps of batch 64 (the example: 3 epochs of 60,000). The teacher's logits are
 * recovered as log p (softmax is shift-invariant). Metric: the student's accuracy on held-out digits
 * (higher is better). Validation score: accuracy on 500 digits split off the training set.
 */
export function distillationProblem(steps = 300, sizes: DistillationSizes = {}): BenchProblem {
  const { nTrain = 3000, nTest = 1000, batch = 64, hidden = 16, teacherEpochs = 4 } = sizes;
  const temperature = 10;
  const split = digitSplit({ nTrain, nTest, pooled: true, seed: 777 });
  const nVal = Math.min(500, Math.floor(nTrain / 5));
  const trainSet = subset(split.train, [...Array(nTrain - nVal).keys()]);
  const valSet = subset(split.train, [...Array(nVal).keys()].map((i) => nTrain - nVal + i));
  const teacher = trainClassifier(trainSet, split.test, 11, teacherEpochs);
  const px = split.test.side ** 2;
  const [train, val, test] = [trainSet, valSet, split.test].map((d) =>
    tf.tidy(() => {
      const x = tf.keep(tf.tensor2d(d.images, [d.n, px]));
      const soft = tf.keep(tf.softmax(tf.div(tf.log(tf.add(teacher.probabilities(x), 1e-12)), temperature)));
      return { x, soft, labels: tf.keep(tf.tensor1d(d.labels, 'int32')), n: d.n };
    }),
  );
  const teacherAccuracy = teacher.testAccuracy;
  teacher.dispose();
  const grid: { label: string; spec: BalancerSpec }[] = [
    { label: 'equal weights', spec: 'fixed' },
    { label: 'hand: Keras example alpha 0.1 (0.1, 0.9)', spec: { name: 'fixed', weights: { student: 0.1, distillation: 0.9 } } },
    // Hinton et al. multiply the soft term by T² = 100
    ...[10, 100].map((k) => ({ label: `fixed distillation ×${k}`, spec: { name: 'fixed', weights: { distillation: k } } as BalancerSpec })),
  ];
  return {
    name: 'keras-distillation',
    metricName: `student accuracy on held-out digits (higher is better; the teacher: ${teacherAccuracy.toFixed(3)})`,
    higherIsBetter: true,
    steps,
    grid,
    run(spec, seed, validationScore, hooks) {
      const l1 = dense(px, hidden, seed * 53 + 1);
      const l2 = dense(hidden, 10, seed * 53 + 2);
      const vars = [...l1, ...l2];
      const logits = (x: tf.Tensor2D) => affine(tf.leakyRelu(affine(x, l1), 0.2), l2);
      const accuracy = (set: typeof train) => tf.tidy(() => accuracyOf(logits(set.x), set.labels));
      let bt: tf.Tensor2D[] = [];
      const terms = () => {
        const [x, y, soft] = bt;
        const l = logits(x);
        const logQ = tf.logSoftmax(tf.div(l, temperature));
        return {
          student: tf.losses.softmaxCrossEntropy(y, l) as tf.Scalar,
          // Σ_k p_k (log p_k − log q_k), mean over the batch (p log p = 0 at p = 0 via the clip)
          distillation: tf.mean(tf.sum(tf.mul(soft, tf.sub(tf.log(tf.clipByValue(soft, 1e-12, 1)), logQ)), 1)) as tf.Scalar,
        };
      };
      return trainAndEvaluate({
        options: { terms, optimizer: tf.train.adam(1e-3), balancer: withScore(spec, validationScore, () => accuracy(val), 'max'), variables: vars, keepHistory: false, warn: () => undefined },
        hooks,
        vars,
        steps,
        batchSeed: seed * 1000 + 21,
        n: train.n,
        batch,
        gather: (ix) => [tf.gather(train.x, ix), tf.oneHot(tf.gather(train.labels, ix), 10), tf.gather(train.soft, ix)] as tf.Tensor2D[],
        use: (b) => (bt = b),
        evaluate: () => ({ metric: accuracy(test) }),
      });
    },
    dispose() {
      for (const s of [train, val, test]) tf.dispose([s.x, s.soft, s.labels]);
    },
  };
}
