//! An in-memory store for unit tests: it counts the writes that reach it, and its reads and
//! upload parts can take a while, as S3's do, with the most in flight at once recorded.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, UploadPart,
};

/// Calls in flight, and the most at once.
#[derive(Debug, Default)]
pub(crate) struct Gauge {
    now: AtomicUsize,
    peak: AtomicUsize,
}

impl Gauge {
    fn enter(&self) {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
    }

    fn leave(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }

    /// The most calls in flight at once.
    pub(crate) fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

/// [`InMemory`], counting PUTs (multipart uploads and copies among them) and deletes, with
/// `read_delay` on every GET (HEAD and ranged GET too) and `part_delay` on every upload part.
#[derive(Debug, Default)]
pub(crate) struct TestStore {
    pub(crate) inner: InMemory,
    pub(crate) puts: AtomicUsize,
    pub(crate) deletes: AtomicUsize,
    pub(crate) read_delay: Duration,
    pub(crate) part_delay: Duration,
    /// Reads in flight.
    pub(crate) reads: Gauge,
    /// Upload parts in flight.
    pub(crate) parts: Arc<Gauge>,
    /// Once, when an object whose path holds the text is written: this object put too, as
    /// another process writing meanwhile would (a run committing while this one converts).
    pub(crate) meanwhile: std::sync::Mutex<Option<(String, Path, bytes::Bytes)>>,
    /// Writes of objects whose path holds this text fail (a PUT, or starting or completing a
    /// multipart upload), as a store that refuses them would.
    pub(crate) refuse: Option<String>,
    /// Deletes of objects whose path holds this text fail.
    pub(crate) refuse_deletes: Option<String>,
}

impl TestStore {
    /// The error of a write [`Self::refuse`]s.
    fn refused(refuse: Option<&str>, location: &Path) -> object_store::Result<()> {
        match refuse {
            Some(text) if location.as_ref().contains(text) => Err(object_store::Error::Generic {
                store: "TestStore",
                source: format!("refused to write {location}").into(),
            }),
            _ => Ok(()),
        }
    }

    /// Writes the [`Self::meanwhile`] object if `location` is the one it waits for.
    async fn write_meanwhile(&self, location: &Path) {
        let due = {
            let mut slot = self.meanwhile.lock().unwrap_or_else(|e| e.into_inner());
            match slot.as_ref() {
                Some((text, _, _)) if location.as_ref().contains(text.as_str()) => slot.take(),
                _ => None,
            }
        };
        if let Some((_, path, bytes)) = due {
            let _ = object_store::ObjectStoreExt::put(&self.inner, &path, bytes.into()).await;
        }
    }
}

impl std::fmt::Display for TestStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TestStore")
    }
}

/// Sleeps for `delay`, if any.
async fn pause(delay: Duration) {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
}

/// An upload of [`TestStore`]: its parts take `delay` each and are counted in `parts`.
#[derive(Debug)]
struct TestUpload {
    inner: Box<dyn MultipartUpload>,
    location: Path,
    refuse: Option<String>,
    delay: Duration,
    parts: Arc<Gauge>,
}

#[async_trait::async_trait]
impl MultipartUpload for TestUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let upload = self.inner.put_part(data);
        let (delay, parts) = (self.delay, self.parts.clone());
        Box::pin(async move {
            parts.enter();
            pause(delay).await;
            let result = upload.await;
            parts.leave();
            result
        })
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        TestStore::refused(self.refuse.as_deref(), &self.location)?;
        self.inner.complete().await
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.inner.abort().await
    }
}

#[async_trait::async_trait]
impl ObjectStore for TestStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.puts.fetch_add(1, Ordering::SeqCst);
        self.write_meanwhile(location).await;
        Self::refused(self.refuse.as_deref(), location)?;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.puts.fetch_add(1, Ordering::SeqCst);
        self.write_meanwhile(location).await;
        Self::refused(self.refuse.as_deref(), location)?;
        Ok(Box::new(TestUpload {
            inner: self.inner.put_multipart_opts(location, opts).await?,
            location: location.clone(),
            refuse: self.refuse.clone(),
            delay: self.part_delay,
            parts: self.parts.clone(),
        }))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.reads.enter();
        pause(self.read_delay).await;
        let result = self.inner.get_opts(location, options).await;
        self.reads.leave();
        result
    }

    fn delete_stream(
        &self,
        locations: futures::stream::BoxStream<'static, object_store::Result<Path>>,
    ) -> futures::stream::BoxStream<'static, object_store::Result<Path>> {
        use futures::StreamExt;
        self.deletes.fetch_add(1, Ordering::SeqCst);
        let refuse = self.refuse_deletes.clone();
        // A refused path goes on as an error, which the inner store passes through.
        let locations = locations
            .map(move |l| match (l, refuse.as_deref()) {
                (Ok(p), Some(text)) if p.as_ref().contains(text) => {
                    Err(object_store::Error::Generic {
                        store: "TestStore",
                        source: format!("refused to delete {p}").into(),
                    })
                }
                (l, _) => l,
            })
            .boxed();
        self.inner.delete_stream(locations)
    }

    fn list(
        &self,
        prefix: Option<&Path>,
    ) -> futures::stream::BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.puts.fetch_add(1, Ordering::SeqCst);
        self.inner.copy_opts(from, to, options).await
    }
}
