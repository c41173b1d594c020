//! Language-aware questions about one expression in a syntax tree: is it constant, which parts
//! does a string or path built from pieces interpolate, is a part wrapped in a shell-quoting
//! function, does it name a secret. The named predicates are thin wrappers over these.
//!
//! Every walk is bounded (depth and node count) so that hostile input (deeply nested or huge
//! expressions) cannot overflow the stack or take unbounded time; when a bound is hit the answer
//! leans towards "not constant", i.e. towards reporting.

use tree_sitter::Node;

/// How deep the recursive questions go before giving up.
const MAX_DEPTH: u32 = 24;
/// How many parts one expression may be split into before the rest are ignored.
const MAX_PARTS: usize = 256;
/// How many nodes a subtree scan visits at most.
const MAX_SCAN: usize = 512;

/// A grammar family: the node kinds these questions look at are shared within a family
/// (TypeScript and TSX extend JavaScript).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Family {
    /// tree-sitter-rust
    Rust,
    /// tree-sitter-javascript and tree-sitter-typescript (both dialects)
    Js,
    /// tree-sitter-python
    Python,
    /// tree-sitter-bash
    Shell,
}

/// One piece of a string or path built from pieces.
#[derive(Debug, Clone)]
pub(super) enum Part<'t> {
    /// A sub-expression (template substitution, operand, join argument, ...).
    Expr(Node<'t>),
    /// One argument of a Rust macro: a run of tokens in a token tree.
    Tokens(Node<'t>, Node<'t>),
    /// A `{name}` inline argument of a Rust format string.
    Inline(String),
}

/// A piece plus whether it sits at the very start of the built value (no literal text before
/// it): a path's leading piece is its base directory, which path rules do not hold against it.
#[derive(Debug, Clone)]
pub(super) struct Piece<'t> {
    /// The piece.
    pub(super) part: Part<'t>,
    /// Nothing precedes it in the built value.
    pub(super) leading: bool,
}

/// Shell-quoting functions, by callee text with whitespace removed. Rust paths also match by
/// suffix (`foo::shell::quote` matches `shell::quote`).
const QUOTERS: &[&str] = &[
    // JavaScript / TypeScript
    "shellQuote",
    "quote",
    "escapeShellArg",
    "shellEscape",
    "shellescape",
    "shescape.quote",
    "shescape.quoteAll",
    "shellQuote.quote",
    // Python
    "shlex.quote",
    "shlex.join",
    "pipes.quote",
    // Rust
    "shell_escape::escape",
    "shell_escape::unix::escape",
    "shell_words::quote",
    "shell_words::join",
    "shlex::quote",
    "shlex::try_quote",
    "shlex::join",
    "shell::quote",
    "shell::quote_str",
    "quote_str",
];

/// Functions whose result cannot carry `..` or a separator, so a path piece wrapped in one is
/// not a traversal.
const PATH_SAFE: &[&str] = &[
    "path.basename",
    "basename",
    "sanitizeFilename",
    "sanitize",
    "parseInt",
    "Number",
    "os.path.basename",
    "secure_filename",
    "werkzeug.utils.secure_filename",
    "int",
    "PathGuard::check",
    "sanitize_filename::sanitize",
];

/// Words that make an identifier name a secret.
const SECRET_WORDS: &[&str] = &[
    "token",
    "secret",
    "secrets",
    "password",
    "passwd",
    "passphrase",
    "credential",
    "credentials",
    "apikey",
    "authorization",
];

/// Substrings (ASCII case-insensitive) at least one of which every name [`secret_name`] accepts
/// contains: each secret word, `_key`/`-key` (a qualified or SCREAMING key with a separator) and
/// each qualifier directly followed by `key` (camelCase). A file without any of them cannot
/// mention a secret by name.
pub(super) const SECRET_SUBSTRINGS: &[&str] = &[
    "token",
    "secret",
    "password",
    "passwd",
    "passphrase",
    "credential",
    "apikey",
    "authorization",
    "_key",
    "-key",
    "privatekey",
    "accesskey",
    "signingkey",
    "authkey",
    "encryptionkey",
    "masterkey",
    "clientkey",
    "servicekey",
];

/// Words that make a preceding `key` a secret (`api_key`, `privateKey`, `SECRET_KEY`).
const KEY_QUALIFIERS: &[&str] =
    &["api", "private", "secret", "access", "signing", "auth", "encryption", "master", "client", "service"];

/// A last word that makes a secret-looking name describe the secret rather than hold it
/// (`token_count`, `passwordPolicy`, `secretName`, `apiKeyHeader`).
const NOT_SECRET_SUFFIX: &[&str] = &[
    "count",
    "counts",
    "len",
    "length",
    "limit",
    "limits",
    "type",
    "kind",
    "usage",
    "index",
    "name",
    "names",
    "field",
    "fields",
    "file",
    "path",
    "url",
    "uri",
    "endpoint",
    "env",
    "var",
    "id",
    "ids",
    "expiry",
    "expires",
    "ttl",
    "policy",
    "prefix",
    "regex",
    "pattern",
    "header",
    "headers",
    "hash",
    "hashed",
    "min",
    "max",
    "required",
    "valid",
    "validator",
    "error",
];

/// Words in a callee or identifier that mean randomness (a sandbox ID built with one is not
/// guessable).
const RANDOM_MARKERS: &[&str] = &[
    "random",
    "uuid",
    "nanoid",
    "ulid",
    "cuid",
    "token_hex",
    "token_urlsafe",
    "token_bytes",
    "new_v4",
    "generate",
    "urandom",
    "csprng",
    "secrets",
];

/// Methods that pass their receiver's value through (`x.to_string()`, `x?`-like unwraps).
const RUST_IDENTITY_METHODS: &[&str] = &[
    "unwrap",
    "expect",
    "to_string",
    "to_owned",
    "into",
    "as_str",
    "as_ref",
    "clone",
    "as_path",
    "as_os_str",
    "to_path_buf",
    "borrow",
    "display",
];

/// Rust macros whose arguments are formatted: the first string literal is the format string.
const FORMAT_MACROS: &[&str] = &[
    "format",
    "format_args",
    "print",
    "println",
    "eprint",
    "eprintln",
    "panic",
    "write",
    "writeln",
    "info",
    "debug",
    "warn",
    "error",
    "trace",
    "log",
    "dbg",
    "concat",
    "anyhow",
    "bail",
];

/// The source text of one file and its grammar family: the context every question needs.
#[derive(Debug, Clone, Copy)]
pub(super) struct Code<'s> {
    family: Family,
    source: &'s [u8],
}

/// The node's named children, collected (small nodes only: arguments, template parts).
fn named_children(node: Node<'_>) -> Vec<Node<'_>> {
    let mut cursor = node.walk();
    node.named_children(&mut cursor).take(MAX_PARTS).collect()
}

/// All children, named and anonymous (punctuation), collected.
fn all_children(node: Node<'_>) -> Vec<Node<'_>> {
    let mut cursor = node.walk();
    node.children(&mut cursor).take(4 * MAX_PARTS).collect()
}

/// `SCREAMING_CASE`: by convention a constant.
fn is_screaming(name: &str) -> bool {
    name.len() > 1
        && name.bytes().any(|b| b.is_ascii_uppercase())
        && name.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// The callee text with whitespace removed, so `shlex . quote` and `shlex.quote` compare equal.
fn compact(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

/// Whether a callee (compacted) is in `list`, exactly or, for a Rust path, by `::` suffix.
fn callee_in(callee: &str, list: &[&str]) -> bool {
    list.iter().any(|entry| callee == *entry || callee.strip_suffix(entry).is_some_and(|head| head.ends_with("::")))
}

/// The contents of a string literal: the text without prefixes (`r`, `b`, `f`, `u`, `#`) and
/// quotes. Good enough for names and short patterns, not for unescaping.
fn literal_content(text: &str) -> &str {
    let text = text.trim_start_matches(|c: char| c.is_ascii_alphabetic() || c == '#');
    let text = text.trim_end_matches('#');
    let quote = |c: char| c == '"' || c == '\'' || c == '`';
    let text = text.strip_prefix(quote).unwrap_or(text);
    text.strip_suffix(quote).unwrap_or(text)
}

/// Whether an identifier-like name holds a secret: split into words (snake, kebab, camel,
/// dots), a secret word anywhere (`githubToken`, `DB_PASSWORD`, `authorization`) or `key` after
/// a qualifier (`api_key`, `privateKey`) or ending a SCREAMING name (`STRIPE_KEY`), unless the
/// last word says it is about the secret rather than the secret (`token_count`, `secretName`).
///
/// Only identifier-like names qualify (letters, digits, `_`, `-`, a leading `$`): that keeps
/// every secret name containing one of [`SECRET_SUBSTRINGS`], which the pre-parse filter relies
/// on.
pub(super) fn secret_name(name: &str) -> bool {
    let name = name.trim_start_matches('$');
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return false;
    }
    let words = split_words(name);
    let Some(last) = words.last() else {
        return false;
    };
    if NOT_SECRET_SUFFIX.contains(&last.as_str()) {
        return false;
    }
    let screaming = is_screaming(name);
    words.iter().enumerate().any(|(i, word)| {
        SECRET_WORDS.contains(&word.as_str())
            || word.ends_with("token")
            || word.ends_with("secret")
            || word.ends_with("password")
            || word.ends_with("apikey")
            || (word == "key"
                && ((i > 0 && KEY_QUALIFIERS.contains(&words[i - 1].as_str()))
                    || (screaming && i + 1 == words.len() && i > 0)))
    })
}

/// Lowercase words of an identifier: `OPENAI_API_KEY` -> openai, api, key; `githubToken` ->
/// github, token; `APIKey` -> api, key.
fn split_words(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let chars: Vec<char> = name.chars().take(256).collect();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_ascii_alphanumeric() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            continue;
        }
        let prev = i.checked_sub(1).and_then(|j| chars.get(j)).copied();
        let next = chars.get(i + 1).copied();
        let boundary = c.is_ascii_uppercase()
            && prev.is_some_and(|p| {
                p.is_ascii_lowercase()
                    || p.is_ascii_digit()
                    || (p.is_ascii_uppercase() && next.is_some_and(|n| n.is_ascii_lowercase()))
            });
        if boundary && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        current.push(c.to_ascii_lowercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// Whether a name conventionally holds a number (`pid`, `init_pid`, `fd`, `port`, `index`):
/// interpolated into a path it cannot carry `..` or a separator. `id` is not among them: user
/// and resource ids are often strings.
fn numeric_name(name: &str) -> bool {
    let words = split_words(name);
    words.last().is_some_and(|last| {
        matches!(
            last.as_str(),
            "pid"
                | "ppid"
                | "tid"
                | "pgid"
                | "uid"
                | "gid"
                | "fd"
                | "port"
                | "idx"
                | "index"
                | "num"
                | "count"
                | "n"
                | "i"
                | "j"
                | "k"
                | "nr"
                | "seq"
                | "offset"
                | "number"
        )
    })
}

/// Whether a name is a shell interpreter (`sh`, `/bin/bash`, `zsh`, `cmd.exe`, `pwsh`...).
pub(super) fn is_shell_program(name: &str) -> bool {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let lower = base.to_ascii_lowercase();
    let base = lower.strip_suffix(".exe").unwrap_or(&lower);
    matches!(base, "sh" | "bash" | "zsh" | "dash" | "ksh" | "ash" | "mksh" | "fish" | "cmd" | "powershell" | "pwsh")
}

/// Whether an identifier's text mentions randomness.
fn is_random_word(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    RANDOM_MARKERS.iter().any(|m| lower.contains(m))
}

impl<'s> Code<'s> {
    /// The context for one parsed file.
    pub(super) const fn new(family: Family, source: &'s [u8]) -> Self {
        Self { family, source }
    }

    /// The grammar family.
    pub(super) const fn family(&self) -> Family {
        self.family
    }

    /// The node's source text ("" if it is not valid UTF-8 on its own, which a well-formed
    /// tree of a `&str` never produces).
    pub(super) fn text(&self, node: Node<'_>) -> &'s str {
        self.span(node.start_byte(), node.end_byte())
    }

    fn span(&self, start: usize, end: usize) -> &'s str {
        self.source.get(start..end).and_then(|bytes| std::str::from_utf8(bytes).ok()).unwrap_or("")
    }

    /// Strip wrappers that do not change a value: parentheses, `&`, `?`, `.unwrap()`,
    /// `.to_string()`, `await`, `as T`, `x!`.
    pub(super) fn unwrap<'t>(&self, mut node: Node<'t>) -> Node<'t> {
        for _ in 0..MAX_DEPTH {
            let inner = match (self.family, node.kind()) {
                (_, "parenthesized_expression") => node.named_child(0),
                (Family::Rust, "reference_expression") => node.child_by_field_name("value"),
                (Family::Rust, "try_expression") => node.named_child(0),
                (Family::Rust, "type_cast_expression") => node.child_by_field_name("value"),
                (Family::Rust, "call_expression") => self.rust_identity_receiver(node),
                (Family::Js, "as_expression" | "satisfies_expression" | "non_null_expression" | "await_expression") => {
                    node.named_child(0)
                }
                (Family::Js, "type_assertion") => node.named_child(node.named_child_count().saturating_sub(1)),
                (Family::Js, "call_expression") => self.js_identity_receiver(node),
                _ => None,
            };
            match inner {
                Some(inner) => node = inner,
                None => return node,
            }
        }
        node
    }

    /// The receiver of `x.unwrap()`, `x.to_string()`, `x.expect("..")`...
    fn rust_identity_receiver<'t>(&self, call: Node<'t>) -> Option<Node<'t>> {
        let function = call.child_by_field_name("function")?;
        if function.kind() != "field_expression" {
            return None;
        }
        let field = function.child_by_field_name("field")?;
        RUST_IDENTITY_METHODS.contains(&self.text(field)).then(|| function.child_by_field_name("value")).flatten()
    }

    /// The receiver of `x.toString()` / `x.trim()`.
    fn js_identity_receiver<'t>(&self, call: Node<'t>) -> Option<Node<'t>> {
        let function = call.child_by_field_name("function")?;
        if function.kind() != "member_expression" {
            return None;
        }
        let property = function.child_by_field_name("property")?;
        let args = call.child_by_field_name("arguments")?;
        (matches!(self.text(property), "toString" | "trim") && args.named_child_count() == 0)
            .then(|| function.child_by_field_name("object"))
            .flatten()
    }

    /// The callee of a call expression, compacted, or `None` if `node` is not a call.
    pub(super) fn callee(&self, node: Node<'_>) -> Option<String> {
        let is_call = matches!(
            (self.family, node.kind()),
            (Family::Rust | Family::Js, "call_expression") | (Family::Python, "call")
        );
        if !is_call {
            return None;
        }
        let function = node.child_by_field_name("function")?;
        Some(compact(self.text(function)))
    }

    /// The argument nodes of a call (keyword arguments included as they are).
    pub(super) fn call_arguments<'t>(&self, call: Node<'t>) -> Vec<Node<'t>> {
        call.child_by_field_name("arguments").map(named_children).unwrap_or_default()
    }

    /// A method call's method name and receiver: `recv.method(..)`.
    fn method_call<'t>(&self, call: Node<'t>) -> Option<(&'s str, Node<'t>)> {
        let function = call.child_by_field_name("function")?;
        let (object, name) = match (self.family, function.kind()) {
            (Family::Rust, "field_expression") => ("value", "field"),
            (Family::Js, "member_expression") => ("object", "property"),
            (Family::Python, "attribute") => ("object", "attribute"),
            _ => return None,
        };
        Some((self.text(function.child_by_field_name(name)?), function.child_by_field_name(object)?))
    }

    /// A plain literal: string without interpolation, number, boolean, null.
    pub(super) fn is_literal(&self, node: Node<'_>) -> bool {
        let node = self.unwrap(node);
        match self.family {
            Family::Rust => matches!(
                node.kind(),
                "string_literal"
                    | "raw_string_literal"
                    | "integer_literal"
                    | "float_literal"
                    | "boolean_literal"
                    | "char_literal"
                    | "negative_literal"
            ),
            Family::Js => match node.kind() {
                "string" | "number" | "true" | "false" | "null" | "undefined" | "regex" => true,
                "template_string" => !named_children(node).iter().any(|c| c.kind() == "template_substitution"),
                _ => false,
            },
            Family::Python => match node.kind() {
                "integer" | "float" | "true" | "false" | "none" => true,
                "string" => !named_children(node).iter().any(|c| c.kind() == "interpolation"),
                "concatenated_string" => {
                    named_children(node).iter().all(|c| c.kind() == "string" && self.is_literal(*c))
                }
                _ => false,
            },
            Family::Shell => match node.kind() {
                "word" | "raw_string" | "number" | "ansi_c_string" => true,
                "string" => named_children(node).iter().all(|c| c.kind() == "string_content"),
                _ => false,
            },
        }
    }

    /// Constant: a literal, a SCREAMING_CASE name, a well-known location (`__dirname`,
    /// `process.cwd()`), or built only from constants (concatenation, template, format, join,
    /// array).
    pub(super) fn is_constant(&self, node: Node<'_>) -> bool {
        self.constant_at(node, 0)
    }

    fn constant_at(&self, node: Node<'_>, depth: u32) -> bool {
        if depth > MAX_DEPTH {
            return false;
        }
        let node = self.unwrap(node);
        if self.is_literal(node) {
            return true;
        }
        let text = self.text(node);
        match node.kind() {
            "identifier" | "scoped_identifier" => {
                let last = text.rsplit("::").next().unwrap_or(text);
                return is_screaming(last) || matches!(text, "__dirname" | "__filename" | "__file__");
            }
            "array" | "array_expression" | "list" | "tuple" => {
                return named_children(node).iter().all(|c| self.constant_at(*c, depth + 1));
            }
            "member_expression" if matches!(text, "import.meta.dirname" | "import.meta.url") => {
                return true;
            }
            _ => {}
        }
        if let Some(callee) = self.callee(node) {
            if matches!(callee.as_str(), "process.cwd" | "os.getcwd" | "Path.cwd" | "pathlib.Path.cwd") {
                return true;
            }
            let wrapper = callee_in(
                &callee,
                &[
                    "Path::new",
                    "PathBuf::from",
                    "String::from",
                    "OsStr::new",
                    "OsString::from",
                    "String",
                    "str",
                    "Path",
                    "pathlib.Path",
                    "os.path.dirname",
                    "os.path.abspath",
                    "path.dirname",
                ],
            );
            if wrapper {
                return self.call_arguments(node).iter().all(|a| self.constant_at(*a, depth + 1));
            }
        }
        if self.family == Family::Python && node.kind() == "attribute" {
            // `Path(__file__).parent`, `BASE_DIR.parent`
            if let Some(object) = node.child_by_field_name("object") {
                return self.constant_at(object, depth + 1);
            }
        }
        if self.family == Family::Rust && node.kind() == "macro_invocation" {
            let name = self.macro_name(node);
            if matches!(name, "env" | "include_str" | "include_bytes" | "file" | "line") {
                return true;
            }
        }
        match self.split(node, depth) {
            Some(pieces) => pieces.iter().all(|p| self.part_constant(&p.part, depth + 1)),
            None => false,
        }
    }

    /// Whether one piece is constant.
    pub(super) fn part_constant(&self, part: &Part<'_>, depth: u32) -> bool {
        match part {
            Part::Expr(node) => self.constant_at(*node, depth),
            Part::Tokens(first, last) => self.tokens_constant(*first, *last),
            Part::Inline(name) => is_screaming(name),
        }
    }

    /// A run of macro tokens is constant when it names no lowercase identifier.
    fn tokens_constant(&self, first: Node<'_>, last: Node<'_>) -> bool {
        let mut visited = 0;
        let mut node = Some(first);
        while let Some(current) = node {
            // A macro's name (`env` in `env!(..)`) is not a value; its arguments are checked.
            let is_macro_name = |n: Node<'_>| n.next_sibling().is_some_and(|s| s.kind() == "!");
            if !self.subtree_all(current, &mut visited, |n| {
                !matches!(n.kind(), "identifier" | "self" | "metavariable")
                    || is_screaming(self.text(n))
                    || is_macro_name(n)
            }) {
                return false;
            }
            if current.id() == last.id() {
                break;
            }
            node = current.next_sibling();
        }
        true
    }

    /// Whether `check` holds for every node of a subtree (bounded: false past the budget).
    fn subtree_all(&self, root: Node<'_>, visited: &mut usize, check: impl Fn(Node<'_>) -> bool) -> bool {
        let mut cursor = root.walk();
        loop {
            *visited += 1;
            if *visited > MAX_SCAN || !check(cursor.node()) {
                return false;
            }
            if cursor.goto_first_child() {
                continue;
            }
            loop {
                if cursor.node().id() == root.id() {
                    return true;
                }
                if cursor.goto_next_sibling() {
                    break;
                }
                if !cursor.goto_parent() {
                    return true;
                }
            }
        }
    }

    /// The pieces of `node` if it builds a string or path from pieces (template, f-string,
    /// `format!`, `+`, `%`, `.format()`, path joins), flattened; `None` if it is not such an
    /// expression. Literal text between pieces is dropped.
    pub(super) fn pieces<'t>(&self, node: Node<'t>) -> Option<Vec<Piece<'t>>> {
        let node = self.unwrap(node);
        let top = self.split(node, 0)?;
        let mut out = Vec::new();
        for piece in top {
            self.flatten(piece, &mut out, 1);
        }
        Some(out)
    }

    /// The pieces of `node`, or `node` itself as the only piece.
    pub(super) fn pieces_or_self<'t>(&self, node: Node<'t>) -> Vec<Piece<'t>> {
        self.pieces(node).unwrap_or_else(|| vec![Piece { part: Part::Expr(self.unwrap(node)), leading: true }])
    }

    fn flatten<'t>(&self, piece: Piece<'t>, out: &mut Vec<Piece<'t>>, depth: u32) {
        if out.len() >= MAX_PARTS {
            return;
        }
        if let Part::Expr(node) = piece.part {
            let node = self.unwrap(node);
            // `split` stops at MAX_DEPTH, which bounds this recursion.
            if let Some(inner) = self.split(node, depth) {
                for child in inner {
                    let leading = piece.leading && child.leading;
                    self.flatten(Piece { part: child.part, leading }, out, depth + 1);
                }
                return;
            }
            out.push(Piece { part: Part::Expr(node), leading: piece.leading });
        } else {
            out.push(piece);
        }
    }

    /// One level of splitting.
    fn split<'t>(&self, node: Node<'t>, depth: u32) -> Option<Vec<Piece<'t>>> {
        if depth > MAX_DEPTH {
            return None;
        }
        let expr = |node: Node<'t>, leading: bool| Piece { part: Part::Expr(node), leading };
        match (self.family, node.kind()) {
            (Family::Js, "template_string") => Some(self.interpolations(node, "template_substitution", None)),
            (Family::Python, "string") => {
                let pieces = self.interpolations(node, "interpolation", Some("expression"));
                (!pieces.is_empty()).then_some(pieces)
            }
            (Family::Shell, "string") => {
                let mut pieces = Vec::new();
                let mut at_start = true;
                for child in named_children(node) {
                    if child.kind() == "string_content" {
                        at_start = false;
                    } else {
                        pieces.push(expr(child, at_start));
                        at_start = false;
                    }
                }
                (!pieces.is_empty()).then_some(pieces)
            }
            (Family::Python, "concatenated_string") | (Family::Shell, "concatenation") => {
                Some(named_children(node).into_iter().enumerate().map(|(i, c)| expr(c, i == 0)).collect())
            }
            (Family::Js | Family::Rust, "binary_expression") | (Family::Python, "binary_operator") => {
                let operator = node.child_by_field_name("operator")?;
                let op = self.text(operator);
                let accepted = match self.family {
                    Family::Python => matches!(op, "+" | "%" | "/"),
                    _ => op == "+",
                };
                if !accepted {
                    return None;
                }
                let left = node.child_by_field_name("left")?;
                let right = node.child_by_field_name("right")?;
                let mut pieces = vec![expr(left, true)];
                if op == "%" && right.kind() == "tuple" {
                    pieces.extend(named_children(right).into_iter().map(|c| expr(c, false)));
                } else {
                    pieces.push(expr(right, false));
                }
                Some(pieces)
            }
            (Family::Rust, "macro_invocation") => {
                let name = self.macro_name(node);
                FORMAT_MACROS.contains(&name).then(|| self.format_pieces(node, name))
            }
            (Family::Js | Family::Python | Family::Rust, "call_expression" | "call") => self.split_call(node),
            _ => None,
        }
    }

    /// Substitutions of a template literal or f-string, each marked leading when no literal
    /// text precedes it.
    fn interpolations<'t>(&self, node: Node<'t>, kind: &str, field: Option<&str>) -> Vec<Piece<'t>> {
        let mut pieces = Vec::new();
        let mut at_start = true;
        for child in named_children(node) {
            if child.kind() == kind {
                let inner = match field {
                    Some(field) => child.child_by_field_name(field),
                    None => child.named_child(0),
                };
                if let Some(inner) = inner {
                    pieces.push(Piece { part: Part::Expr(inner), leading: at_start });
                }
                at_start = false;
            } else if !matches!(child.kind(), "string_start" | "string_end") {
                at_start = false;
            }
        }
        pieces
    }

    /// Path joins and `.format()`: `path.join(a, b)`, `os.path.join(a, b)`,
    /// `Path::new(a).join(b)`, `"{}/{}".format(a, b)`, `"/".join([a, b])`.
    fn split_call<'t>(&self, call: Node<'t>) -> Option<Vec<Piece<'t>>> {
        let callee = self.callee(call)?;
        let args = self.call_arguments(call);
        let value = |arg: Node<'t>| -> Node<'t> {
            // Python keyword arguments: the value.
            if arg.kind() == "keyword_argument" { arg.child_by_field_name("value").unwrap_or(arg) } else { arg }
        };
        let from_args = |args: &[Node<'t>], first_leading: bool| -> Vec<Piece<'t>> {
            args.iter()
                .enumerate()
                .map(|(i, a)| Piece { part: Part::Expr(value(*a)), leading: first_leading && i == 0 })
                .collect()
        };
        let joins = [
            "path.join",
            "path.resolve",
            "path.posix.join",
            "path.win32.join",
            "path.posix.resolve",
            "os.path.join",
            "posixpath.join",
            "ntpath.join",
        ];
        if joins.contains(&callee.as_str()) {
            return Some(from_args(&args, true));
        }
        if self.family == Family::Python
            && matches!(callee.as_str(), "Path" | "pathlib.Path" | "PurePath")
            && args.len() > 1
        {
            return Some(from_args(&args, true));
        }
        let (method, receiver) = self.method_call(call)?;
        let receiver = self.unwrap(receiver);
        match (self.family, method) {
            (Family::Python, "format") if self.is_literal(receiver) => {
                let mut pieces = vec![Piece { part: Part::Expr(receiver), leading: true }];
                pieces.extend(from_args(&args, false));
                Some(pieces)
            }
            (Family::Python, "join") if self.is_literal(receiver) => {
                let list = args.first()?;
                let items = if matches!(list.kind(), "list" | "tuple") { named_children(*list) } else { vec![*list] };
                Some(from_args(&items, true))
            }
            (Family::Python, "joinpath") | (Family::Rust, "join") => {
                let mut pieces = vec![Piece { part: Part::Expr(receiver), leading: true }];
                pieces.extend(from_args(&args, false));
                Some(pieces)
            }
            (Family::Js, "join" | "concat") if receiver.kind() == "array" => {
                let mut pieces = from_args(&named_children(receiver), true);
                pieces.extend(from_args(&args, false));
                Some(pieces)
            }
            _ => None,
        }
    }

    /// A macro's name without its path (`std::format` -> `format`).
    pub(super) fn macro_name(&self, node: Node<'_>) -> &'s str {
        node.child_by_field_name("macro")
            .map(|m| self.text(m))
            .map(|t| t.rsplit("::").next().unwrap_or(t))
            .unwrap_or("")
    }

    /// The arguments of a macro, each as its run of tokens.
    fn macro_args<'t>(&self, node: Node<'t>) -> Vec<(Node<'t>, Node<'t>)> {
        let Some(tree) = named_children(node).into_iter().rev().find(|c| c.kind() == "token_tree") else {
            return Vec::new();
        };
        let children = all_children(tree);
        let inner = children.get(1..children.len().saturating_sub(1)).unwrap_or_default();
        let mut args = Vec::new();
        let mut start: Option<Node<'t>> = None;
        let mut end: Option<Node<'t>> = None;
        for child in inner {
            if child.kind() == "," {
                if let (Some(s), Some(e)) = (start.take(), end.take()) {
                    args.push((s, e));
                }
            } else {
                start.get_or_insert(*child);
                end = Some(*child);
            }
        }
        if let (Some(s), Some(e)) = (start, end) {
            args.push((s, e));
        }
        args
    }

    /// The pieces a format-like macro interpolates: the arguments its format string refers to
    /// (positional, indexed, named) and inline `{name}` captures.
    fn format_pieces<'t>(&self, node: Node<'t>, name: &str) -> Vec<Piece<'t>> {
        let mut args = self.macro_args(node);
        if matches!(name, "write" | "writeln") && !args.is_empty() {
            args.remove(0);
        }
        let tokens = |(s, e): (Node<'t>, Node<'t>)| Piece { part: Part::Tokens(s, e), leading: false };
        let is_format_string = |(s, e): &(Node<'t>, Node<'t>)| {
            s.id() == e.id() && matches!(s.kind(), "string_literal" | "raw_string_literal")
        };
        let Some(format_at) = args.iter().position(is_format_string) else {
            return args.into_iter().enumerate().map(|(i, a)| Piece { leading: i == 0, ..tokens(a) }).collect();
        };
        if name == "concat" {
            return args.into_iter().enumerate().map(|(i, a)| Piece { leading: i == 0, ..tokens(a) }).collect();
        }
        let (format_node, _) = args[format_at];
        let mut pieces: Vec<Piece<'t>> = args[..format_at].iter().copied().map(tokens).collect();
        let rest = &args[format_at + 1..];
        // Named arguments `name = value`: the value's tokens.
        let named: Vec<(&str, Option<(Node<'t>, Node<'t>)>)> = rest
            .iter()
            .map(|&(s, e)| {
                let eq = s.next_sibling().filter(|n| n.kind() == "=");
                match eq {
                    Some(eq) if s.kind() == "identifier" && eq.id() != e.id() => {
                        (self.text(s), eq.next_sibling().map(|v| (v, e)))
                    }
                    _ => ("", Some((s, e))),
                }
            })
            .collect();
        let mut used = vec![false; rest.len()];
        let mut next_positional = 0;
        let content = literal_content(self.text(format_node));
        for (index, (at_start, spec)) in placeholders(content).into_iter().enumerate() {
            let reference = spec.split(':').next().unwrap_or("").trim();
            let target = if reference.is_empty() {
                next_positional += 1;
                Some(next_positional - 1)
            } else if let Ok(i) = reference.parse::<usize>() {
                Some(i)
            } else {
                named.iter().position(|(n, _)| *n == reference)
            };
            let leading = at_start && index == 0;
            match target.and_then(|i| named.get(i).map(|n| (i, n))) {
                Some((i, (_, Some(run)))) => {
                    used[i] = true;
                    pieces.push(Piece { part: Part::Tokens(run.0, run.1), leading });
                }
                Some((i, (_, None))) => used[i] = true,
                None => pieces.push(Piece { part: Part::Inline(reference.to_string()), leading }),
            }
        }
        for (i, (_, run)) in named.iter().enumerate() {
            if let (false, Some(run)) = (used[i], run) {
                pieces.push(tokens(*run));
            }
        }
        pieces
    }

    /// Whether a piece is wrapped in a known shell-quoting function.
    pub(super) fn part_quoted(&self, part: &Part<'_>) -> bool {
        self.part_wrapped_in(part, QUOTERS)
    }

    /// Whether a piece is wrapped in a function whose result cannot traverse directories.
    pub(super) fn part_path_safe(&self, part: &Part<'_>) -> bool {
        if self.part_wrapped_in(part, PATH_SAFE) {
            return true;
        }
        // `guard.check(x)` / `path_guard.check(x)`: a PathGuard by another name.
        let guarded = match part {
            Part::Expr(node) => self.callee(self.unwrap(*node)).is_some_and(|c| {
                let lower = c.to_ascii_lowercase();
                lower.contains("guard") && (lower.ends_with(".check") || lower.ends_with("::check"))
            }),
            _ => false,
        };
        guarded || self.part_name(part).is_some_and(|name| numeric_name(&name))
    }

    /// The name a piece goes by: a variable, field or property (`pid`, `self.pid`), a getter
    /// call (`self.init_pid()`), a macro argument that is one of those, or an inline name.
    fn part_name(&self, part: &Part<'_>) -> Option<String> {
        let text = match part {
            Part::Expr(node) => {
                let node = self.unwrap(*node);
                let node = match self.callee(node) {
                    Some(_) if self.call_arguments(node).is_empty() => node.child_by_field_name("function")?,
                    Some(_) => return None,
                    None => node,
                };
                compact(self.text(node))
            }
            Part::Tokens(first, last) => compact(self.span(first.start_byte(), last.end_byte())),
            Part::Inline(name) => name.clone(),
        };
        let text = text.trim_start_matches(['&', '*']);
        let text = text.strip_suffix("()").unwrap_or(text);
        let name = text.rsplit(['.', ':']).next().unwrap_or(text);
        (!name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')).then(|| name.to_string())
    }

    fn part_wrapped_in(&self, part: &Part<'_>, list: &[&str]) -> bool {
        match part {
            Part::Expr(node) => self.callee(self.unwrap(*node)).is_some_and(|c| callee_in(&c, list)),
            Part::Tokens(first, last) => {
                let text = self.span(first.start_byte(), last.end_byte());
                let text = text.trim_start_matches(['&', '*', '%', '?', ' ']);
                text.split_once('(').is_some_and(|(callee, _)| callee_in(&compact(callee), list))
            }
            Part::Inline(_) => false,
        }
    }

    /// Whether a piece names a secret (see [`Self::names_secret`]).
    pub(super) fn part_secret(&self, part: &Part<'_>) -> bool {
        match part {
            Part::Expr(node) => self.names_secret(*node),
            Part::Tokens(first, last) => {
                let text = self.span(first.start_byte(), last.end_byte());
                let text = compact(text);
                let text = text.trim_start_matches(['&', '*', '%', '?']);
                if let Some(var) = text.strip_prefix("std::env::var(").or_else(|| text.strip_prefix("env::var(")) {
                    let name = var.split(')').next().unwrap_or("");
                    return secret_name(literal_content(name));
                }
                let path_like = !text.is_empty()
                    && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b':');
                path_like && secret_name(text.rsplit(['.', ':']).next().unwrap_or(text))
            }
            Part::Inline(name) => secret_name(name),
        }
    }

    /// Whether an expression is a secret by name: a secret-named variable, field or property
    /// (`api_key`, `config.apiKey`, `self.token`), or an environment lookup of a secret-named
    /// variable (`process.env.OPENAI_API_KEY`, `env.API_KEY`, `os.environ["TOKEN"]`,
    /// `os.getenv("PASSWORD")`, `std::env::var("API_KEY")`, `$API_TOKEN`).
    pub(super) fn names_secret(&self, node: Node<'_>) -> bool {
        let node = self.unwrap(node);
        let text = self.text(node);
        match node.kind() {
            "identifier"
            | "property_identifier"
            | "shorthand_property_identifier"
            | "field_identifier"
            | "variable_name" => secret_name(text),
            "scoped_identifier" => node.child_by_field_name("name").is_some_and(|n| secret_name(self.text(n))),
            "member_expression" => node.child_by_field_name("property").is_some_and(|n| secret_name(self.text(n))),
            "field_expression" => node.child_by_field_name("field").is_some_and(|n| secret_name(self.text(n))),
            "attribute" => node.child_by_field_name("attribute").is_some_and(|n| secret_name(self.text(n))),
            // `${#TOKEN}` (length), `${!TOKEN}` (indirection), `${TOKEN:+set}` (a constant if set)
            // do not expand to the secret.
            "expansion" if text.starts_with("${#") || text.starts_with("${!") || text.contains('+') => false,
            "simple_expansion" | "expansion" => {
                named_children(node).iter().any(|c| c.kind() == "variable_name" && secret_name(self.text(*c)))
            }
            // `process.env["API_KEY"]`, `os.environ["API_KEY"]`
            "subscript_expression" | "subscript" => {
                let object = node.child_by_field_name("object").or_else(|| node.child_by_field_name("value"));
                let index = node.child_by_field_name("index").or_else(|| node.child_by_field_name("subscript"));
                match (object, index) {
                    (Some(object), Some(index)) => {
                        let object = compact(self.text(object));
                        (object.ends_with("env") || object.ends_with("environ"))
                            && self.is_literal(index)
                            && secret_name(literal_content(self.text(index)))
                    }
                    _ => false,
                }
            }
            _ => {
                // `os.getenv("TOKEN")`, `os.environ.get("TOKEN")`, `Deno.env.get("TOKEN")`,
                // `std::env::var("TOKEN")`
                let Some(callee) = self.callee(node) else {
                    return false;
                };
                let lookup = callee.ends_with("getenv")
                    || callee.ends_with("environ.get")
                    || callee.ends_with("env.get")
                    || callee.ends_with("env::var")
                    || callee.ends_with("env::var_os");
                lookup
                    && self
                        .call_arguments(node)
                        .first()
                        .is_some_and(|a| self.is_literal(*a) && secret_name(literal_content(self.text(*a))))
            }
        }
    }

    /// Whether a piece mentions randomness anywhere inside (bounded scan).
    pub(super) fn part_random(&self, part: &Part<'_>) -> bool {
        match part {
            Part::Expr(node) => {
                let mut visited = 0;
                !self.subtree_all(*node, &mut visited, |n| {
                    !(matches!(n.kind(), "identifier" | "property_identifier" | "field_identifier" | "type_identifier")
                        && is_random_word(self.text(n)))
                })
            }
            Part::Tokens(first, last) => is_random_word(self.span(first.start_byte(), last.end_byte())),
            Part::Inline(name) => is_random_word(name),
        }
    }
}

/// The `{...}` placeholders of a Rust format string: whether each is at the very start, and
/// its spec (between the braces). `{{` and `}}` are escapes.
fn placeholders(content: &str) -> Vec<(bool, &str)> {
    let mut out = Vec::new();
    let bytes = content.as_bytes();
    let mut i = 0;
    while i < bytes.len() && out.len() < MAX_PARTS {
        match bytes[i] {
            b'{' if bytes.get(i + 1) == Some(&b'{') => i += 2,
            b'{' => {
                let Some(close) = content[i + 1..].find('}') else {
                    break;
                };
                out.push((i == 0, &content[i + 1..i + 1 + close]));
                i += close + 2;
            }
            _ => i += 1,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names() {
        for name in [
            "api_key",
            "apiKey",
            "API_KEY",
            "OPENAI_API_KEY",
            "STRIPE_KEY",
            "token",
            "githubToken",
            "accesstoken",
            "DB_PASSWORD",
            "passwd",
            "clientSecret",
            "privateKey",
            "credentials",
            "authorization",
            "APIKey",
        ] {
            assert!(secret_name(name), "{name} should be secret-named");
        }
        for name in [
            "key",
            "keys",
            "monkey",
            "sortKey",
            "cacheKey",
            "tokenizer",
            "max_tokens",
            "token_count",
            "passwordPolicy",
            "secretName",
            "apiKeyHeader",
            "user",
            "",
            "____",
            "KEY",
        ] {
            assert!(!secret_name(name), "{name} should not be secret-named");
        }
    }

    #[test]
    fn every_secret_name_contains_a_secret_substring() {
        // The pre-parse filter skips files without any of SECRET_SUBSTRINGS: that is only
        // sound if no secret name escapes them. Build names from every word, qualifier and
        // separator combination (and casing) and check.
        let mut words: Vec<String> = SECRET_WORDS.iter().map(|w| (*w).to_string()).collect();
        words.extend(["key", "github", "x", "Token", "KEY", "Key", "ghToken"].map(String::from));
        words.extend(KEY_QUALIFIERS.iter().map(|w| (*w).to_string()));
        let separators = ["", "_", "-", "__", "$"];
        let case = |w: &str, how: usize| match how {
            0 => w.to_string(),
            1 => w.to_ascii_uppercase(),
            _ => {
                let mut c = w.chars();
                c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
            }
        };
        let mut checked = 0;
        for a in &words {
            for b in &words {
                for sep in separators {
                    for how_a in 0..3 {
                        for how_b in 0..3 {
                            let name = format!("{}{sep}{}", case(a, how_a), case(b, how_b));
                            if secret_name(&name) {
                                checked += 1;
                                let lower = name.to_ascii_lowercase();
                                assert!(
                                    SECRET_SUBSTRINGS.iter().any(|s| lower.contains(s)),
                                    "{name} is secret-named but contains no secret substring"
                                );
                            }
                        }
                    }
                }
            }
        }
        assert!(checked > 1000);
    }

    #[test]
    fn shell_programs() {
        for name in ["sh", "/bin/sh", "bash", "/usr/bin/zsh", "cmd.exe", "PowerShell", "pwsh"] {
            assert!(is_shell_program(name), "{name}");
        }
        for name in ["ls", "shell", "/bin/ls", "", "bashful"] {
            assert!(!is_shell_program(name), "{name}");
        }
    }

    #[test]
    fn format_placeholders() {
        assert_eq!(placeholders("ls {}"), vec![(false, "")]);
        assert_eq!(placeholders("{x}/{0:?}"), vec![(true, "x"), (false, "0:?")]);
        assert_eq!(placeholders("{{not}} {y}"), vec![(false, "y")]);
        assert_eq!(placeholders("{unclosed"), vec![]);
        assert_eq!(placeholders("é{}ü"), vec![(false, "")]);
    }

    #[test]
    fn literal_contents() {
        assert_eq!(literal_content("\"API_KEY\""), "API_KEY");
        assert_eq!(literal_content("r#\"x\"#"), "x");
        assert_eq!(literal_content("f'x'"), "x");
        assert_eq!(literal_content("`x`"), "x");
        assert_eq!(literal_content("\""), "");
    }
}
