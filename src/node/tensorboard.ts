/**
 * TensorBoard event files without TensorFlow: a {@link Sink} that writes `events.out.tfevents.*`
 * files TensorBoard reads (`tensorboard --logdir runs/`), and {@link readEvents}, a reader that checks
 * every record's checksums.
 *
 * The format, written here by hand (it is small):
 *
 * - TFRecord framing (tensorflow/core/lib/io/record_writer.cc): each record is
 *   `uint64 length | uint32 masked_crc32c(length bytes) | data | uint32 masked_crc32c(data)`, all
 *   little-endian; `masked(c) = ((c >>> 15) | (c << 17)) + 0xa282ead8` (mod 2³²).
 * - CRC32C is the Castagnoli CRC (reflected polynomial 0x82F63B78).
 * - `data` is an `Event` protobuf (tensorflow/core/util/event.proto): `wall_time` (field 1, double),
 *   `step` (2, int64), then either `file_version` (3, string, `"brain.Event:2"` in the first record)
 *   or `summary` (5, a `Summary`, tensorflow/core/framework/summary.proto) whose repeated `value`
 *   (field 1) each carry a `tag` (1, string) and a `simple_value` (2, float).
 *
 * One step is one `Event` holding every scalar of that step, written with its own `write(2)`, so a
 * killed process leaves every complete step readable. tfjs-node's `tf.node.summaryFileWriter` writes
 * the same format; this sink needs neither tfjs-node nor libtensorflow.
 *
 * @module
 */
import { closeSync, mkdirSync, readFileSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { RunMeta, Sink, StepRecord } from '../core/history.js';
import type { Tournament } from '../core/tournament.js';
import { ensureDir, openForWrite } from './safe-file.js';

// ---------------------------------------------------------------------------------------------------
// CRC32C

const CRC32C_TABLE: Uint32Array = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32C (Castagnoli) of `bytes`, as an unsigned 32-bit integer. `crc32c("123456789") = 0xE3069283`. */
export function crc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC32C_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** The masked CRC TFRecord stores: `((crc >>> 15) | (crc << 17)) + 0xa282ead8`, mod 2³². */
export function maskedCrc32c(bytes: Uint8Array): number {
  const c = crc32c(bytes);
  return ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

/** Frame one record: length, masked CRC of the length, data, masked CRC of the data. */
export function tfrecordFrame(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length + 4);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(data.length), true);
  view.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true);
  out.set(data, 12);
  view.setUint32(12 + data.length, maskedCrc32c(data), true);
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Protobuf encoding of the few fields used

class ProtoWriter {
  private chunks: number[] = [];

  private varint(v: bigint | number): void {
    let x = BigInt.asUintN(64, BigInt(v));
    while (x >= 0x80n) {
      this.chunks.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    this.chunks.push(Number(x));
  }

  private key(field: number, wireType: number): void {
    this.varint((field << 3) | wireType);
  }

  double(field: number, v: number): this {
    this.key(field, 1);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v, true);
    for (const x of b) this.chunks.push(x);
    return this;
  }

  float(field: number, v: number): this {
    this.key(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    for (const x of b) this.chunks.push(x);
    return this;
  }

  int64(field: number, v: number): this {
    this.key(field, 0);
    this.varint(BigInt(Math.trunc(v)));
    return this;
  }

  bytes(field: number, b: Uint8Array): this {
    this.key(field, 2);
    this.varint(b.length);
    for (let i = 0; i < b.length; i++) this.chunks.push(b[i]);
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.chunks);
  }
}

/** Encode an `Event` with `file_version`. */
function encodeFileVersion(wallTime: number, version: string): Uint8Array {
  return new ProtoWriter().double(1, wallTime).int64(2, 0).string(3, version).finish();
}

/** Encode an `Event` with a `Summary` of simple scalar values. */
export function encodeScalarEvent(wallTime: number, step: number, scalars: Readonly<Record<string, number>>): Uint8Array {
  const summary = new ProtoWriter();
  for (const [tag, value] of Object.entries(scalars)) {
    summary.bytes(1, new ProtoWriter().string(1, tag).float(2, value).finish());
  }
  return new ProtoWriter().double(1, wallTime).int64(2, step).bytes(5, summary.finish()).finish();
}

// ---------------------------------------------------------------------------------------------------
// The sink

/** A candidate's label as a folder name: one path segment, never `.` or `..`. */
function subRunName(label: string): string {
  return label.replace(/[^A-Za-z0-9._=,-]/g, '_').replace(/^\./, '_');
}

/** The event file version TensorBoard expects in the first record. */
export const FILE_VERSION = 'brain.Event:2';

/**
 * The scalars logged for one step: `loss/<term>`, `alpha/<term>`, `weighted/<term>`,
 * `gradnorm/<term>` (when gradients were read), `regularizer/<term>` (when the strategy has one),
 * `info/<key>/<term>` for the strategy's extra values (e.g. GradNorm's target norms) and `total`.
 */
export function scalarsOf(record: StepRecord): Record<string, number> {
  const out: Record<string, number> = {};
  const put = (prefix: string, per: Readonly<Record<string, number>> | undefined) => {
    if (per) for (const [term, v] of Object.entries(per)) out[`${prefix}/${term}`] = v;
  };
  put('loss', record.loss);
  put('alpha', record.weight);
  put('weighted', record.weighted);
  put('gradnorm', record.gradNorm);
  put('regularizer', record.regularizer);
  if (record.info) for (const [key, per] of Object.entries(record.info)) put(`info/${key}`, per);
  out.total = record.total;
  return out;
}

/**
 * The part of tfjs-node's `SummaryFileWriter` (`tf.node.summaryFileWriter(logdir)`) the sink uses.
 * Any object with these methods will do.
 */
export interface ScalarWriter {
  /** Log one scalar. */
  scalar(name: string, value: number, step: number): void;
  /** Push buffered events to disk. */
  flush?(): void;
}

/** Options of {@link TensorBoardSink}. */
export interface TensorBoardSinkOptions {
  /**
   * Write through this writer (e.g. tfjs-node's `tf.node.summaryFileWriter(logdir)`) instead of the
   * built-in event-file writer; `flush()` is called after every step. @default the built-in writer
   */
  writer?: ScalarWriter;
  /** Host name in the file name. @default os.hostname() */
  host?: string;
  /** The clock (seconds since the epoch) for `wall_time` and the file name. @default Date.now() / 1000 */
  now?: () => number;
}

/**
 * Writes a TensorBoard event file `events.out.tfevents.<seconds>.<host>` in `logdir` (created if
 * needed): the `file_version` record first, then one `Event` per step with the scalars of
 * {@link scalarsOf}. View with `tensorboard --logdir <parent of logdir>`.
 */
export class TensorBoardSink implements Sink {
  private fd: number | null = null;
  private readonly now: () => number;
  private readonly host: string;
  private readonly writer: ScalarWriter | undefined;
  /** The event file's path (set when the first record is written). */
  path: string | null = null;
  /** One sub-run per `auto` candidate. */
  private readonly candidates = new Map<string, TensorBoardSink>();

  /** @param logdir the run's folder; each sink creates a new event file in it (unless `writer` is given). */
  constructor(
    readonly logdir: string,
    options: TensorBoardSinkOptions = {},
  ) {
    this.now = options.now ?? (() => Date.now() / 1000);
    this.host = (options.host ?? hostname()).replace(/[/\\]/g, '_');
    this.writer = options.writer;
  }

  private ensureOpen(): number {
    if (this.fd === null && this.path !== null) {
      // written again after close(): the same event file continues (never truncated, no second header)
      this.fd = openForWrite(this.path, 'a');
    }
    if (this.fd === null) {
      mkdirSync(this.logdir, { recursive: true });
      const t = this.now();
      const path = join(this.logdir, `events.out.tfevents.${Math.floor(t)}.${this.host}`);
      this.fd = openForWrite(path, 'w'); // never through a link planted at the name
      this.path = path;
      writeSync(this.fd, tfrecordFrame(encodeFileVersion(t, FILE_VERSION)));
    }
    return this.fd;
  }

  /** Creates the file and writes its `file_version` record. */
  open(_meta?: RunMeta): void {
    if (!this.writer) this.ensureOpen();
  }

  /**
   * One `Event` with every scalar of the step, written with one synchronous write. The records of an
   * `auto` selection's candidates go to one sub-run per candidate, `<logdir>/auto/<label>` (so
   * TensorBoard overlays their curves); with a `writer`, under the tag prefix `auto/<label>/`.
   */
  write(record: StepRecord): void {
    if (record.candidate !== undefined) {
      const label = subRunName(record.candidate);
      if (this.writer) {
        const scalars = Object.fromEntries(Object.entries(scalarsOf(record)).map(([k, v]) => [`auto/${label}/${k}`, v]));
        this.writeScalars(record.step, scalars);
        return;
      }
      let sub = this.candidates.get(label);
      if (!sub) {
        // The folders the sink makes itself must be real folders, not links planted in the run folder.
        ensureDir(join(this.logdir, 'auto'));
        ensureDir(join(this.logdir, 'auto', label));
        sub = new TensorBoardSink(join(this.logdir, 'auto', label), { now: this.now, host: this.host });
        this.candidates.set(label, sub);
      }
      sub.write({ ...record, candidate: undefined });
      return;
    }
    this.writeScalars(record.step, scalarsOf(record));
  }

  /** The winner of an `auto` selection: its scores as scalars `auto/score` in each candidate's sub-run. */
  tournament(t: Tournament): void {
    if (this.writer) return;
    const r = t.rounds[t.rounds.length - 1];
    if (!r) return;
    for (const [label, score] of Object.entries(r.scores)) {
      if (score === null) continue;
      this.candidates.get(subRunName(label))?.writeScalars(r.step, { 'auto/score': score });
    }
  }

  /** Write arbitrary scalars for a step (tags as TensorBoard shows them). */
  writeScalars(step: number, scalars: Readonly<Record<string, number>>): void {
    if (this.writer) {
      for (const [tag, v] of Object.entries(scalars)) this.writer.scalar(tag, v, step);
      this.writer.flush?.();
      return;
    }
    const fd = this.ensureOpen();
    writeSync(fd, tfrecordFrame(encodeScalarEvent(this.now(), step, scalars)));
  }

  close(): void {
    for (const sub of this.candidates.values()) sub.close();
    this.writer?.flush?.();
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

// ---------------------------------------------------------------------------------------------------
// The reader

/** One decoded `Event`. */
export interface TensorBoardEvent {
  /** Seconds since the Unix epoch when the event was written. */
  wallTime: number;
  /** The training step (0 on the file-version record). */
  step: number;
  /** Set on the file-version record. */
  fileVersion?: string;
  /** The `simple_value` scalars of the event's summary, by tag. */
  scalars: Record<string, number>;
}

/** What {@link readEvents} returns. */
export interface EventFile {
  /** Every complete record, in file order (the file-version record first). */
  events: TensorBoardEvent[];
  /** True when the file ended inside a record (a killed writer); that partial record was dropped. */
  truncated: boolean;
}

/** A protobuf payload that cannot be decoded; `offset` is the byte of the file where decoding failed. */
class ProtoError extends Error {
  constructor(
    readonly offset: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Reads the few protobuf wire types an `Event` uses. Every read is bounds-checked: a payload that
 * ends inside a value, claims more bytes than it holds, or uses a wire type protobuf does not
 * define (or a group) is a {@link ProtoError} at the file offset where it happened (`base` is the
 * offset of `buf` in the file).
 */
class ProtoReader {
  pos = 0;
  private readonly view: DataView;

  constructor(
    private readonly buf: Uint8Array,
    private readonly base: number,
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  private fail(message: string, at = this.pos): never {
    throw new ProtoError(this.base + at, message);
  }

  private need(n: number, what: string): void {
    if (n > this.buf.length - this.pos) this.fail(`${what} needs ${n} bytes, ${this.buf.length - this.pos} left in the message`);
  }

  varint(): bigint {
    const start = this.pos;
    let x = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.buf.length) this.fail('truncated varint', start);
      const b = this.buf[this.pos++];
      x |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return x;
      shift += 7n;
    }
    return this.fail('varint longer than 10 bytes', start);
  }

  double(): number {
    this.need(8, 'a double');
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  float(): number {
    this.need(4, 'a float');
    const v = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }

  /** A length-delimited field's bytes, and the file offset where they start. */
  bytes(): { bytes: Uint8Array; at: number } {
    const start = this.pos;
    const n = this.varint();
    if (n > BigInt(this.buf.length - this.pos)) this.fail(`a length-delimited field of ${n} bytes, ${this.buf.length - this.pos} left in the message`, start);
    const at = this.pos;
    this.pos += Number(n);
    return { bytes: this.buf.subarray(at, this.pos), at: this.base + at };
  }

  skip(wireType: number): void {
    if (wireType === 0) this.varint();
    else if (wireType === 1) this.need(8, 'a 64-bit field'), (this.pos += 8);
    else if (wireType === 2) this.bytes();
    else if (wireType === 5) this.need(4, 'a 32-bit field'), (this.pos += 4);
    else this.fail(`unsupported protobuf wire type ${wireType}`);
  }

  /** A field key: field number and wire type. */
  key(): { field: number; wt: number } {
    const start = this.pos;
    const k = this.varint();
    const field = Number(k >> 3n);
    if (field === 0) this.fail('field number 0 (not a protobuf message)', start);
    return { field, wt: Number(k & 7n) };
  }
}

const utf8 = new TextDecoder();

/** Decode one `Event`; `base` is the file offset of `data`. Throws a {@link ProtoError} on bad bytes. */
function decodeEvent(data: Uint8Array, base: number): TensorBoardEvent {
  const r = new ProtoReader(data, base);
  const ev: TensorBoardEvent = { wallTime: 0, step: 0, scalars: {} };
  while (!r.done) {
    const { field, wt } = r.key();
    if (field === 1 && wt === 1) ev.wallTime = r.double();
    else if (field === 2 && wt === 0) ev.step = Number(BigInt.asIntN(64, r.varint()));
    else if (field === 3 && wt === 2) ev.fileVersion = utf8.decode(r.bytes().bytes);
    else if (field === 5 && wt === 2) {
      const summary = r.bytes();
      const s = new ProtoReader(summary.bytes, summary.at);
      while (!s.done) {
        const k = s.key();
        if (k.field === 1 && k.wt === 2) {
          const value = s.bytes();
          const v = new ProtoReader(value.bytes, value.at);
          let tag = '';
          let x: number | undefined;
          while (!v.done) {
            const kv = v.key();
            if (kv.field === 1 && kv.wt === 2) tag = utf8.decode(v.bytes().bytes);
            else if (kv.field === 2 && kv.wt === 5) x = v.float();
            else v.skip(kv.wt);
          }
          // a tag such as "__proto__" stays an own key
          if (x !== undefined) Object.defineProperty(ev.scalars, tag, { value: x, enumerable: true, writable: true, configurable: true });
        } else s.skip(k.wt);
      }
    } else r.skip(wt);
  }
  return ev;
}

/**
 * Read a TensorBoard event file: every record's length and data CRCs are checked (a mismatch is an
 * error naming the record's byte offset); a record cut off at the end of the file is dropped and
 * reported as `truncated`. Scalars come back as float32 values, as TensorBoard stores them.
 */
export function readEvents(path: string): EventFile {
  const buf = new Uint8Array(readFileSync(path));
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const events: TensorBoardEvent[] = [];
  let pos = 0;
  while (pos < buf.length) {
    if (pos + 12 > buf.length) return { events, truncated: true };
    const len = Number(view.getBigUint64(pos, true));
    if (view.getUint32(pos + 8, true) !== maskedCrc32c(buf.subarray(pos, pos + 8))) {
      throw new Error(`${path}: record at byte ${pos}: length CRC mismatch`);
    }
    if (pos + 12 + len + 4 > buf.length) return { events, truncated: true };
    const data = buf.subarray(pos + 12, pos + 12 + len);
    if (view.getUint32(pos + 12 + len, true) !== maskedCrc32c(data)) {
      throw new Error(`${path}: record at byte ${pos}: data CRC mismatch`);
    }
    try {
      events.push(decodeEvent(data, pos + 12));
    } catch (e) {
      if (!(e instanceof ProtoError)) throw e;
      throw new Error(`${path}: record at byte ${pos}: not a TensorBoard Event: ${e.message} (at byte ${e.offset})`);
    }
    pos += 12 + len + 4;
  }
  return { events, truncated: false };
}

/** The scalar series of an event file: tag → `[step, value]` pairs in file order. */
export function scalarSeries(file: EventFile): Record<string, [number, number][]> {
  // A Map, not `{}`: a tag such as "constructor" or "__proto__" is a key like any other.
  const out = new Map<string, [number, number][]>();
  for (const ev of file.events) {
    for (const [tag, v] of Object.entries(ev.scalars)) {
      let series = out.get(tag);
      if (!series) out.set(tag, (series = []));
      series.push([ev.step, v]);
    }
  }
  return Object.fromEntries(out);
}
