/**
 * Sinks that write the trajectory out: JSONL (one JSON object a line, written with a synchronous
 * write per line so a crash loses at most the line being written) and its tolerant reader.
 */
import { closeSync, existsSync, ftruncateSync, mkdirSync, openSync, fstatSync, readSync, writeSync } from 'node:fs';
import { openForWrite } from './safe-file.js';
import { constants } from 'node:buffer';
import { dirname } from 'node:path';
import type { RunMeta, Sink, StepRecord } from '../core/history.js';
import type { Tournament } from '../core/tournament.js';
import { diagnose, type DiagnoseOptions, type Diagnosis } from '../core/diagnose.js';

/**
 * Writes `{"kind":"meta",...}` then one `{"kind":"step",...}` line per step. Each line goes to the
 * file with its own `write(2)`, so a killed process leaves every complete line readable.
 */
export class JsonlSink implements Sink {
  private fd: number | null = null;
  private append: boolean;

  /**
   * @param path file to create (parent folders are made); an existing file is truncated, unless
   *   `append` is set.
   * @param options `append: true` continues an existing file (a resumed run): a torn last line left
   *   by a killed process is cut off first, so the file stays readable. @default { append: false }
   */
  constructor(
    readonly path: string,
    options: { append?: boolean } = {},
  ) {
    this.append = options.append ?? false;
  }

  private ensureOpen(): number {
    if (this.fd === null) {
      mkdirSync(dirname(this.path), { recursive: true });
      if (this.append && existsSync(this.path)) {
        // Never through a link planted at the path (src/node/safe-file.ts).
        const fd = openForWrite(this.path, 'r+');
        try {
          const size = fstatSync(fd).size;
          const end = lastNewline(fd, size) + 1; // keep everything up to the last complete line
          if (end < size) ftruncateSync(fd, end);
        } finally {
          closeSync(fd);
        }
        this.fd = openForWrite(this.path, 'a');
      } else {
        this.fd = openForWrite(this.path, this.append ? 'a' : 'w');
      }
    }
    return this.fd;
  }

  open(meta: RunMeta): void {
    writeSync(this.ensureOpen(), `${JSON.stringify({ kind: 'meta', ...meta }, keepNonFinite)}\n`);
  }

  write(record: StepRecord): void {
    writeSync(this.ensureOpen(), `${JSON.stringify({ kind: 'step', ...record }, keepNonFinite)}\n`);
  }

  /** An `auto` selection's tournament, as a line `{ "kind": "tournament", ... }` (the latest one counts). */
  tournament(t: Tournament): void {
    writeSync(this.ensureOpen(), `${JSON.stringify({ kind: 'tournament', ...t }, keepNonFinite)}\n`);
  }

  /** Close the file; a record written afterwards reopens it and continues it (append), never truncates it. */
  close(): void {
    if (this.fd !== null) {
      closeSync(this.fd);
      this.append = true;
    }
    this.fd = null;
  }
}

/** Offset of the last newline of an open file of `size` bytes (-1 if none), read backwards in chunks. */
function lastNewline(fd: number, size: number): number {
  const buf = Buffer.allocUnsafe(64 * 1024);
  for (let end = size; end > 0; ) {
    const start = Math.max(0, end - buf.length);
    const n = readSync(fd, buf, 0, end - start, start);
    const i = buf.subarray(0, n).lastIndexOf(0x0a);
    if (i >= 0) return start + i;
    end = start;
  }
  return -1;
}

/**
 * JSON has no NaN or Infinity (`JSON.stringify` writes `null`): a skipped step's NaN loss is written as
 * the string `"NaN"` (`"Infinity"`, `"-Infinity"`), and {@link readJsonl} reads it back as the number.
 */
function keepNonFinite(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? String(value) : value;
}

function reviveNonFinite(_key: string, value: unknown): unknown {
  return value === 'NaN' ? Number.NaN : value === 'Infinity' ? Number.POSITIVE_INFINITY : value === '-Infinity' ? Number.NEGATIVE_INFINITY : value;
}

/** What {@link readJsonl} returns. */
export interface Trajectory {
  /** The run's facts from the file's `meta` line; null when the file has none. */
  meta: RunMeta | null;
  /** The step records, in file order. */
  records: StepRecord[];
  /** True when the last line was incomplete (a run killed mid-write) and was dropped. */
  tornLastLine: boolean;
  /**
   * The last `auto` tournament line, when the run had a strategy selection. `records` then hold the
   * trajectory the run followed (the winner's trial records keep their `candidate` tag), or, read
   * with `{ candidates: true }`, every candidate's records too (see `followedTrajectory`).
   */
  tournament?: Tournament;
}

/** One line of a JSONL trajectory, as {@link streamJsonl} yields it. */
export type JsonlItem =
  | {
      /** The run's meta line. */
      kind: 'meta';
      /** The run's facts. */
      meta: RunMeta;
      /** 1-based line number in the file. */
      line: number;
    }
  | {
      /** A step record. */
      kind: 'step';
      /** The record, non-finite numbers revived. */
      record: StepRecord;
      /** 1-based line number in the file. */
      line: number;
    }
  | {
      /** An `auto` selection's tournament (the last such line of a file is the final one). */
      kind: 'tournament';
      /** The tournament as written by the trainer. */
      tournament: Tournament;
      /** 1-based line number in the file. */
      line: number;
    }
  | {
      /** The last line was incomplete (a run killed mid-write) and was dropped. */
      kind: 'torn';
      /** 1-based line number in the file. */
      line: number;
    };

/** Bytes read per `read(2)` by {@link streamJsonl}. */
const CHUNK = 1 << 20;
/** The longest line {@link streamJsonl} reads: V8's longest string (a longer line cannot be parsed). */
const MAX_LINE = constants.MAX_STRING_LENGTH;

/**
 * Read a JSONL trajectory line by line, with memory bounded by the longest line (it never holds the
 * file as one string, so files over 512 MiB, V8's longest string, work). A torn last line is reported
 * as `{ kind: 'torn' }`; a line that is not a JSON object elsewhere is an error naming the file and
 * the line (`path:LINE: ...`), as is an unreadable file. Lines of any `kind` other than `meta` are
 * step records. Empty lines are skipped.
 *
 * By default the step records are those of the trajectory the run followed: for an `auto` run (a
 * file with a tournament line), the untagged records and the winner's trial records (equal
 * weights' while no winner was picked; see `followedTrajectory`), found by a first pass over the
 * file for its last tournament line. `{ candidates: true }` yields every candidate's records too.
 */
export function* streamJsonl(path: string, options: JsonlReadOptions = {}): Generator<JsonlItem> {
  if (options.candidates) {
    yield* streamLines(path);
    return;
  }
  let tournament: Tournament | undefined;
  for (const item of streamLines(path)) if (item.kind === 'tournament') tournament = item.tournament;
  const keep = tournament?.winner ?? 'equal';
  for (const item of streamLines(path)) {
    if (item.kind === 'step' && item.record.candidate !== undefined && item.record.candidate !== keep) continue;
    yield item;
  }
}

/** How {@link readJsonl} and {@link streamJsonl} read an `auto` run. */
export interface JsonlReadOptions {
  /**
   * Also give the step records of every candidate of an `auto` selection (tagged `candidate`), not
   * only the trajectory the run followed. @default false
   */
  candidates?: boolean;
}

/** Every line of a JSONL trajectory, candidates' records included (see {@link streamJsonl}). */
function* streamLines(path: string): Generator<JsonlItem> {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new Error(`${path}: cannot open the trajectory (${(e as Error).message})`);
  }
  try {
    const buf = Buffer.allocUnsafe(CHUNK);
    // The pending (unfinished) line, as copies of the chunks it spans, joined once when it ends:
    // each byte is copied at most twice, whatever the line's length (re-joining at every chunk made
    // a 256 MiB line take 149 s).
    let pendingParts: Buffer[] = [];
    let pendingBytes = 0;
    let lineNo = 0;
    let pending: { line: number; error: string } | null = null;
    const parse = function* (bytes: Buffer, start: number, end: number): Generator<JsonlItem> {
      lineNo += 1;
      if (end > start && bytes[end - 1] === 0x0d) end -= 1; // CRLF
      if (end <= start) return;
      if (pending) throw new Error(`${path}:${pending.line}: ${pending.error}`);
      let obj: unknown;
      try {
        obj = JSON.parse(bytes.toString('utf8', start, end), reviveNonFinite);
      } catch (e) {
        // Nesting too deep for the reviver: not a torn line, and not a trajectory line either.
        if (e instanceof RangeError) throw new Error(`${path}:${lineNo}: nested too deeply to read (${e.message}); not a trajectory line`);
        pending = { line: lineNo, error: 'not a JSON line' };
        return;
      }
      if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
        pending = { line: lineNo, error: 'not a JSON object (a trajectory line is { "kind": "meta" | "step", ... })' };
        return;
      }
      const { kind, ...rest2 } = obj as { kind?: unknown } & Record<string, unknown>;
      if (kind === 'meta') yield { kind: 'meta', meta: rest2 as unknown as RunMeta, line: lineNo };
      else if (kind === 'tournament') yield { kind: 'tournament', tournament: rest2 as unknown as Tournament, line: lineNo };
      else yield { kind: 'step', record: rest2 as unknown as StepRecord, line: lineNo };
    };
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buf, 0, CHUNK, null);
      } catch (e) {
        throw new Error(`${path}:${lineNo + 1}: read error (${(e as Error).message})`);
      }
      if (n === 0) break;
      const chunk = buf.subarray(0, n);
      let from = 0;
      for (let nl = chunk.indexOf(0x0a, from); nl >= 0; nl = chunk.indexOf(0x0a, from)) {
        if (pendingBytes) {
          const line = Buffer.concat([...pendingParts, chunk.subarray(from, nl)], pendingBytes + nl - from);
          pendingParts = [];
          pendingBytes = 0;
          yield* parse(line, 0, line.length);
        } else {
          yield* parse(chunk, from, nl);
        }
        from = nl + 1;
      }
      // copy the partial line: `buf` is reused by the next read
      if (from < chunk.length) {
        pendingParts.push(Buffer.from(chunk.subarray(from)));
        pendingBytes += chunk.length - from;
        if (pendingBytes > MAX_LINE) throw new Error(`${path}:${lineNo + 1}: a line longer than ${MAX_LINE} bytes (the longest string V8 can make); not a trajectory line`);
      }
    }
    if (pendingBytes) {
      const rest = Buffer.concat(pendingParts, pendingBytes);
      pendingParts = [];
      yield* parse(rest, 0, rest.length);
    }
    if (pending) {
      const p = pending as { line: number; error: string };
      if (p.error === 'not a JSON line') yield { kind: 'torn', line: p.line };
      else throw new Error(`${path}:${p.line}: ${p.error}`);
    }
  } finally {
    closeSync(fd);
  }
}

/** The step records of a JSONL trajectory, streamed (see {@link streamJsonl}: the followed trajectory by default); meta and torn lines are left out. */
export function* jsonlRecords(path: string, options: JsonlReadOptions = {}): Generator<StepRecord> {
  for (const item of streamJsonl(path, options)) if (item.kind === 'step') yield item.record;
}

/**
 * Read a JSONL trajectory into memory. A torn last line is dropped; a bad line elsewhere is an error
 * naming the file and the line. Reads the file in chunks ({@link streamJsonl}); for very long runs use
 * {@link streamJsonl} or {@link diagnoseJsonl}, which do not hold every record.
 *
 * For an `auto` run, `records` is the trajectory the run followed (the winner's trial records, then
 * the run after the selection), the one the trainer's own summary describes, so that `summarize`,
 * `diagnose` and `writePlots` on it agree with the live run; `{ candidates: true }` keeps every
 * candidate's records as well (tagged `candidate`).
 */
export function readJsonl(path: string, options: JsonlReadOptions = {}): Trajectory {
  let meta: RunMeta | null = null;
  const records: StepRecord[] = [];
  let tornLastLine = false;
  let tournament: Tournament | undefined;
  for (const item of streamJsonl(path, options)) {
    if (item.kind === 'meta') meta = item.meta;
    else if (item.kind === 'step') records.push(item.record);
    else if (item.kind === 'tournament') tournament = item.tournament;
    else tornLastLine = true;
  }
  return tournament ? { meta, records, tornLastLine, tournament } : { meta, records, tornLastLine };
}

/** What {@link diagnoseJsonl} returns: the diagnosis and the file's facts. */
export interface JsonlDiagnosis {
  /** The diagnosis of the file's step records. */
  diagnosis: Diagnosis;
  /** The file's meta line; null when it has none. */
  meta: RunMeta | null;
  /** True when the last line was incomplete (a run killed mid-write) and was dropped. */
  tornLastLine: boolean;
  /** The run's `auto` tournament, when it had a strategy selection (the diagnosis is then of the followed trajectory). */
  tournament?: Tournament;
}

/**
 * {@link diagnose} a JSONL trajectory without holding it in memory: the file is streamed twice
 * (memory bounded by the number of terms and the harm checks' window). An error about a record names
 * the file and the line.
 */
export function diagnoseJsonl(path: string, options: DiagnoseOptions = {}): JsonlDiagnosis {
  let meta: RunMeta | null = null;
  let tornLastLine = false;
  let line = 0;
  const pass = function* (): Generator<StepRecord> {
    for (const item of streamLines(path)) {
      line = item.line;
      if (item.kind === 'meta') meta ??= item.meta;
      else if (item.kind === 'torn') tornLastLine = true;
      else if (item.kind === 'step' && (item.record.candidate === undefined || item.record.candidate === keep)) yield item.record;
    }
  };
  // A first pass reads the meta line (so the harm checks know the strategy) and, for an `auto` run, the
  // final tournament: the passes then keep the trajectory the run followed (untagged records and the
  // winner's trial records; see followedTrajectory).
  let tournament: Tournament | undefined;
  for (const item of streamLines(path)) {
    if (item.kind === 'meta') meta ??= item.meta;
    else if (item.kind === 'tournament') tournament = item.tournament;
  }
  const keep = tournament?.winner ?? 'equal';
  const m = meta as RunMeta | null;
  try {
    const diagnosis = diagnose(pass, { ...(m ? { meta: m } : {}), ...options });
    return tournament ? { diagnosis, meta, tornLastLine, tournament } : { diagnosis, meta, tornLastLine };
  } catch (e) {
    const msg = (e as Error).message;
    if (msg.startsWith(`${path}:`)) throw e;
    throw new Error(`${path}:${line}: ${msg}`);
  }
}
