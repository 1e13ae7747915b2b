/**
 * Engine overhead per committed token, on the real clock, with instances that cost next to
 * nothing (a table lookup per position, no latency): what the orchestration itself costs on
 * top of the models, and whether that cost stays flat as the output grows.
 *
 * For each output length (500 and 8000 tokens by default) and each algorithm (non-SI; SI
 * L=5; DSI L=5 SP=4; SI and DSI SP=4 with the adaptive lookahead), a generation is run a few times after a warm-up, with the event log
 * on (as the CLI runs). The models' own share of each run is measured by replaying, without
 * the engine, exactly the evaluate() calls that run made (recorded as it ran: on the real
 * clock DSI's slack and guard rules read measured costs, so two runs may make different
 * calls). Engine overhead of a run = its wall time - its replay; the median over runs is
 * reported. Warm-up runs cover at least --warmup-tokens tokens
 * per configuration, so short generations are timed on JIT-compiled code, as in a
 * long-running server.
 *
 * Verdicts, each on the figure it names:
 * - engine µs per committed token < 50 (--target-us), for every algorithm and length;
 * - flat: engine µs/token at the longest length within 1.2x (--flat) of the shortest, with
 *   the event log off (a floor of 1 µs/token absorbs timer noise on tiny figures); with the
 *   log on the growth is printed, not judged (the log keeps every event, so the collector's
 *   work per token grows with the output);
 * - 80k tokens (--long) of non-SI in under 2 s (--long-s) of wall time;
 * - text: stop strings and text streaming on (a TextStreamer over the token stream, the final
 *   text cut at the stop string), with a llama-shaped tokenizer (no per-token pieces; byte
 *   pieces that split characters; a call's first space dropped): µs per token of the whole
 *   loop at --text-long (50000) tokens within 1.5x (--text-flat) of that at --text-short
 *   (5000), for non-SI and DSI. Whole-output decoding made this O(n) per token.
 * The exit code is 0 either way.
 *
 * Usage: node dist/bench/overhead.js [--short 500] [--tokens 8000] [--long 80000] [--runs 5] [--warmup 2] [--warmup-tokens 20000]
 *   [--text-short 5000] [--text-long 50000] [--text-flat 1.5] [--only all|text]
 */
import { cpus } from "node:os";
import { benchArgs } from "./args.js";
import { median } from "./stats.js";
import Table from "cli-table3";
import { GREEDY, generate, type AlgorithmName, type EvalRequest, type Lookahead, type ModelInstance, type PositionOutput } from "../src/index.js";
import { Rng } from "../src/core/random.js";
import { assembleRuntime } from "../src/models/runtime.js";
import { TextStreamer } from "../src/models/text-stream.js";
import type { Tokenizer } from "../src/models/backend.js";

const USAGE = "usage: node dist/bench/overhead.js [--short 500] [--tokens 8000] [--long 80000] [--runs 5] [--warmup 2] [--warmup-tokens 20000] [--target-us 50] [--flat 1.2] [--long-s 2] [--text-short 5000] [--text-long 50000] [--text-flat 1.5] [--only all|text]";

const args = benchArgs(USAGE, {
  short: { default: 500, min: 1 },
  tokens: { default: 8000, min: 1 },
  long: { default: 80000, min: 1 },
  runs: { default: 5, min: 1 },
  warmup: { default: 2, min: 0 },
  "warmup-tokens": { default: 20000, min: 0 },
  "target-us": { default: 50, min: 0, integer: false },
  flat: { default: 1.2, min: 1, integer: false },
  "long-s": { default: 2, min: 0, integer: false },
  "text-short": { default: 5000, min: 1 },
  "text-long": { default: 50000, min: 1 },
  "text-flat": { default: 1.5, min: 1, integer: false },
}, { only: "all" });
if (args.only !== "all" && args.only !== "text") {
  console.error(`--only must be all or text, got ${JSON.stringify(args.only)}\n${USAGE}`);
  process.exit(2);
}
const LENGTHS = [args.short, args.tokens];
const RUNS = args.runs;
const WARMUP = args.warmup;
const TARGET_US = args["target-us"];
const FLAT = args.flat;
/** Below this, per-token differences are timer noise, not growth. */
const FLAT_FLOOR_US = 1;

const PROMPT = [1, 2, 3, 4];
const SEED = 7;
const VOCAB = 32;
const AGREEMENT = 0.7;

/**
 * A table-lookup pair: O(1) per position and no allocation beyond the outputs, so that the
 * model's share of a run is small and the engine's is not a small difference of two large,
 * noisy figures (the synthetic pair hashes a whole vocabulary per position). The target's
 * token depends on the position and the previous token; the drafter agrees with it at a
 * seeded 70% of (position, previous token) pairs.
 */
class TablePair {
  private readonly target = new Int32Array(64 * VOCAB);
  private readonly drafter = new Int32Array(64 * VOCAB);
  constructor(seed: number) {
    const rng = new Rng(seed);
    for (let i = 0; i < this.target.length; i++) {
      this.target[i] = Math.floor(rng.next() * VOCAB);
      this.drafter[i] = rng.next() < AGREEMENT ? this.target[i] : (this.target[i] + 1) % VOCAB;
    }
  }
  instance(role: "target" | "drafter", label: string = role): ModelInstance {
    const table = role === "target" ? this.target : this.drafter;
    return {
      label,
      vocabSize: VOCAB,
      eosToken: undefined,
      evaluate: (req: EvalRequest): Promise<PositionOutput[]> => {
        const out: PositionOutput[] = [];
        for (let p = req.from; p <= req.tokens.length; p++) out.push({ token: table[(p % 64) * VOCAB + req.tokens.at(p - 1)!] });
        return Promise.resolve(out);
      },
    };
  }
}
const pair = new TablePair(1);

/** A runtime on the real clock with no latency, over `pair` (each instance through `wrap`). */
function runtime(sp: number, events: boolean, wrap: (i: ModelInstance, role: Call["role"]) => ModelInstance = (i) => i) {
  return assembleRuntime({
    clock: "real",
    drafter: wrap(pair.instance("drafter"), "drafter"),
    target: (i) => wrap(pair.instance("target", `target-${i}`), "target"),
    vocabSize: VOCAB,
    eosToken: undefined,
    sp,
    events,
  });
}

interface Config {
  label: string;
  algo: AlgorithmName;
  lookahead?: Lookahead;
  sp: number;
}
const CONFIGS: Config[] = [
  { label: "nonsi", algo: "nonsi", sp: 1 },
  { label: "si L=5", algo: "si", lookahead: 5, sp: 1 },
  { label: "dsi L=5 SP=4", algo: "dsi", lookahead: 5, sp: 4 },
  { label: "si auto", algo: "si", lookahead: "auto", sp: 1 },
  { label: "dsi auto SP=4", algo: "dsi", lookahead: "auto", sp: 4 },
];

const options = (c: Config, tokens: number) => ({ prompt: PROMPT, maxTokens: tokens, sampling: GREEDY, verify: "greedy" as const, seed: SEED, lookahead: c.lookahead });


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

/** Records the calls of one (untimed) generation. */
async function record(c: Config, tokens: number): Promise<Call[]> {
  const calls: Call[] = [];
  const rt = runtime(c.sp, false, (i, role) => new Recorder(i, role, calls));
  await generate(c.algo, rt, options(c, tokens)).result;
  return calls;
}

/** Model time per call by role: recorded calls replayed on fresh instances without the engine (median of runs). */
async function modelCost(calls: readonly Call[]): Promise<{ target: number; drafter: number }> {
  const byRole = (role: Call["role"]) => calls.filter((x) => x.role === role);
  const time = async (list: readonly Call[]): Promise<number> => {
    if (list.length === 0) return 0;
    const inst = pair.instance(list[0].role);
    const t0 = performance.now();
    for (const { req } of list) await inst.evaluate(req);
    return (performance.now() - t0) / list.length;
  };
  const target = [];
  const drafter = [];
  for (let i = 0; i < Math.max(WARMUP, 1) + RUNS; i++) {
    target.push(await time(byRole("target")));
    drafter.push(await time(byRole("drafter")));
  }
  return { target: median(target.slice(-RUNS)), drafter: median(drafter.slice(-RUNS)) };
}

interface Timed {
  ms: number;
  output: number[];
  targetCalls: number;
  drafterCalls: number;
}

/** One generation as users run it (no recording), timed. */
async function timeRun(c: Config, tokens: number, events: boolean): Promise<Timed> {
  const rt = runtime(c.sp, events);
  const t0 = performance.now();
  const out = await generate(c.algo, rt, options(c, tokens)).result;
  return { ms: performance.now() - t0, output: out.tokens, targetCalls: out.stats.verifications, drafterCalls: out.stats.drafted };
}

/** Runs after warm-up runs covering at least --warmup-tokens tokens. */
async function timedRuns(c: Config, tokens: number, events: boolean): Promise<Timed[]> {
  const warmups = Math.max(WARMUP, Math.ceil(args["warmup-tokens"] / tokens));
  for (let i = 0; i < warmups; i++) await timeRun(c, tokens, events);
  const all = [];
  for (let i = 0; i < RUNS; i++) all.push(await timeRun(c, tokens, events));
  return all;
}

const sameTokens = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((t, i) => t === b[i]);
const us = (ms: number, tokens: number): number => (ms * 1000) / tokens;
const PLAIN = { head: [] as string[], border: [] as string[] };

// ---- stop strings and text streaming with a llama-shaped tokenizer ----

/**
 * Shaped like llama.cpp's detokenizer as node-llama-cpp exposes it: no per-token pieces,
 * tokens are byte strings (some split a character: UTF-8 decoding gives U+FFFD until the
 * rest comes), and a call's first token loses its leading space (SentencePiece).
 */
class ByteTokenizer implements Tokenizer {
  private readonly pieces: Uint8Array[] = [];
  private readonly utf8 = new TextDecoder();
  constructor() {
    const bytes = new TextEncoder().encode(" the quick brown fox, é€𝄞 jumps ");
    // VOCAB pieces of 1-3 bytes cut from the text, cycling over it.
    for (let i = 0, at = 0; i < VOCAB; i++) {
      const n = 1 + (i % 3);
      this.pieces.push(Uint8Array.from({ length: n }, (_, k) => bytes[(at + k) % bytes.length]));
      at += n;
    }
  }
  encode(): number[] {
    throw new Error("not used");
  }
  decode(tokens: readonly number[]): string {
    let length = 0;
    for (const t of tokens) length += this.pieces[t].length;
    const out = new Uint8Array(length);
    let at = 0;
    for (const [i, t] of tokens.entries()) {
      const p = this.pieces[t];
      const skip = i === 0 && p[0] === 0x20 ? 1 : 0;
      out.set(skip ? p.subarray(1) : p, at);
      at += p.length - skip;
    }
    return this.utf8.decode(out.subarray(0, at));
  }
}
const tokenizer = new ByteTokenizer();
/** Never in the output (U+0007), but their beginnings often are: text is held back and matched on every token. */
const STOPS = ["quick\u0007", "fox, é\u0007", "s \u0007"];

/** One generation as the server streams it: tokens to text as they commit, the rest from the final text. Wall ms. */
async function textRun(c: Config, tokens: number): Promise<{ ms: number; ok: boolean }> {
  const rt = runtime(c.sp, false);
  const t0 = performance.now();
  const gen = generate(c.algo, rt, { ...options(c, tokens), stopText: { strings: STOPS, decode: (t) => tokenizer.decode(t) } });
  const streamer = new TextStreamer(tokenizer);
  let printed = "";
  for await (const t of gen) printed += streamer.push(t);
  const out = await gen.result;
  printed += streamer.rest(out.text!);
  const ms = performance.now() - t0;
  return { ms, ok: out.tokens.length === tokens && printed === out.text };
}

/** µs per token at --text-short and --text-long tokens for non-SI and DSI, and the verdicts. */
async function textCase(): Promise<{ table: string; verdicts: string[]; notes: string[] }> {
  const table = new Table({ head: ["algorithm", "tokens", "runs", "µs/tok (median)"], colAligns: ["left", "right", "right", "right"], style: PLAIN });
  const verdicts: string[] = [];
  const notes: string[] = [];
  const lengths = [args["text-short"], args["text-long"]];
  for (const c of [CONFIGS[0], CONFIGS[2]]) {
    const figures: number[] = [];
    // Warm-up of at least --warmup-tokens tokens (JIT), then 3 timed runs of the short length, 1 of the long.
    for (let done = 0; done < args["warmup-tokens"]; done += lengths[0]) await textRun(c, lengths[0]);
    for (const tokens of lengths) {
      const runs = tokens === lengths[0] ? 3 : 1;
      const times = [];
      for (let i = 0; i < runs; i++) {
        const r = await textRun(c, tokens);
        if (!r.ok) notes.push(`${c.label}, text: the streamed text differs from the final text, or the generation stopped early`);
        times.push(us(r.ms, tokens));
      }
      figures.push(median(times));
      table.push([c.label, tokens, runs, median(times).toFixed(2)]);
    }
    const ratio = figures[1] / figures[0];
    verdicts.push(
      `${ratio <= args["text-flat"] ? "PASS" : "FAIL"} ${c.label}, stop strings and text streaming, llama-shaped tokenizer: µs/token at ${lengths[1]} tokens is ${ratio.toFixed(2)}x that at ${lengths[0]} (${figures[1].toFixed(2)} vs ${figures[0].toFixed(2)}), target <= ${args["text-flat"]}x`,
    );
  }
  return { table: table.toString(), verdicts, notes };
}

function printText(r: { table: string; verdicts: string[]; notes: string[] }): void {
  console.log(
    `\nStop strings (${STOPS.length}, never completed, often begun) and text streaming on, a llama-shaped tokenizer (no pieces, byte tokens), ` +
      `event log off; wall µs per token of generation + TextStreamer, median of 3 runs at ${args["text-short"]} tokens, 1 at ${args["text-long"]}, after warm-up runs of ${args["warmup-tokens"]} tokens.\n`,
  );
  console.log(r.table);
  console.log();
  for (const v of r.verdicts) console.log(v);
  for (const n of [...new Set(r.notes)]) console.log(`NOTE ${n}`);
}

async function main(): Promise<void> {
  const t0 = performance.now();
  console.log(`${cpus()[0]?.model ?? "unknown CPU"}, ${cpus().length} cores, Node ${process.version}\n`);
  if (args.only === "text") {
    printText(await textCase());
    console.log(`\nTook ${((performance.now() - t0) / 1000).toFixed(1)} s wall.`);
    return;
  }
  const notes: string[] = [];
  const verdicts: string[] = [];
  const table = new Table({
    head: ["algorithm", "tokens", "target calls", "drafter calls", "model µs/tok", "engine µs/tok (log off)", "engine µs/tok (log on)"],
    colAligns: ["left", "right", "right", "right", "right", "right", "right"],
    style: PLAIN,
  });
  const engineUs = new Map<string, number[]>();
  for (const tokens of LENGTHS) {
    let reference: number[] | undefined;
    for (const c of CONFIGS) {
      const cost = await modelCost(await record(c, tokens));
      // On the real clock DSI's slack and guard rules read measured costs, so each run makes
      // its own calls: its model time is its calls times the replayed cost per call.
      const modelMs = (r: Timed): number => r.targetCalls * cost.target + r.drafterCalls * cost.drafter;
      const cells: string[] = [];
      for (const events of [false, true]) {
        const runs = await timedRuns(c, tokens, events);
        reference ??= runs[0].output;
        for (const r of runs) if (!sameTokens(r.output, reference)) notes.push(`${c.label}: output differs from non-SI's (lossless violation)`);
        const engine = median(runs.map((r) => us(r.ms - modelMs(r), tokens)));
        engineUs.set(`${c.label} ${events}`, [...(engineUs.get(`${c.label} ${events}`) ?? []), engine]);
        if (!events) cells.push(String(median(runs.map((r) => r.targetCalls))), String(median(runs.map((r) => r.drafterCalls))), us(median(runs.map(modelMs)), tokens).toFixed(2));
        cells.push(engine.toFixed(2));
        const pass = engine < TARGET_US;
        verdicts.push(`${pass ? "PASS" : "FAIL"} ${c.label}, ${tokens} tokens, event log ${events ? "on" : "off"}: engine overhead ${engine.toFixed(2)} µs per committed token, target < ${TARGET_US} µs`);
      }
      table.push([c.label, tokens, ...cells]);
    }
  }
  for (const c of CONFIGS) {
    const flat = (events: boolean): { ratio: number; text: string } => {
      const figures = engineUs.get(`${c.label} ${events}`)!;
      const [short, long] = [figures[0], figures.at(-1)!];
      const ratio = Math.max(long, FLAT_FLOOR_US) / Math.max(short, FLAT_FLOOR_US);
      return { ratio, text: `engine µs/token at ${LENGTHS.at(-1)} tokens is ${ratio.toFixed(2)}x that at ${LENGTHS[0]} (${long.toFixed(2)} vs ${short.toFixed(2)})` };
    };
    const off = flat(false);
    verdicts.push(`${off.ratio <= FLAT ? "PASS" : "FAIL"} ${c.label}, event log off: ${off.text}, target <= ${FLAT}x`);
    // The event log keeps every event of the generation, so the garbage collector's work per
    // token grows with the output; reported, not judged.
    verdicts.push(`info ${c.label}, event log on: ${flat(true).text}`);
  }
  const rt = runtime(1, false);
  const t0long = performance.now();
  await generate("nonsi", rt, options(CONFIGS[0], args.long)).result;
  const long = { ms: performance.now() - t0long };
  const longS = long.ms / 1000;
  verdicts.push(`${longS < args["long-s"] ? "PASS" : "FAIL"} nonsi, ${args.long} tokens, event log off: ${longS.toFixed(2)} s wall (${us(long.ms, args.long).toFixed(2)} µs/token), target < ${args["long-s"]} s`);

  console.log(
    `Engine overhead on the real clock, a table-lookup pair with no latency (vocab ${VOCAB}, agreement ${AGREEMENT}, greedy), ` +
      `median of ${RUNS} runs after warm-up runs of at least ${args["warmup-tokens"]} tokens (and ${WARMUP} runs), event log off and on.`,
  );
  console.log("model = a run's calls times the cost per call of the recorded calls replayed without the engine; engine = median over runs of (total - model).\n");
  console.log(table.toString());
  console.log();
  for (const v of verdicts) console.log(v);
  for (const n of [...new Set(notes)]) console.log(`NOTE ${n}`);
  printText(await textCase());
  console.log(`\nTook ${((performance.now() - t0) / 1000).toFixed(1)} s wall.`);
}

await main();
