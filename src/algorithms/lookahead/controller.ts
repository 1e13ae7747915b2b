/**
 * The lookahead controller: before each task, the lookahead k in 0..maxLookahead that
 * minimises the expected time per committed token (model.ts), from measured costs and the
 * acceptance estimate (acceptance.ts), plus a probe now and then to learn what it has not seen.
 *
 * Two steps, so that asking is never acting:
 * - `plan(instances)`: the decision for a task dispatched now. Side-effect free: ask it as often
 *   as you like (the drafter's lead, the rules' view). The model's work (`planLookahead`, a pure
 *   function of a `PlanSnapshot`) is memoised while the costs and the acceptance stay the same.
 * - `commit(decision, drafts)`: a task went out under that decision with `drafts` drafts. Only
 *   here does the controller change: a probe starts (its regret is charged to the exploration
 *   budget) or ends, the choice is reported, plain steps relax the acceptance estimate.
 * The controller changes only what is dispatched, never a decision rule: outputs stay lossless.
 */
import { DiscountedCounts, type Condition } from "../../runtime/costs.js";
import type { DraftSource } from "../../core/verify.js";
import type { DraftMode } from "../option-spec.js";
import type { EngineEvent } from "../../runtime/events.js";
import { AcceptanceEstimator, type AcceptancePrior } from "./acceptance.js";
import { dsiMsPerToken, dsiOneInstanceMsPerToken, interpolate, siMsPerToken, windowTokens, type CostModel } from "./model.js";
import { TUNING } from "./tuning.js";

/** A choice and the estimates behind it: the event log's `lookahead` event. */
export type LookaheadChoice = Omit<Extract<EngineEvent, { type: "lookahead" }>, "t" | "type">;

/** What `plan` answers: the lookahead of a task dispatched now, and how to dispatch it. */
export interface LookaheadDecision {
  /** The lookahead; 0 is a plain target step (non-SI's). */
  readonly lookahead: number;
  /** A probe: one window to learn from, not a pace to keep (the drafter drafts one window ahead). */
  readonly probing: boolean;
  /**
   * Whether a frontier task with fewer drafts than the lookahead may wait for more (DSI's slack
   * rule); no when sending what is ready at once pays more (one instance, cheap drafts).
   */
  readonly patient: boolean;
  /** The model's choice behind it; absent while a probe chosen earlier waits for its window. */
  readonly choice?: LookaheadChoice;
  /** The expected regret a new probe charges to the exploration budget, ms. */
  readonly regret?: number;
  /** A new probe's window: the task cost the plan assumed for it, ms (what it turns out to cost beyond that is charged too). */
  readonly probeTaskMs?: number;
}

/** How the lookahead of each task is chosen. */
export interface LookaheadPolicy {
  /** The decision for a task dispatched now (side-effect free). */
  plan(instances: number): LookaheadDecision;
  /** A target task went out under `decision` verifying `drafts` drafts. */
  commit(decision: LookaheadDecision, drafts: number): void;
  /** A draft was decided (`source`: where it came from; default the drafter model). */
  decided(accepted: boolean, source?: DraftSource): void;
  /** A position was committed where `source` drafts (or would have): the sources' shares (`ngram+model`). */
  drafts(source: DraftSource): void;
  /** Windows sent to learn, beyond the model's choice (auto only). */
  readonly probes: number;
}

export class FixedLookahead implements LookaheadPolicy {
  readonly probes = 0;
  private readonly decision: LookaheadDecision;
  constructor(lookahead: number) {
    this.decision = { lookahead, probing: false, patient: true };
  }
  plan(): LookaheadDecision {
    return this.decision;
  }
  commit(): void {}
  decided(): void {}
  drafts(): void {}
}

/** What the controller measured, as `TaskCosts` reports it (runtime/costs.ts). */
export interface ObservedCosts {
  /** Changes with every observation. */
  readonly version: number;
  /** Recent mean cost of a task with `drafts` drafts that ran alone or beside something else. */
  meanMs(drafts: number, where: Condition): number | undefined;
  /** Recent mean of one-token tasks that ran alone (non-SI's pace). */
  soloMs(): number | undefined;
  /** Recent mean drafter step, alone or beside a target task. */
  drafterMs(where: Condition): number | undefined;
  /** Tasks since a one-token task last ran alone. */
  tasksSinceSolo(): number;
  /** Recent mean of other sequences' tasks that shared a task's instance (the load; TaskCosts.sharers). */
  sharers(): number;
}

/** Everything the model's choice depends on, read at one instant. */
export interface PlanSnapshot {
  algo: "si" | "dsi";
  /**
   * The share of a task's time that something else of the runtime runs beside it: what mixes
   * the costs of the two conditions. Default: SI 0, DSI 1 (beside the drafter and each other);
   * DSI on one instance drafting by lookup alone 0 (nothing runs beside it), by lookup before
   * the drafter the drafter's share of the drafts.
   */
  besideShare?: number;
  /** Target instances the generation can use now. */
  instances: number;
  acceptance: number;
  /** The acceptance's upper confidence bound (probes while the choice is plain steps). */
  optimisticAcceptance: number;
  /** The drafter's step in the condition the algorithm drafts in (else the other's). */
  drafterMs: number | undefined;
  /** Recent mean cost by number of drafts, 0..maxLookahead, of tasks that ran alone and beside something (undefined: not observed). */
  aloneMs: readonly (number | undefined)[];
  besideMs: readonly (number | undefined)[];
  /**
   * Whether the drafter and the target instances share one device (in-process instances on one
   * CPU): a task beside another then costs more, and what was not measured is priced
   * pessimistically (`contentionPrior`, `sharedDraftCost`); else optimistically (separate devices).
   */
  sharedDevice: boolean;
  /** A plain step alone (else the mean of plain steps), ms. */
  plainMs: number | undefined;
  tasksSinceSolo: number;
  /** Whether the last committed choice (not a probe) was to speculate (hysteresis). */
  speculating: boolean;
  /** Probes per size that went out with fewer drafts. */
  probeMisses: ReadonlyMap<number, number>;
  /**
   * Other sequences' tasks that share an instance's compute with a task (recent mean; 0 or
   * absent: none). Each waits for the tokens a window adds to the instance's work, so a window
   * is charged what it costs beyond a plain step once more per sharer (`socialCosts`).
   */
  sharers?: number;
}

/** The model's choice for a snapshot, and the probe worth trying (before the budget is asked). */
export interface Plan {
  choice: LookaheadChoice;
  probe?: { size: number; ms: number; regret: number; taskMs?: number };
  /** Only plain steps have been observed. */
  coldStart: boolean;
  /** See LookaheadDecision.patient. */
  patient: boolean;
}

/**
 * The condition an algorithm's tasks run in: SI's alone (drafting and verifying take turns),
 * DSI's windows beside the drafter and each other; but with drafts from prompt lookup alone
 * (no drafter model runs) on one instance, nothing runs beside DSI's windows either.
 */
export function conditionOf(algo: "si" | "dsi", draft: DraftMode = "model", instances = 2): Condition {
  return algo === "si" || (draft === "ngram" && instances < 2) ? "alone" : "beside";
}

/**
 * Mean costs by size in the tasks' condition: measured where seen, else the other condition's
 * measured at that size times the ratio between the conditions (measured at sizes seen in
 * both; before that `contentionPrior` on a shared device, 1 on separate ones); mixed by
 * `besideShare` where tasks run beside something only part of the time.
 */
export function costsFor(s: Pick<PlanSnapshot, "algo" | "besideShare" | "aloneMs" | "besideMs" | "sharedDevice">, tuning: { contentionPrior: number } = TUNING): (number | undefined)[] {
  const ratios: number[] = [];
  s.aloneMs.forEach((alone, k) => {
    const beside = s.besideMs[k];
    if (alone !== undefined && beside !== undefined && alone > 0) ratios.push(beside / alone);
  });
  const besideOverAlone = ratios.length > 0 ? ratios.reduce((x, y) => x + y, 0) / ratios.length : s.sharedDevice ? tuning.contentionPrior : 1;
  const w = s.besideShare ?? (conditionOf(s.algo) === "beside" ? 1 : 0);
  return Array.from({ length: Math.max(s.aloneMs.length, s.besideMs.length) }, (_, k) => {
    const [a, b] = [s.aloneMs[k], s.besideMs[k]];
    if (a === undefined && b === undefined) return undefined;
    const alone = a ?? b! / besideOverAlone;
    const beside = b ?? a! * besideOverAlone;
    return w <= 0 ? alone : w >= 1 ? beside : (1 - w) * alone + w * beside;
  });
}

/**
 * Task costs by size as the runtime pays them under load: a window's cost beyond a plain step
 * (the tokens it adds to a pass, or to a context's turn) is paid by the window's generation and
 * once more by each of `sharers` other sequences' tasks that wait on the same instance. With no
 * sharers (one stream, one sequence per instance) the costs are the generation's own. Choosing
 * by these, windows shrink under load exactly where the tokens they add would cost the other
 * generations more than they save their own (down to plain steps for everyone on a device whose
 * pass grows with every token, a CPU); where a pass costs the same up to dozens of tokens (a
 * GPU below its knee) a window adds nothing and nothing changes.
 */
export function socialCosts(table: readonly number[], sharers: number): number[] {
  if (!(sharers > 0)) return [...table];
  return table.map((ms, k) => (k === 0 || Number.isNaN(ms) ? ms : socialCost(ms, table[0], sharers)));
}

/** A task's cost with what it adds beyond a plain `step` charged once more per sharer (`socialCosts`). */
function socialCost(ms: number, step: number, sharers: number): number {
  return ms + sharers * Math.max(0, ms - step);
}

/** `patient`: as a probe runs (DSI on one instance: waiting for its drafts). */
function msPerToken(algo: "si" | "dsi", k: number, m: CostModel, instances: number, patient = false): number {
  if (algo === "si") return siMsPerToken(k, m);
  return patient && instances < 2 && k > 0 ? dsiOneInstanceMsPerToken(k, m, true) : dsiMsPerToken(k, m, instances);
}

/**
 * The model's choice and the probe worth trying: a pure function of the snapshot.
 * - The choice: the k with the least expected time per token; leaving plain steps takes
 *   `speculationHurdle` (hysteresis: staying with speculation takes nothing), a larger k beats
 *   a smaller one by `preference`.
 * - The probe: the most promising window under optimism when it could beat the choice, one size
 *   beyond the largest seen at its cost (costs do not fall as windows grow), and while the
 *   choice is plain steps, acceptance at its upper confidence bound; or, in SI, a plain step
 *   when its measured cost is stale. Its regret: its extra expected time per token, times the
 *   tokens it commits.
 */
export function planLookahead(s: PlanSnapshot, tuning: typeof TUNING = TUNING): Plan {
  const max = tuning.maxLookahead;
  const { algo, instances, acceptance: a, drafterMs: d, plainMs: plain } = s;
  // Costs in the algorithm's condition; where one condition was not measured, what the choice
  // and the regrets read assume contention (a shared device), what probes hope for does not.
  const meanMs = costsFor(s, tuning);
  const hopedMs = costsFor(s, { contentionPrior: 1 });
  const sizes: number[] = [];
  for (let k = 0; k <= max; k++) if (meanMs[k] !== undefined) sizes.push(k);
  const choice = { lookahead: 0, probe: false, acceptance: a, drafterMs: d, plainMsPerToken: plain, msPerToken: plain ?? NaN };
  // Nothing known of the target: a plain step measures it (and is non-SI's step anyway).
  if (plain === undefined || sizes[0] !== 0) return { choice, coldStart: false, patient: true };
  // Costs by size, worked out once per plan (the models read them in their inner loops).
  const table = (means: (number | undefined)[], optimistic: boolean): number[] => Array.from({ length: max + 1 }, (_, k) => interpolate({ meanMs: (j) => means[j] }, sizes, k, optimistic));
  const sharers = s.sharers ?? 0;
  const [estimated, optimistic] = [socialCosts(table(meanMs, false), sharers), socialCosts(table(hopedMs, true), sharers)];
  const t = (k: number): number => estimated[k];
  const model: CostModel = { a, d: d ?? 0, t, t0: plain };
  for (let k = 1; k <= max; k++) {
    if (Number.isNaN(t(k))) continue;
    const ms = msPerToken(algo, k, model, instances);
    // Hysteresis: the hurdle is for leaving plain steps, not for staying with speculation.
    const margin = choice.lookahead > 0 ? tuning.preference : s.speculating ? 0 : tuning.speculationHurdle;
    if (ms < choice.msPerToken * (1 - margin)) [choice.lookahead, choice.msPerToken] = [k, ms];
  }
  // Exploration. Windows of the choice teach acceptance anyway.
  const best = choice.lookahead;
  const top = sizes[sizes.length - 1];
  const hopeful: CostModel = { a: best === 0 ? s.optimisticAcceptance : a, d: d ?? 0, t: (k) => optimistic[k], t0: plain };
  // SI: a plain step when its measured cost is stale; its regret is one token at the plain
  // pace. (In DSI a plain step would also stall the windows in flight: not worth it there.)
  const stale = algo === "si" && best > 0 && s.tasksSinceSolo >= tuning.plainStaleTasks && choice.msPerToken > (1 - tuning.staleMargin) * plain;
  let probe: Plan["probe"] = stale ? { size: 0, ms: plain, regret: Math.max(0, plain - choice.msPerToken) } : undefined;
  for (let k = 1; !stale && k <= Math.min(max, top + 1); k++) {
    if (k === best || (best > 0 && k <= top)) continue;
    // A size that probes did not get (DSI's slack rule sent fewer drafts) is not tried again.
    if (meanMs[k] === undefined && (s.probeMisses.get(k) ?? 0) >= tuning.sizeProbeAttempts) continue;
    const ms = msPerToken(algo, k, hopeful, instances);
    if (ms < (probe?.ms ?? choice.msPerToken) * (1 - tuning.preference)) probe = { size: k, ms, regret: 0 };
  }
  if (probe && probe.size > 0) {
    // Expected regret: the probe's extra time per token by the estimates, times the tokens it
    // commits. Where they extrapolate nothing: flat beyond the largest size seen on separate
    // devices (a GPU's pass costs about the same up to dozens of tokens); on a shared device
    // each unmeasured draft adds `sharedDraftCost` of a step (a CPU's pass grows with its tokens).
    // Under load (others pay for a task's tokens: `sharers`) an unmeasured window is priced as
    // on a shared device and its extra tokens charged to each sharer too (`socialCosts`): priced
    // flat, probes of every generation's cold start slowed 15 others' passes each, and at 64
    // CPU-like generations some finished 1.7% after non-SI's.
    const unseen = (k: number): number => (s.sharedDevice || sharers > 0 ? Math.max(hopeful.t(k), socialCost(t(0) * (1 + tuning.sharedDraftCost * k), t(0), sharers)) : hopeful.t(k));
    const t2 = (k: number): number => (Number.isNaN(t(k)) ? unseen(k) : t(k));
    const extra = msPerToken(algo, probe.size, { ...model, t: t2 }, instances, true) - choice.msPerToken;
    probe.regret = Math.max(0, extra) * windowTokens(probe.size, a);
    probe.taskMs = t2(probe.size);
  }
  // DSI on one instance: whether the choice pays more waiting for its drafts or going at once.
  const patient = algo === "si" || instances >= 2 || best === 0 || dsiOneInstanceMsPerToken(best, model, true) <= dsiOneInstanceMsPerToken(best, model, false);
  return { choice, probe, coldStart: top === 0 && !s.sharedDevice && !(sharers > 0), patient };
}

/**
 * Whether a probe may go out: one whose regret fits the budget, or the cold start's first on
 * separate devices (a window of one draft: there its price is a step's).
 */
export function probeFits(regret: number, state: { probes: number; explorationMs: number; elapsedMs: number; coldStart: boolean }, share: number = TUNING.explorationShare): boolean {
  const first = state.probes === 0 && state.coldStart; // the cold start: one window of 1 draft
  return first || state.explorationMs + regret <= share * state.elapsedMs;
}

/** What a plan was made from (`AdaptiveLookahead.planInputs`). */
interface PlanInputs {
  exact: number[];
  rates: number[];
  costs: number[];
}

/**
 * Whether a plan made from `was` is stale at `now`: an exact input changed, a rate moved by more
 * than 0.005, a cost by more than 5% (or was seen for the first time). The running means of a
 * measured machine wander by a few percent from task to task about where they are (at 2%, 40%
 * of DSI's plain steps on a CPU still planned afresh); 5% is the hurdle for leaving plain steps,
 * and while speculating the acceptance moves with the windows and the plans follow it. Measured
 * from the last plan, not across fixed cells, so a mean that wanders about one value does not
 * make plans.
 */
function moved(was: PlanInputs, now: PlanInputs): boolean {
  for (let i = 0; i < now.exact.length; i++) if (was.exact[i] !== now.exact[i]) return true;
  for (let i = 0; i < now.rates.length; i++) if (Math.abs(was.rates[i] - now.rates[i]) > 0.005) return true;
  for (let i = 0; i < now.costs.length; i++) {
    const [x, y] = [was.costs[i], now.costs[i]];
    if (x < 0 || y < 0 ? x !== y : Math.abs(y - x) > 0.05 * x) return true;
  }
  return false;
}

export class AdaptiveLookahead implements LookaheadPolicy {
  probes = 0;
  readonly acceptance: AcceptanceEstimator;
  /** A probe committed and not dispatched with drafts yet, and the plain tasks that went out meanwhile. */
  private probe: number | undefined;
  private probeWaits = 0;
  /** Probes per size that went out with fewer drafts (DSI's slack rule did not wait for all). */
  private readonly probeMisses = new Map<number, number>();
  /** Expected regret of the probes so far, plus what measured probe windows cost beyond the plan's estimate, ms. */
  private explorationMs = 0;
  /** The last probe window whose cost is not measured yet, and what the plan assumed it costs. */
  private unmeasured: { size: number; taskMs: number } | undefined;
  /** The lookahead last committed (a choice is reported when it changes). */
  private last: number | undefined;
  /** Whether the last committed choice (not a probe) was to speculate. */
  private speculating = false;
  /** Target instances the last plan was made for. */
  private instances = 1;
  /** The last plan and what it was made from. */
  private cached: { plan: Plan; inputs: PlanInputs; instances: number; costsVersion: number; observed: number } | undefined;
  /** Changes with everything the controller hears (decided drafts, sources, commits): with the costs' version, whether anything could have moved since the last plan. */
  private observed = 0;
  /** Changes with `probeMisses`. */
  private probeMissesVersion = 0;

  constructor(
    private readonly algo: "si" | "dsi",
    private readonly costs: ObservedCosts,
    prior: AcceptancePrior,
    /** Time since the generation started, ms. */
    private readonly elapsed: () => number,
    /** See PlanSnapshot.sharedDevice. */
    private readonly sharedDevice: boolean,
    private readonly onChange?: (c: LookaheadChoice) => void,
    private readonly tuning: typeof TUNING = TUNING,
    /** Where drafts come from: the drafter's step is paid only for the drafts it makes. */
    private readonly draft: DraftMode = "model",
  ) {
    this.acceptance = new AcceptanceEstimator(prior, tuning);
  }

  /** Committed positions where the drafter model drafts (or would have), against all (discounted as the acceptance's). */
  private readonly fromModel = new DiscountedCounts(TUNING.decidedDiscount);

  decided(accepted: boolean): void {
    this.acceptance.decided(accepted);
    this.observed++;
  }

  drafts(source: DraftSource): void {
    this.fromModel.observe(source === "model");
    this.observed++;
  }

  /**
   * The share of drafts the drafter model makes: 1 and 0 where one source drafts everything;
   * with prompt lookup before the model, the recent share of committed positions where it
   * drafts (from an even prior), whether or not a window drafted there. The acceptance
   * estimate is already the mix of the sources' acceptance as their drafts come.
   */
  private modelShare(): number {
    if (this.draft !== "ngram+model") return this.draft === "model" ? 1 : 0;
    return (this.fromModel.accepted + 0.5) / (this.fromModel.decided + 1);
  }

  plan(instances: number): LookaheadDecision {
    // A committed probe holds until its window goes out (or it is given up).
    if (this.probe !== undefined) return { lookahead: this.probe, probing: true, patient: true };
    const plan = this.model(instances);
    const { choice, probe, coldStart } = plan;
    const budget = { probes: this.probes, explorationMs: this.explorationMs + this.overrun(), elapsedMs: this.elapsed(), coldStart };
    if (probe && probeFits(probe.regret, budget, this.tuning.explorationShare)) {
      return { lookahead: probe.size, probing: true, patient: true, regret: probe.regret, probeTaskMs: probe.taskMs, choice: { ...choice, lookahead: probe.size, probe: true, msPerToken: probe.ms } };
    }
    return { lookahead: choice.lookahead, probing: false, patient: plan.patient, choice };
  }

  commit(decision: LookaheadDecision, drafts: number): void {
    this.observed++;
    const { choice } = decision;
    // A probe window measured since: what it cost beyond the plan's estimate is charged, so a
    // probe that turned out dear raises the price of the next (less of the budget is left).
    const overrun = this.overrun();
    if (this.unmeasured && this.measuredMs(this.unmeasured.size) !== undefined) {
      this.explorationMs += overrun;
      this.unmeasured = undefined;
    }
    if (choice) {
      if (choice.probe) {
        this.explorationMs += decision.regret ?? 0;
        if (decision.lookahead > 0 && decision.probeTaskMs !== undefined && Number.isFinite(decision.probeTaskMs)) {
          this.unmeasured = { size: decision.lookahead, taskMs: decision.probeTaskMs };
        }
        this.probes++;
        this.probe = decision.lookahead;
        this.probeWaits = 0;
      }
      if (decision.lookahead !== this.last || choice.probe) this.onChange?.(choice);
      if (!choice.probe) this.speculating = choice.lookahead > 0;
    }
    this.last = decision.lookahead;
    if (this.probe !== undefined) {
      if (drafts > 0 && drafts < this.probe) {
        this.probeMisses.set(this.probe, (this.probeMisses.get(this.probe) ?? 0) + 1);
        this.probeMissesVersion++;
      }
      // Done; or given up when plain tasks keep going out first (in DSI a drafter slower than
      // the target never gets a draft ahead of the frontier).
      if (drafts > 0 || this.probe === 0 || ++this.probeWaits >= this.tuning.probePatience) this.probe = undefined;
    }
    // A plain step decides no draft, so the estimate relaxes towards the prior; not under lookup
    // alone, whose estimate hears every committed position (its shadow), plain steps or not.
    if (drafts === 0 && this.draft !== "ngram") this.acceptance.plainStep();
  }

  /** What the last probe window cost beyond the plan's estimate, once measured (0 before). */
  private overrun(): number {
    const u = this.unmeasured;
    const measured = u && this.measuredMs(u.size);
    return u && measured !== undefined ? Math.max(0, measured - u.taskMs) : 0;
  }

  /**
   * The share of a task's time something else runs beside it (PlanSnapshot.besideShare): with
   * lookup before the drafter on one instance, the drafter runs beside a window about as often
   * as it drafts.
   */
  private besideShare(instances: number): number {
    // Under load every task runs beside other generations' tasks.
    if (this.loaded()) return 1;
    if (this.draft === "ngram+model" && this.algo === "dsi" && instances < 2) return this.modelShare();
    return conditionOf(this.algo, this.draft, instances) === "beside" ? 1 : 0;
  }

  /** Whether tasks run under load: other generations' tasks share their instances about half the time or more. */
  private loaded(): boolean {
    return this.costs.sharers() >= 0.5;
  }

  /** The mean cost of a size in the tasks' (main) condition, else in the other (a probe may run in either). */
  private measuredMs(size: number): number | undefined {
    const where = this.besideShare(this.instances) >= 0.5 ? "beside" : "alone";
    return this.costs.meanMs(size, where) ?? this.costs.meanMs(size, where === "alone" ? "beside" : "alone");
  }

  /** What a draft costs on average: the drafter's step in `where` (else the other condition's) times the share of drafts it makes. */
  private draftMs(where: Condition): number | undefined {
    const share = this.modelShare();
    if (share === 0) return 0;
    const step = this.costs.drafterMs(where) ?? this.costs.drafterMs(where === "alone" ? "beside" : "alone");
    return step === undefined ? undefined : step * share;
  }

  /**
   * The model's plan, worked out again only when one of its inputs moved by more than a
   * tolerance since the last plan (`planInputs`, `moved`; with nothing observed since, no
   * need to look: DSI asks several times per task). A plan costs 60-200 us on a CPU that
   * just ran a decode (its caches hold the model's weights, not the engine's objects), and on a
   * measured machine some input moves with every task: planned afresh each time, the plans were
   * ~100 us of every 6 ms step, most of what auto SI and DSI lost against non-SI where they made
   * plain steps only.
   */
  private model(instances: number): Plan {
    const c = this.cached;
    if (c && c.instances === instances && c.costsVersion === this.costs.version && c.observed === this.observed) return c.plan;
    const inputs = this.planInputs(instances);
    if (c && !moved(c.inputs, inputs)) {
      [c.instances, c.costsVersion, c.observed] = [instances, this.costs.version, this.observed];
      return c.plan;
    }
    this.instances = instances;
    const table = (where: Condition): (number | undefined)[] => Array.from({ length: this.tuning.maxLookahead + 1 }, (_, k) => this.costs.meanMs(k, where));
    const besideShare = this.besideShare(instances);
    const where = besideShare >= 0.5 ? "beside" : "alone";
    const sharers = this.costs.sharers();
    const snapshot = { algo: this.algo, besideShare, aloneMs: table("alone"), besideMs: table("beside"), sharedDevice: this.sharedDevice };
    const plan = planLookahead(
      {
        ...snapshot,
        instances,
        acceptance: this.acceptance.rate(),
        optimisticAcceptance: this.acceptance.optimisticRate(),
        drafterMs: this.draftMs(where),
        // (Under load no plain step runs alone: non-SI's pace is that of the plain steps beside others.)
        plainMs: (this.loaded() ? undefined : this.costs.soloMs()) ?? costsFor(snapshot, this.tuning)[0],
        tasksSinceSolo: this.costs.tasksSinceSolo(),
        speculating: this.speculating,
        probeMisses: new Map(this.probeMisses),
        sharers,
      },
      this.tuning,
    );
    this.cached = { plan, inputs, instances, costsVersion: this.costs.version, observed: this.observed };
    return plan;
  }

  /** What the plan reads: exact inputs, acceptances and the drafter's share, then costs (ms; -1: not seen). */
  private planInputs(instances: number): PlanInputs {
    const costs = [this.costs.drafterMs("alone"), this.costs.drafterMs("beside")];
    for (let k = 0; k <= this.tuning.maxLookahead; k++) costs.push(this.costs.meanMs(k, "alone"), this.costs.meanMs(k, "beside"));
    return {
      // (The load in halves: a running mean of whole counts wanders between them.)
      exact: [instances, this.speculating ? 1 : 0, this.probeMissesVersion, this.costs.tasksSinceSolo() >= this.tuning.plainStaleTasks ? 1 : 0, this.loaded() ? 1 : 0, Math.round(2 * this.costs.sharers())],
      rates: [this.acceptance.rate(), this.acceptance.optimisticRate(), this.modelShare()],
      costs: costs.map((ms) => ms ?? -1),
    };
  }
}
