/**
 * The benchmark scripts' one way to write their part of a Markdown file (docs/benchmarks.md): the
 * text between `<!-- <marker>:start -->` and `<!-- <marker>:end -->` is replaced by `body`, or the
 * marked block is appended when the markers are not there yet; the rest of the file is kept.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** Replace (or append) the text between the `marker` markers of `file` with `body`. */
export function writeMarkedSection(file: string, marker: string, body: string): void {
  const start = `<!-- ${marker}:start -->`;
  const end = `<!-- ${marker}:end -->`;
  const block = `${start}\n${body.trim()}\n${end}`;
  let text = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
  const a = text.indexOf(start);
  const b = text.indexOf(end);
  if (a >= 0 && b > a) text = text.slice(0, a) + block + text.slice(b + end.length);
  else text = `${text.trimEnd()}\n\n${block}\n`;
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, text);
}
