/**
 * Engine overhead per committed token, on the real clock, with zero-latency synthetic
 * instances (profile "none"): what the orchestration itself costs on top of the models.
 *
 * For each algorithm (non-SI; SI L=5; DSI L=5 SP=4) a generation of N tokens is run a few
 * times after a warm-up and the median wall time is taken. The models' own share is
 * measured separately by replaying, without the engine, exactly the evaluate() calls that
 * algorithm made (recorded in a separate, untimed run: greedy decoding is deterministic,
 * so the timed runs make the same calls). Engine overhead = total - model replay.
 * The bare cost of a plain autoregressive loop over the target (the calls a non-SI run
 * makes, without the engine) is printed too. Target: engine overhead under 50 µs per
 * committed token. The verdicts are printed; the exit code is 0 either way.
 *
 * Usage: node dist/bench/overhead.js [--tokens 2000] [--runs 5] [--warmup 2] [--target-us 50]
 */
import { benchArgs } from "./args.js";
import Table from "cli-table3";
import {
  EventLog,
  GREEDY,
  SyntheticPair,
  generate,
  makeClock,
  resolveProfile,
  syntheticRuntime,
  type AlgorithmName,
  type EvalRequest,
  type ModelInstance,
  type PositionOutput,
  type Runtime,
} from "../src/index.js";

const USAGE = "usage: node dist/bench/overhead.js [--tokens 2000] [--runs 5] [--warmup 2] [--target-us 50]";

const args = benchArgs(USAGE, {
  tokens: { default: 2000, min: 1 },
  runs: { default: 5, min: 1 },
  warmup: { default: 2, min: 0 },
  "target-us": { default: 50, min: 0, integer: false },
});
const TOKENS = args.tokens;
const RUNS = args.runs;
const WARMUP = args.warmup;
const TARGET_US = args["target-us"];

const PROMPT = [1, 2, 3, 4];
const SEED = 7;
const pair = new SyntheticPair({ vocab: 32, seed: 1 }); // default agreement 0.7
const NONE = resolveProfile("none")!;

interface Config {
  label: string;
  algo: AlgorithmName;
  lookahead: number;
  sp: number;
}
const CONFIGS: Config[] = [
  { label: "nonsi", algo: "nonsi", lookahead: 1, sp: 1 },
  { label: "si L=5", algo: "si", lookahead: 5, sp: 1 },
  { label: "dsi L=5 SP=4", algo: "dsi", lookahead: 5, sp: 4 },
];

const options = (c: Config) => ({ prompt: PROMPT, maxTokens: TOKENS, sampling: GREEDY, verify: "greedy" as const, seed: SEED, lookahead: c.lookahead, sp: c.sp });

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
  evaluate(req: EvalRequest, signal?: AbortSignal): Promise<PositionOutput[]> {
    // Copied (untimed), so that nothing the engine does to its arrays later changes the replay.
    this.calls.push({ role: this.role, req: { ...req, tokens: req.tokens.slice() } });
    return this.inner.evaluate(req, signal);
  }
}

async function record(c: Config): Promise<{ calls: Call[]; tokens: number[]; verifications: number; drafted: number }> {
  const calls: Call[] = [];
  const clock = makeClock("real");
  const rt: Runtime = {
    clock,
    drafter: new Recorder(pair.instance("drafter"), "drafter", calls),
    targets: Array.from({ length: c.sp }, (_, i) => new Recorder(pair.instance("target", `target-${i}`), "target", calls)),
    events: new EventLog(() => clock.now(), false),
  };
  const out = await generate(c.algo, rt, options(c)).result;
  return { calls, tokens: out.tokens, verifications: out.stats.verifications, drafted: out.stats.drafted };
}

/** Replays recorded calls on fresh instances, without the engine; returns ms. */
async function replay(calls: readonly Call[]): Promise<number> {
  const target = pair.instance("target");
  const drafter = pair.instance("drafter");
  const t0 = performance.now();
  for (const { role, req } of calls) await (role === "target" ? target : drafter).evaluate(req);
  return performance.now() - t0;
}

/** A plain autoregressive loop over the target: the model calls of a non-SI run, no engine. */
async function bareNonSi(): Promise<{ ms: number; tokens: number[] }> {
  const target = pair.instance("target");
  const seq = [...PROMPT];
  const t0 = performance.now();
  for (let i = 0; i < TOKENS; i++) {
    const [out] = await target.evaluate({ tokens: seq, from: seq.length, mode: "greedy", sampling: GREEDY, seed: SEED, stream: 1 });
    seq.push(out.token);
  }
  return { ms: performance.now() - t0, tokens: seq.slice(PROMPT.length) };
}

interface Timed {
  ms: number;
  tokens: number;
  verifications: number;
  drafted: number;
  output: number[];
}

async function timeRun(c: Config, events: boolean): Promise<Timed> {
  const rt = syntheticRuntime({ pair, profile: NONE, clock: "real", targets: c.sp, events });
  const t0 = performance.now();
  const out = await generate(c.algo, rt, options(c)).result;
  const ms = performance.now() - t0;
  return { ms, tokens: out.stats.tokens, verifications: out.stats.verifications, drafted: out.stats.drafted, output: out.tokens };
}

async function medianOf<T extends { ms: number }>(f: () => Promise<T>): Promise<{ ms: number; all: T[] }> {
  for (let i = 0; i < WARMUP; i++) await f();
  const all: T[] = [];
  for (let i = 0; i < RUNS; i++) all.push(await f());
  return { ms: median(all.map((r) => r.ms)), all };
}

const sameTokens = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((t, i) => t === b[i]);
const us = (ms: number, tokens: number): string => ((ms * 1000) / tokens).toFixed(2);
const PLAIN = { head: [] as string[], border: [] as string[] };

async function main(): Promise<void> {
  const t0 = performance.now();
  const notes: string[] = [];
  const bare = await medianOf(bareNonSi);
  const reference = bare.all[0].tokens;

  const table = new Table({
    head: [
      "algorithm",
      "tokens",
      "target calls",
      "drafter calls",
      "positions evaluated",
      "total µs/tok",
      "model µs/tok",
      "engine µs/tok",
      "total µs/tok (no events)",
      "engine µs/tok (no events)",
      `engine < ${TARGET_US} µs`,
    ],
    colAligns: ["left", "right", "right", "right", "right", "right", "right", "right", "right", "right", "left"],
    style: PLAIN,
  });
  const verdicts: string[] = [];
  for (const c of CONFIGS) {
    const rec = await record(c);
    if (!sameTokens(rec.tokens, reference)) notes.push(`${c.label}: output differs from the plain target loop (lossless violation)`);
    const withEvents = await medianOf(() => timeRun(c, true));
    const noEvents = await medianOf(() => timeRun(c, false));
    for (const r of [...withEvents.all, ...noEvents.all]) {
      if (!sameTokens(r.output, reference)) notes.push(`${c.label}: a timed run's output differs from the plain target loop`);
      if (r.verifications !== rec.verifications || r.drafted !== rec.drafted) {
        notes.push(`${c.label}: a timed run made ${r.verifications} target / ${r.drafted} drafter calls, the recorded run ${rec.verifications} / ${rec.drafted}; the model share is approximate`);
      }
    }
    const model = await medianOf(() => replay(rec.calls).then((ms) => ({ ms })));
    const tokens = withEvents.all[0].tokens;
    const targetCalls = rec.calls.filter((x) => x.role === "target").length;
    const drafterCalls = rec.calls.length - targetCalls;
    const positions = rec.calls.reduce((n, x) => n + x.req.tokens.length - x.req.from + 1, 0);
    const engine = withEvents.ms - model.ms;
    const engineNoEvents = noEvents.ms - model.ms;
    const pass = engine < (TARGET_US * tokens) / 1000;
    table.push([
      c.label,
      tokens,
      targetCalls,
      drafterCalls,
      positions,
      us(withEvents.ms, tokens),
      us(model.ms, tokens),
      us(engine, tokens),
      us(noEvents.ms, tokens),
      us(engineNoEvents, tokens),
      pass ? "PASS" : "FAIL",
    ]);
    verdicts.push(`${pass ? "PASS" : "FAIL"} ${c.label}: engine overhead ${us(engine, tokens)} µs per committed token (events on; ${us(engineNoEvents, tokens)} with events off), target < ${TARGET_US} µs`);
  }

  console.log(
    `Engine overhead on the real clock, zero-latency synthetic instances (profile "none", vocab 32, agreement 0.7, greedy), ` +
      `${TOKENS} tokens per generation, median of ${RUNS} runs after ${WARMUP} warm-up run(s).`,
  );
  console.log("model = the same evaluate() calls replayed without the engine; engine = total - model.\n");
  console.log(table.toString());
  console.log(`\nBare model, non-SI-equivalent (${TOKENS} target evaluate() calls in a plain loop, no engine): ${us(bare.ms, TOKENS)} µs per token.`);
  for (const v of verdicts) console.log(v);
  for (const n of [...new Set(notes)]) console.log(`NOTE ${n}`);
  console.log(`\nTook ${((performance.now() - t0) / 1000).toFixed(1)} s wall.`);
}

await main();
