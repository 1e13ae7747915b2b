/**
 * Runs jobs one at a time, in the order they were given: each starts once the one before it
 * settled (a failed job does not stop the next; its caller hears the failure).
 */
export type Serial = <T>(job: () => T | Promise<T>) => Promise<T>;

export function serial(): Serial {
  let last: Promise<unknown> = Promise.resolve();
  return <T>(job: () => T | Promise<T>): Promise<T> => {
    const run = last.then(job);
    last = run.catch(() => undefined);
    return run;
  };
}
