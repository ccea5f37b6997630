//! The canonical binary encoding shared by every signed record.
//!
//! It is deliberately small so other implementations can reproduce it byte for byte:
//! - `u64`: 8 bytes, big-endian;
//! - bytes / string: a `u32` big-endian length, then the bytes (strings are UTF-8);
//! - fixed-size byte arrays (keys, hashes, signatures): the bytes, no length;
//! - optional string: one byte `0` (absent) or `1` followed by the string;
//! - list: a `u32` big-endian count, then the items.
//!
//! Decoding is strict: every length is checked against what remains, trailing bytes are an
//! error, and callers re-encode what they decoded and compare, so a value has exactly one
//! accepted encoding.

/// Why bytes are not a valid encoded record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ends inside a field.
    #[error("record is truncated: it ends inside `{0}`")]
    Truncated(&'static str),
    /// The input does not start with the expected domain tag.
    #[error("record does not start with the domain tag {0:?}")]
    BadTag(&'static str),
    /// Bytes remain after the last field.
    #[error("record has {0} unexpected trailing bytes")]
    TrailingBytes(usize),
    /// A field is longer than its limit.
    #[error("record field `{field}` is {len} bytes long, the limit is {max}")]
    TooLong {
        /// The field's name.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A field's value is invalid.
    #[error("record field `{field}` is invalid: {reason}")]
    Invalid {
        /// The field's name.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The record decodes, but encoding it again gives other bytes.
    #[error("record is not in canonical form")]
    NonCanonical,
    /// The whole record exceeds [`crate::limits::MAX_RECORD_SIZE`].
    #[error("record is {0} bytes, larger than the {max} byte limit", max = crate::limits::MAX_RECORD_SIZE)]
    RecordTooLarge(usize),
}

#[derive(Default)]
pub(crate) struct Writer(Vec<u8>);

impl Writer {
    pub(crate) fn with_tag(tag: &str) -> Self {
        let mut w = Self(Vec::with_capacity(512));
        w.str(tag);
        w
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn len(&mut self, n: usize) {
        // Every length is bounded by MAX_RECORD_SIZE long before u32::MAX.
        self.0
            .extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes());
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.len(b.len());
        self.0.extend_from_slice(b);
    }

    pub(crate) fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    pub(crate) fn fixed(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }

    pub(crate) fn opt_str(&mut self, s: Option<&str>) {
        match s {
            None => self.0.push(0),
            Some(s) => {
                self.0.push(1);
                self.str(s);
            }
        }
    }

    pub(crate) fn strs<S: AsRef<str>>(&mut self, items: &[S]) {
        self.len(items.len());
        for s in items {
            self.str(s.as_ref());
        }
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.0
    }
}

pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    pub(crate) fn tag(&mut self, tag: &'static str) -> Result<(), DecodeError> {
        match self.str("tag", tag.len()) {
            Ok(t) if t == tag => Ok(()),
            _ => Err(DecodeError::BadTag(tag)),
        }
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated(field));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        let b = self.take(8, field)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    pub(crate) fn len(&mut self, field: &'static str, max: usize) -> Result<usize, DecodeError> {
        let b = self.take(4, field)?;
        let n = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if n > max {
            return Err(DecodeError::TooLong { field, len: n, max });
        }
        Ok(n)
    }

    pub(crate) fn bytes(
        &mut self,
        field: &'static str,
        max: usize,
    ) -> Result<&'a [u8], DecodeError> {
        let n = self.len(field, max)?;
        self.take(n, field)
    }

    pub(crate) fn str(&mut self, field: &'static str, max: usize) -> Result<&'a str, DecodeError> {
        let b = self.bytes(field, max)?;
        std::str::from_utf8(b).map_err(|_| DecodeError::Invalid {
            field,
            reason: "not valid UTF-8".into(),
        })
    }

    pub(crate) fn fixed<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], DecodeError> {
        let b = self.take(N, field)?;
        let mut a = [0u8; N];
        a.copy_from_slice(b);
        Ok(a)
    }

    pub(crate) fn opt_str(
        &mut self,
        field: &'static str,
        max: usize,
    ) -> Result<Option<&'a str>, DecodeError> {
        match self.take(1, field)?[0] {
            0 => Ok(None),
            1 => self.str(field, max).map(Some),
            other => Err(DecodeError::Invalid {
                field,
                reason: format!("option marker is {other}, expected 0 or 1"),
            }),
        }
    }

    pub(crate) fn strs(
        &mut self,
        field: &'static str,
        max_items: usize,
        max_len: usize,
    ) -> Result<Vec<String>, DecodeError> {
        let n = self.len(field, max_items)?;
        (0..n)
            .map(|_| self.str(field, max_len).map(str::to_owned))
            .collect()
    }

    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes(self.buf.len()))
        }
    }
}
