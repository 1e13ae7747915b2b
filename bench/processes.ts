/**
 * The paper on processes: the ten pairs of Table 1 with every target instance in its own
 * `dsi worker` process (loopback gRPC), each worker emulating the pair's target device
 * (`--latency`), the drafter in this process with the pair's drafter latency, on the real
 * clock. For each pair: non-SI, SI (one target worker) and DSI (SP target workers), greedy,
 * on several prompts. The same configurations on the virtual clock (in-process instances)
 * give two predictions: with the pair's nominal latencies, and with the per-call costs
 * measured here before the runs (a one-token call to a worker and a drafter pass, median of
 * 30: the nominal latency plus the round trip and the wake-ups of two idle processes).
 * Verdict per row: DSI/SI and DSI/non-SI measured within --tolerance (10%) of the ratios
 * predicted from the measured per-call costs; the nominal prediction is printed beside it.
 *
 * Synthetic models (agreement = the pair's acceptance rate) make the compute negligible, so
 * what differs from the prediction is what processes add: RPC round trips, timer overshoot
 * of the emulated devices, preemption that reaches a worker over the network, and the
 * orchestrator and workers sharing this machine's cores.
 *
 * Usage: node dist/bench/processes.js [--prompts 3] [--tokens 50] [--sp 7] [--lookahead 5] [--tolerance 0.1]
 */
import { spawn, type ChildProcess } from "node:child_process";
import { cpus } from "node:os";
import { fileURLToPath } from "node:url";
import Table from "cli-table3";
import { benchArgs } from "./args.js";
import { median } from "./stats.js";
import { GREEDY, PAPER_PAIRS, RealClock, SyntheticPair, flatLatency, generate, resolveProfile, syntheticRuntime, type AlgorithmName, type LatencyProfile, type ModelInstance } from "../src/index.js";
import { withLatency } from "../src/models/latency.js";
import { RemoteInstance } from "../src/models/remote/client.js";
import { assembleRuntime } from "../src/models/runtime.js";

const USAGE = "usage: node dist/bench/processes.js [--prompts 3] [--tokens 50] [--sp 7] [--lookahead 5] [--tolerance 0.1]";
const args = benchArgs(USAGE, {
  prompts: { default: 3, min: 1 },
  tokens: { default: 50, min: 1 },
  sp: { default: 7, min: 1 },
  lookahead: { default: 5, min: 1 },
  tolerance: { default: 0.1, min: 0, integer: false },
});
const CLI = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
const VOCAB = 32;
const MODEL_SEED = 1000;
const PROMPTS = Array.from({ length: args.prompts }, (_, i) => [1 + i, (7 * i + 3) % VOCAB, (11 * i + 5) % VOCAB, 2]);
const ALGOS: AlgorithmName[] = ["nonsi", "si", "dsi"];

/** Starts a target worker emulating `profile`'s target; resolves with the process and its address. */
function startWorker(agreement: number, profile: string): Promise<{ child: ChildProcess; address: string }> {
  const child = spawn(
    process.execPath,
    [CLI, "worker", "--listen", "127.0.0.1:0", "--vocab", String(VOCAB), "--agreement", String(agreement), "--model-seed", String(MODEL_SEED), "--latency", profile, "--exit-on-stdin-close"],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /listening on (\S+)/.exec(out);
      if (m) resolve({ child, address: m[1] });
    });
    child.once("exit", (code) => reject(new Error(`worker exited with ${code}`)));
  });
}

const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

interface Times {
  nonsi: number;
  si: number;
  dsi: number;
}

async function runAll(run: (algo: AlgorithmName, prompt: number[]) => Promise<{ timeMs: number; tokens: number[] }>, check: (prompt: number[], tokens: number[]) => void): Promise<Times> {
  const times: Record<string, number[]> = { nonsi: [], si: [], dsi: [] };
  for (const prompt of PROMPTS) {
    for (const algo of ALGOS) {
      const r = await run(algo, prompt);
      check(prompt, r.tokens);
      times[algo].push(r.timeMs);
    }
  }
  return { nonsi: mean(times.nonsi), si: mean(times.si), dsi: mean(times.dsi) };
}

const options = (algo: AlgorithmName, prompt: number[]) => ({ prompt, maxTokens: args.tokens, sampling: GREEDY, ...(algo === "nonsi" ? {} : { lookahead: args.lookahead }) });

/** Median milliseconds of a one-position greedy call, 30 calls after 5 warm-up calls. */
async function perCallMs(instance: ModelInstance): Promise<number> {
  const seq = [1, 2, 3];
  const times: number[] = [];
  for (let i = 0; i < 35; i++) {
    seq.push(i % VOCAB);
    const t0 = performance.now();
    await instance.evaluate({ tokens: seq, from: seq.length, mode: "greedy", sampling: GREEDY, seed: 0, stream: 1 });
    if (i >= 5) times.push(performance.now() - t0);
  }
  return median(times);
}

interface Measured {
  real: Times;
  nominal: Times;
  calibrated: Times;
  perCall: { target: number; drafter: number };
  mismatches: number;
}

async function measure(name: string, acceptance: number, profile: LatencyProfile): Promise<Measured> {
  const pair = new SyntheticPair({ vocab: VOCAB, agreement: acceptance, seed: MODEL_SEED });
  const reference = new Map<string, number[]>();
  let mismatches = 0;
  const check = (prompt: number[], tokens: number[]): void => {
    const key = prompt.join(",");
    const want = reference.get(key);
    if (!want) reference.set(key, tokens);
    else if (want.join(",") !== tokens.join(",")) mismatches++;
  };
  // Predictions: in-process instances on the virtual clock.
  const predict = (p: LatencyProfile): Promise<Times> =>
    runAll(async (algo, prompt) => {
      const rt = syntheticRuntime({ pair, profile: p, clock: "virtual", sp: algo === "dsi" ? args.sp : 1, events: false });
      const r = await generate(algo, rt, options(algo, prompt)).result;
      return { timeMs: r.stats.timeMs, tokens: r.tokens };
    }, check);
  const nominal = await predict(profile);

  const workers = await Promise.all(Array.from({ length: args.sp }, () => startWorker(acceptance, name)));
  const targets = await Promise.all(workers.map((w) => RemoteInstance.connect(w.address)));
  try {
    const runtime = (sp: number) => {
      const clock = new RealClock();
      return assembleRuntime({ clock, drafter: withLatency(pair.instance("drafter"), clock, profile.drafter), target: (i) => targets[i], vocabSize: VOCAB, eosToken: undefined, sp, events: false });
    };
    const run = async (algo: AlgorithmName, prompt: number[]) => {
      const r = await generate(algo, runtime(algo === "dsi" ? args.sp : 1), options(algo, prompt)).result;
      return { timeMs: r.stats.timeMs, tokens: r.tokens };
    };
    await run("dsi", [9, 9, 9]); // warm-up: connections, JIT, the workers' first (prefill) calls
    const perCall = { target: await perCallMs(targets[0]), drafter: await perCallMs(withLatency(pair.instance("drafter"), new RealClock(), profile.drafter)) };
    const calibrated = await predict({ name: `${name} measured`, target: flatLatency(perCall.target), drafter: flatLatency(perCall.drafter) });
    const real = await runAll(run, check);
    return { real, nominal, calibrated, perCall, mismatches };
  } finally {
    for (const t of targets) t.close();
    for (const w of workers) w.child.stdin!.end();
    await Promise.all(workers.map((w) => (w.child.exitCode !== null ? undefined : new Promise((r) => w.child.once("exit", r)))));
  }
}

const started = performance.now();
const table = new Table({
  head: ["pair", "ms per call: nominal / measured (target, drafter)", "acc", "non-SI ms", "SI ms", "DSI ms", "DSI/SI", "DSI/non-SI", "off by"],
  colAligns: ["left", "left", "right", "right", "right", "right", "right", "right", "right"],
  style: { head: [], border: [] },
});
const verdicts: string[] = [];
const pct = (x: number): string => `${x >= 0 ? "+" : ""}${(100 * x).toFixed(1)}%`;
for (const row of PAPER_PAIRS) {
  const profile = resolveProfile(row.name)!;
  const m = await measure(row.name, row.acceptance, profile);
  const ratio = (t: Times) => ({ si: t.dsi / t.si, nonsi: t.dsi / t.nonsi });
  const [r, c, n] = [ratio(m.real), ratio(m.calibrated), ratio(m.nominal)];
  const off = { si: r.si / c.si - 1, nonsi: r.nonsi / c.nonsi - 1 };
  const worst = Math.abs(off.si) > Math.abs(off.nonsi) ? off.si : off.nonsi;
  // Each cell: measured [predicted from measured per-call costs, from nominal latencies].
  const three = (a: number, b: number, x: number, digits: number): string => `${a.toFixed(digits)} [${b.toFixed(digits)}, ${x.toFixed(digits)}]`;
  table.push([
    row.name,
    `${profile.target.tpotMs} / ${m.perCall.target.toFixed(1)}, ${profile.drafter.tpotMs} / ${m.perCall.drafter.toFixed(1)}`,
    row.acceptance.toFixed(2),
    three(m.real.nonsi, m.calibrated.nonsi, m.nominal.nonsi, 0),
    three(m.real.si, m.calibrated.si, m.nominal.si, 0),
    three(m.real.dsi, m.calibrated.dsi, m.nominal.dsi, 0),
    three(r.si, c.si, n.si, 3),
    three(r.nonsi, c.nonsi, n.nonsi, 3),
    pct(worst),
  ]);
  const ok = Math.abs(off.si) <= args.tolerance && Math.abs(off.nonsi) <= args.tolerance && m.mismatches === 0;
  verdicts.push(
    `${ok ? "PASS" : "FAIL"} ${row.name}: DSI/SI ${pct(off.si)}, DSI/non-SI ${pct(off.nonsi)} from the prediction with measured per-call costs (target: within ${pct(args.tolerance).slice(1)})${m.mismatches ? `; ${m.mismatches} outputs differ from the others` : ""}`,
  );
}
console.log(`The paper on processes: ${args.sp} target worker processes per pair, L=${args.lookahead}, ${args.tokens} tokens, ${PROMPTS.length} prompts, real clock.`);
console.log("Cells: measured [virtual-clock prediction from the measured per-call costs, from the nominal latencies].");
console.log(table.toString());
for (const v of verdicts) console.log(v);
console.log(`CPU: ${cpus()[0]?.model ?? "unknown"} (${cpus().length} cores). Took ${((performance.now() - started) / 1000).toFixed(1)} s.`);
