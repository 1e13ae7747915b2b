/**
 * Writes a file so that a reader never sees half of it: into a temporary file in the same
 * folder (made if missing), renamed over the file. Several processes may write at once: the
 * last rename wins and the file stays whole. On failure the temporary file is removed and the
 * error thrown (callers turn it into a warning: a cache that cannot be written is not fatal).
 */
import { rename, unlink, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { makeDirs } from "./make-dirs.js";

export async function writeFileAtomically(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    await makeDirs(dirname(path));
    await writeFile(tmp, text);
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}
