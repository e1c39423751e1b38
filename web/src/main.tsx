// The Goodseed UI: one page application; the URL says which view (see route.ts).
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { Compare } from './components/Compare';
import { Toasts } from './components/common';
import { Projects } from './components/Projects';
import { RunPage } from './components/RunPage';
import { RunsTable } from './components/RunsTable';
import { Sweep } from './components/Sweep';
import { Shortcuts } from './keys';
import { linkProps, useRoute } from './route';
import './styles.css';

type Theme = 'auto' | 'light' | 'dark';

function useTheme(): [Theme, (t: Theme) => void] {
  const [theme, setTheme] = useState<Theme>(() => (localStorage.getItem('goodseed-theme') as Theme) || 'auto');
  useEffect(() => {
    localStorage.setItem('goodseed-theme', theme);
    const system = window.matchMedia('(prefers-color-scheme: dark)');
    const apply = () => {
      document.documentElement.dataset.theme = theme === 'auto' ? (system.matches ? 'dark' : 'light') : theme;
    };
    apply();
    system.addEventListener('change', apply);
    return () => system.removeEventListener('change', apply);
  }, [theme]);
  return [theme, setTheme];
}

function App() {
  const route = useRoute();
  const [theme, setTheme] = useTheme();
  let view;
  if (!route.project) view = <Projects />;
  else if (route.run) view = <RunPage key={`${route.project}/${route.run}`} route={route} />;
  else if (route.view === 'compare') view = <Compare route={route} />;
  else if (route.sweep) view = <Sweep key={`${route.project}/${route.sweep}`} route={route} />;
  else view = <RunsTable key={route.project} route={route} />;
  useEffect(() => {
    document.title = ['Goodseed', route.project, route.run ?? (route.view === 'compare' ? 'compare' : route.sweep && `sweep ${route.sweep}`)]
      .filter(Boolean)
      .join(' · ');
  }, [route.project, route.run, route.view, route.sweep]);
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <nav class="topbar" aria-label="Main">
        <a class="brand" {...linkProps({})}>
          <i class="seed" /> goodseed
        </a>
        <span class="spacer" />
        <button class="link muted shortcuts-link" title="Keyboard shortcuts (?)" onClick={() => window.dispatchEvent(new KeyboardEvent('keydown', { key: '?' }))}>
          Shortcuts
        </button>
        <a href="/api/openapi.json" class="muted">
          API
        </a>
        <label class="theme">
          <span class="sr-only">Theme</span>
          <select aria-label="Theme" value={theme} onChange={(e) => setTheme((e.target as HTMLSelectElement).value as Theme)}>
            <option value="auto">auto theme</option>
            <option value="light">light</option>
            <option value="dark">dark</option>
          </select>
        </label>
      </nav>
      <main id="main">{view}</main>
      <Toasts />
      <Shortcuts />
    </>
  );
}

// A server started with --token prints the UI's link as /?token=...: keep the token in a
// cookie the API accepts (EventSource cannot send headers), and take it out of the URL.
{
  const params = new URLSearchParams(window.location.search);
  const token = params.get('token');
  if (token) {
    // Encoded, so no character of it can end the cookie or start another attribute.
    document.cookie = `goodseed_token=${encodeURIComponent(token)}; path=/; SameSite=Strict`;
    params.delete('token');
    const rest = params.toString();
    history.replaceState(null, '', rest ? `/?${rest}` : '/');
  }
}

render(<App />, document.getElementById('app')!);
