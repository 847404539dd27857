/**
 * The one place where {@link fitBalanced} turns its `balancer` argument into the spec the trainer
 * builds: Keras' `lossWeights` become the balancer's `baseWeights`, and the model's layer
 * regularisation penalties become one frozen term of weight 1 (added unweighted, as `model.fit` and
 * Keras add them). A strategy selected automatically (`'auto'`) is to be resolved here as well.
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
  return obj as BalancerSpec;
}
