/** Registry, option validation and the Balancer wrapper: errors name what is at fault. */
import { describe, expect, it, vi } from 'vitest';
import { Balancer, BalancerError, NonFiniteError, OptionError, create, list, register, unregister } from '../src/index.js';
import { z } from 'zod';

describe('registry', () => {
  it('lists every strategy with a one-line summary and what it reads', () => {
    const names = list().map((s) => s.name);
    for (const n of ['fixed', 'gradnorm', 'uncertainty', 'loss-ratio', 'grad-magnitude']) expect(names).toContain(n);
    for (const s of list()) {
      expect(s.summary.length).toBeGreaterThan(10);
      expect(s.summary).not.toContain('\n');
      expect(s.reads).toMatch(/^losses/);
    }
    expect(list().find((s) => s.name === 'gradnorm')!.reads).toBe('losses+gram');
    expect(list().find((s) => s.name === 'loss-ratio')!.reads).toBe('losses');
  });

  it('an unknown name lists the known ones', () => {
    expect(() => create('gradnrom')).toThrow(/unknown strategy "gradnrom" \(did you mean "gradnorm"\?\); known strategies: .*gradnorm/);
  });

  it('a bad option names the strategy, the option, the value and the rule', () => {
    try {
      create({ name: 'gradnorm', alpha: -1 });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(OptionError);
      const err = e as OptionError;
      expect(err.field).toBe('alpha');
      expect(err.value).toBe(-1);
      expect(err.message).toMatch(/gradnorm: option "alpha" got -1; .*>=\s?0/);
    }
    expect(() => create({ name: 'gradnorm', optimizer: 'rmsprop' })).toThrow(/option "optimizer" got "rmsprop"; .*adam.*sgd/);
    expect(() => create({ name: 'loss-ratio', decay: 'fast' })).toThrow(/option "decay" got "fast"/);
  });

  it("a rule without a message of its own reads in zod's English even where no zod locale is configured (the browser entry's case)", () => {
    // `import 'zod'` configures the English locale globally; the library's schemas (zod/mini) get it
    // per parse (src/core/schema.ts), so the message does not depend on which zod API was loaded.
    const localeError = z.config().localeError;
    z.config({ localeError: undefined });
    try {
      expect(() => create({ name: 'famo', lr: 100 })).toThrow(/famo: option "lr" got 100; Too big: expected number to be <=10; allowed: a finite number > 0 and <= 10/);
      expect(() => create({ name: 'gradvac', seed: 0.5 })).toThrow(/gradvac: option "seed" got 0.5; Invalid input: expected int, received number/);
    } finally {
      z.config({ localeError });
    }
  });

  it('an unknown option is rejected with the list of known options', () => {
    expect(() => create({ name: 'gradnorm', alhpa: 1 })).toThrow(/option "alhpa" got 1; unknown option; known options: alpha, lr, optimizer, minWeight/);
  });

  it('fills defaults from the schema', () => {
    expect(create('gradnorm').options).toEqual({ alpha: 1.5, lr: 0.025, optimizer: 'adam', minWeight: 1e-3 });
  });

  it('accepts core settings beside the options, and an existing Balancer as is', () => {
    const b = create({ name: 'fixed', onNonFinite: 'throw' });
    b.bind(['a']);
    expect(() => b.update({ losses: [NaN] })).toThrow(NonFiniteError);
    expect(create(b)).toBe(b);
  });

  it('rejects specs of the wrong shape', () => {
    expect(() => create(42 as never)).toThrow(BalancerError);
    expect(() => create({ alpha: 1 } as never)).toThrow(/name, \{ name, \.\.\.options \} or a Balancer/);
  });

  it('registers a user strategy and refuses duplicates', () => {
    register({
      name: 'test-half',
      summary: 'every weight is one half (test strategy)',
      options: z.strictObject({}),
      needs: () => ({ gradients: 'none' }),
      init: () => ({}),
      update: (_o, s, { losses }) => ({ weights: losses.map(() => 0.5), state: s }),
    });
    try {
      const b = create('test-half');
      b.bind(['x', 'y']);
      expect(b.update({ losses: [1, 2] }).weights).toEqual([0.5, 0.5]);
      expect(() => register({ ...b.strategy })).toThrow(/already registered/);
    } finally {
      unregister('test-half');
    }
  });

  it('refuses an object that is not a strategy at register(), naming the strategy and the field', () => {
    // A new user's trial (2026-12-06): `options: {}` was accepted, and the first step failed with
    // "Cannot read properties of undefined (reading 'run')", naming nothing
    const good = { name: 'test-shape', summary: 's', options: z.strictObject({}), needs: () => ({ gradients: 'none' as const }), init: () => ({}), update: (_o: unknown, st: unknown, { losses }: { losses: readonly number[] }) => ({ weights: losses.map(() => 1), state: st }) };
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ ...good, options: {} }, /register: strategy "test-shape": "options" must be a zod schema of the options, e.g. z.strictObject\(\{\}\) for none/],
      [{ ...good, options: undefined }, /"options" must be a zod schema .* got undefined/],
      [{ ...good, options: { power: z.number() } }, /got an object of fields "power": wrap them, z.strictObject\(\{ power: … \}\)$/],
      [{ ...good, name: '' }, /register: the strategy: "name" must be a non-empty string, got ""/],
      [{ ...good, summary: undefined }, /strategy "test-shape": "summary" must be a string/],
      [{ ...good, update: undefined }, /strategy "test-shape": "update" must be a function, got undefined/],
      [{ ...good, kind: 'jacobian' }, /strategy "test-shape": "aggregate" must be a function/],
    ];
    for (const [bad, re] of cases) expect(() => register(bad as never)).toThrow(re);
    expect(() => register(null as never)).toThrow(/register: the strategy: expected a strategy object, got null/);
    expect(list().some((i) => i.name === 'test-shape')).toBe(false);
  });

  it('an unknown name suggests the close ones', () => {
    expect(() => create('nashmtl')).toThrow(/unknown strategy "nashmtl" \(did you mean "nash-mtl"\?\); known strategies: /);
    expect(() => create('gradnrm')).toThrow(/did you mean "gradnorm"\?/);
    expect(() => create('Upgrad')).toThrow(/did you mean "upgrad"\?/);
    expect(() => create('zzzzzz')).toThrow(/unknown strategy "zzzzzz"; known strategies: .*, and the selector auto$/);
    expect(() => create('atuo')).toThrow(/did you mean "auto"\?/);
  });
});

describe('Balancer', () => {
  const bound = (spec: Parameters<typeof create>[0] = 'gradnorm', warn = vi.fn()) => {
    const b = create(spec, { warn });
    b.bind(['recon', 'kl']);
    return { b, warn };
  };
  const G = [[4, 1], [1, 1]];

  it('skips a NaN loss: state unchanged, previous weights kept, a warning names term and step', () => {
    const { b, warn } = bound();
    b.update({ losses: [1, 2], gram: G });
    const before = b.state();
    const r = b.update({ losses: [1, NaN], gram: G });
    expect(r.skipped).toMatch(/step 1: loss of term "kl" is NaN/);
    expect(warn).toHaveBeenCalledWith(expect.stringMatching(/step 1: loss of term "kl" is NaN/));
    // everything kept but the call counter that messages name (issue 12: the trainer's step)
    const after = b.state();
    expect(after.core!.cadence!.tick).toBe(before.core!.cadence!.tick + 1);
    expect({ ...after, core: { ...after.core, cadence: before.core!.cadence } }).toEqual(before);
    expect(r.weights).toEqual(before.weights);
  });

  it('skips an infinite Gram entry naming the term', () => {
    const { b } = bound();
    const r = b.update({ losses: [1, 2], gram: [[Infinity, 0], [0, 1]] });
    expect(r.skipped).toMatch(/gradient .* of term "recon" is Infinity/);
    expect(b.step).toBe(0);
  });

  it("onNonFinite: 'throw' throws a NonFiniteError with term and step", () => {
    const { b } = bound({ name: 'gradnorm', onNonFinite: 'throw' });
    try {
      b.update({ losses: [Infinity, 2], gram: G });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(NonFiniteError);
      expect((e as NonFiniteError).term).toBe('recon');
      expect((e as NonFiniteError).step).toBe(0);
    }
  });

  it('rejects bad onNonFinite values', () => {
    expect(() => create({ name: 'fixed', onNonFinite: 'ignore' })).toThrow(/onNonFinite must be 'skip' or 'throw'/);
  });

  it('errors on term changes, wrong lengths, missing Gram matrix', () => {
    const { b } = bound();
    expect(() => b.bind(['recon', 'adv'])).toThrow(/missing "kl"; unexpected "adv"/);
    expect(() => b.update({ losses: [1] })).toThrow(/got 1 losses for 2 terms/);
    expect(() => b.update({ losses: [1, 2] })).toThrow(/needs the Gram matrix/);
    expect(() => new Balancer(b.strategy, b.options).update({ losses: [1] })).toThrow(/no terms yet/);
    expect(() => create('fixed').bind(['a', 'a'])).toThrow(/distinct/);
  });

  it('a strategy returning a bad weight is caught, the state kept', () => {
    register({
      name: 'test-bad',
      summary: 'returns NaN on the second step (test strategy)',
      options: z.strictObject({}),
      needs: () => ({ gradients: 'none' }),
      init: () => ({ n: 0 }),
      update: (_o, s: { n: number }, { losses }) => ({ weights: losses.map(() => (s.n ? NaN : 1)), state: { n: s.n + 1 } }),
    });
    try {
      const warn = vi.fn();
      const b = create('test-bad', { warn });
      b.bind(['a']);
      b.update({ losses: [1] });
      const r = b.update({ losses: [1] });
      expect(r.skipped).toMatch(/weight of term "a" is NaN/);
      expect(b.state().state).toEqual({ n: 1 });
    } finally {
      unregister('test-bad');
    }
  });

  it('state round-trips through JSON and resumes identically', () => {
    const { b } = bound();
    const seq = [[2, 1], [1.5, 0.9], [1.2, 0.95], [1, 0.7]];
    b.update({ losses: seq[0], gram: G });
    b.update({ losses: seq[1], gram: G });
    const saved = JSON.parse(JSON.stringify(b.state()));
    const rest1 = seq.slice(2).map((l) => b.update({ losses: l, gram: G }).weights);
    const c = create('gradnorm');
    c.load(saved);
    const rest2 = seq.slice(2).map((l) => c.update({ losses: l, gram: G }).weights);
    expect(rest2).toEqual(rest1);
  });

  it('refuses a state of another strategy or version', () => {
    const { b } = bound();
    const s = b.state();
    expect(() => create('uncertainty').load(s)).toThrow(/state is for strategy "gradnorm"/);
    expect(() => create('gradnorm').load({ ...s, version: 99 })).toThrow(/version 99 cannot be loaded/);
    expect(() => create('gradnorm').load({} as never)).toThrow(/not a loss-balancer balancer state/);
  });
});
