/** Entry point: `npx tsx workers/trainer.ts` runs a worker of role "trainer" with the configuration from the environment. */
import { runWorkerMain } from './main';

runWorkerMain('trainer');
