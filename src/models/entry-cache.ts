/**
 * A cache of entries by key in one JSON file (`{ version, entries }`) of the cache folder: the
 * batch-invariance self-test's chunk sizes, the GPU check's passes. A file that is missing,
 * unreadable or of another format version reads as empty (what it held is measured again).
 * An entry is added to what the file holds just then, written atomically (a reader never sees
 * half a file): two processes adding at once may drop the other's entry, which costs one more
 * measurement.
 */
import { readFile } from "node:fs/promises";
import { writeFileAtomically } from "./atomic-write.js";

interface EntryFile<T> {
  version: number;
  entries: Record<string, T>;
}

/**
 * The file's entries; `problem` hears why a file that is there was not read ("cannot read PATH
 * (CODE)", "PATH is not a KIND of this version").
 */
export async function readEntries<T>(path: string, version: number, kind: string, problem?: (why: string) => void): Promise<Record<string, T>> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") problem?.(`cannot read ${path} (${(err as NodeJS.ErrnoException).code})`);
    return {};
  }
  try {
    const parsed = JSON.parse(text) as Partial<EntryFile<T>> | null;
    if (parsed?.version === version && typeof parsed.entries === "object" && parsed.entries !== null) return parsed.entries;
  } catch {
    // fall through: not JSON
  }
  problem?.(`${path} is not a ${kind} of this version`);
  return {};
}

/** Adds (or replaces) one entry; throws when the file cannot be written (callers decide whether that is worth a word). */
export async function addEntry<T>(path: string, version: number, kind: string, key: string, entry: T): Promise<void> {
  const entries = { ...(await readEntries<T>(path, version, kind)), [key]: entry };
  await writeFileAtomically(path, JSON.stringify({ version, entries } satisfies EntryFile<T>, null, 1));
}
