// Which hyperparameters matter: for a metric's summary (its best value, say), each config
// that varies among the runs the table shows, with its correlation and its importance in
// a random forest, both computed by the server (`GET /api/importance`).
import * as api from '../api';
import { patchRoute, type Route } from '../route';
import { ErrorBox, Loading, useAsync } from './common';

const AGGS: [string, string][] = [
  ['max', 'max'],
  ['min', 'min'],
  ['last', 'last'],
  ['mean', 'mean of last 10'],
];

/** `val/acc.max` → [`val/acc`, `max`]. */
function split(target: string): [string, string] {
  const at = target.lastIndexOf('.');
  return at > 0 ? [target.slice(0, at), target.slice(at + 1)] : [target, 'max'];
}

export function Importance({ route, project, metricPaths }: { route: Route; project: string; metricPaths: string[] }) {
  const target = route.importance ?? '';
  const [path, agg] = split(target);
  const result = useAsync(
    () =>
      path
        ? api.importance(project, target, { filters: route.where, status: route.status, tag: route.tag, trashed: route.trashed })
        : Promise.resolve(null),
    [project, target, route.where.join('\n'), route.status, route.tag, route.trashed],
  );
  const choose = (p: string, a: string) => patchRoute({ importance: `${p}.${a}` });
  return (
    <section class="importance" aria-label="Parameter importance">
      <header class="importance-head">
        <b>Which configs matter for</b>
        <select aria-label="Importance metric" value={path} onChange={(e) => choose((e.target as HTMLSelectElement).value, agg)}>
          {!metricPaths.includes(path) && <option value={path}>{path || 'choose a metric'}</option>}
          {metricPaths.map((m) => (
            <option value={m}>{m}</option>
          ))}
        </select>
        <select aria-label="Importance summary" value={agg} onChange={(e) => choose(path, (e.target as HTMLSelectElement).value)}>
          {AGGS.map(([a, word]) => (
            <option value={a}>{word}</option>
          ))}
        </select>
        <span class="spacer" />
        <button class="btn small" aria-label="Close importance" onClick={() => patchRoute({ importance: undefined })}>
          ×
        </button>
      </header>
      {result.error ? (
        <ErrorBox error={result.error} retry={result.reload} />
      ) : !result.data ? (
        path ? <Loading what="importance" /> : <p class="muted">Choose the metric to explain.</p>
      ) : result.data.params.length === 0 ? (
        <p class="muted">
          {result.data.runs < 4
            ? `Only ${result.data.runs} of the ${result.data.listed} runs shown have ${target}: too few to tell.`
            : `No config varies among the ${result.data.runs} runs with ${target}.`}
        </p>
      ) : (
        <>
          <p class="muted importance-note">
            From {result.data.runs.toLocaleString()} of the {result.data.listed.toLocaleString()} runs shown (those with {target}). Importance: each
            config's share of what a random forest predicting the metric learns from all configs at once; correlation: Spearman's
            (numbers) or η (text, no direction).
          </p>
          <table class="importance-table">
            <thead>
              <tr>
                <th>Config</th>
                <th>Importance</th>
                <th>Correlation</th>
                <th class="num">Values</th>
                <th class="num">Runs</th>
              </tr>
            </thead>
            <tbody>
              {result.data.params.map((p) => (
                <tr data-param={p.key}>
                  <td class="mono">{p.key}</td>
                  <td>
                    <span class="bar" style={{ width: `${Math.round(p.importance * 100)}%` }} />
                    <span class="bar-text">{(p.importance * 100).toFixed(0)}%</span>
                  </td>
                  <td data-correlation={p.correlation ?? ''}>
                    {p.correlation === null ? (
                      '—'
                    ) : (
                      <>
                        <span class={`bar ${p.correlation < 0 ? 'neg' : 'pos'}`} style={{ width: `${Math.round(Math.abs(p.correlation) * 100) / 2}%` }} />
                        <span class="bar-text">
                          {p.kind === 'category' ? 'η ' : ''}
                          {p.correlation.toFixed(2)}
                        </span>
                      </>
                    )}
                  </td>
                  <td class="num">{p.distinct}</td>
                  <td class="num">{p.runs}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}
