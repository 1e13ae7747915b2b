/** Runs the heatmap grid over a pool of worker threads (one per core), or in-process. */
import { availableParallelism } from "node:os";
import { Piscina } from "piscina";
import { computeCell, grid, type Cell, type CellResult, type HeatmapOptions } from "./heatmap.js";

export interface RunOptions {
  /** Worker threads; 0 computes in this thread. */
  threads?: number;
  /** Called after each finished chunk with (cells done, cells total). */
  onProgress?: (done: number, total: number) => void;
}

export async function runHeatmap(o: HeatmapOptions, run: RunOptions = {}): Promise<CellResult[]> {
  const cells = grid(o.ndim);
  const threads = run.threads ?? availableParallelism();
  const results: (CellResult | null)[] = new Array(cells.length).fill(null);
  let done = 0;
  if (threads === 0) {
    for (const [i, cell] of cells.entries()) {
      results[i] = (await computeCell(cell, o)) ?? null;
      run.onProgress?.(++done, cells.length);
    }
  } else {
    const pool = new Piscina({ filename: new URL("./heatmap-worker.js", import.meta.url).href, minThreads: threads, maxThreads: threads });
    try {
      // Small chunks keep the cores busy to the end (cells with small c cost more).
      const chunk = Math.max(1, Math.ceil(cells.length / (threads * 16)));
      const jobs: Promise<void>[] = [];
      for (let start = 0; start < cells.length; start += chunk) {
        const part: Cell[] = cells.slice(start, start + chunk);
        jobs.push(
          (pool.run({ cells: part, options: o }) as Promise<(CellResult | null)[]>).then((rows) => {
            rows.forEach((r, k) => (results[start + k] = r));
            done += part.length;
            run.onProgress?.(done, cells.length);
          }),
        );
      }
      await Promise.all(jobs);
    } finally {
      await pool.destroy();
    }
  }
  return results.filter((r): r is CellResult => r !== null);
}
