/**
 * The child of the GPU check (gpu-check.ts): writes a tiny random model into the folder it is
 * given, loads the GPU build of the kind the parent uses with every layer on the GPU, decodes
 * a window of three tokens and then one token (the batched and the one-token kernels), and
 * prints "ok KIND LAYERS" (the build it ran on, the layers on the GPU). When the build cannot
 * run on the GPU, llama.cpp aborts this process instead. `--cpu`: the same on the CPU build
 * ("ok cpu 0"; lets the check's own path be tested without a GPU).
 *
 * Usage: node gpu-check-child.js DIR (--gpu KIND | --cpu)
 */
import { writePair } from "./gguf/llama-model.js";

const [dir, flag, kind] = process.argv.slice(2);
const GPU_KINDS = ["cuda", "vulkan", "metal"] as const;
const gpu = flag === "--gpu" ? GPU_KINDS.find((k) => k === kind) : undefined;
if (dir === undefined || (flag === "--gpu" ? gpu === undefined : flag !== "--cpu")) {
  process.stderr.write(`usage: gpu-check-child.js DIR (--gpu ${GPU_KINDS.join("|")} | --cpu)\n`);
  process.exit(2);
}
const { target } = await writePair(dir, {
  target: { vocab: 32, width: 64, layers: 2, heads: 2, ff: 128, context: 64 },
  drafterLayers: 1,
  depthScale: 0.06,
  logitScale: 3,
  seed: 1,
});
const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
// That kind of build or an error, never a fallback to another; errors go to stderr, where the parent quotes them.
const llama = await getLlama({ gpu: gpu ?? false, build: "never", logLevel: LlamaLogLevel.error });
const model = await llama.loadModel({ modelPath: target, gpuLayers: gpu ? "max" : 0 });
const ranOn = `${llama.gpu === false ? "cpu" : llama.gpu} ${model.gpuLayers}`;
const context = await model.createContext({ contextSize: 64, sequences: 1 });
const sequence = context.getSequence();
const next = { generateNext: { token: true, options: { temperature: 0 } } } as const;
await sequence.controlledEvaluate([1, 2, 3].map((t) => [t, next] as const) as never);
await sequence.controlledEvaluate([[4, next] as const] as never);
await context.dispose();
await model.dispose();
await llama.dispose();
process.stdout.write(`ok ${ranOn}\n`);
