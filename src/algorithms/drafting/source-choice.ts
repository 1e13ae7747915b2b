/**
 * `ngram+model`: which source drafts a position where prompt lookup has a match. Lookup's
 * draft is free, but where the output does not copy, a short match is usually wrong, and it
 * would take the place of the drafter's draft, right more often (on the paper's pairs under
 * DSI, always taking lookup's draft made `ngram+model` 12% slower than the drafter alone when
 * a third of the output copied). So lookup drafts where its expected acceptance at the match's
 * length is ahead of the drafter's (below: by a standard error, and by the drafter's cost).
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
 *
 * Lookup takes a position only when it is ahead by two standard errors of its estimate, not
 * by its estimate alone. An estimate over ~20 positions is noisy (+-0.11 at a rate of 0.45),
 * and a rule that follows the noise hands lookup the positions where it happened to be lucky,
 * so its drafts were accepted less often than the estimate said. On the paper's pairs under
 * auto DSI (speedup of `ngram+model` over the better source alone, 48 seeds x 200 tokens):
 *
 * | rule | copy 0.3 | 0.45 | 0.6 | 0.75 | 0.9 |
 * |---|---|---|---|---|---|
 * | the estimate alone (12 seeds) | | 0.964 | | | |
 * | one standard error | 0.997 | 0.994 | 1.011 | 1.18 | 1.26 |
 * | two (this rule) | 1.000 | 0.999 | 1.004 | 1.10 | 1.16 |
 *
 * With two, what is left below 1 (at most 0.1%) is the noise of trajectories that part at the
 * first position where the two runs draft differently; with one, the 0.6% at 0.45 held at 24
 * and 48 seeds. Two cost where the output copies (4.4x of non-SI instead of 4.8x at 0.9): an
 * estimate needs a few more positions before lookup takes a length.
 */
import { DiscountedCounts } from "../../runtime/costs.js";

/** Discount per observation: the last ~20 positions make each estimate (copying comes and goes). */
const DISCOUNT = 0.95;
/** Weight (in positions) of the runtime's long-run acceptance of a source as its prior. */
const PRIOR_WEIGHT = 5;
/** Standard errors by which lookup's estimate must be ahead (see the class comment). */
const MARGIN_STANDARD_ERRORS = 2;

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
    /**
     * The runtime's long-run shadow acceptance of lookup, if any: the next generation on a
     * workload that copies starts from it, not from an even guess worth one position.
     */
    private readonly lookupPrior: () => number | undefined = () => undefined,
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
    const { rate, weight } = this.lookup(matched);
    return rate - MARGIN_STANDARD_ERRORS * Math.sqrt((rate * (1 - rate)) / weight) >= this.modelRate() - this.modelCost();
  }

  lookupRate(matched: number): number {
    return this.lookup(matched).rate;
  }

  /** Lookup's estimate at a match length (over the pooled one, itself over the runtime's) and its weight in positions. */
  private lookup(matched: number): { rate: number; weight: number } {
    const known = this.lookupPrior();
    const [prior, priorWeight] = known === undefined ? [0.5, 1] : [known, PRIOR_WEIGHT];
    const pooled = { rate: (this.pooled.accepted + prior * priorWeight) / (this.pooled.decided + priorWeight), weight: this.pooled.decided + priorWeight };
    const c = this.byLength[matched];
    // A length's own counts over the pooled rate, worth PRIOR_WEIGHT positions in the rate and in
    // the weight alike (with a weight of one, a length's first observation dropped its weight from
    // the pooled ~25 to 2, and lookup lost the length just as evidence for it came in).
    return c ? { rate: (c.accepted + PRIOR_WEIGHT * pooled.rate) / (c.decided + PRIOR_WEIGHT), weight: c.decided + PRIOR_WEIGHT } : pooled;
  }

  modelRate(): number {
    const prior = this.modelPrior() ?? 0.5;
    return (this.model.accepted + prior * PRIOR_WEIGHT) / (this.model.decided + PRIOR_WEIGHT);
  }
}
