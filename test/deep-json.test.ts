/**
 * Issue 26, item 16: deeply nested JSON (a checkpoint cut short, a 200,000-deep `config.json`, a
 * 5,000-deep strategy option) gave a bare `Maximum call stack size exceeded` naming no file or field.
 * Nesting is now checked iteratively first (src/core/json-depth.ts): config files and options allow
 * 64 levels, checkpoints 256, and the error names the file with line and column, or the field. Also a
 * fuzz over random nestings of arrays and objects at every depth up to 2,000: never a RangeError.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { MAX_CONFIG_DEPTH, textDepthExceeded, valueDepthExceeded } from '../src/core/json-depth.js';
import { BalancerError, OptionError } from '../src/core/errors.js';
import { create } from '../src/core/registry.js';
import { readCheckpoint } from '../src/node/checkpoint.js';
import { ConfigError, loadRunConfig, validateRunConfig } from '../src/node/run.js';
import { readJsonl } from '../src/node/sinks.js';

const dir = mkdtempSync(join(tmpdir(), 'lb-deep-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const file = (ext: string, text: string) => {
  const f = join(dir, `f${n++}${ext}`);
  writeFileSync(f, text);
  return f;
};
const arrays = (d: number, leaf = '1') => '['.repeat(d) + leaf + ']'.repeat(d);
const objects = (d: number) => '{"a":'.repeat(d) + '1' + '}'.repeat(d);

/** The error `fn` throws (fails the test when it throws none). */
function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
}

describe('config files', () => {
  it('a 200,000-deep config.json: ConfigError naming the file, line and column', () => {
    const f = file('.json', `{"strategy": "fixed",\n "example": ${arrays(200_000)}}`);
    const e = thrown(() => loadRunConfig(f));
    expect(e).toBeInstanceOf(ConfigError);
    expect(e.message).toContain(f);
    expect(e.message).toMatch(/line 2, column \d+.*at most 64 levels of nesting/);
  });

  it.each(['.json', '.yaml'])('a 5,000-deep strategy option in a %s config: ConfigError, no stack overflow', (ext) => {
    const f = file(ext, ext === '.json' ? `{"strategy":{"name":"gradnorm","alpha":${arrays(5000)}}}` : `strategy: {name: gradnorm, alpha: ${arrays(5000)}}\n`);
    const e = thrown(() => loadRunConfig(f));
    expect(e).toBeInstanceOf(ConfigError);
    expect(e.message).toMatch(/levels of nesting/);
    expect(e.message).not.toMatch(/call stack/);
  });

  it('block-style YAML nested 2,000 deep (indentation): the file, the line, and the limit', () => {
    let t = 'strategy: fixed\nexample:\n';
    for (let i = 0; i < 2000; i++) t += `${'  '.repeat(i + 1)}a:\n`;
    const e = thrown(() => loadRunConfig(file('.yaml', `${t}${'  '.repeat(2001)}1\n`)));
    expect(e).toBeInstanceOf(ConfigError);
    expect(e.message).toMatch(/field "\(file\)" got "nesting at line \d+, column \d+"; allowed: at most 64 levels of nesting/);
  });

  it('a deep value in a config built in code names the field', () => {
    const e = thrown(() => validateRunConfig({ strategy: { name: 'gradnorm', alpha: JSON.parse(objects(5000)) } }, 'c.json'));
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as ConfigError).field).toMatch(/^strategy\.alpha\.a\.…/);
  });
});

describe('strategy options', () => {
  it.each([
    ['gradnorm', 'alpha', () => JSON.parse(arrays(5000))],
    ['fixed', 'weights', () => JSON.parse(objects(5000))],
    ['fixed', 'warmup', () => ({ steps: 1, weights: JSON.parse(objects(5000)) })],
    ['mgda', 'bounds', () => JSON.parse(arrays(100_000))],
  ] as const)('%s option %s nested 5,000+ deep: OptionError naming the option', (name, key, value) => {
    const e = thrown(() => create({ name, [key]: value() } as never));
    expect(e).toBeInstanceOf(OptionError);
    expect((e as OptionError).field.startsWith(key)).toBe(true);
    expect(e.message).toMatch(/at most 64 levels of nesting/);
  });

  it('an auto candidate nested 5,000 deep: named by option and index', async () => {
    const { parseAuto } = await import('../src/core/auto-config.js');
    const { checkSpec } = await import('../src/core/registry.js');
    const e = thrown(() => parseAuto({ name: 'auto', candidates: ['fixed', { name: 'gradnorm', alpha: JSON.parse(arrays(5000)) }] }, checkSpec));
    expect((e as OptionError).field).toMatch(/^candidates\.1\.alpha\./);
  });

  it('ordinary nesting is untouched', () => {
    expect(() => create({ name: 'fixed', weights: { a: 1 }, warmup: { steps: 2, weights: { a: 1 } } } as never)).not.toThrow();
  });
});

const head = '{"format":"loss-balancer/checkpoint","version":2,"kind":"balancer","state":';

describe('checkpoints and trajectories', () => {

  it('a checkpoint cut short inside 20,000 nested arrays: an error naming the file, line and column', () => {
    const f = file('.json', `${head}${arrays(20_000).slice(0, 20_005)}`);
    const e = thrown(() => readCheckpoint(f));
    expect(e).toBeInstanceOf(BalancerError);
    expect(e.message).toMatch(new RegExp(`${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: field "state\\.0\\.0\\.….*": nested more than 256 levels deep at line 1, column \\d+`));
  });

  it('a checkpoint cut short at ordinary depth still names the field (unchanged)', () => {
    const f = file('.json', `${head}{"step": 3, "weights": [1, 2`);
    expect(() => readCheckpoint(f)).toThrow(/field "state\.weights": not valid JSON at line 1/);
  });

  it('a JSONL line nested 200,000 deep: an error naming the file and line', () => {
    const f = file('.jsonl', `{"kind":"meta","strategy":"fixed"}\n{"kind":"step","step":0,"loss":{"a":1},"weight":{"a":1},"total":1,"info":${arrays(200_000)}}\n`);
    expect(() => readJsonl(f)).toThrow(new RegExp(`:2: nested too deeply`));
  });
});

describe('fuzz: random nestings never overflow the stack', () => {
  const nesting = fc.array(fc.constantFrom('[', '{"k":', '{"a":1,"b":'), { minLength: 1, maxLength: 2000 });
  const close = (opens: string[]) => opens.map((o) => (o === '[' ? ']' : '}')).reverse().join('');

  it('config files, strategy options and checkpoints: an accepted value or a named error', () => {
    fc.assert(
      fc.property(nesting, fc.boolean(), (opens, cut) => {
        const body = opens.join('') + '1' + close(opens);
        const text = cut ? body.slice(0, Math.floor(body.length / 2)) : body;
        for (const run of [
          () => loadRunConfig(file('.json', `{"strategy":{"name":"gradnorm","alpha":${text}}}`)),
          () => loadRunConfig(file('.yaml', `strategy: {name: gradnorm, alpha: ${text}}\n`)),
          () => readCheckpoint(file('.json', `${head}${text}}`)),
          () => create({ name: 'gradnorm', alpha: cut ? 1 : JSON.parse(text) } as never),
        ]) {
          try {
            run();
          } catch (e) {
            expect(e, String(e)).toBeInstanceOf(Error);
            expect(e, String(e)).not.toBeInstanceOf(RangeError);
            expect(e, String(e)).not.toBeInstanceOf(ReferenceError);
            expect((e as Error).message).not.toMatch(/call stack/);
          }
        }
      }),
      { numRuns: 60, seed: 16 },
    );
  });
});

describe('the depth helpers', () => {
  it('textDepthExceeded counts brackets outside strings only', () => {
    expect(textDepthExceeded('"[[[[[[["', 2)).toBeNull();
    expect(textDepthExceeded('["\\"[[[["]', 1)).toBeNull();
    expect(textDepthExceeded('[\n [[', 2)).toEqual({ offset: 4, line: 2, column: 3, path: ['0', '0'] });
    expect(textDepthExceeded('{"a": 1, "b": [2, {"c": [[', 4)?.path).toEqual(['b', '1', 'c', '0']);
  });

  it('valueDepthExceeded walks iteratively, names the path, and ends on a value that refers to itself', () => {
    const deep = JSON.parse(objects(1000));
    expect(valueDepthExceeded(deep, MAX_CONFIG_DEPTH)).toHaveLength(MAX_CONFIG_DEPTH);
    const self: Record<string, unknown> = { a: 1 };
    self.me = self;
    expect(valueDepthExceeded(self, 3)).toBeNull();
    expect(valueDepthExceeded({ a: [{ b: [] }] }, 4)).toBeNull();
    expect(valueDepthExceeded({ a: [{ b: [] }] }, 3)).toEqual(['a', '0', 'b']);
  });
});
