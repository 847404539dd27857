/**
 * The one place where {@link fitBalanced} turns its `balancer` argument into the spec the trainer
 * builds: Keras' `lossWeights` become the balancer's `baseWeights`, and the model's layer
 * regularisation penalties become one frozen term of weight 1 (added unweighted, as `model.fit` and
 * Keras add them). For the automatic selection (`'auto'`), a `monitor` key becomes the selector's
 * `score` (the named quantity evaluated with each candidate's weights in place) and its `mode`.
 */
import { Balancer } from '../core/balancer.js';
import { BalancerError } from '../core/errors.js';
import type { BalancerSpec } from '../core/types.js';

/** The term name of the layers' regularisation penalties (`model.calculateLosses()`). */
export const REGULARIZATION_TERM = 'regularization';

/** What {@link resolveFitBalancer} needs to know about the fit call. */
export interface FitBalancerContext {
  /** `lossWeights` by output name (already validated), if given. */
  baseWeights?: Record<string, number>;
  /** Whether the model has layer regularisation penalties (then the frozen term is added). */
  regularization: boolean;
  /**
   * Resolves an `auto` balancer's `monitor` key to its score function and Keras `'auto'` mode
   * (src/train/fit-monitor.ts); throws naming the option when the key cannot be computed.
   */
  monitor?: (key: string) => { score: () => number; mode: 'min' | 'max' };
  /** The fit's planned optimizer steps (epochs × batches), given to `auto` as `totalSteps` unless set. */
  totalSteps?: number;
}

/**
 * The balancer spec (or instance) to hand to `BalancedTrainer`.
 * @throws BalancerError when `lossWeights` and `baseWeights` are both given, or when a Balancer
 * instance cannot take the fit's settings (it must already hold them).
 */
export function resolveFitBalancer(spec: BalancerSpec | Balancer | undefined, ctx: FitBalancerContext): BalancerSpec | Balancer {
  const chosen = spec ?? 'fixed';
  if (chosen instanceof Balancer) {
    const cfg = chosen.config;
    if (ctx.baseWeights) {
      throw new BalancerError('fitBalanced: argument "lossWeights" cannot be applied to a Balancer instance; give its baseWeights when creating it, or pass the balancer by name');
    }
    if (ctx.regularization && cfg.frozen?.[REGULARIZATION_TERM] !== 1) {
      throw new BalancerError(
        `fitBalanced: the model has layer regularisation penalties, trained as the frozen term "${REGULARIZATION_TERM}" of weight 1; create the Balancer with frozen: { ${REGULARIZATION_TERM}: 1 }, or pass the balancer by name`,
      );
    }
    return chosen;
  }
  const obj: Record<string, unknown> = typeof chosen === 'string' ? { name: chosen } : { ...chosen };
  if (ctx.baseWeights) {
    if (obj.baseWeights !== undefined) {
      throw new BalancerError('fitBalanced: give "lossWeights" or the balancer\'s "baseWeights", not both (they are the same thing)');
    }
    obj.baseWeights = ctx.baseWeights;
  }
  if (ctx.regularization) {
    const frozen = (obj.frozen ?? {}) as Record<string, number>;
    if (frozen[REGULARIZATION_TERM] !== undefined && frozen[REGULARIZATION_TERM] !== 1) {
      throw new BalancerError(`fitBalanced: the frozen term "${REGULARIZATION_TERM}" (the layers' regularisation penalties) always has weight 1, as in model.fit`);
    }
    obj.frozen = { ...frozen, [REGULARIZATION_TERM]: 1 };
  }
  if (obj.name === 'auto' && obj.monitor !== undefined) resolveMonitor(obj, ctx);
  if (obj.name === 'auto' && obj.totalSteps === undefined && ctx.totalSteps !== undefined && ctx.totalSteps > 0) obj.totalSteps = ctx.totalSteps;
  return obj as BalancerSpec;
}

/**
 * `{ name: 'auto', monitor, mode? }` → `{ name: 'auto', score, mode }` (in place). `mode` `'auto'` or
 * absent takes the key's Keras mode (`'max'` for accuracies, else `'min'`).
 */
function resolveMonitor(obj: Record<string, unknown>, ctx: FitBalancerContext): void {
  const key = obj.monitor;
  if (typeof key !== 'string' || !key) {
    throw new BalancerError(`fitBalanced: balancer option "monitor" is ${JSON.stringify(key)}; allowed: a History key such as 'val_loss'`);
  }
  if (obj.score !== undefined) throw new BalancerError('fitBalanced: give the auto balancer "monitor" or "score", not both');
  if (!ctx.monitor) throw new BalancerError('fitBalanced: balancer option "monitor" cannot be resolved here');
  if (obj.mode !== undefined && obj.mode !== 'auto' && obj.mode !== 'min' && obj.mode !== 'max') {
    throw new BalancerError(`fitBalanced: balancer option "mode" is ${JSON.stringify(obj.mode)}; allowed: 'min', 'max' or 'auto' (from the monitor key)`);
  }
  const { score, mode } = ctx.monitor(key); // may warn (a tfjs-shifted key): after the checks above
  if (obj.mode === undefined || obj.mode === 'auto') obj.mode = mode;
  delete obj.monitor;
  obj.score = score;
}
