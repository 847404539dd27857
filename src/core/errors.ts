/** Errors thrown by loss-balancer. Each names the term, option or step at fault. */

/** Base class: every error the library throws on bad input is a `BalancerError`. */
export class BalancerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BalancerError';
  }
}

/** An option (or config field) failed validation. `field` is its dotted path. */
export class OptionError extends BalancerError {
  /**
   * @param strategy - Name of the strategy (or of the component, for a config field) whose option failed.
   * @param field - Dotted path of the option, e.g. `alpha` or `bounds.min`.
   * @param value - The value that was given.
   * @param allowed - What would have been accepted, in words (ends the message).
   */
  constructor(
    readonly strategy: string,
    readonly field: string,
    readonly value: unknown,
    readonly allowed: string,
  ) {
    super(
      `${strategy}: option "${field}" got ${describeValue(value)}; ${allowed}`,
    );
    this.name = 'OptionError';
  }
}

/** A loss or gradient was NaN or infinite (with `onNonFinite: 'throw'`). */
export class NonFiniteError extends BalancerError {
  /**
   * @param term - Name of the loss term at fault.
   * @param step - The balancer's step counter when it happened.
   * @param what - Which quantity was non-finite, e.g. `loss` or `gradient (Gram matrix row)`.
   * @param value - The offending value (NaN or ±Infinity).
   */
  constructor(
    readonly term: string,
    readonly step: number,
    readonly what: string,
    readonly value: number,
  ) {
    super(`step ${step}: ${what} of term "${term}" is ${value}`);
    this.name = 'NonFiniteError';
  }
}

/** Render a value for an error message. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'string') return JSON.stringify(value);
  try {
    const s = JSON.stringify(value);
    return s.length > 80 ? `${s.slice(0, 77)}...` : s;
  } catch {
    return String(value);
  }
}
