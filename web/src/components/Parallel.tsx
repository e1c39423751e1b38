// Parallel coordinates over the runs shown: an axis per chosen config or metric summary,
// a line per run through its values, coloured by the last axis. Dragging along an axis
// brushes a range: the runs outside it fade, and on release the range becomes a
// condition of the table (`lr in [0.001, 0.01]`, in the URL, evaluated by the server),
// so the table, the other panels and the counts follow. A click on an axis without a
// drag removes its condition.
import { useMemo, useRef, useState } from 'preact/hooks';
import type { RunRow } from '../api';
import { fmtNum } from '../format';
import { linkProps, patchRoute, type Route } from '../route';
import { scale, type Axis } from './Scatter';

const W = 960;
const H = 340;
const PAD = { left: 40, right: 90, top: 28, bottom: 28 };
/** Lines drawn at most (the first ones of the table's order). */
const MAX_LINES = 3000;

/** The field a condition on this axis names (`config.lr`, `val/acc.max`). */
export function fieldOf(spec: string): string | null {
  if (spec.startsWith('c:')) return `config.${spec.slice(2)}`;
  if (spec.startsWith('m:')) return `${spec.slice(2)}.last`;
  if (spec.startsWith('s:')) {
    const [, agg, ...path] = spec.split(':');
    return `${path.join(':')}.${agg}`;
  }
  return null;
}

/** A value as a condition writes it: numbers as they are, text quoted. */
function literal(v: string | number): string {
  return typeof v === 'number' ? String(v) : `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** The colour of a run by where its value sits on the last axis (0..1). */
function ramp(t: number): string {
  const h = 220 - 190 * Math.min(Math.max(t, 0), 1);
  return `hsl(${h}, 70%, 48%)`;
}

export function Parallel({ route, project, rows, axes, defaults }: { route: Route; project: string; rows: RunRow[]; axes: Axis[]; defaults: string[] }) {
  const specs = route.pcols.length ? route.pcols : defaults;
  const chosen = specs.flatMap((s) => axes.filter((a) => a.spec === s));
  const [brush, setBrush] = useState<{ axis: number; y0: number; y1: number } | null>(null);
  const svg = useRef<SVGSVGElement>(null);
  const xAt = (i: number) => PAD.left + (chosen.length < 2 ? 0 : (i * (W - PAD.left - PAD.right)) / (chosen.length - 1));

  const model = useMemo(() => {
    const values = rows.map((r) => chosen.map((a) => a.get(r)));
    const complete = rows.flatMap((r, i) => (values[i].every((v) => v !== null && v !== '') ? [{ r, v: values[i] as (string | number)[] }] : []));
    const scales = chosen.map((_, k) => {
      const vs = complete.map((c) => c.v[k]);
      const nums = vs.filter((v): v is number => typeof v === 'number');
      // A positive axis over two decades or more (a learning rate) is drawn on a log scale.
      const log = nums.length === vs.length && nums.length > 0 && Math.min(...nums) > 0 && Math.max(...nums) / Math.min(...nums) >= 100;
      return scale(vs, log, [H - PAD.bottom, PAD.top]);
    });
    return { complete, scales };
  }, [rows, chosen.map((a) => a.spec).join('\n')]);

  const last = chosen.length - 1;
  const colorOf = (v: (string | number)[]) => {
    if (last < 0) return ramp(0.5);
    const y = model.scales[last].at(v[last]);
    return ramp((H - PAD.bottom - y) / (H - PAD.top - PAD.bottom));
  };

  const svgY = (e: PointerEvent) => {
    const el = svg.current!;
    const box = el.getBoundingClientRect();
    return ((e.clientY - box.top) / box.height) * H;
  };
  const inBrush = (v: (string | number)[]) => {
    if (!brush) return true;
    const y = model.scales[brush.axis].at(v[brush.axis]);
    return y >= Math.min(brush.y0, brush.y1) && y <= Math.max(brush.y0, brush.y1);
  };

  /** Turns a brushed range into the table's condition on that axis (replacing its last). */
  const commit = (axis: number, y0: number, y1: number) => {
    const field = fieldOf(chosen[axis].spec);
    if (!field) return;
    const kept = route.where.filter((w) => !w.startsWith(`${field} in [`) && !w.startsWith(`${field} = `));
    if (Math.abs(y1 - y0) < 3) {
      patchRoute({ where: kept });
      return;
    }
    const [lo, hi] = [Math.min(y0, y1), Math.max(y0, y1)];
    const inside = model.complete.map((c) => c.v[axis]).filter((v) => {
      const y = model.scales[axis].at(v);
      return y >= lo && y <= hi;
    });
    if (!inside.length) {
      patchRoute({ where: kept });
      return;
    }
    const sorted = [...new Set(inside)].sort((a, b) => (typeof a === 'number' && typeof b === 'number' ? a - b : String(a) < String(b) ? -1 : 1));
    const [a, b] = [sorted[0], sorted[sorted.length - 1]];
    const condition = a === b ? `${field} = ${literal(a)}` : `${field} in [${literal(a)}, ${literal(b)}]`;
    patchRoute({ where: [...kept, condition] });
  };

  const shown = model.complete.slice(0, MAX_LINES);
  const addable = axes.filter((a) => !specs.includes(a.spec));
  return (
    <section class="parallel" aria-label="Parallel coordinates">
      <header class="importance-head">
        <b>Parallel coordinates</b>
        {chosen.map((a) => (
          <span class="filter-chip">
            {a.label}
            <button class="chip-x" aria-label={`Remove axis ${a.label}`} onClick={() => patchRoute({ pcols: specs.filter((s) => s !== a.spec) })}>
              ×
            </button>
          </span>
        ))}
        <select
          aria-label="Add an axis"
          value=""
          onChange={(e) => {
            const v = (e.target as HTMLSelectElement).value;
            if (v) patchRoute({ pcols: [...specs, v] });
          }}
        >
          <option value="">add an axis…</option>
          {addable.map((a) => (
            <option value={a.spec}>{a.label}</option>
          ))}
        </select>
        <span class="spacer" />
        <span class="muted">
          {model.complete.length > MAX_LINES
            ? `the first ${MAX_LINES.toLocaleString()} of ${model.complete.length.toLocaleString()} runs`
            : `${model.complete.length.toLocaleString()} of ${rows.length.toLocaleString()} runs have every axis`}
          {' · drag along an axis to filter'}
        </span>
        <button class="btn small" aria-label="Close parallel coordinates" onClick={() => patchRoute({ parallel: false, pcols: [] })}>
          ×
        </button>
      </header>
      {chosen.length < 2 ? (
        <p class="muted">Choose two axes or more: configs, and a metric at a glance to colour the runs by.</p>
      ) : (
        <svg
          ref={svg}
          class="parallel-plot"
          viewBox={`0 0 ${W} ${H}`}
          role="img"
          aria-label={`Parallel coordinates of ${chosen.map((a) => a.label).join(', ')}`}
          data-lines={shown.length}
        >
          {shown.map(({ r, v }) => (
            <a {...linkProps({ project, run: r.run_id })} data-run={r.run_id}>
              <polyline
                class={inBrush(v) ? 'pline' : 'pline faded'}
                points={v.map((x, k) => `${xAt(k).toFixed(1)},${model.scales[k].at(x).toFixed(1)}`).join(' ')}
                style={{ stroke: colorOf(v) }}
              >
                <title>{`${r.experiment_name ?? r.run_id}\n${chosen.map((a, k) => `${a.label}: ${typeof v[k] === 'number' ? fmtNum(v[k] as number) : v[k]}`).join('\n')}`}</title>
              </polyline>
            </a>
          ))}
          {chosen.map((a, k) => (
            <g class="paxis" data-axis={a.spec}>
              <line x1={xAt(k)} x2={xAt(k)} y1={PAD.top} y2={H - PAD.bottom} class="axis" />
              <text x={xAt(k)} y={PAD.top - 12} text-anchor="middle" class="axis-label">
                {a.label}
                {model.scales[k].log ? ' (log)' : ''}
              </text>
              {model.scales[k].ticks.map((t) => (
                <text x={xAt(k) + 6} y={t.at + 4} class="tick">
                  {t.text}
                </text>
              ))}
              {brush?.axis === k && (
                <rect class="brush" x={xAt(k) - 9} width={18} y={Math.min(brush.y0, brush.y1)} height={Math.abs(brush.y1 - brush.y0)} />
              )}
              <rect
                class="brush-target"
                data-axis-index={k}
                x={xAt(k) - 12}
                width={24}
                y={PAD.top - 4}
                height={H - PAD.top - PAD.bottom + 8}
                onPointerDown={(e) => {
                  (e.target as Element).setPointerCapture(e.pointerId);
                  const y = svgY(e);
                  setBrush({ axis: k, y0: y, y1: y });
                }}
                onPointerMove={(e) => brush?.axis === k && e.buttons && setBrush({ ...brush, y1: svgY(e) })}
                onPointerUp={(e) => {
                  if (brush?.axis !== k) return;
                  const y1 = svgY(e);
                  setBrush(null);
                  commit(k, brush.y0, y1);
                }}
              />
            </g>
          ))}
        </svg>
      )}
    </section>
  );
}
