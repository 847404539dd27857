/**
 * The registry: strategy name → strategy (with its option schema). `create()` turns a name, a
 * `{ name, ...options }` object or an existing {@link Balancer} into a ready balancer, validating the
 * options; `list()` names what is available.
 */
import { Balancer, type BalancerConfig, BALANCER_KEYS } from './balancer.js';
import { BalancerError, OptionError } from './errors.js';
import type { AnyStrategy, BalancerSpec, JacobianStrategy, Strategy } from './types.js';
import { builtinStrategies } from '../../strategies/index.js';
import { caveatsOf } from './caveats.js';
import { safeParse } from './schema.js';
import { closest } from './closest.js';
import { MAX_CONFIG_DEPTH, shortPath, valueDepthExceeded } from './json-depth.js';
import { AUTO_INFO, AUTO_OPTION_NAMES } from './auto-config.js';

const strategies = new Map<string, AnyStrategy>(builtinStrategies.map((s) => [s.name, s]));

/**
 * Add a strategy to the registry (see {@link Strategy}, {@link JacobianStrategy}, and docs/guide.md,
 * "Your own strategy").
 *
 * @throws BalancerError when a strategy with the same name is registered already, or when the object
 * is not a strategy: a missing or non-string `name`/`summary`, `options` that is not a zod schema
 * (`z.strictObject({...})` from `zod` or `zod/mini`), or a missing `needs`/`init`/`update` (or
 * `aggregate` for `kind: 'jacobian'`) function. The message names the strategy and the field.
 */
export function register(strategy: AnyStrategy): void {
  const s = strategy as unknown as Record<string, unknown> | null;
  const name = s && typeof s.name === 'string' && s.name ? s.name : null;
  const bad = (what: string) => new BalancerError(`register: ${name ? `strategy "${name}"` : 'the strategy'}: ${what}`);
  if (!s || typeof s !== 'object') throw bad(`expected a strategy object, got ${s === null ? 'null' : typeof s}`);
  if (!name) throw bad(`"name" must be a non-empty string, got ${JSON.stringify(s.name)}`);
  if (typeof s.summary !== 'string') throw bad(`"summary" must be a string (one line for list()), got ${JSON.stringify(s.summary)}`);
  const o = s.options as { _zod?: unknown; safeParse?: unknown } | undefined;
  if (!o || typeof o !== 'object' || !o._zod || typeof o.safeParse !== 'function') {
    const fields = o && typeof o === 'object' ? Object.keys(o) : [];
    const got = o === undefined ? 'undefined' : fields.length ? `an object of fields ${fields.map((f) => JSON.stringify(f)).join(', ')}: wrap them, z.strictObject({ ${fields[0]}: … })` : JSON.stringify(o);
    throw bad(`"options" must be a zod schema of the options, e.g. z.strictObject({}) for none (zod 4, from 'zod' or 'zod/mini'), got ${got}`);
  }
  const fns = ['needs', 'init', s.kind === 'jacobian' ? 'aggregate' : 'update'];
  for (const f of fns) if (typeof s[f] !== 'function') throw bad(`"${f}" must be a function, got ${typeof s[f]}`);
  if (strategies.has(name)) {
    throw new BalancerError(`a strategy named "${name}" is already registered`);
  }
  strategies.set(name, strategy);
}

/** Remove a strategy (for tests and plug-ins). */
export function unregister(name: string): boolean {
  return strategies.delete(name);
}

/** The strategy registered under `name`; an unknown name is an error that lists the known ones. */
export function getStrategy(name: string): AnyStrategy {
  const s = strategies.get(name);
  if (!s && name === AUTO_INFO.name) {
    throw new BalancerError(
      `"auto" is a strategy selector, not a strategy, so it cannot be built on its own; pass balancer: 'auto' to BalancedTrainer or fitBalanced (docs/guide-auto.md). list() marks it with kind 'selector'`,
    );
  }
  if (!s) {
    const known = [...strategies.keys()].sort();
    const near = closest(name, [...known, AUTO_INFO.name]);
    throw new BalancerError(`unknown strategy "${name}"${near ? ` (did you mean "${near}"?)` : ''}; known strategies: ${known.join(', ')}, and the selector ${AUTO_INFO.name}`);
  }
  return s;
}

/** One line per registered strategy. */
export interface StrategyInfo {
  /** The registered name, as passed to {@link create} (e.g. `'gradnorm'`). */
  name: string;
  /** One-line description of what the strategy does. */
  summary: string;
  /** Short citation of the paper it implements, when there is one. */
  paper?: string;
  /**
   * What it reads with its default options: `'losses'`, `'losses+gram'` (+ `'+stats'`), or
   * `'losses+jacobian'` (the T×P per-term gradients, for a strategy of the Jacobian kind).
   */
  reads: string;
  /**
   * `'jacobian'` for a {@link JacobianStrategy} (transforms the per-term gradients), `'gram'` for the
   * other strategies, `'selector'` for `auto` (which picks a strategy during training: give it as
   * `balancer: 'auto'` to a trainer; {@link create} does not build it). Code that builds every
   * strategy from `list()` skips `'selector'`.
   */
  kind: 'gram' | 'jacobian' | 'selector';
  /** The option names it accepts (besides the balancer settings such as `bounds`, `updateEvery`). */
  options: string[];
  /**
   * Where a default is a poor first choice for common problems, with the paper's reason (one
   * paragraph each, prefixed with the option); absent when none is recorded. See src/core/caveats.ts.
   */
  caveats?: string[];
}

/**
 * The registered strategies and the `auto` selector (kind `'selector'`), sorted by name, with
 * one-line descriptions. To build every strategy, skip the selector:
 * `list().filter((s) => s.kind !== 'selector')`.
 */
export function list(): StrategyInfo[] {
  const selector: StrategyInfo = { ...AUTO_INFO, reads: 'losses+gram', kind: 'selector', options: [...AUTO_OPTION_NAMES] };
  return [...strategies.values()]
    .map((s): StrategyInfo => {
      const needs = s.needs(validateOptions(s, {}));
      const reads = [needs.gradients === 'none' ? 'losses' : `losses+${needs.gradients}`, needs.stats ? 'stats' : '']
        .filter(Boolean)
        .join('+');
      const caveats = caveatsOf(s.name).map((c) => `${c.option}: ${c.text}`);
      return { name: s.name, summary: s.summary, paper: s.paper, reads, kind: s.kind === 'jacobian' ? 'jacobian' : 'gram', options: optionNames(s), ...(caveats.length ? { caveats } : {}) };
    })
    .concat(strategies.has(selector.name) ? [] : [selector])
    .sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * Throw an `OptionError` naming the field when an option value nests more than
 * {@link MAX_CONFIG_DEPTH} levels deep: checked iteratively before the schema, whose recursive
 * validation would otherwise end in a bare "Maximum call stack size exceeded".
 */
function checkNesting(strategy: string, raw: Record<string, unknown>): void {
  const deep = valueDepthExceeded(raw, MAX_CONFIG_DEPTH);
  if (deep) throw new OptionError(strategy, shortPath(deep), '(nested)', `allowed: at most ${MAX_CONFIG_DEPTH} levels of nesting in an option value`);
}

/** Validate `raw` against the strategy's schema, filling defaults; errors name option, value, rule. */
export function validateOptions<O>(strategy: Strategy<O> | JacobianStrategy<O>, raw: Record<string, unknown>): O {
  checkNesting(strategy.name, raw);
  const result = safeParse(strategy.options, raw);
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
  const shape = (strategy.options as unknown as { shape?: Record<string, unknown> }).shape;
  const allowed = shape && typeof issue.path[0] === 'string' ? describeSchema(shape[issue.path[0]]) : '';
  throw new OptionError(strategy.name, field, value, allowed ? `${issue.message}; allowed: ${allowed}` : issue.message);
}

type SchemaDef = { type: string; [k: string]: unknown };
const defOf = (s: unknown): SchemaDef | undefined => (s as { def?: SchemaDef } | undefined)?.def;

/**
 * What a zod option schema accepts, in words, for error messages: `"a" | "b"`, `a number >= 0`,
 * `an integer`, lists, records and unions of those. Unknown schema kinds give `''`.
 */
export function describeSchema(schema: unknown, depth = 0): string {
  const def = defOf(schema);
  if (!def || depth > 4) return '';
  const inner = () => describeSchema(def.innerType, depth + 1);
  switch (def.type) {
    case 'default':
    case 'prefault':
    case 'catch':
    case 'readonly':
      return inner();
    case 'optional':
      return inner() && `${inner()} (optional)`;
    case 'nullable':
      return inner() && `${inner()} or null`;
    case 'enum':
      return Object.values(def.entries as Record<string, unknown>).map((v) => JSON.stringify(v)).join(' | ');
    case 'literal':
      return (def.values as unknown[]).map((v) => JSON.stringify(v)).join(' | ');
    case 'string':
      return 'a string';
    case 'boolean':
      return 'true or false';
    case 'number': {
      const checks = ((def.checks as { _zod?: { def?: { check?: string; value?: unknown; inclusive?: boolean; format?: string } } }[]) ?? [])
        .map((c) => c._zod?.def ?? {});
      const isInt = checks.some((c) => c.check === 'number_format' && /int/.test(String(c.format)));
      const parts = checks.flatMap((c) =>
        c.check === 'greater_than' ? [`${c.inclusive ? '>=' : '>'} ${c.value}`] : c.check === 'less_than' ? [`${c.inclusive ? '<=' : '<'} ${c.value}`] : [],
      );
      return `${isInt ? 'an integer' : 'a finite number'}${parts.length ? ` ${parts.join(' and ')}` : ''}`;
    }
    case 'array': {
      const el = describeSchema(def.element, depth + 1);
      return `a list${el ? ` of (${el})` : ''}`;
    }
    case 'record': {
      const v = describeSchema(def.valueType, depth + 1);
      return `an object { termName: ${v || 'value'} }`;
    }
    case 'union':
      return (def.options as unknown[]).map((o) => describeSchema(o, depth + 1)).filter(Boolean).join(', or ');
    case 'object':
      return `an object with ${Object.keys(def.shape as Record<string, unknown>).join(', ')}`;
    default:
      return '';
  }
}

/** The option names a strategy's schema accepts (for error messages and docs). */
export function optionNames(strategy: AnyStrategy): string[] {
  const shape = (strategy.options as unknown as { shape?: Record<string, unknown> }).shape;
  return shape ? Object.keys(shape) : [];
}

/**
 * Check a balancer spec without keeping anything: what {@link create} would throw for it (an
 * `OptionError` naming the option, a `BalancerError` for an unknown strategy). Used by `parseAuto`
 * to check `auto`'s candidates and families when the options are parsed.
 */
export function checkSpec(spec: BalancerSpec): void {
  create(spec);
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
  checkNesting(name, rest); // the core settings too, before their schemas
  const own: Record<string, unknown> = {};
  const core: Record<string, unknown> = { ...config };
  for (const [k, v] of Object.entries(rest)) {
    if ((BALANCER_KEYS as readonly string[]).includes(k)) core[k] = v;
    else own[k] = v;
  }
  return new Balancer(strategy, validateOptions(strategy, own), core as BalancerConfig);
}
