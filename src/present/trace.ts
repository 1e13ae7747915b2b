/**
 * Chrome trace-event format (opens in Perfetto or chrome://tracing) from event logs:
 * one process per generation, one track per instance (drafter, each target), plus an
 * engine track with commits and rejections.
 */
import type { EngineEvent } from "../runtime/events.js";
import { spans } from "./spans.js";

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
    const sp = spans(events);
    for (const i of sp.targets) meta(targetTid(i), `target-${i}`);
    for (const d of sp.drafts) {
      const done = d.token !== undefined;
      out.push({
        name: done ? `draft ${d.pos}` : `draft ${d.pos} (preempted)`,
        cat: done ? "draft" : "preempted",
        ph: "X",
        pid,
        tid: DRAFTER_TID,
        ts: us(d.t0),
        dur: us(d.t1 - d.t0),
        args: done ? { pos: d.pos, token: d.token, epoch: d.epoch, source: d.source } : { pos: d.pos, epoch: d.epoch },
      });
    }
    for (const t of sp.tasks) {
      out.push({
        name: t.preempted ? `verify ${t.label} (preempted: ${t.preempted})` : t.unfinished ? `verify ${t.label} (unfinished)` : `verify ${t.label}`,
        cat: t.preempted ? "preempted" : t.unfinished ? "unfinished" : "verify",
        ph: "X",
        pid,
        tid: targetTid(t.instance),
        ts: us(t.t0),
        dur: us(t.t1 - t.t0),
        args: {
          task: t.dispatch.task,
          // Outputs for positions first..last; drafts verified at first..last-1.
          first: t.dispatch.start,
          last: t.dispatch.start + t.dispatch.drafts.length,
          drafts: t.dispatch.drafts,
          frontier: t.dispatch.frontier,
          epoch: t.dispatch.epoch,
          outcome: t.preempted ? "preempted" : t.unfinished ? "unfinished" : "done",
          ...(t.preempted ? { reason: t.preempted } : {}),
          ...(t.dispatch.guard ? { guard: true } : {}),
        },
      });
    }
    for (const e of sp.commits) {
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
    }
    // The adaptive lookahead's choices and the estimates behind them.
    for (const e of events) {
      if (e.type !== "lookahead") continue;
      const { t, type, ...args } = e;
      out.push({ name: `lookahead ${e.lookahead}${e.probe ? " (probe)" : ""}`, cat: type, ph: "i", s: "t", pid, tid: ENGINE_TID, ts: us(t), args });
    }
    // Instances lost under a task (a worker that died or missed its deadline): the task runs again.
    for (const e of events) {
      if (e.type !== "task-lost") continue;
      out.push({ name: `task ${e.task} lost on instance ${e.instance}`, cat: e.type, ph: "i", s: "t", pid, tid: ENGINE_TID, ts: us(e.t), args: { error: e.error } });
    }
  });
  return { traceEvents: out, displayTimeUnit: "ms" };
}
