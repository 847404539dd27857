/**
 * The strategy documentation keeps up with the registry: every registered strategy has a row in the
 * table of docs/strategies.md and in the README's strategy table, and the README's documentation
 * list links every guide. Pure file reads (no tfjs).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { list } from '../src/core/registry.js';

const root = resolve(import.meta.dirname, '..');
const read = (path: string): string => readFileSync(join(root, path), 'utf8');
/** Names in the first column of markdown table rows: "| `name` | …". */
const tableNames = (md: string): string[] => [...md.matchAll(/^\| `([\w-]+)` \|/gm)].map((m) => m[1]);
const registered = list().map((s) => s.name);

describe('strategy docs', () => {
  it('lists strategies at all', () => expect(registered.length).toBeGreaterThan(0));

  it('docs/strategies.md has a row for every registered strategy', () => {
    const rows = tableNames(read('docs/strategies.md'));
    expect(registered.filter((n) => !rows.includes(n))).toEqual([]);
  });

  it('the README strategy table has a row for every registered strategy', () => {
    const readme = read('README.md');
    const section = readme.slice(readme.indexOf('## Strategies'), readme.indexOf('\n## ', readme.indexOf('## Strategies') + 1));
    expect(registered.filter((n) => !tableNames(section).includes(n))).toEqual([]);
  });

  it('the README documentation list links every docs/guide*.md', () => {
    const readme = read('README.md');
    const guides = readdirSync(join(root, 'docs')).filter((f) => /^guide.*\.md$/.test(f));
    expect(guides.filter((g) => !readme.includes(`(docs/${g})`))).toEqual([]);
  });
});

describe('code in the docs imports what the entries export', () => {
  const entries: Record<string, string> = {
    'loss-balancer': '../src/index.js',
    'loss-balancer/browser': '../src/browser.js',
    'loss-balancer/plot': '../src/viz/plot.js',
    'loss-balancer/report': '../src/viz/report.js',
    'loss-balancer/tensorboard': '../src/node/tensorboard.js',
    'loss-balancer/strategies': '../strategies/index.js',
  };
  const files = ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
  it("every `import { … } from 'loss-balancer…'` in README.md and docs/*.md names an export of that entry", async () => {
    const missing: string[] = [];
    for (const file of files) {
      for (const m of read(file).matchAll(/import\s+(?:type\s+)?\{([^}]*)\}\s+from\s+'(loss-balancer[^']*)'/g)) {
        const mod = entries[m[2]];
        if (!mod) {
          missing.push(`${file}: unknown entry ${m[2]}`);
          continue;
        }
        const exported = await import(mod);
        for (const raw of m[1].split(',')) {
          const name = raw.trim().replace(/^type\s+/, '').split(/\s+as\s+/)[0];
          if (name && !/^[A-Z]/.test(name) && !(name in exported)) missing.push(`${file}: ${name} from '${m[2]}'`);
        }
      }
    }
    expect(missing).toEqual([]);
  }, 60_000);
});
