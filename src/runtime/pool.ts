/**
 * The target pool: the target instances of one runtime, shared by every generation running
 * on it. A generation joins the pool (a `PoolMember`), leases an instance for each task and
 * hands it back when the task's evaluation has settled, so no instance ever runs two tasks at
 * once. The pool only leases; what generations learn about the instances lives in the
 * runtime (`Runtime.learned`), which instances are lost and whether they come back in
 * `InstanceHealth` (instance-health.ts).
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
 * (With sequences, a frontier claim waits when every free sequence lies on an instance its
 * generation already runs a task on: its tasks never share one instance's compute.)
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
 *
 * Sequences (`sequences` S per instance): an instance may hold S sequences, each with its own
 * cache, that share its compute (a llama.cpp context's sequences share its forward passes on
 * a CPU with one thread, else take turns on it: llama.ts; a modelled instance's share passes:
 * batch-device.ts). The pool then leases sequences: admission
 * counts them (S generations per instance keep their caches), the affinity above keeps a
 * generation on its sequences, a generation's concurrent tasks go only to sequences of
 * different instances (separate devices run in parallel; two sequences of one instance share
 * its compute), and speculation (windows, a second frontier task) only to instances no other
 * generation comes back to or runs a task on, unless passes carry extra positions at the cost
 * of one (`freePositions`), and then only within them (`room`): what keeps each generation's
 * frontier at non-SI's pace when compute, not sequences, runs out (`openTo`). A generation's
 * limit still counts leases, at most `size`.
 */
import type { ModelInstance } from "../core/instance.js";
import { AbortError } from "./abort.js";
import { RealClock, type Clock } from "./clock.js";
import type { EventLog } from "./events.js";
import { InstanceHealth } from "./instance-health.js";

export { NoInstanceError } from "./instance-health.js";
export type { PoolEvent } from "./events.js";

/** What a task needs an instance for (see the policy above). */
export type Claim = "frontier" | "window";

export interface Lease {
  readonly instance: ModelInstance;
  /** The instance's index in the pool, 0..size-1 (traces name lanes by it). */
  readonly index: number;
  /** Hands the instance back. Call once, when its evaluation has settled, never while it runs. */
  release(): void;
  /**
   * Declares the positions the task's pass carries (a window of k drafts: k + 1; default 1),
   * what it takes of a pass other generations share (`PoolMember.room`).
   */
  carry(positions: number): void;
  /**
   * Takes the instance out of the pool (it is lost: its worker died); `why` is kept for the
   * error when no instance is left. Instead of `release`, once. With several sequences per
   * instance its idle sequences (those made) go too: they share its context or worker (busy
   * ones go when their calls fail; a custom instance whose sequences fail apart should not
   * throw `InstanceLostError` for one). An instance (each sequence) that can come back
   * (`ModelInstance.probe`) rejoins when it answers again.
   */
  retire(why: string): void;
}

export interface TargetPoolOptions {
  /** Most instances the pool holds: the speculation parallelism (SP). */
  size: number;
  /**
   * Sequences per instance (default 1): an instance that holds several sequences (a llama.cpp
   * context with S sequences) serves one generation on each, the sequences sharing its compute.
   * The pool leases sequences: sequence
   * `index` belongs to instance `floor(index / sequences)`. Each is a `ModelInstance` of its own
   * (its own cache); the pool only needs to know which share an instance.
   */
  sequences?: number;
  /**
   * Creates sequence `index` (0..size * sequences - 1; with one sequence per instance, instance
   * `index`); called lazily, at most once per index (again only after a failure).
   */
  create: (index: number) => ModelInstance | Promise<ModelInstance>;
  /** The targets' vocabulary and end-of-sequence token (every instance must match). */
  vocabSize: number;
  eosToken: number | undefined;
  /** The runtime's clock: probes of lost instances and the rejoin grace run on it. Defaults to a real clock. */
  clock?: Clock;
  /** Where leases, releases, losses and rejoins are recorded (the runtime's event log); default: nowhere. */
  events?: EventLog;
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
  /**
   * With several sequences per instance: the positions one pass of an instance carries at the
   * cost of one (models/latency.ts, `freePositions`: a GPU-like batch model's knee, unbounded
   * for flat costs). Past 1, speculation may share an instance with other generations' tasks
   * within them (`PoolMember.room`); else it takes only instances no other generation uses.
   * Default 1 (a llama context on a CPU pays for every token a pass carries).
   */
  freePositions?: number;
}

/** Whether a slot in this state can take a task (now, or once made). */
function unused(state: SlotState): boolean {
  return state === "idle" || state === "empty";
}

/** Upper bound on `size` (1024 targets is already far past any machine's devices). */
export const MAX_POOL_SIZE = 1024;
/** Upper bound on instances x sequences. */
export const MAX_POOL_SEQUENCES = 65_536;

/** A generation's membership in the pool: how it leases instances. */
export interface PoolMember {
  /** Numbered from 0 in joining order (the event log names members by it). */
  readonly id: number;
  /** Most instances this member holds at once (its generation's speculation parallelism). */
  readonly limit: number;
  /** Whether the member may run: admitted at join, or later when a running generation ends. */
  readonly admitted: boolean;
  /** Leases of any kind this member holds now. */
  readonly leases: number;
  /** Frontier leases this member holds now. */
  readonly frontierLeases: number;
  /**
   * Resolves once the member is admitted (at once when it was at join): at most as many
   * generations run as there are live instances. Rejects with an AbortError if `signal`
   * aborts first (the member leaves the queue), or a NoInstanceError when every instance is lost.
   */
  admission(signal?: AbortSignal): Promise<void>;
  /** A lease at once when the policy allows one now; undefined otherwise. Never waits. */
  tryAcquire(claim: Claim): Lease | undefined;
  /**
   * A lease when the policy allows: at once, or when an instance is released or made.
   * Rejects with an AbortError if `signal` aborts first (the claim is withdrawn); with the
   * factory's error if making an instance fails while this is the first waiting claim in
   * serving order (the one that instance would have gone to); with a NoInstanceError when
   * every instance is lost.
   */
  acquire(claim: Claim, signal?: AbortSignal): Promise<Lease>;
  /** Instances a window claim of this member could take now (beyond the others' reserve). */
  available(): number;
  /**
   * Whether a lease this member holds may serve a task of `claim`'s kind: with several
   * sequences per instance, one granted for the member's frontier may lie beside another
   * generation's task, where a window may not go (`openTo`); else always.
   */
  suits(lease: Lease, claim: Claim): boolean;
  /**
   * The most positions a task on this lease may carry (drafts + 1) without pushing a pass that
   * other generations share past the positions it carries at the cost of one, keeping one for
   * each of them (its running task's, or 1 for the next one of a generation at home there):
   * unbounded when no other generation is on the instance, or where every extra position is
   * paid for (`freePositions` 1: what a task carries beside others is then the lookahead's to
   * price). Below 1 when the others already fill the pass.
   */
  room(lease: Lease): number;
  /** Whether other generations take part in the passes of the lease's instance (their tasks, or their own homes). */
  shared(lease: Lease): boolean;
  /** `shared` at this member's home instance; false without a home. */
  homeShared(): boolean;
  /** `room` for a task at the member's home (its frontier task's instance); unbounded without a home. */
  homeRoom(): number;
  /** Leaves the pool (the generation ended); its reserve goes back to the others. Idempotent. */
  leave(): void;
}

/** What a member asks of its pool: the pool's policy, behind a narrow door. */
interface MemberHost {
  admission(m: Member, signal?: AbortSignal): Promise<void>;
  tryAcquire(m: Member, claim: Claim): Lease | undefined;
  acquire(m: Member, claim: Claim, signal?: AbortSignal): Promise<Lease>;
  available(m: Member): number;
  suits(m: Member, lease: Lease, claim: Claim): boolean;
  room(m: Member, lease: Lease): number;
  shared(m: Member, lease: Lease): boolean;
  homeShared(m: Member): boolean;
  homeRoom(m: Member): number;
  leave(m: Member): void;
}

/** A member's state, kept by its pool (only the pool changes it). */
class Member implements PoolMember {
  admitted = false;
  leases = 0;
  frontierLeases = 0;
  left = false;
  /**
   * With several sequences per instance: the instances it holds a lease on (at most one each:
   * `openTo`), each with the positions its task there declared (`Lease.carry`; 1 until then).
   */
  readonly onInstance = new Map<number, number>();
  /** With several sequences per instance: the instance of the member's last frontier lease, where its frontier comes back (`homesIn`). */
  home: number | undefined;
  constructor(
    private readonly host: MemberHost,
    readonly id: number,
    readonly limit: number,
  ) {}

  get underLimit(): boolean {
    return this.leases < this.limit;
  }

  admission(signal?: AbortSignal): Promise<void> {
    return this.host.admission(this, signal);
  }

  tryAcquire(claim: Claim): Lease | undefined {
    return this.host.tryAcquire(this, claim);
  }

  acquire(claim: Claim, signal?: AbortSignal): Promise<Lease> {
    return this.host.acquire(this, claim, signal);
  }

  available(): number {
    return this.host.available(this);
  }

  suits(lease: Lease, claim: Claim): boolean {
    return this.host.suits(this, lease, claim);
  }

  room(lease: Lease): number {
    return this.host.room(this, lease);
  }

  shared(lease: Lease): boolean {
    return this.host.shared(this, lease);
  }

  homeShared(): boolean {
    return this.host.homeShared(this);
  }

  homeRoom(): number {
    return this.host.homeRoom(this);
  }

  leave(): void {
    if (this.left) return;
    this.left = true;
    this.host.leave(this);
  }
}

type SlotState = "empty" | "creating" | "idle" | "busy" | "lost";

interface Waiter {
  member: Member;
  claim: Claim;
  resolve: (lease: Lease) => void;
  reject: (err: unknown) => void;
}

export class TargetPool {
  /** Instances (SP). */
  readonly size: number;
  /** Sequences per instance. */
  readonly sequences: number;
  /** See TargetPoolOptions.freePositions. */
  readonly freePositions: number;
  /** Whether a pass carries a task's extra positions without cost to its other sequences (up to `freePositions`). */
  get sharesFreely(): boolean {
    return this.freePositions > 1;
  }
  readonly vocabSize: number;
  readonly eosToken: number | undefined;
  private readonly instances: (ModelInstance | undefined)[] = [];
  /** The member that leased each instance last (instance affinity, see idleFor). */
  private readonly lastUser: (Member | undefined)[] = [];
  private readonly slots: SlotState[];
  /** Slots in each state, kept with `slots` (setSlot): the policy reads them on every claim. */
  private readonly count: Record<SlotState, number> = { empty: 0, creating: 0, idle: 0, busy: 0, lost: 0 };
  /** Per instance: sequences evaluating, and sequences idle or still to be made (kept by setSlot). */
  private readonly busyIn: Int32Array;
  private readonly unusedIn: Int32Array;
  /** Per instance: live members whose home it is (Member.home), with several sequences per instance. */
  private readonly homesIn: Int32Array;
  /** Per instance: the positions the members on it take of its passes (`presence`, summed; kept by `touching`). */
  private readonly positionsIn: Int32Array;
  private readonly members = new Set<Member>();
  /** Admitted members holding no frontier lease: each has one instance in reserve. */
  private unreserved = 0;
  /** Members waiting to be admitted, in joining order, with their waiters once they wait. */
  private readonly admissionQueue: Member[] = [];
  private readonly admissionWaiters = new Map<Member, { resolve: () => void; reject: (err: unknown) => void }>();
  private running = 0;
  private memberIds = 0;
  /** Waiting claims by kind, each in arrival order (serving order is worked out from these, see `first`). */
  private readonly frontierWaiters: Waiter[] = [];
  private readonly windowWaiters: Waiter[] = [];
  private readonly create: TargetPoolOptions["create"];
  private readonly events: EventLog | undefined;
  private readonly health: InstanceHealth;
  private readonly host: MemberHost = {
    admission: (m, signal) => this.admissionOf(m, signal),
    tryAcquire: (m, claim) => this.tryAcquireFor(m, claim),
    acquire: (m, claim, signal) => this.acquireFor(m, claim, signal),
    available: (m) => this.availableTo(m),
    suits: (m, lease, claim) => this.suits(m, lease, claim),
    room: (m, lease) => this.roomFor(m, this.instanceOf(lease.index)),
    homeRoom: (m) => (m.home === undefined ? Infinity : this.roomFor(m, m.home)),
    shared: (m, lease) => this.sharedWith(m, this.instanceOf(lease.index)),
    homeShared: (m) => m.home !== undefined && this.sharedWith(m, m.home),
    leave: (m) => this.remove(m),
  };

  constructor(o: TargetPoolOptions) {
    if (!(Number.isInteger(o.size) && o.size >= 1 && o.size <= MAX_POOL_SIZE)) {
      throw new RangeError(`the target pool size must be an integer in 1..${MAX_POOL_SIZE}, got ${o.size}`);
    }
    const sequences = o.sequences ?? 1;
    if (!(Number.isInteger(sequences) && sequences >= 1 && o.size * sequences <= MAX_POOL_SEQUENCES)) {
      throw new RangeError(`sequences per instance must be an integer with instances x sequences at most ${MAX_POOL_SEQUENCES}, got ${o.size} x ${sequences}`);
    }
    this.size = o.size;
    this.sequences = sequences;
    this.freePositions = o.freePositions ?? 1;
    if (!(this.freePositions >= 1)) throw new RangeError(`free positions per pass must be at least 1, got ${o.freePositions}`);
    this.create = o.create;
    this.vocabSize = o.vocabSize;
    this.eosToken = o.eosToken;
    this.events = o.events;
    this.slots = new Array<SlotState>(o.size * sequences).fill("empty");
    this.count.empty = o.size * sequences;
    this.busyIn = new Int32Array(o.size);
    this.unusedIn = new Int32Array(o.size).fill(sequences);
    this.homesIn = new Int32Array(o.size);
    this.positionsIn = new Int32Array(o.size);
    this.health = new InstanceHealth({
      clock: o.clock ?? new RealClock(),
      reviveIntervalMs: o.reviveIntervalMs ?? 1000,
      rejoinGraceMs: o.rejoinGraceMs ?? 5000,
      onReturn: (index) => this.rejoin(index),
      onHopeChanged: () => this.failIfHopeless(),
    });
  }

  /**
   * Stops asking lost instances whether they are back (the runtime closes); with none left,
   * the claims that waited for one fail now. Idempotent.
   */
  close(): void {
    this.health.close();
    this.failIfHopeless();
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
    const m = new Member(this.host, this.memberIds++, limit);
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

  /** Instances created so far (lost ones included). */
  get created(): number {
    return this.count.idle + this.count.busy + this.count.lost;
  }

  /** Sequences that can still serve (created or not): instances x sequences, less the lost. */
  get alive(): number {
    return this.slots.length - this.count.lost;
  }

  /** Sequences evaluating now. */
  get busy(): number {
    return this.count.busy;
  }

  /** Instances with a sequence evaluating now. */
  get busyInstances(): number {
    let n = 0;
    for (let instance = 0; instance < this.size; instance++) if (this.busyIn[instance] > 0) n++;
    return n;
  }

  /** Sequences of `instance` lost now (0 to `sequences`). */
  lostOn(instance: number): number {
    let n = 0;
    for (let j = instance * this.sequences; j < (instance + 1) * this.sequences; j++) if (this.slots[j] === "lost") n++;
    return n;
  }

  /** The instance a sequence belongs to. */
  instanceOf(index: number): number {
    return Math.floor(index / this.sequences);
  }

  /** Sequences of `instance` evaluating now (they share its compute). */
  busyOn(instance: number): number {
    return this.busyIn[instance];
  }

  /** Idle sequences plus those not created yet. */
  free(): number {
    return this.count.idle + this.count.empty;
  }

  private setSlot(index: number, state: SlotState): void {
    const instance = this.instanceOf(index);
    const was = this.slots[index];
    this.count[was]--;
    this.count[state]++;
    this.busyIn[instance] += (state === "busy" ? 1 : 0) - (was === "busy" ? 1 : 0);
    this.unusedIn[instance] += (unused(state) ? 1 : 0) - (unused(was) ? 1 : 0);
    this.slots[index] = state;
  }

  // ---- admission ----

  /** Admits waiting members, oldest first, while fewer run than instances are alive. */
  private admit(): void {
    while (this.admissionQueue.length > 0 && this.running < this.alive) {
      const m = this.admissionQueue.shift()!;
      m.admitted = true;
      this.running++;
      if (m.frontierLeases === 0) this.unreserved++;
      this.admissionWaiters.get(m)?.resolve();
      this.admissionWaiters.delete(m);
    }
  }

  private admissionOf(m: Member, signal?: AbortSignal): Promise<void> {
    if (m.admitted) return Promise.resolve();
    if (signal?.aborted) return Promise.reject(new AbortError());
    if (this.hopeless()) return Promise.reject(this.health.noneLeft());
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

  private remove(m: Member): void {
    this.members.delete(m);
    this.setHome(m, undefined);
    if (m.admitted) {
      this.running--;
      if (m.frontierLeases === 0) this.unreserved--;
    } else {
      const at = this.admissionQueue.indexOf(m);
      if (at >= 0) this.admissionQueue.splice(at, 1);
      this.admissionWaiters.get(m)?.reject(new AbortError());
      this.admissionWaiters.delete(m);
    }
    this.admit();
    this.serve(); // its reserve is free for the others now
  }

  // ---- no instance left ----

  /** No live instance, and claims must fail now rather than wait for one to rejoin. */
  private hopeless(): boolean {
    return this.alive === 0 && this.health.hopeless();
  }

  /** Fails every waiting claim and admission when no instance is left and none may come back in time. */
  private failIfHopeless(): void {
    if (this.alive > 0) return;
    if (!this.hopeless()) {
      if (this.frontierWaiters.length + this.windowWaiters.length > 0 || this.admissionWaiters.size > 0) this.health.awaitGraceEnd();
      return;
    }
    this.health.cancelGraceEnd();
    const err = this.health.noneLeft();
    for (const w of [...this.frontierWaiters.splice(0), ...this.windowWaiters.splice(0)]) w.reject(err);
    for (const w of this.admissionWaiters.values()) w.reject(err);
    this.admissionWaiters.clear();
  }

  // ---- the policy ----

  /** Instances kept for the other members' frontier claims. */
  private reserveFor(m: Member): number {
    return this.unreserved - (m.admitted && m.frontierLeases === 0 && this.members.has(m) ? 1 : 0);
  }

  /** The member's own frontier claim while it holds none: served first, past the reserve. */
  private urgent(m: Member, claim: Claim): boolean {
    return claim === "frontier" && m.frontierLeases === 0;
  }

  private grantable(m: Member, claim: Claim): boolean {
    const free = this.free();
    return free > 0 && m.underLimit && (this.urgent(m, claim) || free > this.reserveFor(m)) && (this.sequences === 1 || this.opensFor(m, claim) > 0);
  }

  /**
   * With several sequences per instance, where a member's claim may go: an instance it holds
   * nothing on (its tasks run in parallel only on separate devices: two of them on one
   * instance would share its compute, which DSI's lanes do not assume), and for anything but
   * its own frontier claim (a window, a second frontier task) one no other live member comes
   * back to (its home) that runs no other member's task either, unless its passes have room
   * for a draft (`spareFor`; speculation takes only compute no one else uses: on a device
   * whose pass grows with its tokens a window beside another generation's task slows that
   * task, and a frontier task beside it keeps no bound).
   */
  private openTo(m: Member, claim: Claim, instance: number): boolean {
    if (m.onInstance.has(instance)) return false;
    // (The member holds nothing here: whatever runs on it is another generation's.)
    if (this.urgent(m, claim)) return !this.homeOfAnother(m, instance) || !this.homeComesBack(m);
    return this.spareFor(m, instance, this.busyIn[instance]);
  }

  /**
   * The speculation rule of `openTo` and `suits`: an instance no other live generation comes
   * back to, running no other generation's task (`othersBusy` of them) unless its passes have
   * room for a draft beside theirs (`roomOn`: positions at the cost of one left).
   */
  private spareFor(m: Member, instance: number, othersBusy: number): boolean {
    return (othersBusy === 0 || this.roomOn(m, instance) >= 2) && !this.homeOfAnother(m, instance);
  }

  /**
   * Positions of a pass on the instance the member may take: what a pass carries at the cost
   * of one, less what the other members there take (`presence`).
   */
  private roomOn(m: Member, instance: number): number {
    return this.freePositions - this.othersPositions(m, instance);
  }

  /** `PoolMember.room` of a task on the instance. */
  private roomFor(m: Member, instance: number): number {
    if (this.sequences === 1 || !this.sharesFreely) return Infinity;
    return this.othersPositions(m, instance) === 0 ? Infinity : this.roomOn(m, instance);
  }

  /** What the other members on an instance take of its passes (`presence`, summed). */
  private othersPositions(m: Member, instance: number): number {
    return this.positionsIn[instance] - this.presence(m, instance);
  }

  /**
   * What a member takes of an instance's passes: the positions its task there declared, else 1
   * where it is at home (its frontier comes back), else nothing.
   */
  private presence(m: Member, instance: number): number {
    return m.onInstance.get(instance) ?? (m.home === instance ? 1 : 0);
  }

  /** Whether other generations take part in an instance's passes (`PoolMember.shared`). */
  private sharedWith(m: Member, instance: number): boolean {
    return this.othersPositions(m, instance) > 0;
  }

  /**
   * Runs `change` to a member's leases, declarations or home, keeping `positionsIn` of the one or
   * two (distinct) instances it touches. (Runs on every lease, release and evaluation: no arrays.)
   */
  private touching(m: Member, a: number | undefined, b: number | undefined, change: () => void): void {
    const beforeA = a === undefined ? 0 : this.presence(m, a);
    const beforeB = b === undefined ? 0 : this.presence(m, b);
    change();
    if (a !== undefined) this.positionsIn[a] += this.presence(m, a) - beforeA;
    if (b !== undefined) this.positionsIn[b] += this.presence(m, b) - beforeB;
  }

  /**
   * Whether the member's home holds a lease of its own while it claims its frontier: a task it
   * preempted (its lease comes back when the call returns, at once where it can abort), since a
   * running task of its own would cover the frontier. Its frontier claim then waits for home
   * rather than take another generation's (before: after each rejection DSI's next frontier
   * task took the first idle instance, another generation's home, and homes moved round).
   */
  private homeComesBack(m: Member): boolean {
    return m.home !== undefined && m.onInstance.has(m.home);
  }

  /**
   * Whether another live generation's frontier comes back to this instance (its home). An idle
   * instance is not spare when a generation only waits there for its next draft or result: a
   * window sent there meanwhile would hold that generation's next frontier task back for a
   * whole window, or slow its pass. (Before: with 4 generations on 4 CPU-like instances, DSI's
   * windows took the others' instances between their tasks: 90 tokens/s against non-SI's 106.)
   */
  private homeOfAnother(m: Member, instance: number): boolean {
    return this.othersHomes(m, instance) > 0;
  }

  /** `PoolMember.suits`: `openTo`'s rule for a lease the member holds (its own task is the one busy there). */
  private suits(m: Member, lease: Lease, claim: Claim): boolean {
    if (this.sequences === 1 || claim === "frontier") return true;
    const instance = this.instanceOf(lease.index);
    return this.spareFor(m, instance, this.busyIn[instance] - 1);
  }

  /** Other live generations whose home is this instance. */
  private othersHomes(m: Member, instance: number): number {
    return this.homesIn[instance] - (m.home === instance ? 1 : 0);
  }

  /**
   * How crowded an instance is for a member's claim, least first: other generations' homes,
   * then busy sequences. Homes spread over instances: a generation's frontier placed beside
   * another's home shares its passes for good, and keeps speculation off that instance (before:
   * by busy sequences alone, a new generation took the idle home of one waiting for its drafts
   * while instances that only ran windows were busy, and at 4 streams on 4 GPU-like instances
   * three generations' homes shared one).
   */
  private crowding(m: Member, instance: number, busy = this.busyOn(instance)): number {
    return this.othersHomes(m, instance) * (this.sequences + 1) + busy;
  }

  /** Moves a member's home (undefined: it has none, it left). */
  private setHome(m: Member, instance: number | undefined): void {
    if (m.home === instance) return;
    this.touching(m, m.home, instance, () => {
      if (m.home !== undefined) this.homesIn[m.home]--;
      if (instance !== undefined) this.homesIn[instance]++;
      m.home = instance;
    });
  }

  /** Instances with a sequence idle or still to be made that are open to the claim. */
  private opensFor(m: Member, claim: Claim, atMost = 1): number {
    let open = 0;
    for (let instance = 0; instance < this.size && open < atMost; instance++) {
      if (this.unusedIn[instance] > 0 && this.openTo(m, claim, instance)) open++;
    }
    return open;
  }

  private availableTo(m: Member): number {
    const free = Math.min(this.free() - this.reserveFor(m), m.limit - m.leases);
    if (this.sequences === 1 || free <= 0) return Math.max(0, free);
    // With sequences: the instances a window of this member may go to (one task per instance).
    return this.opensFor(m, "window", free);
  }

  /**
   * The first waiting claim in serving order (urgent frontier claims, other frontier claims,
   * windows; oldest first within each), among the grantable ones when `grantableOnly`.
   */
  private first(grantableOnly: boolean): Waiter | undefined {
    let frontier: Waiter | undefined;
    for (const w of this.frontierWaiters) {
      if (grantableOnly && !this.grantable(w.member, w.claim)) continue;
      if (this.urgent(w.member, w.claim)) return w;
      frontier ??= w;
    }
    if (frontier) return frontier;
    for (const w of this.windowWaiters) if (!grantableOnly || this.grantable(w.member, w.claim)) return w;
    return undefined;
  }

  /** Whether more than `n` waiting claims are grantable now. */
  private grantableMoreThan(n: number): boolean {
    let seen = 0;
    for (const list of [this.frontierWaiters, this.windowWaiters]) {
      for (const w of list) if (this.grantable(w.member, w.claim) && ++seen > n) return true;
    }
    return false;
  }

  /**
   * Whether a claim waits that goes before a new claim of this kind: one of the same or a
   * higher rank (a member at its limit waits for its own release, not in anyone's way).
   */
  private queuedBefore(m: Member, claim: Claim): boolean {
    const urgent = this.urgent(m, claim);
    // (With sequences, a claim that no instance is open to now is in no one's way either.)
    const ahead = (w: Waiter): boolean => w.member.underLimit && (this.sequences === 1 || this.opensFor(w.member, w.claim) > 0);
    for (const w of this.frontierWaiters) {
      if ((!urgent || this.urgent(w.member, w.claim)) && ahead(w)) return true;
    }
    return claim === "window" && this.windowWaiters.some(ahead);
  }

  private withdraw(w: Waiter): boolean {
    const list = w.claim === "frontier" ? this.frontierWaiters : this.windowWaiters;
    const at = list.indexOf(w);
    if (at < 0) return false;
    list.splice(at, 1);
    return true;
  }

  private tryAcquireFor(m: Member, claim: Claim): Lease | undefined {
    if (this.queuedBefore(m, claim)) return undefined;
    if (!this.grantable(m, claim)) return undefined;
    const place = this.placeFor(m, claim);
    if (!place) return undefined;
    if (!place.make) return this.leaseNow(place.index, m, claim);
    // Instances on the way go to waiting claims (serve); this one may start the next.
    if (this.count.creating > 0) return undefined;
    const empty = place.index;
    const made = this.make(empty);
    if (made instanceof Promise) {
      // Not ready at once: the instance goes to whoever is first when it is made.
      void made.then(
        () => this.serve(),
        (err: unknown) => this.failFirst(err),
      );
      return undefined;
    }
    return this.leaseNow(empty, m, claim);
  }

  /**
   * A lease granted to a call that did not wait: where it moves the member's home (a frontier
   * lease), the instance the home left may now be open to a waiting claim, which is served at
   * once (every other change that can open an instance serves the waiting claims too).
   */
  private leaseNow(index: number, m: Member, claim: Claim): Lease {
    const home = m.home;
    const lease = this.lease(index, m, claim);
    if (m.home !== home && this.frontierWaiters.length + this.windowWaiters.length > 0) this.serve();
    return lease;
  }

  private acquireFor(m: Member, claim: Claim, signal?: AbortSignal): Promise<Lease> {
    if (signal?.aborted) return Promise.reject(new AbortError());
    if (this.hopeless()) return Promise.reject(this.health.noneLeft());
    try {
      const now = this.tryAcquireFor(m, claim);
      if (now) return Promise.resolve(now);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<Lease>((resolve, reject) => {
      const onAbort = (): void => {
        if (!this.withdraw(waiter)) return;
        reject(new AbortError());
        this.serve(); // a withdrawn claim may have been holding others back
      };
      const waiter: Waiter = {
        member: m,
        claim,
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
      (claim === "frontier" ? this.frontierWaiters : this.windowWaiters).push(waiter);
      this.serve();
      this.failIfHopeless(); // no instance now: wait for a rejoin, within the grace
    });
  }

  /** Grants waiting claims, best rank first, while the policy allows. */
  private serve(): void {
    for (;;) {
      const w = this.first(true);
      if (!w) return;
      const place = this.placeFor(w.member, w.claim);
      if (place && !place.make) {
        this.withdraw(w);
        w.resolve(this.lease(place.index, w.member, w.claim));
        continue;
      }
      // It waits for a sequence to be made: a later claim whose place is an idle sequence (its
      // own last one, say) goes meanwhile. (Before, it waited for the making behind the first,
      // and a sequence was made for it that it did not need.)
      const later = this.idlePlaced();
      if (later) {
        this.withdraw(later.w);
        later.w.resolve(this.lease(later.index, later.w.member, later.w.claim));
        continue;
      }
      // Only sequences still to be made are free: make one unless enough are on the way.
      if (!place || !this.grantableMoreThan(this.count.creating)) return;
      const empty = place.index;
      let made: ModelInstance | Promise<void>;
      try {
        made = this.make(empty);
      } catch (err) {
        this.withdraw(w);
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

  /** The first grantable waiting claim, in serving order, whose place is an idle sequence. */
  private idlePlaced(): { w: Waiter; index: number } | undefined {
    for (const list of [this.frontierWaiters, this.windowWaiters]) {
      for (const w of list) {
        if (!this.grantable(w.member, w.claim)) continue;
        const place = this.placeFor(w.member, w.claim);
        if (place && !place.make) return { w, index: place.index };
      }
    }
    return undefined;
  }

  /**
   * Where a member's claim goes now: a sequence that is idle, or one to make (`make`); undefined
   * when none is open to it. Its own last sequence first (its cache holds the member's
   * tokens: the call sends and evaluates only new ones). Else, with several sequences per
   * instance, a sequence to make before an idle one another live member used last (a new one
   * costs no re-read; a taken one costs its owner one), and between an idle sequence and one to
   * make, the one on the less crowded instance (`crowding`: other generations' homes, then busy
   * sequences, not counting those being made: they would count against the very instance the
   * claim waits for) (generations spread
   * over devices: before, a generation took the first idle sequence, and four clients sending
   * requests back to back all stayed on the instance made first). With one sequence per
   * instance: an idle instance, else one to make.
   */
  private placeFor(m: Member, claim: Claim): { index: number; make: boolean } | undefined {
    const idle = this.idleFor(m, claim);
    if (idle >= 0 && this.lastUser[idle] === m) return { index: idle, make: false };
    const empty = this.count.empty > 0 ? this.emptyFor(m, claim) : -1;
    if (empty < 0) return idle >= 0 ? { index: idle, make: false } : undefined;
    if (idle < 0) return { index: empty, make: true };
    const owner = this.lastUser[idle];
    const taken = owner !== undefined && this.members.has(owner);
    if (this.sequences > 1 && (taken || this.crowding(m, this.instanceOf(empty)) < this.crowding(m, this.instanceOf(idle)))) return { index: empty, make: true };
    return { index: idle, make: false };
  }

  /**
   * Which idle sequence a member gets (`placeFor` decides between it and making one): one it
   * used last (for a frontier claim, the one at its home first), else one no live member used
   * last, else any; among those, on the instance
   * least crowded (`crowding`), lowest index first; -1 when none is idle. With several sequences
   * per instance only sequences on instances open to the claim count (`openTo`). The policy
   * above decides who is served; this only decides which sequence.
   */
  private idleFor(m: Member, claim: Claim): number {
    let own = -1;
    let fallback = -1;
    let fallbackCrowding = Infinity;
    let unclaimed = -1;
    let unclaimedCrowding = Infinity;
    for (let i = 0; i < this.slots.length; i++) {
      if (this.slots[i] !== "idle") continue;
      if (this.sequences > 1 && !this.openTo(m, claim, this.instanceOf(i))) continue;
      const last = this.lastUser[i];
      if (last === m) {
        // A frontier task goes home where it can (before: the member's lowest-numbered idle
        // sequence, so every generation's frontier drifted to instance 0).
        if (claim !== "frontier" || m.home === undefined || this.instanceOf(i) === m.home) return i;
        if (own < 0) own = i;
        continue;
      }
      const crowding = this.crowding(m, this.instanceOf(i));
      if (crowding < fallbackCrowding) {
        fallback = i;
        fallbackCrowding = crowding;
      }
      if ((last === undefined || !this.members.has(last)) && crowding < unclaimedCrowding) {
        unclaimed = i;
        unclaimedCrowding = crowding;
      }
    }
    return own >= 0 ? own : unclaimed >= 0 ? unclaimed : fallback;
  }

  /**
   * Which sequence to make for a member's claim: on an instance open to it (`openTo`), the one
   * with the fewest other generations' homes, then sequences busy or being made (spread over
   * devices), lowest index first; -1 if none.
   */
  private emptyFor(m: Member, claim: Claim): number {
    let best = -1;
    let bestScore = Infinity;
    for (let i = 0; i < this.slots.length; i++) {
      if (this.slots[i] !== "empty") continue;
      const instance = this.instanceOf(i);
      if (this.sequences > 1 && !this.openTo(m, claim, instance)) continue;
      // (Sequences being made count as busy: they are for claims that wait now.)
      const score = this.crowding(m, instance, this.sequences - this.unusedIn[instance]);
      if (score < bestScore) [best, bestScore] = [i, score];
      if (this.sequences === 1) break;
    }
    return best;
  }

  /**
   * Making an instance failed. Instances are not made for one claim: each goes to the first
   * claim in serving order once it is ready. So the failure goes to that claim, the one the
   * instance would have gone to (grantable now or not); the others keep waiting.
   */
  private failFirst(err: unknown): void {
    const w = this.first(false);
    if (w) {
      this.withdraw(w);
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
    this.setSlot(index, "creating");
    return made.then(
      (instance) => {
        try {
          this.add(instance, index);
        } catch (err) {
          this.setSlot(index, "empty");
          throw err;
        }
      },
      (err: unknown) => {
        this.setSlot(index, "empty");
        throw err;
      },
    );
  }

  private add(instance: ModelInstance, index: number): void {
    if (instance.vocabSize !== this.vocabSize) {
      throw new RangeError(`target instance ${index} has a vocabulary of ${instance.vocabSize}, the pool's targets have ${this.vocabSize}`);
    }
    this.instances[index] = instance;
    this.setSlot(index, "idle");
  }

  private holds(m: Member, claim: Claim, delta: 1 | -1): void {
    m.leases += delta;
    if (claim !== "frontier") return;
    const unreservedBefore = m.frontierLeases === 0;
    m.frontierLeases += delta;
    // Only an admitted member still in the pool has (or had) a reserve.
    if (m.admitted && this.members.has(m) && unreservedBefore !== (m.frontierLeases === 0)) this.unreserved += unreservedBefore ? -1 : 1;
  }

  private lease(index: number, m: Member, claim: Claim): Lease {
    const instance = this.instanceOf(index);
    this.setSlot(index, "busy");
    this.lastUser[index] = m;
    this.holds(m, claim, 1);
    // (With one sequence per instance a held instance is never idle nor empty: nothing to spread.)
    if (this.sequences > 1) {
      this.touching(m, instance, undefined, () => m.onInstance.set(instance, 1));
      // (Only a member still in the pool has a home: `remove` took its home away.)
      if (claim === "frontier" && this.members.has(m)) this.setHome(m, instance);
    }
    this.events?.emit({ type: "lease", instance: index, member: m.id });
    let released = false;
    const end = (): void => {
      if (released) throw new Error(`target instance ${index} released twice`);
      released = true;
      this.holds(m, claim, -1);
      if (this.sequences > 1) {
        this.touching(m, instance, undefined, () => m.onInstance.delete(instance));
      }
      this.events?.emit({ type: "release", instance: index, member: m.id });
    };
    return {
      instance: this.instances[index]!,
      index,
      carry: (positions) => {
        if (released || this.sequences === 1) return;
        this.touching(m, instance, undefined, () => m.onInstance.set(instance, Math.max(1, positions)));
      },
      release: () => {
        end();
        this.setSlot(index, "idle");
        this.serve();
      },
      retire: (why) => {
        end();
        // (The instance's other sequences live in the same context or worker: its idle ones
        // go with it, rather than each failing a task first; busy ones fail on their own.)
        const gone = [index];
        for (let j = instance * this.sequences; j < (instance + 1) * this.sequences; j++) if (j !== index && this.slots[j] === "idle") gone.push(j);
        for (const j of gone) this.setSlot(j, "lost");
        for (const j of gone) {
          const lost = this.instances[j]!;
          const said = j === index ? why : `${why} (found by sequence ${index % this.sequences} of the same instance)`;
          this.events?.emit({ type: "retire", instance: j, member: m.id, label: lost.label, why: said });
          this.health.lost(j, lost, said, this.alive === 0);
        }
        this.failIfHopeless();
        this.serve();
      },
    };
  }

  /** A lost instance answered again (InstanceHealth): it serves as before, same index. */
  private rejoin(index: number): void {
    if (this.slots[index] !== "lost") return;
    this.setSlot(index, "idle");
    this.events?.emit({ type: "rejoin", instance: index, label: this.instances[index]!.label });
    this.admit();
    this.serve();
  }
}
