/**
 * Non-finite and degenerate input (issue 7, item 2), for every registered strategy: NaN/Inf losses and
 * gradients are skipped (state untouched, previous weights kept, a warning naming term and step) or
 * thrown per `onNonFinite`; negative losses are rejected naming term and step where the strategy needs
 * non-negative losses; zero losses, zero/opposite/identical gradients, T = 1 and scales 1e-8 vs 1e8
 * give finite weights (≥ 0 unless the strategy declares signed weights). Also through the trainer: a
 * NaN loss leaves the model's variables untouched.
 */
import * as fc from 'fast-check';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Balancer, BalancerInput } from '../src/core/balancer.js';
import { BalancerError, NonFiniteError } from '../src/core/errors.js';
import { create, getStrategy, list } from '../src/core/registry.js';
import { BalancedTrainer } from '../src/train/trainer.js';
import { feed, makeToy, useTestBackend } from './helpers.js';
import { DEGENERATE_CASES, inputOf, ordinary, type CaseInput } from './fixtures/degenerate-cases.js';

const names = list().filter((s) => s.kind !== 'selector').map((s) => s.name);

beforeAll(() => useTestBackend());

/** The least number of terms the strategy accepts with its options. */
const minTerms = (b: Balancer) => b.strategy.minTerms?.(b.options as never) ?? 1;

function make(name: string, onNonFinite: 'skip' | 'throw') {
  const warnings: string[] = [];
  const b = create(name, { onNonFinite, warn: (m) => warnings.push(m) });
  return { b, warnings };
}

/**
 * What a skipped step must leave untouched: the strategy's state, the weights and the update counter.
 * (The cadence bookkeeping of `updateEvery` counts trainer steps, skipped ones included.)
 */
function kept(b: Balancer) {
  const s = b.state();
  return { state: s.state, weights: s.weights, step: s.step };
}

function needsNonNegative(b: Balancer): boolean {
  const f = b.strategy.nonNegativeLosses;
  return typeof f === 'function' ? f(b.options) : !!f;
}

function expectValidWeights(b: Balancer, w: number[], what: string): void {
  for (const [i, v] of w.entries()) {
    expect(Number.isFinite(v), `${what}: weight ${i} = ${v}`).toBe(true);
    if (!b.strategy.signedWeights) expect(v, `${what}: weight ${i}`).toBeGreaterThanOrEqual(0);
  }
}

/** The input with term `i`'s loss / Gram row and column / statistics replaced by `bad`. */
function poison(input: BalancerInput, where: 'loss' | 'gram' | 'stats', i: number, bad: number): BalancerInput {
  const x = structuredClone(input) as { losses: number[]; gram: number[][]; stats: { meanAbs: number[]; maxAbs: number[] } };
  if (where === 'loss') x.losses[i] = bad;
  if (where === 'gram') x.gram.forEach((row, j) => ((row[i] = bad), (x.gram[i][j] = bad)));
  if (where === 'gram' && 'rows' in x) (x as unknown as CaseInput).rows[i] = (x as unknown as CaseInput).rows[i].map(() => bad);
  if (where === 'stats') (x.stats.meanAbs[i] = bad), (x.stats.maxAbs[i] = bad);
  return x as BalancerInput;
}

describe.each(names)('strategy %s', (name) => {
  describe('non-finite input', () => {
    const warm = ordinary(3, 5);
    for (const where of ['loss', 'gram', 'stats'] as const) {
      for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
        it(`${where} of one term = ${bad}: skip keeps state and weights and warns; throw throws NonFiniteError`, () => {
          const { b, warnings } = make(name, 'skip');
          b.bind(['a', 'b', 'c']);
          for (const x of warm.slice(0, 4)) feed(b, x);
          const before = kept(b);
          const w = b.weights;
          const input = poison(warm[4], where, 1, bad);
          const needs = b.needs;
          const read = where === 'loss' || (where === 'gram' && needs.gradients !== 'none') || (where === 'stats' && !!needs.stats);
          const r = feed(b, input);
          if (!read) {
            // the balancer does not read this input for this strategy: the update goes through
            expect(r.skipped).toBeUndefined();
            expectValidWeights(b, r.weights, name);
            return;
          }
          expect(r.skipped).toMatch(/step 4/);
          expect(r.skipped).toMatch(/term "b"/);
          expect(warnings).toHaveLength(1);
          expect(warnings[0]).toMatch(/step 4.*term "b"/);
          expect(r.weights).toEqual(w);
          expect(kept(b)).toEqual(before);
          // the next good step is step 4 again and works
          const next = feed(b, warm[4]);
          expect(next.skipped).toBeUndefined();
          expect(next.step).toBe(4);

          const t = make(name, 'throw').b;
          t.bind(['a', 'b', 'c']);
          for (const x of warm.slice(0, 4)) feed(t, x);
          const tb = kept(t);
          let err: unknown;
          try {
            feed(t, input);
          } catch (e) {
            err = e;
          }
          expect(err).toBeInstanceOf(NonFiniteError);
          expect((err as NonFiniteError).term).toBe('b');
          expect((err as NonFiniteError).step).toBe(4);
          expect(kept(t)).toEqual(tb);
        });
      }
    }
  });

  it('with balancer settings (updateEvery, frozen, baseWeights, bounds, warmup) a NaN loss is skipped the same way', () => {
    const settings = [
      { updateEvery: 2 },
      { frozen: { c: 0.5 }, baseWeights: { a: 3 } },
      { bounds: { min: 0.1, max: 5, maxChange: 0.5 } },
      { warmup: { steps: 2 } },
    ];
    const warm = ordinary(3, 6, 4);
    for (const extra of settings) {
      const warnings: string[] = [];
      if (getStrategy(name).kind === 'jacobian' && ('frozen' in extra || 'bounds' in extra)) {
        // per-term post-processing is rejected for the Jacobian kind, naming the setting
        expect(() => create({ name, ...extra }), JSON.stringify(extra)).toThrow(/option "(frozen|bounds)".*Jacobian kind/);
        continue;
      }
      const b = create({ name, ...extra }, { warn: (m) => warnings.push(m) });
      if ('frozen' in extra && minTerms(b) > 2) {
        // one term frozen leaves two balanced terms, fewer than the strategy is defined for
        expect(() => b.bind(['a', 'b', 'c'])).toThrow(/needs at least \d+ balanced terms; got 2/);
        continue;
      }
      b.bind(['a', 'b', 'c']);
      for (const x of warm.slice(0, 4)) feed(b, x);
      const before = kept(b);
      const w = b.weights;
      const r = feed(b, poison(warm[4], 'loss', 1, Number.NaN));
      expect(r.skipped, JSON.stringify(extra)).toMatch(/step 4: loss of term "b" is NaN/);
      expect(r.weights).toEqual(w);
      expect(kept(b), JSON.stringify(extra)).toEqual(before);
      expect(warnings).toHaveLength(1);
      const next = feed(b, warm[5]);
      expect(next.skipped).toBeUndefined();
      expectValidWeights(b, next.weights, `${name} ${JSON.stringify(extra)}`);
    }
  });

  describe('degenerate finite input', () => {
    for (const c of DEGENERATE_CASES) {
      it(c.title, () => {
        const { b } = make(name, 'throw');
        if (c.terms.length < minTerms(b)) {
          expect(() => b.bind(c.terms)).toThrow(new RegExp(`needs at least ${minTerms(b)} balanced terms`));
          return;
        }
        b.bind(c.terms);
        for (const [t, input] of c.inputs.entries()) {
          const before = kept(b);
          let r;
          try {
            r = feed(b, input);
          } catch (e) {
            if (c.id === 'negative-loss') {
              // rejected: a BalancerError naming the term and the step, state untouched
              expect(e).toBeInstanceOf(BalancerError);
              expect((e as Error).message).toMatch(new RegExp(`step ${t}\\b`));
              expect((e as Error).message).toMatch(/term "b"|"b"/);
              expect(kept(b)).toEqual(before);
              return;
            }
            throw e;
          }
          if (c.id === 'negative-loss') {
            expect(needsNonNegative(b), `${name} declares nonNegativeLosses but accepted a negative loss`).toBe(false);
          }
          expect(r.skipped).toBeUndefined();
          expectValidWeights(b, r.weights, `${name} ${c.id} step ${t}`);
          expect(JSON.parse(JSON.stringify(b.state()))).toEqual(b.state());
        }
      });
    }
  });

  it('property: random finite inputs (losses ≥ 0 from 0 to 1e8, gradients from 0 to 1e8 in scale) give valid weights', () => {
    const T = 3;
    const scale = fc.constantFrom(0, 1e-8, 1e-4, 1, 1e4, 1e8);
    const step = fc.record({
      losses: fc.array(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), scale).map(([a, s]) => a * s), { minLength: T, maxLength: T }),
      grads: fc.array(
        fc.tuple(fc.array(fc.double({ min: -1, max: 1, noNaN: true }), { minLength: 4, maxLength: 4 }), scale).map(([v, s]) => v.map((x) => x * s)),
        { minLength: T, maxLength: T },
      ),
    });
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 6 }), (steps) => {
        const { b } = make(name, 'throw');
        b.bind(['a', 'b', 'c']);
        steps.forEach((s, t) => {
          const r = feed(b, inputOf(s.losses, s.grads, t));
          expectValidWeights(b, r.weights, name);
        });
      }),
      { numRuns: 40, seed: 7 },
    );
  });
});

describe('negative losses', () => {
  it('every strategy that declares nonNegativeLosses rejects a negative loss naming term and step', () => {
    for (const name of names) {
      const { b } = make(name, 'skip');
      if (!needsNonNegative(b)) continue;
      b.bind(['a', 'b']);
      feed(b, inputOf([1, 1], [[1, 0], [0, 1]]));
      expect(() => feed(b, inputOf([1, -0.5], [[1, 0], [0, 1]], 0)), name).toThrow(/step 1: loss of term "b" is -0.5/);
    }
  });
  it('the flag is declared where the docs say so (getStrategy is consistent with list)', () => {
    for (const name of names) expect(getStrategy(name).name).toBe(name);
  });
});

describe('through the trainer', () => {
  beforeAll(() => useTestBackend());

  for (const name of ['fixed', 'uncertainty', 'gradnorm'].filter((n) => names.includes(n))) {
    it(`${name}: a NaN gradient with finite losses (d sqrt(x)/dx at 0) skips the optimizer step, or throws`, () => {
      const toy = makeToy([1, 3], { seed: 6 });
      let poisoned = false;
      const terms = () => {
        const t = toy.terms();
        if (poisoned) t.t1 = t.t1.add(tf.sqrt(toy.trunk.sub(toy.trunk).sum())) as tf.Scalar; // value +0, gradient NaN
        return t;
      };
      const optimizer = tf.train.adam(0.05);
      const warnings: string[] = [];
      const trainer = new BalancedTrainer({ terms, optimizer, balancer: name, variables: toy.variables, warn: (m) => warnings.push(m) });
      const strict = new BalancedTrainer({ terms, optimizer, balancer: name, variables: toy.variables, onNonFinite: 'throw' });
      try {
        trainer.step();
        const vars = toy.variables.map((v) => Array.from(v.dataSync()));
        const state = kept(trainer.balancer);
        poisoned = true;
        const r = trainer.step();
        expect(Object.values(r.losses).every(Number.isFinite)).toBe(true);
        expect(r.skipped).toMatch(/step 1: .*(not finite|is NaN)/);
        expect(warnings).toHaveLength(1);
        expect(toy.variables.map((v) => Array.from(v.dataSync()))).toEqual(vars);
        expect(kept(trainer.balancer)).toEqual(state);
        expect(() => strict.step()).toThrow(/not finite|is NaN/);
        // the policy given in the balancer spec governs the gradient check too
        const strictSpec = new BalancedTrainer({ terms, optimizer, balancer: { name, onNonFinite: 'throw' }, variables: toy.variables });
        expect(() => strictSpec.step()).toThrow(/not finite|is NaN/);
        expect(toy.variables.map((v) => Array.from(v.dataSync()))).toEqual(vars);
        poisoned = false;
        expect(trainer.step().skipped).toBeUndefined();
      } finally {
        toy.dispose();
        optimizer.dispose();
      }
    });
  }

  for (const name of ['fixed', 'uncertainty', 'gradnorm', 'grad-magnitude'].filter((n) => names.includes(n))) {
    it(`${name}: a NaN loss skips the step and leaves the model variables and the balancer state unchanged`, () => {
      const toy = makeToy([1, 3], { seed: 5 });
      let poisoned = false;
      const terms = () => {
        const t = toy.terms();
        if (poisoned) t.t1 = t.t1.mul(Number.NaN) as tf.Scalar;
        return t;
      };
      const optimizer = tf.train.adam(0.05);
      const warnings: string[] = [];
      const trainer = new BalancedTrainer({ terms, optimizer, balancer: name, variables: toy.variables, warn: (m) => warnings.push(m) });
      try {
        trainer.step();
        trainer.step();
        const vars = toy.variables.map((v) => Array.from(v.dataSync()));
        const state = kept(trainer.balancer);
        poisoned = true;
        const r = trainer.step();
        expect(r.skipped).toMatch(/term "t1"/);
        expect(warnings.some((w) => /step 2.*"t1"/.test(w))).toBe(true);
        expect(toy.variables.map((v) => Array.from(v.dataSync()))).toEqual(vars);
        expect(kept(trainer.balancer)).toEqual(state);
        expect(trainer.history.last?.skipped).toBeDefined();
        poisoned = false;
        const ok = trainer.step();
        expect(ok.skipped).toBeUndefined();
        expect(toy.variables.every((v) => Array.from(v.dataSync()).every(Number.isFinite))).toBe(true);
      } finally {
        toy.dispose();
        optimizer.dispose();
      }
    });
  }
});

describe('through the trainer, float32 gradients 1e16 apart', () => {
  beforeAll(() => useTestBackend());
  it('every registered strategy: loss scales 1e-8 vs 1e8 train without a skipped step, weights and variables finite', () => {
    for (const name of names) {
      const toy = makeToy([1e-8, 1e8, 1], { seed: 8 });
      const optimizer = tf.train.adam(0.01);
      const warnings: string[] = [];
      const trainer = new BalancedTrainer({ terms: toy.terms, optimizer, balancer: name, variables: toy.variables, warn: (m) => warnings.push(m) });
      try {
        for (let i = 0; i < 3; i++) {
          const r = trainer.step();
          expect(r.skipped, `${name} step ${i}`).toBeUndefined();
          const b = trainer.balancer;
          expectValidWeights(b, Object.values(r.weights), `${name} step ${i}`);
        }
        expect(warnings, name).toEqual([]);
        expect(toy.variables.every((v) => Array.from(v.dataSync()).every(Number.isFinite)), name).toBe(true);
      } finally {
        toy.dispose();
        optimizer.dispose();
      }
    }
  });
});

describe('docs/guide-robustness.md', () => {
  it('the per-strategy input table matches the strategies\' declared flags (regenerate: npx tsx bench/robustness-table.ts --write)', async () => {
    const { readFileSync } = await import('node:fs');
    const doc = readFileSync(new URL('../docs/guide-robustness.md', import.meta.url), 'utf8');
    const rows = [...doc.matchAll(/^\| `([^`]+)` \| (losses[^|]*) \| (yes|no) \| ([^|]+) \| (yes|no) \|$/gm)];
    expect(rows.length).toBeGreaterThan(0);
    for (const [, name, , nonNeg, negative, signed] of rows) {
      if (!names.includes(name)) continue; // a strategy that was removed
      const { b } = make(name, 'skip');
      expect(nonNeg === 'yes', `${name}: "needs losses ≥ 0" column`).toBe(needsNonNegative(b));
      expect(signed === 'yes', `${name}: "weights may be negative" column`).toBe(!!b.strategy.signedWeights);
      if (nonNeg === 'yes') expect(negative, name).toMatch(/rejected/);
    }
  });
});
