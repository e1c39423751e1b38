// A run's configuration as a tree of its '/'-separated keys, searchable.
import { useMemo, useState } from 'preact/hooks';
import type { ConfigScalar } from '../api';
import { Empty } from './common';

interface Node {
  name: string;
  path: string;
  value?: ConfigScalar;
  children: Map<string, Node>;
}

function tree(config: Record<string, ConfigScalar>, needle: string): Node {
  const root: Node = { name: '', path: '', children: new Map() };
  for (const [key, value] of Object.entries(config)) {
    if (needle && !key.toLowerCase().includes(needle) && !valueText(value).toLowerCase().includes(needle)) continue;
    let node = root;
    const parts = key.split('/');
    parts.forEach((part, i) => {
      let child = node.children.get(part);
      if (!child) {
        child = { name: part, path: parts.slice(0, i + 1).join('/'), children: new Map() };
        node.children.set(part, child);
      }
      node = child;
    });
    node.value = value;
  }
  return root;
}

export function valueText(v: ConfigScalar | undefined): string {
  if (v === undefined) return '';
  if (v === null) return 'null';
  if (Array.isArray(v)) return `{${v.join(', ')}}`;
  return typeof v === 'string' ? v : String(v);
}

function NodeView({ node, depth, open }: { node: Node; depth: number; open: boolean }) {
  const [expanded, setExpanded] = useState(open || depth < 1);
  const kids = [...node.children.values()];
  if (!kids.length) {
    const long = typeof node.value === 'string' && (node.value.length > 120 || node.value.includes('\n'));
    return (
      <li class="leaf">
        <span class="key">{node.name}</span>
        {long ? (
          <details>
            <summary class="mono">{(node.value as string).slice(0, 80)}…</summary>
            <pre>{node.value as string}</pre>
          </details>
        ) : (
          <span class={`val mono val-${node.value === null ? 'null' : typeof node.value}`}>{valueText(node.value)}</span>
        )}
      </li>
    );
  }
  return (
    <li>
      <button class="node" aria-expanded={expanded} onClick={() => setExpanded(!expanded)}>
        {expanded ? '▾' : '▸'} {node.name} <span class="muted">({kids.length})</span>
      </button>
      {node.value !== undefined && <span class="val mono">{valueText(node.value)}</span>}
      {expanded && (
        <ul>
          {kids.map((k) => (
            <NodeView key={k.path} node={k} depth={depth + 1} open={open} />
          ))}
        </ul>
      )}
    </li>
  );
}

export function ConfigTree({ config }: { config: Record<string, ConfigScalar> }) {
  const [q, setQ] = useState('');
  const needle = q.trim().toLowerCase();
  const root = useMemo(() => tree(config, needle), [config, needle]);
  const kids = [...root.children.values()];
  return (
    <div class="config">
      <input type="search" placeholder="Search keys and values…" aria-label="Search config" value={q} onInput={(e) => setQ((e.target as HTMLInputElement).value)} />
      {kids.length === 0 ? (
        <Empty>{needle ? `No config key or value matches “${q}”.` : 'This run has no config.'}</Empty>
      ) : (
        <ul class="tree" key={needle}>
          {kids.map((k) => (
            <NodeView key={k.path} node={k} depth={0} open={!!needle} />
          ))}
        </ul>
      )}
    </div>
  );
}
