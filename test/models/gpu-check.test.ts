/**
 * The GPU check (gpu-check.ts): a GPU build that cannot run on the GPU there is found in a
 * child process and reported with what llama.cpp said, instead of aborting the command. The
 * real GPU path needs a GPU; here the child's outcome is given, a real child aborts, and the
 * real child runs its whole path on the CPU build.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { hostname } from "node:os";
import { checkGpuKernels, CHILD_TIMEOUT_MS, describeFailure, gpuIdentity, GpuUnusableError, childDirPrefix, runChild, sweepDeadChecks, type ChildOutcome } from "../../src/models/gpu-check.js";

/**
 * What node-llama-cpp's prebuilt CUDA build printed on an H200 with a CUDA 13.0 driver (the
 * child's stderr, shortened): the abort's backtrace, interleaved with ggml-cuda's error as
 * node-llama-cpp's logger writes it.
 */
const ABORTED: ChildOutcome = {
  code: null,
  signal: "SIGABRT",
  stdout: "",
  stderr: [
    "/home/runner/work/node-llama-cpp/node-llama-cpp/llama/llama.cpp/ggml/src/ggml-cuda/ggml-cuda.cu:108: CUDA error",
    "/work/node_modules/@node-llama-cpp/linux-x64-cuda/bins/linux-x64-cuda/libggml-base.so(+0x1c8eb)[0x7f6dc03488eb]",
    "/work/node_modules/@node-llama-cpp/linux-x64-cuda/bins/linux-x64-cuda/libggml-base.so(ggml_abort+0x152)[0x7f6dc0348f42]",
    "node(_ZN4node14ThreadPoolWork12ScheduleWorkEv+0x59)[0xc71349]",
    "[node-llama-cpp] CUDA error: the provided PTX was compiled with an unsupported toolchain.",
    "/lib/x86_64-linux-gnu/libc.so.6(+0x9cb84)[0x7f6dc009cb84]",
    "[node-llama-cpp]   current device: 0, in function ggml_cuda_kernel_can_use_pdl at /home/runner/work/node-llama-cpp/node-llama-cpp/llama/llama.cpp/ggml/src/ggml-cuda/common.cuh:1640",
    "[node-llama-cpp]   cudaFuncGetAttributes(&attr, kernel)",
    "",
  ].join("\n"),
};
const OK: ChildOutcome = { code: 0, signal: null, stdout: "ok cuda 3\n", stderr: "" };

async function withDir<T>(f: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), "dsi-gpu-check-test-"));
  try {
    return await f(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test("a GPU build whose test decode aborts is a clear error quoting llama.cpp, and is not remembered", async () => {
  await withDir(async (cacheDir) => {
    const err = await checkGpuKernels({ gpu: "cuda", identity: "prebuilt b1 on NVIDIA H200", cacheDir, run: async () => ABORTED }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof GpuUnusableError);
    assert.match(err.message, /^--gpu: llama\.cpp's cuda build cannot run on this GPU: a test decode of a tiny model was killed by SIGABRT \(CUDA error: the provided PTX was compiled with an unsupported toolchain\.\)/);
    assert.match(err.message, /npx --no node-llama-cpp source build --gpu cuda/);
    assert.match(err.message, /run without --gpu\. \(prebuilt b1 on NVIDIA H200\)$/);
    assert.equal(existsSync(join(cacheDir, "gpu-check.json")), false);
    // A child that exits without "ok" fails too; advice on drivers only where llama.cpp's words are about kernels.
    await assert.rejects(
      checkGpuKernels({ gpu: "cuda", identity: "x", cacheDir, run: async () => ({ code: 1, signal: null, stdout: "", stderr: "Error: cannot load\n" }) }),
      /exited with code 1 \(Error: cannot load\)\. Run without --gpu\. \(x\)$/,
    );
    await assert.rejects(
      checkGpuKernels({ gpu: "cuda", identity: "x", cacheDir, run: async () => ({ code: null, signal: "SIGABRT", stdout: "", stderr: "ggml_backend_cuda_buffer_type_alloc_buffer: allocating 512.00 MiB on device 0: cudaMalloc failed: out of memory\n" }) }),
      /killed by SIGABRT \(ggml_backend_cuda_buffer_type_alloc_buffer: allocating 512\.00 MiB on device 0: cudaMalloc failed: out of memory\)\. Run without --gpu\./,
    );
    assert.equal(existsSync(join(cacheDir, "gpu-check.json")), false);
  });
});

test("a check that did not test the GPU fails: another build, no layers on the GPU, past the time limit, too much output", async () => {
  const fails = async (outcome: ChildOutcome, message: RegExp): Promise<void> => {
    await assert.rejects(checkGpuKernels({ gpu: "cuda", identity: "b1 on H200", cacheDir: undefined, run: async () => outcome }), message);
  };
  await fails({ code: 0, signal: null, stdout: "ok cpu 0\n", stderr: "" }, /a test decode of a tiny model ran on cpu with 0 layers on the GPU, not on the cuda build\. Run without --gpu/);
  await fails({ code: 0, signal: null, stdout: "ok cuda 0\n", stderr: "" }, /ran on cuda with 0 layers on the GPU, not on the cuda build/);
  await fails({ code: 0, signal: null, stdout: "", stderr: "" }, /ran on something else, not on the cuda build/);
  await fails({ code: null, signal: "SIGKILL", stdout: "", stderr: "", stopped: "timeout" }, new RegExp(`did not finish within ${CHILD_TIMEOUT_MS / 1000} s\\. Run without --gpu`));
  await fails({ code: null, signal: "SIGKILL", stdout: "", stderr: "", stopped: "output" }, /wrote more than 4 MiB/);
  await fails({ code: null, signal: null, stdout: "", stderr: "", stopped: "EACCES" }, /could not be started \(EACCES\)/);
});

test("a build's identity names the devices and the host (and the NVIDIA driver where Linux names it)", async () => {
  const id = await gpuIdentity("prebuilt ggml-org/llama.cpp@v0.4.0 CUDA : ARCHS = 900", ["NVIDIA H200"]);
  assert.ok(id.startsWith("prebuilt ggml-org/llama.cpp@v0.4.0 CUDA : ARCHS = 900 on NVIDIA H200"), id);
  assert.ok(id.endsWith(`, host ${hostname()}`), id);
  assert.equal(id.includes("NVIDIA driver"), existsSync("/proc/driver/nvidia/version"), id);
});

test("a GPU build that passed is remembered per build and device: the next process does not check again", async () => {
  await withDir(async (cacheDir) => {
    let runs = 0;
    const run = async (): Promise<ChildOutcome> => (runs++, OK);
    await checkGpuKernels({ gpu: "cuda", identity: "b1 on H200", cacheDir, run });
    await checkGpuKernels({ gpu: "cuda", identity: "b1 on H200", cacheDir, run: async () => ABORTED });
    assert.equal(runs, 1);
    assert.ok(JSON.parse(await readFile(join(cacheDir, "gpu-check.json"), "utf8")).entries["b1 on H200"]);
    // Another build, or another device: checked.
    await assert.rejects(checkGpuKernels({ gpu: "cuda", identity: "b2 on H200", cacheDir, run: async () => ABORTED }), GpuUnusableError);
    await checkGpuKernels({ gpu: "cuda", identity: "b1 on H100", cacheDir, run });
    assert.equal(runs, 2);
    // No cache folder: checked every time.
    await checkGpuKernels({ gpu: "cuda", identity: "b1 on H200", cacheDir: undefined, run });
    assert.equal(runs, 3);
  });
});

test("two processes checking at once both keep their pass: the cache is read again before it is written", async () => {
  await withDir(async (cacheDir) => {
    let finishFirst!: () => void;
    const child = new Promise<ChildOutcome>((r) => (finishFirst = () => r(OK)));
    const first = checkGpuKernels({ gpu: "cuda", identity: "b1 on H200", cacheDir, run: () => child });
    // (The other process's check starts and passes while the first one's child still runs.)
    await checkGpuKernels({ gpu: "cuda", identity: "b1 on H100", cacheDir, run: async () => OK });
    finishFirst();
    await first;
    const passed = JSON.parse(await readFile(join(cacheDir, "gpu-check.json"), "utf8")).entries;
    assert.deepEqual(Object.keys(passed).sort(), ["b1 on H100", "b1 on H200"]);
  });
});

test("a check's folder left by a process that died is removed by a later check; a running process's, a recent one, another host's and other folders stay", async () => {
  await withDir(async (parent) => {
    // (The id of a process that has ended.)
    const dead = Number(execFileSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" }));
    const left = `${childDirPrefix(dead)}a1b2c3`;
    const recent = `${childDirPrefix(dead)}g7h8i9`;
    const running = `${childDirPrefix()}d4e5f6`;
    const elsewhere = `dsi-gpu-check-another-host-${dead}-j0k1l2`;
    const other = "dsi-gpu-check-test-x";
    const all = [left, recent, running, elsewhere, other];
    for (const name of all) await mkdir(join(parent, name, "inside"), { recursive: true });
    // (Older than any check lasts, but the recent one.)
    const old = (Date.now() - CHILD_TIMEOUT_MS - 120_000) / 1000;
    for (const name of all) if (name !== recent) await utimes(join(parent, name), old, old);
    await sweepDeadChecks(parent);
    assert.equal(existsSync(join(parent, left)), false);
    for (const name of [recent, running, elsewhere, other]) assert.equal(existsSync(join(parent, name, "inside")), true, name);
  });
});

test("what llama.cpp said: its error line, else the last line that is not a backtrace frame", () => {
  assert.equal(describeFailure(ABORTED.stderr), " (CUDA error: the provided PTX was compiled with an unsupported toolchain.)");
  assert.equal(describeFailure("ggml_abort: out of memory\n/lib/libc.so.6(+0x9cb84)[0x7f634da9cb84]\n"), " (ggml_abort: out of memory)");
  assert.equal(describeFailure(""), "");
});

test("a child that is killed is seen as killed, with its stderr, and its folder is removed; one that writes too much is stopped", async () => {
  await withDir(async (dir) => {
    const script = join(dir, "abort.mjs");
    // (SIGKILL, as llama.cpp's abort would be SIGABRT: the same path, without a core dump.)
    await writeFile(script, 'process.stdout.write(process.argv[2] + "\\n"); process.stderr.write("CUDA error: no kernel image is available for execution on the device\\n", () => process.kill(process.pid, "SIGKILL"));\n');
    const outcome = await runChild(script);
    assert.equal(outcome.signal, "SIGKILL");
    assert.equal(outcome.code, null);
    assert.match(outcome.stderr, /CUDA error: no kernel image/);
    const childDir = outcome.stdout.trim();
    assert.ok(childDir.includes(childDirPrefix()), `${childDir}: named after this host and process`);
    assert.equal(existsSync(childDir), false, "the child's folder (where a core file would land) is gone");
    const loud = join(dir, "loud.mjs");
    await writeFile(loud, 'process.stdout.write("x".repeat(5 * 2 ** 20)); setTimeout(() => undefined, 60_000);\n');
    assert.equal((await runChild(loud)).stopped, "output");
  });
});

test("the check's child runs its whole path (tiny model, load, a window and a one-token decode) on the CPU build", { timeout: CHILD_TIMEOUT_MS + 20_000 }, async () => {
  const outcome = await runChild(undefined, ["--cpu"]);
  assert.deepEqual({ code: outcome.code, signal: outcome.signal, stdout: outcome.stdout }, { code: 0, signal: null, stdout: "ok cpu 0\n" }, outcome.stderr);
  // A kind it does not know is refused before anything loads.
  assert.equal((await runChild(undefined, ["--gpu", "opencl"])).code, 2);
});
