// A chart that fetches its own data: one metric path for one or more runs, the whole
// series downsampled, the zoomed range again at full resolution, and live points.
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import * as api from '../api';
import type { Series } from '../api';
import type { LivePoint } from '../live';
import { timings } from '../perf';
import { Chart, type ChartLine, type XMode, xsOf } from './Chart';

/** Points asked for a whole series: about one per pixel of a wide chart. */
export const POINTS = 1000;

export interface RunRef {
  id: string;
  label: string;
  color: string;
}

/** Live points by run and path, fanned out to the charts that show them. */
type Sink = (points: LivePoint[]) => void;
const sinks = new Map<string, Set<Sink>>();
export function publishLive(run: string, path: string, points: LivePoint[]): void {
  sinks.get(`${run}\n${path}`)?.forEach((s) => s(points));
}
/** Follows the live points of one run's path; returns how to stop. */
export function subscribeLive(run: string, path: string, sink: Sink): () => void {
  return subscribe(run, path, sink);
}
function subscribe(run: string, path: string, sink: Sink): () => void {
  const k = `${run}\n${path}`;
  let set = sinks.get(k);
  if (!set) sinks.set(k, (set = new Set()));
  set.add(sink);
  return () => {
    set!.delete(sink);
    if (!set!.size) sinks.delete(k);
  };
}


function nextPow2(n: number): number {
  let k = 1;
  while (k < n) k *= 2;
  return k;
}

/**
 * The index window, in the series, that covers x values [x0, x1] of the points shown:
 * the points just outside the range are included, and for a downsampled series each
 * point stands for a bucket of `k` raw points, so the window is widened by a bucket on
 * each side (bookends make positions off by at most one).
 */
export function indexWindow(s: Series, xs: number[], x0: number, x1: number, pointCount: number): api.Range {
  const n = xs.length;
  if (!n) return {};
  let a = 0;
  while (a < n - 1 && xs[a + 1] < x0) a++;
  let b = n - 1;
  while (b > 0 && xs[b - 1] > x1) b--;
  const first = s.firstPointIndex;
  const last = s.lastPointIndex;
  // Without the window (an older server's answer), the whole series: never NaN.
  if (!Number.isFinite(first) || !Number.isFinite(last)) return {};
  if (!s.downsampled) return { first: first + a, last: first + b };
  const k = nextPow2(Math.ceil((last - first + 1) / pointCount));
  return { first: Math.max(first, first + (a - 1) * k), last: Math.min(last, first + (b + 1) * k) };
}

async function fetchAll(
  project: string,
  runs: RunRef[],
  path: string,
  range: (run: string) => api.Range | null,
  signal: AbortSignal,
): Promise<Map<string, Series | string>> {
  const out = new Map<string, Series | string>();
  const windowed = runs.map((r) => range(r.id));
  if (runs.length > 1 && windowed.every((w) => w === null)) {
    const entries = await api.compare(
      runs.map((r) => ({ project, run_id: r.id })),
      path,
      POINTS,
      signal,
    );
    for (const e of entries) out.set(e.run_id, e.error ?? (e as Series));
    return out;
  }
  await Promise.all(
    runs.map(async (r, i) => {
      try {
        out.set(r.id, await api.series(project, r.id, path, POINTS, windowed[i] ?? {}, signal));
      } catch (e) {
        if (signal.aborted) throw e;
        out.set(r.id, e instanceof Error ? e.message : String(e));
      }
    }),
  );
  return out;
}

export interface MetricChartProps {
  project: string;
  runs: RunRef[];
  path: string;
  x: XMode;
  logy: boolean;
  smooth: number;
  /** A workspace's shared zoom: every chart shows this x range, and a zoom or reset in
   * one is asked of all (`onSharedZoom`); hover moves together across `syncKey`. */
  sharedZoom?: [number, number] | null;
  onSharedZoom?: (range: [number, number] | null) => void;
  syncKey?: string;
}

/**
 * A chart that fetches and draws once it comes near the screen: a run with hundreds of
 * metrics loads the charts in view first, not hundreds at once.
 */
export function LazyMetricChart(props: MetricChartProps) {
  const ref = useRef<HTMLDivElement>(null);
  const [near, setNear] = useState(false);
  useEffect(() => {
    const el = ref.current;
    if (!el || near) return;
    const io = new IntersectionObserver((entries) => entries.some((e) => e.isIntersecting) && setNear(true), {
      rootMargin: '400px 0px',
    });
    io.observe(el);
    return () => io.disconnect();
  }, [near]);
  if (near) return <MetricChart {...props} />;
  return (
    <div ref={ref} class="chart chart-loading" data-path={props.path}>
      <figcaption>{props.path}</figcaption>
      <div class="skeleton" />
    </div>
  );
}

export function MetricChart({ project, runs, path, x, logy, smooth, sharedZoom, onSharedZoom, syncKey }: MetricChartProps) {
  const [overview, setOverview] = useState<Map<string, Series | string> | null>(null);
  const [zoomed, setZoomed] = useState<Map<string, Series | string> | null>(null);
  const [zoom, setZoom] = useState<[number, number] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const live = useRef(0);
  /** The data on screen now. */
  const shown = useRef<Map<string, Series | string> | null>(null);
  const runKey = runs.map((r) => r.id).join(',');
  const [reload, setReload] = useState(0);

  useEffect(() => {
    const ctl = new AbortController();
    const t0 = performance.now();
    setLoading(true);
    fetchAll(project, runs, path, () => null, ctl.signal)
      .then((m) => {
        timings.push({ path, kind: 'overview', ms: performance.now() - t0, at: performance.now() });
        live.current = 0;
        setOverview(m);
        setError(null);
      })
      .catch((e) => {
        if (!ctl.signal.aborted) setError(e instanceof Error ? e.message : String(e));
      })
      .finally(() => {
        if (!ctl.signal.aborted) setLoading(false);
      });
    return () => ctl.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [project, runKey, path, reload]);

  // Zoom: fetch the visible window of every run at full resolution (or as fine as
  // POINTS allows). The x mode changes what a range means, so it resets the zoom.
  useEffect(() => {
    setZoom(null);
    setZoomed(null);
  }, [x, runKey, path]);
  useEffect(() => {
    if (!zoom || !overview) return;
    const ctl = new AbortController();
    const t0 = performance.now();
    setLoading(true);
    fetchAll(
      project,
      runs,
      path,
      (id) => {
        // Map the range through what is on screen: the finer the data shown, the
        // tighter the window.
        const s = shown.current?.get(id) ?? overview.get(id);
        return typeof s === 'object' && s ? indexWindow(s, xsOf(s, x), zoom[0], zoom[1], POINTS) : {};
      },
      ctl.signal,
    )
      .then((m) => {
        timings.push({ path, kind: 'zoom', ms: performance.now() - t0, at: performance.now() });
        setZoomed(m);
      })
      .catch((e) => {
        if (!ctl.signal.aborted) setError(e instanceof Error ? e.message : String(e));
      })
      .finally(() => {
        if (!ctl.signal.aborted) setLoading(false);
      });
    return () => ctl.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [zoom]);

  // Live points are appended to the whole-series view; once as many have come as a
  // chart holds, the series is fetched again (downsampled anew).
  useEffect(() => {
    const offs = runs.map((r) =>
      subscribe(r.id, path, (points) => {
        setOverview((prev) => {
          if (!prev) return prev;
          const s = prev.get(r.id);
          if (typeof s !== 'object' || !s) return prev;
          const lastStep = s.steps.length ? s.steps[s.steps.length - 1] : -Infinity;
          const fresh = points.filter((p) => p.step > lastStep);
          if (!fresh.length) return prev;
          live.current += fresh.length;
          if (s.downsampled && live.current > POINTS / 2) {
            setReload((n) => n + 1);
          }
          const next: Series = {
            ...s,
            steps: [...s.steps, ...fresh.map((p) => p.step)],
            values: [...s.values, ...fresh.map((p) => p.value)],
            minY: [...s.minY, ...fresh.map((p) => p.value)],
            maxY: [...s.maxY, ...fresh.map((p) => p.value)],
            ts: s.ts ? [...s.ts, ...fresh.map((p) => p.ts)] : undefined,
            lastPointIndex: s.lastPointIndex + fresh.length,
            totalCount: s.totalCount + fresh.length,
          };
          const m = new Map(prev);
          m.set(r.id, next);
          return m;
        });
      }),
    );
    return () => offs.forEach((o) => o());
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [runKey, path]);

  // A shared zoom is the workspace's: followed here, asked there.
  useEffect(() => {
    if (!onSharedZoom) return;
    if (sharedZoom) setZoom(sharedZoom);
    else {
      setZoom(null);
      setZoomed(null);
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [sharedZoom?.[0], sharedZoom?.[1]]);
  const shared = useRef(onSharedZoom);
  shared.current = onSharedZoom;
  const onZoom = useCallback((r: [number, number]) => (shared.current ? shared.current(r) : setZoom(r)), []);
  const onReset = useCallback(() => {
    if (shared.current) {
      shared.current(null);
      return;
    }
    setZoom(null);
    setZoomed(null);
  }, []);

  if (error && !overview) return <figure class="chart chart-error" role="alert">{path}: {error}</figure>;
  if (!overview) return <figure class="chart chart-loading" aria-busy="true"><figcaption>{path}</figcaption><div class="skeleton" /></figure>;
  const source = zoom && zoomed ? zoomed : overview;
  shown.current = source;
  const lines: ChartLine[] = [];
  const failed: string[] = [];
  for (const r of runs) {
    const s = source.get(r.id);
    // A run with no point of this metric is not drawn, nor in the legend.
    if (typeof s === 'object' && s && s.totalCount > 0) lines.push({ key: r.id, label: r.label, color: r.color, data: s });
    else if (typeof s === 'string') failed.push(`${r.label}: ${s}`);
  }
  if (lines.length === 0) {
    return (
      <figure class="chart chart-error" role="alert" data-path={path}>
        <figcaption>{path}</figcaption>
        <p>{failed.length ? `Could not load: ${failed.join('; ')}` : 'No data.'}</p>
      </figure>
    );
  }
  return (
    <div class="chart-wrap">
      <Chart
        title={path}
        lines={lines}
        x={x}
        logy={logy}
        smooth={smooth}
        zoom={zoom}
        onZoom={onZoom}
        onReset={onReset}
        loading={loading}
        syncKey={syncKey}
      />
      {failed.length > 0 && <p class="note">not drawn: {failed.join('; ')}</p>}
    </div>
  );
}
