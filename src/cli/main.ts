#!/usr/bin/env node
/** The `dsi` binary: process-wide settings, then `main` (program.ts) with the process's streams. */
import { main } from "./program.js";

// grpc-js sets the TLS server name to the host even when that is an IP address (TLS to a
// worker at 10.0.0.5:7001), which Node reports as DEP0123 on each connection; the certificate
// is still checked against the IP. Other warnings print as Node prints them.
process.removeAllListeners("warning");
process.on("warning", (w: Error & { code?: string }) => {
  if (w.code !== "DEP0123") console.error(`(node:${process.pid}) ${w.code ? `[${w.code}] ` : ""}${w.name}: ${w.message}`);
});

process.exitCode = await main(process.argv.slice(2));
