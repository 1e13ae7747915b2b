/** `dsi make-model`: write a seeded target/drafter GGUF pair. */
import type { Command } from "commander";
import { DEFAULT_PAIR, defaultCacheDir, ensurePair, MIN_VOCAB, writePair, type PairSpec } from "../../models/gguf/llama-model.js";
import { intInRange, MAX_SEED, numberInRange, UsageError } from "../flags.js";
import { println, type CliIo } from "../io.js";

export function register(program: Command, io: CliIo): void {
  program
    .command("make-model")
    .description("write a seeded llama-architecture target/drafter pair as GGUF files")
    .option("--out <dir>", "output directory (default: the model cache)")
    .option("--vocab <V>", `vocabulary size, ${MIN_VOCAB}..262144 (below 313 a character tokenizer)`, intInRange(MIN_VOCAB, 262_144), DEFAULT_PAIR.target.vocab)
    .option("--width <N>", "embedding width, 8..16384", intInRange(8, 16_384), DEFAULT_PAIR.target.width)
    .option("--layers <N>", "target blocks, 1..256", intInRange(1, 256), DEFAULT_PAIR.target.layers)
    .option("--heads <N>", "attention heads, 1..256", intInRange(1, 256), DEFAULT_PAIR.target.heads)
    .option("--ff <N>", "feed-forward width, 8..65536", intInRange(8, 65_536), DEFAULT_PAIR.target.ff)
    .option("--context <N>", "context length, 16..1048576", intInRange(16, 1_048_576), DEFAULT_PAIR.target.context)
    .option("--drafter-layers <N>", "drafter blocks (shared with the target's first blocks), 1..--layers", intInRange(1, 256), DEFAULT_PAIR.drafterLayers)
    .option("--depth-scale <X>", "weight of the target-only blocks, in [0, 100]: higher means lower acceptance", numberInRange(0, 100), DEFAULT_PAIR.depthScale)
    .option("--logit-scale <X>", "spread of the logits, in [0, 100]: higher means more peaked", numberInRange(0, 100), DEFAULT_PAIR.logitScale)
    .option("--model-seed <S>", `weights seed, 0..${MAX_SEED}`, intInRange(0, MAX_SEED), DEFAULT_PAIR.seed)
    .action(async (o) => {
      const spec: PairSpec = {
        target: { vocab: o.vocab, width: o.width, layers: o.layers, heads: o.heads, ff: o.ff, context: o.context },
        drafterLayers: o.drafterLayers,
        depthScale: o.depthScale,
        logitScale: o.logitScale,
        seed: o.modelSeed,
      };
      let files: { target: string; drafter: string; generated?: boolean };
      try {
        files = o.out ? await writePair(o.out, spec) : await ensurePair(defaultCacheDir(), spec);
      } catch (err) {
        if (err instanceof RangeError) throw new UsageError(`make-model: ${err.message}`);
        throw err;
      }
      if (files.generated === false) println(io.stdout, "the cache already holds this pair (same settings): reused, not written again");
      println(io.stdout, `target:  ${files.target}\ndrafter: ${files.drafter}`);
    });
}
