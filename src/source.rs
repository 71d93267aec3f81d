//! Input objects: which objects an input names, and their bytes as a stream of Avro blocks.
//!
//! Edge: [`list_inputs`] turns the inputs a user gave (files, folders, URLs of objects or
//! prefixes) into a sorted list of objects; `stream_blocks` streams one object from its store,
//! feeds the bytes to the container [`BlockSplitter`] as they arrive, and sends the header and
//! each block on a channel. Blocks in flight are bounded in bytes by a semaphore, so a slow
//! consumer stops the download instead of filling memory, and an object is never held whole.

use std::sync::Arc;

use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::avro::container::{
    BlockSplitter, ContainerError, Event, Header, Limits, MAGIC, RawBlock,
};
use crate::avro::envelope::{RawEvent, RawSplitter};
use crate::storage::{self, Location, StorageError, StorageOptions};

/// Errors of the source edge, each naming the object.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The location could not be resolved.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Nothing found at the location.
    #[error("{location}: no such file, folder, object or prefix with `.avro` objects")]
    NotFound {
        /// What the user gave.
        location: String,
    },
    /// Listing or reading failed.
    #[error("{url}: {source}")]
    Read {
        /// The object or prefix.
        url: String,
        /// The store's error.
        source: object_store::Error,
    },
    /// The object is not the one listed any more: replaced or shortened while it was read.
    #[error("{url}: {what}")]
    Changed {
        /// The object.
        url: String,
        /// How it changed.
        what: String,
    },
    /// The run was stopped while this object was being read.
    #[error("cancelled")]
    Cancelled,
    /// The object is not a valid container file.
    #[error("{url}: {source}")]
    Container {
        /// The object.
        url: String,
        /// What is wrong with it.
        source: ContainerError,
    },
}

/// One object to convert.
#[derive(Debug, Clone)]
pub struct InputObject {
    /// The store it is in.
    pub store: Arc<dyn ObjectStore>,
    /// Its path in the store.
    pub path: Path,
    /// Its URL (or local path), for messages.
    pub url: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its entity tag, if the store gives one.
    pub e_tag: Option<String>,
    /// Its path on this machine, when it is a local file ([`storage::local_file`]): read
    /// without object_store (`read_chunks`).
    pub local: Option<std::path::PathBuf>,
}

/// Resolves inputs to objects. A file or object is taken as is; a folder or prefix gives every
/// `*.avro` object under it (recursively), sorted by path. Inputs keep the order given.
///
/// One store per S3 bucket ([`storage::StoreCache`]); inputs are looked up [`LOOKUPS_IN_FLIGHT`]
/// at a time (a partition can name thousands of objects, each a HEAD request).
pub async fn list_inputs(
    inputs: &[String],
    options: &StorageOptions,
) -> Result<Vec<InputObject>, SourceError> {
    use futures::TryStreamExt;
    let locations = inputs
        .iter()
        .map(|input| storage::resolve(input, options))
        .collect::<Result<Vec<_>, _>>()?;
    let listed: Vec<Vec<InputObject>> = futures::stream::iter(locations.iter().map(list_one))
        .buffered(LOOKUPS_IN_FLIGHT)
        .try_collect()
        .await?;
    Ok(listed.into_iter().flatten().collect())
}

/// HEAD (or list) requests in flight while inputs are resolved: S3 answers each in 10-50 ms,
/// so two thousand objects one after another took a minute.
pub const LOOKUPS_IN_FLIGHT: usize = 32;

fn object(location: &Location, meta: ObjectMeta) -> InputObject {
    InputObject {
        store: location.store.clone(),
        url: location.url_of(&meta.location),
        local: storage::local_file(location, &meta.location),
        path: meta.location,
        size: meta.size,
        e_tag: meta.e_tag,
    }
}

async fn list_one(location: &Location) -> Result<Vec<InputObject>, SourceError> {
    if let Some(local) = &location.local
        && !local.exists()
    {
        return Err(SourceError::NotFound {
            location: location.display.clone(),
        });
    }
    // A bucket's root or a URL ending in `/` is a prefix: asked for by HEAD, some stores
    // (SeaweedFS) answer with a zero-byte object for the bucket or the folder.
    let prefix_only = location.path.as_ref().is_empty() || location.display.ends_with('/');
    if !prefix_only {
        match location.store.head(&location.path).await {
            Ok(meta) => return Ok(vec![object(location, meta)]),
            Err(object_store::Error::NotFound { .. }) => {}
            // The local store reports a folder as an error of its own kind; fall through to
            // listing.
            Err(_) if location.local.as_ref().is_some_and(|p| p.is_dir()) => {}
            Err(source) => {
                return Err(SourceError::Read {
                    url: location.display.clone(),
                    source,
                });
            }
        }
    }
    let prefix = (!location.path.as_ref().is_empty()).then_some(&location.path);
    let mut listing = location.store.list(prefix);
    let mut found = Vec::new();
    while let Some(meta) = listing.next().await {
        let meta = meta.map_err(|source| SourceError::Read {
            url: location.display.clone(),
            source,
        })?;
        if meta.location.as_ref().ends_with(".avro") {
            found.push(object(location, meta));
        }
    }
    if found.is_empty() {
        return Err(SourceError::NotFound {
            location: location.display.clone(),
        });
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(found)
}

/// Small consecutive blocks are handed out together up to this many bytes
/// ([`ObjectEvent::Blocks`]).
pub const BLOCK_BATCH_BYTES: usize = 64 << 10;

/// What happens in one object, in order.
#[derive(Debug)]
pub enum ObjectEvent {
    /// A container file's header; its blocks follow. An object of concatenated container
    /// files has one before the blocks of each.
    Header(Box<Header>),
    /// The next blocks, still compressed, in order: one, or as many small ones as come
    /// together to about [`BLOCK_BATCH_BYTES`] (a file of one record a block would otherwise
    /// cost a message, a wake-up and a budget permit per record).
    Blocks(Vec<RawBlock>),
    /// The object is a raw concatenation of `DataWrapper` envelopes (no header); its blocks
    /// (whole envelopes, uncompressed) follow.
    Raw,
    /// The framing broke at `offset`: `data` (from `offset`) cannot be framed. More pieces may
    /// follow; in a container file, blocks follow again once its sync marker is found
    /// ([`BlockSplitter::skip_to_sync`]); then `End`.
    Broken {
        /// Byte offset in the object.
        offset: u64,
        /// In the first piece of a container file's broken range: the record count and the
        /// size (its head included) that the broken block's head declares, when it reads as
        /// one. The records the piece stands for are estimated from its bytes (the driver's
        /// `Framed`); this count only when its size agrees.
        declared: Option<(u64, u64)>,
        /// Why the framing broke (`None` for the later pieces).
        error: Option<String>,
        /// The bytes.
        data: bytes::Bytes,
    },
    /// The object ended cleanly after this many blocks.
    End {
        /// Blocks read.
        blocks: u64,
        /// Zero bytes the object ended with after its last block, read as its end
        /// ([`BlockSplitter::padding`]).
        padding: u64,
    },
}

/// An event of the object at `object` (index in the input list), as the consumer receives it.
#[derive(Debug)]
pub struct SourceEvent {
    /// Index of the object in the input list.
    pub object: usize,
    /// What happened.
    pub event: ObjectEvent,
    /// For blocks, their share of the in-flight byte budget; released when dropped.
    pub permit: Option<OwnedSemaphorePermit>,
}

/// How objects are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Framing {
    /// Object container files; objects that do not start with the container magic are raw
    /// envelope concatenations when `raw_envelopes` allows it.
    #[default]
    Auto,
    /// Object container files only.
    Container,
    /// Raw concatenations of `DataWrapper` envelopes only.
    Raw,
}

/// How the source reads.
#[derive(Debug, Clone, Copy)]
pub struct SourceOptions {
    /// How objects are framed.
    pub framing: Framing,
    /// In `Auto` framing, take objects without the container magic as raw envelopes (needs a
    /// registry); otherwise they are an error.
    pub raw_envelopes: bool,
    /// Bytes of whole envelopes per block of a raw object.
    pub raw_block_bytes: usize,
    /// Bytes per read (range request) of an object.
    pub read_chunk_bytes: usize,
    /// After a block of a container file that cannot be framed (wrong sync marker, absurd size,
    /// truncated), hand the rest of the object out as [`ObjectEvent::Broken`] (to be set
    /// aside) instead of failing.
    pub set_aside_broken: bool,
    /// Bounds on sizes read from files.
    pub limits: Limits,
    /// Objects read at the same time (the first in order is consumed, the others prefetch);
    /// up to [`SMALL_OBJECTS_IN_FLIGHT`] while they are small.
    pub concurrency: usize,
    /// Most compressed block bytes handed out and not yet released.
    pub budget_bytes: usize,
    /// Events (blocks, in batches of small ones) each prefetching object may hold before it
    /// waits.
    pub prefetch_blocks: usize,
    /// Range requests of [`Self::read_chunk_bytes`] in flight per object on S3 (at least;
    /// conversions raise it to one per worker thread). Reading is bound by the time to first
    /// byte there (10-50 ms a request), so the bytes in flight set the rate: 4 MiB at 30 ms is
    /// ~130 MB/s per object, what two cores convert. Local files keep two in flight.
    pub remote_read_ahead: usize,
}

impl Default for SourceOptions {
    /// 4 objects at a time, 256 MiB of blocks in flight, 16 blocks of prefetch per object.
    fn default() -> Self {
        Self {
            framing: Framing::Auto,
            raw_envelopes: false,
            raw_block_bytes: 1 << 20,
            read_chunk_bytes: 1 << 20,
            set_aside_broken: false,
            limits: Limits::default(),
            concurrency: 4,
            budget_bytes: 256 << 20,
            prefetch_blocks: 16,
            remote_read_ahead: 4,
        }
    }
}

type Events = mpsc::Receiver<Result<SourceEvent, SourceError>>;

/// Small objects read at the same time, beyond [`SourceOptions::concurrency`], while their
/// bytes together stay under [`SMALL_OBJECTS_BYTES`]. An object of a few kilobytes is one
/// request, so reading four at a time from S3 (10-50 ms each) is bound by the latency: two
/// thousand 38 KB objects took 10 s at 20 ms, where converting them takes under a second.
pub const SMALL_OBJECTS_IN_FLIGHT: usize = 64;

/// Most bytes of the objects being read at the same time when more than
/// [`SourceOptions::concurrency`] are.
pub const SMALL_OBJECTS_BYTES: u64 = 16 << 20;

/// Starts reading `inputs` in order on the runtime behind `handle`; events arrive in input order.
/// Dropping the receiver stops the reading.
pub fn spawn_source(
    handle: &tokio::runtime::Handle,
    inputs: Arc<Vec<InputObject>>,
    options: SourceOptions,
) -> Events {
    let (tx, rx) = mpsc::channel(64);
    handle.spawn(async move {
        let budget = Arc::new(Semaphore::new(options.budget_bytes.max(1)));
        let mut readers = std::collections::VecDeque::new();
        // Bytes of the objects in `readers`.
        let mut reading = 0u64;
        let mut next = 0;
        loop {
            while next < inputs.len()
                && (readers.len() < options.concurrency.max(1)
                    || (readers.len() < SMALL_OBJECTS_IN_FLIGHT
                        && reading + inputs[next].size <= SMALL_OBJECTS_BYTES))
            {
                reading += inputs[next].size;
                let (otx, orx) = mpsc::channel(options.prefetch_blocks.max(1));
                let inputs = inputs.clone();
                let index = next;
                let task = tokio::spawn(async move {
                    if let Err(e) = stream_blocks(&inputs[index], &options, &otx).await {
                        let _ = otx.send(Err(e)).await;
                    }
                });
                readers.push_back((index, orx, task));
                next += 1;
            }
            let Some((index, mut orx, task)) = readers.pop_front() else {
                break;
            };
            reading -= inputs[index].size;
            while let Some(event) = orx.recv().await {
                let failed = event.is_err();
                let msg = match event {
                    Ok(ObjectEvent::Blocks(blocks)) => {
                        // At most half the budget: the driver's open group holds up to the
                        // other half (see `convert_to`).
                        let bytes = blocks.iter().map(|b| b.data.len()).sum::<usize>();
                        let want = bytes.clamp(1, (options.budget_bytes / 2).max(1));
                        let permit = budget.clone().acquire_many_owned(want as u32).await;
                        permit
                            .map(|p| SourceEvent {
                                object: index,
                                event: ObjectEvent::Blocks(blocks),
                                permit: Some(p),
                            })
                            .map_err(|_| SourceError::Cancelled)
                    }
                    Ok(event) => Ok(SourceEvent {
                        object: index,
                        event,
                        permit: None,
                    }),
                    Err(e) => Err(e),
                };
                if tx.send(msg).await.is_err() || failed {
                    for (_, _, t) in readers {
                        t.abort();
                    }
                    task.abort();
                    return;
                }
            }
        }
    });
    rx
}

/// The bytes of `input` as a stream of chunks of `chunk` bytes, read by range requests with
/// `ahead` of them in flight. Large reads keep the cost per byte low on every store: the local
/// store serves a plain `get` in 8 KiB reads, each a blocking task of its own, which cost more
/// CPU than inflating the data; on S3, a range per MiB is a few requests per object.
///
/// A local file is read by [`LocalChunks`] instead of object_store's local store, which opens
/// the file again for every range and zero-fills a new buffer before reading into it.
fn read_chunks(
    input: &InputObject,
    chunk: usize,
    ahead: usize,
) -> impl futures::Stream<Item = Result<bytes::Bytes, SourceError>> + use<> {
    let chunk = chunk.max(1) as u64;
    let url = input.url.clone();
    let store = input.store.clone();
    let path = input.path.clone();
    let size = input.size;
    let e_tag = input.e_tag.clone();
    let local = input
        .local
        .clone()
        .map(|file| Arc::new(LocalChunks::new(file)));
    futures::stream::iter((0..size.div_ceil(chunk)).map(move |i| {
        let store = store.clone();
        let path = path.clone();
        let local = local.clone();
        let e_tag = e_tag.clone();
        let url = url.clone();
        let range = i * chunk..((i + 1) * chunk).min(size);
        async move {
            let want = range.end - range.start;
            let read_err = |source| SourceError::Read {
                url: url.clone(),
                source,
            };
            let bytes = match local {
                Some(local) => {
                    let read = range.clone();
                    tokio::task::spawn_blocking(move || local.read(read))
                        .await
                        .map_err(|e| object_store::Error::JoinError { source: e })
                        .and_then(|read| read)
                        .map_err(read_err)?
                }
                // Every range of the version listed (and checked against the manifest): an
                // object replaced while it is read would otherwise give a mix of two versions.
                None => {
                    let options = object_store::GetOptions {
                        range: Some(range.into()),
                        if_match: e_tag.clone(),
                        ..Default::default()
                    };
                    match store.get_opts(&path, options).await {
                        Ok(got) => got.bytes().await.map_err(read_err)?,
                        Err(object_store::Error::Precondition { .. }) => {
                            return Err(SourceError::Changed {
                                url,
                                what: format!(
                                    "the object changed while it was read: its entity tag is no \
                                     longer {}",
                                    e_tag.as_deref().unwrap_or_default()
                                ),
                            });
                        }
                        Err(e) => return Err(read_err(e)),
                    }
                }
            };
            if (bytes.len() as u64) < want {
                // The object shrank since it was listed; say so instead of reading garbage.
                return Err(SourceError::Changed {
                    url,
                    what: format!("the object is shorter than the {size} bytes it was listed with"),
                });
            }
            Ok(bytes)
        }
    }))
    .buffered(ahead.max(1))
}

/// Ranges of one local file, read with `pread` (the file opened once) into buffers that are
/// not zero-filled first (on Linux with glibc; elsewhere they are). object_store's local store
/// opens the file for every range and zero-fills a new buffer before reading into it: a
/// `memset` of every byte read. (A pool of buffers reused from chunk to chunk was tried too:
/// no fewer page faults, and its long-lived megabytes pinned the allocator's heap, so that
/// ten times the data peaked at 206 MiB instead of 120.)
struct LocalChunks {
    path: std::path::PathBuf,
    file: std::sync::OnceLock<std::fs::File>,
}

impl LocalChunks {
    fn new(path: std::path::PathBuf) -> Self {
        Self {
            path,
            file: std::sync::OnceLock::new(),
        }
    }

    /// The bytes of `range` (fewer if the file ends before it).
    fn read(&self, range: std::ops::Range<u64>) -> Result<bytes::Bytes, object_store::Error> {
        let error = |source: std::io::Error| {
            if source.kind() == std::io::ErrorKind::NotFound {
                object_store::Error::NotFound {
                    path: self.path.display().to_string(),
                    source: Box::new(source),
                }
            } else {
                object_store::Error::Generic {
                    store: "LocalFileSystem",
                    source: format!("reading {}: {source}", self.path.display()).into(),
                }
            }
        };
        let file = match self.file.get() {
            Some(file) => file,
            None => {
                let file = std::fs::File::open(&self.path).map_err(error)?;
                self.file.get_or_init(|| file)
            }
        };
        let want = usize::try_from(range.end - range.start).unwrap_or(usize::MAX);
        let buf = read_at(file, want, range.start).map_err(error)?;
        Ok(bytes::Bytes::from(buf))
    }
}

/// Up to `want` bytes of `file` from `offset` (fewer where it ends), read into the spare
/// capacity of a new buffer.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn read_at(file: &std::fs::File, want: usize, offset: u64) -> std::io::Result<Vec<u8>> {
    use std::os::fd::AsRawFd;
    let mut buf: Vec<u8> = Vec::with_capacity(want);
    while buf.len() < want {
        let at = libc::off_t::try_from(offset + buf.len() as u64)
            .map_err(|_| std::io::Error::other("offset past the largest file offset"))?;
        let spare = buf.spare_capacity_mut();
        #[allow(unsafe_code)]
        // SAFETY: `pread` writes at most `spare.len()` bytes into `spare`, the buffer's
        // allocated and unused capacity, and the descriptor is open for as long as `file`.
        let n =
            unsafe { libc::pread(file.as_raw_fd(), spare.as_mut_ptr().cast(), spare.len(), at) };
        match n {
            0 => break,
            n if n > 0 => {
                let n = n as usize;
                #[allow(unsafe_code)]
                // SAFETY: `pread` initialized the first `n` bytes of the spare capacity
                // (`n <= spare.len()`).
                unsafe {
                    buf.set_len(buf.len() + n);
                }
            }
            _ => {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    Ok(buf)
}

/// Up to `want` bytes of `file` from `offset` (fewer where it ends).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn read_at(file: &std::fs::File, want: usize, offset: u64) -> std::io::Result<Vec<u8>> {
    #[cfg(unix)]
    use std::os::unix::fs::FileExt;
    #[cfg(windows)]
    use std::os::windows::fs::FileExt;
    let mut buf = vec![0; want];
    let mut len = 0;
    while len < want {
        #[cfg(unix)]
        let read = file.read_at(&mut buf[len..], offset + len as u64);
        #[cfg(windows)]
        let read = file.seek_read(&mut buf[len..], offset + len as u64);
        match read {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(len);
    Ok(buf)
}

/// Streams the blocks of `input` to `tx`, reading the object as a stream of chunks.
async fn stream_blocks(
    input: &InputObject,
    options: &SourceOptions,
    tx: &mpsc::Sender<Result<ObjectEvent, SourceError>>,
) -> Result<(), SourceError> {
    let container_err = |source| SourceError::Container {
        url: input.url.clone(),
        source,
    };
    let ahead = if input.url.starts_with("s3://") {
        options.remote_read_ahead
    } else {
        2
    };
    let mut stream = read_chunks(input, options.read_chunk_bytes, ahead);
    // Enough of the start to tell the framing.
    let mut head = Vec::new();
    let mut pending = Vec::new();
    while head.len() < MAGIC.len() {
        match stream.next().await {
            Some(chunk) => {
                let chunk = chunk?;
                head.extend_from_slice(&chunk[..chunk.len().min(MAGIC.len() - head.len())]);
                pending.push(chunk);
            }
            None => break,
        }
    }
    if head.is_empty() {
        // An empty object holds no records (a placeholder, or a file created and never
        // written): nothing to convert or set aside.
        let _ = tx
            .send(Ok(ObjectEvent::End {
                blocks: 0,
                padding: 0,
            }))
            .await;
        return Ok(());
    }
    let raw = match options.framing {
        Framing::Container => false,
        Framing::Raw => true,
        Framing::Auto => options.raw_envelopes && head[..] != MAGIC[..head.len().min(4)],
    };
    if raw {
        if tx.send(Ok(ObjectEvent::Raw)).await.is_err() {
            return Ok(());
        }
        let mut splitter =
            RawSplitter::new(options.raw_block_bytes, options.limits.max_block_bytes);
        let send = async |events: Vec<RawEvent>| {
            for e in events {
                let event = match e {
                    RawEvent::Block(b) => ObjectEvent::Blocks(vec![b]),
                    RawEvent::Broken {
                        offset,
                        error,
                        data,
                    } => ObjectEvent::Broken {
                        offset,
                        declared: None,
                        error: Some(error.to_string()),
                        data,
                    },
                    RawEvent::Rest { offset, data } => ObjectEvent::Broken {
                        offset,
                        declared: None,
                        error: None,
                        data,
                    },
                };
                if tx.send(Ok(event)).await.is_err() {
                    return false;
                }
            }
            true
        };
        for chunk in pending {
            if !send(splitter.push(&chunk)).await {
                return Ok(());
            }
        }
        while let Some(chunk) = stream.next().await {
            if !send(splitter.push(&chunk?)).await {
                return Ok(());
            }
        }
        if !send(splitter.finish()).await {
            return Ok(());
        }
        let _ = tx
            .send(Ok(ObjectEvent::End {
                blocks: splitter.blocks(),
                padding: 0,
            }))
            .await;
        return Ok(());
    }
    let mut splitter = BlockSplitter::new(options.limits).reading_concatenated();
    let mut chunks = futures::stream::iter(pending.into_iter().map(Ok)).chain(stream);
    // After a broken block (with a dead-letter place): the error, until the next sync marker is
    // found; the bytes up to it are set aside, in pieces as they arrive.
    let mut skipping: Option<(ContainerError, bool)> = None;
    // Blocks split and not yet sent, and their bytes: sent before anything else is, and
    // whenever the splitter needs more bytes.
    let mut batch: Vec<RawBlock> = Vec::new();
    let mut batch_bytes = 0;
    let send_batch = async |batch: &mut Vec<RawBlock>, bytes: &mut usize| {
        *bytes = 0;
        batch.is_empty()
            || tx
                .send(Ok(ObjectEvent::Blocks(std::mem::take(batch))))
                .await
                .is_ok()
    };
    while let Some(chunk) = chunks.next().await {
        splitter.push(chunk?);
        loop {
            if let Some((error, first)) = &mut skipping {
                let Some((offset, data, found)) = splitter.skip_to_sync() else {
                    break;
                };
                if !data.is_empty() || found {
                    let piece = broken_piece(offset, data, *first, error);
                    *first = false;
                    if tx.send(Ok(piece)).await.is_err() {
                        return Ok(());
                    }
                }
                if !found {
                    break;
                }
                skipping = None;
            }
            // A header, `None` when more bytes are needed, or an error; blocks join the batch.
            let header = match splitter.next_event() {
                Ok(Some(Event::Block(block))) => {
                    // A batch ends before the block that would take it past the size (a file's
                    // usual blocks go one by one), or with the block that reaches it.
                    if batch_bytes + block.data.len() > BLOCK_BATCH_BYTES
                        && !send_batch(&mut batch, &mut batch_bytes).await
                    {
                        return Ok(());
                    }
                    batch_bytes += block.data.len();
                    batch.push(block);
                    if batch_bytes >= BLOCK_BATCH_BYTES
                        && !send_batch(&mut batch, &mut batch_bytes).await
                    {
                        return Ok(());
                    }
                    continue;
                }
                Ok(Some(Event::Header(header))) => Ok(Some(header)),
                Ok(None) => Ok(None),
                Err(e) => Err(e),
            };
            if !send_batch(&mut batch, &mut batch_bytes).await {
                return Ok(());
            }
            match header {
                Ok(Some(header)) => {
                    if tx.send(Ok(ObjectEvent::Header(header))).await.is_err() {
                        return Ok(());
                    }
                }
                Ok(None) => break,
                // Set aside up to the next sync marker, or fail (before the header, nothing
                // after it can be told apart).
                Err(e) if options.set_aside_broken && splitter.header_read() => {
                    skipping = Some((e, true));
                }
                Err(e) => return Err(container_err(e)),
            }
        }
    }
    if !send_batch(&mut batch, &mut batch_bytes).await {
        return Ok(());
    }
    let broken = match skipping {
        Some((e, first)) => Some((e, first)),
        None => splitter.finish().err().map(|e| (e, true)),
    };
    if let Some((e, first)) = broken {
        // The rest of the object cannot be framed: set it aside, or fail.
        let rest = if options.set_aside_broken {
            splitter.take_rest()
        } else {
            None
        };
        let Some((offset, data)) = rest else {
            return Err(container_err(e));
        };
        if (!data.is_empty() || first)
            && tx
                .send(Ok(broken_piece(offset, data, first, &e)))
                .await
                .is_err()
        {
            return Ok(());
        }
    }
    let end = ObjectEvent::End {
        blocks: splitter.blocks_read(),
        padding: splitter.padding(),
    };
    let _ = tx.send(Ok(end)).await;
    Ok(())
}

/// A piece of the bytes set aside after a broken block of a container file: the first names the
/// error and what the broken block's head declares.
fn broken_piece(
    offset: u64,
    data: bytes::Bytes,
    first: bool,
    error: &ContainerError,
) -> ObjectEvent {
    let declared = first
        .then(|| {
            let mut head = crate::avro::cursor::Cursor::new(&data);
            let count = u64::try_from(head.long().ok()?).ok()?;
            let size = u64::try_from(head.long().ok()?).ok()?;
            Some((count, size.saturating_add(head.position() as u64)))
        })
        .flatten();
    ObjectEvent::Broken {
        offset,
        declared,
        error: first.then(|| error.to_string()),
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::avro::codec::Codec;
    use crate::avro::writer::ContainerWriter;
    use crate::test_store::TestStore;
    use object_store::ObjectStoreExt;

    /// A container file of `n` longs.
    fn longs(n: i64) -> Vec<u8> {
        let mut w = ContainerWriter::new(
            Vec::new(),
            r#""long""#,
            Codec::Null,
            [7; 16],
            &std::collections::BTreeMap::new(),
        )
        .unwrap();
        for i in 0..n {
            let mut datum = Vec::new();
            crate::avro::cursor::encode_long(i, &mut datum);
            w.append(&datum).unwrap();
        }
        w.finish().unwrap()
    }

    /// Many small objects are read many at a time (one request each: four at a time would be
    /// bound by the store's latency), a large one keeps the usual window, and events still come
    /// in input order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn small_objects_are_read_many_at_a_time_in_order() {
        let store = Arc::new(TestStore {
            read_delay: std::time::Duration::from_millis(5),
            ..TestStore::default()
        });
        let mut inputs = Vec::new();
        for i in 0..200 {
            let path = Path::from(format!("raw/{i:03}.avro"));
            let bytes = longs(10 + i);
            let size = bytes.len() as u64;
            store.put(&path, bytes.into()).await.unwrap();
            inputs.push(InputObject {
                store: store.clone(),
                url: format!("memory://slow/{path}"),
                path,
                size,
                e_tag: None,
                local: None,
            });
        }
        let options = SourceOptions::default();
        let mut rx = spawn_source(
            &tokio::runtime::Handle::current(),
            Arc::new(inputs),
            options,
        );
        let mut ends = Vec::new();
        let mut records = 0;
        while let Some(event) = rx.recv().await {
            let event = event.unwrap();
            match event.event {
                ObjectEvent::Blocks(bs) => records += bs.iter().map(|b| b.count).sum::<u64>(),
                ObjectEvent::End { .. } => ends.push(event.object),
                _ => {}
            }
        }
        assert_eq!(ends, (0..200).collect::<Vec<_>>());
        assert_eq!(records, (0..200).map(|i| 10 + i).sum::<u64>());
        let peak = store.reads.peak();
        assert!(
            peak > options.concurrency * 4,
            "at most {peak} reads in flight for 200 small objects"
        );
        assert!(peak <= SMALL_OBJECTS_IN_FLIGHT, "{peak} reads in flight");
    }

    /// Blocks of one record each come in batches of up to [`BLOCK_BATCH_BYTES`], a block
    /// larger than that alone, all in order: a file of one record a block cost a message and a
    /// wake-up per record (2,000,000 one-record blocks: 2.9 cpu-s, 1.6 in 64 KB blocks).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn small_blocks_come_in_batches_in_order() {
        let mut w = ContainerWriter::new(
            Vec::new(),
            r#""string""#,
            Codec::Null,
            [9; 16],
            &std::collections::BTreeMap::new(),
        )
        .unwrap();
        let mut sizes = Vec::new();
        for i in 0..20_000usize {
            // Every 5,000th record is a block of 100 KB; the others blocks of a few bytes.
            let len = if i % 5_000 == 4_999 { 100_000 } else { i % 7 };
            let mut datum = Vec::new();
            crate::avro::cursor::encode_long(len as i64, &mut datum);
            datum.resize(datum.len() + len, b'x');
            sizes.push(datum.len());
            w.append(&datum).unwrap();
            w.flush_block().unwrap();
        }
        let store = Arc::new(TestStore::default());
        let path = Path::from("raw/tiny.avro");
        let bytes = w.finish().unwrap();
        let size = bytes.len() as u64;
        store.put(&path, bytes.into()).await.unwrap();
        let input = InputObject {
            store: store.clone(),
            url: "memory://t/raw/tiny.avro".into(),
            path,
            size,
            e_tag: None,
            local: None,
        };
        let mut rx = spawn_source(
            &tokio::runtime::Handle::current(),
            Arc::new(vec![input]),
            SourceOptions::default(),
        );
        let mut batches = Vec::new();
        while let Some(event) = rx.recv().await {
            if let ObjectEvent::Blocks(blocks) = event.unwrap().event {
                batches.push(blocks);
            }
        }
        let blocks: Vec<&RawBlock> = batches.iter().flatten().collect();
        assert_eq!(blocks.len(), 20_000);
        for (i, b) in blocks.iter().enumerate() {
            assert_eq!((b.index, b.count, b.data.len()), (i as u64, 1, sizes[i]));
        }
        for batch in &batches {
            let bytes: usize = batch.iter().map(|b| b.data.len()).sum();
            assert!(
                batch.len() == 1 || bytes <= BLOCK_BATCH_BYTES,
                "{bytes} bytes"
            );
        }
        // Far fewer messages than blocks: one per 64 KiB, or per 1 MiB chunk read at least.
        assert!(batches.len() < 200, "{} batches", batches.len());
    }

    /// Every range of an object in a store is read from the version listed: one replaced
    /// while it is read is an error saying so, not a mix of two versions.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ranges_are_read_from_the_version_listed() {
        let store = Arc::new(TestStore::default());
        let path = Path::from("raw/a.avro");
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let put = store.put(&path, data.clone().into()).await.unwrap();
        let input = InputObject {
            store: store.clone(),
            url: "memory://t/raw/a.avro".into(),
            path: path.clone(),
            size: data.len() as u64,
            e_tag: put.e_tag.clone(),
            local: None,
        };
        assert!(input.e_tag.is_some());
        let mut chunks = read_chunks(&input, 10_000, 1);
        assert_eq!(chunks.next().await.unwrap().unwrap(), data[..10_000]);
        let mut other = data.clone();
        other.reverse();
        store.put(&path, other.into()).await.unwrap();
        let error = loop {
            match chunks.next().await {
                Some(Ok(_)) => {}
                Some(Err(e)) => break e.to_string(),
                None => panic!("read a replaced object to its end"),
            }
        };
        assert!(error.contains("changed while it was read"), "{error}");
        assert!(
            error.starts_with("memory://t/raw/a.avro: the object"),
            "{error}"
        );
    }

    /// Local files are read without object_store: the bytes are the file's (names with
    /// spaces, `#` and `%` too, in any chunking), and a file that shrank since it was listed or
    /// was removed is an error naming it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn local_files_are_read_directly() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for name in ["plain.avro", "a b#c%20d.avro"] {
            std::fs::write(dir.path().join(name), &data).unwrap();
        }
        let listed = list_inputs(
            &[dir.path().display().to_string()],
            &StorageOptions::default(),
        )
        .await
        .unwrap();
        assert_eq!(listed.len(), 2);
        let read = |input: &InputObject, chunk: usize| {
            let stream = read_chunks(input, chunk, 2);
            async move {
                stream
                    .collect::<Vec<_>>()
                    .await
                    .into_iter()
                    .collect::<Result<Vec<_>, _>>()
            }
        };
        for input in &listed {
            let local = input.local.as_ref().expect("a local file");
            assert!(local.exists(), "{}", local.display());
            for chunk in [1 << 20, 4096, 999] {
                let chunks = read(input, chunk).await.unwrap();
                assert_eq!(chunks.len(), data.len().div_ceil(chunk));
                assert_eq!(chunks.concat(), data, "{} in chunks of {chunk}", input.url);
            }
        }

        // Ranges read directly: the file's bytes, fewer where it ends.
        let input = listed
            .iter()
            .find(|i| i.url.ends_with("/plain.avro"))
            .unwrap();
        let chunks = LocalChunks::new(input.local.clone().unwrap());
        assert_eq!(chunks.read(70_000..100_000).unwrap(), data[70_000..]);
        assert_eq!(chunks.read(90_000..110_000).unwrap(), data[90_000..]);
        assert!(chunks.read(100_000..110_000).unwrap().is_empty());

        // Shrunk since it was listed, then removed.
        let file = input.local.clone().unwrap();
        std::fs::write(&file, &data[..50_000]).unwrap();
        let error = read(input, 4096).await.unwrap_err().to_string();
        assert!(error.contains("shorter than the 100000 bytes"), "{error}");
        std::fs::remove_file(&file).unwrap();
        let error = read(input, 4096).await.unwrap_err();
        assert!(
            matches!(
                error,
                SourceError::Read {
                    source: object_store::Error::NotFound { .. },
                    ..
                }
            ),
            "{error}"
        );
        assert!(error.to_string().contains("plain.avro"), "{error}");
    }

    /// One store per bucket, whatever the key.
    #[test]
    fn a_bucket_is_resolved_to_one_store() {
        let options = StorageOptions::default();
        let a = storage::resolve("s3://one/a.avro", &options).unwrap();
        let b = storage::resolve("s3://one/dir/b.avro", &options).unwrap();
        let c = storage::resolve("s3://two/a.avro", &options).unwrap();
        assert!(Arc::ptr_eq(&a.store, &b.store));
        assert!(!Arc::ptr_eq(&a.store, &c.store));
        assert_eq!(b.path.as_ref(), "dir/b.avro");
        assert_eq!(b.display, "s3://one/dir/b.avro");
    }
}
