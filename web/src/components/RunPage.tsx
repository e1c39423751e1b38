// One run: header (status, times, host, git), charts of every metric grouped by path
// prefix, the config tree, and the text series (logs). Follows the run live.
import { useEffect, useMemo, useState } from 'preact/hooks';
import * as api from '../api';
import { durationOf, fmtDuration, fmtTime } from '../format';
import { useLive } from '../live';
import { useKey } from '../keys';
import { linkProps, navigate, patchRoute, type Route } from '../route';
import { ChartOptions } from './ChartOptions';
import { ConfigTree } from './ConfigTree';
import { Empty, ErrorBox, Loading, StatusBadge, toast, useAsync } from './common';
import { Checkpoints, FilesTab } from './Files';
import { HistogramsTab } from './Histograms';
import { Logs } from './Logs';
import { LazyMetricChart, publishLive, type RunRef } from './MetricChart';
import { isMonitoring, SystemSection } from './System';

const TAB_NAMES = { charts: 'Charts', config: 'Config', logs: 'Logs', histograms: 'Histograms', checkpoints: 'Checkpoints', files: 'Artifacts' };

/** Groups paths by their first segment (`train/loss` → `train`), in order. */
export function groupPaths(paths: string[]): [string, string[]][] {
  const groups = new Map<string, string[]>();
  for (const p of paths) {
    const i = p.indexOf('/');
    const g = i > 0 ? p.slice(0, i) : '(top level)';
    if (!groups.has(g)) groups.set(g, []);
    groups.get(g)!.push(p);
  }
  return [...groups.entries()];
}

export function RunPage({ route }: { route: Route }) {
  const project = route.project!;
  const runId = route.run!;
  const summary = useAsync(() => api.summary(project, runId), [project, runId]);
  const paths = useAsync(() => api.metricPaths(project, runId), [project, runId]);
  // Histogram series (ours; imports bring them): the tab shows when the run has some.
  const histogramPaths = useAsync(() => api.histogramPaths(project, runId).catch(() => [] as string[]), [project, runId]);
  const hasHistograms = (histogramPaths.data ?? []).length > 0;
  const tab = route.tab ?? 'charts';
  const [collapsed, setCollapsed] = useState<Set<string>>(new Set());
  const cloning = route.clone;
  const setCloning = (open: boolean) => patchRoute({ clone: open });
  const requests = useAsync(() => api.requests(project).catch(() => null), [project]);
  // What people wrote about the run (its description and note) are configs.
  const about = useAsync(() => api.configs(project, runId).catch(() => ({}) as Record<string, api.ConfigScalar>), [project, runId]);
  const [editing, setEditing] = useState(false);
  // j / k: the next or previous run of the project, newest first as the table lists.
  const step = async (by: number) => {
    try {
      const { runs } = await api.runs(project, { trashed: false });
      const i = runs.findIndex((r) => r.run_id === runId);
      const next = runs[i < 0 ? 0 : i + by];
      if (next) navigate({ project, run: next.run_id, tab: route.tab });
    } catch (e) {
      toast(`Cannot list the project's runs: ${e instanceof Error ? e.message : e}`, true);
    }
  };
  useKey('next', () => void step(1));
  useKey('prev', () => void step(-1));
  useKey('up', () => navigate({ project }));
  // Moves with each checkpoint the run registers: the Checkpoints tab loads again.
  const [filesSeen, setFilesSeen] = useState(0);

  // The whole project is followed for its requests (the run's own events are filtered).
  const live = useLive(project, [runId], true, {
    metrics: (run, path, points) => {
      if (run !== runId) return;
      if (paths.data && !paths.data.includes(path)) paths.set([...paths.data, path].sort());
      publishLive(run, path, points);
    },
    status: (run, status, state, ended_by) => {
      if (run === runId && summary.data) {
        summary.set({ ...summary.data, status, state, ended_by });
        // Times and duration change too (a run resumed is no longer closed).
        summary.reload();
      }
    },
    request: (r) => {
      if (!requests.data) return;
      const rest = requests.data.filter((x) => x.id !== r.id);
      requests.set([...rest, r].sort((a, b) => a.id - b.id));
    },
    checkpoint: (run) => {
      if (run === runId) setFilesSeen((n) => n + 1);
    },
    // An edit (here or by anyone else) shows at once.
    run: (row) => {
      if (row.run_id !== runId) return;
      summary.reload();
      about.reload();
    },
    // Anything asked while the stream was down.
    open: () => requests.reload(),
  });

  const s = summary.data;
  const filter = (route.filter ?? '').toLowerCase();
  // Monitoring's series are drawn in the System section, not among the run's own.
  const shownPaths = useMemo(
    () => (paths.data ?? []).filter((p) => !isMonitoring(p) && (!filter || p.toLowerCase().includes(filter))),
    [paths.data, filter],
  );
  const runs: RunRef[] = useMemo(() => [{ id: runId, label: runId, color: '#2f6fde' }], [runId]);

  if (summary.error) {
    return (
      <section class="page">
        <h1>
          <a {...linkProps({ project })} class="crumb">{project}</a> / {runId}
        </h1>
        <ErrorBox error={summary.error} retry={summary.reload} />
      </section>
    );
  }
  if (!s) return <Loading what={`run ${runId}`} />;

  const stop = async () => {
    try {
      await api.stop(project, runId);
      toast('Stop requested: the trainer sees it through run.should_stop()');
    } catch (e) {
      toast(`Stop failed: ${e instanceof Error ? e.message : e}`, true);
    }
  };
  const ask = async (
    kind: Exclude<api.ControlRequest['kind'], 'trial'>,
    body: { config_patch?: Record<string, unknown>; checkpoint?: string; preset?: string } = {},
  ) => {
    try {
      const r = await api.askRequest(project, runId, { kind, ...body });
      if (requests.data && !requests.data.some((x) => x.id === r.id)) requests.set([...requests.data, r]);
      toast(`${kind[0].toUpperCase()}${kind.slice(1)} asked (request ${r.id}): an agent carries it out`);
      return true;
    } catch (e) {
      toast(`${kind} failed: ${e instanceof Error ? e.message : e}`, true);
      return false;
    }
  };
  const trash = async () => {
    try {
      await (s.trashed ? api.restore(project, runId) : api.trash(project, runId));
      toast(s.trashed ? 'Restored' : 'Moved to trash');
      summary.reload();
    } catch (e) {
      toast(`Failed: ${e instanceof Error ? e.message : e}`, true);
    }
  };

  return (
    <section class="page run-page">
      <header class="page-head run-head">
        <h1>
          <a {...linkProps({ project })} class="crumb">{project}</a> / <span class="mono">{runId}</span>
          <StatusBadge state={s.state} endedBy={s.ended_by} trashed={s.trashed} lastWrite={s.last_write_at} />
          <span class={`live-dot live-${live}`} title={`live updates: ${live}`} />
        </h1>
        {s.name && s.name !== runId && <p class="run-name">{s.name}</p>}
        {typeof about.data?.['sys/description'] === 'string' && about.data['sys/description'] && (
          <p class="run-description">{about.data['sys/description']}</p>
        )}
        {typeof about.data?.['sys/note'] === 'string' && about.data['sys/note'] && (
          <p class="run-note">
            <b>Note</b> {about.data['sys/note']}
          </p>
        )}
        {(s.state === 'failed' || s.state === 'crashed') && <Traceback project={project} runId={runId} />}
        <dl class="facts">
          <div>
            <dt>Created</dt>
            <dd>{fmtTime(s.created_at)}</dd>
          </div>
          <div>
            <dt>{s.closed_at ? 'Closed' : s.state === 'running' ? 'Running for' : 'Last heard'}</dt>
            <dd>
              {s.closed_at ? (
                fmtTime(s.closed_at)
              ) : s.state === 'running' ? (
                <RunningFor since={s.created_at} />
              ) : s.state === 'stale' && s.last_write_at ? (
                <span data-stale>{fmtTime(s.last_write_at)}</span>
              ) : (
                '—'
              )}
            </dd>
          </div>
          {s.closed_at && (
            <div>
              <dt>Duration</dt>
              <dd>{fmtDuration(s.duration_seconds)}</dd>
            </div>
          )}
          {s.host && (
            <div>
              <dt>Host</dt>
              <dd>{s.host}</dd>
            </div>
          )}
          {s.git && (
            <div>
              <dt>Git</dt>
              <dd class="mono" title={s.git.message ?? ''}>
                {(s.git.commit ?? '').slice(0, 10)}
                {s.git.branch ? ` (${s.git.branch})` : ''}
                {s.git.dirty && <span class="badge badge-failed">dirty</span>}
              </dd>
            </div>
          )}
          {s.tags.length > 0 && (
            <div>
              <dt>Tags</dt>
              <dd>
                {s.tags.map((t) => (
                  <span class="tag">{t}</span>
                ))}
              </dd>
            </div>
          )}
        </dl>
        <div class="toolbar">
          <nav class="tabs" role="tablist">
            {(['charts', 'config', 'logs', 'histograms', 'checkpoints', 'files'] as const).filter((t) => t !== 'histograms' || hasHistograms || tab === t).map((t) => (
              <button role="tab" aria-selected={tab === t} class={tab === t ? 'tab active' : 'tab'} onClick={() => patchRoute({ tab: t === 'charts' ? undefined : t })}>
                {TAB_NAMES[t]}
              </button>
            ))}
          </nav>
          <span class="spacer" />
          {s.state === 'running' && (
            <button class="btn" onClick={stop} title="Ask the trainer to stop (run.should_stop())">
              Stop run
            </button>
          )}
          {s.state !== 'running' && (
            <button class="btn" onClick={() => ask('resume')} title="Ask an agent (goodseed agent) to start the trainer on this run again">
              Resume
            </button>
          )}
          <button class="btn" aria-expanded={editing} onClick={() => setEditing(!editing)} title="Change the run's name, tags, description or note">
            Edit…
          </button>
          <button class="btn" aria-expanded={cloning} onClick={() => setCloning(!cloning)} title="Ask an agent to train a new run from this run's config, changed">
            Clone…
          </button>
          <button class="btn" onClick={trash}>
            {s.trashed ? 'Restore' : 'Trash'}
          </button>
        </div>
        {editing && (
          <EditForm
            name={s.name ?? ''}
            tags={s.tags}
            description={typeof about.data?.['sys/description'] === 'string' ? (about.data['sys/description'] as string) : ''}
            note={typeof about.data?.['sys/note'] === 'string' ? (about.data['sys/note'] as string) : ''}
            onCancel={() => setEditing(false)}
            onSave={async (edit) => {
              try {
                await api.editRun(project, runId, edit);
                toast('Saved');
                setEditing(false);
                summary.reload();
                about.reload();
              } catch (e) {
                toast(`Not saved: ${e instanceof Error ? e.message : e}`, true);
              }
            }}
          />
        )}
        {cloning && (
          <CloneForm
            project={project}
            onCancel={() => setCloning(false)}
            onAsk={async (patch, checkpoint, preset) => {
              if (await ask('clone', { config_patch: patch, checkpoint, preset })) setCloning(false);
            }}
          />
        )}
        {requests.data && <RunRequests project={project} runId={runId} requests={requests.data} />}
      </header>
      {tab === 'charts' && (
        <>
          <div class="toolbar">
            <input
              type="search"
              placeholder="Filter metrics…"
              aria-label="Filter metrics"
              value={route.filter ?? ''}
              onInput={(e) => patchRoute({ filter: (e.target as HTMLInputElement).value || undefined })}
            />
            <ChartOptions route={route} />
          </div>
          {paths.error ? (
            <ErrorBox error={paths.error} retry={paths.reload} />
          ) : !paths.data ? (
            <Loading what="metrics" />
          ) : paths.data.length === 0 ? (
            <Empty>This run has no metrics yet{s.state === 'running' ? ': they appear here as they are logged.' : '.'}</Empty>
          ) : shownPaths.length === 0 && (filter || !paths.data.some(isMonitoring)) ? (
            <Empty>No metric matches “{route.filter}”.</Empty>
          ) : (
            groupPaths(shownPaths).map(([group, ps]) => (
              <section class="group" key={group}>
                <h2>
                  <button
                    class="group-toggle"
                    aria-expanded={!collapsed.has(group)}
                    onClick={() => {
                      const next = new Set(collapsed);
                      if (next.has(group)) next.delete(group);
                      else next.add(group);
                      setCollapsed(next);
                    }}
                  >
                    {collapsed.has(group) ? '▸' : '▾'} {group} <span class="muted">({ps.length})</span>
                  </button>
                </h2>
                {!collapsed.has(group) && (
                  <div class="charts">
                    {ps.map((p) => (
                      <LazyMetricChart key={p} project={project} runs={runs} path={p} x={route.x} logy={route.logy} smooth={route.smooth} />
                    ))}
                  </div>
                )}
              </section>
            ))
          )}
          {paths.data && !filter && <SystemSection project={project} runId={runId} paths={paths.data} x={route.x} />}
        </>
      )}
      {tab === 'config' && <RunConfig project={project} runId={runId} />}
      {tab === 'logs' && <Logs project={project} runId={runId} live={s.state === 'running'} />}
      {tab === 'checkpoints' && <Checkpoints project={project} runId={runId} seen={filesSeen} />}
      {tab === 'files' && <FilesTab project={project} runId={runId} />}
      {tab === 'histograms' && <HistogramsTab project={project} runId={runId} paths={histogramPaths.data ?? []} />}
    </section>
  );
}

/** The clone's changes: a JSON object of config paths (`{"lr": 0.01}`), and a checkpoint. */
function CloneForm({
  project,
  onAsk,
  onCancel,
}: {
  project: string;
  onAsk: (patch: Record<string, unknown>, checkpoint?: string, preset?: string) => void;
  onCancel: () => void;
}) {
  const [text, setText] = useState('{\n  \n}');
  const [checkpoint, setCheckpoint] = useState('');
  const [preset, setPreset] = useState('');
  const saved = useAsync(() => api.savedConfigs(project).catch(() => []), [project]);
  const [error, setError] = useState<string | null>(null);
  const submit = (e: Event) => {
    e.preventDefault();
    let patch: unknown;
    try {
      patch = JSON.parse(text);
    } catch (err) {
      setError(`not JSON: ${err instanceof Error ? err.message : err}`);
      return;
    }
    if (!patch || typeof patch !== 'object' || Array.isArray(patch)) {
      setError('a JSON object is needed: config paths and their new values, e.g. {"lr": 0.01}');
      return;
    }
    setError(null);
    onAsk(patch as Record<string, unknown>, checkpoint.trim() || undefined, preset || undefined);
  };
  return (
    <form class="clone-form" onSubmit={submit}>
      <label>
        Config changes <span class="muted">(a JSON object of config paths, over this run's config)</span>
        <textarea class="mono" rows={4} spellcheck={false} aria-label="Config changes" value={text} onInput={(e) => setText((e.target as HTMLTextAreaElement).value)} />
      </label>
      {saved.data && saved.data.length > 0 && (
        <label>
          Start from a saved config <span class="muted">(under the changes; goodseed config save)</span>
          <select aria-label="Saved config" value={preset} onChange={(e) => setPreset((e.target as HTMLSelectElement).value)}>
            <option value="">(none: this run's config)</option>
            {saved.data.map((c) => (
              <option value={c.name} title={c.config}>
                {c.name}
              </option>
            ))}
          </select>
        </label>
      )}
      <label>
        Warm start from checkpoint <span class="muted">(optional)</span>
        <input type="text" aria-label="Checkpoint" value={checkpoint} onInput={(e) => setCheckpoint((e.target as HTMLInputElement).value)} />
      </label>
      {error && (
        <p class="form-error" role="alert">
          {error}
        </p>
      )}
      <div class="toolbar">
        <button class="btn primary" type="submit">
          Ask to clone
        </button>
        <button class="btn" type="button" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

/**
 * The run a request made or is making: its result once settled; while an agent trains a
 * clone, the run `goodseed agent` names it (`<source>-clone-<request>`, the source cut
 * to fit 128 characters), so it can be watched as it trains.
 */
function madeRun(r: api.ControlRequest): string | null {
  if (r.result_run) return r.result_run;
  if (r.kind !== 'clone' || r.state !== 'claimed') return null;
  const tail = `-clone-${r.id}`;
  return `${r.run_id.slice(0, 128 - tail.length).replace(/[-_]+$/, '')}${tail}`;
}

/** The requests about this run (asked on it, or that made it), newest first. */
function RunRequests({ project, runId, requests }: { project: string; runId: string; requests: api.ControlRequest[] }) {
  const mine = requests.filter((r) => r.run_id === runId || madeRun(r) === runId).reverse();
  if (mine.length === 0) return null;
  const waiting = mine.some((r) => r.state === 'pending');
  return (
    <section class="requests" aria-label="Requests">
      <h2>Requests</h2>
      <table class="requests-table">
        <tbody>
          {mine.map((r) => (
            <tr key={r.id} data-request={r.id} data-state={r.state}>
              <td class="mono">#{r.id}</td>
              <td>
                {r.kind}
                {r.config_patch && r.config_patch !== '{}' && <span class="mono muted"> {r.config_patch}</span>}
              </td>
              <td>
                <span class={`badge badge-request-${r.state}`}>{r.state}</span>
              </td>
              <td class="muted">
                {r.asked_by}, {fmtTime(r.asked_at)}
                {r.claimed_by && ` · ${r.claimed_by}`}
              </td>
              <td>
                {r.message && <span>{r.message} </span>}
                {madeRun(r) && madeRun(r) !== runId && (
                  <a class="mono" {...linkProps({ project, run: madeRun(r)! })}>
                    {madeRun(r)}
                  </a>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {waiting && (
        <p class="muted hint">
          Pending requests wait for an agent: <code>goodseed agent -p {project} -- &lt;your trainer command&gt;</code>
        </p>
      )}
    </section>
  );
}

function RunConfig({ project, runId }: { project: string; runId: string }) {
  const c = useAsync(() => api.configs(project, runId), [project, runId]);
  if (c.error) return <ErrorBox error={c.error} retry={c.reload} />;
  if (!c.data) return <Loading what="config" />;
  return <ConfigTree config={c.data} />;
}

/** A failed run's panic, as monitoring recorded it (`monitoring/<hash>/traceback`). */
function Traceback({ project, runId }: { project: string; runId: string }) {
  const tb = useAsync(async () => {
    const listing = await api.runs(project, { q: runId });
    const path = listing.runs.find((r) => r.run_id === runId)?.string_series_paths.find((p) => /^monitoring\/[^/]+\/traceback$/.test(p));
    if (!path) return null;
    const page = await api.texts(project, runId, { path, limit: 1, tail: true });
    return page.points[0]?.value ?? null;
  }, [project, runId]);
  if (!tb.data) return null;
  const first = tb.data.split('\n').slice(0, 2).join(' ');
  return (
    <details class="traceback" role="alert">
      <summary>
        <b>Traceback:</b> <span class="mono">{first}</span>
      </summary>
      <pre>{tb.data}</pre>
    </details>
  );
}

/** How long a live run has been running, ticking every second. */
function RunningFor({ since }: { since: string | null }) {
  const [, setNow] = useState(0);
  useEffect(() => {
    const t = setInterval(() => setNow((n) => n + 1), 1000);
    return () => clearInterval(t);
  }, []);
  return <span data-running-for>{fmtDuration(durationOf(since, null))}</span>;
}

/** The run's name, tags, description and note, changed in place; only what changed is
 * sent. */
function EditForm(props: {
  name: string;
  tags: string[];
  description: string;
  note: string;
  onCancel: () => void;
  onSave: (edit: api.RunEdit) => void;
}) {
  const [name, setName] = useState(props.name);
  const [tags, setTags] = useState(props.tags.join(', '));
  const [description, setDescription] = useState(props.description);
  const [note, setNote] = useState(props.note);
  const tagList = [...new Set(tags.split(',').map((t) => t.trim()).filter(Boolean))];
  const edit: api.RunEdit = {};
  if (name.trim() !== props.name) edit.name = name.trim();
  if ([...tagList].sort().join('\u0000') !== [...props.tags].sort().join('\u0000')) edit.tags = tagList;
  if (description !== props.description) edit.description = description;
  if (note !== props.note) edit.note = note;
  const problem = name.trim() === '' ? 'A run needs a name.' : null;
  return (
    <form
      class="edit-form"
      aria-label="Edit the run"
      onSubmit={(e) => {
        e.preventDefault();
        if (!problem && Object.keys(edit).length) props.onSave(edit);
      }}
    >
      <label>
        Name <input value={name} maxLength={200} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
      </label>
      <label>
        Tags <input value={tags} placeholder="comma, separated" onInput={(e) => setTags((e.target as HTMLInputElement).value)} />
      </label>
      <label>
        Description <textarea rows={2} value={description} onInput={(e) => setDescription((e.target as HTMLTextAreaElement).value)} />
      </label>
      <label>
        Note <textarea rows={3} value={note} placeholder="What this run taught" onInput={(e) => setNote((e.target as HTMLTextAreaElement).value)} />
      </label>
      {problem && <p class="filter-problem">{problem}</p>}
      <div class="toolbar">
        <button class="btn primary" type="submit" disabled={!!problem || Object.keys(edit).length === 0}>
          Save
        </button>
        <button class="btn" type="button" onClick={props.onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}
