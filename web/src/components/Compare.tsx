// Several runs side by side: chosen metrics overlaid (one colour per run, the same in
// every chart), and a table of the config keys whose values differ.
import { useEffect, useMemo, useState } from 'preact/hooks';
import * as api from '../api';
import { colorFor } from '../format';
import { CompareMedia } from './Files';
import { useLive } from '../live';
import { linkProps, navigate, patchRoute, type Route } from '../route';
import { useKey } from '../keys';
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
  const chosen = route.metrics.length ? route.metrics.filter((m) => allPaths.includes(m)) : allPaths.slice(0, 8);
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
  const toggle = (p: string) => {
    const set = new Set(chosen);
    if (set.has(p)) set.delete(p);
    else set.add(p);
    patchRoute({ metrics: allPaths.filter((x) => set.has(x)) });
  };
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
      </div>
      {chosen.length === 0 ? (
        <Empty>{allPaths.length ? 'Choose metrics to overlay.' : 'These runs have no metrics.'}</Empty>
      ) : (
        <div class="charts">
          {chosen.map((p) => (
            <LazyMetricChart key={p} project={project} runs={runs} path={p} x={route.x} logy={route.logy} smooth={route.smooth} />
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
