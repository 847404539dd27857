/**
 * loss-balancer: automatic balancing of multi-term losses for TensorFlow.js.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs';
 * import { BalancedTrainer, initBackend } from 'loss-balancer';
 * await initBackend();
 * const trainer = new BalancedTrainer({
 *   terms: () => ({ recon: reconLoss(), kl: klLoss() }),
 *   optimizer: tf.train.adam(1e-3),
 *   balancer: 'grad-magnitude',
 * });
 * for (let i = 0; i < 1000; i++) trainer.step();
 * console.log(summarize(trainer.history.records));
 * ```
 * @module
 */
import { builtinStrategies } from '../strategies/index.js';

export * from './core/types.js';
export * from './core/errors.js';
export { Balancer, BALANCER_KEYS, STATE_VERSION, checkSameTerms } from './core/balancer.js';
export type { BalancerConfig, BalancerInput, BalancerState, CoreState, StateTensor, UpdateResult } from './core/balancer.js';
export type { LoadedState } from './core/balancer.js';
export { StateError, stateSchemas } from './core/state-check.js';
export { MAX_WEIGHT, MAX_WEIGHT_LR } from './core/limits.js';
export type { CoreConfig, CadenceState } from './core/balancer-config.js';
export type { MicroBatches } from './train/accumulate.js';
export type { Representation } from './train/grads.js';
export { create, list, register, unregister, getStrategy, validateOptions, optionNames } from './core/registry.js';
export type { StrategyInfo } from './core/registry.js';
export { BalancedTrainer } from './train/trainer.js';
export type { BalancedTrainerOptions, ReadingPath, StepResult, TrainerState } from './train/trainer.js';
export { fitBalanced } from './train/fit.js';
export { fitDatasetBalanced } from './train/fit-dataset.js';
export type { FitDatasetBalancedArgs } from './train/fit-dataset.js';
export type { FitBalancedArgs, FitBalancedOptions, BalancedHistory, LossFn } from './train/fit.js';
export type { LossWeights } from './train/fit-args.js';
export { History } from './core/history.js';
export type { PerTerm, RunMeta, Sink, StepRecord } from './core/history.js';
export { JsonlSink, readJsonl } from './node/sinks.js';
export type { Trajectory } from './node/sinks.js';
export { streamJsonl, jsonlRecords, diagnoseJsonl } from './node/sinks.js';
export type { JsonlReadOptions } from './node/sinks.js';
export type { JsonlItem, JsonlDiagnosis } from './node/sinks.js';
export { TensorBoardSink, readEvents, scalarsOf } from './node/tensorboard.js';
export type { TensorBoardSinkOptions, TensorBoardEvent, EventFile, ScalarWriter } from './node/tensorboard.js';
export {
  saveState,
  loadState,
  readCheckpoint,
  checkCheckpoint,
  checkpointOf,
  saveOptimizer,
  loadOptimizer,
  saveVariables,
  loadVariables,
  saveTensor,
  loadTensor,
  writeFileAtomic,
  CHECKPOINT_FORMAT,
  CHECKPOINT_VERSION,
} from './node/checkpoint.js';
export type { Checkpoint, CheckpointExtras, SavedOptimizer, SavedTensor, VariableSet } from './node/checkpoint.js';
export { summarize, summarizeData, fmt, END_TAIL, tailCount } from './core/summary.js';
export type { SummaryOptions } from './core/summary.js';
export type { TermSummary } from './core/summary.js';
export { summarizeTournament, followedTrajectory } from './core/tournament.js';
export type { Tournament, TournamentCandidate, TournamentRound } from './core/tournament.js';
export { parseAuto, AUTO_FAMILIES } from './core/auto-config.js';
export type { AutoOptions, AutoConfig } from './core/auto-config.js';
export { AutoSelector, cloneOptimizer } from './train/auto.js';
export type { AutoHost, AutoState, SavedBits, SavedOptimizerState, SavedOptimizerField, SavedSlot, SavedCandidate, AutoStepOutput } from './train/auto.js';
export { diagnose } from './core/diagnose.js';
export type { Diagnosis, DiagnoseOptions, TermDiagnosis, WeightStatus } from './core/diagnose.js';
export type { RecordSource } from './core/diagnose.js';
export { HarmDetector, HarmMonitor, harmOptions } from './core/harm.js';
export type { HarmKind, HarmOptions, ResolvedHarmOptions, HarmFinding, HarmSummary, HarmMonitorOptions } from './core/harm.js';
export { STRATEGY_CAVEATS, caveatsOf } from './core/caveats.js';
export type { StrategyCaveat } from './core/caveats.js';
export { initBackend, currentBackend } from './train/backend.js';
export type { BackendChoice, BackendName } from './train/backend.js';
export * as gram from './core/gram.js';
export * as rng from './core/rng.js';
export * as optim from './core/optim.js';
export { builtinStrategies };
