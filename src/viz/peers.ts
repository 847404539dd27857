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

/** `a`, `a and b`, `a, b and c`. */
const and = (xs: readonly string[]): string => (xs.length < 2 ? xs.join('') : `${xs.slice(0, -1).join(', ')} and ${xs[xs.length - 1]}`);

/**
 * Thrown when a chart is asked for and an optional plotting peer is not installed. The message names
 * every plotting peer that is missing (not only the one that failed to load) and the exact
 * `npm install` command for them; it has no `loss-balancer:` prefix (the CLI adds that).
 */
export class MissingPeerError extends Error {
  /** The packages that could not be found, in {@link PLOT_PEERS} order. */
  readonly missing: string[];
  constructor(missing: string[], cause?: unknown) {
    const sorted = [...new Set(missing)].sort((a, b) => order(a) - order(b));
    super(
      `charts and the HTML report need the optional peer dependencies ${and(PLOT_PEERS)}; ` +
        `not installed: ${and(sorted)}. Install ${sorted.length > 1 ? 'them' : 'it'} with: npm install ${sorted.join(' ')}`,
      { cause },
    );
    this.name = 'MissingPeerError';
    this.missing = sorted;
  }
}

const order = (p: string): number => {
  const i = (PLOT_PEERS as readonly string[]).indexOf(p);
  return i < 0 ? PLOT_PEERS.length : i;
};

const notFound = (e: unknown): boolean => {
  const code = (e as { code?: string } | null)?.code;
  return code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
};

/**
 * The plotting peers ({@link PLOT_PEERS}) that cannot be found from this package: resolution only,
 * nothing is loaded. `resolve` (default: Node's `require.resolve` from here) is replaceable for tests.
 */
export function missingPeers(resolve: (spec: string) => unknown = (s) => createRequire(import.meta.url).resolve(s)): string[] {
  return PLOT_PEERS.filter((p) => {
    try {
      resolve(p);
      return false;
    } catch (e) {
      return notFound(e);
    }
  });
}

/** The error for `failed` (packages whose load said "not found"), naming every other missing peer too. */
function missingError(failed: string[], cause: unknown): MissingPeerError {
  return new MissingPeerError([...failed, ...missingPeers()], cause);
}

let vegaPromise: Promise<{ vega: typeof Vega; vegaLite: typeof VegaLite }> | null = null;

/** `vega` and `vega-lite`, imported on first use. @throws MissingPeerError when either is not installed. */
export function loadVega(): Promise<{ vega: typeof Vega; vegaLite: typeof VegaLite }> {
  vegaPromise ??= (async () => {
    const specs = ['vega', 'vega-lite'];
    const got = await Promise.allSettled(specs.map((s) => import(/* @vite-ignore */ s)));
    const missing = specs.filter((_, i) => got[i].status === 'rejected' && notFound((got[i] as PromiseRejectedResult).reason));
    if (missing.length) throw missingError(missing, (got.find((g) => g.status === 'rejected') as PromiseRejectedResult).reason);
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
    if (notFound(e)) throw missingError(['@resvg/resvg-js'], e);
    throw e;
  }
}
