// A work queue keyed by string, in the spirit of client-go's rate-limited queue:
// adding a key that is already waiting is a no-op (de-duplication); a key can be
// delayed (requeue-after, deadlines); a key that fails is retried with per-key
// exponential backoff until it succeeds (Forget). Pure: the clock is injected.

export interface QueueOptions {
  baseDelayMs: number;
  maxDelayMs: number;
}

export class WorkQueue {
  /** key → when it becomes ready (ms since epoch). */
  private readonly due = new Map<string, number>();
  private readonly failures = new Map<string, number>();
  private readonly opts: QueueOptions;

  constructor(opts: QueueOptions = { baseDelayMs: 5, maxDelayMs: 60_000 }) {
    this.opts = opts;
  }

  get size(): number {
    return this.due.size;
  }

  /** Makes key ready now (an earlier due time wins over a later one). */
  add(key: string, now: number): void {
    this.addAt(key, now);
  }

  /** Makes key ready at `at`, unless it is already due earlier. */
  addAt(key: string, at: number): void {
    const cur = this.due.get(key);
    if (cur === undefined || at < cur) this.due.set(key, at);
  }

  /** Requeues key after a failure, with exponential backoff per key. Returns the delay. */
  addRateLimited(key: string, now: number): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const delay = Math.min(this.opts.maxDelayMs, this.opts.baseDelayMs * 2 ** n);
    this.addAt(key, now + delay);
    return delay;
  }

  /** Clears key's failure count (after a successful reconcile). */
  forget(key: string): void {
    this.failures.delete(key);
  }

  failureCount(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** Removes and returns every key due at or before now, earliest first. */
  takeReady(now: number): string[] {
    const ready: [string, number][] = [];
    for (const [k, at] of this.due) if (at <= now) ready.push([k, at]);
    ready.sort((a, b) => a[1] - b[1]);
    for (const [k] of ready) this.due.delete(k);
    return ready.map(([k]) => k);
  }

  /** When the next key becomes due, or undefined if the queue is empty. */
  nextDue(): number | undefined {
    let min: number | undefined;
    for (const at of this.due.values()) if (min === undefined || at < min) min = at;
    return min;
  }

  /** The delayed keys and their due times (for persisting timers). */
  entries(): [string, number][] {
    return [...this.due];
  }
}
