// Live updates from `GET /api/events` (server-sent events): new points, status changes,
// new and removed runs, requests of interactive control, checkpoints registered. The browser's EventSource reconnects by itself.
import { useEffect, useRef, useState } from 'preact/hooks';
import { type Artifact, type ControlRequest, num, type RunRow, type State } from './api';

export interface LivePoint {
  step: number;
  value: number;
  ts: number;
}

export interface LiveHandlers {
  metrics?: (run: string, path: string, points: LivePoint[]) => void;
  status?: (run: string, status: string | null, state: State, endedBy: string | null) => void;
  run?: (row: RunRow) => void;
  removed?: (run: string) => void;
  /** A request of the project was asked or changed state (with `wholeProject`). */
  request?: (r: ControlRequest) => void;
  /** A followed run registered a checkpoint. */
  checkpoint?: (run: string, checkpoint: Artifact) => void;
  /** The stream is open (again): anything missed before must be loaded now. */
  open?: () => void;
}

/** Whether the stream is open: shown as the "live" dot. */
export type LiveState = 'connecting' | 'open' | 'closed';

/**
 * Follows `runs` (ids within `project`) and, with `wholeProject`, the project's new runs
 * and status changes. Handlers may change between renders without reconnecting.
 */
export function useLive(
  project: string | undefined,
  runs: string[],
  wholeProject: boolean,
  handlers: LiveHandlers,
  /** When false, no stream is opened (yet). */
  enabled = true,
): LiveState {
  const ref = useRef(handlers);
  ref.current = handlers;
  const [state, setState] = useState<LiveState>('connecting');
  const key = runs.join('\n');
  useEffect(() => {
    if (!enabled || !project || (!wholeProject && runs.length === 0)) return;
    const q = new URLSearchParams();
    if (wholeProject) q.append('project', project);
    for (const r of runs.slice(0, 64)) q.append('run', `${project}/${r}`);
    const es = new EventSource(`/api/events?${q}`);
    setState('connecting');
    es.onopen = () => {
      setState('open');
      ref.current.open?.();
    };
    es.onerror = () => setState(es.readyState === EventSource.CLOSED ? 'closed' : 'connecting');
    const parse = (e: MessageEvent) => {
      try {
        return JSON.parse(e.data);
      } catch {
        return null;
      }
    };
    es.addEventListener('metrics', (e) => {
      const d = parse(e as MessageEvent);
      if (!d || d.project !== project) return;
      const pts: LivePoint[] = (d.points ?? []).map((p: { step: unknown; value: unknown; logged_at: string }) => ({
        step: num(p.step),
        value: num(p.value),
        ts: Date.parse(p.logged_at) / 1000,
      }));
      ref.current.metrics?.(d.run_id, d.path, pts);
    });
    es.addEventListener('status', (e) => {
      const d = parse(e as MessageEvent);
      if (d && d.project === project) ref.current.status?.(d.run_id, d.status ?? null, d.state, d.ended_by ?? null);
    });
    es.addEventListener('run', (e) => {
      const d = parse(e as MessageEvent);
      if (d && d.project === project) ref.current.run?.(d as RunRow);
    });
    es.addEventListener('removed', (e) => {
      const d = parse(e as MessageEvent);
      if (d && d.project === project) ref.current.removed?.(d.run_id);
    });
    es.addEventListener('request', (e) => {
      const d = parse(e as MessageEvent);
      if (d && d.project === project) ref.current.request?.(d as ControlRequest);
    });
    es.addEventListener('checkpoint', (e) => {
      const d = parse(e as MessageEvent);
      if (d && d.project === project) ref.current.checkpoint?.(d.run_id, d.checkpoint as Artifact);
    });
    return () => es.close();
  }, [project, key, wholeProject, enabled]);
  return state;
}
