//! Extracting an archive safely: path and link checks, the size and entry limits, the
//! [`HeaderGuard`] that refuses oversized tar extensions before the parser reads them, and the
//! clean-up when anything fails.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fs;
use std::io::{self, Read};
use std::path::Path;
use std::rc::Rc;

use super::{ExtractError, ExtractLimits, ExtractSummary, resolve_link};
use crate::limits::{MAX_LONG_NAME_ENTRY, MAX_PATH_LEN, MAX_PAX_HEADER};

/// Extract a zstd-compressed tar archive into `target`, which must not exist or be an empty
/// directory. On error, everything written is removed again.
pub fn extract<R: Read>(
    archive: R,
    target: &Path,
    limits: &ExtractLimits,
) -> Result<ExtractSummary, ExtractError> {
    let created = match fs::read_dir(target) {
        Ok(mut it) => {
            if it.next().is_some() {
                return Err(ExtractError::TargetNotEmpty(target.to_owned()));
            }
            false
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(target).map_err(|source| ExtractError::Io {
                path: target.to_owned(),
                source,
            })?;
            true
        }
        Err(source) => {
            return Err(ExtractError::Io {
                path: target.to_owned(),
                source,
            });
        }
    };
    let result = extract_into(archive, target, limits);
    if result.is_err() {
        if created {
            let _ = fs::remove_dir_all(target);
        } else if let Ok(entries) = fs::read_dir(target) {
            for e in entries.flatten() {
                let p = e.path();
                let _ = match e.file_type() {
                    Ok(t) if t.is_dir() => fs::remove_dir_all(&p),
                    _ => fs::remove_file(&p),
                };
            }
        }
    }
    result
}

/// Checks an entry path and turns it into its `/`-joined normal components.
pub(super) fn clean_path(raw: &[u8]) -> Result<String, ExtractError> {
    let text = std::str::from_utf8(raw)
        .map_err(|_| ExtractError::BadPath(String::from_utf8_lossy(raw).into_owned()))?;
    if text.len() > MAX_PATH_LEN || text.contains('\0') || text.contains('\\') {
        return Err(ExtractError::BadPath(text.to_owned()));
    }
    if text.starts_with('/') {
        return Err(ExtractError::AbsolutePath(text.to_owned()));
    }
    let mut parts = Vec::new();
    for seg in text.split('/') {
        match seg {
            "" | "." => {}
            ".." => return Err(ExtractError::ParentComponent(text.to_owned())),
            s => parts.push(s),
        }
    }
    if parts.is_empty() {
        return Err(ExtractError::BadPath(text.to_owned()));
    }
    Ok(parts.join("/"))
}

fn extract_into<R: Read>(
    archive: R,
    target: &Path,
    limits: &ExtractLimits,
) -> Result<ExtractSummary, ExtractError> {
    let decoder =
        zstd::stream::Decoder::new(archive).map_err(|e| ExtractError::Corrupt(e.to_string()))?;
    // Bound the decompressed stream (file data plus headers), so a zip bomb cannot keep the
    // decompressor busy without end; the guard bounds what the tar parser reads into memory.
    let stream_cap = limits
        .max_unpacked_bytes
        .saturating_add(limits.max_entries.saturating_mul(4096))
        .saturating_add(1 << 20);
    let refusal = Rc::new(RefCell::new(None));
    let mut tar = tar::Archive::new(HeaderGuard::new(
        decoder.take(stream_cap),
        Rc::clone(&refusal),
    ));
    // A read error may be the guard's refusal, passed through the tar parser: report that.
    let corrupt = |e: io::Error| match refusal.borrow_mut().take() {
        Some(r) => ExtractError::from(r),
        None => ExtractError::Corrupt(e.to_string()),
    };
    let io_at = |path: &Path| {
        let path = path.to_owned();
        move |source| ExtractError::Io { path, source }
    };

    let mut summary = ExtractSummary::default();
    let mut seen: HashSet<String> = HashSet::new();
    let mut files: HashSet<String> = HashSet::new();
    let mut symlinks: Vec<(String, String)> = Vec::new();
    let mut budget = limits.max_unpacked_bytes;
    let mut count = 0u64;

    for entry in tar.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let kind = entry.header().entry_type();
        if kind == tar::EntryType::XGlobalHeader {
            continue;
        }
        count += 1;
        if count > limits.max_entries {
            return Err(ExtractError::TooManyEntries(limits.max_entries));
        }
        let rel = clean_path(&entry.path_bytes())?;
        if !seen.insert(rel.clone()) && kind != tar::EntryType::Directory {
            return Err(ExtractError::Duplicate(rel));
        }
        let dest = target.join(&rel);
        match kind {
            tar::EntryType::Directory => {
                fs::create_dir_all(&dest).map_err(io_at(&dest))?;
                summary.dirs += 1;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                // The entry's size: a PAX `size` record overrides the header's.
                let size = entry.size();
                if size > budget {
                    return Err(ExtractError::TooLarge(limits.max_unpacked_bytes));
                }
                if let Some(parent) = dest.parent() {
                    fs::create_dir_all(parent).map_err(io_at(parent))?;
                }
                // Large writes: io::copy fills the BufWriter's own buffer directly.
                let mut out = io::BufWriter::with_capacity(
                    (size as usize).clamp(8 * 1024, 1024 * 1024),
                    open_new(&dest, &rel)?,
                );
                let written = io::copy(&mut (&mut entry).take(size), &mut out).map_err(corrupt)?;
                if written != size {
                    return Err(ExtractError::Corrupt(format!("entry {rel:?} is truncated")));
                }
                let file = out.into_inner().map_err(|e| io_at(&dest)(e.into_error()))?;
                budget -= size;
                summary.bytes += size;
                summary.files += 1;
                set_mode(&file, entry.header().mode().unwrap_or(0o644)).map_err(io_at(&dest))?;
                files.insert(rel);
            }
            tar::EntryType::Symlink => {
                let target_text = link_target(&entry, &rel)?;
                if resolve_link(&rel, &target_text).is_none() {
                    return Err(ExtractError::LinkOutside {
                        path: rel,
                        target: target_text,
                    });
                }
                symlinks.push((rel, target_text));
            }
            tar::EntryType::Link => {
                let target_text = link_target(&entry, &rel)?;
                let source =
                    clean_path(target_text.as_bytes()).map_err(|_| ExtractError::LinkOutside {
                        path: rel.clone(),
                        target: target_text.clone(),
                    })?;
                if !files.contains(&source) {
                    return Err(ExtractError::LinkOutside {
                        path: rel,
                        target: target_text,
                    });
                }
                let src = target.join(&source);
                let size = fs::metadata(&src).map_err(io_at(&src))?.len();
                if size > budget {
                    return Err(ExtractError::TooLarge(limits.max_unpacked_bytes));
                }
                if let Some(parent) = dest.parent() {
                    fs::create_dir_all(parent).map_err(io_at(parent))?;
                }
                let mut out = open_new(&dest, &rel)?;
                let mut input = fs::File::open(&src).map_err(io_at(&src))?;
                io::copy(&mut input, &mut out).map_err(io_at(&dest))?;
                set_mode(
                    &out,
                    fs::metadata(&src).map(|m| mode_of(&m)).unwrap_or(0o644),
                )
                .map_err(io_at(&dest))?;
                budget -= size;
                summary.bytes += size;
                summary.files += 1;
                files.insert(rel);
            }
            tar::EntryType::Char => return Err(device(rel, "character device")),
            tar::EntryType::Block => return Err(device(rel, "block device")),
            tar::EntryType::Fifo => return Err(device(rel, "fifo")),
            other => {
                return Err(ExtractError::Unsupported {
                    path: rel,
                    kind: other.as_byte(),
                });
            }
        }
    }

    if let Some(r) = refusal.borrow_mut().take() {
        return Err(r.into());
    }

    for (rel, link_to) in &symlinks {
        create_symlink(target, rel, link_to)?;
        summary.symlinks += 1;
    }
    // A chain of individually harmless links can still lead out: resolve each one for real.
    let root = fs::canonicalize(target).map_err(io_at(target))?;
    for (rel, link_to) in &symlinks {
        match fs::canonicalize(target.join(rel)) {
            Ok(resolved) if resolved.starts_with(&root) => {}
            _ => {
                return Err(ExtractError::LinkOutside {
                    path: rel.clone(),
                    target: link_to.clone(),
                });
            }
        }
    }
    Ok(summary)
}

/// Why [`HeaderGuard`] stopped the stream.
#[derive(Debug, Clone)]
pub(super) enum Refusal {
    TooLarge {
        kind: &'static str,
        size: u64,
        max: u64,
    },
    Sparse {
        path: String,
        size: u64,
    },
}

impl From<Refusal> for ExtractError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::TooLarge { kind, size, max } => {
                ExtractError::ExtensionTooLarge { kind, size, max }
            }
            Refusal::Sparse { path, size } => ExtractError::Sparse { path, size },
        }
    }
}

const BLOCK: u64 = 512;

/// Sits between the decompressor and `tar::Archive` and reads every tar header before the
/// parser does, so that it can refuse an entry the parser would read whole into memory (GNU
/// long names and links, PAX headers) when it is larger than any valid one, and GNU sparse
/// files (whose extra headers it does not follow).
///
/// It finds the headers the way tar 0.4 does: each entry takes its header block plus its size
/// rounded up to whole blocks; the size is the header's (octal, or base-256 when the high bit
/// is set), unless a PAX `x` header before it set `size`. That override applies to the next
/// entry that is not itself an extension (`L`, `K`, `x`, `g`), and only an `L`, `K` or `x`
/// entry with a ustar or GNU magic carries it on; any other entry uses it up. Headers are read
/// with tar's own [`tar::Header`] and PAX records with tar's own [`tar::PaxExtensions`], so the
/// guard and the parser cannot disagree about where the next header is. An all-zero block ends
/// the archive for the parser, and the guard stops looking there too.
pub(super) struct HeaderGuard<R> {
    inner: R,
    /// The header read from `inner` ahead of the parser; `header_len` bytes of it are filled,
    /// `header_at` of those have been handed on.
    header: [u8; BLOCK as usize],
    header_len: usize,
    header_at: usize,
    /// Bytes of the current entry's data still to pass, then of its padding.
    data_left: u64,
    pad_left: u64,
    /// The data of a PAX `x` entry as it passes (at most [`MAX_PAX_HEADER`] bytes).
    pax: Option<Vec<u8>>,
    /// The `size` the last PAX header set for the next entry that is not an extension.
    pax_size: Option<u64>,
    /// The parser has seen the end of the archive.
    ended: bool,
    /// Where the refusal goes for [`extract`] to report.
    refusal: Rc<RefCell<Option<Refusal>>>,
    /// Set once refused: every later read fails too.
    refused: Option<String>,
}

impl<R: Read> HeaderGuard<R> {
    pub(super) fn new(inner: R, refusal: Rc<RefCell<Option<Refusal>>>) -> Self {
        Self {
            inner,
            header: [0; BLOCK as usize],
            header_len: 0,
            header_at: 0,
            data_left: 0,
            pad_left: 0,
            pax: None,
            pax_size: None,
            ended: false,
            refusal,
            refused: None,
        }
    }

    fn refuse(&mut self, r: Refusal) -> io::Error {
        let text = ExtractError::from(r.clone()).to_string();
        *self.refusal.borrow_mut() = Some(r);
        self.refused = Some(text.clone());
        io::Error::new(io::ErrorKind::InvalidData, text)
    }

    /// Look at the header in `self.header` (a whole block) before any of it is handed on.
    fn inspect(&mut self) -> io::Result<()> {
        if self.header.iter().all(|b| *b == 0) {
            self.ended = true;
            return Ok(());
        }
        let mut header = tar::Header::new_old();
        header.as_mut_bytes().copy_from_slice(&self.header);
        let kind = header.entry_type();
        let extension = kind.is_gnu_longname()
            || kind.is_gnu_longlink()
            || kind.is_pax_local_extensions()
            || kind.is_pax_global_extensions();
        let mut size = header
            .entry_size()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let pax_size = self.pax_size.take();
        if !extension && let Some(s) = pax_size {
            size = s;
        }
        let too_large = |kind, max| Refusal::TooLarge { kind, size, max };
        let refusal = match kind.as_byte() {
            b'L' if size > MAX_LONG_NAME_ENTRY => Some(too_large(
                "GNU long name entry (type 'L')",
                MAX_LONG_NAME_ENTRY,
            )),
            b'K' if size > MAX_LONG_NAME_ENTRY => Some(too_large(
                "GNU long link entry (type 'K')",
                MAX_LONG_NAME_ENTRY,
            )),
            b'x' if size > MAX_PAX_HEADER => {
                Some(too_large("PAX header (type 'x')", MAX_PAX_HEADER))
            }
            b'g' if size > MAX_PAX_HEADER => {
                Some(too_large("PAX global header (type 'g')", MAX_PAX_HEADER))
            }
            b'S' => Some(Refusal::Sparse {
                path: String::from_utf8_lossy(&header.path_bytes()).into_owned(),
                size,
            }),
            _ => None,
        };
        if let Some(r) = refusal {
            return Err(self.refuse(r));
        }
        // What tar 0.4 carries on to the next entry: see the type's documentation.
        let recognized = header.as_gnu().is_some() || header.as_ustar().is_some();
        if recognized && (kind.is_gnu_longname() || kind.is_gnu_longlink()) {
            self.pax_size = pax_size;
        }
        let padded = size
            .checked_add(BLOCK - 1)
            .map(|s| s & !(BLOCK - 1))
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "entry size overflows"))?;
        self.data_left = size;
        self.pad_left = padded - size;
        if recognized && kind.is_pax_local_extensions() {
            self.pax = Some(Vec::with_capacity(size as usize));
            if size == 0 {
                self.finish_pax();
            }
        }
        Ok(())
    }

    /// The PAX entry's data has passed: remember its `size`, read as tar 0.4 reads it (the
    /// first `size` record; none when a record before it, or its value, is malformed).
    fn finish_pax(&mut self) {
        let Some(data) = self.pax.take() else {
            return;
        };
        self.pax_size = None;
        for record in tar::PaxExtensions::new(&data) {
            let Ok(record) = record else {
                return;
            };
            if record.key() != Ok("size") {
                continue;
            }
            self.pax_size = record.value().ok().and_then(|v| v.parse::<u64>().ok());
            return;
        }
    }

    /// Pass up to `left` bytes of entry data or padding from `inner`.
    fn pass(&mut self, buf: &mut [u8], left: u64) -> io::Result<usize> {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        self.inner.read(&mut buf[..want])
    }
}

impl<R: Read> Read for HeaderGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(text) = &self.refused {
            return Err(io::Error::new(io::ErrorKind::InvalidData, text.clone()));
        }
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.header_at < self.header_len {
                let n = (self.header_len - self.header_at).min(buf.len());
                buf[..n].copy_from_slice(&self.header[self.header_at..self.header_at + n]);
                self.header_at += n;
                return Ok(n);
            }
            if self.header_len > 0 && self.header_len < BLOCK as usize {
                // The stream ended inside a header; the parser reports it.
                return Ok(0);
            }
            if self.data_left > 0 {
                let n = self.pass(buf, self.data_left)?;
                if n == 0 {
                    return Ok(0);
                }
                self.data_left -= n as u64;
                if let Some(pax) = &mut self.pax {
                    pax.extend_from_slice(&buf[..n]);
                    if self.data_left == 0 {
                        self.finish_pax();
                    }
                }
                return Ok(n);
            }
            if self.pad_left > 0 {
                let n = self.pass(buf, self.pad_left)?;
                self.pad_left -= n as u64;
                return Ok(n);
            }
            if self.ended {
                return self.inner.read(buf);
            }
            // At a header: read it whole before handing any of it on.
            self.header_len = 0;
            self.header_at = 0;
            while self.header_len < BLOCK as usize {
                match self.inner.read(&mut self.header[self.header_len..]) {
                    Ok(0) => break,
                    Ok(n) => self.header_len += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if self.header_len == 0 {
                return Ok(0);
            }
            if self.header_len == BLOCK as usize {
                self.inspect()?;
            }
        }
    }
}

fn device(path: String, kind: &'static str) -> ExtractError {
    ExtractError::DeviceFile { path, kind }
}

fn link_target<R: Read>(entry: &tar::Entry<'_, R>, rel: &str) -> Result<String, ExtractError> {
    let bytes = entry
        .link_name_bytes()
        .ok_or_else(|| ExtractError::Corrupt(format!("link {rel:?} has no target")))?;
    String::from_utf8(bytes.into_owned()).map_err(|_| ExtractError::BadPath(rel.to_owned()))
}

fn open_new(dest: &Path, rel: &str) -> Result<fs::File, ExtractError> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dest)
        .map_err(|source| {
            if source.kind() == io::ErrorKind::AlreadyExists {
                ExtractError::Duplicate(rel.to_owned())
            } else {
                ExtractError::Io {
                    path: dest.to_owned(),
                    source,
                }
            }
        })
}

#[cfg(unix)]
fn mode_of(meta: &fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode()
}

#[cfg(not(unix))]
fn mode_of(_meta: &fs::Metadata) -> u32 {
    0o644
}

#[cfg(unix)]
fn set_mode(file: &fs::File, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
    file.set_permissions(fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_file: &fs::File, _mode: u32) -> io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn create_symlink(target: &Path, rel: &str, link_to: &str) -> Result<(), ExtractError> {
    // Every ancestor must be a real directory: a write must never pass through a link.
    let mut cur = target.to_path_buf();
    let parts: Vec<&str> = rel.split('/').collect();
    for part in &parts[..parts.len() - 1] {
        cur.push(part);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(ExtractError::BeneathSymlink(rel.to_owned()));
            }
            Ok(_) => {}
            Err(_) => {
                fs::create_dir_all(&cur).map_err(|source| ExtractError::Io {
                    path: cur.clone(),
                    source,
                })?;
            }
        }
    }
    let dest = target.join(rel);
    std::os::unix::fs::symlink(link_to, &dest).map_err(|source| {
        if source.kind() == io::ErrorKind::AlreadyExists {
            ExtractError::Duplicate(rel.to_owned())
        } else {
            ExtractError::Io { path: dest, source }
        }
    })
}

#[cfg(not(unix))]
fn create_symlink(_target: &Path, rel: &str, _link_to: &str) -> Result<(), ExtractError> {
    Err(ExtractError::Unsupported {
        path: rel.to_owned(),
        kind: b'2',
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_path_rules() {
        assert_eq!(clean_path(b"./a//b").unwrap(), "a/b");
        assert!(matches!(
            clean_path(b"/etc/x"),
            Err(ExtractError::AbsolutePath(_))
        ));
        assert!(matches!(
            clean_path(b"a/../../x"),
            Err(ExtractError::ParentComponent(_))
        ));
        assert!(matches!(clean_path(b"."), Err(ExtractError::BadPath(_))));
        assert!(matches!(clean_path(b"\xff"), Err(ExtractError::BadPath(_))));
    }
}
