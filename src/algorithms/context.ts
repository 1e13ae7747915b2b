/** Per-generation state shared by the three algorithms. */
import { Stream } from "../core/random.js";
import { decide, outputModes, type Decision, type Draft, type OutputMode, type PositionOutput } from "../core/verify.js";
import type { EvalRequest, ModelInstance } from "../models/instance.js";
import { TokenStream } from "../runtime/token-stream.js";
import type { GenerateOptions, Runtime } from "./options.js";
import { Committer, StatsCounter } from "./output.js";

export class RunContext {
  readonly committer: Committer;
  readonly stats: StatsCounter;
  readonly targetMode: OutputMode;
  readonly drafterMode: OutputMode;
  /** Prompt plus committed tokens. */
  readonly seq: number[];

  constructor(
    readonly rt: Runtime,
    readonly opts: GenerateOptions,
    readonly stream: TokenStream<number>,
  ) {
    this.committer = new Committer(opts, rt.targets[0].eosToken, stream);
    this.stats = new StatsCounter(rt.clock);
    const modes = outputModes(opts.verify);
    this.targetMode = modes.target;
    this.drafterMode = modes.drafter;
    this.seq = [...opts.prompt];
  }

  /** Drafting never goes past the last position the generation may still need. */
  get limitPos(): number {
    return this.seq.length + this.committer.remaining;
  }

  request(tokens: readonly number[], from: number, role: "target" | "drafter", mode?: OutputMode): EvalRequest {
    return {
      tokens,
      from,
      mode: mode ?? (role === "target" ? this.targetMode : this.drafterMode),
      sampling: this.opts.sampling,
      seed: this.opts.seed,
      stream: role === "target" ? Stream.target : Stream.draft,
    };
  }

  /** Runs a target evaluation, counting it and its busy time. */
  async verify(target: ModelInstance, req: EvalRequest, signal?: AbortSignal): Promise<PositionOutput[]> {
    this.stats.verifications++;
    const t0 = this.rt.clock.now();
    try {
      return await target.evaluate(req, signal);
    } finally {
      this.stats.targetBusyMs += this.rt.clock.now() - t0;
    }
  }

  /** Decides the position p from the target's output there and the draft, if any. */
  decide(target: PositionOutput, draft: Draft | undefined, p: number): Decision {
    const { verifier, verify, seed } = this.opts;
    if (draft && verifier) return verifier(target, draft, seed, p);
    return decide(verify, target, draft, seed, p);
  }

  /** Commits a decided token at the next position; returns true when the generation ends. */
  commit(token: number, task: number, epoch: number, outcome: "accepted" | "rejected" | "target"): boolean {
    this.rt.events.emit({ type: "commit", pos: this.seq.length, token, task, epoch, outcome });
    this.seq.push(token);
    this.stats.firstToken();
    return this.committer.commit(token);
  }
}
