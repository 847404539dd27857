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

export * from './types.js';
export * from './errors.js';
export { Balancer, BALANCER_KEYS, STATE_VERSION, checkSameTerms } from './balancer.js';
export type { BalancerConfig, BalancerInput, BalancerState, CoreState, UpdateResult } from './balancer.js';
export type { CoreConfig, CadenceState } from './balancer-config.js';
export type { MicroBatches } from './accumulate.js';
export type { Representation } from './grads.js';
export { create, list, register, unregister, getStrategy, validateOptions, optionNames } from './registry.js';
export type { StrategyInfo } from './registry.js';
export { BalancedTrainer } from './trainer.js';
export type { BalancedTrainerOptions, StepResult, TrainerState } from './trainer.js';
export { fitBalanced } from './fit.js';
export type { FitBalancedOptions, FitBalancedCallbacks, BalancedHistory, LossFn } from './fit.js';
export { History } from './history.js';
export type { PerTerm, RunMeta, Sink, StepRecord } from './history.js';
export { JsonlSink, readJsonl } from './sinks.js';
export type { Trajectory } from './sinks.js';
export { TensorBoardSink, readEvents, scalarsOf } from './tensorboard.js';
export type { TensorBoardSinkOptions, TensorBoardEvent, EventFile, ScalarWriter } from './tensorboard.js';
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
} from './checkpoint.js';
export type { Checkpoint, CheckpointExtras, SavedOptimizer, SavedTensor, VariableSet } from './checkpoint.js';
export { summarize, summarizeData, fmt } from './summary.js';
export type { TermSummary } from './summary.js';
export { diagnose } from './diagnose.js';
export type { Diagnosis, DiagnoseOptions, TermDiagnosis, WeightStatus } from './diagnose.js';
export { initBackend, currentBackend } from './backend.js';
export type { BackendChoice, BackendName } from './backend.js';
export * as gram from './gram.js';
export * as rng from './rng.js';
export * as optim from './optim.js';
export { builtinStrategies };
