/**
 * The lookahead of each window: fixed (a number), or chosen online (`"auto"`).
 *
 * Speculation pays only when verifying a window costs about what one target step costs (true
 * on GPUs, where decoding is memory-bound). On a CPU a window of 6 tokens can cost 4.5 one-token
 * steps, and then every speculative method loses to plain decoding. So `auto` picks, before
 * each window, the lookahead k in 0..AUTO_MAX_LOOKAHEAD that minimises the expected time per
 * committed token, from what the engine observes as it goes:
 * - t(k): the recent mean duration of a target task verifying k drafts (the pool's TaskCosts,
 *   measured under the machine's real load, a drafter running beside it included), and t0,
 *   the recent mean of one-token tasks that ran alone: what a plain (non-SI) step costs;
 * - d: the recent mean duration of one drafter step;
 * - a: the acceptance rate of recent drafts (discounted counts: a change of context, code vs
 *   prose, shows within a few windows).
 * k = 0 is a plain target step: non-SI. The expected time per token, with the paper's model of
 * i.i.d. acceptance (a draft is accepted with probability a, the first rejection ends a run):
 * - SI drafts k, then verifies: (k·d + t(k)) / E(k), E(k) = (1 - a^(k+1)) / (1 - a) tokens per
 *   window (Leviathan et al.'s formula, with measured instead of assumed costs);
 * - DSI drafts continuously and verifies windows of k on free instances: an epoch (from one
 *   rejection to the next) commits 1/(1-a) tokens in expectation and lasts until the task
 *   deciding the rejected draft finishes; that task's finish time follows from when its
 *   drafts are ready (the drafter's pace) and when an instance is free, and from the guard
 *   rule's one-token passes where windows cost more than a step (`dsiMsPerToken`).
 *   On one instance every task is a frontier task, SI's window with drafting overlapped: the
 *   model (`dsiOneInstanceMsPerToken`) weighs waiting for k drafts (the slack rule) against
 *   going at once with the drafts made during the last task, and the choice tells the slack
 *   rule which (`patient`).
 *
 * Sizes never observed are estimated between observed ones, or linearly beyond the two largest,
 * so the controller never commits to a cost curve it has not seen. Learning is bounded:
 * - at the start, one plain step measures t0, then one window of 1 draft measures t(1) and the
 *   drafter (the cheapest speculation; from there the curve extrapolates);
 * - later a probe window, one size beyond the largest observed or under an optimistic
 *   acceptance (the upper confidence bound), goes out only when it could pay and its expected
 *   regret fits the exploration budget: EXPLORATION_SHARE of the generation's time so far;
 * - while no drafts are decided (plain steps), the acceptance estimate relaxes towards the
 *   prior, so a context where drafting pays again is noticed;
 * - leaving plain steps takes a 5% expected gain (a near tie is within the model's error and
 *   the machine's noise); going back to them, only that they are expected to be faster.
 * SI re-measures the plain step now and then while speculating pays less than 30% (DSI's
 * frontier tasks run beside windows, so DSI keeps the plain cost it measured last).
 * The controller changes only what is dispatched, never a decision rule: outputs stay lossless.
 */
import { DiscountedCounts, type AcceptanceMemory, type TaskCosts } from "../runtime/costs.js";
import type { EngineEvent } from "../runtime/events.js";

/** Largest lookahead `auto` considers. */
export const AUTO_MAX_LOOKAHEAD = 8;
/** Share of a generation's time that probe windows may cost beyond the model's choice. */
const EXPLORATION_SHARE = 0.02;
/**
 * Prior acceptance and its weight in drafts: what is assumed before a generation's own drafts
 * are decided. The runtime's long-run acceptance where it has one, worth MEMORY_WEIGHT drafts
 * (most likely the same workload: it steadies the first windows of every generation) until
 * a change of context is detected; else 0.5, worth one draft.
 */
const DEFAULT_PRIOR = 0.5;
const DEFAULT_WEIGHT = 1;
const MEMORY_WEIGHT = 20;
/** Discount per decided draft: the last ~50 drafts make the acceptance estimate (low noise). */
const DECIDED_DISCOUNT = 0.98;
/**
 * A short-memory estimate (last ~5 drafts) watches for a change of context: when it strays
 * from the long one by more than CHANGE_Z standard errors, the long one restarts from it.
 */
const FAST_DISCOUNT = 0.8;
const CHANGE_Z = 3;
/** Discount per plain step (no drafts): the estimate relaxes towards the prior. */
const PLAIN_DISCOUNT = 0.95;
/** The DSI model follows an epoch's windows until this probability is left (then a tail). */
const TAIL_MASS = 1e-3;
/** The model's acceptance is capped below 1 (the expected epoch would be endless). */
const MAX_MODEL_ACCEPTANCE = 0.99;
/** A lookahead must beat a smaller one by this share to be chosen (noise in measured costs). */
const PREFERENCE = 0.005;
/**
 * Speculating must beat plain steps by this share: near a tie the i.i.d. model's small
 * advantage is within what it gets wrong (end of generation, acceptance that varies by
 * position), and on a GPU, where speculation pays, the margin is far larger.
 */
const SPECULATION_HURDLE = 0.05;
/**
 * While speculating, the plain step's cost is re-measured (one plain step, a probe) once this
 * many tasks ran since it was last measured alone: the machine's load changes.
 */
const PLAIN_STALE_TASKS = 40;
/**
 * SI re-measures it only while its choice beats plain steps by less than this share: a wider
 * margin a change of load would not close (it moves windows' costs too, measured anyway).
 */
const STALE_MARGIN = 0.3;

/** Plain tasks that may go out while a probe waits for its drafts before it is given up. */
const PROBE_PATIENCE = 3;
/** Probes of a size never observed that may come out smaller before the size is given up. */
const SIZE_PROBE_ATTEMPTS = 2;

/** What the expected-time models need. */
export interface CostModel {
  /** Acceptance probability per draft. */
  a: number;
  /** Drafter cost per draft, ms. */
  d: number;
  /** Target task cost with k drafts, ms. */
  t: (k: number) => number;
  /** A plain step alone, ms (non-SI's pace). */
  t0: number;
}

/** Expected tokens a window of k drafts commits: the accepted run plus one of the target's. */
function windowTokens(k: number, acceptance: number): number {
  const a = Math.min(acceptance, MAX_MODEL_ACCEPTANCE);
  return (1 - a ** (k + 1)) / (1 - a);
}

/** SI: expected ms per committed token with lookahead k (k = 0: a plain step). */
export function siMsPerToken(k: number, m: CostModel): number {
  if (k === 0) return m.t0;
  return (k * m.d + m.t(k)) / windowTokens(k, m.a);
}

/**
 * DSI: expected ms per committed token with lookahead k on `instances` target instances.
 * Renewal over epochs. With two or more instances, the epoch's first position is decided by the
 * frontier task (no drafts, sent at once; it ends at t(0)). Window i (drafts ik..ik+k-1 after
 * that) is ready when its drafts are, (i+1)·k·d, starts on the instance free first (the frontier
 * task holds one until t(0)), ends t(k) later, and decides the drafts up to (i+1)k (its last
 * output decides the next window's first draft). The guard rule is part of the timeline: when
 * the frontier reaches a window that would finish later than a fresh one-token pass, and an
 * instance is free, such passes decide its first drafts (and hold that instance), which is
 * what windows that cost more than a step lose on. The timeline becomes periodic after a few
 * windows; from there the rest of the epoch is a geometric series.
 */
export function dsiMsPerToken(k: number, m: CostModel, instances: number): number {
  if (k === 0) return m.t0;
  if (instances < 2) return Math.min(dsiOneInstanceMsPerToken(k, m, true), dsiOneInstanceMsPerToken(k, m, false));
  const a = Math.min(m.a, MAX_MODEL_ACCEPTANCE);
  const tk = m.t(k);
  const t0 = m.t(0);
  // The epoch's timeline while nothing is rejected: windows go out in order, each on the
  // instance free first, once its drafts are ready; the frontier task holds one until t(0).
  const free: number[] = new Array<number>(instances).fill(0);
  free[0] = t0;
  const earliest = (): number => {
    let j = 0;
    for (let x = 1; x < free.length; x++) if (free[x] < free[j]) j = x;
    return j;
  };
  const finish: number[] = [];
  const startOf = (i: number): number => Math.max((i + 1) * k * m.d, free[earliest()]);
  const place = (): void => {
    const start = startOf(finish.length);
    free[earliest()] = start + tk;
    finish.push(start + tk);
  };
  let epoch = (1 - a) * t0;
  let reach = a; // P(no rejection before window i)
  // Per window: its share of the epoch's expected length, the probability that the epoch ends
  // in it, and when it decides each draft relative to its finish (the guard rule's pattern).
  const share: number[] = [];
  const ends: number[] = [];
  const offsets: number[][] = [];
  for (let i = 0; reach > TAIL_MASS; i++) {
    // When the frontier reaches window i: the frontier task's or window i - 1's finish.
    let at = i === 0 ? t0 : finish[i - 1];
    // Windows that could start before then go first (at the same instant the guard rule does).
    while (finish.length <= i || startOf(finish.length) < at - 1e-9) place();
    // Guard rule: while window i would finish later than a fresh one-token pass on a free
    // instance, such a pass decides the frontier position first.
    let e = 0;
    const off: number[] = [];
    for (let j = 0; j < k; j++) {
      let decided = finish[i];
      const g = earliest();
      if (finish[i] > at + t0 + 1e-9 && free[g] <= at + 1e-9) {
        free[g] = at + t0;
        at += t0;
        decided = at;
      }
      off.push(decided - finish[i]);
      e += reach * a ** j * (1 - a) * decided; // the first rejection at window i's j-th draft
    }
    share.push(e);
    ends.push(reach * (1 - a ** k));
    offsets.push(off);
    epoch += e;
    reach *= a ** k;
    // Once the timeline repeats with a period of p windows (the same spacing and guard
    // pattern), the rest is a geometric series: each period later, times shift by the
    // period's length and probabilities shrink by a^(kp).
    const p = period(finish, offsets, i, instances);
    if (p > 0) {
      const r = a ** (k * p);
      const length = finish[i] - finish[i - p];
      for (let w = i - p + 1; w <= i; w++) epoch += (share[w] * r) / (1 - r) + (length * ends[w] * r) / (1 - r) ** 2;
      return epoch * (1 - a);
    }
  }
  // What is left (probability below TAIL_MASS): later windows at the pace of the last ones.
  if (reach > 0) {
    if (finish.length === 0) place();
    const n = finish.length;
    const pace = n >= 2 ? finish[n - 1] - finish[n - 2] : tk;
    epoch += reach * (finish[n - 1] + pace / (1 - a ** k));
  }
  return epoch * (1 - a); // tokens per epoch: 1 / (1 - a)
}

/**
 * DSI on one instance: every task is a frontier task (SI's window: up to k drafts, deciding one
 * position more), and the drafter drafts while it runs, up to the queue's lead limit (2k + 1
 * drafts ahead of the frontier). `patient`: a task waits until k drafts are ready (the slack
 * rule at its longest); otherwise it goes as soon as the instance is free, with the drafts
 * made meanwhile (after a rejection: none, a plain step). Renewal over cycles that start with
 * no drafts ready: after a task of j drafts, the drafts made beyond the position its last
 * output decides carry over when that draft exists and all j + 1 are accepted; otherwise (a
 * rejection, or the target passed the drafter) the drafter starts afresh.
 */
export function dsiOneInstanceMsPerToken(k: number, m: CostModel, patient: boolean): number {
  const a = Math.min(m.a, MAX_MODEL_ACCEPTANCE);
  const lead = 2 * k + 1;
  let reach = 1; // P(this task is part of the cycle)
  let ready = 0; // drafts ahead of the frontier when the task is sent (fractional: one in progress)
  let ms = 0;
  let tokens = 0;
  for (let n = 0; n < 10_000 && reach > 1e-6; n++) {
    let wait = 0;
    if (patient && ready < k) [wait, ready] = [(k - ready) * m.d, k];
    const j = Math.min(k, Math.floor(ready + 1e-9));
    const tj = m.t(j);
    ms += reach * (wait + tj);
    tokens += reach * windowTokens(j, a);
    const drafted = m.d > 0 ? Math.min(lead, ready + tj / m.d) : lead;
    if (drafted < j + 1) break; // the next position was not drafted: a fresh start
    reach *= a ** (j + 1);
    ready = drafted - j - 1;
  }
  return ms / tokens;
}

/**
 * The smallest p (1..instances) with which the last 2·instances windows repeat (the same
 * spacing of finishes and the same guard pattern, p windows apart); 0 when none does yet.
 * Over fewer windows a start-up transient could pass for a period.
 */
function period(finish: readonly number[], offsets: readonly number[][], i: number, instances: number): number {
  const same = (x: number, y: number): boolean => Math.abs(x - y) <= 1e-6 * Math.max(1, Math.abs(x));
  const span = 2 * instances;
  for (let p = 1; p <= instances; p++) {
    if (i - span - p < 1) break;
    let repeats = true;
    for (let w = i; w > i - span && repeats; w--) {
      repeats = same(finish[w] - finish[w - 1], finish[w - p] - finish[w - p - 1]) && offsets[w].every((o, j) => same(o, offsets[w - p][j]));
    }
    if (repeats) return p;
  }
  return 0;
}

/** How the lookahead of each window is chosen. */
export interface LookaheadPolicy {
  /** The lookahead of the next window; 0 is a plain target step (non-SI's). */
  next(instances: number): number;
  /** A target task went out verifying `drafts` drafts. */
  dispatched(drafts: number): void;
  /** A draft was decided. */
  decided(accepted: boolean): void;
  /** Windows sent to learn, beyond the model's choice (auto only). */
  readonly probes: number;
  /** Whether the current answer is a probe (one window to learn from, not a pace to keep). */
  readonly probing: boolean;
  /**
   * Whether a frontier task with fewer drafts than the lookahead may wait for more (DSI's slack
   * rule); no when sending what is ready at once pays more (one instance, cheap drafts).
   */
  readonly patient: boolean;
}

export class FixedLookahead implements LookaheadPolicy {
  readonly probes = 0;
  readonly probing = false;
  readonly patient = true;
  constructor(private readonly lookahead: number) {}
  next(): number {
    return this.lookahead;
  }
  dispatched(): void {}
  decided(): void {}
}

/** A choice and the estimates behind it: the event log's `lookahead` event. */
type LookaheadChoice = Omit<Extract<EngineEvent, { type: "lookahead" }>, "t" | "type">;

export class AdaptiveLookahead implements LookaheadPolicy {
  probes = 0;
  /** The generation's decided drafts: the estimate (~50 drafts) and the change watch (~5). */
  private readonly recent = new DiscountedCounts(DECIDED_DISCOUNT);
  private readonly fast = new DiscountedCounts(FAST_DISCOUNT);
  /** A change of context was detected: the long-run prior no longer speaks for this one. */
  private contextChanged = false;
  /** A probe chosen and not dispatched yet, and the plain tasks that went out meanwhile. */
  private probe: number | undefined;
  private probeWaits = 0;
  /** Probes per size that went out with fewer drafts (DSI's slack rule did not wait for all). */
  private readonly probeMisses = new Map<number, number>();
  /** Expected regret of the probes so far, ms. */
  private explorationMs = 0;
  private last: number | undefined;
  /** Whether the last choice (not a probe) was to speculate. */
  private speculating = false;
  /** Changes with every decided draft or plain commit. */
  private version = 0;
  private cached: Plan | undefined;

  constructor(
    private readonly algo: "si" | "dsi",
    private readonly costs: TaskCosts,
    private readonly memory: AcceptanceMemory,
    /** Time since the generation started, ms. */
    private readonly elapsed: () => number,
    private readonly onChange?: (c: LookaheadChoice) => void,
  ) {}

  /** The acceptance estimate: discounted counts with the prior. */
  acceptance(): number {
    const prior = this.memory.rate() ?? DEFAULT_PRIOR;
    return (this.recent.accepted + prior * this.priorWeight()) / (this.recent.decided + this.priorWeight());
  }

  private priorWeight(): number {
    return this.memory.rate() === undefined || this.contextChanged ? DEFAULT_WEIGHT : MEMORY_WEIGHT;
  }

  private optimisticAcceptance(): number {
    const a = this.acceptance();
    return Math.min(1, a + Math.sqrt((a * (1 - a)) / (this.recent.decided + this.priorWeight())));
  }

  decided(accepted: boolean): void {
    this.recent.observe(accepted);
    this.fast.observe(accepted);
    const a = this.acceptance();
    const { decided } = this.fast;
    if (decided >= 4 && Math.abs(this.fast.accepted / decided - a) > CHANGE_Z * Math.sqrt(Math.max(a * (1 - a), 0.01) / decided)) {
      this.recent.restartFrom(this.fast);
      this.contextChanged = true;
    }
    this.version++;
  }

  /** A plain step: no draft is decided, so the acceptance estimate relaxes towards the prior. */
  private relax(): void {
    this.recent.fade(PLAIN_DISCOUNT);
    this.fast.fade(PLAIN_DISCOUNT);
    this.version++;
  }

  dispatched(drafts: number): void {
    if (this.probe !== undefined) {
      if (drafts > 0 && drafts < this.probe) this.probeMisses.set(this.probe, (this.probeMisses.get(this.probe) ?? 0) + 1);
      // Done; or given up when plain tasks keep going out first (in DSI a drafter slower than
      // the target never gets a draft ahead of the frontier).
      if (drafts > 0 || this.probe === 0 || ++this.probeWaits >= PROBE_PATIENCE) this.probe = undefined;
    }
    if (drafts === 0) this.relax();
  }

  get probing(): boolean {
    return this.probe !== undefined;
  }

  /** Patient unless the last plan found sending at once better (a probe waits for its window). */
  get patient(): boolean {
    return this.probe !== undefined || (this.cached?.patient ?? true);
  }

  next(instances: number): number {
    const c = this.probe !== undefined ? undefined : this.choose(instances);
    const k = this.probe ?? c!.lookahead;
    if (c && (k !== this.last || c.probe)) this.onChange?.(c);
    this.last = k;
    if (c && !c.probe) this.speculating = c.lookahead > 0;
    return k;
  }

  /** `patient`: as a probe runs (DSI on one instance: waiting for its drafts). */
  private msPerToken(k: number, m: CostModel, instances: number, patient = false): number {
    if (this.algo === "si") return siMsPerToken(k, m);
    return patient && instances < 2 && k > 0 ? dsiOneInstanceMsPerToken(k, m, true) : dsiMsPerToken(k, m, instances);
  }

  /** Observed sizes in increasing order (0 first when seen). */
  private observed(): number[] {
    const sizes: number[] = [];
    for (let k = 0; k <= AUTO_MAX_LOOKAHEAD; k++) if (this.costs.meanMs(k) !== undefined) sizes.push(k);
    return sizes;
  }

  /** The model's choice and the probe worth trying, cached while nothing they depend on changed. */
  private plan(instances: number): Plan {
    const c = this.cached;
    if (c && c.costsVersion === this.costs.version && c.version === this.version && c.instances === instances) return c;
    const key = { costsVersion: this.costs.version, version: this.version, instances };
    const a = this.acceptance();
    const d = this.costs.drafterMs();
    const sizes = this.observed();
    const plain = this.costs.soloMs() ?? this.costs.meanMs(0);
    const choice = { lookahead: 0, probe: false, acceptance: a, drafterMs: d, plainMsPerToken: plain, msPerToken: plain ?? NaN };
    // Nothing known of the target: a plain step measures it (and is non-SI's step anyway).
    if (plain === undefined || sizes[0] !== 0) return (this.cached = { ...key, choice, coldStart: false, patient: true });
    // Costs by size, worked out once per plan (the models read them in their inner loops).
    const table = (optimistic: boolean): number[] =>
      Array.from({ length: AUTO_MAX_LOOKAHEAD + 1 }, (_, k) => interpolate(this.costs, sizes, k, optimistic));
    const [estimated, optimistic] = [table(false), table(true)];
    const t = (k: number): number => estimated[k];
    const model: CostModel = { a, d: d ?? 0, t, t0: plain };
    for (let k = 1; k <= AUTO_MAX_LOOKAHEAD; k++) {
      if (Number.isNaN(t(k))) continue;
      const ms = this.msPerToken(k, model, instances);
      // Hysteresis: the hurdle is for leaving plain steps, not for staying with speculation.
      const margin = choice.lookahead > 0 ? PREFERENCE : this.speculating ? 0 : SPECULATION_HURDLE;
      if (ms < choice.msPerToken * (1 - margin)) [choice.lookahead, choice.msPerToken] = [k, ms];
    }
    // Exploration: the most promising window under optimism, when it could beat the choice:
    // one size beyond the largest seen, at its cost (costs do not fall as windows grow); and,
    // while the choice is plain steps (no drafts decided, so nothing learned of acceptance),
    // acceptance at its upper confidence bound. Windows of the choice teach acceptance anyway.
    const best = choice.lookahead;
    const top = sizes[sizes.length - 1];
    const hopeful: CostModel = {
      a: best === 0 ? this.optimisticAcceptance() : a,
      d: d ?? 0,
      t: (k) => optimistic[k],
      t0: plain,
    };
    // SI: a plain step when its measured cost is stale; its regret is one token at the plain
    // pace. (In DSI a plain step would also stall the windows in flight: not worth it there.)
    const stale =
      this.algo === "si" && best > 0 && this.costs.tasksSinceSolo() >= PLAIN_STALE_TASKS && choice.msPerToken > (1 - STALE_MARGIN) * plain;
    let probe: Plan["probe"] = stale ? { size: 0, ms: plain, regret: Math.max(0, plain - choice.msPerToken) } : undefined;
    for (let k = 1; !stale && k <= Math.min(AUTO_MAX_LOOKAHEAD, top + 1); k++) {
      if (k === best || (best > 0 && k <= top)) continue;
      // A size that probes did not get (DSI's slack rule sent fewer drafts) is not tried again.
      if (this.costs.meanMs(k) === undefined && (this.probeMisses.get(k) ?? 0) >= SIZE_PROBE_ATTEMPTS) continue;
      const ms = this.msPerToken(k, hopeful, instances);
      if (ms < (probe?.ms ?? choice.msPerToken) * (1 - PREFERENCE)) probe = { size: k, ms, regret: 0 };
    }
    if (probe && probe.size > 0) {
      // Expected regret: the probe's extra time per token by the estimates (flat beyond the
      // largest size seen where they extrapolate nothing), times the tokens it commits.
      const t2 = (k: number): number => (Number.isNaN(t(k)) ? hopeful.t(k) : t(k));
      const extra = this.msPerToken(probe.size, { ...model, t: t2 }, instances, true) - choice.msPerToken;
      probe.regret = Math.max(0, extra) * windowTokens(probe.size, a);
    }
    // DSI on one instance: whether the choice pays more waiting for its drafts or going at once.
    const patient = this.algo === "si" || instances >= 2 || best === 0 || dsiOneInstanceMsPerToken(best, model, true) <= dsiOneInstanceMsPerToken(best, model, false);
    return (this.cached = { ...key, choice, probe, coldStart: top === 0, patient });
  }

  private choose(instances: number): LookaheadChoice {
    const { choice, probe, coldStart } = this.plan(instances);
    if (probe) {
      const first = this.probes === 0 && coldStart; // the cold start: one window of 1 draft
      if (first || this.explorationMs + probe.regret <= EXPLORATION_SHARE * this.elapsed()) {
        this.explorationMs += probe.regret;
        this.probes++;
        this.probe = probe.size;
        this.probeWaits = 0;
        return { ...choice, lookahead: probe.size, probe: true, msPerToken: probe.ms };
      }
    }
    return choice;
  }
}

/** The model's choice for some inputs (the versions of what it read), and the probe worth trying. */
interface Plan {
  costsVersion: number;
  version: number;
  instances: number;
  choice: LookaheadChoice;
  probe?: { size: number; ms: number; regret: number };
  /** Only plain steps have been observed. */
  coldStart: boolean;
  /** See LookaheadPolicy.patient. */
  patient: boolean;
}

/**
 * Target cost with k drafts from the observed sizes: the recent mean where seen, linear between
 * seen sizes, linear beyond the two largest (slope at least 0); NaN where that is not enough.
 * `optimistic`: beyond the largest seen size, its cost (costs do not fall as windows grow).
 */
function interpolate(costs: TaskCosts, sizes: readonly number[], k: number, optimistic: boolean): number {
  const seen = costs.meanMs(k);
  if (seen !== undefined) return seen;
  let below = -1;
  let above = -1;
  for (const s of sizes) {
    if (s < k) below = s;
    else if (above < 0) above = s;
  }
  if (below < 0) return NaN;
  const lo = costs.meanMs(below)!;
  if (above >= 0) return lo + ((costs.meanMs(above)! - lo) * (k - below)) / (above - below);
  if (optimistic) return lo;
  const i = sizes.indexOf(below);
  if (i < 1) return NaN;
  const prev = sizes[i - 1];
  const slope = Math.max(0, (lo - costs.meanMs(prev)!) / (below - prev));
  return lo + slope * (k - below);
}
