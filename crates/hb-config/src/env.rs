//! The variables a configuration is read from: the process environment over an optional
//! `.env`-style file. Read once, without touching the process environment.

use std::collections::BTreeMap;
use std::path::Path;

use crate::ConfigError;

#[derive(Debug, Clone, Default)]
pub struct EnvSource {
    vars: BTreeMap<String, String>,
}

impl EnvSource {
    /// The process environment, with `env_file` underneath it (real variables win).
    pub fn from_process(env_file: Option<&Path>) -> Result<EnvSource, ConfigError> {
        let mut vars = BTreeMap::new();
        if let Some(path) = env_file {
            vars = read_env_file(path)?;
        }
        for (k, v) in std::env::vars_os() {
            if let (Some(k), Some(v)) = (k.to_str(), v.to_str()) {
                vars.insert(k.to_owned(), v.to_owned());
            }
        }
        Ok(EnvSource { vars })
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
        self.vars.insert(key.into(), value.into());
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
    let text = std::fs::read_to_string(path)
        .map_err(|e| err(format!("cannot read '{}': {e}", path.display())))?;
    crate::dotenv::parse(&text, |name| std::env::var(name).ok())
        .map_err(|e| err(format!("'{}' line {} {}", path.display(), e.line, e.reason)))
}
