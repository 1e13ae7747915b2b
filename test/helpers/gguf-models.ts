/** Small generated GGUF pairs for tests, written once per process into a temporary directory. */
import "./isolated-cache.js";
import { join } from "node:path";
import { writePair, type PairSpec } from "../../src/models/gguf/llama-model.js";
import { tempDir } from "./temp.js";

/** SentencePiece tokenizer, 4 target blocks over a 1-block drafter: fast, acceptance well inside (0, 1). */
export const SMALL_PAIR: PairSpec = {
  target: { vocab: 320, width: 64, layers: 4, heads: 4, ff: 128, context: 256 },
  drafterLayers: 1,
  depthScale: 0.25,
  logitScale: 3,
  seed: 11,
};

/**
 * SMALL_PAIR with room for 500-token sequences: long paths on random weights (near ties
 * everywhere), where how a context was read would show in the outputs.
 */
export const LONG_PAIR: PairSpec = { ...SMALL_PAIR, target: { ...SMALL_PAIR.target, context: 512 } };

/** A 12-token character vocabulary, so exact distributions over a few positions are cheap. */
export const TINY_PAIR: PairSpec = {
  target: { vocab: 12, width: 32, layers: 2, heads: 2, ff: 64, context: 64 },
  drafterLayers: 1,
  depthScale: 0.6,
  logitScale: 1.5,
  seed: 5,
};

let dir: Promise<string> | undefined;
const made = new Map<string, Promise<{ target: string; drafter: string }>>();

export function pairFiles(name: string, spec: PairSpec): Promise<{ target: string; drafter: string }> {
  dir ??= tempDir("test-models");
  let files = made.get(name);
  if (!files) {
    files = dir.then((d) => writePair(join(d, name), spec));
    made.set(name, files);
  }
  return files;
}
