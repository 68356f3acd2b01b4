//! The variables a configuration is read from: the process environment over an optional
//! `.env`-style file. Read once, without touching the process environment.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::Path;

use crate::ConfigError;

#[derive(Debug, Clone, Default)]
pub struct EnvSource {
    vars: BTreeMap<String, String>,
    /// Variables of the process environment whose name or value is not valid UTF-8, by their
    /// (lossily converted) name. A role that reads one reports it instead of ignoring it.
    not_utf8: BTreeSet<String>,
}

impl EnvSource {
    /// The process environment, with `env_file` underneath it (real variables win).
    pub fn from_process(env_file: Option<&Path>) -> Result<EnvSource, ConfigError> {
        let file = match env_file {
            Some(path) => read_env_file(path)?,
            None => BTreeMap::new(),
        };
        Ok(Self::from_os_pairs(file, std::env::vars_os()))
    }

    /// `os_vars` (the process environment) over `file`. A variable that is not valid UTF-8 is
    /// remembered as such, hiding any value the file gave it: the operator set it, so falling
    /// back to something else would run with a value nobody chose.
    pub fn from_os_pairs(
        file: BTreeMap<String, String>,
        os_vars: impl IntoIterator<Item = (OsString, OsString)>,
    ) -> EnvSource {
        let mut env = EnvSource {
            vars: file,
            not_utf8: BTreeSet::new(),
        };
        for (k, v) in os_vars {
            match (k.into_string(), v.into_string()) {
                (Ok(k), Ok(v)) => {
                    env.vars.insert(k, v);
                }
                (Ok(k), Err(_)) => {
                    env.vars.remove(&k);
                    env.not_utf8.insert(k);
                }
                (Err(k), _) => {
                    env.not_utf8.insert(k.to_string_lossy().into_owned());
                }
            }
        }
        env
    }

    /// Whether `key` was set to something that is not valid UTF-8.
    pub fn is_not_utf8(&self, key: &str) -> bool {
        self.not_utf8.contains(key)
    }

    /// Names starting with `prefix` that were set but are not valid UTF-8 (name or value).
    pub fn not_utf8_with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a str> {
        self.not_utf8
            .iter()
            .filter(move |k| k.starts_with(prefix))
            .map(String::as_str)
    }

    /// A fixed set of variables (tests, the embedded demo configuration).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> EnvSource {
        EnvSource {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            not_utf8: BTreeSet::new(),
        }
    }

    /// Adds `pairs` underneath what is already set (existing values win).
    pub fn with_defaults<K: Into<String>, V: Into<String>>(
        mut self,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> EnvSource {
        for (k, v) in pairs {
            self.vars.entry(k.into()).or_insert_with(|| v.into());
        }
        self
    }

    /// Sets `key`, replacing any value.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let key = key.into();
        self.not_utf8.remove(&key);
        self.vars.insert(key, value.into());
    }

    /// The raw value of `key`; `None` when unset.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str)
    }

    /// Every variable whose name starts with `prefix`, as (suffix, value).
    pub fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.vars
            .range(prefix.to_owned()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(move |(k, v)| (&k[prefix.len()..], v.as_str()))
    }
}

fn read_env_file(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let err = |message: String| ConfigError {
        variable: "--env-file".to_owned(),
        message,
    };
    let bytes =
        std::fs::read(path).map_err(|e| err(format!("cannot read '{}': {e}", path.display())))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
        err(format!(
            "'{}' line {line} is not valid UTF-8",
            path.display()
        ))
    })?;
    // Some editors start a UTF-8 file with a byte-order mark; it is not part of the first name.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    crate::dotenv::parse(text, |name| std::env::var(name).ok())
        .map_err(|e| err(format!("'{}' line {} {}", path.display(), e.line, e.reason)))
}
