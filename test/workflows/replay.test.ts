/**
 * Workflow code changes keep running workflows replayable: histories recorded by earlier code replay without a
 * determinism error on today's code. The episode workflow as it was before its progress upserts were throttled
 * (one search-attribute upsert per chunk step); batches that indexed their dataset in one activity, before
 * indexing went one activity per shard (`index-per-shard` patch); episodes with throttled upserts, across a
 * continue-as-new. No server is needed: the worker replays the history in memory.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { workflowBundle } from '../../workers/worker';

const FIXTURES = path.join(__dirname, '..', 'fixtures');

describe('episode workflow histories from earlier code', () => {
  it('replays an episode recorded with one progress upsert per step', async () => {
    // Binary protobuf, as `temporal.api.history.v1.History.encode` wrote it from a fetched history.
    const bytes = await fs.readFile(path.join(FIXTURES, 'episode-history-upsert-per-step.binpb'));
    const history = temporal.api.history.v1.History.decode(bytes);
    const upserts = (history.events ?? []).filter(
      (event) => event.upsertWorkflowSearchAttributesEventAttributes,
    ).length;
    const steps = (history.events ?? []).filter(
      (event) => event.activityTaskScheduledEventAttributes?.activityType?.name === 'memoryStep',
    ).length;
    expect(upserts).toBeGreaterThan(steps); // the recording is of the old behaviour
    await expect(
      Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, 'fixture-episode'),
    ).resolves.toBeUndefined();
  });

  it('replays the same history started with the scoring, memory content and limit settings set', async () => {
    // The episode workflow passes its settings to the activities without branching on them, so an episode run
    // with the non-default options issues the same commands as the recording.
    const bytes = await fs.readFile(path.join(FIXTURES, 'episode-history-upsert-per-step.binpb'));
    const history = temporal.api.history.v1.History.decode(bytes);
    const payload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
    expect(payload?.data).toBeDefined();
    // One payload per workflow argument: the episode input, as JSON.
    const input = JSON.parse(Buffer.from(payload!.data!).toString('utf8')) as Record<string, unknown>;
    const settings = input.settings as Record<string, unknown>;
    expect(settings.metricsMode).toBeUndefined();
    expect(settings.memoryContent).toBeUndefined();
    input.settings = {
      ...settings,
      metricsMode: 'hotpotqa-official',
      memoryContent: 'response',
      memoryMaxNewTokens: 2048,
      answerMaxNewTokens: 2048,
    };
    payload!.data = Buffer.from(JSON.stringify(input), 'utf8');
    await expect(
      Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, 'fixture-episode-options'),
    ).resolves.toBeUndefined();
  });
});

describe('episode workflow histories with throttled progress upserts', () => {
  // Recorded when the episode loop and its progress bookkeeping were split apart (workflows/episode-progress.ts),
  // on a server suggesting continue-as-new after 40 events; they also replay on the code before the split, so
  // the split issues the same commands in the same order. The first run continues as new; the second resumes.
  it.each([
    ['episode-history-throttled-first-run.binpb', 'continued'],
    ['episode-history-throttled-continued-run.binpb', 'completed'],
  ])('replays %s', async (file, ending) => {
    const history = temporal.api.history.v1.History.decode(await fs.readFile(path.join(FIXTURES, file)));
    const last = history.events?.[history.events.length - 1];
    expect(
      ending === 'continued'
        ? last?.workflowExecutionContinuedAsNewEventAttributes
        : last?.workflowExecutionCompletedEventAttributes,
    ).toBeTruthy();
    await expect(
      Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, `fixture-${file}`),
    ).resolves.toBeUndefined();
  });
});

describe('batch workflow histories from earlier code', () => {
  // One file, and a source of two shards with mapped columns; both recorded before the index-per-shard patch.
  it.each(['batch-history-single-file.binpb', 'batch-history-source-one-index-activity.binpb'])(
    'replays %s, which indexed its dataset in one activity',
    async (file) => {
      const history = temporal.api.history.v1.History.decode(await fs.readFile(path.join(FIXTURES, file)));
      const activities = (history.events ?? []).map((event) => event.activityTaskScheduledEventAttributes?.activityType?.name).filter(Boolean);
      expect(activities).toContain('indexDataset'); // the recording is of the old behaviour
      expect(activities).not.toContain('indexShard');
      await expect(Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, `fixture-${file}`)).resolves.toBeUndefined();
    },
  );
});
