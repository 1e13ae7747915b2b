/** Worker-thread entry for the heatmap: computes a chunk of cells. */
import { computeCell, type Cell, type CellResult, type HeatmapOptions } from "./heatmap.js";

export default async function compute({ cells, options }: { cells: Cell[]; options: HeatmapOptions }): Promise<(CellResult | null)[]> {
  const out: (CellResult | null)[] = [];
  for (const cell of cells) out.push((await computeCell(cell, options)) ?? null);
  return out;
}
