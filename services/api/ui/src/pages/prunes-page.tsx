import { useQuery } from '../lib/use-query.ts';
import { Link } from '../router.tsx';
import { useSession } from '../session.tsx';

/** What each host of a group freed with image prunes (`prunes.list`), newest prune first, with the total. Every 10 s. */
export function PrunesPage({ group }: { group: string }) {
  const { client } = useSession();
  const prunes = useQuery((signal) => client.prunes.list.query({ device_group: group }, { signal }), [client, group], 10_000);
  const p = prunes.data;
  return (
    <section>
      <p className="crumbs">
        <Link to={{ page: 'device-groups' }}>Device groups</Link> / <Link to={{ page: 'device-group', name: group }}>{group}</Link> / prunes
      </p>
      <h1>Prunes of {group}</h1>
      {prunes.error && <p className="error">{prunes.error}</p>}
      {p && (
        <p data-testid="prune-total">
          Freed in total: <strong>{bytes(p.bytes_freed)}</strong> by {p.prunes.length} host report{p.prunes.length === 1 ? '' : 's'}
        </p>
      )}
      <div className="scroll">
        <table>
          <thead>
            <tr>
              <th>prune_id</th>
              <th>Host</th>
              <th>Freed</th>
              <th>Images removed</th>
              <th>Result</th>
              <th>Reported</th>
            </tr>
          </thead>
          <tbody>
            {(p?.prunes ?? []).map((r) => (
              <tr key={`${r.prune_id}/${r.host}`}>
                <td>{r.prune_id}</td>
                <td className="mono">{r.host}</td>
                <td>{bytes(r.bytes_freed)}</td>
                <td className="mono small">{r.images_removed.length === 0 ? '–' : r.images_removed.join(', ')}</td>
                <td className={r.error ? 'failed-text' : 'ok-text'}>{r.error ? `✕ failed: ${r.error}` : '✓ done'}</td>
                <td>{new Date(r.reported_at).toLocaleString()}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {p && p.prunes.length === 0 && <p className="muted">No host has reported a prune of this group yet.</p>}
    </section>
  );
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}
