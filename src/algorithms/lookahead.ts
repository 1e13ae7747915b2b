/**
 * The lookahead of each window: fixed (a number), or chosen online (`"auto"`), in three pieces:
 * - lookahead/model.ts: the expected time per committed token of SI, DSI and one-instance DSI
 *   with lookahead k, from measured costs and an acceptance rate (pure functions);
 * - lookahead/acceptance.ts: the generation's acceptance estimate (discounted counts over a
 *   prior, restarted when the context changes);
 * - lookahead/controller.ts: the choice before each task (`plan`, side-effect free) and its
 *   record when the task goes out (`commit`: probes, hysteresis, the exploration budget);
 * with their constants in lookahead/tuning.ts (`TUNING`).
 *
 * Why: speculation pays only when verifying a window costs about what one target step costs
 * (true on GPUs, where decoding is memory-bound). On a CPU a window of 6 tokens can cost 4.5
 * one-token steps, and then every speculative method loses to plain decoding; `auto` steps
 * aside there (k = 0: non-SI) and keeps up with the best fixed lookahead where it pays.
 * The controller changes only what is dispatched, never a decision rule: outputs stay lossless.
 */
import { TUNING } from "./lookahead/tuning.js";

/** Largest lookahead `auto` considers. */
export const AUTO_MAX_LOOKAHEAD = TUNING.maxLookahead;
export { TUNING, type Tuning } from "./lookahead/tuning.js";
export { dsiMsPerToken, dsiOneInstanceMsPerToken, interpolate, siMsPerToken, windowTokens, type CostModel, type MeanCosts } from "./lookahead/model.js";
export { AcceptanceEstimator, type AcceptancePrior } from "./lookahead/acceptance.js";
export {
  AdaptiveLookahead,
  FixedLookahead,
  planLookahead,
  probeFits,
  type LookaheadChoice,
  type LookaheadDecision,
  type LookaheadPolicy,
  type ObservedCosts,
  type Plan,
  type PlanSnapshot,
} from "./lookahead/controller.js";
