// Alert delivery to N8N_WEBHOOK_URL with the agent's policy (crates/hb-agent/src/notify/
// webhook.rs): POST {"title","message"} as JSON, up to 3 attempts of 5 s each, 2 s apart, a 2xx
// answer is delivered. Runs after the answer (ctx.waitUntil), never on a heartbeat's path.
// Never logs the webhook URL: it may carry a token.

import { iso } from "./decide.js";

export const DELIVERY = { attempts: 3, timeoutMs: 5_000, pauseMs: 2_000 };
const NOT_CONFIGURED = "webhook not configured";

function describe(error, url) {
  if (error?.name === "TimeoutError" || error?.name === "AbortError") {
    return `timeout after ${DELIVERY.timeoutMs / 1000} s`;
  }
  const text = String(error?.message ?? error);
  return text.split(url).join("<webhook>");
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Every attempt for one alert record; the outcome `{uid, attempts, delivered_at, last_error}`. */
export async function deliver(alert, { url, tz }) {
  if (!url) {
    console.warn(`alert not sent (${NOT_CONFIGURED}): ${alert.title}\n${alert.message}`);
    return { uid: alert.uid, attempts: 0, delivered_at: null, last_error: NOT_CONFIGURED };
  }
  const body = JSON.stringify({ title: alert.title, message: alert.message });
  let lastError = "";
  for (let attempt = 1; attempt <= DELIVERY.attempts; attempt++) {
    try {
      const response = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
        signal: AbortSignal.timeout(DELIVERY.timeoutMs),
      });
      // The body is not needed; reading it frees the connection.
      await response.arrayBuffer().catch(() => undefined);
      if (response.status >= 200 && response.status < 300) {
        console.log(`alert delivered: ${alert.title} (attempt ${attempt})`);
        return { uid: alert.uid, attempts: attempt, delivered_at: iso(Date.now(), tz), last_error: null };
      }
      lastError = `HTTP ${response.status}`;
    } catch (e) {
      lastError = describe(e, url);
    }
    console.warn(`alert delivery attempt ${attempt} of ${DELIVERY.attempts} failed: ${lastError} (${alert.title})`);
    if (attempt < DELIVERY.attempts) await sleep(DELIVERY.pauseMs);
  }
  return { uid: alert.uid, attempts: DELIVERY.attempts, delivered_at: null, last_error: lastError };
}
