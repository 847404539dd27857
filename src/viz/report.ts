/**
 * `report(runDir)`: one self-contained HTML page about a run, to open in a browser or send to a
 * colleague: the run's configuration and backend (from the JSONL meta line), alpha and loss charts
 * (inline SVG), a table of start / end / mean alphas per term, and the diagnosis text. No scripts, no
 * external assets. The charts need the optional peer dependencies `vega` and `vega-lite`
 * (`npm install vega vega-lite @resvg/resvg-js` installs everything plots and reports use); without
 * them `report()` throws an error naming them.
 *
 * @example
 * ```ts
 * import { report } from 'loss-balancer/report';
 * const { path } = await report('runs/gradnorm');   // writes runs/gradnorm/report.html
 * ```
 * @module
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { writeFileSafe } from '../node/safe-file.js';
import { basename, dirname, join } from 'node:path';
import type { RunMeta, StepRecord } from '../core/history.js';
import { defaultQuantities, plotSvg, termsOf, type Quantity } from './plot.js';
import { diagnoseJsonl, streamJsonl, type Trajectory } from '../node/sinks.js';
import { diagnose } from '../core/diagnose.js';
import { fmt, summarizeData } from '../core/summary.js';
import { followedTrajectory, summarizeTournament, type Tournament } from '../core/tournament.js';

/** The file name `report()` writes in the run folder. */
export const REPORT_FILE = 'report.html';
/** The trajectory file name the CLI writes and `report()` looks for first. */
export const TRAJECTORY_FILE = 'trajectory.jsonl';

/**
 * The trajectory file of a run folder: `trajectory.jsonl`, else the only `*.jsonl` in it. A file path
 * is returned as is. `command` (default `'report'`) prefixes the errors, naming who asked (the CLI's
 * `diagnose` passes `'diagnose'`).
 * @throws Error naming the command and the path: it does not exist, holds no trajectory, or several.
 */
export function findTrajectory(runDirOrFile: string, command = 'report'): string {
  if (!existsSync(runDirOrFile)) throw new Error(`${command}: "${runDirOrFile}" does not exist (give a .jsonl trajectory or a run folder holding one)`);
  if (statSync(runDirOrFile).isFile()) return runDirOrFile;
  const preferred = join(runDirOrFile, TRAJECTORY_FILE);
  if (existsSync(preferred)) return preferred;
  const jsonl = readdirSync(runDirOrFile).filter((f) => f.endsWith('.jsonl'));
  if (jsonl.length === 1) return join(runDirOrFile, jsonl[0]);
  if (jsonl.length === 0) throw new Error(`${command}: no ${TRAJECTORY_FILE} (or other .jsonl trajectory) in "${runDirOrFile}"`);
  throw new Error(`${command}: "${runDirOrFile}" holds several trajectories (${jsonl.join(', ')}); pass one file`);
}

/** Options of {@link renderReport} and {@link report}. */
export interface ReportOptions {
  /** Page title. @default "loss-balancer run: <name> (<strategy>)", from the meta line */
  title?: string;
  /** Log-scale y axes. @default true */
  log?: boolean;
  /** Charts to include. @default alpha, loss (+ gradnorm when logged) */
  quantities?: Quantity[];
  /** Diagnosis text; `undefined` runs `diagnose` on the trajectory, `null` leaves the section out (a placeholder says so). */
  diagnosis?: string | null;
  /**
   * Most step records kept for the charts when {@link report} streams a file: every k-th step, k doubling
   * as the run grows, plus the last (a chart shows at most `maxPoints` anyway). @default 4000
   */
  maxRecords?: number;
}

const esc = (s: unknown): string =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/**
 * A value read from the trajectory, for a table cell: a number formatted by `fmt`, anything else
 * (a string in a hand-edited or hostile file) escaped as text. Every value from the file is escaped.
 */
const num = (x: unknown): string => esc(typeof x === 'number' ? fmt(x) : String(x));

/** Make ids inside one inline SVG unique on the page. */
function scopeSvg(svg: string, prefix: string): string {
  return svg
    .replace(/\bid="([^"]+)"/g, (_, id) => `id="${prefix}-${id}"`)
    .replace(/url\(#([^)]+)\)/g, (_, id) => `url(#${prefix}-${id})`)
    .replace(/href="#([^"]+)"/g, (_, id) => `href="#${prefix}-${id}"`)
    .replace(/^<svg /, `<svg role="img" aria-label="${prefix} chart" `);
}

function configRows(meta: RunMeta | null, count: number, skipped: number, tournament?: Tournament): [string, string][] {
  const rows: [string, string][] = [];
  if (!meta) {
    rows.push(['meta', 'no meta line in the trajectory']);
  } else {
    rows.push(['strategy', String(meta.strategy)]);
    rows.push(['options', JSON.stringify(meta.options ?? {})]);
    rows.push(['terms', (meta.terms ?? []).join(', ')]);
    rows.push(['backend', String(meta.backend)]);
    const reads = meta.strategy === 'auto'
      ? tournament?.gradients
        ? `${tournament.gradients} (the winner, ${tournament.winner}); each candidate read its own during the selection`
        : 'per candidate (no winner was picked)'
      : String(meta.gradients);
    rows.push(['gradients read', reads]);
    rows.push(['started', String(meta.startedAt)]);
    const known = new Set(['strategy', 'options', 'terms', 'backend', 'gradients', 'startedAt']);
    for (const [k, v] of Object.entries(meta)) if (!known.has(k)) rows.push([k, typeof v === 'string' ? v : JSON.stringify(v)]);
  }
  rows.push(['steps recorded', `${count}${skipped ? ` (${skipped} skipped)` : ''}`]);
  return rows;
}

/** The diagnosis text of a run, or a sentence saying why there is none (diagnose's own error). */
function diagnosisText(run: () => string): string {
  try {
    return run();
  } catch (e) {
    return `diagnose could not explain this run: ${(e as Error).message}`;
  }
}

/** What the page is made of; {@link renderReport} takes it from records in memory, {@link report} from a streamed file. */
interface PageParts {
  meta: RunMeta | null;
  tornLastLine: boolean;
  /** Records for the charts (all of them, or a bounded sample). */
  sample: readonly StepRecord[];
  count: number;
  summary: ReturnType<typeof summarizeData> | null;
  diagnosis: string | null;
  /** An `auto` run's tournament. */
  tournament?: Tournament;
}

const CSS = `
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
main{max-width:960px;margin:0 auto;padding:24px}
h1{font-size:1.5em;margin:0 0 4px}h2{font-size:1.15em;margin:28px 0 8px;border-bottom:1px solid #dde1e6;padding-bottom:4px}
.sub{color:#5b6472;margin:0 0 16px}
table{border-collapse:collapse;background:#fff;min-width:50%}
th,td{border:1px solid #dde1e6;padding:4px 10px;text-align:left;vertical-align:top}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
code,.mono{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:.92em}
figure{margin:12px 0;background:#fff;border:1px solid #dde1e6;padding:8px;overflow-x:auto}
figure svg{max-width:100%;height:auto}
pre{background:#fff;border:1px solid #dde1e6;padding:10px;white-space:pre-wrap}
.placeholder{color:#5b6472;font-style:italic}
footer{margin-top:32px;color:#5b6472;font-size:.85em}
`;

/** The report page for a trajectory held in memory, as an HTML string. */
export async function renderReport(trajectory: Trajectory, options: ReportOptions = {}): Promise<string> {
  const { meta } = trajectory;
  // With an `auto` selection: the trajectory the run followed (the winner's trial steps, then the run).
  const records = trajectory.records.some((r) => r.candidate !== undefined) ? followedTrajectory(trajectory.records, trajectory.tournament) : trajectory.records;
  const summary = records.length ? summarizeData(records) : null;
  let diagnosis = options.diagnosis;
  if (diagnosis === undefined) diagnosis = records.length ? diagnosisText(() => diagnose(records, meta ? { meta } : {}).text) : null;
  return renderPage({ meta, tornLastLine: trajectory.tornLastLine, sample: records, count: records.length, summary, diagnosis, tournament: trajectory.tournament }, options);
}

async function renderPage(parts: PageParts, options: ReportOptions): Promise<string> {
  const { meta, sample, summary, diagnosis, count } = parts;
  const log = options.log ?? true;
  const runName = typeof meta?.name === 'string' && meta.name !== meta.strategy ? `${meta.name} (${meta.strategy})` : meta?.strategy;
  const title = options.title ?? `loss-balancer run: ${runName ?? 'unknown strategy'}`;
  const terms = meta?.terms?.length ? meta.terms : termsOf(sample);

  const charts: string[] = [];
  if (sample.length) {
    for (const q of options.quantities ?? defaultQuantities(sample)) {
      const svg = await plotSvg(sample, { quantity: q, log, width: 720, height: 260 });
      charts.push(`<figure id="chart-${q}">${scopeSvg(svg, `chart-${q}`)}</figure>`);
    }
  }

  let table = '<p class="placeholder">No steps were recorded.</p>';
  if (summary) {
    const { terms: rows, reference } = summary;
    table = `<table id="alphas"><thead><tr><th>term</th><th class="num">alpha start</th><th class="num">alpha end</th><th class="num">alpha mean</th><th class="num">end ÷ ${esc(reference)}</th><th class="num">loss start</th><th class="num">loss end</th></tr></thead><tbody>${rows
      .map(
        (t) =>
          `<tr><td class="term">${esc(t.term)}</td><td class="num">${num(t.start)}</td><td class="num">${num(t.end)}</td><td class="num">${num(t.mean)}</td><td class="num">${num(t.ratio)}×</td><td class="num">${num(t.lossStart)}</td><td class="num">${num(t.lossEnd)}</td></tr>`,
      )
      .join('')}</tbody></table>`;
  }

  const diag =
    diagnosis === null || diagnosis === undefined
      ? `<p class="placeholder">${count ? 'No diagnosis (turned off by the caller).' : 'No diagnosis: no steps were recorded.'}</p>`
      : `<pre>${esc(diagnosis)}</pre>`;

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
<h1>${esc(title)}</h1>
<p class="sub">Terms: ${terms.map((t) => `<span class="mono">${esc(t)}</span>`).join(', ')}${parts.tornLastLine ? ' · the last line of the trajectory was incomplete and was dropped' : ''}</p>
<section id="config"><h2>Run</h2>
<table>${configRows(meta, count, summary?.skipped ?? 0, parts.tournament)
    .map(([k, v]) => `<tr><th>${esc(k)}</th><td class="mono">${esc(v)}</td></tr>`)
    .join('')}</table></section>
<section id="plots"><h2>Trajectories</h2>
${charts.join('\n') || '<p class="placeholder">Nothing to plot.</p>'}
</section>
<section id="summary"><h2>Alphas per term</h2>
${table}
</section>
${parts.tournament ? tournamentSection(parts.tournament) : ''}<section id="diagnosis"><h2>Diagnosis</h2>
${diag}
</section>
<footer>Written by loss-balancer${meta?.startedAt ? ` for the run started ${esc(meta.startedAt)}` : ''}.</footer>
</main>
</body>
</html>
`;
}

/** The `auto` selection: one row per candidate, its score per round, the winner and the cost. */
function tournamentSection(t: Tournament): string {
  const pr = t.probation && typeof t.probation === 'object' ? t.probation : null;
  const rounds = t.rounds.map((_, i) => `<th class="num">${pr && pr.round === i ? 'probation' : `round ${i + 1}`}</th>`).join('');
  const rows = t.candidates
    .map((c) => {
      const cells = t.rounds.map((_, i) => `<td class="num">${i < c.scores.length && c.scores[i] !== null ? num(c.scores[i]) : ''}</td>`).join('');
      const status = c.label === t.winner ? '<b>winner</b>' : pr && pr.outcome === 'fell back' && pr.candidate === c.label ? 'fell behind in probation' : c.failed ? `failed: ${esc(c.failed)}` : c.droppedAfter !== undefined ? `dropped after round ${esc(typeof c.droppedAfter === 'number' ? c.droppedAfter + 1 : c.droppedAfter)}` : '';
      return `<tr><td class="term">${esc(c.label)}</td><td>${esc(c.family)}</td>${cells}<td>${status}</td></tr>`;
    })
    .join('');
  const text = summarizeTournament(t).split('\n');
  return `<section id="auto"><h2>Strategy selection (auto)</h2>
<p>${esc(text[0])}</p>
<table id="tournament"><thead><tr><th>candidate</th><th>family</th>${rounds}<th>status</th></tr></thead><tbody>${rows}</tbody></table>
<p>${esc(text.slice(-2).join(' · '))}</p>
</section>
`;
}

/**
 * One streamed pass over a trajectory file: meta, counts, the summary table, and a bounded sample of
 * records for the charts (every k-th step, k doubling whenever the sample reaches 2 × `maxRecords`,
 * plus the last step).
 */
function scanTrajectory(file: string, maxRecords: number): Omit<PageParts, 'diagnosis'> {
  let meta: RunMeta | null = null;
  // An `auto` run: its final tournament decides which candidate records belong to the followed trajectory.
  let tournament: Tournament | undefined;
  for (const item of streamJsonl(file, { candidates: true })) if (item.kind === 'tournament') tournament = item.tournament;
  const keep = tournament?.winner ?? 'equal';
  let tornLastLine = false;
  let count = 0;
  let stride = 1;
  let sample: { i: number; r: StepRecord }[] = [];
  let last: { i: number; r: StepRecord } | null = null;
  const steps = function* (): Generator<StepRecord> {
    for (const item of streamJsonl(file, { candidates: true })) {
      if (item.kind === 'meta') meta ??= item.meta;
      else if (item.kind === 'torn') tornLastLine = true;
      else if (item.kind === 'step' && (item.record.candidate === undefined || item.record.candidate === keep)) {
        const i = count++;
        last = { i, r: item.record };
        if (i % stride === 0) {
          sample.push(last);
          if (sample.length >= 2 * maxRecords) {
            stride *= 2;
            sample = sample.filter((x) => x.i % stride === 0);
          }
        }
        yield item.record;
      }
    }
  };
  let summary: PageParts['summary'] = null;
  const it = steps();
  const firstStep = it.next();
  if (!firstStep.done) {
    summary = summarizeData((function* () {
      yield firstStep.value;
      yield* it;
    })());
  }
  const l = last as { i: number; r: StepRecord } | null;
  if (l && sample[sample.length - 1]?.i !== l.i) sample.push(l);
  return { meta, tornLastLine, sample: sample.map((x) => x.r), count, summary, ...(tournament ? { tournament } : {}) };
}

/** What {@link report} returns. */
export interface ReportResult {
  /** Where the page was written. */
  path: string;
  /** The page's HTML. */
  html: string;
}

/**
 * Write `report.html` for a run folder (or a trajectory file: the page goes beside it). Returns the
 * page's path and text. The trajectory is streamed (three passes: summary and chart sample, then the
 * two of `diagnose`), so memory stays bounded for a run of any length.
 */
export async function report(runDirOrFile: string, options: ReportOptions & { out?: string } = {}): Promise<ReportResult> {
  const file = findTrajectory(runDirOrFile);
  const maxRecords = options.maxRecords ?? 4000;
  if (!Number.isInteger(maxRecords) || maxRecords < 2) throw new Error(`report: option "maxRecords" got ${maxRecords}; must be an integer >= 2`);
  const parts = scanTrajectory(file, maxRecords);
  let diagnosis = options.diagnosis;
  if (diagnosis === undefined) diagnosis = parts.count ? diagnosisText(() => diagnoseJsonl(file).diagnosis.text) : null;
  const html = await renderPage({ ...parts, diagnosis }, options);
  const path = options.out ?? join(dirname(file), basename(file) === TRAJECTORY_FILE ? REPORT_FILE : `${basename(file, '.jsonl')}.html`);
  writeFileSafe(path, html); // never through a link planted at the name
  return { path, html };
}
