import type { RolloutSummary } from '@nebula/client';

/** `applied / expected` with a small bar; failures in red (and said in words). */
export function RolloutBar({ r }: { r: RolloutSummary | null }) {
  if (!r) return <span className="muted">no rollout</span>;
  const total = Math.max(1, r.expected);
  const ok = (100 * r.applied) / total;
  const bad = (100 * r.failed) / total;
  return (
    <span className="rollout-bar">
      <span className="bar" role="img" aria-label={`${r.applied} of ${r.expected} applied, ${r.failed} failed`}>
        <span className="ok" style={{ width: `${ok}%` }} />
        <span className="bad" style={{ width: `${bad}%` }} />
      </span>
      <span>
        {r.applied} / {r.expected}
      </span>
      {r.failed > 0 && <span className="failed-text">✗ {r.failed} failed</span>}
    </span>
  );
}
