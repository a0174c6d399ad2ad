//! The `response` text: the column names and the first rows of a result set as CSV
//! (Packetbeat's `parseMysqlResponse` and `DumpInCSVFormat`, which writes with Go's
//! `encoding/csv`).
//!
//! The result set is read as the stream parser read it: a column definition ends at the first
//! EOF packet, and a row is a run of length-encoded strings (`0xfb`: `NULL`). What does not
//! read that way ends the text where it stops (a binary row of `COM_STMT_EXECUTE` reads as
//! whatever strings its bytes make, as in Packetbeat).

use super::parser::read_lstring;

/// Column names and rows, each cell as bytes.
pub type ResultSet = (Vec<Vec<u8>>, Vec<Vec<Vec<u8>>>);

fn length_at(data: &[u8], at: usize) -> Option<usize> {
    let b = data.get(at..at.checked_add(3)?)?;
    Some(usize::from(b[0]) | usize::from(b[1]) << 8 | usize::from(b[2]) << 16)
}

/// Column names and at most `max_rows` rows (at least one: Packetbeat counts after storing a
/// row) of at most `max_row_length` bytes each, from a complete response message.
pub fn parse_response(data: &[u8], max_rows: i64, max_row_length: i64) -> ResultSet {
    let empty = || (Vec::new(), Vec::new());
    let Some(length) = length_at(data, 0) else {
        return empty();
    };
    if length < 1 || data.len() < 5 {
        return empty();
    }
    let mut fields = Vec::new();
    let mut rows = Vec::new();
    if data[4] == 0x00 || data[4] == 0xff {
        // OK and ERR packets have no rows.
        return (fields, rows);
    }
    let max_row_length = usize::try_from(max_row_length).unwrap_or(0);
    let mut offset = 5usize;
    // Column definitions, up to the EOF packet.
    loop {
        let Some(length) = length_at(data, offset) else {
            return empty();
        };
        if data.len() - offset < 5 {
            return empty();
        }
        if data[offset + 4] == 0xfe {
            offset += length + 4;
            break;
        }
        // catalog, schema, table, original table, name, original name
        let mut at = offset + 4;
        let mut name: &[u8] = &[];
        for i in 0..6 {
            match read_lstring(data, at) {
                Ok(Some((s, next))) => {
                    if i == 4 {
                        name = s;
                    }
                    at = next;
                }
                _ => return (fields, rows),
            }
        }
        fields.push(name.to_vec());
        offset += length + 4;
        if data.len() < offset {
            return empty();
        }
    }
    // Rows, up to the EOF packet.
    while offset < data.len() {
        if data.len() - offset < 5 || data[offset + 4] == 0xfe {
            break;
        }
        let Some(length) = length_at(data, offset) else {
            break;
        };
        let start = offset + 4;
        let mut off = start;
        let mut row: Vec<Vec<u8>> = Vec::new();
        let mut row_len = 0usize;
        while off < start + length {
            let text: &[u8] = match data.get(off) {
                Some(0xfb) => {
                    off += 1;
                    b"NULL"
                }
                // Past the bytes (a row cut short): what was read so far.
                None => return (fields, rows),
                Some(_) => match read_lstring(data, off) {
                    Ok(Some((s, next))) => {
                        off = next;
                        s
                    }
                    _ => return (fields, rows),
                },
            };
            if row_len < max_row_length {
                let keep = text.len().min(max_row_length - row_len);
                row.push(text[..keep].to_vec());
                row_len += keep;
            }
        }
        rows.push(row);
        if rows.len() as i64 >= max_rows {
            break;
        }
        offset += length + 4;
    }
    (fields, rows)
}

/// Go's `encoding/csv` rule for quoting a field.
fn needs_quotes(field: &[u8]) -> bool {
    if field.is_empty() {
        return false;
    }
    if field == b"\\."
        || field
            .iter()
            .any(|&c| matches!(c, b'\n' | b'\r' | b'"' | b','))
    {
        return true;
    }
    // A field that starts with a space (`unicode.IsSpace` of its first rune).
    let head = &field[..field.len().min(4)];
    let first = match std::str::from_utf8(head) {
        Ok(s) => s.chars().next(),
        Err(e) => std::str::from_utf8(&head[..e.valid_up_to()])
            .ok()
            .and_then(|s| s.chars().next()),
    };
    first.is_some_and(char::is_whitespace)
}

fn write_record(out: &mut Vec<u8>, cells: &[Vec<u8>]) {
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if !needs_quotes(cell) {
            out.extend_from_slice(cell);
            continue;
        }
        out.push(b'"');
        for &c in cell {
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

/// Replaces `\n` (and in rows `\r`) by their escapes, as `DumpInCSVFormat` does before writing.
fn escaped(cell: &[u8], cr_too: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(cell.len());
    for &c in cell {
        match c {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' if cr_too => out.extend_from_slice(b"\\r"),
            _ => out.push(c),
        }
    }
    out
}

/// `DumpInCSVFormat`: the names line (when there are columns), then a line per row.
pub fn dump_csv(fields: &[Vec<u8>], rows: &[Vec<Vec<u8>>]) -> Vec<u8> {
    let mut out = Vec::new();
    if !fields.is_empty() {
        let names: Vec<Vec<u8>> = fields.iter().map(|f| escaped(f, false)).collect();
        write_record(&mut out, &names);
    }
    for row in rows {
        let cells: Vec<Vec<u8>> = row.iter().map(|c| escaped(c, true)).collect();
        write_record(&mut out, &cells);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_as_go_does() {
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
            String::from_utf8(dump_csv(&names, &rows)).unwrap(),
            "\"n\r\",m\\nn\n\"a,b\",,\" x\",\"q\"\"\"\nline\\nbreak,cr\\r,\"\\.\"\n\n"
        );
        // A non-breaking space is a space to Go; invalid UTF-8 is not.
        assert!(needs_quotes("\u{a0}x".as_bytes()));
        assert!(!needs_quotes(b"\xffx"));
    }
}
