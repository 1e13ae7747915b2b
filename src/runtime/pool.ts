/**
 * The target pool: the target instances of one process, shared by every generation running
 * in it. A generation joins the pool (a `PoolMember`), leases an instance for each task and
 * hands it back when the task's evaluation has settled, so no instance ever runs two tasks at
 * once.
 *
 * Policy between generations (fair, and what keeps each generation's guarantees):
 * - A `frontier` claim decides a generation's first undecided position (every non-SI and SI
 *   step, DSI's frontier and guard tasks); a `window` claim is speculative (DSI's windows).
 * - Reserve: a generation that holds no frontier lease may need one at any moment, so the
 *   pool keeps one instance free for each such generation. A claim is granted past that
 *   reserve only when it is its generation's own frontier claim; everything else (windows, a
 *   second frontier task) takes only instances beyond the others' reserve.
 * - Waiting claims are served frontier claims first (a generation's first frontier lease
 *   before a second one), then windows, first come first served within a kind.
 * - Nothing is taken away from a running task.
 * So with at least one instance per active generation, every generation's frontier claim is
 * served at once and keeps DSI's never-slower-than-non-SI bound; speculation uses the rest.
 * A lone generation has the whole pool, exactly as if it were its own.
 * - Admission: at most as many generations run as the pool has live instances; the others
 *   wait, first come first served, until one ends (`PoolMember.admission`, awaited by every
 *   generation before its first step; the reserve counts admitted members). Each running
 *   generation then keeps an instance whose cache holds its sequence. Without this, more
 *   generations than instances take turns on the instances at every step, and each turn
 *   re-reads a whole context: throughput fell to a tenth of one generation at a time.
 *
 * Instances are created lazily, the first time that many are wanted at once, and never more
 * than `size`: a generation that can use two instances never pays for a thousand.
 */
import type { ModelInstance } from "../core/instance.js";
import { AbortError } from "./abort.js";
import { newLearned, type AcceptanceMemory, type Learned, type TaskCosts } from "./costs.js";

/** What a task needs an instance for (see the policy above). */
export type Claim = "frontier" | "window";

export interface Lease {
  readonly instance: ModelInstance;
  /** The instance's index in the pool, 0..size-1 (traces name lanes by it). */
  readonly index: number;
  /** Hands the instance back. Call once, when its evaluation has settled, never while it runs. */
  release(): void;
  /**
   * Takes the instance out of the pool for good (it is lost: its worker died); `why` is kept
   * for the error when no instance is left. Instead of `release`, once.
   */
  retire(why: string): void;
}

/** Every instance of the pool was lost: the message lists them and why. */
export class NoInstanceError extends Error {
  override readonly name = "NoInstanceError";
}

export interface TargetPoolOptions {
  /** Most instances the pool holds: the speculation parallelism (SP). */
  size: number;
  /** Creates instance `index`; called lazily, at most once per index (again only after a failure). */
  create: (index: number) => ModelInstance | Promise<ModelInstance>;
  /** The targets' vocabulary and end-of-sequence token (every instance must match). */
  vocabSize: number;
  eosToken: number | undefined;
  /**
   * How often a lost instance that can come back (`ModelInstance.probe`) is asked whether it
   * serves again, in milliseconds. Defaults to 1000.
   */
  reviveIntervalMs?: number;
  /**
   * When every instance is lost but some can come back (they have `probe`: a worker that is
   * restarting), claims wait this long for one to rejoin before failing with NoInstanceError,
   * in milliseconds. Defaults to 5000.
   */
  rejoinGraceMs?: number;
  /** Costs and acceptance observed by earlier pools over the same instances; default: none yet. */
  learned?: Learned;
}

/** A pool event: an instance leased, handed back, retired (lost), or back after it was lost (for tests and traces). */
export interface PoolEvent {
  type: "lease" | "release" | "retire" | "rejoin";
  instance: number;
  /** The member (generation) that leased it, numbered from 0 in joining order; -1 for a rejoin. */
  member: number;
  /** A retirement's cause. */
  why?: string;
}

/** Upper bound on `size` (1024 targets is already far past any machine's devices). */
export const MAX_POOL_SIZE = 1024;

type SlotState = "empty" | "creating" | "idle" | "busy" | "lost";

interface Waiter {
  member: PoolMember;
  claim: Claim;
  seq: number;
  resolve: (lease: Lease) => void;
  reject: (err: unknown) => void;
}

/** A generation's membership in the pool: how it leases instances. */
export class PoolMember {
  /** Whether the member may run: admitted at join, or later when a running generation ends. */
  admitted = false;
  /** Frontier leases this member holds now. */
  frontierLeases = 0;
  /** Leases of any kind this member holds now. */
  leases = 0;
  private left = false;
  constructor(
    private readonly pool: TargetPool,
    readonly id: number,
    /** Most instances this member holds at once (its generation's speculation parallelism). */
    readonly limit: number,
  ) {}

  /** Whether the member may take one more instance. */
  get underLimit(): boolean {
    return this.leases < this.limit;
  }

  /**
   * Resolves once the member is admitted (at once when it was at join): at most as many
   * generations run as there are live instances. Rejects with an AbortError if `signal`
   * aborts first (the member leaves the queue), or a NoInstanceError when every instance is lost.
   */
  admission(signal?: AbortSignal): Promise<void> {
    return this.pool.admissionOf(this, signal);
  }

  /** A lease at once when the policy allows one now; undefined otherwise. Never waits. */
  tryAcquire(claim: Claim): Lease | undefined {
    return this.pool.tryAcquireFor(this, claim);
  }

  /**
   * A lease when the policy allows: at once, or when an instance is released or made.
   * Rejects with an AbortError if `signal` aborts first (the claim is withdrawn), or with the
   * factory's error if making the instance fails.
   */
  acquire(claim: Claim, signal?: AbortSignal): Promise<Lease> {
    return this.pool.acquireFor(this, claim, signal);
  }

  /** Instances a window claim of this member could take now (beyond the others' reserve). */
  available(): number {
    return this.pool.availableTo(this);
  }

  /** Leaves the pool (the generation ended); its reserve goes back to the others. Idempotent. */
  leave(): void {
    if (this.left) return;
    this.left = true;
    this.pool.remove(this);
  }
}

export class TargetPool {
  readonly size: number;
  readonly vocabSize: number;
  readonly eosToken: number | undefined;
  /** Observed task durations, kept across generations (DSI's slack and guard rules, the adaptive lookahead). */
  readonly costs: TaskCosts;
  /** Acceptance of drafts seen by the generations on this pool (the adaptive lookahead's prior). */
  readonly acceptance: AcceptanceMemory;
  /** When set, every lease and release is appended here, in order. */
  log: PoolEvent[] | undefined;
  /** When set, hears each retirement and rejoin as it happens (a long-lived process logs them). */
  onLossOrReturn: ((e: PoolEvent, label: string) => void) | undefined;
  private readonly instances: (ModelInstance | undefined)[] = [];
  /** The member that leased each instance last (instance affinity, see idleFor). */
  private readonly lastUser: (PoolMember | undefined)[] = [];
  private readonly slots: SlotState[];
  private readonly members = new Set<PoolMember>();
  /** Members waiting to be admitted, in joining order, with their waiters once they wait. */
  private readonly admissionQueue: PoolMember[] = [];
  private readonly admissionWaiters = new Map<PoolMember, { resolve: () => void; reject: (err: unknown) => void }>();
  private running = 0;
  private memberIds = 0;
  private waiting: Waiter[] = [];
  private waiterSeq = 0;
  /** Why each lost instance was retired, for the error when none is left. */
  private readonly losses: string[] = [];
  private readonly create: TargetPoolOptions["create"];
  private readonly reviveIntervalMs: number;
  private readonly rejoinGraceMs: number;
  /** Lost instances being probed (they may come back). */
  private readonly returning = new Set<number>();
  /** When the last live instance was lost (the rejoin grace counts from here), and its timer. */
  private noneSince = 0;
  private graceTimer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;

  constructor(o: TargetPoolOptions) {
    if (!(Number.isInteger(o.size) && o.size >= 1 && o.size <= MAX_POOL_SIZE)) {
      throw new RangeError(`the target pool size must be an integer in 1..${MAX_POOL_SIZE}, got ${o.size}`);
    }
    this.size = o.size;
    this.create = o.create;
    this.vocabSize = o.vocabSize;
    this.eosToken = o.eosToken;
    this.reviveIntervalMs = o.reviveIntervalMs ?? 1000;
    this.rejoinGraceMs = o.rejoinGraceMs ?? 5000;
    ({ costs: this.costs, acceptance: this.acceptance } = o.learned ?? newLearned());
    this.slots = new Array<SlotState>(o.size).fill("empty");
  }

  /** Stops asking lost instances whether they are back. Idempotent. */
  close(): void {
    this.closed = true;
    clearTimeout(this.graceTimer);
  }

  /** A pool over existing instances (the first one's vocabulary and EOS). */
  static of(instances: readonly ModelInstance[]): TargetPool {
    if (instances.length === 0) throw new RangeError("a target pool needs at least one instance");
    return new TargetPool({ size: instances.length, create: (i) => instances[i], vocabSize: instances[0].vocabSize, eosToken: instances[0].eosToken });
  }

  /**
   * Joins the pool: one membership per generation, left when the generation ends; the
   * member holds at most `limit` instances at once (default: the whole pool).
   */
  join(limit = this.size): PoolMember {
    if (!(Number.isInteger(limit) && limit >= 1 && limit <= this.size)) throw new RangeError(`a member's instance limit must be an integer in 1..${this.size}, got ${limit}`);
    const m = new PoolMember(this, this.memberIds++, limit);
    this.members.add(m);
    this.admissionQueue.push(m);
    this.admit();
    return m;
  }

  /** Generations admitted and running now (at most the live instances, see admission). */
  get runningMembers(): number {
    return this.running;
  }

  /** Generations waiting to be admitted. */
  get queuedMembers(): number {
    return this.admissionQueue.length;
  }

  /** Admits waiting members, oldest first, while fewer run than instances are alive. */
  private admit(): void {
    while (this.admissionQueue.length > 0 && this.running < this.alive) {
      const m = this.admissionQueue.shift()!;
      m.admitted = true;
      this.running++;
      this.admissionWaiters.get(m)?.resolve();
      this.admissionWaiters.delete(m);
    }
  }

  /** @internal */
  admissionOf(m: PoolMember, signal?: AbortSignal): Promise<void> {
    if (m.admitted) return Promise.resolve();
    if (signal?.aborted) return Promise.reject(new AbortError());
    if (this.hopeless()) return Promise.reject(this.noneLeft());
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        if (!this.admissionWaiters.has(m)) return;
        this.admissionWaiters.delete(m);
        reject(new AbortError());
      };
      this.admissionWaiters.set(m, {
        resolve: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
        reject: (err) => {
          signal?.removeEventListener("abort", onAbort);
          reject(err);
        },
      });
      signal?.addEventListener("abort", onAbort, { once: true });
      this.failIfHopeless(); // no instance now: wait for a rejoin, within the grace
    });
  }

  /** Instances created so far (lost ones included). */
  get created(): number {
    return this.slots.filter((s) => s !== "empty" && s !== "creating").length;
  }

  /** Instances that can still serve (created or not). */
  get alive(): number {
    return this.slots.filter((s) => s !== "lost").length;
  }

  private noneLeft(): NoInstanceError {
    return new NoInstanceError(`no target instance left: ${this.losses.join("; ")}`);
  }

  /**
   * No live instance: whether claims must fail now (nothing can come back, or the rejoin grace
   * is over) rather than wait for a lost instance to rejoin.
   */
  private hopeless(): boolean {
    return this.alive === 0 && (this.returning.size === 0 || this.closed || Date.now() - this.noneSince >= this.rejoinGraceMs);
  }

  /** Fails every waiting claim and admission when no instance is left and none may come back in time. */
  private failIfHopeless(): void {
    if (this.alive > 0) return;
    if (!this.hopeless()) {
      if (this.graceTimer === undefined && (this.waiting.length > 0 || this.admissionWaiters.size > 0)) {
        this.graceTimer = setTimeout(() => {
          this.graceTimer = undefined;
          this.failIfHopeless();
        }, this.noneSince + this.rejoinGraceMs - Date.now());
      }
      return;
    }
    clearTimeout(this.graceTimer);
    this.graceTimer = undefined;
    const err = this.noneLeft();
    for (const w of this.waiting.splice(0)) w.reject(err);
    for (const w of this.admissionWaiters.values()) w.reject(err);
    this.admissionWaiters.clear();
  }

  /** Instances evaluating now. */
  get busy(): number {
    let n = 0;
    for (const s of this.slots) if (s === "busy") n++;
    return n;
  }

  /** Idle instances plus those not created yet. */
  free(): number {
    let n = 0;
    for (const s of this.slots) if (s === "idle" || s === "empty") n++;
    return n;
  }

  // ---- the policy ----

  /** Instances kept for the other members' frontier claims. */
  private reserveFor(m: PoolMember): number {
    let n = 0;
    for (const o of this.members) if (o !== m && o.admitted && o.frontierLeases === 0) n++;
    return n;
  }

  /** The member's own frontier claim while it holds none: served first, past the reserve. */
  private urgent(m: PoolMember, claim: Claim): boolean {
    return claim === "frontier" && m.frontierLeases === 0;
  }

  /** Serving order: urgent frontier claims, other frontier claims, windows. */
  private rank(w: { member: PoolMember; claim: Claim }): number {
    return this.urgent(w.member, w.claim) ? 0 : w.claim === "frontier" ? 1 : 2;
  }

  private grantable(m: PoolMember, claim: Claim): boolean {
    const free = this.free();
    return free > 0 && m.underLimit && (this.urgent(m, claim) || free > this.reserveFor(m));
  }

  /** @internal */
  availableTo(m: PoolMember): number {
    return Math.max(0, Math.min(this.free() - this.reserveFor(m), m.limit - m.leases));
  }

  /** @internal */
  tryAcquireFor(m: PoolMember, claim: Claim): Lease | undefined {
    const rank = this.rank({ member: m, claim });
    // Claims waiting before this one, of the same or a higher rank, go first (a member at its
    // limit waits for its own release, not in anyone's way).
    if (this.waiting.some((w) => this.rank(w) <= rank && w.member.underLimit)) return undefined;
    if (!this.grantable(m, claim)) return undefined;
    const idle = this.idleFor(m);
    if (idle >= 0) return this.lease(idle, m, claim);
    // Instances on the way go to waiting claims (serve); this one may start the next.
    if (this.slots.includes("creating")) return undefined;
    const empty = this.slots.indexOf("empty");
    const made = this.make(empty);
    if (made instanceof Promise) {
      // Not ready at once: the instance goes to whoever is first when it is made.
      void made.then(
        () => this.serve(),
        (err: unknown) => this.failFirst(err),
      );
      return undefined;
    }
    return this.lease(empty, m, claim);
  }

  /** @internal */
  acquireFor(m: PoolMember, claim: Claim, signal?: AbortSignal): Promise<Lease> {
    if (signal?.aborted) return Promise.reject(new AbortError());
    if (this.hopeless()) return Promise.reject(this.noneLeft());
    try {
      const now = this.tryAcquireFor(m, claim);
      if (now) return Promise.resolve(now);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<Lease>((resolve, reject) => {
      const onAbort = (): void => {
        const before = this.waiting.length;
        this.waiting = this.waiting.filter((w) => w !== waiter);
        if (this.waiting.length === before) return;
        reject(new AbortError());
        this.serve(); // a withdrawn claim may have been holding others back
      };
      const waiter: Waiter = {
        member: m,
        claim,
        seq: this.waiterSeq++,
        resolve: (lease) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(lease);
        },
        reject: (err) => {
          signal?.removeEventListener("abort", onAbort);
          reject(err);
        },
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiting.push(waiter);
      this.serve();
      this.failIfHopeless(); // no instance now: wait for a rejoin, within the grace
    });
  }

  /** @internal */
  remove(m: PoolMember): void {
    this.members.delete(m);
    if (m.admitted) this.running--;
    else {
      const at = this.admissionQueue.indexOf(m);
      if (at >= 0) this.admissionQueue.splice(at, 1);
      this.admissionWaiters.get(m)?.reject(new AbortError());
      this.admissionWaiters.delete(m);
    }
    this.admit();
    this.serve(); // its reserve is free for the others now
  }

  /** Grants waiting claims, best rank first, while the policy allows. */
  private serve(): void {
    for (;;) {
      const ready = this.waiting.filter((w) => this.grantable(w.member, w.claim)).sort((a, b) => this.rank(a) - this.rank(b) || a.seq - b.seq);
      const w = ready[0];
      if (!w) return;
      const idle = this.idleFor(w.member);
      if (idle >= 0) {
        this.waiting = this.waiting.filter((x) => x !== w);
        w.resolve(this.lease(idle, w.member, w.claim));
        continue;
      }
      // Only instances still to be made are free: make one unless enough are on the way.
      const creating = this.slots.filter((s) => s === "creating").length;
      if (creating >= ready.length) return;
      const empty = this.slots.indexOf("empty");
      let made: ModelInstance | Promise<void>;
      try {
        made = this.make(empty);
      } catch (err) {
        this.waiting = this.waiting.filter((x) => x !== w);
        w.reject(err);
        continue;
      }
      if (made instanceof Promise) {
        void made.then(
          () => this.serve(),
          (err: unknown) => this.failFirst(err),
        );
      }
    }
  }

  /**
   * Which idle instance a member gets: the one it used last if idle (its cache holds the
   * member's sequence, so the call sends and evaluates only new tokens), else the first idle
   * instance no live member used last, else the first idle one; -1 when none is idle. The
   * policy above decides who is served; this only decides which instance.
   */
  private idleFor(m: PoolMember): number {
    let fallback = -1;
    let unclaimed = -1;
    for (let i = 0; i < this.slots.length; i++) {
      if (this.slots[i] !== "idle") continue;
      const last = this.lastUser[i];
      if (last === m) return i;
      if (fallback < 0) fallback = i;
      if (unclaimed < 0 && (last === undefined || !this.members.has(last))) unclaimed = i;
    }
    return unclaimed >= 0 ? unclaimed : fallback;
  }

  /** Creation failed: the first waiter learns why its instance never came. */
  private failFirst(err: unknown): void {
    const w = [...this.waiting].sort((a, b) => this.rank(a) - this.rank(b) || a.seq - b.seq)[0];
    if (w) {
      this.waiting = this.waiting.filter((x) => x !== w);
      w.reject(err);
    }
    this.serve();
  }

  /**
   * Makes the instance of an empty slot: returns it when the factory is synchronous (slot
   * idle), else a promise settled when the slot is idle (or empty again after a failure).
   */
  private make(index: number): ModelInstance | Promise<void> {
    const made = this.create(index);
    if (!(made instanceof Promise)) {
      this.add(made, index);
      return made;
    }
    this.slots[index] = "creating";
    return made.then(
      (instance) => {
        try {
          this.add(instance, index);
        } catch (err) {
          this.slots[index] = "empty";
          throw err;
        }
      },
      (err: unknown) => {
        this.slots[index] = "empty";
        throw err;
      },
    );
  }

  private add(instance: ModelInstance, index: number): void {
    if (instance.vocabSize !== this.vocabSize) {
      throw new RangeError(`target instance ${index} has a vocabulary of ${instance.vocabSize}, the pool's targets have ${this.vocabSize}`);
    }
    this.instances[index] = instance;
    this.slots[index] = "idle";
  }

  private lease(index: number, m: PoolMember, claim: Claim): Lease {
    this.slots[index] = "busy";
    this.lastUser[index] = m;
    m.leases++;
    if (claim === "frontier") m.frontierLeases++;
    this.log?.push({ type: "lease", instance: index, member: m.id });
    let released = false;
    const end = (): void => {
      if (released) throw new Error(`target instance ${index} released twice`);
      released = true;
      m.leases--;
      if (claim === "frontier") m.frontierLeases--;
      this.log?.push({ type: "release", instance: index, member: m.id });
    };
    return {
      instance: this.instances[index]!,
      index,
      release: () => {
        end();
        this.slots[index] = "idle";
        this.serve();
      },
      retire: (why) => {
        end();
        this.slots[index] = "lost";
        const loss = `${this.instances[index]!.label}: ${why}`;
        this.losses.push(loss);
        const e: PoolEvent = { type: "retire", instance: index, member: m.id, why };
        this.log?.push(e);
        this.onLossOrReturn?.(e, this.instances[index]!.label);
        this.watchForReturn(index, loss);
        if (this.alive === 0) this.noneSince = Date.now();
        this.failIfHopeless();
        this.serve();
      },
    };
  }

  /**
   * A lost instance that can come back (a restarted worker) is probed on a timer (real time:
   * only remote instances probe) and rejoins the pool, same index, when it answers unchanged.
   */
  private watchForReturn(index: number, loss: string): void {
    const instance = this.instances[index]!;
    if (!instance.probe) return;
    this.returning.add(index);
    const check = (): void => {
      if (this.closed) return;
      instance.probe!().then(
        (back) => {
          if (this.closed || this.slots[index] !== "lost") return;
          if (!back) return void setTimeout(check, this.reviveIntervalMs).unref();
          this.slots[index] = "idle";
          this.returning.delete(index);
          clearTimeout(this.graceTimer);
          this.graceTimer = undefined;
          this.losses.splice(this.losses.indexOf(loss), 1);
          const e: PoolEvent = { type: "rejoin", instance: index, member: -1 };
          this.log?.push(e);
          this.onLossOrReturn?.(e, instance.label);
          this.admit();
          this.serve();
        },
        () => {
          // It will not come back: stays lost, and claims stop waiting for it.
          this.returning.delete(index);
          this.failIfHopeless();
        },
      );
    };
    setTimeout(check, this.reviveIntervalMs).unref();
  }
}
