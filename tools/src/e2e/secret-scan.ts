import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Credentials in the logs of a run: every secret the run knows (the local admin's password and
 * token, the join token, each NATS seed and JWT in the bus directory and in the hosts' credential
 * files), and the forms a careless log line would carry them in (base64 of `user:password`, a
 * `Basic`/`Bearer` header), looked for in every `*.log` of the run's folder.
 */
export interface Secret {
  label: string;
  value: string;
}

export interface Finding {
  file: string;
  label: string;
}

/** Which secrets occur in a text (secrets shorter than 8 characters are not looked for: too many false hits). */
export function secretsIn(text: string, secrets: readonly Secret[]): string[] {
  return secrets.filter((s) => s.value.length >= 8 && text.includes(s.value)).map((s) => s.label);
}

const SEED = /\bS[UAON][A-Z2-7]{56}\b/g;
const JWT = /\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\b/g;

/** Seeds and JWTs in a file of keys (creds, JSON), each as a secret. */
export function keysIn(label: string, text: string): Secret[] {
  const out: Secret[] = [];
  for (const m of text.matchAll(SEED)) out.push({ label: `${label}: seed`, value: m[0] });
  for (const m of text.matchAll(JWT)) out.push({ label: `${label}: jwt`, value: m[0] });
  return out;
}

function filesUnder(dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(dir)) {
    const full = join(dir, entry);
    if (statSync(full).isDirectory()) filesUnder(full, out);
    else out.push(full);
  }
  return out;
}

export function runSecrets(logDir: string, auth: { user: string; password: string; token: string }, joinTokens: readonly string[]): Secret[] {
  const secrets: Secret[] = [
    { label: 'admin password', value: auth.password },
    { label: 'admin token', value: auth.token },
    { label: 'admin basic header', value: Buffer.from(`${auth.user}:${auth.password}`).toString('base64') },
    ...joinTokens.map((t) => ({ label: 'join token', value: t })),
    // The secret part of a join token alone (nebula-join.<fp>.<id>.<secret>).
    ...joinTokens.map((t) => ({ label: 'join token secret', value: t.split('.').at(-1) ?? t })),
  ];
  for (const f of filesUnder(logDir)) {
    if (f.endsWith('.creds') || f.endsWith('.json')) secrets.push(...keysIn(f.slice(logDir.length + 1), readFileSync(f, 'utf8')));
  }
  return secrets;
}

/** What a scan found, and how much it looked at (a scan of nothing finds nothing). */
export interface LogScan {
  findings: Finding[];
  secrets: number;
  logs: number;
  logBytes: number;
}

export function scanLogs(logDir: string, secrets: readonly Secret[]): LogScan {
  const findings: Finding[] = [];
  const logs = filesUnder(logDir).filter((x) => x.endsWith('.log'));
  let logBytes = 0;
  for (const f of logs) {
    const text = readFileSync(f, 'utf8');
    logBytes += text.length;
    for (const label of secretsIn(text, secrets)) findings.push({ file: f.slice(logDir.length + 1), label });
  }
  return { findings, secrets: secrets.length, logs: logs.length, logBytes };
}
