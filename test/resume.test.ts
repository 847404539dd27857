/**
 * Checkpoint and resume (issue 7, item 1): for every registered strategy, N steps, save (trainer state,
 * Adam slots, model variables), restore into a FRESH PROCESS, M more steps: the trajectory equals the
 * uninterrupted N+M run bit for bit. Plus the checkpoint file's versioning and error messages.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CHECKPOINT_VERSION,
  loadOptimizer,
  loadState,
  readCheckpoint,
  saveOptimizer,
  saveState,
} from '../src/node/checkpoint.js';
import { create, list } from '../src/core/registry.js';
import { BalancedTrainer } from '../src/train/trainer.js';
import { useTestBackend } from './helpers.js';
import { setupRun, trace, type Spec, type StepTrace } from './fixtures/resume-common.js';

const N = 5;
const M = 5;
let dir: string;

beforeAll(async () => {
  await useTestBackend();
  dir = mkdtempSync(join(tmpdir(), 'lb-resume-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('resume in a fresh process', () => {
  it('every registered strategy continues bit-exactly (losses, weights, every variable)', async () => {
    // every strategy with its defaults, plus option and balancer-setting combinations with more state
    const specs: Record<string, Spec> = Object.fromEntries(list().filter((s) => s.kind !== 'selector').map((s) => [s.name, s.name]));
    const extra: Record<string, Spec> = {
      'dwa-epoch': { name: 'dwa', average: 'epoch' },
      'gradnorm-every3-bounds': { name: 'gradnorm', updateEvery: 3, bounds: { maxChange: 0.2 } },
      'rlw-seed-warmup': { name: 'rlw', seed: 42, warmup: { steps: 2 } },
      'uncertainty-frozen': { name: 'uncertainty', frozen: { t2: 0.5 }, baseWeights: { t0: 2 } },
      'softadapt-epoch': { name: 'softadapt', updateEvery: 'epoch' },
    };
    for (const [k, spec] of Object.entries(extra)) if (list().some((s) => s.name === (spec as { name: string }).name)) specs[k] = spec;
    const expected: Record<string, StepTrace[]> = {};
    for (const [name, spec] of Object.entries(specs)) {
      const run = setupRun(spec);
      try {
        trace(run, N);
        const before = tf.memory().numTensors;
        const ckpt = await saveState(join(dir, `${name}.json`), run.trainer, { optimizer: run.optimizer, variables: run.toy.variables });
        // The state file is plain JSON and holds the strategy's state.
        expect(ckpt.kind).toBe('trainer');
        expect(JSON.parse(JSON.stringify(ckpt.state))).toEqual(ckpt.state);
        expected[name] = trace(run, M);
        // saving and stepping on creates no lasting tensor
        expect(tf.memory().numTensors, `strategy "${name}": tensors`).toBe(before);
      } finally {
        run.dispose();
      }
    }

    const specFile = join(dir, 'specs.json');
    writeFileSync(specFile, JSON.stringify(specs));
    const child = join('test', 'fixtures', 'resume-child.ts');
    await promisify(execFile)(process.execPath, ['--import', 'tsx', child, dir, String(M), specFile], {
      cwd: join(import.meta.dirname, '..'),
      timeout: 180_000,
    });
    const resumed = JSON.parse(readFileSync(join(dir, 'resumed.json'), 'utf8')) as Record<string, StepTrace[] | { error: string }>;
    for (const name of Object.keys(specs)) {
      const got = resumed[name];
      if (!Array.isArray(got)) throw new Error(`strategy "${name}": the child failed: ${got?.error}`);
      // Exact equality of every number (JSON round-trips doubles exactly; float32 values are doubles).
      expect(got, `strategy "${name}"`).toEqual(expected[name]);
    }
    // one run per registered strategy (27 with issue 11's): more than the default 60 s on a busy machine
  }, 240_000);
});

describe('checkpoint files', () => {
  it('a bare balancer saves and loads; the loaded one continues identically', async () => {
    const a = create('gradnorm');
    a.bind(['x', 'y']);
    const G = [[4, 1], [1, 1]];
    a.update({ losses: [2, 1], gram: G });
    const path = join(dir, 'balancer.json');
    await saveState(path, a);
    const b = create('gradnorm');
    await loadState(path, b);
    expect(b.state()).toEqual(a.state());
    expect(b.update({ losses: [1, 1], gram: G })).toEqual(a.update({ losses: [1, 1], gram: G }));
  });

  it('a trainer checkpoint loads into a bare balancer (its balancer part)', async () => {
    const run = setupRun('uncertainty');
    try {
      trace(run, 2);
      const path = join(dir, 'trainer-uncertainty.json');
      await saveState(path, run.trainer);
      const b = create('uncertainty');
      await loadState(path, b);
      expect(b.state()).toEqual(run.trainer.balancer.state());
      expect(b.step).toBe(2);
    } finally {
      run.dispose();
    }
  });

  it('an incompatible version is a clear error naming both versions', async () => {
    const path = join(dir, 'v.json');
    await saveState(path, Object.assign(create('fixed'), {}));
    const raw = JSON.parse(readFileSync(path, 'utf8'));
    writeFileSync(path, JSON.stringify({ ...raw, version: 99 }));
    expect(() => readCheckpoint(path)).toThrow(new RegExp(`version 99.*reads version ${CHECKPOINT_VERSION}`));
    await expect(loadState(path, create('fixed'))).rejects.toThrow(/version 99/);
    writeFileSync(path, JSON.stringify({ hello: 1 }));
    expect(() => readCheckpoint(path)).toThrow(/not a loss-balancer checkpoint/);
    writeFileSync(path, '{"format": "loss-balancer/checkpoint", "vers');
    expect(() => readCheckpoint(path)).toThrow(/cannot read checkpoint/);
  });

  it('an incompatible balancer state version inside is refused too', async () => {
    const b = create('fixed');
    b.bind(['a']);
    const path = join(dir, 'inner.json');
    await saveState(path, b);
    const raw = JSON.parse(readFileSync(path, 'utf8'));
    raw.state.version = 42;
    writeFileSync(path, JSON.stringify(raw));
    await expect(loadState(path, create('fixed'))).rejects.toThrow(/balancer state version 42/);
  });

  it('loading into another strategy, a missing optimizer or mismatched variables is an error naming it', async () => {
    const run = setupRun('fixed');
    try {
      trace(run, 1);
      const path = join(dir, 'mismatch.json');
      await saveState(path, run.trainer, { variables: run.toy.variables });
      await expect(loadState(path, create('gradnorm'))).rejects.toThrow(/strategy "fixed".*"gradnorm"/);
      await expect(loadState(path, undefined, { optimizer: tf.train.adam(0.1) })).rejects.toThrow(/no optimizer state/);
      const wrong = [tf.variable(tf.zeros([2, 2]))];
      await expect(loadState(path, undefined, { variables: wrong })).rejects.toThrow(/4 variables, 1 were given/);
      const shapes = run.toy.variables.map((v, i) => (i === 0 ? tf.variable(tf.zeros([1, 1])) : v));
      await expect(loadState(path, undefined, { variables: shapes })).rejects.toThrow(/variable "0".*\[3, 6\].*\[1, 1\]/);
      wrong[0].dispose();
      shapes[0].dispose();
    } finally {
      run.dispose();
    }
  });

  it('an optimizer state restores exactly, including Adam\'s running beta products, and refuses another class', async () => {
    const v = tf.variable(tf.tensor1d([1, -2, 3]));
    const opt = tf.train.adam(0.1);
    for (let i = 0; i < 7; i++) opt.minimize(() => v.square().sum().mul(1.37) as tf.Scalar, false, [v]);
    const saved = await saveOptimizer(opt);
    expect(saved.extras.map((e) => e.name).sort()).toEqual(['accBeta1', 'accBeta2']);
    const v2 = tf.variable(v.clone());
    const opt2 = tf.train.adam(0.1);
    // the moments are keyed by position; the new optimizer has not been used yet
    await loadOptimizer(saved, opt2);
    for (let i = 0; i < 5; i++) {
      opt.minimize(() => v.square().sum().mul(1.37) as tf.Scalar, false, [v]);
      opt2.minimize(() => v2.square().sum().mul(1.37) as tf.Scalar, false, [v2]);
    }
    expect(Array.from(v2.dataSync())).toEqual(Array.from(v.dataSync()));
    await expect(loadOptimizer(saved, tf.train.sgd(0.1))).rejects.toThrow(/Adam optimizer state.*SGD/);
    [v, v2].forEach((t) => t.dispose());
    opt.dispose();
    opt2.dispose();
  });
});

describe('corrupted states', () => {
  it('a hand-edited or corrupted balancer state is refused, naming the field', () => {
    const a = create('gradnorm');
    a.bind(['x', 'y']);
    a.update({ losses: [1, 2], gram: [[1, 0], [0, 1]] });
    const good = a.state();
    const cases: [string, (s: Record<string, any>) => void, RegExp][] = [
      ['options', (s) => (s.options.alpha = -1), /field "options\.alpha" is -1/],
      ['unknown option', (s) => (s.options.alhpa = 1), /field "options"/],
      ['terms', (s) => (s.terms = ['x', 'x']), /field "terms"/],
      ['terms type', (s) => (s.terms = 'x'), /field "terms"/],
      ['step', (s) => (s.step = -2), /field "step" is -2/],
      ['step type', (s) => (s.step = '3'), /field "step"/],
      ['weights length', (s) => (s.weights = [1]), /field "weights" is \[1\]; must be null or one weight per term \(2\)/],
      ['weights value', (s) => (s.weights = [1, null]), /field "weights\.1" \(term "y"\) is null/],
      ['negative weight', (s) => (s.weights = [1, -1]), /field "weights\.1" \(term "y"\) is -1/],
    ];
    for (const [what, edit, msg] of cases) {
      const s = structuredClone(good) as Record<string, any>;
      edit(s);
      const b = create('gradnorm');
      expect(() => b.load(s as never), what).toThrow(msg);
      expect(b.terms, what).toBeNull(); // nothing was loaded
    }
    const b = create('gradnorm');
    b.load(good);
    expect(b.state()).toEqual(good);
  });

  it('a trainer state with a bad step or epoch counter is refused, naming the field', () => {
    const run = setupRun('fixed');
    try {
      trace(run, 1);
      const good = run.trainer.state();
      expect(() => run.trainer.load({ ...good, step: -1 })).toThrow(/field "step" is -1/);
      expect(() => run.trainer.load({ ...good, epoch: 1.5 })).toThrow(/field "epoch" is 1.5/);
      run.trainer.load(good);
      expect(run.trainer.state()).toEqual(good);
    } finally {
      run.dispose();
    }
  });
});

describe('alongside tfjs model save/load', () => {
  it('a LayersModel saved with model.save() plus saveState(optimizer) resumes bit-exactly', async () => {
    const build = () => {
      const input = tf.input({ shape: [3] });
      const trunk = tf.layers.dense({ units: 5, activation: 'tanh', kernelInitializer: tf.initializers.glorotNormal({ seed: 4 }) }).apply(input) as tf.SymbolicTensor;
      const a = tf.layers.dense({ units: 1, kernelInitializer: tf.initializers.glorotNormal({ seed: 5 }) }).apply(trunk) as tf.SymbolicTensor;
      const b = tf.layers.dense({ units: 1, kernelInitializer: tf.initializers.glorotNormal({ seed: 6 }) }).apply(trunk) as tf.SymbolicTensor;
      return tf.model({ inputs: input, outputs: [a, b] });
    };
    const x = tf.randomNormal([8, 3], 0, 1, 'float32', 1);
    const ya = tf.randomNormal([8, 1], 0, 1, 'float32', 2);
    const yb = tf.randomNormal([8, 1], 0, 1, 'float32', 3);
    const setup = (model: tf.LayersModel) => {
      const optimizer = tf.train.adam(0.05);
      const terms = () => {
        const [pa, pb] = model.apply(x) as tf.Tensor[];
        return { a: tf.losses.meanSquaredError(ya, pa) as tf.Scalar, b: tf.losses.meanSquaredError(yb, pb).mul(30) as tf.Scalar };
      };
      const trainer = new BalancedTrainer({
        terms,
        optimizer,
        balancer: 'gradnorm',
        variables: model.trainableWeights.map((w) => w.read() as tf.Variable),
        warn: () => {},
      });
      return { optimizer, trainer };
    };
    const weightsOf = (m: tf.LayersModel) => m.getWeights().map((w) => Array.from(w.dataSync()));

    const m1 = build();
    const r1 = setup(m1);
    for (let i = 0; i < 4; i++) r1.trainer.step();
    let artifacts!: tf.io.ModelArtifacts;
    await m1.save(tf.io.withSaveHandler(async (a) => ((artifacts = a), { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } })));
    const path = join(dir, 'layers.json');
    await saveState(path, r1.trainer, { optimizer: r1.optimizer });
    const expected = [];
    for (let i = 0; i < 4; i++) expected.push(r1.trainer.step().weights);

    const m2 = await tf.loadLayersModel(tf.io.fromMemory(artifacts));
    const r2 = setup(m2);
    await loadState(path, r2.trainer, { optimizer: r2.optimizer });
    const got = [];
    for (let i = 0; i < 4; i++) got.push(r2.trainer.step().weights);
    expect(got).toEqual(expected);
    expect(weightsOf(m2)).toEqual(weightsOf(m1));
    [m1, m2].forEach((m) => m.dispose());
    [r1, r2].forEach((r) => r.optimizer.dispose());
    [x, ya, yb].forEach((t) => t.dispose());
  });
});

describe('every tfjs optimizer with getWeights', () => {
  const makers: Record<string, () => tf.Optimizer> = {
    sgd: () => tf.train.sgd(0.05),
    momentum: () => tf.train.momentum(0.05, 0.9, true),
    rmsprop: () => tf.train.rmsprop(0.01, 0.9, 0.5, 1e-7, true),
    adagrad: () => tf.train.adagrad(0.1),
    adadelta: () => tf.train.adadelta(1, 0.9),
    adam: () => tf.train.adam(0.05, 0.8, 0.95),
  };
  it.each(Object.keys(makers))('%s: saved after 5 steps, a fresh one continues identically', async (kind) => {
    const loss = (v: tf.Variable) => () => v.sub(tf.tensor1d([0.3, -1, 2])).square().sum().mul(v.abs().sum().add(1)) as tf.Scalar;
    const v = tf.variable(tf.tensor1d([1, -2, 3]));
    const opt = makers[kind]();
    for (let i = 0; i < 5; i++) opt.minimize(loss(v), false, [v]);
    const saved = await saveOptimizer(opt);
    const v2 = tf.variable(v.clone());
    const opt2 = makers[kind]();
    await loadOptimizer(JSON.parse(JSON.stringify(saved)), opt2);
    for (let i = 0; i < 5; i++) {
      opt.minimize(loss(v), false, [v]);
      opt2.minimize(loss(v2), false, [v2]);
    }
    expect(Array.from(v2.dataSync())).toEqual(Array.from(v.dataSync()));
    [v, v2].forEach((t) => t.dispose());
    opt.dispose();
    opt2.dispose();
  });
  it('adamax (no getWeights in tfjs) is a clear error', async () => {
    await expect(saveOptimizer(tf.train.adamax(0.1))).rejects.toThrow(/cannot save optimizer Adamax/);
  });
});
