//! Named predicates: small checks on a captured node that a tree-sitter query cannot express.
//!
//! A rule uses them in two forms, both with one capture argument:
//! - in the rule's `predicates` list, as `name @capture`: applies to every match (of every
//!   language) that has that capture;
//! - inside a query pattern, as `(#name? @capture)`: applies to that pattern only.
//!
//! Each predicate is a question about the captured expression in its language (see
//! [`Predicate::NAMES`] for the list and what each means).

use tree_sitter::Node;

use super::expression::{Code, Family, is_shell_program};

/// One named predicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Predicate {
    /// The expression is not a literal, a constant name, or built only from those.
    NotConstant,
    /// The expression is a plain literal (string without interpolation, number, boolean).
    IsLiteral,
    /// At least one interpolated piece (or the expression itself) is non-constant and not
    /// wrapped in a known shell-quoting function.
    NotEscaped,
    /// The expression builds a path from pieces and a non-leading piece is non-constant and
    /// not wrapped in a traversal-safe function (`basename`, `secure_filename`, a guard).
    UnsafePath,
    /// The captured argument list asks for a shell (`{ shell: true }`, `shell=True`).
    HasShellTrue,
    /// The captured call passes no timeout (option, keyword or chained method) and no opaque
    /// options that might carry one.
    NoTimeout,
    /// The expression is a secret by name (variable, field, env lookup).
    SecretNamed,
    /// The expression is, or interpolates, a secret by name.
    InterpolatesSecret,
    /// The expression is a literal, or is built from pieces none of which is random.
    Guessable,
    /// The captured receiver chain starts at `Command::new(<a shell>)` (Rust).
    ShellCommand,
    /// The captured receiver chain starts at `Command::new(..)` of any program (Rust).
    CommandBuilder,
    /// The captured string or word names a shell interpreter (`"sh"`, `'/bin/bash'`, `zsh`).
    ShellProgram,
}

impl Predicate {
    /// Every predicate name, with what it checks.
    pub(super) const NAMES: &'static [(&'static str, Self)] = &[
        ("not-constant", Self::NotConstant),
        ("is-literal", Self::IsLiteral),
        ("not-escaped", Self::NotEscaped),
        ("unsafe-path", Self::UnsafePath),
        ("has-shell-true", Self::HasShellTrue),
        ("no-timeout", Self::NoTimeout),
        ("secret-named", Self::SecretNamed),
        ("interpolates-secret", Self::InterpolatesSecret),
        ("guessable", Self::Guessable),
        ("shell-command", Self::ShellCommand),
        ("command-builder", Self::CommandBuilder),
        ("shell-program", Self::ShellProgram),
    ];

    /// The predicate called `name` (without `#` or `?`).
    pub(super) fn named(name: &str) -> Option<Self> {
        Self::NAMES.iter().find(|(n, _)| *n == name).map(|&(_, p)| p)
    }

    /// Parse the list form `name @capture` into the predicate and the capture name.
    pub(super) fn parse_spec(spec: &str) -> Result<(Self, &str), String> {
        let mut words = spec.split_whitespace();
        let (Some(name), Some(capture), None) = (words.next(), words.next(), words.next()) else {
            return Err(format!("predicate `{spec}` must be `name @capture` (names: {})", Self::known()));
        };
        let Some(capture) = capture.strip_prefix('@').filter(|c| !c.is_empty()) else {
            return Err(format!("predicate `{spec}`: `{capture}` is not a capture (write `@name`)"));
        };
        let name = name.trim_start_matches('#').trim_end_matches('?');
        let predicate =
            Self::named(name).ok_or_else(|| format!("unknown predicate `{name}` (names: {})", Self::known()))?;
        Ok((predicate, capture))
    }

    /// The known names, comma-separated, for error messages.
    pub(super) fn known() -> String {
        Self::NAMES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
    }

    /// Whether the predicate holds for `node`.
    pub(super) fn holds(self, code: &Code<'_>, node: Node<'_>) -> bool {
        match self {
            Self::NotConstant => !code.is_constant(node),
            Self::IsLiteral => code.is_literal(node),
            Self::NotEscaped => {
                code.pieces_or_self(node).iter().any(|p| !code.part_constant(&p.part, 0) && !code.part_quoted(&p.part))
            }
            Self::UnsafePath => code.pieces(node).is_some_and(|pieces| {
                pieces.iter().any(|p| !p.leading && !code.part_constant(&p.part, 0) && !code.part_path_safe(&p.part))
            }),
            Self::HasShellTrue => has_shell_true(code, node),
            Self::NoTimeout => no_timeout(code, node),
            Self::SecretNamed => code.names_secret(node),
            Self::InterpolatesSecret => code.pieces_or_self(node).iter().any(|p| code.part_secret(&p.part)),
            Self::Guessable => guessable(code, node),
            Self::ShellCommand => command_program(code, node)
                .is_some_and(|p| code.is_literal(p) && is_shell_program(literal_text(code.text(p)))),
            Self::CommandBuilder => command_program(code, node).is_some(),
            Self::ShellProgram => code.is_literal(node) && is_shell_program(literal_text(code.text(node))),
        }
    }
}

/// A literal's text without quotes.
fn literal_text(text: &str) -> &str {
    let quote = |c: char| c == '"' || c == '\'' || c == '`';
    let text = text.strip_prefix(quote).unwrap_or(text);
    text.strip_suffix(quote).unwrap_or(text)
}

/// The argument nodes: `node` is a call, or already its argument list.
fn arguments<'t>(code: &Code<'_>, node: Node<'t>) -> Vec<Node<'t>> {
    let list = if matches!(node.kind(), "arguments" | "argument_list") {
        Some(node)
    } else {
        node.child_by_field_name("arguments")
    };
    let _ = code;
    list.map(|l| {
        let mut cursor = l.walk();
        l.named_children(&mut cursor).take(64).collect()
    })
    .unwrap_or_default()
}

/// The key of a JavaScript object pair (`shell`, `'shell'`).
fn pair_key<'s>(code: &Code<'s>, pair: Node<'_>) -> &'s str {
    pair.child_by_field_name("key").map(|k| literal_text(code.text(k))).unwrap_or("")
}

/// JavaScript `{ shell: true }` / `{ shell: '/bin/bash' }`; Python `shell=True`.
fn has_shell_true(code: &Code<'_>, node: Node<'_>) -> bool {
    arguments(code, node).into_iter().any(|arg| match code.family() {
        Family::Js if arg.kind() == "object" => {
            let mut cursor = arg.walk();
            let pairs: Vec<_> = arg.named_children(&mut cursor).take(64).collect();
            pairs.into_iter().any(|pair| {
                pair.kind() == "pair"
                    && pair_key(code, pair) == "shell"
                    && pair.child_by_field_name("value").is_some_and(|v| {
                        v.kind() == "true" || (v.kind() == "string" && !literal_text(code.text(v)).is_empty())
                    })
            })
        }
        Family::Python if arg.kind() == "keyword_argument" => {
            arg.child_by_field_name("name").is_some_and(|n| code.text(n) == "shell")
                && arg.child_by_field_name("value").is_some_and(|v| matches!(code.text(v), "True" | "1"))
        }
        _ => false,
    })
}

/// Option keys that bound a run.
const TIMEOUT_KEYS: &[&str] = &["timeout", "timeoutMs", "timeout_ms", "signal", "deadline"];

/// No timeout in the call: JavaScript options objects have no `timeout`/`signal` key and no
/// spread, and no options are passed as an opaque variable; Python has no `timeout=` and no
/// `**kwargs`; a Rust builder chain has no `*timeout*` method.
fn no_timeout(code: &Code<'_>, call: Node<'_>) -> bool {
    let args = arguments(code, call);
    match code.family() {
        Family::Js => args.iter().skip(1).all(|arg| match arg.kind() {
            "object" => {
                let mut cursor = arg.walk();
                let entries: Vec<_> = arg.named_children(&mut cursor).take(64).collect();
                entries.into_iter().all(|entry| match entry.kind() {
                    "pair" => !TIMEOUT_KEYS.contains(&pair_key(code, entry)),
                    "shorthand_property_identifier" => !TIMEOUT_KEYS.contains(&code.text(entry)),
                    "spread_element" => false,
                    _ => true,
                })
            }
            // Callbacks and literals carry no options.
            "arrow_function"
            | "function_expression"
            | "function"
            | "string"
            | "number"
            | "array"
            | "template_string"
            | "null"
            | "undefined" => true,
            // An options variable may hold a timeout: do not guess.
            _ => false,
        }),
        Family::Python => args.iter().all(|arg| match arg.kind() {
            "keyword_argument" => arg.child_by_field_name("name").is_none_or(|n| code.text(n) != "timeout"),
            "dictionary_splat" => false,
            _ => true,
        }),
        Family::Rust => {
            // Walk up the builder chain and back down: any `.timeout(..)`-like method bounds it.
            let mut top = call;
            for _ in 0..64 {
                match top.parent() {
                    Some(p) if matches!(p.kind(), "field_expression" | "call_expression") => {
                        top = p;
                    }
                    _ => break,
                }
            }
            let text = code.text(top);
            !text.contains("timeout")
        }
        Family::Shell => !code.text(call).contains("timeout"),
    }
}

/// A sandbox ID anyone could guess: a literal, or built from pieces none of which is random
/// (`` `user-${userId}` ``, `f"sb-{n}"`, `format!("user-{}", id)`); in Rust also
/// `SandboxId::parse("literal")` and `"literal".parse()`.
fn guessable(code: &Code<'_>, node: Node<'_>) -> bool {
    let mut node = code.unwrap(node);
    for _ in 0..8 {
        if code.is_literal(node) {
            return true;
        }
        if code.family() != Family::Rust {
            break;
        }
        let Some(callee) = code.callee(node) else {
            break;
        };
        let constructor = ["parse", "new", "try_from", "from_str", "from"]
            .iter()
            .any(|m| callee.ends_with(&format!("SandboxId::{m}")));
        let next = if constructor {
            arguments(code, node).first().copied()
        } else if callee.ends_with(".parse") || callee.ends_with(".parse::<SandboxId>") {
            // `"x".parse()` is a field expression; `"x".parse::<SandboxId>()` wraps it in a
            // generic function.
            let function = node.child_by_field_name("function");
            let function = match function {
                Some(f) if f.kind() == "generic_function" => f.child_by_field_name("function"),
                other => other,
            };
            function.and_then(|f| f.child_by_field_name("value"))
        } else {
            None
        };
        match next {
            Some(next) => node = code.unwrap(next),
            None => break,
        }
    }
    code.pieces(node).is_some_and(|pieces| !pieces.iter().any(|p| code.part_random(&p.part)))
}

/// If the receiver chain of a Rust builder call starts at `Command::new(program)`, the program
/// argument.
fn command_program<'t>(code: &Code<'_>, node: Node<'t>) -> Option<Node<'t>> {
    let mut node = code.unwrap(node);
    for _ in 0..64 {
        if node.kind() != "call_expression" {
            return None;
        }
        let function = node.child_by_field_name("function")?;
        if function.kind() == "field_expression" {
            node = function.child_by_field_name("value")?;
            continue;
        }
        let callee = code.text(function);
        if !(callee == "Command::new" || callee.ends_with("::Command::new")) {
            return None;
        }
        return arguments(code, node).first().copied();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::Grammar;
    use tree_sitter::{Parser, Query, QueryCursor, StreamingIterator};

    /// What the predicate is asked about: the first argument of the call to `f`, its argument
    /// list, or the call itself.
    #[derive(Clone, Copy)]
    enum Target {
        Arg,
        Args,
        Call,
    }

    fn holds(grammar: Grammar, code: &str, predicate: Predicate, target: Target) -> bool {
        let query = match (grammar.family(), target) {
            (Family::Python, Target::Arg) => "(call function: (_) @f arguments: (argument_list . (_) @x))",
            (Family::Python, Target::Args) => "(call function: (_) @f arguments: (argument_list) @x)",
            (Family::Python, Target::Call) => "((call function: (_) @f) @x)",
            (Family::Shell, _) => "(command name: (command_name) @f argument: (_) @x)",
            (_, Target::Arg) => "(call_expression function: (_) @f arguments: (arguments . (_) @x))",
            (_, Target::Args) => "(call_expression function: (_) @f arguments: (arguments) @x)",
            (_, Target::Call) => "((call_expression function: (_) @f) @x)",
        };
        let query = Query::new(&grammar.language(), &format!("({query} (#eq? @f \"f\"))")).unwrap();
        let mut parser = Parser::new();
        parser.set_language(&grammar.language()).unwrap();
        let tree = parser.parse(code, None).unwrap();
        let mut cursor = QueryCursor::new();
        let mut matches = cursor.matches(&query, tree.root_node(), code.as_bytes());
        let x = query.capture_index_for_name("x").unwrap();
        let m = matches.next().unwrap_or_else(|| panic!("no call to f in {code:?}"));
        let node = m.nodes_for_capture_index(x).next().unwrap();
        predicate.holds(&Code::new(grammar.family(), code.as_bytes()), node)
    }

    fn check(cases: &[(Grammar, &str, bool)], predicate: Predicate, target: Target) {
        for (grammar, code, expected) in cases {
            assert_eq!(holds(*grammar, code, predicate, target), *expected, "{predicate:?} on {grammar:?} `{code}`");
        }
    }

    use Grammar::{Bash as Sh, Javascript as Js, Python as Py, Rust as Rs, Tsx, Typescript as Ts};

    #[test]
    fn not_constant() {
        check(
            &[
                (Js, "f('ls -la')", false),
                (Js, "f(`echo hi`)", false),
                (Js, "f('ls ' + '-la')", false),
                (Js, "f(`ls ${'-la'}`)", false),
                (Js, "f(CONSTANT_CMD)", false),
                (Js, "f(path.join(__dirname, 'x'))", false),
                (Js, "f(`ls ${dir}`)", true),
                (Js, "f('ls ' + dir)", true),
                (Js, "f(cmd)", true),
                (Js, "f(obj.cmd)", true),
                (Js, "f(build())", true),
                (Ts, "f(`ls ${dir as string}`)", true),
                (Ts, "f(('ls') as string)", false),
                (Tsx, "f(`a`)", false),
                (Py, "f('ls')", false),
                (Py, "f('a' 'b')", false),
                (Py, "f(f'ls')", false),
                (Py, "f(f'ls {{x}}')", false),
                (Py, "f(f'ls {d}')", true),
                (Py, "f('ls %s' % d)", true),
                (Py, "f('ls {}'.format(d))", true),
                (Py, "f('ls ' + d)", true),
                (Py, "f(['ls', 'x'])", false),
                (Py, "f(['ls', x])", true),
                (Rs, "fn m() { f(\"ls\") }", false),
                (Rs, "fn m() { f(r#\"ls\"#) }", false),
                (Rs, "fn m() { f(&format!(\"ls\")) }", false),
                (Rs, "fn m() { f(format!(\"ls {}\", LIMIT)) }", false),
                (Rs, "fn m() { f(concat!(env!(\"HOME\"), \"/x\")) }", false),
                (Rs, "fn m() { f(\"ls\".to_string()) }", false),
                (Rs, "fn m() { f(format!(\"ls {}\", x)) }", true),
                (Rs, "fn m() { f(format!(\"ls {x}\")) }", true),
                (Rs, "fn m() { f(&cmd) }", true),
                (Rs, "fn m() { f(cmd.as_str()) }", true),
                (Sh, "f 'ls'", false),
                (Sh, "f \"ls -la\"", false),
                (Sh, "f ls", false),
                (Sh, "f \"$x\"", true),
                (Sh, "f $x", true),
                (Sh, "f \"a$(id)\"", true),
                (Sh, "f a$x", true),
            ],
            Predicate::NotConstant,
            Target::Arg,
        );
    }

    #[test]
    fn is_literal() {
        check(
            &[
                (Js, "f('x')", true),
                (Js, "f(1)", true),
                (Js, "f(`x`)", true),
                (Js, "f(`${x}`)", false),
                (Js, "f('a' + 'b')", false),
                (Py, "f('x')", true),
                (Py, "f(f'{x}')", false),
                (Rs, "fn m() { f(\"x\") }", true),
                (Rs, "fn m() { f(x) }", false),
                (Sh, "f 'x'", true),
                (Sh, "f \"$x\"", false),
            ],
            Predicate::IsLiteral,
            Target::Arg,
        );
    }

    #[test]
    fn not_escaped() {
        check(
            &[
                (Js, "f(`ls ${dir}`)", true),
                (Js, "f(`ls ${shellQuote(dir)}`)", false),
                (Js, "f(`ls ${quote([dir])} ${escapeShellArg(b)} ${shescape.quote(c)}`)", false),
                (Js, "f(`ls ${quote(a)} ${b}`)", true),
                (Js, "f('ls ' + shellEscape(dir))", false),
                (Js, "f('ls ' + dir)", true),
                (Js, "f(`ls`)", false),
                (Js, "f(cmd)", true),
                (Py, "f(f'ls {shlex.quote(d)}')", false),
                (Py, "f(f'ls {d}')", true),
                (Py, "f('ls ' + shlex.quote(d))", false),
                (Py, "f(shlex.join(['ls', d]))", false),
                (Py, "f('ls %s' % shlex.quote(d))", false),
                (Py, "f('ls %s %s' % (shlex.quote(d), e))", true),
                (Rs, "fn m() { f(format!(\"ls {}\", shell_escape::escape(d.into()))) }", false),
                (Rs, "fn m() { f(format!(\"ls {}\", sandguard::policy::shell::quote(d)?)) }", false),
                (Rs, "fn m() { f(format!(\"ls {}\", shell_words::quote(&d))) }", false),
                (Rs, "fn m() { f(format!(\"ls {}\", d)) }", true),
                (Rs, "fn m() { f(format!(\"ls {d}\")) }", true),
                (Rs, "fn m() { f(format!(\"ls {0} {0}\", quote_str(d)?)) }", false),
                (Rs, "fn m() { f(format!(\"ls {name}\", name = shell::quote(d))) }", false),
            ],
            Predicate::NotEscaped,
            Target::Arg,
        );
    }

    #[test]
    fn unsafe_path() {
        check(
            &[
                (Js, "f(`/data/${name}`)", true),
                (Js, "f(`${root}/config.json`)", false),
                (Js, "f(`${root}/${name}`)", true),
                (Js, "f(path.join(__dirname, req.params.name))", true),
                (Js, "f(path.join(base, 'x.json'))", false),
                (Js, "f(path.join(base, path.basename(name)))", false),
                (Js, "f(name)", false),
                (Js, "f('/etc/' + name)", true),
                (Py, "f(f'/data/{name}')", true),
                (Py, "f(os.path.join(base, name))", true),
                (Py, "f(os.path.join(base, secure_filename(name)))", false),
                (Py, "f(Path(base) / name)", true),
                (Py, "f(base / 'x')", false),
                (Py, "f('/data/%s' % int(n))", false),
                (Rs, "fn m() { f(format!(\"/data/{}\", name)) }", true),
                (Rs, "fn m() { f(format!(\"{}/x\", root)) }", false),
                (Rs, "fn m() { f(Path::new(root).join(name)) }", true),
                (Rs, "fn m() { f(&root.join(\"x\")) }", false),
                (Rs, "fn m() { f(root.join(guard.check(name)?)) }", false),
                (Rs, "fn m() { f(PathGuard::check(&root.join(name))?) }", false),
                (Rs, "fn m() { f(format!(\"/proc/{pid}/stat\")) }", false),
                (Rs, "fn m() { f(format!(\"/proc/{}/ns/pid\", self.init_pid())) }", false),
                (Rs, "fn m() { f(format!(\"/proc/{}/fd/{}\", pid, fd)) }", false),
                (Rs, "fn m() { f(format!(\"/home/{}/x\", user_id)) }", true),
                (Js, "f(`/proc/${child.pid}/status`)", false),
                (Py, "f(f'/dev/fd/{fd}')", false),
            ],
            Predicate::UnsafePath,
            Target::Arg,
        );
    }

    #[test]
    fn has_shell_true() {
        check(
            &[
                (Js, "f(cmd, { shell: true })", true),
                (Js, "f(cmd, { 'shell': '/bin/bash' })", true),
                (Js, "f(cmd, [x], { cwd, shell: true })", true),
                (Js, "f(cmd, { shell: false })", false),
                (Js, "f(cmd, { shell: '' })", false),
                (Js, "f(cmd, opts)", false),
                (Py, "f(cmd, shell=True)", true),
                (Py, "f(cmd, shell=False)", false),
                (Py, "f(cmd)", false),
            ],
            Predicate::HasShellTrue,
            Target::Args,
        );
    }

    #[test]
    fn no_timeout() {
        check(
            &[
                (Js, "f(cmd)", true),
                (Js, "f(cmd, { env })", true),
                (Js, "f(cmd, () => {})", true),
                (Js, "f(cmd, { timeout: 5 })", false),
                (Js, "f(cmd, { timeout })", false),
                (Js, "f(cmd, { signal: AbortSignal.timeout(5) })", false),
                (Js, "f(cmd, { ...opts })", false),
                (Js, "f(cmd, opts)", false),
                (Py, "f(cmd, shell=True)", true),
                (Py, "f(cmd, timeout=3)", false),
                (Py, "f(cmd, **kw)", false),
                (Rs, "fn m() { f(cmd).output() }", true),
                (Rs, "fn m() { f(cmd).timeout(d).output() }", false),
            ],
            Predicate::NoTimeout,
            Target::Call,
        );
    }

    #[test]
    fn secret_named_and_interpolated() {
        let named: &[(Grammar, &str, bool)] = &[
            (Js, "f(apiKey)", true),
            (Js, "f(process.env.OPENAI_API_KEY)", true),
            (Js, "f(env.API_TOKEN)", true),
            (Js, "f(process.env['DB_PASSWORD'])", true),
            (Js, "f(config.clientSecret)", true),
            (Js, "f(env.Sandbox)", false),
            (Js, "f(token.length)", false),
            (Js, "f(sortKey)", false),
            (Py, "f(os.environ['API_KEY'])", true),
            (Py, "f(os.getenv('GITHUB_TOKEN'))", true),
            (Py, "f(os.environ.get('PASSWORD'))", true),
            (Py, "f(self.api_key)", true),
            (Py, "f(os.environ['HOME'])", false),
            (Py, "f(api_key[:4])", false),
            (Rs, "fn m() { f(&api_key) }", true),
            (Rs, "fn m() { f(std::env::var(\"API_KEY\")?) }", true),
            (Rs, "fn m() { f(config.token.clone()) }", true),
            (Rs, "fn m() { f(config.user) }", false),
            (Sh, "f \"$API_TOKEN\"", false),
            (Sh, "f $API_TOKEN", true),
            (Sh, "f ${#API_TOKEN}", false),
        ];
        check(named, Predicate::SecretNamed, Target::Arg);
        check(
            &[
                (Js, "f(`echo ${env.API_KEY}`)", true),
                (Js, "f('Bearer ' + token)", true),
                (Js, "f(`echo ${env.MODEL}`)", false),
                (Py, "f(f'Bearer {api_key}')", true),
                (Py, "f('key %s' % secret)", true),
                (Rs, "fn m() { f(format!(\"Bearer {}\", token)) }", true),
                (Rs, "fn m() { f(format!(\"Bearer {token}\")) }", true),
                (Rs, "fn m() { f(format!(\"{}\", token.len())) }", false),
                (Sh, "f \"$API_TOKEN\"", true),
                (Sh, "f \"${API_TOKEN:+set}\"", false),
                (Sh, "f \"$HOME\"", false),
            ],
            Predicate::InterpolatesSecret,
            Target::Arg,
        );
    }

    #[test]
    fn guessable() {
        check(
            &[
                (Js, "f('user-123')", true),
                (Js, "f(`user-${userId}`)", true),
                (Js, "f('sb-' + Date.now())", true),
                (Js, "f(crypto.randomUUID())", false),
                (Js, "f(`${userId}-${crypto.randomUUID()}`)", false),
                (Js, "f(id)", false),
                (Py, "f('demo')", true),
                (Py, "f(f'user-{uid}')", true),
                (Py, "f(f'user-{uuid.uuid4()}')", false),
                (Rs, "fn m() { f(SandboxId::parse(\"demo\")?) }", true),
                (Rs, "fn m() { f(\"demo\".parse::<SandboxId>().unwrap()) }", true),
                (Rs, "fn m() { f(SandboxId::parse(&format!(\"u-{}\", uid))?) }", true),
                (Rs, "fn m() { f(SandboxId::generate(\"u\")?) }", false),
                (Rs, "fn m() { f(SandboxId::parse(&format!(\"u-{}\", Uuid::new_v4()))?) }", false),
            ],
            Predicate::Guessable,
            Target::Arg,
        );
    }

    #[test]
    fn shell_command_and_program() {
        check(
            &[
                (Rs, "fn m() { f(Command::new(\"sh\").arg(\"-c\")) }", true),
                (Rs, "fn m() { f(std::process::Command::new(\"/bin/bash\").env(a, b)) }", true),
                (Rs, "fn m() { f(tokio::process::Command::new(\"zsh\")) }", true),
                (Rs, "fn m() { f(Command::new(\"ls\").arg(\"-c\")) }", false),
                (Rs, "fn m() { f(Command::new(program)) }", false),
                (Rs, "fn m() { f(cmd.arg(\"-c\")) }", false),
            ],
            Predicate::ShellCommand,
            Target::Arg,
        );
        check(
            &[
                (Rs, "fn m() { f(Command::new(\"curl\").arg(\"-H\")) }", true),
                (Rs, "fn m() { f(Command::new(program)) }", true),
                (Rs, "fn m() { f(cmd.arg(\"-c\")) }", false),
                (Rs, "fn m() { f(Arg::new(\"x\")) }", false),
            ],
            Predicate::CommandBuilder,
            Target::Arg,
        );
        check(
            &[(Js, "f('bash')", true), (Js, "f('/bin/sh')", true), (Js, "f('ls')", false), (Js, "f(shell)", false)],
            Predicate::ShellProgram,
            Target::Arg,
        );
    }

    #[test]
    fn spec_form_parses() {
        assert_eq!(Predicate::parse_spec("not-constant @cmd"), Ok((Predicate::NotConstant, "cmd")));
        assert_eq!(Predicate::parse_spec("  #no-timeout?   @call "), Ok((Predicate::NoTimeout, "call")));
        assert!(Predicate::parse_spec("not-constant cmd").is_err());
        assert!(Predicate::parse_spec("not-constant @").is_err());
        assert!(Predicate::parse_spec("no-such-thing @x").is_err());
        assert!(Predicate::parse_spec("not-constant @a @b").is_err());
        assert!(Predicate::parse_spec("").is_err());
    }

    #[test]
    fn every_name_round_trips() {
        for (name, predicate) in Predicate::NAMES {
            assert_eq!(Predicate::named(name), Some(*predicate));
        }
    }
}
