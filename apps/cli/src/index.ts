export { type LegacyRow, LegacyTable, parseSource } from './migrate/legacy-table';
export { convertRow, legacyJobId, type MigrateSummary, runMigration } from './migrate/migrate';
export { deadCommand, statsCommand } from './queues/commands';
