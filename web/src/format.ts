// How numbers, times and durations are shown.

export function fmtNum(v: number | null | undefined): string {
  if (v === null || v === undefined) return '';
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '∞';
  if (v === -Infinity) return '-∞';
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
  // Six significant digits, in the notation JavaScript picks (plain down to 1e-6): a
  // column of learning rates reads 0.0001, 0.001, 0.01, not 1.0000e-4 beside 0.001.
  return String(Number(v.toPrecision(6)));
}

/**
 * Axis tick labels: one notation for all the ticks of an axis, with just the digits that
 * tell them apart (0.0008, 0.001, 0.0012, not 0.001, 0.001, 0); exponents (1e-5) when
 * the ticks span decades, as on a log axis, or are very small or large.
 */
export function fmtTicks(all: (number | null)[]): string[] {
  // uPlot leaves out some ticks (null) on log axes: they read nothing.
  const ticks = all.filter((t): t is number => typeof t === 'number' && Number.isFinite(t));
  const each = (f: (t: number) => string) => all.map((t) => (typeof t === 'number' && Number.isFinite(t) ? f(t) : ''));
  const mags = ticks.filter((t) => t !== 0).map(Math.abs);
  if (mags.length === 0) return each((t) => fmtNum(t));
  const max = Math.max(...mags);
  const min = Math.min(...mags);
  // Labels must tell the ticks apart and say each one as it is (0.75, not 0.8).
  const fits = (f: (t: number) => string, close: (t: number, back: number) => boolean) =>
    new Set(ticks.map(f)).size === new Set(ticks).size && ticks.every((t) => close(t, Number(f(t))));
  // Whole numbers (steps) read plain.
  if (ticks.every((t) => Number.isInteger(t)) && max < 1e15) return each((t) => String(t));
  if (max >= 1e6 || max < 1e-3 || max / min >= 100) {
    for (let digits = 0; digits <= 8; digits++) {
      const f = (t: number) => (t === 0 ? '0' : trimExp(t.toExponential(digits)));
      if (fits(f, (t, back) => Math.abs(back - t) <= Math.abs(t) * 1e-9)) return each(f);
    }
    return each((t) => t.toExponential(8));
  }
  let step = Infinity;
  for (let i = 1; i < ticks.length; i++) step = Math.min(step, Math.abs(ticks[i] - ticks[i - 1]));
  if (!(step > 0 && Number.isFinite(step))) step = max;
  let decimals = Math.max(0, Math.ceil(-Math.log10(step) - 1e-9));
  for (; decimals <= 12; decimals++) {
    const f = (t: number) => t.toFixed(decimals);
    if (fits(f, (t, back) => Math.abs(back - t) <= step * 1e-6)) {
      // 0.5 rather than 0.50: the value is the same.
      return each((t) => {
        const text = f(t);
        return text.includes('.') ? text.replace(/0+$/, '').replace(/\.$/, '') : text;
      });
    }
  }
  return each((t) => fmtNum(t));
}

/** `1.50e-5` → `1.5e-5`, `1.00e+3` → `1e3`. */
function trimExp(text: string): string {
  const [mant, exp] = text.split('e');
  const m = mant.includes('.') ? mant.replace(/0+$/, '').replace(/\.$/, '') : mant;
  return `${m}e${Number(exp)}`;
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
