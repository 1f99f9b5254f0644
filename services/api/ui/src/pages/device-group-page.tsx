import { useState } from 'react';
import { RolloutBar } from '../components/rollout-bar.tsx';
import { useAction } from '../lib/use-action.ts';
import { useQuery } from '../lib/use-query.ts';
import { Link, navigate } from '../router.tsx';
import { mayPrune, mayWriteGroup, useSession } from '../session.tsx';

/**
 * One device group: its apps and cron jobs (linked, from `info`), its counters, its changes (each a
 * rollout of kind group, opened live on the rollout page) and the actions the user's rights allow:
 * add or remove an app or a cron job (picked from the existing ones), prune, delete.
 */
export function DeviceGroupPage({ name }: { name: string }) {
  const { client, me } = useSession();
  const info = useQuery((signal) => client.deviceGroups.info.query({ name }, { signal }), [client, name], 5_000);
  const changes = useQuery((signal) => client.deviceGroups.rollouts.query({ name, limit: 20 }, { signal }), [client, name], 5_000);
  const reload = () => {
    info.reload();
    changes.reload();
  };
  const write = mayWriteGroup(me, name);
  const i = info.data;
  return (
    <section>
      <p className="crumbs">
        <Link to={{ page: 'device-groups' }}>Device groups</Link> / {name}
      </p>
      <h1>Device group {name}</h1>
      {info.error && <p className="error">{info.error}</p>}
      {i && (
        <>
          <dl className="facts">
            <dt>device_group_id</dt>
            <dd data-testid="device-group-id">{i.device_group_id}</dd>
            <dt>prune_id</dt>
            <dd data-testid="prune-id">{i.prune_id}</dd>
            <dt>Prunes</dt>
            <dd>
              <Link to={{ page: 'prunes', group: name }}>what each host freed</Link>
            </dd>
          </dl>
          <Members
            title="Apps"
            kind="app"
            names={i.apps_list}
            details={new Map(i.apps.map((a) => [a.app_name, `${a.docker_image}${a.running ? '' : ' (stopped)'}`]))}
            write={write}
            onChange={(patch) => client.deviceGroups.patch.mutate({ name, ...patch })}
            options={(signal) => client.apps.list.query(undefined, { signal }).then((r) => r.apps)}
            done={reload}
          />
          <Members
            title="Cron jobs"
            kind="cron-job"
            names={i.cron_jobs_list}
            details={new Map(i.cron_jobs.map((j) => [j.cron_job_name, `${j.schedule} · ${j.docker_image}`]))}
            write={write}
            onChange={(patch) => client.deviceGroups.patch.mutate({ name, ...patch })}
            options={(signal) => client.cronJobs.list.query(undefined, { signal }).then((r) => r.cron_jobs)}
            done={reload}
          />
          <GroupActions name={name} write={write} prune={mayPrune(me)} done={reload} admin={me.permissions.admin} />
        </>
      )}
      <h2>Changes</h2>
      {changes.error && <p className="error">{changes.error}</p>}
      <div className="scroll">
        <table>
          <thead>
            <tr>
              <th>Message</th>
              <th>Action</th>
              <th>When</th>
              <th>Hosts</th>
            </tr>
          </thead>
          <tbody>
            {(changes.data?.rollouts ?? []).map((r) => (
              <tr key={r.id} data-rollout={r.id} data-action={r.action}>
                <td>
                  <Link to={{ page: 'rollout', id: r.id }}>message {r.revision}</Link>
                </td>
                <td>{r.action.replace('_', ' ')}</td>
                <td>{new Date(r.created_at).toLocaleString()}</td>
                <td>
                  <RolloutBar r={r} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

type Patch = { add_apps?: string[]; remove_apps?: string[]; add_cron_jobs?: string[]; remove_cron_jobs?: string[] };

/** The group's apps (or cron jobs), each linked; with "rw", a remove button each and a picker of the others to add. */
function Members(props: {
  title: string;
  kind: 'app' | 'cron-job';
  names: readonly string[];
  details: ReadonlyMap<string, string>;
  write: boolean;
  onChange(patch: Patch): Promise<unknown>;
  options(signal: AbortSignal): Promise<string[]>;
  done(): void;
}) {
  const { client } = useSession();
  const [pick, setPick] = useState('');
  const action = useAction(props.done);
  const all = useQuery((signal) => (props.write ? props.options(signal) : Promise.resolve([])), [client, props.write]);
  const addable = (all.data ?? []).filter((n) => !props.names.includes(n)).sort();
  const app = props.kind === 'app';
  const noun = app ? 'app' : 'cron job';
  return (
    <div className="panel" data-members={props.kind}>
      <h2>{props.title}</h2>
      {props.names.length === 0 && <p className="muted">No {noun}s.</p>}
      <ul className="members">
        {props.names.map((n) => (
          <li key={n} data-member={n}>
            <Link to={app ? { page: 'app', name: n } : { page: 'cron-job', name: n }}>{n}</Link>{' '}
            <span className="muted small mono">{props.details.get(n) ?? ''}</span>
            {props.write && (
              <button
                type="button"
                className="link"
                disabled={action.busy}
                aria-label={`Remove ${noun} ${n}`}
                onClick={() => action.run(() => props.onChange(app ? { remove_apps: [n] } : { remove_cron_jobs: [n] }))}
              >
                Remove
              </button>
            )}
          </li>
        ))}
      </ul>
      {props.write && (
        <form
          className="toolbar"
          onSubmit={(e) => {
            e.preventDefault();
            if (pick) void action.run(() => props.onChange(app ? { add_apps: [pick] } : { add_cron_jobs: [pick] })).then(() => setPick(''));
          }}
        >
          <label>
            Add {noun}{' '}
            <select value={pick} onChange={(e) => setPick(e.target.value)}>
              <option value="">choose…</option>
              {addable.map((n) => (
                <option key={n} value={n}>
                  {n}
                </option>
              ))}
            </select>
          </label>
          <button type="submit" disabled={action.busy || pick === ''}>
            Add
          </button>
        </form>
      )}
      {action.error && <p className="error">{action.error}</p>}
    </div>
  );
}

/** Prune (pruning_allowed or admin) and delete ("rw" on the group, as the API; asked twice). */
function GroupActions(props: { name: string; write: boolean; prune: boolean; admin: boolean; done(): void }) {
  const { client } = useSession();
  const action = useAction(props.done);
  const [confirm, setConfirm] = useState(false);
  if (!props.write && !props.prune) return null;
  return (
    <fieldset className="actions">
      <legend className="sr-only">Actions</legend>
      {props.prune && (
        <button type="button" disabled={action.busy} onClick={() => action.run(() => client.deviceGroups.prune.mutate({ name: props.name }))}>
          Prune images
        </button>
      )}
      {props.write && !confirm && (
        <button type="button" disabled={action.busy} onClick={() => setConfirm(true)}>
          Delete group…
        </button>
      )}
      {props.write && confirm && (
        <>
          <span>Its hosts remove the group's apps and cron jobs.</span>
          <button
            type="button"
            className="danger"
            disabled={action.busy}
            onClick={() =>
              action.run(async () => {
                await client.deviceGroups.delete.mutate({ name: props.name });
                navigate({ page: 'device-groups' });
              })
            }
          >
            Delete {props.name}
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
