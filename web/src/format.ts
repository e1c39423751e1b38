// How numbers, times and durations are shown.

export function fmtNum(v: number | null | undefined): string {
  if (v === null || v === undefined) return '';
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '∞';
  if (v === -Infinity) return '-∞';
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(4);
  return String(Number(v.toPrecision(6)));
}

export function fmtTime(iso: string | null | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function fmtDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '';
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return h ? `${h}h ${m}m` : `${m}m ${r}s`;
}

/** Seconds between two ISO times, or from `a` to now when `b` is missing. */
export function durationOf(a: string | null | undefined, b: string | null | undefined): number | null {
  if (!a) return null;
  const start = Date.parse(a);
  const end = b ? Date.parse(b) : Date.now();
  return Number.isFinite(start) && Number.isFinite(end) ? (end - start) / 1000 : null;
}

/** A stable colour for the i-th run of a comparison (distinct, readable on light and dark). */
const PALETTE = [
  '#2f6fde', '#e0542f', '#1f9e6e', '#a347c9', '#d99a16', '#0fa3b8', '#d63f8c', '#6c8c1f',
  '#7a5cff', '#b5651d', '#3b9c3b', '#c2185b', '#00897b', '#8d6e63', '#5c6bc0', '#f4511e',
];
export function colorFor(i: number): string {
  return PALETTE[i % PALETTE.length];
}
