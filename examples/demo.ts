/**
 * `npm run demo`: the seed's story. A VAE with two reconstruction terms and a KL term, trained with
 * equal weights and with automatic balancing; prints what the balancer found. See src/demo.ts.
 */
import { runDemo } from '../src/demo.js';

const quick = process.argv.includes('--quick');
try {
  await runDemo(quick ? { steps: 200 } : {});
} catch (e) {
  console.error(`demo failed: ${(e as Error).message}`);
  process.exitCode = 1;
}
