import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { list } from '../src/core/registry.js';
import { readJsonl } from '../src/node/sinks.js';
import { readEvents } from '../src/node/tensorboard.js';

const ROOT = resolve(import.meta.dirname, '..');
/** Each test spawns a few `npx tsx` processes (≈1–2 s of CPU each); generous on a loaded machine. */
const SLOW = 180_000;
const dir = mkdtempSync(join(tmpdir(), 'lb-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Out {
  code: number;
  stdout: string;
  stderr: string;
}

/** `npx tsx src/node/cli.ts ...args` in a child process, as a user would run it (not a TTY). */
function cli(args: string[], env: Record<string, string> = {}): Promise<Out> {
  return new Promise((res) => {
    execFile('npx', ['tsx', 'src/node/cli.ts', ...args], { cwd: ROOT, env: { ...process.env, CI: 'true', ...env }, timeout: 170_000 }, (err, stdout, stderr) => {
      res({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('loss-balancer CLI', () => {
  it('--help names every subcommand; list prints one line per strategy', async () => {
    const [help, runHelp, listed, json, caveats] = await Promise.all([cli(['--help']), cli(['run', '--help']), cli(['list']), cli(['list', '--json']), cli(['list', '--caveats'])]);
    expect(help.code).toBe(0);
    for (const c of ['list', 'demo', 'run', 'report', 'diagnose']) expect(help.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));
    expect(runHelp.stdout).toContain('steps      1..100000');
    expect(listed.code).toBe(0);
    const lines = listed.stdout.trim().split('\n');
    const known = list();
    expect(lines).toHaveLength(known.length);
    known.forEach((s, i) => {
      expect(lines[i].startsWith(s.name)).toBe(true);
      expect(lines[i]).toContain(s.summary);
    });
    expect(JSON.parse(json.stdout).map((s: { name: string }) => s.name)).toEqual(known.map((s) => s.name));
    expect(JSON.parse(json.stdout).find((s: { name: string }) => s.name === 'gradnorm').caveats[0]).toMatch(/^minWeight: /);
    expect(lines.find((l) => l.startsWith('gradnorm'))).toContain('(caveat: list --caveats)');
    expect(caveats.stdout).toMatch(/^\s+caveat: reference: The reference term/m);
  }, SLOW);

  it('run: trains the toy problem and writes JSONL, TensorBoard events, plots and the report; then report and diagnose', async () => {
    const cfg = join(dir, 'toy.yaml');
    writeFileSync(cfg, `# a small run\nname: small\nstrategy: { name: gradnorm, alpha: 1.5 }\nsteps: 12\nlr: 0.02\nseed: 3\noutput: ${join(dir, 'runs')}\nexample: { scales: [1, 100], names: [small, big] }\n`);
    const out = await cli(['run', cfg]);
    expect(out.stderr).not.toMatch(/loss-balancer:/);
    expect(out.code).toBe(0);
    // CI is set: plain progress lines with step, ETA, losses and alphas.
    const progress = out.stderr.split('\n').filter((l) => l.startsWith('small step'));
    expect(progress.length).toBeGreaterThanOrEqual(2);
    expect(progress[progress.length - 1]).toMatch(/^small step 12\/12 \(100%\) ETA \S+ \| small L=\S+ α=\S+ \| big L=\S+ α=\S+$/);
    expect(out.stdout).toContain('strategy gradnorm');

    const run = join(dir, 'runs', 'small');
    const { meta, records } = readJsonl(join(run, 'trajectory.jsonl'));
    expect(meta?.strategy).toBe('gradnorm');
    expect(meta?.terms).toEqual(['small', 'big']);
    expect(records).toHaveLength(12);
    const eventFile = out.stdout.match(/tensorboard +(\S+)/)![1];
    const ev = readEvents(eventFile);
    expect(ev.events[0].fileVersion).toBe('brain.Event:2');
    expect(ev.events.slice(1).map((e) => e.step)).toEqual(records.map((r) => r.step));
    expect(ev.events[12].scalars['alpha/big']).toBe(Math.fround(records[11].weight.big));
    expect(ev.events[12].scalars['gradnorm/small']).toBeGreaterThan(0);
    for (const f of ['config.json', 'report.html', 'plots/alpha.svg', 'plots/alpha.png', 'plots/loss.png', 'plots/gradnorm.png']) {
      expect(existsSync(join(run, f)), f).toBe(true);
    }
    expect(JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')).strategy).toEqual({ name: 'gradnorm', alpha: 1.5 });

    const [rep, diag] = await Promise.all([cli(['report', run, '--linear', '--out', join(dir, 'r.html')]), cli(['diagnose', join(run, 'trajectory.jsonl')])]);
    expect(rep.code).toBe(0);
    expect(rep.stdout.trim()).toBe(join(dir, 'r.html'));
    expect(readFileSync(join(dir, 'r.html'), 'utf8')).toContain('<td class="term">big</td>');
    expect(diag.code).toBe(0);
    expect(diag.stdout).toMatch(/Recommended fixed weights/);
    expect(diag.stdout).toMatch(/Harm checks/);
  }, SLOW);

  it('demo runs the VAE demo (a few steps) and writes its trajectories', async () => {
    const out = await cli(['demo', '--steps', '5', '--out', join(dir, 'demo')]);
    expect(out.stderr).not.toMatch(/loss-balancer:/);
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(/gradnorm/);
    expect(readdirSync(join(dir, 'demo')).some((f) => f.endsWith('.jsonl'))).toBe(true);
  }, SLOW);

  it('config errors name the field, the value and what is allowed', async () => {
    const bad = join(dir, 'bad.json');
    const cases: [unknown, RegExp][] = [
      [{ strategy: 'fixed', steps: 0 }, /field "steps" got 0; allowed: an integer from 1 to 100000/],
      [{ strategy: { name: 'gradnorm', alpha: -1 } }, /field "strategy\.alpha" got -1; .*allowed: .*>= ?0/],
    ];
    const outs = await Promise.all(
      cases.map(async ([c], i) => {
        const f = `${bad}.${i}.json`;
        writeFileSync(f, JSON.stringify(c));
        return cli(['run', f]);
      }),
    );
    outs.forEach((o, i) => {
      expect(o.code).toBe(1);
      expect(o.stderr).toMatch(cases[i][1]);
      expect(o.stderr).not.toMatch(/\n\s+at /); // one line, no stack trace
    });
  }, SLOW);
});
