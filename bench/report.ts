// Figures to bench/results.json, a Markdown table and an SVG chart.
import { writeFileSync } from 'node:fs';

export interface Figure {
  label: string;
  unit: string;
  values: number[];
  /** extra facts for the table's notes column */
  note?: string;
}

export interface Summary {
  median: number;
  min: number;
  max: number;
  runs: number;
}

export function summarize(values: readonly number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0] ?? NaN, max: sorted.at(-1) ?? NaN, runs: sorted.length };
}

export interface SweepPoint {
  concurrency: number;
  spansPerSecond: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
}

export interface Machine {
  cores: number;
  cpu: string;
  node: string;
  platform: string;
  loadAverageAtStart: number[];
  loadAverageAtEnd: number[];
}

export interface Report {
  machine: Machine;
  mode: 'full' | 'quick';
  repeats: number;
  load: Record<string, unknown>;
  figures: Record<string, Figure & Summary>;
  ratios: Record<string, number>;
  sweep: SweepPoint[];
  verification: { acknowledged: number; stored: number };
}

const round = (n: number) => (Math.abs(n) >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(2));

export function markdown(report: Report): string {
  const m = report.machine;
  const lines = [
    `# Benchmark results (${report.mode} mode)`,
    '',
    `Machine: ${m.cores} cores (${m.cpu}), ${m.platform}, Node ${m.node}; load average ${m.loadAverageAtStart.map((l) => l.toFixed(2)).join(' ')} at start, ` +
      `${m.loadAverageAtEnd.map((l) => l.toFixed(2)).join(' ')} at end. Embedded ClickHouse (chdb) in the server process; load from a separate process.`,
    '',
    `Load: ${Object.entries(report.load)
      .map(([k, v]) => `${k} ${String(v)}`)
      .join(', ')}. Each figure is the median of ${report.repeats} run(s), with min and max. Reproduce: \`npm run bench\`.`,
    '',
    '| figure | median | min | max | unit | notes |',
    '|---|---:|---:|---:|---|---|',
    ...Object.values(report.figures).map((f) => `| ${f.label} | ${round(f.median)} | ${round(f.min)} | ${round(f.max)} | ${f.unit} | ${f.note ?? ''} |`),
    '',
    '| ratio (medians) | value |',
    '|---|---:|',
    ...Object.entries(report.ratios).map(([k, v]) => `| ${k} | ${(v * 100).toFixed(0)} % |`),
    '',
    `Every acknowledged span was counted in ClickHouse afterwards: ${report.verification.acknowledged.toLocaleString('en-US')} acknowledged, ` +
      `${report.verification.stored.toLocaleString('en-US')} stored.`,
  ];
  if (report.sweep.length > 0) {
    lines.push(
      '',
      '| concurrent senders | spans/s | p50 ms | p99 ms |',
      '|---:|---:|---:|---:|',
      ...report.sweep.map((p) => `| ${p.concurrency} | ${round(p.spansPerSecond)} | ${p.latencyP50Ms.toFixed(1)} | ${p.latencyP99Ms.toFixed(1)} |`),
      '',
      '![throughput and latency over load](results.svg)',
    );
  }
  return `${lines.join('\n')}\n`;
}

/** Two panels over the concurrency sweep: spans/s, and request latency p50/p99. */
export function svgChart(sweep: readonly SweepPoint[], title: string): string {
  const width = 720;
  const height = 300;
  const panel = { w: 300, h: 200, top: 50 };
  const lefts = [60, 420];
  const xs = sweep.map((p) => p.concurrency);
  const xOf = (left: number, c: number) => left + (panel.w * Math.log2(c / xs[0]!)) / Math.max(1, Math.log2(xs.at(-1)! / xs[0]!));
  const yOf = (v: number, max: number) => panel.top + panel.h - (panel.h * v) / (max || 1);
  const maxRate = Math.max(...sweep.map((p) => p.spansPerSecond)) * 1.1;
  const maxLatency = Math.max(...sweep.map((p) => p.latencyP99Ms)) * 1.1;
  const line = (left: number, values: number[], max: number, color: string) =>
    `<polyline fill="none" stroke="${color}" stroke-width="2" points="${values.map((v, i) => `${xOf(left, xs[i]!).toFixed(1)},${yOf(v, max).toFixed(1)}`).join(' ')}"/>` +
    values.map((v, i) => `<circle cx="${xOf(left, xs[i]!).toFixed(1)}" cy="${yOf(v, max).toFixed(1)}" r="3" fill="${color}"/>`).join('');
  const axes = (left: number, label: string, max: number) =>
    `<line x1="${left}" y1="${panel.top + panel.h}" x2="${left + panel.w}" y2="${panel.top + panel.h}" stroke="#333"/>` +
    `<line x1="${left}" y1="${panel.top}" x2="${left}" y2="${panel.top + panel.h}" stroke="#333"/>` +
    `<text x="${left}" y="${panel.top - 10}" font-size="12">${label}</text>` +
    `<text x="${left - 5}" y="${panel.top + 4}" font-size="10" text-anchor="end">${round(max)}</text>` +
    `<text x="${left - 5}" y="${panel.top + panel.h}" font-size="10" text-anchor="end">0</text>` +
    xs.map((c) => `<text x="${xOf(left, c).toFixed(1)}" y="${panel.top + panel.h + 15}" font-size="10" text-anchor="middle">${c}</text>`).join('') +
    `<text x="${left + panel.w / 2}" y="${panel.top + panel.h + 32}" font-size="11" text-anchor="middle">concurrent senders</text>`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="20" font-size="14" text-anchor="middle">${title}</text>`,
    axes(lefts[0]!, 'spans/s acknowledged', maxRate),
    line(lefts[0]!, sweep.map((p) => p.spansPerSecond), maxRate, '#1f77b4'),
    axes(lefts[1]!, 'request latency, ms (p50 blue, p99 red)', maxLatency),
    line(lefts[1]!, sweep.map((p) => p.latencyP50Ms), maxLatency, '#1f77b4'),
    line(lefts[1]!, sweep.map((p) => p.latencyP99Ms), maxLatency, '#d62728'),
    '</svg>',
  ].join('\n');
}

export function writeReport(report: Report, dir: string): void {
  writeFileSync(`${dir}/results.json`, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(`${dir}/results.md`, markdown(report));
  if (report.sweep.length > 1) writeFileSync(`${dir}/results.svg`, `${svgChart(report.sweep, 'End-to-end protobuf ingest over load')}\n`);
}
