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
}
