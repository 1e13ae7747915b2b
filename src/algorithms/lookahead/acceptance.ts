/**
 * A generation's estimate of draft acceptance: discounted counts of its own decided drafts
 * (~50 drafts) over a prior, with a short-memory watch (~5 drafts) that restarts the estimate
 * when the context changes (code vs prose shows within a few windows), and relaxation towards
 * the prior while plain steps decide no drafts (so a context where drafting pays is noticed).
 */
import { DiscountedCounts } from "../../runtime/costs.js";
import { TUNING } from "./tuning.js";

/** The runtime's long-run acceptance (AcceptanceMemory): undefined before any draft was decided. */
export interface AcceptancePrior {
  rate(): number | undefined;
}

export class AcceptanceEstimator {
  private readonly recent: DiscountedCounts;
  private readonly fast: DiscountedCounts;
  /** A change of context was detected: the long-run prior no longer speaks for this one. */
  private contextChanged = false;

  constructor(
    private readonly prior: AcceptancePrior,
    private readonly tuning: Pick<
      typeof TUNING,
      "defaultPrior" | "defaultWeight" | "memoryWeight" | "decidedDiscount" | "fastDiscount" | "changeZ" | "plainDiscount"
    > = TUNING,
  ) {
    this.recent = new DiscountedCounts(tuning.decidedDiscount);
    this.fast = new DiscountedCounts(tuning.fastDiscount);
  }

  /** The estimate: discounted counts with the prior. */
  rate(): number {
    const weight = this.priorWeight();
    return (this.recent.accepted + this.priorRate() * weight) / (this.recent.decided + weight);
  }

  /** The upper confidence bound: one standard error above the estimate (what probes hope for). */
  optimisticRate(): number {
    const a = this.rate();
    return Math.min(1, a + Math.sqrt((a * (1 - a)) / (this.recent.decided + this.priorWeight())));
  }

  /** Whether a change of context was detected (the long-run prior lost its weight). */
  get drifted(): boolean {
    return this.contextChanged;
  }

  /** A draft was decided. */
  decided(accepted: boolean): void {
    this.recent.observe(accepted);
    this.fast.observe(accepted);
    const a = this.rate();
    const { decided } = this.fast;
    const z = this.tuning.changeZ * Math.sqrt(Math.max(a * (1 - a), 0.01) / decided);
    if (decided >= 4 && Math.abs(this.fast.accepted / decided - a) > z) {
      this.recent.restartFrom(this.fast);
      this.contextChanged = true;
    }
  }

  /** A plain step: no draft is decided, so the estimate relaxes towards the prior. */
  plainStep(): void {
    this.recent.fade(this.tuning.plainDiscount);
    this.fast.fade(this.tuning.plainDiscount);
  }

  private priorRate(): number {
    return this.prior.rate() ?? this.tuning.defaultPrior;
  }

  private priorWeight(): number {
    return this.prior.rate() === undefined || this.contextChanged ? this.tuning.defaultWeight : this.tuning.memoryWeight;
  }
}
