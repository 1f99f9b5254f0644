import { z } from 'zod';

export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly variables: string[];
  constructor(message: string, variables: string[]) {
    super(message);
    this.variables = variables;
  }
}

/**
 * Parses environment variables with a zod object schema whose keys are the variable names.
 * Throws a ConfigError naming every wrong or missing variable; values are never echoed (they may be
 * credentials).
 */
export function loadEnv<S extends z.ZodObject>(schema: S, env: NodeJS.ProcessEnv = process.env): z.output<S> {
  // Empty strings count as unset, as in most shells' `VAR= cmd`.
  const input: Record<string, string> = {};
  for (const key of Object.keys(schema.shape)) {
    const v = env[key];
    if (v !== undefined && v !== '') input[key] = v;
  }
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((i) => {
    const name = String(i.path[0] ?? '?');
    return { name, text: `${name}: ${i.code === 'invalid_type' && input[name] === undefined ? 'is required' : i.message}` };
  });
  const names = [...new Set(problems.map((p) => p.name))];
  throw new ConfigError(`invalid environment: ${problems.map((p) => p.text).join('; ')}`, names);
}

/** Common variable schemas. */
export const envVar = {
  port: (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback),
  url: (fallback: string) => z.string().url().default(fallback),
  /** One URL or several, comma-separated (NATS servers): parsed to the list. */
  urlList: (fallback: string) =>
    z
      .string()
      .default(fallback)
      .refine((v) => v.split(',').every((s) => URL.canParse(s.trim())), 'must be a URL or comma-separated URLs')
      .transform((v) => v.split(',').map((s) => s.trim())),
  bool: (fallback: boolean) =>
    z
      .enum(['true', 'false', '1', '0', 'yes', 'no', 'TRUE', 'FALSE', 'True', 'False'])
      .default(fallback ? 'true' : 'false')
      .transform((v) => ['true', '1', 'yes'].includes(v.toLowerCase())),
  logLevel: () => z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
};
