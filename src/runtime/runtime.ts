/** What a generation runs on: a clock, a drafter, the shared target pool and an event log. */
import type { ModelInstance } from "../core/instance.js";
import type { Clock } from "./clock.js";
import type { EventLog } from "./events.js";
import type { TargetPool } from "./pool.js";

export interface Runtime {
  clock: Clock;
  drafter: ModelInstance;
  /** Target instances; its size is the speculation parallelism (SP) DSI may use. */
  pool: TargetPool;
  events: EventLog;
  /** Hears what generations do, for metrics (a server's); optional. */
  observer?: RuntimeObserver;
}

/** Per-task and per-draft facts for metrics, without the event log's memory. */
export interface RuntimeObserver {
  /** A target evaluation ended: how long it ran, how many drafts it verified, how it ended. */
  verification?(ms: number, drafts: number, outcome: "done" | "preempted" | "failed"): void;
  /** A draft was decided: its index in its window (0: the first draft), accepted or not. */
  draftDecided?(index: number, accepted: boolean): void;
}
