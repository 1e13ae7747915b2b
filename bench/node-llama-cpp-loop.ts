/** node-llama-cpp's own generation loop on a sequence (the anchors' path): greedy, `tokens` tokens after `prompt`, timed. */
import type { LlamaContextSequence, Token } from "node-llama-cpp";

export async function timeTheirLoop(seq: LlamaContextSequence, prompt: readonly number[], tokens: number): Promise<{ ms: number; tokens: number[] }> {
  await seq.clearHistory();
  const t0 = performance.now();
  const out: number[] = [];
  for await (const t of seq.evaluate(prompt as Token[], { temperature: 0 })) {
    out.push(t);
    if (out.length >= tokens) break;
  }
  return { ms: performance.now() - t0, tokens: out };
}
