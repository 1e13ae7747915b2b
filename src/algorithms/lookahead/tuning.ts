/**
 * The adaptive lookahead's tuning, in one place. Each constant says what it trades; the
 * lookahead tests (test/algorithms/lookahead.test.ts) are the bounds that hold them.
 */
export const TUNING = {
  /** Largest lookahead `auto` considers. */
  maxLookahead: 8,
  /** Share of a generation's time that probe windows may cost beyond the model's choice. */
  explorationShare: 0.015,
  /**
   * Prior acceptance and its weight in drafts: what is assumed before a generation's own drafts
   * are decided. The runtime's long-run acceptance where it has one, worth `memoryWeight` drafts
   * (most likely the same workload: it steadies the first windows of every generation) until
   * a change of context is detected; else `defaultPrior`, worth `defaultWeight` drafts.
   */
  defaultPrior: 0.5,
  defaultWeight: 1,
  memoryWeight: 20,
  /** Discount per decided draft: the last ~50 drafts make the acceptance estimate (low noise). */
  decidedDiscount: 0.98,
  /**
   * A short-memory estimate (last ~5 drafts) watches for a change of context: when it strays
   * from the long one by more than `changeZ` standard errors, the long one restarts from it.
   */
  fastDiscount: 0.8,
  changeZ: 3,
  /** Discount per plain step (no drafts): the estimate relaxes towards the prior. */
  plainDiscount: 0.95,
  /** The DSI model follows an epoch's windows until this probability is left (then a tail). */
  tailMass: 1e-3,
  /** The model's acceptance is capped below 1 (the expected epoch would be endless). */
  maxModelAcceptance: 0.99,
  /** A lookahead must beat a smaller one by this share to be chosen (noise in measured costs). */
  preference: 0.005,
  /**
   * Speculating must beat plain steps by this share: near a tie the i.i.d. model's small
   * advantage is within what it gets wrong (end of generation, acceptance that varies by
   * position), and on a GPU, where speculation pays, the margin is far larger.
   */
  speculationHurdle: 0.05,
  /**
   * While speculating, the plain step's cost is re-measured (one plain step, a probe) once this
   * many tasks ran since it was last measured alone: the machine's load changes.
   */
  plainStaleTasks: 40,
  /**
   * SI re-measures it only while its choice beats plain steps by less than this share: a wider
   * margin a change of load would not close (it moves windows' costs too, measured anyway).
   */
  staleMargin: 0.3,
  /** Plain tasks that may go out while a probe waits for its drafts before it is given up. */
  probePatience: 3,
  /**
   * On a shared device (drafter and targets on one CPU), before both conditions were measured:
   * what a task beside another costs against one alone. This machine kind (2-core AMD EPYC, one
   * thread per instance) measured 1.7-2.5 for a target task beside the drafter.
   */
  contentionPrior: 2,
  /**
   * On a shared device, what each draft of a window size never measured adds to a step, as a
   * share of the step: a CPU's pass grows with its tokens (0.4-0.6 per draft measured on the
   * default pair, one thread). Separate devices are priced flat (a GPU's pass barely grows).
   */
  sharedDraftCost: 0.5,
  /** Probes of a size never observed that may come out smaller before the size is given up. */
  sizeProbeAttempts: 2,
} as const;

export type Tuning = typeof TUNING;
