//! The parameters of `COM_STMT_EXECUTE` as text (Packetbeat's `parseMysqlExecuteStatement`).
//!
//! The packet holds the statement id, flags, iteration count, the NULL bitmap, the
//! "new parameters bound" flag, then (when bound) each parameter's type and unsigned flag, then
//! the values. The types are remembered with the statement for executes that do not send them
//! again. As in Packetbeat the values are read by type only (a NULL still reads a value by its
//! type), the list is given up at a type Packetbeat does not know, and the text of each type
//! is Packetbeat's (`2017/7/28 0:0:0` for dates; `TYPE_FLOAT`, `TYPE_DOUBLE`, `TYPE_TIME`,
//! `TYPE_NULL` for the values it does not decode).
//!
//! Integers follow their unsigned flag: Packetbeat gives up on the whole list at an unsigned
//! parameter (which clients send for any non-negative number) and prints `TINY`, `SHORT` and
//! `LONG` as unsigned whatever the flag (-5 as `4294967291`).

/// A prepared statement as the connection remembers it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Statement {
    /// The statement's text (trimmed).
    pub query: Vec<u8>,
    pub num_params: usize,
    /// Parameter types and unsigned flags sent with the first execute.
    pub param_types: Vec<(u8, bool)>,
}

/// The parameters of the execute request `data` (the whole packet, header included) of
/// statement `st`; empty when they cannot be read.
pub fn parse_execute(data: &[u8], st: &mut Statement) -> Vec<String> {
    parse(data, st).unwrap_or_default()
}

fn u16_at(data: &[u8], at: usize) -> Option<u16> {
    let b = data.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([b[0], b[1]]))
}

fn parse(data: &[u8], st: &mut Statement) -> Option<Vec<String>> {
    let n = data.len();
    if n < 14 {
        return None;
    }
    let nparam = st.num_params;
    if nparam == 0 {
        return None;
    }
    // header, command, statement id, flags, iteration count, NULL bitmap
    let mut offset = 4 + 1 + 4 + 1 + 4 + nparam.div_ceil(8);
    let bound = *data.get(offset)?;
    offset += 1;
    let mut p = offset;
    let types = if bound == 1 {
        p += nparam * 2;
        if n <= p {
            return None;
        }
        let mut types = Vec::with_capacity(nparam);
        for pair in data[offset..p].chunks_exact(2) {
            types.push((pair[0], pair[1] & 0x80 != 0));
        }
        st.param_types = types.clone();
        types
    } else if st.param_types.is_empty() {
        return None;
    } else {
        st.param_types.clone()
    };
    let mut out = Vec::with_capacity(nparam);
    for &(ty, unsigned) in types.iter().take(nparam) {
        match ty {
            // TINY, SHORT, LONG, LONGLONG: decimal, signed unless flagged unsigned.
            0x01 | 0x02 | 0x03 | 0x08 => {
                let width = match ty {
                    0x01 => 1,
                    0x02 => 2,
                    0x03 => 4,
                    _ => 8,
                };
                let b = data.get(p..p + width)?;
                let mut v = [0u8; 8];
                v[..width].copy_from_slice(b);
                let raw = u64::from_le_bytes(v);
                out.push(if unsigned {
                    raw.to_string()
                } else {
                    // Sign-extend from the value's width.
                    let shift = 64 - 8 * width as u32;
                    (((raw << shift) as i64) >> shift).to_string()
                });
                p += width;
            }
            0x04 => {
                out.push("TYPE_FLOAT".into());
                p += 4;
            }
            0x05 => {
                out.push("TYPE_DOUBLE".into());
                // A double is 8 bytes (Packetbeat skips 4 and misreads what follows).
                p += 8;
            }
            0x06 => out.push("TYPE_NULL".into()),
            // TIMESTAMP, DATE, DATETIME: year/month/day hour:minute:second, the parts the
            // value's length holds (microseconds are not shown).
            0x07 | 0x0a | 0x0c => {
                let len = usize::from(*data.get(p)?);
                if n < p + len + 1 {
                    return None;
                }
                p += 1;
                let v = &data[p..p + len];
                let part = |i: usize| v[i].to_string();
                let (mut year, mut month, mut day) = (String::new(), String::new(), String::new());
                let (mut hour, mut minute, mut second) =
                    (String::new(), String::new(), String::new());
                if len >= 2 {
                    year = u16::from_le_bytes([v[0], v[1]]).to_string();
                }
                if len >= 4 {
                    (month, day) = (part(2), part(3));
                }
                if len >= 7 {
                    (hour, minute, second) = (part(4), part(5), part(6));
                }
                out.push(format!("{year}/{month}/{day} {hour}:{minute}:{second}"));
                p += len;
            }
            // TIME: not decoded.
            0x0b => {
                let len = usize::from(*data.get(p)?);
                if n < p + len + 1 {
                    return None;
                }
                out.push("TYPE_TIME".into());
                p += 1 + len;
            }
            // NEWDECIMAL, BLOB, VAR_STRING, STRING: length-prefixed text.
            0xf6 | 0xfc | 0xfd | 0xfe => {
                let first = *data.get(p)?;
                p += 1;
                let (len, width) = match first {
                    0xfc => (usize::from(u16_at(data, p)?), 2),
                    0xfd => {
                        let b = data.get(p..p + 3)?;
                        (
                            usize::from(b[0]) | usize::from(b[1]) << 8 | usize::from(b[2]) << 16,
                            3,
                        )
                    }
                    l => (usize::from(l), 0),
                };
                p += width;
                let v = data.get(p..p + len)?;
                out.push(String::from_utf8_lossy(v).into_owned());
                p += len;
            }
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An execute packet of `n` parameters, types sent, then the values.
    fn execute(types: &[u8], values: &[u8]) -> Vec<u8> {
        let mut p = vec![0, 0, 0, 0, 23, 1, 0, 0, 0, 0, 1, 0, 0, 0];
        p.extend(vec![0; types.len().div_ceil(8)]);
        p.push(1);
        for &t in types {
            p.extend([t, 0]);
        }
        p.extend_from_slice(values);
        p
    }

    fn stmt(n: usize) -> Statement {
        Statement {
            num_params: n,
            ..Default::default()
        }
    }

    #[test]
    fn every_type_packetbeat_reads() {
        let long = vec![b'z'; 300];
        let values = [
            &[200u8][..],
            &0xfffeu16.to_le_bytes(),
            &u32::MAX.to_le_bytes(),
            &u64::MAX.to_le_bytes(),
            &1.5f32.to_le_bytes(),
            &2.5f64.to_le_bytes(),
            &[],
            &[4, 0xd0, 0x07, 2, 29],
            &[8, 0, 0, 0, 0, 1, 2, 3, 4],
            &[0xfc, 0x2c, 0x01],
            &long,
            &[2, b'o', b'k'],
        ]
        .concat();
        let types = [1, 2, 3, 8, 4, 5, 6, 0x0a, 0x0b, 0xfc, 0xfe];
        let mut st = stmt(types.len());
        assert_eq!(
            parse_execute(&execute(&types, &values), &mut st),
            [
                "-56",
                "-2",
                "-1",
                "-1",
                "TYPE_FLOAT",
                "TYPE_DOUBLE",
                "TYPE_NULL",
                "2000/2/29 ::",
                "TYPE_TIME",
                &String::from_utf8(long.clone()).unwrap(),
                "ok"
            ]
        );
        assert_eq!(st.param_types, types.map(|t| (t, false)));
        // Flagged unsigned.
        let mut p = execute(&[1, 8], &[&[200u8][..], &u64::MAX.to_le_bytes()].concat());
        p[17] = 0x80;
        p[19] = 0x80;
        assert_eq!(
            parse_execute(&p, &mut stmt(2)),
            ["200", "18446744073709551615"]
        );
    }

    #[test]
    fn what_packetbeat_gives_up_on() {
        // Unknown types, no types ever sent, too few bytes.
        assert!(parse_execute(&execute(&[0x0f], &[1, b'a']), &mut stmt(1)).is_empty());
        let mut st = stmt(1);
        // NULL bitmap, "types not sent", a value.
        let again = [&[0u8; 14][..], &[0, 0, 5]].concat();
        assert!(parse_execute(&again, &mut st).is_empty());
        assert!(parse_execute(&execute(&[3], &[1, 2]), &mut stmt(1)).is_empty());
        assert!(parse_execute(&execute(&[1], &[7]), &mut stmt(0)).is_empty());
        for cut in 0..20 {
            let full = execute(&[0xfd, 0x0c], &[3, b'a', b'b', b'c', 2, 0xe1, 0x07]);
            let _ = parse_execute(&full[..cut.min(full.len())], &mut stmt(2));
        }
    }
}
