import { useState } from 'react';
import { ConfigEditor } from '../components/config-editor.tsx';
import { useQuery } from '../lib/use-query.ts';
import { validateCronJobText } from '../lib/validate-cron-job.ts';
import { Link, navigate } from '../router.tsx';
import { mayCreate, useSession } from '../session.tsx';

/** Cron jobs: name, schedule (and its time zone), image, running; a new one by rights. Every 10 s. */
export function CronJobsPage() {
  const { client, me } = useSession();
  const jobs = useQuery(
    async (signal) => {
      const { cron_jobs } = await client.cronJobs.list.query(undefined, { signal });
      return Promise.all(
        cron_jobs.sort().map(async (name) => {
          const job = await client.cronJobs.get.query({ name }, { signal }).catch(() => null);
          return { name, job };
        }),
      );
    },
    [client],
    10_000,
  );
  return (
    <section>
      <h1>Cron jobs</h1>
      {jobs.error && <p className="error">{jobs.error}</p>}
      <div className="scroll">
        <table>
          <thead>
            <tr>
              <th>Name</th>
              <th>Schedule</th>
              <th>Image</th>
              <th>Running</th>
              <th>cron_job_id</th>
            </tr>
          </thead>
          <tbody>
            {(jobs.data ?? []).map(({ name, job }) => (
              <tr key={name} data-cron-job={name}>
                <td>
                  <Link to={{ page: 'cron-job', name }}>{name}</Link>
                </td>
                {job ? (
                  <>
                    <td className="mono">
                      {job.schedule} <span className="muted small">{job.timezone}</span>
                    </td>
                    <td className="mono">{job.docker_image}</td>
                    <td>{job.running ? '▶ on' : '■ off'}</td>
                    <td>{job.cron_job_id}</td>
                  </>
                ) : (
                  <td colSpan={4} className="muted">
                    (no read access)
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {jobs.data && jobs.data.length === 0 && <p className="muted">No cron jobs.</p>}
      {mayCreate(me, 'cron_jobs') && <NewCronJob />}
    </section>
  );
}

const NEW_JOB = `{
  "docker_image": "",
  "schedule": "*/5 * * * *"
}`;

/** Creates a cron job (name and config, checked with cronJobConfigSchema), then opens it. */
function NewCronJob() {
  const { client } = useSession();
  const [name, setName] = useState('');
  return (
    <details className="panel">
      <summary>New cron job</summary>
      <label>
        Cron job name <input value={name} onChange={(e) => setName(e.target.value)} pattern="[A-Za-z0-9][A-Za-z0-9_\-]*" />
      </label>
      <ConfigEditor
        initial={NEW_JOB}
        label="Cron job config (JSON)"
        submitLabel="Create cron job"
        validate={validateCronJobText}
        onSubmit={async (config) => {
          const doc = await client.cronJobs.create.mutate({ name: name.trim(), ...(config as { docker_image: string; schedule: string }) });
          navigate({ page: 'cron-job', name: doc.cron_job_name });
        }}
      />
    </details>
  );
}
