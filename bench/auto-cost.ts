/**
 * `npm run bench:auto-cost`: the wall time `auto` adds to a run, as a ratio to the same run with
 * equal weights, measured in one process with the runs interleaved (the machine is noisy).
 *
 * Problem: bench/auto.ts's multi-output net (a shared tanh trunk, three heads on scales 1, 100,
 * 0.01; batch 32, Adam). Each round runs `fixed`, then bare `auto` (given `totalSteps`, the default
 * candidates and options), then, labelled, `auto` with `probation: 0` (the selection alone, without
 * the winner's probation), then the winner's own spec alone from the start (what `auto` adds to
 * the method it picks), `--rounds` times (default 3), and prints the median ratios of wall times
 * and the candidate steps each selection took. `--steps N` (default 5000), `--quick` (300 steps, 1
 * round: the CI smoke run). Issue 27's target: on a 5,000-step run, `auto`'s extra time at most
 * 30 % of the run's.
 */
import { cpus, loadavg } from 'node:os';
import { initBackend } from '../src/train/backend.js';
import { median, multiOutputProblem } from './auto.js';
import type { BalancerSpec } from '../src/core/types.js';

export interface AutoCostResult {
  steps: number;
  /** Wall seconds of each round: equal weights, then auto. */
  rounds: { fixed: number; auto: number; candidateSteps: number; trainerSteps: number; winner: string; noProbation: number; noProbationCandidateSteps: number; winnerAlone: number }[];
  /** Median over rounds of auto / fixed − 1: the extra time as a fraction of the run's. */
  extra: number;
  /** The same for `auto` with `probation: 0` (labelled row: not the defaults). */
  extraNoProbation: number;
  /**
   * Median over rounds of auto / (its winner run alone from the start, same seed) − 1: what the
   * selection and the probation add to the run of the method they pick (a winner that reads
   * per-term gradients costs more than equal weights by itself).
   */
  extraOverWinner: number;
}

export async function autoCost(o: { steps: number; rounds: number; log?: (s: string) => void }): Promise<AutoCostResult> {
  const p = multiOutputProblem(o.steps);
  const rounds: AutoCostResult['rounds'] = [];
  try {
    for (let r = 0; r < o.rounds; r++) {
      const seed = r + 1;
      const f = p.run('fixed', seed, false);
      const a = p.run({ name: 'auto', totalSteps: o.steps }, seed, false);
      const t = a.tournament!;
      const n = p.run({ name: 'auto', totalSteps: o.steps, probation: 0 }, seed, false);
      const u = n.tournament!;
      const spec = t.candidates.find((c) => c.label === t.winner)?.spec as BalancerSpec | undefined;
      const w = spec ? p.run(spec, seed, false) : null;
      rounds.push({ fixed: f.seconds, auto: a.seconds, candidateSteps: t.cost.candidateSteps, trainerSteps: t.cost.trainerSteps, winner: t.winner ?? '(running)', noProbation: n.seconds, noProbationCandidateSteps: u.cost.candidateSteps, winnerAlone: w?.seconds ?? Number.NaN });
      const pr = t.probation ? `, probation ${t.probation.steps} steps: ${t.probation.outcome ?? 'running'}` : '';
      o.log?.(
        `round ${r + 1}: equal weights ${f.seconds.toFixed(2)} s, auto ${a.seconds.toFixed(2)} s (×${(a.seconds / f.seconds).toFixed(3)}; ${t.cost.candidateSteps} candidate steps over ${t.cost.trainerSteps} steps${pr}, picked ${t.winner}); ` +
          `[probation: 0] ${n.seconds.toFixed(2)} s (×${(n.seconds / f.seconds).toFixed(3)}; ${u.cost.candidateSteps} over ${u.cost.trainerSteps} steps, picked ${u.winner}); ` +
          `${t.winner} alone ${w ? `${w.seconds.toFixed(2)} s (auto ×${(a.seconds / w.seconds).toFixed(3)} of it)` : '—'}`,
      );
    }
  } finally {
    p.dispose?.();
  }
  return {
    steps: o.steps,
    rounds,
    extra: median(rounds.map((x) => x.auto / x.fixed - 1)),
    extraNoProbation: median(rounds.map((x) => x.noProbation / x.fixed - 1)),
    extraOverWinner: median(rounds.map((x) => x.auto / x.winnerAlone - 1)),
  };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const quick = argv.includes('--quick');
  const val = (k: string, d: number) => {
    const i = argv.indexOf(k);
    return i >= 0 ? Number(argv[i + 1]) : d;
  };
  const backend = await initBackend();
  const steps = quick ? 300 : val('--steps', 5000);
  const rounds = quick ? 1 : val('--rounds', 3);
  console.log(`bench:auto-cost on ${backend}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), load ${loadavg()[0].toFixed(2)}; multi-output, ${steps} steps, ${rounds} round(s)`);
  const r = await autoCost({ steps, rounds, log: console.log });
  console.log(
    `auto's extra wall time: ${(100 * r.extra).toFixed(1)} % of the equal-weights run, ${(100 * r.extraOverWinner).toFixed(1)} % of its winner's run alone (medians over ${rounds} round(s)); ` +
      `[probation: 0, not the default] ${(100 * r.extraNoProbation).toFixed(1)} % of the equal-weights run; load ${loadavg()[0].toFixed(2)}`,
  );
}

if (process.argv[1] && /auto-cost\.ts$/.test(process.argv[1])) await main();
