/**
 * The four-panel heatmap figure, drawn with Vega-Lite (SVG) and rasterised with resvg (PNG).
 * Each panel has a diverging scale centred on 1, on a log axis so that 2x and 0.5x are
 * equally far from 1: blue is a speedup, red a slowdown.
 */
import { Resvg } from "@resvg/resvg-js";
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import type { CellResult } from "./heatmap.js";

export const PANELS: { key: keyof CellResult; title: string }[] = [
  { key: "nonsiOverSi", title: "non-SI / SI (SI's speedup)" },
  { key: "siOverDsi", title: "SI / DSI" },
  { key: "nonsiOverDsi", title: "non-SI / DSI" },
  { key: "bestOverDsi", title: "min(SI, non-SI) / DSI" },
];

/** One panel: its own colour scale, symmetric around 1 on a log axis. */
function panel(rows: readonly CellResult[], key: keyof CellResult, title: string): Record<string, unknown> {
  const values = rows.map((r) => ({ c: r.c.toFixed(2), a: r.a.toFixed(2), speedup: r[key] as number }));
  const span = Math.max(...values.map((v) => Math.abs(Math.log(v.speedup))), Math.log(1.05));
  return {
    title: { text: title, fontSize: 13 },
    width: 260,
    height: 260,
    data: { values },
    mark: { type: "rect" },
    encoding: {
      x: { field: "c", type: "ordinal", title: "drafter latency c (target = 1)", axis: { labelAngle: -90, labelFontSize: 8 } },
      y: { field: "a", type: "ordinal", sort: "descending", title: "acceptance rate a", axis: { labelFontSize: 8 } },
      color: {
        field: "speedup",
        type: "quantitative",
        title: "speedup",
        scale: { type: "log", scheme: "redblue", domain: [Math.exp(-span), Math.exp(span)], domainMid: 1 },
      },
    },
  };
}

export function heatmapSpec(rows: readonly CellResult[], title: string, subtitle: string): TopLevelSpec {
  const panels = PANELS.map((p, i) => panel(rows, p.key, `${i + 1}. ${p.title}`));
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: title, subtitle, fontSize: 15, subtitleFontSize: 11 },
    vconcat: [0, 2].map((i) => ({ hconcat: panels.slice(i, i + 2), resolve: { scale: { color: "independent" } } })),
    resolve: { scale: { color: "independent" } },
  } as unknown as TopLevelSpec;
}

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: "none" });
  return view.toSVG();
}

export function svgToPng(svg: string): Buffer {
  return new Resvg(svg, { background: "white", fitTo: { mode: "zoom", value: 2 }, font: { loadSystemFonts: true } }).render().asPng();
}
