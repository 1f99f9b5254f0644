import { useState } from 'react';
import { type Config, diffConfigs } from '../lib/revisions.ts';

/** Pick two revisions; the fields that differ, side by side (old, new). */
export function RevisionDiff({ configs }: { configs: ReadonlyMap<number, Config> }) {
  const revisions = [...configs.keys()].sort((a, b) => a - b);
  const [from, setFrom] = useState<number | null>(null);
  const [to, setTo] = useState<number | null>(null);
  if (revisions.length < 2) return null;
  const a = from ?? revisions[revisions.length - 2] ?? 1;
  const b = to ?? revisions[revisions.length - 1] ?? 1;
  const diff = diffConfigs(configs.get(a) ?? {}, configs.get(b) ?? {});
  const pick = (value: number, set: (n: number) => void, label: string) => (
    <label>
      {label}{' '}
      <select value={value} onChange={(e) => set(Number(e.target.value))}>
        {revisions.map((r) => (
          <option key={r} value={r}>
            {r}
          </option>
        ))}
      </select>
    </label>
  );
  return (
    <div className="panel">
      <h3>Compare revisions</h3>
      <div className="toolbar">
        {pick(a, setFrom, 'From revision')}
        {pick(b, setTo, 'to revision')}
      </div>
      {diff.length === 0 ? (
        <p className="muted">Same config.</p>
      ) : (
        <table className="diff">
          <thead>
            <tr>
              <th>Field</th>
              <th>Revision {a}</th>
              <th>Revision {b}</th>
            </tr>
          </thead>
          <tbody>
            {diff.map((d) => (
              <tr key={d.field}>
                <th scope="row" className="mono">
                  {d.field}
                </th>
                <td className="del">
                  <pre>{d.from ?? '(none)'}</pre>
                </td>
                <td className="add">
                  <pre>{d.to ?? '(none)'}</pre>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
