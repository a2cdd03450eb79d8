/** The workflow bundle's entry point: every workflow the workers register. Deterministic code only. */
export { episodeWorkflow, episodeProgressQuery } from './episode';
export { batchQAWorkflow, batchProgressQuery } from './batch';
export {
  trainingWorkflow,
  trainingProgressQuery,
  pauseTrainingSignal,
  resumeTrainingSignal,
  stopTrainingSignal,
} from './training';
