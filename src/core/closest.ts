/**
 * The closest known name to a misspelt one, for error messages (option names, strategy names).
 * Browser-safe, no dependencies.
 */

/**
 * Edit distance, case-insensitive: a letter added, dropped or changed, or two neighbours swapped,
 * each counts 1 (optimal string alignment). For short strings only.
 */
function distance(a: string, b: string): number {
  const [x, y] = [a.toLowerCase(), b.toLowerCase()];
  const d = Array.from({ length: x.length + 1 }, (_, i) => Array.from({ length: y.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= x.length; i++) {
    for (let j = 1; j <= y.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (x[i - 1] === y[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && x[i - 1] === y[j - 2] && x[i - 2] === y[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[x.length][y.length];
}

/**
 * The known name closest to `name` when it is close enough to be a misspelling (at most
 * max(2, ⌊length/3⌋) edits), the first of `known` on a tie; else undefined.
 */
export function closest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const dist = distance(name, k);
    if (dist < bestD) [best, bestD] = [k, dist];
  }
  return bestD <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}
