/**
 * A user's first command and the ones after it: `dsi generate --backend llama` on the generated
 * default pair, each run a fresh process, non-SI, auto SI and auto DSI interleaved in every
 * round, each speculative method twice: with an empty learned-costs cache (the first command on
 * a machine: `learned/` removed before the run) and with the cache the round's earlier runs
 * left (a later command). The model pair and the batch-invariance self-test's result stay
 * cached (they are not what this measures). Prints medians and ratios to non-SI, and whether
 * every run gave non-SI's tokens.
 *
 * Goals on a 2-core machine (issue 19): auto DSI and auto SI >= 0.90x of non-SI with an empty
 * cache and >= 0.97x warm. The verdict uses those ratios of medians.
 *
 * Usage: node dist/bench/coldstart.js [--rounds 5] [--tokens 64]
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { benchArgs } from "./args.js";
import { median } from "./stats.js";

const USAGE = "usage: node dist/bench/coldstart.js [--rounds 5] [--tokens 64]";
const args = benchArgs(USAGE, { rounds: { default: 5, min: 1 }, tokens: { default: 64, min: 8 } });
const CLI = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
const started = performance.now();

interface Run {
  ms: number;
  tokens: number[];
  windows: number[];
  probes: number;
}

function generate(cache: string, algo: string): Promise<Run> {
  const argv = [CLI, "generate", "--backend", "llama", "--prompt", "Hello", "--max-tokens", String(args.tokens), "--temperature", "0", "--algo", algo, "--json"];
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
  for (let round = 0; round < args.rounds; round++) {
    // Each method in turn; the order rotates so no method always runs on a warmer machine.
    const order = ["nonsi", "si", "dsi"].map((_, i, a) => a[(i + round) % a.length]);
    for (const algo of order) {
      await rm(learned, { recursive: true, force: true });
      const cold = await generate(cache, algo);
      if (algo === "nonsi") {
        runs.nonsi.push(cold);
        continue;
      }
      runs[`${algo} cold`].push(cold);
      runs[`${algo} warm`].push(await generate(cache, algo)); // the cache the cold run left
    }
  }
  const reference = runs.nonsi[0].tokens;
  const differed = Object.values(runs)
    .flat()
    .filter((r) => r.tokens.join() !== reference.join()).length;
  const base = median(runs.nonsi.map((r) => r.ms));
  console.log(`cold start: dsi generate --backend llama (default pair, default SP), "Hello", ${args.tokens} tokens, greedy, ${args.rounds} rounds, each run a fresh process`);
  const ratios: Record<string, number> = {};
  for (const [name, rs] of Object.entries(runs)) {
    const ms = median(rs.map((r) => r.ms));
    ratios[name] = base / ms;
    const plain = median(rs.map((r) => r.windows[0] ?? 0));
    console.log(
      `${name.padEnd(9)} median ${ms.toFixed(0).padStart(5)} ms  ${(base / ms).toFixed(2)}x of non-SI  (runs ${rs.map((r) => r.ms.toFixed(0)).join(", ")}; plain steps ${plain}, probes ${median(rs.map((r) => r.probes))})`,
    );
  }
  console.log(`outputs that differed from non-SI's: ${differed} of ${Object.values(runs).flat().length} (goal: none)`);
  const pass = differed === 0 && ratios["si cold"] >= 0.9 && ratios["dsi cold"] >= 0.9 && ratios["si warm"] >= 0.97 && ratios["dsi warm"] >= 0.97;
  console.log(`verdict: ${pass ? "PASS" : "FAIL"} (auto SI and DSI >= 0.90x of non-SI cold, >= 0.97x warm, by medians; the same tokens everywhere)`);
  const { getLlama } = await import("node-llama-cpp");
  const llama = await getLlama({ gpu: false, build: "never" });
  console.log(`llama.cpp ${llama.llamaCppRelease.repo} release ${llama.llamaCppRelease.release} (${llama.buildType} build): ${llama.systemInfo.trim()}`);
  console.log(`CPU: ${cpus()[0]?.model ?? "unknown"} (${cpus().length} cores). Took ${((performance.now() - started) / 1000).toFixed(1)} s.`);
} finally {
  await rm(cache, { recursive: true, force: true });
}
