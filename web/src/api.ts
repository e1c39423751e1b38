// Typed access to the goodseed HTTP API (see /api/openapi.json).

export type State = 'running' | 'finished' | 'failed' | 'crashed' | 'stale' | 'unknown';

export interface Project {
  name: string;
  run_count: number;
  last_modified: string | null;
}

export interface RunRow {
  project: string;
  run_id: string;
  experiment_name: string | null;
  created_at: string | null;
  closed_at: string | null;
  status: string | null;
  state: State;
  trashed: boolean;
  tags: string[];
  /** How the run ended: completed, failed, stopped, killed, crashed; null while it runs. */
  ended_by: string | null;
  /** When the run was last written, as far as the store can tell. */
  last_write_at?: string | null;
  metric_paths: string[];
  string_series_paths: string[];
  /** Added by the listing's `config=` parameters. */
  config?: Record<string, ConfigScalar>;
  /** Added by the listing's `metric=` parameters: last value of each. */
  last?: Record<string, number | null>;
  /** Added by the listing's `metric=` parameters: each metric at a glance. */
  summary?: Record<string, MetricSummary | null>;
}

/** A metric at a glance: min, max and mean (of the last ten) of its finite values. */
export interface MetricSummary {
  last: number;
  last_step: number;
  min: number | null;
  min_step: number | null;
  max: number | null;
  max_step: number | null;
  mean: number | null;
}

export type ConfigScalar = string | number | boolean | null | string[];

export interface LastPoint {
  step: number;
  value: number;
  logged_at: string;
}

export interface Summary {
  project: string;
  run_id: string;
  name: string | null;
  status: string | null;
  state: State;
  ended_by: string | null;
  created_at: string | null;
  closed_at: string | null;
  duration_seconds: number | null;
  trashed: boolean;
  tags: string[];
  host: string | null;
  git: { commit: string | null; dirty: boolean | null; branch: string | null; message: string | null } | null;
  last: Record<string, LastPoint>;
  hosts: string[];
  stop_requested: boolean;
  last_write_at?: string | null;
}

/** One metric as columns, the chart's shape (`.../series` and `/api/compare`). */
export interface Series {
  path: string;
  steps: number[];
  values: number[];
  minY: number[];
  maxY: number[];
  ts?: number[];
  downsampled: boolean;
  firstPointIndex: number;
  lastPointIndex: number;
  totalCount: number;
}

export interface CompareEntry extends Partial<Series> {
  project: string;
  run_id: string;
  error?: string;
}

/** Log levels the server filters text by (`level=`: this one or more severe). */
export type LogLevel = 'error' | 'warn' | 'info' | 'debug' | 'trace';

export interface TextPoint {
  path: string;
  step: number;
  value: string;
  logged_at: string;
}

/** An answer that was not 2xx, with the server's error message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The server writes non-finite floats as the strings "NaN", "Infinity", "-Infinity". */
export function num(x: unknown): number {
  if (typeof x === 'number') return x;
  if (x === 'NaN') return NaN;
  if (x === 'Infinity') return Infinity;
  if (x === '-Infinity') return -Infinity;
  if (x === null || x === undefined) return NaN;
  return Number(x);
}

function nums(xs: unknown): number[] {
  return Array.isArray(xs) ? xs.map(num) : [];
}

export async function getJson<T>(url: string, init?: RequestInit): Promise<T> {
  let res: Response;
  try {
    res = await fetch(url, init);
  } catch (e) {
    throw new ApiError(0, `cannot reach the goodseed server (${String(e)})`);
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    throw new ApiError(res.status, `bad answer from ${url}: ${text.slice(0, 200)}`);
  }
  if (res.status === 401) {
    throw new ApiError(401, 'this server needs its token: open the link `goodseed serve` printed (it ends in ?token=…)');
  }
  if (!res.ok) {
    const msg =
      body && typeof body === 'object' && 'error' in body
        ? String((body as { error: unknown }).error)
        : `HTTP ${res.status}`;
    throw new ApiError(res.status, msg);
  }
  return body as T;
}

const enc = encodeURIComponent;

/** `project/run_id` as a URL path, each segment encoded. */
export function runPath(project: string, runId: string): string {
  return `${project.split('/').map(enc).join('/')}/${enc(runId)}`;
}

export async function projects(): Promise<Project[]> {
  const r = await getJson<{ projects: Project[] }>('/api/projects');
  return r.projects;
}

export async function runs(
  project: string,
  opts: {
    trashed?: boolean;
    q?: string;
    config?: string[];
    metric?: string[];
    filters?: string[];
    limit?: number;
    offset?: number;
    /** The server's sort key (`name`, `config.lr`, `metric.val/acc.max`; `-` for descending). */
    sort?: string;
    status?: string;
    tag?: string;
  },
): Promise<{ runs: RunRow[]; total: number }> {
  const q = new URLSearchParams({ project });
  // Newest first is the server's own order: asked for, it would sort for nothing.
  if (opts.sort && opts.sort !== '-created_at') q.set('sort', opts.sort);
  if (opts.trashed !== undefined) q.set('trashed', String(opts.trashed));
  if (opts.q) q.set('q', opts.q);
  if (opts.status) q.set('status', opts.status);
  if (opts.tag) q.append('tag', opts.tag);
  if (opts.offset) q.set('offset', String(opts.offset));
  // Conditions on values (`lr > 0.001`), evaluated by the server; a bad one is a 400
  // whose message names it.
  for (const f of opts.filters ?? []) q.append('filter', f);
  if (opts.limit) q.set('limit', String(opts.limit));
  for (const c of opts.config ?? []) q.append('config', c);
  for (const m of opts.metric ?? []) q.append('metric', m);
  const r = await getJson<{ runs: RunRow[]; total: number }>(`/api/runs?${q}`);
  for (const run of r.runs) {
    if (run.last) for (const k of Object.keys(run.last)) run.last[k] = num(run.last[k]);
    if (run.summary) for (const s of Object.values(run.summary)) if (s) s.last = num(s.last);
  }
  return r;
}

/** One config's bearing on a metric (`GET /api/importance`). */
export interface ParamImportance {
  key: string;
  kind: 'number' | 'category';
  /** Spearman's (numbers, -1..1) or the correlation ratio (text, 0..1); null: cannot tell. */
  correlation: number | null;
  /** Share of the random forest's variance reduction, 0..1. */
  importance: number;
  distinct: number;
  runs: number;
}

export async function importance(
  project: string,
  metric: string,
  opts: { filters?: string[]; status?: string; tag?: string; trashed?: boolean },
): Promise<{ metric: string; runs: number; listed: number; params: ParamImportance[] }> {
  const q = new URLSearchParams({ project, metric });
  for (const f of opts.filters ?? []) q.append('filter', f);
  if (opts.status) q.set('status', opts.status);
  if (opts.tag) q.append('tag', opts.tag);
  if (opts.trashed !== undefined) q.set('trashed', String(opts.trashed));
  return getJson(`/api/importance?${q}`);
}

/** A group of runs sharing config values, with its curve of a metric (`GET /api/groups`). */
export interface RunGroup {
  /** The value of each grouped key; null where the runs lack it. */
  values: ConfigScalar[];
  runs: string[];
  /** With a metric: the center, the band's edges and how many runs each step stands for
   * (null: not drawn, beyond the first 100 groups). */
  curve?: {
    with_metric: number;
    /** Runs read for the curve: all, or an evenly spread sample of a large group. */
    read: number;
    steps: number[];
    center: (number | null)[];
    lo: (number | null)[];
    hi: (number | null)[];
    n: number[];
  } | null;
}

export async function groups(
  project: string,
  by: string[],
  opts: { metric?: string; stat?: string; band?: string; pointCount?: number; filters?: string[]; trashed?: boolean },
): Promise<{ runs: number; groups: RunGroup[] }> {
  const q = new URLSearchParams({ project });
  for (const k of by) q.append('by', k);
  if (opts.metric) q.set('metric', opts.metric);
  if (opts.stat) q.set('stat', opts.stat);
  if (opts.band) q.set('band', opts.band);
  if (opts.pointCount) q.set('pointCount', String(opts.pointCount));
  for (const f of opts.filters ?? []) q.append('filter', f);
  q.set('trashed', String(opts.trashed ?? false));
  return getJson(`/api/groups?${q}`);
}

export async function summary(project: string, runId: string): Promise<Summary> {
  const s = await getJson<Summary>(`/api/runs/${runPath(project, runId)}/summary`);
  for (const k of Object.keys(s.last ?? {})) s.last[k].value = num(s.last[k].value);
  return s;
}

export async function configs(project: string, runId: string): Promise<Record<string, ConfigScalar>> {
  const r = await getJson<{ configs: Record<string, ConfigScalar> }>(
    `/api/runs/${runPath(project, runId)}/configs`,
  );
  return r.configs;
}

export async function metricPaths(project: string, runId: string): Promise<string[]> {
  const r = await getJson<{ paths: string[] }>(`/api/runs/${runPath(project, runId)}/metric-paths`);
  return r.paths;
}

function fixSeries<T extends Partial<Series>>(s: T): T {
  s.steps = nums(s.steps);
  s.values = nums(s.values);
  s.minY = nums(s.minY);
  s.maxY = nums(s.maxY);
  if (s.ts) s.ts = nums(s.ts);
  return s;
}

export interface Range {
  first?: number;
  last?: number;
}

export async function series(
  project: string,
  runId: string,
  path: string,
  pointCount: number,
  range: Range = {},
  signal?: AbortSignal,
): Promise<Series> {
  const q = new URLSearchParams({ path, pointCount: String(pointCount) });
  if (range.first !== undefined) q.set('firstPointIndex', String(range.first));
  if (range.last !== undefined) q.set('lastPointIndex', String(range.last));
  const s = await getJson<Series>(`/api/runs/${runPath(project, runId)}/series?${q}`, { signal });
  return fixSeries(s);
}

export async function compare(
  runsToCompare: { project: string; run_id: string }[],
  path: string,
  pointCount: number,
  signal?: AbortSignal,
): Promise<CompareEntry[]> {
  const q = new URLSearchParams({ path, pointCount: String(pointCount) });
  for (const r of runsToCompare) q.append('run', `${r.project}/${r.run_id}`);
  const r = await getJson<{ runs: CompareEntry[] }>(`/api/compare?${q}`, { signal });
  return r.runs.map((e) => (e.error ? e : fixSeries(e)));
}

export async function texts(
  project: string,
  runId: string,
  opts: { path?: string; limit: number; offset?: number; tail?: boolean; q?: string; level?: LogLevel },
): Promise<{ points: TextPoint[]; total: number }> {
  // `tail=N` asks for the last N points; otherwise `limit` from `offset`. `q` and `level`
  // search the whole series on the server; `total` then counts the matches.
  const q = new URLSearchParams(
    opts.tail ? { tail: String(opts.limit) } : { limit: String(opts.limit), offset: String(opts.offset ?? 0) },
  );
  // One series is in step order; all of them interleaved by step, as they were logged.
  if (opts.path) q.set('path', opts.path);
  else q.set('order', 'step');
  if (opts.q) q.set('q', opts.q);
  if (opts.level) q.set('level', opts.level);
  const r = await getJson<{ string_series: TextPoint[]; total: number }>(
    `/api/runs/${runPath(project, runId)}/string_series?${q}`,
  );
  return { points: r.string_series, total: r.total };
}

async function post(url: string): Promise<void> {
  await getJson<unknown>(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
}

export const trash = (p: string, r: string) => post(`/api/runs/${runPath(p, r)}/trash`);
export const restore = (p: string, r: string) => post(`/api/runs/${runPath(p, r)}/trash/restore`);
export const stop = (p: string, r: string) => post(`/api/runs/${runPath(p, r)}/stop`);

/** A named view of a project (`/api/views`): its layout is JSON text. */
export interface View {
  name: string;
  layout: string;
  saved_by: string;
  saved_at: string;
}
export const views = async (project: string) =>
  (await getJson<{ views: View[] }>(`/api/views?${new URLSearchParams({ project })}`)).views;
export const saveView = (project: string, name: string, layout: { query: string }) =>
  getJson<View>(`/api/views?${new URLSearchParams({ project, name })}`, {
    method: 'PUT',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(layout),
  });

/** What people change about a run (`POST .../edit`): fields left out stay as they are. */
export interface RunEdit {
  name?: string;
  description?: string;
  tags?: string[];
  note?: string;
}
export const editRun = (p: string, r: string, edit: RunEdit) =>
  getJson<unknown>(`/api/runs/${runPath(p, r)}/edit`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(edit),
  });

/** A request of interactive control, as `GET /api/requests` lists it. */
export interface ControlRequest {
  id: number;
  project: string;
  run_id: string;
  kind: 'stop' | 'resume' | 'clone' | 'delete' | 'trial';
  state: 'pending' | 'claimed' | 'done' | 'failed';
  config_patch: string | null;
  checkpoint: string | null;
  asked_by: string;
  asked_at: string;
  claimed_by: string | null;
  claimed_at: string | null;
  settled_at: string | null;
  message: string | null;
  result_run: string | null;
  /** The sweep a trial belongs to. */
  sweep: string | null;
}

/** Asks for a request (an agent, `goodseed agent`, carries it out). */
export const askRequest = (
  p: string,
  r: string,
  body: { kind: Exclude<ControlRequest['kind'], 'trial'>; config_patch?: Record<string, unknown>; checkpoint?: string; preset?: string },
) =>
  getJson<ControlRequest>(`/api/runs/${runPath(p, r)}/requests`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ ...body, asked_by: 'web' }),
  });

/** The project's requests, oldest first. */
export const requests = async (project: string) =>
  (await getJson<{ requests: ControlRequest[] }>(`/api/requests?${new URLSearchParams({ project })}`)).requests;

/** A named config of a project (`goodseed config save`). */
export interface SavedConfig {
  name: string;
  project: string;
  config: string;
  from_run: string | null;
  saved_by: string;
  saved_at: string;
}

/** The project's saved configs, by name. */
export const savedConfigs = async (project: string) =>
  (await getJson<{ saved_configs: SavedConfig[] }>(`/api/saved_configs?${new URLSearchParams({ project })}`)).saved_configs;

/** A run's checkpoint, artifact or file of a series (openapi `Artifact`). */
export interface Artifact {
  id: number;
  kind: 'checkpoint' | 'artifact' | 'file';
  name: string;
  step: number | null;
  sha256: string;
  size: number;
  media_type: string;
  width: number | null;
  height: number | null;
  metrics: Record<string, number>;
  best: boolean;
  /** False for a file registered in place on the trainer's machine: never served. */
  stored: boolean;
  in_place: string | null;
  created_at: string;
}

/** Every record of a run (checkpoints, artifacts, files), in the order registered. */
export async function artifacts(project: string, runId: string): Promise<Artifact[]> {
  const r = await getJson<{ artifacts: Artifact[] }>(`/api/runs/${runPath(project, runId)}/artifacts`);
  for (const a of r.artifacts) {
    if (a.step !== null) a.step = num(a.step);
    for (const k of Object.keys(a.metrics)) a.metrics[k] = num(a.metrics[k]);
  }
  return r.artifacts;
}

/** One histogram of a series: bucket `i` spans `edges[i]` to `edges[i + 1]`. */
export interface HistogramPoint {
  step: number;
  logged_at: string;
  kind: string;
  edges: number[];
  counts: number[];
}

/** The paths of a run's histogram series. */
export async function histogramPaths(project: string, runId: string): Promise<string[]> {
  const r = await getJson<{ paths: string[] }>(`/api/runs/${runPath(project, runId)}/histograms`);
  return r.paths;
}

/** One histogram series, in step order. */
export async function histograms(project: string, runId: string, path: string): Promise<HistogramPoint[]> {
  const r = await getJson<{ histograms: HistogramPoint[] }>(
    `/api/runs/${runPath(project, runId)}/histograms?path=${encodeURIComponent(path)}`,
  );
  for (const h of r.histograms) h.step = num(h.step);
  return r.histograms;
}

/** Where a record's bytes download from. */
export const artifactUrl = (project: string, runId: string, id: number) =>
  `/api/runs/${runPath(project, runId)}/artifacts/${id}/content`;

/** Marks a checkpoint the run's best. */
export const markBest = (p: string, r: string, id: number) =>
  post(`/api/runs/${runPath(p, r)}/checkpoints/${id}/best`);

/** Deletes a record (its bytes go once no record of the run names them). */
export const deleteArtifact = (p: string, r: string, id: number) =>
  getJson<unknown>(`/api/runs/${runPath(p, r)}/artifacts/${id}`, { method: 'DELETE' });

/** Every config key any run of the project has (for table columns). */
/** Every config key and metric path of a project's runs (the server's index of them). */
export const projectKeys = (project: string) =>
  getJson<{ keys: string[]; metric_paths: string[]; runs: number }>(`/api/config_keys?${new URLSearchParams({ project })}`);
export const configKeys = async (project: string) =>
  (await getJson<{ keys: string[]; runs: number }>(`/api/config_keys?${new URLSearchParams({ project })}`)).keys;
