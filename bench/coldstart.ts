/**
 * A user's first command and the ones after it: `dsi generate --backend llama` on the generated
 * default pair, each run a fresh process, auto SI and auto DSI in every round, each twice: with
 * an empty learned-costs cache (the first command on a machine: `learned/` removed before the
 * run) and with the cache the cold run left (a later command), each right after a non-SI run. The model pair and the batch-invariance self-test's result stay
 * cached (they are not what this measures). Prints medians, and each method's speed against
 * non-SI as the median over rounds of its time against the non-SI run just before it, and
 * whether every run gave non-SI's tokens.
 *
 * Goals on a 2-core machine (issue 19): auto DSI and auto SI >= 0.90x of non-SI with an empty
 * cache and >= 0.97x warm. The verdict uses those paired ratios.
 *
 * Usage: node dist/bench/coldstart.js [--rounds 7] [--tokens 64]
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { benchArgs } from "./args.js";
import { median } from "./stats.js";

const USAGE = "usage: node dist/bench/coldstart.js [--rounds 7] [--tokens 64]";
const args = benchArgs(USAGE, { rounds: { default: 7, min: 1 }, tokens: { default: 64, min: 8 } });
const CLI = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
const started = performance.now();

interface Run {
  ms: number;
  tokens: number[];
  windows: number[];
  probes: number;
}

/** `dsi generate` in a fresh process; non-SI's runs neither read nor write the learned costs (they are the reference). */
function generate(cache: string, algo: string): Promise<Run> {
  const argv = [CLI, "generate", "--backend", "llama", "--prompt", "Hello", "--max-tokens", String(args.tokens), "--temperature", "0", "--algo", algo, "--json"];
  if (algo === "nonsi") argv.push("--no-learned-cache");
  return new Promise((resolve, reject) =>
    execFile(process.execPath, argv, { env: { ...process.env, DSI_CACHE_DIR: cache }, maxBuffer: 16 * 2 ** 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`dsi generate --algo ${algo} failed: ${stderr.trim().split("\n").at(-1)}`));
      const r = JSON.parse(stdout) as { completions: { tokens: number[]; stats: { timeMs: number; windows: number[]; probes: number } }[] };
      const c = r.completions[0];
      resolve({ ms: c.stats.timeMs, tokens: c.tokens, windows: c.stats.windows, probes: c.stats.probes });
    }),
  );
}

const cache = await mkdtemp(join(tmpdir(), "dsi-coldstart-"));
const learned = join(cache, "learned");
try {
  // Set-up, not measured: the default pair and the self-test's result in this cache.
  await generate(cache, "nonsi");
  const runs: Record<string, Run[]> = { nonsi: [], "si cold": [], "si warm": [], "dsi cold": [], "dsi warm": [] };
  // Each speculative run right after a non-SI run, its pair (this machine's speed drifts by
  // 10-20% within a minute, more than the effects measured).
  const pairs: Record<string, Run[]> = { nonsi: [], "si cold": [], "si warm": [], "dsi cold": [], "dsi warm": [] };
  const paired = async (name: string, algo: string): Promise<void> => {
    const reference = await generate(cache, "nonsi");
    runs.nonsi.push(reference);
    pairs.nonsi.push(reference);
    runs[name].push(await generate(cache, algo));
    pairs[name].push(reference);
  };
  for (let round = 0; round < args.rounds; round++) {
    // SI and DSI in turn; the order rotates so neither always runs on a warmer machine.
    for (const algo of round % 2 === 0 ? ["si", "dsi"] : ["dsi", "si"]) {
      await rm(learned, { recursive: true, force: true });
      await paired(`${algo} cold`, algo);
      await paired(`${algo} warm`, algo); // the cache the cold run left
    }
  }
  const reference = runs.nonsi[0].tokens;
  const differed = Object.values(runs)
    .flat()
    .filter((r) => r.tokens.join() !== reference.join()).length;
  console.log(`cold start: dsi generate --backend llama (default pair, default SP), "Hello", ${args.tokens} tokens, greedy, ${args.rounds} rounds, each run a fresh process`);
  const ratios: Record<string, number> = {};
  for (const [name, rs] of Object.entries(runs)) {
    const ms = median(rs.map((r) => r.ms));
    ratios[name] = median(rs.map((r, i) => pairs[name][i].ms / r.ms));
    const plain = median(rs.map((r) => r.windows[0] ?? 0));
    console.log(
      `${name.padEnd(9)} median ${ms.toFixed(0).padStart(5)} ms  ${ratios[name].toFixed(2)}x of non-SI  (${name === "nonsi" ? `${rs.length} runs, ${Math.min(...rs.map((r) => r.ms)).toFixed(0)}-${Math.max(...rs.map((r) => r.ms)).toFixed(0)} ms` : `runs ${rs.map((r) => r.ms.toFixed(0)).join(", ")}`}; plain steps ${plain}, probes ${median(rs.map((r) => r.probes))})`,
    );
  }
  console.log(`outputs that differed from non-SI's: ${differed} of ${Object.values(runs).flat().length} (goal: none)`);
  const pass = differed === 0 && ratios["si cold"] >= 0.9 && ratios["dsi cold"] >= 0.9 && ratios["si warm"] >= 0.97 && ratios["dsi warm"] >= 0.97;
  console.log(`verdict: ${pass ? "PASS" : "FAIL"} (auto SI and DSI >= 0.90x of non-SI cold, >= 0.97x warm, by the median of paired ratios; the same tokens everywhere)`);
  const { getLlama } = await import("node-llama-cpp");
  const llama = await getLlama({ gpu: false, build: "never" });
  console.log(`llama.cpp ${llama.llamaCppRelease.repo} release ${llama.llamaCppRelease.release} (${llama.buildType} build): ${llama.systemInfo.trim()}`);
  console.log(`CPU: ${cpus()[0]?.model ?? "unknown"} (${cpus().length} cores). Took ${((performance.now() - started) / 1000).toFixed(1)} s.`);
} finally {
  await rm(cache, { recursive: true, force: true });
}
