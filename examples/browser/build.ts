/**
 * Build the browser example: bundle main.ts (with tfjs and the library's browser entry) into
 * dist/main.js with esbuild, and copy the tfjs WebAssembly binaries beside it.
 * Run: `npx tsx examples/browser/build.ts`, then `npx tsx examples/browser/serve.ts`.
 */
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

/** This example's folder. */
export const EXAMPLE_DIR = dirname(fileURLToPath(import.meta.url));

/** Bundle the page's script and copy the .wasm files; returns the output folder. */
export async function buildBrowserExample(outDir = join(EXAMPLE_DIR, 'dist')): Promise<string> {
  mkdirSync(outDir, { recursive: true });
  await build({
    entryPoints: [join(EXAMPLE_DIR, 'main.ts')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    outfile: join(outDir, 'main.js'),
    sourcemap: true,
    logLevel: 'warning',
  });
  const require = createRequire(import.meta.url);
  const wasmDir = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
  for (const f of readdirSync(wasmDir)) if (f.endsWith('.wasm')) copyFileSync(join(wasmDir, f), join(outDir, f));
  return outDir;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const out = await buildBrowserExample();
  console.log(`built ${out}`);
}
