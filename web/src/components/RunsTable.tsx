// The runs of a project: a virtualised, sortable, filterable table that follows new
// runs and status changes live, with selection for comparison, trash/restore and stop.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import * as api from '../api';
import type { RunRow } from '../api';
import { durationOf, fmtDuration, fmtNum, fmtTime } from '../format';
import { useLive } from '../live';
import { linkProps, navigate, patchRoute, type Route } from '../route';
import { Empty, ErrorBox, Loading, StatusBadge, toast, useAsync, useDebounced } from './common';
import { mark } from '../perf';
import { useKey } from '../keys';
import { csv, download, fileName } from '../export';
import { Importance } from './Importance';
import { Scatter } from './Scatter';
import { Parallel } from './Parallel';
import { ViewPicker } from './Views';
import { aggregate, groupLabel, groupRows, GroupPanel, type RowGroup } from './Groups';

const ROW = 36;
/** Above this many runs (under the conditions), the table pages through the server
 * instead of holding the whole listing: sorting, search and filters are the server's. */
const ALL_MAX = 5_000;
/** Runs per page asked of the server in that mode. */
const PAGE = 100;
/** Runs the scatter and the parallel coordinates draw at most in that mode. */
const SAMPLE = 5_000;
/** The most runs one comparison shows (the server's /api/compare limit). */
const MAX_COMPARE = 32;
const OVERSCAN = 10;

type Col = { key: string; label: string; num?: boolean; get: (r: RunRow) => string | number | null };

function configText(v: api.ConfigScalar | undefined): string {
  if (v === undefined || v === null) return '';
  if (Array.isArray(v)) return v.join(', ');
  if (typeof v === 'number') return fmtNum(v);
  return String(v);
}

const BASE: Col[] = [
  { key: 'status', label: 'Status', get: (r) => r.state },
  { key: 'name', label: 'Name', get: (r) => r.experiment_name ?? '' },
  { key: 'id', label: 'Run', get: (r) => r.run_id },
  { key: 'created', label: 'Created', get: (r) => r.created_at ?? '' },
  {
    key: 'duration',
    label: 'Duration',
    num: true,
    get: (r) => durationOf(r.created_at, r.closed_at ?? (r.state === 'running' ? null : r.created_at)),
  },
  { key: 'tags', label: 'Tags', get: (r) => r.tags.join(' ') },
];

function extraCol(spec: string): Col | null {
  const [kind, ...rest] = spec.split(':');
  const name = rest.join(':');
  if (!name) return null;
  if (kind === 'c') {
    return {
      key: spec,
      label: name,
      num: true,
      get: (r) => {
        const v = r.config?.[name];
        return typeof v === 'number' ? v : v === undefined || v === null ? null : configText(v);
      },
    };
  }
  if (kind === 'm') return { key: spec, label: name, num: true, get: (r) => r.last?.[name] ?? null };
  // `s:<agg>:<path>`: a metric's summary (the server's), such as its best value.
  if (kind === 's') {
    const [agg, ...path] = rest;
    const metric = path.join(':');
    if (!SUMMARY_AGGS.some(([a]) => a === agg) || !metric) return null;
    const label = `${metric} (${SUMMARY_AGGS.find(([a]) => a === agg)![1]})`;
    return {
      key: spec,
      label,
      num: true,
      get: (r) => {
        const v = r.summary?.[metric]?.[agg as keyof api.MetricSummary];
        return typeof v === 'number' && !Number.isNaN(v) ? v : null;
      },
    };
  }
  return null;
}

/** The summaries a metric column can show: its field and the label's word. */
const SUMMARY_AGGS: [keyof api.MetricSummary, string][] = [
  ['min', 'min'],
  ['max', 'max'],
  ['mean', 'mean of last 10'],
  ['min_step', 'step of min'],
  ['max_step', 'step of max'],
];

/** The metric paths a listing must ask for (`metric=`): last values and summaries. */
function metricsAsked(cols: Col[]): string[] {
  const out = new Set<string>();
  for (const c of cols) {
    if (c.key.startsWith('m:')) out.add(c.key.slice(2));
    if (c.key.startsWith('s:')) out.add(c.key.split(':').slice(2).join(':'));
  }
  return [...out];
}

/** The server's sort key for a column (`null`: the server cannot sort by it). */
function serverKey(key: string): string | null {
  const fixed: Record<string, string> = { status: 'status', name: 'name', id: 'run_id', created: 'created_at' };
  if (key in fixed) return fixed[key];
  if (key.startsWith('c:')) return `config.${key.slice(2)}`;
  if (key.startsWith('m:')) return `metric.${key.slice(2)}.last`;
  if (key.startsWith('s:')) {
    const [, agg, ...path] = key.split(':');
    return `metric.${path.join(':')}.${agg}`;
  }
  return null;
}

function serverSortOf(key: string, dir: string): string {
  const k = serverKey(key) ?? 'created_at';
  return dir === 'asc' ? k : `-${k}`;
}

function compare(a: string | number | null, b: string | number | null): number {
  if (a === b) return 0;
  if (a === null || a === '' || (typeof a === 'number' && Number.isNaN(a))) return 1;
  if (b === null || b === '' || (typeof b === 'number' && Number.isNaN(b))) return -1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a).localeCompare(String(b), undefined, { numeric: true });
}

export function RunsTable({ route }: { route: Route }) {
  const project = route.project!;
  const extra = useMemo(() => route.cols.map(extraCol).filter((c): c is Col => !!c), [route.cols.join(',')]);
  // The scatter's and the parallel coordinates' axes are columns too: their values come
  // with the listing.
  const axisCols = useMemo(
    () =>
      [...(route.scatter ? [route.sx, route.sy] : []), ...(route.parallel ? route.pcols : [])].flatMap((s) =>
        s ? [extraCol(s)].filter((c): c is Col => !!c) : [],
      ),
    [route.scatter, route.sx, route.sy, route.parallel, route.pcols.join(',')],
  );
  // So are the keys the table is grouped by.
  const configKeys = [
    ...new Set([...[...extra, ...axisCols].filter((c) => c.key.startsWith('c:')).map((c) => c.key.slice(2)), ...route.group]),
  ];
  const metricKeys = metricsAsked([...extra, ...axisCols]);
  const [rows, setRows] = useState<RunRow[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [n, setN] = useState(0);
  const [qText, setQText] = useState(route.q ?? '');
  const q = useDebounced(qText, 150);
  const selected = new Set(route.sel);

  // How many runs the conditions keep decides the mode: the whole listing in the browser,
  // or pages asked of the server as they scroll into view (`paged`).
  const [paged, setPaged] = useState<number | null>(null);
  useEffect(() => {
    let alive = true;
    setError(null);
    api
      .runs(project, { trashed: route.trashed, filters: route.where, limit: 1 })
      .then(async (probe) => {
        if (!alive) return;
        if (route.paged || probe.total > ALL_MAX) {
          setPaged(probe.total);
          return;
        }
        const r = await api.runs(project, { trashed: route.trashed, config: configKeys, metric: metricKeys, filters: route.where });
        if (!alive) return;
        setPaged(null);
        setRows(r.runs);
      })
      .catch((e) => alive && setError(e));
    return () => {
      alive = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [project, route.trashed, route.paged, route.cols.join(','), route.where.join('\n'), configKeys.join('\n'), metricKeys.join('\n'), n]);

  // With conditions on values, whether a new or changed run belongs is the server's to
  // say: the listing is asked again (at most every half second) instead of patched.
  const refetchSoon = useRef<number | null>(null);
  const askAgain = () => {
    if (refetchSoon.current !== null) return;
    refetchSoon.current = window.setTimeout(() => ((refetchSoon.current = null), setN((x) => x + 1)), 500);
  };
  useEffect(() => () => void (refetchSoon.current !== null && clearTimeout(refetchSoon.current)), []);

  useEffect(() => {
    if ((route.q ?? '') !== q) patchRoute({ q: q || undefined });
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [q]);

  // Live: insert new runs, update states, drop removed runs; refresh the chosen metric
  // columns now and then while runs are live. The stream opens once the first listing
  // is in (so the two do not compete for a cold server), and the listing is loaded
  // again whenever the stream (re)opens, so nothing created in between is missed.
  const liveState = useLive(project, [], true, {
    open: () => setN((x) => x + 1),
    run: (row) =>
      route.where.length > 0 || paged !== null
        ? askAgain()
        : setRows((prev) => {
        if (!prev || row.trashed !== route.trashed) return prev;
        if (prev.some((r) => r.run_id === row.run_id)) return prev.map((r) => (r.run_id === row.run_id ? { ...r, ...row } : r));
        return [row, ...prev];
      }),
    status: (id, status, state, ended_by) =>
      route.where.length > 0 || paged !== null
        ? askAgain()
        : setRows((prev) => prev && prev.map((r) => (r.run_id === id ? { ...r, status, state, ended_by } : r))),
    removed: (id) => (paged !== null ? askAgain() : setRows((prev) => prev && prev.filter((r) => r.run_id !== id))),
  }, rows !== null || paged !== null);
  const anyLive = rows?.some((r) => r.state === 'running') ?? false;
  useEffect(() => {
    if (!anyLive || (!metricKeys.length && !configKeys.length)) return;
    const t = setInterval(() => setN((x) => x + 1), 5000);
    return () => clearInterval(t);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [anyLive, route.cols.join(',')]);

  const cols = [...BASE, ...extra];
  const sortSpec = route.sort ?? 'created:desc';
  const sortKey = sortSpec.slice(0, sortSpec.lastIndexOf(':'));
  const sortDir = sortSpec.slice(sortSpec.lastIndexOf(':') + 1);
  const shown = useMemo(() => {
    if (!rows) return [];
    const needle = q.trim().toLowerCase();
    const out = rows.filter(
      (r) =>
        (!route.status || r.state === route.status) &&
        (!route.tag || r.tags.includes(route.tag)) &&
        (!needle ||
          r.run_id.toLowerCase().includes(needle) ||
          (r.experiment_name ?? '').toLowerCase().includes(needle) ||
          r.tags.some((t) => t.toLowerCase().includes(needle))),
    );
    const col = cols.find((c) => c.key === sortKey) ?? BASE[3];
    const dir = sortDir === 'asc' ? 1 : -1;
    // Each row's value read once; empty values last whatever the direction.
    const keyed = out.map((r) => ({ r, v: col.get(r) }));
    const empty = (v: string | number | null) => v === null || v === '';
    keyed.sort((a, b) => {
      if (empty(a.v) !== empty(b.v)) return empty(a.v) ? 1 : -1;
      return compare(a.v, b.v) * dir || a.r.run_id.localeCompare(b.r.run_id);
    });
    return keyed.map((k) => k.r);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [rows, q, route.status, route.tag, sortKey, sortDir, extra]);

  // Paged: the server sorts, searches and filters; pages are asked as they scroll into
  // view, and asked again (those in view) when the listing may have changed (`n`).
  const serverSort = serverSortOf(sortKey, sortDir);
  // What the server is asked for the table's runs in that mode (pages, the panels'
  // sample and the CSV add the columns, a limit and an offset).
  const serverQuery = {
    trashed: route.trashed,
    filters: route.where,
    q: q.trim() || undefined,
    status: route.status,
    tag: route.tag,
    sort: serverSort,
  };
  const pagedKey =
    paged === null
      ? ''
      : JSON.stringify([project, serverQuery, configKeys, metricKeys]);
  const [pages, setPages] = useState<{ key: string; total: number | null; got: Map<number, { rows: RunRow[]; gen: number }> }>({
    key: '',
    total: null,
    got: new Map(),
  });
  const asked = useRef(new Map<number, number>());
  useEffect(() => {
    asked.current.clear();
    setPages({ key: pagedKey, total: null, got: new Map() });
    // Another order or other conditions: back to the top.
    if (scroller.current) scroller.current.scrollTop = 0;
  }, [pagedKey]);
  const loaded = useMemo(
    () => (paged === null ? shown : [...pages.got.entries()].sort((a, b) => a[0] - b[0]).flatMap(([, pg]) => pg.rows)),
    [paged, shown, pages],
  );

  // Paged, the tags and metrics offered are those of the runs loaded so far.
  const known = paged === null ? rows : loaded;
  const allTags = useMemo(() => [...new Set((known ?? []).flatMap((r) => r.tags))].sort(), [known]);
  const metricPaths = useMemo(() => [...new Set((known ?? []).flatMap((r) => r.metric_paths))].sort(), [known]);

  // Grouped: a row per group, its runs under it when it is open.
  const [groupOpen, setGroupOpen] = useState(route.group.length > 0);
  const [expanded, setExpanded] = useState<Set<string>>(new Set());
  const groups = useMemo(
    () => (route.group.length && paged === null ? groupRows(shown, route.group) : null),
    [shown, route.group.join(','), paged],
  );
  type Item = { group: RowGroup } | { row: RunRow } | { loading: number };
  // What the table's rows are: held (the whole listing, or its groups), or, paged, read
  // from the pages loaded (a run not loaded yet is a placeholder row), never built for
  // all 100,000 rows at once.
  const held: Item[] | null = useMemo(
    () =>
      paged !== null
        ? null
        : groups
          ? groups.flatMap((g) => [{ group: g } as Item, ...(expanded.has(g.key) ? g.rows.map((row) => ({ row })) : [])])
          : shown.map((row) => ({ row })),
    [groups, shown, expanded, paged],
  );
  const itemCount = held ? held.length : (pages.total ?? PAGE);
  const itemAt = (i: number): Item => {
    if (held) return held[i];
    const row = pages.got.get(Math.floor(i / PAGE))?.rows[i % PAGE];
    return row ? { row } : { loading: i };
  };
  const itemsIn = (from: number, to: number): Item[] => (held ? held.slice(from, to) : Array.from({ length: Math.max(0, to - from) }, (_, k) => itemAt(from + k)));
  const toggleGroup = (key: string) =>
    setExpanded((e) => (e.has(key) ? new Set([...e].filter((k) => k !== key)) : new Set([...e, key])));

  // Virtualisation: only the rows in view (and a few around) are in the DOM.
  const scroller = useRef<HTMLDivElement>(null);
  const [scroll, setScroll] = useState({ top: 0, height: 600 });
  useEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const update = () => setScroll({ top: el.scrollTop, height: el.clientHeight });
    update();
    el.addEventListener('scroll', update, { passive: true });
    const ro = new ResizeObserver(update);
    ro.observe(el);
    return () => {
      el.removeEventListener('scroll', update);
      ro.disconnect();
    };
  }, [rows !== null || paged !== null]);
  const anyRows = paged !== null ? pages.got.size > 0 : shown.length > 0;
  useEffect(() => {
    if (anyRows) mark('table');
  }, [anyRows]);
  const start = Math.max(0, Math.floor(scroll.top / ROW) - OVERSCAN);
  const end = Math.min(itemCount, Math.ceil((scroll.top + scroll.height) / ROW) + OVERSCAN);

  useEffect(() => {
    if (paged === null || pages.key !== pagedKey) return;
    const gen = n;
    const first = Math.floor(start / PAGE);
    const last = Math.floor(Math.max(end - 1, start) / PAGE);
    for (let p = first; p <= last; p++) {
      const have = pages.got.get(p);
      if ((have && have.gen >= gen) || (asked.current.get(p) ?? -1) >= gen) continue;
      asked.current.set(p, gen);
      api
        .runs(project, { ...serverQuery, config: configKeys, metric: metricKeys, limit: PAGE, offset: p * PAGE })
        .then(
          (r) =>
            setPages((prev) =>
              prev.key !== pagedKey ? prev : { ...prev, total: r.total, got: new Map(prev.got).set(p, { rows: r.runs, gen }) },
            ),
          (e) => setError(e),
        );
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [pagedKey, pages, start, end, n]);

  const setSel = (ids: string[]) => patchRoute({ sel: ids });

  // The keyboard's cursor: a row (or group row) of the table, kept in view.
  const [cursor, setCursor] = useState(-1);
  const moveCursor = (by: number) => {
    if (!itemCount) return;
    const next = Math.min(Math.max(cursor + by, 0), itemCount - 1);
    setCursor(next);
    const el = scroller.current;
    if (el) {
      const head = ROW; // the header row
      if (next * ROW < el.scrollTop) el.scrollTop = next * ROW;
      else if ((next + 1) * ROW + head > el.scrollTop + el.clientHeight) el.scrollTop = (next + 1) * ROW + head - el.clientHeight;
    }
  };
  const atCursor = cursor >= 0 && cursor < itemCount ? itemAt(cursor) : null;
  useKey('next', () => moveCursor(1));
  useKey('prev', () => moveCursor(-1));
  useKey(
    'open',
    () => {
      if (!atCursor) return;
      if ('row' in atCursor) navigate({ project, run: atCursor.row.run_id });
      else if ('group' in atCursor) toggleGroup(atCursor.group.key);
    },
  );
  useKey(
    'select',
    () => {
      if (!atCursor || 'loading' in atCursor) return;
      const ids = 'row' in atCursor ? [atCursor.row.run_id] : atCursor.group.rows.map((r) => r.run_id);
      const all = ids.every((id) => selected.has(id));
      setSel(all ? route.sel.filter((s) => !ids.includes(s)) : [...new Set([...route.sel, ...ids])]);
    },
  );
  useKey(
    'compare',
    () => {
      if (route.sel.length > 0 && route.sel.length <= MAX_COMPARE)
        navigate({ project, view: 'compare', sel: route.sel, smooth: route.smooth, logy: route.logy, x: route.x });
    },
  );
  const toggle = (id: string) => setSel(selected.has(id) ? route.sel.filter((s) => s !== id) : [...route.sel, id]);
  const allShownSelected = shown.length > 0 && shown.every((r) => selected.has(r.run_id));

  async function act(what: 'trash' | 'restore' | 'stop' | 'resume', ids: string[]) {
    if (what === 'resume') {
      const asked = await Promise.allSettled(ids.map((id) => api.askRequest(project, id, { kind: 'resume' })));
      const failed = asked.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
      if (failed.length) toast(`resume failed for ${failed.length} run(s): ${String(failed[0].reason?.message ?? failed[0].reason)}`, true);
      else toast(`Resume asked for ${ids.length} run(s): an agent (goodseed agent) carries it out`);
      return;
    }
    const fn = what === 'trash' ? api.trash : what === 'restore' ? api.restore : api.stop;
    const results = await Promise.allSettled(ids.map((id) => fn(project, id)));
    const failed = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    if (failed.length) toast(`${what} failed for ${failed.length} run(s): ${String(failed[0].reason?.message ?? failed[0].reason)}`, true);
    else toast(`${what === 'stop' ? 'Stop requested for' : what === 'trash' ? 'Moved to trash:' : 'Restored:'} ${ids.length} run(s)`);
    if (what !== 'stop') {
      setRows((prev) => prev && prev.filter((r) => !ids.includes(r.run_id) || failed.length > 0));
      setSel(route.sel.filter((s) => !ids.includes(s)));
      setN((x) => x + 1);
    }
  }

  // Paged, the panels draw the first runs of the table's order (up to SAMPLE), asked of
  // the server with the columns their axes need, not only the pages loaded.
  const sample =
    paged === null
      ? null
      : {
          key: pagedKey,
          fetch: (config: string[], metric: string[]) =>
            api
              .runs(project, { ...serverQuery, config, metric, limit: SAMPLE })
              .then((r) => r.runs),
        };

  /** The runs shown, in the table's order, with its columns, as CSV (paged: every run
   * the conditions keep, asked of the server 10,000 at a time). */
  const saveCsv = async () => {
    let all = shown;
    if (paged !== null) {
      toast(`Preparing the CSV of ${(pages.total ?? paged).toLocaleString()} runs…`);
      all = [];
      try {
        for (;;) {
          const r = await api.runs(project, { ...serverQuery, config: configKeys, metric: metricKeys, limit: 10_000, offset: all.length });
          all = all.concat(r.runs);
          if (r.runs.length === 0 || all.length >= r.total) break;
        }
      } catch (e) {
        toast(`CSV failed: ${e instanceof Error ? e.message : e}`, true);
        return;
      }
    }
    const header = ['run_id', 'name', 'state', 'created_at', 'closed_at', 'tags', ...extra.map((c) => c.label)];
    const body = all.map((r) => [
      r.run_id,
      r.experiment_name ?? '',
      r.state,
      r.created_at ?? '',
      r.closed_at ?? '',
      r.tags.join(' '),
      ...extra.map((c) => c.get(r)),
    ]);
    download(fileName(`${project}-runs`, 'csv'), new Blob([csv(header, body)], { type: 'text/csv' }));
  };

  const sortBy = (key: string) => {
    const dir = sortKey === key && sortDir === 'desc' ? 'asc' : 'desc';
    patchRoute({ sort: `${key}:${dir}` });
  };

  return (
    <section class="page runs-page">
      <header class="page-head">
        <h1>
          <a {...linkProps({})} class="crumb">Projects</a> / {project}
          <span class={`live-dot live-${liveState}`} title={`live updates: ${liveState}`} />
        </h1>
        <div class="toolbar" role="toolbar" aria-label="Runs filters">
          <input
            type="search"
            placeholder="Search name, id, tag…"
            aria-label="Search runs"
            value={qText}
            onInput={(e) => setQText((e.target as HTMLInputElement).value)}
          />
          <select
            aria-label="Status filter"
            value={route.status ?? ''}
            onChange={(e) => patchRoute({ status: (e.target as HTMLSelectElement).value || undefined })}
          >
            <option value="">any status</option>
            {['running', 'finished', 'failed', 'crashed', 'stale'].map((s) => (
              <option value={s}>{s === 'running' ? 'live' : s}</option>
            ))}
          </select>
          <select
            aria-label="Tag filter"
            value={route.tag ?? ''}
            onChange={(e) => patchRoute({ tag: (e.target as HTMLSelectElement).value || undefined })}
          >
            <option value="">any tag</option>
            {allTags.map((t) => (
              <option value={t}>{t}</option>
            ))}
          </select>
          <FilterBar route={route} project={project} />
          <ColumnPicker route={route} metricPaths={metricPaths} project={project} />
          <label class="check">
            <input
              type="checkbox"
              checked={route.trashed}
              onChange={(e) => patchRoute({ trashed: (e.target as HTMLInputElement).checked, sel: [] })}
            />
            trashed
          </label>
          <span class="spacer" />
          <span class="count">
            {paged !== null
              ? `${(pages.total ?? 0).toLocaleString()} of ${paged.toLocaleString()} runs`
              : rows
                ? `${shown.length.toLocaleString()} of ${rows.length.toLocaleString()} runs`
                : ''}
          </span>
          <button
            class="btn primary"
            disabled={route.sel.length === 0 || route.sel.length > MAX_COMPARE}
            title={route.sel.length > MAX_COMPARE ? `Compare at most ${MAX_COMPARE} runs at once` : undefined}
            onClick={() => navigate({ project, view: 'compare', sel: route.sel, smooth: route.smooth, logy: route.logy, x: route.x })}
          >
            {route.sel.length > MAX_COMPARE
              ? `Compare at most ${MAX_COMPARE} (${route.sel.length} selected)`
              : `Compare${route.sel.length > 0 ? ` (${route.sel.length})` : ''}`}
          </button>
          <select
            aria-label="Workspace of the top runs"
            title="A workspace of the first runs in the table's order (its sort and filters): their charts overlaid"
            value=""
            disabled={loaded.length === 0}
            onChange={(e) => {
              const n = Number((e.target as HTMLSelectElement).value);
              if (n > 0)
                navigate({ project, view: 'compare', sel: loaded.slice(0, n).map((r) => r.run_id), smooth: route.smooth, logy: route.logy, x: route.x });
            }}
          >
            <option value="">top…</option>
            {[5, 10, 20, MAX_COMPARE].map((n) => (
              <option value={String(n)}>top {n}</option>
            ))}
          </select>
          <SweepPicker project={project} />
          <ViewPicker project={project} />
          <button class="btn" disabled={!anyRows} title="Save the runs shown, with these columns, as CSV" onClick={() => void saveCsv()}>
            CSV
          </button>
          <button
            class="btn"
            aria-pressed={groupOpen || route.group.length > 0 ? 'true' : 'false'}
            title="Group the runs by config values: a row and a mean curve with its band per group"
            onClick={() => {
              if (groupOpen || route.group.length) {
                setGroupOpen(false);
                patchRoute({ group: [], gm: undefined, gstat: undefined, gband: undefined });
              } else setGroupOpen(true);
            }}
          >
            Group
          </button>
          <button
            class="btn"
            aria-pressed={route.parallel ? 'true' : 'false'}
            title="Parallel coordinates: a line per run through configs and a metric; drag an axis to filter"
            onClick={() => patchRoute({ parallel: !route.parallel, pcols: [] })}
          >
            Parallel
          </button>
          <button
            class="btn"
            aria-pressed={route.scatter ? 'true' : 'false'}
            title="Any config or metric summary against another, a dot per run shown"
            onClick={() => patchRoute({ scatter: !route.scatter })}
          >
            Scatter
          </button>
          <button
            class="btn"
            aria-pressed={route.importance ? 'true' : 'false'}
            title="Which configs matter for a metric, among the runs shown"
            onClick={() =>
              patchRoute({
                importance: route.importance ? undefined : `${metricPaths.find((m) => !m.startsWith('monitoring/')) ?? ''}.max`,
              })
            }
          >
            Importance
          </button>
          {!route.trashed && (
            <button
              class="btn"
              disabled={route.sel.length === 0}
              title="Ask an agent (goodseed agent) to start the trainer on each selected run again"
              onClick={() => act('resume', route.sel)}
            >
              Resume
            </button>
          )}
          {route.trashed ? (
            <button class="btn" disabled={route.sel.length === 0} onClick={() => act('restore', route.sel)}>
              Restore
            </button>
          ) : (
            <button class="btn" disabled={route.sel.length === 0} onClick={() => act('trash', route.sel)}>
              Trash
            </button>
          )}
        </div>
      </header>
      {route.importance !== undefined && <Importance route={route} project={project} metricPaths={metricPaths.filter((m) => !m.startsWith('monitoring/'))} />}
      {(groupOpen || route.group.length > 0) && <GroupKeys route={route} project={project} metricPaths={metricPaths} onClose={() => setGroupOpen(false)} />}
      {paged !== null && route.group.length > 0 && (
        <p class="muted">
          The table groups at most {ALL_MAX.toLocaleString()} runs (these conditions keep {paged.toLocaleString()}): narrow them with a filter to group its
          rows; the curves above cover every group.
        </p>
      )}
      {route.scatter && <ScatterPanel route={route} project={project} rows={loaded} metricPaths={metricPaths} sample={sample} />}
      {route.parallel && <ScatterPanel route={route} project={project} rows={loaded} metricPaths={metricPaths} sample={sample} parallel />}
      {error ? (
        <ErrorBox error={error} retry={() => setN((x) => x + 1)} />
      ) : !rows && paged === null ? (
        <Loading what="runs" />
      ) : paged === null && rows!.length === 0 ? (
        <Empty>
          {route.trashed ? 'No trashed runs in this project.' : 'No runs in this project yet: they appear here as soon as a trainer creates them.'}
        </Empty>
      ) : (
        <div class="vscroll" ref={scroller} role="region" aria-label="Runs" tabIndex={-1}>
          <table class="table runs" aria-rowcount={itemCount + 1}>
            <thead>
              <tr>
                <th class="sel">
                  <input
                    type="checkbox"
                    aria-label="Select all shown runs"
                    checked={allShownSelected}
                    disabled={paged !== null}
                    title={paged !== null ? `More than ${ALL_MAX.toLocaleString()} runs: narrow them with a filter to select them all` : undefined}
                    onChange={() =>
                      setSel(allShownSelected ? [] : [...new Set([...route.sel, ...shown.map((r) => r.run_id)])])
                    }
                  />
                </th>
                {cols.map((c) => (
                  <th
                    key={c.key}
                    class={c.num ? 'num' : ''}
                    aria-sort={sortKey === c.key ? (sortDir === 'asc' ? 'ascending' : 'descending') : 'none'}
                  >
                    <button
                      class="sort"
                      onClick={() => sortBy(c.key)}
                      data-col={c.key}
                      disabled={paged !== null && serverKey(c.key) === null}
                      title={paged !== null && serverKey(c.key) === null ? 'Sorted by the server, which cannot sort by this column' : undefined}
                    >
                      {c.label}
                      {sortKey === c.key ? (sortDir === 'asc' ? ' ▲' : ' ▼') : ''}
                    </button>
                    {c.key.includes(':') && (
                      <button
                        class="x"
                        aria-label={`Remove column ${c.label}`}
                        onClick={() => patchRoute({ cols: route.cols.filter((k) => k !== c.key) })}
                      >
                        ×
                      </button>
                    )}
                  </th>
                ))}
                <th />
              </tr>
            </thead>
            <tbody>
              {start > 0 && <tr class="spacer" style={{ height: `${start * ROW}px` }} />}
              {itemsIn(start, end).map((item, k) => {
                if ('loading' in item) {
                  return (
                    <tr key={`l:${item.loading}`} class="loading-row" aria-busy="true">
                      <td colSpan={cols.length + 2} class="muted">
                        …
                      </td>
                    </tr>
                  );
                }
                if ('group' in item) {
                  const g = item.group;
                  const open = expanded.has(g.key);
                  const ids = g.rows.map((r) => r.run_id);
                  const all = ids.every((id) => selected.has(id));
                  const label = groupLabel(route.group, g.values);
                  return (
                    <tr key={`g:${g.key}`} class={start + k === cursor ? 'group-row cursor' : 'group-row'} data-group={label}>
                      <td class="sel">
                        <input
                          type="checkbox"
                          aria-label={`Select the runs of ${label}`}
                          checked={all}
                          onChange={() =>
                            setSel(all ? route.sel.filter((s) => !ids.includes(s)) : [...new Set([...route.sel, ...ids])])
                          }
                        />
                      </td>
                      <td colSpan={3}>
                        <button class="group-toggle" aria-expanded={open ? 'true' : 'false'} onClick={() => toggleGroup(g.key)}>
                          {open ? '▾' : '▸'} {label}
                        </button>
                      </td>
                      <td class="muted">{`${g.rows.length} run${g.rows.length === 1 ? '' : 's'}`}</td>
                      <td />
                      <td />
                      {extra.map((c) => {
                        const a = aggregate(g.rows.map((r) => c.get(r)));
                        return (
                          <td class="num mono" key={c.key} title={a.title}>
                            {a.text}
                          </td>
                        );
                      })}
                      <td />
                    </tr>
                  );
                }
                const r = item.row;
                return (
                <tr
                  key={r.run_id}
                  class={`${selected.has(r.run_id) ? 'selected' : ''}${start + k === cursor ? ' cursor' : ''}`}
                  data-run={r.run_id}
                  onDblClick={() => navigate({ project, run: r.run_id })}
                >
                  <td class="sel">
                    <input
                      type="checkbox"
                      aria-label={`Select ${r.run_id}`}
                      checked={selected.has(r.run_id)}
                      onChange={() => toggle(r.run_id)}
                    />
                  </td>
                  <td>
                    <StatusBadge state={r.state} endedBy={r.ended_by} lastWrite={r.last_write_at} />
                  </td>
                  <td class="name">
                    <a {...linkProps({ project, run: r.run_id })} title={r.experiment_name ?? ''}>
                      {r.experiment_name || r.run_id}
                    </a>
                  </td>
                  <td class="mono">{r.run_id}</td>
                  <td>{fmtTime(r.created_at)}</td>
                  <td class="num">
                    <Duration row={r} />
                  </td>
                  <td class="tags">
                    {r.tags.map((t) => (
                      <button class="tag" onClick={() => patchRoute({ tag: route.tag === t ? undefined : t })}>
                        {t}
                      </button>
                    ))}
                  </td>
                  {extra.map((c) => {
                    const v = c.get(r);
                    return (
                      <td class="num mono" key={c.key}>
                        {typeof v === 'number' ? fmtNum(v) : v}
                      </td>
                    );
                  })}
                  <td class="actions">
                    {r.state === 'running' && !route.trashed && (
                      <button class="btn small" onClick={() => act('stop', [r.run_id])} title="Ask the trainer to stop (run.should_stop())">
                        Stop
                      </button>
                    )}
                    {!route.trashed && (
                      <a class="btn small" {...linkProps({ project, run: r.run_id, clone: true })} title="Clone this run with a changed config">
                        Clone…
                      </a>
                    )}
                    <button class="btn small" onClick={() => act(route.trashed ? 'restore' : 'trash', [r.run_id])}>
                      {route.trashed ? 'Restore' : 'Trash'}
                    </button>
                  </td>
                </tr>
                );
              })}
              {end < itemCount && <tr class="spacer" style={{ height: `${(itemCount - end) * ROW}px` }} />}
            </tbody>
          </table>
          {shown.length === 0 && <Empty>No run matches these filters.</Empty>}
        </div>
      )}
    </section>
  );
}

function Duration({ row }: { row: RunRow }) {
  const running = row.state === 'running';
  const [, tick] = useState(0);
  useEffect(() => {
    if (!running) return;
    const t = setInterval(() => tick((x) => x + 1), 1000);
    return () => clearInterval(t);
  }, [running]);
  const d = durationOf(row.created_at, row.closed_at ?? (running ? null : undefined));
  return <>{row.closed_at || running ? fmtDuration(d) : ''}</>;
}

/** Adds config and metric columns: config keys and metric paths of every run. */
/**
 * Conditions on runs' values (`lr > 0.001`, `optimizer = adam`, `val/acc exists`), kept
 * in the URL and evaluated by the server. A condition is checked by the server before
 * it is added: one it cannot read is said, not added.
 */
function FilterBar({ route, project }: { route: Route; project: string }) {
  const [text, setText] = useState('');
  const [problem, setProblem] = useState<string | null>(null);
  const add = async () => {
    const condition = text.trim();
    if (!condition) return;
    if (route.where.includes(condition)) return setText('');
    try {
      await api.runs(project, { filters: [condition], limit: 1, trashed: route.trashed });
    } catch (e) {
      setProblem(e instanceof Error ? e.message : String(e));
      return;
    }
    setProblem(null);
    setText('');
    patchRoute({ where: [...route.where, condition] });
  };
  return (
    <div class="filter-bar">
      {route.where.map((w) => (
        <span class="filter-chip" data-condition={w}>
          <code>{w}</code>
          <button class="chip-x" aria-label={`Remove filter ${w}`} onClick={() => patchRoute({ where: route.where.filter((x) => x !== w) })}>
            ×
          </button>
        </span>
      ))}
      <input
        type="text"
        class={problem ? 'invalid' : ''}
        aria-label="Add a filter"
        aria-invalid={problem ? 'true' : 'false'}
        placeholder="filter: lr > 0.001, optimizer = adam…"
        title="FIELD OP VALUE: a config (lr, model/layers), name, run_id, status, tag, created_at; = != < <= > >= ~ (holds), in [LOW, HIGH], exists, !exists"
        value={text}
        onInput={(e) => (setText((e.target as HTMLInputElement).value), setProblem(null))}
        onKeyDown={(e) => e.key === 'Enter' && void add()}
      />
      {problem && (
        <span class="filter-problem" role="alert">
          {problem}
        </span>
      )}
    </div>
  );
}

function ColumnPicker({ route, metricPaths, project }: { route: Route; metricPaths: string[]; project: string }) {
  const [open, setOpen] = useState(false);
  const [keys, setKeys] = useState<string[] | null>(null);
  const [paths, setPaths] = useState<string[]>([]);
  useEffect(() => {
    if (!open || keys) return;
    // Every run's keys and metrics (the server's index), not only those of the runs
    // loaded: a key some runs lack is offered too.
    api.projectKeys(project).then(
      (all) => {
        setKeys(all.keys.filter((k) => !k.startsWith('sys/') && !k.startsWith('source_code/') && !k.startsWith('monitoring/')));
        setPaths(all.metric_paths);
      },
      () => setKeys([]),
    );
  }, [open, project]);
  const allPaths = [...new Set([...metricPaths, ...paths])].sort();
  const add = (spec: string) => {
    if (!route.cols.includes(spec)) patchRoute({ cols: [...route.cols, spec] });
  };
  return (
    <div class="picker">
      <button class="btn" aria-expanded={open} onClick={() => setOpen(!open)}>
        Columns
      </button>
      {open && (
        <div class="picker-menu" role="dialog" aria-label="Add columns" onKeyDown={(e) => e.key === 'Escape' && setOpen(false)}>
          <div class="picker-group">
            <b>Configs</b>
            {keys === null ? <span class="spinner" /> : keys.length === 0 ? <i>none</i> : null}
            {keys?.map((k) => (
              <label class="check">
                <input type="checkbox" checked={route.cols.includes(`c:${k}`)} onChange={(e) => ((e.target as HTMLInputElement).checked ? add(`c:${k}`) : patchRoute({ cols: route.cols.filter((c) => c !== `c:${k}`) }))} />
                {k}
              </label>
            ))}
          </div>
          <div class="picker-group">
            <b>Metrics: last value, and at a glance</b>
            {allPaths.length === 0 && <i>none</i>}
            {allPaths.map((m) => (
              <div class="picker-metric" data-metric={m}>
                <label class="check">
                  <input type="checkbox" checked={route.cols.includes(`m:${m}`)} onChange={(e) => ((e.target as HTMLInputElement).checked ? add(`m:${m}`) : patchRoute({ cols: route.cols.filter((c) => c !== `m:${m}`) }))} />
                  {m}
                </label>
                {SUMMARY_AGGS.map(([agg, word]) => {
                  const spec = `s:${agg}:${m}`;
                  return (
                    <label class="check small" title={`${m}: ${word}`}>
                      <input type="checkbox" aria-label={`${m} ${word}`} checked={route.cols.includes(spec)} onChange={(e) => ((e.target as HTMLInputElement).checked ? add(spec) : patchRoute({ cols: route.cols.filter((c) => c !== spec) }))} />
                      {word}
                    </label>
                  );
                })}
              </div>
            ))}
          </div>
          <button class="btn small" onClick={() => setOpen(false)}>
            Done
          </button>
        </div>
      )}
    </div>
  );
}

/** The scatter (or the parallel coordinates) with its choice of axes: the project's
 * configs and its metrics' summaries. */
function ScatterPanel({
  route,
  project,
  rows,
  metricPaths,
  parallel,
  sample,
}: {
  route: Route;
  project: string;
  rows: RunRow[];
  metricPaths: string[];
  parallel?: boolean;
  sample: { key: string; fetch: (config: string[], metric: string[]) => Promise<RunRow[]> } | null;
}) {
  const keys = useAsync(() => api.configKeys(project), [project]);
  // Paged: the first runs of the table's order with the axes' values, from the server.
  const specs = (parallel ? route.pcols : [route.sx, route.sy]).filter((x): x is string => !!x);
  const cols = specs.map(extraCol).filter((c): c is Col => !!c);
  const wantConfig = cols.filter((c) => c.key.startsWith('c:')).map((c) => c.key.slice(2));
  const wantMetric = metricsAsked(cols);
  const sampled = useAsync(
    () => (sample ? sample.fetch(wantConfig, wantMetric) : Promise.resolve(null)),
    [sample?.key, wantConfig.join('\n'), wantMetric.join('\n')],
  );
  const used = sample ? (sampled.data ?? []) : rows;
  const axes = useMemo(() => {
    const specs = [
      ...(keys.data ?? [])
        .filter((k) => !k.startsWith('sys/') && !k.startsWith('source_code/') && !k.startsWith('monitoring/'))
        .map((k) => `c:${k}`),
      ...metricPaths
        .filter((m) => !m.startsWith('monitoring/'))
        .flatMap((m) => [`m:${m}`, ...SUMMARY_AGGS.filter(([a]) => a === 'min' || a === 'max' || a === 'mean').map(([a]) => `s:${a}:${m}`)]),
    ];
    return specs.flatMap((spec) => {
      const c = extraCol(spec);
      return c ? [{ spec, label: spec.startsWith('m:') ? `${c.label} (last)` : c.label, get: c.get }] : [];
    });
  }, [keys.data, metricPaths.join('\n')]);
  // Parallel coordinates start on the project's first configs and its first metric's
  // best value, written into the URL so the listing brings their values.
  const defaults = useMemo(() => {
    const configs = axes.filter((a) => a.spec.startsWith('c:')).slice(0, 5).map((a) => a.spec);
    const metric = metricPaths.find((m) => !m.startsWith('monitoring/'));
    return [...configs, ...(metric ? [`s:max:${metric}`] : [])];
  }, [axes]);
  useEffect(() => {
    if (parallel && route.pcols.length === 0 && keys.data && defaults.length) patchRoute({ pcols: defaults });
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [parallel, keys.data, defaults.join(',')]);
  if (parallel) return <Parallel route={route} project={project} rows={used} axes={axes} defaults={defaults} />;
  return <Scatter route={route} project={project} rows={used} axes={axes} />;
}

/** The group bar, with the project's config keys to choose from. */
function GroupKeys({ route, project, metricPaths, onClose }: { route: Route; project: string; metricPaths: string[]; onClose: () => void }) {
  const keys = useAsync(() => api.configKeys(project), [project]);
  const configKeys = useMemo(
    () => (keys.data ?? []).filter((k) => !k.startsWith('sys/') && !k.startsWith('source_code/') && !k.startsWith('monitoring/')),
    [keys.data],
  );
  return (
    <GroupPanel route={route} project={project} configKeys={configKeys} metricPaths={metricPaths.filter((m) => !m.startsWith('monitoring/'))} onClose={onClose} />
  );
}

/** Opens one of the project's sweeps (shown only when it has some). */
function SweepPicker({ project }: { project: string }) {
  const sweeps = useAsync(
    async () => [...new Set((await api.requests(project).catch(() => [])).flatMap((r) => (r.sweep ? [r.sweep] : [])))],
    [project],
  );
  if (!sweeps.data || sweeps.data.length === 0) return null;
  return (
    <select aria-label="Open a sweep" value="" onChange={(e) => navigate({ project, sweep: (e.target as HTMLSelectElement).value })}>
      <option value="">sweeps…</option>
      {sweeps.data.map((s) => (
        <option value={s}>{s}</option>
      ))}
    </select>
  );
}
