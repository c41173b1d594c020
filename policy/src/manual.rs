//! # The sandguard manual
//!
//! This module holds no code: it is the user guide, kept next to the code it describes so that
//! `cargo doc` ships it and a change to a guard can change its page in the same commit.
//!
//! ## Threat model
//!
//! The attacker controls the code and commands run inside a sandbox; every string a user sends
//! to the service (sandbox IDs, paths, ports, URLs, file contents, environment values); and timing
//! (races, floods). The attacker does not control the host, the policy file, or the service's own
//! code. sandguard promises that nothing inside a sandbox reads or writes outside its own root, sees
//! host processes, reaches the network beyond its policy, exhausts host resources beyond its limits,
//! or leaves the sandbox; that no user acts on another user's sandbox; and that every allowed and
//! every denied operation is recorded in a log whose tampering is detectable. Where the kernel
//! cannot keep a promise, sandguard refuses to start rather than run weaker.
//!
//! This crate holds the *decisions*. Each guard is a pure function of its input and the compiled
//! policy: no I/O, no clock except through [`Clock`](crate::Clock), so every decision can be tested,
//! fuzzed, and reproduced from an audit record.
//!
//! ## The guards and their defaults
//!
//! | guard | default | refuses with |
//! |---|---|---|
//! | [`SandboxId`](crate::SandboxId) | DNS label: `[a-z0-9-]`, 1–63 bytes, no edge hyphen, no `--` at 3–4, not reserved | `INVALID_SANDBOX_ID_*`, `RESERVED_SANDBOX_ID` |
//! | [`shell::quote`](crate::shell::quote) | POSIX single quotes; bare only for `[A-Za-z0-9_./,:+-]`-style words | `SHELL_ARG_CONTAINS_NUL` |
//! | [`PathGuard`](crate::PathGuard) | roots `/workspace`, `/tmp`, `/home`; lexical canonicalisation | `PATH_*` |
//! | [`PortPolicy`](crate::PortPolicy) | 1024–65535 except 3000 (the control plane); strict decimal only | `INVALID_PORT`, `RESERVED_PORT`, `PORT_NOT_ALLOWED`, … |
//! | [`EgressPolicy`](crate::EgressPolicy) | http and https, **no host allowed**, default ports | `EGRESS_*`, `INVALID_URL` |
//! | [`RateLimit`](crate::RateLimit) | 20 requests/s per actor, burst 40 (GCRA) | `RATE_LIMITED` |
//! | [`Lockout`](crate::Lockout) | 5 denials in 5 minutes lock an actor for 15 minutes | `LOCKED_OUT` |
//! | [`ResourceLimits`](crate::ResourceLimits) | 30 s, 512 MiB, 256 pids, 1 CPU, 64 MiB files, 1 GiB disk, 1 MiB output | `LIMIT_EXCEEDS_POLICY`, … |
//! | [`SecretRedactor`](crate::SecretRedactor) | common credential shapes redacted from output | — |
//!
//! Every default fails closed: a policy file that leaves a key out gets the safe value, and a
//! policy file with an unknown key is refused (never ignored), with every error reported at its
//! line and column. `examples/policy.toml` documents every key.
//!
//! ## What is protected, and how
//!
//! - **Sandbox IDs are access tokens.** [`SandboxId::generate`](crate::SandboxId::generate) gives
//!   128 bits of OS randomness; a valid ID is also a valid DNS label, so it can appear in preview
//!   host names without escaping. The validator refuses anything a shell, a path, or a URL could
//!   misread (`x;rm -rf /`, `../x`, `a.b`).
//! - **No shell parses user input.** Prefer [`shell::Argv`](crate::shell::Argv) and
//!   [`CommandSpec::Argv`](crate::CommandSpec::Argv): nothing is parsed. When a command line is
//!   unavoidable, [`shell::quote`](crate::shell::quote) produces words that dash, bash and zsh all
//!   read back byte for byte (the test suite checks this against the real shells).
//!   `[exec] shell = false` forbids command lines altogether.
//! - **Paths are decided lexically here, and resolved inside the sandbox root by the executor.**
//!   [`PathGuard`](crate::PathGuard) removes `.`, `..` and `//` without touching the filesystem and
//!   matches roots component by component (`/workspace-evil` is not under `/workspace`). It does
//!   not resolve symlinks — it cannot, without I/O on the right filesystem — which is why the
//!   executor opens every path with `openat2(RESOLVE_IN_ROOT)`.
//! - **Egress is an allowlist with an SSRF floor.** Hosts must be listed; loopback, private,
//!   link-local, CGNAT, cloud metadata (169.254.169.254, fd00:ec2::254, 100.100.100.200,
//!   168.63.129.16), multicast, documentation and other special ranges are refused in every IP
//!   notation (decimal, octal, hex, short forms, IPv4-mapped and embedded IPv6), and again after
//!   name resolution ([`EgressPolicy::check_resolved`](crate::EgressPolicy::check_resolved)) so DNS
//!   rebinding gains nothing. Userinfo (`user@host`) is refused outright: it is the classic way of
//!   making a URL look like it goes somewhere it does not.
//! - **Environment variables cannot become code execution.** `LD_PRELOAD`, `BASH_ENV` and the
//!   other loader and shell start-up variables are refused by every policy.
//! - **Limits only go down.** A caller may ask for less time or memory than the policy allows,
//!   never more (`LIMIT_EXCEEDS_POLICY`).
//!
//! ## What is not protected
//!
//! - The guards cannot make an unsafe *use* of a value safe: a path that the guard allowed is still
//!   only as safe as the `open` that follows it. Use the executor's file operations.
//! - Redaction is best effort for shapes it does not know, and a secret split across two writes can
//!   be missed; keep secrets out of sandboxes instead (inject them through files with mode 0600 or
//!   through a proxy), and treat redaction as the second line.
//! - A rate limiter or lockout keyed by actor does not stop an attacker with many actors; put
//!   authentication in front.
//!
//! ## Where sandguard goes further than the Cloudflare Sandbox SDK
//!
//! The SDK checks sandbox IDs for length, hyphens and seven reserved names only, and accepts
//! `x;rm -rf /`; sandguard validates the character set, IDNA-reserved hyphens and a longer reserved
//! list, and generates IDs itself. The SDK leaves path validation, URL allowlists and command
//! escaping to its users; sandguard ships each as a guard, composes them in one policy, and records
//! every decision in a tamper-evident audit log.
