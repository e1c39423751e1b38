// What a run produced: its checkpoints (step, metrics, size, best badge, download,
// mark best, delete), its artifacts, and its file series (images with a step slider).
import { useMemo, useState } from 'preact/hooks';
import * as api from '../api';
import { fmtNum, fmtTime } from '../format';
import { Empty, ErrorBox, Loading, toast, useAsync } from './common';

/** Bytes as people read them. */
export function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

function Download({ project, runId, a }: { project: string; runId: string; a: api.Artifact }) {
  if (!a.stored) {
    return (
      <span class="muted" title={a.in_place ?? ''}>
        on the trainer's machine
      </span>
    );
  }
  return (
    <a class="btn small" href={api.artifactUrl(project, runId, a.id)} download>
      Download
    </a>
  );
}

/** `seen` moves when the run registers a checkpoint (a live event): loaded again. */
export function Checkpoints({ project, runId, seen }: { project: string; runId: string; seen: number }) {
  const all = useAsync(() => api.artifacts(project, runId), [project, runId, seen]);
  if (all.error) return <ErrorBox error={all.error} retry={all.reload} />;
  if (!all.data) return <Loading what="checkpoints" />;
  const cps = all.data.filter((a) => a.kind === 'checkpoint');
  if (cps.length === 0) {
    return (
      <Empty>
        No checkpoints. A trainer registers them with <code>run.log_checkpoint(path, step, metrics)</code>.
      </Empty>
    );
  }
  const metricNames = [...new Set(cps.flatMap((c) => Object.keys(c.metrics)))].sort();
  const act = async (what: Promise<unknown>, done: string) => {
    try {
      await what;
      toast(done);
      all.reload();
    } catch (e) {
      toast(String(e instanceof Error ? e.message : e), true);
    }
  };
  return (
    <table class="files-table checkpoints-table">
      <thead>
        <tr>
          <th>Step</th>
          <th>Name</th>
          {metricNames.map((m) => (
            <th class="num">{m}</th>
          ))}
          <th class="num">Size</th>
          <th>Saved</th>
          <th />
        </tr>
      </thead>
      <tbody>
        {cps.map((c) => (
          <tr class={c.best ? 'best' : ''} data-id={c.id}>
            <td class="num">{fmtNum(c.step)}</td>
            <td>
              {c.name} {c.best && <span class="badge best-badge">best</span>}
            </td>
            {metricNames.map((m) => (
              <td class="num">{m in c.metrics ? fmtNum(c.metrics[m]) : ''}</td>
            ))}
            <td class="num" title={`${c.size} bytes, SHA-256 ${c.sha256}`}>
              {fmtBytes(c.size)}
            </td>
            <td>{fmtTime(c.created_at)}</td>
            <td class="actions">
              <Download project={project} runId={runId} a={c} />
              {!c.best && (
                <button class="btn small" onClick={() => act(api.markBest(project, runId, c.id), `${c.name} marked best`)}>
                  Mark best
                </button>
              )}
              <button
                class="btn small danger"
                onClick={() => {
                  if (confirm(`Delete checkpoint ${c.name} at step ${fmtNum(c.step)}?`)) {
                    act(api.deleteArtifact(project, runId, c.id), `${c.name} deleted`);
                  }
                }}
              >
                Delete
              </button>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** One image series with a step slider. */
function MediaSeries({ project, runId, name, files }: { project: string; runId: string; name: string; files: api.Artifact[] }) {
  const sorted = useMemo(() => [...files].sort((a, b) => (a.step ?? 0) - (b.step ?? 0)), [files]);
  const [at, setAt] = useState(sorted.length - 1);
  const i = Math.min(at, sorted.length - 1);
  const f = sorted[i];
  const image = f.media_type.startsWith('image/');
  const audio = f.media_type.startsWith('audio/');
  return (
    <section class="media-series" data-series={name}>
      <h3>
        {name} <span class="muted">step {fmtNum(f.step)}</span>
      </h3>
      {sorted.length > 1 && (
        <input
          type="range"
          min={0}
          max={sorted.length - 1}
          value={i}
          aria-label={`${name}: step`}
          onInput={(e) => setAt(Number((e.target as HTMLInputElement).value))}
        />
      )}
      <div class="media-frame">
        {image && f.stored && (
          <img src={api.artifactUrl(project, runId, f.id)} alt={`${name} at step ${fmtNum(f.step)}`} width={f.width ?? undefined} height={f.height ?? undefined} />
        )}
        {audio && f.stored && <audio controls src={api.artifactUrl(project, runId, f.id)} />}
        {!image && !audio && <Download project={project} runId={runId} a={f} />}
      </div>
      <div class="muted">
        {f.media_type}
        {f.width !== null && f.height !== null ? `, ${f.width}×${f.height}` : ''}, {fmtBytes(f.size)}
      </div>
    </section>
  );
}

export function FilesTab({ project, runId }: { project: string; runId: string }) {
  const all = useAsync(() => api.artifacts(project, runId), [project, runId]);
  if (all.error) return <ErrorBox error={all.error} retry={all.reload} />;
  if (!all.data) return <Loading what="files" />;
  const artifacts = all.data.filter((a) => a.kind === 'artifact');
  const series = new Map<string, api.Artifact[]>();
  for (const f of all.data.filter((a) => a.kind === 'file')) {
    if (!series.has(f.name)) series.set(f.name, []);
    series.get(f.name)!.push(f);
  }
  if (artifacts.length === 0 && series.size === 0) {
    return (
      <Empty>
        No artifacts or files. A trainer registers them with <code>run.log_artifact(name, path)</code> and{' '}
        <code>run.log_file(series, step, path)</code>.
      </Empty>
    );
  }
  return (
    <div class="files">
      {series.size > 0 && (
        <div class="media-grid">
          {[...series.entries()].map(([name, files]) => (
            <MediaSeries project={project} runId={runId} name={name} files={files} />
          ))}
        </div>
      )}
      {artifacts.length > 0 && (
        <table class="files-table artifacts-table">
          <thead>
            <tr>
              <th>Name</th>
              <th>Type</th>
              <th class="num">Size</th>
              <th>Saved</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {artifacts.map((a) => (
              <tr data-id={a.id}>
                <td>{a.name}</td>
                <td>{a.media_type}</td>
                <td class="num" title={`${a.size} bytes, SHA-256 ${a.sha256}`}>
                  {fmtBytes(a.size)}
                </td>
                <td>{fmtTime(a.created_at)}</td>
                <td class="actions">
                  <Download project={project} runId={runId} a={a} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

/**
 * Compared runs' file series side by side: one panel per series, one step slider over
 * the steps any run has, each run's file at that step (or the last before it).
 */
export function CompareMedia({ project, runs }: { project: string; runs: { id: string; label: string; color: string }[] }) {
  const all = useAsync(
    () => Promise.all(runs.map((r) => api.artifacts(project, r.id).catch(() => [] as api.Artifact[]))),
    [project, runs.map((r) => r.id).join(',')],
  );
  if (!all.data) return null;
  const series = [...new Set(all.data.flatMap((files) => files.filter((f) => f.kind === 'file').map((f) => f.name)))].sort();
  if (series.length === 0) return null;
  return (
    <>
      <h2>Media</h2>
      {series.map((name) => (
        <ComparedSeries project={project} runs={runs} name={name} files={all.data!.map((fs) => fs.filter((f) => f.kind === 'file' && f.name === name))} />
      ))}
    </>
  );
}

function ComparedSeries({
  project,
  runs,
  name,
  files,
}: {
  project: string;
  runs: { id: string; label: string; color: string }[];
  name: string;
  files: api.Artifact[][];
}) {
  const steps = useMemo(() => [...new Set(files.flat().map((f) => f.step ?? 0))].sort((a, b) => a - b), [files]);
  const [at, setAt] = useState(steps.length - 1);
  const step = steps[Math.min(at, steps.length - 1)];
  return (
    <section class="media-compare" data-series={name}>
      <h3>
        {name} <span class="muted">step {fmtNum(step)}</span>
      </h3>
      {steps.length > 1 && (
        <input
          type="range"
          min={0}
          max={steps.length - 1}
          value={Math.min(at, steps.length - 1)}
          aria-label={`${name}: step`}
          onInput={(e) => setAt(Number((e.target as HTMLInputElement).value))}
        />
      )}
      <div class="media-grid">
        {runs.map((r, i) => {
          const before = files[i].filter((f) => (f.step ?? 0) <= step).sort((a, b) => (b.step ?? 0) - (a.step ?? 0));
          const f = before[0];
          return (
            <figure class="media-frame" data-run={r.id}>
              <figcaption>
                <i class="swatch" style={{ background: r.color }} /> {r.label}
                {f && f.step !== step && <span class="muted"> (step {fmtNum(f.step)})</span>}
              </figcaption>
              {!f && <span class="muted">nothing yet</span>}
              {f && f.media_type.startsWith('image/') && f.stored && (
                <img src={api.artifactUrl(project, r.id, f.id)} alt={`${r.label}: ${name} at step ${fmtNum(f.step)}`} />
              )}
              {f && f.media_type.startsWith('audio/') && f.stored && <audio controls src={api.artifactUrl(project, r.id, f.id)} />}
              {f && !f.media_type.startsWith('image/') && !f.media_type.startsWith('audio/') && <Download project={project} runId={r.id} a={f} />}
            </figure>
          );
        })}
      </div>
    </section>
  );
}
