//! Checks that the page's npm dependencies are installed at the pinned versions before
//! `src/assets.rs` embeds them. It never installs anything: no network in a build script.

use std::path::{Path, PathBuf};

/// (npm package, file that `src/assets.rs` embeds from it).
const EMBEDDED: [(&str, &str); 2] = [
    ("alpinejs", "dist/cdn.min.js"),
    ("chart.js", "dist/chart.umd.min.js"),
];

const FIX: &str = "run `npm ci --ignore-scripts --prefix web` in the repository root first (the dashboard embeds these files)";

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let web = manifest_dir.join("../../web");
    for name in [
        "package.json",
        "package-lock.json",
        "index.html",
        "app.js",
        "app.css",
    ] {
        println!("cargo::rerun-if-changed={}", web.join(name).display());
    }
    let pins = read(&web.join("package.json"));
    let mut problems = Vec::new();
    for (package, file) in EMBEDDED {
        let dir = web.join("node_modules").join(package);
        let embedded = dir.join(file);
        let installed_manifest = dir.join("package.json");
        println!("cargo::rerun-if-changed={}", embedded.display());
        println!("cargo::rerun-if-changed={}", installed_manifest.display());
        let Some(pinned) = string_field(&pins, package) else {
            problems.push(format!("web/package.json does not pin {package}"));
            continue;
        };
        if !embedded.is_file() {
            problems.push(format!("missing {}", embedded.display()));
            continue;
        }
        match string_field(&read(&installed_manifest), "version") {
            Some(installed) if installed == pinned => {}
            Some(installed) => problems.push(format!(
                "web/node_modules/{package} is {installed} but web/package.json pins {pinned}"
            )),
            None => problems.push(format!("no version in {}", installed_manifest.display())),
        }
    }
    if !problems.is_empty() {
        for p in &problems {
            println!("cargo::error={p}");
        }
        println!("cargo::error={FIX}");
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The first `"key": "value"` in a JSON text. Enough for package.json files, where the pins
/// and the top-level `version` come before any nested field of the same name.
fn string_field(json: &str, key: &str) -> Option<String> {
    let needle = format!("\"{key}\"");
    let after_key = &json[json.find(&needle)? + needle.len()..];
    let value = after_key
        .trim_start()
        .strip_prefix(':')?
        .trim_start()
        .strip_prefix('"')?;
    Some(value[..value.find('"')?].to_owned())
}
