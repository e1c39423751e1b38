// Named views of a project, kept by the server (`/api/views`): a view is the screen's
// query string (columns, conditions, sort, groups, panels, the runs compared), saved
// under a name for the team and opened by it.
import { useState } from 'preact/hooks';
import * as api from '../api';
import { navigate, parseRoute } from '../route';
import { toast, useAsync } from './common';

export function ViewPicker({ project }: { project: string }) {
  const views = useAsync(() => api.views(project).catch(() => null), [project]);
  const [naming, setNaming] = useState(false);
  const [name, setName] = useState('');
  if (views.data === null) return null; // a server that keeps no views
  const save = async () => {
    const query = window.location.search.replace(/^\?/, '');
    try {
      await api.saveView(project, name.trim(), { query });
      toast(`View ${name.trim()} saved: open it from Views`);
      setNaming(false);
      setName('');
      views.reload();
    } catch (e) {
      toast(`Not saved: ${e instanceof Error ? e.message : e}`, true);
    }
  };
  const open = (v: api.View) => {
    try {
      const layout = JSON.parse(v.layout) as { query?: string };
      const route = parseRoute(`?${layout.query ?? ''}`);
      // A view of this project only.
      navigate({ ...route, project });
    } catch {
      toast(`View ${v.name} cannot be read`, true);
    }
  };
  return (
    <span class="views">
      <select
        aria-label="Views"
        value=""
        onChange={(e) => {
          const v = (views.data ?? []).find((x) => x.name === (e.target as HTMLSelectElement).value);
          if (v) open(v);
        }}
      >
        <option value="">views…</option>
        {(views.data ?? []).map((v) => (
          <option value={v.name}>{v.name}</option>
        ))}
      </select>
      {naming ? (
        <form
          class="view-name"
          onSubmit={(e) => {
            e.preventDefault();
            if (name.trim()) void save();
          }}
        >
          <input aria-label="View name" placeholder="name (letters, digits, . _ -)" value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
          <button class="btn small" type="submit" disabled={!name.trim()}>
            Save
          </button>
        </form>
      ) : (
        <button class="btn" title="Keep this screen (its columns, conditions, sort, groups, panels) as a named view of the project" onClick={() => setNaming(true)}>
          Save view…
        </button>
      )}
    </span>
  );
}
