//! The AWS commands: `parqour submit`, `parqour trigger`, `parqour backfill`, and how
//! `parqour run` picks its manifest in an array job. The work is in [`crate::batch`],
//! [`crate::trigger`] and [`crate::backfill`]; this module parses arguments, prints, and maps
//! errors to exit codes.

use clap::Args;
use futures::{StreamExt, TryStreamExt};

use super::{
    EXIT_BAD_INPUT, EXIT_CONFIG, EXIT_RETRYABLE, EXIT_USAGE, Failure, StorageArgs, source_code,
    storage_code, store_code,
};
use crate::backfill::{Backfill, BackfillError, HourStatus, parse_lookback};
use crate::batch::{
    self, Batch, BatchError, ENV_JOB_DEFINITION, ENV_JOB_QUEUE, JobSpec, MAX_ARRAY_SIZE, Skip,
    Submission,
};
use crate::layout::{
    self, ENV_MANIFEST_ROOT, ENV_PARTITION, ENV_RAW_PREFIX, ENV_TABLE, Layout, LayoutError,
};
use crate::manifest::Manifest;
use crate::storage::StorageOptions;
use crate::trigger::{
    DEFAULT_CLOSED_OBJECT, ENV_CLOSED_OBJECT, ENV_DATA_TYPE, Trigger, TriggerError, partition_url,
};

/// Where jobs go.
#[derive(Debug, Args)]
pub(super) struct BatchArgs {
    /// AWS Batch job queue (name or ARN).
    #[arg(long, env = ENV_JOB_QUEUE)]
    job_queue: Option<String>,
    /// AWS Batch job definition (name, name:revision or ARN) whose command is
    /// `run --manifest Ref::manifest`.
    #[arg(long, env = ENV_JOB_DEFINITION)]
    job_definition: Option<String>,
}

impl BatchArgs {
    async fn connect(&self) -> Result<Batch, Failure> {
        Batch::connect(
            self.job_queue.as_deref().unwrap_or_default(),
            self.job_definition.as_deref().unwrap_or_default(),
        )
        .await
        .map_err(|e| Failure::new(batch_code(&e), e))
    }
}

/// Where tables, raw prefixes and manifests are (see `crate::layout`).
#[derive(Debug, Args)]
pub(super) struct LayoutArgs {
    /// Table URL template, e.g. `s3://lake/{data_type}`.
    #[arg(long, env = ENV_TABLE)]
    table: String,
    /// Raw prefix template of an hour, e.g. `s3://raw/{data_type}/{yyyy}/{MM}/{dd}/{HH}/`
    /// (needed for S3 events and backfills).
    #[arg(long, env = ENV_RAW_PREFIX)]
    raw_prefix: Option<String>,
    /// A partition key and its value template, `key=template`, repeated in order
    /// [default: dt={yyyy}-{MM}-{dd} hour={HH}].
    #[arg(long = "partition", env = ENV_PARTITION, value_delimiter = ',')]
    partition: Vec<String>,
    /// Where manifests are written [default: {table}/_manifests].
    #[arg(long, env = ENV_MANIFEST_ROOT)]
    manifest_root: Option<String>,
    /// Schema registry written into the manifests (DataWrapper envelopes).
    #[arg(long, env = layout::ENV_REGISTRY)]
    registry: Option<String>,
    /// Dead-letter place written into the manifests (`{data_type}` allowed).
    #[arg(long, env = layout::ENV_DEAD_LETTER)]
    dead_letter: Option<String>,
}

impl LayoutArgs {
    fn layout(&self) -> Result<Layout, Failure> {
        Layout::new(
            &self.table,
            self.raw_prefix.as_deref(),
            &self.partition,
            self.manifest_root.as_deref(),
        )
        .map(|l| {
            l.with_records(layout::RecordSettings {
                registry: self.registry.clone(),
                dead_letter: self.dead_letter.clone(),
            })
        })
        .map_err(|e| Failure::new(EXIT_USAGE, e))
    }
}

#[derive(Debug, Args)]
pub(super) struct SubmitArgs {
    /// URL of one manifest: submits one job.
    #[arg(
        long,
        required_unless_present = "manifests",
        conflicts_with = "manifests"
    )]
    manifest: Option<String>,
    /// URL of a prefix of manifests (`*.json` under it): submits one array job, child `i`
    /// converting the `i`-th manifest in key order.
    #[arg(long)]
    manifests: Option<String>,
    /// Submit even if the partition is committed or a job of the same name is queued, running
    /// or succeeded.
    #[arg(long)]
    force: bool,
    /// Say what would be submitted; submit nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    batch: BatchArgs,
    #[command(flatten)]
    storage: StorageArgs,
}

#[derive(Debug, Args)]
pub(super) struct TriggerArgs {
    /// The event: a Lambda SNS or SQS event, an SNS notification, an S3 event notification or a
    /// partition-closed message, as JSON; `-` reads standard input.
    #[arg(long)]
    event: String,
    /// Handle only this data type; messages for others are ignored.
    #[arg(long, env = ENV_DATA_TYPE)]
    data_type: Option<String>,
    /// The object whose creation (S3 event) closes the raw prefix it is in.
    #[arg(long, env = ENV_CLOSED_OBJECT, default_value = DEFAULT_CLOSED_OBJECT)]
    closed_object: String,
    /// List and check, but write no manifest and submit nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    layout: LayoutArgs,
    #[command(flatten)]
    batch: BatchArgs,
    #[command(flatten)]
    storage: StorageArgs,
}

#[derive(Debug, Args)]
pub(super) struct BackfillArgs {
    /// The data type (fills `{data_type}` in the templates).
    #[arg(long)]
    data_type: String,
    /// First hour, `YYYY-MM-DDTHH` (UTC).
    #[arg(long, required_unless_present = "lookback", requires = "to")]
    from: Option<String>,
    /// The hour after the last, `YYYY-MM-DDTHH` (UTC, excluded).
    #[arg(long, requires = "from")]
    to: Option<String>,
    /// Instead of --from/--to: the hours before the current one, e.g. `6h`, `2d`.
    #[arg(long, conflicts_with_all = ["from", "to"])]
    lookback: Option<String>,
    /// Print the hours and the job; write and submit nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    layout: LayoutArgs,
    #[command(flatten)]
    batch: BatchArgs,
    #[command(flatten)]
    storage: StorageArgs,
}

pub(super) fn batch_code(e: &BatchError) -> u8 {
    match e {
        BatchError::Config(_) => EXIT_CONFIG,
        BatchError::Api {
            retryable: true, ..
        } => EXIT_RETRYABLE,
        BatchError::Api { .. } => EXIT_CONFIG,
        BatchError::Storage(s) => storage_code(s),
        BatchError::Store { source, .. } => store_code(source),
        BatchError::Manifest { .. }
        | BatchError::MissingManifest { .. }
        | BatchError::NoManifests { .. }
        | BatchError::TooManyManifests { .. }
        | BatchError::IndexOutOfRange { .. }
        | BatchError::CountChanged { .. } => EXIT_BAD_INPUT,
    }
}

fn layout_code(e: &LayoutError) -> u8 {
    match e {
        LayoutError::Missing(_) => EXIT_CONFIG,
        _ => EXIT_USAGE,
    }
}

fn trigger_code(e: &TriggerError) -> u8 {
    match e {
        TriggerError::Invalid(_) => EXIT_BAD_INPUT,
        TriggerError::Layout(l) => layout_code(l),
        TriggerError::Batch(b) => batch_code(b),
        TriggerError::Source(s) => source_code(s),
    }
}

/// The exit code of an event that could not be read: one that is not UTF-8 text is an
/// invalid event (65, as one that is not JSON); a file that cannot be opened is a usage error.
fn event_read_code(e: &std::io::Error) -> u8 {
    if e.kind() == std::io::ErrorKind::InvalidData {
        EXIT_BAD_INPUT
    } else {
        EXIT_USAGE
    }
}

fn backfill_code(e: &BackfillError) -> u8 {
    match e {
        BackfillError::Layout(l) => layout_code(l),
        BackfillError::Range(_) => EXIT_USAGE,
        BackfillError::Source(s) => source_code(s),
        BackfillError::Batch(b) => batch_code(b),
        BackfillError::Manifest { .. } => EXIT_USAGE,
        BackfillError::Written { .. } => EXIT_CONFIG,
    }
}

fn batch_failure(e: BatchError) -> Failure {
    Failure::new(batch_code(&e), e)
}

/// The manifest URL `parqour run` converts: `--manifest`, or in an array job the
/// `array_index`-th manifest under `--manifests`.
pub(super) async fn run_manifest(
    manifest: Option<&str>,
    manifests: Option<&str>,
    array_index: Option<usize>,
    manifest_count: Option<usize>,
    storage: &StorageOptions,
) -> Result<String, Failure> {
    match (manifest, manifests) {
        (Some(url), None) => Ok(url.to_string()),
        (None, Some(prefix)) => {
            let index = array_index.ok_or_else(|| {
                Failure::new(
                    EXIT_USAGE,
                    "--manifests needs the array index: AWS_BATCH_JOB_ARRAY_INDEX (set by AWS Batch in array jobs) or --array-index",
                )
            })?;
            let url = batch::pick_manifest(prefix, index, manifest_count, storage)
                .await
                .map_err(batch_failure)?;
            tracing::info!(prefix, index, manifest = %url, "array child: picked its manifest");
            Ok(url)
        }
        (Some(_), Some(_)) => Err(Failure::new(
            EXIT_USAGE,
            "give --manifest (PARQOUR_MANIFEST) or --manifests (PARQOUR_MANIFESTS), not both",
        )),
        (None, None) => Err(Failure::new(
            EXIT_USAGE,
            "no manifest: give --manifest (PARQOUR_MANIFEST) or --manifests (PARQOUR_MANIFESTS)",
        )),
    }
}

/// `parqour submit`.
pub(super) async fn submit(args: SubmitArgs) -> Result<(), Failure> {
    let storage = args.storage.options();
    let batch = if args.dry_run {
        None
    } else {
        Some(args.batch.connect().await?)
    };
    match (&args.manifest, &args.manifests) {
        (Some(url), _) => submit_one(url, batch.as_ref(), &storage, args.force).await,
        (None, Some(prefix)) => submit_array(prefix, batch.as_ref(), &storage, args.force).await,
        (None, None) => Err(Failure::new(EXIT_USAGE, "give --manifest or --manifests")),
    }
}

async fn submit_one(
    url: &str,
    batch: Option<&Batch>,
    storage: &StorageOptions,
    force: bool,
) -> Result<(), Failure> {
    let manifest = batch::read_manifest(url, storage)
        .await
        .map_err(batch_failure)?;
    let partition = partition_url(&manifest);
    match batch::submit_manifest(batch, &manifest, url, false, force, storage)
        .await
        .map_err(batch_failure)?
    {
        Submission::Skipped(skip) => outln!("not submitted: {partition}: {skip}"),
        Submission::DryRun { name } => {
            outln!("dry run: would submit {name} for {partition} with {url}")
        }
        Submission::Submitted(job) => outln!(
            "submitted {} (job {}) for {partition} with {url}",
            job.name,
            job.job_id
        ),
    }
    Ok(())
}

async fn submit_array(
    prefix: &str,
    batch: Option<&Batch>,
    storage: &StorageOptions,
    force: bool,
) -> Result<(), Failure> {
    let urls = batch::list_manifests(prefix, storage)
        .await
        .map_err(batch_failure)?;
    match urls.len() {
        0 => {
            return Err(batch_failure(BatchError::NoManifests {
                prefix: prefix.to_string(),
            }));
        }
        // Batch array jobs have at least 2 children.
        1 => return submit_one(&urls[0], batch, storage, force).await,
        n if n > MAX_ARRAY_SIZE => {
            return Err(batch_failure(BatchError::TooManyManifests {
                prefix: prefix.to_string(),
                count: n,
            }));
        }
        _ => {}
    }
    let manifests: Vec<Manifest> = futures::stream::iter(&urls)
        .map(|url| batch::read_manifest(url, storage))
        .buffered(16)
        .try_collect()
        .await
        .map_err(batch_failure)?;
    let committed: Vec<bool> = futures::stream::iter(&manifests)
        .map(|m| async move { batch::committed(m, storage).await.map(|s| s.is_some()) })
        .buffered(16)
        .try_collect()
        .await
        .map_err(batch_failure)?;
    let done = committed.iter().filter(|c| **c).count();
    if done == manifests.len() && !force {
        outln!(
            "not submitted: all {done} partitions under {prefix} are already committed with these manifests"
        );
        return Ok(());
    }
    let mut key = prefix.to_string();
    for m in &manifests {
        key.push('\n');
        key.push_str(&m.hash);
    }
    let label = format!("{}-array", batch::last_segment(prefix));
    let name = batch::array_job_name(&label, &key);
    let spec = JobSpec::Array {
        prefix: prefix.to_string(),
        count: manifests.len(),
    };
    let note = if done > 0 {
        format!(" ({done} already committed: their children exit at once)")
    } else {
        String::new()
    };
    let Some(batch) = batch else {
        outln!(
            "dry run: would submit {name}: an array job of {} over {prefix}{note}",
            manifests.len()
        );
        return Ok(());
    };
    if !force && let Some(existing) = batch.find(&name).await.map_err(batch_failure)? {
        outln!("not submitted: {prefix}: {}", Skip::Job(existing));
        return Ok(());
    }
    let job = batch.submit(&name, &spec).await.map_err(batch_failure)?;
    outln!(
        "submitted {} (job {}): an array job of {} over {prefix}{note}",
        job.name,
        job.job_id,
        manifests.len()
    );
    Ok(())
}

/// `parqour trigger`: handles one event, prints one line per message; the exit code is the
/// worst outcome (75 first: retrying helps).
pub(super) async fn trigger(args: TriggerArgs) -> Result<(), Failure> {
    let text = if args.event == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| {
            Failure::new(event_read_code(&e), format!("reading standard input: {e}"))
        })?
    } else {
        std::fs::read_to_string(&args.event)
            .map_err(|e| Failure::new(event_read_code(&e), format!("{}: {e}", args.event)))?
    };
    let batch = if args.dry_run {
        None
    } else {
        Some(args.batch.connect().await?)
    };
    let trigger = Trigger {
        layout: args.layout.layout()?,
        data_type: args.data_type.clone(),
        closed_object: args.closed_object.clone(),
        storage: args.storage.options(),
        batch,
    };
    let report = trigger.handle_text(&text).await;
    let mut codes = Vec::new();
    for m in &report.messages {
        match &m.result {
            Ok(outcome) => outln!("{}: {outcome}", m.id),
            Err(e) => {
                let code = trigger_code(e);
                outln!(
                    "{}: failed (exit {code}): {}",
                    m.id,
                    super::with_hint(e.to_string())
                );
                codes.push(code);
            }
        }
    }
    let worst = if codes.contains(&EXIT_RETRYABLE) {
        Some(EXIT_RETRYABLE)
    } else {
        codes.iter().copied().max()
    };
    match worst {
        None => Ok(()),
        Some(code) => Err(Failure::new(
            code,
            format!(
                "{} of {} message(s) failed",
                codes.len(),
                report.messages.len()
            ),
        )),
    }
}

/// `parqour backfill`.
pub(super) async fn backfill(args: BackfillArgs) -> Result<(), Failure> {
    let fail = |e: BackfillError| Failure::new(backfill_code(&e), e);
    let (from, to) = match (&args.from, &args.to, &args.lookback) {
        (Some(from), Some(to), None) => (
            layout::parse_hour(from).map_err(|e| Failure::new(EXIT_USAGE, e))?,
            layout::parse_hour(to).map_err(|e| Failure::new(EXIT_USAGE, e))?,
        ),
        (None, None, Some(lookback)) => {
            let hours = parse_lookback(lookback).map_err(fail)?;
            let to = layout::current_hour();
            (to - chrono::TimeDelta::hours(hours), to)
        }
        _ => {
            return Err(Failure::new(
                EXIT_USAGE,
                "give --from and --to, or --lookback",
            ));
        }
    };
    let batch = if args.dry_run {
        None
    } else {
        Some(args.batch.connect().await?)
    };
    let backfill = Backfill::new(
        args.layout.layout()?,
        &args.data_type,
        from,
        to,
        args.storage.options(),
    )
    .map_err(fail)?;
    let plan = backfill.plan().await.map_err(fail)?;
    let count = |s: fn(&HourStatus) -> bool| plan.iter().filter(|h| s(&h.status)).count();
    if args.dry_run {
        for hour in &plan {
            outln!("{hour}");
        }
    }
    outln!(
        "{} hour(s) from {} to {}: {} to convert, {} already committed, {} without objects",
        plan.len(),
        layout::format_hour(from),
        layout::format_hour(to),
        count(|s| *s == HourStatus::Convert),
        count(|s| matches!(s, HourStatus::Committed { .. })),
        count(|s| *s == HourStatus::Empty),
    );
    let outcome = backfill.submit(&plan, batch.as_ref()).await.map_err(fail)?;
    outln!("{outcome}");
    Ok(())
}
