// Exports made in the browser from what a view already holds: CSV text (RFC 4180
// quoting), a chart's canvas as PNG, and a chart redrawn as SVG (vector lines, axes'
// ends and labels), each saved as a download.

/** One CSV field: quoted when it holds a comma, a quote or a line break. */
export function csvField(v: unknown): string {
  if (v === null || v === undefined) return '';
  const text = typeof v === 'number' ? (Number.isFinite(v) ? String(v) : Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity') : String(v);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function csv(header: string[], rows: unknown[][]): string {
  return [header, ...rows].map((r) => r.map(csvField).join(',')).join('\r\n') + '\r\n';
}

/** Saves `blob` as a file named `name`. */
export function download(name: string, blob: Blob): void {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

/** A file name from a title: letters, digits, dots, dashes and underscores. */
export function fileName(title: string, ext: string): string {
  const base = title.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+|_+$/g, '') || 'goodseed';
  return `${base}.${ext}`;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export interface SvgLine {
  label: string;
  color: string;
  /** Points in plot pixels (x right, y down), null breaks the line. */
  points: ([number, number] | null)[];
}

/** A chart as SVG: frame, lines, the axes' ends and a legend. */
export function chartSvg(opts: {
  title: string;
  width: number;
  plot: { left: number; top: number; width: number; height: number };
  lines: SvgLine[];
  xRange: [string, string];
  yRange: [string, string];
  xLabel: string;
}): string {
  const { width, plot, lines } = opts;
  const legendY = plot.top + plot.height + 40;
  const total = legendY + 18 * Math.max(1, lines.length) + 8;
  const paths = lines.map((l) => {
    const segments: string[] = [];
    let current: string[] = [];
    for (const p of l.points) {
      if (!p) {
        if (current.length) segments.push(current.join(' '));
        current = [];
        continue;
      }
      current.push(`${current.length ? 'L' : 'M'}${(plot.left + p[0]).toFixed(1)},${(plot.top + p[1]).toFixed(1)}`);
    }
    if (current.length) segments.push(current.join(' '));
    return `<path d="${segments.join(' ')}" fill="none" stroke="${esc(l.color)}" stroke-width="1.6"><title>${esc(l.label)}</title></path>`;
  });
  const legend = lines.map(
    (l, i) =>
      `<rect x="${plot.left}" y="${legendY + 18 * i - 9}" width="10" height="10" fill="${esc(l.color)}"/><text x="${plot.left + 16}" y="${legendY + 18 * i}">${esc(l.label)}</text>`,
  );
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${total}" viewBox="0 0 ${width} ${total}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="${plot.left}" y="16" font-size="13" font-weight="bold">${esc(opts.title)}</text>`,
    `<rect x="${plot.left}" y="${plot.top}" width="${plot.width}" height="${plot.height}" fill="none" stroke="#bbb"/>`,
    `<defs><clipPath id="plot"><rect x="${plot.left}" y="${plot.top}" width="${plot.width}" height="${plot.height}"/></clipPath></defs>`,
    `<g clip-path="url(#plot)">${paths.join('')}</g>`,
    `<text x="${plot.left - 4}" y="${plot.top + 4}" text-anchor="end">${esc(opts.yRange[1])}</text>`,
    `<text x="${plot.left - 4}" y="${plot.top + plot.height}" text-anchor="end">${esc(opts.yRange[0])}</text>`,
    `<text x="${plot.left}" y="${plot.top + plot.height + 14}">${esc(opts.xRange[0])}</text>`,
    `<text x="${plot.left + plot.width}" y="${plot.top + plot.height + 14}" text-anchor="end">${esc(opts.xRange[1])}</text>`,
    `<text x="${plot.left + plot.width / 2}" y="${plot.top + plot.height + 14}" text-anchor="middle">${esc(opts.xLabel)}</text>`,
    ...legend,
    `</svg>`,
  ].join('\n');
}
