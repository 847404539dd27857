/**
 * Issue 12, item 3: a strategy's inner state is validated on load. Every registered strategy
 * declares its state's shape (`Strategy.state`, zod); `Balancer.load()` checks it before anything is
 * assigned: finite numbers, one entry per term, integer counters, an RNG state in range. Each
 * corruption of each leaf of a saved state is either refused with an error naming the field and the
 * term (never "undefined") and the balancer left as it was, or accepted, and then the next updates
 * are not all skipped. A strategy without a schema gets the generic check.
 */
import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { BalancerState } from '../src/core/balancer.js';
import { create, list, register, unregister } from '../src/core/registry.js';
import { StateError } from '../src/core/state-check.js';
import type { Strategy } from '../src/core/types.js';
import { ordinary } from './fixtures/degenerate-cases.js';
import { feed, useTestBackend } from './helpers.js';

const TERMS = ['a', 'b', 'c'];

// Jacobian-kind strategies are fed the rows of `ordinary(...)` as a Jacobian tensor (helpers.feed).
beforeAll(() => useTestBackend());

/** Every leaf (number, string, boolean, null) and every array of the strategy state, by path. */
function paths(v: unknown, at: (string | number)[] = []): (string | number)[][] {
  if (Array.isArray(v)) return [at, ...v.flatMap((x, i) => paths(x, [...at, i]))];
  if (v !== null && typeof v === 'object') return Object.entries(v).flatMap(([k, x]) => paths(x, [...at, k]));
  return [at];
}

function setAt(root: Record<string, unknown>, path: (string | number)[], f: (old: unknown) => unknown): void {
  let o = root as Record<string | number, unknown>;
  for (const k of path.slice(0, -1)) o = o[k] as Record<string | number, unknown>;
  const k = path[path.length - 1];
  o[k] = f(o[k]);
}

/** Corruptions of one value: what NaN/Infinity become in JSON (null), a string, a negation, a cut list. */
const CORRUPTIONS: [string, (old: unknown) => unknown][] = [
  ['null (NaN or Infinity written as JSON)', () => null],
  ['a string', () => 'x'],
  ['negated', (old) => (typeof old === 'number' ? -old - 1 : old)],
  ['fractional', (old) => (typeof old === 'number' ? old + 0.5 : old)],
  ['one entry short', (old) => (Array.isArray(old) ? old.slice(0, -1) : old)],
  ['one entry more', (old) => (Array.isArray(old) ? [...old, old[0] ?? 1] : old)],
];

function saved(name: string): BalancerState {
  const b = create(name);
  b.bind(TERMS);
  for (const x of ordinary(3, 4, 2)) feed(b, x);
  const state = b.state();
  b.dispose();
  return state;
}

describe.each(list().filter((s) => s.kind !== 'selector').map((s) => s.name))('%s', (name) => {
  it('declares a state schema that accepts its own states (initial and after updates)', () => {
    const before = tf.memory().numTensors;
    const b = create(name);
    expect(typeof b.strategy.state, `${name} has no state schema`).toBe('function');
    b.bind(TERMS);
    expect(() => b.checkState(b.state())).not.toThrow();
    for (const x of ordinary(3, 6, 3)) {
      const r = feed(b, x);
      expect(r.skipped, `${name}: an ordinary step was skipped, so its state was never exercised`).toBeFalsy();
      expect(() => b.checkState(b.state())).not.toThrow();
    }
    // a saved state (with its tensor state, for the Jacobian kind) loads into a fresh balancer
    const fresh = create(name);
    fresh.load(b.state());
    expect(fresh.state()).toEqual(b.state());
    b.dispose();
    fresh.dispose();
    expect(tf.memory().numTensors, `${name}: tensors left after dispose`).toBe(before);
  });

  it('every corruption of every field of the strategy state: refused naming field and term, or harmless', () => {
    const before = tf.memory().numTensors;
    const good = saved(name);
    const leaves = paths(good.state).filter((p) => p.length > 0);
    let refused = 0;
    for (const path of leaves) {
      for (const [what, f] of CORRUPTIONS) {
        const s = structuredClone(good) as BalancerState & { state: Record<string, unknown> };
        setAt(s.state, path, f);
        if (JSON.stringify(s) === JSON.stringify(good)) continue;
        const field = ['state', ...path].join('.');
        const b = create(name, { warn: () => {} });
        let err: unknown;
        try {
          b.load(s);
        } catch (e) {
          err = e;
        }
        if (err) {
          refused++;
          expect(err, `${field} ${what}`).toBeInstanceOf(StateError);
          const msg = (err as Error).message;
          expect(msg, `${field} ${what}`).toMatch(/^balancer state for "[^"]+": field "state[.\w]*"/);
          expect(msg).not.toMatch(/undefined/);
          // the field named is the corrupted one or lies on its path
          const named = /field "([^"]+)"/.exec(msg)![1];
          expect(field.startsWith(named) || named.startsWith(field), `${field} ${what}: named ${named}`).toBe(true);
          // a per-term number is named with its term
          if (typeof path.at(-1) === 'number' && !Array.isArray(f(0)) && named === field && Array.isArray(valueAtPath(good.state, path.slice(0, -1))) && (valueAtPath(good.state, path.slice(0, -1)) as unknown[]).length === 3 && typeof valueAtPath(good.state, path) === 'number') {
            expect(msg, `${field} ${what}`).toMatch(new RegExp(`\\(term "${TERMS[path.at(-1) as number]}"\\)`));
          }
          expect(b.terms, `${field} ${what}: nothing loaded`).toBeNull();
          b.dispose();
          continue;
        }
        // accepted: the next updates must train (not all skipped), with valid weights
        const results = ordinary(3, 3, 9).map((x) => feed(b, x));
        b.dispose();
        expect(results.some((r) => !r.skipped), `${field} ${what} accepted, but every later step is skipped: ${results[0].skipped}`).toBe(true);
        for (const r of results) expect(r.weights.every(Number.isFinite), `${field} ${what}`).toBe(true);
      }
    }
    if (leaves.length) expect(refused).toBeGreaterThan(0);
    expect(tf.memory().numTensors, `${name}: tensors left after the corruption checks`).toBe(before);
  });
});

function valueAtPath(v: unknown, path: (string | number)[]): unknown {
  return path.reduce<unknown>((o, k) => (o !== null && typeof o === 'object' ? (o as Record<string | number, unknown>)[k] : undefined), v);
}

describe('core bookkeeping and the generic check', () => {
  afterEach(() => unregister('no-schema'));

  it('a corrupted cadence, adaptive weight or regulariser is refused naming the field', () => {
    const good = saved('uncertainty');
    const cases: [string, (s: any) => void, RegExp][] = [
      ['tick', (s) => (s.core.cadence.tick = -1), /field "core\.cadence\.tick" is -1/],
      ['epochSum', (s) => (s.core.cadence.epochSum = [1]), /field "core\.cadence\.epochSum"/],
      ['adaptive', (s) => (s.core.adaptive[1] = null), /field "core\.adaptive\.1" \(term "b"\) is null/],
      ['regularizer', (s) => (s.core.regularizer = [0, 0]), /field "core\.regularizer"/],
      ['active', (s) => (s.core.active = [0, 1]), /field "core\.active"/],
      ['config', (s) => (s.core.config.updateEvery = 0), /field "core\.config\.updateEvery"/],
      ['state missing', (s) => delete s.state.adam, /field "state\.adam" is missing/],
      ['extra field', (s) => (s.state.extra = 1), /field "state\.extra"/],
    ];
    for (const [what, edit, msg] of cases) {
      const s = structuredClone(good);
      edit(s);
      const b = create('uncertainty');
      expect(() => b.load(s), what).toThrow(msg);
      expect(b.terms, what).toBeNull();
    }
  });

  it('a strategy without a state schema gets the generic check: finite numbers, one entry per term', () => {
    const plain: Strategy<Record<string, never>, { t: number; w: number[]; ref: number[] | null }> = {
      name: 'no-schema',
      summary: 'test strategy without a state schema',
      options: z.strictObject({}),
      needs: () => ({ gradients: 'none' }),
      init: (_o, terms) => ({ t: 0, w: terms.map(() => 1), ref: null }),
      update: (_o, s, { losses }) => ({ weights: [...s.w], state: { t: s.t + 1, w: s.w, ref: [...losses] } }),
    };
    register(plain as Strategy);
    const b = create('no-schema');
    b.bind(TERMS);
    b.update({ losses: [1, 2, 3] });
    const good = b.state();
    const cases: [string, (s: any) => void, RegExp][] = [
      ['w short', (s) => (s.state.w = [1, 1]), /field "state\.w" is \[1,1\]; must have 3 entries, one per term/],
      ['w null', (s) => (s.state.w[2] = null), /field "state\.w\.2" \(term "c"\) is null; must be a finite number/],
      ['ref null entry', (s) => (s.state.ref[0] = null), /field "state\.ref\.0" is null; must be a finite number/],
      ['t string', (s) => (s.state.t = 'x'), /field "state\.t" is "x"/],
      ['unknown key', (s) => (s.state.q = 1), /field "state\.q"/],
    ];
    for (const [what, edit, msg] of cases) {
      const s = structuredClone(good);
      edit(s);
      const fresh = create('no-schema');
      expect(() => fresh.load(s), what).toThrow(msg);
      expect(fresh.terms).toBeNull();
    }
    const ok = create('no-schema');
    ok.load(good);
    expect(ok.state()).toEqual(good);
  });
});
