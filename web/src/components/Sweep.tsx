// One sweep: its trials (requests of kind trial) with their state, the parameters that
// differ between them, and each trial's best value of a chosen metric (the highest, or
// the lowest for a loss: exact, from the bands of the downsampled series), the best
// trial marked.
// Follows the project live: trials change state as agents claim and finish them, and
// the metric column is read again as runs change.
import { useMemo, useRef } from 'preact/hooks';
import * as api from '../api';
import { fmtNum } from '../format';
import { useLive } from '../live';
import { linkProps, patchRoute, type Route } from '../route';
import { Empty, ErrorBox, Loading, StatusBadge, useAsync } from './common';

/** The config of a trial, flattened to `a/b` paths. */
function flat(config: string | null): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const walk = (v: unknown, prefix: string) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) walk(x, prefix ? `${prefix}/${k}` : k);
    } else out[prefix] = v;
  };
  try {
    walk(config ? JSON.parse(config) : {}, '');
  } catch {
    // A config that is not JSON shows no parameters.
  }
  return out;
}

export function Sweep({ route }: { route: Route }) {
  const project = route.project!;
  const name = route.sweep!;
  const requests = useAsync(() => api.requests(project), [project]);
  const trials = useMemo(() => (requests.data ?? []).filter((r) => r.sweep === name), [requests.data, name]);
  const ids = trials.map((t) => t.run_id);
  const runs = useAsync(
    () => (ids.length ? api.runs(project, {}) : Promise.resolve({ runs: [], total: 0 })),
    [project, ids.join(',')],
  );
  const lower = route.goal === 'min';
  // Each trial's best point of the metric: the downsampled series keeps every bucket's
  // min and max, so its extremes are the series' own.
  // Kept with what it was read for: while another metric or goal is read, the values of
  // the last one are not shown under the new one.
  const bestsFor = `${route.metric ?? ''}|${lower}`;
  const bests = useAsync(async () => {
    const out = new Map<string, { step: number; value: number }>();
    if (!route.metric) return { key: bestsFor, out };
    const present = ids.filter((id) => (runs.data?.runs ?? []).some((r) => r.run_id === id));
    for (let i = 0; i < present.length; i += 32) {
      const chunk = present.slice(i, i + 32).map((run_id) => ({ project, run_id }));
      for (const e of await api.compare(chunk, route.metric, 1000)) {
        if (e.error || !e.steps) continue;
        const band = (lower ? e.minY : e.maxY) ?? e.values ?? [];
        band.forEach((v, j) => {
          if (!Number.isFinite(v)) return;
          const b = out.get(e.run_id);
          if (!b || (lower ? v < b.value : v > b.value)) out.set(e.run_id, { step: e.steps![j], value: v });
        });
      }
    }
    return { key: bestsFor, out };
  }, [project, ids.join(','), route.metric, lower, runs.data]);
  const bestOf = bests.data?.key === bestsFor ? bests.data.out : undefined;
  // The running trials are followed for their points; their bests are read again at
  // most every 2 s while points come.
  const running = (runs.data?.runs ?? []).filter((r) => ids.includes(r.run_id) && r.state === 'running').map((r) => r.run_id);
  const lastRead = useRef(0);
  useLive(project, running, true, {
    request: (r) => {
      if (!requests.data) return;
      requests.set([...requests.data.filter((x) => x.id !== r.id), r].sort((a, b) => a.id - b.id));
      runs.reload();
    },
    status: () => runs.reload(),
    run: () => runs.reload(),
    metrics: () => {
      if (Date.now() - lastRead.current < 2000) return;
      lastRead.current = Date.now();
      bests.reload();
    },
    open: () => {
      requests.reload();
      runs.reload();
    },
  });

  if (requests.error) return <ErrorBox error={requests.error} retry={requests.reload} />;
  if (!requests.data) return <Loading what={`sweep ${name}`} />;
  const byId = new Map((runs.data?.runs ?? []).map((r) => [r.run_id, r]));
  const configs = trials.map((t) => flat(t.config_patch));
  // Only the parameters that differ between trials are columns.
  const keys = [...new Set(configs.flatMap((c) => Object.keys(c)))]
    .filter((k) => new Set(configs.map((c) => JSON.stringify(c[k]))).size > 1)
    .sort();
  const metricChoices = [...new Set((runs.data?.runs ?? []).filter((r) => ids.includes(r.run_id)).flatMap((r) => r.metric_paths))]
    .filter((p) => !p.startsWith('monitoring/'))
    .sort();
  const metric = route.metric;
  const value = (id: string) => (metric ? bestOf?.get(id)?.value : undefined);
  let best: string | undefined;
  for (const t of trials) {
    const v = value(t.run_id);
    if (typeof v !== 'number' || !Number.isFinite(v)) continue;
    const b = best === undefined ? undefined : value(best);
    if (typeof b !== 'number' || (lower ? v < b : v > b)) best = t.run_id;
  }
  const counts = ['pending', 'claimed', 'done', 'failed'].map((s) => `${trials.filter((t) => t.state === s).length} ${s}`);

  return (
    <section class="page sweep-page">
      <header class="page-head">
        <h1>
          <a {...linkProps({ project })} class="crumb">
            {project}
          </a>{' '}
          / sweep <span class="mono">{name}</span>
        </h1>
        {trials.length > 0 && (
          <p class="muted" data-counts>
            {trials.length} trial(s): {counts.join(', ')}
          </p>
        )}
        <div class="toolbar">
          <label>
            Metric{' '}
            <select aria-label="Metric" value={metric ?? ''} onChange={(e) => patchRoute({ metric: (e.target as HTMLSelectElement).value || undefined })}>
              <option value="">(choose)</option>
              {metricChoices.map((p) => (
                <option value={p}>{p}</option>
              ))}
            </select>
          </label>
          <label>
            <input type="checkbox" checked={lower} onChange={(e) => patchRoute({ goal: (e.target as HTMLInputElement).checked ? 'min' : undefined })} /> lower is better
          </label>
        </div>
      </header>
      {trials.length === 0 ? (
        <Empty>There is no sweep “{name}” in this project.</Empty>
      ) : (
        <table class="table sweep-table">
          <thead>
            <tr>
              <th>Trial</th>
              <th>State</th>
              {keys.map((k) => (
                <th class="mono">{k}</th>
              ))}
              {metric && (
                <th class="num">
                  {lower ? 'lowest' : 'highest'} {metric}
                </th>
              )}
            </tr>
          </thead>
          <tbody>
            {trials.map((t, i) => {
              const row = byId.get(t.run_id);
              const v = value(t.run_id);
              return (
                <tr key={t.id} data-trial={t.run_id} data-state={t.state} class={t.run_id === best ? 'best' : undefined}>
                  <td>
                    {row ? (
                      <a class="mono" {...linkProps({ project, run: t.run_id })}>
                        {t.run_id}
                      </a>
                    ) : (
                      <span class="mono">{t.run_id}</span>
                    )}
                    {t.run_id === best && <span class="badge badge-best">best</span>}
                  </td>
                  <td>
                    {row ? <StatusBadge state={row.state} endedBy={row.ended_by} /> : <span class={`badge badge-request-${t.state}`}>{t.state}</span>}
                    {t.message && <span class="muted"> {t.message}</span>}
                  </td>
                  {keys.map((k) => (
                    <td class="mono">{typeof configs[i][k] === 'number' ? fmtNum(configs[i][k] as number) : String(configs[i][k] ?? '')}</td>
                  ))}
                  {metric && (
                    <td class="num" title={bestOf?.get(t.run_id) ? `at step ${bestOf.get(t.run_id)!.step}` : undefined}>
                      {typeof v === 'number' ? fmtNum(v) : '—'}
                    </td>
                  )}
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}
