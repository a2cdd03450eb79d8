/**
 * The project's ids in a workflow's or activity's input, for log attributes: `rememr1RunId` (the run the user
 * named; `runId` alone would read as Temporal's workflow run id) and `episodeId`. Pure, so workflow interceptors
 * can use it too.
 */
export interface ProjectIds {
  rememr1RunId?: string;
  episodeId?: string;
}

/** From the first argument: a run id string, or an object with `runId` (or `trainingRunId`) and `episodeId`. */
export function projectIds(args: readonly unknown[]): ProjectIds {
  const first = args[0];
  if (typeof first === 'string') return { rememr1RunId: first };
  if (typeof first !== 'object' || first === null) return {};
  const { runId, episodeId, trainingRunId } = first as {
    runId?: unknown;
    episodeId?: unknown;
    trainingRunId?: unknown;
  };
  const ids: ProjectIds = {};
  const run = typeof runId === 'string' ? runId : trainingRunId;
  if (typeof run === 'string') ids.rememr1RunId = run;
  if (typeof episodeId === 'string') ids.episodeId = episodeId;
  return ids;
}
