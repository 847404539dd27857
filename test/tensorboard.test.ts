import { mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { afterAll, describe, expect, it } from 'vitest';
import type { StepRecord } from '../src/core/history.js';
import {
  crc32c,
  FILE_VERSION,
  maskedCrc32c,
  readEvents,
  scalarSeries,
  scalarsOf,
  TensorBoardSink,
  tfrecordFrame,
} from '../src/node/tensorboard.js';

const root = protobuf.loadSync(fileURLToPath(new URL('./fixtures/tb-event.proto', import.meta.url)));
const EventT = root.lookupType('tensorflow.Event');
const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'lb-tb-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const bytes = (s: string) => new TextEncoder().encode(s);

/** An independent parse of the TFRecord framing: returns each record's data after checking both CRCs. */
function parseRecords(buf: Buffer): Uint8Array[] {
  const out: Uint8Array[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const len = Number(buf.readBigUInt64LE(pos));
    expect(buf.readUInt32LE(pos + 8)).toBe(maskedCrc32c(buf.subarray(pos, pos + 8)));
    const data = buf.subarray(pos + 12, pos + 12 + len);
    expect(buf.readUInt32LE(pos + 12 + len)).toBe(maskedCrc32c(data));
    out.push(new Uint8Array(data));
    pos += 16 + len;
  }
  expect(pos).toBe(buf.length);
  return out;
}

function record(step: number, loss: Record<string, number>, weight: Record<string, number>, extra: Partial<StepRecord> = {}): StepRecord {
  const weighted = Object.fromEntries(Object.keys(loss).map((k) => [k, loss[k] * weight[k]]));
  const total = Object.values(weighted).reduce((a, b) => a + b, 0);
  return { step, loss, weight, weighted, total, ...extra };
}

describe('crc32c', () => {
  it('matches the published check values', () => {
    // The CRC catalogue's check value for CRC-32C (iSCSI) and the RFC 3720 B.4 test vectors.
    expect(crc32c(bytes('123456789'))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(0))).toBe(0);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i))).toBe(0x113fdb5c);
  });

  it('masks as TFRecord does', () => {
    const c = crc32c(bytes('123456789'));
    const rot = ((c >>> 15) | (c << 17)) >>> 0;
    expect(maskedCrc32c(bytes('123456789'))).toBe((rot + 0xa282ead8) % 2 ** 32);
  });
});

describe('TensorBoardSink', () => {
  it('writes a file_version record then one Event per step, decodable with the official schema', () => {
    const dir = tmp();
    let t = 1_700_000_000.25;
    const sink = new TensorBoardSink(join(dir, 'run'), { host: 'testhost', now: () => (t += 1) });
    const recs = [
      record(0, { recon: 2.5, kl: 0.125 }, { recon: 1, kl: 1 }, { gradNorm: { recon: 3, kl: 0.01 } }),
      record(1, { recon: 1.75, kl: 0.5 }, { recon: 0.3333, kl: 1.6667 }, { gradNorm: { recon: 2, kl: 0.02 }, regularizer: { recon: -0.1, kl: 0.2 }, info: { target: { recon: 1.5, kl: 0.5 } } }),
      record(2, { recon: 1e-8, kl: 123456.789 }, { recon: 0, kl: 2 }, { skipped: 'non-finite' }),
    ];
    sink.open({ strategy: 'fixed', options: {}, terms: ['recon', 'kl'], backend: 'cpu', gradients: 'none', startedAt: '' });
    for (const r of recs) sink.write(r);
    sink.close();

    const files = readdirSync(join(dir, 'run'));
    expect(files).toEqual(['events.out.tfevents.1700000001.testhost']);
    const raw = readFileSync(join(dir, 'run', files[0]));
    const datas = parseRecords(raw);
    expect(datas).toHaveLength(1 + recs.length);

    const evs = datas.map((d) => EventT.toObject(EventT.decode(d), { longs: Number, defaults: true }) as any);
    expect(evs[0].fileVersion).toBe('brain.Event:2');
    expect(evs[0].wallTime).toBe(1_700_000_001.25);
    recs.forEach((r, i) => {
      const ev = evs[i + 1];
      expect(ev.step).toBe(r.step);
      expect(ev.wallTime).toBe(1_700_000_001.25 + i + 1);
      const got = Object.fromEntries(ev.summary.value.map((v: any) => [v.tag, v.simpleValue]));
      const want = scalarsOf(r);
      expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
      for (const [tag, v] of Object.entries(want)) expect(got[tag]).toBe(Math.fround(v));
    });
    expect(Object.keys(scalarsOf(recs[1])).sort()).toEqual(
      ['alpha/kl', 'alpha/recon', 'gradnorm/kl', 'gradnorm/recon', 'info/target/kl', 'info/target/recon', 'loss/kl', 'loss/recon', 'regularizer/kl', 'regularizer/recon', 'total', 'weighted/kl', 'weighted/recon'],
    );

    // Our own reader agrees with protobufjs.
    const back = readEvents(join(dir, 'run', files[0]));
    expect(back.truncated).toBe(false);
    expect(back.events[0].fileVersion).toBe(FILE_VERSION);
    expect(back.events.slice(1).map((e) => e.scalars)).toEqual(recs.map((r) => Object.fromEntries(Object.entries(scalarsOf(r)).map(([k, v]) => [k, Math.fround(v)]))));
    expect(scalarSeries(back)['alpha/kl']).toEqual([[0, 1], [1, Math.fround(1.6667)], [2, 2]]);
  });

  it('leaves every complete record readable when the writer dies mid-record', () => {
    const dir = tmp();
    const sink = new TensorBoardSink(dir, { host: 'h', now: () => 5 });
    for (let s = 0; s < 4; s++) sink.write(record(s, { a: s, b: 2 * s }, { a: 1, b: 1 }));
    // No close(): each step was already written synchronously.
    const path = sink.path!;
    const full = statSync(path).size;
    truncateSync(path, full - 3);
    const back = readEvents(path);
    expect(back.truncated).toBe(true);
    expect(back.events.map((e) => e.step)).toEqual([0, 0, 1, 2]);
    sink.close();
  });

  it('a writer killed with SIGKILL leaves every step it wrote readable', async () => {
    const dir = tmp();
    const script = join(dir, 'writer.mts');
    const src = fileURLToPath(new URL('../src/node/tensorboard.ts', import.meta.url));
    writeFileSync(
      script,
      `import { TensorBoardSink } from ${JSON.stringify(src)};
const sink = new TensorBoardSink(${JSON.stringify(join(dir, 'run'))}, { host: 'h' });
for (let step = 0; ; step++) {
  sink.write({ step, loss: { a: step }, weight: { a: 1 }, weighted: { a: step }, total: step });
  if (step === 50) process.stdout.write('ready\\n');
}
`,
    );
    const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: fileURLToPath(new URL('..', import.meta.url)), stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((res, rej) => {
      child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && res());
      child.on('exit', (code) => rej(new Error(`writer exited early with ${code}`)));
    });
    child.kill('SIGKILL');
    await new Promise((res) => child.on('exit', res));
    const file = join(dir, 'run', readdirSync(join(dir, 'run'))[0]);
    const back = readEvents(file);
    const steps = back.events.slice(1).map((e) => e.step);
    expect(steps.length).toBeGreaterThan(50);
    expect(steps).toEqual(steps.map((_, i) => i));
    expect(back.events.slice(1).every((e) => e.scalars['loss/a'] === e.step)).toBe(true);
  });

  it('rejects a corrupted record, naming its offset', () => {
    const dir = tmp();
    const sink = new TensorBoardSink(dir, { host: 'h', now: () => 5 });
    sink.write(record(0, { a: 1 }, { a: 1 }));
    sink.close();
    const buf = readFileSync(sink.path!);
    buf[buf.length - 6] ^= 0xff;
    writeFileSync(sink.path!, buf);
    expect(() => readEvents(sink.path!)).toThrow(/record at byte \d+: data CRC mismatch/);
  });

  it('round-trips arbitrary scalars through the framing and protobufjs (property)', () => {
    const tag = fc.string({ minLength: 1, maxLength: 20 });
    fc.assert(
      fc.property(fc.dictionary(tag, fc.double()), fc.nat(2 ** 40), (scalars, step) => {
        const dir = tmp();
        const sink = new TensorBoardSink(dir, { host: 'h', now: () => 1 });
        sink.writeScalars(step, scalars);
        sink.close();
        const datas = parseRecords(readFileSync(sink.path!));
        const ev = EventT.toObject(EventT.decode(datas[1]), { longs: Number, defaults: true }) as any;
        expect(ev.step).toBe(step);
        const values = (ev.summary?.value ?? []) as { tag: string; simpleValue: number }[];
        expect(values.map((v) => v.tag)).toEqual(Object.keys(scalars));
        values.forEach((v) => expect(Object.is(v.simpleValue, Math.fround(scalars[v.tag])) || (Number.isNaN(v.simpleValue) && Number.isNaN(scalars[v.tag]))).toBe(true));
        rmSync(dir, { recursive: true, force: true });
      }),
      { numRuns: 40 },
    );
  });

  it('writes through a tfjs-node style summary writer when given one', () => {
    const calls: [string, number, number][] = [];
    let flushes = 0;
    const sink = new TensorBoardSink('unused-dir', { writer: { scalar: (n, v, s) => calls.push([n, v, s]), flush: () => (flushes += 1) } });
    sink.open();
    sink.write(record(4, { a: 2 }, { a: 0.5 }));
    sink.close();
    expect(calls).toEqual([['loss/a', 2, 4], ['alpha/a', 0.5, 4], ['weighted/a', 1, 4], ['total', 1, 4]]);
    expect(flushes).toBe(2);
    expect(sink.path).toBeNull();
  });

  it('frames a record like TFRecord (length, CRC of length, data, CRC of data)', () => {
    const f = tfrecordFrame(bytes('abc'));
    const b = Buffer.from(f);
    expect(b.readBigUInt64LE(0)).toBe(3n);
    expect(b.subarray(12, 15).toString()).toBe('abc');
    expect(b.readUInt32LE(15)).toBe(maskedCrc32c(bytes('abc')));
  });
});
