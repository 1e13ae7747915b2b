/** Cancellation helpers: everything that waits takes an AbortSignal. */

export class AbortError extends Error {
  override readonly name = "AbortError";
  constructor(message = "The operation was aborted") {
    super(message);
  }
}

/**
 * The reason the engine aborts preempted work with. One shared instance: aborting without a
 * reason makes a DOMException per abort, which costs more than the rest of a DSI step.
 */
export const PREEMPTED: Error = new AbortError("preempted");

export function isAbortError(err: unknown): boolean {
  return err instanceof Error && err.name === "AbortError";
}

/** Throws the signal's reason as an AbortError if it is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortReason(signal);
}

export function abortReason(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  return r instanceof Error && r.name === "AbortError" ? r : new AbortError();
}
