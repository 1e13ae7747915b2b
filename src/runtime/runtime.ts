/**
 * What generations run on: a clock, a drafter, the shared target pool, what the generations
 * learned so far, and an event log. One runtime serves many generations, one after another
 * or at once: what one learned about the instances (costs, acceptance) serves the next.
 */
import type { ModelInstance } from "../core/instance.js";
import type { DraftSource } from "../core/verify.js";
import type { Clock } from "./clock.js";
import type { Learned } from "./costs.js";
import type { EventLog } from "./events.js";
import type { TargetPool } from "./pool.js";

export interface Runtime {
  clock: Clock;
  /** The drafter model; absent where drafts come from prompt lookup alone (`draft: "ngram"`). */
  drafter?: ModelInstance;
  /** Target instances; its size is the speculation parallelism (SP) DSI may use. */
  pool: TargetPool;
  /**
   * Task costs and draft acceptance observed by the generations on this runtime: DSI's slack
   * and guard rules and the adaptive lookahead read them from a generation's first token.
   */
  learned: Learned;
  /**
   * Whether the drafter and the target instances share one device (in-process instances on
   * one CPU or GPU): a task then costs more beside another, and the adaptive lookahead prices
   * what it has not measured as a shared device makes it cost (lookahead/controller.ts).
   */
  sharedDevice: boolean;
  events: EventLog;
  /** Hears what generations do, for metrics (a server's); optional. */
  observer?: RuntimeObserver;
  /**
   * Stops what runs in the background (the pool's probes of lost instances); generations
   * still running fail once they need an instance that was lost. Idempotent.
   */
  close(): void;
}

/** Per-task and per-draft facts for metrics, without the event log's memory. */
export interface RuntimeObserver {
  /** A target evaluation ended: how long it ran, how many drafts it verified, how it ended. */
  verification?(ms: number, drafts: number, outcome: "done" | "preempted" | "failed"): void;
  /** A draft was decided: its index in its window (0: the first draft), accepted or not. */
  draftDecided?(index: number, accepted: boolean, source: DraftSource): void;
}
