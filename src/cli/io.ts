/**
 * Where a command writes and what it reads of its environment: the process's streams in the
 * `dsi` binary, buffers in tests that call `main` in-process.
 */
export interface CliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: Readonly<Record<string, string | undefined>>;
}

export const processIo: CliIo = { stdout: process.stdout, stderr: process.stderr, env: process.env };

/** Writes `text` and a newline (console.log's shape, to any stream). */
export function println(stream: NodeJS.WritableStream, text = ""): void {
  stream.write(`${text}\n`);
}
