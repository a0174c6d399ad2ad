//! The statements of a simple Query and the method of a statement.
//!
//! Packetbeat splits a Query's text at every `;` (`pgsqlQueryParser`) and takes the method up
//! to the first space (`getQueryMethod`). A `;` inside a string literal, a quoted identifier,
//! a dollar-quoted body or a comment separates nothing, though: split there, one statement
//! becomes two requests for one response, and every later response of the connection is
//! paired with the wrong request. So the split here skips those, as the server's lexer does,
//! and drops pieces that hold only comments (the server runs nothing for them). On the
//! statements Packetbeat's captures and tests use, both splits agree.

/// The statements of `query`, trimmed, in order; empty ones dropped.
pub fn statements(query: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    // Whether the current piece holds anything but whitespace and comments.
    let mut content = false;
    let n = query.len();
    while i < n {
        let c = query[i];
        match c {
            b';' => {
                push(&mut out, &query[start..i], content);
                start = i + 1;
                content = false;
                i += 1;
            }
            b'-' if query.get(i + 1) == Some(&b'-') => {
                i = query[i..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(n, |p| i + p + 1);
            }
            b'/' if query.get(i + 1) == Some(&b'*') => i = block_comment_end(query, i),
            b'\'' => {
                content = true;
                let escapes = i > 0
                    && matches!(query[i - 1], b'E' | b'e')
                    && (i < 2 || !is_ident(query[i - 2]));
                i = quoted_end(query, i, b'\'', escapes);
            }
            b'"' => {
                content = true;
                i = quoted_end(query, i, b'"', false);
            }
            b'$' if i == 0 || !is_ident(query[i - 1]) => {
                content = true;
                i = dollar_end(query, i);
            }
            c => {
                content |= !c.is_ascii_whitespace();
                i += 1;
            }
        }
    }
    push(&mut out, &query[start..], content);
    out
}

fn push<'a>(out: &mut Vec<&'a [u8]>, piece: &'a [u8], content: bool) {
    if content {
        out.push(piece.trim_ascii());
    }
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

/// The index after the `/* … */` comment starting at `i` (they nest in PostgreSQL).
fn block_comment_end(q: &[u8], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < q.len() {
        if q[i..].starts_with(b"/*") {
            depth += 1;
            i += 2;
        } else if q[i..].starts_with(b"*/") {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    q.len()
}

/// The index after the literal opened by `quote` at `i`; a doubled quote is part of it, and in
/// an escape string (`E'…'`) so is a backslash-escaped character.
fn quoted_end(q: &[u8], mut i: usize, quote: u8, escapes: bool) -> usize {
    i += 1;
    while i < q.len() {
        let c = q[i];
        if escapes && c == b'\\' {
            i += 2;
        } else if c == quote {
            if q.get(i + 1) == Some(&quote) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    q.len()
}

/// The index after the dollar-quoted string (`$tag$ … $tag$`) starting at `i`, or after the
/// `$` when it opens none (a parameter such as `$1`).
fn dollar_end(q: &[u8], i: usize) -> usize {
    let rest = &q[i + 1..];
    let tag_len = rest
        .iter()
        .position(|&c| !(c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80))
        .unwrap_or(rest.len());
    let opens =
        rest.get(tag_len) == Some(&b'$') && rest.first().is_none_or(|c| !c.is_ascii_digit());
    if !opens {
        return i + 1;
    }
    let delim = &q[i..i + tag_len + 2];
    let body = i + delim.len();
    q[body..]
        .windows(delim.len())
        .position(|w| w == delim)
        .map_or(q.len(), |p| body + p + delim.len())
}

/// The statement's method: its first word upper-cased (`SELECT`), after any leading comments.
/// Packetbeat takes everything up to the first space, so `select\n*` would be `SELECT\N*`;
/// the leading keyword is the method, so that is what is taken here. A statement that does not
/// start with a word (`(SELECT 1)`) keeps Packetbeat's rule.
pub fn method(stmt: &str) -> String {
    let b = stmt.as_bytes();
    let mut i = 0;
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if b[i..].starts_with(b"--") {
            i = b[i..]
                .iter()
                .position(|&c| c == b'\n')
                .map_or(b.len(), |p| i + p + 1);
        } else if b[i..].starts_with(b"/*") {
            i = block_comment_end(b, i);
        } else {
            break;
        }
    }
    let rest = &stmt[i..];
    let word = rest
        .bytes()
        .position(|c| !(c.is_ascii_alphanumeric() || c == b'_'))
        .unwrap_or(rest.len());
    if word > 0 {
        return rest[..word].to_ascii_uppercase();
    }
    let end = rest.find(' ').filter(|&e| e > 0).unwrap_or(rest.len());
    rest[..end].to_uppercase()
}
