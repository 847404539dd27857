/**
 * Every built-in strategy, in one list. `src/index.ts` registers them all; tests loop over this list.
 */
import type { Strategy } from '../src/types.js';
import { fixed } from './fixed.js';
import { gradMagnitude } from './grad-magnitude.js';
import { gradnorm } from './gradnorm.js';
import { lossRatio } from './loss-ratio.js';
import { uncertainty } from './uncertainty.js';

export { fixed, gradMagnitude, gradnorm, lossRatio, uncertainty };

/** All built-in strategies. */
export const builtinStrategies: readonly Strategy[] = [fixed, gradnorm, uncertainty, lossRatio, gradMagnitude];
