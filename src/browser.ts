/**
 * The browser entry of loss-balancer (`import ... from 'loss-balancer/browser'`): everything of the
 * main entry that runs in a web page — strategies, registry, `Balancer`, `BalancedTrainer`,
 * `History`, summaries, diagnosis and the toy problem — and nothing that needs Node (the file sinks,
 * TensorBoard writer, plots and report live in the Node entries). Use it with `@tensorflow/tfjs` and
 * the WebAssembly backend (`@tensorflow/tfjs-backend-wasm`, after `setWasmPaths(...)`) or WebGL.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs';
 * import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
 * import { BalancedTrainer } from 'loss-balancer/browser';
 * setWasmPaths('/wasm/');
 * await tf.setBackend('wasm');
 * const trainer = new BalancedTrainer({ terms, optimizer: tf.train.adam(1e-2), balancer: 'gradnorm' });
 * trainer.step();
 * ```
 * @module
 */
export * from './types.js';
export * from './errors.js';
export { Balancer, BALANCER_KEYS, STATE_VERSION, checkSameTerms } from './balancer.js';
export type { BalancerConfig, BalancerInput, BalancerState, UpdateResult } from './balancer.js';
export { create, list, register, unregister, getStrategy, validateOptions, optionNames } from './registry.js';
export type { StrategyInfo } from './registry.js';
export { BalancedTrainer } from './trainer.js';
export type { BalancedTrainerOptions, StepResult, TrainerState } from './trainer.js';
export { fitBalanced } from './fit.js';
export type { FitBalancedOptions, FitBalancedCallbacks, BalancedHistory, LossFn } from './fit.js';
export { History } from './history.js';
export type { PerTerm, RunMeta, Sink, StepRecord } from './history.js';
export { summarize, summarizeData, fmt } from './summary.js';
export type { TermSummary } from './summary.js';
export { makeToyProblem } from './toy.js';
export type { ToyOptions, ToyProblem } from './toy.js';
export { builtinStrategies } from '../strategies/index.js';
