/**
 * The orchestration benchmark's floor: a minimal workflow with the episode's shape (one activity after
 * another on another task queue) and nothing else, no search attributes, details or blob-store references. Its
 * activities busy-wait as long as the plain loop's steps took, so its overhead over the plain loop is what
 * Temporal itself costs per activity on this machine.
 */
import { proxyActivities } from '@temporalio/workflow';

export interface FloorActivities {
  /** Keeps a CPU busy for `ms`, as a model step does. */
  busyWait(ms: number): Promise<void>;
}

export async function temporalFloorWorkflow(activityQueue: string, durationsMs: number[]): Promise<void> {
  const { busyWait } = proxyActivities<FloorActivities>({
    taskQueue: activityQueue,
    startToCloseTimeout: '1 minute',
  });
  for (const ms of durationsMs) await busyWait(ms);
}
