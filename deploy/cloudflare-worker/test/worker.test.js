// What only the Worker has: settings checked on every request and cron run (a grace under the
// Cron Trigger's minute is refused, no key is echoed), the watchdog's timing at pinned
// scheduledTimes, the deploy configuration, and the pure decisions and texts.

import assert from "node:assert/strict";
import path from "node:path";
import { describe, test } from "node:test";

import { unstable_readConfig } from "wrangler";

import { loadConfig } from "../src/config.js";
import { formatDuration, iso, parseServices, timeText } from "../src/decide.js";
import { request, waitFor } from "./support/http.js";
import { startSink } from "./support/sink.js";
import { WORKER_DIR, missing, startTarget } from "./support/targets.js";

const KEY = "wk_5ecret_key_for_the_worker_01";

describe("settings", () => {
  test("the Rust receiver's names and defaults; SECRET_KEY alone is agent 'default'", () => {
    const { config } = loadConfig({ SECRET_KEY: " k1 " });
    assert.deepEqual(config.agents, [{ name: "default", key: "k1", graceMs: 60_000 }]);
    assert.equal(config.tz, "UTC");
    assert.equal(config.webhookUrl, undefined);
    const named = loadConfig({
      SECRET_KEY: "ignored-when-agents-are-named",
      RECEIVER_AGENT_web: "kw",
      RECEIVER_AGENT_db: " kd ",
      RECEIVER_GRACE_SECONDS: "90",
      RECEIVER_GRACE_SECONDS_db: "120.5",
      N8N_WEBHOOK_URL: "https://n8n.test/webhook/tok",
      TZ: ":America/Lima",
      RECEIVER_STATE: {},
    }).config;
    assert.deepEqual(
      named.agents.map((a) => [a.name, a.key, a.graceMs]),
      [
        ["db", "kd", 120_500],
        ["web", "kw", 90_000],
      ],
    );
    assert.equal(named.tz, "America/Lima");
  });

  test("every problem at once, a grace under a minute refused, no key or token echoed", () => {
    const { problems, config } = loadConfig({
      RECEIVER_GRACE_SECONDS: "30",
      RECEIVER_AGENT_a: "same-key-123",
      RECEIVER_AGENT_b: "same-key-123",
      RECEIVER_AGENT_c: "line\nbreak-key",
      RECEIVER_AGENT_d: "  ",
      RECEIVER_GRACE_SECONDS_zz: "90",
      RECEIVER_GRACE_SECONDS_a: "soon",
      N8N_WEBHOOK_URL: "ftp://hook.test/s3cr3t",
      TZ: "Mars/Base",
    });
    assert.equal(config, undefined);
    assert.deepEqual(
      problems.map((p) => p.variable),
      [
        "RECEIVER_GRACE_SECONDS",
        "N8N_WEBHOOK_URL",
        "TZ",
        "RECEIVER_AGENT_c",
        "RECEIVER_AGENT_d",
        "RECEIVER_AGENT_b",
        "RECEIVER_GRACE_SECONDS_a",
        "RECEIVER_GRACE_SECONDS_zz",
      ],
    );
    assert.match(problems[0].message, /'30' is not valid .*from 60 to 604800.*once a minute/);
    const text = JSON.stringify(problems);
    for (const secret of ["same-key-123", "break-key", "s3cr3t"]) assert.ok(!text.includes(secret), text);
    assert.deepEqual(
      loadConfig({}).problems.map((p) => p.variable),
      ["RECEIVER_AGENT_"],
    );
    for (const grace of ["59.9", "0", "-60", "1e9", "sixty", "Infinity"]) {
      const p = loadConfig({ SECRET_KEY: "k", RECEIVER_GRACE_SECONDS_default: grace }).problems;
      assert.deepEqual(
        p?.map((x) => x.variable),
        ["RECEIVER_GRACE_SECONDS_default"],
        grace,
      );
    }
    assert.equal(loadConfig({ SECRET_KEY: "k", RECEIVER_GRACE_SECONDS: "60" }).config.agents[0].graceMs, 60_000);
  });

  test("wrangler.toml: the watchdog every minute, one SQLite Durable Object, no key in it", () => {
    const config = unstable_readConfig({ config: path.join(WORKER_DIR, "wrangler.toml") });
    assert.deepEqual(config.triggers.crons, ["* * * * *"]);
    assert.deepEqual(config.durable_objects.bindings, [{ name: "RECEIVER_STATE", class_name: "ReceiverState" }]);
    assert.deepEqual(config.migrations, [{ tag: "v1", new_sqlite_classes: ["ReceiverState"] }]);
    assert.deepEqual(
      Object.keys(config.vars).filter((k) => k.startsWith("RECEIVER_AGENT_") || k === "SECRET_KEY" || k === "N8N_WEBHOOK_URL"),
      [],
    );
    assert.equal(loadConfig({ ...config.vars, SECRET_KEY: "k" }).problems, undefined, "the shipped vars are valid");
  });
});

describe("decisions and texts", () => {
  test("durations read like the Rust receiver's", () => {
    for (const [ms, want] of [
      [0, "0s"],
      [-5, "0s"],
      [59_999, "59s"],
      [61_000, "1m 1s"],
      [3_600_000, "1h 0m 0s"],
      [90_061_000, "1d 1h 1m 1s"],
    ]) {
      assert.equal(formatDuration(ms), want);
    }
  });

  test("times in TZ, with the zone's offset", () => {
    const ms = Date.UTC(2026, 11, 3, 4, 5, 6, 78);
    assert.equal(timeText(ms, "America/Lima"), "2026-12-02 23:05:06");
    assert.equal(iso(ms, "America/Lima"), "2026-12-02T23:05:06.078-05:00");
    assert.equal(iso(ms, "UTC"), "2026-12-03T04:05:06.078+00:00");
    assert.equal(iso(ms, "Asia/Kolkata"), "2026-12-03T09:35:06.078+05:30");
  });

  test("heartbeat bodies of the agent's contract", () => {
    assert.deepEqual(parseServices('{"services":{"b":{"status":"down"},"a":{"status":"healthy","x":1}}}'), {
      services: [
        ["b", "down"],
        ["a", "healthy"],
      ],
    });
    assert.deepEqual(parseServices('{"services":{}}'), { services: [] });
    for (const [body, says] of [
      ["{", "not valid JSON"],
      ["[]", "expected {"],
      ["null", "expected {"],
      ['{"services":[]}', "expected {"],
      ['{"services":{"a":"healthy"}}', "services.a:"],
      ['{"services":{"a":{"status":"Healthy"}}}', "'Healthy' is not a status"],
      [`{"services":{"${"n".repeat(60)}":{"status":1}}}`, `services.${"n".repeat(40)}…:`],
    ]) {
      const { detail } = parseServices(body);
      assert.ok(detail?.includes(says), `${body}: ${detail}`);
    }
  });
});

const skip = missing("worker");
describe("the Worker in Miniflare", { skip }, () => {
  test("refuses to run with a grace under a minute, and says why without the key", async (t) => {
    const r = await startTarget("worker", {
      agents: [["web", KEY]],
      extraVars: { RECEIVER_GRACE_SECONDS: "30" },
    });
    t.after(() => r.stop());
    for (const p of ["/api/heartbeat", "/api/agents", "/health"]) {
      const a = await request(r.base, p, {
        method: p === "/api/heartbeat" ? "POST" : "GET",
        auth: `Bearer ${KEY}`,
        body: p === "/api/heartbeat" ? '{"services":{}}' : undefined,
      });
      assert.equal(a.status, 503, `${p}: ${a.raw}`);
      assert.equal(a.json.result, "misconfigured");
      assert.match(a.json.problems.join("\n"), /^RECEIVER_GRACE_SECONDS: '30' is not valid/);
      assert.ok(!a.raw.includes(KEY), a.raw);
    }
    assert.notEqual(await r.tick(Date.now()), "ok", "the watchdog does not run on invalid settings");
    assert.match(r.log(), /RECEIVER_GRACE_SECONDS: '30' is not valid/);
    assert.ok(!r.log().includes(KEY));
  });

  test("the watchdog at pinned times: nothing within the grace, one alarm past it", async (t) => {
    const sink = await startSink();
    t.after(() => sink.close());
    const r = await startTarget("worker", { agents: [["web", KEY]], webhookUrl: sink.url("/hook") });
    t.after(() => r.stop());
    const a = await request(r.base, "/api/heartbeat", {
      method: "POST",
      auth: `Bearer ${KEY}`,
      body: '{"services":{"api":{"status":"healthy"}}}',
    });
    assert.equal(a.status, 200, a.raw);
    const seen = (await request(r.base, "/api/agents")).json.agents[0].last_seen_ms;
    assert.equal(await r.tick(seen + 60_000), "ok");
    const list = await request(r.base, "/api/agents");
    assert.equal(list.json.agents[0].alerts.length, 0, "no alarm at exactly the grace");
    assert.equal(await r.tick(seen + 60_001), "ok");
    const after = (await request(r.base, "/api/agents")).json.agents[0];
    assert.equal(after.alerts.length, 1, JSON.stringify(after));
    assert.equal(after.alerts[0].title, "🔴 Agent silent: web");
    assert.match(after.alerts[0].message, /\*\*Silent for:\*\* 1m 0s \(grace 1m 0s\)/);
    assert.equal(await r.tick(seen + 600_000), "ok");
    assert.equal((await request(r.base, "/api/agents")).json.agents[0].alerts.length, 1, "one alarm per silence");
  });

  test("an alert whose delivery was cut off is sent late a minute on; after an hour, never", async (t) => {
    const sink = await startSink();
    t.after(() => sink.close());
    const r = await startTarget("worker", { agents: [["web", KEY]], webhookUrl: sink.url("/hook") });
    t.after(() => r.stop());
    const a = await request(r.base, "/api/heartbeat", { method: "POST", auth: `Bearer ${KEY}`, body: '{"services":{}}' });
    assert.equal(a.status, 200, a.raw);
    const seen = (await request(r.base, "/api/agents")).json.agents[0].last_seen_ms;
    const raisedAt = seen + 61_000;
    assert.equal(await r.tick(raisedAt), "ok");
    const delivered = async () => (await request(r.base, "/api/agents")).json.agents[0].alerts[0]?.delivery_state;
    await waitFor("the first delivery", 10_000, async () => (await delivered()) === "delivered");
    assert.equal(sink.posted.length, 1);
    // As if the runtime had ended the delivery before its outcome was stored.
    r.sql("UPDATE alerts SET delivery_state = 'pending', attempts = 0, delivered_at = NULL");
    assert.equal(await r.tick(raisedAt + 30_000), "ok");
    assert.equal(sink.posted.length, 1, "not while a delivery may still be running");
    assert.equal(await r.tick(raisedAt + 61_000), "ok");
    await waitFor("the late delivery", 10_000, async () => (await delivered()) === "delivered");
    assert.equal(sink.posted.length, 2);
    assert.equal(sink.posted[1].body.title, "🔴 Agent silent: web");
    assert.match(sink.posted[1].body.message, /\n\n\*\*Delivered late:\*\* /);
    r.sql("UPDATE alerts SET delivery_state = 'pending', attempts = 0, delivered_at = NULL");
    assert.equal(await r.tick(raisedAt + 3_600_001), "ok");
    assert.equal(await delivered(), "given_up");
    assert.equal(sink.posted.length, 2, "too old to send");
  });

  test("other paths and methods of the read side", async (t) => {
    const r = await startTarget("worker", { agents: [["web", KEY]] });
    t.after(() => r.stop());
    const health = await request(r.base, "/health");
    assert.deepEqual(health.json, { status: "ok", role: "receiver", agents: 1 });
    const missingPath = await request(r.base, "/nowhere");
    assert.deepEqual([missingPath.status, missingPath.json], [404, { result: "not-found" }]);
    const metrics = await request(r.base, "/metrics");
    assert.match(metrics.raw, /^heartbeat_receiver_agent_up\{agent="web"\} 0$/m);
    assert.match(metrics.raw, /^heartbeat_receiver_agent_grace_seconds\{agent="web"\} 60$/m);
    assert.match(metrics.raw, /^heartbeat_receiver_store_readable 1$/m);
    const list = (await request(r.base, "/api/agents")).json;
    assert.match(list.now, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}-05:00$/);
    assert.deepEqual(list.agents[0], {
      name: "web",
      state: "never seen",
      last_seen: null,
      last_seen_ms: null,
      seconds_since_heartbeat: null,
      silent_for_seconds: null,
      grace_seconds: 60,
      heartbeats: 0,
      services: {},
      alerts: [],
    });
  });
});
