/**
 * The task queues of a worker embedded in a command (`qa`, `train`, `sft`).
 *
 * An episode without a policy version is sampled by "the inference worker's configured model". Two commands
 * with different models against one Temporal server would otherwise poll the same inference queue and sample
 * each other's episodes with the wrong weights, silently. So an embedded worker's inference queue is the
 * configured one suffixed with the identity of its model, and the command's workflows route model steps there.
 * Stand-alone workers (`rememr1 worker`, deployments) poll the configured queue as given: there, one queue
 * serves one model by configuration.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { decodeFromPayloadsAtIndex } from '@temporalio/common/lib/internal-non-workflow';
import { parseRulePolicyPath } from '../lib/episode/rule-policy';
import type { RememConfig } from '../temporal.config';

/** Files whose change makes another model (their size and modification time stand for their content). */
const MODEL_IDENTITY_FILES = ['config.json', path.join('onnx', 'model.onnx'), 'model.safetensors', 'tokenizer.json'];

/**
 * A short, queue-safe name of the model at `modelPath`: the rule agent's own name, or a digest of the folder's
 * resolved path and the sizes and modification times of its model files (cheap for any model size; a rebuilt
 * or retrained folder gets another name, so a worker still holding the old weights is not asked).
 */
export function modelIdentity(modelPath: string): string {
  const rule = parseRulePolicyPath(modelPath);
  if (rule !== null) return `rule-${rule.variant}-${rule.memoryWords}`;
  const folder = path.resolve(modelPath);
  const hash = createHash('sha256').update(folder);
  for (const file of MODEL_IDENTITY_FILES) {
    const stat = fs.statSync(path.join(folder, file), { throwIfNoEntry: false });
    hash.update(`\n${file}:${stat === undefined ? '-' : `${stat.size}:${stat.mtimeMs}`}`);
  }
  return `${path.basename(folder).replace(/[^A-Za-z0-9_-]/g, '_')}-${hash.digest('hex').slice(0, 12)}`;
}

/** `config` with the inference queue of an embedded worker: `{queue}.model-{identity}`. */
export function embeddedWorkerConfig(config: RememConfig): RememConfig {
  return {
    ...config,
    taskQueues: {
      ...config.taskQueues,
      inference: `${config.taskQueues.inference}.model-${modelIdentity(config.model.path)}`,
    },
  };
}

/**
 * The task queues a running workflow was started with (its current run's input `runtime.taskQueues`), or
 * undefined when no run of `workflowId` is running. A command that follows a run started earlier (by an older
 * version, or with a model folder since rebuilt) serves the queues that run sends its work to.
 */
export async function runningWorkflowQueues(
  client: Client,
  workflowId: string,
): Promise<RememConfig['taskQueues'] | undefined> {
  const handle = client.workflow.getHandle(workflowId);
  const description = await handle.describe().catch((error: unknown) => {
    if (error instanceof WorkflowNotFoundError) return undefined;
    throw error;
  });
  if (description?.status.name !== 'RUNNING') return undefined;
  const { history } = await client.workflowService.getWorkflowExecutionHistory({
    namespace: client.options.namespace,
    execution: { workflowId, runId: description.runId },
    maximumPageSize: 1,
  });
  const started = history?.events?.[0]?.workflowExecutionStartedEventAttributes;
  const input = await decodeFromPayloadsAtIndex<{ runtime?: { taskQueues?: RememConfig['taskQueues'] } }>(
    client.options.loadedDataConverter,
    0,
    started?.input?.payloads,
  );
  return input?.runtime?.taskQueues;
}

/**
 * The configuration of the worker a command embeds to serve workflow `workflowId`: the queues of the run
 * already running under that id, else the queues of this model (`embeddedWorkerConfig`).
 */
export async function embeddedConfigFor(client: Client, workflowId: string, config: RememConfig): Promise<RememConfig> {
  const running = await runningWorkflowQueues(client, workflowId);
  return running === undefined ? embeddedWorkerConfig(config) : { ...config, taskQueues: running };
}
