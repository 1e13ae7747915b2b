/** `dsi make-model`: write a target/drafter GGUF pair: the Brown Corpus pair (default) or a seeded random one. */
import { Option, type Command } from "commander";
import { DEFAULT_MAX_TOKENS } from "../../algorithms/options.js";
import { measurePathMargins, ROUNDING_FLOOR, WIDE_MARGIN_FACTOR, type PathMargins } from "../../models/corpus/margin-check.js";
import { heldOutPerplexity } from "../../models/corpus/perplexity.js";
import { PairReference } from "../../models/corpus/reference.js";
import { checkCorpusSpec, DEFAULT_CORPUS_PAIR, type CorpusPairSpec } from "../../models/corpus/spec.js";
import { writeCorpusPair, type WrittenCorpusPair } from "../../models/corpus/write.js";
import { defaultCacheDir, ensurePair, MIN_VOCAB, pairKey, RANDOM_PAIR, writePair, type PairSpec } from "../../models/gguf/llama-model.js";
import { DEMO_PROMPT } from "../demo.js";
import { intInRange, MAX_SEED, numberInRange, UsageError } from "../flags.js";
import { givenIn } from "../flag-groups.js";
import { println, type CliIo } from "../io.js";
import { join } from "node:path";
import { stat } from "node:fs/promises";

/** Flags of each kind of pair (a flag of the other kind is an error). */
const CORPUS_FLAGS = ["vocab", "layers", "trigramWeight", "repeatPenalty", "context"];
const RANDOM_FLAGS = ["vocab", "width", "layers", "heads", "ff", "context", "drafterLayers", "depthScale", "logitScale", "modelSeed"];
const FLAG_NAMES: Record<string, string> = {
  vocab: "--vocab",
  width: "--width",
  layers: "--layers",
  heads: "--heads",
  ff: "--ff",
  context: "--context",
  drafterLayers: "--drafter-layers",
  depthScale: "--depth-scale",
  logitScale: "--logit-scale",
  modelSeed: "--model-seed",
  trigramWeight: "--trigram-weight",
  repeatPenalty: "--repeat-penalty",
};

export function register(program: Command, io: CliIo): void {
  const c = CORPUS_DEFAULTS;
  const r = RANDOM_PAIR.target;
  program
    .command("make-model")
    .description("write a target/drafter GGUF pair: weights compiled from the Brown Corpus (default), or seeded random weights")
    .option("--out <dir>", "output directory (default: the model cache)")
    .addOption(new Option("--weights <kind>", "corpus: compiled from the Brown Corpus (English); random: seeded random weights (near ties everywhere)").choices(["corpus", "random"]).default("corpus"))
    .option("--vocab <V>", `vocabulary size; corpus: 512..16384 (default ${c.vocab}); random: ${MIN_VOCAB}..262144, below 313 a character tokenizer (default ${r.vocab})`, intInRange(MIN_VOCAB, 262_144))
    .option("--layers <N>", `target blocks; corpus: 2..64 (default ${c.layers}); random: 1..256 (default ${r.layers})`, intInRange(1, 256))
    .option("--context <N>", `context length; corpus: 64..8192 (default ${c.context}); random: 16..1048576 (default ${r.context})`, intInRange(16, 1_048_576))
    .option("--trigram-weight <X>", `corpus: how much of the trigram tables the target adds, in [0, 1] (default ${c.trigramWeight}): lower means higher acceptance`, numberInRange(0, 1))
    .option("--repeat-penalty <nats>", `corpus: nats the target takes from a token that followed its last two tokens before, in [-20, 20] (default ${c.repeatPenalty}); negative: a copy bonus, so the target copies its context (-9: the pair bench/ngram copies with)`, numberInRange(-20, 20))
    .option("--width <N>", `random: embedding width, 8..16384 (default ${r.width})`, intInRange(8, 16_384))
    .option("--heads <N>", `random: attention heads, 1..256 (default ${r.heads})`, intInRange(1, 256))
    .option("--ff <N>", `random: feed-forward width, 8..65536 (default ${r.ff})`, intInRange(8, 65_536))
    .option("--drafter-layers <N>", `random: drafter blocks (shared with the target's first blocks), 1..--layers (default ${RANDOM_PAIR.drafterLayers})`, intInRange(1, 256))
    .option("--depth-scale <X>", `random: weight of the target-only blocks, in [0, 100]: higher means lower acceptance (default ${RANDOM_PAIR.depthScale})`, numberInRange(0, 100))
    .option("--logit-scale <X>", `random: spread of the logits, in [0, 100]: higher means more peaked (default ${RANDOM_PAIR.logitScale})`, numberInRange(0, 100))
    .option("--model-seed <S>", `random: weights seed, 0..${MAX_SEED} (default ${RANDOM_PAIR.seed})`, intInRange(0, MAX_SEED))
    .action(async (o, command: Command) => {
      const given = givenIn(command);
      const corpus = o.weights === "corpus";
      const allowed = corpus ? CORPUS_FLAGS : RANDOM_FLAGS;
      for (const key of [...new Set([...CORPUS_FLAGS, ...RANDOM_FLAGS])]) {
        if (given(key) && !allowed.includes(key)) throw new UsageError(`make-model: ${FLAG_NAMES[key]} applies to --weights ${corpus ? "random" : "corpus"}, not ${o.weights}`);
      }
      try {
        if (corpus) await makeCorpusPair(o, io);
        else await makeRandomPair(o, io);
      } catch (err) {
        if (err instanceof RangeError) throw new UsageError(`make-model: ${err.message}`);
        throw err;
      }
    });
}

const CORPUS_DEFAULTS = DEFAULT_CORPUS_PAIR;

async function makeRandomPair(o: Record<string, number | string | undefined>, io: CliIo): Promise<void> {
  const r = RANDOM_PAIR;
  const spec: PairSpec = {
    target: {
      vocab: (o.vocab as number) ?? r.target.vocab,
      width: (o.width as number) ?? r.target.width,
      layers: (o.layers as number) ?? r.target.layers,
      heads: (o.heads as number) ?? r.target.heads,
      ff: (o.ff as number) ?? r.target.ff,
      context: (o.context as number) ?? r.target.context,
    },
    drafterLayers: (o.drafterLayers as number) ?? r.drafterLayers,
    depthScale: (o.depthScale as number) ?? r.depthScale,
    logitScale: (o.logitScale as number) ?? r.logitScale,
    seed: (o.modelSeed as number) ?? r.seed,
  };
  const files: { target: string; drafter: string; generated?: boolean } = o.out ? await writePair(o.out as string, spec) : await ensurePair(defaultCacheDir(), spec);
  if (files.generated === false) println(io.stdout, "the cache already holds this pair (same settings): reused, not written again");
  println(io.stdout, `target:  ${files.target}\ndrafter: ${files.drafter}`);
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function makeCorpusPair(o: Record<string, number | string | undefined>, io: CliIo): Promise<void> {
  const spec: CorpusPairSpec = {
    ...CORPUS_DEFAULTS,
    vocab: (o.vocab as number) ?? CORPUS_DEFAULTS.vocab,
    layers: (o.layers as number) ?? CORPUS_DEFAULTS.layers,
    trigramWeight: (o.trigramWeight as number) ?? CORPUS_DEFAULTS.trigramWeight,
    repeatPenalty: (o.repeatPenalty as number) ?? CORPUS_DEFAULTS.repeatPenalty,
    context: (o.context as number) ?? CORPUS_DEFAULTS.context,
  };
  checkCorpusSpec(spec);
  const dir = (o.out as string | undefined) ?? join(defaultCacheDir(), pairKey(spec));
  const files = { target: join(dir, "target.gguf"), drafter: join(dir, "drafter.gguf") };
  if (o.out === undefined && (await exists(files.target)) && (await exists(files.drafter))) {
    println(io.stdout, "the cache already holds this pair (same settings): reused, not written again");
  } else {
    const started = performance.now();
    const written = await writeCorpusPair(dir, spec);
    println(io.stdout, corpusReport(written, (performance.now() - started) / 1000).join("\n"));
  }
  println(io.stdout, marginReport(await measurePathMargins(files, DEMO_PROMPT, DEFAULT_MAX_TOKENS)).join("\n"));
  println(io.stdout, `target:  ${files.target}\ndrafter: ${files.drafter}`);
}

function corpusReport(w: WrittenCorpusPair, seconds: number): string[] {
  const s = w.pair.spec;
  const t = w.timings;
  const trainTokens = w.stats.train.reduce((a, d) => a + d.length - 1, 0);
  const ppl = heldOutPerplexity(new PairReference(w.pair), w.stats.heldOut);
  const lower = (100 * (ppl.drafter - ppl.target)) / ppl.drafter;
  return [
    `wrote the Brown Corpus pair in ${seconds.toFixed(1)} s (statistics ${(t.statisticsMs / 1000).toFixed(1)} s, tables ${(t.compileMs / 1000).toFixed(1)} s, files ${(t.writeMs / 1000).toFixed(1)} s)`,
    `vocabulary: ${s.vocab} tokens, learned from ${w.stats.train.length} documents (${trainTokens} tokens; ${w.stats.heldOut.length} documents held out)`,
    `drafter: 1 block, width ${w.pair.layout.width}: rank-${s.rank} bigram, exact top continuations of the ${w.pair.tokenTables.length} most frequent tokens`,
    `target:  ${s.layers} blocks: the drafter's bigram, trigram tables of ${w.pair.pairTables.length} token pairs (weight ${s.trigramWeight}), ${s.repeatPenalty >= 0 ? `repeat penalty ${s.repeatPenalty} nats` : `copy bonus ${-s.repeatPenalty} nats (an induction head)`}`,
    `held-out perplexity (${ppl.tokens} tokens of ${ppl.documents} documents): drafter ${ppl.drafter.toFixed(1)}, target ${ppl.target.toFixed(1)} (${lower.toFixed(1)}% lower)`,
  ];
}

function marginReport(m: PathMargins): string[] {
  const noise = Math.max(m.targetRounding, m.drafterRounding, ROUNDING_FLOOR);
  const gap = Math.min(m.targetGap.min, m.drafterGap.min);
  return [
    `demo path (${JSON.stringify(DEMO_PROMPT)}, ${m.tokens.length} greedy tokens): ${JSON.stringify(m.text)}`,
    `  smallest top-1/top-2 logit gap: target ${m.targetGap.min.toFixed(4)} (token ${m.targetGap.at + 1}), drafter ${m.drafterGap.min.toFixed(4)} (token ${m.drafterGap.at + 1})`,
    `  llama.cpp rounding (the path one token at a time vs in one batch): target ${m.targetRounding.toExponential(1)}, drafter ${m.drafterRounding.toExponential(1)} (taken as at least ${ROUNDING_FLOOR.toExponential(0)})`,
    `  margin check: ${m.wide ? "PASS" : "FAIL"}: the smallest gap is ${(gap / noise).toFixed(0)}x the rounding (at least ${WIDE_MARGIN_FACTOR}x asked); the drafter's greedy token is the target's at ${(100 * m.agreement).toFixed(0)}% of positions`,
  ];
}
