/**
 * Writes a corpus pair: corpus statistics, compiled tables, then target.gguf and drafter.gguf
 * (each to a temporary name renamed into place, so a crash leaves no half file).
 */
import { rename } from "node:fs/promises";
import { join } from "node:path";
import { makeDirs } from "../make-dirs.js";
import { writeGguf } from "../gguf/writer.js";
import { compilePair, type CompiledPair } from "./compile.js";
import { checkCorpusSpec, type CorpusPairSpec } from "./spec.js";
import { corpusStatistics, type CorpusStatistics } from "./statistics.js";
import { drafterFile, targetFile } from "./weights.js";

export interface WrittenCorpusPair {
  target: string;
  drafter: string;
  stats: CorpusStatistics;
  pair: CompiledPair;
  /** Milliseconds spent: corpus statistics, compiling the tables, writing the files. */
  timings: { statisticsMs: number; compileMs: number; writeMs: number };
}

export async function writeCorpusPair(dir: string, spec: CorpusPairSpec): Promise<WrittenCorpusPair> {
  checkCorpusSpec(spec);
  const t0 = performance.now();
  const stats = corpusStatistics(spec);
  const t1 = performance.now();
  const pair = compilePair(spec, stats);
  const t2 = performance.now();
  await makeDirs(dir);
  const out = { target: join(dir, "target.gguf"), drafter: join(dir, "drafter.gguf") };
  for (const [role, file] of [
    ["target", () => targetFile(pair)],
    ["drafter", () => drafterFile(pair)],
  ] as const) {
    const { metadata, tensors } = file();
    const tmp = `${out[role]}.tmp-${process.pid}`;
    await writeGguf(tmp, metadata, tensors);
    await rename(tmp, out[role]);
  }
  const t3 = performance.now();
  return { ...out, stats, pair, timings: { statisticsMs: t1 - t0, compileMs: t2 - t1, writeMs: t3 - t2 } };
}
