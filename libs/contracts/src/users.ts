import { z } from 'zod';
import { NAME_PATTERN } from './names.ts';

/**
 * Users and user groups, in the original Nebula's shapes (`/api/v2/users`, `/api/v2/user_groups`).
 * A user has a password (HTTP basic) and/or a token (bearer), both stored hashed; what a user may do
 * is the union of the groups that list it in `group_members`.
 *
 * Unlike the original, no answer ever carries a credential or its hash: `GET /users/<u>` says only
 * whether a password and a token are set, and the one way to learn a token is `POST /users/<u>/refresh`,
 * which makes a new one and shows it once.
 */
export const userNameSchema = z.string().regex(NAME_PATTERN, 'must match ^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$ (letters, digits, "_" and "-")');

export const groupNameSchema = z.string().regex(NAME_PATTERN, 'must match ^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$ (letters, digits, "_" and "-")');

/** The shortest password or token accepted: a shorter one is guessed, throttle or not. */
export const MIN_SECRET_LENGTH = 12;
const secret = z
  .string()
  .min(MIN_SECRET_LENGTH, `at least ${MIN_SECRET_LENGTH} characters`)
  .max(1024)
  .refine((s) => !/[\0\r\n]/.test(s), 'must not contain NUL or line breaks');

/** `POST /users/<u>` and its updates: each of password and token optional (a random one is made for a missing one on create). */
export const userCredentialsSchema = z.strictObject({ password: secret.optional(), token: secret.optional() });
export type UserCredentials = z.infer<typeof userCredentialsSchema>;

export const userDocSchema = z.object({
  user_name: z.string(),
  password_set: z.boolean(),
  token_set: z.boolean(),
  created_at: z.string(),
  updated_at: z.string(),
});
export type UserDoc = z.infer<typeof userDocSchema>;

/** `"ro"`: read; `"rw"`: read and change (unlike the original, where "rw" did not include reading). */
export const accessLevelSchema = z.enum(['ro', 'rw']);
export type AccessLevel = z.infer<typeof accessLevelSchema>;

const accessMap = z.record(z.string().regex(NAME_PATTERN, 'not a valid name'), accessLevelSchema);

const groupFields = {
  group_members: z
    .array(userNameSchema)
    .max(10_000)
    .refine((m) => new Set(m).size === m.length, 'a member is listed twice'),
  apps: accessMap,
  device_groups: accessMap,
  cron_jobs: accessMap,
  admin: z.boolean(),
  pruning_allowed: z.boolean(),
  /** Privileged containers, devices, the host network and bind mounts (Nebula's own field). */
  privileged_allowed: z.boolean(),
};

export const userGroupSchema = z.strictObject({
  group_members: groupFields.group_members.default(() => []),
  apps: groupFields.apps.default(() => ({})),
  device_groups: groupFields.device_groups.default(() => ({})),
  cron_jobs: groupFields.cron_jobs.default(() => ({})),
  admin: groupFields.admin.default(false),
  pruning_allowed: groupFields.pruning_allowed.default(false),
  privileged_allowed: groupFields.privileged_allowed.default(false),
});
export type UserGroupConfig = z.output<typeof userGroupSchema>;
export type UserGroupInput = z.input<typeof userGroupSchema>;

/** PUT/PATCH `/user_groups/<g>/update`: any subset of the fields, merged into the group. */
export const userGroupPatchSchema = z.strictObject(groupFields).partial();
export type UserGroupPatch = z.infer<typeof userGroupPatchSchema>;

export const userGroupDocSchema = z.object({
  user_group: z.string(),
  group_members: z.array(z.string()),
  apps: z.record(z.string(), accessLevelSchema),
  device_groups: z.record(z.string(), accessLevelSchema),
  cron_jobs: z.record(z.string(), accessLevelSchema),
  admin: z.boolean(),
  pruning_allowed: z.boolean(),
  privileged_allowed: z.boolean(),
});
export type UserGroupDoc = z.infer<typeof userGroupDocSchema>;
