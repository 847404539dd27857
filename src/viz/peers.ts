/**
 * Loading of the optional plotting peers (`vega`, `vega-lite`, `@resvg/resvg-js`). They are
 * `peerDependencies` marked optional: a user who only trains never installs them, and only the
 * functions that draw (in `loss-balancer/plot` and `loss-balancer/report`, and the CLI commands that
 * call them) load them, on first use. When one is missing, the error names every package to install.
 *
 * @module
 */
import { createRequire } from 'node:module';
import type * as Vega from 'vega';
import type * as VegaLite from 'vega-lite';
import type * as ResvgJs from '@resvg/resvg-js';

/** The optional peer dependencies that charts and the HTML report need. */
export const PLOT_PEERS = ['vega', 'vega-lite', '@resvg/resvg-js'] as const;

/** Thrown when a chart is asked for and an optional plotting peer is not installed. */
export class MissingPeerError extends Error {
  /** The packages that could not be loaded. */
  readonly missing: string[];
  constructor(missing: string[], cause?: unknown) {
    super(
      `loss-balancer: charts and the HTML report need the optional peer dependencies ${PLOT_PEERS.join(', ')}; ` +
        `not installed: ${missing.join(', ')}. Install them with: npm install ${PLOT_PEERS.join(' ')}`,
      { cause },
    );
    this.name = 'MissingPeerError';
    this.missing = missing;
  }
}

const notFound = (e: unknown): boolean => {
  const code = (e as { code?: string } | null)?.code;
  return code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
};

let vegaPromise: Promise<{ vega: typeof Vega; vegaLite: typeof VegaLite }> | null = null;

/** `vega` and `vega-lite`, imported on first use. @throws MissingPeerError when either is not installed. */
export function loadVega(): Promise<{ vega: typeof Vega; vegaLite: typeof VegaLite }> {
  vegaPromise ??= (async () => {
    const specs = ['vega', 'vega-lite'];
    const got = await Promise.allSettled(specs.map((s) => import(/* @vite-ignore */ s)));
    const missing = specs.filter((_, i) => got[i].status === 'rejected' && notFound((got[i] as PromiseRejectedResult).reason));
    if (missing.length) throw new MissingPeerError(missing, (got.find((g) => g.status === 'rejected') as PromiseRejectedResult).reason);
    const failed = got.find((g) => g.status === 'rejected') as PromiseRejectedResult | undefined;
    if (failed) throw failed.reason;
    return { vega: (got[0] as PromiseFulfilledResult<typeof Vega>).value, vegaLite: (got[1] as PromiseFulfilledResult<typeof VegaLite>).value };
  })();
  vegaPromise.catch(() => (vegaPromise = null));
  return vegaPromise;
}

let resvg: typeof ResvgJs | null = null;

/** `@resvg/resvg-js` (CommonJS with a native binding), loaded synchronously on first use. @throws MissingPeerError when not installed. */
export function loadResvg(): typeof ResvgJs {
  if (resvg) return resvg;
  try {
    resvg = createRequire(import.meta.url)('@resvg/resvg-js') as typeof ResvgJs;
    return resvg;
  } catch (e) {
    if (notFound(e)) throw new MissingPeerError(['@resvg/resvg-js'], e);
    throw e;
  }
}
