/**
 * Chrome trace-event format (opens in Perfetto or chrome://tracing) from event logs:
 * one process per generation, one track per instance (drafter, each target), plus an
 * engine track with commits and rejections.
 */
import type { EngineEvent } from "./events.js";

interface TraceEvent {
  name: string;
  ph: "X" | "i" | "M";
  pid: number;
  tid: number;
  ts?: number;
  dur?: number;
  s?: "t";
  cat?: string;
  args?: Record<string, unknown>;
}

const ENGINE_TID = 0;
const DRAFTER_TID = 1;
const targetTid = (instance: number): number => 2 + instance;
const us = (ms: number): number => Math.round(ms * 1000 * 1000) / 1000;

/** Builds a trace from one event log per generation. */
export function chromeTrace(logs: { name: string; events: readonly EngineEvent[] }[]): { traceEvents: TraceEvent[]; displayTimeUnit: "ms" } {
  const out: TraceEvent[] = [];
  logs.forEach(({ name, events }, pid) => {
    const meta = (tid: number, label: string): void => {
      out.push({ name: "thread_name", ph: "M", pid, tid, args: { name: label } });
      out.push({ name: "thread_sort_index", ph: "M", pid, tid, args: { sort_index: tid } });
    };
    out.push({ name: "process_name", ph: "M", pid, tid: 0, args: { name } });
    meta(ENGINE_TID, "engine (commits)");
    meta(DRAFTER_TID, "drafter");
    const targets = new Set<number>();
    const draftStarts = new Map<number, number>(); // pos -> start time (the drafter does one at a time)
    const dispatches = new Map<number, Extract<EngineEvent, { type: "dispatch" }>>();
    for (const e of events) {
      switch (e.type) {
        case "draft-start":
          draftStarts.set(e.pos, e.t);
          break;
        case "draft-done":
        case "draft-preempt": {
          const t0 = draftStarts.get(e.pos) ?? e.t;
          const done = e.type === "draft-done";
          out.push({
            name: done ? `draft ${e.pos}` : `draft ${e.pos} (preempted)`,
            cat: done ? "draft" : "preempted",
            ph: "X",
            pid,
            tid: DRAFTER_TID,
            ts: us(t0),
            dur: us(e.t - t0),
            args: done ? { pos: e.pos, token: e.token, epoch: e.epoch } : { pos: e.pos, epoch: e.epoch },
          });
          break;
        }
        case "dispatch":
          dispatches.set(e.task, e);
          if (!targets.has(e.instance)) {
            targets.add(e.instance);
            meta(targetTid(e.instance), `target-${e.instance}`);
          }
          break;
        case "task-done":
        case "task-preempt": {
          const d = dispatches.get(e.task);
          if (!d) break;
          const last = d.start + d.drafts.length;
          const span = d.drafts.length === 0 ? `${d.start}` : `${d.start}..${last}`;
          const preempted = e.type === "task-preempt";
          out.push({
            name: preempted ? `verify ${span} (preempted: ${e.reason})` : `verify ${span}`,
            cat: preempted ? "preempted" : "verify",
            ph: "X",
            pid,
            tid: targetTid(e.instance),
            ts: us(d.t),
            dur: us(e.t - d.t),
            args: { task: e.task, drafts: d.drafts, epoch: d.epoch },
          });
          break;
        }
        case "commit":
          out.push({
            name: e.outcome === "rejected" ? `reject -> commit ${e.pos}` : `commit ${e.pos}`,
            cat: e.outcome,
            ph: "i",
            s: "t",
            pid,
            tid: ENGINE_TID,
            ts: us(e.t),
            args: { token: e.token, task: e.task, outcome: e.outcome },
          });
          break;
      }
    }
  });
  return { traceEvents: out, displayTimeUnit: "ms" };
}
