/**
 * Every built-in strategy, in one list. `src/index.ts` registers them all; tests loop over this list.
 */
import type { Strategy } from '../src/types.js';
import { fixed } from './fixed.js';
import { gradMagnitude } from './grad-magnitude.js';
import { gradnorm } from './gradnorm.js';
import { lossRatio } from './loss-ratio.js';
import { uncertainty } from './uncertainty.js';
import { cov } from './cov.js';
import { dbMtl } from './db-mtl.js';
import { dwa } from './dwa.js';
import { famo } from './famo.js';
import { relobralo } from './relobralo.js';
import { rlw } from './rlw.js';
import { softadapt } from './softadapt.js';
export { cov, dbMtl, dwa, famo, relobralo, rlw, softadapt };
import { alignedMtl } from './aligned-mtl.js';
import { cagrad } from './cagrad.js';
import { imtl } from './imtl.js';
import { mgda } from './mgda.js';
import { nashMtl } from './nash-mtl.js';
import { pcgrad } from './pcgrad.js';
import { upgrad } from './upgrad.js';
export { alignedMtl, cagrad, imtl, mgda, nashMtl, pcgrad, upgrad };

export { fixed, gradMagnitude, gradnorm, lossRatio, uncertainty };

/** All built-in strategies. */
export const builtinStrategies: readonly Strategy[] = [fixed, gradnorm, uncertainty, lossRatio, gradMagnitude,
  dwa, softadapt, relobralo, cov, rlw, famo, dbMtl,
  pcgrad, mgda, cagrad, imtl, nashMtl, alignedMtl, upgrad];
