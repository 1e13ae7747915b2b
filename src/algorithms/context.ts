/** Per-generation state shared by the three algorithms. */
import { InstanceLostError, TokenView, type EvalRequest } from "../core/instance.js";
import { isAbortError } from "../runtime/abort.js";
import { Stream } from "../core/random.js";
import { decide, draftFromOutput, outputModes, type Decision, type Draft, type DraftSource, type OutputMode, type PositionOutput } from "../core/verify.js";
import type { Claim, Lease, PoolMember } from "../runtime/pool.js";
import type { Runtime } from "../runtime/runtime.js";
import { TokenStream } from "../runtime/token-stream.js";
import { NgramIndex } from "./drafting/ngram-index.js";
import { SourceChooser } from "./drafting/source-choice.js";
import { AdaptiveLookahead, FixedLookahead, TUNING, type LookaheadPolicy } from "./lookahead.js";
import type { AlgorithmName, ResolvedOptions } from "./options.js";
import { Committer, StatsCounter } from "./output.js";

export class RunContext {
  readonly committer: Committer;
  readonly stats: StatsCounter;
  readonly targetMode: OutputMode;
  readonly drafterMode: OutputMode;
  /** Prompt plus committed tokens. Append-only, so `TokenView`s over it stay valid. */
  readonly seq: number[];
  /** When the generation could start: admitted by the pool (its bounds count from here). */
  startedAt: number;
  /** This generation's membership in the shared target pool; left when it ends. */
  readonly member: PoolMember;
  /** The lookahead of each window (si, dsi): fixed, or chosen online (`auto`). */
  readonly lookahead: LookaheadPolicy;
  /** Drafter steps and target tasks of this generation running now, and how many ever started. */
  private active = 0;
  private started = 0;
  /** Target instances this generation has evaluated on (their first task reads the context). */
  private readonly warmInstances = new Set<number>();
  private drafterWarm = false;
  /** Prompt lookup over the prompt and the committed tokens (`draft` ngram or ngram+model). */
  private readonly ngram: NgramIndex | undefined;
  /** Under ngram+model: where lookup drafts rather than the drafter. */
  private readonly chooser: SourceChooser | undefined;

  constructor(
    readonly rt: Runtime,
    readonly opts: ResolvedOptions,
    readonly stream: TokenStream<number>,
    algo: AlgorithmName,
  ) {
    this.committer = new Committer(opts, rt.pool.eosToken, stream);
    this.stats = new StatsCounter(rt.clock);
    const modes = outputModes(opts.verify);
    this.targetMode = modes.target;
    this.drafterMode = modes.drafter;
    this.seq = [...opts.prompt];
    this.startedAt = rt.clock.now();
    this.member = rt.pool.join(opts.sp);
    this.ngram = algo !== "nonsi" && opts.draft !== "model" ? new NgramIndex(this.seq, opts.ngramMin, opts.ngramMax) : undefined;
    this.chooser =
      this.ngram && opts.draft === "ngram+model"
        ? new SourceChooser(
            () => rt.learned.acceptance.rate(),
            () => {
              const [step, target] = [rt.learned.costs.drafterMs("alone") ?? rt.learned.costs.drafterMs("beside"), rt.learned.costs.soloMs()];
              return step !== undefined && target !== undefined && target > 0 ? Math.min(1, step / target) : 0;
            },
            () => rt.learned.lookupAcceptance.rate(),
          )
        : undefined;
    this.lookahead =
      opts.lookahead === "auto" && algo !== "nonsi"
        ? new AdaptiveLookahead(
            algo,
            rt.learned.costs,
            // The prior of a source's acceptance: the runtime's long-run one where it drafts everything.
            opts.draft === "model" ? rt.learned.acceptance : opts.draft === "ngram" ? rt.learned.lookupAcceptance : { rate: () => undefined },
            () => this.stats.elapsed(),
            rt.sharedDevice,
            (c) => rt.events.emit({ type: "lookahead", ...c }),
            TUNING,
            opts.draft,
          )
        : new FixedLookahead(opts.lookahead === "auto" ? 0 : opts.lookahead); // non-SI never asks
  }

  /** The pool admitted the generation: the time non-SI's pace is counted from. */
  admitted(): void {
    this.startedAt = this.rt.clock.now();
  }

  /** Marks the start of a drafter step or target task; the returned function marks its end and says whether it ran alone. */
  private begin(): () => boolean {
    const before = this.active++;
    const id = ++this.started;
    return () => {
      this.active--;
      return before === 0 && this.started === id;
    };
  }

  /** One drafter step: the drafter's output at `from`, timed for the observed costs. */
  async draft(tokens: TokenView, from: number, signal?: AbortSignal): Promise<PositionOutput> {
    const end = this.begin();
    const othersBusy = this.rt.pool.busy > 0;
    const t0 = this.rt.clock.now();
    let ok = false;
    try {
      // (resolveOptions lets no generation ask for the model where the runtime has none.)
      const [out] = await this.rt.drafter!.evaluate(this.request(tokens, from, "drafter"), signal);
      ok = true;
      return out;
    } finally {
      const alone = end() && !othersBusy && this.rt.pool.busy === 0;
      if (ok && this.drafterWarm) this.rt.learned.costs.observeDraft(this.rt.clock.now() - t0, alone ? "alone" : "beside");
      if (ok) this.drafterWarm = true;
    }
  }

  /**
   * The draft at `from` after `tokens` (committed tokens and the drafts before it), from the
   * generation's sources (`draft`): prompt lookup first where it is used (free: a few map
   * lookups), the drafter model otherwise; undefined when prompt lookup alone finds no match.
   * `onModel` hears that the drafter model starts (the event log's draft-start).
   */
  async nextDraft(tokens: TokenView, from: number, signal?: AbortSignal, onModel?: () => void): Promise<Draft | undefined> {
    if (this.ngram) {
      const found = tokens.base === this.seq && tokens.length === tokens.baseLength && tokens.baseLength === this.seq.length ? this.lookupAfterCommitted() : this.ngram.propose(tokens);
      // Before the drafter, lookup drafts where it is expected to do at least as well (source-choice.ts).
      if (found && (!this.chooser || this.chooser.useLookup(found.matched))) {
        this.stats.draftMade("ngram");
        return { token: found.token, source: "ngram" };
      }
      if (this.opts.draft === "ngram") return undefined;
    }
    onModel?.();
    const out = await this.draft(tokens, from, signal);
    this.stats.draftMade("model");
    return { ...draftFromOutput(this.opts.verify, out, this.opts.seed, from), source: "model" };
  }

  /** A draft was decided: its index in its window (0: the first draft), accepted or not. */
  decided(index: number, accepted: boolean, source: DraftSource = "model"): void {
    this.stats.draftDecided(source, accepted);
    this.rt.observer?.draftDecided?.(index, accepted, source);
    // The runtime's long-run acceptance of the drafter model (what the next generation's prior
    // reads); prompt lookup's is measured on every committed position instead (`commit`).
    if (source === "model") {
      this.rt.learned.acceptance.observe(accepted);
      this.chooser?.modelDecided(accepted);
    }
    // Lookup's drafts: the controller hears lookup's shadow at every commit, which covers this one.
    if (source !== "ngram") this.lookahead.decided(accepted, source);
  }

  /**
   * One past the last position the generation may still commit. Nothing at or beyond
   * `limitPos - 1` is worth drafting: the output there is decided by the target alone.
   */
  get limitPos(): number {
    return this.seq.length + this.committer.remaining;
  }

  /** The committed tokens followed by `drafts`, without copying the committed part. */
  view(drafts: readonly number[] = []): TokenView {
    return new TokenView(this.seq, this.seq.length, drafts);
  }

  request(tokens: TokenView, from: number, role: "target" | "drafter", mode?: OutputMode): EvalRequest {
    return {
      tokens,
      from,
      mode: mode ?? (role === "target" ? this.targetMode : this.drafterMode),
      sampling: this.opts.sampling,
      seed: this.opts.seed,
      stream: role === "target" ? Stream.target : Stream.draft,
    };
  }

  /** Waits for a target instance from the shared pool (see runtime/pool for the policy). */
  acquire(claim: Claim): Promise<Lease> {
    return this.member.acquire(claim, this.opts.signal);
  }

  /**
   * Runs a target evaluation on a leased instance, counting it and its busy time and
   * teaching the runtime its cost. The caller releases the lease once this settles.
   */
  async verify(lease: Lease, req: EvalRequest, signal?: AbortSignal): Promise<PositionOutput[]> {
    this.stats.verifications++;
    const drafts = req.tokens.length - req.from;
    this.stats.windows[drafts] = (this.stats.windows[drafts] ?? 0) + 1;
    lease.carry(drafts + 1);
    const end = this.begin();
    const othersBusy = this.rt.pool.busy > 1;
    // Other sequences' tasks on this instance, when this one starts and when it ends: they
    // share its compute (a pass, or a context's turns) and wait for the tokens it adds; none
    // pays for them where passes take tokens freely (a GPU-like device).
    const pool = this.rt.pool;
    const instance = pool.instanceOf(lease.index);
    const paying = !pool.sharesFreely;
    const sharersAtStart = paying ? pool.busyOn(instance) - 1 : 0;
    const t0 = this.rt.clock.now();
    let outcome: "done" | "preempted" | "failed" = "failed";
    try {
      const outputs = await lease.instance.evaluate(req, signal);
      outcome = "done";
      return outputs;
    } catch (err) {
      if (isAbortError(err)) outcome = "preempted";
      throw err;
    } finally {
      const ms = this.rt.clock.now() - t0;
      const alone = end() && !othersBusy && this.rt.pool.busy <= 1;
      this.stats.targetBusyMs += ms;
      const kind = !this.warmInstances.has(lease.index) ? "prefill" : alone ? "alone" : "beside";
      if (outcome === "done") {
        this.rt.learned.costs.observe(drafts, ms, kind, paying ? Math.max(sharersAtStart, pool.busyOn(instance) - 1, 0) : 0);
        this.warmInstances.add(lease.index);
      }
      this.rt.observer?.verification?.(ms, drafts, outcome);
    }
  }

  /**
   * One task of a sequential algorithm (non-SI, SI): lease a frontier instance, evaluate,
   * release. An instance that is lost (InstanceLostError) is retired and the task runs again
   * on another one; when none is left the pool's NoInstanceError ends the generation.
   */
  async runTask(task: number, req: EvalRequest, dispatched: (instance: number) => void): Promise<PositionOutput[]> {
    for (;;) {
      const lease = await this.acquire("frontier");
      let outputs: PositionOutput[];
      try {
        dispatched(lease.index);
        outputs = await this.verify(lease, req, this.opts.signal);
      } catch (err) {
        if (err instanceof InstanceLostError) {
          this.rt.events.emit({ type: "task-lost", task, instance: lease.index, error: err.message });
          lease.retire(err.message);
          continue;
        }
        lease.release();
        throw err;
      }
      this.rt.events.emit({ type: "task-done", task, instance: lease.index });
      lease.release();
      return outputs;
    }
  }

  /** Lookup's proposal after the committed tokens alone, once per length (a window's first draft and the commit's shadow ask alike). */
  private lookupAfterCommitted(): ReturnType<NgramIndex["propose"]> {
    if (this.committedLookup?.length !== this.seq.length) this.committedLookup = { length: this.seq.length, found: this.ngram!.propose(this.view()) };
    return this.committedLookup.found;
  }
  private committedLookup: { length: number; found: ReturnType<NgramIndex["propose"]> } | undefined;

  /** Decides the position p from the target's output there and the draft, if any. */
  decide(target: PositionOutput, draft: Draft | undefined, p: number): Decision {
    const { verifier, verify, seed } = this.opts;
    if (draft && verifier) return verifier(target, draft, seed, p);
    return decide(verify, target, draft, seed, p);
  }

  /** Commits a decided token at the next position; returns true when the generation ends. */
  commit(token: number, task: number, epoch: number, outcome: "accepted" | "rejected" | "target"): boolean {
    this.rt.events.emit({ type: "commit", pos: this.seq.length, token, task, epoch, outcome });
    if (this.ngram) {
      // What lookup would have drafted here, from the committed prefix: its shadow acceptance
      // (source-choice.ts says why it is an unbiased sample of its acceptance, drafted or not).
      const would = this.lookupAfterCommitted();
      // Every position where lookup drafts (with a match; before the drafter, where the chooser
      // takes it) teaches the controller, plain steps too, so a stretch of copying is seen
      // before a window was risked on it. The drafter's drafts teach it when decided.
      const lookup = would !== undefined && (!this.chooser || this.chooser.useLookup(would.matched));
      if (this.chooser) this.lookahead.drafts(lookup ? "ngram" : "model");
      if (would) {
        const hit = would.token === token;
        this.rt.learned.lookupAcceptance.observe(hit);
        if (lookup) this.lookahead.decided(hit, "ngram");
        this.chooser?.shadow(would.matched, would.token, token);
      }
    }
    this.seq.push(token);
    this.stats.firstToken();
    return this.committer.commit(token);
  }
}
