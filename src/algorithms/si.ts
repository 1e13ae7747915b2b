/**
 * SI: the drafter proposes up to L tokens, then the target verifies them in one forward
 * pass and keeps the accepted prefix plus one token of its own (the correction, or the
 * bonus token when every draft passed). Drafting and verifying alternate.
 */
import { InstanceLostError } from "../core/instance.js";
import type { Draft } from "../core/verify.js";
import type { RunContext } from "./context.js";
import type { LookaheadDecision } from "./lookahead.js";

/** Without a drafter: plain steps, not the controller's choice (nothing to report). */
const PLAIN: LookaheadDecision = { lookahead: 0, probing: false, patient: true };

export async function runSi(ctx: RunContext): Promise<void> {
  const { rt, opts, seq } = ctx;
  let task = 0;
  let epoch = 0;
  // A lost drafter (its worker died) leaves target-only steps: non-SI, same output.
  let drafterLost = false;
  while (!ctx.committer.done) {
    const f = seq.length;
    // Nothing is drafted for positions the generation will never reach, nor for the last
    // one it can reach (the target decides that one alone).
    // The controller's decision (side-effect free), committed when the window goes out.
    const decision = drafterLost ? PLAIN : ctx.lookahead.plan(1);
    const k = Math.min(decision.lookahead, ctx.limitPos - 1 - f);
    const drafts: Draft[] = [];
    const tokens: number[] = [];
    for (let i = 0; i < k; i++) {
      let d: Draft | undefined;
      try {
        d = await ctx.nextDraft(ctx.view(tokens), f + i, opts.signal, () => rt.events.emit({ type: "draft-start", pos: f + i, epoch }));
      } catch (err) {
        if (!(err instanceof InstanceLostError)) throw err;
        rt.events.emit({ type: "drafter-lost", error: err.message });
        drafterLost = true;
        break;
      }
      if (!d) break; // prompt lookup found no match: the window goes with the drafts it has
      rt.events.emit({ type: "draft-done", pos: f + i, token: d.token, epoch, source: d.source ?? "model" });
      drafts.push(d);
      tokens.push(d.token);
    }
    if (drafterLost) {
      drafts.length = 0;
      tokens.length = 0;
    }
    ctx.lookahead.commit(decision, tokens.length);
    const outs = await ctx.runTask(task, ctx.request(ctx.view(tokens), f, "target"), (instance) =>
      rt.events.emit({ type: "dispatch", task, instance, start: f, drafts: tokens, frontier: f, prefixDrafts: [], epoch }),
    );
    for (let j = 0; j <= drafts.length; j++) {
      const draft = drafts[j];
      const d = ctx.decide(outs[j], draft, f + j);
      if (draft) ctx.decided(j, d.accepted, draft.source);
      if (ctx.commit(d.token, task, epoch, draft ? (d.accepted ? "accepted" : "rejected") : "target")) return;
      if (!d.accepted) break;
    }
    task++;
    epoch++;
  }
}
