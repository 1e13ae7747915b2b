/**
 * The one place a runtime is assembled: a clock, a drafter, a lazily filled target pool, what
 * generations learn (`Learned`) and an event log, with an optional latency profile on top of
 * every instance. The CLI, benches, tests and library users all build runtimes here (or
 * through a `Backend`, backend.ts), and run as many generations on each as they like.
 */
import type { ModelInstance } from "../core/instance.js";
import { makeClock, type Clock } from "../runtime/clock.js";
import { newLearned, type Learned } from "../runtime/costs.js";
import { EventLog } from "../runtime/events.js";
import { TargetPool } from "../runtime/pool.js";
import type { Runtime } from "../runtime/runtime.js";
import { freePositions, NO_LATENCY, withLatency, type LatencyProfile } from "./latency.js";
import { BatchDevice } from "./batch-device.js";
import { SharedDevice } from "./shared-device.js";
import type { SyntheticPair } from "./synthetic.js";

export interface RuntimeParts {
  /** A clock, or its kind. Defaults to the virtual clock. */
  clock?: Clock | "real" | "virtual";
  /** Absent: a target alone (prompt lookup drafts, `draft: "ngram"`). */
  drafter?: ModelInstance;
  /** Target instance `index` (created lazily by the pool, at most once per index). */
  target: (index: number) => ModelInstance | Promise<ModelInstance>;
  /** The targets' vocabulary and end-of-sequence token, known before any instance exists. */
  vocabSize: number;
  eosToken: number | undefined;
  /** Speculation parallelism: the most target instances (the pool's size). */
  sp: number;
  /** Sequences per target instance (default 1): `target(index)` makes sequence `index`, of instance `floor(index / sequences)`. */
  sequences?: number;
  /** Modelled latency added on top of every evaluation. Defaults to none. */
  profile?: LatencyProfile;
  /** Record the event log. Defaults to true. */
  events?: boolean;
  /** What an earlier runtime over the same instances observed (see runtime/costs.ts); default: nothing yet. */
  learned?: Learned;
  /**
   * Whether the drafter and the targets share one device (`Runtime.sharedDevice`). Default:
   * whether the profile models contention.
   */
  sharedDevice?: boolean;
}

export function assembleRuntime(o: RuntimeParts): Runtime {
  const clock = typeof o.clock === "object" ? o.clock : makeClock(o.clock ?? "virtual");
  const profile = o.profile ?? NO_LATENCY;
  // A profile with contention puts every instance on one modelled device.
  const device = profile.contention !== undefined ? new SharedDevice(clock, profile.contention) : undefined;
  // Several sequences per instance: the modelled latency has each instance's sequences share
  // its passes (batch-device.ts), as a batching device would, whatever the instances underneath
  // do (a llama context's sequences share passes on a CPU with one thread, else take turns).
  const sequences = o.sequences ?? 1;
  const batches: BatchDevice[] = [];
  const wrap = (i: ModelInstance, index: number): ModelInstance => {
    if (sequences === 1) return withLatency(i, clock, profile.target, device);
    const instance = Math.floor(index / sequences);
    batches[instance] ??= new BatchDevice(clock, profile.target, device);
    return withLatency(i, clock, profile.target, device, batches[instance]);
  };
  const events = new EventLog(() => clock.now(), o.events ?? true);
  const learned = o.learned ?? newLearned();
  const pool = new TargetPool({
    freePositions: freePositions(profile.target),
    size: o.sp,
    ...(o.sequences !== undefined ? { sequences: o.sequences } : {}),
    vocabSize: o.vocabSize,
    eosToken: o.eosToken,
    clock,
    events,
    create: (index) => {
      const made = o.target(index);
      return made instanceof Promise ? made.then((i) => wrap(i, index)) : wrap(made, index);
    },
  });
  return {
    clock,
    ...(o.drafter ? { drafter: withLatency(o.drafter, clock, profile.drafter, device) } : {}),
    pool,
    learned,
    sharedDevice: o.sharedDevice ?? device !== undefined,
    events,
    close: () => pool.close(),
  };
}

export interface SyntheticRuntimeOptions {
  pair: SyntheticPair;
  profile?: LatencyProfile;
  /** Defaults to the virtual clock. */
  clock?: Clock | "real" | "virtual";
  /** Speculation parallelism: the most target instances. Defaults to 1. */
  sp?: number;
  /** Sequences per target instance (default 1): their modelled passes are shared (batch-device.ts). */
  sequences?: number;
  /** Record the event log. Defaults to true. */
  events?: boolean;
  learned?: Learned;
}

/** Synthetic target and drafter (exact distributions) behind an optional latency profile. */
export function syntheticRuntime(o: SyntheticRuntimeOptions): Runtime {
  return assembleRuntime({
    clock: o.clock,
    drafter: o.pair.instance("drafter", "drafter"),
    target: (i) => o.pair.instance("target", `target-${i}`),
    vocabSize: o.pair.spec.vocab,
    eosToken: o.pair.spec.eosToken,
    sp: o.sp ?? 1,
    ...(o.sequences !== undefined ? { sequences: o.sequences } : {}),
    profile: o.profile,
    events: o.events,
    learned: o.learned,
  });
}
