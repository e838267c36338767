// One time series as a uPlot line chart.
import { html } from './html.js';
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';

export function Chart({ title, points, unit = '' }) {
  const box = useRef(null);
  useEffect(() => {
    const xs = points.map((p) => Date.parse(p.time) / 1000);
    const ys = points.map((p) => p.value);
    const plot = new uPlot(
      {
        width: 360,
        height: 160,
        legend: { show: false },
        // always the last hour, so that a new tenant's few points sit at the right end
        scales: { x: { time: true, range: () => [Date.now() / 1000 - 3600, Date.now() / 1000] } },
        axes: [{ stroke: '#667' }, { stroke: '#667', size: 60 }],
        series: [{}, { label: title, stroke: '#2563eb', width: 2, fill: 'rgba(37, 99, 235, 0.12)', points: { show: points.length < 3 } }],
      },
      [xs, ys],
      box.current,
    );
    return () => plot.destroy();
  }, [JSON.stringify(points)]);
  const total = points.reduce((sum, p) => sum + p.value, 0);
  return html`<figure class="chart" data-points=${points.length}>
    <figcaption>${title} <span class="muted">(last hour, per minute; total ${formatNumber(total)}${unit})</span></figcaption>
    <div ref=${box}></div>
  </figure>`;
}

export function formatNumber(n) {
  if (n === null || n === undefined) return '–';
  if (Math.abs(n) >= 1000) return n.toLocaleString('en', { maximumFractionDigits: 0 });
  return n.toLocaleString('en', { maximumFractionDigits: n < 1 ? 4 : 2 });
}
