// The receiver's contract (README "The receiver"), run against both receivers: the Rust binary
// and the Worker in Miniflare. Every answer of the table provoked for real (500/220/221 through
// the real SQLite state, the same statements for both), silence and recovery alerts delivered
// to a webhook sink with the retry policy, and a restart that keeps the state. Everything talks
// only to 127.0.0.1.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { request, oversized, waitFor } from "./support/http.js";
import { startSink } from "./support/sink.js";
import { missing, startTarget } from "./support/targets.js";

const KEY_WEB = "rk_web_5ecret_key_0001";
const KEY_DB = "rk_db_5ecret_key_0002";
const HOOK_TOKEN = "hook-t0ken-7f3a";
const SECRETS = [KEY_WEB, KEY_DB, HOOK_TOKEN];
const GOOD = JSON.stringify({ services: { api: { status: "healthy" } } });

function assertNoSecret(what, text) {
  for (const secret of SECRETS) assert.ok(!text.includes(secret), `${secret} leaked in ${what}: ${text}`);
}

function beat(target, key, services = { api: "healthy", db: "healthy" }) {
  const body = { services: Object.fromEntries(Object.entries(services).map(([n, s]) => [n, { status: s }])) };
  return request(target.base, "/api/heartbeat", {
    method: "POST",
    auth: `Bearer ${key}`,
    body: JSON.stringify(body),
    headers: { "content-type": "application/json" },
  });
}

async function agentsList(target) {
  const a = await request(target.base, "/api/agents");
  assert.equal(a.status, 200, a.raw);
  return a.json;
}

async function agent(target, name) {
  const list = await agentsList(target);
  const found = list.agents.find((a) => a.name === name);
  assert.ok(found, `no agent ${name} in ${JSON.stringify(list)}`);
  return found;
}

function expectAnswer(a, status, result, what) {
  assert.deepEqual([a.status, a.json?.result], [status, result], `${what}: ${a.raw}`);
}

const REFUSE_HEARTBEAT =
  "CREATE TRIGGER refuse_heartbeat BEFORE UPDATE OF heartbeats ON agents " +
  "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;";
const REFUSE_RECOVERY =
  "CREATE TRIGGER refuse_recovery BEFORE UPDATE OF alarmed ON agents " +
  "WHEN OLD.alarmed = 1 AND NEW.alarmed = 0 BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;";

for (const kind of ["rust", "worker"]) {
  const skip = missing(kind);
  describe(`the ${kind} receiver`, { skip }, () => {
    let sink;
    // One receiver per test, stopped when it ends (a receiver left running would keep
    // alerting into the shared sink).
    const start = async (t, opts) => {
      const target = await startTarget(kind, { webhookUrl: sink.url(`/webhook/${HOOK_TOKEN}`), ...opts });
      t.after(() => target.stop());
      return target;
    };
    before(async () => {
      sink = await startSink();
    });
    after(async () => {
      await sink?.close();
    });

    test("every answer of the heartbeat table", async (t) => {
      sink.posted.length = 0;
      // `db` is never seen: one alarm once its (short) grace is over, and its first heartbeat
      // is then a recovery; `web` keeps a long grace so it raises nothing meanwhile.
      const r = await start(t, {
        agents: [["web", KEY_WEB], ["db", KEY_DB]],
        graces: { web: "long", db: "short" },
      });
      const answers = [];
      const post = (auth, body) =>
        request(r.base, "/api/heartbeat", { method: "POST", auth, body, headers: { "content-type": "application/json" } });
      const cases = [
        ["recorded", `Bearer ${KEY_WEB}`, GOOD, 200, "recorded"],
        ["no key", undefined, GOOD, 401, "unauthorized"],
        ["wrong key", "Bearer rk_web_5ecret_key_0003", GOOD, 401, "unauthorized"],
        ["not bearer", `Basic ${KEY_WEB}`, GOOD, 401, "unauthorized"],
        ["malformed json", `Bearer ${KEY_WEB}`, '{"services": ', 400, "bad-request"],
        ["wrong shape", `Bearer ${KEY_WEB}`, '{"services": ["api"]}', 400, "bad-request"],
        ["status outside the taxonomy", `Bearer ${KEY_WEB}`, '{"services": {"api": {"status": "sleepy"}}}', 400, "bad-request"],
      ];
      for (const [what, auth, body, status, result] of cases) {
        const a = await post(auth, body);
        expectAnswer(a, status, result, what);
        answers.push([what, a]);
      }
      const unauthorized = answers.find(([w]) => w === "no key")[1];
      assert.equal(unauthorized.headers.get("www-authenticate"), "Bearer");
      const badShape = answers.find(([w]) => w === "status outside the taxonomy")[1];
      assert.match(badShape.json.detail, /'sleepy' is not a status/);
      // Refused on its Content-Length, before any body is sent.
      const big = await oversized(r.base, KEY_WEB, 64 * 1024 + 1);
      assert.equal(big.status, 413, big.raw);
      // Streamed without a Content-Length, the limit still holds (after the key is checked).
      const streamed = (auth) =>
        request(r.base, "/api/heartbeat", {
          method: "POST",
          auth,
          duplex: "half",
          body: new ReadableStream({
            start(c) {
              c.enqueue(new TextEncoder().encode(`{"services": {}, "pad": "${"x".repeat(64 * 1024)}"}`));
              c.close();
            },
          }),
        });
      const chunked = await streamed(`Bearer ${KEY_WEB}`);
      assert.equal(chunked.status, 413, chunked.raw);
      expectAnswer(await streamed("Bearer rk_web_5ecret_key_0003"), 401, "unauthorized", "streamed, wrong key");
      // Exactly 64 KiB is still accepted (padding inside a valid body).
      const padded = JSON.stringify({ services: { api: { status: "healthy", pad: "" } } });
      const exact = JSON.stringify({
        services: { api: { status: "healthy", pad: "x".repeat(64 * 1024 - padded.length) } },
      });
      assert.equal(Buffer.byteLength(exact), 64 * 1024);
      expectAnswer(await post(`Bearer ${KEY_WEB}`, exact), 200, "recorded", "exactly 64 KiB");
      for (const method of ["GET", "PUT", "DELETE"]) {
        const a = await request(r.base, "/api/heartbeat", { method, auth: `Bearer ${KEY_WEB}` });
        expectAnswer(a, 405, "method-not-allowed", method);
        assert.equal(a.headers.get("allow"), "POST", method);
        answers.push([method, a]);
      }
      // Nothing of the refused requests was stored: two heartbeats so far.
      let web = await agent(r, "web");
      assert.equal(web.heartbeats, 2, JSON.stringify(web));
      assert.equal(web.state, "up");
      assert.deepEqual(web.services, { api: "healthy" });
      assert.deepEqual(Object.keys(web).sort(), [
        "alerts",
        "grace_seconds",
        "heartbeats",
        "last_seen",
        "last_seen_ms",
        "name",
        "seconds_since_heartbeat",
        "services",
        "silent_for_seconds",
        "state",
      ]);
      assert.match(web.last_seen, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}-05:00$/);

      // 500: the state refuses to store the heartbeat.
      r.sql(REFUSE_HEARTBEAT);
      let a = await post(`Bearer ${KEY_WEB}`, GOOD);
      expectAnswer(a, 500, "store-failed", "refused store");
      answers.push(["refused store", a]);
      r.sql("DROP TRIGGER refuse_heartbeat");
      expectAnswer(await post(`Bearer ${KEY_WEB}`, GOOD), 200, "recorded", "after the refusal");
      web = await agent(r, "web");
      assert.equal(web.heartbeats, 3, "the refused heartbeat was not counted");

      // 220: the agent's stored state cannot be read (a damaged row); the heartbeat is still
      // stored, and the one after it is ordinary again.
      r.sql("UPDATE agents SET alarmed = 'damaged' WHERE name = 'web'");
      a = await post(`Bearer ${KEY_WEB}`, GOOD);
      expectAnswer(a, 220, "blind", "unreadable state");
      answers.push(["unreadable state", a]);
      expectAnswer(await post(`Bearer ${KEY_WEB}`, GOOD), 200, "recorded", "after the blind one");

      // `db` was never seen: one "never seen" alarm after its grace.
      await r.letGracePass("db");
      await waitFor("the never-seen alarm", 10_000, () => sink.titles("never seen").length === 1);
      assert.deepEqual(sink.titles("never seen"), ["🔴 Agent never seen: db"]);
      assert.equal((await agent(r, "db")).state, "never seen");
      // 221: it comes back, but the state refuses to clear its alarm.
      r.sql(REFUSE_RECOVERY);
      a = await post(`Bearer ${KEY_DB}`, GOOD);
      expectAnswer(a, 221, "recovery-update-failed", "recovery refused");
      answers.push(["recovery refused", a]);
      r.sql("DROP TRIGGER refuse_recovery");
      a = await post(`Bearer ${KEY_DB}`, GOOD);
      expectAnswer(a, 200, "recovered", "back after the silence");
      assert.equal(a.json.agent, "db");
      answers.push(["recovered", a]);
      expectAnswer(await post(`Bearer ${KEY_DB}`, GOOD), 200, "recorded", "the next heartbeat");
      await waitFor("the back alert", 10_000, () => sink.titles("Agent back").length === 1);
      assert.deepEqual(sink.titles("Agent back"), ["✅ Agent back: db"]);
      assert.equal(sink.titles("never seen").length, 1);
      for (const p of sink.posted) {
        assert.equal(p.path, `/webhook/${HOOK_TOKEN}`);
        assert.match(p.contentType, /^application\/json/);
        assert.deepEqual(Object.keys(p.body).sort(), ["message", "title"]);
      }

      // The scheme in any case, the key with surrounding blanks.
      expectAnswer(await post(`bearer ${KEY_WEB}`, GOOD), 200, "recorded", "lowercase scheme");
      expectAnswer(await post(`BEARER   ${KEY_DB}  `, GOOD), 200, "recorded", "blanks around the key");
      expectAnswer(await post(`Bearer ${KEY_WEB}x`, GOOD), 401, "unauthorized", "a longer key");
      expectAnswer(await post(`Bearer ${KEY_WEB.slice(0, -1)}`, GOOD), 401, "unauthorized", "a shorter key");

      for (const [what, ans] of answers) assertNoSecret(what, ans.raw);
      for (const p of ["/api/agents", "/metrics", "/health", "/"]) {
        const page = await request(r.base, p);
        assert.equal(page.status, 200, `${p}: ${page.raw}`);
        assertNoSecret(p, page.raw);
      }
      assertNoSecret("the alerts", JSON.stringify(sink.posted.map((p) => p.body)));
      assertNoSecret("the log", r.log());
    });

    test("silence raises one alert, the return one more, each delivered with the retry policy", async (t) => {
      sink.posted.length = 0;
      const r = await start(t, { agents: [["web", KEY_WEB]] });
      expectAnswer(await beat(r, KEY_WEB, { api: "healthy", db: "down" }), 200, "recorded", "first");
      assert.equal((await agent(r, "web")).state, "up");
      // The webhook fails twice, then takes it: the third attempt delivers.
      sink.answerWith(500, 503);
      await r.letGracePass("web");
      await waitFor("three attempts", 15_000, () => sink.posted.length >= 3);
      assert.deepEqual(
        sink.posted.map((p) => [p.body.title, p.status]),
        [
          ["🔴 Agent silent: web", 500],
          ["🔴 Agent silent: web", 503],
          ["🔴 Agent silent: web", 200],
        ],
      );
      const message = sink.posted[2].body.message;
      assert.match(message, /\*\*Agent:\*\* web/);
      assert.match(message, /\*\*Last services:\*\* api healthy, db down/);
      assert.match(message, /\*\*Time:\*\* \d{4}-\d\d-\d\d \d\d:\d\d:\d\d/);
      let web;
      await waitFor("the delivery stored", 10_000, async () => {
        web = await agent(r, "web");
        return web.alerts[0]?.delivery_state === "delivered";
      });
      assert.equal(web.state, "silent");
      assert.equal(web.alerts.length, 1);
      assert.equal(web.alerts[0].attempts, 3);
      assert.equal(web.alerts[0].title, "🔴 Agent silent: web");
      assert.ok(web.alerts[0].delivered_at, JSON.stringify(web.alerts[0]));
      assert.ok(web.silent_for_seconds >= 0, JSON.stringify(web));

      // Still silent a while longer: no second alarm.
      await r.letGracePass("web");
      expectAnswer(await beat(r, KEY_WEB), 200, "recovered", "back");
      expectAnswer(await beat(r, KEY_WEB), 200, "recorded", "the next");
      await waitFor("the back alert", 10_000, () => sink.titles("Agent back").length === 1);
      const back = sink.posted.find((p) => p.body.title === "✅ Agent back: web");
      assert.match(back.body.message, /\*\*Outage:\*\* /);
      assert.match(back.body.message, /\*\*Services:\*\* api healthy, db healthy/);
      assert.equal(sink.titles("Agent silent").length, 3, "one alarm, posted three times");
      web = await agent(r, "web");
      assert.equal(web.state, "up");
      assert.equal(web.heartbeats, 3);
      // (Sorted: the Worker's alarm carries its pinned scheduledTime, later than the return.)
      assert.deepEqual(web.alerts.map((x) => `${x.old_status} -> ${x.new_status}`).sort(), [
        "silent -> up",
        "up -> silent",
      ]);
    });

    test("a webhook that fails every attempt: three attempts, recorded as failed", async (t) => {
      sink.posted.length = 0;
      const r = await start(t, { agents: [["web", KEY_WEB]] });
      expectAnswer(await beat(r, KEY_WEB), 200, "recorded", "first");
      sink.answerWith(500, 500, 500);
      await r.letGracePass("web");
      let web;
      await waitFor("the failed delivery stored", 20_000, async () => {
        web = await agent(r, "web");
        return web.alerts[0]?.delivery_state === "failed";
      });
      assert.equal(sink.posted.length, 3);
      assert.equal(web.alerts[0].attempts, 3);
      assert.equal(web.alerts[0].last_error, "HTTP 500");
      assert.equal(web.alerts[0].delivered_at, null);
    });

    test("a restart keeps the state: an alarm is not raised twice, a return is still a recovery", async (t) => {
      sink.posted.length = 0;
      const r = await start(t, { agents: [["web", KEY_WEB]] });
      expectAnswer(await beat(r, KEY_WEB, { api: "down" }), 200, "recorded", "first");
      const seen = (await agent(r, "web")).last_seen_ms;
      assert.ok(Number.isInteger(seen));
      await r.letGracePass("web");
      await waitFor("the alarm", 10_000, () => sink.titles("Agent silent: web").length === 1);
      assert.match(sink.posted[0].body.message, /\*\*Last services:\*\* api down/);
      // Its delivery stored before the restart (an undelivered one would rightly be sent again).
      await waitFor("the delivery stored", 10_000, async () => (await agent(r, "web")).alerts[0]?.delivery_state === "delivered");

      await r.restart();
      let web = await agent(r, "web");
      assert.equal(web.state, "silent", JSON.stringify(web));
      assert.equal(web.last_seen_ms, seen, "the last heartbeat survives");
      assert.equal(web.heartbeats, 1);
      assert.deepEqual(web.services, { api: "down" });
      assert.equal(web.alerts.length, 1);
      // Alarmed before the restart: still alarmed after it, so no second alarm.
      await r.letGracePass("web");
      assert.equal(sink.titles("Agent silent").length, 1, JSON.stringify(sink.posted));
      expectAnswer(await beat(r, KEY_WEB), 200, "recovered", "back after the restart");
      await waitFor("the back alert", 10_000, () => sink.titles("Agent back: web").length === 1);
      await waitFor("its delivery stored", 10_000, async () => (await agent(r, "web")).alerts.every((x) => x.delivery_state === "delivered"));

      // Up before the next restart: judged from its stored heartbeat, one new alarm.
      await r.restart();
      web = await agent(r, "web");
      assert.equal(web.state, "up", JSON.stringify(web));
      assert.equal(web.heartbeats, 2);
      await r.letGracePass("web");
      await waitFor("the second silence's alarm", 10_000, () => sink.titles("Agent silent: web").length === 2);
      assert.equal(sink.titles("Agent back").length, 1);
      assertNoSecret("the log", r.log());
    });
  });
}
