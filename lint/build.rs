//! Compiles every `rules/*.toml` of the workspace into the linter: writes `builtin_rules.rs`, a
//! list of `(file name, include_str!(file))` sorted by name, so a rules file added to the folder is
//! built in without touching the code.

use std::path::PathBuf;
use std::{env, fs};

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let rules = manifest.join("../rules");
    println!("cargo::rerun-if-changed={}", rules.display());
    let mut files: Vec<PathBuf> = fs::read_dir(&rules)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|path| path.extension().is_some_and(|e| e == "toml") && path.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut out = String::from("/// Every built-in rules file: its name and its text.\n");
    out.push_str("pub(crate) const BUILTIN: &[(&str, &str)] = &[\n");
    for file in &files {
        let name = file.file_name().and_then(|n| n.to_str()).expect("rules file names are UTF-8");
        let path = file.canonicalize().expect("a listed rules file exists");
        out.push_str(&format!("    ({:?}, include_str!({:?})),\n", name, path.display().to_string()));
    }
    out.push_str("];\n");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::write(out_dir.join("builtin_rules.rs"), out).expect("OUT_DIR is writable");
}
