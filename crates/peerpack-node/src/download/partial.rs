//! The partial file a download writes into: reading back what an earlier attempt left, and
//! positioned reads and writes of pieces.

use peerpack_core::outline::{Outline, piece_count, piece_range};

#[cfg(unix)]
pub(super) fn write_at(file: &std::fs::File, data: &[u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, data, offset)
}

#[cfg(unix)]
fn read_at(file: &std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
pub(super) fn write_at(
    file: &std::fs::File,
    mut data: &[u8],
    mut offset: u64,
) -> std::io::Result<()> {
    while !data.is_empty() {
        let n = std::os::windows::fs::FileExt::seek_write(file, data, offset)?;
        data = &data[n..];
        offset += n as u64;
    }
    Ok(())
}

#[cfg(windows)]
fn read_at(file: &std::fs::File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        let n = std::os::windows::fs::FileExt::seek_read(file, buf, offset)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf = &mut buf[n..];
        offset += n as u64;
    }
    Ok(())
}

/// Open (creating) the partial file and check which pieces it already holds.
pub(super) fn open_partial(
    path: &std::path::Path,
    outline: &Outline,
) -> std::io::Result<(std::fs::File, Vec<bool>)> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    let len = file.metadata()?.len();
    let pieces = piece_count(outline.size());
    let mut have = vec![false; pieces as usize];
    let mut buf = Vec::new();
    for p in 0..pieces {
        let r = piece_range(outline.size(), p);
        if r.end > len || r.end == r.start {
            continue;
        }
        buf.resize((r.end - r.start) as usize, 0);
        read_at(&file, &mut buf, r.start)?;
        have[p as usize] = outline.check_piece(p, &buf);
    }
    Ok((file, have))
}

/// The length of `piece` of an archive of `size` bytes.
pub(super) fn piece_len(size: u64, piece: u64) -> u64 {
    let r = piece_range(size, piece);
    r.end - r.start
}
