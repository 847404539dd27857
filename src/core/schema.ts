/**
 * Parsing with zod schemas, for option and state schemas alike. The library's own schemas use
 * `zod/mini` (the functional API of the same zod 4 package: `z._default(z.number(), 1)` for
 * `z.number().default(1)`), which keeps zod's share of the browser bundle small; a user's own
 * strategy may give schemas of either API, since both are zod 4 core schemas.
 *
 * zod/mini loads no locale, so {@link safeParse} passes zod's English messages with each parse
 * (the ones `import 'zod'` configures): a rule without a message of its own reads as in zod, e.g.
 * "Too big: expected number to be <=1". Nothing global is changed.
 *
 * Browser-safe (no tfjs).
 * @module
 */
import * as z from 'zod/mini';
import en from 'zod/v4/locales/en.js';
import type { $ZodType } from 'zod/v4/core';

/**
 * A zod 4 schema of either API (`zod` or `zod/mini`) whose parsed value is `O`; both have the
 * `parse` and `safeParse` methods.
 */
export type Schema<O = unknown> = $ZodType<O, any> & Pick<z.ZodMiniType<O, any>, 'parse' | 'safeParse'>;

const english = en();

/** `schema.safeParse(value)` with zod's English messages for rules that have no message of their own. */
export function safeParse<O>(schema: Schema<O>, value: unknown) {
  return z.safeParse(schema, value, { error: english.localeError });
}

/** `schema.parse(value)`: the parsed value, or a zod error (with the same messages as {@link safeParse}). */
export function parse<O>(schema: Schema<O>, value: unknown): O {
  return z.parse(schema, value, { error: english.localeError });
}
