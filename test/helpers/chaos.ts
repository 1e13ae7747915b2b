/**
 * Workers under fire, for fault tests and bench/faults.ts: a loop that, at random moments,
 * kills a target worker (SIGKILL) and starts it again at its address a little later, or
 * pauses one (SIGSTOP) past the call deadline and resumes it. It never takes the last
 * answering worker, so a cluster always has one target left.
 */
import type { ChildProcess } from "node:child_process";
import { FastRng } from "../../src/core/random.js";

export interface ChaosSlot {
  address: string;
  child: ChildProcess | undefined;
  /** Stopped (SIGSTOP) until resumed. */
  paused?: boolean;
}

export interface ChaosOptions {
  slots: ChaosSlot[];
  /** Starts a worker at `address` again; resolves once it listens. */
  restart: (address: string) => Promise<ChildProcess>;
  seed: number;
  /** Milliseconds between two actions: uniform in [min, max]. */
  gapMs: [number, number];
  /** Milliseconds a killed worker stays down before its restart: uniform in [min, max]. */
  downMs: [number, number];
  /** Share of actions that pause a worker instead of killing it. */
  pauseShare: number;
  /** How long a paused worker stays stopped (past the call deadline). */
  pauseMs: number;
}

export interface ChaosCounts {
  kills: number;
  restarts: number;
  pauses: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs until `stop` aborts, then resumes any paused worker and waits for pending restarts. */
export async function chaosLoop(o: ChaosOptions, stop: AbortSignal): Promise<ChaosCounts> {
  const rng = new FastRng(o.seed);
  const counts: ChaosCounts = { kills: 0, restarts: 0, pauses: 0 };
  const pending: Promise<void>[] = [];
  const uniform = ([a, b]: [number, number]): number => a + (b - a) * rng.next();
  const serving = (): ChaosSlot[] => o.slots.filter((s) => s.child !== undefined && !s.paused);
  while (!stop.aborted) {
    await sleep(uniform(o.gapMs));
    if (stop.aborted) break;
    const candidates = serving();
    if (candidates.length < 2) continue; // keep one target
    const slot = candidates[Math.floor(rng.next() * candidates.length)];
    const child = slot.child!;
    if (rng.next() < o.pauseShare) {
      counts.pauses++;
      slot.paused = true;
      child.kill("SIGSTOP");
      pending.push(
        sleep(o.pauseMs).then(() => {
          child.kill("SIGCONT");
          slot.paused = false;
        }),
      );
      continue;
    }
    counts.kills++;
    slot.child = undefined;
    child.kill("SIGKILL");
    const down = uniform(o.downMs);
    pending.push(
      (async () => {
        await new Promise<void>((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once("exit", () => r())));
        await sleep(down);
        slot.child = await o.restart(slot.address);
        counts.restarts++;
      })(),
    );
  }
  await Promise.all(pending);
  return counts;
}
