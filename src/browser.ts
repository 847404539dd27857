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
export * from './core/types.js';
export * from './core/errors.js';
export { Balancer, BALANCER_KEYS, STATE_VERSION, checkSameTerms } from './core/balancer.js';
export type { BalancerConfig, BalancerInput, BalancerState, StateTensor, UpdateResult } from './core/balancer.js';
export type { LoadedState } from './core/balancer.js';
export { StateError, stateSchemas } from './core/state-check.js';
export { MAX_WEIGHT, MAX_WEIGHT_LR } from './core/limits.js';
export { create, list, register, unregister, getStrategy, validateOptions, optionNames } from './core/registry.js';
export type { StrategyInfo } from './core/registry.js';
export { BalancedTrainer } from './train/trainer.js';
export type { BalancedTrainerOptions, ReadingPath, StepResult, TrainerState } from './train/trainer.js';
export type { AutoState, SavedBits, SavedOptimizerState, SavedOptimizerField, SavedSlot, SavedCandidate, AutoStepOutput } from './train/auto.js';
export { fitBalanced } from './train/fit.js';
export { fitDatasetBalanced } from './train/fit-dataset.js';
export type { FitDatasetBalancedArgs } from './train/fit-dataset.js';
export type { FitBalancedArgs, FitBalancedOptions, BalancedHistory, LossFn } from './train/fit.js';
export type { LossWeights } from './train/fit-args.js';
export { History } from './core/history.js';
export type { PerTerm, RunMeta, Sink, StepRecord } from './core/history.js';
export { summarize, summarizeData, fmt, END_TAIL, tailCount } from './core/summary.js';
export type { SummaryOptions } from './core/summary.js';
export type { TermSummary } from './core/summary.js';
export { summarizeTournament, followedTrajectory } from './core/tournament.js';
export type { Tournament, TournamentCandidate, TournamentRound } from './core/tournament.js';
export { parseAuto, AUTO_FAMILIES } from './core/auto-config.js';
export type { AutoOptions, AutoConfig } from './core/auto-config.js';
export { HarmDetector, HarmMonitor, harmOptions } from './core/harm.js';
export type { HarmKind, HarmOptions, ResolvedHarmOptions, HarmFinding, HarmSummary, HarmMonitorOptions } from './core/harm.js';
export { STRATEGY_CAVEATS, caveatsOf } from './core/caveats.js';
export type { StrategyCaveat } from './core/caveats.js';
export { makeToyProblem } from './train/toy.js';
export type { ToyOptions, ToyProblem } from './train/toy.js';
export { builtinStrategies } from '../strategies/index.js';
