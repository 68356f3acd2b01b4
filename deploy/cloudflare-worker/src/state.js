// The receiver's state: one SQLite-backed Durable Object (named "receiver") holding every agent
// and every alert, with the Rust receiver's tables (crates/hb-receiver/src/state.rs) plus when
// the Worker started watching each agent. One object serialises every heartbeat and watchdog
// run, so a read-then-write (is this heartbeat a recovery? raise an alarm unless a heartbeat
// came in between?) is never raced by another. Every SQL statement of the Worker is here; the
// decisions are decide.js's.

import { DurableObject } from "cloudflare:workers";

import { answerOf, arrival, backAlert, iso, silentAlert, timeText, watch } from "./decide.js";

/** Numbered migrations, applied in order and recorded in `schema_version`. Never edit one. */
const MIGRATIONS = [
  // 1: agents and their alerts, as the Rust receiver stores them, plus watched_since_ms (a
  // Worker has no start: a never-seen agent's silence counts from when it was first watched)
  // and the answers given, by result, for /metrics.
  `CREATE TABLE agents (
       name TEXT PRIMARY KEY,
       last_seen_ms INTEGER,
       alarmed INTEGER NOT NULL DEFAULT 0,
       alarmed_ms INTEGER,
       services TEXT NOT NULL DEFAULT '{}',
       heartbeats INTEGER NOT NULL DEFAULT 0,
       watched_since_ms INTEGER
   );
   CREATE TABLE alerts (
       id INTEGER PRIMARY KEY,
       uid TEXT NOT NULL UNIQUE,
       created_at TEXT NOT NULL,
       created_ms INTEGER NOT NULL,
       item TEXT NOT NULL,
       old_status TEXT,
       new_status TEXT NOT NULL,
       title TEXT NOT NULL,
       message TEXT NOT NULL,
       attempts INTEGER NOT NULL DEFAULT 0,
       delivered_at TEXT,
       last_error TEXT,
       delivery_state TEXT NOT NULL DEFAULT 'pending'
   );
   CREATE INDEX alerts_item_created ON alerts (item, created_ms);
   CREATE INDEX alerts_pending ON alerts (delivery_state) WHERE delivery_state = 'pending';
   CREATE TABLE answers (result TEXT PRIMARY KEY, n INTEGER NOT NULL DEFAULT 0);`,
];

const ENSURE_AGENT =
  "INSERT INTO agents (name, watched_since_ms) VALUES (?, ?) ON CONFLICT (name) DO NOTHING";
const SELECT_WATCHED = "SELECT last_seen_ms, alarmed FROM agents WHERE name = ?";
const UPSERT_HEARTBEAT =
  "INSERT INTO agents (name, last_seen_ms, services, heartbeats, watched_since_ms) " +
  "VALUES (?1, ?2, ?3, 1, ?2) " +
  "ON CONFLICT (name) DO UPDATE SET last_seen_ms = excluded.last_seen_ms, " +
  "services = excluded.services, heartbeats = heartbeats + 1, " +
  "alarmed = CASE WHEN ?4 THEN 0 ELSE alarmed END, " +
  "alarmed_ms = CASE WHEN ?4 THEN NULL ELSE alarmed_ms END";
const CLEAR_ALARM = "UPDATE agents SET alarmed = 0, alarmed_ms = NULL WHERE name = ? AND alarmed = 1";
// Only when nothing arrived since the watchdog looked: a heartbeat in between wins.
const RAISE_ALARM =
  "UPDATE agents SET alarmed = 1, alarmed_ms = ?2 WHERE name = ?1 AND alarmed = 0 AND last_seen_ms IS ?3";
const INSERT_ALERT =
  "INSERT INTO alerts (uid, created_at, created_ms, item, old_status, new_status, title, message) " +
  "VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
const UPDATE_DELIVERY =
  "UPDATE alerts SET attempts = ?2, delivered_at = ?3, last_error = ?4, " +
  "delivery_state = CASE WHEN ?3 IS NOT NULL THEN 'delivered' ELSE 'failed' END WHERE uid = ?1";
const SELECT_AGENTS =
  "SELECT name, last_seen_ms, alarmed, services, heartbeats, watched_since_ms FROM agents ORDER BY name";
const SELECT_RECENT_ALERTS =
  "SELECT item, created_at, old_status, new_status, title, message, attempts, delivered_at, " +
  "last_error, delivery_state FROM alerts WHERE item = ? ORDER BY created_ms DESC, id DESC LIMIT ?";
const GIVE_UP =
  "UPDATE alerts SET delivery_state = 'given_up', last_error = 'too old to send late' " +
  "WHERE delivery_state = 'pending' AND created_ms < ?";
// Pending this long after it was raised, an alert's delivery was cut off (a delivery takes at
// most 3 attempts of 5 s, 2 s apart): it is claimed and sent late.
const SELECT_STRANDED =
  "SELECT uid, created_at, item, old_status, new_status, title, message FROM alerts " +
  "WHERE delivery_state = 'pending' AND created_ms < ? ORDER BY created_ms, id";
const CLAIM = "UPDATE alerts SET delivery_state = 'resending' WHERE uid = ?";
const COUNT_ANSWER =
  "INSERT INTO answers (result, n) VALUES (?, 1) ON CONFLICT (result) DO UPDATE SET n = n + 1";
const SELECT_ANSWERS = "SELECT result, n FROM answers";

/** An alert's delivery that has not ended this long after it was raised was cut off. */
export const STRANDED_AFTER_MS = 60_000;
/** Alerts left undelivered longer than this are not sent any more. */
export const REDELIVER_MAX_AGE_MS = 3_600_000;

/** `{lastSeenMs, alarmed}`, or `null` when the row holds what the schema never stores. */
function decodeWatched(lastSeen, alarmed) {
  if (lastSeen !== null && !Number.isInteger(lastSeen)) return null;
  if (alarmed !== 0 && alarmed !== 1) return null;
  return { lastSeenMs: lastSeen, alarmed: alarmed === 1 };
}

/** The stored `{"name": "status", …}` as pairs; anything else reads as no services. */
function decodeServices(text) {
  try {
    const map = JSON.parse(text);
    if (typeof map !== "object" || map === null || Array.isArray(map)) return [];
    return Object.entries(map).map(([k, v]) => [k, typeof v === "string" ? v : "unknown"]);
  } catch {
    return [];
  }
}

/** Rows a statement changed (its cursor run to the end first). */
function written(cursor) {
  cursor.toArray();
  return cursor.rowsWritten;
}

function toRecord(draft, nowMs, tz) {
  return {
    uid: crypto.randomUUID(),
    created_at: iso(nowMs, tz),
    item: draft.item,
    old_status: draft.oldStatus,
    new_status: draft.newStatus,
    title: draft.title,
    message: draft.message,
  };
}

export class ReceiverState extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    ctx.blockConcurrencyWhile(async () => this.migrate());
  }

  migrate() {
    this.sql.exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
    const row = this.sql.exec("SELECT max(version) AS v FROM schema_version").one();
    const version = row.v ?? 0;
    if (version > MIGRATIONS.length) {
      throw new Error(
        `the receiver state has schema version ${version}, newer than this Worker's ${MIGRATIONS.length}`,
      );
    }
    for (let i = version; i < MIGRATIONS.length; i++) {
      this.ctx.storage.transactionSync(() => {
        this.sql.exec(MIGRATIONS[i]);
        this.sql.exec("INSERT INTO schema_version (version) VALUES (?)", i + 1);
      });
    }
  }

  ensureAgents(names, nowMs) {
    for (const name of names) this.sql.exec(ENSURE_AGENT, name, nowMs);
  }

  countAnswer(result) {
    try {
      this.sql.exec(COUNT_ANSWER, result);
    } catch {
      // A counter is not worth failing an answer for.
    }
  }

  /**
   * One heartbeat of `agent` (already authenticated, body already checked): reads the previous
   * state, stores the heartbeat and, for a returning agent, its recovery with the "agent back"
   * alert. `{result, alert}`; each step that fails lowers the result as the Rust receiver's.
   */
  heartbeat(agent, services, nowMs, tz) {
    let previous = null;
    try {
      const row = this.sql.exec(SELECT_WATCHED, agent).toArray()[0];
      previous = row === undefined ? { lastSeenMs: null, alarmed: false } : decodeWatched(row.last_seen_ms, row.alarmed);
      if (previous === null) console.warn(`agent ${agent}: its stored state is unreadable (answering blind)`);
    } catch (e) {
      console.warn(`agent ${agent}: cannot read its previous state (answering blind): ${e.message}`);
    }
    const arrived = arrival(previous);
    const json = JSON.stringify(Object.fromEntries(services));
    try {
      this.sql.exec(UPSERT_HEARTBEAT, agent, nowMs, json, arrived.kind === "blind" ? 1 : 0);
    } catch (e) {
      console.warn(`agent ${agent}: cannot store the heartbeat: ${e.message}`);
      const result = answerOf(arrived, false, false);
      this.countAnswer(result);
      return { result, alert: null };
    }
    if (arrived.kind !== "recovered") {
      const result = answerOf(arrived, true, true);
      this.countAnswer(result);
      return { result, alert: null };
    }
    const lastSeenMs = arrived.lastSeenMs;
    const draft = backAlert(
      {
        agent,
        lastSeenText: lastSeenMs === null ? null : timeText(lastSeenMs, tz),
        services,
        timeText: timeText(nowMs, tz),
      },
      lastSeenMs === null ? null : nowMs - lastSeenMs,
    );
    const record = toRecord(draft, nowMs, tz);
    try {
      const cleared = this.ctx.storage.transactionSync(() => {
        const changed = written(this.sql.exec(CLEAR_ALARM, agent)) > 0;
        if (changed) this.insertAlert(record, nowMs);
        return changed;
      });
      const result = cleared ? "recovered" : "recorded";
      this.countAnswer(result);
      if (cleared) console.log(`agent back: ${agent}`);
      return { result, alert: cleared ? record : null };
    } catch (e) {
      console.warn(`agent ${agent}: cannot store its recovery: ${e.message}`);
      const result = answerOf(arrived, true, false);
      this.countAnswer(result);
      return { result, alert: null };
    }
  }

  insertAlert(a, createdMs) {
    this.sql.exec(
      INSERT_ALERT,
      a.uid,
      a.created_at,
      createdMs,
      a.item,
      a.old_status,
      a.new_status,
      a.title,
      a.message,
    );
  }

  /**
   * One watchdog run at `nowMs` over the configured `agents` (`[{name, graceMs}]`): raises and
   * stores each new alarm with its "agent silent" alert. Returns `{alerts, late}`: the new
   * alerts, and alerts whose earlier delivery was cut off (claimed here, to be sent late).
   */
  watchdog(agents, nowMs, tz) {
    this.ensureAgents(
      agents.map((a) => a.name),
      nowMs,
    );
    const rows = new Map(this.sql.exec(SELECT_AGENTS).toArray().map((r) => [r.name, r]));
    const alerts = [];
    for (const agent of agents) {
      const row = rows.get(agent.name);
      if (row === undefined) continue;
      // A damaged row is shown as unreadable; the next heartbeat repairs it.
      const watched = decodeWatched(row.last_seen_ms, row.alarmed);
      if (watched === null) continue;
      const since = Number.isInteger(row.watched_since_ms) ? row.watched_since_ms : nowMs;
      const silence = watch(watched, nowMs, agent.graceMs, since);
      if (silence === null) continue;
      const draft = silentAlert(
        {
          agent: agent.name,
          lastSeenText: watched.lastSeenMs === null ? null : timeText(watched.lastSeenMs, tz),
          services: decodeServices(row.services),
          timeText: timeText(nowMs, tz),
        },
        silence,
        agent.graceMs,
      );
      const record = toRecord(draft, nowMs, tz);
      const raised = this.ctx.storage.transactionSync(() => {
        const changed = written(this.sql.exec(RAISE_ALARM, agent.name, nowMs, watched.lastSeenMs)) > 0;
        if (changed) this.insertAlert(record, nowMs);
        return changed;
      });
      if (raised) {
        console.warn(`agent silent: ${agent.name} (${record.title})`);
        alerts.push(record);
      }
    }
    return { alerts, late: this.claimStranded(nowMs) };
  }

  claimStranded(nowMs) {
    this.sql.exec(GIVE_UP, nowMs - REDELIVER_MAX_AGE_MS);
    return this.ctx.storage.transactionSync(() => {
      const rows = this.sql.exec(SELECT_STRANDED, nowMs - STRANDED_AFTER_MS).toArray();
      for (const r of rows) this.sql.exec(CLAIM, r.uid);
      return rows;
    });
  }

  /** A delivery's outcome: `{uid, attempts, delivered_at, last_error}`. */
  recordDelivery(d) {
    this.sql.exec(UPDATE_DELIVERY, d.uid, d.attempts, d.delivered_at, d.last_error);
  }

  /**
   * Every configured agent (`names`, in order) with its stored row and newest alerts, and the
   * answers counted; rows are created for agents not stored yet (never seen from now on).
   */
  view(names, nowMs, alertsPerAgent) {
    this.ensureAgents(names, nowMs);
    const rows = new Map(this.sql.exec(SELECT_AGENTS).toArray().map((r) => [r.name, r]));
    const agents = names.map((name) => {
      const row = rows.get(name);
      return {
        name,
        watched: row === undefined ? null : decodeWatched(row.last_seen_ms, row.alarmed),
        services: row === undefined ? [] : decodeServices(row.services),
        heartbeats: row !== undefined && Number.isInteger(row.heartbeats) ? row.heartbeats : 0,
        alerts: this.sql.exec(SELECT_RECENT_ALERTS, name, alertsPerAgent).toArray(),
      };
    });
    const answers = Object.fromEntries(this.sql.exec(SELECT_ANSWERS).toArray().map((r) => [r.result, r.n]));
    return { agents, answers };
  }
}
