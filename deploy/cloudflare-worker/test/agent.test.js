// A real `heartbeat agent --once` pointed at the Worker running locally: the cycle it stores
// has worker_status 200, and its heartbeat arrives (GET /api/agents). A wrong key is stored as
// the 401 it got. The agent runs with a cleared environment, one local service, a local
// internet check and no Docker engine, as the Rust integration tests run it.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import http from "node:http";
import path from "node:path";
import { test } from "node:test";

import { request } from "./support/http.js";
import { cleanEnv, heartbeatBinary, missing, sqlite, startTarget, tempDir } from "./support/targets.js";

const KEY = "ak_5ecret_key_for_host1_0001";

/** A server answering every request 200 (the agent's monitored service and internet check). */
async function okServer() {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => res.writeHead(200, { "content-type": "text/plain" }).end("ok"));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: (p) => `http://127.0.0.1:${server.address().port}${p}`, close: () => server.close() };
}

function runAgentOnce(env) {
  return new Promise((resolve, reject) => {
    const child = spawn(heartbeatBinary(), ["agent", "--once"], { env, stdio: ["ignore", "ignore", "pipe"] });
    let log = "";
    child.stderr.on("data", (d) => {
      log += d.toString("utf8");
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`the agent did not finish:\n${log}`));
    }, 30_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, log });
    });
  });
}

test("a real agent stores worker_status 200 from the Worker, and its heartbeat arrives", { skip: missing("rust") }, async (t) => {
  const service = await okServer();
  t.after(() => service.close());
  const r = await startTarget("worker", { agents: [["host1", KEY]] });
  t.after(() => r.stop());
  const dir = tempDir("agent");
  const db = path.join(dir, "metrics.db");
  const agentEnv = (key) =>
    cleanEnv({
      RUST_LOG: "info",
      SQLITE_DB_PATH: db,
      SERVICE_URL_api: service.url("/health"),
      SERVICE_TIMEOUT_SECONDS: "2",
      PING_URL: service.url("/ping"),
      HEARTBEAT_URL: `${r.base}/api/heartbeat`,
      SECRET_KEY: key,
      DOCKER_HOST: `unix://${dir}/no-docker.sock`,
    });

  const first = await runAgentOnce(agentEnv(KEY));
  assert.equal(first.code, 0, first.log);
  assert.equal(sqlite(db, "SELECT worker_status FROM monitoring_cycles ORDER BY rowid").trim(), "200");
  const host1 = (await request(r.base, "/api/agents")).json.agents.find((a) => a.name === "host1");
  assert.equal(host1.heartbeats, 1, JSON.stringify(host1));
  assert.equal(host1.state, "up");
  assert.deepEqual(host1.services, { api: "healthy" });

  const wrong = await runAgentOnce(agentEnv("ak_not_the_key_of_any_agent"));
  assert.equal(wrong.code, 0, wrong.log);
  assert.deepEqual(sqlite(db, "SELECT worker_status FROM monitoring_cycles ORDER BY rowid").trim().split("\n"), [
    "200",
    "401",
  ]);
  assert.equal((await request(r.base, "/api/agents")).json.agents[0].heartbeats, 1, "the refused one is not stored");
  assert.ok(!r.log().includes(KEY), "no key in the Worker's log");
});
