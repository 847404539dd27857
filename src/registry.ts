/**
 * The registry: strategy name → strategy (with its option schema). `create()` turns a name, a
 * `{ name, ...options }` object or an existing {@link Balancer} into a ready balancer, validating the
 * options; `list()` names what is available.
 */
import type { z } from 'zod';
import { Balancer, type BalancerConfig, BALANCER_KEYS } from './balancer.js';
import { BalancerError, OptionError } from './errors.js';
import type { BalancerSpec, Strategy } from './types.js';
import { builtinStrategies } from '../strategies/index.js';

const strategies = new Map<string, Strategy>(builtinStrategies.map((s) => [s.name, s]));

/** Add a strategy to the registry. A second strategy with the same name is an error. */
export function register(strategy: Strategy): void {
  if (strategies.has(strategy.name)) {
    throw new BalancerError(`a strategy named "${strategy.name}" is already registered`);
  }
  strategies.set(strategy.name, strategy);
}

/** Remove a strategy (for tests and plug-ins). */
export function unregister(name: string): boolean {
  return strategies.delete(name);
}

/** The strategy registered under `name`; an unknown name is an error that lists the known ones. */
export function getStrategy(name: string): Strategy {
  const s = strategies.get(name);
  if (!s) {
    throw new BalancerError(
      `unknown strategy "${name}"; known strategies: ${[...strategies.keys()].sort().join(', ')}`,
    );
  }
  return s;
}

/** One line per registered strategy. */
export interface StrategyInfo {
  name: string;
  summary: string;
  paper?: string;
  /** What it reads with its default options: `'losses'` or `'gram'` (+ `'stats'`). */
  reads: string;
}

/** The registered strategies, sorted by name, with one-line descriptions. */
export function list(): StrategyInfo[] {
  return [...strategies.values()]
    .map((s) => {
      const needs = s.needs(validateOptions(s, {}));
      const reads = [needs.gradients === 'gram' ? 'losses+gram' : 'losses', needs.stats ? 'stats' : '']
        .filter(Boolean)
        .join('+');
      return { name: s.name, summary: s.summary, paper: s.paper, reads };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** Validate `raw` against the strategy's schema, filling defaults; errors name option, value, rule. */
export function validateOptions<O>(strategy: Strategy<O>, raw: Record<string, unknown>): O {
  const result = (strategy.options as z.ZodType<O>).safeParse(raw);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  if (issue.code === 'unrecognized_keys') {
    const known = optionNames(strategy);
    const key = issue.keys[0];
    throw new OptionError(
      strategy.name,
      [...issue.path, key].join('.'),
      raw[key],
      `unknown option; known options: ${known.length ? known.join(', ') : '(none)'}`,
    );
  }
  const field = issue.path.join('.') || '(options)';
  const value = issue.path.reduce<unknown>(
    (v, k) => (v !== null && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[k] : undefined),
    raw,
  );
  throw new OptionError(strategy.name, field, value, issue.message);
}

/** The option names a strategy's schema accepts (for error messages and docs). */
export function optionNames(strategy: Strategy): string[] {
  const shape = (strategy.options as unknown as { shape?: Record<string, unknown> }).shape;
  return shape ? Object.keys(shape) : [];
}

/**
 * A ready balancer from a name (`'gradnorm'`), a name with options (`{ name: 'gradnorm', alpha: 1 }`)
 * or an existing balancer (returned as is). Keys of {@link BalancerConfig} (`onNonFinite`, ...) may
 * stand beside the strategy's options.
 */
export function create(spec: BalancerSpec | Balancer, config: BalancerConfig = {}): Balancer {
  if (spec instanceof Balancer) return spec;
  if (typeof spec === 'string') return new Balancer(getStrategy(spec), validateOptions(getStrategy(spec), {}), config);
  if (spec === null || typeof spec !== 'object' || typeof spec.name !== 'string') {
    throw new BalancerError(
      `a balancer is given as a name, { name, ...options } or a Balancer; got ${JSON.stringify(spec)}`,
    );
  }
  const { name, ...rest } = spec;
  const strategy = getStrategy(name);
  const own: Record<string, unknown> = {};
  const core: Record<string, unknown> = { ...config };
  for (const [k, v] of Object.entries(rest)) {
    if ((BALANCER_KEYS as readonly string[]).includes(k)) core[k] = v;
    else own[k] = v;
  }
  return new Balancer(strategy, validateOptions(strategy, own), core as BalancerConfig);
}
