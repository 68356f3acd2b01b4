// End-to-end test of the mock's controller page: the real `heartbeat mock` binary, driven by
// Debian's headless Chromium through playwright-core, with node's fetch as the "agent".
//
//   HB_BIN=target/debug/heartbeat node web/tests/mock-e2e.mjs
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const BIN = required('HB_BIN');
const SHOTS = process.env.HB_SCREENSHOTS || 'screenshots';
const CHROMIUM = process.env.HB_CHROMIUM || '/usr/bin/chromium';
const KEY = 'test-key';
// The page polls every 1 s; a few polls of slack for a loaded 2-core machine.
const SEEN_MS = 5000;

function required(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`mock-e2e: set ${name}`);
    process.exit(2);
  }
  return v;
}

function step(msg) {
  console.log(`mock-e2e: ${msg}`);
}

// Starts the mock on a free port (`--port 0`; it logs the chosen address).
function startMock() {
  const child = spawn(BIN, ['mock', '--port', '0', '--bind', '127.0.0.1'], {
    env: { ...process.env, SECRET_KEY: KEY, LOG_FORMAT: 'json', NO_COLOR: '1', RUST_LOG: 'info' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const out = { log: '' };
  child.stderr.on('data', (chunk) => { out.log += chunk; });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`mock did not start:\n${out.log}`)), 20000);
    child.on('exit', (code) => reject(new Error(`mock exited with ${code}:\n${out.log}`)));
    const onData = () => {
      const m = /mock listening.*?"addr":"([^"]+)"|"addr":"([^"]+)".*?mock listening/.exec(out.log);
      if (m) {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        child.stderr.off('data', onData);
        resolve({ child, out, base: `http://${m[1] || m[2]}` });
      }
    };
    child.stderr.on('data', onData);
  });
}

// Polls the exit status (as web/tests/e2e.mjs does); SIGKILL when a graceful stop takes over 5 s.
async function stop(child) {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  for (let i = 0; child.exitCode === null && child.signalCode === null; i++) {
    if (i === 100) child.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 50));
  }
  return { code: child.exitCode, signal: child.signalCode };
}

async function getJson(url) {
  const res = await fetch(url);
  assert.equal(res.status, 200, url);
  return res.json();
}

// Retries `check` (which throws while the condition does not hold) until it passes or times out.
async function eventually(what, check, ms = SEEN_MS) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await check();
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms: ${e.message}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function shoot(page, name) {
  for (const [label, width, height] of [['desktop', 1280, 900], ['phone', 390, 844]]) {
    await page.setViewportSize({ width, height });
    await page.waitForTimeout(300);
    // Screenshot first, so a failing layout check leaves the picture to look at.
    await page.screenshot({ path: join(SHOTS, `${name}-${label}.png`), fullPage: true });
    const scroll = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(scroll <= 0, `${name} at ${label}: page is ${scroll}px wider than the viewport`);
    // The table's own scroller is a fallback for long names; the stock services must fit.
    const tableScroll = await page.locator('#services').evaluate((el) => {
      const wrap = el.closest('.table-wrap') || el.closest('table');
      return wrap.scrollWidth - wrap.clientWidth;
    });
    assert.ok(tableScroll <= 0, `${name} at ${label}: services table is ${tableScroll}px too wide`);
  }
  await page.setViewportSize({ width: 1280, height: 900 });
}

async function main() {
  mkdirSync(SHOTS, { recursive: true });
  const profile = mkdtempSync(join(tmpdir(), 'hb-mock-e2e-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-quic'],
  });
  let mock = null;
  try {
    mock = await startMock();
    const { base } = mock;
    step(`mock at ${base}`);

    const page = await context.newPage();
    const consoleErrors = [];
    page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(`${m.text()} (${m.location().url})`); });
    page.on('pageerror', (e) => consoleErrors.push(String(e)));

    // 1. The page loads and fills itself from the API.
    await page.goto(`${base}/`);
    await page.locator('#status').filter({ hasText: 'connected' }).waitFor({ timeout: 10000 });
    const cfg0 = await getJson(`${base}/api/config`);
    assert.equal(cfg0.mode, 'AUTO');
    const rows = page.locator('#services tr[data-service]');
    assert.deepEqual(await rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.service)), Object.keys(cfg0.services),
      'one row per simulated service');
    assert.deepEqual(await page.locator('#mode option').evaluateAll((os) => os.map((o) => o.value)), cfg0.modes,
      'mode choices from the API');
    assert.equal(await page.locator('#mode').inputValue(), 'AUTO');
    assert.equal(await page.locator('#online').isChecked(), true);
    assert.equal(await page.locator('tr[data-service="slow"] input.delay').inputValue(), '1200');
    step('page loaded: services, modes and values from /api/config');

    // 2. Page → mock: the mode control changes the mock's config.
    await page.locator('#mode').selectOption('CRITICAL');
    await eventually('mode CRITICAL in /api/config', async () =>
      assert.equal((await getJson(`${base}/api/config`)).mode, 'CRITICAL'));
    // Several 1 s refreshes later the control still shows the new value (no stale overwrite).
    await page.waitForTimeout(2200);
    assert.equal(await page.locator('#mode').inputValue(), 'CRITICAL');
    step('mode switched to CRITICAL from the page');

    // A service's behaviour, and that the simulated service really behaves so.
    assert.equal((await fetch(`${base}/svc/healthy`)).status, 200);
    await page.locator('tr[data-service="healthy"] select.behavior').selectOption('notfound');
    await eventually('healthy → notfound in /api/config', async () =>
      assert.equal((await getJson(`${base}/api/config`)).services.healthy.behavior, 'notfound'));
    assert.equal((await fetch(`${base}/svc/healthy`)).status, 404, '/svc/healthy now answers 404');
    // A delay typed into the page.
    const delay = page.locator('tr[data-service="error500"] input.delay');
    await delay.fill('250');
    await delay.press('Enter');
    await eventually('error500 delay in /api/config', async () =>
      assert.equal((await getJson(`${base}/api/config`)).services.error500.delay_ms, 250));
    // The online switch.
    await page.locator('#online').uncheck();
    await eventually('online off in /api/config', async () =>
      assert.equal((await getJson(`${base}/api/config`)).online, false));
    await page.locator('#receiver').filter({ hasText: 'receiver offline (503)' }).waitFor({ timeout: SEEN_MS });
    await page.locator('#online').check();
    await eventually('online on in /api/config', async () =>
      assert.equal((await getJson(`${base}/api/config`)).online, true));
    step('service behaviour, delay and online switch changed from the page');

    // Mock → page: a change made through the API shows up in the controls.
    const posted = await fetch(`${base}/api/config`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ host_status: 'offline', services: { flapping: { behavior: 'down' } } }),
    });
    assert.equal(posted.status, 200);
    await eventually('API change shown on the page', async () => {
      assert.equal(await page.locator('#host-status').inputValue(), 'offline');
      assert.equal(await page.locator('tr[data-service="flapping"] select.behavior').inputValue(), 'down');
    });
    step('a change made through the API shows up on the page');

    // 3. Requests from the "agent" appear in the log view.
    assert.equal((await fetch(`${base}/svc/notfound`)).status, 404);
    const hb = await fetch(`${base}/api/heartbeat`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${KEY}` },
      body: JSON.stringify({ services: { 'mock-e2e-svc': { status: 'healthy' } } }),
    });
    assert.equal(hb.status, 500, 'CRITICAL answers 500');
    assert.equal((await hb.json()).result, 'error');
    const bad = await fetch(`${base}/api/heartbeat`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: 'Bearer wrong-key' },
      body: JSON.stringify({ services: {} }),
    });
    assert.equal(bad.status, 401);
    const log = page.locator('#log');
    await eventually('request lines in #log', async () => {
      const text = await log.innerText();
      assert.match(text, /GET \/svc\/notfound 404/);
      assert.match(text, /POST \/api\/heartbeat 500 error services=1/);
      assert.match(text, /POST \/api\/heartbeat 401/);
      assert.match(text, /config /);
    });
    const logText = await log.innerText();
    assert.ok(!logText.includes(KEY) && !logText.includes('wrong-key'), 'no key in the request log');
    assert.ok(!/GET \/api\/(logs|config|alerts|heartbeat)/.test(logText), "the page's own polling is not logged");
    await eventually('last heartbeat shown', async () => {
      assert.match(await page.locator('#heartbeat').innerText(), /mock-e2e-svc/);
      assert.match(await page.locator('#hb-count').innerText(), /\(1 received\)/);
    });
    step('agent requests shown in the log view; last heartbeat shown');

    // 4. Alerts posted to the sink appear in the list, newest at the top.
    for (const [title, message] of [['svc-a is DOWN', 'first alert'], ['svc-b is ERROR', 'second alert\nline two']]) {
      const res = await fetch(`${base}/api/alerts`, {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ title, message }),
      });
      assert.equal(res.status, 200);
      assert.equal((await res.json()).result, 'received');
    }
    await eventually('alerts in #alerts', async () => {
      const items = await page.locator('#alerts li').allInnerTexts();
      assert.equal(items.length, 2, `two alerts listed: ${JSON.stringify(items)}`);
      assert.match(items[0], /#2 svc-b is ERROR/);
      assert.match(items[0], /second alert\nline two/);
      assert.match(items[1], /#1 svc-a is DOWN/);
      assert.match(await page.locator('#alert-count').innerText(), /\(2\)/);
    });
    step('posted alerts listed, newest first');

    // A longer log so the screenshots show a realistic page.
    for (const name of ['healthy', 'error500', 'slow', 'flapping', 'nope']) await fetch(`${base}/svc/${name}`).catch(() => {});
    await page.waitForTimeout(1500);
    await shoot(page, 'mock');
    step('screenshots taken');

    assert.deepEqual(consoleErrors, [], 'no console errors while the mock was up');
    // The page stops polling before the mock goes, so its fetch errors don't hold the shutdown.
    await page.close();

    // 5. SIGTERM: a clean exit.
    const { code, signal } = await stop(mock.child);
    assert.equal(signal, null, `mock ended by ${signal}:\n${mock.out.log}`);
    assert.equal(code, 0, `mock exit code:\n${mock.out.log}`);
    assert.match(mock.out.log, /mock stopped/);
    assert.ok(!mock.out.log.includes(KEY), 'no key in the mock\'s own log');
    step('SIGTERM: exited 0');
  } finally {
    await context.close();
    if (mock) await stop(mock.child);
    rmSync(profile, { recursive: true, force: true });
  }
  console.log(`mock-e2e: ok (screenshots in ${SHOTS}/)`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
