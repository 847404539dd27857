import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { diagnose } from '../src/core/diagnose.js';
import type { StepRecord } from '../src/core/history.js';
import { summarizeData } from '../src/core/summary.js';
import { diagnoseJsonl, JsonlSink, readJsonl, streamJsonl } from '../src/node/sinks.js';

const dir = mkdtempSync(join(tmpdir(), 'lb-stream-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function rec(s: number, extra = ''): StepRecord {
  const w = { a: 1 + Math.sin(s / 9) / 2, b: 2 + s / 1000 };
  const l = { a: 1 / (1 + s), b: 3 + Math.cos(s) };
  const r: StepRecord = { step: s, loss: l, weight: w, weighted: { a: w.a * l.a, b: w.b * l.b }, gradNorm: { a: 1, b: 0.2 }, total: 0 };
  if (extra) (r as unknown as Record<string, string>).note = extra;
  return r;
}

function writeRun(name: string, n: number, pad = ''): string {
  const path = join(dir, name);
  const sink = new JsonlSink(path);
  sink.open({ strategy: 'gradnorm', options: { minWeight: 1e-3 }, terms: ['a', 'b'], backend: 'cpu', gradients: 'shared', startedAt: '' });
  for (let s = 0; s < n; s++) sink.write(rec(s, pad));
  sink.close();
  return path;
}

describe('streamed trajectory reading', () => {
  it('reads lines across chunk boundaries exactly as the whole file parsed at once', () => {
    // ~6 KB lines: several cross the reader's 1 MiB chunk boundaries
    const path = writeRun('big-lines.jsonl', 400, 'x'.repeat(6000));
    const expected = readFileSync(path, 'utf8').trim().split('\n').slice(1).map((l) => {
      const { kind: _k, ...r } = JSON.parse(l);
      return r;
    });
    const t = readJsonl(path);
    expect(t.records).toEqual(expected);
    expect(t.meta?.strategy).toBe('gradnorm');
    expect(t.tornLastLine).toBe(false);
  });

  it('every reader error names the file and the line', () => {
    const path = join(dir, 'bad.jsonl');
    writeFileSync(path, `${JSON.stringify({ kind: 'meta', strategy: 'x', terms: ['a'] })}\n{"kind":"step","step":0}\n\n[1,2]\n{"kind":"step","step":1}\n`);
    expect(() => readJsonl(path)).toThrow(new RegExp(`bad\\.jsonl:4: not a JSON object`));
    writeFileSync(path, '{"kind":"step"}\n{oops\n{"kind":"step"}\n');
    expect(() => [...streamJsonl(path)]).toThrow(/bad\.jsonl:2: not a JSON line/);
    expect(() => readJsonl(join(dir, 'missing.jsonl'))).toThrow(/missing\.jsonl: cannot open/);
    // a torn last line (with or without CRLF endings before it) is dropped and reported
    writeFileSync(path, '{"kind":"step","step":0}\r\n{"kind":"st');
    const t = readJsonl(path);
    expect(t.records).toEqual([{ step: 0 }]);
    expect(t.tornLastLine).toBe(true);
  });

  it('diagnoseJsonl: a record diagnose rejects is named by file and line', () => {
    const path = writeRun('hole.jsonl', 30);
    const lines = readFileSync(path, 'utf8').split('\n');
    const r = JSON.parse(lines[12]);
    delete r.weight.b;
    lines[12] = JSON.stringify(r);
    writeFileSync(path, lines.join('\n'));
    expect(() => diagnoseJsonl(path)).toThrow(/hole\.jsonl:13: diagnose: record 11 \(step 11\) has no weight or loss for term "b"/);
    const empty = join(dir, 'empty.jsonl');
    writeFileSync(empty, `${JSON.stringify({ kind: 'meta', strategy: 'x', terms: ['a'] })}\n`);
    expect(() => diagnoseJsonl(empty)).toThrow(/empty\.jsonl:1: diagnose: the trajectory has no steps/);
  });

  it('diagnoseJsonl (streamed twice) gives the diagnosis of the records in memory; the meta line feeds the harm checks', () => {
    const path = writeRun('run.jsonl', 700);
    const t = readJsonl(path);
    const { diagnosis, meta } = diagnoseJsonl(path);
    expect(meta?.strategy).toBe('gradnorm');
    const inMemory = diagnose(t.records, { meta: t.meta! });
    expect(diagnosis.text).toBe(inMemory.text);
    expect(JSON.parse(JSON.stringify(diagnosis))).toEqual(JSON.parse(JSON.stringify(inMemory)));
    // summarizeData over a generator equals the array's
    expect(summarizeData((function* () { yield* t.records; })())).toEqual(summarizeData(t.records));
  });

  it('JsonlSink append cuts a torn last line by reading only the file\'s end', () => {
    const path = writeRun('append.jsonl', 5);
    writeFileSync(path, `${readFileSync(path, 'utf8')}{"kind":"step","st`);
    const sink = new JsonlSink(path, { append: true });
    sink.write(rec(5));
    sink.close();
    const t = readJsonl(path);
    expect(t.records.map((r) => r.step)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(t.tornLastLine).toBe(false);
  });
});

describe('no array spread into a call in src/', () => {
  it('Math.min(...x), Math.max(...x), push(...x) and the like are gone (they overflow the stack for long arrays); forwarding a rest parameter is allowed', async () => {
    const { readdirSync } = await import('node:fs');
    const root = join(import.meta.dirname, '..', 'src');
    const files: string[] = [];
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        if (e.isDirectory()) walk(join(d, e.name));
        else if (e.name.endsWith('.ts')) files.push(join(d, e.name));
      }
    };
    walk(root);
    // the TypeScript parser finds every spread element that is an argument of a call or `new`
    const ts = (await import('typescript')).default;
    const offenders: string[] = [];
    // forwarding a function's own rest parameter (`(...args) => f(...args)`) is not an array of data
    const forwardsRest = (node: import('typescript').SpreadElement): boolean => {
      if (!ts.isIdentifier(node.expression)) return false;
      const name = node.expression.text;
      for (let p: import('typescript').Node | undefined = node.parent; p; p = p.parent) {
        if (ts.isFunctionLike(p)) return p.parameters.some((q) => !!q.dotDotDotToken && ts.isIdentifier(q.name) && q.name.text === name);
      }
      return false;
    };
    for (const f of files) {
      const src = ts.createSourceFile(f, readFileSync(f, 'utf8'), ts.ScriptTarget.Latest, true);
      const visit = (node: import('typescript').Node): void => {
        if (ts.isSpreadElement(node) && (ts.isCallExpression(node.parent) || ts.isNewExpression(node.parent)) && !forwardsRest(node)) {
          const { line } = src.getLineAndCharacterOfPosition(node.getStart());
          offenders.push(`${f}:${line + 1}: ${node.parent.getText().slice(0, 80)}`);
        }
        ts.forEachChild(node, visit);
      };
      visit(src);
    }
    expect(offenders).toEqual([]);
  });
});
