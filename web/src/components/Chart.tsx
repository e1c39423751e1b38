// One chart: a metric of one or more runs, drawn with uPlot.
//
// - Downsampled series come with the min/max of each bucket: drawn as a band.
// - Drag selects an x range: the visible range is fetched again at full resolution
//   (`onZoom`); double-click goes back to the whole series (`onReset`).
// - EMA smoothing draws the smoothed line over a faint raw one; log-scale y; x by step,
//   wall time or time since the run's first point.
// - NaN and infinite values are not gaps: each is marked on the plot's edge (▼ at the top
//   for NaN and +∞, ▲ at the bottom for -∞) in the run's colour, and hover says "NaN".
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { Series } from '../api';
import { fmtDuration, fmtNum, fmtTicks } from '../format';
import { mark } from '../perf';
import { chartSvg, csv, download, fileName } from '../export';

export type XMode = 'step' | 'wall' | 'rel';

/** Tick spacings of a step axis: 1, 2 and 5 times a power of ten, never below one. */
const STEP_INCRS = Array.from({ length: 16 }, (_, e) => [1, 2, 5].map((m) => m * 10 ** e)).flat();

export interface ChartLine {
  key: string;
  label: string;
  color: string;
  data: Series;
}

export interface ChartProps {
  title: string;
  /** The unit of the values, shown on the y axis and after hovered values. */
  unit?: string;
  lines: ChartLine[];
  x: XMode;
  logy: boolean;
  smooth: number;
  /** The x range being shown when zoomed (in the x mode's units). */
  zoom: [number, number] | null;
  onZoom: (range: [number, number]) => void;
  onReset: () => void;
  height?: number;
  loading?: boolean;
  /** Charts with the same key move their hover together (a workspace). */
  syncKey?: string;
}

/** The x value of each point in the chosen mode. */
export function xsOf(s: Series, mode: XMode): number[] {
  if (mode === 'step' || !s.ts || s.ts.length !== s.steps.length) return s.steps;
  if (mode === 'wall') return s.ts;
  const t0 = s.ts[0] ?? 0;
  return s.ts.map((t) => t - t0);
}

/** Exponential moving average over finite values, debiased (as TensorBoard smooths). */
export function ema(values: number[], weight: number): number[] {
  if (weight <= 0) return values;
  let last = 0;
  let n = 0;
  return values.map((v) => {
    if (!Number.isFinite(v)) return v;
    last = last * weight + (1 - weight) * v;
    n += 1;
    return last / (1 - Math.pow(weight, n));
  });
}

function cssVar(name: string, fallback: string): string {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

function alpha(color: string, a: number): string {
  const m = /^#([0-9a-f]{6})$/i.exec(color);
  if (!m) return color;
  const n = parseInt(m[1], 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${a})`;
}

interface Built {
  data: uPlot.AlignedData;
  /** Per line: the joined raw values (NaN kept), for hover and markers. */
  raw: (number | null | undefined)[][];
  /** Per line: index in `data` of its main series. */
  main: number[];
  bands: uPlot.Band[];
  series: uPlot.Series[];
}

function build(lines: ChartLine[], mode: XMode, logy: boolean, smooth: number): Built {
  // One table per line: x, value, min, max, raw value, then joined on x.
  const tables: uPlot.AlignedData[] = lines.map((l) => {
    const xs = xsOf(l.data, mode);
    const order = xs.map((_, i) => i);
    // Wall and relative time are not always increasing with step; uPlot wants sorted x.
    if (mode !== 'step') order.sort((a, b) => xs[a] - xs[b]);
    const pick = (a: number[]) => order.map((i) => a[i]);
    const values = pick(l.data.values);
    return [pick(xs), values, pick(l.data.minY), pick(l.data.maxY), ema(values, smooth)] as uPlot.AlignedData;
  });
  const joined = tables.length === 1 ? tables[0] : uPlot.join(tables);
  const clean = (v: number | null | undefined) =>
    v === null || v === undefined || !Number.isFinite(v) || (logy && v <= 0) ? null : v;
  const data: (number | null | undefined)[][] = [joined[0] as number[]];
  const raw: (number | null | undefined)[][] = [];
  const main: number[] = [];
  const bands: uPlot.Band[] = [];
  const series: uPlot.Series[] = [{}];
  lines.forEach((l, i) => {
    const base = 1 + i * 4;
    const values = joined[base] as (number | null | undefined)[];
    const lo = joined[base + 1] as (number | null | undefined)[];
    const hi = joined[base + 2] as (number | null | undefined)[];
    const smoothed = joined[base + 3] as (number | null | undefined)[];
    raw.push(values);
    const banded = l.data.downsampled;
    if (banded) {
      const hiIdx = data.length;
      data.push(hi.map(clean));
      series.push({ stroke: 'transparent', points: { show: false }, spanGaps: true, width: 0 });
      data.push(lo.map(clean));
      series.push({ stroke: 'transparent', points: { show: false }, spanGaps: true, width: 0 });
      bands.push({ series: [hiIdx, hiIdx + 1], fill: alpha(l.color, 0.16) });
    }
    if (smooth > 0) {
      data.push(values.map(clean));
      series.push({ stroke: alpha(l.color, 0.28), width: 1, spanGaps: true, points: { show: false } });
    }
    main.push(data.length);
    data.push((smooth > 0 ? smoothed : values).map(clean));
    series.push({
      label: l.label,
      stroke: l.color,
      width: 1.6,
      spanGaps: true,
      points: { show: (l.data.values.length ?? 0) <= 60, size: 4, fill: l.color },
    });
  });
  return { data: data as uPlot.AlignedData, raw, main, bands, series };
}

/** Draws the NaN / infinity markers of every line on the plot's edges. */
function markerPlugin(getRaw: () => { raw: Built['raw']; lines: ChartLine[] }): uPlot.Plugin {
  return {
    hooks: {
      draw: (u: uPlot) => {
        const { raw, lines } = getRaw();
        const ctx = u.ctx;
        const xs = u.data[0];
        const { left, top, height, width } = u.bbox;
        const s = 5 * devicePixelRatio;
        ctx.save();
        raw.forEach((vals, li) => {
          ctx.fillStyle = lines[li]?.color ?? '#d33';
          for (let i = 0; i < vals.length; i++) {
            const v = vals[i];
            if (v === null || v === undefined || Number.isFinite(v)) continue;
            const x = u.valToPos(xs[i], 'x', true);
            if (x < left - 1 || x > left + width + 1) continue;
            ctx.beginPath();
            if (v === -Infinity) {
              const y = top + height;
              ctx.moveTo(x - s, y);
              ctx.lineTo(x + s, y);
              ctx.lineTo(x, y - 1.6 * s);
            } else {
              ctx.moveTo(x - s, top);
              ctx.lineTo(x + s, top);
              ctx.lineTo(x, top + 1.6 * s);
            }
            ctx.closePath();
            ctx.fill();
          }
        });
        ctx.restore();
      },
    },
  };
}

function fmtX(v: number, mode: XMode): string {
  // A downsampled bucket's step is the mean of its steps: shown as the step it is about.
  if (mode === 'step') return Number.isInteger(v) ? fmtNum(v) : `≈ ${fmtNum(Math.round(v))}`;
  if (mode === 'rel') return fmtDuration(v);
  return new Date(v * 1000).toLocaleString();
}

export function Chart(props: ChartProps) {
  const { title, x, logy, smooth, zoom, height = 220 } = props;
  // Lines hidden from the legend (one at least stays shown).
  const [hidden, setHidden] = useState<Set<string>>(new Set());
  const lines = useMemo(() => {
    const shown = props.lines.filter((l) => !hidden.has(l.key));
    return shown.length ? shown : props.lines;
  }, [props.lines, hidden]);
  const toggle = (key: string) =>
    setHidden((h) => {
      const next = new Set(h);
      if (next.has(key)) next.delete(key);
      else if (props.lines.some((l) => l.key !== key && !next.has(l.key))) next.add(key);
      return next;
    });
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const built = useRef<Built | null>(null);
  const cb = useRef(props);
  cb.current = props;
  const [hover, setHover] = useState<{ x: string; vals: string[] } | null>(null);
  const [theme, setTheme] = useState(() => document.documentElement.dataset.theme ?? '');

  useEffect(() => {
    // The theme (main.tsx sets it, following the system on auto) restyles the axes.
    const obs = new MutationObserver(() => setTheme(document.documentElement.dataset.theme ?? ''));
    obs.observe(document.documentElement, { attributes: true, attributeFilter: ['data-theme'] });
    return () => obs.disconnect();
  }, []);

  // The structure (series, scales, colours) decides when the plot is made anew; data
  // alone is set in place, so live points do not flicker.
  const structure = `${lines.map((l) => `${l.key}:${l.color}:${l.data.downsampled}`).join('|')}/${x}/${logy}/${smooth > 0}/${theme}/${props.syncKey ?? ''}`;

  useEffect(() => {
    const el = host.current;
    if (!el) return;
    const b = build(lines, x, logy, smooth);
    built.current = b;
    const axis = cssVar('--muted', '#777');
    const grid = cssVar('--grid', 'rgba(127,127,127,0.15)');
    const opts: uPlot.Options = {
      width: Math.max(el.clientWidth, 200),
      height,
      scales: {
        x: { time: x === 'wall' },
        y: logy ? { distr: 3 } : {},
      },
      series: b.series,
      bands: b.bands,
      legend: { show: false },
      axes: [
        {
          stroke: axis,
          grid: { stroke: grid },
          ticks: { stroke: grid },
          // Steps are whole: no tick between two.
          incrs: x === 'step' ? STEP_INCRS : undefined,
          values:
            x === 'rel'
              ? (_u, ticks) => ticks.map((t) => fmtDuration(t))
              : x === 'step'
                ? (_u, ticks) => fmtTicks(ticks)
                : undefined,
        },
        {
          stroke: axis,
          grid: { stroke: grid },
          ticks: { stroke: grid },
          size: 56,
          label: props.unit,
          labelSize: props.unit ? 18 : 0,
          values: (u, ticks) => {
            const labels = fmtTicks(ticks);
            // What the axis reads, for people reading the page's source and for tests.
            u.root.closest('figure')?.setAttribute('data-yticks', labels.join(' '));
            return labels;
          },
        },
      ],
      cursor: {
        drag: { x: true, y: false, setScale: false },
        sync: props.syncKey ? { key: props.syncKey } : undefined,
        bind: {
          dblclick: () => () => {
            cb.current.onReset();
            return null;
          },
        },
      },
      hooks: {
        setSelect: [
          (u) => {
            if (u.select.width < 3) return;
            const x0 = u.posToVal(u.select.left, 'x');
            const x1 = u.posToVal(u.select.left + u.select.width, 'x');
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            cb.current.onZoom([x0, x1]);
          },
        ],
        setCursor: [
          (u) => {
            const idx = u.cursor.idx;
            const bb = built.current;
            if (idx === null || idx === undefined || !bb) {
              setHover(null);
              return;
            }
            const xv = u.data[0][idx];
            setHover({
              x: fmtX(xv, cb.current.x),
              vals: bb.main.map((si, li) => {
                const rawV = bb.raw[li][idx];
                if (rawV === null || rawV === undefined) return '–';
                const shown = u.data[si][idx];
                if (!Number.isFinite(rawV)) return fmtNum(rawV);
                return fmtNum(shown ?? rawV);
              }),
            });
          },
        ],
      },
      plugins: [markerPlugin(() => ({ raw: built.current?.raw ?? [], lines: cb.current.lines }))],
    };
    const u = new uPlot(opts, b.data, el);
    plot.current = u;
    if (lines.length) mark('chart');
    if (zoom) u.setScale('x', { min: zoom[0], max: zoom[1] });
    const ro = new ResizeObserver(() => {
      const w = Math.max(el.clientWidth, 200);
      if (Math.abs(w - u.width) > 1) u.setSize({ width: w, height });
    });
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
      plot.current = null;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [structure, height]);

  // New data for the same structure: set in place, keeping the zoom.
  useEffect(() => {
    const u = plot.current;
    if (!u) return;
    const b = build(lines, x, logy, smooth);
    built.current = b;
    u.setData(b.data, !zoom);
    if (zoom) u.setScale('x', { min: zoom[0], max: zoom[1] });
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [lines, smooth, zoom]);

  /** Saves the chart as drawn (PNG), redrawn as vectors (SVG), or its data (CSV). */
  const save = (kind: 'png' | 'svg' | 'csv') => {
    const u = plot.current;
    const b = built.current;
    if (kind === 'csv') {
      const rows = lines.flatMap((l) =>
        l.data.steps.map((st, i) => [l.label, st, l.data.values[i], l.data.minY[i], l.data.maxY[i], l.data.ts?.[i] ?? '']),
      );
      download(fileName(title, 'csv'), new Blob([csv(['series', 'step', 'value', 'min', 'max', 'time'], rows)], { type: 'text/csv' }));
      return;
    }
    if (!u || !b) return;
    if (kind === 'png') {
      const src = u.ctx.canvas;
      const out = document.createElement('canvas');
      out.width = src.width;
      out.height = src.height;
      const ctx = out.getContext('2d')!;
      ctx.fillStyle = cssVar('--panel', '#fff');
      ctx.fillRect(0, 0, out.width, out.height);
      ctx.drawImage(src, 0, 0);
      out.toBlob((blob) => blob && download(fileName(title, 'png'), blob), 'image/png');
      return;
    }
    const dpr = devicePixelRatio || 1;
    const box = { left: u.bbox.left / dpr, top: u.bbox.top / dpr + 24, width: u.bbox.width / dpr, height: u.bbox.height / dpr };
    const xs = u.data[0];
    const [x0, x1] = [u.scales.x.min ?? xs[0], u.scales.x.max ?? xs[xs.length - 1]];
    const svgLines = lines.map((l, li) => {
      const col = u.data[b.main[li]];
      return {
        label: l.label,
        color: l.color,
        points: Array.from(xs as ArrayLike<number>, (xv, i): [number, number] | null => {
          const v = col[i];
          if (v === null || v === undefined || xv < x0 || xv > x1) return null;
          return [u.valToPos(xv, 'x'), u.valToPos(v, 'y')];
        }),
      };
    });
    const text = chartSvg({
      title,
      width: Math.round(u.width),
      plot: box,
      lines: svgLines,
      xRange: [fmtX(x0, x), fmtX(x1, x)],
      yRange: [fmtNum(u.scales.y.min), fmtNum(u.scales.y.max)],
      xLabel: x === 'step' ? 'step' : x === 'rel' ? 'time since start' : 'time',
    });
    download(fileName(title, 'svg'), new Blob([text], { type: 'image/svg+xml' }));
  };

  const total = lines.reduce((n, l) => n + l.data.totalCount, 0);
  // Raw points in the windows drawn (the whole series unless zoomed).
  const windowRows = lines.reduce((n, l) => n + Math.max(0, l.data.lastPointIndex - l.data.firstPointIndex + 1), 0);
  const shown = lines.reduce((n, l) => n + l.data.values.length, 0);
  const nonFinite = lines.some((l) => l.data.values.some((v) => !Number.isFinite(v)));
  return (
    <figure class="chart" data-path={title} data-unit={props.unit} data-points={shown} data-total={total} data-window={windowRows}>
      <figcaption>
        <span class="chart-title">{title}</span>
        {props.loading && <span class="spinner" aria-label="loading" />}
        {zoom && (
          <button class="link" onClick={() => props.onReset()} title="Show the whole series (double-click)">
            reset zoom
          </button>
        )}
        <span class="chart-info">
          {zoom
            ? `${shown.toLocaleString()} of ${windowRows.toLocaleString()} points in view`
            : lines.some((l) => l.data.downsampled)
              ? `${shown.toLocaleString()} of ${total.toLocaleString()} points`
              : `${total.toLocaleString()} points`}
        </span>
        <span class="chart-export" role="group" aria-label={`Export ${title}`}>
          <button class="link" onClick={() => save('png')} title="Save the chart as a PNG image">PNG</button>
          <button class="link" onClick={() => save('svg')} title="Save the chart as an SVG drawing">SVG</button>
          <button class="link" onClick={() => save('csv')} title="Save the chart's points as CSV">CSV</button>
        </span>
      </figcaption>
      <div class="chart-plot" ref={host} />
      <div class="chart-legend" aria-live="off">
        {hover && <span class="legend-x">{hover.x}</span>}
        {props.lines.map((l) => {
          const i = lines.indexOf(l);
          const off = i < 0;
          const label = props.lines.length > 1 || !hover ? l.label : '';
          const value = hover && !off && <b>{hover.vals[i]}{props.unit && hover.vals[i] !== '–' ? ` ${props.unit}` : ''}</b>;
          if (props.lines.length < 2) {
            return (
              <span class="legend-item" key={l.key}>
                <i style={{ background: l.color }} />
                {label}
                {value}
              </span>
            );
          }
          return (
            <button
              class={off ? 'legend-item legend-off' : 'legend-item'}
              key={l.key}
              aria-pressed={!off}
              title={off ? `Show ${l.label}` : `Hide ${l.label}`}
              onClick={() => toggle(l.key)}
            >
              <i style={{ background: l.color }} />
              {label}
              {value}
            </button>
          );
        })}
        {nonFinite && <span class="legend-nan">▼ NaN / ±∞</span>}
      </div>
    </figure>
  );
}
