//! The `response` text of the SQL analyzers (MySQL, PostgreSQL): libbeat's `DumpInCSVFormat`
//! (the column names, when there are any, then each stored row) written as Go's
//! `encoding/csv` writes records.

/// The column names and rows as Packetbeat's `response` field has them. Line breaks are
/// escaped first (`\n` in names; `\n` and `\r` in values), as `DumpInCSVFormat` does.
pub fn dump(fields: &[Vec<u8>], rows: &[Vec<Vec<u8>>]) -> Vec<u8> {
    let mut out = Vec::new();
    if !fields.is_empty() {
        write_record(&mut out, fields.iter().map(|f| escape(f, false)));
    }
    for row in rows {
        write_record(&mut out, row.iter().map(|v| escape(v, true)));
    }
    out
}

fn escape(v: &[u8], cr: bool) -> std::borrow::Cow<'_, [u8]> {
    if !v.iter().any(|&c| c == b'\n' || (cr && c == b'\r')) {
        return v.into();
    }
    let mut o = Vec::with_capacity(v.len() + 4);
    for &c in v {
        match c {
            b'\n' => o.extend_from_slice(b"\\n"),
            b'\r' if cr => o.extend_from_slice(b"\\r"),
            c => o.push(c),
        }
    }
    o.into()
}

/// `csv.Writer.Write` with a comma and `\n` line ends.
fn write_record<'a>(out: &mut Vec<u8>, record: impl Iterator<Item = std::borrow::Cow<'a, [u8]>>) {
    for (n, field) in record.enumerate() {
        if n > 0 {
            out.push(b',');
        }
        if !needs_quotes(&field) {
            out.extend_from_slice(&field);
            continue;
        }
        out.push(b'"');
        for &c in field.iter() {
            if c == b'"' {
                out.extend_from_slice(b"\"\"");
            } else {
                out.push(c);
            }
        }
        out.push(b'"');
    }
    out.push(b'\n');
}

/// `fieldNeedsQuotes`: a comma, quote or line break, the `\.` terminator, or a leading space
/// (Unicode White_Space, as Go's `unicode.IsSpace`).
fn needs_quotes(f: &[u8]) -> bool {
    if f.is_empty() {
        return false;
    }
    if f == b"\\." || f.iter().any(|&c| matches!(c, b'\n' | b'\r' | b'"' | b',')) {
        return true;
    }
    first_char(f).is_some_and(char::is_whitespace)
}

/// The first character when `f` starts with valid UTF-8 (Go decodes an invalid start as
/// U+FFFD, which is not a space).
fn first_char(f: &[u8]) -> Option<char> {
    let head = &f[..f.len().min(4)];
    let valid = match std::str::from_utf8(head) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&head[..e.valid_up_to()]).ok()?,
    };
    valid.chars().next()
}

#[cfg(test)]
mod tests {
    use super::{dump, needs_quotes};

    #[test]
    fn escapes_line_breaks_and_quotes_as_go_does() {
        let rows = vec![
            vec![
                b"a,b".to_vec(),
                b"".to_vec(),
                b" x".to_vec(),
                b"q\"".to_vec(),
            ],
            vec![b"line\nbreak".to_vec(), b"cr\r".to_vec(), b"\\.".to_vec()],
            vec![],
        ];
        let names = vec![b"n\r".to_vec(), b"m\nn".to_vec()];
        assert_eq!(
            String::from_utf8(dump(&names, &rows)).unwrap(),
            "\"n\r\",m\\nn\n\"a,b\",,\" x\",\"q\"\"\"\nline\\nbreak,cr\\r,\"\\.\"\n\n"
        );
        // A non-breaking space is a space to Go; invalid UTF-8 is not.
        assert!(needs_quotes("\u{a0}x".as_bytes()));
        assert!(!needs_quotes(b"\xffx"));
    }

    fn v(s: &[&str]) -> Vec<Vec<u8>> {
        s.iter().map(|x| x.as_bytes().to_vec()).collect()
    }

    #[test]
    fn as_go_writes_it() {
        assert_eq!(dump(&[], &[]), b"");
        assert_eq!(dump(&[], &[vec![]]), b"\n");
        assert_eq!(
            dump(&v(&["a", "b"]), &[v(&["mea", "meb"]), v(&["", "x"])]),
            b"a,b\nmea,meb\n,x\n"
        );
        assert_eq!(
            dump(
                &v(&["n\nm"]),
                &[v(&["1,2"]), v(&["say \"hi\""]), v(&[" lead"]), v(&["\\."])]
            ),
            b"n\\nm\n\"1,2\"\n\"say \"\"hi\"\"\"\n\" lead\"\n\"\\.\"\n"
        );
        // Line breaks in values are escaped, so they need no quotes.
        assert_eq!(dump(&[], &[v(&["a\r\nb"])]), b"a\\r\\nb\n");
        // A carriage return in a column name is kept, and quoted.
        assert_eq!(dump(&v(&["a\rb"]), &[]), b"\"a\rb\"\n");
        // A no-break space leads: quoted; invalid UTF-8 does not.
        assert_eq!(dump(&[], &[v(&["\u{a0}x"])]), "\"\u{a0}x\"\n".as_bytes());
        assert_eq!(dump(&[], &[vec![vec![0xff, b' ']]]), b"\xff \n");
    }
}
