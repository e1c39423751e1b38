// Several runs side by side: chosen metrics overlaid (one colour per run, the same in
// every chart), and a table of the config keys whose values differ.
import { useEffect, useMemo, useState } from 'preact/hooks';
import * as api from '../api';
import { colorFor } from '../format';
import { CompareMedia } from './Files';
import { useLive } from '../live';
import { linkProps, navigate, patchRoute, type Route } from '../route';
import { useKey } from '../keys';
import { ViewPicker } from './Views';
import { ChartOptions } from './ChartOptions';
import { Empty, ErrorBox, Loading } from './common';
import { valueText } from './ConfigTree';
import { LazyMetricChart, publishLive, type RunRef } from './MetricChart';

interface RunInfo {
  id: string;
  paths: string[];
  config: Record<string, api.ConfigScalar>;
  error?: string;
}

const SYSTEM = /^(sys|monitoring|source_code)\//;

/** A panel of the workspace: a metric and how many grid columns it spans (1 to 3),
 * written `path` or `path@2` in the URL's `metrics`. */
export interface Panel {
  path: string;
  span: number;
}
export function parsePanel(spec: string): Panel {
  const m = /^(.*)@([123])$/.exec(spec);
  return m ? { path: m[1], span: Number(m[2]) } : { path: spec, span: 1 };
}
const panelSpec = (p: Panel) => (p.span > 1 ? `${p.path}@${p.span}` : p.path);

export function Compare({ route }: { route: Route }) {
  const project = route.project!;
  const ids = route.sel;
  const [infos, setInfos] = useState<RunInfo[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [showSystem, setShowSystem] = useState(false);

  useEffect(() => {
    let alive = true;
    setInfos(null);
    Promise.all(
      ids.map(async (id): Promise<RunInfo> => {
        try {
          const [paths, config] = await Promise.all([api.metricPaths(project, id), api.configs(project, id)]);
          return { id, paths, config };
        } catch (e) {
          return { id, paths: [], config: {}, error: e instanceof Error ? e.message : String(e) };
        }
      }),
    ).then((r) => alive && setInfos(r), (e) => alive && setError(e));
    return () => {
      alive = false;
    };
  }, [project, ids.join(',')]);

  // Runs are labelled by their name (the id when they have none).
  const runs: RunRef[] = useMemo(
    () =>
      ids.map((id, i) => {
        const name = infos?.find((x) => x.id === id)?.config['sys/name'];
        return { id, label: typeof name === 'string' && name ? name : id, color: colorFor(i) };
      }),
    [ids.join(','), infos],
  );
  useLive(project, ids, false, { metrics: (run, path, points) => publishLive(run, path, points) });
  useKey('up', () => navigate({ project, sel: ids }));

  const allPaths = useMemo(() => [...new Set((infos ?? []).flatMap((i) => i.paths))].sort(), [infos]);
  // The panels: the URL's, in its order and sizes, else the first eight metrics.
  const panels: Panel[] = route.metrics.length
    ? route.metrics.map(parsePanel).filter((p) => allPaths.includes(p.path))
    : allPaths.slice(0, 8).map((path) => ({ path, span: 1 }));
  const chosen = panels.map((p) => p.path);
  const setPanels = (next: Panel[]) => patchRoute({ metrics: next.map(panelSpec) });
  const move = (i: number, by: number) => {
    const j = i + by;
    if (j < 0 || j >= panels.length) return;
    const next = [...panels];
    [next[i], next[j]] = [next[j], next[i]];
    setPanels(next);
  };
  const resize = (i: number) => setPanels(panels.map((p, k) => (k === i ? { ...p, span: (p.span % 3) + 1 } : p)));
  // Hover and zoom move together across the panels.
  const [zoom, setZoom] = useState<[number, number] | null>(null);
  const diff = useMemo(() => {
    if (!infos) return [];
    const keys = [...new Set(infos.flatMap((i) => Object.keys(i.config)))].sort();
    return keys.filter((k) => {
      if (!showSystem && SYSTEM.test(k)) return false;
      const vals = infos.map((i) => (k in i.config ? valueText(i.config[k]) : '\u0000absent'));
      return vals.some((v) => v !== vals[0]);
    });
  }, [infos, showSystem]);

  const head = (
    <header class="page-head">
      <h1>
        <a {...linkProps({ project, sel: ids })} class="crumb">{project}</a> / compare {ids.length} runs
      </h1>
      <div class="legend-runs">
        {runs.map((r) => (
          <a class="legend-item" {...linkProps({ project, run: r.id })}>
            <i style={{ background: r.color }} />
            {r.label}
          </a>
        ))}
      </div>
    </header>
  );
  if (ids.length === 0)
    return (
      <section class="page">
        {head}
        <Empty>Select runs in the runs table, then press Compare.</Empty>
      </section>
    );
  if (error) return <ErrorBox error={error} />;
  if (!infos) return <Loading what="runs" />;
  const toggle = (p: string) =>
    setPanels(chosen.includes(p) ? panels.filter((x) => x.path !== p) : [...panels, { path: p, span: 1 }]);
  return (
    <section class="page compare-page">
      {head}
      {infos.some((i) => i.error) && (
        <p class="note" role="alert">
          {infos.filter((i) => i.error).map((i) => `${i.id}: ${i.error}`).join('; ')}
        </p>
      )}
      <div class="toolbar">
        <div class="metric-picker" role="group" aria-label="Metrics to overlay">
          {allPaths.map((p) => (
            <label class="check chip">
              <input type="checkbox" checked={chosen.includes(p)} onChange={() => toggle(p)} />
              {p}
            </label>
          ))}
        </div>
        <ChartOptions route={route} />
        <ViewPicker project={project} />
      </div>
      {chosen.length === 0 ? (
        <Empty>{allPaths.length ? 'Choose metrics to overlay.' : 'These runs have no metrics.'}</Empty>
      ) : (
        <div class="charts workspace">
          {panels.map((p, i) => (
            <div class="panel" key={p.path} data-panel={p.path} data-span={p.span} style={{ gridColumn: `span ${p.span}` }}>
              <div class="panel-tools" role="group" aria-label={`Arrange ${p.path}`}>
                <button class="link" aria-label={`Move ${p.path} earlier`} disabled={i === 0} onClick={() => move(i, -1)}>
                  ◀
                </button>
                <button class="link" aria-label={`Move ${p.path} later`} disabled={i === panels.length - 1} onClick={() => move(i, 1)}>
                  ▶
                </button>
                <button class="link" aria-label={`Resize ${p.path}`} title="Width: one, two or three columns" onClick={() => resize(i)}>
                  {['', 'S', 'M', 'L'][p.span]}
                </button>
              </div>
              <LazyMetricChart
                project={project}
                runs={runs}
                path={p.path}
                x={route.x}
                logy={route.logy}
                smooth={route.smooth}
                sharedZoom={zoom}
                onSharedZoom={setZoom}
                syncKey={`compare:${project}`}
              />
            </div>
          ))}
        </div>
      )}
      <CompareMedia project={project} runs={runs} />
      <h2>
        Config differences <span class="muted">({diff.length} keys)</span>
        <label class="check small">
          <input type="checkbox" checked={showSystem} onChange={(e) => setShowSystem((e.target as HTMLInputElement).checked)} />
          include sys/, monitoring/, source_code/
        </label>
      </h2>
      {diff.length === 0 ? (
        <Empty>The configs of these runs do not differ{showSystem ? '' : ' (outside system keys)'}.</Empty>
      ) : (
        <div class="hscroll">
          <table class="table diff">
            <thead>
              <tr>
                <th>Key</th>
                {runs.map((r) => (
                  <th>
                    <i class="swatch" style={{ background: r.color }} /> {r.label}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {diff.map((k) => (
                <tr key={k}>
                  <td class="mono">{k}</td>
                  {infos.map((i) => (
                    <td class="mono">{k in i.config ? valueText(i.config[k]) : <span class="muted">—</span>}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
