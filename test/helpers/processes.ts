/** `dsi` commands as child processes: one-shot runs, and workers stopped when the test file ends. */
import "./isolated-cache.js";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { after } from "node:test";
import { fileURLToPath } from "node:url";

export const CLI = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));

/** Runs `dsi ...args` to the end, in this process (see cli.ts). */
export { dsi } from "./cli.js";

/** Runs `dsi ...args` to the end in a process of its own (a command that installs signal handlers). */
export function dsiProcess(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, ...env } }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr }),
    ),
  );
}

const started: ChildProcess[] = [];
after(() => stopChildren(started));

/** Sends SIGTERM to every child still running and waits for them. */
export function stopChildren(children: ChildProcess[]): Promise<void> {
  return Promise.all(
    children.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          c.once("exit", () => resolve());
          c.kill("SIGTERM");
        }),
    ),
  ).then(() => undefined);
}

/** Starts `dsi worker ...args`; resolves once it listens (stopped when the test file ends). */
export function startWorker(args: string[], env: Record<string, string> = {}): Promise<{ address: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [CLI, "worker", ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  started.push(child);
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /listening on (\S+)/.exec(out);
      if (m) resolve({ address: m[1], child });
    });
    child.once("exit", (code) => reject(new Error(`worker exited with ${code}: ${out}${err}`)));
  });
}

/** Whether a process id is still running. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Polls `check` every 50 ms until it holds or `ms` pass; returns whether it held. */
export async function eventually(check: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const end = performance.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (performance.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** An address nothing listens on (a port the system gave out and took back). */
export async function freeAddress(): Promise<string> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return `127.0.0.1:${port}`;
}
