/**
 * The option table (algorithms/option-spec) is the one source of both faces: walking it, the
 * CLI (`dsi generate`, in-process) and the HTTP API accept the same values, refuse the same
 * values with the same words, and name each option by its flag or its field; the checks between
 * options say the same thing in both.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { crossCheck, GENERATION_OPTIONS, maxOf, optionName, rangeText, type OptionKey } from "../../src/algorithms/option-spec.js";
import { syntheticBackend } from "../../src/models/backend.js";
import { resolveProfile } from "../../src/models/latency.js";
import { ServeMetrics } from "../../src/serve/metrics.js";
import { buildServer } from "../../src/serve/server.js";
import { Service } from "../../src/serve/service.js";
import { dsi } from "../helpers/cli.js";

const KEYS = Object.keys(GENERATION_OPTIONS) as OptionKey[];

const metrics = new ServeMetrics();
const service = await Service.open({ backend: syntheticBackend({ vocab: 32 }), sp: 4, profile: resolveProfile("none")!, maxConcurrent: 64, maxQueue: 256, metrics });
const app = buildServer({ slot: { service }, metrics, modelId: "dsi", algo: "dsi", lookahead: "auto", defaultMaxTokens: 1, maxTokensLimit: maxOf("maxTokens", "http") });
after(() => app.close());

/** The settings every case starts from, then the option under test on top. */
const BASE: Partial<Record<OptionKey, unknown>> = { maxTokens: 1, temperature: 0 };

/** A request with these options; the body's shape (nested `dsi.` fields) comes from the table. */
async function http(values: Partial<Record<OptionKey, unknown>>): Promise<{ status: number; error?: { message: string; param: string } }> {
  const body: Record<string, unknown> = { model: "dsi", prompt: "the" };
  for (const [key, v] of Object.entries({ ...BASE, ...values })) {
    const path = GENERATION_OPTIONS[key as OptionKey].field.split(".");
    let at = body;
    for (const p of path.slice(0, -1)) at = (at[p] ??= {}) as Record<string, unknown>;
    at[path.at(-1)!] = v;
  }
  const res = await app.inject({ method: "POST", url: "/v1/completions", payload: body });
  return { status: res.statusCode, error: res.statusCode === 200 ? undefined : res.json().error };
}

/** `dsi generate` with these options, in virtual time. */
async function cli(values: Partial<Record<OptionKey, unknown>>): Promise<{ code: number; stderr: string }> {
  const args = ["generate", "--clock", "virtual", "--latency", "10/1", "--json"];
  for (const [key, v] of Object.entries({ ...BASE, ...values })) {
    const flag = GENERATION_OPTIONS[key as OptionKey].flag;
    for (const one of Array.isArray(v) ? v : [v]) args.push(flag, String(one));
  }
  const r = await dsi(args);
  return { code: r.code, stderr: r.stderr };
}

/** A message with each option's name in this face replaced by its key: the words that must agree. */
function anonymous(message: string, face: "cli" | "http"): string {
  const names = KEYS.map((k) => [optionName(k, face), `<${k}>`] as const).sort((a, b) => b[0].length - a[0].length);
  let out = message;
  for (const [name, key] of names) out = out.replaceAll(new RegExp(`(?<![\\w.-])${name.replace(/[.]/g, "\\.")}(?![\\w-])`, "g"), key);
  return out;
}

/** What an option needs beside it to apply (match lengths apply to prompt lookup). */
const NEEDS: Partial<Record<OptionKey, Partial<Record<OptionKey, unknown>>>> = { ngramMin: { draft: "ngram" }, ngramMax: { draft: "ngram", ngramMin: 1 } };

/** A value the option accepts in both faces, and values past the range of each face. */
function values(key: OptionKey): { ok: unknown; bad: Record<"cli" | "http", unknown> } {
  const v = GENERATION_OPTIONS[key].value;
  switch (v.type) {
    case "choice":
      return { ok: v.choices[0], bad: { cli: "bogus", http: "bogus" } };
    case "texts":
      return { ok: ["zz"], bad: { cli: Array(maxOf(key, "cli") + 1).fill("a"), http: Array(maxOf(key, "http") + 1).fill("a") } };
    case "number":
      return { ok: v.openMin ? v.max : v.min, bad: { cli: maxOf(key, "cli") + 0.5, http: maxOf(key, "http") + 0.5 } };
    default:
      return { ok: v.min, bad: { cli: maxOf(key, "cli") + 1, http: maxOf(key, "http") + 1 } };
  }
}

for (const key of KEYS) {
  test(`option ${key}: ${GENERATION_OPTIONS[key].flag} and ${GENERATION_OPTIONS[key].field} accept and refuse alike, in the same words`, async () => {
    const { ok, bad } = values(key);
    const needs = NEEDS[key] ?? {};
    const accepted = { cli: await cli({ ...needs, [key]: ok }), http: await http({ ...needs, [key]: ok }) };
    assert.equal(accepted.cli.code, 0, accepted.cli.stderr);
    assert.equal(accepted.http.status, 200, JSON.stringify(accepted.http.error));

    const refusedCli = await cli({ ...needs, [key]: bad.cli });
    assert.equal(refusedCli.code, 2);
    assert.ok(refusedCli.stderr.includes(optionName(key, "cli")), refusedCli.stderr);
    assert.ok(refusedCli.stderr.includes(rangeText(key, "cli")), `${refusedCli.stderr} lacks "${rangeText(key, "cli")}"`);

    const refusedHttp = await http({ ...needs, [key]: bad.http });
    assert.equal(refusedHttp.status, 400);
    assert.equal(refusedHttp.error!.param, optionName(key, "http"));
    assert.ok(refusedHttp.error!.message.startsWith(`${optionName(key, "http")}: ${rangeText(key, "http")}`), refusedHttp.error!.message);
  });
}

test("every option applies to the algorithms the table says; given for another, both faces refuse it in the same words", async () => {
  let checked = 0;
  for (const key of KEYS) {
    const { ok } = values(key);
    for (const algo of ["nonsi", "si", "dsi"] as const) {
      if (key === "algo") continue;
      const applies = GENERATION_OPTIONS[key].algos.includes(algo);
      // What an option needs applies to the same algorithms; where it does not, the option alone is refused.
      const needs = applies ? (NEEDS[key] ?? {}) : {};
      const c = await cli({ algo, ...needs, [key]: ok });
      const h = await http({ algo, ...needs, [key]: ok });
      if (applies) {
        assert.equal(c.code, 0, `${key} with ${algo}: ${c.stderr}`);
        assert.equal(h.status, 200, `${key} with ${algo}: ${JSON.stringify(h.error)}`);
        continue;
      }
      checked++;
      const want = (face: "cli" | "http") => crossCheck({ algo, given: new Set([key]), temperature: 0 }, face)!;
      assert.equal(c.stderr, `error: ${want("cli").message}\n`);
      assert.deepEqual([h.status, h.error!.param, h.error!.message], [400, optionName(key, "http"), want("http").message]);
      // The same sentence with each face's names.
      assert.equal(anonymous(want("cli").message, "cli"), anonymous(want("http").message, "http"));
    }
  }
  assert.ok(checked >= 3, "lookahead for non-SI, sp for non-SI and SI");
});

test("match lengths without prompt lookup, or the shortest longer than the longest: the same words in both faces", async () => {
  for (const [values, given] of [
    [{ ngramMin: 3 }, ["ngramMin"]],
    [{ draft: "model", ngramMax: 3 }, ["draft", "ngramMax"]],
    [{ draft: "ngram+model", ngramMin: 4, ngramMax: 3 }, ["draft", "ngramMin", "ngramMax"]],
    [{ draft: "ngram", ngramMin: 6 }, ["draft", "ngramMin"]],
  ] as const) {
    const o = values as { draft?: string; ngramMin?: number; ngramMax?: number };
    const want = (face: "cli" | "http") => crossCheck({ algo: "dsi", given: new Set(given as readonly OptionKey[]), temperature: 0, ...o }, face)!;
    const c = await cli(values);
    const h = await http(values);
    assert.equal(c.stderr, `error: ${want("cli").message}\n`);
    assert.deepEqual([h.status, h.error!.param, h.error!.message], [400, optionName(want("http").key, "http"), want("http").message]);
    assert.equal(anonymous(want("cli").message, "cli"), anonymous(want("http").message, "http"));
  }
});

test("a verify rule that does not fit the temperature: the same words in both faces", async () => {
  for (const [verify, temperature] of [
    ["greedy", 0.7],
    ["rejection", 0],
    ["match", 0],
  ] as const) {
    const want = (face: "cli" | "http") => crossCheck({ algo: "dsi", given: new Set(), temperature, verify }, face)!.message;
    const c = await cli({ verify, temperature });
    const h = await http({ verify, temperature });
    assert.equal(c.stderr, `error: ${want("cli")}\n`);
    assert.deepEqual([h.status, h.error!.param, h.error!.message], [400, "dsi.verify", want("http")]);
    assert.equal(anonymous(want("cli"), "cli"), anonymous(want("http"), "http"));
  }
});
