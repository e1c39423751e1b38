// A run's histogram series (weights, gradients, activations over training): per series,
// the distribution over steps as a heat map (each step a row, each row scaled to its own
// largest bucket) and the histogram of one step as bars, picked with a slider or by a
// click on the heat map.
import { useMemo, useState } from 'preact/hooks';
import * as api from '../api';
import { fmtNum } from '../format';
import { Empty, ErrorBox, Loading, useAsync } from './common';

/** Columns of the heat map: every histogram is spread over this many equal bins. */
const HEAT_BINS = 64;
const W = 560;
const HEAT_H = 140;
const BARS_H = 160;
const PAD = { left: 44, right: 8, top: 6, bottom: 22 };

/** A histogram's counts spread over `bins` equal bins of [lo, hi] (a bucket's count
 * shared among the bins it overlaps, by overlap). */
function rebin(h: api.HistogramPoint, lo: number, hi: number, bins: number): number[] {
  const out = new Array<number>(bins).fill(0);
  const width = (hi - lo) / bins || 1;
  for (let i = 0; i < h.counts.length; i++) {
    const a = h.edges[i];
    const b = h.edges[i + 1];
    const c = h.counts[i];
    if (c === 0) continue;
    if (b <= a) {
      const k = Math.min(bins - 1, Math.max(0, Math.floor((a - lo) / width)));
      out[k] += c;
      continue;
    }
    const first = Math.max(0, Math.floor((a - lo) / width));
    const last = Math.min(bins - 1, Math.floor((b - lo) / width));
    for (let k = first; k <= last; k++) {
      const x0 = Math.max(a, lo + k * width);
      const x1 = Math.min(b, lo + (k + 1) * width);
      if (x1 > x0) out[k] += (c * (x1 - x0)) / (b - a);
    }
  }
  return out;
}

/** Three to six round ticks over [lo, hi]. */
function ticks(lo: number, hi: number): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(Number(t.toPrecision(12)));
  return out;
}

function Series({ project, runId, path }: { project: string; runId: string; path: string }) {
  const data = useAsync(() => api.histograms(project, runId, path), [project, runId, path]);
  const [at, setAt] = useState<number | null>(null);
  const hs = data.data ?? [];
  const range = useMemo(() => {
    let lo = Infinity;
    let hi = -Infinity;
    for (const h of hs) {
      lo = Math.min(lo, h.edges[0]);
      hi = Math.max(hi, h.edges[h.edges.length - 1]);
    }
    return hi > lo ? { lo, hi } : { lo: lo - 0.5, hi: lo + 0.5 };
  }, [hs]);
  const heat = useMemo(() => hs.map((h) => rebin(h, range.lo, range.hi, HEAT_BINS)), [hs, range]);
  if (data.error) return <ErrorBox error={data.error} retry={data.reload} />;
  if (!data.data) return <Loading what={path} />;
  if (hs.length === 0) return <Empty>No histograms in {path}.</Empty>;
  const i = Math.min(at ?? hs.length - 1, hs.length - 1);
  const h = hs[i];
  const plotW = W - PAD.left - PAD.right;
  const x = (v: number) => PAD.left + ((v - range.lo) / (range.hi - range.lo)) * plotW;
  const rowH = (HEAT_H - PAD.top) / hs.length;
  const cellW = plotW / HEAT_BINS;
  const peak = Math.max(...h.counts, 0) || 1;
  const barsTop = PAD.top;
  const barsBottom = BARS_H - PAD.bottom;
  const xTicks = ticks(range.lo, range.hi);
  const total = h.counts.reduce((a, b) => a + b, 0);
  return (
    <section class="histogram-series" data-series={path}>
      <h3>
        {path}{' '}
        <span class="muted">
          step {fmtNum(h.step)} · {hs.length} histograms · {fmtNum(total)} counted
        </span>
      </h3>
      <svg
        class="histogram-heat"
        viewBox={`0 0 ${W} ${HEAT_H}`}
        role="img"
        aria-label={`${path}: distribution over ${hs.length} steps`}
        onClick={(e) => {
          const r = (e.currentTarget as SVGSVGElement).getBoundingClientRect();
          const y = ((e.clientY - r.top) / r.height) * HEAT_H - PAD.top;
          setAt(Math.max(0, Math.min(hs.length - 1, Math.floor(y / rowH))));
        }}
      >
        {heat.map((row, r) => {
          const top = Math.max(...row) || 1;
          return row.map((c, k) =>
            c > 0 ? (
              <rect x={PAD.left + k * cellW} y={PAD.top + r * rowH} width={cellW + 0.5} height={rowH + 0.5} fill="var(--live)" fill-opacity={0.08 + 0.92 * (c / top)} />
            ) : null,
          );
        })}
        <rect class="histogram-cursor" x={PAD.left} y={PAD.top + i * rowH} width={plotW} height={Math.max(rowH, 1.5)} fill="none" stroke="var(--text)" stroke-width="1" />
        <text x={PAD.left - 4} y={PAD.top + 10} text-anchor="end" class="axis-label">
          {fmtNum(hs[0].step)}
        </text>
        <text x={PAD.left - 4} y={HEAT_H - 2} text-anchor="end" class="axis-label">
          {fmtNum(hs[hs.length - 1].step)}
        </text>
      </svg>
      {hs.length > 1 && (
        <input type="range" min={0} max={hs.length - 1} value={i} aria-label={`${path}: step`} onInput={(e) => setAt(Number((e.target as HTMLInputElement).value))} />
      )}
      <svg class="histogram-bars" viewBox={`0 0 ${W} ${BARS_H}`} role="img" aria-label={`${path} at step ${fmtNum(h.step)}`}>
        {h.counts.map((c, k) => {
          const x0 = x(h.edges[k]);
          const x1 = Math.max(x(h.edges[k + 1]), x0 + 1);
          const y = barsBottom - (c / peak) * (barsBottom - barsTop);
          return c > 0 ? (
            <rect x={x0} y={y} width={x1 - x0} height={barsBottom - y} fill="var(--accent)">
              <title>
                [{fmtNum(h.edges[k])}, {fmtNum(h.edges[k + 1])}): {fmtNum(c)}
              </title>
            </rect>
          ) : null;
        })}
        <line x1={PAD.left} x2={W - PAD.right} y1={barsBottom} y2={barsBottom} stroke="var(--border)" />
        {xTicks.map((t) => (
          <text x={x(t)} y={BARS_H - 6} text-anchor="middle" class="axis-label">
            {fmtNum(t)}
          </text>
        ))}
        <text x={PAD.left - 4} y={barsTop + 10} text-anchor="end" class="axis-label">
          {fmtNum(peak)}
        </text>
      </svg>
    </section>
  );
}

/** The run's histogram series, one panel each. */
export function HistogramsTab({ project, runId, paths }: { project: string; runId: string; paths: string[] }) {
  if (paths.length === 0) {
    return <Empty>No histograms. Imports from Neptune and TensorBoard bring theirs.</Empty>;
  }
  return (
    <div class="histograms">
      {paths.map((p) => (
        <Series project={project} runId={runId} path={p} />
      ))}
    </div>
  );
}
