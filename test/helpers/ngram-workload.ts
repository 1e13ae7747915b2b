/** The prompt-lookup sweep's workload: DSI on a copying synthetic pair, in virtual time (run off-thread, see off-thread.ts). */
import type { DraftMode } from "../../src/algorithms/option-spec.js";
import { generate } from "../../src/algorithms/generate.js";
import { resolveProfile } from "../../src/models/latency.js";
import { syntheticRuntime } from "../../src/models/runtime.js";
import { SyntheticPair } from "../../src/models/synthetic.js";

/**
 * Total virtual time of auto DSI (SP 7) over `seeds` pairs and prompts, 200 tokens each, with
 * the paper pair's latencies and acceptance, a target that copies at `copy`; and non-SI's.
 */
export async function dsiTime(profileName: string, copy: number, draft: DraftMode, seeds: number): Promise<{ dsi: number; nonsi: number }> {
  const profile = resolveProfile(profileName)!;
  let dsi = 0;
  let nonsi = 0;
  for (let seed = 1; seed <= seeds; seed++) {
    const pair = new SyntheticPair({ vocab: 32, seed, agreement: profile.acceptance ?? 0.7, copy });
    const prompt = Array.from({ length: 24 }, (_, i) => (i * 7 + seed) % 32);
    const rt = syntheticRuntime({ pair, profile, clock: "virtual", sp: 7, events: false });
    dsi += (await generate("dsi", rt, { prompt, maxTokens: 200, lookahead: "auto", draft }).result).stats.timeMs;
    nonsi += (await generate("nonsi", syntheticRuntime({ pair, profile, clock: "virtual", events: false }), { prompt, maxTokens: 200 }).result).stats.timeMs;
  }
  return { dsi, nonsi };
}
