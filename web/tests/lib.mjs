// Helpers of the page's end-to-end tests: the real binary's processes and Debian's Chromium.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.HB_CHROMIUM || '/usr/bin/chromium';

export function required(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`set ${name}`);
    process.exit(2);
  }
  return v;
}

// A fresh profile, no browser download, nothing from the network but the page under test.
export async function launch() {
  const profile = mkdtempSync(join(tmpdir(), 'hb-page-e2e-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-quic'],
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

// Starts `heartbeat dashboard` on a free port (it binds port 0 and logs the address). A null
// `dbPath` leaves SQLITE_DB_PATH to `env` (a fleet dashboard reads FLEET_DATABASE_URL).
export function startDashboard(bin, dbPath, env = {}) {
  const db = dbPath == null ? {} : { SQLITE_DB_PATH: dbPath };
  const child = spawn(bin, ['dashboard', '--bind', '127.0.0.1:0'], {
    env: { ...process.env, ...db, LOG_FORMAT: 'json', NO_COLOR: '1', RUST_LOG: 'info', ...env },
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

// Starts `heartbeat demo` (mock + agent + dashboard) on free ports in `dir`; resolves with the
// URLs it prints.
export function startDemo(bin, dir, env = {}) {
  const child = spawn(bin, ['demo', '--no-outage'], {
    cwd: dir,
    env: {
      ...process.env, MOCK_PORT: '0', DASHBOARD_BIND: '127.0.0.1:0', DOCKER_HOST: 'unix:///nonexistent/docker.sock',
      LOG_FORMAT: 'json', NO_COLOR: '1', RUST_LOG: 'warn', ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stderr.resume();
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`demo did not start:\n${out}`)), 30000);
    child.on('exit', (code) => reject(new Error(`demo exited with ${code}:\n${out}`)));
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const dash = /dashboard:\s+(\S+)/.exec(out);
      const ctl = /controller:\s+(\S+)/.exec(out);
      if (dash && ctl) {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        resolve({ child, base: dash[1].replace(/\/$/, ''), controller: ctl[1].replace(/\/$/, '') });
      }
    });
  });
}

// Polls the exit status; SIGKILL when a graceful shutdown takes over 5 s.
export async function stop(child) {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  for (let i = 0; child.exitCode === null && child.signalCode === null; i++) {
    if (i === 100) child.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function getJson(url, init) {
  const res = await fetch(url, init);
  if (res.status !== 200) throw new Error(`${url}: HTTP ${res.status}`);
  return res.json();
}

// Retries `check` (which throws while its condition does not hold) until it passes.
export async function eventually(what, check, ms) {
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

// Screenshots of `page` at 1280 and 390 px into `dir` (`<name>-desktop.png`, `<name>-phone.png`),
// asserting that neither is wider than its viewport.
export async function shoot(page, name, dir) {
  for (const [label, width, height] of [['desktop', 1280, 900], ['phone', 390, 844]]) {
    await page.setViewportSize({ width, height });
    await page.waitForTimeout(400); // Chart.js resizes on its ResizeObserver callback
    const scroll = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(scroll <= 0, `${name} at ${label}: page is ${scroll}px wider than the viewport`);
    await page.screenshot({ path: join(dir, `${name}-${label}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: 1280, height: 900 });
}
