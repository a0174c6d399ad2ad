//! One direction of a MySQL connection, parsed incrementally as Packetbeat's
//! `mysqlMessageParser` does it: a state machine over the direction's unconsumed bytes, whose
//! state and offset survive between segments, so each byte is looked at once.
//!
//! Every wire packet is `length (3 bytes LE) | sequence id | payload`. A message is what
//! Packetbeat reports as one unit:
//! - from the client (the side that sends to an analysed port): one packet. Sequence id 0 with
//!   command `COM_QUERY` (3), `COM_STMT_PREPARE` (22), `COM_STMT_EXECUTE` (23) or
//!   `COM_STMT_CLOSE` (25) is a request; any other packet (the login, `COM_INIT_DB`,
//!   `COM_QUIT`, …) is read and ignored.
//! - from the server: an OK (`0x00`, and `0xfe`) or ERR (`0xff`) packet; a result set (a packet
//!   of length 1 holding the column count, column definitions up to an EOF packet, rows up to
//!   the next EOF packet); the answer to `COM_STMT_PREPARE` (a 12-byte OK, then its parameter
//!   and column definitions); anything else is one ignored packet.
//!
//! Packetbeat's quirks are kept where its events show them: column definitions are read as
//! length-encoded strings from the buffer, past their packet when the bytes say so, and a
//! result set ends only at an EOF packet, so with `CLIENT_DEPRECATE_EOF` (no EOF after the
//! columns) the rows are read as columns and the result set runs on into the next responses;
//! only the first 100 KiB of a result set are kept for the event (its rows are still counted).
//!
//! Where Packetbeat would panic (an index past the buffer) or drop a healthy stream, this parser
//! waits for more bytes or reads within the packet instead; see the module doc of
//! [`super`] for the list.

/// The commands Packetbeat reports.
pub const CMD_QUERY: u8 = 3;
pub const CMD_STMT_PREPARE: u8 = 22;
pub const CMD_STMT_EXECUTE: u8 = 23;
pub const CMD_STMT_CLOSE: u8 = 25;

/// Bytes of a result set kept for the event (`maxPayloadSize`).
pub const MAX_PAYLOAD_SIZE: usize = 100 * 1024;

/// Why a direction's stream is dropped.
pub const ERR_BAD_LENENC: &str = "unexpected value in a length-encoded integer";
pub const ERR_SHORT_STATEMENT: &str = "statement command without a statement id";

/// Where the parser is in the current message (Packetbeat's `parseState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum State {
    #[default]
    Start,
    /// Reading one whole packet (a request, an OK or ERR packet, an ignored packet).
    EatMessage,
    /// Column definitions, up to an EOF packet.
    EatFields,
    /// Rows, up to an EOF packet.
    EatRows,
}

/// What a complete message says (Packetbeat's `mysqlMessage`). Offsets are from the message's
/// first byte.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    pub is_request: bool,
    /// Read but not reported (not a request, or a server packet of no known kind).
    pub ignore: bool,
    /// The last packet header read.
    pub packet_length: u32,
    pub seq: u8,
    /// The first payload byte of the first packet: the command of a request.
    pub typ: u8,
    pub is_ok: bool,
    pub affected_rows: u64,
    pub insert_id: u64,
    pub is_error: bool,
    pub error_code: u16,
    /// SQL state, ": ", and the error text.
    pub error_info: Vec<u8>,
    pub number_of_fields: u64,
    pub number_of_rows: u64,
    pub number_of_params: u64,
    /// `schema.table` of the column definitions, each once, joined by ", ".
    pub tables: Vec<u8>,
    /// Where the part kept for the event ends (0: not yet known).
    pub end: usize,
    /// The bytes reported (`source.bytes`/`destination.bytes`): `end` once the message is
    /// complete; 0 for a result set cut short by a gap, as Packetbeat reports it.
    pub size: usize,
    /// The result set ran past [`MAX_PAYLOAD_SIZE`] or a prepare answer's definitions were
    /// left out.
    pub is_truncated: bool,
    /// The statement of `COM_STMT_EXECUTE`/`COM_STMT_CLOSE`, or the one a prepare answer
    /// creates.
    pub statement_id: u32,
    pub notes: Vec<&'static str>,
}

/// What one call made of the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The message is complete: [`Parser::msg`] holds it, [`Parser::offset`] bytes are used.
    Complete,
    Incomplete,
    /// Not MySQL as Packetbeat reads it: drop the direction's stream.
    Error(&'static str),
}

/// A direction's parser: its state and the offset reached in the current message.
#[derive(Debug, Clone, Default)]
pub struct Parser {
    pub state: State,
    pub offset: usize,
    pub msg: Message,
}

fn le24(b: &[u8]) -> u32 {
    u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16
}

fn le16_at(data: &[u8], at: usize) -> Option<u16> {
    let b = data.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([b[0], b[1]]))
}

fn le32_at(data: &[u8], at: usize) -> Option<u32> {
    let b = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// A length-encoded integer at `at` (`readLinteger`): `Ok(None)` when the bytes end first,
/// an error for the `0xfb` (NULL) and `0xff` prefixes.
pub fn read_lenenc(data: &[u8], at: usize) -> Result<Option<(u64, usize)>, &'static str> {
    let Some(&first) = data.get(at) else {
        return Ok(None);
    };
    let width = match first {
        0xfe => 8,
        0xfd => 3,
        0xfc => 2,
        0xfb | 0xff => return Err(ERR_BAD_LENENC),
        v => return Ok(Some((u64::from(v), at + 1))),
    };
    let Some(b) = data.get(at + 1..at + 1 + width) else {
        return Ok(None);
    };
    let v = b
        .iter()
        .rev()
        .fold(0u64, |acc, &byte| acc << 8 | u64::from(byte));
    Ok(Some((v, at + 1 + width)))
}

/// A length-encoded string at `at` (`readLstring`) and the offset after it.
pub fn read_lstring(data: &[u8], at: usize) -> Result<Option<(&[u8], usize)>, &'static str> {
    let Some((len, off)) = read_lenenc(data, at)? else {
        return Ok(None);
    };
    let end = usize::try_from(len).ok().and_then(|l| off.checked_add(l));
    match end.and_then(|end| data.get(off..end).map(|s| (s, end))) {
        Some(found) => Ok(Some(found)),
        None => Ok(None),
    }
}

/// Whether a client packet of sequence 0 with this command is reported.
pub fn is_request(typ: u8) -> bool {
    matches!(
        typ,
        CMD_QUERY | CMD_STMT_PREPARE | CMD_STMT_EXECUTE | CMD_STMT_CLOSE
    )
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

impl Parser {
    /// Goes on with the current message. `data` is the direction's unconsumed bytes (they
    /// start with the message); `is_client` whether the direction is the client's;
    /// `expect_prepare_ok` whether the request waiting for this response is a
    /// `COM_STMT_PREPARE` (only then is a 12-byte OK packet the prepare answer).
    pub fn step(&mut self, data: &[u8], is_client: bool, expect_prepare_ok: bool) -> Step {
        self.run(data, is_client, expect_prepare_ok)
            .unwrap_or_else(Step::Error)
    }

    fn run(
        &mut self,
        data: &[u8],
        is_client: bool,
        expect_prepare_ok: bool,
    ) -> Result<Step, &'static str> {
        let m = &mut self.msg;
        while self.offset < data.len() {
            let rest = &data[self.offset..];
            match self.state {
                State::Start => {
                    // Packetbeat drops the stream when fewer than 5 bytes are left here; a
                    // header split across segments is ordinary TCP, so wait for the rest.
                    let Some(hdr) = rest.get(..5) else {
                        return Ok(Step::Incomplete);
                    };
                    m.packet_length = le24(hdr);
                    m.seq = hdr[3];
                    m.typ = hdr[4];
                    if is_client {
                        if m.seq == 0 && is_request(m.typ) {
                            m.is_request = true;
                        } else {
                            m.ignore = true;
                        }
                        self.state = State::EatMessage;
                    } else if m.typ == 0x00 || m.typ == 0xfe {
                        m.is_ok = true;
                        self.state = State::EatMessage;
                    } else if m.typ == 0xff {
                        m.is_error = true;
                        self.state = State::EatMessage;
                    } else if m.packet_length == 1 {
                        m.number_of_fields = u64::from(m.typ);
                        self.offset += 5;
                        self.state = State::EatFields;
                    } else {
                        m.ignore = true;
                        self.state = State::EatMessage;
                    }
                }
                State::EatMessage => {
                    let need = m.packet_length as usize + 4;
                    if rest.len() < need {
                        return Ok(Step::Incomplete);
                    }
                    self.offset += need;
                    m.end = self.offset;
                    let body = &data[..m.end];
                    if m.is_request {
                        if m.typ == CMD_STMT_EXECUTE || m.typ == CMD_STMT_CLOSE {
                            // Packetbeat reads the id from the buffer (a panic when it is not
                            // there); read it from this packet.
                            match le32_at(body, 5) {
                                Some(id) => m.statement_id = id,
                                None => return Err(ERR_SHORT_STATEMENT),
                            }
                        }
                    } else if m.is_ok {
                        // Packetbeat reads these from the buffer, into the next packet when
                        // this one is short; read them from this packet (missing: 0).
                        if let Some((rows, off)) = read_lenenc(body, 5)? {
                            m.affected_rows = rows;
                            if let Some((id, _)) = read_lenenc(body, off)? {
                                m.insert_id = id;
                            }
                        }
                    } else if m.is_error {
                        // error code, '#', SQL state (5), message; Packetbeat takes the message
                        // to the end of the buffer, this takes it to the end of the packet.
                        m.error_code = le16_at(body, 5).unwrap_or(0);
                        let state = body.get(8..body.len().clamp(8, 13)).unwrap_or(&[]);
                        let text = body.get(13..).unwrap_or(&[]);
                        m.error_info = [state, b": ", text].concat();
                    }
                    m.size = m.end;
                    if m.is_ok && m.packet_length == 12 && expect_prepare_ok {
                        // COM_STMT_PREPARE's OK: statement id, columns, parameters; then the
                        // parameter definitions and the column definitions. Packetbeat reads
                        // the columns first and the rest as rows; the event keeps the OK.
                        m.statement_id = le32_at(body, 5).unwrap_or(0);
                        m.number_of_fields = u64::from(le16_at(body, 9).unwrap_or(0));
                        m.number_of_params = u64::from(le16_at(body, 11).unwrap_or(0));
                        if m.number_of_fields > 0 {
                            self.state = State::EatFields;
                        } else if m.number_of_params > 0 {
                            self.state = State::EatRows;
                        } else {
                            // Packetbeat stays in this state and reads the next response into
                            // this one; nothing follows a prepare answer without definitions.
                            return Ok(Step::Complete);
                        }
                    } else {
                        return Ok(Step::Complete);
                    }
                }
                State::EatFields => {
                    let Some(hdr) = rest.get(..4) else {
                        return Ok(Step::Incomplete);
                    };
                    m.packet_length = le24(hdr);
                    m.seq = hdr[3];
                    let len = m.packet_length as usize;
                    // The packet's first byte tells an EOF packet (Packetbeat reads it even
                    // of an empty packet, into the next one).
                    let Some(&first) = rest.get(4) else {
                        return Ok(Step::Incomplete);
                    };
                    if rest.len() < len + 4 {
                        return Ok(Step::Incomplete);
                    }
                    self.offset += 4;
                    if first == 0xfe {
                        self.offset += len;
                        if m.statement_id != 0 && m.number_of_params == 0 {
                            // A prepare answer with columns only ends here (Packetbeat waits
                            // for a second EOF and reads the next response into this one).
                            m.is_truncated = true;
                            return Ok(Step::Complete);
                        }
                        self.state = State::EatRows;
                        continue;
                    }
                    // catalog, schema, table: read from the buffer as Packetbeat does, past the
                    // packet when the lengths say so. When they run past the buffer, Packetbeat
                    // waits with the offset already after the header, and so does this.
                    let Some((_, off)) = read_lstring(data, self.offset)? else {
                        return Ok(Step::Incomplete);
                    };
                    let Some((db, off)) = read_lstring(data, off)? else {
                        return Ok(Step::Incomplete);
                    };
                    let Some((table, _)) = read_lstring(data, off)? else {
                        return Ok(Step::Incomplete);
                    };
                    let db_table = [db, b".", table].concat();
                    if m.tables.is_empty() {
                        m.tables = db_table;
                    } else if !contains(&m.tables, &db_table) {
                        m.tables.extend_from_slice(b", ");
                        m.tables.extend_from_slice(&db_table);
                    }
                    self.offset += len;
                }
                State::EatRows => {
                    let Some(hdr) = rest.get(..4) else {
                        return Ok(Step::Incomplete);
                    };
                    m.packet_length = le24(hdr);
                    m.seq = hdr[3];
                    let len = m.packet_length as usize;
                    if rest.len() < len + 4 {
                        return Ok(Step::Incomplete);
                    }
                    let Some(&first) = rest.get(4) else {
                        return Ok(Step::Incomplete);
                    };
                    self.offset += 4;
                    if first == 0xfe {
                        self.offset += len;
                        if m.end == 0 {
                            m.end = self.offset;
                        } else {
                            m.is_truncated = true;
                        }
                        if !m.is_error {
                            m.is_ok = true;
                        }
                        m.size = m.end;
                        return Ok(Step::Complete);
                    }
                    self.offset += len;
                    if m.end == 0 && self.offset > MAX_PAYLOAD_SIZE {
                        // Only this much is kept, but the rows are read to the end.
                        m.end = self.offset;
                    }
                    m.number_of_rows += 1;
                }
            }
        }
        Ok(Step::Incomplete)
    }

    /// Bytes of the direction were lost (`messageGap`): a result set already under way is
    /// complete with what was read (with the note); anything else is lost with them.
    pub fn gap(&mut self) -> bool {
        match self.state {
            State::Start | State::EatMessage => false,
            State::EatFields | State::EatRows => {
                self.msg.end = self.offset;
                self.msg.notes.push(if self.msg.is_request {
                    super::NOTE_REQUEST_PACKET_LOSS
                } else {
                    super::NOTE_RESPONSE_PACKET_LOSS
                });
                true
            }
        }
    }
}
