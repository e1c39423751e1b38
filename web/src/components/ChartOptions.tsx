// The chart options every chart of a page shares: smoothing, log y, x axis. They live in
// the URL, so a view is shared with its options.
import { patchRoute, type Route } from '../route';

export function ChartOptions({ route }: { route: Route }) {
  return (
    <div class="chart-options" role="group" aria-label="Chart options">
      <label title="Exponential moving average weight">
        Smoothing
        <input
          type="range"
          min="0"
          max="0.99"
          step="0.01"
          aria-label="Smoothing"
          value={route.smooth}
          onInput={(e) => patchRoute({ smooth: Number((e.target as HTMLInputElement).value) })}
        />
        <output class="mono">{route.smooth.toFixed(2)}</output>
      </label>
      <label class="check">
        <input type="checkbox" checked={route.logy} onChange={(e) => patchRoute({ logy: (e.target as HTMLInputElement).checked })} />
        log y
      </label>
      <label>
        x axis
        <select aria-label="x axis" value={route.x} onChange={(e) => patchRoute({ x: (e.target as HTMLSelectElement).value as Route['x'] })}>
          <option value="step">step</option>
          <option value="wall">wall time</option>
          <option value="rel">relative time</option>
        </select>
      </label>
    </div>
  );
}
