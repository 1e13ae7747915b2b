/**
 * One device shared by several instances, as the drafter and the targets share a CPU: each
 * pass runs `1 + contention × others` times slower while `others` other passes run beside it
 * (processor sharing: a pass's speed changes whenever one starts or ends beside it). Latency
 * profiles with `contention` (latency.ts) put every instance of a runtime on one such device,
 * so that what DSI pays for running the drafter beside its targets on one machine is tested
 * in virtual time.
 */
import { PREEMPTED } from "../runtime/abort.js";
import type { Clock } from "../runtime/clock.js";

interface Pass {
  /** Work left, in ms of the pass alone. */
  left: number;
  /** When `left` was last brought up to date. */
  since: number;
  /** Interrupts the pass's sleep, so it sleeps again at the new speed. */
  wake?: () => void;
}

export class SharedDevice {
  private readonly passes = new Set<Pass>();

  constructor(
    private readonly clock: Clock,
    /** Slowdown per other pass running beside one (0: independent). */
    readonly contention: number,
  ) {}

  /** Passes running now. */
  get running(): number {
    return this.passes.size;
  }

  /** Runs a pass that takes `ms` alone; resolves when its work is done (rejects when `signal` aborts). */
  async run(ms: number, signal?: AbortSignal): Promise<void> {
    const pass: Pass = { left: ms, since: this.clock.now() };
    this.change(() => this.passes.add(pass));
    try {
      while (pass.left > 1e-9) {
        const woken = new AbortController();
        pass.wake = () => woken.abort(PREEMPTED);
        try {
          await this.clock.sleep(pass.left / this.speed(), signal ? AbortSignal.any([signal, woken.signal]) : woken.signal);
          pass.left = 0;
        } catch (err) {
          if (!woken.signal.aborted || signal?.aborted) throw err;
          // Woken by a change beside it: `left` is up to date, sleep again at the new speed.
        }
      }
    } finally {
      this.change(() => this.passes.delete(pass));
    }
  }

  private speed(): number {
    return 1 / (1 + this.contention * Math.max(0, this.passes.size - 1));
  }

  /** Brings every pass's work up to now at the old speed, applies the change, wakes them all. */
  private change(apply: () => void): void {
    const now = this.clock.now();
    const speed = this.speed();
    for (const p of this.passes) {
      p.left = Math.max(0, p.left - (now - p.since) * speed);
      p.since = now;
    }
    apply();
    for (const p of this.passes) p.wake?.();
  }
}
