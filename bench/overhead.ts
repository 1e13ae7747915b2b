/**
 * Engine overhead per committed token, on the real clock, with zero-latency synthetic
 * instances (profile "none"): what the orchestration itself costs on top of the models,
 * and whether that cost stays flat as the output grows.
 *
 * For each output length (500 and 8000 tokens by default) and each algorithm (non-SI; SI
 * L=5; DSI L=5 SP=4), a generation is run a few times after a warm-up and the median wall
 * time is taken, with the event log on (as the CLI runs). The models' own share is measured
 * by replaying, without the engine, exactly the evaluate() calls that run made (recorded in
 * an untimed run: greedy decoding is deterministic, so the timed runs make the same calls).
 * Engine overhead = total - model replay.
 *
 * Verdicts, each on the figure it names:
 * - engine µs per committed token < 50 (--target-us), for every algorithm and length;
 * - flat: engine µs/token at the longest length within 1.2x (--flat) of the shortest
 *   (a floor of 1 µs/token absorbs timer noise on tiny figures);
 * - 80k tokens (--long) of non-SI in under 2 s (--long-s) of wall time.
 * The exit code is 0 either way.
 *
 * Usage: node dist/bench/overhead.js [--short 500] [--tokens 8000] [--long 80000] [--runs 5] [--warmup 2]
 */
import { benchArgs } from "./args.js";
import Table from "cli-table3";
import { GREEDY, SyntheticPair, generate, syntheticRuntime, type AlgorithmName, type EvalRequest, type ModelInstance, type PositionOutput } from "../src/index.js";
import { assembleRuntime } from "../src/models/runtime.js";

const USAGE = "usage: node dist/bench/overhead.js [--short 500] [--tokens 8000] [--long 80000] [--runs 5] [--warmup 2] [--target-us 50] [--flat 1.2] [--long-s 2]";

const args = benchArgs(USAGE, {
  short: { default: 500, min: 1 },
  tokens: { default: 8000, min: 1 },
  long: { default: 80000, min: 1 },
  runs: { default: 5, min: 1 },
  warmup: { default: 2, min: 0 },
  "target-us": { default: 50, min: 0, integer: false },
  flat: { default: 1.2, min: 1, integer: false },
  "long-s": { default: 2, min: 0, integer: false },
});
const LENGTHS = [args.short, args.tokens];
const RUNS = args.runs;
const WARMUP = args.warmup;
const TARGET_US = args["target-us"];
const FLAT = args.flat;
/** Below this, per-token differences are timer noise, not growth. */
const FLAT_FLOOR_US = 1;

const PROMPT = [1, 2, 3, 4];
const SEED = 7;
const pair = new SyntheticPair({ vocab: 32, seed: 1 }); // default agreement 0.7

interface Config {
  label: string;
  algo: AlgorithmName;
  lookahead?: number;
  sp: number;
}
const CONFIGS: Config[] = [
  { label: "nonsi", algo: "nonsi", sp: 1 },
  { label: "si L=5", algo: "si", lookahead: 5, sp: 1 },
  { label: "dsi L=5 SP=4", algo: "dsi", lookahead: 5, sp: 4 },
];

const options = (c: Config, tokens: number) => ({ prompt: PROMPT, maxTokens: tokens, sampling: GREEDY, verify: "greedy" as const, seed: SEED, lookahead: c.lookahead });

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

// ---- recording the model calls of one generation (untimed) ----

interface Call {
  role: "target" | "drafter";
  req: EvalRequest;
}

class Recorder implements ModelInstance {
  readonly label: string;
  readonly vocabSize: number;
  readonly eosToken: number | undefined;
  constructor(
    private readonly inner: ModelInstance,
    private readonly role: "target" | "drafter",
    private readonly calls: Call[],
  ) {
    this.label = inner.label;
    this.vocabSize = inner.vocabSize;
    this.eosToken = inner.eosToken;
  }
  // Not async, and returning the inner promise itself: with zero-latency instances DSI's
  // interleaving is decided by microtask order, and an extra await here would change it.
  // The request's tokens are an immutable view: kept as they are, no copy.
  evaluate(req: EvalRequest, signal?: AbortSignal): Promise<PositionOutput[]> {
    this.calls.push({ role: this.role, req });
    return this.inner.evaluate(req, signal);
  }
}

async function record(c: Config, tokens: number): Promise<{ calls: Call[]; output: number[] }> {
  const calls: Call[] = [];
  const rt = assembleRuntime({
    clock: "real",
    drafter: new Recorder(pair.instance("drafter"), "drafter", calls),
    target: (i) => new Recorder(pair.instance("target", `target-${i}`), "target", calls),
    vocabSize: pair.spec.vocab,
    eosToken: undefined,
    sp: c.sp,
  });
  const out = await generate(c.algo, rt, options(c, tokens)).result;
  return { calls, output: out.tokens };
}

/** Replays recorded calls on fresh instances, without the engine; returns ms. */
async function replay(calls: readonly Call[]): Promise<number> {
  const target = pair.instance("target");
  const drafter = pair.instance("drafter");
  const t0 = performance.now();
  for (const { role, req } of calls) await (role === "target" ? target : drafter).evaluate(req);
  return performance.now() - t0;
}

async function timeRun(c: Config, tokens: number): Promise<{ ms: number; output: number[] }> {
  const rt = syntheticRuntime({ pair, clock: "real", sp: c.sp });
  const t0 = performance.now();
  const out = await generate(c.algo, rt, options(c, tokens)).result;
  return { ms: performance.now() - t0, output: out.tokens };
}

async function medianOf<T extends { ms: number }>(f: () => Promise<T>): Promise<{ ms: number; all: T[] }> {
  for (let i = 0; i < WARMUP; i++) await f();
  const all: T[] = [];
  for (let i = 0; i < RUNS; i++) all.push(await f());
  return { ms: median(all.map((r) => r.ms)), all };
}

const sameTokens = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((t, i) => t === b[i]);
const us = (ms: number, tokens: number): number => (ms * 1000) / tokens;
const PLAIN = { head: [] as string[], border: [] as string[] };

async function main(): Promise<void> {
  const t0 = performance.now();
  const notes: string[] = [];
  const verdicts: string[] = [];
  const table = new Table({
    head: ["algorithm", "tokens", "target calls", "drafter calls", "total µs/tok", "model µs/tok", "engine µs/tok", `engine < ${TARGET_US} µs`],
    colAligns: ["left", "right", "right", "right", "right", "right", "right", "left"],
    style: PLAIN,
  });
  const engineUs = new Map<string, number[]>();
  for (const tokens of LENGTHS) {
    let reference: number[] | undefined;
    for (const c of CONFIGS) {
      const rec = await record(c, tokens);
      reference ??= rec.output;
      if (!sameTokens(rec.output, reference)) notes.push(`${c.label}: output differs from non-SI's (lossless violation)`);
      const total = await medianOf(() => timeRun(c, tokens));
      for (const r of total.all) if (!sameTokens(r.output, reference)) notes.push(`${c.label}: a timed run's output differs from non-SI's`);
      const model = await medianOf(() => replay(rec.calls).then((ms) => ({ ms })));
      const engine = us(total.ms - model.ms, tokens);
      engineUs.set(c.label, [...(engineUs.get(c.label) ?? []), engine]);
      const targetCalls = rec.calls.filter((x) => x.role === "target").length;
      const pass = engine < TARGET_US;
      table.push([c.label, tokens, targetCalls, rec.calls.length - targetCalls, us(total.ms, tokens).toFixed(2), us(model.ms, tokens).toFixed(2), engine.toFixed(2), pass ? "PASS" : "FAIL"]);
      verdicts.push(`${pass ? "PASS" : "FAIL"} ${c.label}, ${tokens} tokens: engine overhead ${engine.toFixed(2)} µs per committed token (event log on), target < ${TARGET_US} µs`);
    }
  }
  for (const c of CONFIGS) {
    const [short, long] = [engineUs.get(c.label)![0], engineUs.get(c.label)!.at(-1)!];
    const ratio = Math.max(long, FLAT_FLOOR_US) / Math.max(short, FLAT_FLOOR_US);
    verdicts.push(
      `${ratio <= FLAT ? "PASS" : "FAIL"} ${c.label}: engine µs/token at ${LENGTHS.at(-1)} tokens is ${ratio.toFixed(2)}x that at ${LENGTHS[0]} (${long.toFixed(2)} vs ${short.toFixed(2)}), target <= ${FLAT}x`,
    );
  }
  const long = await timeRun(CONFIGS[0], args.long);
  const longS = long.ms / 1000;
  verdicts.push(`${longS < args["long-s"] ? "PASS" : "FAIL"} nonsi, ${args.long} tokens: ${longS.toFixed(2)} s wall (${us(long.ms, args.long).toFixed(2)} µs/token), target < ${args["long-s"]} s`);

  console.log(
    `Engine overhead on the real clock, zero-latency synthetic instances (vocab 32, agreement 0.7, greedy), ` +
      `median of ${RUNS} runs after ${WARMUP} warm-up run(s), event log on.`,
  );
  console.log("model = the same evaluate() calls replayed without the engine; engine = total - model.\n");
  console.log(table.toString());
  console.log();
  for (const v of verdicts) console.log(v);
  for (const n of [...new Set(notes)]) console.log(`NOTE ${n}`);
  console.log(`\nTook ${((performance.now() - t0) / 1000).toFixed(1)} s wall.`);
}

await main();
