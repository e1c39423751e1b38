// The System section of a run page: what monitoring recorded under `monitoring/<hash>/`
// (goodseed 0.4.0's names, ours beside), as a person reads it: titled charts with their
// units, the trainer beside the host, one line per GPU.
import { useEffect, useState } from 'preact/hooks';
import * as api from '../api';
import type { Series } from '../api';
import { Chart, type ChartLine, type XMode } from './Chart';
import { POINTS, subscribeLive } from './MetricChart';

/** One chart: a title, a unit, and which monitoring names it draws (a `_N` GPU suffix
 * is matched on its own). */
interface Panel {
  title: string;
  unit: string;
  names: { name: string; label: string }[];
}

export const PANELS: Panel[] = [
  { title: 'CPU, host', unit: '% of all cores', names: [{ name: 'cpu', label: 'host' }] },
  { title: 'CPU, trainer', unit: '% of one core', names: [{ name: 'process_cpu', label: 'trainer' }] },
  {
    title: 'Memory',
    unit: 'GB',
    names: [
      { name: 'memory', label: 'trainer' },
      { name: 'host_memory', label: 'host' },
    ],
  },
  { title: 'Memory, host', unit: '%', names: [{ name: 'host_memory_percent', label: 'host' }] },
  { title: 'GPU utilization', unit: '%', names: [{ name: 'gpu', label: 'GPU' }] },
  { title: 'GPU memory', unit: '%', names: [{ name: 'gpu_memory', label: 'GPU' }] },
  { title: 'GPU power', unit: 'W', names: [{ name: 'gpu_power', label: 'GPU' }] },
  { title: 'GPU temperature', unit: '°C', names: [{ name: 'gpu_temperature', label: 'GPU' }] },
];

const COLORS = ['#2f6fde', '#d9480f', '#2b8a3e', '#ae3ec9', '#e67700', '#0b7285', '#c2255c', '#5c940d'];

/** Whether a metric path is monitoring's (`monitoring/<hash>/<name>`). */
export function isMonitoring(path: string): boolean {
  return /^monitoring\/[^/]+\/[^/]+$/.test(path);
}

/** The paths a panel draws, with their line labels: `gpu` and `gpu_0`, `gpu_1`, … */
export function panelLines(panel: Panel, paths: string[]): { path: string; label: string }[] {
  const out: { path: string; label: string }[] = [];
  const monitoring = paths.filter(isMonitoring);
  const namespaces = new Set(monitoring.map((p) => p.split('/')[1]));
  // In the panel's order (the trainer before the host), then GPU by GPU.
  for (const { name, label } of panel.names) {
    const found: { path: string; label: string; gpu: number }[] = [];
    for (const p of monitoring) {
      const [, hash, leaf] = p.split('/');
      const m = leaf.match(new RegExp(`^${name}(?:_(\\d+))?$`));
      if (!m) continue;
      const gpu = m[1] !== undefined ? Number(m[1]) : -1;
      const where = namespaces.size > 1 ? ` (${hash})` : '';
      found.push({ path: p, label: `${label}${gpu >= 0 ? ` ${gpu}` : ''}${where}`, gpu });
    }
    found.sort((a, b) => a.gpu - b.gpu || a.label.localeCompare(b.label));
    out.push(...found.map(({ path, label }) => ({ path, label })));
  }
  return out;
}

export function SystemSection({ project, runId, paths, x }: { project: string; runId: string; paths: string[]; x: XMode }) {
  const panels = PANELS.map((panel) => ({ panel, lines: panelLines(panel, paths) })).filter((p) => p.lines.length);
  if (!panels.length) return null;
  return (
    <section class="group system" key="system">
      <h2>System</h2>
      <div class="charts">
        {panels.map(({ panel, lines }) => (
          <SystemChart key={panel.title} project={project} runId={runId} title={panel.title} unit={panel.unit} lines={lines} x={x} />
        ))}
      </div>
    </section>
  );
}

function SystemChart(props: { project: string; runId: string; title: string; unit: string; lines: { path: string; label: string }[]; x: XMode }) {
  const { project, runId, title, unit, lines, x } = props;
  const [data, setData] = useState<Map<string, Series> | null>(null);
  const [error, setError] = useState<string | null>(null);
  const key = lines.map((l) => l.path).join(',');
  useEffect(() => {
    const ctl = new AbortController();
    Promise.all(lines.map(async (l) => [l.path, await api.series(project, runId, l.path, POINTS, {}, ctl.signal)] as const))
      .then((entries) => setData(new Map(entries)))
      .catch((e) => !ctl.signal.aborted && setError(e instanceof Error ? e.message : String(e)));
    return () => ctl.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [project, runId, key]);
  // Live samples are appended.
  useEffect(() => {
    const offs = lines.map((l) =>
      subscribeLive(runId, l.path, (points) =>
        setData((prev) => {
          const s = prev?.get(l.path);
          if (!prev || !s) return prev;
          const last = s.steps.length ? s.steps[s.steps.length - 1] : -Infinity;
          const fresh = points.filter((p) => p.step > last);
          if (!fresh.length) return prev;
          const next = new Map(prev);
          next.set(l.path, {
            ...s,
            steps: [...s.steps, ...fresh.map((p) => p.step)],
            values: [...s.values, ...fresh.map((p) => p.value)],
            minY: [...s.minY, ...fresh.map((p) => p.value)],
            maxY: [...s.maxY, ...fresh.map((p) => p.value)],
            ts: s.ts ? [...s.ts, ...fresh.map((p) => p.ts)] : undefined,
            lastPointIndex: s.lastPointIndex + fresh.length,
            totalCount: s.totalCount + fresh.length,
          });
          return next;
        }),
      ),
    );
    return () => offs.forEach((o) => o());
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [runId, key]);
  if (error) return <figure class="chart chart-error" role="alert">{title}: {error}</figure>;
  if (!data) return <figure class="chart chart-loading" aria-busy="true"><figcaption>{title}</figcaption><div class="skeleton" /></figure>;
  // Samples are read against time when they carry it (a sampler's steps only count),
  // by step when they all share one second.
  const spread = [...data.values()].some((d) => d.ts && d.ts.length > 1 && d.ts[d.ts.length - 1] > d.ts[0]);
  const chartLines: ChartLine[] = lines
    .filter((l) => data.has(l.path))
    .map((l, i) => ({ key: l.path, label: l.label, color: COLORS[i % COLORS.length], data: data.get(l.path)! }));
  return (
    <Chart
      title={title}
      unit={unit}
      lines={chartLines}
      x={x === 'step' && spread ? 'rel' : x === 'step' ? 'step' : spread ? x : 'step'}
      logy={false}
      smooth={0}
      zoom={null}
      onZoom={() => undefined}
      onReset={() => undefined}
    />
  );
}
