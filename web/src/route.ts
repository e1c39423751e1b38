// The URL is the state of the screen: every view and option lives in the query string,
// so a view can be shared, bookmarked and reloaded.
import { useEffect, useState } from 'preact/hooks';

export interface Route {
  /** Project shown (runs table, run page or comparison). */
  project?: string;
  /** Run shown. */
  run?: string;
  /** Run page tab. */
  tab?: 'charts' | 'config' | 'logs' | 'checkpoints' | 'files' | 'histograms';
  /** Runs selected in the table, compared when `view` is compare. */
  sel: string[];
  view?: 'compare';
  /** Runs table: search text, status and tag filters, trashed view, sort, columns. */
  q?: string;
  status?: string;
  tag?: string;
  trashed: boolean;
  sort?: string;
  cols: string[];
  /** Runs table: conditions on values (`lr > 0.001`), evaluated by the server. */
  where: string[];
  /** Runs table: the importance panel's target (`val/acc.max`), when it is open. */
  importance?: string;
  /** Runs table: the scatter panel is open, with these columns on its axes. */
  scatter: boolean;
  sx?: string;
  sy?: string;
  /** Runs table: page through the server whatever the number of runs (it does beyond
   * 5,000 anyway). */
  paged: boolean;
  /** Runs table: the parallel coordinates panel is open, with these columns as axes. */
  parallel: boolean;
  pcols: string[];
  /** Runs table: grouped by these config keys, with the groups' curves of `gm` (the
   * mean, or the median when `gstat` says so, with a band of `gband`: std by default). */
  group: string[];
  gm?: string;
  gstat?: 'median';
  gband?: 'minmax' | 'iqr' | 'none';
  /** Chart options: EMA smoothing weight 0..0.99, log y, x axis. */
  smooth: number;
  logy: boolean;
  x: 'step' | 'wall' | 'rel';
  /** Comparison: metric paths overlaid. */
  metrics: string[];
  /** Charts filter (run page). */
  filter?: string;
  /** Run page: the clone form is open. */
  clone: boolean;
  /** A sweep's view: its name, the metric shown, and whether lower is better. */
  sweep?: string;
  metric?: string;
  goal?: 'min';
}

const LISTS = ['sel', 'cols', 'metrics', 'group', 'pcols'] as const;

export function parseRoute(search: string): Route {
  const q = new URLSearchParams(search);
  const list = (k: string) => (q.get(k) ? q.get(k)!.split(',').filter(Boolean) : []);
  const x = q.get('x');
  const tab = q.get('tab');
  const smooth = Number(q.get('smooth') ?? '0');
  const gband = q.get('gband');
  return {
    project: q.get('project') ?? undefined,
    run: q.get('run') ?? undefined,
    tab:
      tab === 'config' || tab === 'logs' || tab === 'charts' || tab === 'checkpoints' || tab === 'files' || tab === 'histograms'
        ? tab
        : undefined,
    sel: list('sel'),
    view: q.get('view') === 'compare' ? 'compare' : undefined,
    q: q.get('q') ?? undefined,
    status: q.get('status') ?? undefined,
    tag: q.get('tag') ?? undefined,
    trashed: q.get('trashed') === '1',
    sort: q.get('sort') ?? undefined,
    cols: list('cols'),
    where: q.getAll('where').filter((w) => w.trim() !== ''),
    importance: q.get('importance') ?? undefined,
    scatter: q.get('scatter') === '1',
    sx: q.get('sx') ?? undefined,
    sy: q.get('sy') ?? undefined,
    group: list('group'),
    parallel: q.get('parallel') === '1',
    paged: q.get('paged') === '1',
    pcols: list('pcols'),
    gm: q.get('gm') ?? undefined,
    gstat: q.get('gstat') === 'median' ? 'median' : undefined,
    gband: gband === 'minmax' || gband === 'iqr' || gband === 'none' ? gband : undefined,
    smooth: Number.isFinite(smooth) ? Math.min(Math.max(smooth, 0), 0.99) : 0,
    logy: q.get('logy') === '1',
    x: x === 'wall' || x === 'rel' ? x : 'step',
    metrics: list('metrics'),
    filter: q.get('filter') ?? undefined,
    clone: q.get('clone') === '1',
    sweep: q.get('sweep') ?? undefined,
    metric: q.get('metric') ?? undefined,
    goal: q.get('goal') === 'min' ? 'min' : undefined,
  };
}

export function routeUrl(r: Partial<Route>): string {
  const q = new URLSearchParams();
  const set = (k: string, v: string | undefined | false) => {
    if (v) q.set(k, v);
  };
  set('project', r.project);
  set('run', r.run);
  set('view', r.view);
  set('tab', r.tab);
  for (const k of LISTS) {
    const v = r[k];
    if (v && v.length) q.set(k, v.join(','));
  }
  set('q', r.q);
  set('status', r.status);
  set('tag', r.tag);
  set('trashed', r.trashed && '1');
  set('sort', r.sort);
  for (const w of r.where ?? []) q.append('where', w);
  set('importance', r.importance);
  set('scatter', r.scatter && '1');
  set('sx', r.sx);
  set('sy', r.sy);
  set('parallel', r.parallel && '1');
  set('paged', r.paged && '1');
  set('gm', r.gm);
  set('gstat', r.gstat);
  set('gband', r.gband);
  set('smooth', r.smooth ? String(r.smooth) : undefined);
  set('logy', r.logy && '1');
  set('x', r.x && r.x !== 'step' ? r.x : undefined);
  set('filter', r.filter);
  set('clone', r.clone && '1');
  set('sweep', r.sweep);
  set('metric', r.metric);
  set('goal', r.goal);
  const s = q.toString();
  return s ? `/?${s}` : '/';
}

type Listener = () => void;
const listeners = new Set<Listener>();
window.addEventListener('popstate', () => listeners.forEach((l) => l()));

export function currentRoute(): Route {
  return parseRoute(window.location.search);
}

/** Goes to a new screen (a history entry), or, with `replace`, changes options in place. */
export function navigate(r: Partial<Route>, opts: { replace?: boolean } = {}): void {
  const url = routeUrl(r);
  if (url === window.location.pathname + window.location.search) return;
  if (opts.replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  listeners.forEach((l) => l());
  if (!opts.replace) window.scrollTo(0, 0);
}

/** Changes some options of the current screen, in place. */
export function patchRoute(patch: Partial<Route>, opts: { replace?: boolean } = { replace: true }): void {
  navigate({ ...currentRoute(), ...patch }, opts);
}

export function useRoute(): Route {
  const [route, setRoute] = useState(currentRoute);
  useEffect(() => {
    const l = () => setRoute(currentRoute());
    listeners.add(l);
    return () => {
      listeners.delete(l);
    };
  }, []);
  return route;
}

/** A link that changes the screen without reloading the page. */
export function linkProps(r: Partial<Route>) {
  const href = routeUrl(r);
  return {
    href,
    onClick: (e: MouseEvent) => {
      if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
      e.preventDefault();
      navigate(r);
    },
  };
}
