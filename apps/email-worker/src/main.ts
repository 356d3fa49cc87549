import { runMain } from '@polyqueue/app-runtime';
import { loadEmailWorkerConfig } from './config';
import { runEmailWorker } from './worker';

runMain('email-worker', async () => runEmailWorker(loadEmailWorkerConfig(process.env), process.env));
