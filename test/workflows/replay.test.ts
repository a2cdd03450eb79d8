/**
 * Workflow code changes keep running workflows replayable: histories recorded by earlier code replay without a
 * determinism error on today's code. The episode workflow as it was before its progress upserts were throttled
 * (one search-attribute upsert per chunk step); batches that indexed their dataset in one activity, before
 * indexing went one activity per shard (`index-per-shard` patch); batches that indexed one shard at a time, before
 * shards were counted and indexed in parallel (`index-shards-in-parallel`; without that patch this history fails
 * with a nondeterminism error), and one recorded on that path; episodes with throttled upserts, across a
 * continue-as-new. Fixtures of batches are recorded with test/fixtures/record-batch-history.ts. No server is
 * needed: the worker replays the history in memory.
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

describe('batch workflow histories of indexing one shard per activity', () => {
  const load = async (file: string): Promise<temporal.api.history.v1.History> =>
    temporal.api.history.v1.History.decode(await fs.readFile(path.join(FIXTURES, file)));
  const scheduled = (history: temporal.api.history.v1.IHistory): string[] =>
    (history.events ?? []).map((event) => event.activityTaskScheduledEventAttributes?.activityType?.name ?? '').filter((name) => name !== '');
  const markers = (history: temporal.api.history.v1.IHistory): string[] =>
    (history.events ?? []).flatMap((event) => {
      const payload = event.markerRecordedEventAttributes?.details?.['patch-data']?.payloads?.[0]?.data;
      return payload ? [JSON.parse(Buffer.from(payload).toString('utf8')).id as string] : [];
    });

  it('replays a batch recorded before the parallel patch, which indexed its three shards one at a time', async () => {
    // Recorded with test/fixtures/record-batch-history.ts on the code before `index-shards-in-parallel`.
    const history = await load('batch-history-index-per-shard.binpb');
    expect(markers(history)).toEqual(['index-per-shard']);
    expect(scheduled(history).filter((name) => name === 'indexShard')).toHaveLength(3);
    expect(scheduled(history)).not.toContain('countShard');
    await expect(Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, 'fixture-index-per-shard')).resolves.toBeUndefined();
  });

  it('replays a batch that counted its shards, then indexed them at once', async () => {
    const history = await load('batch-history-parallel-index.binpb');
    expect(markers(history)).toEqual(['index-per-shard', 'index-shards-in-parallel']);
    expect(scheduled(history).slice(0, 8)).toEqual([
      'chooseIndexLayout',
      'countShard',
      'countShard',
      'countShard',
      'indexShard',
      'indexShard',
      'indexShard',
      'finishIndex',
    ]);
    // All three indexings were scheduled before the first of them completed.
    const events = history.events ?? [];
    const names = new Map(events.map((event) => [Number(event.eventId), event.activityTaskScheduledEventAttributes?.activityType?.name]));
    const firstIndexed = events.findIndex(
      (event) => names.get(Number(event.activityTaskCompletedEventAttributes?.scheduledEventId ?? -1)) === 'indexShard',
    );
    const lastScheduled = events.map((event) => event.activityTaskScheduledEventAttributes?.activityType?.name).lastIndexOf('indexShard');
    expect(lastScheduled).toBeLessThan(firstIndexed);
    await expect(Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, 'fixture-parallel-index')).resolves.toBeUndefined();
  });
});
