/**
 * Bounded concurrent writes: at most `limit` in flight, each new one waiting for a free slot; `drain` waits for all
 * and rethrows the first failure. Writes to a blob store are latency-bound (an fsync, or an HTTP round trip), so
 * overlapping a few raises throughput; a limit of 1 is the plain one-after-another reference.
 */
export class WritesInFlight {
  private readonly pending = new Set<Promise<void>>();
  private failure: { error: unknown } | undefined;

  constructor(private readonly limit: number) {
    if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`writes in flight must be a whole number of at least 1, got ${limit}`);
  }

  /** Starts `write` once fewer than `limit` are in flight; throws the failure of an earlier write, if any. */
  async add(write: () => Promise<void>): Promise<void> {
    while (this.pending.size >= this.limit) await Promise.race(this.pending);
    this.throwIfFailed();
    const running: Promise<void> = write()
      .catch((error: unknown) => {
        this.failure ??= { error };
      })
      .finally(() => this.pending.delete(running));
    this.pending.add(running);
  }

  /** Waits for every write started so far; throws the first failure among them. */
  async drain(): Promise<void> {
    await Promise.all(this.pending);
    this.throwIfFailed();
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure.error;
  }
}
