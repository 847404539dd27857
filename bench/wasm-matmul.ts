/**
 * Facts about tfjs-backend-wasm 4.22's matMul that shaped the layer-wise readings (issue 27;
 * docs/benchmarks.md, "Many terms"):
 * 1. a new right operand is packed on every call (new B against the same B again), per shape of the
 *    exact reading at T = 64;
 * 2. a transpose flag leaves XNNPACK for a naive loop;
 * 3. (run last: it can corrupt the module's memory) the packed operator is cached by the right operand's buffer, not its shape: the same buffer as a
 *    right operand under a second shape (a reshape view) gives wrong values (compared with the
 *    product by hand); later in a process, with more memory in use, the same call aborted the module.
 *
 *   npx tsx bench/wasm-matmul.ts
 *   npx tsx bench/wasm-matmul.ts --cache-only   # 3 alone, first in the process: wrong values, no error
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';

await tf.setBackend('wasm');
await tf.ready();
const med = (x: number[]) => [...x].sort((a, b) => a - b)[x.length >> 1];
const time = (f: () => tf.Tensor) => {
  const t0 = performance.now();
  const c = f();
  c.dataSync();
  const ms = performance.now() - t0;
  c.dispose();
  return ms;
};
console.log(`wasm-matmul: ${new Date().toISOString()}, one thread (Node)`);
if (!process.argv.includes('--cache-only')) {
  const shapes: [number[], number[]][] = [
    [[8192, 256], [256, 256]],
    [[128, 128], [128, 16384]],
    [[64, 32768], [32768, 64]],
    [[16384, 128], [128, 65]],
    [[65, 128], [128, 16384]],
    [[64, 16640], [16640, 64]],
  ];
  for (const [sa, sb] of shapes) {
    const A = tf.randomNormal(sa);
    const fresh: number[] = [];
    const cached: number[] = [];
    for (let r = 0; r < 5; r++) {
      const B = tf.randomNormal(sb);
      B.dataSync();
      fresh.push(time(() => tf.matMul(A, B)));
      cached.push(time(() => tf.matMul(A, B)));
      B.dispose();
    }
    const mac = (sa[0] * sa[1] * sb[1]) / 1e6;
    console.log(`${JSON.stringify(sa)} × ${JSON.stringify(sb)}: ${mac.toFixed(0)} M multiply-adds, new right operand ${med(fresh).toFixed(1)} ms, packed one ${med(cached).toFixed(1)} ms (${(mac / med(cached)).toFixed(1)} G/s)`);
    A.dispose();
  }
  {
    const A = tf.randomNormal([8192, 256]);
    const W = tf.randomNormal([256, 256]);
    const Wt = tf.transpose(W);
    console.log(`[8192,256] × [256,256]ᵀ: transposeB ${time(() => tf.matMul(A, W, false, true)).toFixed(1)} ms, explicit transpose ${time(() => tf.matMul(A, Wt)).toFixed(1)} ms`);
    tf.dispose([A, W, Wt]);
  }
}
{
  const W = tf.randomNormal([4, 6], 0, 1, 'float32', 1);
  const x1 = tf.randomNormal([2, 4], 0, 1, 'float32', 2);
  const x2 = tf.randomNormal([2, 8], 0, 1, 'float32', 3);
  tf.matMul(x1, W).dispose(); // W's buffer packed as a 4 × 6 operator
  const view = tf.reshape(W, [8, 3]);
  const [xs, vs] = [x2.arraySync() as number[][], view.arraySync() as number[][]];
  const want = xs.map((row) => vs[0].map((_, j) => row.reduce((s, v, k) => s + v * vs[k][j], 0)));
  // wrong values, or (after larger allocations) an abort of the wasm module
  try {
    const got = tf.matMul(x2, view).arraySync() as number[][];
    console.log(`same buffer as a right operand, 4×6 then 8×3: wasm ${got[0].map((v) => v.toFixed(3)).join(', ')}; by hand ${want[0].map((v) => v.toFixed(3)).join(', ')}`);
  } catch (e) {
    console.log(`same buffer as a right operand, 4×6 then 8×3: the wasm module failed: ${(e as Error).message}`);
  }
  tf.dispose([W, x1, x2, view]);
}
