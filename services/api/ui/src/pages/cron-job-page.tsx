import type { CronJobDoc } from '@nebula/contracts';
import { useState } from 'react';
import { ConfigEditor } from '../components/config-editor.tsx';
import { useAction } from '../lib/use-action.ts';
import { useQuery } from '../lib/use-query.ts';
import { validateCronJobText } from '../lib/validate-cron-job.ts';
import { Link, navigate } from '../router.tsx';
import { mayWriteCronJob, useSession } from '../session.tsx';

/**
 * One cron job: its config, its runs on every host (start, end, exit code, timed out, why it did not
 * run, the log's tail), and by rights: update (the JSON editor, checked with cronJobConfigSchema,
 * errors by field) and delete (admins only, as the API; refused while a device group names it).
 */
export function CronJobPage({ name }: { name: string }) {
  const { client, me } = useSession();
  const job = useQuery((signal) => client.cronJobs.get.query({ name }, { signal }), [client, name], 10_000);
  const runs = useQuery((signal) => client.cronJobs.runs.query({ name, limit: 100 }, { signal }), [client, name], 10_000);
  const j = job.data;
  return (
    <section>
      <p className="crumbs">
        <Link to={{ page: 'cron-jobs' }}>Cron jobs</Link> / {name}
      </p>
      <h1>Cron job {name}</h1>
      {job.error && <p className="error">{job.error}</p>}
      {j && (
        <dl className="facts">
          <dt>Schedule</dt>
          <dd className="mono">
            {j.schedule} ({j.timezone})
          </dd>
          <dt>Image</dt>
          <dd className="mono">{j.docker_image}</dd>
          <dt>Running</dt>
          <dd>{j.running ? '▶ on' : '■ off'}</dd>
          <dt>Timeout</dt>
          <dd>{j.timeout_seconds} s</dd>
          <dt>cron_job_id</dt>
          <dd>{j.cron_job_id}</dd>
        </dl>
      )}
      {j && mayWriteCronJob(me, name) && <Edit job={j} onDone={job.reload} />}
      {j && me.permissions.admin && <Delete name={name} />}
      <h2>Runs</h2>
      {runs.error && <p className="error">{runs.error}</p>}
      <div className="scroll">
        <table>
          <thead>
            <tr>
              <th>Host</th>
              <th>Start</th>
              <th>End</th>
              <th>Exit code</th>
              <th>Timed out</th>
              <th>Error</th>
            </tr>
          </thead>
          <tbody>
            {(runs.data?.runs ?? []).map((r) => (
              <RunRow key={`${r.host_id}/${r.started_at}`} r={r} />
            ))}
          </tbody>
        </table>
      </div>
      {runs.data && runs.data.runs.length === 0 && <p className="muted">No runs reported yet (hosts of a device group that lists it run it).</p>}
    </section>
  );
}

type Run = {
  host_id: string;
  started_at: string;
  finished_at: string | null;
  exit_code: number | null;
  timed_out: boolean;
  log_tail: string | null;
  error: string | null;
};

function RunRow({ r }: { r: Run }) {
  const ok = r.error === null && !r.timed_out && r.exit_code === 0;
  const state = r.finished_at === null && r.error === null ? '… running' : ok ? '✓ exit 0' : r.exit_code === null ? '✕ none' : `✕ exit ${r.exit_code}`;
  return (
    <>
      <tr>
        <td className="mono">{r.host_id}</td>
        <td>{new Date(r.started_at).toLocaleString()}</td>
        <td>{r.finished_at ? new Date(r.finished_at).toLocaleString() : '–'}</td>
        <td className={ok ? 'ok-text' : r.finished_at === null && r.error === null ? '' : 'failed-text'}>{state}</td>
        <td>{r.timed_out ? '⏱ yes' : 'no'}</td>
        <td className={r.error ? 'failed-text' : ''}>{r.error ?? '–'}</td>
      </tr>
      {r.log_tail && (
        <tr className="log-row">
          <td colSpan={6}>
            <details>
              <summary>Log tail ({r.host_id})</summary>
              <pre className="log">{r.log_tail}</pre>
            </details>
          </td>
        </tr>
      )}
    </>
  );
}

function configText(j: CronJobDoc): string {
  const { cron_job_name: _n, cron_job_id: _i, created_at: _c, updated_at: _u, ...config } = j;
  return JSON.stringify(config, null, 2);
}

function Edit({ job, onDone }: { job: CronJobDoc; onDone(): void }) {
  const { client } = useSession();
  return (
    <details className="panel">
      <summary>Update the config</summary>
      <ConfigEditor
        key={job.cron_job_id}
        initial={configText(job)}
        label="Cron job config (JSON)"
        submitLabel="Update cron job"
        validate={validateCronJobText}
        onSubmit={async (config) => {
          await client.cronJobs.update.mutate({ name: job.cron_job_name, ...(config as { docker_image: string; schedule: string }) });
          onDone();
        }}
      />
    </details>
  );
}

function Delete({ name }: { name: string }) {
  const { client } = useSession();
  const [confirm, setConfirm] = useState(false);
  const action = useAction(() => navigate({ page: 'cron-jobs' }));
  return (
    <fieldset className="actions">
      <legend className="sr-only">Delete</legend>
      {!confirm ? (
        <button type="button" onClick={() => setConfirm(true)}>
          Delete cron job…
        </button>
      ) : (
        <>
          <button type="button" className="danger" disabled={action.busy} onClick={() => action.run(() => client.cronJobs.delete.mutate({ name }))}>
            Delete {name}
          </button>
          <button type="button" onClick={() => setConfirm(false)}>
            Keep it
          </button>
        </>
      )}
      {action.error && <p className="error">{action.error}</p>}
    </fieldset>
  );
}
