// What the browser tests read to report the UI's performance figures.

/** Fetch timings, for the browser tests' performance figures. */
export const timings: { path: string; kind: 'overview' | 'zoom'; ms: number; at: number }[] = [];
(window as unknown as { __goodseedTimings: typeof timings }).__goodseedTimings = timings;

/** Marks the first time something is on screen, in ms since navigation (performance.now). */
export function mark(name: string): void {
  const w = window as unknown as { __goodseedMarks?: Record<string, number> };
  w.__goodseedMarks ??= {};
  w.__goodseedMarks[name] ??= performance.now();
}
