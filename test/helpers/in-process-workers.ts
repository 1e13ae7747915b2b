/** Workers served from this process and clients connected to them, all closed when the test file ends. */
import { after } from "node:test";
import type { ModelInstance } from "../../src/core/instance.js";
import { RemoteInstance } from "../../src/models/remote/client.js";
import { serveWorker, type RunningWorker } from "../../src/worker/server.js";

const running: RunningWorker[] = [];
const clients: RemoteInstance[] = [];
after(async () => {
  for (const c of clients) c.close();
  await Promise.all(running.map((w) => w.close()));
});

/** A synthetic-backend target worker on a free loopback port serving `instance`. */
export async function worker(instance: ModelInstance, limits: { contextSize?: number; evalChunk?: number } = {}): Promise<RunningWorker> {
  const w = await serveWorker({ instances: [instance], listen: "127.0.0.1:0", backend: "synthetic", role: "target", ...limits });
  running.push(w);
  return w;
}

export async function connect(address: string): Promise<RemoteInstance> {
  const r = await RemoteInstance.connect(address);
  clients.push(r);
  return r;
}
