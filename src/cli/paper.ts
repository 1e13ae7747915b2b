/** `dsi table` and `dsi plan`. */
import Table from "cli-table3";
import { paperTable, tableMarkdown } from "../sim/paper-table.js";
import { plan, type PlanInput } from "../sim/plan.js";
import type { LatencyProfile } from "../models/latency.js";
import { UsageError } from "./flags.js";
import { drafterFraction } from "./simulate.js";

export async function runTable(o: { maxTokens: number; repeats: number; seed: number; json: boolean; markdown: boolean }): Promise<string> {
  const rows = await paperTable(o.maxTokens, o.repeats, o.seed);
  if (o.json) return JSON.stringify(rows, null, 2);
  const note = `The paper's Table 1 pairs on the engine (virtual clock): ${o.maxTokens} tokens, mean of ${o.repeats} runs, times in ms; DSI/SI L=n compares DSI with 7 targets to SI at the same lookahead.`;
  return o.markdown ? `${tableMarkdown(rows)}\n\n${note}` : `${note}\n\n${tableMarkdown(rows)}`;
}

export interface PlanFlags {
  latency: LatencyProfile;
  acceptance?: number;
  maxSp: number;
  maxLookahead: number;
  maxTokens: number;
  repeats: number;
  seed: number;
  json: boolean;
}

export async function runPlan(f: PlanFlags): Promise<string> {
  drafterFraction(f.latency); // 0 < drafter <= target
  const acceptance = f.acceptance ?? f.latency.acceptance;
  if (acceptance === undefined) throw new UsageError(`--acceptance: give the pair's acceptance rate (--latency ${f.latency.name} has none)`);
  const o: PlanInput = {
    targetMs: f.latency.target.tpotMs,
    drafterMs: f.latency.drafter.tpotMs,
    acceptance,
    maxSp: f.maxSp,
    maxLookahead: f.maxLookahead,
    tokens: f.maxTokens,
    repeats: f.repeats,
    seed: f.seed,
  };
  const p = await plan(o);
  if (f.json) return JSON.stringify(p, null, 2);
  const t = new Table({ style: { head: [], border: [] }, head: ["target instances", "best lookahead", "ms/token", "vs non-SI", "vs best SI", "gain of this instance"] });
  for (const r of p.bySp) {
    t.push([r.sp, r.lookahead, r.msPerToken.toFixed(2), `${r.speedupOverNonSi.toFixed(2)}x`, `${r.speedupOverSi.toFixed(2)}x`, r.sp === 1 ? "" : `${r.marginal.toFixed(3)}x`]);
  }
  return [
    `target ${o.targetMs} ms, drafter ${o.drafterMs} ms, acceptance ${o.acceptance} (engine on the virtual clock, ${o.tokens} tokens x ${o.repeats} runs per point)`,
    `non-SI: ${p.nonsiMsPerToken.toFixed(2)} ms/token; best SI: ${p.si.msPerToken.toFixed(2)} ms/token at lookahead ${p.si.lookahead}`,
    t.toString(),
    `fastest: DSI with ${p.best.sp} target instance(s) and lookahead ${p.best.lookahead}: ${p.best.msPerToken.toFixed(2)} ms/token, ${p.best.speedupOverNonSi.toFixed(2)}x over non-SI, ${p.best.speedupOverSi.toFixed(2)}x over the best SI (plus 1 drafter instance)`,
    `recommended: ${p.knee.sp} target instance(s), lookahead ${p.knee.lookahead}: within 2% of the fastest (${p.knee.msPerToken.toFixed(2)} ms/token, ${p.knee.speedupOverSi.toFixed(2)}x over the best SI); more instances add little`,
  ].join("\n");
}
