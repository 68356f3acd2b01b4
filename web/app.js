// The dashboard page: polls /api/live and /api/alerts and keeps Chart.js charts updated in place.
'use strict';

// Longer ranges change slowly, so they poll less often.
const RANGES = [
  { id: 'live', label: 'Live', pollMs: 2000 },
  { id: '1h', label: '1h', pollMs: 10000 },
  { id: '3h', label: '3h', pollMs: 15000 },
  { id: '6h', label: '6h', pollMs: 30000 },
  { id: '12h', label: '12h', pollMs: 30000 },
  { id: '24h', label: '24h', pollMs: 60000 },
  { id: '7d', label: '7d', pollMs: 120000 },
  { id: '30d', label: '30d', pollMs: 300000 },
];
const REQUEST_TIMEOUT_MS = 10000;
const ALERTS_LIMIT = 20;
const ALERTS_EVERY_MS = 10000;
const DELIVERY_ATTEMPTS = 3;

const STATUS_COLOURS = {
  healthy: '#22c55e', down: '#ef4444', error: '#f97316', timeout: '#eab308', unknown: '#9ca3af',
};
const WORKER_COLOURS = { 200: '#22c55e', 220: '#eab308', 221: '#eab308', 500: '#ef4444', TIMEOUT: '#f97316' };
const SERIES_COLOURS = ['#38bdf8', '#a78bfa', '#f472b6', '#34d399', '#fbbf24', '#fb7185', '#60a5fa', '#c084fc', '#2dd4bf', '#facc15'];
const ACCENT = '#38bdf8';

// Chart.js objects must stay outside Alpine's reactive proxies: they hold canvases and cycles.
const charts = new Map();

function statusClass(status) {
  return Object.hasOwn(STATUS_COLOURS, status) ? status : 'unknown';
}

function alpha(hex, a) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${n >> 16}, ${(n >> 8) & 255}, ${n & 255}, ${a})`;
}

// A point between two empty buckets would be invisible with radius 0, so draw those.
function isolatedPointRadius(ctx) {
  const d = ctx.dataset.data;
  const i = ctx.dataIndex;
  return d[i] != null && d[i - 1] == null && d[i + 1] == null ? 2 : 0;
}

function lineOptions({ unit = ' ms', max, legend = false } = {}) {
  return {
    animation: false,
    responsive: true,
    maintainAspectRatio: false,
    spanGaps: 2, // bridge one missing bucket (grid jitter), show longer outages as gaps
    interaction: { mode: 'index', intersect: false },
    elements: { point: { radius: isolatedPointRadius, hitRadius: 6 }, line: { borderWidth: 2, tension: 0.25 } },
    scales: {
      x: { ticks: { maxTicksLimit: 6, maxRotation: 0 }, grid: { display: false } },
      y: { beginAtZero: true, max, ticks: { maxTicksLimit: 5, callback: (v) => v + unit } },
    },
    plugins: {
      legend: { display: legend, labels: { boxWidth: 12, filter: (item) => !item.text.startsWith('_') } },
      tooltip: { filter: (item) => !item.dataset.label.startsWith('_') },
    },
  };
}

function doughnutOptions() {
  return {
    animation: false,
    responsive: true,
    maintainAspectRatio: false,
    cutout: '62%',
    plugins: { legend: { position: 'bottom', labels: { boxWidth: 10 } } },
  };
}

function line(label, data, colour, extra = {}) {
  return { label, data, borderColor: colour, backgroundColor: alpha(colour, 0.15), fill: false, ...extra };
}

// Creates a chart the first time, afterwards swaps its data and redraws without animation.
function plot(key, canvas, type, makeOptions, labels, datasets) {
  if (!canvas) return;
  let chart = charts.get(key);
  if (chart && chart.canvas !== canvas) {
    chart.destroy(); // Alpine replaced the element (a service card was re-rendered)
    chart = undefined;
  }
  if (!chart) {
    charts.set(key, new Chart(canvas, { type, data: { labels, datasets }, options: makeOptions() }));
    return;
  }
  chart.data.labels = labels;
  const same = chart.data.datasets.length === datasets.length
    && datasets.every((d, i) => chart.data.datasets[i].label === d.label);
  if (same) datasets.forEach((d, i) => Object.assign(chart.data.datasets[i], d));
  else chart.data.datasets = datasets;
  chart.update('none');
}

function dropChartsExcept(prefix, keep) {
  for (const [key, chart] of charts) {
    if (key.startsWith(prefix) && !keep.has(key)) {
      chart.destroy();
      charts.delete(key);
    }
  }
}

// The band drawn around a service's average latency: the bucket's jitter (max − min), centred.
function jitterBand(avg, jitter) {
  const lower = avg.map((v, i) => (v == null || jitter[i] == null ? null : Math.max(0, v - jitter[i] / 2)));
  const upper = avg.map((v, i) => (v == null || jitter[i] == null ? null : v + jitter[i] / 2));
  return { lower, upper };
}

async function getJson(url) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), REQUEST_TIMEOUT_MS);
  try {
    const res = await fetch(url, { signal: ctl.signal, cache: 'no-store', headers: { Accept: 'application/json' } });
    let body = null;
    try { body = await res.json(); } catch { body = null; }
    return { status: res.status, body };
  } finally {
    clearTimeout(timer);
  }
}

function ago(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

function dashboard() {
  // Poll bookkeeping is not display state, so it lives here rather than on the reactive object.
  let timer = null;
  let busy = false;
  let rerun = false;
  let alertsAt = 0;

  return {
    ranges: RANGES,
    hostMetrics: [
      { key: 'cpu', label: 'CPU' },
      { key: 'ram', label: 'RAM' },
      { key: 'disk', label: 'Disk' },
    ],
    range: 'live',
    tab: 'general',
    data: null,
    alerts: [],
    alertsError: '',
    state: 'loading', // loading | ok | empty | unreachable
    failure: '',
    lastGoodAt: 0,
    now: Date.now(),
    hidden: document.hidden,

    init() {
      const fromHash = new URLSearchParams(location.hash.slice(1));
      if (RANGES.some((r) => r.id === fromHash.get('range'))) this.range = fromHash.get('range');
      if (fromHash.get('tab') === 'services') this.tab = 'services';
      this.$watch('tab', () => this.saveHash());
      setInterval(() => { this.now = Date.now(); }, 1000);
      document.addEventListener('visibilitychange', () => {
        this.hidden = document.hidden;
        if (document.hidden) {
          clearTimeout(timer);
          timer = null;
        } else {
          this.poll();
        }
      });
      this.poll();
    },

    saveHash() {
      history.replaceState(null, '', `#range=${this.range}&tab=${this.tab}`);
    },

    setRange(id) {
      if (id === this.range) return;
      this.range = id;
      this.saveHash();
      this.poll();
    },

    // One request at a time: a poll asked for while one runs is done right after it.
    async poll() {
      clearTimeout(timer);
      timer = null;
      if (busy) {
        rerun = true;
        return;
      }
      if (document.hidden) return;
      busy = true;
      try {
        await this.refresh();
      } finally {
        busy = false;
      }
      if (rerun) {
        rerun = false;
        this.poll();
      } else if (!document.hidden) {
        timer = setTimeout(() => this.poll(), this.pollMs);
      }
    },

    async refresh() {
      const range = this.range;
      let res;
      try {
        res = await getJson(`/api/live?range=${encodeURIComponent(range)}`);
      } catch {
        this.state = 'unreachable';
        this.failure = 'no answer';
        return;
      }
      if (range !== this.range) return; // the range changed meanwhile; the rerun fetches it
      if (res.status === 200 && res.body) {
        this.data = res.body;
        this.state = 'ok';
        this.lastGoodAt = Date.now();
        this.$nextTick(() => this.draw());
      } else if (res.status === 404 || res.status === 503) {
        this.state = 'empty';
        this.failure = (res.body && res.body.detail) || `HTTP ${res.status}`;
        return;
      } else {
        this.state = 'unreachable';
        this.failure = `HTTP ${res.status}`;
        return;
      }
      if (Date.now() - alertsAt >= Math.max(ALERTS_EVERY_MS, this.pollMs)) await this.refreshAlerts();
    },

    async refreshAlerts() {
      alertsAt = Date.now();
      try {
        const res = await getJson(`/api/alerts?limit=${ALERTS_LIMIT}`);
        if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
        const list = Array.isArray(res.body) ? res.body : (res.body && res.body.alerts) || [];
        this.alerts = list.slice(0, ALERTS_LIMIT);
        this.alertsError = '';
      } catch (e) {
        this.alertsError = `Alert history unavailable (${e.message}).`;
      }
    },

    draw() {
      const d = Alpine.raw(this.data);
      if (!d) return;
      const h = d.history;
      const labels = h.times;
      const root = this.$root;
      const canvas = (key) => root.querySelector(`canvas[data-chart="${CSS.escape(key)}"]`);

      for (const m of this.hostMetrics) {
        plot(`host-${m.key}`, canvas(`host-${m.key}`), 'line', () => lineOptions({ unit: ' %', max: 100 }), labels,
          [line(m.label, h.system[m.key], ACCENT, { fill: true })]);
      }
      plot('cycle', canvas('cycle'), 'line', () => lineOptions(), labels,
        [line('Cycle duration', h.cycle_duration, '#a78bfa', { fill: true })]);

      const pingBand = jitterBand(h.ping, h.ping_jitter || []);
      plot('ping', canvas('ping'), 'line', () => lineOptions(), labels, [
        line('_ping low', pingBand.lower, ACCENT, { borderWidth: 0, pointRadius: 0 }),
        line('_ping high', pingBand.upper, ACCENT, { borderWidth: 0, pointRadius: 0, fill: '-1' }),
        line('Ping', h.ping, ACCENT),
      ]);

      const dist = d.monitor.distribution || [];
      plot('worker-dist', canvas('worker-dist'), 'doughnut', doughnutOptions, dist.map((x) => x.name), [{
        label: 'Worker status',
        data: dist.map((x) => x.value),
        backgroundColor: dist.map((x) => WORKER_COLOURS[x.name] || STATUS_COLOURS.unknown),
        borderWidth: 0,
      }]);
      const counts = d.network.uptime_counts || { success: 0, failure: 0 };
      plot('internet', canvas('internet'), 'doughnut', doughnutOptions, ['up', 'down'], [{
        label: 'Internet checks',
        data: [counts.success, counts.failure],
        backgroundColor: [STATUS_COLOURS.healthy, STATUS_COLOURS.down],
        borderWidth: 0,
      }]);

      const names = d.services.map((s) => s.name);
      const series = h.services || {};
      const colour = (i) => SERIES_COLOURS[i % SERIES_COLOURS.length];
      // Services no longer checked keep their history until it leaves the range: dashed.
      plot('overview', canvas('overview'), 'line', () => lineOptions({ legend: true }), labels, [
        ...names.map((n, i) => line(n, series[n] || [], colour(i))),
        ...this.removedServices.map((n, i) => line(`${n} (no longer checked)`, series[n], colour(names.length + i),
          { borderDash: [6, 4] })),
      ]);

      const jitters = h.services_jitter || {};
      const keep = new Set();
      for (const svc of d.services) {
        const key = `svc:${svc.name}`;
        keep.add(key);
        const avg = series[svc.name] || [];
        const band = jitterBand(avg, jitters[svc.name] || []);
        const colour = STATUS_COLOURS[statusClass(svc.status)];
        plot(key, canvas(key), 'line', () => lineOptions({ legend: true }), labels, [
          line('_low', band.lower, colour, { borderWidth: 0, pointRadius: 0 }),
          line('Jitter band', band.upper, colour, { borderWidth: 0, pointRadius: 0, fill: '-1', backgroundColor: alpha(colour, 0.2) }),
          line('Avg latency', avg, colour),
        ]);
      }
      dropChartsExcept('svc:', keep);
    },

    get services() {
      return this.data ? this.data.services : [];
    },
    // Series in the history whose service is not in the newest cycle (taken out of the
    // configuration): the API keeps them while they have checks in the range.
    get removedServices() {
      if (!this.data) return [];
      const current = new Set(this.data.services.map((s) => s.name));
      return Object.keys(this.data.history.services || {}).filter((n) => !current.has(n));
    },
    get pollMs() {
      return RANGES.find((r) => r.id === this.range).pollMs;
    },
    get pollSeconds() {
      return this.pollMs / 1000;
    },
    get rangeLabel() {
      return RANGES.find((r) => r.id === this.range).label;
    },
    get stateText() {
      return {
        loading: 'Loading…',
        ok: 'Connected',
        empty: 'No data yet',
        unreachable: 'API unreachable',
      }[this.state];
    },
    get noticeTitle() {
      return this.state === 'empty' ? 'No data yet.' : 'Dashboard API unreachable.';
    },
    get noticeText() {
      if (this.state === 'empty') {
        return `The agent has not written a monitoring cycle yet (${this.failure}). This page retries every ${this.pollSeconds} s.`;
      }
      if (this.state !== 'unreachable') return '';
      const kept = this.lastGoodAt ? `Showing the last good data, fetched ${ago(this.now - this.lastGoodAt)}.` : 'Nothing to show yet.';
      return `${kept} Retrying every ${this.pollSeconds} s (${this.failure}).`;
    },
    get lastUpdatedText() {
      if (!this.data) return '—';
      const t = Date.parse(this.data.last_updated);
      if (Number.isNaN(t)) return this.data.last_updated;
      return `${new Date(t).toLocaleString()} (${ago(this.now - t)})`;
    },
    get workerText() {
      if (!this.data) return '—';
      const w = this.data.monitor.worker_status;
      return w == null ? 'worker: no answer' : `worker: ${w}`;
    },
    get workerClass() {
      const w = this.data && this.data.monitor.worker_status;
      if (w === 200) return 'st-healthy';
      if (w === 220 || w === 221) return 'st-timeout';
      return w == null ? 'st-unknown' : 'st-down';
    },
    get workerUptime() {
      const u = this.data && this.data.monitor.uptime;
      const v = u && u[this.range];
      return v == null ? '—' : this.pct(v);
    },

    statusClass,
    // Worker alerts carry HTTP-like codes rather than service statuses.
    alertClass(a) {
      if (a.item !== 'worker') return statusClass(a.new_status);
      if (a.new_status === '200') return 'healthy';
      return a.new_status === '220' || a.new_status === '221' ? 'timeout' : 'down';
    },
    pct(v) {
      return v == null ? '—' : `${Number(v).toFixed(1)} %`;
    },
    ms(v) {
      if (v == null) return '—';
      const n = Number(v);
      return `${n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : Math.round(n)} ms`;
    },
    statRows(stats) {
      const s = stats || {};
      return ['max', 'avg', 'min', 'jitter'].map((k) => ({ label: k[0].toUpperCase() + k.slice(1), value: this.ms(s[k]) }));
    },
    distribution(svc) {
      const entries = Object.entries(svc.stats.distribution || {}).filter(([, n]) => n > 0);
      const total = entries.reduce((sum, [, n]) => sum + n, 0) || 1;
      return entries
        .sort((a, b) => b[1] - a[1])
        .map(([status, count]) => ({ status, count, share: (100 * count) / total }));
    },
    when(iso) {
      const t = Date.parse(iso);
      return Number.isNaN(t) ? iso : new Date(t).toLocaleString();
    },
    delivery(a) {
      const late = a.redelivered_at ? ' (late: after an agent restart)' : '';
      if (a.delivered_at) return { cls: 'delivery-ok', text: `delivered ${this.when(a.delivered_at)}${late}` };
      if (a.delivery_state === 'given_up') return { cls: 'delivery-failed', text: `given up: ${a.last_error || 'too old after a restart'}` };
      if (a.delivery_state === 'pending' && (a.attempts > 0 || a.last_error)) {
        return { cls: 'delivery-pending', text: `interrupted (${a.last_error || 'agent stopped'}): sent at the agent's next start` };
      }
      if (a.attempts > 0) {
        const why = a.last_error ? `: ${a.last_error}` : '';
        return { cls: 'delivery-failed', text: `failed after ${a.attempts} attempt${a.attempts === 1 ? '' : 's'}${why}` };
      }
      if (a.last_error) return { cls: 'delivery-failed', text: `not sent: ${a.last_error}` };
      return { cls: 'delivery-pending', text: `pending (up to ${DELIVERY_ATTEMPTS} attempts)` };
    },
  };
}

document.addEventListener('alpine:init', () => {
  Chart.defaults.color = '#cbd5e1';
  Chart.defaults.borderColor = 'rgba(148, 163, 184, 0.18)';
  Chart.defaults.font.family = 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
  Alpine.data('dashboard', dashboard);
});
