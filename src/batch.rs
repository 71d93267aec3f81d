//! AWS Batch: job names, and submitting partition jobs without duplicates.
//!
//! Edge: the only module that talks to AWS Batch (`aws-sdk-batch`). `parqour submit`, the
//! trigger and backfills submit through [`Batch`]; `parqour run` uses [`pick_manifest`] when it
//! is the child of an array job.
//!
//! SubmitJob has no idempotency token, so a job is submitted only after two checks:
//!
//! 1. the partition's `_SUCCESS` marker does not already record this manifest's hash
//!    ([`committed`]), and
//! 2. no job of the same name is active (SUBMITTED, PENDING, RUNNABLE, STARTING, RUNNING) or has
//!    SUCCEEDED in the job queue ([`Batch::find`]: ListJobs filtered by name).
//!
//! The job name is derived from the table, the partition and the manifest's generation
//! ([`job_name`]), so a duplicate "partition closed" message finds the job of the first, while a
//! changed listing (late objects) gives a new manifest, a new name and a new job. Two triggers
//! racing past both checks submit the same job twice; the commit protocol of `parqour run` makes
//! the second one a no-op ("already committed"), so the checks save work and never decide
//! correctness.
//!
//! Array jobs: one job over a prefix of manifests. Each child runs
//! `parqour run --manifests PREFIX --manifest-count N` and converts the manifest at position
//! `AWS_BATCH_JOB_ARRAY_INDEX` of the prefix's `*.json` objects sorted by key; a child that finds
//! a different number of manifests than the job was submitted with fails (exit 65) rather than
//! convert the wrong partition.
//!
//! Limitations: ListJobs is eventually consistent and SubmitJob not idempotent, so two triggers
//! handling the same message within seconds can both submit (the second job then finds the
//! partition committed, or loses the marker's conditional write and is retried into "already
//! committed"). Batch keeps finished jobs for a limited time; after that only the marker check
//! remains. Only the job queue given is searched.

use aws_sdk_batch::Client;
use aws_sdk_batch::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_batch::types::{ArrayProperties, ContainerOverrides, KeyValuesPair};
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use sha2::{Digest, Sha256};

use crate::job::{JobError, Marker, Partition};
use crate::manifest::{Manifest, ManifestError};
use crate::storage::{self, StorageError, StorageOptions};

/// Environment variable of the job queue.
pub const ENV_JOB_QUEUE: &str = "PARQOUR_JOB_QUEUE";
/// Environment variable of the job definition.
pub const ENV_JOB_DEFINITION: &str = "PARQOUR_JOB_DEFINITION";
/// The job definition's parameter that holds the manifest URL (`Ref::manifest`).
pub const MANIFEST_PARAMETER: &str = "manifest";
/// Statuses of a job that is still going to run or running.
pub const ACTIVE_STATUSES: [&str; 5] = ["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING"];
/// Most children an array job can have.
pub const MAX_ARRAY_SIZE: usize = 10_000;
/// Longest job name Batch accepts.
pub const MAX_JOB_NAME: usize = 128;

/// Errors of submitting jobs and finding manifests.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// Missing or unusable settings (queue, definition, region).
    #[error("{0}")]
    Config(String),
    /// An AWS Batch request failed.
    #[error("AWS Batch {operation}: {message}")]
    Api {
        /// The operation.
        operation: &'static str,
        /// The error, with its causes.
        message: String,
        /// Whether retrying later can help (throttling, 5xx, network).
        retryable: bool,
    },
    /// A location could not be resolved.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Reading or listing objects failed.
    #[error("{url}: {source}")]
    Store {
        /// The object or prefix.
        url: String,
        /// The store's error.
        source: object_store::Error,
    },
    /// A manifest does not exist.
    #[error("{url}: no such manifest")]
    MissingManifest {
        /// Where it should be.
        url: String,
    },
    /// A manifest is invalid.
    #[error("{url}: {source}")]
    Manifest {
        /// Where it is.
        url: String,
        /// Why.
        source: ManifestError,
    },
    /// No manifests under an array job's prefix.
    #[error("{prefix}: no manifests (`*.json` objects) under this prefix")]
    NoManifests {
        /// The prefix.
        prefix: String,
    },
    /// More manifests than an array job can have.
    #[error(
        "{prefix}: {count} manifests; an array job has at most {MAX_ARRAY_SIZE} children: split the prefix"
    )]
    TooManyManifests {
        /// The prefix.
        prefix: String,
        /// How many.
        count: usize,
    },
    /// An array child's index is past the manifests.
    #[error("{prefix}: array index {index}, but there are {count} manifests")]
    IndexOutOfRange {
        /// The prefix.
        prefix: String,
        /// The index.
        index: usize,
        /// The manifests.
        count: usize,
    },
    /// The prefix changed since the array job was submitted.
    #[error(
        "{prefix}: {found} manifests, but the array job was submitted over {expected}: the prefix changed since, so index {index} may name another partition; not converting"
    )]
    CountChanged {
        /// The prefix.
        prefix: String,
        /// Manifests when submitted.
        expected: usize,
        /// Manifests now.
        found: usize,
        /// This child's index.
        index: usize,
    },
}

impl From<JobError> for BatchError {
    fn from(e: JobError) -> Self {
        match e {
            JobError::Storage(s) => BatchError::Storage(s),
            JobError::Store { url, source } => BatchError::Store { url, source },
            other => BatchError::Config(other.to_string()),
        }
    }
}

/// A job found in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingJob {
    /// Its name.
    pub name: String,
    /// Its id.
    pub job_id: String,
    /// Its status (`RUNNABLE`, `SUCCEEDED`, ...).
    pub status: String,
}

/// Why a manifest is not submitted.
#[derive(Debug, Clone, PartialEq)]
pub enum Skip {
    /// The partition's marker records this manifest.
    Committed {
        /// The committed generation.
        generation: String,
        /// The Batch job that committed it, if recorded.
        job_id: Option<String>,
    },
    /// A job of the same name is active or has succeeded.
    Job(ExistingJob),
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skip::Committed { generation, job_id } => {
                write!(f, "already committed (generation {generation}")?;
                if let Some(id) = job_id {
                    write!(f, ", by job {id}")?;
                }
                write!(f, ")")
            }
            Skip::Job(job) if job.status == "SUCCEEDED" => {
                write!(f, "job {} ({}) already succeeded", job.name, job.job_id)
            }
            Skip::Job(job) => write!(
                f,
                "job {} ({}) is already {}",
                job.name, job.job_id, job.status
            ),
        }
    }
}

/// What to run: one manifest, or an array job over a prefix of manifests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobSpec {
    /// `parqour run --manifest URL` (the job definition's command, `Ref::manifest` = URL).
    Single {
        /// The manifest.
        manifest_url: String,
    },
    /// `parqour run --manifests PREFIX --manifest-count N` in N children.
    Array {
        /// The prefix.
        prefix: String,
        /// Manifests under it.
        count: usize,
    },
}

impl JobSpec {
    /// The container command for an array job (a single job keeps the definition's command).
    pub fn command_override(&self) -> Option<Vec<String>> {
        match self {
            JobSpec::Single { .. } => None,
            JobSpec::Array { prefix, count } => Some(vec![
                "run".into(),
                "--manifests".into(),
                prefix.clone(),
                "--manifest-count".into(),
                count.to_string(),
            ]),
        }
    }
}

/// A submitted job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    /// Its name.
    pub name: String,
    /// Its id.
    pub job_id: String,
}

/// A client for one job queue and job definition.
#[derive(Debug, Clone)]
pub struct Batch {
    client: Client,
    /// The job queue (name or ARN).
    pub job_queue: String,
    /// The job definition (name, `name:revision` or ARN).
    pub job_definition: String,
}

impl Batch {
    /// A client from the standard AWS configuration (environment, profile, web identity,
    /// container and instance credentials; `AWS_REGION`; `AWS_ENDPOINT_URL_BATCH` or
    /// `AWS_ENDPOINT_URL` for an emulator).
    pub async fn connect(job_queue: &str, job_definition: &str) -> Result<Self, BatchError> {
        if job_queue.trim().is_empty() {
            return Err(BatchError::Config(format!(
                "no job queue: give --job-queue or {ENV_JOB_QUEUE}"
            )));
        }
        if job_definition.trim().is_empty() {
            return Err(BatchError::Config(format!(
                "no job definition: give --job-definition or {ENV_JOB_DEFINITION}"
            )));
        }
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        if config.region().is_none() {
            return Err(BatchError::Config(
                "no AWS region: set AWS_REGION (or a profile's region)".into(),
            ));
        }
        Ok(Self {
            client: Client::new(&config),
            job_queue: job_queue.to_string(),
            job_definition: job_definition.to_string(),
        })
    }

    /// The active or succeeded job named `name` in the queue, if any (an active one first).
    pub async fn find(&self, name: &str) -> Result<Option<ExistingJob>, BatchError> {
        // With a filter, ListJobs returns jobs of every status, newest first.
        let mut pages = self
            .client
            .list_jobs()
            .job_queue(&self.job_queue)
            .filters(
                KeyValuesPair::builder()
                    .name("JOB_NAME")
                    .values(name)
                    .build(),
            )
            .into_paginator()
            .send();
        let mut jobs = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| api_error("ListJobs", e))?;
            for summary in page.job_summary_list() {
                jobs.push(ExistingJob {
                    name: summary.job_name().unwrap_or_default().to_string(),
                    job_id: summary.job_id().unwrap_or_default().to_string(),
                    status: summary
                        .status()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                });
            }
        }
        Ok(pick_existing(&jobs, name))
    }

    /// Submits a job named `name` running `spec`.
    pub async fn submit(&self, name: &str, spec: &JobSpec) -> Result<Submitted, BatchError> {
        let mut request = self
            .client
            .submit_job()
            .job_name(name)
            .job_queue(&self.job_queue)
            .job_definition(&self.job_definition);
        match spec {
            JobSpec::Single { manifest_url } => {
                request = request.parameters(MANIFEST_PARAMETER, manifest_url);
            }
            JobSpec::Array { count, .. } => {
                let size = i32::try_from(*count).unwrap_or(i32::MAX);
                let mut overrides = ContainerOverrides::builder();
                for arg in spec.command_override().unwrap_or_default() {
                    overrides = overrides.command(arg);
                }
                request = request
                    .array_properties(ArrayProperties::builder().size(size).build())
                    .container_overrides(overrides.build());
            }
        }
        let out = request
            .send()
            .await
            .map_err(|e| api_error("SubmitJob", e))?;
        Ok(Submitted {
            name: out.job_name().unwrap_or(name).to_string(),
            job_id: out.job_id().unwrap_or_default().to_string(),
        })
    }

    /// Why `name` for `manifest` should not be submitted, if it should not: the marker, then
    /// the queue.
    pub async fn check(
        &self,
        name: &str,
        manifest: &Manifest,
        storage: &StorageOptions,
    ) -> Result<Option<Skip>, BatchError> {
        if let Some(skip) = committed(manifest, storage).await? {
            return Ok(Some(skip));
        }
        Ok(self.find(name).await?.map(Skip::Job))
    }
}

/// What [`submit_manifest`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Submission {
    /// Not submitted, and why.
    Skipped(Skip),
    /// Dry run: the job that would be submitted.
    DryRun {
        /// Its name.
        name: String,
    },
    /// Submitted.
    Submitted(Submitted),
}

/// Submits the job of `manifest`, whose URL is `url`, unless [`Batch::check`] finds a reason not
/// to (`force` skips the checks). With `write`, the manifest is first written to `url` (unless
/// the same manifest is there). Without `batch` (a dry run) only the marker is checked and
/// nothing is written.
pub async fn submit_manifest(
    batch: Option<&Batch>,
    manifest: &Manifest,
    url: &str,
    write: bool,
    force: bool,
    storage: &StorageOptions,
) -> Result<Submission, BatchError> {
    let name = job_name(manifest);
    let skip = match (batch, force) {
        (_, true) => None,
        (Some(b), false) => b.check(&name, manifest, storage).await?,
        (None, false) => committed(manifest, storage).await?,
    };
    if let Some(skip) = skip {
        return Ok(Submission::Skipped(skip));
    }
    let Some(batch) = batch else {
        return Ok(Submission::DryRun { name });
    };
    if write && write_manifest(url, manifest, storage).await? {
        tracing::info!(manifest = %url, inputs = manifest.raw.inputs.len(), "wrote the manifest");
    }
    let spec = JobSpec::Single {
        manifest_url: url.to_string(),
    };
    Ok(Submission::Submitted(batch.submit(&name, &spec).await?))
}

/// The job that `jobs` (ListJobs results for `name`) show to be running or done: an active
/// one, else a succeeded one. Failed jobs are ignored: submitting again is a retry. Names are
/// compared without case, as the filter does.
pub fn pick_existing(jobs: &[ExistingJob], name: &str) -> Option<ExistingJob> {
    let same: Vec<&ExistingJob> = jobs
        .iter()
        .filter(|j| j.name.eq_ignore_ascii_case(name))
        .collect();
    same.iter()
        .find(|j| ACTIVE_STATUSES.contains(&j.status.as_str()))
        .or_else(|| same.iter().find(|j| j.status == "SUCCEEDED"))
        .map(|j| (*j).clone())
}

/// `Some` when the partition's marker records `manifest`'s hash.
pub async fn committed(
    manifest: &Manifest,
    storage: &StorageOptions,
) -> Result<Option<Skip>, BatchError> {
    let partition = Partition::of(manifest, storage)?;
    let url = partition.location.url_of(&partition.marker);
    let Some(bytes) = get_optional(&partition.location.store, &partition.marker, &url).await?
    else {
        return Ok(None);
    };
    // An unreadable marker commits nothing we know of (`parqour run` replaces it).
    Ok(serde_json::from_slice::<Marker>(&bytes)
        .ok()
        .filter(|m| m.manifest_hash == manifest.hash)
        .map(|m| Skip::Committed {
            generation: m.generation,
            job_id: m.job.job_id,
        }))
}

/// Characters Batch allows in job names; others become `_`.
fn name_part(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Joins a readable part and a unique suffix into a valid job name: at most 128 characters of
/// letters, digits, `-` and `_`, starting with a letter or digit; the readable part is cut to
/// fit.
fn fit_name(readable: &str, unique: &str) -> String {
    let readable = name_part(readable);
    let readable = readable.trim_start_matches(['-', '_']);
    let room = MAX_JOB_NAME.saturating_sub(unique.len() + 1);
    let cut: String = readable.chars().take(room).collect();
    if cut.is_empty() {
        unique.to_string()
    } else {
        format!("{cut}-{unique}")
    }
}

/// The last non-empty `/` segment of a URL or path (`s3://lake/events/` -> `events`).
pub fn last_segment(url: &str) -> &str {
    url.trim_end_matches('/')
        .rsplit('/')
        .find(|s| !s.is_empty())
        .unwrap_or_default()
}

/// The job name of a manifest: `<table>-<k1>_<v1>-<k2>_<v2>-<generation>`, e.g.
/// `events-dt_2026-11-26-hour_03-1f2e3d4c5b6a7988`. The generation (the manifest's hash)
/// tells a duplicate from a changed manifest; other characters than letters, digits, `-` and
/// `_` become `_`, and the readable part is cut to fit Batch's 128 characters.
pub fn job_name(manifest: &Manifest) -> String {
    let mut readable = last_segment(&manifest.raw.table).to_string();
    for (k, v) in &manifest.partition {
        readable.push('-');
        readable.push_str(k);
        readable.push('_');
        readable.push_str(v);
    }
    fit_name(&readable, manifest.generation())
}

/// The job name of an array job: `<label>-<suffix>`, where the suffix is the first 16 hex
/// digits of the SHA-256 of `key` (what makes the job unique, e.g. the prefix and the hashes of
/// its manifests).
pub fn array_job_name(label: &str, key: &str) -> String {
    let hash = Sha256::digest(key.as_bytes());
    let hex: String = hash[..8].iter().map(|b| format!("{b:02x}")).collect();
    fit_name(label, &hex)
}

/// The manifests under a prefix: every `*.json` object under it (recursively), as URLs sorted
/// by key.
pub async fn list_manifests(
    prefix: &str,
    storage: &StorageOptions,
) -> Result<Vec<String>, BatchError> {
    let location = storage::resolve(prefix, storage)?;
    if let Some(dir) = &location.local
        && !dir.is_dir()
    {
        return Err(BatchError::NoManifests {
            prefix: prefix.to_string(),
        });
    }
    let list_prefix = (!location.path.as_ref().is_empty()).then_some(&location.path);
    let mut listing = location.store.list(list_prefix);
    let mut paths = Vec::new();
    while let Some(meta) = listing.next().await {
        let meta = meta.map_err(|source| BatchError::Store {
            url: prefix.to_string(),
            source,
        })?;
        if meta.location.as_ref().ends_with(".json") {
            paths.push(meta.location);
        }
    }
    paths.sort();
    Ok(paths.iter().map(|p| location.url_of(p)).collect())
}

/// The manifest an array child converts: the `index`-th (from 0) of [`list_manifests`];
/// `expected` is the count the job was submitted with.
pub async fn pick_manifest(
    prefix: &str,
    index: usize,
    expected: Option<usize>,
    storage: &StorageOptions,
) -> Result<String, BatchError> {
    let manifests = list_manifests(prefix, storage).await?;
    if let Some(expected) = expected
        && expected != manifests.len()
    {
        return Err(BatchError::CountChanged {
            prefix: prefix.to_string(),
            expected,
            found: manifests.len(),
            index,
        });
    }
    let count = manifests.len();
    manifests
        .into_iter()
        .nth(index)
        .ok_or_else(|| BatchError::IndexOutOfRange {
            prefix: prefix.to_string(),
            index,
            count,
        })
}

/// Reads and validates a manifest.
pub async fn read_manifest(url: &str, storage: &StorageOptions) -> Result<Manifest, BatchError> {
    let bytes = read_optional(url, storage)
        .await?
        .ok_or_else(|| BatchError::MissingManifest {
            url: url.to_string(),
        })?;
    let invalid = |source| BatchError::Manifest {
        url: url.to_string(),
        source,
    };
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| invalid(ManifestError::Invalid("not UTF-8 text".into())))?;
    Manifest::parse(text).map_err(invalid)
}

/// The bytes of an object; `None` when it does not exist.
pub async fn read_optional(
    url: &str,
    storage: &StorageOptions,
) -> Result<Option<Bytes>, BatchError> {
    let location = storage::resolve(url, storage)?;
    get_optional(&location.store, &location.path, url).await
}

/// The bytes at `path`; `None` when there is no such object. `url` names it in errors.
async fn get_optional(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    url: &str,
) -> Result<Option<Bytes>, BatchError> {
    let store_error = |source| BatchError::Store {
        url: url.to_string(),
        source,
    };
    match store.get(path).await {
        Ok(got) => got.bytes().await.map(Some).map_err(store_error),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(source) => Err(store_error(source)),
    }
}

/// Writes `manifest` to `url` unless an identical manifest is already there, or one that holds
/// every input of it and more (a trigger that listed the raw prefix before late objects
/// arrived must not replace the manifest of one that listed after: the late objects would never
/// be converted); returns whether it wrote. The write is conditional on the manifest read (where
/// the store can): another trigger's write in between is an error, retryable, whose retry
/// lists again.
pub async fn write_manifest(
    url: &str,
    manifest: &Manifest,
    storage: &StorageOptions,
) -> Result<bool, BatchError> {
    let location = storage::resolve(url, storage)?;
    let store_error = |source| BatchError::Store {
        url: url.to_string(),
        source,
    };
    let existing = match location.store.get(&location.path).await {
        Ok(got) => {
            let version = object_store::UpdateVersion {
                e_tag: got.meta.e_tag.clone(),
                version: got.meta.version.clone(),
            };
            let bytes = got.bytes().await.map_err(store_error)?;
            let parsed = std::str::from_utf8(&bytes)
                .ok()
                .and_then(|text| Manifest::parse(text).ok());
            Some((parsed, version))
        }
        Err(object_store::Error::NotFound { .. }) => None,
        Err(source) => return Err(store_error(source)),
    };
    if let Some((Some(m), _)) = &existing {
        if m.hash == manifest.hash {
            return Ok(false);
        }
        if crate::manifest::holds_more(m.objects(), manifest.objects()) {
            tracing::warn!(
                manifest = url,
                inputs = m.raw.inputs.len(),
                listed = manifest.raw.inputs.len(),
                "the manifest there holds every object listed and more (listed later): not replacing it"
            );
            return Ok(false);
        }
    }
    let text = serde_json::to_string_pretty(&manifest.raw).map_err(|e| BatchError::Manifest {
        url: url.to_string(),
        source: ManifestError::Json(e),
    })?;
    if let Some(dir) = location.local.as_ref().and_then(|p| p.parent()) {
        std::fs::create_dir_all(dir).map_err(|e| StorageError::Io {
            path: dir.to_path_buf(),
            source: e,
        })?;
    }
    let mode = match existing {
        None => object_store::PutMode::Create,
        Some((_, version)) => object_store::PutMode::Update(version),
    };
    let body = bytes::Bytes::from(text.into_bytes());
    let conditional = location
        .store
        .put_opts(
            &location.path,
            body.clone().into(),
            object_store::PutOptions::from(mode),
        )
        .await;
    match conditional {
        Ok(_) => Ok(true),
        // Stores without conditional writes (the local filesystem): replace it.
        Err(
            object_store::Error::NotImplemented { .. } | object_store::Error::NotSupported { .. },
        ) => {
            location
                .store
                .put(&location.path, body.into())
                .await
                .map_err(store_error)?;
            Ok(true)
        }
        Err(source) => Err(store_error(source)),
    }
}

fn api_error<E, R>(operation: &'static str, e: SdkError<E, R>) -> BatchError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let retryable = match &e {
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => true,
        SdkError::DispatchFailure(d) => d.is_io() || d.is_timeout(),
        SdkError::ServiceError(s) => {
            let code = s.err().code().unwrap_or_default();
            code.contains("Throttl")
                || code.contains("TooManyRequests")
                || code == "ServerException"
                || code == "ServiceUnavailable"
        }
        SdkError::ConstructionFailure(_) => false,
        _ => true,
    };
    // A service error says what it is in its code and message; the whole context would add
    // the raw response's debug dump (headers, body, extensions) to every such error.
    let message = match &e {
        SdkError::ServiceError(s) => {
            let err = s.err();
            let mut m = match (err.code(), err.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => code.to_string(),
                (None, Some(message)) => message.to_string(),
                (None, None) => DisplayErrorContext(&e).to_string(),
            };
            if let Some(id) = err.meta().extra("aws_request_id") {
                m.push_str(&format!(" (request id {id})"));
            }
            m
        }
        _ => DisplayErrorContext(&e).to_string(),
    };
    BatchError::Api {
        operation,
        message,
        retryable,
    }
}

/// Writes a marker that records `manifest` as committed (by `job_id`), as `parqour run` would.
#[cfg(test)]
pub(crate) async fn write_test_marker(manifest: &Manifest, job_id: Option<&str>) {
    let partition = Partition::of(manifest, &StorageOptions::default()).unwrap();
    let marker = serde_json::json!({
        "format": 1, "manifest_hash": manifest.hash, "generation": manifest.generation(),
        "table": manifest.raw.table, "partition": manifest.raw.partition,
        "inputs": [], "outputs": [], "records_in": 0, "records_out": 0, "bytes_in": 0,
        "bytes_out": 0, "started_at": 0.0, "seconds": 0.0, "tool": "parqour",
        "job": {"job_id": job_id}
    });
    partition
        .location
        .store
        .put(&partition.marker, marker.to_string().into_bytes().into())
        .await
        .unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(table: &str, dt: &str) -> Manifest {
        Manifest::parse(&format!(
            r#"{{"version": 1, "table": "{table}", "partition": {{"dt": "{dt}", "hour": "03"}}, "inputs": ["s3://raw/a.avro"]}}"#
        ))
        .unwrap()
    }

    fn valid(name: &str) -> bool {
        name.len() <= MAX_JOB_NAME
            && name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    }

    #[test]
    fn job_names_follow_batch_rules_and_the_manifest() {
        let m = manifest("s3://lake/events/", "2026-11-26");
        let name = job_name(&m);
        assert_eq!(
            name,
            format!("events-dt_2026-11-26-hour_03-{}", m.generation())
        );
        assert!(valid(&name));
        // Another manifest of the same partition has another name; the same one the same.
        let other = Manifest::parse(
            &serde_json::to_string(&m.raw)
                .unwrap()
                .replace("a.avro", "b.avro"),
        )
        .unwrap();
        assert_ne!(job_name(&other), name);
        assert_eq!(job_name(&manifest("s3://lake/events", "2026-11-26")), {
            let m2 = manifest("s3://lake/events", "2026-11-26");
            format!("events-dt_2026-11-26-hour_03-{}", m2.generation())
        });
        // Hostile and long values still give valid names that keep the generation.
        let hostile = manifest("s3://lake/_x", "../a b/c=d%é");
        let name = job_name(&hostile);
        assert!(valid(&name), "{name}");
        assert!(name.starts_with("x-dt____a_b_c_d__-hour_03-"), "{name}");
        let long = manifest("s3://lake/t", &"x".repeat(300));
        let name = job_name(&long);
        assert!(valid(&name) && name.len() == MAX_JOB_NAME, "{name}");
        assert!(name.ends_with(long.generation()));
        assert!(valid(&array_job_name("__", "k")));
        assert_eq!(array_job_name("__", "k").len(), 16);
    }

    #[test]
    fn existing_jobs_active_first_then_succeeded_failed_ignored() {
        let job = |name: &str, id: &str, status: &str| ExistingJob {
            name: name.into(),
            job_id: id.into(),
            status: status.into(),
        };
        assert_eq!(pick_existing(&[], "a"), None);
        assert_eq!(pick_existing(&[job("a", "1", "FAILED")], "a"), None);
        // A prefix match of the filter is not the same name.
        assert_eq!(pick_existing(&[job("ab", "1", "RUNNING")], "a"), None);
        let jobs = [
            job("a", "1", "SUCCEEDED"),
            job("A", "2", "RUNNABLE"),
            job("a", "3", "FAILED"),
        ];
        assert_eq!(pick_existing(&jobs, "a").unwrap().job_id, "2");
        assert_eq!(pick_existing(&jobs[..1], "a").unwrap().job_id, "1");
        for status in ACTIVE_STATUSES {
            assert!(pick_existing(&[job("a", "9", status)], "a").is_some());
        }
    }

    #[test]
    fn array_commands() {
        let spec = JobSpec::Array {
            prefix: "s3://m/p/".into(),
            count: 3,
        };
        assert_eq!(
            spec.command_override().unwrap(),
            ["run", "--manifests", "s3://m/p/", "--manifest-count", "3"]
        );
        assert!(
            JobSpec::Single {
                manifest_url: "x".into()
            }
            .command_override()
            .is_none()
        );
    }

    /// A trigger that listed before late objects arrived does not replace the manifest of one
    /// that listed after; a write between another trigger's read and write fails (retryable),
    /// instead of replacing it.
    #[tokio::test]
    async fn a_manifest_of_fewer_objects_does_not_replace_one_of_more() {
        let store = Arc::new(crate::test_store::TestStore::default());
        crate::storage::register_memory_store("batch-late", store.clone());
        let storage = StorageOptions::default();
        let of = |inputs: &[&str]| {
            let inputs: Vec<String> = inputs
                .iter()
                .map(|i| format!(r#"{{"url": "s3://raw/{i}.avro", "etag": "\"{i}\""}}"#))
                .collect();
            Manifest::parse(&format!(
                r#"{{"version": 1, "table": "memory://batch-late/t", "partition": {{"dt": "x"}}, "inputs": [{}]}}"#,
                inputs.join(",")
            ))
            .unwrap()
        };
        let url = "memory://batch-late/m/manifest.json";
        let read = || async {
            let text = read_optional(url, &storage).await.unwrap().unwrap();
            Manifest::parse(std::str::from_utf8(&text).unwrap())
                .unwrap()
                .hash
        };
        let abc = of(&["a", "b", "c"]);
        assert!(write_manifest(url, &abc, &storage).await.unwrap());
        assert!(
            !write_manifest(url, &of(&["a", "b"]), &storage)
                .await
                .unwrap()
        );
        assert_eq!(read().await, abc.hash);
        // A changed object (another etag) or another object is news: written.
        let changed = Manifest::parse(
            &serde_json::to_string(&of(&["a", "b"]).raw)
                .unwrap()
                .replace(r#"\"b\""#, r#"\"b2\""#),
        )
        .unwrap();
        assert!(write_manifest(url, &changed, &storage).await.unwrap());
        let abd = of(&["a", "b", "d"]);
        assert!(write_manifest(url, &abd, &storage).await.unwrap());
        assert_eq!(read().await, abd.hash);
        // Another trigger writes between this one's read and its write.
        let other = of(&["a", "b", "d", "e"]);
        *store.meanwhile.lock().unwrap() = Some((
            "manifest.json".into(),
            Path::from("m/manifest.json"),
            serde_json::to_vec(&other.raw).unwrap().into(),
        ));
        let err = write_manifest(url, &of(&["a", "f"]), &storage)
            .await
            .unwrap_err();
        assert!(matches!(err, BatchError::Store { .. }), "{err}");
        assert_eq!(read().await, other.hash);
    }

    #[tokio::test]
    async fn manifests_listed_sorted_and_picked_by_index() {
        let storage = StorageOptions::default();
        let root = "memory://batch-pick/m";
        let mut urls = Vec::new();
        for dt in ["2026-11-02", "2026-11-01", "a/b"] {
            let m = manifest("memory://batch-pick/t", dt);
            let url = crate::layout::manifest_url(root, &m);
            assert!(write_manifest(&url, &m, &storage).await.unwrap());
            // Identical content is not written again.
            assert!(!write_manifest(&url, &m, &storage).await.unwrap());
            urls.push(url);
        }
        let listed = list_manifests(&format!("{root}/"), &storage).await.unwrap();
        assert_eq!(listed, [urls[1].clone(), urls[0].clone(), urls[2].clone()]);
        // Every listed URL reads back (the escaped `a%2Fb` value survives the URL).
        for url in &listed {
            read_manifest(url, &storage).await.unwrap();
        }
        let picked = pick_manifest(root, 2, Some(3), &storage).await.unwrap();
        assert_eq!(
            read_manifest(&picked, &storage).await.unwrap().partition[0].1,
            "a/b"
        );
        let e = pick_manifest(root, 3, None, &storage).await.unwrap_err();
        assert!(
            matches!(e, BatchError::IndexOutOfRange { count: 3, .. }),
            "{e}"
        );
        let e = pick_manifest(root, 0, Some(2), &storage).await.unwrap_err();
        assert!(e.to_string().contains("submitted over 2"), "{e}");
        assert!(
            list_manifests("memory://batch-pick/none/", &storage)
                .await
                .unwrap()
                .is_empty()
        );
        let e = read_manifest("memory://batch-pick/none.json", &storage)
            .await
            .unwrap_err();
        assert!(matches!(e, BatchError::MissingManifest { .. }), "{e}");
        let location = storage::resolve("memory://batch-pick/bad.json", &storage).unwrap();
        location
            .store
            .put(&location.path, vec![b'{', 0xff].into())
            .await
            .unwrap();
        let e = read_manifest("memory://batch-pick/bad.json", &storage)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("not UTF-8"), "{e}");
    }

    #[tokio::test]
    async fn committed_reads_the_marker() {
        let storage = StorageOptions::default();
        let m = manifest("memory://batch-marker/t", "2026-11-01");
        assert_eq!(committed(&m, &storage).await.unwrap(), None);
        write_test_marker(&m, Some("j-1")).await;
        assert_eq!(
            committed(&m, &storage).await.unwrap(),
            Some(Skip::Committed {
                generation: m.generation().to_string(),
                job_id: Some("j-1".into())
            })
        );
        let other = manifest("memory://batch-marker/t", "2026-11-01");
        let changed = Manifest::parse(
            &serde_json::to_string(&other.raw)
                .unwrap()
                .replace("a.avro", "late.avro"),
        )
        .unwrap();
        assert_eq!(committed(&changed, &storage).await.unwrap(), None);
    }
}
