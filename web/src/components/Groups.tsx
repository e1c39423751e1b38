// Runs grouped by config values: the table's group rows (each with its runs' count and
// the mean ± standard deviation of every number column, so "is the best config better
// than seed noise?" is read off the table) and the groups' curves of a metric, each the
// runs' mean (or median) with a band, aligned by step on the server (`/api/groups`).
import { useMemo, useState } from 'preact/hooks';
import * as api from '../api';
import type { ConfigScalar, RunRow } from '../api';
import { colorFor, fmtNum } from '../format';
import { patchRoute, type Route } from '../route';
import { Chart, type ChartLine } from './Chart';
import { ErrorBox, Loading, useAsync } from './common';

/** Groups shown as curves at most (the server draws the first 100). */
const MAX_LINES = 24;

export interface RowGroup {
  /** Stable across renders: the values' identity. */
  key: string;
  values: (ConfigScalar | undefined)[];
  rows: RunRow[];
}

/** What makes two values one group (a number is its value, as the server groups). */
function identity(v: ConfigScalar | undefined): string {
  if (v === undefined || v === null) return '∅';
  if (typeof v === 'number') return `n${v}`;
  if (typeof v === 'boolean') return `b${v}`;
  if (typeof v === 'string') return `s${v}`;
  return `a${JSON.stringify(v)}`;
}

function rank(v: ConfigScalar | undefined): [number, number, string] {
  if (typeof v === 'number' && !Number.isNaN(v)) return [0, v, ''];
  if (typeof v === 'boolean') return [1, v ? 1 : 0, ''];
  if (typeof v === 'string') return [2, 0, v];
  if (v === undefined || v === null) return [4, 0, ''];
  return [3, 0, JSON.stringify(v)];
}

/** The rows grouped by `by`'s values, groups in the order of their values (numbers,
 * booleans, text, then runs without the key), rows in the table's order. */
export function groupRows(rows: RunRow[], by: string[]): RowGroup[] {
  const map = new Map<string, RowGroup>();
  for (const r of rows) {
    const values = by.map((k) => r.config?.[k]);
    const key = values.map(identity).join('\u0000');
    let g = map.get(key);
    if (!g) map.set(key, (g = { key, values, rows: [] }));
    g.rows.push(r);
  }
  return [...map.values()].sort((a, b) => {
    for (let i = 0; i < by.length; i++) {
      const [x, y] = [rank(a.values[i]), rank(b.values[i])];
      const o = x[0] - y[0] || x[1] - y[1] || (x[2] < y[2] ? -1 : x[2] > y[2] ? 1 : 0);
      if (o) return o;
    }
    return 0;
  });
}

function valueLabel(v: ConfigScalar | undefined): string {
  if (v === undefined || v === null) return '(none)';
  if (typeof v === 'number') return fmtNum(v);
  if (Array.isArray(v)) return v.join(', ');
  return String(v);
}

/** `opt = adam · lr = 0.001` */
export function groupLabel(by: string[], values: (ConfigScalar | undefined)[]): string {
  return by.map((k, i) => `${k} = ${valueLabel(values[i])}`).join(' · ');
}

/** A column over a group's runs: the mean ± std of its numbers, the one text they share,
 * or how many different texts. */
export function aggregate(values: (string | number | null)[]): { text: string; title: string } {
  const nums = values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  if (nums.length > 0) {
    const mean = nums.reduce((a, b) => a + b, 0) / nums.length;
    if (nums.length === 1) return { text: fmtNum(mean), title: '1 run' };
    const sd = Math.sqrt(nums.reduce((a, b) => a + (b - mean) ** 2, 0) / nums.length);
    return {
      text: `${fmtNum(mean)} ± ${fmtNum(sd)}`,
      title: `mean ± standard deviation of ${nums.length} runs (min ${fmtNum(Math.min(...nums))}, max ${fmtNum(Math.max(...nums))})`,
    };
  }
  const texts = [...new Set(values.filter((v) => v !== null && v !== '').map(String))];
  if (texts.length === 1) return { text: texts[0], title: '' };
  return texts.length ? { text: `${texts.length} values`, title: texts.slice(0, 20).join(', ') } : { text: '', title: '' };
}

/** The group bar (keys grouped by, added from the project's config keys) and the groups'
 * curves of one metric. */
export function GroupPanel({
  route,
  project,
  configKeys,
  metricPaths,
  onClose,
}: {
  route: Route;
  project: string;
  configKeys: string[];
  metricPaths: string[];
  onClose: () => void;
}) {
  // The metrics drawn: the URL's (`gm=a,b`), else the first one.
  const metrics = route.gm ? route.gm.split(',').filter((m) => metricPaths.includes(m) || metricPaths.length === 0) : metricPaths.slice(0, 1);
  const metric = metrics[0];
  const band = route.gband ?? 'std';
  // Zoom shared by the group charts, as hover is.
  const [zoom, setZoom] = useState<[number, number] | null>(null);
  const setMetrics = (ms: string[]) => patchRoute({ gm: ms.length ? ms.join(',') : undefined });
  const addable = configKeys.filter((k) => !route.group.includes(k));
  return (
    <section class="groups" aria-label="Groups">
      <header class="importance-head">
        <b>Group by</b>
        {route.group.map((k) => (
          <span class="filter-chip">
            {k}
            <button class="chip-x" aria-label={`Stop grouping by ${k}`} onClick={() => patchRoute({ group: route.group.filter((g) => g !== k) })}>
              ×
            </button>
          </span>
        ))}
        {route.group.length < 4 && (
          <select
            aria-label="Add a group key"
            value=""
            onChange={(e) => {
              const k = (e.target as HTMLSelectElement).value;
              if (k) patchRoute({ group: [...route.group, k] });
            }}
          >
            <option value="">{route.group.length ? 'then by…' : 'a config…'}</option>
            {addable.map((k) => (
              <option value={k}>{k}</option>
            ))}
          </select>
        )}
        {route.group.length > 0 && (
          <>
            <select
              aria-label="Group curve metric"
              value={metric ?? ''}
              onChange={(e) => setMetrics([(e.target as HTMLSelectElement).value, ...metrics.slice(1)].filter(Boolean))}
            >
              {metricPaths.map((m) => (
                <option value={m}>{m}</option>
              ))}
            </select>
            {metrics.slice(1).map((m) => (
              <span class="filter-chip">
                {m}
                <button class="chip-x" aria-label={`Stop drawing ${m}`} onClick={() => setMetrics(metrics.filter((x) => x !== m))}>
                  ×
                </button>
              </span>
            ))}
            <select
              aria-label="Add a group curve"
              value=""
              onChange={(e) => {
                const m = (e.target as HTMLSelectElement).value;
                if (m) setMetrics([...metrics, m]);
              }}
            >
              <option value="">and…</option>
              {metricPaths
                .filter((m) => !metrics.includes(m))
                .map((m) => (
                  <option value={m}>{m}</option>
                ))}
            </select>
            <select
              aria-label="Group curve center"
              value={route.gstat ?? 'mean'}
              onChange={(e) => patchRoute({ gstat: (e.target as HTMLSelectElement).value === 'median' ? 'median' : undefined })}
            >
              <option value="mean">mean</option>
              <option value="median">median</option>
            </select>
            <select
              aria-label="Group curve band"
              value={band}
              onChange={(e) => {
                const v = (e.target as HTMLSelectElement).value;
                patchRoute({ gband: v === 'minmax' || v === 'iqr' || v === 'none' ? v : undefined });
              }}
            >
              <option value="std">± std</option>
              <option value="minmax">min–max</option>
              <option value="iqr">quartiles</option>
              <option value="none">no band</option>
            </select>
          </>
        )}
        <span class="spacer" />
        <button class="btn small" aria-label="Close groups" onClick={() => (patchRoute({ group: [], gm: undefined, gstat: undefined, gband: undefined }), onClose())}>
          ×
        </button>
      </header>
      {route.group.length === 0 ? (
        <p class="muted">Choose a config to group the runs by: each group gets a row in the table and a curve here.</p>
      ) : !metric ? (
        <p class="muted">These runs have no metric to draw.</p>
      ) : (
        <div class="charts group-charts">
          {metrics.map((m) => (
            <GroupChart key={m} route={route} project={project} metric={m} band={band} zoom={zoom} setZoom={setZoom} />
          ))}
        </div>
      )}
    </section>
  );
}

/** One metric's group curves, from `/api/groups`. */
function GroupChart({
  route,
  project,
  metric,
  band,
  zoom,
  setZoom,
}: {
  route: Route;
  project: string;
  metric: string;
  band: 'std' | 'minmax' | 'iqr' | 'none';
  zoom: [number, number] | null;
  setZoom: (z: [number, number] | null) => void;
}) {
  const answer = useAsync(
    () =>
      api.groups(project, route.group, {
        metric,
        stat: route.gstat ?? 'mean',
        band,
        pointCount: 300,
        filters: route.where,
        trashed: route.trashed,
      }),
    [project, route.group.join(','), metric, route.gstat, band, route.where.join('\n'), route.trashed],
  );
  const lines: ChartLine[] = useMemo(() => {
    const gs = answer.data?.groups ?? [];
    return gs.slice(0, MAX_LINES).flatMap((g, i) => {
      const c = g.curve;
      if (!c || c.steps.length === 0) return [];
      const label = `${groupLabel(route.group, g.values)} (${c.read < g.runs.length ? `a sample of ${c.read.toLocaleString()} of ` : ''}${g.runs.length.toLocaleString()})`;
      // Steps no run of the group reached (between two runs' spans) are left out.
      const at = c.center.flatMap((v, k) => (v === null ? [] : [k]));
      const nums = (xs: (number | null)[]) => at.map((k) => xs[k] ?? Number.NaN);
      return [
        {
          key: groupLabel(route.group, g.values),
          label,
          color: colorFor(i),
          data: {
            path: metric,
            steps: at.map((k) => c.steps[k]),
            values: nums(c.center),
            minY: nums(c.lo),
            maxY: nums(c.hi),
            downsampled: band !== 'none',
            firstPointIndex: 0,
            lastPointIndex: at.length - 1,
            totalCount: at.length,
          },
        },
      ];
    });
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [answer.data, band, metric]);
  if (answer.error) return <ErrorBox error={answer.error} retry={answer.reload} />;
  if (!answer.data) return <Loading what={`group curves of ${metric}`} />;
  const groupsCount = answer.data.groups.length;
  return (
    <div class="group-chart" data-metric={metric} data-lines={lines.length}>
      {groupsCount > MAX_LINES && <p class="muted">The first {MAX_LINES} of {groupsCount} groups are drawn.</p>}
      <Chart
        title={`${metric} — ${route.gstat ?? 'mean'} of each group${band === 'none' ? '' : band === 'std' ? ' ± std' : band === 'minmax' ? ', min–max' : ', quartiles'}`}
        lines={lines}
        x="step"
        logy={route.logy}
        smooth={0}
        zoom={zoom}
        onZoom={setZoom}
        onReset={() => setZoom(null)}
        syncKey={`groups:${project}`}
      />
    </div>
  );
}
