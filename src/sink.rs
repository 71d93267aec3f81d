//! Output objects: a blocking `Write` that streams a file to object storage and publishes it
//! whole or not at all.
//!
//! Edge: the encoder writes Parquet bytes into an [`ObjectWriter`] on a worker thread; the bytes
//! travel in parts of [`PART_BYTES`] over a bounded channel to a tokio task that uploads them —
//! one PUT for a file of one part, a multipart upload with a few parts in flight for a larger one.
//! Neither makes an object visible before it is complete: S3 shows a multipart object only when
//! the upload completes. A file in a local folder ([`ObjectWriter::for_location`]) is written by
//! the sink itself, with direct I/O where the filesystem takes it ([`file`]), to a staging file
//! renamed into place, as the local store does.
//! [`ObjectWriter::abort`] (or dropping the writer) aborts the upload, so a failed run leaves no
//! half-written file that looks complete.

use std::io::{self, Write};
use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::storage::Location;

#[cfg(unix)]
mod file;

/// The alignment direct I/O asks of buffers, file offsets and lengths: the page size, which
/// covers any device's logical block size up to it. A device that wants more refuses the first
/// direct write, and the file goes through the page cache ([`file`]).
const ALIGN: usize = 4096;

/// Size of the parts sent to an object store's uploader (and of multipart upload parts) when
/// the file's size is not known ahead ([`Parts::remote`]).
pub const PART_BYTES: usize = 8 << 20;

/// The smallest part S3 takes (all but the last part of a multipart upload).
pub const MIN_PART_BYTES: usize = 5 << 20;

/// The most parts of one multipart upload on S3 (and GCS).
pub const MAX_PARTS: usize = 10_000;

/// Parts uploading at the same time, by default ([`ObjectWriter::create`]).
///
/// On S3 a part takes its time to first byte (10-50 ms) plus its transfer on one connection
/// (tens of MB/s each). Assuming 30 ms and 80 MB/s, two 8 MiB parts in flight upload ~115
/// MB/s, less than two cores convert (~160 MB/s of Parquet on the benchmark), and four ~210.
/// object_store's own `BufWriter` keeps 8 parts in flight, the AWS CLI 10 requests;
/// converters with more threads ask for more ([`ObjectWriter::create_with`]).
pub const PARTS_IN_FLIGHT: usize = 4;

/// The upload task: a file of one part is one PUT; a larger one a multipart upload with at
/// most `parts_in_flight` parts uploading. The next part is taken off the channel only when
/// one of them is done, so the parts held in memory are bounded: those uploading, one in the
/// channel and the one the writer fills.
async fn upload(
    store: Arc<dyn ObjectStore>,
    path: Path,
    mut rx: mpsc::Receiver<Msg>,
    parts_in_flight: usize,
) -> Result<(), object_store::Error> {
    use futures::StreamExt;
    use futures::stream::FuturesUnordered;
    let mut multipart: Option<Box<dyn object_store::MultipartUpload>> = None;
    let mut first: Option<Bytes> = None;
    let mut in_flight = FuturesUnordered::new();
    let failed = async |multipart: Option<Box<dyn object_store::MultipartUpload>>, e| {
        if let Some(mut m) = multipart {
            let _ = m.abort().await;
        }
        Err(e)
    };
    let limit = parts_in_flight.max(1);
    loop {
        if let Err(e) = room(&mut in_flight, limit).await {
            drop(in_flight);
            return failed(multipart, e).await;
        }
        let Some(msg) = rx.recv().await else { break };
        let part = match msg {
            Msg::Abort => {
                drop(in_flight);
                if let Some(mut m) = multipart {
                    m.abort().await?;
                }
                return Ok(());
            }
            Msg::Part(part) => part,
        };
        if multipart.is_none() {
            // Wait for a second part before choosing a multipart upload.
            let Some(earlier) = first.take() else {
                first = Some(part);
                continue;
            };
            let mut m = store.put_multipart(&path).await?;
            in_flight.push(m.put_part(payload(earlier)));
            multipart = Some(m);
            if let Err(e) = room(&mut in_flight, limit).await {
                drop(in_flight);
                return failed(multipart, e).await;
            }
        }
        if let Some(m) = multipart.as_mut() {
            in_flight.push(m.put_part(payload(part)));
        }
    }
    // The writer finished: complete.
    while let Some(done) = in_flight.next().await {
        if let Err(e) = done {
            drop(in_flight);
            return failed(multipart, e).await;
        }
    }
    drop(in_flight);
    match multipart {
        Some(mut m) => match m.complete().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let _ = m.abort().await;
                Err(e)
            }
        },
        None => store
            .put(&path, payload(first.unwrap_or_default()))
            .await
            .map(|_| ()),
    }
}

/// Waits until fewer than `limit` parts are uploading; the first failure ends the wait.
async fn room(
    in_flight: &mut futures::stream::FuturesUnordered<object_store::UploadPart>,
    limit: usize,
) -> Result<(), object_store::Error> {
    use futures::StreamExt;
    while in_flight.len() >= limit {
        if let Some(Err(e)) = in_flight.next().await {
            return Err(e);
        }
    }
    Ok(())
}

/// How a file travels to its store: parts of `bytes`, at most `in_flight` of them uploading.
/// At most `in_flight + 2` part buffers are held (those uploading, one in the channel, the one
/// being filled), so this is also the writer's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts {
    /// Size of a part (at least 5 MiB on S3, except the last).
    pub bytes: usize,
    /// Parts uploading at the same time.
    pub in_flight: usize,
}

impl Parts {
    /// For object stores: [`PART_BYTES`] parts, `in_flight` at a time.
    pub fn remote(in_flight: usize) -> Self {
        Self {
            bytes: PART_BYTES,
            in_flight: in_flight.max(1),
        }
    }

    /// For object stores, for a file of about `file_bytes`: parts of [`MIN_PART_BYTES`], the
    /// least memory (the uploader holds `in_flight + 2` of them: 30 MiB instead of 48 MiB
    /// with [`PART_BYTES`]), or larger where the file would need more than a fifth of
    /// [`MAX_PARTS`] (room for a file that ends well past its target); `in_flight` at a time.
    pub fn remote_for(file_bytes: usize, in_flight: usize) -> Self {
        Self {
            bytes: file_bytes
                .div_ceil(MAX_PARTS / 5)
                .next_multiple_of(1 << 20)
                .max(MIN_PART_BYTES),
            in_flight: in_flight.max(1),
        }
    }

    /// For a local folder: parts of [`WRITE_CHUNK`], two at a time. A local file takes a part
    /// in well under a millisecond (direct I/O at ~2 GB/s on the benchmark's VM), and its
    /// writes take turns anyway, so large parts would only hold memory: five 8 MiB part
    /// buffers were a third of the heap at peak (heaptrack, 20,000,000 events into one file).
    /// [`WRITE_CHUNK`] is a multiple of the alignment direct I/O asks for.
    pub fn local() -> Self {
        Self {
            bytes: WRITE_CHUNK,
            in_flight: 2,
        }
    }
}

impl Default for Parts {
    /// [`Parts::remote`] with [`PARTS_IN_FLIGHT`].
    fn default() -> Self {
        Self::remote(PARTS_IN_FLIGHT)
    }
}

/// The size of a local file's parts, and of the slices an upload part travels in (S3 streams
/// the list as one body).
///
/// Measured on a 2-vCPU VM (2 MiB of L2 cache per core) through the page cache: copying 394 MB
/// took 0.07 cpu-s in writes of 1 MiB and 0.85 cpu-s in writes of 8 MiB (session 16; later
/// sessions saw writes of 1 MiB take 0.3-0.9 s too, when the VM's fresh pages were slow).
pub const WRITE_CHUNK: usize = 1 << 20;
const _: () = assert!(WRITE_CHUNK.is_multiple_of(ALIGN));

/// A part as the payload of a PUT or an upload part: slices of at most [`WRITE_CHUNK`] bytes
/// that share the part's buffer.
fn payload(part: Bytes) -> object_store::PutPayload {
    (0..part.len())
        .step_by(WRITE_CHUNK)
        .map(|start| part.slice(start..part.len().min(start + WRITE_CHUNK)))
        .collect()
}

/// Errors of the sink.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The upload failed.
    #[error("uploading {path}: {source}")]
    Upload {
        /// The object.
        path: String,
        /// The store's error.
        source: object_store::Error,
    },
    /// Writing a local file failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// The upload task went away (it panicked or the runtime shut down).
    #[error("uploading {path}: the upload task stopped")]
    Task {
        /// The object.
        path: String,
    },
}

enum Msg {
    Part(Bytes),
    Abort,
}

/// What was published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Size in bytes.
    pub bytes: u64,
    /// CRC-32 (IEEE) of the bytes.
    pub crc32: u32,
}

/// A blocking writer that uploads to `store` at `path`; see the module docs.
pub struct ObjectWriter {
    path: Path,
    buf: PartBuf,
    tx: Option<mpsc::Sender<Msg>>,
    task: Option<JoinHandle<Result<(), SinkError>>>,
    handle: Handle,
    written: u64,
    crc: crc32fast::Hasher,
    /// Part buffers the upload is done with, for the next parts.
    pool: Arc<PartPool>,
    /// Why the upload failed, once a write found it gone: `finish` fails with it.
    failed: Option<SinkError>,
}

/// Part buffers come back here once the upload drops them, so a file's parts reuse a few
/// buffers instead of mapping and faulting in 8 MiB for each.
#[derive(Default)]
struct PartPool {
    buffers: std::sync::Mutex<Vec<PartBuf>>,
    /// Buffers kept: those uploading, the one in the channel and the one being filled.
    kept: usize,
    /// Capacity of a buffer (the part size).
    capacity: usize,
}

impl PartPool {
    fn take(&self) -> PartBuf {
        self.buffers
            .lock()
            .ok()
            .and_then(|mut p| p.pop())
            .unwrap_or_else(|| PartBuf::with_capacity(self.capacity))
    }
}

/// A part's buffer: room for `capacity` bytes that start on a [`ALIGN`] boundary, so a
/// local file takes them with direct I/O. Filled to at most its capacity, it never moves.
#[derive(Default)]
struct PartBuf {
    /// `start` bytes of padding, then the part.
    bytes: Vec<u8>,
    start: usize,
}

impl PartBuf {
    fn with_capacity(capacity: usize) -> Self {
        let mut bytes = Vec::<u8>::with_capacity(capacity + ALIGN);
        // `align_offset` may decline (`usize::MAX`); unaligned parts are written buffered.
        let start = match bytes.as_ptr().align_offset(ALIGN) {
            start if start < ALIGN => start,
            _ => 0,
        };
        bytes.resize(start, 0);
        Self { bytes, start }
    }

    fn len(&self) -> usize {
        self.bytes.len() - self.start
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn extend_from_slice(&mut self, data: &[u8]) {
        self.bytes.extend_from_slice(data);
    }

    fn clear(&mut self) {
        self.bytes.truncate(self.start);
    }
}

impl AsRef<[u8]> for PartBuf {
    fn as_ref(&self) -> &[u8] {
        &self.bytes[self.start..]
    }
}

/// A part's bytes, returned to the pool when the last `Bytes` of it is dropped.
struct Part {
    buf: PartBuf,
    pool: Arc<PartPool>,
}

impl AsRef<[u8]> for Part {
    fn as_ref(&self) -> &[u8] {
        self.buf.as_ref()
    }
}

impl Drop for Part {
    fn drop(&mut self) {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        if let Ok(mut pool) = self.pool.buffers.lock()
            && pool.len() < self.pool.kept
        {
            pool.push(buf);
        }
    }
}

impl std::fmt::Debug for ObjectWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectWriter")
            .field("path", &self.path)
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

impl ObjectWriter {
    /// Starts an upload of `path` on the runtime behind `handle`, in [`Parts::default`]. Must
    /// not be called from a runtime thread (the writer blocks).
    pub fn create(handle: &Handle, store: Arc<dyn ObjectStore>, path: Path) -> Self {
        Self::create_with(handle, store, path, Parts::default())
    }

    /// [`Self::create`] in `parts`.
    pub fn create_with(
        handle: &Handle,
        store: Arc<dyn ObjectStore>,
        path: Path,
        parts: Parts,
    ) -> Self {
        let in_flight = parts.in_flight.max(1);
        let object = path.clone();
        Self::start(handle, path, parts, |rx| {
            handle.spawn(async move {
                upload(store, object.clone(), rx, in_flight)
                    .await
                    .map_err(|source| SinkError::Upload {
                        path: object.to_string(),
                        source,
                    })
            })
        })
    }

    /// Writes `path` of `location`: for a local folder, the file itself writes it (with
    /// direct I/O where the filesystem takes it; see [`file`]), for other stores the store
    /// uploads it ([`Self::create_with`]). Must not be called from a runtime thread.
    pub fn for_location(handle: &Handle, location: &Location, path: Path, parts: Parts) -> Self {
        #[cfg(unix)]
        if let Some(dest) = crate::storage::local_file(location, &path) {
            // A thread of its own per file, not the runtime's blocking pool: a file's writer
            // blocks on its parts for the file's whole life, and a pool full of them would
            // leave the next file's writer waiting for a thread that never comes.
            return Self::start(handle, path.clone(), parts, |rx| {
                let (done, result) = tokio::sync::oneshot::channel();
                let _ = std::thread::Builder::new()
                    .name("parqour-file".into())
                    .spawn(move || {
                        let written = file::write(&dest, rx)
                            .map(|direct| {
                                tracing::trace!(file = %dest.display(), direct, "written");
                            })
                            .map_err(|source| SinkError::Write {
                                path: dest.display().to_string(),
                                source,
                            });
                        let _ = done.send(written);
                    });
                // A thread that could not start (or ended without a word) drops `done`.
                handle.spawn(async move {
                    result.await.unwrap_or_else(|_| {
                        Err(SinkError::Task {
                            path: path.to_string(),
                        })
                    })
                })
            });
        }
        Self::create_with(handle, location.store.clone(), path, parts)
    }

    fn start(
        handle: &Handle,
        path: Path,
        parts: Parts,
        spawn: impl FnOnce(mpsc::Receiver<Msg>) -> JoinHandle<Result<(), SinkError>>,
    ) -> Self {
        let (tx, rx) = mpsc::channel::<Msg>(1);
        let parts_in_flight = parts.in_flight.max(1);
        let part_bytes = parts.bytes.max(1);
        let task = spawn(rx);
        Self {
            path,
            buf: PartBuf::with_capacity(part_bytes),
            pool: Arc::new(PartPool {
                buffers: std::sync::Mutex::default(),
                kept: parts_in_flight + 2,
                capacity: part_bytes,
            }),
            tx: Some(tx),
            task: Some(task),
            handle: handle.clone(),
            written: 0,
            crc: crc32fast::Hasher::new(),
            failed: None,
        }
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    fn send(&mut self, msg: Msg) -> io::Result<()> {
        let Some(tx) = self.tx.as_ref() else {
            let why = self
                .failed
                .as_ref()
                .map_or_else(|| "writer closed".to_string(), ToString::to_string);
            return Err(io::Error::other(why));
        };
        if tx.blocking_send(msg).is_ok() {
            return Ok(());
        }
        // The upload task ended early: its error says why (a refused write, a full disk).
        self.tx = None;
        let e = match self.join() {
            Err(e) => e,
            Ok(()) => SinkError::Task {
                path: self.path.to_string(),
            },
        };
        let err = io::Error::other(e.to_string());
        self.failed = Some(e);
        Err(err)
    }

    fn send_buffer(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let next = self.pool.take();
            let part = Bytes::from_owner(Part {
                buf: std::mem::replace(&mut self.buf, next),
                pool: self.pool.clone(),
            });
            self.send(Msg::Part(part))?;
        }
        Ok(())
    }

    fn join(&mut self) -> Result<(), SinkError> {
        let Some(task) = self.task.take() else {
            return Ok(());
        };
        match self.handle.block_on(task) {
            Ok(result) => result,
            Err(_) => Err(SinkError::Task {
                path: self.path.to_string(),
            }),
        }
    }

    /// Uploads what is left and completes the upload: the object becomes visible now. Returns
    /// its size and CRC-32.
    pub fn finish(mut self) -> Result<Written, SinkError> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let sent = self.send_buffer();
        self.tx = None;
        self.join()?;
        if sent.is_err() {
            // `send` kept why.
            return Err(self.failed.take().unwrap_or(SinkError::Task {
                path: self.path.to_string(),
            }));
        }
        Ok(Written {
            bytes: self.written,
            crc32: self.crc.clone().finalize(),
        })
    }

    /// Aborts the upload; nothing becomes visible.
    pub fn abort(mut self) {
        self.abort_inner();
    }

    fn abort_inner(&mut self) {
        if self.task.is_some() {
            self.buf.clear();
            let _ = self.send(Msg::Abort);
            self.tx = None;
            let _ = self.join();
        }
    }
}

impl Write for ObjectWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.written += data.len() as u64;
        self.crc.update(data);
        // Parts are filled to exactly their size: a buffer that grew past its capacity would
        // be reallocated to twice the size and keep it while queued and uploading.
        let part_bytes = self.pool.capacity;
        let mut rest = data;
        while !rest.is_empty() {
            let take = (part_bytes - self.buf.len()).min(rest.len());
            self.buf.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.buf.len() >= part_bytes {
                self.send_buffer()?;
            }
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        // Parts are sent when full; `finish` sends the rest.
        Ok(())
    }
}

impl Drop for ObjectWriter {
    fn drop(&mut self) {
        // A writer dropped without `finish` (an error unwound past it) must not publish.
        self.abort_inner();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;

    #[test]
    fn remote_parts_are_sized_for_the_file() {
        // The default target (512 MiB) and anything up to ~10 GB: S3's smallest parts.
        for target in [0, 1 << 20, 512 << 20, 9_000 << 20] {
            assert_eq!(
                Parts::remote_for(target, 4).bytes,
                MIN_PART_BYTES,
                "{target}"
            );
        }
        // Larger targets: whole MiB, and a file twice its target still fits S3's part limit.
        for target in [10_500usize << 20, 100 << 30, 1 << 40] {
            let parts = Parts::remote_for(target, 4);
            assert!(parts.bytes > MIN_PART_BYTES && parts.bytes.is_multiple_of(1 << 20));
            assert!(
                (2 * target).div_ceil(parts.bytes) <= MAX_PARTS / 2,
                "{target}"
            );
        }
        assert_eq!(Parts::remote_for(1 << 30, 0).in_flight, 1);
    }

    #[test]
    fn part_buffers_come_back_when_dropped() {
        let pool = Arc::new(PartPool {
            buffers: std::sync::Mutex::default(),
            kept: 4,
            capacity: PART_BYTES,
        });
        let mut buf = pool.take();
        buf.extend_from_slice(b"part");
        let ptr = buf.as_ref().as_ptr();
        assert_eq!(ptr.align_offset(ALIGN), 0, "aligned for direct I/O");
        let bytes = Bytes::from_owner(Part {
            buf,
            pool: pool.clone(),
        });
        let clone = bytes.slice(1..);
        drop(bytes);
        assert!(
            pool.buffers.lock().unwrap().is_empty(),
            "a clone still holds it"
        );
        assert_eq!(&clone[..], b"art");
        drop(clone);
        let again = pool.take();
        assert_eq!(again.as_ref().as_ptr(), ptr, "the same allocation, reused");
        assert!(again.is_empty() && again.bytes.capacity() - again.start >= PART_BYTES);
    }

    #[test]
    fn parts_are_written_in_chunks_that_share_the_part() {
        let part = Bytes::from(
            (0..WRITE_CHUNK * 2 + 5)
                .map(|i| i as u8)
                .collect::<Vec<_>>(),
        );
        let chunks: Vec<Bytes> = payload(part.clone()).into_iter().collect();
        let lens: Vec<usize> = chunks.iter().map(Bytes::len).collect();
        assert_eq!(lens, [WRITE_CHUNK, WRITE_CHUNK, 5]);
        assert_eq!(chunks.concat(), part.to_vec());
        assert_eq!(chunks[1].as_ptr(), part[WRITE_CHUNK..].as_ptr(), "no copy");
        assert_eq!(payload(Bytes::new()).content_length(), 0);
    }

    /// While parts upload slower than they are written, as many as asked for upload at once.
    #[test]
    fn parts_upload_as_many_at_a_time_as_asked() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        for want in [1, 3, PARTS_IN_FLIGHT] {
            let slow = Arc::new(crate::test_store::TestStore {
                part_delay: std::time::Duration::from_millis(20),
                ..Default::default()
            });
            let store: Arc<dyn ObjectStore> = slow.clone();
            let path = Path::from(format!("a/{want}.bin"));
            let parts = Parts::remote(want);
            let mut w = ObjectWriter::create_with(rt.handle(), store.clone(), path.clone(), parts);
            let data: Vec<u8> = (0..PART_BYTES * 10 + 7).map(|i| i as u8).collect();
            w.write_all(&data).unwrap();
            assert_eq!(w.finish().unwrap().bytes, data.len() as u64);
            let peak = slow.parts.peak();
            assert_eq!(peak, want, "parts uploading at once");
            let got = rt
                .block_on(async { store.get(&path).await?.bytes().await })
                .unwrap();
            assert!(got == data, "the object is the bytes written");
        }
    }

    /// An upload that fails while parts are still being written: the write that finds it
    /// gone says why (not only that it failed).
    #[test]
    fn a_failed_upload_gives_its_cause_to_the_writer() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let store = Arc::new(crate::test_store::TestStore {
            refuse: Some("refused.bin".into()),
            ..Default::default()
        });
        let parts = Parts {
            bytes: 1 << 10,
            in_flight: 1,
        };
        let path = Path::from("a/refused.bin");
        let mut w = ObjectWriter::create_with(rt.handle(), store, path, parts);
        let chunk = [7u8; 1 << 10];
        let err = (0..1000)
            .find_map(|_| w.write_all(&chunk).err())
            .expect("a write fails once the upload has failed");
        let message = err.to_string();
        assert!(
            message.contains("refused to write a/refused.bin"),
            "{message}"
        );
        assert!(w.finish().is_err());
    }

    /// A local file goes out in many small parts, written in order, and only the finished file
    /// is left in the folder: through the local store, and written by the sink itself
    /// ([`ObjectWriter::for_location`], direct I/O where the filesystem takes it).
    #[test]
    fn local_parts_make_the_whole_file() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let local = object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(local);
        let location = crate::storage::resolve(
            dir.path().to_str().unwrap(),
            &crate::storage::StorageOptions::default(),
        )
        .unwrap();
        let parts = Parts::local();
        let data: Vec<u8> = (0..parts.bytes * 7 + 12_345)
            .map(|i| (i % 251) as u8)
            .collect();
        for by_store in [true, false] {
            let (mut w, file) = if by_store {
                let path = Path::from("out/file.parquet");
                let w = ObjectWriter::create_with(rt.handle(), store.clone(), path, parts);
                (w, dir.path().join("out/file.parquet"))
            } else {
                let path = location.path.clone().join("own").join("file.parquet");
                let w = ObjectWriter::for_location(rt.handle(), &location, path, parts);
                (w, dir.path().join("own/file.parquet"))
            };
            // Writes of odd sizes, straddling the part boundaries.
            for chunk in data.chunks(parts.bytes / 3 + 17) {
                w.write_all(chunk).unwrap();
            }
            assert!(
                w.buf.bytes.capacity() < parts.bytes + 2 * ALIGN,
                "part buffers of the local size"
            );
            let written = w.finish().unwrap();
            assert_eq!(written.bytes, data.len() as u64);
            let got = std::fs::read(&file).unwrap();
            assert!(got == data, "the file is the bytes written, in order");
            let names: Vec<_> = std::fs::read_dir(file.parent().unwrap())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(names, ["file.parquet"], "no staging file left");
        }
    }

    /// A local file the sink writes itself: an aborted or dropped writer leaves nothing, and
    /// one that cannot be created fails with the file's name and the cause.
    #[test]
    fn local_files_publish_on_finish_only_and_say_why_they_fail() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let location = crate::storage::resolve(
            dir.path().to_str().unwrap(),
            &crate::storage::StorageOptions::default(),
        )
        .unwrap();
        let at = |name: &str| location.path.clone().join(name);
        let big = vec![7u8; WRITE_CHUNK * 3 + 100];
        let mut w = ObjectWriter::for_location(rt.handle(), &location, at("y.bin"), Parts::local());
        w.write_all(&big).unwrap();
        w.abort();
        let mut w = ObjectWriter::for_location(rt.handle(), &location, at("z.bin"), Parts::local());
        w.write_all(b"small").unwrap();
        drop(w);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

        std::fs::write(dir.path().join("taken"), b"a file").unwrap();
        let path = location.path.clone().join("taken").join("x.bin");
        let mut w = ObjectWriter::for_location(rt.handle(), &location, path, Parts::local());
        // The write may already find the writer gone; `finish` says why.
        let _ = w.write_all(&big);
        let err = w.finish().unwrap_err().to_string();
        let file = dir.path().join("taken/x.bin");
        assert!(
            err.starts_with(&format!("writing {}: ", file.display()))
                && err.contains("os error 20"),
            "named as a local write, not an upload: {err}"
        );
    }

    #[test]
    fn publishes_on_finish_only() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let big = vec![7u8; PART_BYTES + 100];

        let mut w = ObjectWriter::create(rt.handle(), store.clone(), Path::from("a/x.bin"));
        w.write_all(&big).unwrap();
        assert_eq!(w.finish().unwrap().bytes, big.len() as u64);
        let got = rt
            .block_on(async { store.get(&Path::from("a/x.bin")).await?.bytes().await })
            .unwrap();
        assert_eq!(got.len(), big.len());

        let mut w = ObjectWriter::create(rt.handle(), store.clone(), Path::from("a/y.bin"));
        w.write_all(&big).unwrap();
        w.abort();
        let mut w = ObjectWriter::create(rt.handle(), store.clone(), Path::from("a/z.bin"));
        w.write_all(b"small").unwrap();
        drop(w);
        for p in ["a/y.bin", "a/z.bin"] {
            let head = rt.block_on(store.head(&Path::from(p)));
            assert!(head.is_err(), "{p} must not exist");
        }
    }
}
