/**
 * `dsi demo`: the main job on the embedded default. Runs one prompt with non-SI, SI and
 * DSI, prints the three outputs (identical under greedy), times, speedups, acceptance and
 * the instances used, and draws the three timelines into one SVG.
 */
import { ALGORITHMS, type AlgorithmName, type Lookahead } from "../algorithms/options.js";
import type { LatencyProfile } from "../models/latency.js";
import type { EngineEvent } from "../runtime/events.js";
import type { Learned } from "../runtime/costs.js";
import { taskCostsBySize } from "../present/spans.js";
import { chromeTrace } from "../present/trace.js";
import { timelineSvg } from "../present/timeline-svg.js";
import type { Backend } from "../models/backend.js";
import { checkWritable, writeOutput } from "./flags.js";
import { sumHistograms } from "../algorithms/output.js";
import { runGenerate, windowsText, type GenerateReport } from "./generate.js";
import type { DraftMode } from "../algorithms/option-spec.js";

export interface DemoFlags {
  maxTokens: number;
  lookahead: Lookahead;
  /** Where SI's and DSI's drafts come from (default the drafter model), and prompt lookup's match lengths. */
  draft?: DraftMode;
  ngramMin?: number;
  ngramMax?: number;
  sp: number;
  prompt: string;
  latency: LatencyProfile;
  clock: "real" | "virtual";
  svg: string;
  trace?: string;
}

const NAMES: Record<AlgorithmName, string> = { nonsi: "non-SI", si: "SI", dsi: "DSI" };

/** The llama demo's prompt (English, for the Brown Corpus pair); `dsi make-model` checks the margins along its greedy path. */
export const DEMO_PROMPT = "The jury said";

/**
 * What the adaptive lookahead chose and why: the windows SI and DSI sent, whether each mostly
 * speculated or mostly made plain steps, and what the window size they sent most cost here
 * against one plain step (mean task times from the event logs). Whether speculating paid is
 * the speedup line's figure (a choice near a tie can still lose to the machine's noise).
 */
function lookaheadReport(windows: { si: number[]; dsi: number[] }, costs: (number | undefined)[], where: string): string[] {
  const lines = [`lookahead auto: windows (drafts:tasks) SI ${windowsText(windows.si)}; DSI ${windowsText(windows.dsi)}`];
  const both = sumHistograms([windows.si, windows.dsi]);
  let k = 0; // the window size sent most (the larger on a tie), with a measured cost
  both.forEach((n, size) => {
    if (size > 0 && n > 0 && costs[size] !== undefined && (k === 0 || n >= both[k])) k = size;
  });
  const plain = costs[0];
  if (plain === undefined || k === 0) return lines;
  const cost = `verifying ${k + 1} tokens costs ${(costs[k]! / plain).toFixed(1)}x one token`;
  const stepsAside = (w: number[]): boolean => 2 * (w[0] ?? 0) > w.reduce((a, n) => a + n, 0);
  const [si, dsi] = [stepsAside(windows.si), stepsAside(windows.dsi)];
  // What the controller judged from its estimates; the speedup line says what came of it.
  if (si && dsi) lines.push(`speculation did not pay ${where}: ${cost}, so SI and DSI mostly made plain target steps`);
  else if (!si && !dsi) lines.push(`SI and DSI mostly speculated ${where}: ${cost}`);
  else lines.push(`${si ? "DSI" : "SI"} mostly speculated ${where}, ${si ? "SI" : "DSI"} mostly made plain target steps: ${cost}`);
  return lines;
}

export async function runDemo(backend: Backend, flags: DemoFlags): Promise<{ text: string; identical: boolean; reports: Map<AlgorithmName, GenerateReport> }> {
  await checkWritable(flags.svg, "--svg");
  if (flags.trace !== undefined) await checkWritable(flags.trace, "--trace");
  const reports = new Map<AlgorithmName, GenerateReport>();
  const speculative: EngineEvent[][] = [];
  const panels = [];
  // Each algorithm runs on a fresh runtime (caches empty, as a user's first command finds
  // them). The first starts from what the backend kept from earlier commands (if anything), SI
  // and DSI from what the runs before them measured on top.
  let learned: Learned | undefined;
  for (const algo of ALGORITHMS) {
    const run = await runGenerate(
      backend,
      {
        algo,
        lookahead: flags.lookahead,
        draft: flags.draft,
        ngramMin: flags.ngramMin,
        ngramMax: flags.ngramMax,
        sp: flags.sp,
        maxTokens: flags.maxTokens,
        temperature: 0,
        topK: 0,
        topP: 1,
        seed: 0,
        prompt: flags.prompt,
        stop: [],
        latency: flags.latency,
        clock: flags.clock,
        n: 1,
        json: false,
      },
      undefined,
      { learned },
    );
    const { report, logs } = run;
    learned = run.learned;
    reports.set(algo, report);
    if (algo !== "nonsi") speculative.push(...logs);
    const c = report.completions[0];
    const shape = algo === "nonsi" ? "" : algo === "si" ? `, L=${flags.lookahead}` : `, L=${flags.lookahead}, SP=${flags.sp}`;
    panels.push({ title: `${NAMES[algo]}${shape}: ${c.stats.timeMs.toFixed(1)} ms`, events: logs[0] });
  }
  const [nonsi, si, dsi] = ALGORITHMS.map((a) => reports.get(a)!.completions[0]);
  const identical = nonsi.text === si.text && si.text === dsi.text && nonsi.tokens.join() === dsi.tokens.join();
  const latency = flags.latency.name === "none" ? "" : `, latency profile ${flags.latency.name}${backend.realCompute ? " added on top of real compute" : ""}`;
  const lines = [
    `dsi demo: ${backend.describe()}${backend.learnedCache ? `; learned costs ${backend.learnedCache.pathFor(flags.latency)}` : ""}`,
    `prompt ${JSON.stringify(flags.prompt)}, ${flags.maxTokens} tokens, greedy, lookahead ${flags.lookahead}${flags.draft && flags.draft !== "model" ? `, draft ${flags.draft}` : ""}, ${flags.clock} clock${latency}`,
    "",
  ];
  // Prompt lookup alone needs no drafter; before the drafter, both draft.
  const drafting = flags.draft === "ngram" ? "prompt lookup" : flags.draft === "ngram+model" ? "prompt lookup, 1 drafter" : "1 drafter";
  const instances: Record<AlgorithmName, string> = {
    nonsi: "1 target",
    si: `${drafting} + 1 target`,
    dsi: `${drafting} + ${flags.sp} target${flags.sp > 1 ? "s" : ""}`,
  };
  for (const algo of ALGORITHMS) {
    const c = reports.get(algo)!.completions[0];
    const s = c.stats;
    const tps = s.timeMs > 0 ? `${((1000 * s.tokens) / s.timeMs).toFixed(1)} tok/s` : "";
    // Drafts made but none verified (the target decided those positions first): not a rate of 0.
    const acc = s.accepted + s.rejected > 0 ? `acceptance ${s.acceptanceRate.toFixed(2)}` : s.drafted > 0 ? "no drafts used" : "no drafts";
    lines.push(`${NAMES[algo].padEnd(6)} ${s.timeMs.toFixed(1).padStart(8)} ms ${tps.padStart(12)}  ${acc.padEnd(16)} ${instances[algo]}`);
    lines.push(`       ${JSON.stringify(c.text)}`);
  }
  lines.push("");
  lines.push(identical ? "outputs identical (lossless)" : "OUTPUTS DIFFER: this is a bug");
  if (flags.lookahead === "auto") lines.push(...lookaheadReport({ si: si.stats.windows, dsi: dsi.stats.windows }, taskCostsBySize(speculative), flags.clock === "virtual" ? "with these latencies" : "on this machine"));
  const x = (a: number, b: number): string => `${(a / b).toFixed(2)}x`;
  lines.push(
    `speedup: DSI over non-SI ${x(nonsi.stats.timeMs, dsi.stats.timeMs)}, DSI over SI ${x(si.stats.timeMs, dsi.stats.timeMs)}, SI over non-SI ${x(nonsi.stats.timeMs, si.stats.timeMs)}`,
  );
  await writeOutput(flags.svg, timelineSvg(panels, { title: `dsi demo: ${JSON.stringify(flags.prompt)}, ${flags.maxTokens} tokens`, unit: `ms, ${flags.clock} clock` }), "--svg");
  lines.push(`timeline written to ${flags.svg}`);
  if (flags.trace) {
    await writeOutput(flags.trace, JSON.stringify(chromeTrace(panels.map((p) => ({ name: p.title, events: p.events })))), "--trace");
    lines.push(`trace written to ${flags.trace} (open in https://ui.perfetto.dev)`);
  }
  return { text: lines.join("\n"), identical, reports };
}
