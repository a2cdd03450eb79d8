/**
 * Workflow interceptors bundled with the workflows: every log line of a workflow (the SDK's own, such as
 * "Workflow failed", included) carries the project's `rememr1RunId` and `episodeId`, read from the input.
 */
import type { WorkflowInterceptorsFactory } from '@temporalio/workflow';
import { projectIds, type ProjectIds } from '../lib/temporal/log-ids';

export const interceptors: WorkflowInterceptorsFactory = () => {
  let ids: ProjectIds = {};
  return {
    inbound: [
      {
        execute(input, next) {
          ids = projectIds(input.args);
          return next(input);
        },
      },
    ],
    outbound: [
      {
        getLogAttributes(input, next) {
          return next({ ...input, ...ids });
        },
      },
    ],
  };
};
