/**
 * What a runtime learned (runtime/costs.ts: costs by window size, the drafter's step, the
 * acceptance), kept past its process: one file per identity in `$DSI_CACHE_DIR/learned/`,
 * loaded as the prior of the next runtime over the same models, kernels and latency, written
 * when a command ends (and every few seconds by a server). The first command on a machine
 * starts cold; every later one starts where the last left off.
 *
 * Writes are atomic (a temporary file in the same folder renamed over the file), so a reader
 * never sees half a file and several processes may write at once: the last writer wins, the
 * file stays whole. An unreadable, corrupt, truncated or future-version file is a warning and
 * a cold start, never an error; so is a file that cannot be written.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { isLearnedSnapshot, learnedFromSnapshot, snapshotLearned, type Learned } from "../runtime/costs.js";
import { writeFileAtomically } from "./atomic-write.js";

/** Bumped when the snapshot's meaning changes: a file of another version is not read. */
export const LEARNED_FILE_VERSION = 2; // 2: costs by condition (alone, beside something)

/** `DSI_LEARNED_CACHE=0` (or `false`, `off`, `no`): keep nothing, start cold (as `--no-learned-cache`). */
export const LEARNED_CACHE_ENV = "DSI_LEARNED_CACHE";

export function learnedCacheOff(env: Record<string, string | undefined>): boolean {
  return ["0", "false", "off", "no"].includes((env[LEARNED_CACHE_ENV] ?? "").trim().toLowerCase());
}

/** The file: its version, what it was measured on (for people; the name is its hash), the snapshot. */
interface LearnedFile {
  version: number;
  identity: Record<string, unknown>;
  saved: string;
  learned: unknown;
}

export interface LearnedStore {
  /** The file this identity's state is kept in. */
  readonly path: string;
  /** The saved state as a fresh `Learned` (the prior); undefined when none (or unreadable: warned). */
  load(): Promise<Learned | undefined>;
  /** Writes `l` atomically; a failure is a warning. */
  save(l: Learned): Promise<void>;
}

/**
 * The store of one identity (plain JSON: what the costs depend on, e.g. model fingerprints,
 * kernels, threads, latency profile, CPU); `warn` hears why a file was not used or written.
 */
export function openLearnedStore(o: { dir: string; identity: Record<string, unknown>; warn: (message: string) => void }): LearnedStore {
  const key = createHash("sha256").update(JSON.stringify(o.identity)).digest("hex").slice(0, 32);
  const folder = join(o.dir, "learned");
  const path = join(folder, `${key}.json`);
  return {
    path,
    async load() {
      let text: string;
      try {
        text = await readFile(path, "utf8");
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== "ENOENT") o.warn(`cannot read ${path} (${code ?? (err as Error).message}); starting without learned costs`);
        return undefined;
      }
      let file: Partial<LearnedFile> | null;
      try {
        file = JSON.parse(text) as Partial<LearnedFile> | null;
      } catch {
        o.warn(`${path} is not valid JSON (corrupt or truncated); starting without learned costs`);
        return undefined;
      }
      if (typeof file !== "object" || file === null || typeof file.version !== "number") {
        o.warn(`${path} is not a learned-costs file; starting without learned costs`);
        return undefined;
      }
      if (file.version !== LEARNED_FILE_VERSION) {
        const why = file.version < LEARNED_FILE_VERSION ? "written by an earlier dsi (replaced when this command ends)" : `of version ${file.version}, this dsi reads version ${LEARNED_FILE_VERSION}`;
        o.warn(`${path} is ${why}; starting without learned costs`);
        return undefined;
      }
      if (!isLearnedSnapshot(file.learned)) {
        o.warn(`${path} holds no valid learned costs; starting without them`);
        return undefined;
      }
      return learnedFromSnapshot(file.learned);
    },
    async save(l) {
      const file: LearnedFile = { version: LEARNED_FILE_VERSION, identity: o.identity, saved: new Date().toISOString(), learned: snapshotLearned(l) };
      try {
        await writeFileAtomically(path, JSON.stringify(file, null, 1));
      } catch (err) {
        o.warn(`cannot write ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); the next command starts without these learned costs`);
      }
    },
  };
}
