import { sqliteRaw } from './baselines/sqlite-raw';
import { frameworkRates } from './framework';

for (let i = 0; i < 3; i++) {
  const f = await frameworkRates({
    env: { BROKER: 'sqlite', SQLITE_PATH: '/tmp/prof3.db' },
    jobs: 10000,
    concurrency: 32,
    batch: 100,
  });
  const r = await sqliteRaw({
    env: { SQLITE_PATH: '/tmp/prof3r.db' },
    jobs: 10000,
    concurrency: 32,
    batch: 100,
  });
  console.log(
    Math.round(f.processPerSec),
    Math.round(r.processPerSec),
    (f.processPerSec / r.processPerSec).toFixed(2),
  );
}
