/** Turns the configured activity policies (plain data carried in workflow inputs) into Temporal options. */
import type { ActivityOptions } from '@temporalio/workflow';
import type { Duration } from '@temporalio/common';
import type { ActivityOptionsConfig, RememConfig } from '../temporal.config';

/** What a workflow needs to know of the configuration; travels in its input so runs are self-describing. */
export type WorkflowRuntime = Pick<RememConfig, 'taskQueues' | 'activities'>;

export function activityOptions(policy: ActivityOptionsConfig, taskQueue: string): ActivityOptions {
  return {
    taskQueue,
    startToCloseTimeout: policy.startToCloseTimeout as Duration,
    heartbeatTimeout: policy.heartbeatTimeout as Duration | undefined,
    retry: {
      initialInterval: policy.retry.initialInterval as Duration,
      backoffCoefficient: policy.retry.backoffCoefficient,
      maximumInterval: policy.retry.maximumInterval as Duration,
      // The configuration uses Temporal's 0 = unlimited; the TypeScript SDK spells that as no value.
      maximumAttempts: policy.retry.maximumAttempts === 0 ? undefined : policy.retry.maximumAttempts,
    },
  };
}
