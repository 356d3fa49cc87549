import { SqliteBroker, type SqliteBrokerOptions } from '../src/sqlite-broker';

/** A SqliteBroker on the file `path` with the sqlite tests' settings (short polls), plus `extra`. */
export function testBroker(path: string, extra: Partial<SqliteBrokerOptions> = {}): SqliteBroker {
  return new SqliteBroker({
    path,
    prefix: 'polyqueue',
    leaseMs: 30_000,
    pollMinMs: 5,
    pollMaxMs: 50,
    synchronous: 'NORMAL',
    ...extra,
  });
}
