/** Temporary folders for tests, all removed when the test file's tests have run. */
import { mkdtempSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";

const made: string[] = [];

after(async () => {
  for (const dir of made.splice(0)) await rm(dir, { recursive: true, force: true });
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
