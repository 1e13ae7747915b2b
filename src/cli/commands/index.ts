/** Every `dsi` command, in the order `dsi --help` lists them: each module declares its flags and runs its command. */
import type { Command } from "commander";
import type { CliIo } from "../io.js";
import * as cluster from "./cluster.js";
import * as demo from "./demo.js";
import * as generate from "./generate.js";
import * as heatmap from "./heatmap.js";
import * as makeModel from "./make-model.js";
import * as paper from "./paper.js";
import * as profiles from "./profiles.js";
import * as serve from "./serve.js";
import * as simulate from "./simulate.js";
import * as worker from "./worker.js";

export interface CommandModule {
  register(program: Command, io: CliIo): void;
}

export const COMMANDS: readonly CommandModule[] = [generate, makeModel, demo, simulate, heatmap, paper, worker, cluster, serve, profiles];
