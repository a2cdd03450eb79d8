/**
 * CI's check that the tests leave a user's world alone: a Temporal server the tests did not start, holding a
 * batch of the user's in the user's namespace, is as it was after `npm test`.
 *
 *   npx tsx scripts/ci/user-world-check.ts before   # a server answers (started here if none did) and holds a
 *                                                   # running batch of "the user's", on a queue nobody polls
 *   npx tsx scripts/ci/user-world-check.ts after    # the server still answers, the batch is still running with the
 *                                                   # same run and history; then it is terminated, and a server
 *                                                   # started by `before` is stopped
 *
 * `after` exits 1 with one line naming what changed. State between the two: .local/run/ci-user-world.json.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Client } from '@temporalio/client';
import { Command } from 'commander';
import { stackPaths, startTemporal, stopTemporal } from '../../infra/local-stack';
import { connectTemporalClient, temporalServerAnswers } from '../../lib/temporal/client';
import { defaultEpisodeSettings } from '../../lib/episode/types';
import { loadConfig } from '../../temporal.config';
import { batchQAWorkflow } from '../../workflows/batch';

interface UserWorld {
  startedServer: boolean;
  namespace: string;
  workflowId: string;
  runId: string;
  historyLength: number;
}

const config = loadConfig();
const paths = stackPaths(config.localDir);
const stateFile = path.join(paths.run, 'ci-user-world.json');

async function historyLength(
  client: Client,
  workflowId: string,
): Promise<{ status: string; runId: string; length: number }> {
  const description = await client.workflow.getHandle(workflowId).describe();
  return { status: description.status.name, runId: description.runId, length: description.historyLength };
}

async function before(): Promise<void> {
  const server = await startTemporal({
    paths,
    address: config.temporal.address,
    namespace: config.temporal.namespace,
    ui: false,
  });
  const client = await connectTemporalClient(config);
  try {
    const queue = `ci-user-world-${Date.now().toString(36)}`;
    const workflowId = `batch.${queue}`;
    // A batch on queues nobody polls: it stays running, its history still, as a user's batch waiting for workers.
    await client.workflow.start(batchQAWorkflow, {
      workflowId,
      taskQueue: queue,
      args: [
        {
          runId: queue,
          datasetKey: 'datasets/ci-user-world.jsonl',
          dataset: 'ci-user-world.jsonl',
          settings: defaultEpisodeSettings,
          runtime: {
            taskQueues: { orchestration: queue, inference: queue, trainer: queue },
            activities: config.activities,
          },
          width: 1,
          pageSize: 1,
          stopOnBadRow: false,
        },
      ],
    });
    const seen = await historyLength(client, workflowId);
    const world: UserWorld = {
      startedServer: server.started,
      namespace: config.temporal.namespace,
      workflowId,
      runId: seen.runId,
      historyLength: seen.length,
    };
    fs.mkdirSync(paths.run, { recursive: true });
    fs.writeFileSync(stateFile, JSON.stringify(world));
    console.log(
      `user's world: batch ${workflowId} running in namespace ${world.namespace} on ${config.temporal.address} (${server.started ? 'server started for the check' : "the machine's own server"})`,
    );
  } finally {
    await client.connection.close();
  }
}

async function after(): Promise<void> {
  if (!fs.existsSync(stateFile)) throw new Error(`no ${stateFile}: run \`before\` first`);
  const world = JSON.parse(fs.readFileSync(stateFile, 'utf8')) as UserWorld;
  const problems: string[] = [];
  try {
    if (!(await temporalServerAnswers(config.temporal))) {
      problems.push(`the Temporal server at ${config.temporal.address} no longer answers`);
      return;
    }
    const client = await connectTemporalClient(config);
    try {
      const now = await historyLength(client, world.workflowId);
      if (now.status !== 'RUNNING')
        problems.push(`the user's batch ${world.workflowId} is ${now.status}, not running`);
      if (now.runId !== world.runId)
        problems.push(`the user's batch ${world.workflowId} has another run (${now.runId})`);
      if (now.length !== world.historyLength)
        problems.push(
          `the user's batch ${world.workflowId} history grew from ${world.historyLength} to ${now.length} events`,
        );
      await client.workflow
        .getHandle(world.workflowId)
        .terminate('CI check over')
        .catch(() => undefined);
    } finally {
      await client.connection.close();
    }
  } finally {
    if (world.startedServer) await stopTemporal(paths);
    fs.rmSync(stateFile, { force: true });
    if (problems.length > 0) {
      console.error(`user's world changed by the tests: ${problems.join('; ')}`);
      process.exitCode = 1;
    } else {
      console.log(`user's world: server and batch ${world.workflowId} as they were`);
    }
  }
}

const program = new Command('user-world-check').description(
  "CI: the tests leave a user's server and batch alone",
);
program.command('before').action(before);
program.command('after').action(after);
program.parseAsync(process.argv).catch((error: unknown) => {
  console.error(`user-world-check: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
