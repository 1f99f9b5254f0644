import type { Point } from '../lib/applied-over-time.ts';

/** Hosts applied over time, a step line in one SVG path (a handful of nodes whatever the host count). */
export function AppliedChart({ points, expected }: { points: readonly Point[]; expected: number }) {
  const W = 600;
  const H = 160;
  const pad = 28;
  const maxT = Math.max(1000, ...points.map((p) => p.t));
  const maxY = Math.max(1, expected, ...points.map((p) => p.applied));
  const x = (t: number) => pad + ((W - 2 * pad) * t) / maxT;
  const y = (n: number) => H - pad - ((H - 2 * pad) * n) / maxY;
  let d = '';
  points.forEach((p, i) => {
    const prev = points[i - 1];
    d += i === 0 ? `M${x(p.t)},${y(p.applied)}` : `H${x(p.t)}V${y(p.applied)}`;
    if (!prev && points.length === 1) d += `H${x(maxT)}`;
  });
  const last = points[points.length - 1];
  return (
    <figure className="chart">
      <svg
        viewBox={`0 0 ${W} ${H}`}
        role="img"
        aria-label={`Hosts applied over time: ${last?.applied ?? 0} of ${expected} after ${((last?.t ?? 0) / 1000).toFixed(1)} s`}
      >
        <line x1={pad} y1={H - pad} x2={W - pad} y2={H - pad} className="axis" />
        <line x1={pad} y1={pad} x2={pad} y2={H - pad} className="axis" />
        <line x1={pad} y1={y(expected)} x2={W - pad} y2={y(expected)} className="target" />
        <path d={d} className="line" />
        <text x={pad} y={pad - 8} className="label">
          {maxY} hosts
        </text>
        <text x={W - pad} y={H - 8} textAnchor="end" className="label">
          {(maxT / 1000).toFixed(1)} s
        </text>
      </svg>
      <figcaption>Hosts applied over time, since the rollout was created</figcaption>
    </figure>
  );
}
