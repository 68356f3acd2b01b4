// The receiver's decisions and texts, the same as the Rust receiver's (crates/hb-core/src/
// receiver.rs and crates/hb-receiver/src/intake.rs): what a heartbeat body must look like, what
// an arriving heartbeat means given the agent's previous state, which answer it gets, when the
// watchdog raises "agent silent", how an agent is shown, and the alert texts. No I/O and no
// clock: instants are epoch milliseconds passed in.

export const STATUSES = ["healthy", "error", "timeout", "down", "unknown"];
const ECHO_MAX_CHARS = 40;

/** A client's own text, cut short, for a 400's detail. */
function echo(text) {
  const chars = Array.from(text);
  return chars.length > ECHO_MAX_CHARS ? `${chars.slice(0, ECHO_MAX_CHARS).join("")}…` : text;
}

function isObject(v) {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * `{"services": {"<name>": {"status": "<status>"}, …}}` as `{services: [[name, status]]}` in
 * body order, or `{detail}` saying what is wrong.
 */
export function parseServices(text) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { detail: `the body is not valid JSON (${e.message})` };
  }
  if (!isObject(value) || !isObject(value.services)) {
    return { detail: 'expected {"services": {"<name>": {"status": "<status>"}, …}}' };
  }
  const services = [];
  for (const [name, service] of Object.entries(value.services)) {
    const status = isObject(service) ? service.status : undefined;
    if (typeof status !== "string") {
      return { detail: `services.${echo(name)}: expected {"status": "<status>"}` };
    }
    if (!STATUSES.includes(status)) {
      return {
        detail: `services.${echo(name)}.status: '${echo(status)}' is not a status (expected healthy, error, timeout, down or unknown)`,
      };
    }
    services.push([name, status]);
  }
  return { services };
}

/** `"up"`, `"silent"` or `"never seen"`: silent as soon as the grace is over. */
export function agentState(watched, nowMs, graceMs) {
  if (watched.lastSeenMs === null) return "never seen";
  if (watched.alarmed || nowMs - watched.lastSeenMs > graceMs) return "silent";
  return "up";
}

/** `blind` (previous state unknown: `null`), `recorded`, or `recovered` (it had been alarmed). */
export function arrival(previous) {
  if (previous === null) return { kind: "blind" };
  if (previous.alarmed) return { kind: "recovered", lastSeenMs: previous.lastSeenMs };
  return { kind: "recorded" };
}

/** The answer's `result` word from what arrived and which writes succeeded. */
export function answerOf(arrived, heartbeatStored, recoveryStored) {
  if (!heartbeatStored) return "store-failed";
  if (arrived.kind === "blind") return "blind";
  if (arrived.kind === "recorded") return "recorded";
  return recoveryStored ? "recovered" : "recovery-update-failed";
}

export const STATUS_CODES = {
  recorded: 200,
  recovered: 200,
  blind: 220,
  "recovery-update-failed": 221,
  "store-failed": 500,
};

/**
 * The watchdog's decision for one agent: `{sinceMs, neverSeen, silentForMs}` once its silence
 * exceeds the grace, `null` while an alarm is already raised or the grace is not over. A
 * never-seen agent's silence counts from when the receiver started watching it.
 */
export function watch(watched, nowMs, graceMs, watchedSinceMs) {
  if (watched.alarmed) return null;
  const sinceMs = watched.lastSeenMs ?? watchedSinceMs;
  const silentForMs = nowMs - sinceMs;
  if (!(silentForMs > graceMs)) return null;
  return { sinceMs, neverSeen: watched.lastSeenMs === null, silentForMs };
}

/** `2h 5m 3s`, `45s`, `0s` (whole seconds; negative counts as zero). */
export function formatDuration(ms) {
  const secs = Math.floor(Math.max(0, ms) / 1000);
  const d = Math.floor(secs / 86_400);
  const h = Math.floor((secs % 86_400) / 3_600);
  const m = Math.floor((secs % 3_600) / 60);
  const s = secs % 60;
  const parts = [];
  if (d > 0) parts.push(`${d}d`);
  if (d > 0 || h > 0) parts.push(`${h}h`);
  if (d > 0 || h > 0 || m > 0) parts.push(`${m}m`);
  parts.push(`${s}s`);
  return parts.join(" ");
}

function servicesText(services) {
  if (services.length === 0) return "none reported";
  return services.map(([name, status]) => `${name} ${status}`).join(", ");
}

/** "agent silent" (or "never seen"): `{item, oldStatus, newStatus, title, message}`. */
export function silentAlert(ctx, silence, graceMs) {
  const neverSeen = silence.neverSeen || ctx.lastSeenText === null;
  const title = neverSeen ? `🔴 Agent never seen: ${ctx.agent}` : `🔴 Agent silent: ${ctx.agent}`;
  const lastSeen = neverSeen
    ? "never (no heartbeat since the receiver started watching)"
    : ctx.lastSeenText;
  return {
    item: ctx.agent,
    oldStatus: neverSeen ? "never seen" : "up",
    newStatus: "silent",
    title,
    message:
      `**Agent:** ${ctx.agent}\n**Last seen:** ${lastSeen}\n**Silent for:** ${formatDuration(silence.silentForMs)} ` +
      `(grace ${formatDuration(graceMs)})\n**Last services:** ${servicesText(ctx.services)}\n**Time:** ${ctx.timeText}`,
  };
}

/** "agent back": the outage from its last heartbeat before the silence to now. */
export function backAlert(ctx, outageMs) {
  const outage = outageMs === null ? "unknown (first heartbeat ever)" : formatDuration(outageMs);
  return {
    item: ctx.agent,
    oldStatus: "silent",
    newStatus: "up",
    title: `✅ Agent back: ${ctx.agent}`,
    message:
      `**Agent:** ${ctx.agent}\n**Outage:** ${outage}\n**Last seen before:** ${ctx.lastSeenText ?? "never"}\n` +
      `**Services:** ${servicesText(ctx.services)}\n**Time:** ${ctx.timeText}`,
  };
}

/** The note an alert sent late (its first delivery was cut off) carries, in the agent's form. */
export function lateMessage(message) {
  return `${message}\n\n**Delivered late:** the receiver was interrupted before this alert could be sent.`;
}

function pad(n, width = 2) {
  return String(n).padStart(width, "0");
}

/** The wall-clock fields of `ms` in `tz` and the zone's offset then, in minutes. */
function zoned(ms, tz) {
  const parts = {};
  for (const p of new Intl.DateTimeFormat("en-US", {
    timeZone: tz,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).formatToParts(new Date(ms))) {
    parts[p.type] = p.value;
  }
  const wall = Date.UTC(
    Number(parts.year),
    Number(parts.month) - 1,
    Number(parts.day),
    Number(parts.hour),
    Number(parts.minute),
    Number(parts.second),
  );
  const offsetMin = Math.round((wall - (ms - (((ms % 1000) + 1000) % 1000))) / 60_000);
  return { ...parts, offsetMin };
}

/** `YYYY-MM-DD HH:MM:SS` in `tz`, as alert texts show times. */
export function timeText(ms, tz) {
  const z = zoned(ms, tz);
  return `${z.year}-${z.month}-${z.day} ${z.hour}:${z.minute}:${z.second}`;
}

/** ISO-8601 with milliseconds and offset in `tz` (stored and answered times). */
export function iso(ms, tz) {
  const z = zoned(ms, tz);
  const sign = z.offsetMin < 0 ? "-" : "+";
  const off = Math.abs(z.offsetMin);
  const millis = pad(((ms % 1000) + 1000) % 1000, 3);
  return `${z.year}-${z.month}-${z.day}T${z.hour}:${z.minute}:${z.second}.${millis}${sign}${pad(Math.floor(off / 60))}:${pad(off % 60)}`;
}
