export * from './database.ts';
export * from './migrate.ts';
export { migrations } from './migrations/index.ts';
export * from './test-database.ts';
export { sql, type Kysely, type Transaction, type Selectable, type Insertable, type Updateable } from 'kysely';
export { isUuid, NOTIFIER_CLOCK_SLACK_SECONDS, onlineSql, type OnlineOptions, QueryInputError } from './query-input.ts';
export * from './notifier-clock.ts';
export * from './rollout-progress.ts';
export * from './host-queries.ts';
