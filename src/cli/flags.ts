/** Flag parsers: each rejects bad input with a message naming what is allowed. */
import { InvalidArgumentError } from "commander";

export function intAtLeast(min: number): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!/^-?\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`must be an integer >= ${min}.`);
    return n;
  };
}

export function intInRange(min: number, max: number): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!/^-?\d+$/.test(v.trim()) || n < min || n > max) throw new InvalidArgumentError(`must be an integer in ${min}..${max}.`);
    return n;
  };
}

function num(v: string): number {
  const n = v.trim() === "" ? NaN : Number(v);
  if (!Number.isFinite(n)) throw new InvalidArgumentError("must be a number.");
  return n;
}

export function numberAtLeast(min: number): (v: string) => number {
  return (v) => {
    const n = num(v);
    if (n < min) throw new InvalidArgumentError(`must be a number >= ${min}.`);
    return n;
  };
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

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Engine option names as the CLI spells them. */
export const FLAG_OF: Record<string, string> = {
  maxTokens: "--max-tokens",
  lookahead: "--lookahead",
  sp: "--sp",
  seed: "--seed",
  temperature: "--temperature",
  topK: "--top-k",
  topP: "--top-p",
  verify: "--verify",
  prompt: "--prompt",
  drafter: "--drafter",
};

/** A usage error: printed as one line, exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}
