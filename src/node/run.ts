/**
 * `loss-balancer run <config>`: train the shipped toy problem ({@link makeToyProblem}) with a strategy
 * and options from a validated JSON or YAML config file, writing everything a user looks at into
 * `<output>/<name>/`: `trajectory.jsonl`, a TensorBoard event file, `config.json`, the charts
 * (`plots/*.svg|png`) and `report.html`.
 *
 * @example A config file (YAML)
 * ```yaml
 * name: gradnorm-toy
 * strategy: { name: gradnorm, alpha: 1.5 }
 * steps: 300
 * lr: 0.01
 * seed: 1
 * output: runs
 * example: { scales: [1, 10, 100] }
 * ```
 * @module
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, statSync } from 'node:fs';
import { extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { parse as parseYaml } from 'yaml';
import * as z from 'zod/mini';
import { BalancerError, describeValue, OptionError } from '../core/errors.js';
import type { StepRecord } from '../core/history.js';
import { checkSpec, create } from '../core/registry.js';
import { parseAuto } from '../core/auto-config.js';
import { safeParse } from '../core/schema.js';
import { MAX_CONFIG_DEPTH, shortPath, textDepthExceeded, valueDepthExceeded } from '../core/json-depth.js';
import { MissingPeerError, missingPeers } from '../viz/peers.js';
import { ensureDir, refuseLink, writeFileSafe } from './safe-file.js';

/** What each config field accepts, for error messages (dotted path; `*` for array items). */
export const CONFIG_FIELDS: Readonly<Record<string, string>> = {
  name: 'letters, digits, ".", "_" or "-", not starting with "." (the run folder name, inside `output`); default: the strategy name',
  strategy: 'a strategy name (see `loss-balancer list`) or { name, ...options }',
  'strategy.name': 'a strategy name (see `loss-balancer list`)',
  steps: 'an integer from 1 to 100000',
  lr: 'a number > 0 and ≤ 10 (Adam learning rate)',
  seed: 'an integer from 0 to 2147483647',
  output: 'a non-empty folder path',
  backend: 'one of auto, tensorflow, wasm, cpu',
  example: 'an object with scales, names, hidden, samples',
  'example.scales': 'a list of 1 to 16 positive numbers (loss multiplier per term)',
  'example.scales.*': 'a number > 0 and ≤ 1e6',
  'example.names': 'a list of distinct term names, one per scale',
  'example.names.*': 'a name of letters, digits, "_" or "-"',
  'example.hidden': 'an integer from 1 to 1024',
  'example.samples': 'an integer from 1 to 100000',
  logScale: 'true or false',
};

/**
 * A run folder name: one path segment inside `output`. No separators, and no leading dot, which
 * rules out `.` and `..` (the output folder itself and its parent) and hidden folders.
 */
const NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

/** The schema of a run config file. */
export const RunConfigSchema = z.strictObject({
  name: z.optional(z.string().check(z.regex(NAME))),
  strategy: z.union([z.string().check(z.minLength(1)), z.looseObject({ name: z.string().check(z.minLength(1)) })]),
  steps: z._default(z.number().check(z.int(), z.minimum(1), z.maximum(100_000)), 200),
  lr: z._default(z.number().check(z.gt(0), z.maximum(10)), 0.01),
  seed: z._default(z.number().check(z.int(), z.minimum(0), z.maximum(2_147_483_647)), 1),
  output: z._default(z.string().check(z.minLength(1)), 'runs'),
  backend: z._default(z.enum(['auto', 'tensorflow', 'wasm', 'cpu']), 'auto'),
  example: z._default(
    z.strictObject({
      scales: z._default(z.array(z.number().check(z.gt(0), z.maximum(1e6))).check(z.minLength(1), z.maxLength(16)), [1, 10, 100]),
      names: z.optional(z.array(z.string().check(z.regex(/^[A-Za-z0-9_-]+$/)))),
      hidden: z._default(z.number().check(z.int(), z.minimum(1), z.maximum(1024)), 16),
      samples: z._default(z.number().check(z.int(), z.minimum(1), z.maximum(100_000)), 64),
    }),
    { scales: [1, 10, 100], hidden: 16, samples: 64 },
  ),
  logScale: z._default(z.boolean(), true),
});

/** A validated run config, defaults filled. */
export type RunConfig = z.infer<typeof RunConfigSchema> & { name: string };

/** A config file failed validation. The message names the file, the field, the value and what is allowed. */
export class ConfigError extends BalancerError {
  constructor(
    readonly file: string,
    readonly field: string,
    readonly value: unknown,
    readonly allowed: string,
  ) {
    // An option error from the registry already reads "<problem>; allowed: <rule>".
    const rule = /(^|; )allowed: /.test(allowed) ? allowed : `allowed: ${allowed}`;
    super(`config ${file}: field "${field}" ${value === undefined ? 'is missing' : `got ${describeValue(value)}`}; ${rule}`);
    this.name = 'ConfigError';
  }
}

function valueAt(raw: unknown, path: readonly PropertyKey[]): unknown {
  return path.reduce<unknown>((v, k) => (v !== null && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[k] : undefined), raw);
}

/** Validate a parsed config object. `file` is only used in error messages. */
export function validateRunConfig(raw: unknown, file = '(config)'): RunConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(file, '(root)', raw, 'an object with fields strategy, steps, lr, seed, output, example');
  }
  // Iteratively, before the recursive schema checks (a 200,000-deep file overflowed the stack).
  const deep = valueDepthExceeded(raw, MAX_CONFIG_DEPTH);
  if (deep) throw new ConfigError(file, shortPath(deep), '(nested)', `at most ${MAX_CONFIG_DEPTH} levels of nesting`);
  const res = safeParse(RunConfigSchema, raw);
  if (!res.success) {
    const issue = res.error.issues[0];
    if (issue.code === 'unrecognized_keys') {
      const field = [...issue.path, issue.keys[0]].join('.');
      const parent = issue.path.length ? (RunConfigSchema.shape as any)[issue.path[0] as string] : null;
      const known = issue.path.length ? Object.keys(parent?.def?.innerType?.shape ?? parent?.shape ?? {}) : Object.keys(RunConfigSchema.shape);
      throw new ConfigError(file, field, valueAt(raw, [...issue.path, issue.keys[0]]), `no such field; known fields: ${known.join(', ')}`);
    }
    const path = issue.path.map(String);
    const key = path.join('.');
    const generic = path.map((p) => (/^\d+$/.test(p) ? '*' : p)).join('.');
    const allowed = CONFIG_FIELDS[key] ?? CONFIG_FIELDS[generic] ?? issue.message;
    throw new ConfigError(file, key || '(root)', valueAt(raw, issue.path), allowed);
  }
  const cfg = res.data;
  const { scales, names } = cfg.example;
  if (names && (names.length !== scales.length || new Set(names).size !== names.length)) {
    throw new ConfigError(file, 'example.names', names, `${scales.length} distinct names, one per scale`);
  }
  const strategyName = typeof cfg.strategy === 'string' ? cfg.strategy : cfg.strategy.name;
  checkRunStrategy(cfg.strategy, file);
  return { ...cfg, name: cfg.name ?? strategyName.replace(/[^A-Za-z0-9._-]/g, '_') };
}

/**
 * Check a run's `strategy` field with the registry (for `auto`: its options and every candidate and
 * family spec). Throws a {@link ConfigError} naming `file` and the field (`strategy.alpha`,
 * `strategy.candidates.1.alpha`).
 */
export function checkRunStrategy(strategy: RunConfig['strategy'], file = '(config)'): void {
  const cfg = { strategy };
  const strategyName = typeof cfg.strategy === 'string' ? cfg.strategy : cfg.strategy?.name;
  // The strategy and its options are checked by the registry (errors name the option).
  try {
    // `auto` (strategy selection, src/train/auto.ts) is not a registered strategy; its options are checked here.
    if (!parseAuto(cfg.strategy, checkSpec)) create(cfg.strategy as Parameters<typeof create>[0]);
  } catch (e) {
    if (e instanceof OptionError) throw new ConfigError(file, `strategy.${e.field}`, e.value, e.allowed);
    const msg = (e as Error).message;
    const unknown = /^unknown strategy "[^"]*"; (.*)$/.exec(msg);
    throw new ConfigError(file, unknown || typeof cfg.strategy === 'string' ? 'strategy' : 'strategy.name', strategyName, unknown ? unknown[1] : msg);
  }
}

/** Read and validate a config file (`.json`, `.yaml` or `.yml`; other names are tried as JSON, then YAML). */
export function loadRunConfig(file: string): RunConfig {
  if (!existsSync(file)) throw new ConfigError(file, '(file)', file, 'an existing JSON or YAML file');
  if (statSync(file).isDirectory()) throw new ConfigError(file, '(file)', file, `a JSON or YAML file; ${file} is a folder`);
  const text = readFileSync(file, 'utf8');
  const ext = extname(file).toLowerCase();
  const deep = textDepthExceeded(text, MAX_CONFIG_DEPTH);
  if (deep) throw new ConfigError(file, deep.path.length ? shortPath(deep.path) : '(file)', `[ or { at line ${deep.line}, column ${deep.column}`, `at most ${MAX_CONFIG_DEPTH} levels of nesting`);
  let raw: unknown;
  try {
    raw = ext === '.json' ? JSON.parse(text) : ext === '.yaml' || ext === '.yml' ? parseYaml(text) : tryBoth(text);
  } catch (e) {
    const first = (e as Error).message.split('\n')[0];
    // Block-style YAML nests by indentation, which the bracket scan above does not see.
    const deepYaml = /^Maximum call stack size exceeded(.*)$/.exec(first);
    if (deepYaml) throw new ConfigError(file, '(file)', `nesting${deepYaml[1].replace(/:$/, '')}`, `at most ${MAX_CONFIG_DEPTH} levels of nesting`);
    throw new ConfigError(file, '(file)', `${text.slice(0, 40)}${text.length > 40 ? '…' : ''}`, `valid ${ext === '.json' ? 'JSON' : 'YAML or JSON'} (${first})`);
  }
  return validateRunConfig(raw, file);
}

function tryBoth(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return parseYaml(text);
  }
}

/**
 * The run folder `<output>/<name>`, resolved, after checking that it is a folder strictly inside
 * `output`: `name` must be one path segment ({@link RunConfigSchema}'s rule), and when the folder
 * already exists its real path (symlinks followed) must still lie inside the real `output`. Throws a
 * {@link BalancerError} naming the name and both folders otherwise. Nothing is created.
 */
export function runFolder(output: string, name: string): string {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new BalancerError(`run folder name ${JSON.stringify(name)} is not allowed; allowed: ${CONFIG_FIELDS.name}`);
  }
  const root = resolve(output);
  const dir = resolve(root, name);
  checkInside(root, dir, `run folder "${name}"`);
  if (existsSync(dir) && existsSync(root)) checkInside(realpathSync(root), realpathSync(dir), `run folder "${name}" (${dir})`);
  return dir;
}

/** The charts a run can write (`plots/<name>`). */
const CHART_FILES = ['alpha', 'loss', 'weighted', 'gradnorm'].flatMap((q) => [`${q}.svg`, `${q}.png`]);

/**
 * Throw an `UnsafePathError` (src/node/safe-file.ts) when a name {@link runExample} writes inside
 * the run folder `dir` is a symbolic link, a hard-linked file or the wrong kind of entry: checked
 * before anything is written or trained, so a planted link is reported and not followed. The writes
 * themselves are opened without following links too.
 */
export function checkRunFiles(dir: string): void {
  for (const f of ['config.json', 'trajectory.jsonl', 'report.html']) refuseLink(join(dir, f));
  for (const d of ['plots', 'auto']) refuseLink(join(dir, d), 'dir');
  if (existsSync(join(dir, 'plots'))) for (const f of CHART_FILES) refuseLink(join(dir, 'plots', f));
}

/** Throw unless `path` (resolved) lies strictly inside `root` (resolved). */
function checkInside(root: string, path: string, what: string): void {
  const rel = relative(root, path);
  if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    throw new BalancerError(`${what} resolves to ${path}, which is outside the output folder ${root}; refusing to write there`);
  }
}

/**
 * Throw a {@link MissingPeerError} (naming every missing plotting peer and the `npm install`
 * command) when a run could not write its charts and report: {@link runExample} always writes both,
 * so it checks this before it trains or creates anything. Resolution only, nothing is loaded.
 * `resolve` is replaceable for tests (see {@link missingPeers}).
 */
export function checkRunPeers(resolve?: (spec: string) => unknown): void {
  const missing = missingPeers(resolve);
  if (missing.length) throw new MissingPeerError(missing);
}

/** What {@link runExample} reports after each step. */
export interface RunProgress {
  step: number;
  total: number;
  record: StepRecord;
}

/** What {@link runExample} returns. */
export interface RunResult {
  /** The run folder. */
  dir: string;
  /** Every step record. */
  records: StepRecord[];
  /** The files written, by kind. */
  files: { trajectory: string; events: string; config: string; report: string; plots: string[] };
  /** The backend used. */
  backend: string;
}

/**
 * Train the toy problem as the config says and write the run folder. Event files of an earlier run of
 * the same name are removed first, so TensorBoard shows this run only.
 * @param resolvePeer How the optional plotting peers are found (default: Node's resolution from this
 *   package); replaceable for tests.
 * @throws MissingPeerError before training, with nothing created, when a plotting peer
 *   (`vega`, `vega-lite`, `@resvg/resvg-js`) is not installed: the run ends with charts and a report.
 */
export async function runExample(cfg: RunConfig, onStep?: (p: RunProgress) => void, resolvePeer?: (spec: string) => unknown): Promise<RunResult> {
  // The charts and report come last: fail before the steps are paid for, not after.
  checkRunPeers(resolvePeer);
  const tf = await import('@tensorflow/tfjs');
  const { initBackend } = await import('../train/backend.js');
  const { makeToyProblem } = await import('../train/toy.js');
  const { BalancedTrainer } = await import('../train/trainer.js');
  const { JsonlSink } = await import('./sinks.js');
  const { TensorBoardSink } = await import('./tensorboard.js');
  const { writePlots } = await import('../viz/plot.js');
  const { report } = await import('../viz/report.js');

  // Checked before anything is written (the config may have been built in code, or `--out` given).
  checkRunStrategy(cfg.strategy);
  const dir = runFolder(cfg.output, cfg.name);
  if (existsSync(dir)) checkRunFiles(dir);
  const backend = await initBackend(cfg.backend);
  mkdirSync(dir, { recursive: true });
  runFolder(cfg.output, cfg.name); // again, now that it exists: a symlink must not lead outside
  // Every file written below is a fixed name inside `dir`; `inside` re-checks each one.
  const inside = (...parts: string[]) => {
    const p = resolve(dir, ...parts);
    checkInside(dir, p, `file ${parts.join('/')}`);
    return p;
  };
  for (const f of readdirSync(dir)) if (f.startsWith('events.out.tfevents.')) rmSync(inside(f));
  const configPath = inside('config.json');
  writeFileSafe(configPath, `${JSON.stringify(cfg, null, 2)}\n`);

  const toy = makeToyProblem({ ...cfg.example, seed: cfg.seed });
  const jsonl = new JsonlSink(inside('trajectory.jsonl'));
  const tb = new TensorBoardSink(dir);
  const optimizer = tf.train.adam(cfg.lr);
  const trainer = new BalancedTrainer({
    terms: toy.terms,
    optimizer,
    balancer: cfg.strategy as Parameters<typeof create>[0],
    variables: toy.variables,
    shared: toy.shared,
    sinks: [jsonl, tb],
    totalSteps: cfg.steps, // auto sizes its selection to the run
    meta: { name: cfg.name, example: 'toy multi-head regression', scales: cfg.example.scales, steps: cfg.steps, lr: cfg.lr, seed: cfg.seed },
  });
  try {
    for (let i = 0; i < cfg.steps; i++) {
      trainer.step();
      onStep?.({ step: i + 1, total: cfg.steps, record: trainer.history.last! });
    }
  } finally {
    await trainer.close();
    optimizer.dispose();
    toy.dispose();
  }
  const records = trainer.history.records;
  const plotDir = inside('plots');
  ensureDir(plotDir); // a real folder, not a link planted while the run trained
  const charts = await writePlots(records, plotDir, { log: cfg.logScale });
  const plots = Object.keys(charts).flatMap((q) => [join(plotDir, `${q}.svg`), join(plotDir, `${q}.png`)]);
  const { path: reportPath } = await report(dir, { log: cfg.logScale, out: inside('report.html') });
  return { dir, records, backend, files: { trajectory: jsonl.path, events: tb.path!, config: configPath, report: reportPath, plots } };
}
