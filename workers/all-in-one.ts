/** Entry point: `npx tsx workers/all-in-one.ts` runs a worker of role "all" with the configuration from the environment. */
import { runWorkerMain } from './main';

runWorkerMain('all');
