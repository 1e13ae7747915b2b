/** `dsi generate`: run one algorithm n times and print the completions and stats. */
import { generate } from "../algorithms/generate.js";
import { OptionError, type AlgorithmName, type Completion, type GenerateOptions } from "../algorithms/options.js";
import { aggregateStats } from "../algorithms/output.js";
import type { VerifyRule } from "../core/verify.js";
import type { LatencyProfile } from "../models/latency.js";
import { makeClock } from "../runtime/clock.js";
import type { EngineEvent } from "../runtime/events.js";
import { chromeTrace } from "../present/trace.js";
import type { Backend } from "../models/backend.js";
import { checkWritable, FLAG_OF, UsageError, writeOutput } from "./flags.js";

export interface GenerateFlags {
  algo: AlgorithmName;
  lookahead: number;
  sp: number;
  maxTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  seed: number;
  verify?: VerifyRule;
  /** Default: the backend's `defaultPrompt`. */
  prompt?: string;
  stop: string[];
  latency: LatencyProfile;
  clock: "real" | "virtual";
  n: number;
  json: boolean;
  trace?: string;
}

export interface GenerateReport {
  algo: AlgorithmName;
  config: Record<string, unknown>;
  completions: (Completion & { seed: number; text: string })[];
  stats: ReturnType<typeof aggregateStats>;
}

/** Runs the generations; throws UsageError for bad combinations of flags. */
export async function runGenerate(backend: Backend, flags: GenerateFlags): Promise<{ report: GenerateReport; logs: EngineEvent[][] }> {
  const verify: VerifyRule = flags.verify ?? (flags.temperature === 0 ? "greedy" : "rejection");
  let prompt: number[];
  try {
    prompt = backend.tokenizer.encode(flags.prompt ?? backend.defaultPrompt);
  } catch (err) {
    throw new UsageError(`--prompt: ${(err as Error).message}`);
  }
  // Stop sequences match the decoded text, whatever the tokenization.
  const stopText = { strings: flags.stop, decode: (t: readonly number[]) => backend.tokenizer.decode(t) };
  if (backend.realCompute && flags.clock === "virtual") {
    throw new UsageError("--clock: virtual time needs the synthetic backend; real models compute in real time (use --clock real)");
  }
  if (backend.contextSize !== undefined && prompt.length + flags.maxTokens > backend.contextSize) {
    throw new UsageError(
      `--prompt/--max-tokens: the prompt (${prompt.length} tokens) plus --max-tokens (${flags.maxTokens}) exceeds the model context of ${backend.contextSize} tokens`,
    );
  }
  if (flags.trace !== undefined) await checkWritable(flags.trace, "--trace");
  const completions: GenerateReport["completions"] = [];
  const logs: EngineEvent[][] = [];
  for (let i = 0; i < flags.n; i++) {
    const clock = makeClock(flags.clock);
    const rt = await backend.runtime(clock, flags.algo === "dsi" ? flags.sp : 1, flags.latency);
    const options: GenerateOptions = {
      prompt,
      maxTokens: flags.maxTokens,
      sampling: { temperature: flags.temperature, topK: flags.topK, topP: flags.topP },
      verify,
      seed: flags.seed + i,
      ...(flags.algo === "nonsi" ? {} : { lookahead: flags.lookahead }),
      stopText,
    };
    let result: Completion;
    try {
      result = await generate(flags.algo, rt, options).result;
    } catch (err) {
      if (err instanceof OptionError) throw new UsageError(`${FLAG_OF[err.option] ?? err.option}: ${err.message}`);
      throw err;
    }
    completions.push({ seed: flags.seed + i, text: backend.tokenizer.decode(result.tokens), ...result });
    logs.push(rt.events.events);
  }
  const report: GenerateReport = {
    algo: flags.algo,
    config: {
      backend: backend.describe(),
      lookahead: flags.algo === "nonsi" ? undefined : flags.lookahead,
      sp: flags.algo === "dsi" ? flags.sp : undefined,
      verify,
      temperature: flags.temperature,
      topK: flags.topK,
      topP: flags.topP,
      latency: backend.realCompute && flags.latency.name !== "none" ? `${flags.latency.name} (added on top of real compute)` : flags.latency.name,
      clock: flags.clock,
    },
    completions,
    stats: aggregateStats(completions.map((c) => c.stats)),
  };
  if (flags.trace) {
    const trace = chromeTrace(logs.map((events, i) => ({ name: `${flags.algo} completion ${i} (seed ${flags.seed + i})`, events })));
    await writeOutput(flags.trace, JSON.stringify(trace), "--trace");
  }
  return { report, logs };
}

export function formatReport(r: GenerateReport): string {
  const lines: string[] = [];
  const c = r.config;
  const shape = r.algo === "nonsi" ? "" : r.algo === "si" ? ` L=${c.lookahead}` : ` L=${c.lookahead} SP=${c.sp}`;
  lines.push(`${r.algo}${shape} verify=${c.verify} latency=${c.latency} clock=${c.clock} | ${c.backend}`);
  for (const [i, comp] of r.completions.entries()) {
    lines.push(`[${i}] seed ${comp.seed}: ${JSON.stringify(comp.text)} (${comp.finishReason})`);
    lines.push(`    ${statsLine(comp.stats)}`);
  }
  if (r.completions.length > 1) lines.push(`all: ${statsLine(r.stats)}`);
  return lines.join("\n");
}

function statsLine(s: Completion["stats"]): string {
  const parts = [`${s.tokens} tokens in ${s.timeMs.toFixed(1)} ms (${s.clock})`, `ttft ${s.ttftMs.toFixed(1)} ms`];
  if (s.drafted > 0) parts.push(`acceptance ${s.acceptanceRate.toFixed(2)} (${s.accepted}/${s.accepted + s.rejected})`, `drafted ${s.drafted}`);
  parts.push(`verifications ${s.verifications}`, `preemptions ${s.preemptions}`, `target busy ${s.targetBusyMs.toFixed(1)} ms`);
  return parts.join(" | ");
}
