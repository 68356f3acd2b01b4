// The Worker's settings, read from its variables and secrets with the names and defaults of
// `heartbeat receiver` (crates/hb-config/src/receiver.rs): RECEIVER_AGENT_<name> (or SECRET_KEY
// for one agent named "default"), RECEIVER_GRACE_SECONDS[_<name>], N8N_WEBHOOK_URL, TZ. Every
// problem is collected and reported together; no key or webhook URL ever appears in a message.
// One difference: the Cron Trigger runs the watchdog once a minute, so a grace under 60 s
// cannot be kept and is refused.

const AGENT_PREFIX = "RECEIVER_AGENT_";
const GRACE_PREFIX = "RECEIVER_GRACE_SECONDS_";
export const DEFAULT_AGENT = "default";
/** Cron granularity: the watchdog cannot look more often than once a minute. */
export const MIN_GRACE_SECS = 60;
export const MAX_GRACE_SECS = 7 * 86_400;
const DEFAULT_GRACE_SECS = 60;

/** The value with surrounding whitespace removed; empty (or not a string) means unset. */
function optional(env, name) {
  const raw = env[name];
  if (typeof raw !== "string") return undefined;
  const value = raw.trim();
  return value === "" ? undefined : value;
}

function hasControlChars(text) {
  // eslint-disable-next-line no-control-regex
  return /[\u0000-\u001f\u007f]/.test(text);
}

function graceSeconds(env, name, fallbackSecs, problems) {
  const raw = optional(env, name);
  if (raw === undefined) return fallbackSecs;
  const secs = /^[+]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isFinite(secs) || secs < MIN_GRACE_SECS || secs > MAX_GRACE_SECS) {
    problems.push({
      variable: name,
      message:
        `'${raw}' is not valid (expected a number of seconds from ${MIN_GRACE_SECS} to ` +
        `${MAX_GRACE_SECS}; on Workers the Cron Trigger runs the watchdog once a minute, ` +
        `so a grace under ${MIN_GRACE_SECS} s cannot be kept)`,
    });
    return fallbackSecs;
  }
  return secs;
}

function timeZone(env, problems) {
  const raw = optional(env, "TZ") ?? "UTC";
  const name = raw.startsWith(":") ? raw.slice(1) : raw;
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: name });
    return name;
  } catch {
    problems.push({
      variable: "TZ",
      message: `'${raw}' is not a known time zone (expected an IANA name such as UTC or America/Lima)`,
    });
    return "UTC";
  }
}

function webhookUrl(env, problems) {
  const raw = optional(env, "N8N_WEBHOOK_URL");
  if (raw === undefined) return undefined;
  let url;
  try {
    url = new URL(raw);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== "http:" && url.protocol !== "https:") || !url.hostname) {
    // The URL may carry a token: it is not repeated.
    problems.push({
      variable: "N8N_WEBHOOK_URL",
      message: "is not an http:// or https:// URL (value not shown: it may carry a token)",
    });
    return undefined;
  }
  return raw;
}

/**
 * `{config}` or `{problems: [{variable, message}]}`. `config.agents` is sorted by name (as the
 * Rust receiver's), each `{name, key, graceMs}`.
 */
export function loadConfig(env) {
  const problems = [];
  const defaultGraceSecs = graceSeconds(env, "RECEIVER_GRACE_SECONDS", DEFAULT_GRACE_SECS, problems);
  const webhook = webhookUrl(env, problems);
  const tz = timeZone(env, problems);

  const names = Object.keys(env)
    .filter((k) => k.startsWith(AGENT_PREFIX) && typeof env[k] === "string")
    .sort();
  const agents = [];
  const agentProblems = [];
  if (names.length === 0) {
    const key = optional(env, "SECRET_KEY");
    if (key === undefined) {
      agentProblems.push({
        variable: AGENT_PREFIX,
        message:
          "no agent is configured (set RECEIVER_AGENT_<name>=<key> per agent, or SECRET_KEY for a single agent named 'default')",
      });
    } else if (hasControlChars(key)) {
      agentProblems.push({
        variable: "SECRET_KEY",
        message: "contains control characters (such as a line break) and cannot be sent in an HTTP header",
      });
    } else {
      agents.push({ name: DEFAULT_AGENT, key, graceMs: defaultGraceSecs * 1000 });
    }
  }
  for (const variable of names) {
    const name = variable.slice(AGENT_PREFIX.length);
    const key = env[variable].trim();
    if (name === "") {
      agentProblems.push({
        variable: AGENT_PREFIX,
        message: "an agent needs a name after the prefix (RECEIVER_AGENT_<name>)",
      });
      continue;
    }
    if (key === "") {
      agentProblems.push({ variable, message: "is empty (expected the agent's key)" });
      continue;
    }
    if (hasControlChars(key)) {
      agentProblems.push({
        variable,
        message: "contains control characters (such as a line break) and cannot arrive in an HTTP header",
      });
      continue;
    }
    agents.push({ name, key, graceMs: defaultGraceSecs * 1000 });
  }
  // A key names one agent: two agents sharing one could not be told apart.
  agents.forEach((a, i) => {
    const first = agents.slice(0, i).find((b) => b.key === a.key);
    if (first) {
      agentProblems.push({
        variable: `${AGENT_PREFIX}${a.name}`,
        message: `has the same key as ${AGENT_PREFIX}${first.name} (each agent needs its own key)`,
      });
    }
  });
  problems.push(...agentProblems);

  const graces = Object.keys(env)
    .filter((k) => k.startsWith(GRACE_PREFIX) && typeof env[k] === "string")
    .sort();
  for (const variable of graces) {
    const name = variable.slice(GRACE_PREFIX.length);
    const secs = graceSeconds(env, variable, defaultGraceSecs, problems);
    const agent = agents.find((a) => a.name === name);
    if (agent) {
      agent.graceMs = secs * 1000;
    } else {
      problems.push({
        variable,
        message: `there is no agent named '${name}' (set ${AGENT_PREFIX}${name}, or use ${GRACE_PREFIX}${DEFAULT_AGENT} with SECRET_KEY)`,
      });
    }
  }
  if (problems.length > 0) return { problems };
  return { config: { agents, webhookUrl: webhook, tz, defaultGraceMs: defaultGraceSecs * 1000 } };
}

/** One line per problem, as the Rust receiver reports them: `NAME: message`. */
export function describeProblems(problems) {
  return problems.map((p) => `${p.variable}: ${p.message}`);
}
