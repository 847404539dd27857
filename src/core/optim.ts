/**
 * Closed-form optimiser steps for a strategy's own learnable parameters (GradNorm's weights,
 * uncertainty weighting's log-variances). Pure: a state in, a new state out, all plain numbers, so the
 * parameters checkpoint with the strategy.
 */

/** Adam's moment estimates and step count (Kingma & Ba, "Adam", ICLR 2015). */
export interface AdamState {
  /** First-moment (mean) estimate per parameter, not bias-corrected. */
  m: number[];
  /** Second-moment (uncentred variance) estimate per parameter, not bias-corrected. */
  v: number[];
  /** Number of steps taken so far (0 after {@link adamInit}). */
  t: number;
}

/** Zeroed moments for `n` parameters. */
export function adamInit(n: number): AdamState {
  return { m: new Array(n).fill(0), v: new Array(n).fill(0), t: 0 };
}

/** Hyper-parameters of {@link adamStep}; PyTorch/tfjs defaults. */
export interface AdamOptions {
  /** Learning rate. */
  lr: number;
  /** Decay of the first moment. @default 0.9 */
  beta1?: number;
  /** Decay of the second moment. @default 0.999 */
  beta2?: number;
  /** Added to the denominator √v̂ + ε. @default 1e-8 */
  epsilon?: number;
}

/** One bias-corrected Adam step: returns the new parameters and moments. */
export function adamStep(
  params: readonly number[],
  grads: readonly number[],
  state: AdamState,
  { lr, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8 }: AdamOptions,
): {
  /** The updated parameters. */
  params: number[];
  /** The updated moments and step count. */
  state: AdamState;
} {
  const t = state.t + 1;
  const m = state.m.map((mi, i) => beta1 * mi + (1 - beta1) * grads[i]);
  const v = state.v.map((vi, i) => beta2 * vi + (1 - beta2) * grads[i] * grads[i]);
  const c1 = 1 - beta1 ** t;
  const c2 = 1 - beta2 ** t;
  const next = params.map((p, i) => p - (lr * (m[i] / c1)) / (Math.sqrt(v[i] / c2) + epsilon));
  return { params: next, state: { m, v, t } };
}

/** One plain gradient-descent step. */
export function sgdStep(params: readonly number[], grads: readonly number[], lr: number): number[] {
  return params.map((p, i) => p - lr * grads[i]);
}
