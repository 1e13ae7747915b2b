/**
 * Round trip of one verification call to a worker on loopback: p50/p99 microseconds and the
 * bytes each call puts on the wire, greedy (tokens back) and rejection (float32 or float16
 * distributions back), at vocabularies 512 and 32,000 and contexts 100 and 4,000. The worker
 * is a separate process serving a table-lookup instance (no model time), so what is
 * measured is the RPC: serialisation, loopback, the worker's bookkeeping.
 *
 * Each call is one window (the last committed token and L=5 drafts) at the same context,
 * replacing the previous window (as after a rejection at its first draft): the client holds
 * the sequence the worker has and sends only the new tokens, so bytes per call should not
 * depend on the context. Verdicts: p99 < 1000 µs (--target-us) for greedy calls; request
 * bytes at context 4000 at most 4 bytes above those at context 100 (positions are varints).
 *
 * Usage: node dist/bench/worker.js [--calls 2000] [--warmup 200] [--target-us 1000]
 */
import { spawn } from "node:child_process";
import { cpus } from "node:os";
import { fileURLToPath } from "node:url";
import Table from "cli-table3";
import { benchArgs } from "./args.js";
import { quantile } from "./stats.js";
import { GREEDY, type EvalRequest, type ModelInstance, type PositionOutput } from "../src/index.js";
import { RemoteInstance } from "../src/models/remote/client.js";
import { modeToWire, workerService } from "../src/models/remote/protocol.js";
import { serveWorker } from "../src/worker/server.js";

const USAGE = "usage: node dist/bench/worker.js [--calls 2000] [--warmup 200] [--target-us 1000]";
const LOOKAHEAD = 5;

/** O(1) per position: a token from a table, or a fixed distribution. */
function tableInstance(vocab: number): ModelInstance {
  const probs = new Float64Array(vocab).fill(1 / vocab);
  return {
    label: `table-${vocab}`,
    vocabSize: vocab,
    eosToken: undefined,
    evaluate: (req: EvalRequest): Promise<PositionOutput[]> => {
      const out: PositionOutput[] = [];
      for (let p = req.from; p <= req.tokens.length; p++) out.push(req.mode === "dist" ? { token: -1, probs } : { token: (req.tokens.at(p - 1)! * 31 + p) % vocab });
      return Promise.resolve(out);
    },
  };
}

if (process.argv[2] === "--serve") {
  // The worker process: serve a table instance until stdin closes.
  const worker = await serveWorker({ instances: [tableInstance(Number(process.argv[3]))], listen: "127.0.0.1:0", backend: "table", role: "target" });
  console.log(worker.address);
  process.stdin.resume();
  process.stdin.on("end", () => void worker.close().then(() => process.exit(0)));
} else {
  const args = benchArgs(USAGE, { calls: { default: 2000, min: 10 }, warmup: { default: 200, min: 0 }, "target-us": { default: 1000, min: 1, integer: false } });
  const started = performance.now();
  const service = workerService().service;
  const table = new Table({
    head: ["vocabulary", "mode", "context", "p50 µs", "p99 µs", "request bytes", "reply bytes"],
    colAligns: ["right", "left", "right", "right", "right", "right", "right"],
    style: { head: [], border: [] },
  });
  const verdicts: string[] = [];
  for (const vocab of [512, 32_000]) {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), "--serve", String(vocab)], { stdio: ["pipe", "pipe", "inherit"] });
    const address = await new Promise<string>((resolve) => child.stdout!.once("data", (d: Buffer) => resolve(d.toString().trim())));
    const remote = await RemoteInstance.connect(address);
    const remote16 = await RemoteInstance.connect(address, { probs: "float16" });
    const bytes: Record<string, number> = {};
    for (const kind of ["greedy", "dist", "dist16"] as const) {
      const mode = kind === "greedy" ? "greedy" : "dist";
      const client = kind === "dist16" ? remote16 : remote;
      const width = kind === "dist16" ? 2 : 4;
      for (const context of [100, 4000]) {
        // A sequence of `context` tokens; each call verifies a new window after it (the last
        // committed token and L drafts), so the context stays `context` for every call.
        const seq = Array.from({ length: context }, (_, i) => (i * 7) % vocab);
        const sampling = mode === "greedy" ? GREEDY : { temperature: 1, topK: 0, topP: 1 };
        let n = 0;
        const call = async (): Promise<number> => {
          seq.length = context - 1;
          n++;
          for (let i = 0; i <= LOOKAHEAD; i++) seq.push((n * 13 + i) % vocab);
          const t0 = performance.now();
          await client.evaluate({ tokens: seq, from: context, mode, sampling, seed: 0, stream: 1 });
          return (performance.now() - t0) * 1000;
        };
        for (let i = 0; i < args.warmup; i++) await call();
        const times: number[] = [];
        for (let i = 0; i < args.calls; i++) times.push(await call());
        const q = (f: number): number => quantile(times, f);
        // Exact wire sizes of one such call, serialised as the client and worker do.
        const req = service.Evaluate.requestSerialize({ keep: context - 1, append: Array.from({ length: LOOKAHEAD + 1 }, (_, i) => i % vocab), keepHash: 123456789, from: context, mode: modeToWire(mode), sampling, seed: 0, stream: 1, probsFormat: width === 2 ? "FLOAT16" : "FLOAT32" }).length;
        const reply =
          mode === "dist"
            ? service.Evaluate.responseSerialize({ tokens: [], probs: Buffer.alloc((LOOKAHEAD + 1) * vocab * width), held: context + LOOKAHEAD, heldHash: 123456789 }).length
            : service.Evaluate.responseSerialize({ tokens: Array.from({ length: LOOKAHEAD + 1 }, (_, i) => (i * 977) % vocab), probs: Buffer.alloc(0), held: context + LOOKAHEAD, heldHash: 123456789 }).length;
        bytes[`${kind} ${context}`] = req;
        table.push([vocab, { greedy: "greedy", dist: "rejection (float32)", dist16: "rejection (float16)" }[kind], context, q(0.5).toFixed(0), q(0.99).toFixed(0), req, reply]);
        if (mode === "greedy") verdicts.push(`${q(0.99) < args["target-us"] ? "PASS" : "FAIL"} vocab ${vocab}, greedy, context ${context}: p99 ${q(0.99).toFixed(0)} µs per call, target < ${args["target-us"]} µs`);
      }
      // Positions travel as varints: 4000 takes a byte more than 100 in each of keep and from.
      const grown = bytes[`${kind} 4000`] - bytes[`${kind} 100`];
      verdicts.push(`${grown <= 4 ? "PASS" : "FAIL"} vocab ${vocab}, ${kind}: request bytes at context 4000 vs 100: ${bytes[`${kind} 4000`]} vs ${bytes[`${kind} 100`]} (target: at most the 4 bytes of wider position varints)`);
    }
    remote.close();
    remote16.close();
    child.stdin!.end();
    await new Promise((r) => child.once("exit", r));
  }
  console.log(`One verification call (a window of ${LOOKAHEAD} drafts) to a worker process on loopback, ${args.calls} calls after ${args.warmup} warm-up calls each; table-lookup instance (no model time).`);
  console.log(table.toString());
  for (const v of verdicts) console.log(v);
  console.log(`CPU: ${cpus()[0]?.model ?? "unknown"} (${cpus().length} cores). Took ${((performance.now() - started) / 1000).toFixed(1)} s.`);
}
