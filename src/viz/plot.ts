/**
 * Plots of a trajectory: one chart per quantity (alpha, raw loss, weighted loss, gradient norm), one
 * line per term with a legend, as SVG (a Vega-Lite spec compiled with `vega-lite` and rendered by
 * `vega`'s headless `View.toSVG()`) and as PNG (the SVG rasterised by `@resvg/resvg-js`).
 * These three packages are optional peer dependencies (`npm install vega vega-lite @resvg/resvg-js`),
 * loaded when the first chart is drawn; without them the drawing functions throw a
 * {@link MissingPeerError} that names them.
 *
 * @example
 * ```ts
 * import { readJsonl } from 'loss-balancer';
 * import { plotSvg, writePlots } from 'loss-balancer/plot';
 * const { records } = readJsonl('runs/demo/trajectory.jsonl');
 * const svg = await plotSvg(records, { quantity: 'alpha', log: true });
 * await writePlots(records, 'runs/demo');   // alpha.svg, alpha.png, loss.svg, loss.png, ...
 * ```
 * @module
 */
import { mkdirSync } from 'node:fs';
import { writeFileSafe } from '../node/safe-file.js';
import { join } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import { loadResvg, loadVega } from './peers.js';
import type { PerTerm, StepRecord } from '../core/history.js';

export { MissingPeerError, PLOT_PEERS } from './peers.js';

/** What a chart shows: the field of {@link StepRecord} per term. */
export type Quantity = 'alpha' | 'loss' | 'weighted' | 'gradnorm';

/** Where a {@link Quantity} comes from and how its axis is titled. */
export interface QuantityInfo {
  /** The per-term field of {@link StepRecord} plotted. */
  field: keyof StepRecord;
  /** Axis and chart title. */
  title: string;
}

/** The quantities, with the record field each reads and its axis title. */
export const QUANTITIES: Readonly<Record<Quantity, QuantityInfo>> = {
  alpha: { field: 'weight', title: 'alpha (weight)' },
  loss: { field: 'loss', title: 'raw loss' },
  weighted: { field: 'weighted', title: 'alpha × loss' },
  gradnorm: { field: 'gradNorm', title: '‖∇ loss‖ (shared)' },
};

/** Options of {@link plotSpec} and {@link plotSvg}. */
export interface PlotOptions {
  /** @default 'alpha' */
  quantity?: Quantity;
  /** Logarithmic y axis; non-positive values are left out (they have no logarithm). @default false */
  log?: boolean;
  /** Plot width in pixels. @default 560 */
  width?: number;
  /** Plot height in pixels. @default 240 */
  height?: number;
  /** Chart title. @default the quantity's title */
  title?: string;
  /** At most this many points per term (longer runs are thinned evenly, last step kept). @default 1000 */
  maxPoints?: number;
}

/** One plotted point. */
export interface PlotPoint {
  /** The record's step. */
  step: number;
  /** The term's name. */
  term: string;
  /** The quantity's value (finite; positive on a log scale). */
  value: number;
}

/** The long-form data of a chart: one row per (kept step, term), finite values only. */
export function plotData(records: readonly StepRecord[], options: PlotOptions = {}): PlotPoint[] {
  const { quantity = 'alpha', log = false, maxPoints = 1000 } = options;
  const field = QUANTITIES[quantity]?.field;
  if (!field) throw new Error(`plot: unknown quantity "${quantity}"; use one of ${Object.keys(QUANTITIES).join(', ')}`);
  if (!Number.isInteger(maxPoints) || maxPoints < 2) throw new Error(`plot: option "maxPoints" got ${maxPoints}; must be an integer ≥ 2`);
  const stride = Math.max(1, Math.ceil(records.length / maxPoints));
  const out: PlotPoint[] = [];
  records.forEach((r, i) => {
    if (i % stride !== 0 && i !== records.length - 1) return;
    const per = r[field] as PerTerm | undefined;
    if (!per) return;
    for (const [term, value] of Object.entries(per)) {
      if (!Number.isFinite(value) || (log && value <= 0)) continue;
      out.push({ step: r.step, term, value });
    }
  });
  return out;
}

/** The term names of a trajectory, in first-seen order. */
export function termsOf(records: readonly StepRecord[]): string[] {
  const seen = new Set<string>();
  for (const r of records) for (const k of Object.keys(r.loss)) seen.add(k);
  return [...seen];
}

/** The Vega-Lite spec of one chart (a line per term, colour legend by term). */
export function plotSpec(records: readonly StepRecord[], options: PlotOptions = {}): TopLevelSpec {
  const { quantity = 'alpha', log = false, width = 560, height = 240 } = options;
  const info = QUANTITIES[quantity];
  const data = plotData(records, options);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: options.title ?? `${info?.title ?? quantity}${log ? ' (log scale)' : ''}`,
    width,
    height,
    background: 'white',
    data: { values: data },
    mark: { type: 'line', strokeWidth: 1.75, interpolate: 'linear' },
    encoding: {
      x: { field: 'step', type: 'quantitative', title: 'step' },
      y: {
        field: 'value',
        type: 'quantitative',
        title: info?.title ?? quantity,
        scale: log ? { type: 'log' } : { zero: false },
      },
      // The legend order as the scale's domain, not as a custom `sort` array: vega-lite compiles that
      // into an object lookup keyed by the values, which breaks on terms named like Object.prototype
      // members (`constructor`, `toString`: "Operator not defined: undefined").
      color: { field: 'term', type: 'nominal', title: 'term', scale: { domain: termsOf(records) } },
    },
    config: { font: 'DejaVu Sans, Liberation Sans, Arial, sans-serif', view: { stroke: '#ccc' } },
  } as TopLevelSpec;
}

/**
 * Render a Vega-Lite spec to an SVG string, headless.
 *
 * @throws MissingPeerError when the optional peers `vega` / `vega-lite` are not installed.
 */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const { vega, vegaLite } = await loadVega();
  const vg = vegaLite.compile(spec).spec;
  const view = new vega.View(vega.parse(vg), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** One chart as SVG. */
export async function plotSvg(records: readonly StepRecord[], options: PlotOptions = {}): Promise<string> {
  return renderSvg(plotSpec(records, options));
}

/**
 * Rasterise an SVG to PNG bytes (`scale` 2 gives a sharp image on high-density screens).
 *
 * @throws MissingPeerError when the optional peer `@resvg/resvg-js` is not installed.
 */
export function svgToPng(svg: string, scale = 2): Uint8Array {
  const { Resvg } = loadResvg();
  const resvg = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: scale },
    background: 'white',
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' },
  });
  return resvg.render().asPng();
}

/** Options of {@link writePlots}. */
export interface WritePlotsOptions extends Omit<PlotOptions, 'quantity' | 'title'> {
  /** The charts to write. @default alpha and loss, plus gradnorm when the records have it */
  quantities?: Quantity[];
  /** Also write PNGs. @default true */
  png?: boolean;
}

/**
 * Write `<quantity>.svg` (and `<quantity>.png`) for each quantity into `dir`. Returns the SVG text of
 * each chart, by quantity.
 */
export async function writePlots(records: readonly StepRecord[], dir: string, options: WritePlotsOptions = {}): Promise<Partial<Record<Quantity, string>>> {
  const quantities = options.quantities ?? defaultQuantities(records);
  mkdirSync(dir, { recursive: true });
  const out: Partial<Record<Quantity, string>> = {};
  for (const q of quantities) {
    const svg = await plotSvg(records, { ...options, quantity: q });
    // Never through a link planted at a chart's name (src/node/safe-file.ts).
    writeFileSafe(join(dir, `${q}.svg`), svg);
    if (options.png !== false) writeFileSafe(join(dir, `${q}.png`), svgToPng(svg));
    out[q] = svg;
  }
  return out;
}

/** alpha and loss, plus gradnorm when any record has gradient norms. */
export function defaultQuantities(records: readonly StepRecord[]): Quantity[] {
  return records.some((r) => r.gradNorm) ? ['alpha', 'loss', 'gradnorm'] : ['alpha', 'loss'];
}
