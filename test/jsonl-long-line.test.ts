/**
 * Issue 26, item 15: reading a JSONL line without a newline took time growing with the square of its
 * length (256 MiB: 149 s), because every 1 MiB chunk re-copied the pending line (`Buffer.concat([rest,
 * chunk])`, then a copy of the remainder). The reader now keeps the pending chunks in a list and joins
 * them once, when the line ends: each byte is copied at most twice. Counted, not timed: the bytes the
 * reader copies through `Buffer.concat` and `Buffer.from` while reading one 24 MiB line (before the fix:
 * about 24 × 25 = 600 MiB; now at most 2 × 24 MiB). The time is in docs/benchmarks.md (bench/jsonl-line.ts).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { readJsonl, streamJsonl } from '../src/node/sinks.js';

const dir = mkdtempSync(join(tmpdir(), 'lb-longline-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Bytes copied by Buffer.concat and Buffer.from (of a buffer) while `fn` runs. */
function copiedBytes(fn: () => void): number {
  let bytes = 0;
  const concat = Buffer.concat;
  const from = Buffer.from;
  const c = vi.spyOn(Buffer, 'concat').mockImplementation(((list: readonly Uint8Array[], len?: number) => {
    const out = concat(list, len);
    bytes += out.length;
    return out;
  }) as typeof Buffer.concat);
  const f = vi.spyOn(Buffer, 'from').mockImplementation(((...args: unknown[]) => {
    const out = (from as (...a: unknown[]) => Buffer)(...args);
    if (args[0] instanceof Uint8Array) bytes += out.length;
    return out;
  }) as typeof Buffer.from);
  try {
    fn();
  } finally {
    c.mockRestore();
    f.mockRestore();
  }
  return bytes;
}

describe('a long JSONL line is read in linear time', () => {
  const MiB = 1 << 20;

  it('a 24 MiB step line: at most 2 copies of its bytes, and the record is intact', () => {
    const names = Array.from({ length: 24 * 1024 }, (_, i) => `term_${i}_${'x'.repeat(Math.max(0, 1000 - 8 - String(i).length * 2))}`);
    const loss = Object.fromEntries(names.map((n, i) => [n, i]));
    const line = JSON.stringify({ kind: 'step', step: 0, loss, weight: {}, total: 1 });
    expect(line.length).toBeGreaterThan(20 * MiB);
    const file = join(dir, 'long.jsonl');
    writeFileSync(file, `{"kind":"meta","strategy":"fixed"}\n${line}\n{"kind":"step","step":1,"loss":{"a":1},"weight":{"a":1},"total":1}\n`);
    let records: ReturnType<typeof readJsonl>['records'] = [];
    const copied = copiedBytes(() => {
      records = readJsonl(file, { candidates: true }).records; // one pass over the file
    });
    expect(records).toHaveLength(2);
    expect(Object.keys(records[0].loss)).toHaveLength(names.length);
    expect(records[0].loss[names[12345]]).toBe(12345);
    expect(copied).toBeLessThanOrEqual(2 * line.length + 2 * MiB);
  });

  it('a torn last line of 8 MiB without a newline: reported as torn, copied at most twice', () => {
    const file = join(dir, 'torn.jsonl');
    const torn = `{"kind":"step","step":1,"loss":{"a":"${'y'.repeat(8 * MiB)}`;
    writeFileSync(file, `{"kind":"step","step":0,"loss":{"a":1},"weight":{"a":1},"total":1}\n${torn}`);
    let kinds: string[] = [];
    const copied = copiedBytes(() => {
      kinds = [...streamJsonl(file, { candidates: true })].map((x) => x.kind);
    });
    expect(kinds).toEqual(['step', 'torn']);
    expect(copied).toBeLessThanOrEqual(2 * torn.length + 2 * MiB);
  });

  it('lines split across chunk boundaries at every offset near a boundary still read correctly', () => {
    const file = join(dir, 'boundary.jsonl');
    for (const pad of [-3, -2, -1, 0, 1, 2]) {
      const first = `{"kind":"step","step":0,"loss":{"a":"${'z'.repeat(MiB - 40 + pad)}"},"weight":{"a":1},"total":1}`;
      writeFileSync(file, `${first}\r\n{"kind":"step","step":1,"loss":{"a":2},"weight":{"a":1},"total":1}\n\n{"kind":"step","step":2,"loss":{"a":3},"weight":{"a":1},"total":1}`);
      const { records, tornLastLine } = readJsonl(file);
      expect(records.map((r) => r.step), `pad ${pad}`).toEqual([0, 1, 2]);
      expect(tornLastLine).toBe(false);
    }
  });
});
