/**
 * `dsi ...args` in this process: `main` (src/cli/program.ts) with its output captured, as a
 * user would see it from the binary (exit code, stdout, stderr) without starting Node again.
 * Tests that need a process of their own (signals, stdin, a fresh cache) use processes.ts.
 */
import "./isolated-cache.js";
import { Writable } from "node:stream";
import { main } from "../../src/cli/program.js";

/** A stream that keeps what is written to it. */
export class Capture extends Writable {
  text = "";
  override _write(chunk: Buffer | string, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    this.text += chunk.toString();
    done();
  }
}

export async function dsi(args: readonly string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await main(args, { stdout, stderr, env: { ...process.env, ...env } });
  return { code, stdout: stdout.text, stderr: stderr.text };
}
