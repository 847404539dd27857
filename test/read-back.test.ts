/**
 * Reading an `auto` run back from its JSONL file (issue 25): guide-logging's recipe
 * (`readJsonl` → `summarize` / `diagnose` / `plotSvg`) describes the trajectory the run followed,
 * the one the trainer's own summary describes, instead of mixing every candidate's records in
 * (before: diagnose counted the candidates' steps too, summarize averaged equal weights' records).
 * One definition of "end" (the mean alpha over the last 20% of the accepted steps) is shared by
 * summarize and diagnose, and the reference term can be given.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { diagnose } from '../src/core/diagnose.js';
import { summarize, summarizeData } from '../src/core/summary.js';
import { followedTrajectory } from '../src/core/tournament.js';
import { JsonlSink, readJsonl, streamJsonl } from '../src/node/sinks.js';
import { initBackend } from '../src/train/backend.js';
import { makeToyProblem } from '../src/train/toy.js';
import { BalancedTrainer } from '../src/train/trainer.js';
import { plotSvg } from '../src/viz/plot.js';

beforeAll(() => initBackend('cpu'));

/** An auto run of `steps` steps on the toy problem, written to a JSONL file. */
async function autoRun(steps: number) {
  const file = join(mkdtempSync(join(tmpdir(), 'lb-readback-')), 'trajectory.jsonl');
  const toy = makeToyProblem({ scales: [1, 10, 100], seed: 3, samples: 16 });
  const optimizer = tf.train.adam(0.02);
  const trainer = new BalancedTrainer({
    terms: toy.terms, variables: toy.variables, optimizer, harm: false, warn: () => {},
    balancer: { name: 'auto', trialSteps: 4, candidates: ['gradnorm', 'uncertainty', 'mgda'] } as never,
    sinks: [new JsonlSink(file)],
  });
  for (let i = 0; i < steps; i++) trainer.step();
  await trainer.close();
  optimizer.dispose();
  toy.dispose();
  return { file, trainer };
}

describe('readJsonl gives the followed trajectory of an auto run', () => {
  it('summarize, diagnose and the alpha chart of the file equal those of the live run; candidates on request', async () => {
    const { file, trainer } = await autoRun(40);
    const t = trainer.tournament!;
    expect(t.phase).toBe('done');
    const live = trainer.history.records;
    expect(live).toHaveLength(40);

    const read = readJsonl(file);
    expect(read.records).toHaveLength(40); // was 40 + every candidate's trial records
    expect(read.records.map((r) => r.step)).toEqual(live.map((r) => r.step));
    expect(summarize(read.records, read.meta, read.tournament)).toBe(summarize(live, trainer.history.meta, t));
    expect(summarize(read.records)).toBe(summarize(live)); // without the tournament too
    const dFile = diagnose(read.records);
    const dLive = diagnose(live);
    expect(dFile.steps).toBe(40);
    expect(dFile.recommended).toEqual(dLive.recommended);
    expect(await plotSvg(read.records, { quantity: 'alpha' })).toBe(await plotSvg(live, { quantity: 'alpha' }));

    const steps = [...streamJsonl(file)].filter((i) => i.kind === 'step');
    expect(steps).toHaveLength(40);
    const all = readJsonl(file, { candidates: true });
    expect(all.records.length).toBeGreaterThan(40);
    expect(followedTrajectory(all.records, all.tournament)).toEqual(read.records);
    expect(followedTrajectory(read.records)).toEqual(read.records); // already followed: kept whole
    // diagnose on every candidate's records (in memory or streamed), told the tournament: the followed trajectory (was: 60 steps)
    expect(diagnose(all.records, { tournament: all.tournament }).recommended).toEqual(dLive.recommended);
    expect(diagnose(all.records, { tournament: all.tournament }).steps).toBe(40);
    expect(diagnose(() => all.records, { tournament: all.tournament }).steps).toBe(40);
  });
});

describe('one definition of "end"', () => {
  it('summarize\'s end and ratio are diagnose\'s tail mean and ratio, with the reference stated and selectable', async () => {
    const { trainer } = await autoRun(60);
    const records = trainer.history.records;
    const s = summarizeData(records);
    const d = diagnose(records);
    expect(s.reference).toBe(d.reference);
    s.terms.forEach((term, i) => {
      expect(term.end).toBeCloseTo(d.terms[i].alphaTailMean, 12);
      expect(term.ratio).toBeCloseTo(d.terms[i].ratio, 10);
      expect(term.last).toBe(records[records.length - 1].weight[term.term]);
    });
    expect(s.endSteps).toBe(12);
    const text = summarize(records);
    expect(text).toMatch(/end = mean alpha over the last 12 steps \(20%, as diagnose\); ratios against \w+ \(the smallest positive end alpha\)/);
    const other = s.terms.find((x) => x.term !== s.reference)!.term;
    const byOther = summarizeData(records, { reference: other });
    expect(byOther.reference).toBe(other);
    expect(byOther.terms.find((x) => x.term === other)!.ratio).toBe(1);
    expect(summarize(records, null, null, { reference: other })).toMatch(new RegExp(`ratios against ${other.replace(/[[\]]/g, '\\$&')} \\(the reference given\\)`));
    expect(() => summarizeData(records, { reference: 'nope' })).toThrow(/option "reference" got "nope"; not a term/);
  });
});

describe('what an auto run read', () => {
  it('the meta line says per candidate, the tournament and the report name what the winner reads (was "none")', async () => {
    const { file, trainer } = await autoRun(40);
    const t = trainer.tournament!;
    const read = readJsonl(file);
    expect(read.meta!.gradients).toBe('per candidate');
    const winnerReadsGradients = !['fixed', 'equal', 'uncertainty'].some((n) => t.winner!.startsWith(n));
    expect(read.tournament!.gradients).toBe(t.gradients);
    expect(t.gradients).toBe(winnerReadsGradients ? 'shared' : 'none');
    const { renderReport } = await import('../src/viz/report.js');
    const html = await renderReport(read);
    expect(html).toContain(`${t.gradients} (the winner, ${t.winner})`.replace(/"/g, '&quot;'));
    expect(summarize(read.records, read.meta, read.tournament)).toMatch(new RegExp(`gradients read by ${t.winner!.replace(/[[\]]/g, '\\$&')}: ${t.gradients === 'none' ? 'none \\(losses only\\)' : t.gradients}`));
  });
});
