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
}

const CASES: &[Case] = &[
    Case {
        vars: &[("LOOP_INTERVAL_SECONDS", "ten")],
        names: "LOOP_INTERVAL_SECONDS",
        secret: None,
    },
    Case {
        vars: &[("LOOP_INTERVAL_SECONDS", "0")],
        names: "LOOP_INTERVAL_SECONDS",
        secret: None,
    },
    Case {
        vars: &[("LOOP_INTERVAL_SECONDS", "-5")],
        names: "LOOP_INTERVAL_SECONDS",
        secret: None,
    },
    Case {
        vars: &[("STATUS_CHANGE_THRESHOLD", "0")],
        names: "STATUS_CHANGE_THRESHOLD",
        secret: None,
    },
    Case {
        vars: &[("STATUS_CHANGE_THRESHOLD", "2.5")],
        names: "STATUS_CHANGE_THRESHOLD",
        secret: None,
    },
    Case {
        vars: &[("SERVICE_TIMEOUT_SECONDS", "abc")],
        names: "SERVICE_TIMEOUT_SECONDS",
        secret: None,
    },
    Case {
        vars: &[("SERVICE_TIMEOUT_SECONDS", "-0.5")],
        names: "SERVICE_TIMEOUT_SECONDS",
        secret: None,
    },
    Case {
        vars: &[("TARGET_DATA_POINTS", "lots")],
        names: "TARGET_DATA_POINTS",
        secret: None,
    },
    Case {
        vars: &[("TZ", "Mars/Olympus_Mons")],
        names: "TZ",
        secret: None,
    },
    Case {
        vars: &[("INTERNAL_DNS_OVERRIDE_IP", "999.1.1.1")],
        names: "INTERNAL_DNS_OVERRIDE_IP",
        secret: None,
    },
    Case {
        vars: &[("SERVICE_URL_ftp", "ftp://example.com/")],
        names: "SERVICE_URL_ftp",
        secret: None,
    },
    Case {
        vars: &[("SERVICE_URL_empty", "")],
        names: "SERVICE_URL_empty",
        secret: None,
    },
    Case {
        vars: &[("SERVICE_URL_nohost", "http://")],
        names: "SERVICE_URL_nohost",
        secret: None,
    },
    Case {
        vars: &[("SERVICE_URL_creds", "http://admin:pa55word@exa mple.com/")],
        names: "SERVICE_URL_creds",
        secret: Some("pa55word"),
    },
    Case {
        vars: &[("SERVICE_HEADERS_web", "Authorization Bearer s3cr3t-token")],
        names: "SERVICE_HEADERS_web",
        secret: Some("s3cr3t-token"),
    },
    Case {
        vars: &[("SERVICE_HEADERS_ghost", "X-Key:value")],
        names: "SERVICE_HEADERS_ghost",
        secret: None,
    },
    Case {
        vars: &[("SERVICE_NAMES", "web,ghost")],
        names: "SERVICE_NAMES",
        secret: None,
    },
    Case {
        vars: &[("SERVICE_URL_db", "docker:")],
        names: "SERVICE_URL_db",
        secret: None,
    },
    Case {
        vars: &[
            ("HEARTBEAT_URL", "not a url"),
            ("SECRET_KEY", "topsecret-key"),
        ],
        names: "HEARTBEAT_URL",
        secret: Some("topsecret-key"),
    },
    Case {
        vars: &[("N8N_WEBHOOK_URL", "ftp://user:hunter2@hooks.example/x")],
        names: "N8N_WEBHOOK_URL",
        secret: Some("hunter2"),
    },
    Case {
        vars: &[("PING_URL", "gopher://example.com")],
        names: "PING_URL",
        secret: None,
    },
    Case {
        vars: &[("DOCKER_HOST", "ssh://host")],
        names: "DOCKER_HOST",
        secret: None,
    },
    Case {
        vars: &[("FORCE_IPV4", "maybe")],
        names: "FORCE_IPV4",
        secret: None,
    },
    Case {
        vars: &[("DASHBOARD_BIND", "everywhere")],
        names: "DASHBOARD_BIND",
        secret: None,
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
        for subcommand in ["config", "agent"] {
            let mut cmd = heartbeat();
            cmd.arg(subcommand).env(GOOD_SERVICE.0, GOOD_SERVICE.1);
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
    let out = heartbeat()
        .arg("--env-file")
        .arg(&path)
        .arg("config")
        .output()
        .expect("run");
    assert_rejected(&out, "--env-file", Some("hunter2-secret"), "malformed line");
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2"));
}

#[test]
fn help_lists_the_subcommands() {
    let out = heartbeat().arg("--help").output().expect("run");
    assert!(out.status.success());
    insta::assert_snapshot!(String::from_utf8_lossy(&out.stdout));
}
