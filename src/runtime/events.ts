/**
 * The engine's event log: what each instance did and when. Tests read it to check
 * preemption; the trace writer turns it into a timeline.
 */

export type EngineEvent =
  /** The drafter started (or finished, or was preempted while) drafting position `pos`. */
  | { t: number; type: "draft-start"; pos: number; epoch: number }
  | { t: number; type: "draft-done"; pos: number; token: number; epoch: number }
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
  /** A position decided: the token, the task whose output decided it (-1: non-SI step), how. */
  | { t: number; type: "commit"; pos: number; token: number; task: number; epoch: number; outcome: "accepted" | "rejected" | "target" };

export type EventType = EngineEvent["type"];

/** Distributive Omit, so each event variant keeps its own fields. */
type WithoutTime<E> = E extends unknown ? Omit<E, "t"> : never;

export class EventLog {
  readonly events: EngineEvent[] = [];
  constructor(private readonly now: () => number, readonly enabled = true) {}
  /** Records `event` (the object itself, stamped with the time: callers pass a fresh literal). */
  emit(event: WithoutTime<EngineEvent>): void {
    if (!this.enabled) return;
    const e = event as EngineEvent;
    e.t = this.now();
    this.events.push(e);
  }
}
