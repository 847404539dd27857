/**
 * Opening files for writing so that a link planted at the path cannot redirect the write (issue 26,
 * item 1). Everything the CLI and the sinks write goes through {@link openForWrite},
 * {@link writeFileSafe} or {@link ensureDir}:
 *
 * - a symbolic link at the file's own path is refused: checked with `lstat` first (so the message
 *   names the link and its target), and the file is opened with `O_NOFOLLOW` where the platform has
 *   it, so a link planted between the check and the `open(2)` fails the open (`ELOOP`) instead of
 *   being followed;
 * - a regular file with more than one hard link is refused before it is truncated (writing it would
 *   change the other name's contents too);
 * - anything that is not a regular file (a folder, a FIFO, a device) is refused;
 * - a folder the library creates itself (a run's `plots/`, TensorBoard's `auto/<label>/`) must be a
 *   real folder, not a link to one.
 *
 * The folders a user names (`--out`, a sink's path) are the user's choice and are used as given,
 * symlinks in them included: only the names the library adds are checked.
 * @module
 */
import { closeSync, constants, fstatSync, ftruncateSync, lstatSync, mkdirSync, openSync, readlinkSync, writeSync, type Stats } from 'node:fs';
import { BalancerError } from '../core/errors.js';

/** `O_NOFOLLOW` where the platform has it (Linux, macOS); 0 elsewhere (the `lstat` check remains). */
const NOFOLLOW: number = (constants as { O_NOFOLLOW?: number }).O_NOFOLLOW ?? 0;

/** A write was refused because the path is a link (or not a regular file / folder). */
export class UnsafePathError extends BalancerError {
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`refusing to write ${path}: ${reason}; remove it or choose another output path`);
    this.name = 'UnsafePathError';
  }
}

function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

function linkTarget(path: string): string {
  try {
    return readlinkSync(path);
  } catch {
    return '?';
  }
}

/**
 * Throw an {@link UnsafePathError} when `path` exists and is a symbolic link, or is not what it is
 * meant to be (`kind`: a regular file, or a folder). A missing path passes.
 */
export function refuseLink(path: string, kind: 'file' | 'dir' = 'file'): void {
  const st = lstatOrNull(path);
  if (!st) return;
  if (st.isSymbolicLink()) throw new UnsafePathError(path, `it is a symbolic link (to ${linkTarget(path)})`);
  if (kind === 'file' && !st.isFile()) throw new UnsafePathError(path, `it is not a regular file`);
  if (kind === 'dir' && !st.isDirectory()) throw new UnsafePathError(path, `it is not a folder`);
  if (kind === 'file' && st.nlink > 1) throw new UnsafePathError(path, `it has ${st.nlink} hard links (writing it would change the other names too)`);
}

/**
 * Open `path` for writing without following a link there. `mode`: `'w'` creates or truncates,
 * `'a'` creates or appends, `'r+'` opens an existing file for reading and writing.
 * @throws UnsafePathError when `path` is a symbolic link, a hard-linked file or not a regular file.
 */
export function openForWrite(path: string, mode: 'w' | 'a' | 'r+'): number {
  refuseLink(path);
  const { O_WRONLY, O_RDWR, O_CREAT, O_APPEND } = constants;
  const flags = (mode === 'w' ? O_WRONLY | O_CREAT : mode === 'a' ? O_WRONLY | O_CREAT | O_APPEND : O_RDWR) | NOFOLLOW;
  let fd: number;
  try {
    fd = openSync(path, flags, 0o666);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // Linux gives ELOOP for O_NOFOLLOW on a link; FreeBSD EMLINK.
    if (code === 'ELOOP' || code === 'EMLINK') throw new UnsafePathError(path, `it is a symbolic link (to ${linkTarget(path)})`);
    throw e;
  }
  try {
    // Checked on the open file: what was opened is what gets written.
    const st = fstatSync(fd);
    if (!st.isFile()) throw new UnsafePathError(path, 'it is not a regular file');
    if (st.nlink > 1) throw new UnsafePathError(path, `it has ${st.nlink} hard links (writing it would change the other names too)`);
    if (mode === 'w') ftruncateSync(fd, 0);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  return fd;
}

/** Write `data` to `path` (created or truncated) through {@link openForWrite}. */
export function writeFileSafe(path: string, data: string | Uint8Array): void {
  const fd = openForWrite(path, 'w');
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off);
  } finally {
    closeSync(fd);
  }
}

/**
 * Create the folder `dir` (and its parents) unless it exists, then check that `dir` itself is a real
 * folder and not a link to one.
 * @throws UnsafePathError when `dir` is a symbolic link or not a folder.
 */
export function ensureDir(dir: string): void {
  refuseLink(dir, 'dir');
  mkdirSync(dir, { recursive: true });
  refuseLink(dir, 'dir');
}
