//! `-O`: packets one at a time, each once Enter is pressed, as Packetbeat's sniffer does it
//! (it prints "Press enter to read packet" and reads a line from stdin before every packet).
//! Wraps any source; the batches it hands out hold one frame each, sharing the source's buffer.
//! At the end of stdin it goes on without waiting.

use super::{PacketBatch, PacketSource, SnifferError};
use crate::decoder::LinkType;
use std::io::{BufRead, Write};

pub struct OneAtATime<R, W> {
    inner: Box<dyn PacketSource>,
    pending: Option<PacketBatch>,
    next: usize,
    input: R,
    prompt: W,
    input_ended: bool,
}

impl OneAtATime<std::io::BufReader<std::io::Stdin>, std::io::Stdout> {
    /// Prompting on stdout, reading Enter from stdin.
    pub fn on_terminal(inner: Box<dyn PacketSource>) -> Self {
        OneAtATime::new(
            inner,
            std::io::BufReader::new(std::io::stdin()),
            std::io::stdout(),
        )
    }
}

impl<R: BufRead + Send, W: Write + Send> OneAtATime<R, W> {
    pub fn new(inner: Box<dyn PacketSource>, input: R, prompt: W) -> Self {
        OneAtATime {
            inner,
            pending: None,
            next: 0,
            input,
            prompt,
            input_ended: false,
        }
    }

    fn wait_for_enter(&mut self) {
        let _ = writeln!(self.prompt, "Press enter to read packet");
        let _ = self.prompt.flush();
        if self.input_ended {
            return;
        }
        let mut line = String::new();
        if matches!(self.input.read_line(&mut line), Ok(0) | Err(_)) {
            self.input_ended = true;
        }
    }
}

impl<R: BufRead + Send, W: Write + Send> PacketSource for OneAtATime<R, W> {
    fn link_type(&self) -> LinkType {
        self.inner.link_type()
    }

    fn next_batch(&mut self) -> Result<Option<PacketBatch>, SnifferError> {
        loop {
            if let Some(b) = &self.pending {
                if self.next < b.frames.len() {
                    let one = PacketBatch {
                        buf: b.buf.clone(),
                        frames: vec![b.frames[self.next]],
                        new_pass: b.new_pass && self.next == 0,
                        clock: b.clock,
                    };
                    self.next += 1;
                    self.wait_for_enter();
                    return Ok(Some(one));
                }
            }
            self.pending = None;
            self.next = 0;
            match self.inner.next_batch()? {
                None => return Ok(None),
                // An idle batch (a live source's clock moving on) goes through as it is.
                Some(b) if b.frames.is_empty() => return Ok(Some(b)),
                Some(b) => self.pending = Some(b),
            }
        }
    }

    fn summary(&self) -> String {
        self.inner.summary()
    }

    fn finish(&mut self) {
        self.inner.finish()
    }

    fn kernel_drops(&self) -> u64 {
        self.inner.kernel_drops()
    }

    fn is_live(&self) -> bool {
        self.inner.is_live()
    }
}
