import type { Host } from '@nebula/client';
import { useState } from 'react';
import { useQuery } from '../lib/use-query.ts';
import { Link } from '../router.tsx';
import { useSession } from '../session.tsx';

/** Hosts: online or offline, last seen, device group, apps with the revision each runs, usage; filter by status and app. Every 5 s. */
export function HostsPage() {
  const { client } = useSession();
  const [status, setStatus] = useState<'' | 'online' | 'offline'>('');
  const [app, setApp] = useState('');
  const apps = useQuery((signal) => client.apps.list.query(undefined, { signal }), [client]);
  const hosts = useQuery(
    async (signal) => {
      const out: Host[] = [];
      let after: string | undefined;
      for (let i = 0; i < 20; i++) {
        const page = await client.hosts.list.query(
          { limit: 1000, ...(status ? { status } : {}), ...(app ? { app } : {}), ...(after ? { after } : {}) },
          { signal },
        );
        out.push(...page.hosts);
        if (!page.next) break;
        after = page.next;
      }
      return out;
    },
    [client, status, app],
    5_000,
  );
  return (
    <section>
      <h1>Hosts</h1>
      <div className="toolbar">
        <label>
          Status{' '}
          <select value={status} onChange={(e) => setStatus(e.target.value as typeof status)}>
            <option value="">any</option>
            <option value="online">online</option>
            <option value="offline">offline</option>
          </select>
        </label>
        <label>
          App{' '}
          <select value={app} onChange={(e) => setApp(e.target.value)}>
            <option value="">any</option>
            {(apps.data?.apps ?? []).map((a) => (
              <option key={a} value={a}>
                {a}
              </option>
            ))}
          </select>
        </label>
      </div>
      {hosts.error && <p className="error">{hosts.error}</p>}
      <div className="scroll">
        <table>
          <thead>
            <tr>
              <th>Host</th>
              <th>Status</th>
              <th>Last seen</th>
              <th>Device group</th>
              <th>Apps (revision)</th>
              <th>CPU</th>
              <th>Memory</th>
              <th>Disk</th>
            </tr>
          </thead>
          <tbody>
            {(hosts.data ?? []).map((h) => (
              <tr key={h.id} data-host={h.id}>
                <td className="mono">{h.id}</td>
                <td className={h.status === 'online' ? 'ok-text' : 'failed-text'}>{h.status === 'online' ? '● online' : '⊘ offline'}</td>
                <td>{new Date(h.last_seen).toLocaleString()}</td>
                <td data-testid="host-group">
                  {h.device_group ? <Link to={{ page: 'device-group', name: h.device_group }}>{h.device_group}</Link> : <span className="muted">none</span>}
                </td>
                <td>
                  {h.apps.map((a) => {
                    const run = h.running.find((r) => r.app === a);
                    return (
                      <span key={a} className="chip">
                        <Link to={{ page: 'app', name: a }}>{a}</Link> {run?.revision ? `r${run.revision}` : '–'}
                      </span>
                    );
                  })}
                </td>
                <td>{h.usage?.cpu.used_percent != null ? `${h.usage.cpu.used_percent.toFixed(0)}% of ${h.usage.cpu.cores}` : '–'}</td>
                <td>{h.usage ? percent(h.usage.memory.used_bytes, h.usage.memory.total_bytes) : '–'}</td>
                <td>{h.usage?.disk ? percent(h.usage.disk.used_bytes, h.usage.disk.total_bytes) : '–'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {hosts.data && hosts.data.length === 0 && <p className="muted">No host matches.</p>}
    </section>
  );
}

function percent(used: number, total: number): string {
  return total > 0 ? `${((100 * used) / total).toFixed(0)}% of ${(total / 2 ** 30).toFixed(1)} GiB` : '–';
}
