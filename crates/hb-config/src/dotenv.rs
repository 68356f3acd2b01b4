//! The `.env` file format of the older tool (python-dotenv's): `NAME=value` lines, optional
//! `export `, `#` comments, single quotes taken literally, double quotes with `\n`, `\t`, `\"`
//! and `\\` escapes, and `${NAME}` / `${NAME:-default}` expanded in unquoted and double-quoted
//! values. A bare `$NAME` stays as written, so a secret containing `$` survives unquoted (a
//! general-purpose parser that expands `$NAME` would silently change it).

use std::collections::BTreeMap;

/// Why a line could not be read. Never carries the line's text: it may hold a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub reason: &'static str,
}

/// Parses `text`; `lookup` resolves `${NAME}` for names the file has not set before.
pub fn parse(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, String>, LineError> {
    let mut vars = BTreeMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let err = |reason| LineError { line, reason };
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let trimmed = trimmed
            .strip_prefix("export ")
            .map_or(trimmed, str::trim_start);
        let (name, rest) = trimmed
            .split_once('=')
            .ok_or(err("has no '=' (expected NAME=value)"))?;
        let name = name.trim();
        let valid_name = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-');
        if !valid_name {
            return Err(err("has an invalid variable name"));
        }
        let rest = rest.trim_start();
        let value = if let Some(body) = rest.strip_prefix('\'') {
            let (value, after) = single_quoted(body).ok_or(err("has an unterminated ' quote"))?;
            check_trailing(after).ok_or(err("has text after the closing quote"))?;
            value
        } else if let Some(body) = rest.strip_prefix('"') {
            let (value, after) = double_quoted(body).ok_or(err("has an unterminated \" quote"))?;
            check_trailing(after).ok_or(err("has text after the closing quote"))?;
            expand(&value, &vars, &lookup)
        } else {
            expand(unquoted(rest), &vars, &lookup)
        };
        vars.insert(name.to_owned(), value);
    }
    Ok(vars)
}

/// Only whitespace or a comment may follow a closing quote.
fn check_trailing(after: &str) -> Option<()> {
    let after = after.trim_start();
    (after.is_empty() || after.starts_with('#')).then_some(())
}

/// An unquoted value ends at ` #` (an inline comment) and loses surrounding whitespace.
fn unquoted(rest: &str) -> &str {
    let end = rest
        .char_indices()
        .find(|&(i, c)| c == '#' && i > 0 && rest[..i].ends_with([' ', '\t']))
        .map_or(rest.len(), |(i, _)| i);
    rest[..end].trim()
}

/// The text up to the closing `'`; `\'` and `\\` are the only escapes.
fn single_quoted(body: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\'' => return Some((out, &body[i + 1..])),
            '\\' => match chars.clone().next() {
                Some((_, next @ ('\'' | '\\'))) => {
                    out.push(next);
                    chars.next();
                }
                _ => out.push('\\'),
            },
            other => out.push(other),
        }
    }
    None
}

/// The text up to the closing `"`, with `\n`, `\t`, `\r`, `\"`, `\\` and `\$` unescaped.
fn double_quoted(body: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &body[i + 1..])),
            '\\' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, 'r')) => out.push('\r'),
                Some((_, other @ ('"' | '\\' | '\''))) => out.push(other),
                Some((_, other)) => {
                    out.push('\\');
                    out.push(other);
                }
                None => return None,
            },
            other => out.push(other),
        }
    }
    None
}

/// Expands `${NAME}` and `${NAME:-default}`: the process environment first (it wins over the
/// file, as for the variables themselves), then the file's earlier values, then the default.
fn expand(
    value: &str,
    vars: &BTreeMap<String, String>,
    lookup: &impl Fn(&str) -> Option<String>,
) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start + 2..].find('}') else {
            break;
        };
        out.push_str(&rest[..start]);
        let inner = &rest[start + 2..start + 2 + len];
        let (name, default) = match inner.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (inner, None),
        };
        let resolved = lookup(name)
            .or_else(|| vars.get(name).cloned())
            .filter(|v| !v.is_empty() || default.is_none())
            .or_else(|| default.map(str::to_owned))
            .unwrap_or_default();
        out.push_str(&resolved);
        rest = &rest[start + 3 + len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_with(text: &str, env: &[(&str, &str)]) -> Result<BTreeMap<String, String>, LineError> {
        parse(text, |name| {
            env.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn values_as_the_older_tool_read_them() {
        let text = r#"
# a comment
SERVICE_URL_api="https://api.example.com/health"
SERVICE_HEADERS_api='Authorization:Bearer abc:def,X-Check:true'
export TZ=America/Lima
N8N_WEBHOOK_URL=""
SECRET_KEY=pa$word$HOME
SINGLE='lit ${HOME} \' \\ $x'
DOUBLE="a\nb \"q\" \\ ${TZ}"
SPACED = padded value   # trailing comment
HASH=abc#def
EXPANDED=${TZ}/${MISSING:-fallback}/${ALSO_MISSING}
FROM_ENV=${REAL}
"#;
        let vars = parse_with(text, &[("REAL", "from the environment")]);
        let vars = match vars {
            Ok(v) => v,
            Err(e) => panic!("{e:?}"),
        };
        let get = |k: &str| vars.get(k).map(String::as_str);
        assert_eq!(
            get("SERVICE_URL_api"),
            Some("https://api.example.com/health")
        );
        assert_eq!(
            get("SERVICE_HEADERS_api"),
            Some("Authorization:Bearer abc:def,X-Check:true")
        );
        assert_eq!(get("TZ"), Some("America/Lima"));
        assert_eq!(get("N8N_WEBHOOK_URL"), Some(""));
        assert_eq!(
            get("SECRET_KEY"),
            Some("pa$word$HOME"),
            "a bare $NAME is kept"
        );
        assert_eq!(get("SINGLE"), Some("lit ${HOME} ' \\ $x"));
        assert_eq!(get("DOUBLE"), Some("a\nb \"q\" \\ America/Lima"));
        assert_eq!(get("SPACED"), Some("padded value"));
        assert_eq!(get("HASH"), Some("abc#def"));
        assert_eq!(get("EXPANDED"), Some("America/Lima/fallback/"));
        assert_eq!(get("FROM_ENV"), Some("from the environment"));
    }

    #[test]
    fn malformed_lines_name_their_number_only() {
        let table = [
            ("A=1\nno equals sign here\n", 2),
            ("A='unterminated\n", 1),
            ("A=\"unterminated\n", 1),
            ("1A=x\n", 1),
            ("A='x' trailing\n", 1),
            ("=value\n", 1),
        ];
        for (text, line) in table {
            let e = parse_with(text, &[]).expect_err(text);
            assert_eq!(e.line, line, "{text}");
        }
    }
}
