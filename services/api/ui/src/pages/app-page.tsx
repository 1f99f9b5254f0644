import type { AppWithRollout, NebulaClient } from '@nebula/client';
import { useMemo, useState } from 'react';
import { ConfigEditor } from '../components/config-editor.tsx';
import { RevisionDiff } from '../components/revision-diff.tsx';
import { RolloutBar } from '../components/rollout-bar.tsx';
import { type Config, configsByRevision } from '../lib/revisions.ts';
import { errorText, useQuery } from '../lib/use-query.ts';
import { Link, navigate } from '../router.tsx';
import { mayWrite, useSession } from '../session.tsx';

/** The answer-only fields of apps.get: what remains is the config, as update takes it. */
export function configOf(app: AppWithRollout): Config {
  const { app_name: _n, app_id: _i, incarnation: _c, rollout_id: _r, rollout: _ro, publish_errors: _p, ...config } = app;
  return config;
}

type Action = 'start' | 'stop' | 'restart' | 'roll' | 'pull';
const ACTIONS: ReadonlyArray<{ action: Action; label: string }> = [
  { action: 'start', label: 'Start' },
  { action: 'stop', label: 'Stop' },
  { action: 'restart', label: 'Restart' },
  { action: 'roll', label: 'Roll' },
  { action: 'pull', label: 'Pull' },
];

function runAction(client: NebulaClient, action: Action, name: string) {
  return client.apps[action].mutate({ name });
}

/** One app: its config, revisions with a diff of any two, and the actions the user's rights allow. */
export function AppPage({ name }: { name: string }) {
  const { client, me } = useSession();
  const app = useQuery((signal) => client.apps.get.query({ name }, { signal }), [client, name], 5_000);
  const history = useQuery((signal) => client.apps.history.query({ name, limit: 1000 }, { signal }), [client, name, app.data?.app_id]);
  const [failure, setFailure] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const write = mayWrite(me, name);
  const configs = useMemo(
    () => (app.data && history.data ? configsByRevision(configOf(app.data), history.data.revisions) : new Map<number, Config>()),
    [app.data, history.data],
  );

  const act = async (run: () => Promise<{ rollout_id: string }>) => {
    setBusy(true);
    setFailure(null);
    try {
      const doc = await run();
      navigate({ page: 'rollout', id: doc.rollout_id });
    } catch (err) {
      setFailure(errorText(err));
      setBusy(false);
    }
  };

  if (app.error && !app.data) return <p className="error">{app.error}</p>;
  if (!app.data) return <p className="muted">Loading…</p>;
  const a = app.data;
  const config = configOf(a);
  return (
    <section>
      <p className="crumbs">
        <Link to={{ page: 'apps' }}>Apps</Link> / {name}
      </p>
      <h1>{name}</h1>
      <dl className="facts">
        <dt>Image</dt>
        <dd className="mono">{a.docker_image}</dd>
        <dt>Revision</dt>
        <dd>{a.app_id}</dd>
        <dt>Running</dt>
        <dd>{a.running ? '▶ running' : '■ stopped'}</dd>
        <dt>Latest rollout</dt>
        <dd>
          {a.rollout ? (
            <Link to={{ page: 'rollout', id: a.rollout.id }}>
              <RolloutBar r={a.rollout} /> {a.rollout.state}
            </Link>
          ) : (
            <RolloutBar r={null} />
          )}
        </dd>
      </dl>
      {a.publish_errors.length > 0 && (
        <div className="error">
          Revisions that could not be published:
          <ul>
            {a.publish_errors.map((e) => (
              <li key={e.rollout_id}>
                {e.app_id}: {e.error}
              </li>
            ))}
          </ul>
        </div>
      )}

      {write ? (
        <fieldset className="actions">
          <legend className="sr-only">Actions</legend>
          {ACTIONS.map(({ action, label }) => (
            <button type="button" key={action} disabled={busy} onClick={() => act(() => runAction(client, action, name))}>
              {label}
            </button>
          ))}
        </fieldset>
      ) : (
        <p className="muted" data-testid="read-only">
          Read only: your rights allow no changes to this app.
        </p>
      )}
      {failure && (
        <p className="error" role="alert">
          {failure}
        </p>
      )}

      <h2>Config</h2>
      <pre className="config">{JSON.stringify(config, null, 2)}</pre>
      {write && (
        <details className="panel">
          <summary>Update the config</summary>
          <ConfigEditor
            key={a.app_id}
            initial={JSON.stringify(config, null, 2)}
            submitLabel="Update"
            onSubmit={async (c) => {
              const doc = await client.apps.update.mutate({ name, ...(c as { docker_image: string }) });
              navigate({ page: 'rollout', id: doc.rollout_id });
            }}
          />
        </details>
      )}

      <h2>Revisions</h2>
      {history.error && <p className="error">{history.error}</p>}
      {history.data && (
        <>
          <div className="scroll">
            <table>
              <thead>
                <tr>
                  <th>Revision</th>
                  <th>Action</th>
                  <th>By</th>
                  <th>When</th>
                  <th>Changed</th>
                  <th>Rollout</th>
                  {write && <th>Rollback</th>}
                </tr>
              </thead>
              <tbody>
                {history.data.revisions.map((r) => (
                  <tr key={r.app_id}>
                    <td>{r.app_id}</td>
                    <td>
                      {r.action}
                      {r.reason && <div className="muted small">{r.reason}</div>}
                    </td>
                    <td>{r.actor ?? '-'}</td>
                    <td>{new Date(r.created_at).toLocaleString()}</td>
                    <td className="mono small">{r.changes.map((c) => c.field).join(', ') || '-'}</td>
                    <td>
                      <Link to={{ page: 'rollout', id: r.rollout_id }}>view</Link>
                    </td>
                    {write && (
                      <td>
                        {r.app_id !== a.app_id && (
                          <button
                            type="button"
                            disabled={busy}
                            onClick={() => act(() => client.apps.rollback.mutate({ name, revision: r.app_id }))}
                            aria-label={`Roll back to revision ${r.app_id}`}
                          >
                            Roll back to {r.app_id}
                          </button>
                        )}
                      </td>
                    )}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <RevisionDiff configs={configs} />
        </>
      )}
    </section>
  );
}
