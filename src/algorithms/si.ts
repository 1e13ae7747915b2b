/**
 * SI: the drafter proposes up to L tokens, then the target verifies them in one forward
 * pass and keeps the accepted prefix plus one token of its own (the correction, or the
 * bonus token when every draft passed). Drafting and verifying alternate.
 */
import { draftFromOutput, type Draft } from "../core/verify.js";
import type { RunContext } from "./context.js";

export async function runSi(ctx: RunContext): Promise<void> {
  const { rt, opts, seq, stats } = ctx;
  const target = rt.targets[0];
  let task = 0;
  let epoch = 0;
  while (!ctx.committer.done) {
    const f = seq.length;
    // No point drafting positions the generation will never reach.
    const k = Math.min(opts.lookahead, ctx.committer.remaining - 1);
    const work = seq.slice();
    const drafts: Draft[] = [];
    for (let i = 0; i < k; i++) {
      rt.events.emit({ type: "draft-start", pos: f + i, epoch });
      const [out] = await rt.drafter.evaluate(ctx.request(work.slice(), f + i, "drafter"), opts.signal);
      const d = draftFromOutput(opts.verify, out, opts.seed, f + i);
      rt.events.emit({ type: "draft-done", pos: f + i, token: d.token, epoch });
      stats.drafted++;
      drafts.push(d);
      work.push(d.token);
    }
    rt.events.emit({ type: "dispatch", task, instance: 0, start: f, drafts: work.slice(f), frontier: f, prefixDrafts: [], epoch });
    const outs = await ctx.verify(target, ctx.request(work, f, "target"), opts.signal);
    rt.events.emit({ type: "task-done", task, instance: 0 });
    for (let j = 0; j <= k; j++) {
      const draft = drafts[j];
      const d = ctx.decide(outs[j], draft, f + j);
      if (draft) {
        if (d.accepted) stats.accepted++;
        else stats.rejected++;
      }
      if (ctx.commit(d.token, task, epoch, draft ? (d.accepted ? "accepted" : "rejected") : "target")) return;
      if (!d.accepted) break;
    }
    task++;
    epoch++;
  }
}
