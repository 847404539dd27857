/**
 * Issue 26, item 17: of 3,000 crafted TensorBoard payloads with valid checksums, 1,262 raised raw
 * errors (`unsupported protobuf wire type`, DataView `Offset is outside the bounds`, a `truncated
 * varint` without a place) naming neither the file nor the byte offset; lengths beyond the message were
 * cut silently. Every read of the decoder is now bounds-checked, and an undecodable payload is an
 * error naming the file, the record's byte offset and the byte where decoding failed. The fuzz frames
 * 3,000 payloads (random bytes, and valid events with bytes flipped, cut, inserted or given wrong
 * lengths) with correct CRCs: each file is either read or refused with such an error.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeScalarEvent, readEvents, scalarSeries, tfrecordFrame } from '../src/node/tensorboard.js';

const dir = mkdtempSync(join(tmpdir(), 'lb-tbcraft-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const valid = encodeScalarEvent(1.5, 7, { 'loss/a': 0.25, 'alpha/a': 1, 'alpha/b': 2 });

/** Write one event file: a valid first record, then `payload` framed with correct CRCs. */
function fileWith(payload: Uint8Array, name: string): { path: string; at: number } {
  const first = tfrecordFrame(valid);
  const second = tfrecordFrame(payload);
  const path = join(dir, name);
  writeFileSync(path, Buffer.concat([first, second]));
  return { path, at: first.length };
}

/** Read `path`; an error must name the file, the record's offset and a byte. */
function readOrNamedError(path: string, at: number): 'read' | 'refused' {
  try {
    const f = readEvents(path);
    expect(f.events.length).toBe(2);
    scalarSeries(f);
    return 'read';
  } catch (e) {
    expect(e).toBeInstanceOf(Error);
    expect(e).not.toBeInstanceOf(RangeError);
    expect(e).not.toBeInstanceOf(TypeError);
    expect((e as Error).message).toMatch(new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: record at byte ${at}: not a TensorBoard Event: .* \\(at byte \\d+\\)$`));
    return 'refused';
  }
}

describe('crafted TensorBoard payloads with valid checksums', () => {
  it.each([
    ['wire type 3 (group)', [0x0b]],
    ['wire type 7', [0x0f]],
    ['a double cut short', [0x09, 1, 2, 3]],
    ['a float cut short inside a summary value', [0x2a, 0x05, 0x0a, 0x03, 0x15, 0x00, 0x00]],
    ['a length beyond the message', [0x1a, 0x7f, 0x41]],
    ['a huge length varint', [0x1a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]],
    ['a varint of 11 bytes', [0x10, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]],
    ['a truncated varint', [0x10, 0x80]],
    ['field number 0', [0x00, 0x01]],
  ])('%s: refused naming file, record and byte', (_what, bytes) => {
    const { path, at } = fileWith(Uint8Array.from(bytes), `case-${bytes.join('-')}`);
    expect(readOrNamedError(path, at)).toBe('refused');
  });

  it('tags named constructor and __proto__ are read as scalars', () => {
    const { path } = fileWith(encodeScalarEvent(2, 8, { constructor: 1, __proto__: 2, toString: 3 } as never), 'proto');
    const series = scalarSeries(readEvents(path));
    expect(series.constructor).toEqual([[8, 1]]);
    expect(series.toString).toEqual([[8, 3]]);
  });

  it('fuzz: 3,000 payloads, each read or refused with an error naming file, record and byte', () => {
    const mutated = fc
      .tuple(fc.array(fc.tuple(fc.nat(valid.length), fc.integer({ min: 0, max: 255 }), fc.constantFrom('flip', 'cut', 'insert')), { minLength: 1, maxLength: 4 }))
      .map(([edits]) => {
        let b = Array.from(valid);
        for (const [i, v, op] of edits) {
          if (op === 'flip') b[i % b.length] = v;
          else if (op === 'cut') b = b.slice(0, i);
          else b.splice(i, 0, v);
        }
        return Uint8Array.from(b);
      });
    const payload = fc.oneof(fc.uint8Array({ maxLength: 64 }), mutated);
    let k = 0;
    const outcome = { read: 0, refused: 0 };
    fc.assert(
      fc.property(payload, (p) => {
        const { path, at } = fileWith(p, `fuzz-${k++ % 50}`);
        outcome[readOrNamedError(path, at)] += 1;
      }),
      { numRuns: 3000, seed: 17 },
    );
    if (process.env.LB_PRINT) console.log('tensorboard fuzz', JSON.stringify(outcome));
    expect(outcome.read + outcome.refused).toBe(3000);
    expect(outcome.refused).toBeGreaterThan(100);
  });
});
