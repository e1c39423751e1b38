// A scatter of the runs shown: any config or metric summary against another (each run a
// dot, a click opens it), for seeing how a parameter and a result go together beyond one
// number. Axes are columns of the runs table (`c:<key>`, `s:<agg>:<path>`, `m:<path>`),
// so the values come with the listing; text configs spread along their axis by value.
import { useMemo, useState } from 'preact/hooks';
import type { RunRow } from '../api';
import { fmtNum } from '../format';
import { linkProps, patchRoute, type Route } from '../route';

export type Axis = { spec: string; label: string; get: (r: RunRow) => string | number | null };

const W = 640;
const H = 360;
const PAD = { left: 64, right: 16, top: 12, bottom: 40 };

/** An axis: numbers on a linear or log scale, or text values in their sorted order. */
export function scale(values: (string | number)[], log: boolean, span: [number, number]) {
  const numeric = values.every((v) => typeof v === 'number');
  if (!numeric) {
    const names = [...new Set(values.map(String))].sort();
    const step = (span[1] - span[0]) / Math.max(names.length, 1);
    return {
      at: (v: string | number) => span[0] + step * (names.indexOf(String(v)) + 0.5),
      ticks: names.map((n) => ({ at: span[0] + step * (names.indexOf(n) + 0.5), text: n })),
      log: false,
      names,
    };
  }
  const nums = values as number[];
  const useLog = log && nums.every((v) => v > 0);
  const f = (v: number) => (useLog ? Math.log10(v) : v);
  let lo = Math.min(...nums.map(f));
  let hi = Math.max(...nums.map(f));
  if (lo === hi) [lo, hi] = [lo - 1, hi + 1];
  const pad = (hi - lo) * 0.05;
  [lo, hi] = [lo - pad, hi + pad];
  const at = (v: string | number) => span[0] + ((f(v as number) - lo) / (hi - lo)) * (span[1] - span[0]);
  // Round ticks: each decade on a log axis (every other one when there are many), a
  // step of 1, 2 or 5 times a power of ten on a linear one.
  const positions: number[] = [];
  if (useLog) {
    const every = Math.max(1, Math.ceil((Math.floor(hi) - Math.ceil(lo) + 1) / 8));
    for (let d = Math.ceil(lo); d <= hi; d += every) positions.push(d);
  } else {
    const rough = (hi - lo) / 5;
    const power = 10 ** Math.floor(Math.log10(rough));
    const step = [1, 2, 5, 10].map((m) => m * power).find((st) => st >= rough) ?? rough;
    for (let t = Math.ceil(lo / step) * step; t <= hi; t += step) positions.push(Number(t.toPrecision(12)));
  }
  const ticks = positions.map((t) => ({
    at: span[0] + ((t - lo) / (hi - lo)) * (span[1] - span[0]),
    text: fmtNum(useLog ? Number((10 ** t).toPrecision(3)) : t),
  }));
  return { at, ticks, log: useLog, names: null };
}

export function Scatter({
  route,
  project,
  rows,
  axes,
}: {
  route: Route;
  project: string;
  rows: RunRow[];
  axes: Axis[];
}) {
  const [logX, setLogX] = useState(false);
  const [logY, setLogY] = useState(false);
  const x = axes.find((a) => a.spec === route.sx);
  const y = axes.find((a) => a.spec === route.sy);
  const points = useMemo(() => {
    if (!x || !y) return [];
    return rows.flatMap((r) => {
      const [vx, vy] = [x.get(r), y.get(r)];
      return vx === null || vy === null || vx === '' || vy === '' ? [] : [{ r, vx, vy }];
    });
  }, [rows, x, y]);
  const sx = scale(points.map((p) => p.vx), logX, [PAD.left, W - PAD.right]);
  const sy = scale(points.map((p) => p.vy), logY, [H - PAD.bottom, PAD.top]);
  const selected = new Set(route.sel);
  const pick = (which: 'sx' | 'sy') => (e: Event) => patchRoute({ [which]: (e.target as HTMLSelectElement).value || undefined });
  return (
    <section class="scatter" aria-label="Scatter of the runs">
      <header class="importance-head">
        <b>Scatter</b>
        <select aria-label="Scatter x" value={route.sx ?? ''} onChange={pick('sx')}>
          <option value="">x: choose…</option>
          {axes.map((a) => (
            <option value={a.spec}>{a.label}</option>
          ))}
        </select>
        <label class="check">
          <input type="checkbox" checked={logX} onChange={(e) => setLogX((e.target as HTMLInputElement).checked)} /> log x
        </label>
        <select aria-label="Scatter y" value={route.sy ?? ''} onChange={pick('sy')}>
          <option value="">y: choose…</option>
          {axes.map((a) => (
            <option value={a.spec}>{a.label}</option>
          ))}
        </select>
        <label class="check">
          <input type="checkbox" checked={logY} onChange={(e) => setLogY((e.target as HTMLInputElement).checked)} /> log y
        </label>
        <span class="spacer" />
        <span class="muted">{x && y ? `${points.length.toLocaleString()} of ${rows.length.toLocaleString()} runs have both` : ''}</span>
        <button class="btn small" aria-label="Close scatter" onClick={() => patchRoute({ sx: undefined, sy: undefined, scatter: false })}>
          ×
        </button>
      </header>
      {x && y ? (
        <svg class="scatter-plot" viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`${y.label} against ${x.label}`} data-points={points.length}>
          <line x1={PAD.left} y1={H - PAD.bottom} x2={W - PAD.right} y2={H - PAD.bottom} class="axis" />
          <line x1={PAD.left} y1={PAD.top} x2={PAD.left} y2={H - PAD.bottom} class="axis" />
          {sx.ticks.map((t) => (
            <text x={t.at} y={H - PAD.bottom + 16} text-anchor="middle" class="tick">
              {t.text}
            </text>
          ))}
          {sy.ticks.map((t) => (
            <text x={PAD.left - 6} y={t.at + 4} text-anchor="end" class="tick">
              {t.text}
            </text>
          ))}
          <text x={(PAD.left + W - PAD.right) / 2} y={H - 4} text-anchor="middle" class="axis-label">
            {x.label}
            {sx.log ? ' (log)' : ''}
          </text>
          <text x={12} y={(PAD.top + H - PAD.bottom) / 2} transform={`rotate(-90 12 ${(PAD.top + H - PAD.bottom) / 2})`} text-anchor="middle" class="axis-label">
            {y.label}
            {sy.log ? ' (log)' : ''}
          </text>
          {points.map(({ r, vx, vy }, i) => {
            // Text values share a spot: spread them a little, the same way each time.
            const jitter = (n: number) => (typeof n === 'number' ? 0 : (((i * 2654435761) % 1000) / 1000 - 0.5) * 16);
            return (
              <a {...linkProps({ project, run: r.run_id })} data-run={r.run_id}>
                <circle
                  cx={sx.at(vx) + jitter(vx as number)}
                  cy={sy.at(vy) + jitter(vy as number)}
                  r={selected.has(r.run_id) ? 5 : 3.5}
                  class={selected.has(r.run_id) ? 'dot selected' : 'dot'}
                >
                  <title>{`${r.experiment_name ?? r.run_id}\n${x.label}: ${typeof vx === 'number' ? fmtNum(vx) : vx}\n${y.label}: ${typeof vy === 'number' ? fmtNum(vy) : vy}`}</title>
                </circle>
              </a>
            );
          })}
        </svg>
      ) : (
        <p class="muted">Choose what goes on each axis: any config, or a metric at a glance.</p>
      )}
    </section>
  );
}
