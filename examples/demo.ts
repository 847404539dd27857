/**
 * `npm run demo`: the seed's story. A VAE with two reconstruction terms and a KL term, trained with
 * equal weights and with automatic balancing; prints what the balancer found. The work is done by
 * `runDemo` in src/node/demo.ts (also behind `loss-balancer demo`).
 */
import { fileURLToPath } from 'node:url';
import { runDemo } from '../src/node/demo.js';

export { runDemo };

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const quick = process.argv.includes('--quick');
  try {
    await runDemo(quick ? { steps: 200 } : {});
  } catch (e) {
    console.error(`demo failed: ${(e as Error).message}`);
    process.exitCode = 1;
  }
}
