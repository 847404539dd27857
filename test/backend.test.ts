/** Backend selection: tfjs-node when present (it is not, here), else wasm, else cpu; env override. */
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..');
const run = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(join(root, 'node_modules', '.bin', 'tsx'), [join(root, 'test', 'scripts', 'backend-check.ts'), ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });

describe('initBackend', () => {
  it('falls back from an absent tfjs-node to wasm with a warning; honours LOSS_BALANCER_BACKEND; rejects unknown names', () => {
    const r = run([], { LOSS_BALANCER_BACKEND: 'cpu' });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(out.fromEnv).toBe('cpu');
    expect(out.tensorflowFallback).toBe('wasm');
    expect(out.warnings).toContain('loss-balancer: backend "tensorflow" is not available; using "wasm"');
    expect(out.cpu).toBe('cpu');
    expect(out.active).toBe('cpu');
    expect(out.unknown).toMatch(/unknown backend "gpu"; use one of auto, tensorflow, wasm, cpu/);
  });

  it('an uncaught error in user code is reported plainly (the wasm glue does not dump its source)', () => {
    const r = run(['--throw']);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('boom from user code');
    expect(r.stderr.length).toBeLessThan(3000);
  });

  it('importing the library registers no backend; top-level sync ops work; initBackend() keeps a chosen backend unless asked to choose', () => {
    const env = { ...process.env } as Record<string, string>;
    delete env.LOSS_BALANCER_BACKEND;
    const r = spawnSync(join(root, 'node_modules', '.bin', 'tsx'), [join(root, 'test', 'scripts', 'import-effects.ts')], { encoding: 'utf8', env });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(out.after).toBe(out.before);
    expect(out.after.split(',')).not.toContain('wasm');
    expect(out.topLevelSum).toBe(6);
    expect(out.implicit).toBe('cpu');
    expect(out.kept).toBe('cpu');
    expect(out.keptActive).toBe('cpu');
    expect(out.chosen).toBe('wasm');
    expect(out.chosenActive).toBe('wasm');
    expect(r.stderr).not.toMatch(/already registered|has not yet been initialized/);
  });
});
