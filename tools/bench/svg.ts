/** Minimal SVG charts for bench/RESULTS.md: no dependencies, readable in any browser or viewer. */

const W = 640;
const H = 360;
const M = { top: 40, right: 20, bottom: 60, left: 70 };
const COLORS = ['#2b6cb0', '#c05621', '#2f855a', '#6b46c1', '#b83280', '#718096'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/** The opening of a chart: background, title, horizontal grid lines with their y values. */
function frame(title: string, ymax: number, y: (v: number) => number): string[] {
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${esc(title)}</text>`,
  ];
  for (let i = 0; i <= 5; i++) {
    const v = (ymax / 5) * i;
    out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${y(v)}" y2="${y(v)}" stroke="#e2e8f0"/>`);
    out.push(`<text x="${M.left - 6}" y="${y(v) + 4}" text-anchor="end">${+v.toPrecision(3)}</text>`);
  }
  return out;
}

/** Grouped bars: one group per category, one bar per series; `err` gives [min, max] whiskers. */
export function barChart(opts: {
  title: string;
  yLabel: string;
  categories: string[];
  series: Array<{ name: string; values: number[]; err?: Array<[number, number]> }>;
}): string {
  const plotW = W - M.left - M.right;
  const plotH = H - M.top - M.bottom;
  const all = opts.series.flatMap((s) => [...s.values, ...(s.err?.map((e) => e[1]) ?? [])]);
  const ymax = niceMax(Math.max(...all.filter(Number.isFinite), 0));
  const y = (v: number) => M.top + plotH - (v / ymax) * plotH;
  const groupW = plotW / Math.max(1, opts.categories.length);
  const barW = (groupW * 0.8) / Math.max(1, opts.series.length);
  const out = frame(opts.title, ymax, y);
  out.push(`<text transform="translate(16 ${M.top + plotH / 2}) rotate(-90)" text-anchor="middle">${esc(opts.yLabel)}</text>`);
  opts.categories.forEach((c, ci) => {
    const gx = M.left + ci * groupW + groupW * 0.1;
    out.push(`<text x="${M.left + ci * groupW + groupW / 2}" y="${M.top + plotH + 18}" text-anchor="middle">${esc(c)}</text>`);
    opts.series.forEach((s, si) => {
      const v = s.values[ci];
      if (v === undefined || !Number.isFinite(v)) return;
      const x = gx + si * barW;
      out.push(`<rect x="${x}" y="${y(v)}" width="${barW - 2}" height="${M.top + plotH - y(v)}" fill="${COLORS[si % COLORS.length]}"/>`);
      const e = s.err?.[ci];
      if (e) {
        const cx = x + (barW - 2) / 2;
        out.push(`<line x1="${cx}" x2="${cx}" y1="${y(e[0])}" y2="${y(e[1])}" stroke="black"/>`);
      }
    });
  });
  opts.series.forEach((s, si) => {
    const lx = M.left + si * 150;
    out.push(`<rect x="${lx}" y="${H - 22}" width="12" height="12" fill="${COLORS[si % COLORS.length]}"/>`);
    out.push(`<text x="${lx + 16}" y="${H - 12}">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}

/** Lines over a numeric x axis (log scale when `logX`). */
export function lineChart(opts: {
  title: string;
  xLabel: string;
  yLabel: string;
  logX?: boolean;
  series: Array<{ name: string; points: Array<[number, number]> }>;
}): string {
  const plotW = W - M.left - M.right;
  const plotH = H - M.top - M.bottom;
  const xs = opts.series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = opts.series.flatMap((s) => s.points.map((p) => p[1]));
  const fx = (v: number) => (opts.logX ? Math.log10(Math.max(v, 1)) : v);
  const xmin = Math.min(...xs.map(fx));
  const xmax = Math.max(...xs.map(fx));
  const ymax = niceMax(Math.max(...ys.filter(Number.isFinite), 0));
  const x = (v: number) => M.left + ((fx(v) - xmin) / Math.max(1e-9, xmax - xmin)) * plotW;
  const y = (v: number) => M.top + plotH - (v / ymax) * plotH;
  const out = frame(opts.title, ymax, y);
  for (const v of [...new Set(xs)].sort((a, b) => a - b)) {
    out.push(`<text x="${x(v)}" y="${M.top + plotH + 18}" text-anchor="middle">${v}</text>`);
  }
  out.push(`<text x="${M.left + plotW / 2}" y="${H - 30}" text-anchor="middle">${esc(opts.xLabel)}</text>`);
  out.push(`<text transform="translate(16 ${M.top + plotH / 2}) rotate(-90)" text-anchor="middle">${esc(opts.yLabel)}</text>`);
  opts.series.forEach((s, si) => {
    const c = COLORS[si % COLORS.length];
    const pts = s.points.filter((p) => Number.isFinite(p[1]));
    out.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${pts.map((p) => `${x(p[0])},${y(p[1])}`).join(' ')}"/>`);
    for (const p of pts) out.push(`<circle cx="${x(p[0])}" cy="${y(p[1])}" r="3" fill="${c}"/>`);
    out.push(`<rect x="${M.left + si * 170}" y="${H - 22}" width="12" height="12" fill="${c}"/>`);
    out.push(`<text x="${M.left + si * 170 + 16}" y="${H - 12}">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}
