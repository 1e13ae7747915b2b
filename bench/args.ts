/** Flags of the benchmark scripts: numbers checked against a minimum, --help, exit 2 on bad input. */
import { parseArgs } from "node:util";

export interface NumberOption {
  default: number;
  min: number;
  /** Default true. */
  integer?: boolean;
}

export function benchArgs<N extends string, S extends string = never>(
  usage: string,
  numbers: Record<N, NumberOption>,
  strings: Record<S, string> = {} as Record<S, string>,
): Record<N, number> & Record<S, string> {
  let values: Record<string, string | boolean | undefined>;
  try {
    const options: Record<string, { type: "string" | "boolean"; default?: string | boolean; short?: string }> = { help: { type: "boolean", short: "h", default: false } };
    for (const [name, o] of Object.entries<NumberOption>(numbers)) options[name] = { type: "string", default: String(o.default) };
    for (const [name, d] of Object.entries<string>(strings)) options[name] = { type: "string", default: d };
    values = parseArgs({ options, strict: true }).values;
  } catch (err) {
    console.error(`${(err as Error).message}\n${usage}`);
    process.exit(2);
  }
  if (values.help) {
    console.log(usage);
    process.exit(0);
  }
  const out: Record<string, number | string> = {};
  for (const [name, o] of Object.entries<NumberOption>(numbers)) {
    const v = values[name] as string;
    const n = Number(v);
    const integer = o.integer ?? true;
    if (!(Number.isFinite(n) && n >= o.min && (!integer || Number.isInteger(n)))) {
      console.error(`--${name} must be ${integer ? "an integer" : "a number"} >= ${o.min}, got ${JSON.stringify(v)}\n${usage}`);
      process.exit(2);
    }
    out[name] = n;
  }
  for (const name of Object.keys(strings)) out[name] = values[name] as string;
  return out as Record<N, number> & Record<S, string>;
}
