/**
 * The engine's event log: what each instance did and when. Tests read it to check
 * preemption and leases; the trace writer turns it into a timeline. Generations record their
 * events here, the target pool its leases and its instances' losses and returns.
 */
import type { DraftSource } from "../core/verify.js";

export type EngineEvent =
  /** The drafter started (or finished, or was preempted while) drafting position `pos`. */
  | { t: number; type: "draft-start"; pos: number; epoch: number }
  | { t: number; type: "draft-done"; pos: number; token: number; epoch: number; source: DraftSource }
  | { t: number; type: "draft-preempt"; pos: number; epoch: number }
  /**
   * A target task: verify `drafts` placed at positions start.., outputs for
   * start..start+drafts.length. Its prefix holds committed tokens up to `frontier` and the
   * speculative tokens `prefixDrafts` at frontier..start-1.
   */
  | {
      t: number;
      type: "dispatch";
      task: number;
      instance: number;
      start: number;
      drafts: number[];
      frontier: number;
      prefixDrafts: number[];
      epoch: number;
      /** A one-token frontier task sent beside a window expected to finish later (DSI's guard rule). */
      guard?: true;
    }
  | { t: number; type: "task-done"; task: number; instance: number }
  | { t: number; type: "task-preempt"; task: number; instance: number; reason: "rejected" | "useless" | "finished" }
  /** A task's instance was lost (its worker died): the instance is retired, the work dispatched again. */
  | { t: number; type: "task-lost"; task: number; instance: number; error: string }
  /** The drafter was lost (its worker died): the generation goes on without drafts, as non-SI. */
  | { t: number; type: "drafter-lost"; error: string }
  /**
   * The adaptive lookahead changed its choice (or sent a probe): the lookahead and the
   * estimates behind it (expected ms per token of the choice and of a plain step).
   */
  | {
      t: number;
      type: "lookahead";
      lookahead: number;
      probe: boolean;
      acceptance: number;
      drafterMs: number | undefined;
      msPerToken: number;
      plainMsPerToken: number | undefined;
    }
  /**
   * A position decided: the token, the task whose output decided it (every algorithm's: a
   * non-SI step is a task too), how.
   */
  | { t: number; type: "commit"; pos: number; token: number; task: number; epoch: number; outcome: "accepted" | "rejected" | "target" }
  /**
   * The target pool: an instance leased to a member (a generation, numbered from 0 in joining
   * order) or handed back; retired (lost: its worker died, `why`; `member`: whose call found
   * it, also for an idle sequence of the same instance retired with it); back after it was lost.
   */
  | { t: number; type: "lease" | "release"; instance: number; member: number }
  | { t: number; type: "retire"; instance: number; member: number; label: string; why: string }
  | { t: number; type: "rejoin"; instance: number; label: string };

export type EventType = EngineEvent["type"];

/** Distributive Omit, so each event variant keeps its own fields. */
type WithoutTime<E> = E extends unknown ? Omit<E, "t"> : never;

/** The pool's events (see runtime/pool.ts). */
export type PoolEvent = Extract<EngineEvent, { type: "lease" | "release" | "retire" | "rejoin" }>;

export function isPoolEvent(e: EngineEvent): e is PoolEvent {
  return e.type === "lease" || e.type === "release" || e.type === "retire" || e.type === "rejoin";
}

export type EventListener = (event: EngineEvent) => void;

export class EventLog {
  readonly events: EngineEvent[] = [];
  private readonly listeners = new Set<EventListener>();
  /** `enabled`: whether events are kept (a long-lived runtime's log would only grow; listeners hear them either way). */
  constructor(private readonly now: () => number, readonly enabled = true) {}
  /** Records `event` (the object itself, stamped with the time: callers pass a fresh literal). */
  emit(event: WithoutTime<EngineEvent>): void {
    if (!this.enabled && this.listeners.size === 0) return;
    const e = event as EngineEvent;
    e.t = this.now();
    if (this.enabled) this.events.push(e);
    for (const l of this.listeners) l(e);
  }
  /** Hears every event from now on, kept or not (a server logs lost instances); returns the way to stop. */
  listen(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
