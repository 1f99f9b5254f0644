import { useState } from 'react';
import { ConfigEditor } from '../components/config-editor.tsx';
import { RolloutBar } from '../components/rollout-bar.tsx';
import { useQuery } from '../lib/use-query.ts';
import { Link, navigate } from '../router.tsx';
import { useSession } from '../session.tsx';

/** Every app: image, revision, running, the latest rollout's progress; filter by name. Refreshed every 5 s. */
export function AppsPage() {
  const { client, me } = useSession();
  const mayCreate = me.permissions.admin || Object.values(me.permissions.apps).includes('rw');
  const [filter, setFilter] = useState('');
  const apps = useQuery(
    async (signal) => {
      const { apps: names } = await client.apps.list.query(undefined, { signal });
      return Promise.all(names.map((name) => client.apps.get.query({ name }, { signal })));
    },
    [client],
    5_000,
  );
  const shown = (apps.data ?? []).filter((a) => a.app_name.toLowerCase().includes(filter.trim().toLowerCase()));
  return (
    <section>
      <h1>Apps</h1>
      <div className="toolbar">
        <label>
          Filter by name <input type="search" value={filter} onChange={(e) => setFilter(e.target.value)} />
        </label>
      </div>
      {apps.error && <p className="error">{apps.error}</p>}
      <div className="scroll">
        <table>
          <thead>
            <tr>
              <th>Name</th>
              <th>Image</th>
              <th>Revision</th>
              <th>Running</th>
              <th>Latest rollout</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((a) => (
              <tr key={a.app_name} data-app={a.app_name}>
                <td>
                  <Link to={{ page: 'app', name: a.app_name }}>{a.app_name}</Link>
                </td>
                <td className="mono">{a.docker_image}</td>
                <td>{a.app_id}</td>
                <td>{a.running ? '▶ running' : '■ stopped'}</td>
                <td>
                  {a.rollout ? (
                    <Link to={{ page: 'rollout', id: a.rollout.id }}>
                      <RolloutBar r={a.rollout} />
                    </Link>
                  ) : (
                    <RolloutBar r={null} />
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {apps.data && shown.length === 0 && <p className="muted">{apps.data.length === 0 ? 'No apps yet.' : 'No app matches.'}</p>}
      {apps.loading && !apps.data && <p className="muted">Loading…</p>}
      {mayCreate && <NewApp />}
    </section>
  );
}

const NEW_APP_CONFIG = `{
  "docker_image": "",
  "containers_per": { "server": 1 }
}`;

/** Creates an app (name and config, checked with the API's schema), then opens its first rollout. */
function NewApp() {
  const { client } = useSession();
  const [name, setName] = useState('');
  return (
    <details className="panel">
      <summary>New app</summary>
      <label>
        App name <input value={name} onChange={(e) => setName(e.target.value)} pattern="[A-Za-z0-9_.-]+" />
      </label>
      <ConfigEditor
        initial={NEW_APP_CONFIG}
        submitLabel="Create app"
        onSubmit={async (config) => {
          const doc = await client.apps.create.mutate({ name: name.trim(), ...(config as { docker_image: string }) });
          navigate({ page: 'rollout', id: doc.rollout_id });
        }}
      />
    </details>
  );
}
