/**
 * The `dsi` command line as a function: `main(args, io)` parses, runs one command and returns
 * its exit code (0; 2 for a usage error, printed as one line; 1 for a failure). It never exits
 * the process, so tests call it in-process; `main.ts` is the binary around it.
 */
import { readFile } from "node:fs/promises";
import { Command, CommanderError, InvalidArgumentError } from "commander";
import { ModelFileError } from "../models/llama.js";
import { ClusterError } from "../models/remote/cluster.js";
import { COMMANDS } from "./commands/index.js";
import { OutputsDiffer } from "./commands/demo.js";
import { UsageError } from "./flags.js";
import { println, processIo, type CliIo } from "./io.js";

/** The program with every command, writing to `io`. */
export function program(io: CliIo): Command {
  const cmd = new Command("dsi")
    .description("Distributed Speculative Inference: lossless non-SI, SI and DSI decoding")
    .option("-V, --version", "print the version")
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      outputError: (str, write) => write(str.trim().split("\n")[0] + "\n"),
    });
  for (const c of COMMANDS) c.register(cmd, io);
  // Subcommands inherit exitOverride and the output settings only when added after they are set.
  for (const sub of cmd.commands) sub.exitOverride().configureOutput(cmd.configureOutput());
  return cmd;
}

/** The package's version, for --version. */
async function version(): Promise<string> {
  const pkg = JSON.parse(await readFile(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

/** Runs `dsi ...args` (the arguments after the program name); resolves with the exit code. */
export async function main(args: readonly string[], io: CliIo = processIo): Promise<number> {
  try {
    const cmd = program(io);
    if (args.length === 0) {
      println(io.stdout, cmd.helpInformation().trimEnd()); // bare `dsi`: the help, on stdout
      return 0;
    }
    if (args[0] === "--version" || args[0] === "-V") {
      println(io.stdout, await version());
      return 0;
    }
    // Commander answers `dsi help bogus` and `dsi bogus --help` with the top-level help and
    // exit 0; an unknown command is an error.
    const names = new Set(cmd.commands.map((c) => c.name()));
    const asked = args[0] === "help" ? args[1] : args[0].startsWith("-") ? undefined : args[0];
    if (asked !== undefined && !names.has(asked) && !(args[0] === "help" && asked.startsWith("-"))) {
      throw new UsageError(`unknown command '${asked}'; the commands are ${[...names].join(", ")} (see dsi --help)`);
    }
    await cmd.parseAsync(args, { from: "user" });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.code === "commander.help") return 0;
      return 2; // commander already printed the one-line message
    }
    if (err instanceof OutputsDiffer) return 1; // the report said so
    if (err instanceof UsageError || err instanceof InvalidArgumentError || err instanceof ModelFileError || err instanceof ClusterError) {
      println(io.stderr, `error: ${err.message}`);
      return 2;
    }
    const fsErr = err as NodeJS.ErrnoException;
    if (fsErr.path && ["ENOENT", "ENOTDIR", "EISDIR", "EACCES", "EEXIST", "EROFS"].includes(fsErr.code ?? "")) {
      println(io.stderr, `error: cannot write or read ${fsErr.path} (${fsErr.code}); check the --out, --svg or --trace path`);
      return 2;
    }
    println(io.stderr, `error: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}
