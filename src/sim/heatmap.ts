/**
 * The paper's heatmap grid: drafter latency c and acceptance a on ndim+1 steps each
 * (c >= 0.01, a clamped to [0.01, 0.99]), lookahead 1..ndim, the best lookahead per cell
 * and algorithm. DSI may only use lookaheads its target budget allows
 * (ceil(1/(L*c)) <= maxSp); a cell where none does is left out.
 */
import { simulateEngine } from "./engine.js";
import { simulateTimeUnits, spNeeded } from "./time-units.js";

export interface HeatmapOptions {
  ndim: number;
  tokens: number;
  repeats: number;
  maxSp: number;
  seed: number;
  engine: boolean;
}

export interface Cell {
  c: number;
  a: number;
}

export interface CellResult extends Cell {
  nonsi: number;
  si: number;
  siLookahead: number;
  dsi: number;
  dsiLookahead: number;
  dsiSp: number;
  /** Speedups: non-SI/SI, SI/DSI, non-SI/DSI, min(SI, non-SI)/DSI. */
  nonsiOverSi: number;
  siOverDsi: number;
  nonsiOverDsi: number;
  bestOverDsi: number;
}

export function grid(ndim: number): Cell[] {
  const cells: Cell[] = [];
  for (let i = 0; i <= ndim; i++) {
    for (let j = 0; j <= ndim; j++) {
      cells.push({ c: Math.max(0.01, i / ndim), a: Math.min(0.99, Math.max(0.01, j / ndim)) });
    }
  }
  return cells;
}

/** One cell: the best lookahead for SI and for DSI; undefined when DSI has no allowed lookahead. */
export async function computeCell(cell: Cell, o: HeatmapOptions): Promise<CellResult | undefined> {
  let si = Infinity;
  let siLookahead = 0;
  let dsi = Infinity;
  let dsiLookahead = 0;
  let dsiSp = 0;
  const nonsi = o.tokens;
  for (let L = 1; L <= o.ndim; L++) {
    const sp = spNeeded(cell.c, L);
    const allowed = sp <= o.maxSp;
    const cfg = { c: cell.c, a: cell.a, L, tokens: o.tokens, sp: Math.min(sp, o.maxSp) };
    const r = o.engine ? await simulateEngine(cfg, o.repeats, o.seed) : simulateTimeUnits(cfg, o.repeats, o.seed);
    if (r.si.mean < si) [si, siLookahead] = [r.si.mean, L];
    if (allowed && r.dsi.mean < dsi) [dsi, dsiLookahead, dsiSp] = [r.dsi.mean, L, sp];
  }
  if (!Number.isFinite(dsi)) return undefined;
  return {
    ...cell,
    nonsi,
    si,
    siLookahead,
    dsi,
    dsiLookahead,
    dsiSp,
    nonsiOverSi: nonsi / si,
    siOverDsi: si / dsi,
    nonsiOverDsi: nonsi / dsi,
    bestOverDsi: Math.min(si, nonsi) / dsi,
  };
}

export const CSV_COLUMNS: (keyof CellResult)[] = [
  "c",
  "a",
  "nonsi",
  "si",
  "siLookahead",
  "dsi",
  "dsiLookahead",
  "dsiSp",
  "nonsiOverSi",
  "siOverDsi",
  "nonsiOverDsi",
  "bestOverDsi",
];

export function toCsv(rows: readonly CellResult[]): string {
  const lines = [CSV_COLUMNS.join(",")];
  for (const r of rows) lines.push(CSV_COLUMNS.map((k) => (Number.isInteger(r[k]) ? String(r[k]) : (r[k] as number).toFixed(6))).join(","));
  return lines.join("\n") + "\n";
}
