/**
 * Every built-in strategy, in one list. `src/index.ts` registers them all; tests loop over this list.
 */
import type { AnyStrategy } from '../src/core/types.js';
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
import { fairgrad } from './fairgrad.js';
import { gls } from './gls.js';
import { modo } from './modo.js';
import { ntk } from './ntk.js';
import { resnorm } from './resnorm.js';
import { rgw } from './rgw.js';
import { sdmgrad } from './sdmgrad.js';
import { stch } from './stch.js';
export { fairgrad, gls, modo, ntk, resnorm, rgw, sdmgrad, stch };
// Issue 11, Gram kind (exact as functions of inner products): torchjd / LibMTL aggregators.
import { config } from './config.js';
import { dualproj } from './dualproj.js';
import { gradvac } from './gradvac.js';
import { krum } from './krum.js';
export { config, dualproj, gradvac, krum };
export type { ConFIGOptions } from './config.js';
export type { DualProjOptions } from './dualproj.js';
export type { GradVacOptions, GradVacState } from './gradvac.js';
export type { KrumOptions } from './krum.js';
// Jacobian kind (issue 11): methods that transform the T×P matrix of per-term gradients.
import { graddrop } from './graddrop.js';
import { trimmedMean } from './trimmed-mean.js';
import { moco } from './moco.js';
import { excessMtl } from './excess-mtl.js';
export { excessMtl, graddrop, moco, trimmedMean };
export type { ExcessMTLOptions, ExcessMTLState } from './excess-mtl.js';
export type { MoCoOptions, MoCoState } from './moco.js';
export type { GradDropOptions, GradDropState } from './graddrop.js';
export type { TrimmedMeanOptions } from './trimmed-mean.js';

export { fixed, gradMagnitude, gradnorm, lossRatio, uncertainty };

export type { FixedOptions, FixedState } from './fixed.js';
export type { GradMagnitudeOptions, GradMagnitudeState } from './grad-magnitude.js';
export type { GradNormOptions, GradNormState } from './gradnorm.js';
export type { LossRatioOptions, LossRatioState } from './loss-ratio.js';
export type { UncertaintyOptions, UncertaintyState } from './uncertainty.js';
export type { CovOptions, CovState } from './cov.js';
export type { DbMtlOptions, DbMtlState } from './db-mtl.js';
export type { DwaOptions, DwaState } from './dwa.js';
export type { FamoOptions, FamoState } from './famo.js';
export type { ReLoBRaLoOptions, ReLoBRaLoState } from './relobralo.js';
export type { RlwOptions, RlwState } from './rlw.js';
export type { SoftAdaptOptions, SoftAdaptState } from './softadapt.js';
export type { AlignedMTLOptions, AlignedMTLState } from './aligned-mtl.js';
export type { CAGradOptions } from './cagrad.js';
export type { IMTLOptions } from './imtl.js';
export type { MGDAOptions } from './mgda.js';
export type { NashMTLOptions, NashMTLState } from './nash-mtl.js';
export type { PCGradOptions, PCGradState } from './pcgrad.js';
export type { UPGradOptions } from './upgrad.js';
export type { FairGradOptions } from './fairgrad.js';
export type { GlsOptions } from './gls.js';
export type { MoDoOptions, MoDoState } from './modo.js';
export type { NtkOptions, NtkState } from './ntk.js';
export type { ResNormOptions, ResNormState } from './resnorm.js';
export type { RgwOptions, RgwState } from './rgw.js';
export type { SdmGradOptions, SdmGradState } from './sdmgrad.js';
export type { StchOptions, StchState } from './stch.js';
export type { EpochMeans } from '../src/core/loss-points.js';

/** All built-in strategies, of both kinds (Gram and Jacobian). */
export const builtinStrategies: readonly AnyStrategy[] = [fixed, gradnorm, uncertainty, lossRatio, gradMagnitude,
  dwa, softadapt, relobralo, cov, rlw, famo, dbMtl,
  pcgrad, mgda, cagrad, imtl, nashMtl, alignedMtl, upgrad,
  // issue 11 (branch i11-weighting): LibMTL and Modulus Sym methods of the loss-only and Gram kinds
  resnorm, ntk, stch, gls, fairgrad, rgw, sdmgrad, modo,
  ...jacobianKind()];

/** The built-ins of issue 11 (torchjd / LibMTL aggregators; Gram kind, then Jacobian kind), in one place. */
function jacobianKind(): AnyStrategy[] {
  return [dualproj, config, krum, gradvac, graddrop, trimmedMean, moco, excessMtl];
}
