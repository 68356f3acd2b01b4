// End-to-end test of the dashboard page: the real `heartbeat dashboard` binary on a seeded
// SQLite file, driven by Debian's headless Chromium through playwright-core.
//
//   HB_BIN=target/debug/heartbeat HB_DB=/tmp/x/metrics.db node web/tests/e2e.mjs
//
// HB_DB must already hold history (`heartbeat gen-db --services 5`); this test appends cycles
// and alerts to it with the sqlite3 CLI, as the agent would.
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { shoot } from './lib.mjs';

const BIN = required('HB_BIN');
const DB = required('HB_DB');
const SHOTS = process.env.HB_SCREENSHOTS || 'screenshots';
const CHROMIUM = process.env.HB_CHROMIUM || '/usr/bin/chromium';
const LIVE_POLL_MS = 2000;

// The badge colours of SPEC §4.3, as the browser computes them from app.css.
const BADGE_RGB = {
  healthy: 'rgb(34, 197, 94)',
  down: 'rgb(239, 68, 68)',
  error: 'rgb(249, 115, 22)',
  timeout: 'rgb(234, 179, 8)',
  unknown: 'rgb(156, 163, 175)',
};

function required(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`e2e: set ${name}`);
    process.exit(2);
  }
  return v;
}

function step(msg) {
  console.log(`e2e: ${msg}`);
}

const sql = (text) => execFileSync('sqlite3', ['-bail', DB], { input: `PRAGMA busy_timeout=5000;\n${text}` });
const quote = (v) => (v == null ? 'NULL' : typeof v === 'number' ? String(v) : `'${String(v).replaceAll("'", "''")}'`);

let cycleNo = 0;
// One whole cycle in one transaction, as the agent writes it.
function appendCycle({ cpu, services, ms = Date.now() }) {
  const ts = new Date(ms).toISOString().replace('Z', '+00:00');
  const id = `e2e00000-0000-4000-8000-${String(++cycleNo).padStart(12, '0')}`;
  const checks = services.map(([name, url, status, code, latency, error]) =>
    `INSERT INTO service_checks (cycle_id, service_name, service_url, status, status_code, latency_ms, error_message)
     VALUES (${[id, name, url, status, code, latency, error].map(quote).join(', ')});`);
  sql(`BEGIN IMMEDIATE;
INSERT INTO monitoring_cycles (id, timestamp_lima, ts_ms, cpu_percent, ram_percent, ram_used_mb, disk_percent,
  uptime_seconds, container_count, internet_status, ping_ms, worker_status, cycle_duration_ms)
VALUES (${[id, ts, ms, cpu, 41.5, 2048, 40.2, 1234567, 12, 1, 14.2, 200, 310].map(quote).join(', ')});
${checks.join('\n')}
COMMIT;`);
}

// The newest cycle decides the services shown: one of each status.
const SERVICES = [
  ['svc-00', 'http://10.0.0.1:8080/health', 'healthy', 200, 12.3, null],
  ['svc-01', 'http://10.0.0.2:8080/health', 'error', 500, 40.1, 'HTTP 500'],
  ['svc-02', 'http://10.0.0.3:8080/health', 'timeout', null, null, 'Timeout'],
  ['svc-03', 'http://10.0.0.4:8080/health', 'down', null, null, 'connection refused'],
  ['svc-04', 'docker:svc-04', 'unknown', null, null, 'Docker Socket Unavailable'],
];

// In the history but not in the newest cycle (taken out of the configuration): the page keeps
// its series, marked as no longer checked. Checked in the live range only: the cycles this test
// appends with sqlite3 have no rollup rows, which answer 24h.
const REMOVED = ['svc-gone', 'http://10.0.0.99:8080/health', 'healthy', 200, 25.0, null];

function seedAlerts() {
  const now = Date.now();
  const rows = [
    ['e2e-a1', now - 300000, 'svc-03', 'healthy', 'down', 'svc-03 is DOWN', 3, null, 'HTTP 502 from webhook', 'failed'],
    ['e2e-a2', now - 200000, 'svc-01', 'healthy', 'error', 'svc-01 is ERROR', 1, new Date(now - 199000).toISOString(), null, 'delivered'],
    ['e2e-a3', now - 100000, 'worker', '200', '500', 'Worker error', 0, null, null, null],
  ];
  // delivery_state as the agent's outbox records it (NULL while pending).
  sql(rows.map(([uid, ms, item, from, to, title, attempts, delivered, err, state]) =>
    `INSERT INTO alerts (uid, created_at, created_ms, item, old_status, new_status, title, message, attempts, delivered_at, last_error, delivery_state)
     VALUES (${[uid, new Date(ms).toISOString(), ms, item, from, to, title, title, attempts, delivered, err, state].map(quote).join(', ')});`).join('\n'));
}

// Starts the dashboard on a free port (it binds port 0 and logs the address).
function startDashboard(dbPath) {
  const child = spawn(BIN, ['dashboard', '--bind', '127.0.0.1:0'], {
    env: { ...process.env, SQLITE_DB_PATH: dbPath, LOG_FORMAT: 'json', NO_COLOR: '1', RUST_LOG: 'info' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let log = '';
    const timer = setTimeout(() => reject(new Error(`dashboard did not start:\n${log}`)), 20000);
    child.on('exit', (code) => reject(new Error(`dashboard exited with ${code}:\n${log}`)));
    child.stderr.on('data', (chunk) => {
      log += chunk;
      const m = /dashboard listening.*?"addr":"([^"]+)"|"addr":"([^"]+)".*?dashboard listening/.exec(log);
      if (m) {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        resolve({ child, base: `http://${m[1] || m[2]}` });
      }
    });
  });
}

// Polls the exit status: waiting for the 'exit' event hung here once the browser had run
// (cause not found). Escalates to SIGKILL when a graceful shutdown takes over 5 s.
async function stop(child) {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  for (let i = 0; child.exitCode === null && child.signalCode === null; i++) {
    if (i === 100) child.kill('SIGKILL'); // graceful shutdown took over 5 s
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function getJson(url) {
  const res = await fetch(url);
  assert.equal(res.status, 200, url);
  return res.json();
}

// Reads a Chart.js instance's state inside the page.
function chartState(page, key) {
  return page.evaluate((k) => {
    const canvas = document.querySelector(`canvas[data-chart="${k}"]`);
    const chart = canvas && Chart.getChart(canvas);
    if (!chart) return null;
    return {
      labels: chart.data.labels.slice(),
      data: chart.data.datasets.map((d) => ({ label: d.label, data: d.data.slice(), borderDash: d.borderDash || [] })),
      width: chart.width,
      height: chart.height,
    };
  }, key);
}

const nonNull = (xs) => xs.filter((x) => x != null).length;

async function main() {
  mkdirSync(SHOTS, { recursive: true });
  appendCycle({ cpu: 33.3, services: [...SERVICES, REMOVED], ms: Date.now() - 3000 });
  appendCycle({ cpu: 33.3, services: SERVICES });
  seedAlerts();

  const profile = mkdtempSync(join(tmpdir(), 'hb-e2e-chromium-'));
  const empty = mkdtempSync(join(tmpdir(), 'hb-e2e-empty-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-quic'],
  });
  const running = [];
  try {
    // 1. No database yet: the page says so instead of breaking.
    const none = await startDashboard(join(empty, 'missing.db'));
    running.push(none.child);
    const page0 = await context.newPage();
    await page0.goto(`${none.base}/`);
    await page0.getByTestId('state').filter({ hasText: 'No data yet' }).waitFor({ timeout: 10000 });
    assert.match(await page0.locator('.notice').innerText(), /No data yet/);
    await page0.close();
    await stop(none.child);
    step('empty database: "No data yet" shown');

    // 2. The seeded database.
    const dash = await startDashboard(DB);
    running.push(dash.child);
    const page = await context.newPage();
    const consoleErrors = [];
    page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(`${m.text()} (${m.location().url})`); });
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
    const apiRequests = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const isApi = (r) => new URL(r.url()).pathname.startsWith('/api/');
    page.on('request', (r) => { if (isApi(r)) { apiRequests.push(r.url()); maxInFlight = Math.max(maxInFlight, ++inFlight); } });
    const done = (r) => { if (isApi(r)) inFlight--; };
    page.on('requestfinished', done);
    page.on('requestfailed', done);

    await page.goto(`${dash.base}/`);
    await page.getByTestId('state').filter({ hasText: 'Connected' }).waitFor({ timeout: 10000 });
    await page.waitForFunction(() => Chart.getChart(document.querySelector('canvas[data-chart="overview"]')));
    assert.ok(apiRequests.some((u) => u.endsWith('/api/live?range=live')), 'first request is the live range');

    const live = await chartState(page, 'host-cpu');
    assert.equal(live.labels.length, 31, 'live range has TARGET_DATA_POINTS + 1 buckets');
    assert.ok(nonNull(live.data[0].data) >= 20, `live CPU chart has the seeded points: ${live.data[0].data}`);
    assert.ok(live.width > 100 && live.height > 50, 'CPU chart has a size');
    for (const key of ['host-ram', 'host-disk', 'cycle', 'ping', 'overview']) {
      const c = await chartState(page, key);
      assert.ok(c && c.data.some((d) => nonNull(d.data) >= 20), `${key} chart has the seeded points`);
    }
    const overview = await chartState(page, 'overview');
    const gone = `${REMOVED[0]} (no longer checked)`;
    assert.deepEqual(overview.data.map((d) => d.label), [...SERVICES.map((s) => s[0]), gone],
      'one overview line per service, then the one no longer checked');
    const goneLine = overview.data.find((d) => d.label === gone);
    assert.ok(goneLine.borderDash.length > 0, 'the service no longer checked is dashed');
    assert.ok(goneLine.data.includes(25), `its history is drawn: ${goneLine.data}`);
    assert.ok(overview.data.filter((d) => d.label !== gone).every((d) => d.borderDash.length === 0), 'current services solid');
    assert.match(await page.getByTestId('removed-note').innerText(), /no longer checked.*svc-gone/);
    const worker = await chartState(page, 'worker-dist');
    assert.ok(worker.labels.includes('200') && worker.data[0].data.reduce((a, b) => a + b, 0) > 0, 'worker distribution');
    assert.equal(await page.getByTestId('containers').innerText(), '12 Containers');
    assert.match(await page.getByTestId('host-uptime').innerText(), /^14d /);
    step('live range: charts hold the seeded points');

    // Alerts with their delivery state.
    await page.locator('.alerts li').first().waitFor({ timeout: 15000 });
    const alertsText = await page.locator('.alerts').innerText();
    assert.match(alertsText, /failed after 3 attempts: HTTP 502 from webhook/);
    assert.match(alertsText, /delivered /);
    assert.match(alertsText, /pending/);
    step('alerts: delivered, failed and pending shown');

    // 3. Range switch: the right request, and the same chart object redrawn.
    await page.evaluate(() => { window.__cpu = Chart.getChart(document.querySelector('canvas[data-chart="host-cpu"]')); });
    const req24 = page.waitForRequest((r) => r.url().endsWith('/api/live?range=24h'));
    await page.locator('button[data-range="24h"]').click();
    await req24;
    await page.waitForFunction((before) => {
      const c = Chart.getChart(document.querySelector('canvas[data-chart="host-cpu"]'));
      return c && c.data.labels.join() !== before;
    }, live.labels.join());
    const day = await chartState(page, 'host-cpu');
    const api24 = await getJson(`${dash.base}/api/live?range=24h`);
    assert.deepEqual(day.labels, api24.history.timestamps, '24h bucket times drawn');
    assert.deepEqual(day.data[0].data, api24.history.system.cpu, '24h CPU values drawn');
    assert.ok(nonNull(day.data[0].data) >= 29, '24h CPU chart is full');
    assert.ok(await page.evaluate(() => Chart.getChart(document.querySelector('canvas[data-chart="host-cpu"]')) === window.__cpu),
      'the chart was updated in place, not re-created');
    assert.equal(await page.locator('button[data-range="24h"]').getAttribute('aria-pressed'), 'true');
    step('range 24h: requested and redrawn in place');

    await shoot(page, 'general', SHOTS);

    // 4. Services tab: one card per service, badge colour and text. A fresh cycle first: the
    // seeded history ended when this test started, and older than three intervals it is stale.
    appendCycle({ cpu: 33.3, services: SERVICES });
    await page.waitForFunction(() => { const d = Alpine.$data(document.body); return d.cur && !d.stale; }, null, { timeout: 15000 });
    await page.getByRole('tab', { name: /Services/ }).click();
    const cards = page.locator('article.service');
    await cards.first().waitFor();
    assert.equal(await cards.count(), api24.services.length);
    assert.equal(await cards.count(), SERVICES.length);
    assert.equal(await page.locator(`article.service[data-service="${REMOVED[0]}"]`).count(), 0, 'no card for a service no longer checked');
    for (const [name, , status, code] of SERVICES) {
      const card = page.locator(`article.service[data-service="${name}"]`);
      const badge = card.getByTestId('badge');
      const text = await badge.innerText();
      assert.equal(text, code ? `${status} ${code}` : status, `${name} badge text`);
      const bg = await badge.evaluate((el) => getComputedStyle(el).backgroundColor);
      assert.equal(bg, BADGE_RGB[status], `${name} badge colour`);
      const chart = await chartState(page, `svc:${name}`);
      assert.ok(chart && chart.width > 100, `${name} latency chart drawn`);
      assert.ok(nonNull(chart.data.find((d) => d.label === 'Avg latency').data) >= 29, `${name} latency history`);
      assert.ok(nonNull(chart.data.find((d) => d.label === 'Min–max band').data) >= 29, `${name} min–max band`);
    }
    assert.match(await page.locator('article.service[data-service="svc-03"]').innerText(), /none \(down\)/);
    step('services tab: one card per service with the right badges');
    await shoot(page, 'services', SHOTS);

    // 5. Live mode: a new cycle shows up within the poll interval.
    await page.getByRole('tab', { name: 'General' }).click();
    await page.locator('button[data-range="live"]').click();
    await page.waitForFunction(() => Alpine.$data(document.body).range === 'live'
      && Alpine.$data(document.body).data.last_updated && true);
    await page.waitForTimeout(LIVE_POLL_MS + 500);
    const before = await page.evaluate(() => Alpine.$data(document.body).data.last_updated);
    appendCycle({ cpu: 87.6, services: SERVICES });
    const t0 = Date.now();
    await page.locator('.card .big').first().filter({ hasText: '87.6 %' }).waitFor({ timeout: LIVE_POLL_MS * 2 + 1000 });
    const after = await page.evaluate(() => Alpine.$data(document.body).data.last_updated);
    assert.notEqual(after, before, 'last update moved');
    // The header shows the current status as soon as it is fetched; the chart is redrawn on the
    // next tick of the page (and of the history's own poll): wait for it rather than race it.
    const deadline = Date.now() + LIVE_POLL_MS * 2 + 1000;
    // The newest 10 s bucket averages the new cycle (87.6 %) with the 33.3 % ones this test
    // appended earlier when they fall in the same bucket (how many do depends on the clock), so
    // it is at least 44 % with the new cycle and at most 33.3 % without it: the chart must show
    // the API's value for that bucket.
    let lastSeen;
    for (;;) {
      const api = await getJson(`${dash.base}/api/live?range=live`);
      const apiCpu = api.history.system.cpu.filter((v) => v != null).at(-1);
      const liveNow = await chartState(page, 'host-cpu');
      const shown = liveNow.data[0].data.filter((v) => v != null).at(-1);
      lastSeen = { apiCpu, shown };
      if (apiCpu > 44 && Math.abs(shown - apiCpu) < 0.01) break;
      assert.ok(Date.now() < deadline, `new point in the CPU chart: ${JSON.stringify(lastSeen)}`);
      await page.waitForTimeout(100);
    }
    step(`live: new cycle shown after ${Date.now() - t0} ms`);

    // 6. Hidden tab: no polling.
    await page.evaluate(() => {
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    await page.waitForTimeout(300);
    const countHidden = apiRequests.length;
    await page.waitForTimeout(LIVE_POLL_MS * 2 + 500);
    assert.equal(apiRequests.length, countHidden, 'no request while the tab is hidden');
    const resumed = page.waitForRequest((r) => r.url().endsWith('/api/live?range=live'), { timeout: 1000 });
    await page.evaluate(() => {
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => false });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    await resumed;
    step('hidden tab: polling paused and resumed');

    assert.deepEqual(consoleErrors, [], 'no console errors while the API was up');
    assert.ok(maxInFlight <= 1, `at most one API request in flight (saw ${maxInFlight})`);

    // 7. The API goes away: the page says so and keeps the last good data.
    await stop(dash.child);
    await page.getByTestId('state').filter({ hasText: 'API unreachable' }).waitFor({ timeout: LIVE_POLL_MS * 2 + 2000 });
    assert.match(await page.locator('.notice').innerText(), /Showing the last good data, fetched \d+ s ago/);
    const kept = await chartState(page, 'host-cpu');
    assert.ok(nonNull(kept.data[0].data) >= 20, 'charts keep the last good data');
    assert.equal(await page.getByTestId('containers').innerText(), '12 Containers');
    await page.screenshot({ path: join(SHOTS, 'unreachable-desktop.png') });
    step('API stopped: unreachable state with the last good data');
  } finally {
    await context.close();
    for (const c of running) await stop(c);
    rmSync(profile, { recursive: true, force: true });
    rmSync(empty, { recursive: true, force: true });
  }
  console.log(`e2e: ok (screenshots in ${SHOTS}/)`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
