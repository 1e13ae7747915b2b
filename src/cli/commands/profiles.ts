/** `dsi profiles`: the built-in latency profiles. */
import type { Command } from "commander";
import { PROFILES } from "../../models/latency.js";
import { println, type CliIo } from "../io.js";

export function register(program: Command, io: CliIo): void {
  program
    .command("profiles")
    .description("list the built-in latency profiles")
    .action(() => {
      const rows = [["profile", "target ms", "drafter ms", "acceptance"]];
      for (const p of PROFILES.values()) rows.push([p.name, String(p.target.tpotMs), String(p.drafter.tpotMs), p.acceptance === undefined ? "" : String(p.acceptance)]);
      const width = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
      for (const r of rows) println(io.stdout, r.map((cell, i) => (i === 0 ? cell.padEnd(width[i]) : cell.padStart(width[i]))).join("  ").trimEnd());
      println(io.stdout, "\nA pair without its dataset (e.g. vicuna-7b/vicuna-68m) means its first row; TARGET_MS/DRAFTER_MS (e.g. 30/3) gives any pair.");
    });
}
