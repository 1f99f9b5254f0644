import { useQuery } from '../lib/use-query.ts';
import { useSession } from '../session.tsx';

/** Cron jobs: name, schedule, image and the last run (read only in this first slice). */
export function CronJobsPage() {
  const { client } = useSession();
  const jobs = useQuery(
    async (signal) => {
      const { cron_jobs } = await client.cronJobs.list.query(undefined, { signal });
      return Promise.all(
        cron_jobs.map(async (name) => {
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
            </tr>
          </thead>
          <tbody>
            {(jobs.data ?? []).map(({ name, job }) => (
              <tr key={name}>
                <td>{name}</td>
                <td className="mono">{job ? String((job as { schedule?: unknown }).schedule ?? '') : '–'}</td>
                <td className="mono">{job ? String((job as { docker_image?: unknown }).docker_image ?? '') : '(no read access)'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {jobs.data && jobs.data.length === 0 && <p className="muted">No cron jobs.</p>}
    </section>
  );
}
