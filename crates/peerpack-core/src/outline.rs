//! Piece-wise verification of an archive against its content id.
//!
//! A content id is the BLAKE3 root of the archive, and BLAKE3 is a Merkle tree. Cut the archive
//! into pieces of [`PIECE_SIZE`] bytes (a power of two of BLAKE3's 1 KiB chunks): each piece is
//! a complete subtree, and the pieces' chaining values, merged in BLAKE3's left-balanced order,
//! give the root. An [`Outline`] is that list of chaining values, 32 bytes per MiB (16 KiB for
//! a 512 MiB archive).
//!
//! A downloader first gets the outline from any provider and checks that it merges to the
//! content id ([`Outline::new`]). From then on, every piece is checked on arrival against its
//! chaining value ([`Outline::check_piece`]): a provider that sends one bad byte is caught on
//! that piece, not after the whole archive, and nothing unverified is ever written as good.
//!
//! An archive of at most one piece has a single entry: its root hash, and the piece is checked
//! with plain BLAKE3.

use blake3::hazmat::{
    ChainingValue, HasherExt, Mode, merge_subtrees_non_root, merge_subtrees_root,
};

use crate::ContentId;

/// Bytes per piece: 1 MiB, i.e. 1024 BLAKE3 chunks.
pub const PIECE_SIZE: u64 = 1024 * 1024;

/// Why an outline was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OutlineError {
    /// The byte length does not fit the archive size.
    #[error("an outline of a {size}-byte archive has {expected} bytes, this one has {actual}")]
    Length {
        /// The archive size.
        size: u64,
        /// Bytes expected.
        expected: usize,
        /// Bytes received.
        actual: usize,
    },
    /// The chaining values do not merge to the content id.
    #[error("the outline does not match content id {0}")]
    Root(ContentId),
}

/// The number of pieces of an archive of `size` bytes (at least one).
pub fn piece_count(size: u64) -> u64 {
    size.div_ceil(PIECE_SIZE).max(1)
}

/// The byte range of piece `index` in an archive of `size` bytes.
pub fn piece_range(size: u64, index: u64) -> std::ops::Range<u64> {
    let start = index * PIECE_SIZE;
    start..(start + PIECE_SIZE).min(size)
}

/// The chaining values of an archive's pieces, checked against its content id.
#[derive(Clone, PartialEq, Eq)]
pub struct Outline {
    size: u64,
    values: Vec<ChainingValue>,
}

impl std::fmt::Debug for Outline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outline")
            .field("size", &self.size)
            .field("pieces", &self.values.len())
            .finish()
    }
}

fn piece_value(index: u64, data: &[u8]) -> ChainingValue {
    let mut hasher = blake3::Hasher::new();
    hasher.set_input_offset(index * PIECE_SIZE);
    hasher.update(data);
    hasher.finalize_non_root()
}

/// Merge the values of a run of whole subtrees into their parent's chaining value.
fn merge(values: &[ChainingValue]) -> ChainingValue {
    if values.len() == 1 {
        return values[0];
    }
    let (left, right) = values.split_at(left_len(values.len()));
    merge_subtrees_non_root(&merge(left), &merge(right), Mode::Hash)
}

/// BLAKE3's left subtree holds the largest power of two of pieces that leaves at least one for
/// the right (`n >= 2`).
fn left_len(n: usize) -> usize {
    (n / 2 + n % 2).next_power_of_two()
}

fn root(values: &[ChainingValue]) -> [u8; 32] {
    if values.len() == 1 {
        return values[0];
    }
    let (left, right) = values.split_at(left_len(values.len()));
    *merge_subtrees_root(&merge(left), &merge(right), Mode::Hash).as_bytes()
}

impl Outline {
    /// The outline of `data` (which is the whole archive).
    pub fn of(data: &[u8]) -> Self {
        let size = data.len() as u64;
        if size <= PIECE_SIZE {
            return Self {
                size,
                values: vec![*blake3::hash(data).as_bytes()],
            };
        }
        let values = data
            .chunks(PIECE_SIZE as usize)
            .enumerate()
            .map(|(i, piece)| piece_value(i as u64, piece))
            .collect();
        Self { size, values }
    }

    /// The outline of a whole archive read from `reader`.
    pub fn read(reader: &mut impl std::io::Read) -> std::io::Result<Self> {
        let mut builder = OutlineBuilder::default();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => return Ok(builder.finish()),
                Ok(n) => builder.update(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// An outline received from a peer: `bytes` are the concatenated chaining values of an
    /// archive of `size` bytes, and must merge to `id`.
    pub fn new(id: &ContentId, size: u64, bytes: &[u8]) -> Result<Self, OutlineError> {
        let expected = piece_count(size) as usize * 32;
        if bytes.len() != expected {
            return Err(OutlineError::Length {
                size,
                expected,
                actual: bytes.len(),
            });
        }
        let values: Vec<ChainingValue> = bytes
            .chunks_exact(32)
            .map(|c| {
                let mut v = [0u8; 32];
                v.copy_from_slice(c);
                v
            })
            .collect();
        if root(&values) != *id.as_bytes() {
            return Err(OutlineError::Root(*id));
        }
        Ok(Self { size, values })
    }

    /// The content id these values merge to.
    pub fn content_id(&self) -> ContentId {
        ContentId::from_bytes(root(&self.values))
    }

    /// The archive's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The number of pieces.
    pub fn pieces(&self) -> u64 {
        self.values.len() as u64
    }

    /// The concatenated chaining values, as sent to peers.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.values.concat()
    }

    /// Whether `data` is exactly piece `index` of the archive.
    pub fn check_piece(&self, index: u64, data: &[u8]) -> bool {
        let Some(expected) = self.values.get(index as usize) else {
            return false;
        };
        let range = piece_range(self.size, index);
        if data.len() as u64 != range.end - range.start {
            return false;
        }
        let actual = if self.values.len() == 1 {
            *blake3::hash(data).as_bytes()
        } else {
            piece_value(index, data)
        };
        // Not secret: a plain comparison is fine.
        actual == *expected
    }
}

/// Builds an [`Outline`] from an archive streamed in any slices, hashing each byte once.
#[derive(Default)]
pub struct OutlineBuilder {
    current: blake3::Hasher,
    current_len: u64,
    values: Vec<ChainingValue>,
}

impl OutlineBuilder {
    /// Feed the next bytes of the archive.
    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.current_len == PIECE_SIZE {
                // A full piece followed by more data: it is not the root.
                self.values.push(self.current.finalize_non_root());
                self.current = blake3::Hasher::new();
                self.current
                    .set_input_offset(self.values.len() as u64 * PIECE_SIZE);
                self.current_len = 0;
            }
            let take = ((PIECE_SIZE - self.current_len) as usize).min(data.len());
            self.current.update(&data[..take]);
            self.current_len += take as u64;
            data = &data[take..];
        }
    }

    /// The outline of everything fed.
    pub fn finish(mut self) -> Outline {
        let size = self.values.len() as u64 * PIECE_SIZE + self.current_len;
        if self.values.is_empty() {
            self.values.push(*self.current.finalize().as_bytes());
        } else {
            self.values.push(self.current.finalize_non_root());
        }
        Outline {
            size,
            values: self.values,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 1000) as u8).collect()
    }

    #[test]
    fn outlines_merge_to_the_content_id() {
        let p = PIECE_SIZE as usize;
        for len in [
            0,
            1,
            1024,
            p - 1,
            p,
            p + 1,
            2 * p,
            3 * p - 5,
            4 * p,
            5 * p + 3,
            9 * p,
        ] {
            let bytes = data(len);
            let id = ContentId::of(&bytes);
            let outline = Outline::of(&bytes);
            assert_eq!(outline.content_id(), id, "length {len}");
            assert_eq!(outline.pieces(), piece_count(len as u64));
            let read = Outline::read(&mut &bytes[..]).unwrap();
            assert_eq!(read, outline, "length {len}");
            let mut builder = OutlineBuilder::default();
            for part in bytes.chunks(77_777) {
                builder.update(part);
            }
            assert_eq!(builder.finish(), outline, "length {len}");
            let received = Outline::new(&id, len as u64, &outline.to_bytes()).unwrap();
            for i in 0..received.pieces() {
                let r = piece_range(len as u64, i);
                assert!(received.check_piece(i, &bytes[r.start as usize..r.end as usize]));
            }
        }
    }

    #[test]
    fn bad_pieces_and_forged_outlines_are_refused() {
        let p = PIECE_SIZE as usize;
        let mut bytes = data(3 * p + 10);
        let id = ContentId::of(&bytes);
        let outline = Outline::of(&bytes);
        // One flipped byte in piece 1.
        bytes[p + 5] ^= 1;
        assert!(outline.check_piece(0, &bytes[..p]));
        assert!(!outline.check_piece(1, &bytes[p..2 * p]));
        // A piece at the wrong index, a short piece, an index past the end.
        assert!(!outline.check_piece(2, &bytes[..p]));
        assert!(!outline.check_piece(0, &bytes[..p - 1]));
        assert!(!outline.check_piece(4, &bytes[..10]));
        // An outline of other bytes, or of the right bytes with a wrong size.
        let other = Outline::of(&bytes).to_bytes();
        assert_eq!(
            Outline::new(&id, bytes.len() as u64, &other),
            Err(OutlineError::Root(id))
        );
        assert!(matches!(
            Outline::new(&id, 10 * PIECE_SIZE, &outline.to_bytes()),
            Err(OutlineError::Length { .. })
        ));
    }
}
