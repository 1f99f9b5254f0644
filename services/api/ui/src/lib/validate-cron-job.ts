import { cronJobConfigSchema } from '@nebula/contracts';
import { type Validated, validateConfigText } from './validate-config.ts';

/** A cron job's config typed as JSON, checked with the contracts' cronJobConfigSchema (what cronJobs.create and update take). */
export function validateCronJobText(text: string): Validated {
  return validateConfigText(text, cronJobConfigSchema, 'a cron job config');
}
