/** `dsi generate`: run one algorithm n times and print the completions and stats. */
import { generate } from "../algorithms/generate.js";
import { OptionError, type AlgorithmName, type Completion, type Lookahead, type GenerateOptions } from "../algorithms/options.js";
import { aggregateStats } from "../algorithms/output.js";
import type { VerifyRule } from "../core/verify.js";
import type { LatencyProfile } from "../models/latency.js";
import { makeClock } from "../runtime/clock.js";
import { isPoolEvent, type EngineEvent } from "../runtime/events.js";
import type { Learned } from "../runtime/costs.js";
import { chromeTrace } from "../present/trace.js";
import type { Backend } from "../models/backend.js";
import { TextStreamer } from "../models/text-stream.js";
import { checkWritable, UsageError, writeOutput } from "./flags.js";
import { contextProblem, defaultVerify, keyOfEngineName, optionName, type DraftMode } from "../algorithms/option-spec.js";

export interface GenerateFlags {
  algo: AlgorithmName;
  lookahead: Lookahead;
  /** Default: the drafter model (the demo does not take the drafting flags yet). */
  draft?: DraftMode;
  ngramMin?: number;
  ngramMax?: number;
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

/** The engine's drafting options from the flags (match lengths only where prompt lookup drafts). */
export function draftOptions(f: { draft?: DraftMode; ngramMin?: number; ngramMax?: number }): Pick<GenerateOptions, "draft" | "ngramMin" | "ngramMax"> {
  return f.draft === undefined || f.draft === "model" ? {} : { draft: f.draft, ngramMin: f.ngramMin, ngramMax: f.ngramMax };
}

export interface GenerateReport {
  algo: AlgorithmName;
  config: Record<string, unknown>;
  completions: (Completion & { seed: number; text: string })[];
  stats: ReturnType<typeof aggregateStats>;
}

/** Hears a run as it goes: the configuration, each completion's text as tokens commit, its end. */
export interface GenerateSink {
  start(config: GenerateReport["config"], algo: AlgorithmName): void;
  completionStart(index: number, seed: number): void;
  text(chunk: string): void;
  completionEnd(c: GenerateReport["completions"][number]): void;
}

/**
 * Runs the generations on one runtime (`learned`: start from what another run learned, else the
 * backend's kept prior); returns what the runtime learned. Throws UsageError for bad combinations of flags.
 */
export async function runGenerate(
  backend: Backend,
  flags: GenerateFlags,
  sink?: GenerateSink,
  o: { learned?: Learned } = {},
): Promise<{ report: GenerateReport; logs: EngineEvent[][]; learned: Learned }> {
  const verify: VerifyRule = flags.verify ?? defaultVerify(flags.temperature);
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
  const tooLong = contextProblem(prompt.length, flags.maxTokens, backend.contextSize, "cli");
  if (tooLong) throw new UsageError(`--prompt/--max-tokens: ${tooLong}`);
  if (flags.trace !== undefined) await checkWritable(flags.trace, "--trace");
  const config: GenerateReport["config"] = {
    backend: backend.describe(),
    lookahead: flags.algo === "nonsi" ? undefined : flags.lookahead,
    draft: flags.algo === "nonsi" ? undefined : (flags.draft ?? "model"),
    ngram: flags.algo === "nonsi" || (flags.draft ?? "model") === "model" ? undefined : { min: flags.ngramMin, max: flags.ngramMax },
    sp: flags.algo === "dsi" ? (backend.targetCount ?? flags.sp) : undefined,
    verify,
    temperature: flags.temperature,
    topK: flags.topK,
    topP: flags.topP,
    latency:
      backend.name === "cluster"
        ? "the cluster's (each worker's --latency; the file's for an in-process drafter)"
        : backend.realCompute && flags.latency.name !== "none"
          ? `${flags.latency.name} (added on top of real compute)`
          : flags.latency.name,
    clock: flags.clock,
    // Real kernels: tokens per forward pass (batch invariance) of each model and how it was found.
    ...(backend.evalChunk ? { evalChunk: backend.evalChunk } : {}),
    // Where the costs and acceptance this command starts from and leaves are kept (llama).
    ...(backend.learnedCache ? { learnedCache: backend.learnedCache.pathFor(flags.latency) } : {}),
  };
  const completions: GenerateReport["completions"] = [];
  const logs: EngineEvent[][] = [];
  // One runtime for the command: each completion starts from what the earlier ones learned
  // (costs, acceptance) and finds its instances' caches as they left them. A cluster's pool
  // holds every worker whatever the algorithm: non-SI and SI use one at a time, and the others
  // take over when it is lost.
  const clock = makeClock(flags.clock);
  const rt = await backend.runtime(clock, backend.targetCount ?? (flags.algo === "dsi" ? flags.sp : 1), flags.latency, { learned: o.learned });
  try {
    for (let i = 0; i < flags.n; i++) {
      const from = rt.events.events.length;
      const start = clock.now();
      const options: GenerateOptions = {
        prompt,
        maxTokens: flags.maxTokens,
        sampling: { temperature: flags.temperature, topK: flags.topK, topP: flags.topP },
        verify,
        seed: flags.seed + i,
        ...(flags.algo === "nonsi" ? {} : { lookahead: flags.lookahead, ...draftOptions(flags) }),
        stopText,
      };
      let result: Completion;
      try {
        const gen = generate(flags.algo, rt, options); // checks the options: nothing is printed before
        if (i === 0) sink?.start(config, flags.algo);
        sink?.completionStart(i, flags.seed + i);
        const streamer = new TextStreamer(backend.tokenizer);
        // Text streams as tokens commit (the engine holds back a possible stop sequence).
        for await (const token of gen) {
          const chunk = streamer.push(token);
          if (chunk) sink?.text(chunk);
        }
        result = await gen.result;
        const c = { seed: flags.seed + i, text: backend.tokenizer.decode(result.tokens), ...result };
        const rest = streamer.rest(c.text);
        if (rest) sink?.text(rest);
        sink?.completionEnd(c);
        completions.push(c);
      } catch (err) {
        if (err instanceof OptionError) {
          const key = keyOfEngineName(err.option);
          throw new UsageError(`${key ? optionName(key, "cli") : `--${err.option}`}: ${err.message}`);
        }
        throw err;
      }
      // This completion's events, its time from its own start (as its stats); the pool's lease
      // events stay out of the timelines.
      logs.push(rt.events.events.slice(from).flatMap((e) => (isPoolEvent(e) ? [] : [{ ...e, t: e.t - start }])));
    }
  } finally {
    rt.close();
  }
  const report: GenerateReport = {
    algo: flags.algo,
    config,
    completions,
    stats: aggregateStats(completions.map((c) => c.stats)),
  };
  if (flags.trace) {
    const trace = chromeTrace(logs.map((events, i) => ({ name: `${flags.algo} completion ${i} (seed ${flags.seed + i})`, events })));
    await writeOutput(flags.trace, JSON.stringify(trace), "--trace");
  }
  return { report, logs, learned: rt.learned };
}

/** The plain-text output: the configuration line, then each completion's text as it is generated, then its stats. */
export function textSink(write: (s: string) => void): GenerateSink & { finish(r: GenerateReport): void } {
  return {
    start(c, algo) {
      const shape = algo === "nonsi" ? "" : algo === "si" ? ` L=${c.lookahead}` : ` L=${c.lookahead} SP=${c.sp}`;
      const learned = c.learnedCache === undefined ? "" : ` | learned costs ${c.learnedCache}`;
      write(`${algo}${shape} verify=${c.verify} latency=${c.latency} clock=${c.clock} | ${c.backend}${learned}\n`);
    },
    completionStart(i, seed) {
      write(`[${i}] seed ${seed}: "`);
    },
    text(chunk) {
      write(JSON.stringify(chunk).slice(1, -1));
    },
    completionEnd(c) {
      write(`" (${c.finishReason})\n    ${statsLine(c.stats)}\n`);
    },
    finish(r) {
      if (r.completions.length > 1) write(`all: ${statsLine(r.stats)}\n`);
    },
  };
}

function statsLine(s: Completion["stats"]): string {
  const parts = [`${s.tokens} tokens in ${s.timeMs.toFixed(1)} ms (${s.clock})`, `ttft ${s.ttftMs.toFixed(1)} ms`];
  if (s.drafted > 0) parts.push(`acceptance ${s.acceptanceRate.toFixed(2)} (${s.accepted}/${s.accepted + s.rejected})`, `drafted ${s.drafted}`);
  parts.push(`verifications ${s.verifications}`);
  if (s.windows.length > 1 || s.probes > 0) parts.push(`windows ${windowsText(s.windows)}${s.probes > 0 ? `, probes ${s.probes}` : ""}`);
  parts.push(`preemptions ${s.preemptions}`, `target busy ${s.targetBusyMs.toFixed(1)} ms`);
  return parts.join(" | ");
}

/** Target tasks by drafts verified, as "drafts:tasks" pairs ("0:12 3:5": 12 plain steps, 5 windows of 3). */
export function windowsText(windows: readonly number[]): string {
  return windows.flatMap((n, k) => (n > 0 ? [`${k}:${n}`] : [])).join(" ");
}
