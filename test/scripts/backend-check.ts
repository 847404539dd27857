// Run by test/backend.test.ts in a child process: backend selection and fallbacks.
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/train/backend.js';

const warnings: string[] = [];
const out: Record<string, unknown> = {};
out.fromEnv = await initBackend(undefined, (m) => warnings.push(m));
out.tensorflowFallback = await initBackend('tensorflow', (m) => warnings.push(m));
out.cpu = await initBackend('cpu');
out.active = tf.getBackend();
try {
  await initBackend('gpu' as never);
} catch (e) {
  out.unknown = (e as Error).message;
}
out.warnings = warnings;
console.log(JSON.stringify(out));
if (process.argv.includes('--throw')) throw new Error('boom from user code');
