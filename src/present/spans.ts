/**
 * The event log as intervals: each draft and each target task with its start and end.
 * Shared by the Chrome trace and the SVG timeline.
 */
import type { EngineEvent } from "../runtime/events.js";
import type { DraftSource } from "../core/verify.js";

type Dispatch = Extract<EngineEvent, { type: "dispatch" }>;

export interface DraftSpan {
  pos: number;
  t0: number;
  t1: number;
  epoch: number;
  /** The drafted token; undefined when the draft was preempted. */
  token: number | undefined;
  /** Where it came from (a prompt-lookup draft takes no time); undefined when preempted. */
  source?: DraftSource;
}

export interface TaskSpan {
  dispatch: Dispatch;
  instance: number;
  t0: number;
  t1: number;
  /** Why the task was preempted; undefined when it finished (or never ended). */
  preempted: "rejected" | "useless" | "finished" | "lost" | undefined;
  /** True when the log ends before the task did (a failed or cancelled generation): t1 is the log's end. */
  unfinished?: true;
  /** Positions it had outputs for, e.g. "14" or "15..20". */
  label: string;
}

export interface Spans {
  drafts: DraftSpan[];
  tasks: TaskSpan[];
  commits: Extract<EngineEvent, { type: "commit" }>[];
  /** Target instances that received tasks, in order. */
  targets: number[];
  end: number;
}

export function spans(events: readonly EngineEvent[]): Spans {
  const out: Spans = { drafts: [], tasks: [], commits: [], targets: [], end: 0 };
  const draftStart = new Map<number, number>(); // the drafter does one position at a time
  const dispatches = new Map<number, Dispatch>();
  const targets = new Set<number>();
  for (const e of events) {
    out.end = Math.max(out.end, e.t);
    switch (e.type) {
      case "draft-start":
        draftStart.set(e.pos, e.t);
        break;
      case "draft-done":
      case "draft-preempt": {
        // A prompt-lookup draft has no start: it takes no time (nor an older start at its position).
        const lookup = e.type === "draft-done" && e.source === "ngram";
        const t0 = lookup ? e.t : (draftStart.get(e.pos) ?? e.t);
        if (!lookup) draftStart.delete(e.pos);
        out.drafts.push({ pos: e.pos, t0, t1: e.t, epoch: e.epoch, ...(e.type === "draft-done" ? { token: e.token, source: e.source } : { token: undefined }) });
        break;
      }
      case "dispatch":
        dispatches.set(e.task, e);
        targets.add(e.instance);
        break;
      case "task-done":
      case "task-preempt":
      case "task-lost": {
        const d = dispatches.get(e.task);
        if (!d) break;
        dispatches.delete(e.task);
        out.tasks.push({
          dispatch: d,
          instance: e.instance,
          t0: d.t,
          t1: e.t,
          preempted: e.type === "task-preempt" ? e.reason : e.type === "task-lost" ? "lost" : undefined,
          label: taskLabel(d),
        });
        break;
      }
      case "commit":
        out.commits.push(e);
        break;
    }
  }
  // Tasks dispatched but never ended are kept, up to the end of the log.
  for (const d of dispatches.values()) {
    out.tasks.push({ dispatch: d, instance: d.instance, t0: d.t, t1: out.end, preempted: undefined, unfinished: true, label: taskLabel(d) });
  }
  out.targets = [...targets].sort((a, b) => a - b);
  return out;
}

/** The positions a task has outputs for, e.g. "14" or "15..20". */
function taskLabel(d: Dispatch): string {
  return d.drafts.length === 0 ? `${d.start}` : `${d.start}..${d.start + d.drafts.length}`;
}

/**
 * Mean duration of the finished target tasks by the number of drafts they verified (index:
 * drafts; undefined where none finished): what verifying a window costs on the machine that
 * wrote the log, against one plain step (index 0).
 */
export function taskCostsBySize(logs: readonly (readonly EngineEvent[])[]): (number | undefined)[] {
  const sum: number[] = [];
  const count: number[] = [];
  for (const log of logs) {
    for (const t of spans(log).tasks) {
      if (t.preempted !== undefined || t.unfinished) continue;
      const k = t.dispatch.drafts.length;
      sum[k] = (sum[k] ?? 0) + (t.t1 - t.t0);
      count[k] = (count[k] ?? 0) + 1;
    }
  }
  return Array.from(sum, (s, k) => (s === undefined ? undefined : s / count[k]));
}
