/**
 * Runs a test's heavy, pure computation (virtual-time engine runs, thousands of samples) in
 * worker threads. The test runner tracks every promise of its own thread with async hooks,
 * which made such runs 2.5x slower than in a plain script; worker threads are outside that
 * tracking and use every core. The function must be exported by `module`, take and return
 * what structured cloning carries (no functions), and do nothing but compute.
 */
import { availableParallelism } from "node:os";
import { after } from "node:test";
import { Piscina } from "piscina";

let pool: Piscina | undefined;
after(async () => {
  await pool?.destroy();
});

/** `(await import(module))[name](...args)` in a worker thread. */
export function offThread<T>(module: URL, name: string, ...args: unknown[]): Promise<T> {
  pool ??= new Piscina({ filename: new URL("./off-thread-task.js", import.meta.url).href, maxThreads: availableParallelism(), idleTimeout: 60_000 });
  return pool.run({ module: module.href, name, args }) as Promise<T>;
}
