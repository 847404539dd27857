/**
 * Nesting limits for JSON and YAML text and for plain values (issue 26, item 16). Deeply nested input
 * (a 200,000-deep `config.json`, a 5,000-deep strategy option, a checkpoint cut short inside deep
 * arrays) made recursive code (schema validation, error reporting) fail with a bare
 * `Maximum call stack size exceeded` that named no file or field. These checks are iterative and run
 * first, so the error names the file, the line and column, or the field.
 *
 * Browser-safe, no tfjs.
 * @module
 */

/** Most levels of nesting accepted in a config file, a run config or a strategy's options (real ones use under 10). */
export const MAX_CONFIG_DEPTH = 64;

/** Most levels of nesting accepted in a checkpoint file (real ones use under 20). */
export const MAX_CHECKPOINT_DEPTH = 256;

/** Where text nests too deeply. */
export interface DepthAt {
  /** 0-based character offset of the opening bracket that went past the limit. */
  offset: number;
  /** 1-based line. */
  line: number;
  /** 1-based column. */
  column: number;
  /** The keys and indices leading to that bracket (as far as the text is JSON). */
  path: string[];
}

/**
 * The first opening bracket (`[` or `{`, outside double-quoted strings) at which the nesting of
 * `text` exceeds `max` levels, or null. One linear pass, no recursion; valid or not (a file cut short
 * is scanned as far as it goes). For YAML text, flow collections count the same way.
 */
export function textDepthExceeded(text: string, max: number): DepthAt | null {
  // per open container: an object's current key, or an array's current index
  const keys: (string | number)[] = [];
  let lastString = '';
  let stringStart = 0;
  let inString = false;
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10) {
      line += 1;
      lineStart = i + 1;
      continue;
    }
    if (inString) {
      if (c === 92) i += 1; // backslash: skip the escaped character
      else if (c === 34) {
        inString = false;
        lastString = text.slice(stringStart, i);
      }
      continue;
    }
    if (c === 34) {
      inString = true;
      stringStart = i + 1;
    } else if (c === 123 || c === 91) {
      if (keys.length >= max) return { offset: i, line, column: i - lineStart + 1, path: keys.map(String) };
      keys.push(c === 91 ? 0 : '');
    } else if ((c === 125 || c === 93) && keys.length) keys.pop();
    else if (c === 58 && keys.length && typeof keys[keys.length - 1] === 'string') keys[keys.length - 1] = lastString;
    else if (c === 44 && keys.length && typeof keys[keys.length - 1] === 'number') (keys[keys.length - 1] as number) += 1;
  }
  return null;
}

/**
 * The path (keys and indices) to the first value nested more than `max` levels deep inside `value`
 * (objects and arrays count; the top level is depth 0), or null. Iterative; an object met twice is
 * walked once (so a value that refers to itself ends).
 */
export function valueDepthExceeded(value: unknown, max: number): string[] | null {
  const seen = new Set<object>();
  const stack: { v: unknown; depth: number; path: string[] }[] = [{ v: value, depth: 0, path: [] }];
  while (stack.length) {
    const { v, depth, path } = stack.pop()!;
    if (v === null || typeof v !== 'object' || seen.has(v)) continue;
    seen.add(v);
    if (depth >= max) return path;
    const entries: [string, unknown][] = Array.isArray(v) ? v.map((x, i) => [String(i), x]) : Object.entries(v);
    for (let k = entries.length - 1; k >= 0; k--) {
      const [key, x] = entries[k];
      if (x !== null && typeof x === 'object') stack.push({ v: x, depth: depth + 1, path: [...path, key] });
    }
  }
  return null;
}

/** A short form of a long dotted path for messages: the first 3 and the last 2 parts. */
export function shortPath(path: readonly string[]): string {
  return path.length <= 6 ? path.join('.') : `${path.slice(0, 3).join('.')}.….${path.slice(-2).join('.')} (${path.length} levels)`;
}
