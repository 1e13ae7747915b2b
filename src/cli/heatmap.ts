/** `dsi heatmap`: the paper's grid, as CSV and a four-panel figure (SVG and PNG). */
import { writeFile } from "node:fs/promises";
import { makeDirs } from "../models/make-dirs.js";
import { join } from "node:path";
import cliProgress from "cli-progress";
import { heatmapSpec, renderSvg, svgToPng } from "../sim/figure.js";
import { toCsv, type CellResult, type HeatmapOptions } from "../sim/heatmap.js";
import { runHeatmap } from "../sim/run-heatmap.js";

export interface HeatmapFlags extends HeatmapOptions {
  out: string;
  threads?: number;
  progress: boolean;
}

/** Runs the grid (its progress bar on `stderr`) and writes the files; returns the summary. */
export async function runHeatmapCommand(f: HeatmapFlags, stderr: NodeJS.WritableStream): Promise<string> {
  const bar = f.progress ? new cliProgress.SingleBar({ format: "heatmap {bar} {value}/{total} cells | {duration}s", stream: stderr }, cliProgress.Presets.shades_classic) : undefined;
  bar?.start((f.ndim + 1) ** 2, 0);
  const t0 = performance.now();
  let rows: CellResult[];
  try {
    rows = await runHeatmap(f, { threads: f.threads, onProgress: (done) => bar?.update(done) });
  } finally {
    bar?.stop();
  }
  const seconds = (performance.now() - t0) / 1000;
  await makeDirs(f.out);
  const method = f.engine ? "engine, virtual clock" : "time-unit model";
  const subtitle = `${method}; ${f.tokens} tokens, ${f.repeats} repeats; best lookahead in 1..${f.ndim} per cell; DSI with at most ${f.maxSp} targets`;
  const svg = await renderSvg(heatmapSpec(rows, "Speedups over the grid of drafter latency and acceptance", subtitle));
  const files = { csv: join(f.out, "heatmap.csv"), svg: join(f.out, "heatmap.svg"), png: join(f.out, "heatmap.png") };
  await writeFile(files.csv, toCsv(rows));
  await writeFile(files.svg, svg);
  await writeFile(files.png, svgToPng(svg));
  const best = rows.map((r) => r.bestOverDsi);
  const slower = rows.filter((r) => r.bestOverDsi < 1);
  return [
    `${rows.length} of ${(f.ndim + 1) ** 2} cells (${(f.ndim + 1) ** 2 - rows.length} left out: DSI would need more than ${f.maxSp} targets) in ${seconds.toFixed(2)} s`,
    `min(SI, non-SI)/DSI: ${Math.min(...best).toFixed(3)}x .. ${Math.max(...best).toFixed(3)}x; cells where DSI is slower than the better of the two: ${slower.length}`,
    `wrote ${files.csv}, ${files.svg}, ${files.png}`,
  ].join("\n");
}
