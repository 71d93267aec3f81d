//! The partition job (`parqour run`): one manifest in, one committed Hive partition out.
//!
//! Stage: the orchestration around [`crate::convert`] for AWS Batch. The output of a manifest
//! goes to `<table>/<k1>=<v1>/.../part-<NNNNN>-<tag>.<codec>.parquet`, where the tag
//! ([`FileTag`]) is the manifest's generation (the first 16 hex digits of its hash), the
//! sequence of the marker the run read (its base) and a random id of the run; the commit is
//! the marker `<partition>/_SUCCESS` (Athena skips names starting with `_`), written last,
//! with a sequence one above the one it replaces. A part file the marker does not list is dead
//! once its base is below the marker's sequence (its run read an older marker, so that run's
//! conditional commit fails); one with the marker's sequence may belong to a run still
//! converting, and is left to it.
//!
//! The protocol, and what an Athena query of the partition sees at each step:
//!
//! 1. Read the marker. If it records this manifest's hash, the partition is already committed:
//!    delete dead part files (left by a run killed after step 5, or by a duplicate run) and
//!    stop. Normally there are none, and nothing is written. *Athena: the committed
//!    generation.*
//! 2. Check every input exists with the size and entity tag the manifest gives. A manifest
//!    whose inputs the committed generation holds, and more, is older (a retried job, a
//!    backfill's copy, after late data was committed): stop, replacing nothing.
//! 3. Delete dead part files. *Athena: the committed generation, plus leftovers of runs that
//!    read the same marker, until a commit.*
//! 4. Convert: part files appear one by one, each complete (single PUT, or a multipart upload
//!    that is visible only once completed). A run that fails deletes its files. *Athena: the
//!    previous generation (if any) plus the new files written so far; for a first run, a
//!    partial partition.*
//! 5. Unless the manifest URL now holds another manifest (then the run deletes its files and
//!    stops), write the marker: created if absent, otherwise replaced only if it is still the
//!    one read in step 1 (a conditional PUT; another run that committed meanwhile makes this
//!    one delete its files and fail).
//! 6. Delete the previous generation's files and every other dead part file, the dead-letter
//!    file the replaced marker names (the new generation sets its records aside again), and
//!    the dead-letter files of runs that never committed. *Athena: exactly the new
//!    generation.*
//!
//! So a partition holds every input row exactly once from step 6 on, whatever happened before:
//! runs killed at any point leave only files that the next commit deletes, and runs at the
//! same time delete only files whose run can no longer commit. Readers that must never see a
//! partition being written should register it (e.g. in Glue) only once `_SUCCESS` exists; a
//! rerun with a changed manifest shows both generations between steps 4 and 6. Files under the
//! partition that do not look like ours are left alone.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use object_store::path::{Path, PathPart};
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, UpdateVersion};
use serde::{Deserialize, Serialize};

use crate::convert::{
    ConvertError, ConvertOptions, ConvertReport, Destination, TableResolver, convert_to,
};
use crate::manifest::{DATA_TYPE_PLACEHOLDER, Manifest, ManifestError};
use crate::source::{InputObject, SourceError};
use crate::storage::{self, Location, StorageError, StorageOptions};

/// The name of the commit marker in a partition.
pub const MARKER: &str = "_SUCCESS";

/// Errors of a partition job.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The manifest is invalid.
    #[error("{url}: {source}")]
    Manifest {
        /// Where it came from.
        url: String,
        /// Why.
        source: ManifestError,
    },
    /// A location could not be resolved.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// An input is missing or unreadable.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// An input is not what the manifest says.
    #[error("{url}: the manifest expects {what} {expected}, the object has {found}")]
    InputChanged {
        /// The input.
        url: String,
        /// `size` or `etag`.
        what: &'static str,
        /// What the manifest says.
        expected: String,
        /// What the object has.
        found: String,
    },
    /// Converting failed.
    #[error(transparent)]
    Convert(#[from] ConvertError),
    /// Reading, writing or deleting objects of the partition failed.
    #[error("{url}: {source}")]
    Store {
        /// The object or prefix.
        url: String,
        /// The store's error.
        source: object_store::Error,
    },
    /// Another run committed the partition while this one was converting.
    #[error(
        "{url}: another run committed this partition meanwhile; this run's files are not committed"
    )]
    Concurrent {
        /// The marker.
        url: String,
    },
}

/// Who runs the job (from AWS Batch's environment), for logs and the marker.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct JobContext {
    /// `AWS_BATCH_JOB_ID`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// `AWS_BATCH_JOB_ATTEMPT`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
}

/// One input as recorded in the marker.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MarkerInput {
    /// Its URL.
    pub url: String,
    /// Its size.
    pub size: u64,
    /// Its entity tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Its block codec.
    pub codec: String,
    /// Blocks read.
    pub blocks: u64,
    /// Records read.
    pub records: u64,
    /// Records set aside in the dead-letter place.
    #[serde(default)]
    pub dead_lettered: u64,
    /// `container`, `envelopes` or `raw`.
    #[serde(default)]
    pub framing: String,
    /// SHA-256 of its header's writer schema JSON text (container files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writer_schema_sha256: Option<String>,
    /// Writer schema fingerprints (CRC-64-AVRO, signed as Java prints them) with the records
    /// converted with each (`<dataType>:<fingerprint>` for envelopes).
    #[serde(default)]
    pub fingerprints: std::collections::BTreeMap<String, u64>,
}

/// One output as recorded in the marker.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MarkerOutput {
    /// File name within the partition.
    pub file: String,
    /// Rows.
    pub rows: u64,
    /// Bytes.
    pub bytes: u64,
    /// CRC-32 (IEEE) of the file, hex.
    pub crc32: String,
    /// Row groups.
    pub row_groups: usize,
    /// The file's Parquet schema, when it is not the marker's `parquet_schema` (writer
    /// schemas differ within the partition: each has files of its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parquet_schema: Option<String>,
}

/// The commit marker, `<partition>/_SUCCESS`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Marker {
    /// Marker format version (1).
    pub format: u32,
    /// SHA-256 of the manifest's canonical form.
    pub manifest_hash: String,
    /// The generation in the file names.
    pub generation: String,
    /// Commits of the partition so far, this one included (0 in markers of parqour before
    /// 0.1: none recorded). A run's files carry the sequence of the marker it read (see
    /// [`FileTag`]).
    #[serde(default)]
    pub sequence: u64,
    /// Where the manifest was read from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_url: Option<String>,
    /// The table.
    pub table: String,
    /// Partition keys and values, in order.
    pub partition: serde_json::Map<String, serde_json::Value>,
    /// Inputs, in order.
    pub inputs: Vec<MarkerInput>,
    /// Output files, in order.
    pub outputs: Vec<MarkerOutput>,
    /// The data type of this table (`""` when none is named).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub data_type: String,
    /// Records read (all inputs of the manifest, all data types).
    pub records_in: u64,
    /// Rows written (to this table).
    pub records_out: u64,
    /// Records set aside in the dead-letter place (all inputs).
    #[serde(default)]
    pub records_dead_lettered: u64,
    /// The dead-letter file, if anything was set aside.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter: Option<String>,
    /// Bytes read.
    pub bytes_in: u64,
    /// Bytes written.
    pub bytes_out: u64,
    /// The Parquet schema of the first file; a file with another one names its own in
    /// [`MarkerOutput::parquet_schema`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parquet_schema: Option<String>,
    /// When the run started (Unix seconds).
    pub started_at: f64,
    /// Seconds it took up to the commit.
    pub seconds: f64,
    /// `parqour <version>`.
    pub tool: String,
    /// The AWS Batch job, when run by Batch.
    #[serde(default)]
    pub job: JobContext,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// This run converted and committed the partition.
    Committed {
        /// The marker written (the first table's, with several data types).
        marker: Box<Marker>,
        /// The markers of the other tables.
        others: Vec<Marker>,
        /// The conversion's report.
        report: Box<ConvertReport>,
        /// Files of earlier generations and killed runs deleted.
        deleted: usize,
    },
    /// The manifest at the run's URL changed since the run read it (late data made a newer
    /// one, whose job converts the partition): nothing was committed, and nothing need be.
    Superseded {
        /// The hash of the manifest found at the URL now.
        current: String,
    },
    /// The partition's committed generation holds every input of this manifest and more: this
    /// manifest is older (a retried job, or a backfill's copy of it, after late data was
    /// committed), and replacing the generation would drop the late records. Nothing was
    /// written. To commit fewer inputs on purpose, delete the marker first.
    Stale {
        /// The committed manifest's hash.
        committed: String,
        /// Inputs of the committed generation.
        committed_inputs: usize,
    },
    /// The marker already recorded this manifest.
    AlreadyCommitted {
        /// The marker found (the first table's).
        marker: Box<Marker>,
        /// Leftover files deleted (normally none).
        deleted: usize,
    },
}

/// Where a manifest's partition lives.
#[derive(Debug, Clone)]
pub struct Partition {
    /// The partition's prefix.
    pub location: Location,
    /// The marker's path.
    pub marker: Path,
}

impl Partition {
    /// The partition of `manifest` under its table (the first, with several data types).
    pub fn of(manifest: &Manifest, storage: &StorageOptions) -> Result<Self, JobError> {
        let (_, table) = manifest.tables().into_iter().next().unwrap_or_default();
        Self::in_table(manifest, &table, storage)
    }

    /// The partition of `manifest` under the table at `table_url`.
    pub fn in_table(
        manifest: &Manifest,
        table_url: &str,
        storage: &StorageOptions,
    ) -> Result<Self, JobError> {
        let table = storage::resolve(table_url, storage)?;
        let mut path = table.path.clone();
        for segment in manifest.partition_segments() {
            // Already escaped: no `/`, no control characters, never `.` or `..`.
            let part = PathPart::parse(&segment).map_err(|e| StorageError::Location {
                location: table_url.to_string(),
                message: e.to_string(),
            })?;
            path = path.join(part);
        }
        let display = format!(
            "{}/{}",
            table_url.trim_end_matches('/'),
            manifest.partition_path()
        );
        let local = table
            .local
            .as_ref()
            .map(|d| d.join(manifest.partition_path()));
        let marker = path.clone().join(MARKER);
        Ok(Self {
            location: Location {
                store: table.store,
                path,
                display,
                local,
            },
            marker,
        })
    }

    fn url(&self, path: &Path) -> String {
        self.location.url_of(path)
    }
}

/// What a run's file names carry after `part-NNNNN-` (and `deadletter-`):
/// `<generation>-<base>-<run>`. The generation is the manifest's; the base is the sequence
/// of the newest marker the run read before converting (0 without one); the run is a random
/// id of the run. A file whose base is below the partition's marker's sequence was written by
/// a run that read an older marker: that run's conditional commit fails, so the file can go.
/// One with the marker's sequence may belong to a run still converting, which may still
/// commit: only that run, or a later commit, deletes it. Names of parqour before 0.1 carry
/// the generation alone (base 0, no run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileTag {
    /// The first 16 hex digits of the manifest's hash.
    pub generation: String,
    /// The sequence of the marker the run read.
    pub base: u64,
    /// The run's id (8 hex digits), `None` in names of parqour before 0.1.
    pub run: Option<String>,
}

impl FileTag {
    /// Parses `<16 hex>` or `<16 hex>-<base>-<8 hex>`.
    pub fn parse(s: &str) -> Option<Self> {
        let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
        let (generation, rest) = s.split_at_checked(16)?;
        if !hex(generation, 16) {
            return None;
        }
        let (base, run) = match rest.strip_prefix('-') {
            None if rest.is_empty() => (0, None),
            None => return None,
            Some(rest) => {
                let (base, run) = rest.split_once('-')?;
                let digits = !base.is_empty() && base.bytes().all(|b| b.is_ascii_digit());
                if !digits || !hex(run, 8) {
                    return None;
                }
                (base.parse().ok()?, Some(run.to_string()))
            }
        };
        Some(Self {
            generation: generation.to_string(),
            base,
            run,
        })
    }

    /// Whether no run can commit the file any more once the partition's marker has
    /// `sequence`, or it is this run's (`own`).
    fn is_dead(&self, sequence: u64, own: &str) -> bool {
        self.base < sequence || self.run.as_deref() == Some(own)
    }
}

impl std::fmt::Display for FileTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.run {
            Some(run) => write!(f, "{}-{}-{run}", self.generation, self.base),
            None => f.write_str(&self.generation),
        }
    }
}

/// A random id for a run's file names (8 hex digits).
pub(crate) fn new_run_id() -> String {
    use std::hash::{BuildHasher, RandomState};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let h = RandomState::new().hash_one((nanos, std::process::id()));
    format!("{:08x}", h as u32)
}

/// Is `name` a part file written by parqour (`part-NNNNN-<tag>.<codec>.parquet`), or the
/// local staging file for one (`...parquet#N`, left by a killed run)? Returns its tag.
pub fn part_tag(name: &str) -> Option<FileTag> {
    let name = storage::staged_name(name).unwrap_or(name);
    let rest = name.strip_prefix("part-")?;
    let (num, rest) = rest.split_at_checked(5)?;
    if !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let rest = rest.strip_prefix('-')?.strip_suffix(".parquet")?;
    // `<tag>.<codec>`: the tag holds no dot.
    let (tag, codec) = rest.split_once('.')?;
    if codec.is_empty() || codec.contains('.') {
        return None;
    }
    FileTag::parse(tag)
}

/// Is `name` a dead-letter file of a partition job (`deadletter-<tag>.avro`)? Returns its tag.
pub fn dead_letter_tag(name: &str) -> Option<FileTag> {
    FileTag::parse(name.strip_prefix("deadletter-")?.strip_suffix(".avro")?)
}

/// The marker, if there is one: its version (for the conditional replace) and its content
/// (`None` when it cannot be read: it then commits nothing we know of, and is replaced).
async fn read_marker(
    partition: &Partition,
) -> Result<Option<(Option<Marker>, UpdateVersion)>, JobError> {
    let store = &partition.location.store;
    let url = partition.url(&partition.marker);
    let got = match store.get(&partition.marker).await {
        Ok(g) => g,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(source) => return Err(JobError::Store { url, source }),
    };
    let version = UpdateVersion {
        e_tag: got.meta.e_tag.clone(),
        version: got.meta.version.clone(),
    };
    let bytes = got.bytes().await.map_err(|source| JobError::Store {
        url: url.clone(),
        source,
    })?;
    let marker = serde_json::from_slice::<Marker>(&bytes)
        .inspect_err(|e| tracing::warn!(marker = %url, "ignoring an unreadable marker: {e}"))
        .ok();
    Ok(Some((marker, version)))
}

/// Our part files directly in the partition, with their tags.
async fn list_parts(partition: &Partition) -> Result<Vec<(Path, FileTag)>, JobError> {
    let store = &partition.location.store;
    let listing = store
        .list_with_delimiter(Some(&partition.location.path))
        .await;
    let listing = match listing {
        Ok(l) => l,
        Err(object_store::Error::NotFound { .. }) => return Ok(Vec::new()),
        Err(source) => {
            return Err(JobError::Store {
                url: partition.location.display.clone(),
                source,
            });
        }
    };
    let mut out = Vec::new();
    for meta in listing.objects {
        let Some(name) = meta.location.filename() else {
            continue;
        };
        if let Some(tag) = part_tag(name) {
            out.push((meta.location.clone(), tag));
        } else if name != MARKER && !name.starts_with('_') && !name.starts_with('.') {
            tracing::warn!(file = %partition.url(&meta.location), "leaving a file parqour did not write");
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Deletes our part files that `marker` (the partition's) does not list and that no run can
/// commit any more ([`FileTag::is_dead`]: written by runs that read an older marker, or by this
/// run `own`), and, in a local partition, the staging files of part files
/// (`part-...parquet#N`) that a killed run left (see [`storage::remove_local_staging`]):
/// readers of the folder (Spark, Hive) would trip on them. Files of a run that read this
/// marker and is still converting are left to it.
async fn delete_dead(partition: &Partition, marker: &Marker, own: &str) -> Result<usize, JobError> {
    let listed: HashSet<&str> = marker.outputs.iter().map(|o| o.file.as_str()).collect();
    let dead: Vec<Path> = list_parts(partition)
        .await?
        .into_iter()
        .filter(|(p, tag)| {
            tag.is_dead(marker.sequence, own) && !p.filename().is_some_and(|f| listed.contains(f))
        })
        .map(|(p, _)| p)
        .collect();
    let mut deleted = delete_all(partition, &dead).await?;
    if let Some(dir) = &partition.location.local {
        // A run still converting holds its staging files locked: they are left to it.
        for file in storage::remove_local_staging(dir, |name| part_tag(name).is_some())? {
            tracing::info!(file = %file.display(), "deleted a killed run's staging file");
            deleted += 1;
        }
    }
    Ok(deleted)
}

/// Deletes this run's part files (run `own`) from every partition, and its dead-letter file
/// unless `keep_dead_letters`: the run ends without committing them. Failures are logged: the
/// run's own error is the one to report, and the next commit deletes what is left.
async fn delete_own(
    partitions: &[(String, Partition)],
    dead_letter: Option<&Location>,
    own: &str,
    keep_dead_letters: bool,
) {
    for (_, partition) in partitions {
        let result = match list_parts(partition).await {
            Ok(parts) => {
                let mine: Vec<Path> = parts
                    .into_iter()
                    .filter(|(_, tag)| tag.run.as_deref() == Some(own))
                    .map(|(p, _)| p)
                    .collect();
                delete_all(partition, &mine).await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::warn!(partition = %partition.location.display, error = %e, "could not delete this run's files");
        }
    }
    if !keep_dead_letters && let Some(place) = dead_letter {
        delete_dead_letters(place, |tag| tag.run.as_deref() == Some(own)).await;
    }
}

/// Deletes the dead-letter files of partition jobs in `place` (a partition's dead-letter folder)
/// whose tags `dead` picks; returns how many. Failures are logged, not returned.
async fn delete_dead_letters(place: &Location, dead: impl Fn(&FileTag) -> bool) -> usize {
    let listing = match place.store.list_with_delimiter(Some(&place.path)).await {
        Ok(l) => l,
        Err(object_store::Error::NotFound { .. }) => return 0,
        Err(e) => {
            tracing::warn!(place = %place.display, error = %e, "could not list the dead-letter place");
            return 0;
        }
    };
    let mut deleted = 0;
    for meta in listing.objects {
        let file = place.url_of(&meta.location);
        let Some(tag) = meta.location.filename().and_then(dead_letter_tag) else {
            continue;
        };
        if !dead(&tag) {
            continue;
        }
        match place.store.delete(&meta.location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {
                tracing::info!(%file, "deleted dead letters no marker names");
                deleted += 1;
            }
            Err(e) => tracing::warn!(%file, error = %e, "could not delete dead letters"),
        }
    }
    deleted
}

async fn delete_all(partition: &Partition, paths: &[Path]) -> Result<usize, JobError> {
    for p in paths {
        match partition.location.store.delete(p).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(source) => {
                return Err(JobError::Store {
                    url: partition.url(p),
                    source,
                });
            }
        }
        tracing::info!(file = %partition.url(p), "deleted");
    }
    Ok(paths.len())
}

/// Checks the manifest's inputs exist as described and returns them as objects.
pub async fn resolve_inputs(
    manifest: &Manifest,
    storage: &StorageOptions,
) -> Result<Vec<InputObject>, JobError> {
    use futures::StreamExt;
    let locations = manifest
        .raw
        .inputs
        .iter()
        .map(|spec| storage::resolve(spec.url(), storage))
        .collect::<Result<Vec<_>, _>>()?;
    // The same object twice, however spelled (`s3a://`, `//` in a key, `./` in a path, a
    // `file://` URL of a path), would be converted twice.
    let mut seen = HashMap::new();
    for (i, location) in locations.iter().enumerate() {
        let key = match storage::local_file(location, &location.path) {
            Some(file) => format!("file {}", file.display()),
            None => format!(
                "{:p} {}",
                Arc::as_ptr(&location.store) as *const (),
                location.path
            ),
        };
        if let Some(first) = seen.insert(key, i) {
            return Err(JobError::Manifest {
                url: manifest.raw.inputs[i].url().to_string(),
                source: ManifestError::Invalid(format!(
                    "inputs {first} and {i} are the same object, {}",
                    manifest.raw.inputs[first].url()
                )),
            });
        }
    }
    // Looked up many at a time, checked in order.
    let heads: Vec<_> = futures::stream::iter(
        locations
            .iter()
            .map(|location| location.store.head(&location.path)),
    )
    .buffered(crate::source::LOOKUPS_IN_FLIGHT)
    .collect()
    .await;
    let mut out = Vec::with_capacity(manifest.raw.inputs.len());
    for ((spec, location), head) in manifest.raw.inputs.iter().zip(&locations).zip(heads) {
        let url = spec.url().to_string();
        let meta = match head {
            Ok(m) => m,
            Err(object_store::Error::NotFound { .. }) => {
                // S3 answers a HEAD in a missing bucket with a bare 404; a listing says
                // NoSuchBucket (a configuration error, exit 78, not a missing object).
                let listed = location.store.list(Some(&location.path)).next().await;
                if let Some(Err(source)) = listed
                    && !matches!(source, object_store::Error::NotFound { .. })
                {
                    return Err(SourceError::Read { url, source }.into());
                }
                return Err(SourceError::NotFound { location: url }.into());
            }
            Err(source) => return Err(SourceError::Read { url, source }.into()),
        };
        if let Some(size) = spec.size()
            && size != meta.size
        {
            return Err(JobError::InputChanged {
                url,
                what: "size",
                expected: size.to_string(),
                found: meta.size.to_string(),
            });
        }
        if let Some(etag) = spec.etag()
            && meta.e_tag.as_deref() != Some(etag)
        {
            return Err(JobError::InputChanged {
                url,
                what: "etag",
                expected: etag.to_string(),
                found: meta.e_tag.unwrap_or_default(),
            });
        }
        out.push(InputObject {
            store: location.store.clone(),
            local: storage::local_file(location, &meta.location),
            path: meta.location,
            url,
            size: meta.size,
            e_tag: meta.e_tag,
        });
    }
    Ok(out)
}

/// Runs the partition job for `manifest`; see the module docs for the protocol. With several
/// data types (a `{data_type}` placeholder in the table URL) each table's partition follows the
/// protocol on its own, from one conversion of the inputs.
pub async fn run(
    manifest: &Manifest,
    manifest_url: Option<&str>,
    storage: &StorageOptions,
    options: &ConvertOptions,
    job: &JobContext,
) -> Result<Outcome, JobError> {
    let started = Instant::now();
    let started_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let mut partitions = Vec::new();
    for (data_type, table) in manifest.tables() {
        partitions.push((data_type, Partition::in_table(manifest, &table, storage)?));
    }
    let generation = manifest.generation().to_string();

    // 1. Already committed (every table)?
    let mut previous = Vec::with_capacity(partitions.len());
    for (_, partition) in &partitions {
        previous.push(read_marker(partition).await?);
    }
    let current = |i: usize| match previous.get(i) {
        Some(Some((Some(m), _))) => Some(m),
        _ => None,
    };
    // This run's files carry the newest sequence it read, and its own id.
    let base = (0..partitions.len())
        .filter_map(|i| current(i).map(|m| m.sequence))
        .max()
        .unwrap_or(0);
    let run = new_run_id();
    let tag = FileTag {
        generation: generation.clone(),
        base,
        run: Some(run.clone()),
    };
    let committed: Vec<&Marker> = previous
        .iter()
        .filter_map(|p| match p {
            Some((Some(marker), _)) if marker.manifest_hash == manifest.hash => Some(marker),
            _ => None,
        })
        .collect();
    if committed.len() == partitions.len()
        && let Some(first) = committed.first()
    {
        let mut deleted = 0;
        for ((_, partition), marker) in partitions.iter().zip(&committed) {
            deleted += delete_dead(partition, marker, &run).await?;
        }
        return Ok(Outcome::AlreadyCommitted {
            marker: Box::new((*first).clone()),
            deleted,
        });
    }

    if let Some(current) = superseded(manifest, manifest_url, storage).await {
        return Ok(Outcome::Superseded { current });
    }

    // 2. Inputs as described.
    let inputs = resolve_inputs(manifest, storage).await?;
    for i in 0..partitions.len() {
        let listed = inputs.iter().map(|i| (i.url.as_str(), i.e_tag.as_deref()));
        if let Some(m) = current(i)
            && crate::manifest::holds_more(
                m.inputs.iter().map(|i| (i.url.as_str(), i.etag.as_deref())),
                listed,
            )
        {
            tracing::warn!(committed = %m.manifest_hash, "the committed generation holds every input of this manifest and more: not replacing it");
            return Ok(Outcome::Stale {
                committed: m.manifest_hash.clone(),
                committed_inputs: m.inputs.len(),
            });
        }
    }

    // 3. Leftovers no run can commit any more (of runs that read an older marker than the
    // partition's); those of runs that read the same marker may still be converting.
    let mut deleted = 0;
    for (i, (_, partition)) in partitions.iter().enumerate() {
        if let Some(marker) = current(i) {
            deleted += delete_dead(partition, marker, &run).await?;
        }
    }

    // 4. Convert.
    let by_type: HashMap<String, Location> = partitions
        .iter()
        .map(|(t, p)| (t.clone(), p.location.clone()))
        .collect();
    let default = partitions
        .first()
        .map(|(_, p)| p.location.clone())
        .ok_or_else(|| StorageError::Location {
            location: manifest.raw.table.clone(),
            message: "no table".into(),
        })?;
    let per_type: Option<TableResolver> =
        manifest.raw.table.contains(DATA_TYPE_PLACEHOLDER).then(|| {
            let by_type = by_type.clone();
            let table = manifest.raw.table.clone();
            Arc::new(move |t: &str| {
                by_type
                    .get(t)
                    .cloned()
                    .ok_or_else(|| StorageError::Location {
                        location: table.clone(),
                        message: format!("data type `{t}` is not in the manifest's data_types"),
                    })
            }) as TableResolver
        });
    let destination = Destination { default, per_type };
    let options = ConvertOptions {
        generation: Some(tag.to_string()),
        ..options.clone()
    };
    let dead_letter = options.dead_letter.clone();
    // Local folders this run makes (partitions, the dead-letter place): a run that fails
    // removes them again if it left nothing in them.
    let made = storage::missing_folders(
        partitions
            .iter()
            .map(|(_, p)| &p.location)
            .chain(dead_letter.as_ref())
            .filter_map(|l| l.local.as_deref()),
    );
    let report = match convert_to(inputs.clone(), &destination, &options).await {
        Ok(report) => report,
        Err(e) => {
            // Nothing of this run will be committed: its files go now, not at the next commit
            // (its dead letters stay, to see why it failed; the next commit deletes them).
            delete_own(&partitions, dead_letter.as_ref(), &run, true).await;
            storage::remove_empty_folders(&made);
            return Err(e.into());
        }
    };

    // 5. Commit, table by table; unless a newer manifest replaced this one meanwhile (its job
    // converts the partition; committing this older one after it would drop the late data).
    if let Some(current) = superseded(manifest, manifest_url, storage).await {
        tracing::warn!(url = manifest_url.unwrap_or_default(), %current, "the manifest changed while converting: not committing");
        delete_own(&partitions, dead_letter.as_ref(), &run, false).await;
        storage::remove_empty_folders(&made);
        return Ok(Outcome::Superseded { current });
    }
    let mut markers = Vec::with_capacity(partitions.len());
    for ((data_type, partition), prev) in partitions.iter().zip(&previous) {
        let mut marker = build_marker(
            manifest,
            manifest_url,
            &generation,
            data_type,
            &inputs,
            &report,
            job,
            started_at,
            started,
        );
        marker.sequence = base + 1;
        let marker_url = partition.url(&partition.marker);
        if let Some((Some(m), _)) = prev
            && m.manifest_hash == manifest.hash
        {
            // Committed by a run killed between two tables' commits: keep it.
            markers.push(m.clone());
            continue;
        }
        let body = serde_json::to_vec_pretty(&marker).map_err(|e| JobError::Store {
            url: marker_url.clone(),
            source: object_store::Error::Generic {
                store: "marker",
                source: Box::new(e),
            },
        })?;
        if let Err(e) = write_marker(partition, prev.as_ref().map(|(_, v)| v.clone()), body).await {
            // Another run committed meanwhile (or the store failed): this run's files are not
            // committed, nor its dead letters unless a table committed before this one names
            // them (that table keeps its marker and files).
            let uncommitted = &partitions[markers.len()..];
            delete_own(uncommitted, dead_letter.as_ref(), &run, !markers.is_empty()).await;
            return Err(e);
        }
        tracing::info!(marker = %marker_url, generation = %generation, rows = marker.records_out, "committed");
        markers.push(marker);
    }

    // 6. Everything of ours that the new markers do not list goes; so does the dead-letter file
    // of the generation they replace (its records are this generation's too: set aside again,
    // or converted), unless they name it.
    for ((_, partition), marker) in partitions.iter().zip(&markers) {
        deleted += delete_dead(partition, marker, &run).await?;
    }
    let named: HashSet<&str> = markers
        .iter()
        .filter_map(|m| m.dead_letter.as_deref())
        .collect();
    let replaced: HashSet<&str> = previous
        .iter()
        .filter_map(|p| match p {
            Some((Some(m), _)) if m.manifest_hash != manifest.hash => m.dead_letter.as_deref(),
            _ => None,
        })
        .filter(|url| !named.contains(url))
        .collect();
    for url in replaced {
        deleted += usize::from(delete_dead_letter(url, storage).await);
    }
    // And the dead letters of runs that never committed (failed, superseded, killed): a replay
    // of the folder would give their records again.
    if let Some(place) = &dead_letter {
        let named: HashSet<&str> = named.iter().filter_map(|u| u.rsplit('/').next()).collect();
        let sequence = markers.iter().map(|m| m.sequence).min().unwrap_or(0);
        deleted += delete_dead_letters(place, |t| {
            !named.contains(format!("deadletter-{t}.avro").as_str()) && t.is_dead(sequence, &run)
        })
        .await;
    }
    let mut markers = markers.into_iter();
    let marker = markers.next().ok_or_else(|| StorageError::Location {
        location: manifest.raw.table.clone(),
        message: "no table".into(),
    })?;
    Ok(Outcome::Committed {
        marker: Box::new(marker),
        others: markers.collect(),
        report: Box::new(report),
        deleted,
    })
}

/// Deletes the dead-letter file at `url` (a replaced generation's); whether it was there. A
/// failure is logged, not returned: the partition is committed, and the file's records are
/// also in the new generation's dead letters or Parquet files.
async fn delete_dead_letter(url: &str, storage: &StorageOptions) -> bool {
    let result = match storage::resolve(url, storage) {
        Ok(location) => match location.store.delete(&location.path).await {
            Err(object_store::Error::NotFound { .. }) => return false,
            other => other.map_err(|e| e.to_string()),
        },
        Err(e) => Err(e.to_string()),
    };
    match result {
        Ok(()) => {
            tracing::info!(file = url, "deleted the replaced generation's dead letters");
            true
        }
        Err(e) => {
            tracing::warn!(file = url, error = %e, "could not delete the replaced generation's dead letters");
            false
        }
    }
}

/// The hash of the manifest now at `url` when it is a different manifest than `manifest`.
/// A manifest that cannot be read now (deleted, say) does not stop the run.
async fn superseded(
    manifest: &Manifest,
    url: Option<&str>,
    storage: &StorageOptions,
) -> Option<String> {
    let location = storage::resolve(url?, storage).ok()?;
    let bytes = match location.store.get(&location.path).await {
        Ok(got) => got.bytes().await.ok()?,
        Err(e) => {
            tracing::warn!(url, "cannot read the manifest again: {e}");
            return None;
        }
    };
    let text = std::str::from_utf8(&bytes).ok()?;
    let now = Manifest::parse(text).ok()?;
    (now.hash != manifest.hash).then_some(now.hash)
}

#[allow(clippy::too_many_arguments)]
fn build_marker(
    manifest: &Manifest,
    manifest_url: Option<&str>,
    generation: &str,
    data_type: &str,
    inputs: &[InputObject],
    report: &ConvertReport,
    job: &JobContext,
    started_at: f64,
    started: Instant,
) -> Marker {
    // With one table, every output is its; with several, those of its data type.
    let several = manifest.raw.table.contains(DATA_TYPE_PLACEHOLDER);
    let outputs: Vec<&crate::convert::OutputFile> = report
        .outputs
        .iter()
        .filter(|o| !several || o.data_type == data_type)
        .collect();
    let schema_text = |o: &crate::convert::OutputFile| {
        let schema = parquet::arrow::ArrowSchemaConverter::new()
            .convert(&o.schema)
            .ok()?;
        let mut text = Vec::new();
        parquet::schema::printer::print_schema(&mut text, schema.root_schema());
        String::from_utf8(text).ok()
    };
    let parquet_schema = outputs.first().and_then(|o| schema_text(o));
    Marker {
        format: 1,
        manifest_hash: manifest.hash.clone(),
        generation: generation.to_string(),
        sequence: 0,
        manifest_url: manifest_url.map(str::to_string),
        table: manifest.raw.table.clone(),
        partition: manifest.raw.partition.clone(),
        inputs: inputs
            .iter()
            .zip(&report.inputs)
            .map(|(i, r)| MarkerInput {
                url: i.url.clone(),
                size: i.size,
                etag: i.e_tag.clone(),
                codec: r.codec.clone(),
                blocks: r.blocks,
                records: r.records,
                dead_lettered: r.dead_lettered,
                framing: r.framing.to_string(),
                writer_schema_sha256: r.writer_schema_sha256.clone(),
                fingerprints: r.fingerprints.clone(),
            })
            .collect(),
        outputs: outputs
            .iter()
            .map(|o| MarkerOutput {
                file: o.path.filename().unwrap_or_default().to_string(),
                rows: o.rows,
                bytes: o.bytes,
                crc32: o.crc32.clone(),
                row_groups: o.row_groups,
                parquet_schema: outputs
                    .first()
                    .is_some_and(|first| first.schema != o.schema)
                    .then(|| schema_text(o))
                    .flatten(),
            })
            .collect(),
        data_type: data_type.to_string(),
        records_in: report.records,
        records_out: outputs.iter().map(|o| o.rows).sum(),
        records_dead_lettered: report.dead_letter.records,
        dead_letter: report.dead_letter.url.clone(),
        bytes_in: report.bytes_in,
        bytes_out: outputs.iter().map(|o| o.bytes).sum(),
        parquet_schema,
        started_at,
        seconds: started.elapsed().as_secs_f64(),
        tool: format!("parqour {}", env!("CARGO_PKG_VERSION")),
        job: job.clone(),
    }
}

async fn write_marker(
    partition: &Partition,
    previous: Option<UpdateVersion>,
    body: Vec<u8>,
) -> Result<(), JobError> {
    let store: &Arc<dyn ObjectStore> = &partition.location.store;
    let url = partition.url(&partition.marker);
    let mode = match previous {
        None => PutMode::Create,
        Some(v) => PutMode::Update(v),
    };
    let conditional = store
        .put_opts(
            &partition.marker,
            body.clone().into(),
            PutOptions::from(mode),
        )
        .await;
    match conditional {
        Ok(_) => Ok(()),
        Err(
            object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. },
        ) => Err(JobError::Concurrent { url }),
        // Stores without conditional updates (the local filesystem): replace it.
        Err(
            object_store::Error::NotImplemented { .. } | object_store::Error::NotSupported { .. },
        ) => store
            .put(&partition.marker, body.into())
            .await
            .map(|_| ())
            .map_err(|source| JobError::Store { url, source }),
        Err(source) => Err(JobError::Store { url, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::avro::codec::Codec;
    use crate::test_store::TestStore;
    use std::sync::atomic::Ordering;

    fn manifest(bucket: &str, inputs: &[&str], extra: &str) -> Manifest {
        let inputs: Vec<String> = inputs
            .iter()
            .map(|i| format!("\"memory://{bucket}/raw/{i}\""))
            .collect();
        Manifest::parse(&format!(
            r#"{{"version":1,"table":"memory://{bucket}/lake/events",
                "partition":{{"dt":"2026-11-26","hour":"03"}},
                "inputs":[{}]{extra}}}"#,
            inputs.join(",")
        ))
        .unwrap()
    }

    async fn setup(bucket: &str) -> Arc<TestStore> {
        let store = Arc::new(TestStore::default());
        crate::storage::register_memory_store(bucket, store.clone());
        for (i, name) in ["a.avro", "b.avro", "c.avro"].iter().enumerate() {
            let data =
                crate::demo::write_events(Vec::new(), Codec::Deflate, i as u64 * 1000, 1000, 9)
                    .unwrap();
            store
                .put(&Path::from(format!("raw/{name}")), data.into())
                .await
                .unwrap();
        }
        store
    }

    async fn files(store: &TestStore) -> Vec<String> {
        let mut out: Vec<String> = store
            .list_with_delimiter(Some(&Path::from("lake/events/dt=2026-11-26/hour=03")))
            .await
            .unwrap()
            .objects
            .into_iter()
            .map(|m| m.location.filename().unwrap().to_string())
            .collect();
        out.sort();
        out
    }

    /// The partition's part files: their tags, in name order.
    async fn tags(store: &TestStore) -> Vec<FileTag> {
        files(store)
            .await
            .iter()
            .filter_map(|f| part_tag(f))
            .collect()
    }

    /// Runs `m` with the default options, which must not fail.
    async fn run_ok(m: &Manifest) -> Outcome {
        run(
            m,
            None,
            &StorageOptions::default(),
            &opts(),
            &JobContext::default(),
        )
        .await
        .unwrap()
    }

    fn opts() -> ConvertOptions {
        ConvertOptions {
            threads: 2,
            ..ConvertOptions::default()
        }
    }

    /// A partition whose writer schema changed holds files of two schemas: the marker gives
    /// the first file's, and each file of another its own. Inputs of the first schema after
    /// the other go on into its file (one file per schema, not one per change).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_marker_names_the_schema_of_each_file_that_differs() {
        let store = setup("two-schemas").await;
        let mut w = crate::avro::writer::ContainerWriter::new(
            Vec::new(),
            r#"{"type":"record","name":"R","fields":[{"name":"x","type":"long"}]}"#,
            Codec::Null,
            [7; 16],
            &std::collections::BTreeMap::new(),
        )
        .unwrap();
        for i in 0..10 {
            let mut datum = Vec::new();
            crate::avro::cursor::encode_long(i, &mut datum);
            w.append(&datum).unwrap();
        }
        let other = w.finish().unwrap();
        store
            .put(&Path::from("raw/x.avro"), other.into())
            .await
            .unwrap();
        let m = manifest("two-schemas", &["a.avro", "x.avro", "b.avro"], "");
        let Outcome::Committed { marker, .. } = run_ok(&m).await else {
            panic!("expected a commit")
        };
        let schemas: Vec<Option<&str>> = marker
            .outputs
            .iter()
            .map(|o| o.parquet_schema.as_deref())
            .collect();
        assert_eq!(schemas.len(), 2, "{:?}", marker.outputs);
        let first = marker.parquet_schema.as_deref().unwrap();
        assert!(first.contains("event_id"), "{first}");
        assert_eq!(schemas[0], None);
        assert!(schemas[1].is_some_and(|s| s.contains("x") && !s.contains("event_id")));
        assert_eq!(
            (marker.outputs[1].rows, marker.records_out),
            (10, marker.outputs[0].rows + 10),
            "a.avro and b.avro in the first file"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn first_run_commits_and_a_rerun_writes_nothing() {
        let store = setup("commit-rerun").await;
        let m = manifest("commit-rerun", &["a.avro", "b.avro"], "");
        let out = run_ok(&m).await;
        let Outcome::Committed { marker, .. } = out else {
            panic!("expected a commit")
        };
        assert_eq!(marker.records_in, 2000);
        assert_eq!(marker.records_out, 2000);
        let listed = files(&store).await;
        assert_eq!(listed.len(), 2, "{listed:?}");
        assert_eq!(listed[0], MARKER);
        let tag = part_tag(&listed[1]).unwrap();
        assert!(listed[1].starts_with("part-00000-"), "{listed:?}");
        assert_eq!((tag.generation.as_str(), tag.base), (m.generation(), 0));
        assert_eq!(marker.sequence, 1);

        let (puts, deletes) = (
            store.puts.load(Ordering::SeqCst),
            store.deletes.load(Ordering::SeqCst),
        );
        let again = run_ok(&m).await;
        assert!(matches!(
            again,
            Outcome::AlreadyCommitted { deleted: 0, .. }
        ));
        assert_eq!(
            store.puts.load(Ordering::SeqCst),
            puts,
            "a rerun must not write"
        );
        assert_eq!(store.deletes.load(Ordering::SeqCst), deletes);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_changed_manifest_replaces_the_generation() {
        let store = setup("commit-change").await;
        let m1 = manifest("commit-change", &["a.avro"], "");
        run_ok(&m1).await;
        // Late data: a new object joins the partition.
        let m2 = manifest("commit-change", &["a.avro", "c.avro"], "");
        assert_ne!(m1.generation(), m2.generation());
        let out = run_ok(&m2).await;
        let Outcome::Committed {
            marker, deleted, ..
        } = out
        else {
            panic!("expected a commit")
        };
        assert_eq!(deleted, 1);
        assert_eq!(marker.records_out, 2000);
        assert_eq!(marker.sequence, 2);
        let tags = tags(&store).await;
        assert_eq!(tags.len(), 1, "{tags:?}");
        assert_eq!(
            (tags[0].generation.as_str(), tags[0].base),
            (m2.generation(), 1)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn leftovers_of_killed_runs_are_removed() {
        let store = setup("commit-killed").await;
        let m1 = manifest("commit-killed", &["a.avro"], "");
        let m2 = manifest("commit-killed", &["a.avro", "b.avro"], "");
        let dir = "lake/events/dt=2026-11-26/hour=03";
        // A run of m2 killed after writing part of its files, and a run of another manifest
        // killed likewise; plus a foreign file that must stay.
        for name in [
            format!("part-00000-{}.snappy.parquet", m2.generation()),
            format!("part-00007-{}.snappy.parquet", m2.generation()),
            "part-00000-00000000deadbeef.snappy.parquet".to_string(),
            "notes.txt".to_string(),
        ] {
            store
                .put(&Path::from(format!("{dir}/{name}")), "junk".into())
                .await
                .unwrap();
        }
        run_ok(&m1).await;
        let out = run_ok(&m2).await;
        assert!(matches!(out, Outcome::Committed { .. }));
        let listed = files(&store).await;
        assert_eq!(listed.len(), 3, "{listed:?}");
        assert_eq!(&listed[..2], [MARKER, "notes.txt"]);
        assert_eq!(part_tag(&listed[2]).unwrap().generation, m2.generation());

        // Killed after the marker, before the old generation was deleted: the rerun cleans up.
        let old = format!("{dir}/part-00000-{}.snappy.parquet", m1.generation());
        store
            .put(&Path::from(old.clone()), "old".into())
            .await
            .unwrap();
        let out = run_ok(&m2).await;
        assert!(matches!(out, Outcome::AlreadyCommitted { deleted: 1, .. }));
        assert!(store.head(&Path::from(old)).await.is_err());
    }

    /// A job whose manifest URL now holds a newer manifest (late data) commits nothing: the
    /// newer job converts the partition, and this one must not replace its generation.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_superseded_manifest_commits_nothing() {
        let store = setup("superseded").await;
        let storage = StorageOptions::default();
        let old = manifest("superseded", &["a.avro"], "");
        let newer = manifest("superseded", &["a.avro", "b.avro"], "");
        let url = "memory://superseded/manifests/m.json";
        store
            .put(
                &Path::from("manifests/m.json"),
                serde_json::to_vec(&newer.raw).unwrap().into(),
            )
            .await
            .unwrap();
        let out = run(&old, Some(url), &storage, &opts(), &JobContext::default())
            .await
            .unwrap();
        assert!(
            matches!(&out, Outcome::Superseded { current } if *current == newer.hash),
            "{out:?}"
        );
        assert_eq!(files(&store).await, Vec::<String>::new(), "nothing written");
        // The newer manifest, run from the same URL, commits.
        let out = run(&newer, Some(url), &storage, &opts(), &JobContext::default())
            .await
            .unwrap();
        assert!(matches!(out, Outcome::Committed { .. }), "{out:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn missing_or_changed_inputs_are_named() {
        setup("commit-missing").await;
        let storage = StorageOptions::default();
        let m = manifest("commit-missing", &["a.avro", "nope.avro"], "");
        let err = run(&m, None, &storage, &opts(), &JobContext::default())
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("memory://commit-missing/raw/nope.avro"),
            "{err}"
        );
        let m = Manifest::parse(
            r#"{"version":1,"table":"memory://commit-missing/lake/events","partition":{"dt":"x"},
                "inputs":[{"url":"memory://commit-missing/raw/a.avro","size":3}]}"#,
        )
        .unwrap();
        let err = run(&m, None, &storage, &opts(), &JobContext::default())
            .await
            .unwrap_err();
        assert!(
            matches!(err, JobError::InputChanged { what: "size", .. }),
            "{err}"
        );
    }

    /// The files of a run that read the partition's marker may still be committed by it: a
    /// rerun of the committed manifest, or a commit, leaves them. Those of runs that read an
    /// older marker go, as do the run's own files that are not committed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn files_of_runs_that_may_still_commit_are_kept() {
        let store = setup("commit-live").await;
        let dir = "lake/events/dt=2026-11-26/hour=03";
        let put = |name: String| {
            let store = store.clone();
            async move {
                let path = Path::from(format!("{dir}/{name}"));
                store.put(&path, "junk".into()).await.unwrap();
            }
        };
        let m1 = manifest("commit-live", &["a.avro"], "");
        let Outcome::Committed { marker, .. } = run_ok(&m1).await else {
            panic!("expected a commit")
        };
        assert_eq!(marker.sequence, 1);
        // A late-data run converting (it read marker 1), and one killed before marker 1.
        let live = "part-00000-0123456789abcdef-1-0badcafe.snappy.parquet".to_string();
        let dead = "part-00003-0123456789abcdef-0-deadbeef.snappy.parquet".to_string();
        put(live.clone()).await;
        put(dead.clone()).await;
        let again = run_ok(&m1).await;
        assert!(
            matches!(again, Outcome::AlreadyCommitted { deleted: 1, .. }),
            "{again:?}"
        );
        let listed = files(&store).await;
        assert!(
            listed.contains(&live) && !listed.contains(&dead),
            "{listed:?}"
        );

        // A commit over marker 1 makes the live run's commit fail: its files go then; those of a
        // run that read the new marker stay.
        let newer = "part-00001-0123456789abcdef-2-12345678.snappy.parquet".to_string();
        put(newer.clone()).await;
        let m2 = manifest("commit-live", &["a.avro", "b.avro"], "");
        let out = run_ok(&m2).await;
        let Outcome::Committed { marker, .. } = out else {
            panic!("expected a commit")
        };
        assert_eq!(marker.sequence, 2);
        let listed = files(&store).await;
        assert!(
            !listed.contains(&live) && listed.contains(&newer),
            "{listed:?}"
        );
        assert_eq!(listed.len(), 3, "{listed:?}");
    }

    /// A run that fails after writing part files deletes them: they would sit beside the
    /// committed generation (duplicates to Athena) until the next commit. Its dead letters
    /// stay until a commit, which deletes those no marker names.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_run_deletes_its_files_and_a_commit_its_dead_letters() {
        let store = setup("commit-failed").await;
        let storage = StorageOptions::default();
        let m1 = manifest("commit-failed", &["a.avro"], "");
        run_ok(&m1).await;
        let committed = files(&store).await;
        // Late data whose last object is not Avro, after objects that fill several files.
        let many = crate::demo::write_events(Vec::new(), Codec::Deflate, 5000, 20_000, 9).unwrap();
        store
            .put(&Path::from("raw/many.avro"), many.into())
            .await
            .unwrap();
        // The broken object comes from a slow store: the objects before it are converted and
        // their files written by the time it is read.
        let slow = Arc::new(TestStore {
            read_delay: std::time::Duration::from_millis(1500),
            ..TestStore::default()
        });
        crate::storage::register_memory_store("commit-failed-slow", slow.clone());
        slow.put(&Path::from("z.avro"), "not avro".into())
            .await
            .unwrap();
        let m2 = Manifest::parse(
            r#"{"version":1,"table":"memory://commit-failed/lake/events",
                "partition":{"dt":"2026-11-26","hour":"03"},
                "inputs":["memory://commit-failed/raw/a.avro",
                          "memory://commit-failed/raw/many.avro",
                          "memory://commit-failed-slow/z.avro"]}"#,
        )
        .unwrap();
        let mut small = opts();
        small.encode.file_bytes = 64 << 10;
        small.encode.row_group_bytes = 16 << 10;
        small.group_bytes = 32 << 10;
        let writes = store.puts.load(Ordering::SeqCst);
        let err = run(&m2, None, &storage, &small, &JobContext::default())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("z.avro"), "{err}");
        assert!(
            store.puts.load(Ordering::SeqCst) > writes + 2,
            "the failed run wrote files first: {err}"
        );
        assert_eq!(files(&store).await, committed);

        // Dead letters of runs that never committed go with the next commit.
        let place = "memory://commit-failed/dl/dt=2026-11-26/hour=03";
        let location = storage::resolve(place, &storage).unwrap();
        let orphan = location
            .path
            .clone()
            .join("deadletter-0123456789abcdef-1-0badcafe.avro");
        store.put(&orphan, "entries".into()).await.unwrap();
        let mut options = opts();
        options.dead_letter = Some(location);
        let m3 = manifest("commit-failed", &["a.avro", "b.avro"], "");
        let out = run(&m3, None, &storage, &options, &JobContext::default())
            .await
            .unwrap();
        assert!(matches!(out, Outcome::Committed { .. }), "{out:?}");
        assert!(
            store.head(&orphan).await.is_err(),
            "orphan dead letters deleted"
        );
    }

    /// A manifest whose inputs the committed generation holds, and more, is older (a retried
    /// job, a backfill's copy, after late data was committed): it replaces nothing. One with
    /// an input the committed generation lacks replaces it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_older_manifest_does_not_replace_a_larger_generation() {
        let store = setup("commit-stale").await;
        let newer = manifest("commit-stale", &["a.avro", "b.avro"], "");
        run_ok(&newer).await;
        let committed = files(&store).await;
        let older = manifest("commit-stale", &["a.avro"], "");
        let out = run_ok(&older).await;
        assert!(
            matches!(&out, Outcome::Stale { committed, committed_inputs: 2 } if *committed == newer.hash),
            "{out:?}"
        );
        assert_eq!(files(&store).await, committed);
        let other = manifest("commit-stale", &["a.avro", "c.avro"], "");
        let out = run_ok(&other).await;
        assert!(matches!(out, Outcome::Committed { .. }), "{out:?}");
    }

    /// Another run commits while this one converts: this run's conditional commit fails
    /// (retryable), and it deletes its own part files and dead letters; the other run's
    /// committed files stay.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_run_that_loses_the_commit_deletes_its_own_files() {
        let store = setup("commit-lost").await;
        let storage = StorageOptions::default();
        let m1 = manifest("commit-lost", &["a.avro"], "");
        let Outcome::Committed { marker, .. } = run_ok(&m1).await else {
            panic!("expected a commit")
        };
        // The other run read marker 1 too and commits marker 2 listing its file, as soon as
        // this run writes its first part file.
        let dir = "lake/events/dt=2026-11-26/hour=03";
        let theirs = "part-00000-0123456789abcdef-1-0badcafe.snappy.parquet";
        store
            .put(&Path::from(format!("{dir}/{theirs}")), "theirs".into())
            .await
            .unwrap();
        let mut other = (*marker).clone();
        other.manifest_hash = "f".repeat(64);
        other.sequence = 2;
        other.outputs[0].file = theirs.into();
        *store.meanwhile.lock().unwrap() = Some((
            "part-".into(),
            Path::from(format!("{dir}/{MARKER}")),
            serde_json::to_vec(&other).unwrap().into(),
        ));
        let place = "memory://commit-lost/dl/dt=2026-11-26/hour=03";
        let mut options = opts();
        options.dead_letter = Some(storage::resolve(place, &storage).unwrap());
        // A block that does not decode, set aside: this run has a dead-letter file too.
        let mut bad = crate::demo::write_events(Vec::new(), Codec::Null, 0, 10, 9).unwrap();
        let at = bad.len() - 40;
        bad[at..at + 8].copy_from_slice(&[0xff; 8]);
        store
            .put(&Path::from("raw/bad.avro"), bad.into())
            .await
            .unwrap();
        options.max_dead_letter_fraction = 0.5;
        let m2 = manifest("commit-lost", &["a.avro", "b.avro", "bad.avro"], "");
        let err = run(&m2, None, &storage, &options, &JobContext::default())
            .await
            .unwrap_err();
        assert!(matches!(err, JobError::Concurrent { .. }), "{err}");
        // (Generation 1's file is the other run's to delete, in its step 6.)
        let mut expected = vec![
            MARKER.to_string(),
            theirs.into(),
            marker.outputs[0].file.clone(),
        ];
        expected.sort();
        assert_eq!(files(&store).await, expected);
        let place = storage::resolve(place, &storage).unwrap();
        let left = store
            .list_with_delimiter(Some(&place.path))
            .await
            .unwrap()
            .objects;
        assert!(left.is_empty(), "dead letters left: {left:?}");
    }

    /// One object spelled two ways is one input listed twice.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_object_spelled_two_ways_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.avro");
        std::fs::write(&file, b"x").unwrap();
        let spellings = [
            file.display().to_string(),
            dir.path().join("./a.avro").display().to_string(),
            format!("file://{}", file.display()),
        ];
        for other in &spellings[1..] {
            let m = Manifest::parse(&format!(
                r#"{{"version":1,"table":"memory://x/t","partition":{{"dt":"x"}},"inputs":["{}","{other}"]}}"#,
                spellings[0]
            ))
            .unwrap();
            let err = resolve_inputs(&m, &StorageOptions::default())
                .await
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("inputs 0 and 1 are the same object"),
                "{other}: {err}"
            );
        }
        // In S3 (refused before any request is made).
        let s3 = StorageOptions {
            region: Some("us-east-1".into()),
            ..Default::default()
        };
        for other in ["s3a://raw/bad/good.avro", "s3://raw//bad/good.avro"] {
            let m = Manifest::parse(&format!(
                r#"{{"version":1,"table":"memory://x/t","partition":{{"dt":"x"}},"inputs":["s3://raw/bad/good.avro","{other}"]}}"#
            ))
            .unwrap();
            let err = resolve_inputs(&m, &s3).await.unwrap_err().to_string();
            assert!(
                err.contains("inputs 0 and 1 are the same object"),
                "{other}: {err}"
            );
        }
    }

    #[test]
    fn recognises_our_part_files_only() {
        let tag = |name| part_tag(name).map(|t| t.to_string());
        let legacy = "0123456789abcdef";
        assert_eq!(
            tag("part-00003-0123456789abcdef.snappy.parquet").as_deref(),
            Some(legacy)
        );
        assert_eq!(
            tag("part-00003-0123456789abcdef.snappy.parquet#12").as_deref(),
            Some(legacy)
        );
        let t = part_tag("part-00003-0123456789abcdef-42-0badcafe.zstd.parquet").unwrap();
        assert_eq!(
            t,
            FileTag {
                generation: legacy.into(),
                base: 42,
                run: Some("0badcafe".into())
            }
        );
        assert_eq!(t.to_string(), "0123456789abcdef-42-0badcafe");
        for name in [
            "part-00003.snappy.parquet",
            "part-0003-0123456789abcdef.snappy.parquet",
            "data.parquet",
            "part-00003-0123456789abcdef.snappy.parquet.tmp",
            "part-00003-0123456789abcdef-42.snappy.parquet",
            "part-00003-0123456789abcdef--0badcafe.snappy.parquet",
            "part-00003-0123456789abcdef-4x-0badcafe.snappy.parquet",
            "part-00003-0123456789abcdef-4-0badcaf.snappy.parquet",
            "part-00003-0123456789abcdef-4-0badcafe.parquet",
        ] {
            assert_eq!(part_tag(name), None, "{name}");
        }
        assert_eq!(
            dead_letter_tag("deadletter-0123456789abcdef-3-0badcafe.avro").map(|t| t.base),
            Some(3)
        );
        assert_eq!(dead_letter_tag("deadletter-1764500000000.avro"), None);
        assert_eq!(new_run_id().len(), 8);
    }
}
