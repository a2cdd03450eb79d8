/**
 * The batch's Current Details in the Temporal UI say what its `progress` query says, also while episodes run
 * (they once said "0 running" then: the details were set only when an episode finished). The UI reads them through
 * the `__temporal_workflow_metadata` query (`describe()` carries only the static summary and details), so that is
 * what is read here. The episodes wait for an inference worker that starts only after the reading, so the
 * progress holds still while it is compared.
 */
import { batchProgressQuery, describeBatchProgress, type BatchProgress } from '../../workflows/batch';
import { startSyntheticBatch } from '../support/batch';
import { WorkerRig } from '../support/rig';
import { eventually, requireStackEnvironment, testConfig } from '../support/stack';

/** What the SDK's built-in metadata query answers (the part used here). */
interface WorkflowMetadata {
  currentDetails?: string;
}

describe("the batch's current details", () => {
  requireStackEnvironment();
  let orchestration: WorkerRig | undefined;
  let inference: WorkerRig | undefined;

  afterAll(async () => {
    await inference?.close();
    await orchestration?.close();
  });

  it('agree with the progress query while episodes run and when the batch is done', async () => {
    const config = testConfig('batch-details');
    orchestration = await WorkerRig.start(config, 'orchestration');
    const runId = `batch-details-${Date.now().toString(36)}`;
    // Three rows, width 2: two episodes run at once and one waits for a free slot.
    const handle = await startSyntheticBatch(orchestration.client, config, orchestration.store, runId, {
      seed: 5,
      questions: 3,
    });
    const progress = await eventually<BatchProgress>(
      'two episodes running',
      async () => {
        const read = await handle.query(batchProgressQuery);
        return read.running === 2 ? read : undefined;
      },
      120_000,
    );
    const metadata = await handle.query<WorkflowMetadata>('__temporal_workflow_metadata');
    expect(await handle.query(batchProgressQuery)).toEqual(progress); // nothing moved in between
    expect(progress).toMatchObject({ status: 'running', done: 0, running: 2, validRows: 3 });
    expect(metadata.currentDetails).toBe(describeBatchProgress(progress));
    expect(metadata.currentDetails).toContain('0 of 3 episodes done, 2 running, 0 failed');

    inference = await WorkerRig.start(config, 'inference');
    const summary = await handle.result();
    expect(summary.overall.episodes).toBe(3);
    const final = await handle.query(batchProgressQuery);
    expect(final).toMatchObject({ status: 'done', done: 3, running: 0, failed: 0 });
    const finalMetadata = await handle.query<WorkflowMetadata>('__temporal_workflow_metadata');
    expect(finalMetadata.currentDetails).toMatch(/^\*\*Done\*\*: 3 episodes, EM /);
  }, 300_000);
});

describe('describeBatchProgress', () => {
  const base: BatchProgress = {
    status: 'running',
    rows: 5,
    validRows: 4,
    invalidRows: 1,
    page: 1,
    pages: 3,
    done: 2,
    failed: 1,
    running: 1,
  };

  it('says every count of the progress, for each status', () => {
    expect(describeBatchProgress(base)).toBe(
      '**Page 2 of 3**: 2 of 4 episodes done, 1 running, 1 failed, 1 malformed rows skipped',
    );
    expect(describeBatchProgress({ ...base, status: 'summarising', running: 0 })).toBe(
      '**Summarising**: 2 of 4 episodes done, 0 running, 1 failed, 1 malformed rows skipped',
    );
    expect(describeBatchProgress({ ...base, status: 'indexing' }, { indexed: 2, total: 7 })).toBe(
      '**Indexing**: shard 2 of 7, 5 rows',
    );
    expect(describeBatchProgress({ ...base, status: 'indexing' })).toBe('**Indexing**: 5 rows');
  });
});
