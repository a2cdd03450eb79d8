/**
 * Merges concurrent `generate` calls in one process into shared forward passes (continuous batching):
 * requests wait in a queue, are prefilled (together when their prompts pad to the same width) and join the
 * running batch (up to `maxBatchSize` rows) whenever its cache length is a multiple of CACHE_ALIGNMENT, and
 * leave it as soon as they finish.
 * One loop drives all forward passes, so ONNX Runtime sees one call at a time.
 */
import { PolicyDisposedError } from './errors';
import {
  CACHE_ALIGNMENT,
  GenerationEngine,
  Sequence,
  alignUp,
  type BatchState,
  type GenerateResult,
} from './generate';

interface Waiting {
  sequence: Sequence;
  resolve: (result: GenerateResult) => void;
  reject: (error: unknown) => void;
}

/** Counters for benchmarks and monitoring. */
export interface BatcherStats {
  /** Forward passes that advanced running rows by one token. */
  decodeSteps: number;
  /** Wall time of decode steps, including sampling and bookkeeping. */
  decodeStepMs: number;
  /** Part of decodeStepMs spent inside session.run. */
  decodeRunMs: number;
  /** Rows advanced, summed over decode steps (finished rows awaiting removal excluded). */
  decodeRowSteps: number;
  /** Prefill groups (prompts of one padded width prefilled together). */
  prefills: number;
  prefillMs: number;
  completed: number;
}

export class RequestBatcher {
  private readonly queue: Waiting[] = [];
  private readonly running = new Map<Sequence, Waiting>();
  private batch: BatchState | null = null;
  private loop: Promise<void> | null = null;
  private disposed = false;
  readonly stats: BatcherStats = {
    decodeSteps: 0,
    decodeStepMs: 0,
    decodeRunMs: 0,
    decodeRowSteps: 0,
    prefills: 0,
    prefillMs: 0,
    completed: 0,
  };

  constructor(
    private readonly engine: GenerationEngine,
    private readonly maxBatchSize: number,
    /** Time spent inside session.run so far, read around decode steps. */
    private readonly sessionRunMs: () => number,
  ) {}

  submit(sequence: Sequence): Promise<GenerateResult> {
    if (this.disposed) return Promise.reject(new PolicyDisposedError());
    return new Promise<GenerateResult>((resolve, reject) => {
      this.queue.push({ sequence, resolve, reject });
      // Start on the next turn of the event loop, so calls made together join the batch together.
      this.loop ??= new Promise<void>((started) => setImmediate(started)).then(() => this.drive());
    });
  }

  /** Rejects waiting requests at once and running ones after the current forward pass. */
  async dispose(): Promise<void> {
    this.disposed = true;
    for (const waiting of this.queue.splice(0)) waiting.reject(new PolicyDisposedError());
    await this.loop;
  }

  private async drive(): Promise<void> {
    try {
      while (!this.disposed && (this.queue.length > 0 || this.batch !== null)) {
        if (this.batch === null || this.batch.cache.columns % CACHE_ALIGNMENT === 0) await this.admit();
        if (this.batch !== null) await this.step();
      }
      if (this.disposed) this.failRunning(new PolicyDisposedError());
    } catch (error) {
      this.failRunning(error);
      for (const waiting of this.queue.splice(0)) waiting.reject(error);
    } finally {
      this.batch = null;
      this.loop = null;
      if (!this.disposed && this.queue.length > 0) this.loop = this.drive();
    }
  }

  /**
   * At an alignment point: drop finished rows, prefill newcomers into free slots (together when their
   * prompts pad to the same width, see generate.ts), merge.
   */
  private async admit(): Promise<void> {
    const live = this.batch === null ? 0 : this.batch.rows.filter((row) => !row.finished).length;
    const joining = this.queue.splice(0, Math.max(0, this.maxBatchSize - live));
    const byWidth = new Map<number, Waiting[]>();
    for (const waiting of joining) {
      this.running.set(waiting.sequence, waiting);
      const width = alignUp(waiting.sequence.request.promptIds.length);
      byWidth.set(width, [...(byWidth.get(width) ?? []), waiting]);
    }
    const prefilled: BatchState[] = [];
    for (const group of byWidth.values()) {
      const started = performance.now();
      const part = await this.engine.prefill(group.map((waiting) => waiting.sequence));
      this.stats.prefills += 1;
      this.stats.prefillMs += performance.now() - started;
      this.settleFinished(part.rows);
      prefilled.push(part);
    }
    this.batch = GenerationEngine.merge(this.batch, prefilled);
  }

  private async step(): Promise<void> {
    const batch = this.batch as BatchState;
    if (batch.rows.every((row) => row.finished)) {
      this.batch = null;
      return;
    }
    const started = performance.now();
    const runBefore = this.sessionRunMs();
    const advancing = batch.rows.filter((row) => !row.finished).length;
    this.batch = await this.engine.decode(batch);
    this.stats.decodeSteps += 1;
    this.stats.decodeRowSteps += advancing;
    this.stats.decodeRunMs += this.sessionRunMs() - runBefore;
    this.stats.decodeStepMs += performance.now() - started;
    this.settleFinished(this.batch.rows);
    if (this.batch.rows.every((row) => row.finished)) this.batch = null;
  }

  private settleFinished(rows: readonly Sequence[]): void {
    for (const row of rows) {
      if (!row.finished) continue;
      const waiting = this.running.get(row);
      if (waiting === undefined) continue;
      this.running.delete(row);
      this.stats.completed += 1;
      waiting.resolve(row.result());
    }
  }

  private failRunning(error: unknown): void {
    for (const waiting of this.running.values()) waiting.reject(error);
    this.running.clear();
  }
}
