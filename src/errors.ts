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
