/**
 * Sinks that write the trajectory out: JSONL (one JSON object a line, written with a synchronous
 * write per line so a crash loses at most the line being written) and its tolerant reader.
 */
import { closeSync, existsSync, ftruncateSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { RunMeta, Sink, StepRecord } from '../core/history.js';
import type { Tournament } from '../core/tournament.js';

/**
 * Writes `{"kind":"meta",...}` then one `{"kind":"step",...}` line per step. Each line goes to the
 * file with its own `write(2)`, so a killed process leaves every complete line readable.
 */
export class JsonlSink implements Sink {
  private fd: number | null = null;
  private readonly append: boolean;

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
        const text = readFileSync(this.path);
        const end = text.lastIndexOf(0x0a) + 1; // keep everything up to the last complete line
        this.fd = openSync(this.path, 'r+');
        if (end < text.length) ftruncateSync(this.fd, end);
        this.fd = (closeSync(this.fd), openSync(this.path, 'a'));
      } else {
        this.fd = openSync(this.path, this.append ? 'a' : 'w');
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

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
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
   * The last `auto` tournament line, when the run had a strategy selection; `records` then also hold
   * the candidates' records (tagged `candidate`; see `followedTrajectory`).
   */
  tournament?: Tournament;
}

/** Read a JSONL trajectory. A torn last line is dropped; a bad line elsewhere is an error naming it. */
export function readJsonl(path: string): Trajectory {
  const lines = readFileSync(path, 'utf8').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  let meta: RunMeta | null = null;
  const records: StepRecord[] = [];
  let tornLastLine = false;
  let tournament: Tournament | undefined;
  lines.forEach((line, i) => {
    let obj: { kind?: string } & Record<string, unknown>;
    try {
      obj = JSON.parse(line, reviveNonFinite);
    } catch {
      if (i === lines.length - 1) {
        tornLastLine = true;
        return;
      }
      throw new Error(`${path}:${i + 1}: not a JSON line`);
    }
    const { kind, ...rest } = obj;
    if (kind === 'meta') meta = rest as unknown as RunMeta;
    else if (kind === 'tournament') tournament = rest as unknown as Tournament;
    else records.push(rest as unknown as StepRecord);
  });
  return tournament ? { meta, records, tornLastLine, tournament } : { meta, records, tornLastLine };
}
