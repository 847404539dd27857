/**
 * The browser example: trains the toy problem with a chosen strategy (or `auto`, the strategy
 * selection) on a chosen tfjs backend (WebAssembly, WebGL or cpu) and draws every term's alpha live
 * as SVG. Query parameters: `strategy` (default gradnorm), `steps` (default 300), `backend` (wasm,
 * webgl or cpu; default wasm), `trialSteps` (auto only). The page names the backend that runs (when
 * the chosen one cannot start, it says so and runs on cpu). State for tests and the curious:
 * `window.lossBalancer`.
 */
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { BalancedTrainer, fmt, followedTrajectory, list, makeToyProblem, type BalancerSpec, type StepRecord } from '../../src/browser.js';
import type { PageState } from './state.js';

const params = new URLSearchParams(location.search);
/** The backends the page offers, with the names shown. */
const BACKENDS: Record<string, string> = { wasm: 'WebAssembly', webgl: 'WebGL', cpu: 'plain JavaScript (cpu)' };
const requested = params.get('backend') ?? 'wasm';
const trialSteps = Number(params.get('trialSteps')) || undefined;
const state: PageState = {
  status: 'loading',
  backend: '',
  requestedBackend: requested,
  strategy: params.get('strategy') ?? 'gradnorm',
  step: 0,
  steps: Math.max(10, Math.min(5000, Number(params.get('steps') ?? 300) || 300)),
  terms: [],
  alphas: [],
};
(window as unknown as { lossBalancer: PageState }).lossBalancer = state;

const COLORS = ['#4c78a8', '#f58518', '#e45756', '#72b7b2', '#54a24b', '#eeca3b'];
const SVG_NS = 'http://www.w3.org/2000/svg';
const $ = <T extends Element>(sel: string) => document.querySelector(sel) as T;

function el(name: string, attrs: Record<string, string | number>, text?: string): SVGElement {
  const e = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Redraw the alpha chart: log-scale y with decade ticks, one polyline per term. */
function draw(records: readonly StepRecord[]): void {
  const svg = $<SVGSVGElement>('#chart');
  const W = Number(svg.getAttribute('width'));
  const H = Number(svg.getAttribute('height'));
  const m = { l: 52, r: 12, t: 12, b: 32 };
  const values = records.flatMap((r) => state.terms.map((t) => r.weight[t])).filter((v) => v > 0 && Number.isFinite(v));
  const lo = Math.floor(Math.log10(Math.min(...values, 1)));
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(...values, 1))));
  const x = (s: number) => m.l + ((W - m.l - m.r) * s) / Math.max(1, state.steps - 1);
  const y = (v: number) => m.t + ((H - m.t - m.b) * (hi - Math.log10(v))) / (hi - lo);
  svg.replaceChildren();
  const axis = el('g', { class: 'axis' });
  for (let d = lo; d <= hi; d++) {
    axis.append(el('line', { x1: m.l, x2: W - m.r, y1: y(10 ** d), y2: y(10 ** d) }));
    axis.append(el('text', { x: m.l - 6, y: y(10 ** d) + 4, 'text-anchor': 'end' }, fmt(10 ** d)));
  }
  const stepTick = Math.max(1, Math.round(state.steps / 6 / 10) * 10);
  for (let s = 0; s < state.steps; s += stepTick) axis.append(el('text', { x: x(s), y: H - m.b + 16, 'text-anchor': 'middle' }, String(s)));
  axis.append(el('text', { x: (W + m.l) / 2, y: H - 4, 'text-anchor': 'middle' }, 'step'));
  svg.append(axis);
  state.terms.forEach((term, i) => {
    const pts = records.filter((r) => r.weight[term] > 0).map((r) => `${x(r.step).toFixed(1)},${y(r.weight[term]).toFixed(1)}`);
    svg.append(el('polyline', { class: 'alpha-line', 'data-term': term, points: pts.join(' '), fill: 'none', stroke: COLORS[i % COLORS.length], 'stroke-width': 2 }));
  });
}

function legend(records: readonly StepRecord[]): void {
  const last = records[records.length - 1];
  $('#legend').innerHTML = state.terms
    .map((t, i) => `<span data-term="${t}"><i style="background:${COLORS[i % COLORS.length]}"></i>${t}${last ? ` α=${fmt(last.weight[t])}` : ''}</span>`)
    .join('');
}

async function train(): Promise<void> {
  setWasmPaths(new URL('./', import.meta.url).href);
  let fellBack = '';
  if (!(requested in BACKENDS)) fellBack = `unknown backend "${requested}"`;
  else if (!(await tf.setBackend(requested).catch(() => false))) fellBack = `the ${BACKENDS[requested]} backend could not start here`;
  if (fellBack) await tf.setBackend('cpu');
  await tf.ready();
  state.backend = tf.getBackend();
  const running = `${BACKENDS[state.backend] ?? state.backend} backend${fellBack ? ` (${fellBack}; running on cpu)` : ''}`;
  $('#backend-name').textContent = running;
  const toy = makeToyProblem({ scales: [1, 10, 100], names: ['small', 'medium', 'large'], seed: 1 });
  const optimizer = tf.train.adam(0.02);
  const balancer: BalancerSpec = state.strategy === 'auto' && trialSteps ? ({ name: 'auto', trialSteps } as BalancerSpec) : (state.strategy as BalancerSpec);
  // totalSteps: auto sizes its selection to the run (other strategies ignore it)
  const trainer = new BalancedTrainer({ terms: toy.terms, optimizer, balancer, variables: toy.variables, shared: toy.shared, totalSteps: state.steps });
  // What the variables follow: during an auto selection equal weights' trial records, then the winner's trajectory.
  const followed = () => {
    const t = trainer.tournament;
    return t && t.phase !== 'done' ? followedTrajectory(trainer.history.trials, t) : trainer.history.records;
  };
  state.terms = toy.names;
  state.status = 'training';
  const t0 = performance.now();
  try {
    for (let i = 0; i < state.steps; i++) {
      await trainer.stepAsync(); // reads values with await data(): the page stays responsive on WebGL/WebGPU
      state.step = i + 1;
      if (state.step % 10 === 0 || state.step === state.steps) {
        const records = followed();
        state.alphas = records.map((r) => state.terms.map((t) => r.weight[t]));
        draw(records);
        legend(records);
        const t = trainer.tournament;
        const selection = t ? (t.phase === 'done' ? `, auto picked ${t.winner}` : ', auto: selecting…') : '';
        $('#status').textContent = `${state.strategy} on ${state.backend}: step ${state.step}/${state.steps}${selection}, ${((performance.now() - t0) / 1000).toFixed(1)} s`;
        await tf.nextFrame();
      }
    }
    if (trainer.tournament) state.winner = trainer.tournament.winner;
    state.status = 'done';
  } finally {
    await trainer.close();
    optimizer.dispose();
    toy.dispose();
  }
}

function setup(): void {
  const select = $<HTMLSelectElement>('#strategy');
  for (const s of list()) select.append(new Option(`${s.name} (${s.reads})`, s.name, false, s.name === state.strategy));
  const backend = $<HTMLSelectElement>('#backend');
  for (const [b, name] of Object.entries(BACKENDS)) backend.append(new Option(name, b, false, b === requested));
  $<HTMLInputElement>('#steps').value = String(state.steps);
  $('#start').addEventListener('click', () => {
    // Everything chosen is kept across runs, the backend included.
    const q = new URLSearchParams({ strategy: select.value, steps: $<HTMLInputElement>('#steps').value, backend: backend.value });
    if (trialSteps && select.value === 'auto') q.set('trialSteps', String(trialSteps));
    location.search = q.toString();
  });
}

setup();
train().catch((e: unknown) => {
  state.status = 'error';
  state.error = String((e as Error)?.message ?? e);
  $('#status').textContent = `error: ${state.error}`;
  console.error(e);
});
