/**
 * Skips that say why: vitest's summary only counts skipped tests, so a test file that skips prints
 * one line naming what was skipped and why (and how to run it).
 */

/** Print `skipped: <what>: <reason>` when `skip` is true; returns `skip` (for `it.skipIf` / `describe.skipIf`). */
export function skipBecause(skip: boolean, what: string, reason: string): boolean {
  if (skip) console.log(`skipped: ${what}: ${reason}`);
  return skip;
}
