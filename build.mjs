// The package's JavaScript: every entry point bundled by esbuild (ESM, code shared between entries in
// dist/chunks/), with zod's used schemas and ml-matrix inlined and tree-shaken, so that importing
// loss-balancer reads a few files instead of ~150 (import time: docs/benchmarks.md). tfjs, Node
// built-ins, the CLI's packages and every optional peer stay external. Types: `tsc
// --emitDeclarationOnly` (tsconfig.build.json). Run by `npm run build`.
import { rmSync } from 'node:fs';
import { build } from 'esbuild';

rmSync('dist', { recursive: true, force: true });
await build({
  entryPoints: [
    'src/index.ts',
    'src/browser.ts',
    'strategies/index.ts',
    'src/node/tensorboard.ts',
    'src/viz/plot.ts',
    'src/viz/report.ts',
    'src/node/cli.ts',
    // loaded by a computed relative path (src/node/cli.ts, src/viz/report.ts): kept at their paths
    'src/node/demo.ts',
    'src/core/diagnose.ts',
  ],
  outdir: 'dist',
  outbase: '.',
  bundle: true,
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  format: 'esm',
  platform: 'neutral',
  target: 'es2022',
  mainFields: ['module', 'main'],
  external: ['@tensorflow/*', 'node:*', 'commander', 'yaml', 'cli-progress', 'vega', 'vega-lite', '@resvg/resvg-js'],
  sourcemap: true,
  sourcesContent: true,
  logLevel: 'warning',
});
