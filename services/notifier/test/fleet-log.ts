import { createLogger } from '@nebula/service-kit';

export const log = createLogger('notifier-test', process.env.LOG_LEVEL ?? 'silent');
