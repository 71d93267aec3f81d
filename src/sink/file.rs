//! Local output files, written by the sink itself with direct I/O where the filesystem takes it.
//!
//! `object_store`'s local store writes through the page cache: every byte of a file is copied
//! into freshly allocated cache pages, which the kernel then writes back. On the 2-vCPU VM of
//! the benchmark that copy cost 0.3-0.9 cpu-s for a 394 MB file (the guest's new pages are
//! slow to touch; `dd` of 400 MB: 0.29-0.95 s of system time buffered, 0.02 s with
//! `oflag=direct`, at ~2.2 GB/s either way), a tenth to a fifth of the whole conversion. With
//! `O_DIRECT` the device reads the part buffers themselves: no copy, no cache pages, and the
//! output does not push the input out of the cache. Parts arrive 4 KiB-aligned and whole
//! ([`super::Parts::local`]); a file's unaligned tail, and everything on filesystems other
//! than ext4, XFS, btrfs and f2fs (network and FUSE filesystems, tmpfs), go through the page
//! cache as before. `PARQOUR_DIRECT_IO=0` turns direct I/O off (a slow disk, where letting the
//! page cache absorb the file and write it back later ends the run sooner).
//!
//! Publishing follows the local store's rules, and its names: the bytes go to a staging file
//! `<name>#<n>` beside the file, renamed over `<name>` once complete and removed on abort
//! (what [`crate::storage::remove_local_staging`] cleans up after a killed run).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use tokio::sync::mpsc;

use super::{ALIGN, Msg};

/// Writes the parts `rx` brings to a staging file and renames it to `dest` when the channel
/// closes; an abort, or a failure, removes the staging file. Returns the bytes that went to
/// the device directly.
pub(super) fn write(dest: &Path, mut rx: mpsc::Receiver<Msg>) -> io::Result<u64> {
    let mut staged = Staged::create(dest)?;
    let written = (|| {
        while let Some(msg) = rx.blocking_recv() {
            match msg {
                Msg::Part(part) => staged.write(&part)?,
                Msg::Abort => return Ok(false),
            }
        }
        Ok(true)
    })();
    // Refuse further parts before the (possibly slow) cleanup.
    drop(rx);
    let direct = staged.direct_bytes;
    match written {
        Ok(true) => staged.publish(dest).map(|()| direct),
        Ok(false) => {
            staged.discard();
            Ok(direct)
        }
        Err(e) => {
            staged.discard();
            Err(e)
        }
    }
}

/// A staging file being written.
struct Staged {
    path: PathBuf,
    /// Opened without `O_DIRECT`: for what is not aligned.
    buffered: File,
    /// Opened with `O_DIRECT`, while direct writes work.
    direct: Option<File>,
    /// Bytes written.
    at: u64,
    /// Of which directly.
    direct_bytes: u64,
}

impl Staged {
    /// Creates `<dest>#<n>` with the first free `n` (and `dest`'s folder if missing: again,
    /// a few times, if a failed run's cleanup removes it as empty in between).
    fn create(dest: &Path) -> io::Result<Self> {
        let mut n = 1u32;
        let mut folders_made = 0;
        loop {
            let mut name = dest.as_os_str().to_owned();
            name.push(format!("#{n}"));
            let path = PathBuf::from(name);
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(buffered) => {
                    // Locked while it is written: a cleanup of killed runs' staging files
                    // (`parqour run` on the partition) leaves it to this one. Best effort: a
                    // filesystem without locks leaves it unlocked.
                    let _ = buffered.try_lock();
                    let direct = open_direct(&buffered, &path);
                    return Ok(Self {
                        path,
                        buffered,
                        direct,
                        at: 0,
                        direct_bytes: 0,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => n += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound && folders_made < 3 => {
                    folders_made += 1;
                    if let Some(folder) = dest.parent() {
                        std::fs::create_dir_all(folder)?;
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Appends `bytes`: their whole blocks directly when they and the offset are aligned, the
    /// rest (a file's tail) through the page cache.
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let aligned = |n: usize| n.is_multiple_of(ALIGN);
        let whole = if aligned(bytes.as_ptr() as usize)
            && u64::try_from(ALIGN).is_ok_and(|a| self.at.is_multiple_of(a))
        {
            bytes.len() - bytes.len() % ALIGN
        } else {
            0
        };
        let mut rest = bytes;
        if whole > 0
            && let Some(direct) = &self.direct
        {
            match direct.write_all_at(&bytes[..whole], self.at) {
                Ok(()) => {
                    self.at += whole as u64;
                    self.direct_bytes += whole as u64;
                    rest = &bytes[whole..];
                }
                // An alignment the device does not take, or a filesystem that accepted the
                // flag but not the write: the rest goes through the page cache (from this
                // offset again, over anything the failed write left).
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    tracing::debug!(file = %self.path.display(), "direct I/O refused ({e}); writing through the page cache");
                    self.direct = None;
                }
                Err(e) => return Err(e),
            }
        }
        self.buffered.write_all_at(rest, self.at)?;
        self.at += rest.len() as u64;
        Ok(())
    }

    /// Renames the staging file to `dest` (over an existing file), still locked.
    fn publish(self, dest: &Path) -> io::Result<()> {
        std::fs::rename(&self.path, dest).map_err(|e| {
            let _ = std::fs::remove_file(&self.path);
            io::Error::new(
                e.kind(),
                format!("renaming {} into place: {e}", self.path.display()),
            )
        })
    }

    fn discard(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether `PARQOUR_DIRECT_IO` leaves direct I/O on (unset, or anything but `0`, `false`,
/// `off`, `no`).
fn direct_io_wanted() -> bool {
    wanted(std::env::var("PARQOUR_DIRECT_IO").ok().as_deref())
}

fn wanted(setting: Option<&str>) -> bool {
    setting.is_none_or(|v| {
        !["0", "false", "off", "no"].contains(&v.trim().to_ascii_lowercase().as_str())
    })
}

/// A second descriptor of the staging file at `path`, with `O_DIRECT`, where its filesystem
/// is a local disk filesystem known to take direct writes (and [`direct_io_wanted`]).
#[cfg(target_os = "linux")]
fn open_direct(file: &File, path: &Path) -> Option<File> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    if !direct_io_wanted() {
        return None;
    }
    const EXT4: i64 = 0xEF53;
    const XFS: i64 = 0x5846_5342;
    const BTRFS: i64 = 0x9123_683E;
    const F2FS: i64 = 0xF2F5_2010;
    let mut stat = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: `file` is an open descriptor for the call's duration and `stat` is a writable
    // `statfs` the kernel fills in; it is read only when the call succeeded.
    #[allow(unsafe_code)]
    let kind = unsafe {
        if libc::fstatfs(file.as_raw_fd(), stat.as_mut_ptr()) != 0 {
            return None;
        }
        #[allow(clippy::unnecessary_cast)]
        let kind = stat.assume_init().f_type as i64;
        kind
    };
    if ![EXT4, XFS, BTRFS, F2FS].contains(&kind) {
        return None;
    }
    OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
        .ok()
}

#[cfg(not(target_os = "linux"))]
fn open_direct(_file: &File, _path: &Path) -> Option<File> {
    let _ = direct_io_wanted;
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    /// Aligned parts, one with a tail, unaligned ones after it: the file is the bytes in order
    /// (over an older file), an earlier staging file of the same name is left alone, and the
    /// whole blocks of aligned parts went to the device directly where the filesystem takes
    /// direct I/O.
    #[test]
    fn staged_writes_make_the_file_and_publish_it_whole() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("sub/file.bin");
        std::fs::create_dir_all(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/file.bin#1"), b"killed run").unwrap();
        std::fs::write(&dest, b"older file").unwrap();
        let data: Vec<u8> = (0..5 * ALIGN + 100).map(|i| (i % 253) as u8).collect();
        let aligned = |range: std::ops::Range<usize>| {
            let mut buf = super::super::PartBuf::with_capacity(range.len());
            buf.extend_from_slice(&data[range]);
            assert_eq!(buf.as_ref().as_ptr().align_offset(ALIGN), 0);
            bytes::Bytes::from_owner(buf)
        };
        let parts = [
            aligned(0..2 * ALIGN),
            aligned(2 * ALIGN..4 * ALIGN + 30),
            bytes::Bytes::copy_from_slice(&data[4 * ALIGN + 30..4 * ALIGN + 50]),
            bytes::Bytes::copy_from_slice(&data[4 * ALIGN + 50..]),
        ];
        let (tx, rx) = mpsc::channel(4);
        let dest2 = dest.clone();
        let writer = std::thread::spawn(move || write(&dest2, rx));
        for part in parts {
            tx.blocking_send(Msg::Part(part)).unwrap();
        }
        drop(tx);
        let direct = writer.join().unwrap().unwrap();
        assert!(std::fs::read(&dest).unwrap() == data);
        assert_eq!(names(&dir.path().join("sub")), ["file.bin", "file.bin#1"]);
        let probe = dir.path().join("probe");
        let takes_direct = open_direct(&File::create(&probe).unwrap(), &probe).is_some();
        assert_eq!(direct, if takes_direct { 4 * ALIGN as u64 } else { 0 });
    }

    #[test]
    fn direct_io_is_turned_off_by_zero_false_off_or_no() {
        for on in [None, Some("1"), Some("true"), Some("on"), Some("")] {
            assert!(wanted(on), "{on:?}");
        }
        for off in ["0", "false", "OFF", " no "] {
            assert!(!wanted(Some(off)), "{off}");
        }
    }

    #[test]
    fn an_abort_leaves_nothing_and_a_missing_folder_is_made() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("a/b/file.bin");
        let (tx, rx) = mpsc::channel(4);
        let dest2 = dest.clone();
        let writer = std::thread::spawn(move || write(&dest2, rx));
        tx.blocking_send(Msg::Part(bytes::Bytes::from_static(b"half")))
            .unwrap();
        tx.blocking_send(Msg::Abort).unwrap();
        writer.join().unwrap().unwrap();
        assert!(names(&dir.path().join("a/b")).is_empty());

        let (tx, rx) = mpsc::channel(4);
        let writer = std::thread::spawn(move || write(&dest, rx));
        drop(tx);
        writer.join().unwrap().unwrap();
        assert_eq!(
            names(&dir.path().join("a/b")),
            ["file.bin"],
            "an empty file"
        );
    }

    /// A staging file gone before its rename (another run removed it): the error names it.
    #[test]
    fn a_vanished_staging_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("file.bin");
        let staged = Staged::create(&dest).unwrap();
        let staging = staged.path.clone();
        std::fs::remove_file(&staging).unwrap();
        let err = staged.publish(&dest).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("renaming {} into place", staging.display())),
            "{err}"
        );
        assert!(!dest.exists());
    }

    /// A folder that cannot be written: the error says so, and nothing is left.
    #[test]
    fn a_file_where_the_folder_should_be_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), b"a file").unwrap();
        let (tx, rx) = mpsc::channel::<Msg>(1);
        drop(tx);
        let err = write(&dir.path().join("a/file.bin"), rx).unwrap_err();
        assert!(
            matches!(
                err.kind(),
                io::ErrorKind::NotADirectory | io::ErrorKind::AlreadyExists
            ),
            "{err:?}"
        );
        assert_eq!(names(dir.path()), ["a"]);
    }
}
