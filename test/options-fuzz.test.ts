/**
 * Options and config validation (issue 7, item 4): random option objects (random keys and values, and
 * valid-looking values drawn from each strategy's own zod schema) thrown at `create()`: either the
 * balancer is created, binds, and its first updates give valid weights, or an `OptionError` /
 * `BalancerError` names the field at fault — never a TypeError, never NaN weights. The same for run
 * config files (`validateRunConfig`: works or `ConfigError` naming the field).
 */
import * as fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { BALANCER_KEYS } from '../src/core/balancer.js';
import { BalancerError, NonFiniteError, OptionError } from '../src/core/errors.js';
import { create, getStrategy, list, optionNames } from '../src/core/registry.js';
import { ConfigError, RunConfigSchema, validateRunConfig } from '../src/node/run.js';
import { ordinary } from './fixtures/degenerate-cases.js';
import { feed, useTestBackend } from './helpers.js';

beforeAll(() => useTestBackend());

const TERMS = ['a', 'b', 'c'];

/** Anything at all, including the values that break naive code. */
const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0, 0, 1, -1, 1e308, -1e-308, 2 ** 31, 0.5, 3),
  fc.double(),
  fc.integer(),
  fc.string({ maxLength: 6 }),
  fc.constantFrom('a', 'b', 'c', 'zzz', '', 'step', 'epoch', 'adam', 'sgd'),
  fc.boolean(),
  fc.constantFrom(null, undefined),
  fc.array(fc.oneof(fc.double(), fc.integer({ min: -2, max: 5 })), { maxLength: 4 }),
  fc.dictionary(fc.constantFrom('a', 'b', 'c', 'x'), fc.oneof(fc.double(), fc.integer({ min: -1, max: 3 })), { maxKeys: 3 }),
  fc.constant(() => {}),
  fc.constant(Symbol('s')),
);

type Def = { type: string; [k: string]: unknown };
const defOf = (s: unknown): Def | undefined => (s as { def?: Def })?.def;

/** Valid-looking values for a zod schema (walks the schema's definition; unknown kinds give nothing). */
function samples(schema: unknown, depth = 0): unknown[] {
  const def = defOf(schema);
  if (!def || depth > 3) return [];
  switch (def.type) {
    case 'default':
    case 'optional':
    case 'nullable':
    case 'readonly':
    case 'catch':
    case 'prefault':
      return [undefined, ...samples(def.innerType, depth + 1)];
    case 'enum':
      return Object.values(def.entries as Record<string, unknown>);
    case 'literal':
      return [...(def.values as unknown[])];
    case 'number': {
      const bounds = ((def.checks as { _zod: { def: { value?: number } } }[] | undefined) ?? []).map((c) => c._zod.def.value).filter((v): v is number => typeof v === 'number');
      return [0, 1, 0.5, 2, -1, 10, 1e-3, ...bounds, ...bounds.map((b) => b + 1e-9), ...bounds.map((b) => b - 1e-9)];
    }
    case 'int':
      return [0, 1, 2, 5, -1];
    case 'string':
      return ['a', 'b', 'x', ''];
    case 'boolean':
      return [true, false];
    case 'union':
      return (def.options as unknown[]).flatMap((o) => samples(o, depth + 1));
    case 'array': {
      const el = samples(def.element, depth + 1);
      return el.length ? [[], [el[0], el[0], el[0]], el.slice(0, 3), el.slice(0, 2)] : [[]];
    }
    case 'record': {
      const v = samples(def.valueType, depth + 1).filter((x) => x !== undefined);
      return v.length ? [{}, { a: v[0] }, { b: v[1] ?? v[0], c: v[0] }, { nope: v[0] }] : [{}];
    }
    case 'object': {
      const shape = def.shape as Record<string, unknown>;
      const one: Record<string, unknown> = {};
      for (const [k, s] of Object.entries(shape)) {
        const v = samples(s, depth + 1).find((x) => x !== undefined);
        if (v !== undefined) one[k] = v;
      }
      return [{}, one];
    }
    default:
      return [];
  }
}

/** Random options for a strategy: its own keys with valid-looking or wild values, core keys, unknown keys. */
function optionsFor(name: string): fc.Arbitrary<Record<string, unknown>> {
  const strategy = getStrategy(name);
  const shape = (strategy.options as unknown as { shape?: Record<string, unknown> }).shape ?? {};
  const own = optionNames(strategy);
  const valueFor = (key: string): fc.Arbitrary<unknown> => {
    const valid = samples(shape[key]);
    return valid.length ? fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...valid) }, { weight: 1, arbitrary: anyValue }) : anyValue;
  };
  const core = fc.record(
    {
      onNonFinite: fc.oneof(fc.constantFrom('skip', 'throw'), anyValue),
      warn: fc.oneof(fc.constant(() => {}), anyValue),
      baseWeights: fc.oneof(fc.constant({ a: 2 }), anyValue),
      frozen: fc.oneof(fc.constant({ c: 1 }), anyValue),
      updateEvery: fc.oneof(fc.constantFrom('step', 'epoch', 2, 0, 1.5), anyValue),
      warmup: fc.oneof(fc.constant({ steps: 1 }), fc.constant({ steps: 2, weights: { a: 3 } }), anyValue),
      bounds: fc.oneof(fc.constant({ min: 0.1, max: 10 }), fc.constant({ maxChange: 0.5 }), fc.constant({ min: 5, max: 1 }), anyValue),
    },
    { requiredKeys: [] },
  ).map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => (BALANCER_KEYS as readonly string[]).includes(k))));
  const ownArb = own.length
    ? fc.record(Object.fromEntries(own.map((k) => [k, valueFor(k)])), { requiredKeys: [] })
    : fc.constant({});
  const unknown = fc.dictionary(fc.constantFrom('lr2', 'alpah', 'name2', 'weight', '__proto__x'), anyValue, { maxKeys: 1 });
  return fc
    .tuple(ownArb, fc.oneof({ weight: 3, arbitrary: fc.constant({}) }, { weight: 2, arbitrary: core }), fc.oneof({ weight: 4, arbitrary: fc.constant({}) }, { weight: 1, arbitrary: unknown }))
    .map(([a, b, c]) => ({ ...c, ...b, ...a }));
}

function check(name: string, opts: Record<string, unknown>): void {
  const inputs = ordinary(3, 3);
  let stage = 'create';
  try {
    const b = create({ name, ...opts } as Parameters<typeof create>[0]);
    stage = 'bind';
    b.bind(TERMS);
    stage = 'update';
    for (const [t, x] of inputs.entries()) {
      const r = feed(b, { ...x, epoch: t });
      expect(r.skipped, `${name} ${JSON.stringify(opts)}: step ${t} skipped: ${r.skipped}`).toBeUndefined();
      for (const w of r.weights) {
        expect(Number.isFinite(w), `${name} ${JSON.stringify(opts)}: weights ${r.weights}`).toBe(true);
        if (!b.strategy.signedWeights) expect(w).toBeGreaterThanOrEqual(0);
      }
    }
    // A NaN loss afterwards is skipped (warned through the user's `warn`, else console.warn: captured
    // and checked here, not printed) or thrown as NonFiniteError.
    stage = 'non-finite update';
    const warned: unknown[] = [];
    const consoleWarn = console.warn;
    console.warn = (...m: unknown[]) => void warned.push(m.join(' '));
    try {
      const r = feed(b, { ...inputs[0], losses: [1, Number.NaN, 1], epoch: 3 });
      expect(r.skipped).toMatch(/term "b"/);
      if (typeof opts.warn !== 'function') expect(warned.join('\n')).toMatch(/loss of term "b" is NaN; balancer update skipped/);
    } catch (e) {
      expect(e, `${name} ${JSON.stringify(opts)}`).toBeInstanceOf(NonFiniteError);
    } finally {
      console.warn = consoleWarn;
    }
  } catch (e) {
    if (!(e instanceof BalancerError)) {
      throw new Error(`${name} ${String(JSON.stringify(opts))}: ${stage} threw ${(e as Error)?.name}: ${(e as Error)?.message}`);
    }
    const keys = Object.keys(opts);
    if (e instanceof OptionError) {
      const top = e.field.split('.')[0];
      expect(keys, `${name}: OptionError field "${e.field}" is not one of the keys given (${e.message})`).toContain(top);
      expect(e.message).toContain(`"${e.field}"`);
      expect(e.message).toMatch(/ got /); // the value received, then the rule
    } else {
      // Not an option error: it must still name one of the options given (e.g. a term name in an option).
      expect(keys.some((k) => e.message.includes(k)), `${name} ${JSON.stringify(opts)}: ${stage}: "${e.message}" names no option`).toBe(true);
    }
  }
}

describe.each(list().filter((s) => s.kind !== 'selector').map((s) => s.name))('create(%s, random options)', (name) => {
  it('works or throws an OptionError/BalancerError naming the field', () => {
    fc.assert(fc.property(optionsFor(name), (opts) => check(name, opts)), { numRuns: 150, seed: 11 });
  });
  it('every documented default passes: the strategy runs with {}', () => {
    check(name, {});
  });
});

describe('create() with malformed specs', () => {
  it('a non-object, unknown name or missing name is a BalancerError', () => {
    for (const spec of [null, 42, [], {}, { name: 3 }, { name: 'no-such-strategy' }, 'no-such-strategy']) {
      expect(() => create(spec as never), JSON.stringify(spec)).toThrow(BalancerError);
    }
  });
  it('an invalid option names the option, the value and the rule', () => {
    expect(() => create({ name: 'gradnorm', alpha: -1 })).toThrow(/option "alpha" got -1;.*>=0|option "alpha" got -1;.*0/);
    expect(() => create({ name: 'gradnorm', optimizer: 'rmsprop' })).toThrow(/option "optimizer" got "rmsprop";.*adam.*sgd/);
    expect(() => create({ name: 'gradnorm', alhpa: 1 })).toThrow(/option "alhpa".*known options: alpha/);
    expect(() => create({ name: 'gradnorm', onNonFinite: 'ignore' })).toThrow(/onNonFinite.*ignore|ignore.*onNonFinite/);
  });
});

describe('run config files: random configs', () => {
  const fields = Object.keys(RunConfigSchema.shape);
  const strategyNames = list().filter((s) => s.kind !== 'selector').map((s) => s.name);
  const configArb = fc.record(
    {
      name: fc.oneof(fc.constantFrom('run-1', 'a b', ''), anyValue),
      strategy: fc.oneof(fc.constantFrom(...strategyNames), fc.constantFrom(...strategyNames).map((n) => ({ name: n })), fc.constant({ name: 'gradnorm', alpha: -3 }), anyValue),
      steps: fc.oneof(fc.constantFrom(1, 200, 0, 100001, 2.5), anyValue),
      lr: fc.oneof(fc.constantFrom(0.01, 0, 11), anyValue),
      seed: fc.oneof(fc.constantFrom(0, 1, -1), anyValue),
      output: fc.oneof(fc.constantFrom('runs', ''), anyValue),
      backend: fc.oneof(fc.constantFrom('auto', 'cpu', 'gpu'), anyValue),
      example: fc.oneof(fc.constant({ scales: [1, 10] }), fc.constant({ scales: [1, 10], names: ['x'] }), fc.constant({ scales: [] }), fc.constant({ hidden: 0 }), anyValue),
      logScale: fc.oneof(fc.boolean(), anyValue),
      bogus: anyValue,
    },
    { requiredKeys: [] },
  );
  it('validateRunConfig works or throws a ConfigError naming the field', () => {
    fc.assert(
      fc.property(configArb, (raw) => {
        try {
          const cfg = validateRunConfig(raw, 'fuzz.yaml');
          expect(typeof cfg.name).toBe('string');
        } catch (e) {
          if (!(e instanceof ConfigError)) throw new Error(`${JSON.stringify(raw)}: threw ${(e as Error)?.name}: ${(e as Error)?.message}`);
          const top = e.field.split('.')[0];
          expect([...fields, 'bogus', '(root)'], e.message).toContain(top);
          expect(e.message).toContain('fuzz.yaml');
          expect(e.message).toContain(`"${e.field}"`);
        }
      }),
      { numRuns: 300, seed: 5 },
    );
  });
});
