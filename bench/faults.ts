/**
 * Faults as a user meets them: `dsi cluster` with llama target workers on the generated default
 * pair, and `dsi generate --cluster` runs (each a fresh process) while a chaos loop kills random
 * target workers (SIGKILL; `dsi cluster` starts them again at their address) at random moments,
 * and pauses one (SIGSTOP) past the call deadline before resuming it. Every output must equal
 * non-SI's (`dsi generate --algo nonsi` on the same pair, in process) and every run must exit 0.
 * The drafter runs in the orchestrator here (the cluster file's llama drafter), so only targets
 * are killed.
 *
 * Prints: kills, pauses, restarts, rejoins (a lost worker taken back into a running
 * generation's pool), re-dispatches (tasks lost under a run and dispatched again, from each
 * run's trace), outputs that differed (goal: none), runs that failed, and the time
 * lost per kill (mean run time under chaos minus the mean without faults, per kill).
 *
 * Usage: node dist/bench/faults.js [--runs 10] [--targets 3] [--tokens 128] [--call-timeout 3] [--seed 1]
 */
import { execFile, execFileSync, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { benchArgs } from "./args.js";
import { FastRng } from "../src/core/random.js";
import { DEFAULT_PAIR, defaultCacheDir, ensurePair } from "../src/models/gguf/llama-model.js";
import { median } from "./stats.js";

const USAGE = "usage: node dist/bench/faults.js [--runs 10] [--targets 3] [--tokens 128] [--call-timeout 3] [--seed 1]";
const args = benchArgs(USAGE, {
  runs: { default: 10, min: 1 },
  targets: { default: 3, min: 2 },
  tokens: { default: 128, min: 16 },
  "call-timeout": { default: 3, min: 1 },
  seed: { default: 1, min: 0 },
});
const CLI = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
const PROMPTS = ["Hello", "the quick brown fox", "once upon a time"];
const started = performance.now();

interface Run {
  code: number;
  tokens: number[] | undefined;
  ms: number;
  lost: number;
  /** Lost targets taken back into the run's pool (its stderr: "is back in the pool"). */
  rejoins: number;
  stderr: string;
}

function dsi(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(process.execPath, [CLI, ...argv], { maxBuffer: 64 * 2 ** 20 }, (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr })),
  );
}

const dir = await mkdtemp(join(tmpdir(), "dsi-faults-"));
const pair = await ensurePair(defaultCacheDir(), DEFAULT_PAIR);
const clusterFile = join(dir, "cluster.json");
const cluster = spawn(
  process.execPath,
  [CLI, "cluster", "--backend", "llama", "--target", pair.target, "--drafter", pair.drafter, "--targets", String(args.targets), "--latency", "vicuna-13b/vicuna-68m", "--out", clusterFile],
  { stdio: ["pipe", "pipe", "pipe"] },
);
let clusterLog = "";
cluster.stdout.on("data", (d: Buffer) => (clusterLog += d.toString()));
cluster.stderr.on("data", (d: Buffer) => (clusterLog += d.toString()));
const stopCluster = (): void => void cluster.kill("SIGTERM");
process.on("exit", stopCluster);

try {
  // Non-SI's tokens per prompt, on the same pair in one process (no workers).
  const reference = new Map<string, number[]>();
  let evalChunk = "";
  for (const prompt of PROMPTS) {
    const r = await dsi(["generate", "--backend", "llama", "--target", pair.target, "--drafter", pair.drafter, "--algo", "nonsi", "--prompt", prompt, "--max-tokens", String(args.tokens), "--temperature", "0", "--json"]);
    if (r.code !== 0) throw new Error(`reference run failed: ${r.stderr}`);
    const report = JSON.parse(r.stdout) as { config: { evalChunk?: { target?: { chunk: number; invariantUpTo?: number; firstDiffering?: number } } }; completions: { tokens: number[] }[] };
    reference.set(prompt, report.completions[0].tokens);
    const e = report.config.evalChunk?.target;
    if (e) evalChunk = `${e.chunk} tokens (invariant up to ${e.invariantUpTo ?? "?"}${e.firstDiffering ? `, differs at ${e.firstDiffering}` : ""})`;
  }
  const deadline = performance.now() + 600_000;
  while (!/wrote /.test(clusterLog)) {
    if (cluster.exitCode !== null || performance.now() > deadline) throw new Error(`dsi cluster did not start: ${clusterLog}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  // A short call deadline, so a paused worker is a lost one.
  const spec = JSON.parse(await readFile(clusterFile, "utf8")) as Record<string, unknown>;
  await writeFile(clusterFile, JSON.stringify({ ...spec, timeouts: { call: args["call-timeout"] } }));

  const workers = (): number[] => {
    try {
      return execFileSync("pgrep", ["-P", String(cluster.pid)], { encoding: "utf8" }).trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  };
  const generateRun = async (i: number): Promise<Run> => {
    const prompt = PROMPTS[i % PROMPTS.length];
    const trace = join(dir, `trace-${i}.json`);
    const t0 = performance.now();
    const r = await dsi(["generate", "--cluster", clusterFile, "--algo", "dsi", "--lookahead", i % 2 === 0 ? "3" : "auto", "--prompt", prompt, "--max-tokens", String(args.tokens), "--temperature", "0", "--json", "--trace", trace]);
    const ms = performance.now() - t0;
    const rejoins = (r.stderr.match(/is back in the pool/g) ?? []).length;
    if (r.code !== 0) return { code: r.code, tokens: undefined, ms, lost: 0, rejoins, stderr: r.stderr };
    const tokens = (JSON.parse(r.stdout) as { completions: { tokens: number[] }[] }).completions[0].tokens;
    const events = (JSON.parse(await readFile(trace, "utf8")) as { traceEvents: { cat?: string }[] }).traceEvents;
    return { code: 0, tokens, ms, lost: events.filter((e) => e.cat === "task-lost").length, rejoins, stderr: r.stderr };
  };
  const same = (i: number, run: Run): boolean => JSON.stringify(run.tokens) === JSON.stringify(reference.get(PROMPTS[i % PROMPTS.length]));

  // Without faults: the time a run takes.
  const calm: Run[] = [];
  for (let i = 0; i < Math.min(args.runs, 4); i++) calm.push(await generateRun(i));
  const calmMs = median(calm.map((r) => r.ms));

  // Under chaos: one or two actions per run at random moments within the calm run's time.
  const rng = new FastRng(args.seed);
  let kills = 0;
  let pauses = 0;
  const chaos: Run[] = [];
  const restartsBefore = (clusterLog.match(/is back at/g) ?? []).length;
  for (let i = 0; i < args.runs; i++) {
    const run = generateRun(i);
    const actions = 1 + Math.floor(rng.next() * 2);
    for (let a = 0; a < actions; a++) {
      await new Promise((r) => setTimeout(r, (0.1 + 0.4 * rng.next()) * calmMs));
      const pids = workers();
      if (pids.length < 2) continue; // one target stays
      const pid = pids[Math.floor(rng.next() * pids.length)];
      if (rng.next() < 0.25) {
        pauses++;
        process.kill(pid, "SIGSTOP");
        setTimeout(() => process.kill(pid, "SIGCONT"), (args["call-timeout"] + 1) * 1000);
      } else {
        kills++;
        process.kill(pid, "SIGKILL");
      }
    }
    chaos.push(await run);
    // Let restarted workers come back before the next run.
    await new Promise((r) => setTimeout(r, (args["call-timeout"] + 2) * 1000));
  }
  const restarts = (clusterLog.match(/is back at/g) ?? []).length - restartsBefore;
  const failed = chaos.filter((r) => r.code !== 0);
  const differed = chaos.filter((r, i) => r.code === 0 && !same(i, r));
  const calmDiffered = calm.filter((r, i) => !same(i, r)).length;
  const chaosMs = chaos.reduce((s, r) => s + r.ms, 0) / chaos.length;
  const calmMean = calm.reduce((s, r) => s + r.ms, 0) / calm.length;

  console.log(`faults: ${args.runs} dsi generate --cluster runs of ${args.tokens} tokens over ${args.targets} llama target workers (default pair), greedy, call deadline ${args["call-timeout"]} s`);
  console.log(`eval chunk: ${evalChunk}`);
  console.log(`without faults: ${calm.length} runs, median ${calmMs.toFixed(0)} ms, outputs that differed ${calmDiffered}`);
  console.log(`chaos: kills ${kills}, pauses ${pauses}, restarts ${restarts} (dsi cluster), rejoins ${chaos.reduce((s, r) => s + r.rejoins, 0)} (into a running generation's pool), re-dispatches ${chaos.reduce((s, r) => s + r.lost, 0)}`);
  console.log(`outputs that differed from non-SI: ${differed.length} of ${chaos.length - failed.length} (goal: none); runs that failed: ${failed.length}`);
  for (const f of failed) console.log(`  exit ${f.code}: ${f.stderr.trim().split("\n").at(-1)}`);
  console.log(`time lost per kill or pause: ${kills + pauses > 0 ? (((chaosMs - calmMean) * chaos.length) / (kills + pauses)).toFixed(0) : "-"} ms (mean run ${chaosMs.toFixed(0)} ms under chaos, ${calmMean.toFixed(0)} ms without)`);
  console.log(`verdict: ${differed.length === 0 && failed.length === 0 && calmDiffered === 0 ? "PASS" : "FAIL"} (every output non-SI's, every run exit 0)`);
  const { getLlama } = await import("node-llama-cpp");
  const llama = await getLlama({ gpu: false, build: "never" });
  console.log(`llama.cpp ${llama.llamaCppRelease.repo} release ${llama.llamaCppRelease.release} (${llama.buildType} build): ${llama.systemInfo.trim()}`);
  console.log(`CPU: ${cpus()[0]?.model ?? "unknown"} (${cpus().length} cores). Took ${((performance.now() - started) / 1000).toFixed(1)} s.`);
} finally {
  stopCluster();
  await new Promise((r) => (cluster.exitCode !== null ? r(undefined) : cluster.once("exit", r)));
  await rm(dir, { recursive: true, force: true });
}
