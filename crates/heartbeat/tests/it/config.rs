//! Configuration through the real binary: every malformed input stops start-up with exit code 2
//! and a message naming the variable, never a panic, never a secret.

use std::io::Write as _;

use crate::common::heartbeat;

const GOOD_SERVICE: (&str, &str) = ("SERVICE_URL_web", "http://127.0.0.1:9/health");

struct Case {
    vars: &'static [(&'static str, &'static str)],
    /// The variable the message must name.
    names: &'static str,
    /// Text that must not appear anywhere in the output.
    secret: Option<&'static str>,
    /// The subcommands that read the variable and must refuse it.
    cmds: &'static [&'static str],
}

const AGENT: &[&str] = &["config", "agent"];

const CASES: &[Case] = &[
    Case {
        vars: &[("LOOP_INTERVAL_SECONDS", "ten")],
        names: "LOOP_INTERVAL_SECONDS",
        secret: None,
        cmds: AGENT,
    },
    Case {
        vars: &[("LOOP_INTERVAL_SECONDS", "0")],
        names: "LOOP_INTERVAL_SECONDS",
        secret: None,
        cmds: AGENT,
    },
    Case {
        vars: &[("LOOP_INTERVAL_SECONDS", "-5")],
        names: "LOOP_INTERVAL_SECONDS",
        secret: None,
        cmds: AGENT,
    },
    Case {
        vars: &[("STATUS_CHANGE_THRESHOLD", "0")],
        names: "STATUS_CHANGE_THRESHOLD",
        secret: None,
        cmds: AGENT,
    },
    Case {
        vars: &[("STATUS_CHANGE_THRESHOLD", "2.5")],
        names: "STATUS_CHANGE_THRESHOLD",
        secret: None,
        cmds: AGENT,
    },
    Case {
        vars: &[("SERVICE_TIMEOUT_SECONDS", "abc")],
        names: "SERVICE_TIMEOUT_SECONDS",
        secret: None,
        cmds: AGENT,
    },
    Case {
        vars: &[("SERVICE_TIMEOUT_SECONDS", "-0.5")],
        names: "SERVICE_TIMEOUT_SECONDS",
        secret: None,
        cmds: AGENT,
    },
    Case {
        vars: &[("TARGET_DATA_POINTS", "lots")],
        names: "TARGET_DATA_POINTS",
        secret: None,
        cmds: &["config", "dashboard"],
    },
    Case {
        vars: &[("TZ", "Mars/Olympus_Mons")],
        names: "TZ",
        secret: None,
        cmds: AGENT,
    },
    Case {
        vars: &[("INTERNAL_DNS_OVERRIDE_IP", "999.1.1.1")],
        names: "INTERNAL_DNS_OVERRIDE_IP",
        secret: None,
        cmds: AGENT,
    },
    Case {
        vars: &[("SERVICE_URL_ftp", "ftp://example.com/")],
        names: "SERVICE_URL_ftp",
        secret: None,
        cmds: AGENT,
    },
    Case {
        vars: &[("SERVICE_URL_empty", "")],
        names: "SERVICE_URL_empty",
        secret: None,
        cmds: AGENT,
    },
    Case {
        vars: &[("SERVICE_URL_nohost", "http://")],
        names: "SERVICE_URL_nohost",
        secret: None,
        cmds: AGENT,
    },
    Case {
        vars: &[("SERVICE_URL_creds", "http://admin:pa55word@exa mple.com/")],
        names: "SERVICE_URL_creds",
        secret: Some("pa55word"),
        cmds: AGENT,
    },
    Case {
        vars: &[("SERVICE_HEADERS_web", "Authorization Bearer s3cr3t-token")],
        names: "SERVICE_HEADERS_web",
        secret: Some("s3cr3t-token"),
        cmds: AGENT,
    },
    Case {
        vars: &[("SERVICE_HEADERS_ghost", "X-Key:value")],
        names: "SERVICE_HEADERS_ghost",
        secret: None,
        cmds: AGENT,
    },
    Case {
        vars: &[("SERVICE_NAMES", "web,ghost")],
        names: "SERVICE_NAMES",
        secret: None,
        cmds: AGENT,
    },
    Case {
        vars: &[("SERVICE_URL_db", "docker:")],
        names: "SERVICE_URL_db",
        secret: None,
        cmds: AGENT,
    },
    // tcp:// needs a host and a port (issue 16), and takes nothing else.
    Case {
        vars: &[("SERVICE_URL_pg", "tcp://db.internal")],
        names: "SERVICE_URL_pg",
        secret: None,
        cmds: AGENT,
    },
    Case {
        vars: &[("SERVICE_URL_pg", "tcp://:5432")],
        names: "SERVICE_URL_pg",
        secret: None,
        cmds: AGENT,
    },
    Case {
        vars: &[("SERVICE_URL_pg", "tcp://db.internal:99999")],
        names: "SERVICE_URL_pg",
        secret: None,
        cmds: AGENT,
    },
    Case {
        vars: &[("SERVICE_URL_pg", "tcp://db.internal:5432/path")],
        names: "SERVICE_URL_pg",
        secret: None,
        cmds: AGENT,
    },
    Case {
        vars: &[("SERVICE_URL_pg", "tcp://admin:pa55word@db.internal:5432")],
        names: "SERVICE_URL_pg",
        secret: Some("pa55word"),
        cmds: AGENT,
    },
    Case {
        vars: &[
            ("HEARTBEAT_URL", "not a url"),
            ("SECRET_KEY", "topsecret-key"),
        ],
        names: "HEARTBEAT_URL",
        secret: Some("topsecret-key"),
        cmds: AGENT,
    },
    Case {
        vars: &[("N8N_WEBHOOK_URL", "ftp://user:hunter2@hooks.example/x")],
        names: "N8N_WEBHOOK_URL",
        secret: Some("hunter2"),
        cmds: AGENT,
    },
    Case {
        vars: &[("PING_URL", "gopher://example.com")],
        names: "PING_URL",
        secret: None,
        cmds: AGENT,
    },
    Case {
        vars: &[("DOCKER_HOST", "ssh://host")],
        names: "DOCKER_HOST",
        secret: None,
        cmds: AGENT,
    },
    Case {
        vars: &[("CHECKS_PER_TARGET", "four")],
        names: "CHECKS_PER_TARGET",
        secret: None,
        cmds: AGENT,
    },
    Case {
        vars: &[("CHECKS_PER_TARGET", "-1")],
        names: "CHECKS_PER_TARGET",
        secret: None,
        cmds: AGENT,
    },
    Case {
        vars: &[("TLS_EXPIRY_WARN_DAYS", "two weeks")],
        names: "TLS_EXPIRY_WARN_DAYS",
        secret: None,
        cmds: AGENT,
    },
    Case {
        vars: &[("SERVICE_EXPECT_web", "2xx")],
        names: "SERVICE_EXPECT_web",
        secret: None,
        cmds: AGENT,
    },
    Case {
        vars: &[("SERVICE_METHOD_web", "POST")],
        names: "SERVICE_METHOD_web",
        secret: None,
        cmds: AGENT,
    },
    Case {
        vars: &[("SERVICE_TIMEOUT_web", "0")],
        names: "SERVICE_TIMEOUT_web",
        secret: None,
        cmds: AGENT,
    },
    Case {
        vars: &[("SERVICE_KEYWORD_wbe", "ok")],
        names: "SERVICE_KEYWORD_wbe",
        secret: None,
        cmds: AGENT,
    },
    Case {
        vars: &[
            ("SERVICE_URL_ctr", "docker:web"),
            ("SERVICE_EXPECT_ctr", "200"),
        ],
        names: "SERVICE_EXPECT_ctr",
        secret: None,
        cmds: AGENT,
    },
    Case {
        vars: &[("FORCE_IPV4", "maybe")],
        names: "FORCE_IPV4",
        secret: None,
        cmds: AGENT,
    },
    Case {
        vars: &[("DASHBOARD_BIND", "everywhere")],
        names: "DASHBOARD_BIND",
        secret: None,
        cmds: &["config", "dashboard"],
    },
    // Below the minimums the agent can run (these once passed and then panicked at start).
    Case {
        vars: &[("LOOP_INTERVAL_SECONDS", "0.0001")],
        names: "LOOP_INTERVAL_SECONDS",
        secret: None,
        cmds: AGENT,
    },
    Case {
        vars: &[("LOOP_INTERVAL_SECONDS", "0.0009")],
        names: "LOOP_INTERVAL_SECONDS",
        secret: None,
        cmds: AGENT,
    },
    Case {
        vars: &[("LOOP_INTERVAL_SECONDS", "1e-320")],
        names: "LOOP_INTERVAL_SECONDS",
        secret: None,
        cmds: AGENT,
    },
    Case {
        vars: &[("LOOP_INTERVAL_SECONDS", "0.05")],
        names: "LOOP_INTERVAL_SECONDS",
        secret: None,
        cmds: AGENT,
    },
    Case {
        vars: &[("SERVICE_TIMEOUT_SECONDS", "1e-9")],
        names: "SERVICE_TIMEOUT_SECONDS",
        secret: None,
        cmds: AGENT,
    },
    Case {
        vars: &[("SERVICE_TIMEOUT_SECONDS", "0.001")],
        names: "SERVICE_TIMEOUT_SECONDS",
        secret: None,
        cmds: AGENT,
    },
    Case {
        vars: &[("SERVICE_SLOW_MS", "fast")],
        names: "SERVICE_SLOW_MS",
        secret: None,
        cmds: &["config", "dashboard"],
    },
    Case {
        vars: &[("SERVICE_SLOW_MS", "0")],
        names: "SERVICE_SLOW_MS",
        secret: None,
        cmds: &["config", "dashboard"],
    },
    Case {
        vars: &[("SERVICE_SLOW_MS_web", "-250")],
        names: "SERVICE_SLOW_MS_web",
        secret: None,
        cmds: &["config", "dashboard"],
    },
    Case {
        vars: &[("RETENTION_DAYS", "-1")],
        names: "RETENTION_DAYS",
        secret: None,
        cmds: AGENT,
    },
    Case {
        vars: &[("RETENTION_MINUTE_ROLLUPS_DAYS", "two")],
        names: "RETENTION_MINUTE_ROLLUPS_DAYS",
        secret: None,
        cmds: AGENT,
    },
    // The 30d range reads six-minute blocks, the 1y range hour blocks; alerts stay a year.
    Case {
        vars: &[("RETENTION_6MIN_ROLLUPS_DAYS", "30")],
        names: "RETENTION_6MIN_ROLLUPS_DAYS",
        secret: None,
        cmds: AGENT,
    },
    Case {
        vars: &[("RETENTION_HOUR_ROLLUPS_DAYS", "365")],
        names: "RETENTION_HOUR_ROLLUPS_DAYS",
        secret: None,
        cmds: AGENT,
    },
    Case {
        vars: &[("RETENTION_DAY_ROLLUPS_DAYS", "90")],
        names: "RETENTION_DAY_ROLLUPS_DAYS",
        secret: None,
        cmds: AGENT,
    },
    Case {
        vars: &[("RETENTION_ALERTS_DAYS", "30")],
        names: "RETENTION_ALERTS_DAYS",
        secret: None,
        cmds: AGENT,
    },
    Case {
        vars: &[("ALERT_REMINDER_MINUTES", "-5")],
        names: "ALERT_REMINDER_MINUTES",
        secret: None,
        cmds: AGENT,
    },
    Case {
        vars: &[(
            "MAINTENANCE_WINDOWS",
            "Sun 02:00-03:00; Someday 04:00-05:00",
        )],
        names: "MAINTENANCE_WINDOWS",
        secret: None,
        cmds: &["config", "agent", "dashboard"],
    },
    // A typo in @name would hold nothing.
    Case {
        vars: &[("MAINTENANCE_WINDOWS", "daily 04:00-04:15 @no-such-service")],
        names: "MAINTENANCE_WINDOWS",
        secret: None,
        cmds: AGENT,
    },
    // A key that cannot go into an HTTP header once made the agent exit 1 after `config` said 0.
    Case {
        vars: &[("SECRET_KEY", "sk-first-half\nsk-second-half")],
        names: "SECRET_KEY",
        secret: Some("sk-second-half"),
        cmds: &["config", "agent", "mock"],
    },
    Case {
        vars: &[("SECRET_KEY", "sk-bell\u{7}-tail")],
        names: "SECRET_KEY",
        secret: Some("sk-bell"),
        cmds: &["config", "agent", "mock"],
    },
];

fn assert_rejected(out: &std::process::Output, names: &str, secret: Option<&str>, label: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{label}: exit code; stderr: {stderr}"
    );
    assert!(
        stderr.contains(&format!("configuration error: {names}")),
        "{label}: message must name {names}: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{label}: panic: {stderr}");
    if let Some(secret) = secret {
        assert!(
            !stderr.contains(secret) && !stdout.contains(secret),
            "{label}: secret leaked: {stderr}{stdout}"
        );
    }
}

#[test]
fn every_malformed_variable_exits_2_naming_it() {
    assert!(CASES.len() >= 15);
    for case in CASES {
        for subcommand in case.cmds {
            let mut cmd = heartbeat();
            cmd.arg(subcommand).env(GOOD_SERVICE.0, GOOD_SERVICE.1);
            if *subcommand == "agent" {
                // Should the variable be accepted by mistake, the test fails instead of hanging.
                cmd.arg("--once");
            }
            for (k, v) in case.vars {
                cmd.env(k, v);
            }
            let out = cmd.output().expect("run");
            assert_rejected(
                &out,
                case.names,
                case.secret,
                &format!("{subcommand} {:?}", case.vars),
            );
        }
    }
}

/// Bytes that are not UTF-8 in a variable's value (or its name) are an error naming it, never
/// a silent fallback to the default or a service that quietly disappears.
#[test]
fn values_that_are_not_utf8_are_errors_naming_the_variable() {
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt as _;
    let bad = || OsString::from_vec(b"10\xff\xfe".to_vec());
    let cases: [(&str, OsString, OsString); 4] = [
        (
            "LOOP_INTERVAL_SECONDS",
            "LOOP_INTERVAL_SECONDS".into(),
            bad(),
        ),
        ("SECRET_KEY", "SECRET_KEY".into(), bad()),
        ("SERVICE_URL_api", "SERVICE_URL_api".into(), bad()),
        (
            "SERVICE_URL_caf",
            OsString::from_vec(b"SERVICE_URL_caf\xe9".to_vec()),
            "http://127.0.0.1:9/".into(),
        ),
    ];
    for (names, key, value) in cases {
        for subcommand in ["config", "agent"] {
            let out = heartbeat()
                .arg(subcommand)
                .env(GOOD_SERVICE.0, GOOD_SERVICE.1)
                .env(&key, &value)
                .output()
                .expect("run");
            assert_rejected(&out, names, None, &format!("{subcommand} {key:?}"));
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("UTF-8"),
                "{subcommand} {key:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    // The mock reads SECRET_KEY too; the dashboard does not, and starts regardless.
    let out = heartbeat()
        .args(["config", "--role", "mock"])
        .env("SECRET_KEY", bad())
        .output()
        .expect("run");
    assert_rejected(&out, "SECRET_KEY", None, "mock");
    let out = heartbeat()
        .args(["config", "--role", "dashboard"])
        .env("SECRET_KEY", bad())
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One `.env` shared by the agent and the dashboard (as the compose files do): a mistake in a
/// variable only the agent reads must not stop the dashboard, and the reverse.
#[test]
fn each_role_checks_only_what_it_uses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("metrics.db");
    let mut dashboard = heartbeat();
    dashboard
        .args(["dashboard", "--bind", "127.0.0.1:0"])
        .env("SQLITE_DB_PATH", &db)
        .env("DOCKER_HOST", "bogus")
        .env("LOOP_INTERVAL_SECONDS", "ten")
        .env("SERVICE_HEADERS_ghost", "no colon here")
        .stderr(std::process::Stdio::piped());
    let mut child = dashboard.spawn().expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let listening = lines
        .by_ref()
        .take(20)
        .map_while(Result::ok)
        .any(|l| l.contains("dashboard listening"));
    let _ = child.kill();
    let status = child.wait().expect("wait");
    assert!(listening, "the dashboard did not start: {status:?}");

    for (role, var, value, ok) in [
        ("dashboard", "DOCKER_HOST", "bogus", true),
        ("mock", "DOCKER_HOST", "bogus", true),
        ("mock", "TZ", "Nowhere/Land", true),
        ("healthcheck", "DASHBOARD_BIND", "everywhere", true),
        ("agent", "DASHBOARD_BIND", "everywhere", true),
        ("agent", "DOCKER_HOST", "bogus", false),
        ("dashboard", "TZ", "Nowhere/Land", false),
        ("mock", "MOCK_PORT", "http", false),
        ("healthcheck", "LOOP_INTERVAL_SECONDS", "0", false),
    ] {
        let out = heartbeat()
            .args(["config", "--role", role])
            .env(GOOD_SERVICE.0, GOOD_SERVICE.1)
            .env(var, value)
            .output()
            .expect("run");
        let label = format!("{role} with {var}={value}");
        if ok {
            assert!(
                out.status.success(),
                "{label}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        } else {
            assert_rejected(&out, var, None, &label);
        }
    }
    // The dashboard's own mistakes still stop it, with exit 2 and the variable named.
    let out = heartbeat()
        .arg("dashboard")
        .env("TZ", "Nowhere/Land")
        .output()
        .expect("run");
    assert_rejected(&out, "TZ", None, "dashboard TZ");
}

#[test]
fn config_shows_tcp_services_among_the_http_ones() {
    let out = heartbeat()
        .arg("config")
        .env("SERVICE_URL_web", "http://127.0.0.1:9/health")
        .env("SERVICE_URL_box", "docker:box")
        .env("SERVICE_URL_pg", "tcp://db.internal:5432")
        .env("SERVICE_URL_Cache", "tcp://[::1]:6379")
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stderr}");
    let line = |key: &str| {
        stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(key))
            .map(|l| l.split_once(" = ").map_or("", |(_, v)| v).to_owned())
            .unwrap_or_default()
    };
    assert_eq!(line("SERVICE_URL_pg"), "tcp://db.internal:5432");
    assert_eq!(line("SERVICE_URL_Cache"), "tcp://[::1]:6379");
    assert_eq!(line("SERVICE_NAMES"), "Cache,pg,web,box");
}

#[test]
fn names_that_differ_only_in_case_are_two_services_with_a_warning() {
    let out = heartbeat()
        .arg("config")
        .env("SERVICE_URL_api", "http://127.0.0.1:9/a")
        .env("SERVICE_URL_API", "http://127.0.0.1:9/b")
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("SERVICE_URL_api") && stdout.contains("SERVICE_URL_API"),
        "{stdout}"
    );
    assert!(
        stderr.contains("SERVICE_URL_API and SERVICE_URL_api differ only in case"),
        "{stderr}"
    );
}

#[test]
fn an_env_file_with_a_byte_order_mark_is_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(".env");
    std::fs::write(
        &path,
        "\u{feff}SERVICE_URL_api=http://127.0.0.1:9/\nTZ=America/Lima\n",
    )
    .expect("write");
    let out = config_with_env_file(&path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("SERVICE_URL_api"), "{stdout}");

    // A file that is not UTF-8 names the line, not its text.
    std::fs::write(&path, b"TZ=UTC\nSECRET_KEY=abc\xff-hidden\n").expect("write");
    let out = config_with_env_file(&path);
    assert_rejected(&out, "--env-file", Some("hidden"), "not UTF-8");
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2 is not valid UTF-8"));
}

#[test]
fn no_service_at_all_is_an_error_for_the_agent() {
    let out = heartbeat().arg("agent").output().expect("run");
    assert_rejected(&out, "SERVICE_URL_", None, "no service");
}

#[test]
fn all_problems_are_reported_at_once() {
    let out = heartbeat()
        .arg("config")
        .env(GOOD_SERVICE.0, GOOD_SERVICE.1)
        .env("LOOP_INTERVAL_SECONDS", "x")
        .env("TZ", "Nowhere/Land")
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("LOOP_INTERVAL_SECONDS") && stderr.contains("TZ:"),
        "{stderr}"
    );
}

#[test]
fn a_missing_env_file_is_named() {
    let out = heartbeat()
        .args(["--env-file", "/nonexistent/.env", "config"])
        .output()
        .expect("run");
    assert_rejected(&out, "--env-file", None, "missing env file");
}

#[test]
fn env_file_values_may_be_quoted_and_the_environment_wins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(".env");
    let mut f = std::fs::File::create(&path).expect("create");
    writeln!(
        f,
        "SERVICE_URL_api=\"https://api.example.com/health\"\n\
         SERVICE_HEADERS_api='Authorization:Bearer abc:def,X-Check:true'\n\
         SERVICE_URL_db=docker:postgres\n\
         N8N_WEBHOOK_URL=\"\"\n\
         TZ=\"America/Lima\"\n\
         LOOP_INTERVAL_SECONDS=30\n\
         SQLITE_DB_PATH=/srv/a$b/${{MISSING:-metrics}}.db # a bare $name stays\n\
         SECRET_KEY='sk_file_secret'"
    )
    .expect("write");
    let out = heartbeat()
        .arg("--env-file")
        .arg(&path)
        .arg("config")
        .env("LOOP_INTERVAL_SECONDS", "5")
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = |key: &str| {
        stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(key))
            .map(|l| l.split_once(" = ").map_or("", |(_, v)| v).to_owned())
            .unwrap_or_default()
    };
    assert_eq!(line("LOOP_INTERVAL_SECONDS"), "5", "the environment wins");
    assert_eq!(line("TZ"), "America/Lima");
    assert_eq!(line("N8N_WEBHOOK_URL"), "(unset)");
    assert_eq!(line("SERVICE_URL_api"), "https://api.example.com/health");
    assert_eq!(line("SERVICE_HEADERS_api"), "Authorization:***,X-Check:***");
    assert_eq!(line("SERVICE_NAMES"), "api,db");
    assert_eq!(line("SECRET_KEY"), "*** (set)");
    assert_eq!(line("SQLITE_DB_PATH"), "/srv/a$b/metrics.db");
    assert!(!stdout.contains("sk_file_secret") && !stdout.contains("abc:def"));
}

#[test]
fn a_malformed_env_file_line_is_named_by_number_without_its_text() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(".env");
    std::fs::write(
        &path,
        "SERVICE_URL_a=http://a.test\nTOKEN 'hunter2-secret'\n",
    )
    .expect("write");
    let out = config_with_env_file(&path);
    assert_rejected(&out, "--env-file", Some("hunter2-secret"), "malformed line");
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2"));
}

/// `heartbeat --env-file PATH config`, with nothing else set.
fn config_with_env_file(path: &std::path::Path) -> std::process::Output {
    heartbeat()
        .arg("--env-file")
        .arg(path)
        .arg("config")
        .output()
        .expect("run")
}

#[test]
fn help_lists_the_subcommands() {
    let out = heartbeat().arg("--help").output().expect("run");
    assert!(out.status.success());
    insta::assert_snapshot!(String::from_utf8_lossy(&out.stdout));
}

/// Key and value of each `KEY = value` line of `heartbeat config`.
fn config_lines(out: &std::process::Output) -> Vec<(String, String)> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(" = "))
        .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
        .collect()
}

#[test]
fn config_shows_the_retention_and_dispatch_defaults_and_overrides() {
    let out = heartbeat()
        .arg("config")
        .env(GOOD_SERVICE.0, GOOD_SERVICE.1)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = config_lines(&out);
    let value = |key: &str| {
        lines
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{key} missing from: {lines:?}"))
    };
    for (key, default) in [
        ("RETENTION_DAYS", "30"),
        ("RETENTION_MINUTE_ROLLUPS_DAYS", "2"),
        ("RETENTION_6MIN_ROLLUPS_DAYS", "35"),
        ("RETENTION_HOUR_ROLLUPS_DAYS", "400"),
        ("RETENTION_DAY_ROLLUPS_DAYS", "0"),
        ("RETENTION_ALERTS_DAYS", "400"),
        ("CHECKS_PER_TARGET", "4"),
    ] {
        assert_eq!(value(key), default, "{key}");
    }
    let out = heartbeat()
        .arg("config")
        .env(GOOD_SERVICE.0, GOOD_SERVICE.1)
        .env("RETENTION_DAYS", "0")
        .env("RETENTION_HOUR_ROLLUPS_DAYS", "730")
        .env("CHECKS_PER_TARGET", "0")
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = config_lines(&out);
    assert!(lines.contains(&("RETENTION_DAYS".to_owned(), "0".to_owned())));
    assert!(lines.contains(&("RETENTION_HOUR_ROLLUPS_DAYS".to_owned(), "730".to_owned())));
    assert!(lines.contains(&("CHECKS_PER_TARGET".to_owned(), "0 (unlimited)".to_owned())));
}
