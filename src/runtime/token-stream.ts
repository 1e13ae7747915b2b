/** A push-to-pull bridge: the engine pushes committed tokens, a consumer iterates them. */

interface Waiter<T> {
  resolve: (r: IteratorResult<T>) => void;
  reject: (e: unknown) => void;
}

export class TokenStream<T> implements AsyncIterable<T> {
  private buffer: T[] = [];
  /** Pending next() calls, served first come first served. */
  private waiting: Waiter<T>[] = [];
  private done = false;
  private error: unknown;

  push(item: T): void {
    const w = this.waiting.shift();
    if (w) w.resolve({ value: item, done: false });
    else this.buffer.push(item);
  }

  end(error?: unknown): void {
    if (this.done) return;
    this.done = true;
    this.error = error;
    for (const w of this.waiting.splice(0)) {
      if (error !== undefined) w.reject(error);
      else w.resolve({ value: undefined, done: true });
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        if (this.buffer.length > 0) return Promise.resolve({ value: this.buffer.shift()!, done: false });
        if (this.done) {
          return this.error !== undefined ? Promise.reject(this.error) : Promise.resolve({ value: undefined, done: true });
        }
        return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
      },
    };
  }
}
