//! The host allowlist, compiled once: exact names, `*.suffix` wildcards, IP literals, and `*`.

use std::collections::HashSet;
use std::net::IpAddr;

use super::host::parse_host_or_bare_ipv6;
use super::{EgressError, Host};

/// Hosts an [`EgressPolicy`](super::EgressPolicy) may reach, before the address check.
#[derive(Debug, Clone, Default)]
pub(super) struct HostAllowlist {
    any: bool,
    names: HashSet<String>,
    /// `example.com` for the rule `*.example.com`.
    suffixes: HashSet<String>,
    ips: HashSet<IpAddr>,
}

impl HostAllowlist {
    pub(super) fn new<H>(rules: H) -> Result<Self, EgressError>
    where
        H: IntoIterator,
        H::Item: AsRef<str>,
    {
        let mut list = Self::default();
        for rule in rules {
            list.add(rule.as_ref())?;
        }
        Ok(list)
    }

    fn add(&mut self, rule: &str) -> Result<(), EgressError> {
        let refuse = |reason: &str| EgressError::InvalidRule {
            rule: rule.to_owned(),
            reason: format!("{reason}; entries are host names, *.suffix wildcards, IP addresses or *"),
        };
        if rule == "*" {
            self.any = true;
            return Ok(());
        }
        if let Some(suffix) = rule.strip_prefix("*.") {
            return match parse_host_or_bare_ipv6(suffix).map_err(refuse)? {
                Host::Name(suffix) => {
                    self.suffixes.insert(suffix);
                    Ok(())
                }
                Host::Ip(_) => Err(refuse("wildcards apply to host names, not IP addresses")),
            };
        }
        if rule.contains('*') {
            return Err(refuse("'*' may only be a whole first label, as in *.example.com"));
        }
        if rule.contains('/') {
            return Err(refuse("an entry has no scheme, port or path"));
        }
        match parse_host_or_bare_ipv6(rule).map_err(refuse)? {
            Host::Name(name) => self.names.insert(name),
            Host::Ip(ip) => self.ips.insert(ip),
        };
        Ok(())
    }

    /// Whether `host` matches an entry: `*.example.com` matches every name below `example.com`, at
    /// any depth, but not `example.com` itself.
    pub(super) fn allows(&self, host: &Host) -> bool {
        if self.any {
            return true;
        }
        match host {
            Host::Ip(ip) => self.ips.contains(ip),
            Host::Name(name) => self.names.contains(name) || self.allows_below_suffix(name),
        }
    }

    /// One set lookup per label, however many wildcards the policy has.
    fn allows_below_suffix(&self, name: &str) -> bool {
        !self.suffixes.is_empty()
            && name.match_indices('.').any(|(dot, _)| name.get(dot + 1..).is_some_and(|s| self.suffixes.contains(s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(rules: &[&str]) -> HostAllowlist {
        HostAllowlist::new(rules).unwrap()
    }

    fn allows(list: &HostAllowlist, host: &str) -> bool {
        list.allows(&parse_host_or_bare_ipv6(host).unwrap())
    }

    #[test]
    fn wildcards_match_below_the_suffix_only() {
        let list = list(&["*.example.com"]);
        assert!(allows(&list, "a.example.com"));
        assert!(allows(&list, "a.b.c.example.com"));
        assert!(allows(&list, "A.EXAMPLE.COM."));
        assert!(!allows(&list, "example.com"));
        assert!(!allows(&list, "badexample.com"));
        assert!(!allows(&list, "a.badexample.com"));
        assert!(!allows(&list, "example.com.evil"));
        assert!(!allows(&list, "com"));
    }

    #[test]
    fn exact_entries_are_normalised() {
        let list = list(&["Example.COM.", "0x7f.1", "[::1]", "2001:DB8::1"]);
        assert!(allows(&list, "example.com"));
        assert!(!allows(&list, "www.example.com"));
        assert!(allows(&list, "127.0.0.1"));
        assert!(allows(&list, "[::1]"));
        assert!(allows(&list, "[2001:db8:0::1]"));
    }

    #[test]
    fn star_allows_everything() {
        let list = list(&["*"]);
        assert!(allows(&list, "anything.example"));
        assert!(allows(&list, "8.8.8.8"));
    }

    #[test]
    fn refuses_bad_rules() {
        for rule in [
            "",
            "*.",
            "*.*.com",
            "a.*.com",
            "*example.com",
            "**",
            "https://example.com",
            "example.com:443",
            "*.1.2.3.4",
            "*.[::1]",
            "a b",
            "bücher.ch",
            "[fe80::1%eth0]",
            "a..b",
            "example.com/x",
        ] {
            let error = HostAllowlist::new([rule]).unwrap_err();
            assert_eq!(error.code(), "INVALID_EGRESS_RULE", "{rule:?}");
        }
    }
}
