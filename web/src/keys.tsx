// Keyboard shortcuts: one listener for the page, actions that the view on screen takes
// up (`onKey`), and a help overlay (`?`). Keys typed into a field, or with Ctrl, Alt or
// Meta, are the field's and the browser's.
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { currentRoute, patchRoute } from './route';

export type KeyAction = 'next' | 'prev' | 'open' | 'select' | 'compare' | 'up';

/** The shortcuts, as the help overlay lists them. */
export const SHORTCUTS: [string, string][] = [
  ['j / ↓', 'next run (the table’s row, or the next run’s page)'],
  ['k / ↑', 'previous run'],
  ['Enter / o', 'open the run under the cursor'],
  ['x', 'select or unselect the run under the cursor'],
  ['c', 'compare the selected runs'],
  ['u', 'up: from a run or a comparison to its project’s runs'],
  ['/', 'search (the runs, the metrics, the logs)'],
  ['s', 'smoothing on or off'],
  ['l', 'log y on or off'],
  ['?', 'this help'],
  ['Esc', 'close this help'],
];

const handlers = new Map<KeyAction, Set<() => void>>();

/** Takes up a shortcut's action while the calling view is on screen; the latest `fn`
 * of the view's last render is the one called (a key pressed right after another sees
 * what the first changed). */
export function useKey(action: KeyAction, fn: () => void): void {
  const latest = useRef(fn);
  latest.current = fn;
  // Before the view is painted, so a key pressed as soon as it shows reaches it.
  useLayoutEffect(() => {
    let set = handlers.get(action);
    if (!set) handlers.set(action, (set = new Set()));
    const call = () => latest.current();
    set.add(call);
    return () => void set!.delete(call);
  }, [action]);
}

function fire(action: KeyAction): boolean {
  const set = handlers.get(action);
  if (!set || set.size === 0) return false;
  for (const fn of set) fn();
  return true;
}

function typing(target: EventTarget | null): boolean {
  const el = target as HTMLElement | null;
  if (!el) return false;
  return el.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(el.tagName);
}

/** The page's listener and its help overlay. */
export function Shortcuts() {
  const [help, setHelp] = useState(false);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') {
        setHelp(false);
        return;
      }
      if (e.ctrlKey || e.altKey || e.metaKey || typing(e.target)) return;
      const r = currentRoute();
      let done = true;
      switch (e.key) {
        case '?':
          setHelp((h) => !h);
          break;
        case 'j':
        case 'ArrowDown':
          done = fire('next');
          break;
        case 'k':
        case 'ArrowUp':
          done = fire('prev');
          break;
        case 'Enter':
        case 'o':
          // Enter on a focused link or button is theirs.
          done = e.key === 'o' || (e.target as HTMLElement | null)?.tagName === 'BODY' ? fire('open') : false;
          break;
        case 'x':
          done = fire('select');
          break;
        case 'c':
          done = fire('compare');
          break;
        case 'u':
          done = fire('up');
          break;
        case '/': {
          const search = document.querySelector<HTMLInputElement>('main input[type=search]');
          if (search) search.focus();
          done = !!search;
          break;
        }
        case 's':
          patchRoute({ smooth: r.smooth > 0 ? 0 : 0.6 });
          break;
        case 'l':
          patchRoute({ logy: !r.logy });
          break;
        default:
          done = false;
      }
      if (done) e.preventDefault();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);
  if (!help) return null;
  return (
    <div class="overlay" role="dialog" aria-modal="true" aria-label="Keyboard shortcuts" onClick={() => setHelp(false)}>
      <div class="overlay-box" onClick={(e) => e.stopPropagation()}>
        <header class="importance-head">
          <b>Keyboard shortcuts</b>
          <span class="spacer" />
          <button class="btn small" aria-label="Close shortcuts" onClick={() => setHelp(false)}>
            ×
          </button>
        </header>
        <table class="table shortcuts">
          <tbody>
            {SHORTCUTS.map(([k, what]) => (
              <tr>
                <td>
                  <kbd>{k}</kbd>
                </td>
                <td>{what}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}
