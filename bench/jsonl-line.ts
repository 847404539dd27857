/**
 * Time to read a JSONL file whose last line has no newline (a torn line), as the line grows: the
 * reader of src/node/sinks.ts against the previous one (re-joining the pending line at every 1 MiB
 * chunk), in one run. Issue 26, item 15: 256 MiB took 149 s before.
 *
 *   npx tsx bench/jsonl-line.ts [--sizes 16,64,256] [--old-max 64]
 */
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { streamJsonl } from '../src/node/sinks.js';

const arg = (name: string, d: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : d;
};
const sizes = arg('--sizes', '16,64,256').split(',').map(Number);
const oldMax = Number(arg('--old-max', '64'));

/** The previous reader's line splitting (before issue 26): concat the pending line with each chunk. */
function oldSplit(path: string): number {
  const fd = openSync(path, 'r');
  const CHUNK = 1 << 20;
  const buf = Buffer.allocUnsafe(CHUNK);
  let rest: Buffer | null = null;
  let lines = 0;
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK, null);
      if (n === 0) break;
      let chunk = buf.subarray(0, n);
      if (rest) {
        chunk = Buffer.concat([rest, chunk]);
        rest = null;
      }
      let from = 0;
      for (let nl = chunk.indexOf(0x0a, from); nl >= 0; nl = chunk.indexOf(0x0a, from)) {
        lines += 1;
        from = nl + 1;
      }
      if (from < chunk.length) rest = Buffer.from(chunk.subarray(from));
    }
    if (rest) lines += 1;
  } finally {
    closeSync(fd);
  }
  return lines;
}

const dir = mkdtempSync(join(tmpdir(), 'lb-jsonl-line-'));
try {
  console.log(`node ${process.version}; a torn last line of N MiB (no newline); seconds, one run each`);
  console.log('| line | this reader (streamJsonl, parse included) | previous line splitting (no parse) | ratio |');
  console.log('|---|---|---|---|');
  for (const mib of sizes) {
    const file = join(dir, `line-${mib}.jsonl`);
    writeFileSync(file, `{"kind":"step","step":0,"loss":{"a":1},"weight":{"a":1},"total":1}\n{"kind":"step","loss":{"a":"${'x'.repeat(mib * 2 ** 20)}`);
    let t = performance.now();
    const kinds = [...streamJsonl(file, { candidates: true })].map((x) => x.kind).join(',');
    const now = (performance.now() - t) / 1000;
    if (kinds !== 'step,torn') throw new Error(`unexpected ${kinds}`);
    let old = Number.NaN;
    if (mib <= oldMax) {
      t = performance.now();
      oldSplit(file);
      old = (performance.now() - t) / 1000;
    }
    console.log(`| ${mib} MiB | ${now.toFixed(2)} | ${Number.isNaN(old) ? 'not run' : old.toFixed(2)} | ${Number.isNaN(old) ? '' : `${(old / now).toFixed(0)}×`} |`);
    rmSync(file);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
