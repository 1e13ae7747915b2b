/**
 * `dsi demo`: the main job on the embedded default. Runs one prompt with non-SI, SI and
 * DSI and shows that the outputs are identical while the times differ.
 * Until real models land, the default is a synthetic pair with the latency and acceptance
 * of the paper's Vicuna-13B/Vicuna-68M (CNN-DM) row, on the virtual clock.
 */
import { writeFile } from "node:fs/promises";
import { ALGORITHMS, type AlgorithmName } from "../algorithms/options.js";
import { resolveProfile } from "../models/latency.js";
import { chromeTrace } from "../runtime/trace.js";
import { syntheticBackend } from "./backend.js";
import { runGenerate, type GenerateReport } from "./generate.js";

export interface DemoFlags {
  profile: string;
  maxTokens: number;
  lookahead: number;
  sp: number;
  prompt: string;
  trace?: string;
}

export async function runDemo(flags: DemoFlags): Promise<string> {
  const profile = resolveProfile(flags.profile)!;
  const backend = syntheticBackend({ vocab: 64, agreement: profile.acceptance ?? 0.7, seed: 7 });
  const reports = new Map<AlgorithmName, GenerateReport>();
  const traces: { name: string; events: never[] }[] = [];
  for (const algo of ALGORITHMS) {
    const { report, logs } = await runGenerate(backend, {
      algo,
      lookahead: flags.lookahead,
      sp: flags.sp,
      maxTokens: flags.maxTokens,
      temperature: 0,
      topK: 0,
      topP: 1,
      seed: 0,
      prompt: flags.prompt,
      stop: [],
      latency: profile,
      clock: "virtual",
      n: 1,
      json: false,
    });
    reports.set(algo, report);
    traces.push({ name: algo, events: logs[0] as never[] });
  }
  const [nonsi, si, dsi] = ALGORITHMS.map((a) => reports.get(a)!.completions[0]);
  const identical = nonsi.text === si.text && si.text === dsi.text;
  const lines = [
    `dsi demo: ${backend.describe()}`,
    `latency profile ${profile.name}: target ${profile.target.tpotMs} ms, drafter ${profile.drafter.tpotMs} ms per token (virtual clock)`,
    `prompt ${JSON.stringify(flags.prompt)}, ${flags.maxTokens} tokens, greedy, lookahead ${flags.lookahead}, DSI with ${flags.sp} target instances`,
    "",
  ];
  for (const [name, c, instances] of [
    ["non-SI", nonsi, "1 target"],
    ["SI", si, "1 drafter + 1 target"],
    ["DSI", dsi, `1 drafter + ${flags.sp} targets`],
  ] as const) {
    const acc = c.stats.drafted > 0 ? `acceptance ${c.stats.acceptanceRate.toFixed(2)}` : "no drafts";
    lines.push(`${name.padEnd(6)} ${c.stats.timeMs.toFixed(1).padStart(8)} ms  ${acc.padEnd(16)} ${instances}`);
    lines.push(`       ${JSON.stringify(c.text)}`);
  }
  lines.push("");
  lines.push(identical ? "outputs identical (lossless)" : "OUTPUTS DIFFER: this is a bug");
  const sp = (a: number, b: number): string => `${(a / b).toFixed(2)}x`;
  lines.push(
    `speedup: DSI over non-SI ${sp(nonsi.stats.timeMs, dsi.stats.timeMs)}, DSI over SI ${sp(si.stats.timeMs, dsi.stats.timeMs)}, SI over non-SI ${sp(nonsi.stats.timeMs, si.stats.timeMs)}`,
  );
  if (flags.trace) {
    await writeFile(flags.trace, JSON.stringify(chromeTrace(traces)));
    lines.push(`trace written to ${flags.trace} (open in https://ui.perfetto.dev)`);
  }
  if (!identical) process.exitCode = 1;
  return lines.join("\n");
}
