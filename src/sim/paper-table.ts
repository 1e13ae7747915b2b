/**
 * The paper's Table 1, recomputed by the engine on the virtual clock: for each of the ten
 * pairs, SI and DSI (1 and 7 targets) at lookahead 1, 5 and 10, with the pair's measured
 * latencies and a synthetic drafter at the pair's acceptance rate; the DSI/SI speedup at
 * the same lookahead and best against best, beside the paper's figure.
 */
import { PAPER_PAIRS, type PaperPair } from "../models/paper-pairs.js";
import { engineMean } from "./engine.js";

export const TABLE_LOOKAHEADS = [1, 5, 10] as const;
export const TABLE_SPS = [1, 7] as const;

export interface TableRow {
  pair: string;
  dataset: string;
  acceptance: number;
  targetMs: number;
  drafterMs: number;
  nonsiMs: number;
  /** Mean ms by lookahead. */
  si: Record<number, number>;
  /** Mean ms by SP, then lookahead. */
  dsi: Record<number, Record<number, number>>;
  /** SI / DSI(7 targets) at each lookahead. */
  sameLookahead: Record<number, number>;
  /** Best SI over best DSI (any lookahead, either target count). */
  bestVsBest: number;
  paper: number;
}

export async function paperRow(p: PaperPair, tokens: number, repeats: number, seed: number): Promise<TableRow> {
  const mean = (algo: "nonsi" | "si" | "dsi", L: number, sp: number): Promise<number> =>
    engineMean(algo, { targetMs: p.targetMs, drafterMs: p.drafterMs, a: p.acceptance, L, sp, tokens }, repeats, seed);
  const si: Record<number, number> = {};
  const dsi: Record<number, Record<number, number>> = {};
  for (const L of TABLE_LOOKAHEADS) si[L] = await mean("si", L, 1);
  for (const sp of TABLE_SPS) {
    dsi[sp] = {};
    for (const L of TABLE_LOOKAHEADS) dsi[sp][L] = await mean("dsi", L, sp);
  }
  const sameLookahead = Object.fromEntries(TABLE_LOOKAHEADS.map((L) => [L, si[L] / dsi[7][L]]));
  const bestSi = Math.min(...Object.values(si));
  const bestDsi = Math.min(...TABLE_SPS.flatMap((sp) => Object.values(dsi[sp])));
  return {
    pair: `${p.target}/${p.drafter}`,
    dataset: p.dataset,
    acceptance: p.acceptance,
    targetMs: p.targetMs,
    drafterMs: p.drafterMs,
    nonsiMs: await mean("nonsi", 1, 1),
    si,
    dsi,
    sameLookahead,
    bestVsBest: bestSi / bestDsi,
    paper: p.paperDsiOverSi,
  };
}

export async function paperTable(tokens: number, repeats: number, seed: number): Promise<TableRow[]> {
  const rows: TableRow[] = [];
  for (const p of PAPER_PAIRS) rows.push(await paperRow(p, tokens, repeats, seed));
  return rows;
}

export function tableMarkdown(rows: readonly TableRow[]): string {
  const f = (v: number): string => v.toFixed(1);
  const x = (v: number): string => `${v.toFixed(2)}x`;
  const head = [
    "pair",
    "dataset",
    "a",
    "non-SI",
    ...TABLE_LOOKAHEADS.map((L) => `SI L=${L}`),
    ...TABLE_SPS.flatMap((sp) => TABLE_LOOKAHEADS.map((L) => `DSI SP=${sp} L=${L}`)),
    ...TABLE_LOOKAHEADS.map((L) => `DSI/SI L=${L}`),
    "DSI/SI best vs best",
    "paper DSI/SI",
  ];
  const lines = [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`];
  for (const r of rows) {
    const cells = [
      r.pair,
      r.dataset,
      r.acceptance.toFixed(2),
      f(r.nonsiMs),
      ...TABLE_LOOKAHEADS.map((L) => f(r.si[L])),
      ...TABLE_SPS.flatMap((sp) => TABLE_LOOKAHEADS.map((L) => f(r.dsi[sp][L]))),
      ...TABLE_LOOKAHEADS.map((L) => x(r.sameLookahead[L])),
      x(r.bestVsBest),
      x(r.paper),
    ];
    lines.push(`| ${cells.join(" | ")} |`);
  }
  return lines.join("\n");
}
