/**
 * The browser bundle as issue 17 measures it: esbuild, platform browser, ESM, minified, tfjs
 * external, in memory with its metafile. One definition for bench/import-time.ts and
 * test/layers.test.ts, so that the number in docs/benchmarks.md and the test's bound measure the same
 * bundle.
 */
import { build, type BuildResult } from 'esbuild';

/** Bundle `entry` (a file path) for the browser; `outputFiles[0]` is the bundle, `metafile` its inputs. */
export function bundleForBrowser(entry: string): Promise<BuildResult<{ write: false; metafile: true }>> {
  return build({
    entryPoints: [entry],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    minify: true,
    write: false,
    metafile: true,
    external: ['@tensorflow/*'],
    logLevel: 'silent',
  });
}
