/**
 * Progress display for long CLI work: a `cli-progress` bar (step, ETA, current losses and alphas) on
 * a terminal; plain lines, about ten per run, when the stream is not a TTY or `CI` is set (logs stay
 * readable).
 *
 * @module
 */
import cliProgress from 'cli-progress';
import type { StepRecord } from '../core/history.js';
import { fmt } from '../core/summary.js';

/** Receives the progress of a run. */
export interface Progress {
  /** After step `step` (1-based) of `total`. */
  update(step: number, record: StepRecord): void;
  /** The run ended (or failed): finish the bar. */
  stop(): void;
}

/** Options of {@link createProgress}. */
export interface ProgressOptions {
  /** Where to draw. @default process.stderr */
  stream?: NodeJS.WriteStream;
  /** Force plain lines (true) or the bar (false). @default plain when not a TTY or when CI is set */
  plain?: boolean;
  /** Plain mode: print every this many steps (and the last). @default about total/10 */
  every?: number;
  /** Clock in ms, for the ETA. @default Date.now */
  now?: () => number;
}

/** "recon L=0.12 α=1.5 | kl L=3.4 α=0.2" */
export function termsLine(record: StepRecord): string {
  return Object.keys(record.loss)
    .map((t) => `${t} L=${fmt(record.loss[t])} α=${fmt(record.weight[t])}`)
    .join(' | ');
}

/** Seconds as "1m05s" / "12s". */
export function formatSeconds(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '?';
  const r = Math.round(s);
  return r >= 60 ? `${Math.floor(r / 60)}m${String(r % 60).padStart(2, '0')}s` : `${r}s`;
}

/** Whether progress should be plain lines here. */
export function wantsPlain(stream: { isTTY?: boolean } = process.stderr): boolean {
  const ci = process.env.CI;
  return !stream.isTTY || (ci !== undefined && ci !== '' && ci !== '0' && ci.toLowerCase() !== 'false');
}

/** A progress display for `total` steps. */
export function createProgress(total: number, label: string, options: ProgressOptions = {}): Progress {
  const stream = options.stream ?? process.stderr;
  const now = options.now ?? Date.now;
  const plain = options.plain ?? wantsPlain(stream);
  const started = now();
  if (plain) {
    const every = options.every ?? Math.max(1, Math.round(total / 10));
    return {
      update(step, record) {
        if (step % every !== 0 && step !== total) return;
        const elapsed = (now() - started) / 1000;
        const eta = step > 0 ? (elapsed / step) * (total - step) : Number.NaN;
        stream.write(`${label} step ${step}/${total} (${Math.round((100 * step) / total)}%) ETA ${formatSeconds(eta)} | ${termsLine(record)}\n`);
      },
      stop() {},
    };
  }
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: `${label} {bar} step {value}/{total} | ETA {eta_formatted} | {terms}`,
      hideCursor: true,
      clearOnComplete: false,
      barsize: 20,
      etaBuffer: 50,
      fps: 10,
      linewrap: false,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { terms: '' });
  return {
    update(step, record) {
      bar.update(step, { terms: termsLine(record) });
    },
    stop() {
      bar.stop();
    },
  };
}
