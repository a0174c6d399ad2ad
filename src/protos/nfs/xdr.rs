//! A reader of XDR (RFC 4506) items: big-endian 4-byte units, opaques padded to 4 bytes.
//!
//! Hand-written because the items read are few and fixed by Packetbeat's reading of each
//! message; every read is checked, so a short message is an error, never a panic.

/// The message ended before the item being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncated;

pub type Result<T> = std::result::Result<T, Truncated>;

/// A cursor over one XDR message.
#[derive(Debug, Clone)]
pub struct Xdr<'a> {
    data: &'a [u8],
    offset: usize,
}

impl<'a> Xdr<'a> {
    pub fn new(data: &'a [u8]) -> Xdr<'a> {
        Xdr { data, offset: 0 }
    }

    /// Bytes of the whole message.
    pub fn size(&self) -> usize {
        self.data.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.offset.checked_add(n).ok_or(Truncated)?;
        let b = self.data.get(self.offset..end).ok_or(Truncated)?;
        self.offset = end;
        Ok(b)
    }

    pub fn uint(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn uhyper(&mut self) -> Result<u64> {
        let hi = self.uint()? as u64;
        Ok(hi << 32 | self.uint()? as u64)
    }

    /// A fixed-length opaque of `len` bytes and its padding.
    pub fn opaque(&mut self, len: usize) -> Result<&'a [u8]> {
        let b = self.take(len)?;
        let pad = (4 - (len & 3)) & 3;
        // The padding of the message's last item may be missing; Go's reader does not check it.
        self.offset = (self.offset + pad).min(self.data.len());
        Ok(b)
    }

    /// A variable-length opaque (or string): its length, then its bytes.
    pub fn dynamic_opaque(&mut self) -> Result<&'a [u8]> {
        let len = self.uint()? as usize;
        self.opaque(len)
    }

    /// A variable-length array of unsigned ints.
    pub fn uint_vector(&mut self) -> Result<Vec<u32>> {
        let n = self.uint()? as usize;
        // Each item takes 4 bytes: a count the message cannot hold is an error before any
        // allocation.
        if n > (self.data.len() - self.offset) / 4 {
            return Err(Truncated);
        }
        (0..n).map(|_| self.uint()).collect()
    }
}
