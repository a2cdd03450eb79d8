/**
 * Facts a cluster deployment derives from the configuration (infra/k8s/ is checked against them by the tests).
 *
 * A pod that is told to stop (SIGTERM) stops polling and gives its running activities `worker.shutdownGraceTime`
 * to finish; then it cancels them, and a cancelled activity learns of it at its next heartbeat, which comes within
 * its heartbeat timeout. The pod must live that long too, or Kubernetes kills it before the attempt is reported
 * and the server sits out the whole heartbeat timeout before it retries elsewhere.
 */
import type { ActivityOptionsConfig, RememConfig } from '../temporal.config';

export type DeployedRole = 'inference' | 'trainer' | 'orchestration';

/** Which configured activity policies run on each role's task queue (see workflows/*.ts `activityOptions`). */
export const roleActivities: Record<DeployedRole, ReadonlyArray<keyof RememConfig['activities']>> = {
  inference: ['modelStep'],
  trainer: ['policyUpdate'],
  orchestration: ['io', 'indexShard'],
};

/** Without an `indexShard` policy the batch workflow indexes shards with a 1-minute heartbeat (workflows/batch.ts). */
const indexShardFallback: Pick<ActivityOptionsConfig, 'heartbeatTimeout'> = { heartbeatTimeout: '1m' };

const unitMs: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A configuration duration ("500ms", "30s", "5m", "1h") in milliseconds. */
export function durationMs(duration: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(duration);
  if (!match) throw new Error(`expected a duration such as "500ms", "30s", "5m" or "1h", got "${duration}"`);
  return Number(match[1]) * unitMs[match[2]];
}

/** The longest heartbeat timeout among a role's activities (0 when none heartbeats). */
export function longestHeartbeatMs(config: RememConfig, role: DeployedRole): number {
  const policies = roleActivities[role].map(
    (name) => config.activities[name] ?? (name === 'indexShard' ? indexShardFallback : undefined),
  );
  return Math.max(
    0,
    ...policies
      .filter((policy): policy is Pick<ActivityOptionsConfig, 'heartbeatTimeout'> => policy !== undefined)
      .map((policy) => (policy.heartbeatTimeout ? durationMs(policy.heartbeatTimeout) : 0)),
  );
}

/** The least `terminationGracePeriodSeconds` a role's pods need: shutdown grace time + longest heartbeat timeout. */
export function minimumTerminationGraceSeconds(config: RememConfig, role: DeployedRole): number {
  return Math.ceil((durationMs(config.worker.shutdownGraceTime) + longestHeartbeatMs(config, role)) / 1000);
}
