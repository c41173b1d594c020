//! Top-level item boundaries of a Rust file, found lexically (no parse): where the file can be
//! cut into pieces that each parse on their own.
//!
//! Parsing dominates the cost of syntax rules (tree-sitter-rust runs at a few MB/s per core), and
//! every match lies inside one top-level item that holds an anchor literal. So instead of parsing
//! a whole file, the matcher parses only the items holding anchors. Finding them needs only a
//! lexer that knows where brackets do not count: comments (nested block comments too), string
//! and byte-string literals with escapes, raw strings with any number of `#`, and character
//! literals, told apart from lifetimes and labels.
//!
//! Items nest: the bodies of `mod`, `impl`, `trait` and `extern` blocks hold items too, and
//! are cut the same way (an `impl` block of fifty methods becomes fifty pieces, plus its header
//! line and its closing brace). Where items are held, a boundary follows every `;`, every `}`
//! that ends an item (unless a `;` follows it, as in `use a::{b, c};`), the `{` that opens a
//! block of items, and precedes the `}` that closes one.
//!
//! The split is trusted only as far as it proves itself: the matcher falls back to parsing the
//! whole file when this lexer gives up (unbalanced brackets, an unterminated literal) or when a
//! piece holding an anchor does not parse cleanly (such as the header `impl X {` on its own).

/// The item keyword last seen where items are held, since the last boundary.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ItemKind {
    /// `mod`, `impl`, `trait`, `extern`: its body holds items.
    Block,
    /// `fn`, `struct`, `enum`, ...: its body does not (and `fn f() -> impl Trait {` stays a function).
    Other,
}

/// The boundaries of `text`'s items: sorted byte offsets, the first 0 and the last
/// `text.len()`, so that `bounds[i]..bounds[i + 1]` is the i-th piece. `None` when the text
/// does not lex as balanced Rust.
pub(super) fn rust_item_bounds(text: &str) -> Option<Vec<usize>> {
    let bytes = text.as_bytes();
    let mut bounds = vec![0];
    // Per open bracket: whether its body holds items. The file itself does.
    let mut open: Vec<bool> = Vec::new();
    let holds_items = |open: &[bool]| open.last().copied().unwrap_or(true);
    let mut kind: Option<ItemKind> = None;
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        i = match byte {
            b'/' if bytes.get(i + 1) == Some(&b'/') => line_end(bytes, i),
            b'/' if bytes.get(i + 1) == Some(&b'*') => block_comment_end(bytes, i)?,
            b'"' => string_end(bytes, i + 1)?,
            b'r' | b'b' | b'c' if starts_raw_string(bytes, i) => raw_string_end(bytes, i)?,
            b'\'' => char_or_lifetime_end(text, i),
            b if is_ident_byte(b) && (i == 0 || !is_ident_byte(bytes[i - 1])) => {
                let end = i + bytes[i..].iter().position(|&b| !is_ident_byte(b)).unwrap_or(bytes.len() - i);
                if holds_items(&open) {
                    match &bytes[i..end] {
                        b"mod" | b"impl" | b"trait" | b"extern" => {
                            kind.get_or_insert(ItemKind::Block);
                        }
                        b"fn" | b"struct" | b"enum" | b"union" | b"const" | b"static" | b"type" | b"macro_rules" => {
                            kind = Some(ItemKind::Other);
                        }
                        _ => {}
                    }
                }
                end
            }
            b'{' => {
                let block = holds_items(&open) && kind == Some(ItemKind::Block);
                open.push(block);
                if block {
                    bounds.push(i + 1);
                    kind = None;
                }
                i + 1
            }
            b'(' | b'[' => {
                open.push(false);
                i + 1
            }
            b'}' | b')' | b']' => {
                if open.pop()? {
                    bounds.push(i);
                }
                if holds_items(&open) && byte == b'}' && next_significant(bytes, i + 1) != Some(b';') {
                    bounds.push(i + 1);
                    kind = None;
                }
                i + 1
            }
            b';' if holds_items(&open) => {
                bounds.push(i + 1);
                kind = None;
                i + 1
            }
            _ => i + 1,
        };
    }
    if !open.is_empty() {
        return None;
    }
    bounds.dedup();
    if bounds.last() != Some(&bytes.len()) {
        bounds.push(bytes.len());
    }
    Some(bounds)
}

const fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// The offset of the `\n` ending the line comment at `start` (or the end of the text).
fn line_end(bytes: &[u8], start: usize) -> usize {
    bytes[start..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |n| start + n)
}

/// Just past the block comment opening at `start`; Rust block comments nest.
fn block_comment_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut level = 0u32;
    let mut i = start;
    while i + 1 < bytes.len() {
        match (bytes[i], bytes[i + 1]) {
            (b'/', b'*') => {
                level += 1;
                i += 2;
            }
            (b'*', b'/') => {
                level -= 1;
                i += 2;
                if level == 0 {
                    return Some(i);
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// Just past the closing quote of a (byte) string whose contents start at `start`.
fn string_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut i = start;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// `r"`, `r#"`, `br"`, `cr#"`...: a raw string starts at `i` (and not inside an identifier,
/// where `r#` is a raw identifier and `br` an ordinary name).
fn starts_raw_string(bytes: &[u8], i: usize) -> bool {
    if i > 0 && is_ident_byte(bytes[i - 1]) {
        return false;
    }
    let mut j = i;
    if matches!(bytes[j], b'b' | b'c') {
        j += 1;
    }
    if bytes.get(j) != Some(&b'r') {
        return false;
    }
    j += 1;
    while bytes.get(j) == Some(&b'#') {
        j += 1;
    }
    bytes.get(j) == Some(&b'"')
}

/// Just past the raw string starting at `i` (checked by [`starts_raw_string`]).
fn raw_string_end(bytes: &[u8], i: usize) -> Option<usize> {
    let open_quote = i + bytes[i..].iter().position(|&b| b == b'"')?;
    let hashes = bytes[i..open_quote].iter().filter(|&&b| b == b'#').count();
    let mut j = open_quote + 1;
    while j < bytes.len() {
        if bytes[j] == b'"'
            && bytes.len() - (j + 1) >= hashes
            && bytes[j + 1..j + 1 + hashes].iter().all(|&b| b == b'#')
        {
            return Some(j + 1 + hashes);
        }
        j += 1;
    }
    None
}

/// Just past the character literal at `i` (`'x'`, `'\n'`, `'\u{1F600}'`, `'}'`), or just past
/// the quote of a lifetime or label (`'a`, `'static`, `'outer:`).
fn char_or_lifetime_end(text: &str, i: usize) -> usize {
    let bytes = text.as_bytes();
    if bytes.get(i + 1) == Some(&b'\\') {
        // An escape: the closing quote is a few bytes on (`'\''` has its own quote first).
        let from = i + 3;
        let close = bytes.get(from..).and_then(|rest| rest.iter().take(12).position(|&b| b == b'\''));
        return close.map_or(i + 1, |n| from + n + 1);
    }
    let Some(c) = text.get(i + 1..).and_then(|rest| rest.chars().next()) else {
        return i + 1;
    };
    let after = i + 1 + c.len_utf8();
    if bytes.get(after) == Some(&b'\'') { after + 1 } else { i + 1 }
}

/// The next byte that is not whitespace.
fn next_significant(bytes: &[u8], from: usize) -> Option<u8> {
    bytes.get(from..)?.iter().copied().find(|b| !b.is_ascii_whitespace())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pieces of `text`, trimmed, for readable assertions.
    fn pieces(text: &str) -> Option<Vec<&str>> {
        let bounds = rust_item_bounds(text)?;
        Some(bounds.windows(2).map(|w| text[w[0]..w[1]].trim()).filter(|p| !p.is_empty()).collect())
    }

    #[test]
    fn cuts_between_items() {
        let text = "use std::{fs, io};\n\nstruct A;\n\n/// Doc.\n#[derive(Debug)]\nstruct B { x: u8 }\n\nimpl B {\n    fn f(&self) -> u8 { self.x }\n}\nfn g() {}\n";
        assert_eq!(
            pieces(text).unwrap(),
            [
                "use std::{fs, io};",
                "struct A;",
                "/// Doc.\n#[derive(Debug)]\nstruct B { x: u8 }",
                "impl B {",
                "fn f(&self) -> u8 { self.x }",
                "}",
                "fn g() {}",
            ]
        );
    }

    #[test]
    fn blocks_of_items_are_cut_inside_and_function_bodies_are_not() {
        let text = concat!(
            "pub(crate) mod m {\n    use x::y;\n    #[cfg(test)]\n    unsafe impl<T: Fn() -> u8> Send for S<T> where T: Copy {\n",
            "        const N: usize = 1;\n        fn a(&self) { let v = vec![1]; }\n    }\n}\n",
            "fn f() -> impl Iterator<Item = u8> { let a = 1; std::iter::empty() }\n",
            "trait T { fn g(&self); }\n",
            "extern \"C\" { fn h(); }\n",
            "macro_rules! m { () => { fn inner() {} }; }\n",
            "static S: W = W { a: 1 };\n",
        );
        assert_eq!(
            pieces(text).unwrap(),
            [
                "pub(crate) mod m {",
                "use x::y;",
                "#[cfg(test)]\n    unsafe impl<T: Fn() -> u8> Send for S<T> where T: Copy {",
                "const N: usize = 1;",
                "fn a(&self) { let v = vec![1]; }",
                "}",
                "}",
                "fn f() -> impl Iterator<Item = u8> { let a = 1; std::iter::empty() }",
                "trait T {",
                "fn g(&self);",
                "}",
                "extern \"C\" {",
                "fn h();",
                "}",
                "macro_rules! m { () => { fn inner() {} }; }",
                "static S: W = W { a: 1 };",
            ]
        );
    }

    #[test]
    fn brackets_inside_literals_and_comments_do_not_count() {
        let text = concat!(
            "fn a() { let s = \"}\"; let c = '}'; let d = '\\''; let e = b'{'; }\n",
            "fn b() { let r = r#\"}\"# ; let q = br\"{\"; /* } /* nested { */ */ }\n",
            "// a comment with } and ;\n",
            "fn c<'a>(x: &'a str) -> &'a str { 'outer: loop { break 'outer x; } }\n",
            "fn d() { let u = '\\u{7D}'; let ch = 'é'; let s = \"\\\"}\"; }\n",
        );
        let got = pieces(text).unwrap();
        assert_eq!(got.len(), 4, "{got:#?}");
        assert!(got[0].starts_with("fn a()") && got[0].ends_with("let e = b'{'; }"));
        assert!(got[2].starts_with("// a comment"));
    }

    #[test]
    fn raw_identifiers_are_not_raw_strings() {
        assert_eq!(
            pieces("fn r#type() {}\nfn br() { bar(\"x\") }").unwrap(),
            ["fn r#type() {}", "fn br() { bar(\"x\") }"]
        );
    }

    #[test]
    fn gives_up_on_unbalanced_or_unterminated_text() {
        assert_eq!(rust_item_bounds("fn a() {"), None);
        assert_eq!(rust_item_bounds("fn a() {}}"), None);
        assert_eq!(rust_item_bounds("fn a() { \"open }"), None);
        assert_eq!(rust_item_bounds("fn a() { /* open }"), None);
        assert_eq!(rust_item_bounds("const S: &str = r##\"x\"#;"), None);
    }

    #[test]
    fn bounds_cover_the_whole_text() {
        for text in ["", "fn a() {}", "fn a() {}\n// trailing", "x;y;"] {
            let bounds = rust_item_bounds(text).unwrap();
            assert_eq!(bounds.first(), Some(&0));
            assert_eq!(bounds.last(), Some(&text.len()));
            assert!(bounds.windows(2).all(|w| w[0] <= w[1]));
        }
    }
}
