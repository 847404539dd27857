/**
 * Issue 26 (second adversarial review), items 4, 5 and 8: an `auto` selection's saved state is
 * checked whole before anything is applied, its keys are taken by an allow-list, its copies are
 * stored as base64 of the raw bytes, and a running selection loads only into a trainer built with
 * the same `auto` options. Each test failed before the change.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonPieces, loadState, saveState } from '../src/node/checkpoint.js';
import { decodeBase64, decodeBase64Portable, encodeBase64, encodeBase64Portable } from '../src/core/base64.js';
import { makeToyProblem, type ToyProblem } from '../src/train/toy.js';
import { BalancedTrainer, type TrainerState } from '../src/train/trainer.js';
import type { AutoState, SavedBits } from '../src/train/auto.js';
import type { BalancerSpec } from '../src/core/types.js';
import { useTestBackend } from './helpers.js';

let dir: string;
beforeAll(async () => {
  await useTestBackend();
  dir = mkdtempSync(join(tmpdir(), 'lb-auto-state-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const AUTO = { name: 'auto', trialSteps: 3, candidates: ['fixed', { name: 'fixed', weights: [10, 1, 0.1] }, 'db-mtl', 'mgda', 'softadapt'] };

interface Run {
  toy: ToyProblem;
  optimizer: tf.Optimizer;
  trainer: BalancedTrainer;
  values(): number[][];
  dispose(): void;
}

function setup(balancer: BalancerSpec = AUTO, opts: { hidden?: number; inputs?: number; optimizer?: tf.Optimizer } = {}): Run {
  const toy = makeToyProblem({ scales: [1, 10, 100], seed: 3, samples: 16, hidden: opts.hidden ?? 16, inputs: opts.inputs ?? 4 });
  const optimizer = opts.optimizer ?? tf.train.adam(0.02);
  const trainer = new BalancedTrainer({ terms: toy.terms, variables: toy.variables, optimizer, balancer, warn: () => undefined });
  return {
    toy,
    optimizer,
    trainer,
    values: () => toy.variables.map((v) => Array.from(v.dataSync())),
    dispose() {
      optimizer.dispose();
      toy.dispose();
    },
  };
}

const clone = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;

describe('item 5: candidate copies are stored as base64 of their raw bytes', () => {
  it('a mid-selection state holds base64 text, 4/3 of a character per byte, no decimal words', () => {
    const a = setup();
    for (let i = 0; i < 2; i++) a.trainer.step();
    const auto = a.trainer.state().auto!;
    const bits = auto.live![0].values[0];
    expect(typeof bits.data).toBe('string');
    expect(bits.bits).toBeUndefined();
    const raw = auto.live!.reduce((n, c) => n + c.values.reduce((m, v) => m + v.shape.reduce((x, y) => x * y, 1) * 4, 0), 0);
    const text = auto.live!.reduce((n, c) => n + JSON.stringify(c.values).length, 0);
    // base64 is 4/3 of the bytes; each saved tensor adds a few dozen characters of dtype and shape
    expect(text).toBeLessThan(raw * (4 / 3) + 80 * auto.live!.length * a.toy.variables.length);
    a.dispose();
  });

  it('a state saved with decimal words (before base64) still loads and resumes bit-exactly', () => {
    const a = setup();
    for (let i = 0; i < 8; i++) a.trainer.step();
    const b = setup();
    for (let i = 0; i < 4; i++) b.trainer.step();
    const s = clone(b.trainer.state());
    const vars = b.values();
    // the older layout: the 32-bit words as decimal integers
    const legacy = (x: SavedBits): SavedBits => {
      const bytes = decodeBase64(x.data!)!;
      const words = x.dtype === 'bool' ? Array.from(bytes) : Array.from(new Int32Array(bytes.buffer));
      return { dtype: x.dtype, shape: x.shape, bits: words };
    };
    for (const c of s.auto!.live!) {
      c.values = c.values.map(legacy);
      for (const f of Object.values(c.optimizer)) {
        if (f.kind === 'tensor') f.value = legacy(f.value);
        if (f.kind === 'slots') f.items.forEach((it) => (it.value = legacy(it.value)));
      }
    }
    delete (s.auto as AutoState).options;
    b.dispose();
    const c = setup();
    c.trainer.load(s);
    c.toy.variables.forEach((v, i) => v.assign(tf.tensor(vars[i], v.shape)));
    for (let i = 0; i < 4; i++) c.trainer.step();
    expect(c.values()).toEqual(a.values());
    expect(c.trainer.tournament).toEqual(a.trainer.tournament);
    a.dispose();
    c.dispose();
  });

  it('base64 round-trips any bytes; the checkpoint writer joins to exactly JSON.stringify', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 70 }), (bytes) => {
        const text = encodeBase64(bytes);
        expect(text).toBe(Buffer.from(bytes).toString('base64'));
        expect(encodeBase64Portable(bytes)).toBe(text);
        expect(decodeBase64(text)).toEqual(bytes);
        expect(decodeBase64Portable(text)).toEqual(bytes);
      }),
    );
    for (const bad of ['A', 'AB=A', 'A===', '****', 'AAA\u00e9', 'AA\nA']) {
      expect(decodeBase64(bad), bad).toBeNull();
      expect(decodeBase64Portable(bad), bad).toBeNull();
    }
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        expect([...jsonPieces(v)].join('')).toBe(JSON.stringify(v));
      }),
    );
    const big = { a: 'x'.repeat(3 << 20), b: [1, null, 'y'.repeat(1 << 20)], c: { d: undefined, e: -0 } };
    expect([...jsonPieces(big)].join('')).toBe(JSON.stringify(big));
  });

  it('tournament.cost.bytes counts the optimizer slots: with Adam 3 × 4 bytes per parameter and candidate, what tfjs holds', () => {
    for (const [name, make, slots] of [
      ['adam', () => tf.train.adam(0.01), 2],
      ['sgd', () => tf.train.sgd(0.01), 0],
      ['rmsprop centered', () => tf.train.rmsprop(0.01, 0.9, 0, 1e-7, true), 3],
    ] as const) {
      const optimizer = make();
      const a = setup(AUTO, { optimizer, inputs: 40, hidden: 64 });
      const before = tf.memory().numBytes;
      a.trainer.step();
      const t = a.trainer.tournament!;
      const params = a.toy.variables.reduce((n, v) => n + v.size, 0);
      expect(t.cost.bytes, name).toBe(params * 4 * (1 + slots) * t.candidates.length);
      // what the first step added: every candidate's copies (and a few scalars of the balancers and optimizers)
      const held = tf.memory().numBytes - before;
      expect(t.cost.bytes, name).toBeLessThanOrEqual(held);
      expect(t.cost.bytes, name).toBeGreaterThan(held * 0.95);
      a.dispose();
    }
  });
});

describe('item 4: a saved selection is checked whole before anything is applied', () => {
  /** Everything a load may change, and the tensor count. */
  const snap = (r: Run) => ({ state: clone(r.trainer.state()), step: r.trainer.stepCount, values: r.values(), tensors: tf.memory().numTensors });

  it('the review\'s case: a checkpoint loaded into a model whose layer is now wider is refused naming the file and field, leaks nothing, and training goes on', async () => {
    const a = setup();
    for (let i = 0; i < 2; i++) a.trainer.step();
    const path = join(dir, 'narrow.json');
    await saveState(path, a.trainer, { optimizer: a.optimizer });
    a.dispose();
    const b = setup(AUTO, { hidden: 17 });
    b.trainer.step();
    const before = snap(b);
    const err = await loadState(path, b.trainer, { optimizer: b.optimizer }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toContain(path);
    expect((err as Error).message).toMatch(/field "state\.auto\.live\.0\.(values\.0|trainer|optimizer)[^"]*"/);
    expect(snap(b)).toEqual(before);
    b.trainer.step();
    expect(b.trainer.stepCount).toBe(2);
    b.dispose();
  });

  const edits: [string, (s: TrainerState) => void, RegExp][] = [
    ['stepsInRound beyond the round', (s) => (s.auto!.stepsInRound = 99), /auto\.stepsInRound/],
    ['a live index out of range', (s) => (s.auto!.live![1].index = 42), /auto\.live\.1\.index/],
    ['a live index repeated', (s) => (s.auto!.live![2].index = s.auto!.live![1].index), /auto\.live\.2\.index/],
    ['equal weights not first', (s) => s.auto!.live!.shift(), /auto\.live\.0\.index/],
    ['recent losses not a list', (s) => ((s.auto!.live![0] as unknown as Record<string, unknown>).recent = 'x'), /auto\.live\.0\.recent/],
    ['recent losses of another term count', (s) => (s.auto!.live![0].recent = [[1, 2]]), /auto\.live\.0\.recent/],
    ['the start losses gone', (s) => (s.auto!.start = null), /auto\.start/],
    ['the phase renamed', (s) => ((s.auto!.tournament as unknown as Record<string, unknown>).phase = 'finished'), /auto\.tournament\.phase/],
    ['two candidates with one label', (s) => (s.auto!.tournament.candidates[1].label = 'equal'), /auto\.tournament\.candidates\.1\.label/],
    ['no live candidate', (s) => (s.auto!.live = []), /auto\.live/],
    ['a variable missing', (s) => s.auto!.live![1].values.pop(), /auto\.live\.1\.values/],
    ['a value cut short', (s) => (s.auto!.live![1].values[0].data = s.auto!.live![1].values[0].data!.slice(0, -8)), /auto\.live\.1\.values\.0\.data/],
    ['a candidate trainer\'s step counter', (s) => ((s.auto!.live![1].trainer as unknown as Record<string, unknown>).step = -1), /auto\.live\.1\.trainer\.step/],
    ['a candidate spec that cannot be built', (s) => (s.auto!.tournament.candidates[2].spec = 'nope'), /auto\.tournament\.candidates\.2\.spec/],
    ['an unknown field', (s) => ((s.auto as unknown as Record<string, unknown>).extra = 1), /auto\.extra/],
    ['a round naming no candidate', (s) => s.auto!.tournament.rounds.push({ step: 1, scores: { ghost: 1 }, kept: [] }), /auto\.tournament\.rounds\.0/],
    ['an optimizer key that is a method', (s) => ((s.auto!.live![0].optimizer as Record<string, unknown>).applyGradients = { kind: 'value', value: 1 }), /auto\.live\.0\.optimizer\.applyGradients/],
    ['an optimizer key __proto__', (s) => Object.defineProperty(s.auto!.live![0].optimizer, '__proto__', { value: { kind: 'value', value: 1 }, enumerable: true }), /auto\.live\.0\.optimizer\.__proto__/],
    ['an optimizer key constructor', (s) => Object.defineProperty(s.auto!.live![0].optimizer, 'constructor', { value: { kind: 'value', value: 1 }, enumerable: true }), /auto\.live\.0\.optimizer\.constructor/],
    ['an optimizer number of another type', (s) => ((s.auto!.live![0].optimizer.learningRate as { value: unknown }).value = 'fast'), /auto\.live\.0\.optimizer\.learningRate\.value/],
    ['an optimizer key missing', (s) => delete s.auto!.live![0].optimizer.beta1, /auto\.live\.0\.optimizer\.beta1/],
    ['an optimizer slot of another shape', (s) => {
      const f = s.auto!.live![0].optimizer.accumulatedFirstMoment as { items: { value: SavedBits }[] };
      f.items[0].value = f.items[1].value;
    }, /auto\.live\.0\.optimizer\.accumulatedFirstMoment\.items\.0\.value/],
  ];

  it.each(edits)('%s: refused naming the field; the trainer, its variables and the tensor count unchanged; the next step works', (_name, edit, field) => {
    const a = setup();
    for (let i = 0; i < 2; i++) a.trainer.step();
    const saved = clone(a.trainer.state());
    edit(saved);
    const before = snap(a);
    expect(() => a.trainer.load(saved)).toThrow(field);
    expect(snap(a)).toEqual(before);
    a.trainer.step();
    expect(a.trainer.stepCount).toBe(3);
    a.dispose();
  });

  it('a __proto__ key in a checkpoint file\'s candidate optimizer is refused; no method of any optimizer is replaced', async () => {
    const a = setup();
    for (let i = 0; i < 2; i++) a.trainer.step();
    const path = join(dir, 'proto.json');
    await saveState(path, a.trainer, { optimizer: a.optimizer });
    const text = readFileSync(path, 'utf8').replace('"optimizer":{"learningRate"', '"optimizer":{"__proto__":{"kind":"value","value":1},"applyGradients":{"kind":"value","value":1},"learningRate"');
    writeFileSync(path, text);
    await expect(loadState(path, a.trainer, { optimizer: a.optimizer })).rejects.toThrow(/field "state\.auto\.live\.0\.optimizer\.(__proto__|applyGradients)"/);
    expect(typeof a.optimizer.applyGradients).toBe('function');
    a.trainer.step();
    a.dispose();
  });
});

describe('item 8: a running selection loads only into a trainer with the same auto options', () => {
  const others: [string, Record<string, unknown>][] = [
    ['trialSteps', { trialSteps: 4 }],
    ['eta', { eta: 3 }],
    ['score', { score: () => 0 }],
    ['mode', { mode: 'max' }],
    ['window', { window: 1 }],
    ['tolerance', { tolerance: 0.1 }],
    ['candidates', { candidates: ['fixed', 'mgda'] }],
  ];
  it.each(others)('%s differs: refused naming the option and both values, nothing changed', (key, change) => {
    const a = setup();
    for (let i = 0; i < 2; i++) a.trainer.step();
    const saved = clone(a.trainer.state());
    const b = setup({ ...AUTO, ...change } as BalancerSpec);
    const before = clone(b.trainer.state());
    expect(() => b.trainer.load(saved)).toThrow(new RegExp(`field "auto\\.(options|tournament)\\.${key}".*auto option "${key}"`));
    expect(b.trainer.state()).toEqual(before);
    a.dispose();
    b.dispose();
  });

  it('the same options load; a finished selection loads into other options too (only the winner matters then)', () => {
    const a = setup();
    for (let i = 0; i < 2; i++) a.trainer.step();
    const b = setup();
    expect(() => b.trainer.load(clone(a.trainer.state()))).not.toThrow();
    for (let i = 0; i < 12; i++) a.trainer.step();
    expect(a.trainer.tournament!.phase).toBe('done');
    const c = setup({ ...AUTO, trialSteps: 5 } as BalancerSpec);
    expect(() => c.trainer.load(clone(a.trainer.state()))).not.toThrow();
    a.dispose();
    b.dispose();
    c.dispose();
  });
});

describe('item 5: a mid-selection checkpoint file', () => {
  it('is written in pieces and reads back; its size grows with the parameters (base64), not their decimal text', async () => {
    const a = setup(AUTO, { inputs: 40, hidden: 64 });
    for (let i = 0; i < 2; i++) a.trainer.step();
    const path = join(dir, 'size.json');
    await saveState(path, a.trainer, { optimizer: a.optimizer, variables: a.toy.variables });
    const params = a.toy.variables.reduce((n, v) => n + v.size, 0);
    const live = a.trainer.state().auto!.live!.length;
    // live copies of variables + 2 Adam slots, plus the model's variables and the user's Adam slots
    const bytes = params * 4 * (3 * live + 3);
    expect(statSync(path).size).toBeLessThan(bytes * 1.4);
    const b = setup(AUTO, { inputs: 40, hidden: 64 });
    await loadState(path, b.trainer, { optimizer: b.optimizer, variables: b.toy.variables });
    expect(b.trainer.tournament).toEqual(a.trainer.tournament);
    a.dispose();
    b.dispose();
  });
});

describe('item 5: a checkpoint larger than one string can hold is read from its bytes', () => {
  it('parseJsonBytes gives what JSON.parse gives, and refuses what it refuses naming field and byte', async () => {
    const { parseJsonBytes, JsonBytesError } = await import('../src/node/checkpoint.js');
    fc.assert(
      fc.property(fc.jsonValue(), fc.constantFrom('', ' ', '\n\t'), (v, pad) => {
        const text = pad + JSON.stringify(v) + pad;
        expect(parseJsonBytes(Buffer.from(text, 'utf8'))).toEqual(JSON.parse(text));
      }),
      { numRuns: 300 },
    );
    for (const s of ['{"a":"x\\"y","b\\u00e9":["\\n",1e-7,-0.5,true,null]}', '"\\\\"', '{"__proto__":{"x":1}}', '[]', '{}', '"é ☃"']) {
      expect(parseJsonBytes(Buffer.from(s))).toEqual(JSON.parse(s));
    }
    expect(Object.getPrototypeOf(parseJsonBytes(Buffer.from('{"__proto__":{"x":1}}')))).toBe(Object.prototype);
    for (const bad of ['{"a":1,}', '{"a" 1}', '[1 2]', '"abc', '01', '{"a":"\u0001"}', 'tru', '{"a":[1,2', '1 2', '"\\x"']) {
      expect(() => parseJsonBytes(Buffer.from(bad)), bad).toThrow(JsonBytesError);
      expect(() => JSON.parse(bad), bad).toThrow(SyntaxError);
    }
    expect(() => parseJsonBytes(Buffer.from('{"a":{"b":[[1]]}}'), 3)).toThrow(/nested more than 3/);
    try {
      parseJsonBytes(Buffer.from('{"state":{"auto":{"live":[1,}}}'));
    } catch (e) {
      expect((e as InstanceType<typeof JsonBytesError>).field).toBe('state.auto.live.1');
    }
  });
});

describe('items 4-6: a resume through a file stays bit-exact at every step of the selection', () => {
  const optimizers: [string, () => tf.Optimizer][] = [
    ['sgd', () => tf.train.sgd(0.05)],
    ['momentum', () => tf.train.momentum(0.05, 0.9)],
    ['adagrad', () => tf.train.adagrad(0.05)],
    ['adadelta', () => tf.train.adadelta(1)],
    ['adam', () => tf.train.adam(0.02)],
    ['rmsprop centered', () => tf.train.rmsprop(0.01, 0.9, 0.5, 1e-7, true)],
  ];
  it.each(optimizers)('%s: interrupted after 1, 2, 3, 5 and 8 steps, each resume equals the uninterrupted run', async (name, make) => {
    const total = 10;
    const a = setup(AUTO, { optimizer: make() });
    for (let i = 0; i < total; i++) a.trainer.step();
    for (const at of [1, 2, 3, 5, 8]) {
      const b = setup(AUTO, { optimizer: make() });
      for (let i = 0; i < at; i++) b.trainer.step();
      const path = join(dir, `every-${name}-${at}.json`);
      await saveState(path, b.trainer, { optimizer: b.optimizer, variables: b.toy.variables });
      await b.trainer.close();
      b.dispose();
      const c = setup(AUTO, { optimizer: make() });
      await loadState(path, c.trainer, { optimizer: c.optimizer, variables: c.toy.variables });
      for (let i = at; i < total; i++) c.trainer.step();
      expect(c.values(), `${name} at ${at}`).toEqual(a.values());
      expect(c.trainer.tournament, `${name} at ${at}`).toEqual(a.trainer.tournament);
      await c.trainer.close();
      c.dispose();
    }
    await a.trainer.close();
    a.dispose();
  });
});

describe('item 4: a state saved before the selection began, loaded into a trainer whose selection runs', () => {
  it('resets the selection: the run continues as the saved one did (same tournament and variables), no copy leaked', async () => {
    const a = setup();
    const s0 = clone(a.trainer.state()); // before the first step: no selection yet
    const v0 = a.values();
    for (let i = 0; i < 6; i++) a.trainer.step();
    const b = setup();
    for (let i = 0; i < 2; i++) b.trainer.step();
    const tensors = tf.memory().numTensors;
    b.trainer.load(s0);
    b.toy.variables.forEach((v, i) => v.assign(tf.tensor(v0[i], v.shape)));
    expect(b.trainer.tournament).toBeNull();
    expect(tf.memory().numTensors).toBeLessThan(tensors);
    for (let i = 0; i < 6; i++) b.trainer.step();
    expect(b.values()).toEqual(a.values());
    expect(b.trainer.tournament).toEqual(a.trainer.tournament);
    await a.trainer.close();
    await b.trainer.close();
    a.dispose();
    b.dispose();
  });
});
