/**
 * `mkdir -p` one level at a time. Node 20's `mkdir(path, { recursive: true })` spins forever
 * on some paths (seen: `/proc/x`, 100% CPU, never returns); creating each missing level with a
 * plain mkdir fails fast with the real error instead.
 */
import { mkdir, stat } from "node:fs/promises";
import { dirname, resolve } from "node:path";

export async function makeDirs(path: string): Promise<void> {
  const missing: string[] = [];
  let at = resolve(path);
  for (;;) {
    try {
      const s = await stat(at);
      if (!s.isDirectory()) throw Object.assign(new Error(`${at} is not a directory`), { code: "ENOTDIR", path: at });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      missing.push(at);
      const up = dirname(at);
      if (up === at) break;
      at = up;
    }
  }
  for (const dir of missing.reverse()) {
    try {
      await mkdir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err; // made meanwhile by another process
    }
  }
}
