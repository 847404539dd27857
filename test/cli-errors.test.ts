/**
 * Error lines of the command line, in process (no child process): each names the command and the
 * path at fault with one `loss-balancer:` prefix; a missing optional plotting peer names every
 * missing package and the exact `npm install` command.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../src/node/cli.js';
import { MissingPeerError, missingPeers, PLOT_PEERS } from '../src/viz/peers.js';
import { runExample, validateRunConfig } from '../src/node/run.js';

const dir = mkdtempSync(join(tmpdir(), 'lb-cli-errors-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => {
  process.exitCode = 0;
  vi.restoreAllMocks();
});

/** Run the CLI in process; what it wrote to stderr. */
async function stderrOf(args: string[]): Promise<string> {
  let err = '';
  vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => {
    err += String(s);
    return true;
  });
  vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  await main(['node', 'loss-balancer', ...args]);
  return err;
}

describe('CLI error lines name the command and the path', () => {
  it('diagnose <missing path>: "diagnose:", the path, one prefix', async () => {
    const p = join(dir, 'nope.jsonl');
    const err = await stderrOf(['diagnose', p]);
    expect(err).toBe(`loss-balancer: diagnose: "${p}" does not exist (give a .jsonl trajectory or a run folder holding one)\n`);
    expect(process.exitCode).toBe(1);
  });

  it('diagnose <folder without a trajectory> and report <missing path> name their own command', async () => {
    const empty = mkdtempSync(join(dir, 'empty-'));
    expect(await stderrOf(['diagnose', empty])).toMatch(new RegExp(`^loss-balancer: diagnose: no trajectory\\.jsonl .*"${empty}"\\n$`));
    const p = join(dir, 'nothing');
    expect(await stderrOf(['report', p])).toMatch(new RegExp(`^loss-balancer: report: "${p}" does not exist`));
  });

  it('run <missing config> names the file, with one prefix', async () => {
    const p = join(dir, 'missing.yaml');
    const err = await stderrOf(['run', p]);
    expect(err).toContain(p);
    expect(err.match(/loss-balancer:/g)).toHaveLength(1);
  });
});

describe('a missing optional plotting peer', () => {
  it('the message has no prefix of its own, names every missing package and the exact npm install command', () => {
    const e = new MissingPeerError(['@resvg/resvg-js', 'vega']);
    expect(e.message).toBe(
      'charts and the HTML report need the optional peer dependencies vega, vega-lite and @resvg/resvg-js; not installed: vega and @resvg/resvg-js. Install them with: npm install vega @resvg/resvg-js',
    );
    expect(e.missing).toEqual(['vega', '@resvg/resvg-js']);
    expect(new MissingPeerError(['@resvg/resvg-js']).message).toMatch(/not installed: @resvg\/resvg-js\. Install it with: npm install @resvg\/resvg-js$/);
  });

  it('missingPeers finds every missing one by resolution (resvg too), and none here', () => {
    const gone = new Set(['vega', '@resvg/resvg-js']);
    const resolve = (s: string) => {
      if (gone.has(s)) throw Object.assign(new Error(`Cannot find module '${s}'`), { code: 'MODULE_NOT_FOUND' });
      return `/x/${s}`;
    };
    expect(missingPeers(resolve)).toEqual(['vega', '@resvg/resvg-js']);
    expect(missingPeers()).toEqual([]); // this checkout has them (devDependencies)
    expect(PLOT_PEERS).toEqual(['vega', 'vega-lite', '@resvg/resvg-js']);
  });

  it('through the CLI: one "loss-balancer:" prefix and the install command', async () => {
    const traj = join(dir, 'one.jsonl');
    writeFileSync(traj, '');
    vi.resetModules();
    // The report's vega import fails as Node fails it for a package that is not installed.
    vi.doMock('../src/viz/peers.js', async (importOriginal) => {
      const real = await importOriginal<typeof import('../src/viz/peers.js')>();
      return { ...real, loadVega: () => Promise.reject(new real.MissingPeerError(['vega'])) };
    });
    try {
      const { main: fresh } = await import('../src/node/cli.js');
      let err = '';
      vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => {
        err += String(s);
        return true;
      });
      vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
      writeFileSync(traj, `${JSON.stringify({ kind: 'meta', meta: { strategy: 'fixed', options: {}, terms: ['a'], backend: 'cpu', gradients: 'none', startedAt: '2026-01-01T00:00:00Z' } })}\n${JSON.stringify({ step: 0, loss: { a: 1 }, weight: { a: 1 }, weighted: { a: 1 }, total: 1 })}\n`);
      await fresh(['node', 'loss-balancer', 'report', traj, '--out', join(dir, 'r.html')]);
      expect(err.match(/loss-balancer:/g)).toHaveLength(1);
      expect(err).toMatch(/^loss-balancer: charts and the HTML report need .*not installed: vega\. Install it with: npm install vega\n$/);
    } finally {
      vi.doUnmock('../src/viz/peers.js');
      vi.resetModules();
    }
  });
});

describe('run with a plotting peer missing fails before training, creating nothing', () => {
  const gone = new Set(['vega', '@resvg/resvg-js']);
  const fakeResolve = (s: string) => {
    if (gone.has(s)) throw Object.assign(new Error(`Cannot find module '${s}'`), { code: 'MODULE_NOT_FOUND' });
    return `/x/${s}`;
  };

  it('runExample: MissingPeerError naming every missing package, no step taken, no folder', async () => {
    const out = join(dir, 'peers-out');
    const cfg = validateRunConfig({ name: 'p', strategy: 'fixed', steps: 3, output: out, backend: 'cpu' });
    let steps = 0;
    const e = await runExample(cfg, () => (steps += 1), fakeResolve).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(MissingPeerError);
    expect((e as Error).message).toMatch(/not installed: vega and @resvg\/resvg-js\. Install them with: npm install vega @resvg\/resvg-js$/);
    expect(steps).toBe(0);
    expect(existsSync(out)).toBe(false);
  });

  it('through the CLI: one prefix, the install command, no run folder, no summary', async () => {
    const out = join(dir, 'peers-cli-out');
    const cfgFile = join(dir, 'peers.json');
    writeFileSync(cfgFile, JSON.stringify({ name: 'p', strategy: 'fixed', steps: 3, output: out, backend: 'cpu' }));
    vi.resetModules();
    // Node's resolution fails for vega and resvg, as for a user who installed neither.
    vi.doMock('../src/viz/peers.js', async (importOriginal) => {
      const real = await importOriginal<typeof import('../src/viz/peers.js')>();
      return { ...real, missingPeers: (resolve?: (s: string) => unknown) => real.missingPeers(resolve ?? fakeResolve) };
    });
    try {
      const { main: fresh } = await import('../src/node/cli.js');
      let err = '';
      let stdout = '';
      vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => {
        err += String(s);
        return true;
      });
      vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => {
        stdout += String(s);
        return true;
      });
      await fresh(['node', 'loss-balancer', 'run', cfgFile, '--progress', 'none']);
      expect(err).toMatch(/^loss-balancer: charts and the HTML report need .*not installed: vega and @resvg\/resvg-js\. Install them with: npm install vega @resvg\/resvg-js\n$/);
      expect(process.exitCode).toBe(1);
      expect(stdout).toBe('');
      expect(existsSync(out)).toBe(false);
    } finally {
      vi.doUnmock('../src/viz/peers.js');
      vi.resetModules();
    }
  });
});
