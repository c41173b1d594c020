//! `run()` end to end, the way `sandguard lint` calls it, over temporary trees.

use std::fs;
use std::path::{Path, PathBuf};

use sandguard_lint::{ColorChoice, ExitStatus, Format, Level, LintError, LintOptions, run};
use serde_json::Value;

/// A made-up GitHub token of the right shape (not a real credential).
// sandguard:allow(github-pat) -- made up
const TOKEN: &str = "ghp_Q7vLm2XcR9tKp4WzN8bYd3HsJ6fGa1Ue5Ti0";
/// A made-up AWS access key id.
// sandguard:allow(aws-access-key-id) -- made up
const AWS_ID: &str = "AKIA3Q7ZR2LX5NWD4KTB";

struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    fn new(files: &[(&str, &str)]) -> Self {
        let tree = Self { dir: tempfile::tempdir().unwrap() };
        for (path, text) in files {
            tree.write(path, text);
        }
        tree
    }

    fn write(&self, path: &str, text: &str) {
        let path = self.dir.path().join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    fn options(&self, format: Format) -> LintOptions {
        LintOptions {
            paths: vec![self.dir.path().to_owned()],
            format,
            // An empty configuration, so a `sandguard.toml` near the test's cwd cannot interfere.
            config: Some(self.config("")),
            color: ColorChoice::Never,
            ..LintOptions::default()
        }
    }

    fn config(&self, text: &str) -> PathBuf {
        let path = self.path("sandguard.toml");
        fs::write(&path, text).unwrap();
        path
    }
}

struct Outcome {
    status: Result<ExitStatus, LintError>,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn code(&self) -> u8 {
        match &self.status {
            Ok(status) => status.code(),
            Err(error) => error.exit_code(),
        }
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }

    /// (rule, path relative to the tree, line) of every JSON finding.
    fn findings(&self, tree: &Tree) -> Vec<(String, String, u64)> {
        let root = format!("{}/", tree.dir.path().display());
        self.json()["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                let path = f["path"].as_str().unwrap();
                (
                    f["rule"].as_str().unwrap().to_owned(),
                    path.strip_prefix(&root).unwrap_or(path).to_owned(),
                    f["line"].as_u64().unwrap(),
                )
            })
            .collect()
    }
}

fn lint(options: &LintOptions) -> Outcome {
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let status = run(options, &mut stdout, &mut stderr);
    Outcome { status, stdout: String::from_utf8(stdout).unwrap(), stderr: String::from_utf8(stderr).unwrap() }
}

fn finding(rule: &str, path: &str, line: u64) -> (String, String, u64) {
    (rule.to_owned(), path.to_owned(), line)
}

#[test]
fn clean_tree_exits_0_and_secret_exits_1() {
    let tree = Tree::new(&[("src/main.rs", "fn main() { println!(\"hi\"); }\n")]);
    let clean = lint(&tree.options(Format::Json));
    assert_eq!(clean.code(), 0, "{}", clean.stdout);
    assert_eq!(clean.json()["summary"]["files"], 2, "main.rs and sandguard.toml");

    tree.write("src/config.ts", &format!("export const token = \"{TOKEN}\";\n"));
    let dirty = lint(&tree.options(Format::Json));
    assert_eq!(dirty.code(), 1);
    assert_eq!(dirty.findings(&tree), [finding("github-pat", "src/config.ts", 1)]);

    // Only warnings: exit 0.
    let mut options = tree.options(Format::Json);
    options.levels = vec![("github-pat".into(), Level::Warn)];
    let warned = lint(&options);
    assert_eq!(warned.code(), 0);
    assert_eq!(warned.json()["summary"]["warnings"], 1);
}

#[test]
fn gitignore_binary_size_and_vcs_dirs() {
    let secret = format!("TOKEN={TOKEN}\n");
    let mut binary = secret.clone().into_bytes();
    binary.insert(0, 0);
    let tree = Tree::new(&[
        (".gitignore", "ignored/\n*.log\n"),
        ("ignored/a.env", &secret),
        ("debug.log", &secret),
        (".git/config", &secret),
        (".env", &secret),
        ("big.txt", &format!("{secret}{}", "x".repeat(2 << 20))),
    ]);
    fs::write(tree.path("blob.bin"), &binary).unwrap();
    let out = lint(&tree.options(Format::Json));
    // Hidden files are scanned (`.env` is where secrets get committed); ignored, binary, large
    // files and `.git` are not.
    assert_eq!(out.findings(&tree), [finding("github-pat", ".env", 1)]);
    let summary = &out.json()["summary"];
    assert_eq!(summary["skipped_binary"], 1);
    assert_eq!(summary["skipped_large"], 1);
    assert_eq!(summary["skipped"], 2);
}

#[test]
fn config_excludes_levels_and_size() {
    let tree = Tree::new(&[
        ("fixtures/keys.env", &format!("TOKEN={TOKEN}\n")),
        ("src/aws.py", &format!("KEY_ID = \"{AWS_ID}\"\n")),
        ("src/app.py", &format!("TOKEN = \"{TOKEN}\"\n")),
    ]);
    let mut options = tree.options(Format::Json);
    options.config = Some(tree.config(
        "[lint]\nexclude = [\"fixtures/\"]\nmax_file_size = \"1KiB\"\n[lint.rules]\naws-access-key-id = \"warn\"\n",
    ));
    let out = lint(&options);
    assert_eq!(
        out.findings(&tree),
        [finding("github-pat", "src/app.py", 1), finding("aws-access-key-id", "src/aws.py", 1)]
    );
    let levels: Vec<_> = out.json()["findings"].as_array().unwrap().iter().map(|f| f["level"].clone()).collect();
    assert_eq!(levels, ["deny", "warn"]);

    // The command line wins over the configuration; categories work too.
    options.levels = vec![("hardcoded-secret".into(), Level::Allow), ("aws-access-key-id".into(), Level::Deny)];
    let out = lint(&options);
    assert_eq!(out.findings(&tree), [finding("aws-access-key-id", "src/aws.py", 1)]);
    assert_eq!(out.code(), 1);
}

#[test]
fn suppressions_on_the_line_and_the_line_before() {
    let tree = Tree::new(&[(
        "app.py",
        &format!(
            "a = \"{TOKEN}\"  # sandguard:allow(github-pat)\n\
             # sandguard:allow(github-pat, reason = \"revoked, kept for a regression test\")\n\
             b = \"{TOKEN}\"\n\
             c = 1  # sandguard:allow(github-pat) -- trailing comments cover their own line only\n\
             d = \"{TOKEN}\"\n"
        ),
    )]);
    let out = lint(&tree.options(Format::Json));
    assert_eq!(out.findings(&tree), [finding("unused-suppression", "app.py", 4), finding("github-pat", "app.py", 5)]);
    assert_eq!(out.json()["summary"]["suppressed"], 2);
}

#[test]
fn baseline_round_trip_survives_inserted_lines() {
    let text = format!("import os\nTOKEN = \"{TOKEN}\"\n");
    let tree = Tree::new(&[("app.py", &text)]);
    let baseline = tree.path("baseline.json");

    let mut options = tree.options(Format::Json);
    options.write_baseline = Some(baseline.clone());
    let written = lint(&options);
    assert_eq!(written.code(), 0, "writing a baseline accepts the findings");
    assert!(written.stderr.contains("wrote 1 finding"), "{}", written.stderr);
    let stored = fs::read_to_string(&baseline).unwrap();
    assert!(!stored.contains(TOKEN), "a baseline stores hashes, not secrets");

    // Lines inserted above: still baselined.
    tree.write("app.py", &format!("# a header\n\n\n{text}"));
    let mut options = tree.options(Format::Json);
    options.baseline = Some(baseline.clone());
    let out = lint(&options);
    assert_eq!(out.code(), 0, "{}", out.stdout);
    assert!(out.findings(&tree).is_empty());
    assert_eq!(out.json()["summary"]["baselined"], 1);

    // A second, new occurrence is not.
    tree.write("app.py", &format!("# a header\n{text}OTHER = \"{TOKEN}\"\n"));
    let out = lint(&options);
    assert_eq!(out.code(), 1);
    assert_eq!(out.findings(&tree), [finding("github-pat", "app.py", 4)]);

    // A file that is no baseline is a usage error.
    fs::write(&baseline, "{}").unwrap();
    assert_eq!(lint(&options).code(), 2);
}

#[test]
fn json_shape() {
    let tree = Tree::new(&[("src/é x.ts", &format!("const a = 1;\n\tconst t = \"{TOKEN}\";\n"))]);
    let out = lint(&tree.options(Format::Json));
    let json = out.json();
    assert_eq!(json["version"], 1);
    let f = &json["findings"][0];
    for key in [
        "rule",
        "level",
        "message",
        "help",
        "path",
        "line",
        "column",
        "end_line",
        "end_column",
        "snippet",
        "fingerprint",
    ] {
        assert!(!f[key].is_null(), "missing {key} in {f}");
    }
    assert_eq!((f["line"].as_u64(), f["column"].as_u64()), (Some(2), Some(13)));
    assert_eq!((f["end_line"].as_u64(), f["end_column"].as_u64()), (Some(2), Some(13 + 40)));
    let snippet = f["snippet"].as_str().unwrap();
    assert!(snippet.starts_with("\tconst t = \"ghp_") && !snippet.contains(TOKEN), "masked: {snippet}");
    for key in ["errors", "warnings", "files", "skipped", "baselined", "suppressed"] {
        assert!(json["summary"][key].is_u64(), "summary.{key}");
    }
    // Fingerprints are stable from run to run.
    assert_eq!(lint(&tree.options(Format::Json)).json()["findings"][0]["fingerprint"], f["fingerprint"]);
}

#[test]
fn sarif_shape() {
    let tree = Tree::new(&[
        ("src/a b.py", &format!("x = 1\nTOKEN = \"{TOKEN}\"\nKEY = \"{AWS_ID}\"\n")),
        ("src/b.py", &format!("TOKEN = \"{TOKEN}\"\n")),
    ]);
    let mut options = tree.options(Format::Sarif);
    // Relative paths, as in CI, so URIs are relative to the checkout.
    let cwd = std::env::current_dir().unwrap();
    let relative = tree.dir.path().strip_prefix(&cwd).map(Path::to_owned);
    if let Ok(relative) = &relative {
        options.paths = vec![relative.clone()];
    }
    let out = lint(&options);
    assert_eq!(out.code(), 1);
    let log: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(log["version"], "2.1.0");
    assert!(log["$schema"].as_str().unwrap().contains("sarif-2.1.0"));
    let runs = log["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(run["columnKind"], "unicodeCodePoints");
    let driver = &run["tool"]["driver"];
    assert_eq!(driver["name"], "sandguard");
    assert!(driver["informationUri"].is_string() && driver["version"].is_string());
    let rules = driver["rules"].as_array().unwrap();
    let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["aws-access-key-id", "github-pat"], "every rule with a result, once");
    for rule in rules {
        assert!(rule["name"].is_string());
        assert!(rule["shortDescription"]["text"].is_string());
        assert!(rule["fullDescription"]["text"].is_string());
        assert!(rule["help"]["text"].is_string());
        assert_eq!(rule["defaultConfiguration"]["level"], "error");
        assert!(rule["properties"]["tags"].as_array().unwrap().contains(&Value::from("hardcoded-secret")));
    }
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    for result in results {
        let index = result["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(result["ruleId"], rules[index]["id"]);
        assert_eq!(result["level"], "error");
        assert!(result["message"]["text"].is_string());
        let location = &result["locations"][0]["physicalLocation"];
        let uri = location["artifactLocation"]["uri"].as_str().unwrap();
        assert!(!uri.contains(' ') && !uri.contains('\\'), "{uri}");
        if relative.is_ok() {
            assert_eq!(location["artifactLocation"]["uriBaseId"], "%SRCROOT%");
            assert!(!uri.starts_with('/'));
        }
        let region = &location["region"];
        for key in ["startLine", "startColumn", "endLine", "endColumn"] {
            assert!(region[key].as_u64().unwrap() >= 1, "{key}");
        }
        assert!(result["partialFingerprints"]["sandguardFingerprint/v1"].is_string());
    }
    let first = &results[0]["locations"][0]["physicalLocation"];
    assert!(first["artifactLocation"]["uri"].as_str().unwrap().ends_with("src/a%20b.py"));
    assert_eq!(first["region"]["startLine"], 2);
    assert_eq!(first["region"]["startColumn"], 10);
}

#[test]
fn human_output() {
    let tree = Tree::new(&[("app.py", &format!("TOKEN = \"{TOKEN}\"\n"))]);
    let out = lint(&tree.options(Format::Human));
    let path = tree.path("app.py");
    let expected = format!(
        "error[github-pat]: a GitHub personal access token (classic) is hardcoded\n \
         --> {}:1:10\n  |\n1 | TOKEN = \"ghp_{}\"\n  \
         |          ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n  |\n",
        path.display(),
        "*".repeat(36)
    );
    assert!(out.stdout.starts_with(&expected), "{}", out.stdout);
    assert!(out.stdout.contains("  = help: revoke or rotate it"), "{}", out.stdout);
    assert!(
        out.stdout.ends_with("sandguard: 1 error, 0 warnings in 2 files (0 skipped, 0 baselined, 0 suppressed)\n"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains('\x1b'));
}

#[test]
fn usage_and_config_errors_exit_2() {
    let tree = Tree::new(&[("a.py", "x = 1\n")]);

    let mut options = tree.options(Format::Json);
    options.config =
        Some(tree.config("[lint]\nexclude = [\"ok\"]\n\n[lint.rules]\njwt = \"warn\"\ngithub-pta = \"deny\"\n"));
    let out = lint(&options);
    assert_eq!(out.code(), 2);
    let message = out.status.unwrap_err().to_string();
    assert!(
        message.ends_with("sandguard.toml:6:1: unknown rule `github-pta`; did you mean `github-pat`?"),
        "{message}"
    );

    options.config = Some(tree.config("[lint]\nmax_file_sise = 10\n"));
    let message = lint(&options).status.unwrap_err().to_string();
    assert!(message.contains("sandguard.toml:2:1: unknown field `max_file_sise`"), "{message}");

    options.config = Some(tree.config("[lint]\nrules = { jwt = \"loud\" }\n"));
    let message = lint(&options).status.unwrap_err().to_string();
    assert!(message.contains("sandguard.toml:2:17: unknown variant `loud`"), "{message}");

    let mut options = tree.options(Format::Json);
    options.levels = vec![("aws-acess-key-id".into(), Level::Allow)];
    let out = lint(&options);
    assert_eq!(out.code(), 2);
    assert_eq!(
        out.status.unwrap_err().to_string(),
        "unknown rule `aws-acess-key-id`; did you mean `aws-access-key-id`?"
    );

    let mut options = tree.options(Format::Json);
    options.paths = vec![tree.path("missing")];
    assert_eq!(lint(&options).code(), 2);

    let mut options = tree.options(Format::Json);
    options.config = Some(tree.path("nope.toml"));
    assert_eq!(lint(&options).code(), 2);
}

#[test]
fn extra_rules_from_config() {
    let tree = Tree::new(&[
        (
            "ci/rules.toml",
            "[[rule]]\nid = \"orbit-key\"\nseverity = \"warn\"\ncategory = \"hardcoded-secret\"\n\
                          languages = [\"text\"]\nmessage = \"an Orbit key\"\nhelp = \"rotate it\"\n\
                          [rule.pattern]\nregex = 'orb_[a-z0-9]{16}'\nkeywords = [\"orb_\"]\n",
        ),
        ("app.txt", "key: orb_q7lm2xvr9tkp4wzn\n"),
    ]);
    let mut options = tree.options(Format::Json);
    options.config = Some(tree.config("[lint]\nextra_rules = [\"ci/rules.toml\"]\n"));
    let out = lint(&options);
    assert_eq!(out.code(), 0);
    assert_eq!(out.findings(&tree), [finding("orbit-key", "app.txt", 1)]);
}

#[test]
fn every_builtin_rule_passes_its_examples() {
    let options = LintOptions { test_rules: Some(None), ..LintOptions::default() };
    let out = lint(&options);
    assert_eq!(out.code(), 0, "{}", out.stdout);
    assert!(out.stdout.contains("all passed"), "{}", out.stdout);
}

#[test]
fn test_rules_reports_failures_in_a_folder() {
    let tree = Tree::new(&[(
        "rules/mine.toml",
        "[[rule]]\nid = \"orbit-key\"\nseverity = \"warn\"\ncategory = \"hardcoded-secret\"\nlanguages = [\"text\"]\n\
         message = \"m\"\nhelp = \"h\"\n[rule.pattern]\nregex = 'orb_[a-z0-9]{16}'\n\n\
         [[rule.examples]]\nlanguage = \"text\"\ncode = \"orb_q7lm2xvr9tkp4wzn\"\nlines = [2]\n",
    )]);
    let options = LintOptions { test_rules: Some(Some(tree.path("rules"))), ..LintOptions::default() };
    let out = lint(&options);
    assert_eq!(out.code(), 1);
    assert!(out.stdout.contains("FAIL orbit-key"), "{}", out.stdout);
    assert!(out.stdout.contains("expected lines [2], found [1]"), "{}", out.stdout);
}
