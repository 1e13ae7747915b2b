/**
 * A timeline picture (SVG) of one or more generations from their event logs: one lane per
 * instance (drafter, each target) and a lane of commits, on a shared time axis, so runs of
 * different algorithms can be compared at a glance.
 */
import type { EngineEvent } from "../runtime/events.js";
import { spans } from "./spans.js";

export interface TimelinePanel {
  title: string;
  events: readonly EngineEvent[];
}

const COLORS = {
  draft: "#6baed6",
  draftPreempted: "#d9d9d9",
  verify: "#41ab5d",
  verifyUnused: "#a1d99b",
  preempted: "#fdae6b",
  accepted: "#238b45",
  rejected: "#e31a1c",
  target: "#525252",
};

interface Box {
  lane: string;
  t0: number;
  t1: number;
  fill: string;
  stroke?: string;
  label?: string;
  tip: string;
}

interface Tick {
  t: number;
  color: string;
  tip: string;
}

function escape(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function layout(events: readonly EngineEvent[]): { lanes: string[]; boxes: Box[]; ticks: Tick[]; end: number } {
  const sp = spans(events);
  const used = new Set(sp.commits.map((e) => e.task));
  const boxes: Box[] = sp.drafts.map((d) => ({
    lane: "drafter",
    t0: d.t0,
    t1: d.t1,
    fill: d.token !== undefined ? COLORS.draft : COLORS.draftPreempted,
    tip: d.token !== undefined ? `draft of position ${d.pos}: token ${d.token}` : `draft of position ${d.pos}, preempted`,
  }));
  for (const t of sp.tasks) {
    const n = t.dispatch.drafts.length;
    const task = t.dispatch.task;
    boxes.push({
      lane: `target-${t.instance}`,
      t0: t.t0,
      t1: t.t1,
      fill: t.preempted ? COLORS.preempted : used.has(task) ? COLORS.verify : COLORS.verifyUnused,
      stroke: t.preempted ? COLORS.rejected : undefined,
      label: t.label,
      tip: t.preempted
        ? `task ${task}: positions ${t.label}, ${n} drafts, preempted (${t.preempted})`
        : `task ${task}: positions ${t.label}, ${n} drafts${t.unfinished ? ", unfinished when the log ends" : used.has(task) ? "" : ", result not needed"}`,
    });
  }
  const ticks: Tick[] = sp.commits.map((e) => ({
    t: e.t,
    color: e.outcome === "accepted" ? COLORS.accepted : e.outcome === "rejected" ? COLORS.rejected : COLORS.target,
    tip: `position ${e.pos}: token ${e.token} (${e.outcome === "target" ? "target's own" : `draft ${e.outcome}`})`,
  }));
  const lanes = [...(sp.drafts.length > 0 ? ["drafter"] : []), ...sp.targets.map((i) => `target-${i}`)];
  return { lanes, boxes, ticks, end: sp.end };
}

/** Renders panels stacked on one time axis; returns the SVG document. */
export function timelineSvg(panels: readonly TimelinePanel[], opts: { title?: string; unit?: string; width?: number } = {}): string {
  const width = opts.width ?? 1200;
  const unit = opts.unit ?? "ms";
  const left = 90;
  const right = 20;
  const lane = 20;
  const laid = panels.map((p) => ({ ...p, ...layout(p.events) }));
  const end = Math.max(1e-9, ...laid.map((p) => p.end));
  const x = (t: number): number => left + ((width - left - right) * t) / end;
  const out: string[] = [];
  let y = 10;
  if (opts.title) {
    out.push(`<text x="${left}" y="${y + 14}" font-size="15" font-weight="bold">${escape(opts.title)}</text>`);
    y += 26;
  }
  // Legend.
  const legend: [string, string][] = [
    [COLORS.draft, "draft"],
    [COLORS.draftPreempted, "draft preempted"],
    [COLORS.verify, "verification (used)"],
    [COLORS.verifyUnused, "verification (not needed)"],
    [COLORS.preempted, "verification preempted"],
    [COLORS.accepted, "commit: draft accepted"],
    [COLORS.rejected, "commit: draft rejected"],
    [COLORS.target, "commit: target's own token"],
  ];
  let lx = left;
  for (const [color, name] of legend) {
    const w = 24 + name.length * 6;
    if (lx + w > width - right) {
      lx = left;
      y += 16;
    }
    out.push(`<rect x="${lx}" y="${y}" width="12" height="12" fill="${color}"/>`);
    out.push(`<text x="${lx + 16}" y="${y + 10}" font-size="11">${name}</text>`);
    lx += w;
  }
  y += 24;
  for (const p of laid) {
    out.push(`<text x="4" y="${y + 13}" font-size="13" font-weight="bold">${escape(p.title)}</text>`);
    y += 20;
    const laneY = new Map<string, number>();
    for (const name of [...p.lanes, "commits"]) {
      laneY.set(name, y);
      out.push(`<text x="4" y="${y + 14}" font-size="11">${name}</text>`);
      out.push(`<line x1="${left}" x2="${width - right}" y1="${y + lane}" y2="${y + lane}" stroke="#eee"/>`);
      y += lane + 2;
    }
    for (const b of p.boxes) {
      const by = laneY.get(b.lane)!;
      const bx = x(b.t0);
      const bw = Math.max(0.8, x(b.t1) - bx);
      const stroke = b.stroke ? ` stroke="${b.stroke}" stroke-width="1"` : ` stroke="#fff" stroke-width="0.5"`;
      out.push(`<rect x="${bx.toFixed(2)}" y="${by + 2}" width="${bw.toFixed(2)}" height="${lane - 4}" fill="${b.fill}"${stroke}><title>${escape(b.tip)}</title></rect>`);
      if (b.label && bw > b.label.length * 6 + 4) {
        out.push(`<text x="${(bx + 2).toFixed(2)}" y="${by + 14}" font-size="10" fill="#000">${escape(b.label)}</text>`);
      }
    }
    const cy = laneY.get("commits")!;
    for (const tk of p.ticks) {
      const tx = x(tk.t).toFixed(2);
      out.push(`<line x1="${tx}" x2="${tx}" y1="${cy + 2}" y2="${cy + lane - 2}" stroke="${tk.color}" stroke-width="1.5"><title>${escape(tk.tip)}</title></line>`);
    }
    y += 8;
  }
  // Time axis.
  const step = niceStep(end / 10);
  out.push(`<line x1="${left}" x2="${width - right}" y1="${y}" y2="${y}" stroke="#333"/>`);
  for (let t = 0; t <= end + 1e-9; t += step) {
    out.push(`<line x1="${x(t).toFixed(2)}" x2="${x(t).toFixed(2)}" y1="${y}" y2="${y + 4}" stroke="#333"/>`);
    out.push(`<text x="${x(t).toFixed(2)}" y="${y + 16}" font-size="10" text-anchor="middle">${+t.toFixed(3)}</text>`);
  }
  out.push(`<text x="${width - right}" y="${y + 30}" font-size="11" text-anchor="end">time (${unit})</text>`);
  y += 36;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" viewBox="0 0 ${width} ${y}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    ...out,
    "</svg>",
    "",
  ].join("\n");
}

function niceStep(raw: number): number {
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}
