/**
 * A GPU build of llama.cpp can load and still be unable to run a kernel on the GPU there; then
 * llama.cpp aborts the whole process at the first decode ("CUDA error", a native backtrace),
 * which no caller can catch. Seen on an NVIDIA H200 (sm 90, driver 580: CUDA 13.0) with
 * node-llama-cpp 3.21.1's prebuilt CUDA build: it holds machine code for sm 86, 89, 120 and
 * 121 and PTX of ISA 9.1 (CUDA 13.1) for 75, 80 and 90, so on Hopper the driver must compile
 * that PTX, and a CUDA 13.0 driver cannot.
 *
 * So before a process runs models on a GPU build, one decode of a tiny generated model runs
 * in a child process (`gpu-check-child.ts`); if the child dies, the command stops with a
 * clear error that quotes llama.cpp. The child loads the same kind of GPU build as the parent
 * with every layer on the GPU, and says so: one that fell back to another build or left the
 * layers on the CPU has not tested the GPU. A check that passed is remembered per build,
 * device, driver and host (`$DSI_CACHE_DIR/gpu-check.json`, which may be shared between
 * hosts): only the first GPU run there pays for it (the child loads the GPU backend, a few
 * seconds). A failure is not remembered.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { addEntry, readEntries } from "./entry-cache.js";

/** How a child ended. */
export interface ChildOutcome {
  /** Exit code; null when a signal ended it or it did not start. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Why it was stopped or never ran, where not by its own doing: past the time limit, too much output, or not started (the error's code). */
  stopped?: "timeout" | "output" | string;
}

/** What the check needs to know of the build it guards. */
export interface GpuCheckOptions {
  /** The GPU kind of the build ("cuda", "vulkan", "metal"): the child must load the same. */
  gpu: string;
  /** What the build, device, driver and host are, for the cache key and the message (`gpuIdentity`). */
  identity: string;
  /** Folder of the cache; undefined: check every time, keep nothing. */
  cacheDir: string | undefined;
  /** Runs the child; default: `gpu-check-child.js` in a fresh temporary folder (removed after). */
  run?: () => Promise<ChildOutcome>;
}

export class GpuUnusableError extends Error {
  override readonly name = "GpuUnusableError";
}

const CACHE_NAME = "gpu-check.json";
const CACHE_KIND = "GPU check cache";
/** Bumped when the check (or its file) changes, so builds passed by an older one are checked again. */
const CHECK_VERSION = 3;
/** A child that takes longer than this to load a tiny model and decode is taken as failed (a first compilation of PTX can take a while). */
export const CHILD_TIMEOUT_MS = 180_000;
const CHILD_OUTPUT_BYTES = 4 * 2 ** 20;

/** Throws GpuUnusableError unless the GPU build can run a decode here (or did before, as the cache says). */
export async function checkGpuKernels(o: GpuCheckOptions): Promise<void> {
  const cache = o.cacheDir === undefined ? undefined : join(o.cacheDir, CACHE_NAME);
  if (cache !== undefined && (await readEntries<string>(cache, CHECK_VERSION, CACHE_KIND))[o.identity] !== undefined) return;
  const outcome = await (o.run ?? (() => runChild(undefined, ["--gpu", o.gpu])))();
  const said = /^ok (\S+) (\d+)$/m.exec(outcome.stdout);
  if (outcome.code === 0 && said?.[1] === o.gpu && Number(said[2]) > 0) {
    // (A cache that cannot be written only means the next GPU run checks again.)
    if (cache !== undefined) await addEntry(cache, CHECK_VERSION, CACHE_KIND, o.identity, new Date().toISOString()).catch(() => undefined);
    return;
  }
  const quoted = describeFailure(outcome.stderr);
  const how = howItEnded(outcome, said, o.gpu);
  // The driver and build advice fits what kernels that cannot load say; other failures (out of
  // memory, a full disk) are quoted as they are.
  const kernels = /CUDA error|PTX|no kernel image|unsupported toolchain|driver/i.test(quoted);
  const advice = kernels ? `Update the GPU driver, or build llama.cpp for this GPU (npx --no node-llama-cpp source build --gpu ${o.gpu}), or run without --gpu` : "Run without --gpu";
  throw new GpuUnusableError(`--gpu: llama.cpp's ${o.gpu} build cannot run on this GPU: a test decode of a tiny model ${how}${quoted}. ${advice}. (${o.identity})`);
}

/** How a child that did not pass ended, in words that follow "a test decode of a tiny model". */
function howItEnded(outcome: ChildOutcome, said: RegExpExecArray | null, gpu: string): string {
  if (outcome.code === 0) return `ran on ${said ? `${said[1]} with ${said[2]} layers on the GPU` : "something else"}, not on the ${gpu} build`;
  if (outcome.stopped === "timeout") return `did not finish within ${CHILD_TIMEOUT_MS / 1000} s`;
  if (outcome.stopped === "output") return `wrote more than ${CHILD_OUTPUT_BYTES / 2 ** 20} MiB`;
  if (outcome.stopped !== undefined) return `could not be started (${outcome.stopped})`;
  return outcome.signal !== null ? `was killed by ${outcome.signal}` : `exited with code ${outcome.code}`;
}

/**
 * The cache key of a GPU build: the build and its release, the GPUs, the NVIDIA driver where
 * Linux names it (the PTX a driver can compile depends on its version), and the host (a cache
 * folder may be shared between hosts).
 */
export async function gpuIdentity(build: string, devices: readonly string[]): Promise<string> {
  const driver = await readFile("/proc/driver/nvidia/version", "utf8").then(
    (text) => /Kernel Module(?: for \S+)?\s+([\d.]+)/.exec(text)?.[1] ?? "unknown",
    () => undefined,
  );
  return `${build} on ${devices.join(", ") || "an unnamed device"}${driver ? `, NVIDIA driver ${driver}` : ""}, host ${hostname()}`;
}

/**
 * What llama.cpp said before it stopped: its "CUDA error: ..." line (ggml-cuda logs the
 * runtime's message there, through node-llama-cpp's logger, while the abort prints its
 * backtrace), else the last line that is not a backtrace frame.
 */
export function describeFailure(stderr: string): string {
  const lines = stderr
    .split("\n")
    .map((l) => l.replace(/^\[node-llama-cpp\]/, "").trim())
    .filter((l) => l !== "");
  const named = lines.find((l) => /\berror: \S/i.test(l) && !/^\//.test(l));
  const last = [...lines].reverse().find((l) => !/\(\+?0x[0-9a-f]+\)|\[0x[0-9a-f]+\]$/i.test(l));
  const said = named ?? last;
  return said === undefined ? "" : ` (${said.length > 300 ? `${said.slice(0, 300)}...` : said})`;
}

/** A check's temporary folder: the prefix, then the checking process's id (`sweepDeadChecks`). */
const CHILD_DIR_PREFIX = "dsi-gpu-check-";

/** This host's part of a check's folder name (a temporary folder may be shared between hosts). */
function hostTag(): string {
  return hostname().replace(/[^A-Za-z0-9.-]/g, "_");
}

/** The prefix of this process's check folders: prefix, host, process id (`sweepDeadChecks`). */
export function childDirPrefix(pid = process.pid): string {
  return `${CHILD_DIR_PREFIX}${hostTag()}-${pid}-`;
}

/**
 * Runs `gpu-check-child.js` (or `script`) with `args` in a fresh temporary folder, removed after
 * (a crash may leave a core file there); first removes the folders of checks whose process died
 * before it could remove them.
 */
export async function runChild(script = fileURLToPath(new URL("./gpu-check-child.js", import.meta.url)), args: readonly string[] = []): Promise<ChildOutcome> {
  let dir: string;
  try {
    await sweepDeadChecks(tmpdir());
    dir = await mkdtemp(join(tmpdir(), childDirPrefix()));
  } catch (err) {
    throw new GpuUnusableError(`--gpu: cannot make a temporary folder for the GPU check in ${tmpdir()} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  try {
    return await new Promise<ChildOutcome>((resolve) => {
      execFile(process.execPath, [script, dir, ...args], { cwd: dir, timeout: CHILD_TIMEOUT_MS, killSignal: "SIGKILL", maxBuffer: CHILD_OUTPUT_BYTES }, (err, stdout, stderr) => {
        const e = err as (Error & { code?: number | string; signal?: NodeJS.Signals | null; killed?: boolean }) | null;
        const stopped =
          e === null ? undefined : e.code === "ERR_CHILD_PROCESS_STDIO_MAXBUFFER" ? "output" : e.killed ? "timeout" : typeof e.code === "string" ? e.code : undefined;
        resolve({ code: e ? (typeof e.code === "number" ? e.code : null) : 0, signal: e?.signal ?? null, stdout, stderr, ...(stopped ? { stopped } : {}) });
      });
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Removes the temporary folders of checks whose process is gone (killed while its child ran:
 * its folder, and any core file in it, stayed). A folder is known by the host and the id of the
 * process that made it: only this host's, whose process no longer runs here, and older than
 * any check lasts (another process namespace sharing the folder may hold the same id) go;
 * others, or any that cannot be told, are left alone.
 */
export async function sweepDeadChecks(parent: string, now = Date.now()): Promise<void> {
  const names = await readdir(parent).catch(() => [] as string[]);
  const ours = new RegExp(`^${CHILD_DIR_PREFIX}${hostTag().replace(/[.]/g, "\\.")}-(\\d+)-`);
  for (const name of names) {
    const pid = ours.exec(name)?.[1];
    if (pid === undefined || alive(Number(pid))) continue;
    const made = await stat(join(parent, name)).then((st) => st.mtimeMs, () => now);
    if (now - made > CHILD_TIMEOUT_MS + 60_000) await rm(join(parent, name), { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Whether a process with this id runs (one of another user's counts: EPERM). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== "ESRCH";
  }
}
