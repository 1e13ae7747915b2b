/** Non-SI: the target alone, one forward pass per token. */
import { targetToken } from "../core/verify.js";
import type { RunContext } from "./context.js";

export async function runNonSi(ctx: RunContext): Promise<void> {
  const { rt, opts, seq } = ctx;
  // The target's own token needs no distribution: greedy, or the keyed sample of the
  // same stream the lossless rules use for target tokens.
  const mode = opts.sampling.temperature === 0 ? "greedy" : "sample";
  let task = 0;
  while (!ctx.committer.done) {
    const pos = seq.length;
    // Every step decides the frontier: one lease per step, so concurrent generations interleave.
    const [out] = await ctx.runTask(task, ctx.request(ctx.view(), pos, "target", mode), (instance) =>
      rt.events.emit({ type: "dispatch", task, instance, start: pos, drafts: [], frontier: pos, prefixDrafts: [], epoch: 0 }),
    );
    const token = mode === "greedy" ? out.token : targetToken("match", out, opts.seed, pos);
    if (ctx.commit(token, task++, 0, "target")) break;
  }
}
