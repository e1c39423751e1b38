// The text series of a run (logs, stdout, stderr, a traceback): the tail by default,
// paging, a search over the whole series on the server (by text, and by log level), a
// series picker; follows a live run.
import { useEffect, useState } from 'preact/hooks';
import * as api from '../api';
import { fmtTime } from '../format';
import { Empty, ErrorBox, Loading } from './common';

const PAGE = 500;

export function Logs({ project, runId, live }: { project: string; runId: string; live: boolean }) {
  const [path, setPath] = useState<string>('');
  const [paths, setPaths] = useState<string[] | null>(null);
  /** null: the tail; otherwise an offset. */
  const [offset, setOffset] = useState<number | null>(null);
  const [page, setPage] = useState<{ points: api.TextPoint[]; total: number } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [q, setQ] = useState('');
  /** The search the server was asked for: the box's text once typing pauses. */
  const [search, setSearch] = useState('');
  const [level, setLevel] = useState<api.LogLevel | ''>('');
  const [tick, setTick] = useState(0);

  // A new search starts from the tail; only a change of the text does (not opening
  // the view: a page chosen meanwhile stays).
  useEffect(() => {
    const next = q.trim();
    if (next === search) return;
    const t = setTimeout(() => (setSearch(next), setOffset(null)), 250);
    return () => clearTimeout(t);
  }, [q]);

  useEffect(() => {
    api.runs(project, { q: runId }).then(
      (r) => setPaths(r.runs.find((x) => x.run_id === runId)?.string_series_paths ?? []),
      () => setPaths([]),
    );
  }, [project, runId]);

  useEffect(() => {
    let alive = true;
    api
      .texts(project, runId, {
        path: path || undefined,
        limit: PAGE,
        offset: offset ?? 0,
        tail: offset === null,
        q: search || undefined,
        level: level || undefined,
      })
      .then((p) => alive && (setPage(p), setError(null)), (e) => alive && setError(e));
    return () => {
      alive = false;
    };
  }, [project, runId, path, offset, tick, search, level]);

  // Following the tail of a live run.
  useEffect(() => {
    if (!live || offset !== null) return;
    const t = setInterval(() => setTick((x) => x + 1), 1000);
    return () => clearInterval(t);
  }, [live, offset]);

  if (error) return <ErrorBox error={error} retry={() => setTick((x) => x + 1)} />;
  if (!page) return <Loading what="logs" />;
  const lines = page.points;
  const searching = Boolean(search || level);
  const start = offset ?? Math.max(0, page.total - page.points.length);
  const isErr = (p: string) => /(^|\/)stderr$/.test(p);
  return (
    <div class="logs">
      <div class="toolbar">
        <select aria-label="Text series" value={path} onChange={(e) => (setPath((e.target as HTMLSelectElement).value), setOffset(null))}>
          <option value="">all series</option>
          {(paths ?? []).map((p) => (
            <option value={p}>{p}</option>
          ))}
        </select>
        <input type="search" placeholder="Search the whole series…" aria-label="Search logs" value={q} onInput={(e) => setQ((e.target as HTMLInputElement).value)} />
        <select aria-label="Log level" value={level} onChange={(e) => (setLevel((e.target as HTMLSelectElement).value as api.LogLevel | ''), setOffset(null))}>
          <option value="">any level</option>
          <option value="error">error</option>
          <option value="warn">warn and above</option>
          <option value="info">info and above</option>
          <option value="debug">debug and above</option>
          <option value="trace">trace and above</option>
        </select>
        <span class="spacer" />
        <span class="count">
          {page.total ? `${searching ? 'matches' : 'lines'} ${start + 1}–${start + page.points.length} of ${page.total}` : ''}
        </span>
        <button class="btn" disabled={start === 0} onClick={() => setOffset(0)}>
          First
        </button>
        <button class="btn" disabled={start === 0} onClick={() => setOffset(Math.max(0, start - PAGE))}>
          Previous
        </button>
        <button class="btn" disabled={start + page.points.length >= page.total} onClick={() => setOffset(start + PAGE >= page.total - PAGE ? null : start + PAGE)}>
          Next
        </button>
        <button class="btn" disabled={offset === null} onClick={() => setOffset(null)}>
          Tail{live && offset === null ? ' (following)' : ''}
        </button>
      </div>
      {page.total === 0 && searching ? (
        <Empty>No line matches{search ? ` “${search}”` : ''}{level ? ` at ${level} or above` : ''}.</Empty>
      ) : page.total === 0 ? (
        <Empty>This run has no text series{live ? ' yet' : ''}.</Empty>
      ) : (
        <div class="log-lines" role="log" tabIndex={0}>
          {lines.map((p) => (
            <div class={`log-line${isErr(p.path) ? ' stderr' : ''}`}>
              <span class="log-step mono" title={fmtTime(p.logged_at)}>
                {p.step}
              </span>
              {!path && <span class="log-path">{p.path}</span>}
              <pre>{p.value}</pre>
            </div>
          ))}
        </div>
      )}
    </div>
  );
}
