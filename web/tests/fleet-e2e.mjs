// End-to-end test of the fleet overview (issue 13) in Debian's headless Chromium: a throw-away
// PostgreSQL 15 cluster (initdb in a temporary folder, 127.0.0.1 and a private socket, never the
// system cluster), three real `heartbeat agent`s shipping to it, one `heartbeat dashboard`
// reading it. The overview's cards, a stopped agent's card turning stale within its threshold
// and one poll, a host's view with `host=` on every request, the switcher, the URL, back and
// forward, "All hosts", at 1280 and 390 px.
//
//   HB_BIN=target/debug/heartbeat node web/tests/fleet-e2e.mjs
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { eventually, getJson, launch, required, shoot, startDashboard, stop } from './lib.mjs';

const BIN = resolve(required('HB_BIN'));
const SHOTS = process.env.HB_SCREENSHOTS || 'screenshots';
const PG_BIN = '/usr/lib/postgresql/15/bin';
// The page polls /api/hosts this often on the overview (app.js CURRENT_EVERY_MS), and in a
// host's view (HOSTS_IN_VIEW_EVERY_MS).
const CURRENT_EVERY_MS = 5000;
const HOSTS_IN_VIEW_EVERY_MS = 10000;
const AS_ROOT = process.getuid() === 0;
// What each agent checks: different names per host, so a host's view shows whose data it is.
const HOSTS = {
  'web-1': [['api', '/ok'], ['auth', '/ok']],
  'web-2': [['shop', '/ok'], ['payments', '/fail']],
  'web-3': [['search', '/ok'], ['mail', '/ok']],
};
const BADGE_RGB = { healthy: 'rgb(34, 197, 94)', error: 'rgb(249, 115, 22)' };

function step(msg) {
  console.log(`fleet-e2e: ${msg}`);
}

function listen(server) {
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok(server.address().port)));
}

async function freePort() {
  const s = createServer();
  const port = await listen(s);
  await new Promise((ok) => s.close(ok));
  return port;
}

// The services the agents check: 500 under /fail, 200 elsewhere (HEAD or GET).
async function startServices() {
  const server = createServer((req, res) => {
    res.writeHead(req.url.startsWith('/fail') ? 500 : 200, { 'content-type': 'text/plain' });
    res.end(req.method === 'HEAD' ? undefined : 'ok');
  });
  const port = await listen(server);
  return { server, base: `http://127.0.0.1:${port}` };
}

// A private PostgreSQL cluster in `dir`, owned by the postgres user when we are root (initdb
// refuses to run as root).
async function startPostgres(dir) {
  const port = await freePort();
  const data = join(dir, 'data');
  if (AS_ROOT) chownSync(dir, ...['uid', 'gid'].map((k) => Number(execFileSync('id', [`-${k[0]}`, 'postgres'], { encoding: 'utf8' }))));
  const run = (tool, args) => execFileSync(AS_ROOT ? 'runuser' : join(PG_BIN, tool),
    AS_ROOT ? ['-u', 'postgres', '--', join(PG_BIN, tool), ...args] : args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust']);
  run('pg_ctl', ['-D', data, '-o', `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} -c fsync=off`,
    '-l', join(dir, 'server.log'), '-w', 'start']);
  execFileSync(join(PG_BIN, 'psql'), ['-h', dir, '-p', String(port), '-U', 'postgres', '-X', '-q', '-c', 'CREATE DATABASE fleet']);
  return {
    url: `postgres://postgres@127.0.0.1:${port}/fleet?sslmode=disable`,
    stop: () => run('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']),
  };
}

// Nothing of the caller's own monitoring settings may leak into the agents.
function cleanEnv() {
  return Object.fromEntries(Object.entries(process.env)
    .filter(([k]) => !/^(SERVICE_|HEARTBEAT_URL$|N8N_WEBHOOK_URL$|SECRET_KEY$|FLEET_|HOST_NAME$|SQLITE_DB_PATH$|PING_URL$)/.test(k)));
}

function startAgent(name, dir, fleetUrl, services) {
  const env = {
    ...cleanEnv(), SQLITE_DB_PATH: join(dir, `${name}.db`), LOOP_INTERVAL_SECONDS: '1', SERVICE_TIMEOUT_SECONDS: '0.5',
    FLEET_DATABASE_URL: fleetUrl, HOST_NAME: name, DOCKER_HOST: 'unix:///nonexistent/docker.sock',
    PING_URL: `${services.base}/ping`, LOG_FORMAT: 'json', NO_COLOR: '1', RUST_LOG: 'warn',
  };
  for (const [svc, path] of HOSTS[name]) env[`SERVICE_URL_${svc}`] = `${services.base}${path}`;
  const child = spawn(BIN, ['agent'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  const agent = { child, log: '' };
  child.stderr.on('data', (chunk) => { agent.log += chunk; });
  return agent;
}

const card = (page, host) => page.locator(`a.host-card[data-host="${host}"]`);
const hashHost = (page) => page.evaluate(() => new URLSearchParams(location.hash.slice(1)).get('host'));

async function shownServices(page) {
  await page.locator('#tab-services').click();
  await page.locator('article.service').first().waitFor({ timeout: 10000 });
  return (await page.locator('article.service').evaluateAll((els) => els.map((e) => e.dataset.service))).sort();
}

// The host's own services on its Services tab (the newest answer, after a host change).
async function waitForServices(page, host) {
  const want = HOSTS[host].map(([n]) => n).sort();
  await page.locator('#tab-services').click();
  await eventually(`${host}'s services shown`, async () => {
    const got = (await page.locator('article.service').evaluateAll((els) => els.map((e) => e.dataset.service))).sort();
    assert.deepEqual(got, want);
  }, 10000);
}

// A page with its API requests and console errors recorded.
async function watchedPage(context) {
  const page = await context.newPage();
  const consoleErrors = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(`${m.text()} (${m.location().url})`); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  const requests = [];
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.pathname.startsWith('/api/')) requests.push({ path: u.pathname, host: u.searchParams.get('host'), at: Date.now() });
  });
  const hostRequests = (since) => requests.slice(since).filter((r) => r.path !== '/api/hosts');
  return { page, consoleErrors, requests, hostRequests };
}

async function setHidden(page, hidden) {
  await page.evaluate((h) => {
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => h });
    document.dispatchEvent(new Event('visibilitychange'));
  }, hidden);
}

// A fleet of one host: the page as on one SQLite file (no overview, no switcher), every
// request naming the host.
async function loneHost(context, base) {
  const w = await watchedPage(context);
  const { page } = w;
  await page.goto(`${base}/`);
  await page.getByTestId('state').filter({ hasText: 'Connected' }).waitFor({ timeout: 10000 });
  assert.deepEqual(await shownServices(page), ['api', 'auth']);
  await eventually('the view\'s alerts asked for', () => assert.ok(w.requests.some((r) => r.path === '/api/alerts')), 15000);
  assert.deepEqual([...new Set(w.hostRequests(0).map((r) => r.host))], ['web-1'], 'every request names the lone host');
  assert.equal(await page.getByTestId('host-switcher').isVisible(), false, 'no switcher');
  assert.equal(await page.getByTestId('all-hosts').isVisible(), false, 'no way to an overview');
  assert.equal(await page.locator('a.host-card').count(), 0, 'no overview');
  assert.equal(await hashHost(page), null);
  assert.equal(await page.title(), 'Heartbeat Monitor');
  step('a fleet of one: the single-host page, host=web-1 on every request');
  return w;
}

async function run(context, base, agents) {
  const { page, consoleErrors, requests, hostRequests } = await watchedPage(context);

  // The overview: one card per host, in the API's order, each with its state and worst status.
  await page.goto(`${base}/`);
  const cards = page.locator('a.host-card');
  await cards.nth(2).waitFor({ timeout: 10000 });
  assert.deepEqual(await cards.evaluateAll((els) => els.map((e) => e.dataset.host)), Object.keys(HOSTS));
  await page.getByTestId('state').filter({ hasText: 'Connected' }).waitFor();
  for (const host of Object.keys(HOSTS)) {
    assert.match(await card(page, host).getByTestId('host-state').textContent(), /^up · \d+ s ago$/, `${host} up`);
    assert.doesNotMatch(await card(page, host).getAttribute('class'), /host-stale/);
  }
  const worst = card(page, 'web-2').getByTestId('host-worst');
  assert.equal(await worst.textContent(), 'error');
  assert.equal(await worst.evaluate((el) => getComputedStyle(el).backgroundColor), BADGE_RGB.error, 'worst status in its colour');
  assert.equal(await card(page, 'web-2').getByTestId('host-count').textContent(), '1/2 services healthy');
  assert.equal(await card(page, 'web-1').getByTestId('host-worst').textContent(), 'healthy');
  assert.equal(await card(page, 'web-1').getByTestId('host-worst').evaluate((el) => getComputedStyle(el).backgroundColor), BADGE_RGB.healthy);
  assert.equal(await card(page, 'web-1').getByTestId('host-count').textContent(), '2/2 services healthy');
  assert.match(await card(page, 'web-2').getAttribute('aria-label'), /^web-2: up · \d+ s ago, 1\/2 services healthy, worst status error \(1 error\)\.$/);
  // The sparkline draws the API's blocks: web-2 has one failing service of two, so 50 %.
  const api = await getJson(`${base}/api/hosts`);
  for (const h of api.hosts) {
    const svg = card(page, h.name).locator('svg.uptime');
    assert.match(await svg.locator('path').getAttribute('d'), /^M[\d.]+ [\d.]+/, `${h.name}: a sparkline`);
    const label = await svg.getAttribute('aria-label');
    const newest = h.uptime_1h[h.uptime_1h.length - 1];
    assert.ok(newest != null && label.endsWith(`${newest.toFixed(1)} %.`), `${h.name}: the newest block ${newest} in ${label}`);
  }
  assert.ok(api.hosts.find((h) => h.name === 'web-2').uptime_1h.some((v) => v === 50), 'web-2 healthy half of its checks');
  assert.ok(requests.every((r) => r.path === '/api/hosts'), `the overview asks for nothing else: ${requests.map((r) => r.path)}`);
  step('overview: three cards, up with their age, worst status in its colour, the hour\'s sparkline');

  // Stop web-3: its card turns stale within its threshold and one poll.
  const threshold = api.hosts.find((h) => h.name === 'web-3').stale_after_seconds;
  const stopped = Date.now();
  await stop(agents['web-3'].child);
  await page.locator('a.host-card.host-stale[data-host="web-3"]').waitFor({ timeout: threshold * 1000 + CURRENT_EVERY_MS + 1500 });
  const staleMs = Date.now() - stopped;
  assert.match(await card(page, 'web-3').getByTestId('host-state').textContent(), /^stale · \d+ s ago$/);
  await eventually('the API says stale too', async () => {
    const now = await getJson(`${base}/api/hosts`);
    assert.deepEqual(now.hosts.map((h) => h.state), ['up', 'up', 'stale']);
  }, CURRENT_EVERY_MS);
  assert.equal(await page.getByTestId('fleet-stale').textContent(), '1');
  assert.equal(await page.title(), '(2) All hosts · Heartbeat Monitor', 'web-2 failing, web-3 stale');
  for (const host of ['web-1', 'web-2']) assert.doesNotMatch(await card(page, host).getAttribute('class'), /host-stale/);
  const pace = requests.filter((r) => r.path === '/api/hosts').map((r) => r.at);
  const gaps = pace.slice(1).map((t, i) => t - pace[i]);
  assert.ok(gaps.length >= 1 && gaps.every((g) => g > CURRENT_EVERY_MS - 500 && g < CURRENT_EVERY_MS + 1500), `hosts polled every 5 s: ${gaps}`);
  step(`stopped web-3: stale on its card after ${staleMs} ms (threshold ${threshold} s, poll ${CURRENT_EVERY_MS / 1000} s)`);
  await shoot(page, 'fleet-overview', SHOTS);

  // Keyboard: the cards follow the switcher in the tab order; Enter opens a host's view.
  await page.getByTestId('host-switcher').focus();
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.dataset.host), 'web-1');
  let since = requests.length;
  await page.keyboard.press('Enter');
  await page.getByTestId('state').filter({ hasText: 'Connected' }).waitFor({ timeout: 10000 });
  assert.equal(await hashHost(page), 'web-1');
  assert.equal(await cards.first().isVisible(), false, 'the overview is gone');
  assert.deepEqual(await shownServices(page), ['api', 'auth']);
  await eventually('the view\'s alerts and incidents asked for', () => {
    const paths = new Set(hostRequests(since).map((r) => r.path));
    for (const p of ['/api/live', '/api/alerts', '/api/incidents']) assert.ok(paths.has(p), `${p} asked`);
  }, 15000);
  assert.deepEqual([...new Set(hostRequests(since).map((r) => r.host))], ['web-1'], 'every request names the host');
  assert.equal(await page.getByTestId('all-hosts').isVisible(), true);
  step('Enter on a card: web-1\'s view, its services, host=web-1 on every request, #host=web-1');

  // The switcher: stale hosts marked; another host in place, its own services.
  const options = await page.getByTestId('host-switcher').locator('option').allTextContents();
  assert.deepEqual(options, ['All hosts (3)', 'web-1', 'web-2 · 1 failing', 'web-3 (stale)']);
  since = requests.length;
  await page.getByTestId('host-switcher').selectOption('web-2');
  await waitForServices(page, 'web-2');
  assert.equal(await hashHost(page), 'web-2');
  await page.getByTestId('summary-title').filter({ hasText: '1 of 2 failing' }).waitFor({ timeout: 10000 });
  assert.match(await page.locator('article.service[data-service="payments"] [data-testid="badge"]').textContent(), /^error 500/);
  assert.deepEqual([...new Set(hostRequests(since).map((r) => r.host))], ['web-2']);
  assert.equal(await page.title(), '(1) web-2 · Heartbeat Monitor');
  step('switcher: web-2 in place, payments failing, host=web-2');

  // Back and forward between the two hosts; a reload keeps the host.
  await page.goBack();
  await waitForServices(page, 'web-1');
  assert.equal(await hashHost(page), 'web-1');
  await page.goForward();
  await waitForServices(page, 'web-2');
  since = requests.length;
  await page.reload();
  await waitForServices(page, 'web-2');
  assert.ok(hostRequests(since).every((r) => r.host === 'web-2'), 'after a reload too');
  step('back, forward and reload keep the host in the URL');

  // A stale host's view says whose agent is not reporting.
  await page.getByTestId('host-switcher').selectOption('web-3');
  await waitForServices(page, 'web-3');
  const fresh = (await getJson(`${base}/api/live?range=live&host=web-3`)).freshness;
  assert.equal(fresh && fresh.stale, true, `web-3's freshness: ${JSON.stringify(fresh)}`);
  await page.getByTestId('stale-banner').filter({ hasText: /Agent on web-3 not reporting for \d+ s/ }).waitFor({ timeout: 10000 });
  await page.getByTestId('host-switcher').selectOption('web-2');
  await waitForServices(page, 'web-2');
  await page.locator('#tab-general').click();
  await page.waitForFunction(() => Chart.getChart(document.querySelector('canvas[data-chart="overview"]')));
  await page.waitForTimeout(1500);
  await shoot(page, 'fleet-host', SHOTS);

  // "All hosts": the overview again, nothing of a host asked for while it shows.
  await page.getByTestId('all-hosts').click();
  await cards.nth(2).waitFor({ timeout: 5000 });
  assert.equal(await hashHost(page), null);
  since = requests.length;
  await page.waitForTimeout(CURRENT_EVERY_MS + 500);
  assert.ok(requests.length > since && hostRequests(since).length === 0, 'the overview polls /api/hosts only');
  step('"All hosts": the overview again');

  // A hidden tab: the overview's polling pauses, and resumes at once when shown.
  await setHidden(page, true);
  await page.waitForTimeout(300);
  since = requests.length;
  await page.waitForTimeout(CURRENT_EVERY_MS + 1000);
  assert.equal(requests.length, since, 'no request while the tab is hidden');
  const resumed = page.waitForRequest((r) => r.url().endsWith('/api/hosts'), { timeout: 1000 });
  await setHidden(page, false);
  await resumed;
  step('hidden tab: the overview\'s polling paused and resumed');

  // A link to a host the fleet does not have: said so, over the overview.
  await page.goto(`${base}/#host=no-such-host`);
  await page.getByTestId('missing-host').waitFor({ timeout: 10000 });
  assert.match(await page.getByTestId('missing-host').textContent(), /no host named “no-such-host”/);
  await cards.nth(2).waitFor();
  assert.equal(await hashHost(page), null);
  step('an unknown #host: a notice and the overview');

  assert.deepEqual(consoleErrors, [], 'no console errors');
  await page.close();
}

async function main() {
  if (!existsSync(join(PG_BIN, 'initdb'))) {
    console.error(`fleet-e2e: ${PG_BIN}/initdb missing (apt-get install postgresql)`);
    process.exit(2);
  }
  mkdirSync(SHOTS, { recursive: true });
  const started = Date.now();
  const work = mkdtempSync(join(tmpdir(), 'hb-fleet-e2e-'));
  // Apart from `work` (mode 700, ours): the server's user must reach its own folder.
  const pgDir = mkdtempSync(join(tmpdir(), 'hb-fleet-e2e-pg-'));
  const services = await startServices();
  const pg = await startPostgres(pgDir);
  const agents = {};
  let dash = null;
  let browser = null;
  try {
    // One host first: the page as on one host; then the others join and it shows the overview.
    agents['web-1'] = startAgent('web-1', work, pg.url, services);
    dash = await startDashboard(BIN, null, { FLEET_DATABASE_URL: pg.url });
    await eventually('web-1 up in /api/hosts', async () => {
      const j = await getJson(`${dash.base}/api/hosts`);
      assert.deepEqual(j.hosts.map((h) => [h.name, h.state]), [['web-1', 'up']]);
    }, 60000).catch((e) => {
      console.error(`--- web-1:\n${agents['web-1'].log}`);
      throw e;
    });
    browser = await launch();
    const lone = await loneHost(browser.context, dash.base);
    for (const name of ['web-2', 'web-3']) agents[name] = startAgent(name, work, pg.url, services);
    await eventually('three hosts up in /api/hosts', async () => {
      const j = await getJson(`${dash.base}/api/hosts`);
      assert.equal(j.fleet, true);
      assert.deepEqual(j.hosts.map((h) => [h.name, h.state]), Object.keys(HOSTS).map((n) => [n, 'up']));
      assert.ok(j.hosts.every((h) => h.uptime_1h.at(-1) != null), 'a block with checks');
    }, 60000).catch((e) => {
      for (const [name, a] of Object.entries(agents)) console.error(`--- ${name}:\n${a.log}`);
      throw e;
    });
    // Why the page always names the host on a fleet.
    assert.equal((await fetch(`${dash.base}/api/live?range=live`)).status, 400, 'live without host on a fleet');
    step(`three agents shipping, dashboard on ${dash.base}`);
    await lone.page.locator('a.host-card').nth(2).waitFor({ timeout: HOSTS_IN_VIEW_EVERY_MS + 2000 });
    assert.equal(await lone.page.getByTestId('summary').isVisible(), false, 'nothing of the lone host left');
    assert.equal(await lone.page.locator('#panel-general').isVisible(), false);
    assert.deepEqual(lone.consoleErrors, []);
    await lone.page.close();
    step('hosts joined: the open page turned into the overview');
    await run(browser.context, dash.base, agents);
  } finally {
    if (browser) await browser.close();
    if (dash) await stop(dash.child);
    for (const a of Object.values(agents)) await stop(a.child);
    services.server.close();
    pg.stop();
    rmSync(work, { recursive: true, force: true });
    rmSync(pgDir, { recursive: true, force: true });
  }
  console.log(`fleet-e2e: ok in ${((Date.now() - started) / 1000).toFixed(1)} s (screenshots in ${SHOTS}/)`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
