/**
 * Temporary folders for tests, all removed when the test file's process exits: after every
 * `after` hook, so a child process stopped by one (a server saving its learned costs as it
 * drains) cannot write into a folder already removed and leave it behind.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

const made: string[] = [];

process.once("exit", () => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A new folder under the system's temp folder, named dsi-<prefix>-XXXXXX. */
export async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `dsi-${prefix}-`));
  made.push(dir);
  return dir;
}

/** The same, made at once (for module set-up). */
export function tempDirSync(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `dsi-${prefix}-`));
  made.push(dir);
  return dir;
}
