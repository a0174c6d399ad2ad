//! The bytes one direction of a TCP connection has delivered and an analyzer has not consumed
//! yet, Packetbeat's cap on them, and this worker's budget for all of them ([`budget`]).

/// Packetbeat's `tcp.TCPMaxDataInStream` (10 MiB): a direction that buffers more than this
/// without completing a message is dropped (HTTP's default `max_message_size` is the same value).
pub const TCP_MAX_DATA_IN_STREAM: usize = 10 * (1 << 20);

/// The bytes a packet worker holds for TCP streams, all connections together: what analyzers
/// buffer ([`StreamBuffer`]'s allocations) and what the TCP layer holds ahead of a hole.
/// `packetbeat.limits.stream_bytes` (this build's option) bounds it per worker: past it, a
/// stream that needs more is dropped as one past Packetbeat's per-stream cap is, and counted.
/// Kept in thread-locals because each worker owns its connections: no lock, no atomic.
pub mod budget {
    use std::cell::Cell;

    /// Default `packetbeat.limits.stream_bytes`: 256 MiB per worker.
    pub const DEFAULT_LIMIT: usize = 256 << 20;

    thread_local! {
        static USED: Cell<usize> = const { Cell::new(0) };
        static LIMIT: Cell<usize> = const { Cell::new(DEFAULT_LIMIT) };
        static REFUSED: Cell<u64> = const { Cell::new(0) };
    }

    /// Sets this thread's limit (a worker, at start).
    pub fn set_limit(bytes: usize) {
        LIMIT.with(|l| l.set(bytes));
    }

    /// Bytes held now by this thread.
    pub fn used() -> usize {
        USED.with(Cell::get)
    }

    /// Times this thread refused bytes because the limit was reached.
    pub fn refused() -> u64 {
        REFUSED.with(Cell::get)
    }

    /// Takes `n` more bytes if they fit; counts a refusal otherwise.
    pub fn try_reserve(n: usize) -> bool {
        let fits = admits(n);
        if fits {
            grow(n);
        }
        fits
    }

    /// Whether `n` more bytes would fit (nothing taken); counts a refusal when they would not.
    pub fn admits(n: usize) -> bool {
        let fits = USED.with(Cell::get).saturating_add(n) <= LIMIT.with(Cell::get);
        if !fits {
            REFUSED.with(|r| r.set(r.get() + 1));
        }
        fits
    }

    /// Takes `n` bytes whatever the limit (an allocation that already happened).
    pub fn grow(n: usize) {
        USED.with(|u| u.set(u.get().saturating_add(n)));
    }

    /// Gives `n` bytes back.
    pub fn release(n: usize) {
        USED.with(|u| u.set(u.get().saturating_sub(n)));
    }
}

/// Unconsumed stream bytes. Consuming only moves an offset; the consumed prefix is dropped when
/// the buffer empties or when it is large and at least half of the buffer, so a long keep-alive
/// connection keeps neither its history nor a copy per message. Its allocation counts in the
/// worker's [`budget`].
#[derive(Debug, Default)]
pub struct StreamBuffer {
    buf: Vec<u8>,
    /// Bytes of `buf` already consumed.
    start: usize,
}

/// The buffer would pass [`TCP_MAX_DATA_IN_STREAM`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("stream data too large")]
pub struct StreamTooLarge;

impl Clone for StreamBuffer {
    fn clone(&self) -> Self {
        let buf = self.buf.clone();
        budget::grow(buf.capacity());
        StreamBuffer {
            buf,
            start: self.start,
        }
    }
}

impl Drop for StreamBuffer {
    fn drop(&mut self) {
        budget::release(self.buf.capacity());
    }
}

impl StreamBuffer {
    /// Runs `f` on the allocation, keeping the budget in step with its capacity.
    fn resize_with(&mut self, f: impl FnOnce(&mut Vec<u8>)) {
        let before = self.buf.capacity();
        f(&mut self.buf);
        let after = self.buf.capacity();
        if after > before {
            budget::grow(after - before);
        } else {
            budget::release(before - after);
        }
    }

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
                self.resize_with(|b| *b = Vec::new());
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
        self.resize_with(|b| b.extend_from_slice(bytes));
    }

    /// [`append`](Self::append) within Packetbeat's stream cap: nothing is appended when the
    /// unconsumed bytes would pass [`TCP_MAX_DATA_IN_STREAM`].
    /// The worker's [`budget`] applies too: bytes that would take it past its limit are refused
    /// the same way.
    pub fn append_capped(&mut self, bytes: &[u8]) -> Result<(), StreamTooLarge> {
        if self.len() + bytes.len() > TCP_MAX_DATA_IN_STREAM {
            return Err(StreamTooLarge);
        }
        let spare = self.buf.capacity() - self.buf.len();
        if bytes.len() > spare && !budget::admits(bytes.len()) {
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
    fn the_workers_budget_follows_allocations_and_refuses_past_its_limit() {
        std::thread::spawn(|| {
            budget::set_limit(1 << 20);
            let mut a = StreamBuffer::default();
            a.append(&[1u8; 100_000]);
            assert!(budget::used() >= 100_000);
            let b = a.clone();
            let two = budget::used();
            assert!(two >= 200_000);
            drop(b);
            assert!(budget::used() < two);
            assert_eq!(a.append_capped(&vec![0u8; 2 << 20]), Err(StreamTooLarge));
            assert_eq!(budget::refused(), 1);
            a.consume(usize::MAX);
            drop(a);
            assert_eq!(budget::used(), 0);
        })
        .join()
        .unwrap();
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
