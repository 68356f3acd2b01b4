// End-to-end test of the operator's page (issue 19, phase 1), in Debian's headless Chromium:
// stale data, the summary strip and failing-first order, the status timelines against the API's
// per-bucket counts, the compact list with 20 services, "—" without data, round-time ticks at
// 1280 and 390 px, arrow keys, and a service flipped down on the mock showing on a 30d view
// within one short poll (the real `heartbeat demo`: mock + agent + dashboard).
//
//   HB_BIN=target/debug/heartbeat node web/tests/page-e2e.mjs
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { eventually, getJson, launch, required, shoot, startDashboard, startDemo, stop } from './lib.mjs';

const BIN = resolve(required('HB_BIN')); // the demo runs in a directory of its own
const SHOTS = process.env.HB_SCREENSHOTS || 'screenshots';
// The page refreshes the current status this often whatever the range (app.js CURRENT_EVERY_MS).
const CURRENT_EVERY_MS = 5000;
const DEMO_INTERVAL_S = 2;
const SEVERITY = ['down', 'error', 'timeout', 'unknown', 'healthy'];

function step(msg) {
  console.log(`page-e2e: ${msg}`);
}

function genDb(path, args) {
  execFileSync(BIN, ['gen-db', '--path', path, ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
}

const appData = (page, expr) => page.evaluate(`(() => { const d = Alpine.$data(document.body); return ${expr}; })()`);

// Every x tick of a line chart on a round local time for its step, and no two labels touching.
async function checkTicks(page, key, what) {
  const r = await page.evaluate((k) => {
    const chart = Chart.getChart(document.querySelector(`canvas[data-chart="${k}"]`));
    const scale = chart.scales.x;
    const values = scale.ticks.map((t) => t.value);
    const font = Chart.helpers.toFont(scale.options.ticks.font).string;
    chart.ctx.save();
    chart.ctx.font = font;
    const widths = scale.ticks.map((t, i) => {
      const label = scale.hbLabels[i];
      return Math.max(...[].concat(label).map((l) => chart.ctx.measureText(l).width));
    });
    chart.ctx.restore();
    const pixels = values.map((v) => scale.getPixelForValue(v));
    const local = values.map((v) => { const d = new Date(v * 1000); return d.getHours() * 3600 + d.getMinutes() * 60 + d.getSeconds(); });
    return { values, widths, pixels, local, labels: scale.hbLabels, min: scale.min, max: scale.max, width: chart.width };
  }, key);
  assert.ok(r.values.length >= 2, `${what}: at least two ticks (${JSON.stringify(r)})`);
  const stepS = r.values[1] - r.values[0];
  r.values.forEach((v, i) => {
    assert.ok(v >= r.min && v <= r.max, `${what}: tick inside the axis`);
    if (stepS >= 86400) assert.equal(r.local[i], 0, `${what}: day ticks at local midnight: ${r.labels}`);
    else assert.equal(r.local[i] % stepS, 0, `${what}: tick ${i} on a multiple of ${stepS} s since midnight: ${r.labels}`);
  });
  for (let i = 1; i < r.values.length; i++) {
    const room = r.pixels[i] - r.pixels[i - 1];
    const need = (r.widths[i] + r.widths[i - 1]) / 2 + 4;
    assert.ok(room >= need, `${what}: labels ${i - 1} and ${i} overlap (${room.toFixed(0)} px < ${need.toFixed(0)} px): ${JSON.stringify(r.labels)}`);
  }
  return r.labels;
}

// A stale database: banner, stale badges and "—" where the range holds no latency.
async function staleDatabase(context, work) {
  const db = join(work, 'stale.db');
  genDb(db, ['--days', '1', '--services', '5', '--interval', '10', '--ended-ago', '2400']);
  const dash = await startDashboard(BIN, db);
  try {
    const page = await context.newPage();
    await page.goto(`${dash.base}/#range=live`);
    const banner = page.getByTestId('stale-banner');
    await banner.waitFor({ timeout: 10000 });
    assert.match(await banner.innerText(), /Agent not reporting for 40 min: statuses below are from \d\d:\d\d\./);
    assert.equal(await page.getByTestId('state').innerText(), 'Agent not reporting');
    assert.match(await page.getByTestId('summary-title').innerText(), /\(as of \d\d:\d\d\)/);
    for (const pill of ['worker-status', 'internet-status']) {
      assert.match(await page.getByTestId(pill).getAttribute('class'), /\bstale\b/, `${pill} stale`);
    }
    // General tab, live range: no ping in the last 5 minutes.
    const pingStats = await page.locator('dl[aria-label="Ping"] dd').allInnerTexts();
    assert.deepEqual(pingStats.slice(1), ['—', '—', '—', '—'], `ping stats without data: ${pingStats}`);
    await page.locator('#tab-services').click();
    const badges = page.locator('article.service [data-testid="badge"]');
    await badges.first().waitFor();
    assert.equal(await badges.count(), 5);
    for (const b of await badges.all()) {
      assert.match(await b.getAttribute('class'), /\bstale\b/);
      assert.equal(await b.evaluate((el) => getComputedStyle(el).backgroundColor), 'rgba(0, 0, 0, 0)', 'stale badges lose their fill');
    }
    for (const card of await page.locator('article.service').all()) {
      for (const stat of ['max', 'avg', 'min', 'jitter']) {
        assert.equal(await card.locator(`dd[data-stat="${stat}"]`).innerText(), '—', `${stat} without data`);
      }
    }
    // The same database on 24h has latency: numbers again.
    await page.locator('button[data-range="24h"]').click();
    await page.locator('article.service dd[data-stat="max"]').first().filter({ hasText: /ms$/ }).waitFor({ timeout: 10000 });
    step('stale database: banner, stale badges, "—" without data');
    await shoot(page, 'stale', SHOTS);
    await page.close();
  } finally {
    await stop(dash.child);
  }
}

// Twenty services over 30 days: the compact list, the timelines against the API, ticks.
async function twentyServices(context, work) {
  const db = join(work, 'month.db');
  genDb(db, ['--days', '30', '--services', '20', '--interval', '300']);
  const dash = await startDashboard(BIN, db);
  try {
    const page = await context.newPage();
    await page.goto(`${dash.base}/#range=30d`);
    await page.getByTestId('state').filter({ hasText: 'Connected' }).waitFor({ timeout: 15000 });
    await page.waitForFunction(() => Chart.getChart(document.querySelector('canvas[data-chart="overview"]')));

    // The overview: the slowest few, distinct colours, said so under the chart.
    const overview = await page.evaluate(() => Chart.getChart(document.querySelector('canvas[data-chart="overview"]'))
      .data.datasets.map((d) => ({ label: d.label, colour: d.borderColor })));
    assert.ok(overview.length <= 6, `overview draws at most 6 lines: ${overview.map((d) => d.label)}`);
    assert.equal(new Set(overview.map((d) => d.colour)).size, overview.length, 'distinct colours');
    assert.match(await page.getByTestId('overview-note').innerText(), /6 slowest of 20 services/);
    const api = await getJson(`${dash.base}/api/live?range=30d`);
    const byAvg = [...api.services].sort((a, b) => b.stats.avg - a.stats.avg).slice(0, 6).map((s) => s.name);
    assert.deepEqual(overview.map((d) => d.label).sort(), byAvg.sort(), 'the slowest six');

    for (const [width, height] of [[1280, 900], [390, 844]]) {
      await page.setViewportSize({ width, height });
      for (const range of ['30d', '24h', '1h', 'live']) {
        await page.locator(`button[data-range="${range}"]`).click();
        await page.waitForFunction((r) => {
          const d = Alpine.$data(document.body);
          const c = Chart.getChart(document.querySelector('canvas[data-chart="host-cpu"]'));
          return d.data && d.data.monitor.uptime[r] != null && c && c.data.labels[0] === d.data.history.timestamps[0];
        }, range, { timeout: 15000 });
        await page.waitForTimeout(300);
        for (const key of ['host-cpu', 'overview']) {
          const labels = await checkTicks(page, key, `${key} ${range} at ${width} px`);
          if (key === 'host-cpu' && range === '30d') step(`ticks ${range} at ${width} px: ${JSON.stringify(labels)}`);
        }
      }
    }
    await page.setViewportSize({ width: 1280, height: 900 });
    step('ticks at round times, labels apart, at 1280 and 390 px');

    // The long ranges answered from rollups: the selector offers them.
    for (const range of ['90d', '1y']) {
      await page.locator(`button[data-range="${range}"]`).click();
      await page.waitForFunction((r) => Alpine.$data(document.body).data.monitor.uptime[r] != null, range);
    }
    step('90d and 1y in the range selector');
    await page.locator('button[data-range="30d"]').click();
    await page.waitForFunction(() => Alpine.$data(document.body).data.monitor.uptime['30d'] != null);
    await shoot(page, 'month20-general', SHOTS);

    // Services: a compact list by default with 20 services.
    await page.locator('#tab-services').click();
    const rows = page.locator('li.svc-row');
    await rows.first().waitFor();
    assert.equal(await rows.count(), 20, 'one row per service');
    assert.equal(await page.locator('article.service').count(), 0, 'no cards in the list view');
    const month = await getJson(`${dash.base}/api/live?range=30d`);
    const cells = await page.evaluate(() => [...document.querySelectorAll('li.svc-row')].map((row) => ({
      name: row.dataset.service,
      cells: [...row.querySelectorAll('.timeline .cell')].map((c) => ({ worst: c.dataset.worst, title: c.title })),
    })));
    for (const { name, cells: got } of cells) {
      const want = month.history.services_status[name];
      assert.equal(got.length, want.length, `${name}: one cell per bucket`);
      want.forEach((counts, i) => {
        const worst = counts ? SEVERITY.find((s) => counts[s] > 0) : 'none';
        assert.equal(got[i].worst, worst, `${name} bucket ${i}: ${JSON.stringify(counts)}`);
        for (const [status, n] of Object.entries(counts || {})) {
          assert.ok(got[i].title.includes(`${status} ${n}`), `${name} bucket ${i} tooltip ${got[i].title} lists ${status} ${n}`);
        }
      });
    }
    step('timeline cells match /api/live?range=30d per-bucket counts (20 services x 31 buckets)');
    const heights = {};
    for (const [label, width, height] of [['desktop', 1280, 900], ['phone', 390, 844]]) {
      await page.setViewportSize({ width, height });
      await page.waitForTimeout(300);
      heights[label] = await page.evaluate(() => document.documentElement.scrollHeight);
    }
    await page.setViewportSize({ width: 1280, height: 900 });
    assert.ok(heights.desktop < 2000 && heights.phone < 4200, `compact list heights: ${JSON.stringify(heights)}`);
    step(`compact list of 20: page ${heights.desktop} px tall at 1280, ${heights.phone} px at 390`);
    await shoot(page, 'month20-services', SHOTS);

    // A row's name opens its card.
    await rows.first().locator('button.name').click();
    await page.locator('article.service').first().waitFor();
    assert.equal(await page.locator('article.service').count(), 1);
    await page.close();
  } finally {
    await stop(dash.child);
  }
}

// The demo: a service flipped down on the mock is failing on a 30d view within one short poll;
// the summary, order, filter, search, counts; the slow mark; arrow keys.
async function demo(context, work) {
  const dir = mkdtempSync(join(work, 'demo-'));
  const d = await startDemo(BIN, dir, {
    LOOP_INTERVAL_SECONDS: String(DEMO_INTERVAL_S), SERVICE_TIMEOUT_SECONDS: '1.5', SERVICE_SLOW_MS: '1000',
  });
  try {
    // `flapping` alternates on every request: pinned so the counts below do not race it.
    await getJson(`${d.controller}/api/config`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ services: { flapping: { behavior: 'error500' } } }),
    });
    const api = await eventually('the first cycles', async () => {
      const j = await getJson(`${d.base}/api/live?range=live`);
      if (!j.services.some((s) => s.name === 'slow' && s.latency != null)) throw new Error('slow not answered yet');
      if (!j.services.some((s) => s.name === 'flapping' && s.status === 'error')) throw new Error('flapping not pinned yet');
      return j;
    }, 30000);
    const page = await context.newPage();
    const requests = [];
    page.on('request', (r) => { if (r.url().includes('/api/live')) requests.push({ url: r.url(), at: Date.now() }); });
    await page.goto(`${d.base}/#range=30d`);
    await page.getByTestId('state').filter({ hasText: 'Connected' }).waitFor({ timeout: 10000 });
    assert.equal(await page.getByTestId('stale-banner').isVisible(), false, 'fresh data: no stale banner');

    const failingApi = api.services.filter((s) => s.status !== 'healthy').map((s) => s.name);
    assert.ok(failingApi.length >= 3 && !failingApi.includes('healthy'), `the demo's bad services: ${failingApi}`);
    const n = failingApi.length;
    const total = api.services.length;
    await page.getByTestId('summary-title').filter({ hasText: `${n} of ${total} failing` }).waitFor({ timeout: 10000 });
    assert.deepEqual((await page.locator('.failing li').evaluateAll((els) => els.map((e) => e.dataset.service))).sort(),
      [...failingApi].sort(), 'the strip lists each failing service');
    const downText = await page.locator('.failing li[data-service="down"]').innerText();
    assert.match(downText, /down/);
    assert.match(downText, /Connection refused/);
    assert.match(downText, /since \d\d:\d\d/, `since when: ${downText}`);
    assert.equal(await page.title(), `(${n}) Heartbeat Monitor`);
    assert.equal(await page.getByTestId('tab-failing').innerText(), `${n} failing`);
    assert.match(await page.getByTestId('slow-note').innerText(), /slow/);
    step(`summary: "${n} of ${total} failing", title and tab count`);

    // `down` has failed since its first check: it never alerted, and it is an ongoing incident.
    const incident = page.locator('li.incident[data-service="down"]');
    await incident.waitFor({ timeout: 15000 });
    const incidentText = await incident.innerText();
    assert.match(incidentText, /ongoing/, incidentText);
    assert.match(incidentText, /from \d{4}-\d\d-\d\d \d\d:\d\d|from \d\d:\d\d/, incidentText);
    const incidents = await getJson(`${d.base}/api/incidents?range=30d`);
    const down = incidents.incidents.find((i) => i.service === 'down');
    assert.ok(down && down.ongoing && down.ended === null, `the API's incident: ${JSON.stringify(down)}`);
    step('an ongoing incident for a service bad since its first check');

    // Flip `healthy` down on the mock: failing within one short poll, on 30d.
    await page.waitForTimeout(1000);
    const before = requests.length;
    const flipped = Date.now();
    await getJson(`${d.controller}/api/config`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ services: { healthy: { behavior: 'down' } } }),
    });
    await page.locator('.failing li[data-service="healthy"]').waitFor({ timeout: CURRENT_EVERY_MS + DEMO_INTERVAL_S * 1000 + 3000 });
    const seenMs = Date.now() - flipped;
    assert.equal(await page.title(), `(${n + 1}) Heartbeat Monitor`);
    const since = requests.slice(before);
    assert.ok(since.every((r) => r.url.endsWith('range=live')), `only the current status was fetched: ${since.map((r) => r.url)}`);
    step(`flipped down on the mock: failing on the 30d view after ${seenMs} ms (${since.length} live requests, no 30d reload)`);

    // Services tab: failing first, filter, search; the slow mark.
    await page.locator('#tab-services').click();
    const order = async () => page.locator('li.svc-row:visible').evaluateAll((els) => els.map((e) => e.dataset.service));
    await page.locator('li.svc-row').first().waitFor();
    const now = await getJson(`${d.base}/api/live?range=live`);
    const bad = now.services.filter((s) => s.status !== 'healthy').map((s) => s.name);
    const good = now.services.filter((s) => s.status === 'healthy').map((s) => s.name);
    assert.deepEqual(await order(), [...bad, ...good], 'failing first, each group in the API order');
    await page.locator('button[data-filter="failing"]').click();
    assert.deepEqual(await order(), bad, 'filter: failing only');
    await page.locator('button[data-filter="all"]').click();
    await page.getByTestId('search').fill('SLO');
    assert.deepEqual(await order(), ['slow'], 'search by name, case-insensitive');
    assert.equal(await page.locator('li.svc-row[data-service="slow"] [data-testid="slow"]').isVisible(), true, 'slow marked');
    assert.match(await page.locator('li.svc-row[data-service="slow"] [data-testid="badge"]').innerText(), /^healthy/, 'status unchanged');
    await page.locator('li.svc-row[data-service="slow"] button.name').click();
    await page.locator('article.service[data-service="slow"]').waitFor();
    assert.equal(await page.locator('article.service[data-service="slow"] [data-testid="slow-ms"]').innerText(), '1000 ms');
    await page.getByTestId('search').fill('');
    step('failing first, filter, search, slow mark with its threshold on the card');

    // Keyboard: arrows move between tabs; the range toolbar moves focus, Enter picks.
    await page.locator('#tab-services').focus();
    await page.keyboard.press('ArrowLeft');
    assert.equal(await appData(page, 'd.tab'), 'general');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'tab-general');
    await page.keyboard.press('ArrowRight');
    assert.equal(await appData(page, 'd.tab'), 'services');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'tab-services');
    await page.keyboard.press('Home');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'tab-general');
    await page.keyboard.press('End');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'tab-services');
    assert.equal(await page.locator('#tab-general').getAttribute('tabindex'), '-1', 'one tab stop');
    await page.locator('button[data-range="30d"]').focus();
    await page.keyboard.press('Home');
    assert.equal(await page.evaluate(() => document.activeElement.dataset.range), 'live');
    await page.keyboard.press('ArrowRight');
    assert.equal(await page.evaluate(() => document.activeElement.dataset.range), '1h');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => Alpine.$data(document.body).range === '1h');
    assert.equal(await page.locator('button[data-range="1h"]').getAttribute('aria-pressed'), 'true');
    step('arrow keys: tabs and range toolbar');

    const summary = await page.locator('canvas[data-chart="host-cpu"]').getAttribute('aria-label');
    assert.match(summary, /^CPU .*latest .* %, min .* %, max .* %, average .* %\.$/, `chart text alternative: ${summary}`);

    // The demo's history is a minute old: the live range shows it best.
    await page.locator('button[data-range="live"]').click();
    await page.locator('#tab-general').click();
    await page.waitForTimeout(2500);
    await shoot(page, 'demo-general', SHOTS);
    await page.locator('#tab-services').click();
    await page.locator('button[data-view="list"]').click();
    await page.waitForTimeout(500);
    await shoot(page, 'demo-services', SHOTS);
    await page.locator('button[data-view="cards"]').click();
    await page.waitForTimeout(500);
    await shoot(page, 'demo-cards', SHOTS);
    await page.close();
  } finally {
    await stop(d.child);
    rmSync(dir, { recursive: true, force: true });
  }
}

// Certificate days and container health on the service cards (issue 16): a generated database
// given two https certificates (23 days left, and 5: under TLS_EXPIRY_WARN_DAYS' 14) and a
// container whose own health check fails, written as the agent writes them.
async function serviceFacts(context, work) {
  const db = join(work, 'facts.db');
  genDb(db, ['--days', '1', '--services', '4', '--interval', '10']);
  const sql = (q) => execFileSync('sqlite3', [db, q], { encoding: 'utf8' }).trim();
  const latest = "(SELECT id FROM monitoring_cycles ORDER BY ts_ms DESC LIMIT 1)";
  const rows = sql(`SELECT service_name || '|' || service_url FROM service_checks WHERE cycle_id = ${latest} ORDER BY service_name`)
    .split('\n').map((l) => l.split('|'));
  const http = rows.filter(([, url]) => url.startsWith('http')).map(([n]) => n);
  const docker = rows.filter(([, url]) => url.startsWith('docker:')).map(([n]) => n);
  assert.ok(http.length >= 2 && docker.length >= 1, `gen-db services: ${JSON.stringify(rows)}`);
  const [far, soon] = http;
  const [sick] = docker;
  const day = 86400000;
  const now = Date.now();
  sql(`INSERT INTO service_certificates VALUES ('${far}', ${now + 23 * day + 3600000}, ${now}),
                                               ('${soon}', ${now + 5 * day + 3600000}, ${now});
       UPDATE service_checks SET status = 'error', status_code = NULL, latency_ms = NULL,
              error_message = 'Container health: unhealthy'
        WHERE cycle_id = ${latest} AND service_name = '${sick}';`);
  const dash = await startDashboard(BIN, db, { DASHBOARD_MASK_ERRORS: 'true' });
  try {
    const api = await getJson(`${dash.base}/api/live?range=live`);
    const byName = Object.fromEntries(api.services.map((s) => [s.name, s]));
    assert.equal(byName[far].cert_days_left, 23);
    assert.equal(byName[far].cert_expiring, false);
    assert.equal(byName[soon].cert_expiring, true);
    assert.equal(byName[sick].health, 'unhealthy');
    assert.equal(byName[sick].error, 'Health Check Failed', 'the reason itself stays masked');
    assert.ok(!('cert_days_left' in byName[sick]), 'no certificate keys without a certificate');

    const page = await context.newPage();
    await page.goto(`${dash.base}/#range=live`);
    await page.getByTestId('state').filter({ hasText: 'Connected' }).waitFor({ timeout: 15000 });
    await page.locator('#tab-services').click();
    // The list marks only the expiring certificate.
    await page.locator('button[data-view="list"]').click();
    await page.locator(`li.svc-row[data-service="${soon}"]`).waitFor();
    assert.equal(await page.locator(`li.svc-row[data-service="${soon}"] [data-testid="cert-soon"]`).innerText(), 'certificate: 5 days left');
    assert.equal(await page.locator(`li.svc-row[data-service="${far}"] [data-testid="cert-soon"]`).isVisible(), false);
    await page.locator('button[data-view="cards"]').click();
    const card = (name) => page.locator(`article.service[data-service="${name}"]`);
    await card(far).waitFor();
    assert.equal(await card(far).getByTestId('cert').innerText(), 'certificate: 23 days left');
    assert.doesNotMatch(await card(far).getByTestId('cert').getAttribute('class'), /cert-soon/);
    assert.equal(await card(soon).getByTestId('cert').innerText(), 'certificate: 5 days left');
    assert.match(await card(soon).getByTestId('cert').getAttribute('class'), /cert-soon/);
    assert.match(await card(soon).getByTestId('cert').getAttribute('title'), /^Certificate expires \d{4}-\d\d-\d\dT/);
    assert.equal(await card(sick).getByTestId('health').innerText(), 'health: unhealthy');
    assert.equal(await card(sick).getByTestId('cert').isVisible(), false, 'a container has no certificate');
    assert.equal(await card(http[2] ?? far).getByTestId('health').isVisible(), false);
    step('service cards: certificate days (expiring marked) and container health');
    await shoot(page, 'service-facts', SHOTS);
    await page.close();
  } finally {
    await stop(dash.child);
  }
}

async function main() {
  mkdirSync(SHOTS, { recursive: true });
  const work = mkdtempSync(join(tmpdir(), 'hb-page-e2e-'));
  const browser = await launch();
  try {
    // HB_ONLY=stale|month|facts|demo runs one part (while working on it).
    const only = process.env.HB_ONLY;
    if (!only || only === 'stale') await staleDatabase(browser.context, work);
    if (!only || only === 'month') await twentyServices(browser.context, work);
    if (!only || only === 'facts') await serviceFacts(browser.context, work);
    if (!only || only === 'demo') await demo(browser.context, work);
  } finally {
    await browser.close();
    rmSync(work, { recursive: true, force: true });
  }
  console.log(`page-e2e: ok (screenshots in ${SHOTS}/)`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
