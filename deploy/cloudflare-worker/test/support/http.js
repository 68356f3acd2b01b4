// Requests to a receiver under test: a helper that always returns status, headers, text and
// JSON (when it is JSON), a raw-socket request that only announces an oversized body, and the
// polling wait the tests use instead of sleeps.

import net from "node:net";

export async function request(base, path, { method = "GET", auth, body, headers = {}, duplex } = {}) {
  const h = { ...headers };
  if (auth !== undefined) h.authorization = auth;
  const response = await fetch(`${base}${path}`, {
    method,
    headers: h,
    body,
    duplex,
    signal: AbortSignal.timeout(10_000),
  });
  const raw = await response.text();
  let json = null;
  try {
    json = JSON.parse(raw);
  } catch {
    json = null;
  }
  return { status: response.status, headers: response.headers, raw, json };
}

/** POST /api/heartbeat announcing `length` bytes without sending them: the answer's status line. */
export function oversized(base, key, length) {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    let head = "";
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer to an oversized heartbeat: ${JSON.stringify(head)}`));
    }, 10_000);
    socket.on("connect", () => {
      socket.write(
        `POST /api/heartbeat HTTP/1.1\r\nHost: ${hostname}:${port}\r\nAuthorization: Bearer ${key}\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`,
      );
    });
    socket.on("data", (d) => {
      head += d.toString("latin1");
      if (head.includes("\r\n\r\n")) {
        clearTimeout(timer);
        socket.destroy();
        resolve({ status: Number(head.split(" ")[1]), raw: head });
      }
    });
    socket.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** Polls `check` until it is true, failing after `timeoutMs` with `what`. */
export async function waitFor(what, timeoutMs, check) {
  const started = Date.now();
  for (;;) {
    if (await check()) return;
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
