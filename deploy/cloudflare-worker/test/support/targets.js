// The two receivers the contract suite runs against, behind one interface: the real Rust
// binary (`heartbeat receiver` on 127.0.0.1, a temp RECEIVER_DB_PATH) and this Worker in
// Miniflare (workerd from the npm registry, Durable Object state persisted in a temp dir).
// Each target gives its base URL, a way to let an agent's grace pass (real time for Rust, whose
// watchdog ticks by itself; the scheduled handler with a pinned scheduledTime for the Worker),
// SQL on its real state file (to provoke the 500/220/221 answers the same way for both), a
// restart that keeps the state, and its log. Missing prerequisites skip, or fail under CI=true.

import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { Miniflare } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";

import { sleep } from "./http.js";

export const WORKER_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const REPO_ROOT = path.resolve(WORKER_DIR, "../..");
export const TZ = "America/Lima";

/** Grace periods by role: the Worker refuses less than a minute (cron granularity). */
const GRACE_SECS = {
  rust: { short: 2, long: 60 },
  worker: { short: 60, long: 600 },
};

export function heartbeatBinary() {
  if (process.env.HEARTBEAT_BIN) return path.resolve(process.env.HEARTBEAT_BIN);
  const targetDir = process.env.CARGO_TARGET_DIR
    ? path.resolve(REPO_ROOT, process.env.CARGO_TARGET_DIR)
    : path.join(REPO_ROOT, "target");
  return path.join(targetDir, "debug", "heartbeat");
}

function hasSqlite3() {
  try {
    execFileSync("sqlite3", ["-version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/**
 * `undefined` when everything `kind` needs is there, else why not: a reason to skip, or (under
 * CI=true, where nothing may be skipped) an error.
 */
export function missing(kind) {
  const reasons = [];
  if (!hasSqlite3()) reasons.push("the sqlite3 command (apt-get install sqlite3)");
  if (kind === "rust" && !fs.existsSync(heartbeatBinary())) {
    reasons.push(`the heartbeat binary at ${heartbeatBinary()} (cargo build -p heartbeat, or set HEARTBEAT_BIN)`);
  }
  if (reasons.length === 0) return undefined;
  const text = `missing ${reasons.join(" and ")}`;
  if (process.env.CI === "true") throw new Error(`${text}: under CI=true nothing is skipped`);
  return text;
}

export function tempDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `hb-${prefix}-`));
}

/** Runs one SQL script on a SQLite file with the sqlite3 command (waits up to 5 s for locks). */
export function sqlite(file, sql) {
  return execFileSync("sqlite3", ["-cmd", ".timeout 5000", file, sql], { encoding: "utf8" });
}

/** The process environment of a child: nothing inherited but PATH (env_clear semantics). */
export function cleanEnv(vars) {
  return { PATH: process.env.PATH ?? "/usr/bin:/bin", ...vars };
}

/**
 * Settings both receivers take, by the Rust receiver's names. `agents`: `[[name, key]]`;
 * `graces`: per agent `"short"` or `"long"`, the rest get `defaultGrace`.
 */
function receiverVars(kind, { agents, graces = {}, defaultGrace = "short", webhookUrl }) {
  const secs = GRACE_SECS[kind];
  const vars = { RECEIVER_GRACE_SECONDS: String(secs[defaultGrace]), TZ };
  if (webhookUrl) vars.N8N_WEBHOOK_URL = webhookUrl;
  for (const [name, key] of agents) vars[`RECEIVER_AGENT_${name}`] = key;
  for (const [name, which] of Object.entries(graces)) vars[`RECEIVER_GRACE_SECONDS_${name}`] = String(secs[which]);
  return vars;
}

function graceMsOf(kind, opts, name) {
  return GRACE_SECS[kind][opts.graces?.[name] ?? opts.defaultGrace ?? "short"] * 1000;
}

class RustTarget {
  constructor(opts) {
    this.kind = "rust";
    this.opts = opts;
    this.dir = tempDir("rust-receiver");
    this.db = path.join(this.dir, "data", "receiver.db");
    this.logText = "";
  }

  async start() {
    const env = cleanEnv({
      RUST_LOG: "info",
      LOG_FORMAT: "json",
      RECEIVER_BIND: "127.0.0.1:0",
      RECEIVER_DB_PATH: this.db,
      ...receiverVars("rust", this.opts),
    });
    const child = spawn(heartbeatBinary(), ["receiver"], { env, stdio: ["ignore", "ignore", "pipe"] });
    this.child = child;
    this.base = await new Promise((resolve, reject) => {
      let pending = "";
      const timer = setTimeout(() => reject(new Error(`the receiver did not start:\n${this.logText}`)), 15_000);
      child.stderr.on("data", (d) => {
        this.logText += d.toString("utf8");
        pending += d.toString("utf8");
        let nl;
        while ((nl = pending.indexOf("\n")) >= 0) {
          const line = pending.slice(0, nl);
          pending = pending.slice(nl + 1);
          if (!line.includes("receiver listening")) continue;
          try {
            const addr = JSON.parse(line).fields?.addr;
            if (addr) {
              clearTimeout(timer);
              resolve(`http://${addr}`);
            }
          } catch {
            // Not a JSON line: keep reading.
          }
        }
      });
      child.on("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`the receiver exited with ${code}:\n${this.logText}`));
      });
    });
    return this;
  }

  graceMs(name) {
    return graceMsOf("rust", this.opts, name);
  }

  /** The watchdog ticks by itself: real time passes. */
  async letGracePass(name) {
    await sleep(this.graceMs(name) + 1_000);
  }

  sql(statement) {
    return sqlite(this.db, statement);
  }

  async kill(signal) {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    child.removeAllListeners("exit");
    await new Promise((resolve) => {
      child.once("exit", resolve);
      child.kill(signal);
    });
  }

  /** SIGKILL (no clean shutdown) and a new process on the same state file. */
  async restart() {
    await this.kill("SIGKILL");
    return this.start();
  }

  log() {
    return this.logText;
  }

  async stop() {
    await this.kill("SIGTERM");
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

class WorkerTarget {
  constructor(opts) {
    this.kind = "worker";
    this.opts = opts;
    this.dir = tempDir("worker-receiver");
    this.logText = "";
    this.virtualNowMs = 0;
  }

  /** Miniflare options from wrangler.toml (bindings, Durable Object, compatibility date). */
  options() {
    const { workerOptions, main } = unstable_getMiniflareWorkerOptions(path.join(WORKER_DIR, "wrangler.toml"));
    return {
      ...workerOptions,
      name: "heartbeat-receiver",
      modules: true,
      modulesRules: [{ type: "ESModule", include: ["**/*.js"] }, ...(workerOptions.modulesRules ?? [])],
      scriptPath: main,
      host: "127.0.0.1",
      port: 0,
      durableObjectsPersist: path.join(this.dir, "durable-objects"),
      unsafeEphemeralDurableObjects: false,
      bindings: { ...workerOptions.bindings, ...receiverVars("worker", this.opts), ...(this.opts.extraVars ?? {}) },
      handleRuntimeStdio: (stdout, stderr) => {
        stdout.on("data", (d) => {
          this.logText += d.toString("utf8");
        });
        stderr.on("data", (d) => {
          this.logText += d.toString("utf8");
        });
      },
    };
  }

  async start({ firstTick = true } = {}) {
    this.mf = new Miniflare(this.options());
    try {
      this.base = String(await this.mf.ready).replace(/\/$/, "");
    } catch (e) {
      e.message += `\n${this.logText}`;
      throw e;
    }
    this.worker = await this.mf.getWorker();
    // As the Cron Trigger would within a minute of a deploy: the watching starts.
    if (firstTick) await this.tick(Date.now());
    return this;
  }

  graceMs(name) {
    return graceMsOf("worker", this.opts, name);
  }

  /** One run of the scheduled handler at `atMs`; its outcome ("ok" or an error). */
  async tick(atMs) {
    this.virtualNowMs = Math.max(this.virtualNowMs, atMs);
    const result = await this.worker.scheduled({ scheduledTime: new Date(atMs) });
    return result.outcome;
  }

  /** The Cron Trigger fires once the grace is over: scheduledTime pinned past it. */
  async letGracePass(name) {
    const at = Math.max(this.virtualNowMs, Date.now()) + this.graceMs(name) + 1_000;
    const outcome = await this.tick(at);
    if (outcome !== "ok") throw new Error(`the scheduled handler failed (${outcome}):\n${this.logText}`);
  }

  /** The Durable Object's SQLite file under the persist directory. */
  stateFile() {
    const root = path.join(this.dir, "durable-objects");
    const found = [];
    const walk = (d) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith(".sqlite") && e.name !== "metadata.sqlite") found.push(p);
      }
    };
    walk(root);
    if (found.length !== 1) throw new Error(`expected one Durable Object file, found ${JSON.stringify(found)}`);
    return found[0];
  }

  sql(statement) {
    return sqlite(this.stateFile(), statement);
  }

  /** Miniflare disposed and created again on the same persist directory. */
  async restart() {
    await this.mf.dispose();
    return this.start();
  }

  log() {
    return this.logText;
  }

  async stop() {
    await this.mf?.dispose();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A started receiver of `kind` ("rust" or "worker"). */
export async function startTarget(kind, opts) {
  const target = kind === "rust" ? new RustTarget(opts) : new WorkerTarget(opts);
  return target.start();
}
