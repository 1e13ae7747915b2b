/** Builds a runtime: synthetic instances behind a latency profile, on a clock. */
import { SyntheticPair } from "../models/synthetic.js";
import { NO_LATENCY, withLatency, type LatencyProfile } from "../models/latency.js";
import { makeClock, type Clock } from "../runtime/clock.js";
import { EventLog } from "../runtime/events.js";
import type { Runtime } from "./options.js";

export interface SyntheticRuntimeOptions {
  pair: SyntheticPair;
  profile?: LatencyProfile;
  clock?: Clock | "real" | "virtual";
  /** Target instances to create. */
  targets: number;
  /** Record the event log (default true). */
  events?: boolean;
}

export function syntheticRuntime(o: SyntheticRuntimeOptions): Runtime {
  const clock = typeof o.clock === "object" ? o.clock : makeClock(o.clock ?? "virtual");
  const profile = o.profile ?? NO_LATENCY;
  const targets = Array.from({ length: o.targets }, (_, i) => withLatency(o.pair.instance("target", `target-${i}`), clock, profile.target));
  const drafter = withLatency(o.pair.instance("drafter", "drafter"), clock, profile.drafter);
  return { clock, drafter, targets, events: new EventLog(() => clock.now(), o.events ?? true) };
}
