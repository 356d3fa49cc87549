import './threadpool';
import { runMain } from '@polyqueue/app-runtime';
import { loadImageWorkerConfig } from './config';
import { runImageWorker } from './worker';

runMain('image-worker', async () => runImageWorker(loadImageWorkerConfig(process.env), process.env));
