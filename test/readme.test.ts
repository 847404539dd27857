/**
 * The README's examples are tests: every ```ts block after a `<!-- readme-test: NAME -->` marker is
 * run in a child process with `loss-balancer` resolved to this checkout's src/index.ts.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const blocks = [...readme.matchAll(/<!-- readme-test: ([\w-]+) -->\s*```ts\n([\s\S]*?)```/g)].map((m) => ({ name: m[1], code: m[2] }));

describe('README examples', () => {
  it('has at least one tested example', () => expect(blocks.length).toBeGreaterThan(0));
  for (const { name, code } of blocks) {
    it(`runs: ${name}`, () => {
      const dir = mkdtempSync(join(tmpdir(), 'lb-readme-'));
      const file = join(root, 'test', `.readme-${name}-${process.pid}.ts`);
      writeFileSync(file, code.replace(/from 'loss-balancer'/g, `from '../src/index.js'`));
      try {
        const out = execFileSync(join(root, 'node_modules', '.bin', 'tsx'), [file], { cwd: dir, encoding: 'utf8', env: { ...process.env, LOSS_BALANCER_BACKEND: 'wasm' } });
        if (name === 'custom-loop') expect(out).toMatch(/learned: recon ended at [\d.]+× kl/);
        else expect(out.trim().length).toBeGreaterThan(0);
      } finally {
        execFileSync('rm', ['-f', file]);
      }
    });
  }
});
