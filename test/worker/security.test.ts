/**
 * Who may call a worker: a token on every call (refused without it, also for Info and Stats),
 * a token required beyond loopback, and TLS with a certificate the client trusts.
 */
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createServer, connect, type Socket } from "node:net";
import { before, test } from "node:test";
import { generate as selfSigned } from "selfsigned";
import { generate } from "../../src/algorithms/generate.js";
import { PROFILES } from "../../src/models/latency.js";
import { RemoteInstance } from "../../src/models/remote/client.js";
import { clusterBackend } from "../../src/models/remote/cluster.js";
import { makeClock } from "../../src/runtime/clock.js";
import { dsi, startWorker } from "../helpers/processes.js";
import { tempDir } from "../helpers/temp.js";

const SPEC = ["--vocab", "16", "--model-seed", "5", "--agreement", "0.7"];
const TOKEN = "s3cret-token-for-tests-0123456789";
const GREEDY = { mode: "greedy" as const, sampling: { temperature: 0, topK: 0, topP: 1 }, seed: 0, stream: 1 };
let dir: string;
let cert: string;
let key: string;

before(async () => {
  dir = await tempDir("security");
  const pems = await selfSigned([{ name: "commonName", value: "localhost" }], {
    keyType: "ec",
    curve: "P-256",
    extensions: [{ name: "subjectAltName", altNames: [{ type: 7, ip: "127.0.0.1" }, { type: 2, value: "localhost" }] }],
  });
  cert = join(dir, "cert.pem");
  key = join(dir, "key.pem");
  await writeFile(cert, pems.cert);
  await writeFile(key, pems.private);
});

test("a worker with a token refuses every call without it or with another one", async () => {
  const { address } = await startWorker(["--listen", "127.0.0.1:0", ...SPEC], { DSI_TOKEN: TOKEN });
  for (const token of [undefined, "not-the-token-but-long-enough", `${TOKEN}x`]) {
    await assert.rejects(RemoteInstance.connect(address, { token }), (err: Error) => err.name === "WorkerError" && /refused: missing or wrong token/.test(err.message));
  }
  const ok = await RemoteInstance.connect(address, { token: TOKEN });
  try {
    assert.equal(ok.vocabSize, 16);
    assert.equal((await ok.evaluate({ tokens: [1, 2, 3], from: 3, ...GREEDY })).length, 1);
    assert.equal((await ok.stats()).calls, 1);
  } finally {
    ok.close();
  }
});

test("beyond loopback: no start without a token; with one it serves and checks it", async () => {
  const refused = await dsi(["worker", "--listen", "0.0.0.0:0", ...SPEC], { DSI_TOKEN: "" });
  assert.equal(refused.code, 2);
  assert.match(refused.stderr.trim(), /^error: --listen: 0\.0\.0\.0 is not a loopback address; a worker reachable from other hosts needs a token \(--token or DSI_TOKEN\)/);
  const short = await dsi(["worker", "--token", "short", ...SPEC]);
  assert.equal(short.code, 2);
  assert.match(short.stderr, /--token: give at least 16 characters/);

  const { address } = await startWorker(["--listen", "0.0.0.0:0", "--token", TOKEN, ...SPEC]);
  const port = address.split(":").at(-1);
  await assert.rejects(RemoteInstance.connect(`127.0.0.1:${port}`), /refused/);
  const ok = await RemoteInstance.connect(`127.0.0.1:${port}`, { token: TOKEN });
  ok.close();
});

test("TLS: a client that trusts the worker's certificate is served; a plain-text client is not", async () => {
  const { address } = await startWorker(["--listen", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key, "--token", TOKEN, ...SPEC]);
  const { readFile } = await import("node:fs/promises");
  const secure = await RemoteInstance.connect(address, { token: TOKEN, tls: { ca: await readFile(cert) } });
  try {
    assert.equal((await secure.evaluate({ tokens: [4, 5], from: 1, ...GREEDY })).length, 2);
  } finally {
    secure.close();
  }
  await assert.rejects(RemoteInstance.connect(address, { token: TOKEN, connectTimeoutMs: 2000 }), (err: Error) => err.name === "WorkerError");
  // An untrusted certificate (system roots only) is refused by the client.
  await assert.rejects(RemoteInstance.connect(address, { token: TOKEN, tls: {}, connectTimeoutMs: 2000 }), (err: Error) => err.name === "WorkerError");

  // Through a cluster file: the CA path relative to the file, the token from DSI_TOKEN.
  const file = join(dir, "cluster.yaml");
  await writeFile(file, `drafter: { backend: synthetic, vocab: 16, modelSeed: 5, agreement: 0.7 }\ntargets:\n  - address: ${address}\n    tls: { ca: cert.pem }\n`);
  const viaCluster = await dsi(["generate", "--cluster", file, "--max-tokens", "12", "--json"], { DSI_TOKEN: TOKEN });
  assert.equal(viaCluster.code, 0, viaCluster.stderr);
  const local = await dsi(["generate", "--algo", "nonsi", ...SPEC, "--max-tokens", "12", "--json"]);
  assert.deepEqual(JSON.parse(viaCluster.stdout).completions[0].tokens, JSON.parse(local.stdout).completions[0].tokens);
  const noToken = await dsi(["generate", "--cluster", file, "--max-tokens", "4"], { DSI_TOKEN: "" });
  assert.equal(noToken.code, 2);
  assert.match(noToken.stderr, /^error: cluster file .*cluster\.yaml: no target worker answers: worker 127\.0\.0\.1:\d+: refused: missing or wrong token/);
});

test("TLS flags: both files, readable PEM", async () => {
  const one = await dsi(["worker", "--tls-cert", cert, ...SPEC]);
  assert.equal(one.code, 2);
  assert.match(one.stderr, /--tls-cert and --tls-key go together/);
  const missing = await dsi(["worker", "--tls-cert", join(dir, "nope.pem"), "--tls-key", key, ...SPEC]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /--tls-cert: cannot read .*nope\.pem \(ENOENT\)/);
});

/** A TCP relay to `target` that counts the connections made through it. */
async function countingRelay(target: string): Promise<{ address: string; connections: () => number; close: () => Promise<void> }> {
  const [host, port] = [target.slice(0, target.lastIndexOf(":")), Number(target.slice(target.lastIndexOf(":") + 1))];
  const sockets = new Set<Socket>();
  let connections = 0;
  const server = createServer((client) => {
    connections++;
    const upstream = connect(port, host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => undefined);
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    address: `127.0.0.1:${(server.address() as { port: number }).port}`,
    connections: () => connections,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

test("TLS: a worker's sequences share one connection, as without TLS (before, each sequence's client opened its own)", async () => {
  const { address } = await startWorker(["--listen", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key, "--token", TOKEN, "--sequences", "3", ...SPEC]);
  const relay = await countingRelay(address);
  const backend = await clusterBackend({ drafter: { backend: "synthetic", vocab: 16, modelSeed: 5, agreement: 0.7 }, targets: [{ address: relay.address, tls: { ca: cert } }], sequences: 3 }, "cluster file", { token: TOKEN });
  try {
    const rt = await backend.runtime(makeClock("real"), 1, PROFILES.get("none")!);
    // Three generations at once: one on each sequence.
    await Promise.all([1, 2, 3].map((i) => generate("nonsi", rt, { prompt: [i, 2, 3], maxTokens: 8 }).result));
    assert.equal(rt.pool.busy, 0);
    rt.close();
    assert.equal(relay.connections(), 1);
  } finally {
    await backend.close();
    await relay.close();
  }
});
