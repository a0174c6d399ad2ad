//! The bytes one direction of a TCP connection has delivered and an analyzer has not consumed
//! yet, and Packetbeat's cap on them.

/// Packetbeat's `tcp.TCPMaxDataInStream` (10 MiB): a direction that buffers more than this
/// without completing a message is dropped (HTTP's default `max_message_size` is the same value).
pub const TCP_MAX_DATA_IN_STREAM: usize = 10 * (1 << 20);

/// Unconsumed stream bytes. Consuming only moves an offset; the consumed prefix is dropped when
/// the buffer empties or when it is large and at least half of the buffer, so a long keep-alive
/// connection keeps neither its history nor a copy per message.
#[derive(Debug, Default, Clone)]
pub struct StreamBuffer {
    buf: Vec<u8>,
    /// Bytes of `buf` already consumed.
    start: usize,
}

/// The buffer would pass [`TCP_MAX_DATA_IN_STREAM`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("stream data too large")]
pub struct StreamTooLarge;

impl StreamBuffer {
    /// Capacity past which an emptied buffer is given back instead of kept for the connection's
    /// whole life (an idle keep-alive connection then holds no memory).
    const KEEP_CAPACITY: usize = 16 * 1024;
    /// Consumed bytes worth moving the rest down for.
    const COMPACT_AT: usize = 4096;

    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    pub fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Marks the first `n` unconsumed bytes consumed (at most all of them).
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.buf.len());
        if self.start == self.buf.len() {
            self.clear();
            if self.buf.capacity() > Self::KEEP_CAPACITY {
                self.buf = Vec::new();
            }
        }
    }

    pub fn clear(&mut self) {
        self.buf.clear();
        self.start = 0;
    }

    /// Appends a segment, dropping the consumed prefix first when that is cheap or worthwhile.
    pub fn append(&mut self, bytes: &[u8]) {
        if self.start == self.buf.len() {
            self.clear();
        } else if self.start >= Self::COMPACT_AT && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// [`append`](Self::append) within Packetbeat's stream cap: nothing is appended when the
    /// unconsumed bytes would pass [`TCP_MAX_DATA_IN_STREAM`].
    pub fn append_capped(&mut self, bytes: &[u8]) -> Result<(), StreamTooLarge> {
        if self.len() + bytes.len() > TCP_MAX_DATA_IN_STREAM {
            return Err(StreamTooLarge);
        }
        self.append(bytes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consume_moves_an_offset_and_compacts_lazily() {
        let mut b = StreamBuffer::default();
        b.append(b"hello world");
        b.consume(6);
        assert_eq!(b.data(), b"world");
        b.append(b"!");
        assert_eq!(b.data(), b"world!");
        b.consume(100);
        assert!(b.is_empty());
        let big = vec![7u8; 5000];
        b.append(&big);
        b.consume(4500);
        b.append(b"x");
        assert_eq!(b.len(), 501);
        assert_eq!(b.data()[500], b'x');
    }

    #[test]
    fn the_cap_is_packetbeats() {
        let mut b = StreamBuffer::default();
        b.append(&vec![0u8; TCP_MAX_DATA_IN_STREAM - 1]);
        assert_eq!(b.append_capped(b"ab"), Err(StreamTooLarge));
        assert_eq!(b.len(), TCP_MAX_DATA_IN_STREAM - 1);
        assert_eq!(b.append_capped(b"a"), Ok(()));
    }
}
