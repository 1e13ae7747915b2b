/** Flag parsers: each rejects bad input with a message naming what is allowed. */
import { open, stat, unlink, writeFile } from "node:fs/promises";
import { InvalidArgumentError } from "commander";

export function intInRange(min: number, max: number): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!/^-?\d+$/.test(v.trim()) || n < min || n > max) throw new InvalidArgumentError(`must be an integer in ${min}..${max}.`);
    return n;
  };
}

/** `auto` or an integer in min..max (the lookahead). */
export function autoOrIntInRange(min: number, max: number): (v: string) => number | "auto" {
  const int = intInRange(min, max);
  return (v) => {
    if (v.trim() === "auto") return "auto";
    try {
      return int(v);
    } catch {
      throw new InvalidArgumentError(`must be auto or an integer in ${min}..${max}.`);
    }
  };
}

function num(v: string): number {
  const n = v.trim() === "" ? NaN : Number(v);
  if (!Number.isFinite(n)) throw new InvalidArgumentError("must be a number.");
  return n;
}

/** A number in [min, max], or (min, max] when `openMin`. */
export function numberInRange(min: number, max: number, openMin = false): (v: string) => number {
  return (v) => {
    const n = num(v);
    if (openMin ? !(n > min && n <= max) : !(n >= min && n <= max)) {
      throw new InvalidArgumentError(`must be a number in ${openMin ? "(" : "["}${min}, ${max}].`);
    }
    return n;
  };
}

/** A usage error: printed as one line, exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

export { MAX_SEED } from "../algorithms/option-spec.js";
/** Longest modelled latency a profile may give (a day): beyond it, timers overflow and nothing is learnt. */
export const MAX_LATENCY_MS = 86_400_000;

/** A path or text flag that must not be empty. */
export function nonEmpty(flag: string): (v: string) => string {
  return (v) => {
    if (v.trim() === "") throw new InvalidArgumentError(`${flag} must not be empty.`);
    return v;
  };
}

/** Repeatable text flag; empty values are refused (they would match nothing). */
export function collectNonEmpty(value: string, previous: string[] = []): string[] {
  if (value === "") throw new InvalidArgumentError("must not be empty (an empty stop sequence matches nothing).");
  return [...previous, value];
}

function pathError(flag: string, path: string, err: unknown): UsageError {
  const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  return new UsageError(`${flag}: cannot write ${path} (${code}); give a writable file path`);
}

/**
 * Checks before any work that `path` can be written: not a directory, its folder exists, and
 * it opens for writing (a file that did not exist is removed again).
 */
export async function checkWritable(path: string, flag: string): Promise<void> {
  if (path === "") throw new UsageError(`${flag}: give a file path`);
  let existed = true;
  try {
    const s = await stat(path);
    if (s.isDirectory()) throw new UsageError(`${flag}: ${path} is a directory; give a file path`);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    existed = false;
  }
  try {
    const f = await open(path, "a");
    await f.close();
    if (!existed) await unlink(path);
  } catch (err) {
    throw pathError(flag, path, err);
  }
}

/** Writes an output file; a failure (a full disk, a read-only file) names the path and flag. */
export async function writeOutput(path: string, data: string | Uint8Array, flag: string): Promise<void> {
  try {
    await writeFile(path, data);
  } catch (err) {
    throw pathError(flag, path, err);
  }
}

/**
 * Calls `handler` on each of `signals`, with `process.on`, not `once`: a signal-exit handler
 * (loaded with node-llama-cpp) re-raises a signal when no other listener is registered at that
 * moment, and a `once` listener is removed before it runs (the process then died by the
 * signal instead of stopping in order).
 */
export function onSignals(signals: readonly NodeJS.Signals[], handler: (signal: NodeJS.Signals) => void): void {
  for (const s of signals) process.on(s, () => handler(s));
}
