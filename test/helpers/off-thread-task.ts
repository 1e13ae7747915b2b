/** The worker side of off-thread.ts: calls one exported function of a module. */
export default async function task({ module, name, args }: { module: string; name: string; args: unknown[] }): Promise<unknown> {
  const m = (await import(module)) as Record<string, (...a: unknown[]) => unknown>;
  return m[name](...args);
}
