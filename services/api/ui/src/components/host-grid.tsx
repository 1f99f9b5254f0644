import type { RolloutHost } from '@nebula/contracts';
import { type KeyboardEvent, type MouseEvent, useEffect, useRef, useState } from 'react';
import { cellAt, type GridLayout, gridLayout, moveCell } from '../lib/grid-layout.ts';
import { lookOf } from '../lib/states.ts';

/**
 * The expected hosts of a rollout, one square each, on one canvas: redrawing 10,000 squares is a
 * few milliseconds, where 10,000 DOM nodes would be re-rendered on every update. Big enough cells
 * also carry the state's icon (the legend says each state in words). Arrow keys, Home and End move
 * the selection; the selected host is said below the grid (aria-live), clicking picks one too.
 *
 * The first paint with hosts sets the performance mark `nebula:grid-first-paint` (the benchmark reads it).
 */
export const FIRST_PAINT_MARK = 'nebula:grid-first-paint';

export function HostGrid({ hosts }: { hosts: readonly RolloutHost[] }) {
  const wrap = useRef<HTMLDivElement>(null);
  const canvas = useRef<HTMLCanvasElement>(null);
  const [width, setWidth] = useState(0);
  const [selected, setSelected] = useState<number | null>(null);
  const painted = useRef(false);
  const layout: GridLayout = gridLayout(hosts.length, width || 300);

  useEffect(() => {
    const el = wrap.current;
    if (!el) return;
    const ro = new ResizeObserver((entries) => setWidth(Math.floor(entries[0]?.contentRect.width ?? 0)));
    ro.observe(el);
    setWidth(Math.floor(el.clientWidth));
    return () => ro.disconnect();
  }, []);

  useEffect(() => {
    const c = canvas.current;
    if (!c || width === 0) return;
    const dpr = window.devicePixelRatio || 1;
    c.width = Math.max(1, Math.round(layout.width * dpr));
    c.height = Math.max(1, Math.round(layout.height * dpr));
    c.style.width = `${layout.width}px`;
    c.style.height = `${layout.height}px`;
    const g = c.getContext('2d');
    if (!g) return;
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, layout.width, layout.height);
    const withIcons = layout.cell >= 16;
    if (withIcons) {
      g.font = `${Math.floor(layout.cell * 0.6)}px system-ui, sans-serif`;
      g.textAlign = 'center';
      g.textBaseline = 'middle';
    }
    for (let i = 0; i < hosts.length; i++) {
      const h = hosts[i];
      if (!h) continue;
      const look = lookOf(h.state);
      const x = (i % layout.columns) * layout.pitch;
      const y = Math.floor(i / layout.columns) * layout.pitch;
      g.fillStyle = look.color;
      g.fillRect(x, y, layout.cell, layout.cell);
      if (withIcons) {
        g.fillStyle = h.state === 'pending' ? '#111' : '#fff';
        g.fillText(look.icon, x + layout.cell / 2, y + layout.cell / 2 + 1);
      }
    }
    if (selected !== null && selected < hosts.length) {
      g.strokeStyle = '#000';
      g.lineWidth = 2;
      g.strokeRect((selected % layout.columns) * layout.pitch + 1, Math.floor(selected / layout.columns) * layout.pitch + 1, layout.cell - 2, layout.cell - 2);
    }
    if (!painted.current && hosts.length > 0) {
      painted.current = true;
      performance.mark(FIRST_PAINT_MARK, { detail: { hosts: hosts.length } });
    }
    c.dataset.paintedHosts = String(hosts.length);
  }, [hosts, layout.width, layout.height, layout.columns, layout.pitch, layout.cell, width, selected]);

  const onClick = (e: MouseEvent<HTMLCanvasElement>) => {
    const r = e.currentTarget.getBoundingClientRect();
    setSelected(cellAt(layout, hosts.length, e.clientX - r.left, e.clientY - r.top));
  };
  const onKey = (e: KeyboardEvent<HTMLCanvasElement>) => {
    if (!['ArrowLeft', 'ArrowRight', 'ArrowUp', 'ArrowDown', 'Home', 'End'].includes(e.key) || hosts.length === 0) return;
    e.preventDefault();
    setSelected((s) => moveCell(layout, hosts.length, s ?? 0, s === null ? '' : e.key));
  };
  const h = selected !== null ? hosts[selected] : undefined;
  return (
    <div className="grid-wrap" ref={wrap}>
      <canvas
        ref={canvas}
        className="host-grid"
        tabIndex={0}
        role="img"
        aria-label={`Grid of ${hosts.length} hosts, one square each, colored by state. Arrow keys move between hosts.`}
        onClick={onClick}
        onKeyDown={onKey}
      />
      <p className="selected" aria-live="polite">
        {h ? (
          <>
            <strong>{h.host}</strong>: {lookOf(h.state).icon} {lookOf(h.state).label}
            {!h.online && h.state !== 'offline' ? ' (offline now)' : ''}
            {h.error ? ` (${h.error})` : ''}
            {h.reported_at ? `, reported ${new Date(h.reported_at).toLocaleTimeString()}` : ''}
          </>
        ) : (
          <span className="muted">Select a host (click, or focus the grid and use the arrow keys) to see its state.</span>
        )}
      </p>
    </div>
  );
}
