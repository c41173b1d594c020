//! `policy_toml`: arbitrary TOML never panics the loader; every error carries a real position; and
//! an accepted policy, re-serialised and loaded again, makes the same decisions.
//!
//! Re-serialisation goes through the `toml` crate's own document model (`toml::Table`, written
//! back with `toml::to_string`), so the second document holds the same values in a different
//! spelling: comments and whitespace gone, strings re-quoted, integers in decimal, inline tables
//! expanded, keys reordered. A loader whose decisions depended on the spelling rather than on the
//! values, or that read a value differently from the TOML specification, fails here.
//!
//! A round trip cannot see a value that is read and then ignored, so the document's own values
//! are also checked against the compiled policy ([`check_enforced`]): a listed reserved name is
//! refused, a listed root allowed, a listed environment variable refused, a reserved port
//! refused, the first port of an allowed range allowed, a listed host (or a name below a
//! wildcard) allowed after resolving to a public address.
//!
//! "The same decisions" is checked two ways: every accessor of the two compiled policies is
//! equal, and `Policy::authorize` and the ID rules give the same answer for a battery of probes
//! built from the strings and integers in the document itself (so a reserved name, a root or an
//! allowed host in the document is probed exactly) plus fixed ones.

use std::ffi::OsString;

use std::net::{IpAddr, Ipv4Addr};

use sandguard_policy::{Action, CommandSpec, ExecRequest, Host, Policy, PortRange, SandboxId};

use crate::{Violation, violation};

/// Most strings and integers taken from a document for probes.
const MAX_PROBES: usize = 24;

fn collect(value: &toml::Value, strings: &mut Vec<String>, integers: &mut Vec<i64>) {
    match value {
        toml::Value::String(s) => strings.push(s.clone()),
        toml::Value::Integer(n) => integers.push(*n),
        toml::Value::Array(items) => items.iter().for_each(|item| collect(item, strings, integers)),
        toml::Value::Table(table) => {
            for (key, item) in table {
                strings.push(key.clone());
                collect(item, strings, integers);
            }
        }
        _ => {}
    }
}

/// Every decision of `policy` on the probes, one line each, so two policies compare as text and a
/// difference shows which probe it is.
pub fn decisions(policy: &Policy, strings: &[String], integers: &[i64]) -> Vec<String> {
    let mut out = vec![
        format!("ids {:?}", policy.ids()),
        format!("paths {:?}", policy.paths()),
        format!("ports {:?}", policy.ports()),
        format!("egress schemes {:?} ports {:?}", policy.egress().schemes(), policy.egress().ports()),
        format!("exec {:?}", policy.exec()),
        format!("limits {:?}", policy.limits()),
        format!("rate {:?} lockout {:?}", policy.rate_limit(), policy.lockout()),
        format!("redact {} {:?}", policy.redact_patterns(), policy.secret_env()),
        format!("sandbox {} {:?}", policy.allow_weaker(), policy.network()),
    ];
    let fixed =
        ["web-1", "/workspace/a/../b", "/etc/passwd", "https://api.example.com/", "http://127.0.0.1/", "LD_PRELOAD"];
    let probes = strings.iter().map(String::as_str).chain(fixed);
    for probe in probes {
        out.push(format!("id {probe:?}: {:?}", policy.ids().check(probe).map_err(|e| e.code())));
        let argv = [OsString::from(probe)];
        let env = [(probe.to_owned(), "1".to_owned())];
        let urls = [probe.to_owned(), format!("https://{probe}/"), format!("http://{probe}:8080/")];
        let mut actions = vec![
            Action::ReadFile { path: probe.as_ref() },
            Action::WriteFile { path: probe.as_ref(), len: 1 << 20 },
            Action::Exec(ExecRequest {
                command: CommandSpec::Shell(probe),
                cwd: Some(probe.as_ref()),
                env: &[],
                limits: None,
            }),
            Action::Exec(ExecRequest { command: CommandSpec::Argv(&argv), cwd: None, env: &env, limits: None }),
        ];
        actions.extend(urls.iter().map(|url| Action::Connect { url }));
        for action in &actions {
            out.push(format!(
                "{action:?}: {:?}",
                policy.authorize(action).map(|p| p.grant().clone()).map_err(|d| d.code())
            ));
        }
    }
    let ports =
        integers.iter().filter_map(|&n| u16::try_from(n).ok()).chain([0, 22, 80, 1023, 1024, 3000, 8080, 65535]);
    for port in ports {
        let action = Action::ExposePort { port };
        out.push(format!("{action:?}: {:?}", policy.authorize(&action).map_err(|d| d.code())));
    }
    out
}

/// Compares the decisions of the policy from the original text with those from the re-serialised
/// one.
pub fn compare(original: &[String], reloaded: &[String], rewritten: &str) -> Result<(), Violation> {
    if let Some((a, b)) = original.iter().zip(reloaded).find(|(a, b)| a != b) {
        violation!(
            "the re-serialised policy decides differently:\n  original:  {a}\n  reloaded:  {b}\n  rewritten document:\n{rewritten}"
        );
    }
    if original.len() != reloaded.len() {
        violation!("the re-serialised policy was probed {} times, the original {}", reloaded.len(), original.len());
    }
    Ok(())
}

/// The strings of the array `[section] key`, if the document has one.
fn listed(table: &toml::Table, section: &str, key: &str) -> Vec<String> {
    let items = table.get(section).and_then(|s| s.get(key)).and_then(toml::Value::as_array);
    items.map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()).unwrap_or_default()
}

/// The port ranges of the array `[ports] key` (integers and `"START-END"` strings).
fn listed_ports(table: &toml::Table, key: &str) -> Vec<PortRange> {
    let items = table.get("ports").and_then(|s| s.get(key)).and_then(toml::Value::as_array);
    let range = |v: &toml::Value| match v {
        toml::Value::Integer(n) => u16::try_from(*n).ok().and_then(|p| PortRange::new(p, p).ok()),
        toml::Value::String(text) => text.parse().ok(),
        _ => None,
    };
    items.map(|a| a.iter().filter_map(range).collect()).unwrap_or_default()
}

/// The values the document lists are the values the compiled `policy` enforces.
pub fn check_enforced(table: &toml::Table, policy: &Policy) -> Result<(), Violation> {
    for name in listed(table, "sandbox_id", "reserved") {
        let lower = name.to_ascii_lowercase();
        if SandboxId::parse(&lower).is_ok() && policy.ids().check(&lower).is_ok() {
            violation!("sandbox_id.reserved lists {name:?}, but the policy accepts {lower:?} as an ID");
        }
    }
    for root in listed(table, "paths", "roots") {
        if let Err(error) = policy.paths().check(root.as_ref()) {
            violation!("paths.roots lists {root:?}, but the policy refuses it: {error}");
        }
    }
    let argv = [OsString::from("true")];
    for name in listed(table, "exec", "deny_env") {
        let env = [(name.clone(), "1".to_owned())];
        let request = ExecRequest { command: CommandSpec::Argv(&argv), cwd: None, env: &env, limits: None };
        if policy.authorize(&Action::Exec(request)).is_ok() {
            violation!("exec.deny_env lists {name:?}, but a command may set it");
        }
    }
    for range in listed_ports(table, "reserved") {
        for port in [range.start(), range.end()] {
            if policy.authorize(&Action::ExposePort { port }).is_ok() {
                violation!("ports.reserved holds {port}, but the policy exposes it");
            }
        }
    }
    for range in listed_ports(table, "allow") {
        let port = range.start();
        if port != 0
            && !policy.ports().reserved().contains(&port)
            && policy.authorize(&Action::ExposePort { port }).is_err()
        {
            violation!("ports.allow holds {port} (not reserved), but the policy refuses it");
        }
    }
    let public = [IpAddr::V4(Ipv4Addr::new(93, 184, 215, 14))];
    for entry in listed(table, "egress", "allow_hosts") {
        let host = match entry.strip_prefix("*.") {
            _ if entry == "*" => "fuzz.example.org".to_owned(),
            Some(suffix) => format!("fuzz.{suffix}"),
            None => entry.clone(),
        };
        let is_name = matches!(host.parse::<Host>(), Ok(Host::Name(_)));
        if is_name && let Err(error) = policy.egress().check_resolved(&host, &public) {
            violation!(
                "egress.allow_hosts lists {entry:?}, but {host:?} resolving to a public address is refused: {error}"
            );
        }
    }
    Ok(())
}

/// The target's oracle.
pub fn check(data: &[u8]) -> Result<(), Violation> {
    let Ok(text) = std::str::from_utf8(data) else { return Ok(()) };
    let policy = match Policy::from_toml(text, "fuzz.toml") {
        Ok(policy) => policy,
        Err(errors) => {
            let lines = text.split('\n').count();
            if errors.errors().is_empty() {
                violation!("the policy was refused with no error at all");
            }
            if let Some(e) =
                errors.errors().iter().find(|e| e.line == 0 || e.line > lines || e.column == 0 || e.message.is_empty())
            {
                violation!("error {e:?} points outside the {lines}-line document or says nothing");
            }
            return Ok(());
        }
    };
    let table: toml::Table = match toml::from_str(text) {
        Ok(table) => table,
        Err(error) => violation!("the policy loader accepted a document the toml crate refuses: {error}"),
    };
    // The serializer cannot write every document (it is not what is tested here).
    let Ok(rewritten) = toml::to_string(&table) else { return Ok(()) };
    let reloaded = match Policy::from_toml(&rewritten, "rewritten.toml") {
        Ok(policy) => policy,
        Err(errors) => violation!("the re-serialised policy is refused:\n{errors}\nrewritten document:\n{rewritten}"),
    };
    check_enforced(&table, &policy)?;
    let (mut strings, mut integers) = (Vec::new(), Vec::new());
    collect(&toml::Value::Table(table), &mut strings, &mut integers);
    strings.truncate(MAX_PROBES);
    integers.truncate(MAX_PROBES);
    compare(&decisions(&policy, &strings, &integers), &decisions(&reloaded, &strings, &integers), &rewritten)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_policy_round_trips() {
        check(include_bytes!("../../examples/policy.toml")).unwrap();
    }

    #[test]
    fn the_oracle_fails_when_decisions_differ() {
        let strings = vec!["billing".to_owned(), "/data/x".to_owned()];
        let a = Policy::from_toml("[sandbox_id]\nreserved = [\"billing\"]\n", "a").unwrap();
        let b = Policy::from_toml("", "b").unwrap();
        assert!(compare(&decisions(&a, &strings, &[]), &decisions(&b, &strings, &[]), "").is_err());
        let c = Policy::from_toml("[paths]\nroots = [\"/data\"]\n", "c").unwrap();
        assert!(compare(&decisions(&b, &strings, &[]), &decisions(&c, &strings, &[]), "").is_err());
        let d = Policy::from_toml("[egress]\nallow_hosts = [\"/data/x\"]\n", "d");
        assert!(d.is_err(), "a bad host entry is refused, so the probe is not trivially equal");
    }

    #[test]
    fn the_oracle_fails_when_a_listed_value_is_ignored() {
        // Each document checked against the defaults, as if the loader had dropped its values.
        for text in [
            "[paths]\nroots = [\"/data\"]\n",
            "[sandbox_id]\nreserved = [\"Billing\"]\n",
            "[exec]\ndeny_env = [\"NODE_OPTIONS\"]\n",
            "[ports]\nreserved = [\"8000-8080\"]\n",
            "[ports]\nallow = [80]\n",
            "[egress]\nallow_hosts = [\"*.example.com\"]\n",
        ] {
            let table: toml::Table = toml::from_str(text).unwrap();
            check_enforced(&table, &Policy::from_toml(text, "t").unwrap()).unwrap();
            assert!(check_enforced(&table, &Policy::default()).is_err(), "{text}");
        }
    }
}
