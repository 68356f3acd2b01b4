// The heartbeat receiver as a Cloudflare Worker: the contract of `heartbeat receiver` (README
// "The receiver", crates/hb-receiver) on the edge. `fetch` answers POST /api/heartbeat and the
// read side (GET /api/agents, /metrics, /health); `scheduled` (a Cron Trigger, every minute)
// runs the silence watchdog at the event's scheduledTime; both hand their state work to the
// one ReceiverState Durable Object and deliver alerts after answering. Keys and the webhook
// URL come from the Worker's secrets and are never answered or logged.

import { describeProblems, loadConfig } from "./config.js";
import { STATUS_CODES, agentState, iso, lateMessage, parseServices } from "./decide.js";
import { deliver } from "./deliver.js";

export { ReceiverState } from "./state.js";

/** Biggest heartbeat body accepted (413 above), as the Rust receiver's. */
const MAX_BODY_BYTES = 64 * 1024;
/** Every heartbeat is answered within this time, whatever the state does. */
const ANSWER_DEADLINE_MS = 900;
/** Alerts listed per agent in GET /api/agents. */
const ALERTS_PER_AGENT = 10;
/** The one Durable Object holding every agent. */
const STATE_NAME = "receiver";

function answer(status, body, headers = {}) {
  return Response.json(body, { status, headers });
}

function state(env) {
  return env.RECEIVER_STATE.get(env.RECEIVER_STATE.idFromName(STATE_NAME));
}

/** The checked settings, or the answer that says what is wrong with them (logged too). */
function settings(env) {
  const loaded = loadConfig(env);
  if (loaded.config) return { config: loaded.config };
  const problems = describeProblems(loaded.problems);
  console.error(`the receiver's settings are invalid:\n${problems.join("\n")}`);
  return { refused: answer(503, { result: "misconfigured", problems }) };
}

/** Compares every byte up to the longer length whatever differs (no early exit). */
function constantTimeEqual(a, b) {
  let diff = a.length === b.length ? 0 : 1;
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

/** The agent whose key the Authorization header carries; every key is compared. */
function identify(agents, header) {
  if (header === null) return null;
  const value = new TextEncoder().encode(header);
  if (value.length < 7) return null;
  const scheme = new TextDecoder().decode(value.slice(0, 7));
  if (scheme.toLowerCase() !== "bearer ") return null;
  const token = new TextEncoder().encode(new TextDecoder().decode(value.slice(7)).trim());
  let found = null;
  for (const agent of agents) {
    if (constantTimeEqual(new TextEncoder().encode(agent.key), token) && found === null) found = agent;
  }
  return found;
}

/** The body up to the limit; `null` when it is longer. */
async function readCapped(request) {
  if (request.body === null) return new Uint8Array(0);
  const reader = request.body.getReader();
  const chunks = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BODY_BYTES) {
      await reader.cancel().catch(() => undefined);
      return null;
    }
    chunks.push(value);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

function withDeadline(promise, ms) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error("no answer from the state in time")), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** Delivers `alerts` side by side (a dead webhook must not make one wait behind another's
 * retries past what the runtime gives a finished request), and stores each outcome. */
async function deliverAll(env, config, alerts) {
  await Promise.all(
    alerts.map(async (alert) => {
      const outcome = await deliver(alert, { url: config.webhookUrl, tz: config.tz });
      try {
        await state(env).recordDelivery(outcome);
      } catch (e) {
        console.warn(`cannot store an alert's delivery outcome: ${e.message}`);
      }
    }),
  );
}

async function heartbeat(request, env, ctx, config) {
  const length = Number(request.headers.get("content-length"));
  if (Number.isFinite(length) && length > MAX_BODY_BYTES) {
    return answer(413, { result: "too-large" });
  }
  let body;
  try {
    body = await readCapped(request);
  } catch {
    return answer(400, { result: "bad-request", detail: "the body could not be read" });
  }
  const agent = identify(config.agents, request.headers.get("authorization"));
  if (agent === null) {
    return answer(401, { result: "unauthorized" }, { "www-authenticate": "Bearer" });
  }
  if (body === null) return answer(413, { result: "too-large" });
  let text;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(body);
  } catch {
    return answer(400, { result: "bad-request", detail: "the body is not valid JSON (not UTF-8)" });
  }
  const parsed = parseServices(text);
  if (parsed.detail !== undefined) {
    return answer(400, { result: "bad-request", detail: parsed.detail });
  }
  let taken;
  try {
    taken = await withDeadline(
      state(env).heartbeat(agent.name, parsed.services, Date.now(), config.tz),
      ANSWER_DEADLINE_MS,
    );
  } catch (e) {
    console.warn(`agent ${agent.name}: the heartbeat was not stored: ${e.message}`);
    taken = { result: "store-failed", alert: null };
  }
  if (taken.alert) ctx.waitUntil(deliverAll(env, config, [taken.alert]));
  return answer(STATUS_CODES[taken.result] ?? 500, { result: taken.result, agent: agent.name });
}

async function agentsView(env, config, nowMs) {
  return state(env).view(
    config.agents.map((a) => a.name),
    nowMs,
    ALERTS_PER_AGENT,
  );
}

async function agents(env, config) {
  const nowMs = Date.now();
  let view;
  try {
    view = await agentsView(env, config, nowMs);
  } catch (e) {
    console.warn(`cannot read the agents' state: ${e.message}`);
    return answer(503, { result: "store-unreadable" });
  }
  const graces = new Map(config.agents.map((a) => [a.name, a.graceMs]));
  return answer(200, {
    now: iso(nowMs, config.tz),
    agents: view.agents.map((a) => {
      const graceMs = graces.get(a.name);
      const lastSeenMs = a.watched?.lastSeenMs ?? null;
      const shown = a.watched === null ? "unreadable" : agentState(a.watched, nowMs, graceMs);
      const since = lastSeenMs === null ? null : Math.max(0, nowMs - lastSeenMs) / 1000;
      return {
        name: a.name,
        state: shown,
        last_seen: lastSeenMs === null ? null : iso(lastSeenMs, config.tz),
        last_seen_ms: lastSeenMs,
        seconds_since_heartbeat: since,
        silent_for_seconds: shown === "silent" ? since : null,
        grace_seconds: graceMs / 1000,
        heartbeats: a.heartbeats,
        services: Object.fromEntries(a.services),
        alerts: a.alerts,
      };
    }),
  });
}

/** A label value as the exposition format needs it. */
function label(v) {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

async function metrics(env, config) {
  const nowMs = Date.now();
  let view = null;
  try {
    view = await agentsView(env, config, nowMs);
  } catch (e) {
    console.warn(`cannot read the agents' state: ${e.message}`);
  }
  const graces = new Map(config.agents.map((a) => [a.name, a.graceMs]));
  const out = [];
  if (view !== null) {
    out.push(
      "# HELP heartbeat_receiver_agent_up 1 while the agent heartbeats within its grace, else 0.",
      "# TYPE heartbeat_receiver_agent_up gauge",
    );
    for (const a of view.agents) {
      const up = a.watched !== null && agentState(a.watched, nowMs, graces.get(a.name)) === "up";
      out.push(`heartbeat_receiver_agent_up{agent="${label(a.name)}"} ${up ? 1 : 0}`);
    }
    out.push(
      "# HELP heartbeat_receiver_seconds_since_heartbeat Seconds since the agent's last heartbeat (absent while never seen).",
      "# TYPE heartbeat_receiver_seconds_since_heartbeat gauge",
    );
    for (const a of view.agents) {
      const ms = a.watched?.lastSeenMs ?? null;
      if (ms !== null) {
        out.push(
          `heartbeat_receiver_seconds_since_heartbeat{agent="${label(a.name)}"} ${(Math.max(0, nowMs - ms) / 1000).toFixed(3)}`,
        );
      }
    }
    out.push(
      "# HELP heartbeat_receiver_agent_grace_seconds Silence allowed before the alarm.",
      "# TYPE heartbeat_receiver_agent_grace_seconds gauge",
    );
    for (const a of view.agents) {
      out.push(`heartbeat_receiver_agent_grace_seconds{agent="${label(a.name)}"} ${graces.get(a.name) / 1000}`);
    }
    // Only the answers the state gave (a 401 or 400 never reaches it, and is not counted).
    out.push(
      "# HELP heartbeat_receiver_heartbeats_total Heartbeats answered by the state, by result.",
      "# TYPE heartbeat_receiver_heartbeats_total counter",
    );
    for (const word of Object.keys(STATUS_CODES)) {
      out.push(`heartbeat_receiver_heartbeats_total{result="${word}"} ${view.answers[word] ?? 0}`);
    }
  }
  out.push(
    "# HELP heartbeat_receiver_store_readable 1 when the state store could be read for this answer.",
    "# TYPE heartbeat_receiver_store_readable gauge",
    `heartbeat_receiver_store_readable ${view === null ? 0 : 1}`,
  );
  return new Response(`${out.join("\n")}\n`, {
    headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
  });
}

const PAGE = `<!doctype html><meta charset="utf-8"><title>Heartbeat receiver</title>
<body style="background:#111;color:#ddd;font-family:system-ui;padding:2em">
<h1>Heartbeat receiver</h1><p>On Cloudflare Workers. Agents: <a style="color:#8cf" href="/api/agents">/api/agents</a>,
metrics: <a style="color:#8cf" href="/metrics">/metrics</a>.</p></body>`;

function methodNotAllowed(allow) {
  return answer(405, { result: "method-not-allowed", detail: `use ${allow}` }, { allow });
}

export default {
  async fetch(request, env, ctx) {
    const { pathname } = new URL(request.url);
    const reading = request.method === "GET" || request.method === "HEAD";
    const routes = {
      "/api/heartbeat": request.method === "POST" ? heartbeat : null,
      "/api/agents": reading ? (_r, e, _c, config) => agents(e, config) : null,
      "/metrics": reading ? (_r, e, _c, config) => metrics(e, config) : null,
      "/health": reading
        ? (_r, _e, _c, config) => answer(200, { status: "ok", role: "receiver", agents: config.agents.length })
        : null,
      "/": reading ? () => new Response(PAGE, { headers: { "content-type": "text/html; charset=utf-8" } }) : null,
    };
    if (!(pathname in routes)) return answer(404, { result: "not-found" });
    const route = routes[pathname];
    if (route === null) return methodNotAllowed(pathname === "/api/heartbeat" ? "POST" : "GET");
    const { config, refused } = settings(env);
    if (refused) return refused;
    return route(request, env, ctx, config);
  },

  async scheduled(event, env, ctx) {
    const { config } = settings(env);
    if (!config) throw new Error("the receiver's settings are invalid (see the log): the watchdog did not run");
    const nowMs = event.scheduledTime;
    const { alerts, late } = await state(env).watchdog(
      config.agents.map((a) => ({ name: a.name, graceMs: a.graceMs })),
      nowMs,
      config.tz,
    );
    if (late.length > 0) console.log(`sending ${late.length} alert(s) whose delivery was cut off, late`);
    const queue = [...late.map((a) => ({ ...a, message: lateMessage(a.message) })), ...alerts];
    if (queue.length > 0) ctx.waitUntil(deliverAll(env, config, queue));
  },
};
