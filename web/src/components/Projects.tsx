// The first screen: every project in the data directory.
import * as api from '../api';
import { fmtTime } from '../format';
import { linkProps } from '../route';
import { Empty, ErrorBox, Loading, useAsync } from './common';

export function Projects() {
  const { data, error, loading, reload } = useAsync(api.projects, []);
  if (error) return <ErrorBox error={error} retry={reload} />;
  if (!data) return <Loading what="projects" />;
  return (
    <section class="page">
      <h1>Projects {loading && <span class="spinner" />}</h1>
      {data.length === 0 ? (
        <Empty>
          <p>No runs here yet.</p>
          <p>
            Log one with the SDK (<code>Run::builder().project("my/project").create()</code>) or try{' '}
            <code>goodseed demo</code>, then come back: this page lists every project of the data directory.
          </p>
        </Empty>
      ) : (
        <table class="table projects">
          <thead>
            <tr>
              <th>Project</th>
              <th class="num">Runs</th>
              <th>Last activity</th>
            </tr>
          </thead>
          <tbody>
            {data.map((p) => (
              <tr key={p.name}>
                <td>
                  <a {...linkProps({ project: p.name })}>{p.name}</a>
                </td>
                <td class="num">{p.run_count}</td>
                <td>{fmtTime(p.last_modified)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
