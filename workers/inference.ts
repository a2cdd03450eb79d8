/** Entry point: `npx tsx workers/inference.ts` runs a worker of role "inference" with the configuration from the environment. */
import { runWorkerMain } from './main';

runWorkerMain('inference');
