/**
 * Virtual-clock speedups for the ten target/drafter pairs of the paper's Table 1.
 *
 * For every pair: a synthetic pair whose greedy agreement equals the pair's acceptance
 * rate, the pair's latency profile (flat TPOT, as in the paper), greedy decoding, 50
 * tokens, averaged over N seeds (each seed: its own SyntheticPair tables and a fresh
 * runtime, hence a fresh virtual clock). Every figure printed is measured in this run and
 * is fully deterministic (virtual time only depends on the seeds).
 *
 * Measured: non-SI; SI and DSI (SP=7) at every lookahead 1..10 (shown at 1, 5, 10 and at
 * the best one); DSI with SP=1 at its best lookahead. Speedup X/DSI = time(X) / time(DSI).
 *
 * Usage: node dist/bench/speedups.js [--seeds 30] [--tokens 50] [--sp 7] [--max-lookahead 10] [--vocab 32]
 */
import { benchArgs } from "./args.js";
import Table from "cli-table3";
import {
  GREEDY,
  PAPER_PAIRS,
  SyntheticPair,
  generate,
  resolveProfile,
  syntheticRuntime,
  type AlgorithmName,
  type LatencyProfile,
  type PaperPair,
} from "../src/index.js";
import { argmax } from "../src/core/sampling.js";

const USAGE = "usage: node dist/bench/speedups.js [--seeds 30] [--tokens 50] [--sp 7] [--max-lookahead 10] [--vocab 32]";

const args = benchArgs(USAGE, {
  seeds: { default: 30, min: 1 },
  tokens: { default: 50, min: 1 },
  sp: { default: 7, min: 1 },
  "max-lookahead": { default: 10, min: 1 },
  vocab: { default: 32, min: 2 },
});
const SEEDS = args.seeds;
const TOKENS = args.tokens;
const SP = args.sp;
const MAX_L = args["max-lookahead"];
const VOCAB = args.vocab;
const PROMPT = [1, 2, 3, 4];
const SHOWN_L = [1, 5, 10].filter((l) => l <= MAX_L);
const SAME_L = Math.min(5, MAX_L);
const LOOKAHEADS = Array.from({ length: MAX_L }, (_, i) => i + 1);

interface RunResult {
  timeMs: number;
  tokens: number[];
  accepted: number;
  rejected: number;
}

let generations = 0;

async function runOnce(algo: AlgorithmName, pair: SyntheticPair, profile: LatencyProfile, seed: number, lookahead: number, sp: number): Promise<RunResult> {
  // A fresh runtime (and so a fresh virtual clock and fresh instances) for every run.
  const runtime = syntheticRuntime({ pair, profile, clock: "virtual", sp, events: false });
  const c = await generate(algo, runtime, { prompt: PROMPT, maxTokens: TOKENS, sampling: GREEDY, verify: "greedy", seed, ...(algo === "nonsi" ? {} : { lookahead }) }).result;
  generations++;
  return { timeMs: c.stats.timeMs, tokens: c.tokens, accepted: c.stats.accepted, rejected: c.stats.rejected };
}

/** Paper-style realised acceptance: over the target's greedy output, how often the drafter's greedy token matches. */
function matches(pair: SyntheticPair, output: readonly number[]): { match: number; positions: number } {
  const seq = [...PROMPT, ...output];
  let match = 0;
  for (let p = PROMPT.length; p < seq.length; p++) {
    if (argmax(pair.targetLogits(seq, p)) === argmax(pair.drafterLogits(seq, p))) match++;
  }
  return { match, positions: seq.length - PROMPT.length };
}

const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const sameTokens = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((t, i) => t === b[i]);

interface PairResult {
  row: PaperPair;
  realised: number;
  nonsi: number;
  si: number[]; // index L-1
  dsi: number[];
  dsi1: number[];
  /** Runs (seed, L) in which DSI took longer than non-SI on the same seed. */
  dsiSlowerThanNonSi: string[];
  /** Outputs that differ from non-SI's (must be none: every algorithm is lossless). */
  mismatches: string[];
}

function best(times: readonly number[]): { ms: number; l: number } {
  let l = 0;
  for (let i = 1; i < times.length; i++) if (times[i] < times[l] - 1e-9) l = i;
  return { ms: times[l], l: l + 1 };
}

async function measurePair(row: PaperPair): Promise<PairResult> {
  const profile = resolveProfile(row.name);
  if (!profile) throw new Error(`no latency profile for ${row.name}`);
  const nonsi: number[] = [];
  const si: number[][] = LOOKAHEADS.map(() => []);
  const dsi: number[][] = LOOKAHEADS.map(() => []);
  const dsi1: number[][] = LOOKAHEADS.map(() => []);
  const dsiSlowerThanNonSi: string[] = [];
  const mismatches: string[] = [];
  let match = 0;
  let positions = 0;
  for (let s = 0; s < SEEDS; s++) {
    const pair = new SyntheticPair({ vocab: VOCAB, agreement: row.acceptance, seed: 1000 + s });
    const base = await runOnce("nonsi", pair, profile, s, 1, 1);
    nonsi.push(base.timeMs);
    const m = matches(pair, base.tokens);
    match += m.match;
    positions += m.positions;
    for (const l of LOOKAHEADS) {
      const runs: [string, number[][], AlgorithmName, number][] = [
        ["si", si, "si", 1],
        [`dsi sp=${SP}`, dsi, "dsi", SP],
        ["dsi sp=1", dsi1, "dsi", 1],
      ];
      for (const [label, into, algo, sp] of runs) {
        const r = await runOnce(algo, pair, profile, s, l, sp);
        into[l - 1].push(r.timeMs);
        if (!sameTokens(r.tokens, base.tokens)) mismatches.push(`${label} L=${l} seed=${s}`);
        if (algo === "dsi" && r.timeMs > base.timeMs + 1e-6) dsiSlowerThanNonSi.push(`${label} L=${l} seed=${s}: ${r.timeMs.toFixed(1)} > ${base.timeMs.toFixed(1)} ms`);
      }
    }
  }
  return {
    row,
    realised: match / positions,
    nonsi: mean(nonsi),
    si: si.map(mean),
    dsi: dsi.map(mean),
    dsi1: dsi1.map(mean),
    dsiSlowerThanNonSi,
    mismatches,
  };
}

/** No ANSI colours: the output goes to logs and reports. */
const PLAIN = { head: [] as string[], border: [] as string[] };
const fmt = (x: number, d = 1): string => x.toFixed(d);
const ratio = (x: number): string => `${x.toFixed(2)}x`;
const shortName = (r: PaperPair): string => `${r.target}/${r.drafter} ${r.dataset}`;

async function main(): Promise<void> {
  const t0 = performance.now();
  const results: PairResult[] = [];
  for (const row of PAPER_PAIRS) results.push(await measurePair(row));
  const elapsed = (performance.now() - t0) / 1000;

  console.log(
    `DSI speedups on the virtual clock: ten pairs of the paper's Table 1, ${TOKENS} tokens, greedy, ` +
      `synthetic vocab ${VOCAB}, mean over ${SEEDS} seeds; SI and DSI at lookahead 1..${MAX_L}, DSI with SP=${SP} unless noted.`,
  );
  console.log("Speedup X/DSI = mean time of X / mean time of DSI (>1: DSI faster).\n");

  const main = new Table({
    head: [
      "pair",
      "accept",
      "realised",
      "non-SI ms",
      "best SI ms (L)",
      `best DSI ms (L)`,
      `DSI/SI L=${SAME_L}`,
      "DSI/SI best",
      "DSI/non-SI",
      "paper DSI/SI",
    ],
    colAligns: ["left", "right", "right", "right", "right", "right", "right", "right", "right", "right"],
    style: PLAIN,
  });
  for (const r of results) {
    const bs = best(r.si);
    const bd = best(r.dsi);
    main.push([
      shortName(r.row),
      fmt(r.row.acceptance, 2),
      fmt(r.realised, 3),
      fmt(r.nonsi),
      `${fmt(bs.ms)} (${bs.l})`,
      `${fmt(bd.ms)} (${bd.l})`,
      ratio(r.si[SAME_L - 1] / r.dsi[SAME_L - 1]),
      ratio(bs.ms / bd.ms),
      ratio(r.nonsi / bd.ms),
      ratio(r.row.paperDsiOverSi),
    ]);
  }
  console.log(main.toString());

  const detail = new Table({
    head: [
      "pair",
      ...SHOWN_L.flatMap((l) => [`SI L=${l}`, `DSI L=${l}`, `DSI/SI L=${l}`]),
      "DSI SP=1 best (L)",
      "SI/DSI-SP1",
      `SP>=ceil(t/(L*d)) from L`,
    ],
    colAligns: ["left", ...SHOWN_L.flatMap((): "right"[] => ["right", "right", "right"]), "right", "right", "right"],
    style: PLAIN,
  });
  for (const r of results) {
    const b1 = best(r.dsi1);
    const bs = best(r.si);
    const enough = LOOKAHEADS.find((l) => SP >= Math.ceil(r.row.targetMs / (l * r.row.drafterMs)));
    detail.push([
      shortName(r.row),
      ...SHOWN_L.flatMap((l) => [fmt(r.si[l - 1]), fmt(r.dsi[l - 1]), ratio(r.si[l - 1] / r.dsi[l - 1])]),
      `${fmt(b1.ms)} (${b1.l})`,
      ratio(bs.ms / b1.ms),
      enough === undefined ? "never" : String(enough),
    ]);
  }
  console.log(`\nSame-lookahead detail (mean ms; DSI with SP=${SP}); SI/DSI-SP1 is best SI over best DSI with one target:`);
  console.log(detail.toString());

  // Checks of the paper's guarantees, on the numbers above.
  const bestRatios = results.map((r) => best(r.si).ms / best(r.dsi).ms);
  const paperRatios = results.map((r) => r.row.paperDsiOverSi);
  const notes: string[] = [];
  for (const r of results) {
    for (const m of r.mismatches) notes.push(`LOSSLESS VIOLATION ${shortName(r.row)}: ${m} differs from non-SI output`);
    for (const m of r.dsiSlowerThanNonSi) notes.push(`DSI slower than non-SI ${shortName(r.row)}: ${m}`);
    for (const l of LOOKAHEADS) {
      const enough = SP >= Math.ceil(r.row.targetMs / (l * r.row.drafterMs));
      if (enough && r.dsi[l - 1] > r.si[l - 1] + 1e-6) {
        notes.push(`DSI slower than SI in mean with enough targets ${shortName(r.row)} L=${l}: DSI ${fmt(r.dsi[l - 1], 2)} > SI ${fmt(r.si[l - 1], 2)} ms`);
      }
    }
    if (best(r.dsi).ms > Math.min(best(r.si).ms, r.nonsi) + 1e-6) notes.push(`best DSI slower than min(best SI, non-SI) for ${shortName(r.row)}`);
  }
  const sameLSlower = results.flatMap((r) =>
    LOOKAHEADS.filter((l) => r.dsi[l - 1] > r.si[l - 1] + 1e-6).map((l) => `${shortName(r.row)} L=${l} (${fmt(r.si[l - 1] / r.dsi[l - 1], 3)}x)`),
  );

  console.log(
    `\nSummary: DSI/SI best-vs-best ${ratio(Math.min(...bestRatios))} .. ${ratio(Math.max(...bestRatios))} ` +
      `(paper, lookahead per row unreported: ${ratio(Math.min(...paperRatios))} .. ${ratio(Math.max(...paperRatios))}); ` +
      `DSI/SI at L=${SAME_L}: ${ratio(Math.min(...results.map((r) => r.si[SAME_L - 1] / r.dsi[SAME_L - 1])))} .. ${ratio(Math.max(...results.map((r) => r.si[SAME_L - 1] / r.dsi[SAME_L - 1])))}; ` +
      `best DSI/non-SI: ${ratio(Math.min(...results.map((r) => r.nonsi / best(r.dsi).ms)))} .. ${ratio(Math.max(...results.map((r) => r.nonsi / best(r.dsi).ms)))}.`,
  );
  console.log(
    `Same-lookahead cases where mean DSI (SP=${SP}) is slower than SI: ${sameLSlower.length === 0 ? "none" : sameLSlower.join(", ")}` +
      (sameLSlower.length > 0 ? " (allowed: below the SP bound, or within seed noise at equal cost)" : ""),
  );
  if (notes.length === 0) {
    console.log("Checks: all outputs equal non-SI's (lossless); no DSI run slower than non-SI on its seed; DSI never slower than SI in mean where SP suffices.");
  } else {
    console.log(`Checks: ${notes.length} problem(s):`);
    for (const n of notes.slice(0, 40)) console.log(`  ${n}`);
    if (notes.length > 40) console.log(`  ... and ${notes.length - 40} more`);
  }
  console.log(`\n${generations} generations on the virtual clock in ${elapsed.toFixed(1)} s wall (${((elapsed * 1000) / generations).toFixed(2)} ms per generation).`);
}

await main();
