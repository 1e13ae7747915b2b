/**
 * `ngram+model`: which source drafts a position where prompt lookup has a match. Lookup's
 * draft is free, but where the output does not copy, a short match is usually wrong, and it
 * would take the place of the drafter's draft, right more often (on the paper's pairs under
 * DSI, always taking lookup's draft made `ngram+model` 12% slower than the drafter alone when
 * a third of the output copied). So lookup drafts where its expected acceptance at the match's
 * length is at least the drafter's.
 *
 * Lookup's acceptance is measured on every committed position, whether or not its draft was
 * used (shadow evaluation): the draft it would have proposed from the committed prefix is
 * accepted with probability equal to the chance that the target commits that very token (a
 * one-hot proposal under rejection sampling; equality under greedy and match), so whether the
 * committed token equals the proposal is an unbiased sample of its acceptance. So lookup's
 * estimate keeps learning while the drafter drafts, and a stretch of copying is noticed at once.
 *
 * The drafter's draft costs its step, lookup's nothing: a draft is worth about its acceptance
 * times a target step, so the drafter must be ahead by more than its step's share of a target
 * step to be worth its cost. Without that margin, a drafter that agrees with a copying target
 * as often as lookup does (it sees the same repeated pairs) kept every position, and on a CPU,
 * where its step does not pay, the generation stayed at plain steps while lookup would have
 * drafted for free.
 */
import { DiscountedCounts } from "../../runtime/costs.js";

/** Discount per observation: the last ~20 positions make each estimate (copying comes and goes). */
const DISCOUNT = 0.95;
/** Weight (in drafts) of the runtime's long-run drafter acceptance as the drafter's prior. */
const MODEL_PRIOR_WEIGHT = 5;

export class SourceChooser {
  /** Lookup's shadow hits by match length, and over all lengths (the prior of each length). */
  private readonly byLength: DiscountedCounts[] = [];
  private readonly pooled = new DiscountedCounts(DISCOUNT);
  private readonly model = new DiscountedCounts(DISCOUNT);

  constructor(
    /** The runtime's long-run acceptance of the drafter's drafts, if any. */
    private readonly modelPrior: () => number | undefined,
    /** The drafter's step as a share of a target step (0 while unknown). */
    private readonly modelCost: () => number = () => 0,
  ) {}

  /** A committed token where lookup, from a match of `matched` tokens, would have proposed `proposal`. */
  shadow(matched: number, proposal: number, committed: number): void {
    const hit = proposal === committed;
    (this.byLength[matched] ??= new DiscountedCounts(DISCOUNT)).observe(hit);
    this.pooled.observe(hit);
  }

  /** One of the drafter's drafts was decided. */
  modelDecided(accepted: boolean): void {
    this.model.observe(accepted);
  }

  /** Whether lookup's draft from a match of `matched` tokens should be used rather than the drafter's. */
  useLookup(matched: number): boolean {
    return this.lookupRate(matched) >= this.modelRate() - this.modelCost();
  }

  lookupRate(matched: number): number {
    const prior = (this.pooled.accepted + 0.5) / (this.pooled.decided + 1);
    const c = this.byLength[matched];
    return c ? (c.accepted + prior) / (c.decided + 1) : prior;
  }

  modelRate(): number {
    const prior = this.modelPrior() ?? 0.5;
    return (this.model.accepted + prior * MODEL_PRIOR_WEIGHT) / (this.model.decided + MODEL_PRIOR_WEIGHT);
  }
}
