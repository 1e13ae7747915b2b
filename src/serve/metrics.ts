/**
 * The server's Prometheus metrics (prom-client): `dsi_` prefix, base units (seconds),
 * `_total` on counters; speculative-decoding counters named as vLLM and llama.cpp name theirs
 * (`spec_decode_num_draft_tokens`, `..._num_accepted_tokens`) and meaning what theirs mean
 * (drafts verified, drafts accepted), so existing dashboards fit. Every generation counts,
 * also one whose client left: what the engine reports as it goes (the runtime observer)
 * counts at once, what it reports only at the end (drafts made, TTFT, duration) when a
 * generation finishes.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Stats } from "../algorithms/options.js";
import type { WorkerStats } from "../models/remote/protocol.js";
import type { RuntimeObserver } from "../runtime/runtime.js";

export class ServeMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({ name: "dsi_requests_total", help: "HTTP requests by endpoint and status code", labelNames: ["endpoint", "status"], registers: [this.registry] });
  readonly promptTokens = new Counter({ name: "dsi_prompt_tokens_total", help: "Prompt tokens of generations started (finished or not)", registers: [this.registry] });
  readonly generationTokens = new Counter({
    name: "dsi_generation_tokens_total",
    help: "Tokens generated (committed), also by generations that did not finish (up to their end)",
    registers: [this.registry],
  });
  /**
   * vLLM's meaning: drafts sent to a target and verified. DSI drafts ahead and drops drafts
   * no target verified (after a rejection, past the end); those are `draftedTokens`. Counted
   * as each draft is decided (accepted or rejected against the target's output), so the
   * acceptance rate is accepted / draft tokens, as `Stats.acceptanceRate`.
   */
  readonly draftTokens = new Counter({
    name: "dsi_spec_decode_num_draft_tokens_total",
    help: "Draft tokens verified: decided against a target's output (accepted + rejected), by source (model: the drafter; ngram: prompt lookup)",
    labelNames: ["source"],
    registers: [this.registry],
  });
  readonly acceptedTokens = new Counter({
    name: "dsi_spec_decode_num_accepted_tokens_total",
    help: "Draft tokens accepted by verification, by source",
    labelNames: ["source"],
    registers: [this.registry],
  });
  readonly draftedTokens = new Counter({
    name: "dsi_drafted_tokens_total",
    help: "Draft tokens the drafter made, verified or dropped unverified, of finished generations",
    registers: [this.registry],
  });
  readonly acceptedPerPos = new Counter({
    name: "dsi_spec_decode_num_accepted_tokens_per_pos_total",
    help: "Accepted drafts by their index in their window (0: a window's first draft) and source",
    labelNames: ["position", "source"],
    registers: [this.registry],
  });
  readonly preemptedWindows = new Counter({ name: "dsi_preempted_windows_total", help: "Target tasks preempted (stale after a rejection) or cancelled", registers: [this.registry] });
  readonly verification = new Histogram({
    name: "dsi_verification_duration_seconds",
    help: "Duration of target evaluations that completed (a verification window or a plain step)",
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly targetBusy = new Counter({ name: "dsi_target_busy_seconds_total", help: "Evaluation time of target sequences, summed (sequences evaluating at once each count)", registers: [this.registry] });
  readonly ttft = new Histogram({
    name: "dsi_time_to_first_token_seconds",
    help: "Time from the start of a generation to its first committed token",
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly requestDuration = new Histogram({
    name: "dsi_generation_duration_seconds",
    help: "Time of a whole generation",
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers: [this.registry],
  });
  readonly active = new Gauge({ name: "dsi_active_generations", help: "Generations running now", registers: [this.registry] });
  readonly queued = new Gauge({ name: "dsi_queue_length", help: "Requests waiting for a generation slot", registers: [this.registry] });
  readonly busyInstances = new Gauge({ name: "dsi_busy_target_instances", help: "Target instances with a sequence evaluating now", registers: [this.registry] });
  readonly poolQueued = new Gauge({
    name: "dsi_pool_queued_generations",
    help: "Generations waiting for a target instance of their own (at most one running generation per instance)",
    registers: [this.registry],
  });
  readonly evalChunk = new Gauge({
    name: "dsi_eval_chunk_tokens",
    help: "Most tokens per forward pass (real kernels: the largest chunk whose outputs match one token at a time), by model",
    labelNames: ["model"],
    registers: [this.registry],
  });

  /** What the runtime reports per task and per draft (see RuntimeObserver). */
  readonly observer: RuntimeObserver = {
    verification: (ms, _drafts, outcome) => {
      this.targetBusy.inc(ms / 1000); // as Stats.targetBusyMs: every evaluation, however it ended
      if (outcome === "done") this.verification.observe(ms / 1000);
      else if (outcome === "preempted") this.preemptedWindows.inc();
    },
    draftDecided: (index, accepted, source) => {
      this.draftTokens.inc({ source });
      if (!accepted) return;
      this.acceptedTokens.inc({ source });
      this.acceptedPerPos.inc({ position: String(index), source });
    },
  };

  /**
   * Target workers' own counters (a cluster's), read at each scrape: calls, cancelled calls,
   * positions evaluated, busy seconds, and whether each answers.
   */
  watchWorkers(read: () => Promise<{ address: string; stats: WorkerStats | undefined }[]>): void {
    const names = {
      calls: ["dsi_worker_calls_total", "Evaluate calls a target worker received"],
      cancelled: ["dsi_worker_cancelled_calls_total", "Evaluate calls cancelled by the orchestrator (preemption)"],
      positionsEvaluated: ["dsi_worker_positions_evaluated_total", "Positions a target worker evaluated"],
      busySeconds: ["dsi_worker_busy_seconds_total", "Time a target worker had an evaluation running (its sequences evaluating at once count once)"],
    } as const;
    let last: Promise<{ address: string; stats: WorkerStats | undefined }[]> | undefined;
    // One read per scrape, shared by the metrics below.
    const snapshot = (): Promise<{ address: string; stats: WorkerStats | undefined }[]> => (last ??= read().finally(() => setTimeout(() => (last = undefined), 0)));
    for (const [key, [name, help]] of Object.entries(names) as [keyof typeof names, readonly [string, string]][]) {
      new Counter({
        name,
        help,
        labelNames: ["worker"],
        registers: [this.registry],
        async collect() {
          this.reset();
          for (const w of await snapshot()) if (w.stats) this.inc({ worker: w.address }, w.stats[key]);
        },
      });
    }
    new Gauge({
      name: "dsi_worker_up",
      help: "1 when a target worker answers, 0 when not",
      labelNames: ["worker"],
      registers: [this.registry],
      async collect() {
        for (const w of await snapshot()) this.set({ worker: w.address }, w.stats ? 1 : 0);
      },
    });
  }

  /** Target instances configured and live now (see Service.targets), read at each scrape. */
  watchTargets(read: () => Promise<{ configured: number; live: number }>): void {
    let last: Promise<{ configured: number; live: number }> | undefined;
    const snapshot = (): Promise<{ configured: number; live: number }> => (last ??= read().finally(() => setTimeout(() => (last = undefined), 0)));
    for (const [name, help, key] of [
      ["dsi_target_instances_configured", "Target instances the server was started with (a cluster's target workers)", "configured"],
      ["dsi_target_instances_live", "Target instances serving now: none of their sequences lost and, for a cluster, answering", "live"],
    ] as const) {
      new Gauge({
        name,
        help,
        registers: [this.registry],
        async collect() {
          this.set((await snapshot())[key]);
        },
      });
    }
  }

  /** A generation started: its prompt is evaluated whether it finishes or not. */
  started(promptTokens: number): void {
    this.promptTokens.inc(promptTokens);
  }

  /** A generation finished: what the engine reports only at the end. */
  finished(stats: Stats): void {
    this.generationTokens.inc(stats.tokens);
    this.draftedTokens.inc(stats.drafted);
    if (stats.tokens > 0) this.ttft.observe(stats.ttftMs / 1000);
    this.requestDuration.observe(stats.timeMs / 1000);
  }

  /**
   * A generation that ended without a result (its client left, the server shut down, an
   * error): the tokens it had put out (a tail held back as a possible stop sequence aside).
   * No Stats come of it, so no drafts made, TTFT or duration.
   */
  unfinished(tokens: number): void {
    this.generationTokens.inc(tokens);
  }
}
