// Small pieces every view uses: loading, error and empty states, status badges, hooks.
import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { State } from '../api';
import { fmtTime } from '../format';

export function Loading({ what }: { what: string }) {
  return (
    <div class="state state-loading" aria-busy="true" role="status">
      <span class="spinner" /> Loading {what}…
    </div>
  );
}

export function ErrorBox({ error, retry }: { error: unknown; retry?: () => void }) {
  const msg = error instanceof Error ? error.message : String(error);
  return (
    <div class="state state-error" role="alert">
      <b>Could not load:</b> {msg}
      {retry && (
        <button class="btn" onClick={retry}>
          Retry
        </button>
      )}
    </div>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <div class="state state-empty">{children}</div>;
}

const LABEL: Record<string, string> = {
  running: 'live',
  finished: 'finished',
  failed: 'failed',
  crashed: 'crashed',
  stale: 'stale',
  unknown: 'unknown',
};

/** How a run ended, where the state alone does not tell it. */
const ENDED: Record<string, string> = {
  stopped: 'stopped on request',
  killed: 'killed by a signal',
};

export function StatusBadge({
  state,
  endedBy,
  trashed,
  lastWrite,
}: {
  state: State | string;
  endedBy?: string | null;
  trashed?: boolean;
  lastWrite?: string | null;
}) {
  // A finished run that was asked to stop shows `stopped`; a failed one closed on a
  // signal shows `killed`.
  const ended = endedBy && ENDED[endedBy] ? endedBy : null;
  const shown = ended ?? state;
  const title = ended
    ? `state: ${state}, ${ENDED[ended]}`
    : state === 'stale'
      ? `stale: still marked running, but nothing written ${lastWrite ? `since ${fmtTime(lastWrite)}` : 'for a long time'}; ` +
        'its trainer left no way to tell whether it lives (goodseed 0.4.0 writes no heartbeat) and was most likely killed'
      : `state: ${state}`;
  return (
    <span class={`badge badge-${shown}`} title={title} data-state={state} data-ended-by={endedBy ?? undefined}>
      {state === 'running' && <i class="pulse" />}
      {ended ?? LABEL[state] ?? state}
      {trashed && <span class="badge-trashed"> · trashed</span>}
    </span>
  );
}

/** The result of an async load: data, error, loading; `reload` runs it again. */
export function useAsync<T>(load: () => Promise<T>, deps: unknown[]) {
  const [state, setState] = useState<{ data?: T; error?: unknown; loading: boolean }>({ loading: true });
  const [n, setN] = useState(0);
  useEffect(() => {
    let alive = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => alive && setState({ data, loading: false }),
      (error) => alive && setState({ error, loading: false }),
    );
    return () => {
      alive = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, n]);
  return { ...state, reload: () => setN((x) => x + 1), set: (data: T) => setState({ data, loading: false }) };
}

/** A value that follows `value` after it has stopped changing for `ms`. */
export function useDebounced<T>(value: T, ms: number): T {
  const [v, setV] = useState(value);
  useEffect(() => {
    const t = setTimeout(() => setV(value), ms);
    return () => clearTimeout(t);
  }, [value, ms]);
  return v;
}

/** A toast line at the bottom: the result of an action. */
let toastListener: ((m: { text: string; error: boolean } | null) => void) | null = null;
export function toast(text: string, error = false): void {
  toastListener?.({ text, error });
}
export function Toasts() {
  const [m, setM] = useState<{ text: string; error: boolean } | null>(null);
  useEffect(() => {
    toastListener = setM;
    return () => {
      toastListener = null;
    };
  }, []);
  useEffect(() => {
    if (!m) return;
    const t = setTimeout(() => setM(null), 4000);
    return () => clearTimeout(t);
  }, [m]);
  return m ? (
    <div class={`toast${m.error ? ' toast-error' : ''}`} role={m.error ? 'alert' : 'status'}>
      {m.text}
    </div>
  ) : null;
}
