//! End-to-end tests of `sandguard lint` and `cargo sandguard lint`: exit codes, formats, rule
//! examples.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn sandguard(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sandguard")).current_dir(dir).arg("lint").args(args).output().expect("runs")
}

fn status(output: &Output) -> i32 {
    output.status.code().expect("exited")
}

fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("src")).expect("mkdir");
    std::fs::write(
        dir.path().join("src/app.py"),
        "import subprocess\n\ndef handler(user):\n    subprocess.run(f\"ls {user}\", shell=True, timeout=5)\n",
    )
    .expect("write");
    std::fs::write(dir.path().join("src/clean.py"), "import subprocess\nsubprocess.run([\"ls\", \"-l\"], timeout=5)\n")
        .expect("write");
    dir
}

#[test]
fn findings_at_deny_level_exit_1_and_clean_trees_exit_0() {
    let dir = tree();
    let out = sandguard(dir.path(), &["src"]);
    assert_eq!(status(&out), 1, "{}", String::from_utf8_lossy(&out.stdout));
    let human = String::from_utf8_lossy(&out.stdout);
    assert!(human.contains("error[command-injection]"), "{human}");
    assert!(human.contains("src/app.py:4:"), "{human}");
    let clean = sandguard(dir.path(), &["src/clean.py"]);
    assert_eq!(status(&clean), 0, "{}", String::from_utf8_lossy(&clean.stdout));
    let allowed = sandguard(dir.path(), &["-A", "command-injection", "src"]);
    assert_eq!(status(&allowed), 0, "-A lowers the rule");
    let unknown = sandguard(dir.path(), &["-D", "no-such-rule", "src"]);
    assert_eq!(status(&unknown), 2);
}

#[test]
fn json_and_sarif_carry_the_same_finding() {
    let dir = tree();
    let json = sandguard(dir.path(), &["--format", "json", "src"]);
    let json: Value = serde_json::from_slice(&json.stdout).expect("JSON");
    let finding =
        json["findings"].as_array().expect("findings").iter().find(|f| f["rule"] == "command-injection").cloned();
    let finding = finding.expect("a command-injection finding");
    assert_eq!(finding["line"], 4);

    let sarif = sandguard(dir.path(), &["--format", "sarif", "src"]);
    let sarif: Value = serde_json::from_slice(&sarif.stdout).expect("SARIF is JSON");
    assert_eq!(sarif["version"], "2.1.0");
    let run = &sarif["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "sandguard");
    let result =
        run["results"].as_array().expect("results").iter().find(|r| r["ruleId"] == "command-injection").cloned();
    let result = result.expect("the same finding in SARIF");
    let location = &result["locations"][0]["physicalLocation"];
    assert_eq!(location["artifactLocation"]["uri"], "app.py", "relative to the scanned root");
    assert_eq!(location["region"]["startLine"], 4);
    assert!(result["partialFingerprints"].as_object().is_some_and(|f| !f.is_empty()));
}

#[test]
fn every_built_in_rule_passes_its_own_examples() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = sandguard(dir.path(), &["--test-rules"]);
    assert_eq!(status(&out), 0, "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

#[test]
fn cargo_sandguard_lint_is_the_same_command() {
    let dir = tree();
    let out = Command::new(env!("CARGO_BIN_EXE_cargo-sandguard"))
        .current_dir(dir.path())
        .args(["sandguard", "lint", "src"])
        .output()
        .expect("runs");
    assert_eq!(status(&out), 1);
    assert!(String::from_utf8_lossy(&out.stdout).contains("command-injection"));
}
