/** Entry point: `npx tsx workers/orchestration.ts` runs a worker of role "orchestration" with the configuration from the environment. */
import { runWorkerMain } from './main';

runWorkerMain('orchestration');
