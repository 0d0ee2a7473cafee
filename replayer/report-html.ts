// The HTML latency report: one self-contained file (Chart.js inlined, no network needed to view
// it) with three charts (percentiles against speed with the budget lines, the latency
// distribution at each speed, queue depth over virtual time) and the table of rows.
//
// Everything that comes from a tape is escaped: text through escapeHtml, and the data the
// charts draw travels as JSON inside a <script type="application/json"> element with <, > and
// & written as \u escapes, so no string in a tape can close the element or inject markup.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { budgetLabel, type Budget, type BudgetKey } from './latency/budget.js';
import type { Headroom, RehearsalReport, RehearsalRow } from './rehearse.js';

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** JSON that is safe inside a <script> element: no "<", ">", "&" or line separators as such. */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

let chartJs: string | null = null;
function chartJsSource(): string {
  if (chartJs === null) {
    const require = createRequire(import.meta.url);
    // The package's exports hide dist/; its main entry sits beside the UMD build.
    chartJs = readFileSync(join(dirname(require.resolve('chart.js')), 'chart.umd.min.js'), 'utf8');
  }
  // A "</script" inside the library would end the element early; it has none, but make sure.
  return chartJs.replace(/<\/script/gi, '<\\/script');
}

/** What the report shows: a rehearsal, or a single replay as a one-row rehearsal. */
export type ReportInput = Pick<RehearsalReport, 'tape' | 'engine' | 'events' | 'serviceTime' | 'seed' | 'queueCapacity' | 'whenFull' | 'tickUs' | 'budgetLimits' | 'rows'> & {
  readonly headroom: Headroom | null;
  readonly recorded?: RehearsalReport['recorded'];
  readonly modelCapacity?: number | null;
};

const ms = (x: number): string => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : x.toPrecision(3));

function rowHtml(row: RehearsalRow, budget: Budget | null): string {
  const cell = (key: BudgetKey): string => {
    const limit = budget?.[key];
    const value = row.latencyMs[key];
    const over = limit !== undefined && value > limit;
    return `<td class="${over ? 'over' : ''}">${ms(value)}</td>`;
  };
  const verdict = budget === null ? '' : row.withinBudget ? '<td class="ok">within</td>' : '<td class="over">over</td>';
  return (
    `<tr><td>${row.speed}x</td>${cell('p50')}${cell('p95')}${cell('p99')}${cell('p999')}${cell('max')}${cell('mean')}` +
    `<td>${row.maxQueueDepth}</td><td>${ms(row.blockedMs)}</td><td>${row.dropped}</td>${verdict}</tr>`
  );
}

export function renderHtmlReport(input: ReportInput): string {
  const budget = input.budgetLimits;
  const data = {
    rows: input.rows.map((r) => ({ speed: r.speed, latencyMs: r.latencyMs, distribution: r.distribution, depthTimeline: r.depthTimeline })),
    budget: budget === null ? [] : Object.entries(budget).map(([k, v]) => ({ label: budgetLabel(k as BudgetKey), key: k, ms: v })),
  };
  const setup =
    `service time ${escapeHtml(input.serviceTime)}${input.seed === null ? '' : ` (seed ${input.seed})`}, queue ${input.queueCapacity} slots, ` +
    `when full: ${escapeHtml(input.whenFull)}, timestamp tick ${input.tickUs} µs`;
  const recorded =
    input.recorded === undefined
      ? ''
      : `<p>Recorded: ${input.recorded.events.toLocaleString('en-US')} events, mean ${input.recorded.meanRatePerSec.toLocaleString('en-US')} events/s, ` +
        `peak ${input.recorded.peakRatePerSec.toLocaleString('en-US')} events/s (over ${input.recorded.peakWindowMs} ms windows).` +
        (input.modelCapacity == null ? '' : ` Model capacity: ${input.modelCapacity}x the peak.`) +
        '</p>';
  const headroom = input.headroom === null ? '' : `<p class="headroom">Headroom: ${escapeHtml(input.headroom.note)}.</p>`;
  const budgetText =
    budget === null ? 'no budget given' : `budget ${Object.entries(budget).map(([k, v]) => `${budgetLabel(k as BudgetKey)} ≤ ${v} ms`).join(', ')}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<title>tapedeck latency report: ${escapeHtml(input.tape)}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1100px;color:#222}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse}td,th{padding:3px 10px;text-align:right;border-bottom:1px solid #ddd}
th{background:#f4f4f4}.over{color:#b00020;font-weight:600}.ok{color:#1b7f3a}
.chart{position:relative;height:360px}.headroom{font-weight:600}
</style></head><body>
<h1>Latency report: ${escapeHtml(input.tape)}</h1>
<p>Engine ${escapeHtml(input.engine.name)} ${escapeHtml(input.engine.version)}; ${input.events.toLocaleString('en-US')} events; ${setup}; ${escapeHtml(budgetText)}.</p>
${recorded}${headroom}
<table><thead><tr><th>speed</th><th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>max ms</th><th>mean ms</th><th>queue max</th><th>blocked ms</th><th>dropped</th>${budget === null ? '' : '<th>budget</th>'}</tr></thead>
<tbody>${input.rows.map((r) => rowHtml(r, budget)).join('\n')}</tbody></table>
<h2>Percentiles against speed</h2><div class="chart"><canvas id="chart-percentiles"></canvas></div>
<h2>Latency distribution at each speed</h2><div class="chart"><canvas id="chart-distribution"></canvas></div>
<h2>Queue depth over virtual time</h2><div class="chart"><canvas id="chart-depth"></canvas></div>
<script type="application/json" id="report-data">${scriptJson(data)}</script>
<script>${chartJsSource()}</script>
<script>${CHARTS_SCRIPT}</script>
</body></html>
`;
}

// Runs in the browser. Animation off, so each chart is drawn when it is constructed; every
// chart that drew is listed in window.tapedeckCharts (the test reads it).
const CHARTS_SCRIPT = `
(function () {
  var data = JSON.parse(document.getElementById('report-data').textContent);
  var colors = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
  var color = function (i) { return colors[i % colors.length]; };
  var base = { animation: false, responsive: true, maintainAspectRatio: false, parsing: false, normalized: true,
    plugins: { legend: { position: 'bottom' } } };
  var drawn = [];
  function make(id, config) {
    var chart = new Chart(document.getElementById(id), config);
    drawn.push({ id: id, datasets: chart.data.datasets.length, points: chart.data.datasets.reduce(function (n, d) { return n + d.data.length; }, 0) });
    return chart;
  }
  var keys = [['p50', 'p50'], ['p95', 'p95'], ['p99', 'p99'], ['p999', 'p99.9']];
  var speeds = data.rows.map(function (r) { return r.speed; });
  var lo = Math.min.apply(null, speeds), hi = Math.max.apply(null, speeds);
  var pct = keys.map(function (k, i) {
    return { label: k[1], borderColor: color(i), backgroundColor: color(i), data: data.rows.map(function (r) { return { x: r.speed, y: Math.max(r.latencyMs[k[0]], 1e-6) }; }) };
  });
  data.budget.forEach(function (b, i) {
    var match = keys.findIndex(function (k) { return k[0] === b.key; });
    pct.push({ label: 'budget ' + b.label + ' (' + b.ms + ' ms)', borderColor: match >= 0 ? color(match) : '#000', borderDash: [6, 4], pointRadius: 0, borderWidth: 1.5,
      data: [{ x: lo, y: b.ms }, { x: hi, y: b.ms }] });
  });
  make('chart-percentiles', { type: 'line', data: { datasets: pct }, options: Object.assign({}, base, {
    scales: { x: { type: 'linear', title: { display: true, text: 'speed (multiple of the recorded rate)' } },
              y: { type: 'logarithmic', ticks: logTicks, title: { display: true, text: 'latency, ms' } } } }) });
  var nines = function (p) { return p >= 100 ? 6 : -Math.log10(1 - p / 100); };
  // Log axes: label 1, 2 and 5 times each power of ten, compactly.
  var logTicks = { callback: function (v) { var m = v / Math.pow(10, Math.floor(Math.log10(v) + 1e-9)); return [1, 2, 5].some(function (k) { return Math.abs(m - k) < 1e-6; }) ? String(+v.toPrecision(3)) : ''; } };
  make('chart-distribution', { type: 'line', data: { datasets: data.rows.map(function (r, i) {
      return { label: r.speed + 'x', borderColor: color(i), backgroundColor: color(i), pointRadius: 2,
        data: r.distribution.filter(function (d) { return d.percentile >= 10; }).map(function (d) { return { x: nines(d.percentile), y: Math.max(d.ms, 1e-6) }; }) };
    }) }, options: Object.assign({}, base, {
    scales: { x: { type: 'linear', min: 0, max: 6, title: { display: true, text: 'percentile' },
                   ticks: { stepSize: 1, callback: function (v) { return ['0', '90', '99', '99.9', '99.99', '99.999', 'max'][v] || ''; } } },
              y: { type: 'logarithmic', ticks: logTicks, title: { display: true, text: 'latency, ms' } } } }) });
  make('chart-depth', { type: 'line', data: { datasets: data.rows.map(function (r, i) {
      var bin = r.depthTimeline.binMs / 1000;
      return { label: r.speed + 'x', borderColor: color(i), backgroundColor: color(i), pointRadius: 0, borderWidth: 1, stepped: true,
        data: r.depthTimeline.maxDepth.map(function (d, k) { return { x: k * bin, y: d }; }) };
    }) }, options: Object.assign({}, base, {
    scales: { x: { type: 'linear', title: { display: true, text: 'virtual time, s' } },
              y: { type: 'linear', min: 0, title: { display: true, text: 'largest queue depth' } } } }) });
  window.tapedeckCharts = drawn;
})();
`;
