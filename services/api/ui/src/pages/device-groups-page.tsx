import { useState } from 'react';
import { RolloutBar } from '../components/rollout-bar.tsx';
import { errorText, useQuery } from '../lib/use-query.ts';
import { Link, navigate } from '../router.tsx';
import { mayCreate, useSession } from '../session.tsx';

/**
 * Device groups: name, apps, cron jobs, device_group_id, prune_id and the latest change's
 * `applied / expected` (its rollout). A group the user may not read is listed by name only.
 * Refreshed every 5 s.
 */
export function DeviceGroupsPage() {
  const { client, me } = useSession();
  const groups = useQuery(
    async (signal) => {
      const { device_groups } = await client.deviceGroups.list.query(undefined, { signal });
      return Promise.all(
        device_groups.sort().map(async (name) => {
          const g = await client.deviceGroups.get.query({ name }, { signal }).catch(() => null);
          const latest = g ? ((await client.deviceGroups.rollouts.query({ name, limit: 1 }, { signal }).catch(() => null))?.rollouts[0] ?? null) : null;
          return { name, g, latest };
        }),
      );
    },
    [client],
    5_000,
  );
  return (
    <section>
      <h1>Device groups</h1>
      {groups.error && <p className="error">{groups.error}</p>}
      <div className="scroll">
        <table>
          <thead>
            <tr>
              <th>Name</th>
              <th>Apps</th>
              <th>Cron jobs</th>
              <th>device_group_id</th>
              <th>prune_id</th>
              <th>Latest change</th>
            </tr>
          </thead>
          <tbody>
            {(groups.data ?? []).map(({ name, g, latest }) => (
              <tr key={name} data-group={name}>
                <td>
                  <Link to={{ page: 'device-group', name }}>{name}</Link>
                </td>
                {g ? (
                  <>
                    <td>
                      {g.apps.length === 0 && <span className="muted">none</span>}
                      {g.apps.map((a) => (
                        <span key={a} className="chip">
                          <Link to={{ page: 'app', name: a }}>{a}</Link>
                        </span>
                      ))}
                    </td>
                    <td>
                      {g.cron_jobs.length === 0 && <span className="muted">none</span>}
                      {g.cron_jobs.map((j) => (
                        <span key={j} className="chip">
                          <Link to={{ page: 'cron-job', name: j }}>{j}</Link>
                        </span>
                      ))}
                    </td>
                    <td data-testid="device-group-id">{g.device_group_id}</td>
                    <td data-testid="prune-id">{g.prune_id}</td>
                    <td>
                      {latest ? (
                        <Link to={{ page: 'rollout', id: latest.id }}>
                          <RolloutBar r={latest} /> <span className="small">{latest.action}</span>
                        </Link>
                      ) : (
                        <RolloutBar r={null} />
                      )}
                    </td>
                  </>
                ) : (
                  <td colSpan={5} className="muted">
                    (no read access)
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {groups.data && groups.data.length === 0 && <p className="muted">No device groups yet.</p>}
      {groups.loading && !groups.data && <p className="muted">Loading…</p>}
      {mayCreate(me, 'device_groups') && <NewGroup />}
    </section>
  );
}

/** Creates a group with apps and cron jobs picked from the existing ones, then opens the group. */
function NewGroup() {
  const { client } = useSession();
  const [name, setName] = useState('');
  const [apps, setApps] = useState<string[]>([]);
  const [jobs, setJobs] = useState<string[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const choices = useQuery(
    async (signal) => {
      const [a, j] = await Promise.all([client.apps.list.query(undefined, { signal }), client.cronJobs.list.query(undefined, { signal })]);
      return { apps: a.apps.sort(), jobs: j.cron_jobs.sort() };
    },
    [client],
  );
  const create = async () => {
    setBusy(true);
    setError(null);
    try {
      await client.deviceGroups.create.mutate({ name: name.trim(), apps, cron_jobs: jobs });
      navigate({ page: 'device-group', name: name.trim() });
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <details className="panel">
      <summary>New device group</summary>
      <form
        className="config-editor"
        onSubmit={(e) => {
          e.preventDefault();
          void create();
        }}
      >
        <label>
          Group name <input value={name} onChange={(e) => setName(e.target.value)} required pattern="[A-Za-z0-9][A-Za-z0-9_\-]*" />
        </label>
        <MultiPick label="Apps" options={choices.data?.apps ?? []} value={apps} onChange={setApps} />
        <MultiPick label="Cron jobs" options={choices.data?.jobs ?? []} value={jobs} onChange={setJobs} />
        {error && <p className="error">{error}</p>}
        <button type="submit" disabled={busy || name.trim() === ''}>
          Create device group
        </button>
      </form>
    </details>
  );
}

/** Checkboxes, one per existing name: keyboard reachable, labelled, no free text to mistype. */
export function MultiPick(props: { label: string; options: readonly string[]; value: readonly string[]; onChange(v: string[]): void }) {
  return (
    <fieldset className="pick">
      <legend>{props.label}</legend>
      {props.options.length === 0 && <span className="muted">none exist</span>}
      {props.options.map((o) => (
        <label key={o} className="chip">
          <input
            type="checkbox"
            checked={props.value.includes(o)}
            onChange={(e) => props.onChange(e.target.checked ? [...props.value, o] : props.value.filter((v) => v !== o))}
          />{' '}
          {o}
        </label>
      ))}
    </fieldset>
  );
}
