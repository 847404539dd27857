#!/usr/bin/env node
/**
 * The `loss-balancer` command line:
 *
 * - `loss-balancer list`: the strategies, one line each;
 * - `loss-balancer demo`: the VAE demo (equal weights vs automatic balancing);
 * - `loss-balancer run <config.json|yaml>`: train the shipped toy problem with a strategy from a
 *   validated config file, writing JSONL, TensorBoard events, charts and an HTML report;
 * - `loss-balancer report <run-dir>`: the HTML report of a run;
 * - `loss-balancer diagnose <trajectory>`: explain a trajectory.
 *
 * Every subcommand has `--help`. Errors print one line naming what is wrong and exit with code 1.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { list } from '../core/registry.js';
import type { DiagnoseOptions } from '../core/diagnose.js';

function version(): string {
  for (const rel of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'loss-balancer' && pkg.version) return pkg.version;
    } catch {
      // try the next place
    }
  }
  return '0.0.0';
}

/** Print an error line and set a failing exit code. */
function fail(message: string, code = 1): void {
  process.stderr.write(`loss-balancer: ${message}\n`);
  process.exitCode = code;
}

/** Build the command tree (exported for tests and embedding). */
export function buildCli(): Command {
  const program = new Command();
  program
    .name('loss-balancer')
    .description('Automatic balancing of multi-term losses for TensorFlow.js: train, log and inspect alpha trajectories.')
    .version(version())
    .showHelpAfterError('(add --help for usage)');

  program
    .command('list')
    .description('list the available strategies, one line each')
    .option('--json', 'print JSON instead of a table')
    .option('--caveats', 'also print, under each strategy, where its defaults are a poor first choice and why')
    .action((opts: { json?: boolean; caveats?: boolean }) => {
      const all = list();
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(all, null, 2)}\n`);
        return;
      }
      const w = all.reduce((m, s) => Math.max(m, s.name.length), 0);
      const r = all.reduce((m, s) => Math.max(m, s.reads.length), 0);
      for (const s of all) {
        const mark = s.caveats && !opts.caveats ? ' (caveat: list --caveats)' : '';
        process.stdout.write(`${s.name.padEnd(w)}  ${s.reads.padEnd(r)}  ${s.summary}${mark}\n`);
        if (opts.caveats) for (const c of s.caveats ?? []) process.stdout.write(`${''.padEnd(w + r + 4)}caveat: ${c}\n`);
      }
    });

  program
    .command('demo')
    .description('run the VAE demo: equal weights vs automatic balancing, printing what the balancer found')
    .option('--quick', 'a short run (200 steps per strategy)')
    .option('--steps <n>', 'training steps per strategy', (v) => parsePositiveInt(v, '--steps'))
    .option('--out <dir>', 'where the trajectories go', 'runs/demo')
    .action(async (opts: { quick?: boolean; steps?: number; out: string }) => {
      if (!opts.out) {
        fail('demo: --out got ""; allowed: a non-empty folder path (the trajectories would land in the current folder)');
        return;
      }
      const mod = await importOptional<{ runDemo?: (o: Record<string, unknown>) => Promise<unknown> }>(['./demo.js', '../../examples/demo.js']);
      if (!mod || typeof mod.runDemo !== 'function') {
        fail('the demo is not available in this build (no runDemo export in src/node/demo.ts or examples/demo.ts); from a source checkout run `npm run demo`');
        return;
      }
      await mod.runDemo({ steps: opts.steps ?? (opts.quick ? 200 : undefined), outDir: opts.out });
    });

  program
    .command('run')
    .description('train the shipped toy problem (multi-head regression) with the strategy and options of a config file')
    .argument('<config>', 'a .json, .yaml or .yml config file')
    .option('--steps <n>', 'override the config\'s steps', (v) => parsePositiveInt(v, '--steps'))
    .option('--out <dir>', 'override the config\'s output folder')
    .addOption(new Option('--progress <mode>', 'progress display').choices(['auto', 'bar', 'plain', 'none']).default('auto'))
    .addHelpText(
      'after',
      `
Config fields (JSON or YAML):
  strategy   a name, or { name, ...options }    e.g. { "name": "gradnorm", "alpha": 1.5 }
  name       run folder name                     default: the strategy name
  steps      1..100000                           default 200
  lr         Adam learning rate, (0, 10]         default 0.01
  seed       0..2147483647                       default 1
  output     parent folder of the run            default "runs"
  backend    auto | tensorflow | wasm | cpu      default auto
  example    { scales: [1, 10, 100], names?, hidden: 16, samples: 64 }
  logScale   log-scale charts                    default true
Writes <output>/<name>/: trajectory.jsonl, events.out.tfevents.*, config.json, plots/, report.html`,
    )
    .action(async (file: string, opts: { steps?: number; out?: string; progress: string }) => {
      const { checkRunPeers, loadRunConfig, runExample } = await import('./run.js');
      const cfg = loadRunConfig(file);
      checkRunPeers(); // before the progress display starts (runExample checks again)
      if (opts.steps) cfg.steps = opts.steps;
      if (opts.out) cfg.output = opts.out;
      const { createProgress } = await import('./progress.js');
      const progress =
        opts.progress === 'none'
          ? null
          : createProgress(cfg.steps, cfg.name, opts.progress === 'auto' ? {} : { plain: opts.progress === 'plain' });
      let result;
      try {
        result = await runExample(cfg, (p) => progress?.update(p.step, p.record));
      } finally {
        progress?.stop();
      }
      const { summarize } = await import('../core/summary.js');
      const { readJsonl } = await import('./sinks.js');
      const written = readJsonl(result.files.trajectory);
      process.stdout.write(`${summarize(result.records, written.meta, written.tournament)}\n`);
      process.stdout.write(
        [
          `run folder: ${result.dir}`,
          `  trajectory   ${result.files.trajectory}`,
          `  tensorboard  ${result.files.events}   (tensorboard --logdir ${cfg.output})`,
          `  report       ${result.files.report}`,
          `  plots        ${result.files.plots.filter((p) => p.endsWith('.png')).join(', ')}`,
        ].join('\n') + '\n',
      );
    });

  program
    .command('report')
    .description('write a self-contained HTML report (config, charts, alpha table, diagnosis) for a run')
    .argument('<run-dir>', 'a run folder (with trajectory.jsonl) or a .jsonl trajectory')
    .option('--linear', 'linear instead of log-scale y axes')
    .option('--out <file>', 'where to write the page (default: report.html in the run folder)')
    .action(async (dir: string, opts: { linear?: boolean; out?: string }) => {
      const { report } = await import('../viz/report.js');
      const { path } = await report(dir, { log: !opts.linear, out: opts.out });
      process.stdout.write(`${path}\n`);
    });

  program
    .command('diagnose')
    .description('explain a trajectory: what each alpha did, whether the weights settled, fixed weights that reproduce the run')
    .argument('<trajectory>', 'a .jsonl trajectory or a run folder')
    .option('--tail <fraction>', 'fraction of the steps, from the end, judged as "the end" (diagnose default 0.2)', (v) => parseFraction(v, '--tail'))
    .option('--reference <term>', 'express ratios against this term')
    .option('--json', 'print the whole diagnosis as JSON')
    .action(async (path: string, opts: { tail?: number; reference?: string; json?: boolean }) => {
      const { findTrajectory } = await import('../viz/report.js');
      const { diagnoseJsonl } = await import('./sinks.js');
      const { summarizeTournament } = await import('../core/tournament.js');
      const options: DiagnoseOptions = {};
      if (opts.tail !== undefined) options.tail = opts.tail;
      if (opts.reference !== undefined) options.reference = opts.reference;
      // streamed, never held in memory: a run of any length. An `auto` run: the trajectory it
      // followed is diagnosed, and the tournament is printed after.
      const { diagnosis, tornLastLine, tournament } = diagnoseJsonl(findTrajectory(path, 'diagnose'), options);
      if (tornLastLine) process.stderr.write('note: the last line was incomplete (killed run?) and was dropped\n');
      const tail = tournament ? `\n${summarizeTournament(tournament)}` : '';
      process.stdout.write(opts.json ? `${JSON.stringify(tournament ? { ...diagnosis, tournament } : diagnosis, null, 2)}\n` : `${diagnosis.text}${tail}\n`);
    });

  return program;
}

function parseFraction(v: string, flag: string): number {
  const n = Number(v);
  if (!(n > 0 && n <= 1)) throw new Error(`${flag} got "${v}"; allowed: a number in (0, 1]`);
  return n;
}

function parsePositiveInt(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} got "${v}"; allowed: a positive integer`);
  return n;
}

/** Import the first of `specs` that exists; `null` when none does (other errors propagate). */
async function importOptional<T>(specs: string[]): Promise<T | null> {
  for (const spec of specs) {
    try {
      return (await import(/* @vite-ignore */ spec)) as T;
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === 'ERR_MODULE_NOT_FOUND' || /Cannot find module/.test(String((e as Error)?.message))) continue;
      throw e;
    }
  }
  return null;
}

/** Run the CLI on `argv` (default: the process's). */
export async function main(argv: string[] = process.argv): Promise<void> {
  // `loss-balancer list | head`: a closed pipe ends the program quietly.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  try {
    await buildCli().parseAsync(argv);
  } catch (e) {
    fail((e as Error)?.message ?? String(e));
  }
}

const invoked = process.argv[1] ?? '';
if (/(^|[\\/])(cli\.(ts|js)|loss-balancer)$/.test(invoked) || import.meta.url === `file://${invoked}`) {
  await main();
}
