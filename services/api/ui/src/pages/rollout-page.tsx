import type { RolloutProgress } from '@nebula/client';
import type { RolloutHost } from '@nebula/contracts';
import { useEffect, useMemo, useState } from 'react';
import { AppliedChart } from '../components/applied-chart.tsx';
import { HostGrid } from '../components/host-grid.tsx';
import { appliedOverTime } from '../lib/applied-over-time.ts';
import { lookOf, STATE_ORDER } from '../lib/states.ts';
import { errorText, useQuery } from '../lib/use-query.ts';
import { useRollout } from '../lib/use-rollout.ts';
import { Link } from '../router.tsx';
import { mayWrite, useSession } from '../session.tsx';

/** A rollout, live: the grid of hosts, the counts by state, the waves, the failures, the commands and the chart. */
export function RolloutPage({ id }: { id: string }) {
  const { client, me } = useSession();
  const r = useRollout(client, id);
  const p = r.progress;
  const expectedHosts = useMemo(() => r.hosts.filter((h) => h.expected), [r.hosts]);
  const points = useMemo(() => (p ? appliedOverTime(p.created_at, expectedHosts) : []), [p, expectedHosts]);
  if (r.error && !p) return <p className="error">{r.error}</p>;
  if (!p) return <p className="muted">Loading…</p>;
  const group = p.kind === 'group';
  return (
    <section>
      {group ? (
        <p className="crumbs">
          <Link to={{ page: 'device-groups' }}>Device groups</Link> / <Link to={{ page: 'device-group', name: p.app }}>{p.app}</Link> / change
        </p>
      ) : (
        <p className="crumbs">
          <Link to={{ page: 'apps' }}>Apps</Link> / <Link to={{ page: 'app', name: p.app }}>{p.app}</Link> / rollout
        </p>
      )}
      <h1>{group ? `Change of device group ${p.app}, message ${p.revision}` : `Rollout of ${p.app}, revision ${p.revision}`}</h1>
      <p>
        <span className={`state state-${p.state}`} data-testid="rollout-state">
          {p.state.replace('_', ' ')}
        </span>{' '}
        {p.action.replace('_', ' ')} · {p.applied} / {p.expected} applied{p.failed > 0 ? ` · ${p.failed} failed` : ''} ·{' '}
        {p.complete ? 'complete' : 'in progress'}
        {r.live ? ' · live' : ''}
        <span className="muted small"> · created {new Date(p.created_at).toLocaleString()}</span>
      </p>
      {p.abort_reason && <p className="error">{p.abort_reason}</p>}
      {p.publish_error && <p className="error">Could not be published: {p.publish_error}</p>}
      {p.rollback_rollout_id && (
        <p>
          Rolled back: <Link to={{ page: 'rollout', id: p.rollback_rollout_id }}>the rollback's rollout</Link>
        </p>
      )}
      {r.error && <p className="error">{r.error}</p>}
      <Legend hosts={expectedHosts} />
      <HostGrid hosts={expectedHosts} />
      {!group && mayWrite(me, p.app) && p.waves.length > 0 && <Commands p={p} onDone={r.refresh} />}
      {p.waves.length > 0 && <Waves p={p} />}
      <Failures p={p} />
      <AppliedChart points={points} expected={p.expected} />
    </section>
  );
}

function Legend({ hosts }: { hosts: readonly RolloutHost[] }) {
  const counts = new Map<string, number>();
  for (const h of hosts) counts.set(h.state, (counts.get(h.state) ?? 0) + 1);
  return (
    <ul className="legend" aria-label="Hosts by state">
      {STATE_ORDER.filter((s) => s !== 'applying' || counts.has(s)).map((s) => {
        const look = lookOf(s);
        return (
          <li key={s} data-state={s} data-count={counts.get(s) ?? 0}>
            <span className="swatch" style={{ background: look.color }} aria-hidden="true">
              {look.icon}
            </span>
            {look.label} <strong>{counts.get(s) ?? 0}</strong>
          </li>
        );
      })}
    </ul>
  );
}

type Command = 'pause' | 'resume' | 'promote' | 'abort';
const COMMANDS: ReadonlyArray<{ c: Command; label: string; when: readonly string[] }> = [
  { c: 'pause', label: 'Pause', when: ['rolling'] },
  { c: 'resume', label: 'Resume', when: ['paused'] },
  { c: 'promote', label: 'Promote', when: ['rolling', 'paused'] },
  { c: 'abort', label: 'Abort', when: ['rolling', 'paused'] },
];

function Commands({ p, onDone }: { p: RolloutProgress; onDone(): void }) {
  const { client } = useSession();
  const [failure, setFailure] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const run = async (c: Command) => {
    setBusy(true);
    setFailure(null);
    try {
      await client.rollouts[c].mutate({ id: p.id });
      onDone();
    } catch (err) {
      setFailure(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <fieldset className="actions">
      <legend className="sr-only">Rollout commands</legend>
      {COMMANDS.map(({ c, label, when }) => (
        <button key={c} type="button" disabled={busy || !when.includes(p.state)} onClick={() => run(c)}>
          {label}
        </button>
      ))}
      {failure && (
        <p className="error" role="alert">
          {failure}
        </p>
      )}
    </fieldset>
  );
}

/** The waves: percent, their hosts' progress, and the bake timer of a wave that finished while the next waits. */
function Waves({ p }: { p: RolloutProgress }) {
  const { client } = useSession();
  const app = useQuery((signal) => client.apps.get.query({ name: p.app }, { signal }), [client, p.app]);
  const bake = app.data?.rollout_strategy?.bake_seconds ?? null;
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, []);
  return (
    <div className="scroll">
      <table className="waves">
        <caption>Waves</caption>
        <thead>
          <tr>
            <th>Wave</th>
            <th>Up to</th>
            <th>Hosts</th>
            <th>Applied</th>
            <th>Failed</th>
            <th>Status</th>
          </tr>
        </thead>
        <tbody>
          {p.waves.map((w, i) => {
            const next = p.waves[i + 1];
            const baking = w.finished_at && next && !next.started_at && p.state === 'rolling' && bake !== null;
            const left = baking ? Math.max(0, bake - (now - Date.parse(w.finished_at ?? '')) / 1000) : 0;
            const status = !w.started_at ? 'waiting' : !w.finished_at ? 'applying' : baking ? `baking, ${Math.ceil(left)} s left` : 'done';
            return (
              <tr key={w.percent} aria-current={i + 1 === p.wave ? 'step' : undefined}>
                <td>{i + 1}</td>
                <td>{w.percent}%</td>
                <td>{w.hosts}</td>
                <td>
                  <progress max={Math.max(1, w.hosts)} value={w.applied} aria-label={`wave ${i + 1}: ${w.applied} of ${w.hosts} applied`} /> {w.applied}
                </td>
                <td className={w.failed > 0 ? 'failed-text' : ''}>{w.failed > 0 ? `✗ ${w.failed}` : 0}</td>
                <td>{status}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

function Failures({ p }: { p: RolloutProgress }) {
  if (p.failures.length === 0) return null;
  return (
    <div className="failures">
      <h2>
        Failures ({p.failed}
        {p.failed > p.failures.length ? `, the first ${p.failures.length}` : ''})
      </h2>
      <ul>
        {p.failures.map((f) => (
          <li key={f.host} data-host={f.host}>
            <span className="failed-text">✗</span> <strong>{f.host}</strong> <span className="muted small">{new Date(f.at).toLocaleTimeString()}</span>
            <pre className="error-text">{f.error ?? '(no error text)'}</pre>
          </li>
        ))}
      </ul>
    </div>
  );
}
