//! Which language a file is written in: by extension, and for extensionless scripts by their
//! shebang line. Every file that is not one of the parsed languages is [`Language::Text`], which
//! the secret rules still scan.

use std::path::Path;

use crate::rule::Language;

/// The language of the file at `path` whose contents are `text`.
///
/// The extension decides (`.rs`, `.ts`/`.mts`/`.cts`, `.tsx`, `.js`/`.mjs`/`.cjs`/`.jsx`,
/// `.py`/`.pyi`, `.sh`/`.bash`/`.zsh`/`.ksh`); a file with another or no extension is
/// recognised by its shebang (`#!/bin/sh`, `#!/usr/bin/env bash`, `#!/usr/bin/env -S python3 -u`,
/// `#!/usr/bin/node`, ...). Anything else is text.
///
/// ```
/// use std::path::Path;
/// use sandguard_lint::{detect_language, Language};
///
/// assert_eq!(detect_language(Path::new("src/main.rs"), ""), Language::Rust);
/// assert_eq!(detect_language(Path::new("bin/deploy"), "#!/usr/bin/env bash\nset -eu\n"), Language::Shell);
/// assert_eq!(detect_language(Path::new(".env"), "TOKEN=x\n"), Language::Text);
/// ```
pub fn detect_language(path: &Path, text: &str) -> Language {
    let by_extension = path.extension().and_then(|e| e.to_str()).and_then(|extension| {
        Some(match extension {
            "rs" => Language::Rust,
            "ts" | "mts" | "cts" => Language::Typescript,
            "tsx" => Language::Tsx,
            "js" | "mjs" | "cjs" | "jsx" => Language::Javascript,
            "py" | "pyi" => Language::Python,
            "sh" | "bash" | "zsh" | "ksh" => Language::Shell,
            _ => return None,
        })
    });
    by_extension.or_else(|| shebang_language(text)).unwrap_or(Language::Text)
}

/// The language a `#!` first line names, if it names one we parse.
fn shebang_language(text: &str) -> Option<Language> {
    let first_line = text.strip_prefix("#!")?.lines().next()?;
    let mut words = first_line.split_whitespace();
    let mut program = basename(words.next()?);
    if program == "env" {
        // `env [-S] [-i] [NAME=value]... program`: the first word that is neither an option nor
        // an assignment is the interpreter.
        program = basename(words.find(|word| !word.starts_with('-') && !word.contains('='))?);
    }
    let program = program.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    match program {
        "sh" | "bash" | "dash" | "zsh" | "ksh" | "mksh" | "ash" | "busybox" => Some(Language::Shell),
        "python" | "pypy" => Some(Language::Python),
        "node" | "nodejs" => Some(Language::Javascript),
        "deno" | "ts-node" | "tsx" | "bun" => Some(Language::Typescript),
        _ => None,
    }
}

fn basename(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect(path: &str, text: &str) -> Language {
        detect_language(Path::new(path), text)
    }

    #[test]
    fn extensions() {
        assert_eq!(detect("a/b.rs", ""), Language::Rust);
        assert_eq!(detect("x.mts", ""), Language::Typescript);
        assert_eq!(detect("x.tsx", ""), Language::Tsx);
        assert_eq!(detect("x.cjs", ""), Language::Javascript);
        assert_eq!(detect("x.jsx", ""), Language::Javascript);
        assert_eq!(detect("x.pyi", ""), Language::Python);
        assert_eq!(detect("x.bash", ""), Language::Shell);
        assert_eq!(detect("config.toml", ""), Language::Text);
        assert_eq!(detect("Makefile", "all:\n"), Language::Text);
    }

    #[test]
    fn shebangs() {
        assert_eq!(detect("run", "#!/bin/sh\necho hi\n"), Language::Shell);
        assert_eq!(detect("run", "#! /bin/bash -eu\n"), Language::Shell);
        assert_eq!(detect("run", "#!/usr/bin/env bash\n"), Language::Shell);
        assert_eq!(detect("run", "#!/usr/bin/env -S bash -e\n"), Language::Shell);
        assert_eq!(detect("run", "#!/usr/bin/env -i PATH=/bin dash\n"), Language::Shell);
        assert_eq!(detect("tool", "#!/usr/bin/python3.12\n"), Language::Python);
        assert_eq!(detect("tool", "#!/usr/bin/env node\n"), Language::Javascript);
        assert_eq!(detect("tool", "#!/usr/bin/perl\n"), Language::Text);
        // The extension wins over the shebang; a shebang not on the first line is no shebang.
        assert_eq!(detect("tool.py", "#!/bin/sh\n"), Language::Python);
        assert_eq!(detect("tool", "\n#!/bin/sh\n"), Language::Text);
        assert_eq!(detect("tool", "#!"), Language::Text);
    }
}
