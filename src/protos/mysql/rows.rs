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
