//! The wire format of capsules and fragments: umbral-pre 0.11's default serialization, which
//! is MessagePack with structs as arrays and every field a `bin 8` string. All fields have
//! fixed sizes, so each structure is a fixed template; the reader accepts exactly that
//! template (no alternative MessagePack encodings of the same value, no trailing bytes).

use crate::Error;

const BIN8: u8 = 0xc4;
const FIXARRAY: u8 = 0x90;
const FALSE: u8 = 0xc2;
const TRUE: u8 = 0xc3;

pub(crate) struct Writer(Vec<u8>);

impl Writer {
    pub(crate) fn with_capacity(len: usize) -> Self {
        Self(Vec::with_capacity(len))
    }

    /// Starts an array of `len` (< 16) elements.
    pub(crate) fn array(&mut self, len: u8) {
        debug_assert!(len < 16);
        self.0.push(FIXARRAY | len);
    }

    /// A byte string shorter than 256 bytes.
    pub(crate) fn bin(&mut self, bytes: &[u8]) {
        debug_assert!(bytes.len() < 256);
        self.0.push(BIN8);
        self.0.push(bytes.len() as u8);
        self.0.extend_from_slice(bytes);
    }

    pub(crate) fn bool(&mut self, value: bool) {
        self.0.push(if value { TRUE } else { FALSE });
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.0
    }
}

/// Size of a `bin 8` field holding `len` bytes.
pub(crate) const fn bin_len(len: usize) -> usize {
    2 + len
}

pub(crate) struct Reader<'a> {
    rest: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// `what` names the structure in [`Error::Malformed`].
    pub(crate) fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Self { rest: bytes, what }
    }

    fn err(&self) -> Error {
        Error::Malformed(self.what)
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], Error> {
        if self.rest.len() < len {
            return Err(self.err());
        }
        let (head, tail) = self.rest.split_at(len);
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn array(&mut self, len: u8) -> Result<(), Error> {
        match self.take(1)? {
            [tag] if *tag == FIXARRAY | len => Ok(()),
            _ => Err(self.err()),
        }
    }

    pub(crate) fn bin<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        match self.take(2)? {
            [BIN8, len] if usize::from(*len) == N => {}
            _ => return Err(self.err()),
        }
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn bool(&mut self) -> Result<bool, Error> {
        match self.take(1)? {
            [TRUE] => Ok(true),
            [FALSE] => Ok(false),
            _ => Err(self.err()),
        }
    }

    /// Fails unless every byte was consumed.
    pub(crate) fn finish(self) -> Result<(), Error> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(self.err())
        }
    }

    /// Maps a failed field check (`None`) to this structure's [`Error::Malformed`].
    pub(crate) fn check<T>(&self, value: Option<T>) -> Result<T, Error> {
        value.ok_or_else(|| self.err())
    }
}
