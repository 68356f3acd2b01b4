// The dashboard page: polls /api/live and /api/alerts and keeps Chart.js charts updated in place.
// The current status (header, badges, summary) is refreshed every few seconds whatever the
// range; the history follows the range's own pace. On a fleet database (/api/hosts says
// `fleet`) with several hosts it opens on an overview of the hosts; a host's view is the same
// page with `host=` on every request, and the URL's `#host=` says which one.
'use strict';

// Longer ranges change slowly, so their history is fetched less often.
const RANGES = [
  { id: 'live', label: 'Live', pollMs: 2000 },
  { id: '1h', label: '1h', pollMs: 10000 },
  { id: '3h', label: '3h', pollMs: 15000 },
  { id: '6h', label: '6h', pollMs: 30000 },
  { id: '12h', label: '12h', pollMs: 30000 },
  { id: '24h', label: '24h', pollMs: 60000 },
  { id: '7d', label: '7d', pollMs: 120000 },
  { id: '30d', label: '30d', pollMs: 300000 },
  { id: '90d', label: '90d', pollMs: 600000 },
  { id: '1y', label: '1y', pollMs: 900000 },
];
// The current status is never older than this, whatever the range (a `live` request is cheap).
const CURRENT_EVERY_MS = 5000;
const REQUEST_TIMEOUT_MS = 10000;
const ALERTS_LIMIT = 20;
const ALERTS_EVERY_MS = 10000;
const INCIDENTS_LIMIT = 200;
const INCIDENTS_SHOWN = 8;
const DELIVERY_ATTEMPTS = 3;
// In a host's view the host list only feeds the switcher's stale marks: no need to be fresher.
const HOSTS_IN_VIEW_EVERY_MS = 10000;
// The overview draws at most this many services (the slowest), each in its own colour.
const OVERVIEW_MAX = 6;
// With more services than this the Services tab opens as a compact list.
const LIST_FROM = 7;

const STATUS_COLOURS = {
  healthy: '#22c55e', down: '#ef4444', error: '#f97316', timeout: '#eab308', unknown: '#9ca3af',
};
// Worst first: the colour of a timeline cell is its worst status.
const SEVERITY = ['down', 'error', 'timeout', 'unknown', 'healthy'];
const WORKER_COLOURS = { 200: '#22c55e', 220: '#eab308', 221: '#eab308', 500: '#ef4444', TIMEOUT: '#f97316' };
// Distinct hues, none of them a status colour, so a line never reads as a status.
const SERIES_COLOURS = ['#38bdf8', '#e879f9', '#2dd4bf', '#f1f5f9', '#818cf8', '#fda4af'];
const ACCENT = '#38bdf8';
const EMPTY_STATS = {
  uptime: null, success: 0, failure: 0, distribution: {}, max: null, avg: null, min: null, jitter: null,
  p50: null, p95: null, p99: null, latency_samples: 0,
};

// Chart.js objects must stay outside Alpine's reactive proxies: they hold canvases and cycles.
const charts = new Map();

function statusClass(status) {
  return Object.hasOwn(STATUS_COLOURS, status) ? status : 'unknown';
}

function alpha(hex, a) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${n >> 16}, ${(n >> 8) & 255}, ${n & 255}, ${a})`;
}

const pad = (n) => String(n).padStart(2, '0');
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
// One clock everywhere on the page: 24-hour local time.
function hhmm(ms) {
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
function dayMonth(ms) {
  const d = new Date(ms);
  return `${d.getDate()} ${MONTHS[d.getMonth()]}`;
}
function dateTime(ms) {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
function sameDay(a, b) {
  return new Date(a).toDateString() === new Date(b).toDateString();
}
// "14:32" today, "29 Nov 14:32" another day.
function shortWhen(ms, now = Date.now()) {
  return sameDay(ms, now) ? hhmm(ms) : `${dayMonth(ms)} ${hhmm(ms)}`;
}

// Tick steps in seconds; each divides a day (or is whole days), so ticks land on round times.
const TICK_STEPS = [60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800];

// Tick instants (epoch s) at round local times between min and max (epoch s): the smallest
// step that leaves every label room, aligned to local midnight.
function roundTicks(min, max, room) {
  const span = max - min;
  if (!(span > 0)) return [];
  const step = TICK_STEPS.find((s) => span / s <= room) || TICK_STEPS[TICK_STEPS.length - 1];
  const out = [];
  const day = new Date(min * 1000);
  day.setHours(0, 0, 0, 0);
  if (step >= 86400) {
    const days = step / 86400;
    // Count days from a fixed local date so a tick's day does not depend on the window's start.
    for (let d = new Date(day); d.getTime() / 1000 <= max; d.setDate(d.getDate() + 1)) {
      const t = d.getTime() / 1000;
      const n = Math.round((Date.UTC(d.getFullYear(), d.getMonth(), d.getDate()) / 86400000));
      if (t >= min && n % days === 0) out.push(t);
    }
    return out;
  }
  // Per local day, so a daylight-saving change does not shift the ticks off the hour.
  for (let d = new Date(day); d.getTime() / 1000 <= max; d.setDate(d.getDate() + 1)) {
    const midnight = d.getTime() / 1000;
    const next = new Date(d);
    next.setDate(next.getDate() + 1);
    for (let t = midnight; t < next.getTime() / 1000 && t <= max; t += step) {
      if (t >= min) out.push(t);
    }
  }
  return out;
}

// Labels for those ticks: times, with the date where the day changes (or dates alone).
function tickLabels(ticks, spansDays) {
  const step = ticks.length > 1 ? ticks[1] - ticks[0] : 0;
  return ticks.map((t, i) => {
    const ms = t * 1000;
    if (step >= 86400) return dayMonth(ms);
    if (spansDays && (i === 0 || !sameDay(ms, ticks[i - 1] * 1000))) return [hhmm(ms), dayMonth(ms)];
    return hhmm(ms);
  });
}

// A linear time axis (epoch seconds) whose ticks are computed above, never skipped by Chart.js.
function timeAxis() {
  return {
    type: 'linear',
    bounds: 'data', // the window's first and last bucket, not rounded outwards
    grid: { display: false },
    afterBuildTicks(scale) {
      const { min, max } = scale;
      const spansDays = !sameDay(min * 1000, max * 1000);
      // Room for each label: a time is ~5 characters; a date line or a date alone is wider.
      const labelPx = spansDays ? 64 : 52;
      const room = Math.max(1, Math.floor((scale.chart.width - 48) / labelPx));
      const ticks = roundTicks(min, max, room);
      scale.hbLabels = tickLabels(ticks, spansDays);
      scale.ticks = ticks.map((value) => ({ value }));
    },
    ticks: {
      autoSkip: false,
      maxRotation: 0,
      callback(value, index) {
        return this.hbLabels ? this.hbLabels[index] : hhmm(value * 1000);
      },
    },
  };
}

// A point between two empty buckets would be invisible with radius 0, so draw those.
function isolatedPointRadius(ctx) {
  const d = ctx.dataset.data;
  const i = ctx.dataIndex;
  return d[i] != null && d[i - 1] == null && d[i + 1] == null ? 2 : 0;
}

function lineOptions({ unit = ' ms', max, legend = false, log = false } = {}) {
  return {
    animation: false,
    responsive: true,
    maintainAspectRatio: false,
    spanGaps: true, // replaced per range: bridge one missing bucket, show longer outages as gaps
    interaction: { mode: 'index', intersect: false },
    elements: { point: { radius: isolatedPointRadius, hitRadius: 6 }, line: { borderWidth: 2, tension: 0.25 } },
    scales: {
      x: timeAxis(),
      y: log
        ? { type: 'logarithmic', ticks: { maxTicksLimit: 5, callback: (v) => (String(v)[0] === '1' || String(v)[0] === '5' ? v + unit : '') } }
        : { beginAtZero: true, max, ticks: { maxTicksLimit: 5, callback: (v) => v + unit } },
    },
    plugins: {
      legend: { display: legend, labels: { boxWidth: 12, filter: (item) => !item.text.startsWith('_') } },
      tooltip: {
        filter: (item) => !item.dataset.label.startsWith('_'),
        callbacks: { title: (items) => (items.length ? dateTime(items[0].parsed.x * 1000) : '') },
      },
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
// `summary` is the chart's text alternative (the numbers it shows).
function plot(key, canvas, type, makeOptions, labels, datasets, { summary, spanGaps, yType } = {}) {
  if (!canvas) return;
  if (summary) canvas.setAttribute('aria-label', summary);
  let chart = charts.get(key);
  if (chart && (chart.canvas !== canvas || (yType && chart.options.scales.y.type !== yType))) {
    chart.destroy(); // Alpine replaced the element (a service card was re-rendered), or the scale kind changed
    charts.delete(key);
    chart = undefined;
  }
  if (!chart) {
    const options = makeOptions();
    if (spanGaps != null) options.spanGaps = spanGaps;
    charts.set(key, new Chart(canvas, { type, data: { labels, datasets }, options }));
    return;
  }
  chart.data.labels = labels;
  if (spanGaps != null) chart.options.spanGaps = spanGaps;
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

// The latency band: the bucket's real min and max when the API has them, else (an older
// dashboard) the jitter centred on the average.
function band(avg, min, max, jitter) {
  if (min && max) return { lower: min, upper: max };
  const j = jitter || [];
  return {
    lower: avg.map((v, i) => (v == null || j[i] == null ? null : Math.max(0, v - j[i] / 2))),
    upper: avg.map((v, i) => (v == null || j[i] == null ? null : v + j[i] / 2)),
  };
}

// "min 5, max 40, average 12, latest 11 ms" over the non-empty buckets.
function seriesSummary(name, values, unit, timestamps) {
  const xs = (values || []).filter((v) => v != null);
  const span = timestamps && timestamps.length
    ? ` from ${shortWhen(timestamps[0] * 1000)} to ${shortWhen(timestamps[timestamps.length - 1] * 1000)}` : '';
  if (xs.length === 0) return `${name}${span}: no data.`;
  const fmt = (v) => `${Math.round(v * 10) / 10}${unit}`;
  const avg = xs.reduce((a, b) => a + b, 0) / xs.length;
  let last = null;
  for (let i = values.length - 1; i >= 0 && last == null; i--) last = values[i];
  return `${name}${span}, ${xs.length} of ${values.length} buckets with data: latest ${fmt(last)}, `
    + `min ${fmt(Math.min(...xs))}, max ${fmt(Math.max(...xs))}, average ${fmt(avg)}.`;
}

function worstStatus(counts) {
  if (!counts) return null;
  return SEVERITY.find((s) => counts[s] > 0) || 'unknown';
}

// Where the current bad run of a service began, from per-bucket status counts: walking back
// from the newest bucket while the buckets hold bad checks (empty buckets are skipped: no
// check, no evidence). `whole`: the run fills the window from its first bucket, so it began
// earlier; a run that reaches back to the first check in the window began there.
function badRunStart(timestamps, counts) {
  if (!timestamps || !counts) return null;
  let start = null;
  let first = null;
  for (let i = counts.length - 1; i >= 0; i--) {
    const c = counts[i];
    if (!c) continue;
    const total = Object.values(c).reduce((a, b) => a + b, 0);
    if (total - (c.healthy || 0) === 0) return start && { start, whole: false };
    start = timestamps[i];
    first = i;
    if (c.healthy) return { start, whole: false }; // it began inside this bucket
  }
  return start && { start, whole: first === 0 };
}

function sparkPath(values) {
  const xs = values || [];
  const present = xs.filter((v) => v != null);
  if (present.length === 0) return '';
  const hi = Math.max(...present);
  const lo = Math.min(...present);
  const w = xs.length > 1 ? 100 / (xs.length - 1) : 0;
  const y = (v) => (hi === lo ? 12 : 22 - ((v - lo) / (hi - lo)) * 20).toFixed(1);
  let d = '';
  let pen = false;
  xs.forEach((v, i) => {
    if (v == null) { pen = false; return; }
    d += `${pen ? 'L' : 'M'}${(i * w).toFixed(1)} ${y(v)} `;
    pen = true;
  });
  return d.trim();
}

// A host's uptime per six-minute block, oldest first (null: no checks), as steps: each block
// spans its own width, so a lone block shows as a segment and a block without checks as a gap.
// A fixed scale from 100 % down to 90 % (lower only when a block is lower): a host at 100 %
// draws a flat line at the top rather than a scaled-up wobble.
function uptimePath(values) {
  const xs = values || [];
  const present = xs.filter((v) => v != null);
  if (present.length === 0) return '';
  const lo = Math.min(90, ...present);
  const w = 100 / xs.length;
  const y = (v) => (2 + ((100 - v) / (100 - lo)) * 20).toFixed(1);
  let d = '';
  xs.forEach((v, i) => {
    if (v == null) return;
    const x0 = (i * w).toFixed(1);
    d += `${xs[i - 1] == null ? 'M' : 'L'}${x0} ${y(v)} L${((i + 1) * w).toFixed(1)} ${y(v)} `;
  });
  return d.trim();
}

function hostFragment(host, range, tab, view) {
  const h = host ? `host=${encodeURIComponent(host)}&` : '';
  return `#${h}range=${range}&tab=${tab}${view ? `&view=${view}` : ''}`;
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

function duration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

function ago(ms) {
  return `${duration(ms)} ago`;
}

// Roving focus for a tab list or a toolbar: arrows, Home and End move between the items.
function arrowTarget(e, items) {
  const i = items.indexOf(document.activeElement);
  if (i < 0) return null;
  const next = { ArrowRight: i + 1, ArrowDown: i + 1, ArrowLeft: i - 1, ArrowUp: i - 1, Home: 0, End: items.length - 1 }[e.key];
  if (next == null) return null;
  e.preventDefault();
  return items[(next + items.length) % items.length];
}

function dashboard() {
  // Poll bookkeeping is not display state, so it lives here rather than on the reactive object.
  let timer = null;
  let busy = false;
  let rerun = false;
  let alertsAt = 0;
  let historyAt = 0;
  let historyRange = null;
  let hostsAt = 0;

  return {
    ranges: RANGES,
    overviewSeconds: CURRENT_EVERY_MS / 1000,
    hostMetrics: [
      { key: 'cpu', label: 'CPU' },
      { key: 'ram', label: 'RAM' },
      { key: 'disk', label: 'Disk' },
    ],
    range: 'live',
    tab: 'general',
    view: '', // '' = by service count; 'list' | 'cards'
    filter: 'all', // all | failing
    search: '',
    data: null, // the range's answer (history and range totals)
    cur: null, // the newest current status, from whichever answer came last
    live: null, // the live range's per-bucket statuses, for "since when"
    svcList: [],
    alerts: [],
    alertsError: '',
    incidents: [],
    incidentsError: '',
    incidentsAll: false,
    state: 'loading', // loading | ok | empty | unreachable
    failure: '',
    lastGoodAt: 0,
    now: Date.now(),
    hidden: document.hidden,
    fleet: null, // unknown until /api/hosts answers; then true (a fleet database) or false (one host)
    hosts: [], // /api/hosts' list, sorted by name
    hostsFetchedAt: 0,
    host: '', // the host asked for by the URL (#host=); '' = the overview of a fleet
    missingHost: '', // a #host= the fleet does not have

    init() {
      const fromHash = new URLSearchParams(location.hash.slice(1));
      if (RANGES.some((r) => r.id === fromHash.get('range'))) this.range = fromHash.get('range');
      if (fromHash.get('tab') === 'services') this.tab = 'services';
      if (['list', 'cards'].includes(fromHash.get('view'))) this.view = fromHash.get('view');
      this.host = fromHash.get('host') || '';
      this.$watch('tab', () => { this.saveHash(); this.$nextTick(() => this.draw()); });
      this.$watch('view', () => { this.saveHash(); this.$nextTick(() => this.draw()); });
      this.$watch('filter', () => this.$nextTick(() => this.draw()));
      this.$watch('search', () => this.$nextTick(() => this.draw()));
      setInterval(() => { this.now = Date.now(); }, 1000);
      // A card, the switcher, "All hosts", back and forward all change the fragment.
      window.addEventListener('hashchange', () => {
        const h = new URLSearchParams(location.hash.slice(1));
        this.selectHost(h.get('host') || ''); // first: the range and tab below save the fragment
        if (RANGES.some((r) => r.id === h.get('range'))) this.setRange(h.get('range'));
        if (['general', 'services'].includes(h.get('tab'))) this.tab = h.get('tab');
      });
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
      history.replaceState(null, '', this.hostHref(this.fleet === false ? '' : this.host));
    },

    // The fragment of a host's view ('' = the overview) keeping the range, tab and layout.
    hostHref(name) {
      return hostFragment(name, this.range, this.tab, this.view);
    },

    // The switcher: a new history entry, so back returns to the host before.
    goHost(name) {
      location.hash = this.hostHref(name);
    },

    selectHost(name) {
      if (name === this.host) return;
      this.host = name;
      this.missingHost = '';
      // A host not in the list (a new one, or a wrong link): the list first, then its view.
      if (name && !this.hosts.some((h) => h.name === name)) hostsAt = 0;
      this.resetHostView();
      this.poll();
    },

    // Another host's view starts empty: nothing of the previous host may show under its name.
    resetHostView() {
      for (const chart of charts.values()) chart.destroy();
      charts.clear();
      Object.assign(this, {
        data: null, cur: null, live: null, svcList: [], alerts: [], alertsError: '', incidents: [],
        incidentsError: '', incidentsAll: false, search: '', filter: 'all', state: 'loading', failure: '', lastGoodAt: 0,
      });
      historyAt = 0;
      historyRange = null;
      alertsAt = 0;
    },

    setRange(id) {
      if (id === this.range) return;
      this.range = id;
      this.saveHash();
      alertsAt = 0; // the incidents follow the range
      this.poll();
    },

    tabKeys(e) {
      const tabs = [...e.currentTarget.querySelectorAll('[role="tab"]')];
      const to = arrowTarget(e, tabs);
      if (!to) return;
      this.tab = to.dataset.tab;
      to.focus();
    },

    toolbarKeys(e) {
      const to = arrowTarget(e, [...e.currentTarget.querySelectorAll('button')]);
      if (to) to.focus();
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
        timer = setTimeout(() => this.poll(), this.overview ? CURRENT_EVERY_MS : Math.min(this.pollMs, CURRENT_EVERY_MS));
      }
    },

    async refresh() {
      const hostsDue = this.fleet === null || this.overview
        || (this.fleet && Date.now() - hostsAt >= HOSTS_IN_VIEW_EVERY_MS);
      if (hostsDue && !(await this.refreshHosts()) && this.fleet === null) return;
      if (this.overview) return;
      const range = this.range;
      const host = this.apiHost;
      // The range's history when it is due; otherwise only the current status (range=live).
      const historyDue = historyRange !== range || Date.now() - historyAt >= this.pollMs - 250;
      const asked = historyDue ? range : 'live';
      let res;
      try {
        res = await getJson(`/api/live?range=${encodeURIComponent(asked)}${this.hostQuery}`);
      } catch {
        this.state = 'unreachable';
        this.failure = 'no answer';
        return;
      }
      // The range or the host changed meanwhile; the rerun fetches it.
      if (range !== this.range || host !== this.apiHost) return;
      if (res.status === 200 && res.body) {
        const body = res.body;
        if (historyDue) {
          this.data = body;
          historyAt = Date.now();
          historyRange = range;
        }
        if (asked === 'live') this.live = { timestamps: body.history.timestamps, status: body.history.services_status || {} };
        this.cur = {
          last_updated: body.last_updated,
          freshness: body.freshness || null,
          system: body.system,
          worker_status: body.monitor.worker_status,
          internet_status: body.network.internet_status,
          services: body.services,
          fetchedAt: Date.now(),
        };
        this.state = 'ok';
        this.lastGoodAt = Date.now();
        this.rebuild();
        if (historyDue) this.$nextTick(() => this.draw());
      } else if (res.status === 404 || res.status === 503) {
        this.state = 'empty';
        this.failure = (res.body && res.body.detail) || `HTTP ${res.status}`;
        return;
      } else {
        this.state = 'unreachable';
        this.failure = `HTTP ${res.status}`;
        return;
      }
      // "Since when" is precise from the live range's 10-second buckets: fetch them once at
      // once after a longer range's first answer, rather than at the next tick.
      if (asked !== 'live' && !this.live) await this.refreshLive();
      if (Date.now() - alertsAt >= ALERTS_EVERY_MS) await this.refreshAlerts();
    },

    async refreshLive() {
      try {
        const host = this.apiHost;
        const res = await getJson(`/api/live?range=live${this.hostQuery}`);
        if (res.status === 200 && res.body && host === this.apiHost) {
          this.live = { timestamps: res.body.history.timestamps, status: res.body.history.services_status || {} };
        }
      } catch {
        // the next tick retries; the coarser buckets answer meanwhile
      }
    },

    // The services of the newest cycle with their range totals.
    rebuild() {
      const inRange = new Map(((this.data && this.data.services) || []).map((s) => [s.name, s]));
      this.svcList = ((this.cur && this.cur.services) || []).map((c, order) => {
        const r = inRange.get(c.name);
        return { ...c, stats: r ? r.stats : EMPTY_STATS, order, failing: c.status !== 'healthy' };
      });
    },

    // "(2) Heartbeat Monitor": failing services, or on the overview hosts stale or failing
    // (a host turns stale between two polls as its age passes the threshold: x-effect follows).
    get pageTitle() {
      if (this.overview) {
        const n = this.hosts.filter((h) => this.hostStale(h) || h.services.healthy < h.services.total).length;
        return `${n > 0 ? `(${n}) ` : ''}All hosts · Heartbeat Monitor`;
      }
      const n = this.failing.length;
      const on = this.fleetMany && this.apiHost ? `${this.apiHost} · ` : '';
      return `${n > 0 ? `(${n}) ` : ''}${on}Heartbeat Monitor`;
    },

    // The fleet's hosts. false when nothing was learnt (kept as it was).
    async refreshHosts() {
      hostsAt = Date.now();
      const loud = this.fleet === null || this.overview;
      let res;
      try {
        res = await getJson('/api/hosts');
      } catch {
        if (loud) Object.assign(this, { state: 'unreachable', failure: 'no answer' });
        return false;
      }
      if (res.status !== 200 || !res.body) {
        if (loud) Object.assign(this, { state: 'unreachable', failure: `HTTP ${res.status}` });
        return false;
      }
      const wasOverview = this.overview;
      this.fleet = res.body.fleet === true;
      this.hosts = this.fleet && Array.isArray(res.body.hosts) ? res.body.hosts : [];
      this.hostsFetchedAt = Date.now();
      // A lone host's view when a second host appears: the overview, without the lone host's data.
      if (this.overview && !wasOverview) this.resetHostView();
      if (this.host && !this.hosts.some((h) => h.name === this.host)) {
        // On one host (or a lone fleet host) there is nothing else to show; otherwise say so.
        this.missingHost = this.fleet && this.hosts.length > 1 ? this.host : '';
        this.host = '';
        this.resetHostView();
        this.saveHash();
      }
      if (this.overview) {
        Object.assign(this, { state: 'ok', failure: '', lastGoodAt: Date.now() });
      }
      return true;
    },

    async refreshAlerts() {
      alertsAt = Date.now();
      await this.refreshIncidents();
      try {
        const host = this.apiHost;
        const res = await getJson(`/api/alerts?limit=${ALERTS_LIMIT}${this.hostQuery}`);
        if (host !== this.apiHost) return;
        if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
        const list = Array.isArray(res.body) ? res.body : (res.body && res.body.alerts) || [];
        this.alerts = list.slice(0, ALERTS_LIMIT);
        this.alertsError = '';
      } catch (e) {
        this.alertsError = `Alert history unavailable (${e.message}).`;
      }
    },

    // The outages of the range, from the data (runs of bad checks), not only from alerts.
    async refreshIncidents() {
      try {
        const host = this.apiHost;
        const res = await getJson(`/api/incidents?range=${encodeURIComponent(this.range)}&limit=${INCIDENTS_LIMIT}${this.hostQuery}`);
        if (host !== this.apiHost) return;
        if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
        this.incidents = (res.body && res.body.incidents) || [];
        this.incidentsError = '';
      } catch (e) {
        this.incidentsError = `Incidents unavailable (${e.message}).`;
      }
    },
    // The first few, ongoing ones first; all of them on request.
    get incidentsShown() {
      const sorted = [...this.incidents].sort((a, b) => (b.ongoing - a.ongoing) || (b.started - a.started));
      return this.incidentsAll ? sorted : sorted.slice(0, INCIDENTS_SHOWN);
    },
    incidentEnd(i) {
      if (i.ongoing) return 'ongoing';
      if (i.ended == null) return 'no longer checked';
      return `until ${dateTime(i.ended * 1000)}`;
    },
    incidentStatuses(i) {
      return Object.entries(i.statuses || {}).map(([k, n]) => `${k} ${n}`).join(', ');
    },

    draw() {
      const d = Alpine.raw(this.data);
      if (!d) return;
      const h = d.history;
      const labels = h.timestamps || h.times.map((_, i) => i);
      const width = labels.length > 1 ? labels[1] - labels[0] : 1;
      const gaps = { spanGaps: 2 * width }; // bridge one missing bucket
      const root = this.$root;
      const canvas = (key) => root.querySelector(`canvas[data-chart="${CSS.escape(key)}"]`);
      const sum = (name, values, unit) => seriesSummary(name, values, unit, labels);

      for (const m of this.hostMetrics) {
        plot(`host-${m.key}`, canvas(`host-${m.key}`), 'line', () => lineOptions({ unit: ' %', max: 100 }), labels,
          [line(m.label, h.system[m.key], ACCENT, { fill: true })], { ...gaps, summary: sum(m.label, h.system[m.key], ' %') });
      }
      plot('cycle', canvas('cycle'), 'line', () => lineOptions(), labels,
        [line('Cycle duration', h.cycle_duration, '#a78bfa', { fill: true })], { ...gaps, summary: sum('Cycle duration', h.cycle_duration, ' ms') });

      const pingBand = band(h.ping, h.ping_min, h.ping_max, h.ping_jitter);
      plot('ping', canvas('ping'), 'line', () => lineOptions(), labels, [
        line('_ping low', pingBand.lower, ACCENT, { borderWidth: 0, pointRadius: 0 }),
        line('_ping high', pingBand.upper, ACCENT, { borderWidth: 0, pointRadius: 0, fill: '-1' }),
        line('Ping', h.ping, ACCENT),
      ], { ...gaps, summary: sum('Ping', h.ping, ' ms') });

      const dist = d.monitor.distribution || [];
      plot('worker-dist', canvas('worker-dist'), 'doughnut', doughnutOptions, dist.map((x) => x.name), [{
        label: 'Worker status',
        data: dist.map((x) => x.value),
        backgroundColor: dist.map((x) => WORKER_COLOURS[x.name] || STATUS_COLOURS.unknown),
        borderWidth: 0,
      }], { summary: `Worker status over the range: ${dist.map((x) => `${x.name}: ${x.value} cycles`).join(', ') || 'no data'}.` });
      const counts = d.network.uptime_counts || { success: 0, failure: 0 };
      plot('internet', canvas('internet'), 'doughnut', doughnutOptions, ['up', 'down'], [{
        label: 'Internet checks',
        data: [counts.success, counts.failure],
        backgroundColor: [STATUS_COLOURS.healthy, STATUS_COLOURS.down],
        borderWidth: 0,
      }], { summary: `Internet checks over the range: ${counts.success} up, ${counts.failure} down.` });

      const series = h.services || {};
      const shown = this.overviewServices;
      const overview = [
        ...shown.map((n, i) => line(n, series[n] || [], SERIES_COLOURS[i % SERIES_COLOURS.length])),
        ...this.removedServices.map((n, i) => line(`${n} (no longer checked)`, series[n],
          SERIES_COLOURS[(shown.length + i) % SERIES_COLOURS.length], { borderDash: [6, 4] })),
      ];
      const log = this.overviewLog;
      plot('overview', canvas('overview'), 'line', () => lineOptions({ legend: true, log }), labels, overview, {
        ...gaps,
        yType: log ? 'logarithmic' : 'linear',
        summary: overview.map((l) => sum(`Average latency of ${l.label}`, l.data, ' ms')).join(' '),
      });

      const keep = new Set();
      for (const svc of this.shownServices) {
        const key = `svc:${svc.name}`;
        const c = canvas(key);
        if (!c) continue;
        keep.add(key);
        const avg = series[svc.name] || [];
        const b = band(avg, h.services_min && (h.services_min[svc.name] || []),
          h.services_max && (h.services_max[svc.name] || []), (h.services_jitter || {})[svc.name]);
        const sets = [
          line('_low', b.lower, ACCENT, { borderWidth: 0, pointRadius: 0 }),
          line('Min–max band', b.upper, ACCENT, { borderWidth: 0, pointRadius: 0, fill: '-1', backgroundColor: alpha(ACCENT, 0.2) }),
          line('Avg latency', avg, ACCENT),
        ];
        // The threshold line only where it is in view of the data: far above, it would flatten it.
        const top = Math.max(0, ...b.upper.filter((v) => v != null));
        if (svc.slow_ms != null && top >= svc.slow_ms / 2) {
          sets.push(line('Slow above', avg.map(() => svc.slow_ms), '#e879f9', { borderWidth: 1, borderDash: [4, 4], pointRadius: 0 }));
        }
        plot(key, c, 'line', () => lineOptions({ legend: true }), labels, sets, {
          ...gaps, summary: sum(`Average latency of ${svc.name}`, avg, ' ms'),
        });
      }
      dropChartsExcept('svc:', keep);
    },

    get services() {
      return this.svcList;
    },
    get failing() {
      return this.svcList.filter((s) => s.failing);
    },
    get slowServices() {
      return this.svcList.filter((s) => s.slow);
    },
    // Failing first (in the API's order), then the rest; filtered by the controls.
    get sortedServices() {
      return [...this.svcList].sort((a, b) => (b.failing - a.failing) || (a.order - b.order));
    },
    get shownServices() {
      const q = this.search.trim().toLowerCase();
      return this.sortedServices.filter((s) => (this.filter === 'all' || s.failing)
        && (!q || s.name.toLowerCase().includes(q)));
    },
    get viewMode() {
      return this.view || (this.svcList.length >= LIST_FROM ? 'list' : 'cards');
    },
    // The slowest few by average latency over the range, in the API's order.
    get overviewServices() {
      if (!this.data) return [];
      const all = this.data.services;
      if (all.length <= OVERVIEW_MAX) return all.map((s) => s.name);
      const slowest = new Set([...all].sort((a, b) => (b.stats.avg || 0) - (a.stats.avg || 0))
        .slice(0, OVERVIEW_MAX).map((s) => s.name));
      return all.filter((s) => slowest.has(s.name)).map((s) => s.name);
    },
    // A log scale when the drawn services' latencies differ by more than ten times.
    get overviewLog() {
      if (!this.data) return false;
      const avgs = this.data.services.filter((s) => this.overviewServices.includes(s.name))
        .map((s) => s.stats.avg).filter((v) => v > 0);
      return avgs.length > 1 && Math.max(...avgs) / Math.min(...avgs) > 10;
    },
    get overviewNote() {
      if (!this.data) return '';
      const total = this.data.services.length;
      const parts = [];
      if (total > OVERVIEW_MAX) parts.push(`The ${OVERVIEW_MAX} slowest of ${total} services by average latency; every service is on the Services tab.`);
      if (this.overviewLog) parts.push('Logarithmic scale.');
      return parts.join(' ');
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
    // The overview: a fleet of several hosts (or none yet) and no host chosen.
    get overview() {
      return this.fleet === true && this.host === '' && this.hosts.length !== 1;
    },
    get fleetMany() {
      return this.fleet === true && this.hosts.length > 1;
    },
    // The host every request of a host's view names; '' on one SQLite file (where `host` is refused).
    get apiHost() {
      if (this.fleet !== true) return '';
      if (this.host) return this.host;
      return this.hosts.length === 1 ? this.hosts[0].name : '';
    },
    get hostQuery() {
      return this.apiHost ? `&host=${encodeURIComponent(this.apiHost)}` : '';
    },
    // The newest cycle's age now: the API's age plus the time since it answered.
    hostAgeMs(h) {
      return h.age_seconds == null ? null : h.age_seconds * 1000 + Math.max(0, this.now - this.hostsFetchedAt);
    },
    // The API's word, or stale once the age passes the host's threshold between two polls
    // (or while the API does not answer).
    hostStale(h) {
      const age = this.hostAgeMs(h);
      return h.state !== 'up' || age == null || age > h.stale_after_seconds * 1000;
    },
    hostStateText(h) {
      const age = this.hostAgeMs(h);
      return `${this.hostStale(h) ? 'stale' : 'up'} · ${age == null ? 'no cycle yet' : ago(age)}`;
    },
    hostServicesText(h) {
      const s = h.services;
      return s.total === 0 ? 'no services' : `${s.healthy}/${s.total} services healthy`;
    },
    hostWorstClass(h) {
      return h.worst_status ? statusClass(h.worst_status) : 'none';
    },
    // "1 down, 1 error": the bad statuses of the newest cycle, worst first.
    hostBadText(h) {
      return SEVERITY.filter((st) => st !== 'healthy' && h.services[st] > 0).map((st) => `${h.services[st]} ${st}`).join(', ');
    },
    hostLabel(h) {
      const worst = h.worst_status ? `, worst status ${h.worst_status}` : '';
      const bad = this.hostBadText(h);
      return `${h.name}: ${this.hostStateText(h)}, ${this.hostServicesText(h)}${worst}${bad ? ` (${bad})` : ''}.`;
    },
    // The switcher's option: stale hosts marked, so the choice shows before it is made.
    hostOption(h) {
      const bad = h.services.total - h.services.healthy;
      return `${h.name}${this.hostStale(h) ? ' (stale)' : ''}${bad > 0 ? ` · ${bad} failing` : ''}`;
    },
    uptimePath,
    uptimeLabel(h) {
      const xs = h.uptime_1h || [];
      const blocks = xs.map((v) => (v == null ? 'no checks' : this.pct(v))).join(', ');
      return `Healthy checks of ${h.name} per six minutes over the last hour, oldest first: ${blocks || 'no data'}.`;
    },
    // The lowest six-minute block of the hour: one number that says whether the line dipped.
    uptimeLow(h) {
      const xs = (h.uptime_1h || []).filter((v) => v != null);
      return xs.length ? `lowest ${this.pct(Math.min(...xs))}` : 'no checks';
    },
    get fleetCounts() {
      const stale = this.hosts.filter((h) => this.hostStale(h)).length;
      const failing = this.hosts.filter((h) => h.services.healthy < h.services.total).length;
      return { total: this.hosts.length, up: this.hosts.length - stale, stale, failing };
    },
    get fleetTitle() {
      const c = this.fleetCounts;
      if (c.total === 0) return 'No host has shipped a cycle yet.';
      const parts = [`${c.up} up`];
      if (c.stale) parts.push(`${c.stale} stale`);
      parts.push(c.failing ? `${c.failing} with failing services` : 'no failing services');
      return `${c.total} hosts: ${parts.join(', ')}`;
    },
    get stale() {
      return !!(this.cur && this.cur.freshness && this.cur.freshness.stale);
    },
    // The newest cycle's age now: the API's age plus the time since it answered.
    get ageMs() {
      const f = this.cur && this.cur.freshness;
      if (!f || f.age_seconds == null) return null;
      return f.age_seconds * 1000 + (this.now - this.cur.fetchedAt);
    },
    get newestMs() {
      if (!this.cur) return null;
      const f = this.cur.freshness;
      if (f && f.last_cycle_ms != null) return f.last_cycle_ms;
      const t = Date.parse(this.cur.last_updated);
      return Number.isNaN(t) ? null : t;
    },
    get staleText() {
      if (!this.stale) return '';
      const age = this.ageMs == null ? 'a while' : duration(this.ageMs);
      const from = this.newestMs == null ? this.cur.last_updated : shortWhen(this.newestMs, this.now);
      const on = this.fleetMany ? ` on ${this.apiHost}` : '';
      return `Agent${on} not reporting for ${age}: statuses below are from ${from}.`;
    },
    get staleDetail() {
      const f = this.cur && this.cur.freshness;
      if (!f) return '';
      const every = f.interval_seconds == null ? 'an unknown interval' : `every ${f.interval_seconds} s`;
      return `The agent wrote cycles ${every}; data older than ${f.stale_after_seconds} s is stale. Check that the agent (heartbeat agent) is running.`;
    },
    get summaryText() {
      const n = this.svcList.length;
      if (n === 0) return 'No services in the newest cycle.';
      const bad = this.failing.length;
      const head = bad === 0 ? `All ${n} services healthy` : `${bad} of ${n} failing`;
      return this.stale ? `${head} (as of ${shortWhen(this.newestMs, this.now)})` : head;
    },
    // Since when a failing service has been bad: the live window's 10-second buckets when the
    // run began within it, else the range's buckets (coarser), else "over the whole range".
    since(svc) {
      const fine = this.live && badRunStart(this.live.timestamps, this.live.status[svc.name]);
      if (fine && !fine.whole) return `since ${shortWhen(fine.start * 1000, this.now)}`;
      const h = this.data && this.data.history;
      const coarse = h && h.services_status && badRunStart(h.timestamps, h.services_status[svc.name]);
      if (coarse && !coarse.whole) {
        const width = h.timestamps[1] - h.timestamps[0];
        return `since ${width > 60 ? '≈' : ''}${shortWhen(coarse.start * 1000, this.now)}`;
      }
      if (coarse && coarse.whole) return `for over ${this.rangeLabel === 'Live' ? '5 min' : this.rangeLabel}`;
      if (fine) return 'for over 5 min';
      return '';
    },
    get stateText() {
      if (this.state === 'ok' && this.stale) return 'Agent not reporting';
      return {
        loading: 'Loading…',
        ok: 'Connected',
        empty: 'No data yet',
        unreachable: 'API unreachable',
      }[this.state];
    },
    get connClass() {
      return this.state === 'ok' && this.stale ? 'conn-stale' : `conn-${this.state}`;
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
      return `${kept} Retrying every ${Math.min(this.pollMs, CURRENT_EVERY_MS) / 1000} s (${this.failure}).`;
    },
    get lastUpdatedText() {
      if (!this.cur) return '—';
      const t = this.newestMs;
      if (t == null) return this.cur.last_updated;
      return `${dateTime(t)} (${ago(this.ageMs == null ? this.now - t : this.ageMs)})`;
    },
    get workerText() {
      if (!this.cur) return '—';
      const w = this.cur.worker_status;
      return w == null ? 'worker: no answer' : `worker: ${w}`;
    },
    get workerClass() {
      const w = this.cur && this.cur.worker_status;
      if (w === 200) return 'st-healthy';
      if (w === 220 || w === 221) return 'st-timeout';
      return w == null ? 'st-unknown' : 'st-down';
    },
    get workerUptime() {
      const u = this.data && this.data.monitor.uptime;
      const v = u && u[this.range];
      const cycles = this.data ? this.data.monitor.distribution.reduce((n, x) => n + x.value, 0) : 0;
      return v == null || cycles === 0 ? '—' : this.pct(v);
    },

    // One cell per bucket, coloured by its worst status, with the counts and the time.
    timeline(name) {
      const h = this.data && this.data.history;
      if (!h || !h.services_status) return [];
      const ts = h.timestamps;
      const width = ts.length > 1 ? ts[1] - ts[0] : 0;
      return (h.services_status[name] || []).map((c, i) => {
        const worst = worstStatus(c);
        const when = `${shortWhen(ts[i] * 1000, this.now)}–${hhmm((ts[i] + width) * 1000)}`;
        const what = c ? SEVERITY.filter((s) => c[s] > 0).map((s) => `${s} ${c[s]}`).join(', ') : 'no checks';
        // The worst status colours the cell; a healthy share fills it from the bottom (at most
        // three quarters), so a blip among hundreds of good checks differs from an outage.
        let style = '';
        if (c && worst !== 'healthy' && c.healthy) {
          const total = Object.values(c).reduce((a, b) => a + b, 0);
          const green = Math.min(75, Math.round((100 * c.healthy) / total));
          style = `background: linear-gradient(to top, var(--healthy) ${green}%, var(--${worst}) ${green}%)`;
        }
        return { i, worst: worst || 'none', title: `${when}: ${what}`, style };
      });
    },
    timelineLabel(name) {
      const cells = this.timeline(name);
      const bad = cells.filter((c) => c.worst !== 'none' && c.worst !== 'healthy').length;
      const empty = cells.filter((c) => c.worst === 'none').length;
      return `Status of ${name} over the range: ${cells.length} buckets, ${bad} with failed checks, ${empty} without checks.`;
    },
    spark(name) {
      return sparkPath(this.data && (this.data.history.services || {})[name]);
    },
    showCard(name) {
      this.search = name;
      this.filter = 'all';
      this.view = 'cards';
    },

    statusClass,
    // Worker alerts carry HTTP-like codes rather than service statuses.
    alertClass(a) {
      if (a.item !== 'worker') return statusClass(a.new_status);
      if (a.new_status === '200') return 'healthy';
      return a.new_status === '220' || a.new_status === '221' ? 'timeout' : 'down';
    },
    /** "certificate: 23 days left", from the newest https answer's leaf certificate. */
    certText(svc) {
      const n = svc.cert_days_left;
      if (n == null) return '';
      if (n < 0) return 'certificate: expired';
      if (n === 0) return 'certificate: expires today';
      return `certificate: ${n} ${n === 1 ? 'day' : 'days'} left`;
    },
    badgeText(svc) {
      return svc.status + (svc.status_code ? ` ${svc.status_code}` : '');
    },
    pct(v) {
      return v == null ? '—' : `${Number(v).toFixed(1)} %`;
    },
    ms(v) {
      if (v == null) return '—';
      const n = Number(v);
      return `${n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : Math.round(n)} ms`;
    },
    // The contract answers 0 for a range without samples: "—" says there was nothing to measure.
    statRows(stats, samplesKey = 'samples') {
      const s = stats || {};
      const none = s[samplesKey] === 0;
      return ['max', 'avg', 'min', 'jitter'].map((k) => ({
        label: k[0].toUpperCase() + k.slice(1), value: none ? '—' : this.ms(s[k]),
      }));
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
      return Number.isNaN(t) ? iso : dateTime(t);
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
