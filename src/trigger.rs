//! The trigger: "partition closed" messages in; manifests written and partition jobs submitted.
//!
//! Edge: runs as an AWS Lambda function subscribed to the SNS topic on which the upstream
//! pipeline announces closed partitions (`parqour-lambda`, feature `lambda`), or locally as
//! `parqour trigger --event FILE|-`. Both call [`Trigger::handle`] on the event JSON.
//!
//! Accepted events, at any nesting (an SQS message holding an SNS notification holding an S3
//! event is three levels):
//!
//! - a Lambda SNS event (`Records[].Sns.Message`), a Lambda SQS event (`Records[].body`), or a
//!   bare SNS notification (`{"Type": "Notification", "Message": ...}`);
//! - a **partition-closed message** ([`PartitionClosed`]):
//!   ```json
//!   {"event": "partition_closed", "version": 1, "data_type": "events",
//!    "partition": {"dt": "2026-11-26", "hour": "03"},
//!    "raw_prefix": "s3://raw/events/2026/11/26/03/"}
//!   ```
//!   or with `"manifest": "s3://.../manifest.json"` (a manifest written upstream) instead of
//!   `partition` and `raw_prefix`;
//! - an **S3 event notification** (`Records[].s3`): an `ObjectCreated` event for an object named
//!   `_SUCCESS` (the closed object; `PARQOUR_CLOSED_OBJECT`) closes the raw prefix it is in; the
//!   prefix is matched against the raw prefix template ([`crate::layout`]) to find the data type
//!   and hour. Keys arrive URL-encoded (`+` for space) and are decoded. `s3:TestEvent` (sent when
//!   a notification is configured) is ignored.
//!
//! For a raw prefix, the trigger lists its `*.avro` objects (with sizes and etags), writes the
//! manifest to the partition's stable manifest location (unless the same manifest is already
//! there) and submits the job — unless the partition is already committed with that manifest or
//! a job for it is queued, running or succeeded ([`crate::batch`]): a duplicate message submits
//! nothing. An empty raw prefix submits nothing.
//!
//! Failures: a message that cannot be parsed or is invalid is reported (log, and the
//! `InvalidMessages` metric) and not retried: retrying cannot fix it. Other failures (S3, Batch)
//! are retried: the Lambda function fails the SNS invocation (Lambda retries asynchronous
//! invocations twice, then sends the event to the on-failure destination) or reports the SQS
//! message in `batchItemFailures` (the queue's redrive policy bounds the retries).
//!
//! Limitations: the messages of one event are handled one after another; an S3 event closes a
//! prefix only through an object named like the closed object (an Avro object arriving never
//! does); EventBridge events are not accepted. A raw prefix listed while objects are still being
//! written gives a manifest without them: the upstream must announce a partition once it is
//! complete (a later message with more objects converts it again).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::avro::envelope::valid_data_type;
use crate::batch::{self, Batch, BatchError, Submission, Submitted};
use crate::layout::{Layout, LayoutError};
use crate::manifest::{Manifest, ManifestError};
use crate::source::{InputObject, SourceError, list_inputs};
use crate::storage::StorageOptions;

/// Environment variable: handle only this data type (others are ignored).
pub const ENV_DATA_TYPE: &str = "PARQOUR_DATA_TYPE";
/// Environment variable: the object whose creation closes a raw prefix.
pub const ENV_CLOSED_OBJECT: &str = "PARQOUR_CLOSED_OBJECT";
/// The default closed object (the Hadoop convention).
pub const DEFAULT_CLOSED_OBJECT: &str = "_SUCCESS";
/// `event` of a partition-closed message.
pub const PARTITION_CLOSED: &str = "partition_closed";

/// How deep envelopes may nest (SQS -> SNS -> S3 is 3).
const MAX_DEPTH: u8 = 6;

/// Errors of handling one message.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    /// The message cannot be understood or is not valid: retrying will not help.
    #[error("invalid message: {0}")]
    Invalid(String),
    /// A template setting is missing or wrong.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// Reading the marker or manifests, writing the manifest, or AWS Batch failed.
    #[error(transparent)]
    Batch(#[from] BatchError),
    /// Listing the raw prefix failed.
    #[error(transparent)]
    Source(#[from] SourceError),
}

impl TriggerError {
    /// Whether handling the message again cannot succeed (it is then reported, not retried).
    pub fn is_permanent(&self) -> bool {
        use crate::storage::StorageError;
        matches!(
            self,
            TriggerError::Invalid(_)
                | TriggerError::Batch(
                    BatchError::Manifest { .. }
                        | BatchError::MissingManifest { .. }
                        // A URL in the message that names no location (`ftp://`, `s3://`).
                        | BatchError::Storage(StorageError::Location { .. })
                )
                | TriggerError::Source(SourceError::Storage(StorageError::Location { .. }))
        )
    }
}

/// The partition-closed message (version 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionClosed {
    /// Always `partition_closed`.
    pub event: String,
    /// Always 1.
    pub version: u32,
    /// The data type: picks the table (and, for S3 events, comes from the raw prefix).
    pub data_type: String,
    /// Partition keys and values, in order (with `raw_prefix`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<Map<String, Value>>,
    /// The prefix of the partition's Avro objects (every `*.avro` under it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_prefix: Option<String>,
    /// Or: a manifest written upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
}

/// What a message asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Signal {
    /// A partition-closed message.
    Closed(PartitionClosed),
    /// An S3 event notification record.
    S3Object {
        /// `ObjectCreated:Put`, ...
        event_name: String,
        /// The bucket.
        bucket: String,
        /// The key, decoded.
        key: String,
    },
    /// `s3:TestEvent`.
    S3Test,
}

/// How the event arrived (decides how failures are reported to Lambda).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// A Lambda SQS event: failures are listed in `batchItemFailures`.
    Sqs,
    /// A Lambda SNS event: a failure fails the invocation.
    Sns,
    /// Anything else (a message or notification on its own).
    Direct,
}

/// One message of an event.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The id it was delivered under (SQS `messageId`, SNS `MessageId`), or `event`.
    pub id: String,
    /// What it asks for, or why it cannot be understood.
    pub signal: Result<Signal, String>,
}

/// Parses an event: the envelopes, then the messages in them.
pub fn parse_event(event: &Value) -> (Delivery, Vec<Message>) {
    let records = event.get("Records").and_then(Value::as_array);
    let delivery = match records.and_then(|r| r.first()) {
        Some(r) if r.get("eventSource").and_then(Value::as_str) == Some("aws:sqs") => Delivery::Sqs,
        Some(r) if r.get("EventSource").and_then(Value::as_str) == Some("aws:sns") => Delivery::Sns,
        _ => Delivery::Direct,
    };
    let mut out = Vec::new();
    parse_value(event, TOP_ID, 0, &mut out);
    (delivery, out)
}

/// The id of a message until an envelope names it.
const TOP_ID: &str = "event";

/// The id of a message: the outermost envelope's (the SQS message's, which a Lambda reports in
/// `batchItemFailures`, not the id of the SNS notification in its body), else `inner`'s.
fn outer_id<'a>(id: &'a str, inner: Option<&'a str>) -> &'a str {
    match inner {
        Some(inner) if id == TOP_ID => inner,
        _ => id,
    }
}

fn str_field<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str)
}

fn invalid(id: &str, message: impl Into<String>, out: &mut Vec<Message>) {
    out.push(Message {
        id: id.to_string(),
        signal: Err(message.into()),
    });
}

/// Parses the text of a message body (it may be another envelope).
fn parse_text(text: &str, id: &str, depth: u8, out: &mut Vec<Message>) {
    match serde_json::from_str::<Value>(text) {
        Ok(v) => parse_value(&v, id, depth + 1, out),
        Err(e) => invalid(id, format!("not JSON: {e}"), out),
    }
}

fn parse_value(v: &Value, id: &str, depth: u8, out: &mut Vec<Message>) {
    if depth > MAX_DEPTH {
        return invalid(id, "envelopes nested too deep", out);
    }
    if let Some(records) = v.get("Records").and_then(Value::as_array) {
        if records.is_empty() {
            return invalid(id, "an event with no records", out);
        }
        for (i, r) in records.iter().enumerate() {
            if str_field(r, "EventSource") == Some("aws:sns") {
                let sns = r.get("Sns").unwrap_or(&Value::Null);
                let rid = outer_id(id, str_field(sns, "MessageId"));
                match sns.get("Message") {
                    Some(Value::String(m)) => parse_text(m, rid, depth, out),
                    Some(m @ Value::Object(_)) => parse_value(m, rid, depth + 1, out),
                    _ => invalid(rid, "an SNS record without Sns.Message", out),
                }
            } else if str_field(r, "eventSource") == Some("aws:sqs") {
                let rid = outer_id(id, str_field(r, "messageId"));
                match str_field(r, "body") {
                    Some(body) => parse_text(body, rid, depth, out),
                    None => invalid(rid, "an SQS record without a body", out),
                }
            } else if str_field(r, "eventSource") == Some("aws:s3") {
                out.push(Message {
                    id: id.to_string(),
                    signal: s3_record(r),
                });
            } else {
                invalid(
                    id,
                    format!("record {i}: not an SNS, SQS or S3 record (no known eventSource)"),
                    out,
                );
            }
        }
        return;
    }
    if str_field(v, "Type") == Some("Notification") {
        let rid = outer_id(id, str_field(v, "MessageId"));
        // The message as a string (as SNS sends it), or as the JSON object itself.
        return match v.get("Message") {
            Some(Value::String(m)) => parse_text(m, rid, depth, out),
            Some(m @ Value::Object(_)) => parse_value(m, rid, depth + 1, out),
            _ => invalid(rid, "an SNS notification without a Message", out),
        };
    }
    if str_field(v, "Event") == Some("s3:TestEvent") {
        return out.push(Message {
            id: id.to_string(),
            signal: Ok(Signal::S3Test),
        });
    }
    if v.get("event").is_some() {
        return out.push(Message {
            id: id.to_string(),
            signal: parse_closed(v),
        });
    }
    invalid(
        id,
        "neither a partition-closed message, an S3 event, nor an SNS or SQS envelope",
        out,
    )
}

fn parse_closed(v: &Value) -> Result<Signal, String> {
    let closed: PartitionClosed = serde_json::from_value(v.clone())
        .map_err(|e| format!("not a partition-closed message: {e}"))?;
    if closed.event != PARTITION_CLOSED {
        return Err(format!(
            "event `{}` is not `{PARTITION_CLOSED}`",
            closed.event
        ));
    }
    if closed.version != 1 {
        return Err(format!(
            "version {} is not supported (this parqour reads version 1)",
            closed.version
        ));
    }
    if !valid_data_type(&closed.data_type) {
        return Err(format!(
            "data_type `{}` must be letters, digits, `_`, `-` and `.` (not `.` or `..`)",
            closed.data_type
        ));
    }
    match (&closed.raw_prefix, &closed.manifest, &closed.partition) {
        (Some(_), None, Some(_)) | (None, Some(_), _) => Ok(Signal::Closed(closed)),
        (Some(_), None, None) => Err("`raw_prefix` needs `partition`".into()),
        (Some(_), Some(_), _) => Err("give `raw_prefix` or `manifest`, not both".into()),
        (None, None, _) => Err("needs `raw_prefix` (with `partition`) or `manifest`".into()),
    }
}

/// Data types become part of URLs: keep them to a safe alphabet.
fn s3_record(r: &Value) -> Result<Signal, String> {
    let event_name = str_field(r, "eventName")
        .ok_or("an S3 record without eventName")?
        .to_string();
    let s3 = r.get("s3").ok_or("an S3 record without s3")?;
    let bucket = s3
        .get("bucket")
        .and_then(|b| str_field(b, "name"))
        .ok_or("an S3 record without s3.bucket.name")?
        .to_string();
    let raw_key = s3
        .get("object")
        .and_then(|o| str_field(o, "key"))
        .ok_or("an S3 record without s3.object.key")?;
    Ok(Signal::S3Object {
        event_name,
        bucket,
        key: decode_s3_key(raw_key)?,
    })
}

/// S3 event keys are URL-encoded as in HTML forms: `+` is a space, `%XX` a byte.
pub fn decode_s3_key(key: &str) -> Result<String, String> {
    let spaced = key.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|k| k.into_owned())
        .map_err(|_| format!("S3 key `{key}` is not URL-encoded UTF-8"))
}

/// What became of one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A job was submitted.
    Submitted {
        /// `<table>/<partition path>`.
        partition: String,
        /// The manifest it runs.
        manifest_url: String,
        /// The job.
        job: Submitted,
    },
    /// Nothing to do for this partition.
    Skipped {
        /// `<table>/<partition path>`, or the raw prefix.
        partition: String,
        /// Why.
        reason: String,
    },
    /// The message is not for this trigger.
    Ignored {
        /// Why.
        reason: String,
    },
    /// Dry run: what would be written and submitted.
    Planned {
        /// `<table>/<partition path>`.
        partition: String,
        /// Where the manifest would go (or is).
        manifest_url: String,
        /// The job name.
        job_name: String,
        /// Inputs in the manifest.
        inputs: usize,
    },
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Submitted {
                partition,
                manifest_url,
                job,
            } => write!(
                f,
                "submitted {} (job {}) for {partition} with {manifest_url}",
                job.name, job.job_id
            ),
            Outcome::Skipped { partition, reason } => {
                write!(f, "not submitted: {partition}: {reason}")
            }
            Outcome::Ignored { reason } => write!(f, "ignored: {reason}"),
            Outcome::Planned {
                partition,
                manifest_url,
                job_name,
                inputs,
            } => write!(
                f,
                "dry run: would write {manifest_url} ({inputs} input(s)) and submit {job_name} for {partition}"
            ),
        }
    }
}

/// The result of one message.
#[derive(Debug)]
pub struct MessageReport {
    /// The id it was delivered under.
    pub id: String,
    /// What became of it.
    pub result: Result<Outcome, TriggerError>,
}

/// The results of one event.
#[derive(Debug)]
pub struct Report {
    /// How it arrived.
    pub delivery: Delivery,
    /// One per message, in order.
    pub messages: Vec<MessageReport>,
}

impl Report {
    /// Counts: (submitted, skipped, ignored, invalid, failed).
    pub fn counts(&self) -> [usize; 5] {
        let mut c = [0; 5];
        for m in &self.messages {
            let i = match &m.result {
                Ok(Outcome::Submitted { .. }) => 0,
                Ok(Outcome::Skipped { .. } | Outcome::Planned { .. }) => 1,
                Ok(Outcome::Ignored { .. }) => 2,
                Err(e) if e.is_permanent() => 3,
                Err(_) => 4,
            };
            c[i] += 1;
        }
        c
    }

    /// Ids of messages to deliver again (failed, not invalid), without repeats.
    pub fn retry_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        for m in &self.messages {
            if let Err(e) = &m.result
                && !e.is_permanent()
                && !ids.contains(&m.id)
            {
                ids.push(m.id.clone());
            }
        }
        ids
    }

    /// The Lambda function's answer: for SQS events, `batchItemFailures` (the failed messages
    /// come back, the others are deleted); otherwise `Err` when a message should be retried
    /// (Lambda retries the invocation), else a summary.
    pub fn lambda_response(&self) -> Result<Value, String> {
        let retry = self.retry_ids();
        if self.delivery == Delivery::Sqs {
            let failures: Vec<Value> = retry
                .iter()
                .map(|id| serde_json::json!({"itemIdentifier": id}))
                .collect();
            return Ok(serde_json::json!({"batchItemFailures": failures}));
        }
        if retry.is_empty() {
            let [submitted, skipped, ignored, invalid, failed] = self.counts();
            Ok(serde_json::json!({
                "submitted": submitted, "skipped": skipped, "ignored": ignored,
                "invalid": invalid, "failed": failed
            }))
        } else {
            let errors: Vec<String> = self
                .messages
                .iter()
                .filter_map(|m| m.result.as_ref().err().map(|e| format!("{}: {e}", m.id)))
                .collect();
            Err(errors.join("; "))
        }
    }

    /// One CloudWatch Embedded Metric Format line (namespace `parqour`, dimension `Function`):
    /// Messages, Submitted, Skipped, Ignored, InvalidMessages, Failed.
    pub fn emf_line(&self, function: &str) -> String {
        use crate::metrics::{Metric, emf_line};
        let [submitted, skipped, ignored, invalid, failed] = self.counts();
        emf_line(
            "Function",
            &[
                Metric::count("Messages", self.messages.len() as u64),
                Metric::count("Submitted", submitted as u64),
                Metric::count("Skipped", skipped as u64),
                Metric::count("Ignored", ignored as u64),
                Metric::count("InvalidMessages", invalid as u64),
                Metric::count("Failed", failed as u64),
            ],
            &[("Function", serde_json::json!(function))],
        )
    }
}

/// A manifest for `objects` (with their sizes and etags) as partition `partition` of the
/// `data_type`'s `table`, with the registry and dead-letter place of `records`.
pub fn manifest_of(
    table: &str,
    partition: &[(String, String)],
    objects: &[InputObject],
    data_type: &str,
    records: &crate::layout::RecordSettings,
) -> Result<Manifest, ManifestError> {
    let inputs = objects
        .iter()
        .map(|o| crate::manifest::listed_input(&o.url, o.size, o.e_tag.as_deref()))
        .collect();
    let settings = crate::manifest::ManifestSettings {
        registry: records.registry.clone(),
        // Envelopes of other types in the raw prefix go to the dead-letter place.
        data_types: if records.registry.is_some() && !data_type.is_empty() {
            vec![data_type.to_string()]
        } else {
            Vec::new()
        },
        dead_letter: records
            .dead_letter
            .as_ref()
            .map(|d| d.replace(crate::manifest::DATA_TYPE_PLACEHOLDER, data_type)),
    };
    Manifest::of_inputs(table, partition, inputs, settings)
}

/// The `*.avro` objects under a raw prefix; `None` when there are none.
pub async fn list_raw(
    raw_prefix: &str,
    storage: &StorageOptions,
) -> Result<Option<Vec<InputObject>>, SourceError> {
    match list_inputs(&[raw_prefix.to_string()], storage).await {
        Ok(objects) => Ok(Some(objects)),
        Err(SourceError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `<table>/<partition path>`.
pub fn partition_url(manifest: &Manifest) -> String {
    format!(
        "{}/{}",
        manifest.raw.table.trim_end_matches('/'),
        manifest.partition_path()
    )
}

/// The trigger's settings.
#[derive(Debug, Clone)]
pub struct Trigger {
    /// Where tables, raw prefixes and manifests are.
    pub layout: Layout,
    /// Handle only this data type.
    pub data_type: Option<String>,
    /// The object whose creation closes a raw prefix (S3 events).
    pub closed_object: String,
    /// Storage settings.
    pub storage: StorageOptions,
    /// Where jobs go; `None` for a dry run (nothing written or submitted).
    pub batch: Option<Batch>,
}

impl Trigger {
    /// The trigger's settings from the environment variables `parqour trigger` also reads
    /// (`get` looks one up): `PARQOUR_TABLE`, `PARQOUR_RAW_PREFIX`, `PARQOUR_PARTITION`,
    /// `PARQOUR_MANIFEST_ROOT`, `PARQOUR_DATA_TYPE`, `PARQOUR_CLOSED_OBJECT`,
    /// `PARQOUR_JOB_QUEUE`, `PARQOUR_JOB_DEFINITION` (the job queue and definition only when
    /// `submit`; S3 settings come from the `AWS_*` variables as everywhere).
    pub async fn from_env(
        get: impl Fn(&str) -> Option<String>,
        submit: bool,
    ) -> Result<Self, TriggerError> {
        use crate::layout::{ENV_MANIFEST_ROOT, ENV_PARTITION, ENV_RAW_PREFIX, ENV_TABLE};
        let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let table = get(ENV_TABLE).ok_or_else(|| {
            LayoutError::Missing(format!(
                "{ENV_TABLE} is not set (the table URL template, e.g. s3://lake/{{data_type}})"
            ))
        })?;
        let partition: Vec<String> = get(ENV_PARTITION)
            .map(|p| p.split(',').map(|s| s.trim().to_string()).collect())
            .unwrap_or_default();
        let layout = Layout::new(
            &table,
            get(ENV_RAW_PREFIX).as_deref(),
            &partition,
            get(ENV_MANIFEST_ROOT).as_deref(),
        )?
        .with_records(crate::layout::RecordSettings {
            registry: get(crate::layout::ENV_REGISTRY),
            dead_letter: get(crate::layout::ENV_DEAD_LETTER),
        });
        let batch = if submit {
            Some(
                Batch::connect(
                    &get(batch::ENV_JOB_QUEUE).unwrap_or_default(),
                    &get(batch::ENV_JOB_DEFINITION).unwrap_or_default(),
                )
                .await?,
            )
        } else {
            None
        };
        Ok(Self {
            layout,
            data_type: get(ENV_DATA_TYPE),
            closed_object: get(ENV_CLOSED_OBJECT).unwrap_or_else(|| DEFAULT_CLOSED_OBJECT.into()),
            storage: StorageOptions::default(),
            batch,
        })
    }

    /// Handles an event given as text (a file, standard input): text that is not JSON is one
    /// invalid message.
    pub async fn handle_text(&self, text: &str) -> Report {
        match serde_json::from_str::<Value>(text) {
            Ok(event) => self.handle(&event).await,
            Err(e) => {
                let e = TriggerError::Invalid(format!("not JSON: {e}"));
                // The error line every invalid message gets in `handle`.
                tracing::error!(message_id = "event", "{e} (not retried)");
                Report {
                    delivery: Delivery::Direct,
                    messages: vec![MessageReport {
                        id: "event".into(),
                        result: Err(e),
                    }],
                }
            }
        }
    }

    /// Handles every message of an event.
    pub async fn handle(&self, event: &Value) -> Report {
        let (delivery, messages) = parse_event(event);
        let mut reports = Vec::with_capacity(messages.len());
        for message in messages {
            let result = match message.signal {
                Ok(signal) => self.handle_signal(signal).await,
                Err(why) => Err(TriggerError::Invalid(why)),
            };
            match &result {
                Ok(outcome) => tracing::info!(message_id = %message.id, "{outcome}"),
                Err(e) if e.is_permanent() => {
                    tracing::error!(message_id = %message.id, "{e} (not retried)")
                }
                Err(e) => tracing::error!(message_id = %message.id, "{e} (will be retried)"),
            }
            reports.push(MessageReport {
                id: message.id,
                result,
            });
        }
        Report {
            delivery,
            messages: reports,
        }
    }

    async fn handle_signal(&self, signal: Signal) -> Result<Outcome, TriggerError> {
        match signal {
            Signal::S3Test => Ok(Outcome::Ignored {
                reason: "s3:TestEvent".into(),
            }),
            Signal::S3Object {
                event_name,
                bucket,
                key,
            } => self.handle_s3(&event_name, &bucket, &key).await,
            Signal::Closed(closed) => self.handle_closed(closed).await,
        }
    }

    async fn handle_s3(
        &self,
        event_name: &str,
        bucket: &str,
        key: &str,
    ) -> Result<Outcome, TriggerError> {
        let url = format!("s3://{bucket}/{key}");
        if !event_name.starts_with("ObjectCreated:") {
            return Ok(Outcome::Ignored {
                reason: format!("{event_name} {url}: only ObjectCreated events close a partition"),
            });
        }
        let (dir, name) = key.rsplit_once('/').unwrap_or(("", key));
        if name != self.closed_object {
            return Ok(Outcome::Ignored {
                reason: format!(
                    "{url}: not a `{}` object (the closed object)",
                    self.closed_object
                ),
            });
        }
        let prefix = if dir.is_empty() {
            format!("s3://{bucket}/")
        } else {
            format!("s3://{bucket}/{dir}/")
        };
        let raw = self.layout.raw_prefix.as_ref().ok_or_else(|| {
            LayoutError::Missing(format!(
                "S3 events need the raw prefix template: set {}",
                crate::layout::ENV_RAW_PREFIX
            ))
        })?;
        let Some(vars) = self.layout.match_raw_prefix(&prefix) else {
            return Ok(Outcome::Ignored {
                reason: format!(
                    "{prefix} does not match the raw prefix template {}",
                    raw.as_str()
                ),
            });
        };
        let data_type = if vars.data_type.is_empty() {
            self.data_type.clone().ok_or_else(|| {
                LayoutError::Missing(format!(
                    "the raw prefix template {} has no {{data_type}}: set {ENV_DATA_TYPE}",
                    raw.as_str()
                ))
            })?
        } else {
            vars.data_type.clone()
        };
        if !valid_data_type(&data_type) {
            return Err(TriggerError::Invalid(format!(
                "{prefix}: data type `{data_type}` must be letters, digits, `_`, `-` and `.`"
            )));
        }
        let partition = self.layout.partition_values(&vars);
        self.handle_closed(PartitionClosed {
            event: PARTITION_CLOSED.into(),
            version: 1,
            data_type,
            partition: Some(
                partition
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect(),
            ),
            raw_prefix: Some(prefix),
            manifest: None,
        })
        .await
    }

    async fn handle_closed(&self, closed: PartitionClosed) -> Result<Outcome, TriggerError> {
        if let Some(only) = &self.data_type
            && *only != closed.data_type
        {
            return Ok(Outcome::Ignored {
                reason: format!(
                    "data type `{}` (this trigger handles `{only}`)",
                    closed.data_type
                ),
            });
        }
        // The job reads these in its container, which sees no file of this host's: a message
        // naming one would list or read this host's files and submit a job bound to fail.
        for (field, url) in [
            ("manifest", &closed.manifest),
            ("raw_prefix", &closed.raw_prefix),
        ] {
            if let Some(url) = url
                && crate::storage::s3_key(url).is_none()
            {
                return Err(TriggerError::Invalid(format!(
                    "`{field}` must be an s3:// URL (the job cannot read this host's files): {url}"
                )));
            }
        }
        if let Some(url) = &closed.manifest {
            let manifest = batch::read_manifest(url, &self.storage).await?;
            return self.submit(&manifest, url, false).await;
        }
        let (Some(raw_prefix), Some(partition)) = (&closed.raw_prefix, &closed.partition) else {
            return Err(TriggerError::Invalid(
                "needs `raw_prefix` (with `partition`) or `manifest`".into(),
            ));
        };
        let mut values = Vec::with_capacity(partition.len());
        for (k, v) in partition {
            let v = v.as_str().ok_or_else(|| {
                TriggerError::Invalid(format!("partition value of `{k}` must be a string"))
            })?;
            values.push((k.clone(), v.to_string()));
        }
        let table = self.layout.table_url(&closed.data_type);
        let Some(objects) = list_raw(raw_prefix, &self.storage).await? else {
            return Ok(Outcome::Skipped {
                partition: raw_prefix.clone(),
                reason: "no `.avro` objects under the raw prefix: nothing to convert".into(),
            });
        };
        let manifest = manifest_of(
            &table,
            &values,
            &objects,
            &closed.data_type,
            &self.layout.records,
        )
        .map_err(|e| TriggerError::Invalid(e.to_string()))?;
        let root = self.layout.manifest_root_of(&closed.data_type, &table);
        let url = crate::layout::manifest_url(&root, &manifest);
        if let Some(key) = crate::storage::s3_key(&url)
            && key.len() > crate::storage::MAX_S3_KEY
        {
            return Err(TriggerError::Invalid(format!(
                "the manifest's key would be {} bytes long (S3 takes {}): the partition's \
                 values are too long",
                key.len(),
                crate::storage::MAX_S3_KEY
            )));
        }
        self.submit(&manifest, &url, true).await
    }

    /// Checks, writes the manifest (`write`) and submits its job.
    async fn submit(
        &self,
        manifest: &Manifest,
        url: &str,
        write: bool,
    ) -> Result<Outcome, TriggerError> {
        let partition = partition_url(manifest);
        let submission = batch::submit_manifest(
            self.batch.as_ref(),
            manifest,
            url,
            write,
            false,
            &self.storage,
        )
        .await?;
        Ok(match submission {
            Submission::Skipped(skip) => Outcome::Skipped {
                partition,
                reason: skip.to_string(),
            },
            Submission::DryRun { name } => Outcome::Planned {
                partition,
                manifest_url: url.to_string(),
                job_name: name,
                inputs: manifest.raw.inputs.len(),
            },
            Submission::Submitted(job) => Outcome::Submitted {
                partition,
                manifest_url: url.to_string(),
                job,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CLOSED: &str = r#"{"event": "partition_closed", "version": 1, "data_type": "events",
        "partition": {"dt": "2026-11-26", "hour": "03"},
        "raw_prefix": "s3://raw/events/2026/11/26/03/"}"#;

    fn one(event: &Value) -> Result<Signal, String> {
        let (_, mut messages) = parse_event(event);
        assert_eq!(messages.len(), 1, "{messages:?}");
        messages.remove(0).signal
    }

    fn closed() -> PartitionClosed {
        serde_json::from_str(CLOSED).unwrap()
    }

    fn sns(message: &str) -> Value {
        json!({"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0",
            "Sns": {"Type": "Notification", "MessageId": "sns-1", "TopicArn": "arn:aws:sns:us-east-1:123456789012:closed",
                    "Message": message}}]})
    }

    fn s3_event(name: &str, key: &str) -> Value {
        json!({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventName": name, "s3": {"bucket": {"name": "raw"}, "object": {"key": key, "size": 0}}}]})
    }

    #[test]
    fn partition_closed_in_every_envelope() {
        let bare: Value = serde_json::from_str(CLOSED).unwrap();
        assert_eq!(one(&bare), Ok(Signal::Closed(closed())));
        // Fields the upstream adds are ignored.
        let mut extra = bare.clone();
        extra["closed_at"] = json!("2026-11-26T04:00:00Z");
        assert_eq!(one(&extra), Ok(Signal::Closed(closed())));
        let (delivery, m) = parse_event(&sns(CLOSED));
        assert_eq!(delivery, Delivery::Sns);
        assert_eq!(m[0].id, "sns-1");
        assert_eq!(m[0].signal, Ok(Signal::Closed(closed())));
        // SQS holding the SNS notification (raw delivery off) and the message itself (on).
        let envelope = json!({"Type": "Notification", "MessageId": "sns-2", "Message": CLOSED});
        for body in [envelope.to_string(), CLOSED.to_string()] {
            let sqs = json!({"Records": [{"eventSource": "aws:sqs", "messageId": "sqs-1", "body": body}]});
            let (delivery, m) = parse_event(&sqs);
            assert_eq!(delivery, Delivery::Sqs);
            assert_eq!(m[0].signal, Ok(Signal::Closed(closed())));
            // The SQS message's id either way, not the notification's: it is the one a
            // Lambda reports in batchItemFailures.
            assert_eq!(m[0].id, "sqs-1");
        }
        // A notification whose Message is the JSON object rather than its text.
        let object = json!({"Type": "Notification", "MessageId": "sns-3",
            "Message": serde_json::from_str::<Value>(CLOSED).unwrap()});
        assert_eq!(one(&object), Ok(Signal::Closed(closed())));
        // The SQS message id is the one to report (batchItemFailures).
        let sqs =
            json!({"Records": [{"eventSource": "aws:sqs", "messageId": "sqs-1", "body": CLOSED}]});
        assert_eq!(parse_event(&sqs).1[0].id, "sqs-1");
    }

    /// A URL in a message that names no location is the message's fault: reported, not
    /// retried (it exited 64 and was retried as transient).
    #[test]
    fn urls_that_name_no_location_are_permanent() {
        use crate::storage::StorageError;
        let location = || StorageError::Location {
            location: "ftp://raw/x/".into(),
            message: "unsupported URL scheme".into(),
        };
        assert!(TriggerError::Source(SourceError::Storage(location())).is_permanent());
        assert!(TriggerError::Batch(BatchError::Storage(location())).is_permanent());
        let io = StorageError::Io {
            path: "/x".into(),
            source: std::io::Error::other("disk"),
        };
        assert!(!TriggerError::Batch(BatchError::Storage(io)).is_permanent());
    }

    #[test]
    fn s3_events_through_sns_decode_keys_and_test_events() {
        let event = s3_event(
            "ObjectCreated:Put",
            "ad+events/dt%3D2026-11-26/hour%3D03/caf%C3%A9_SUCCESS",
        );
        let signal = one(&sns(&event.to_string())).unwrap();
        assert_eq!(
            signal,
            Signal::S3Object {
                event_name: "ObjectCreated:Put".into(),
                bucket: "raw".into(),
                key: "ad events/dt=2026-11-26/hour=03/café_SUCCESS".into()
            }
        );
        let test = json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-11-26T03:00:00.000Z",
            "Bucket": "raw", "RequestId": "r", "HostId": "h"});
        assert_eq!(one(&sns(&test.to_string())), Ok(Signal::S3Test));
        assert!(one(&s3_event("ObjectCreated:Put", "bad%FF")).is_err());
    }

    #[test]
    fn invalid_messages_say_why() {
        let cases = [
            ("not json", "not JSON"),
            (r#"{"hello": 1}"#, "neither"),
            (
                r#"{"event": "partition_opened", "version": 1, "data_type": "x", "manifest": "m"}"#,
                "is not `partition_closed`",
            ),
            (
                r#"{"event": "partition_closed", "version": 2, "data_type": "x", "manifest": "m"}"#,
                "version 2",
            ),
            (
                r#"{"event": "partition_closed", "version": 1, "data_type": "../x", "manifest": "m"}"#,
                "data_type `../x`",
            ),
            (
                r#"{"event": "partition_closed", "version": 1, "data_type": "x"}"#,
                "needs `raw_prefix`",
            ),
            (
                r#"{"event": "partition_closed", "version": 1, "data_type": "x", "raw_prefix": "s3://r/"}"#,
                "needs `partition`",
            ),
            (
                r#"{"event": "partition_closed", "version": 1, "data_type": "x", "raw_prefix": "s3://r/", "manifest": "m", "partition": {}}"#,
                "not both",
            ),
            (
                r#"{"event": "partition_closed", "data_type": "x"}"#,
                "missing field `version`",
            ),
        ];
        for (message, expected) in cases {
            let err = one(&sns(message)).unwrap_err();
            assert!(err.contains(expected), "{message}: {err}");
        }
        assert!(
            one(&json!({"Records": [{"eventSource": "aws:kinesis"}]}))
                .unwrap_err()
                .contains("no known eventSource")
        );
        assert!(one(&json!({"Records": []})).is_err());
        // Nesting is bounded.
        let mut deep = CLOSED.to_string();
        for _ in 0..10 {
            deep = json!({"Type": "Notification", "Message": deep}).to_string();
        }
        assert!(
            one(&serde_json::from_str(&deep).unwrap())
                .unwrap_err()
                .contains("too deep")
        );
    }

    fn report(delivery: Delivery, results: Vec<(&str, Result<Outcome, TriggerError>)>) -> Report {
        Report {
            delivery,
            messages: results
                .into_iter()
                .map(|(id, result)| MessageReport {
                    id: id.into(),
                    result,
                })
                .collect(),
        }
    }

    #[tokio::test]
    async fn settings_from_the_environment() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let t = Trigger::from_env(
            env(&[
                ("PARQOUR_TABLE", "s3://lake/{data_type}"),
                (
                    "PARQOUR_RAW_PREFIX",
                    "s3://raw/{data_type}/{yyyy}{MM}{dd}/{HH}/",
                ),
                ("PARQOUR_PARTITION", "day={yyyy}{MM}{dd}, hour={HH}"),
                ("PARQOUR_DATA_TYPE", "clicks"),
                ("PARQOUR_CLOSED_OBJECT", ""),
            ]),
            false,
        )
        .await
        .unwrap();
        assert_eq!(t.layout.table_url("clicks"), "s3://lake/clicks");
        assert_eq!(t.layout.partition[1].0, "hour");
        assert_eq!(t.data_type.as_deref(), Some("clicks"));
        assert_eq!(t.closed_object, "_SUCCESS");
        assert!(t.batch.is_none());
        let e = Trigger::from_env(env(&[]), false).await.unwrap_err();
        assert!(e.to_string().contains("PARQOUR_TABLE"), "{e}");
        // Submitting needs a queue and a definition.
        let e = Trigger::from_env(env(&[("PARQOUR_TABLE", "s3://l/t")]), true)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("PARQOUR_JOB_QUEUE"), "{e}");
    }

    #[test]
    fn lambda_responses_retry_failures_but_not_invalid_messages() {
        let failed = || {
            Err(TriggerError::Batch(BatchError::Api {
                operation: "SubmitJob",
                message: "throttled".into(),
                retryable: true,
            }))
        };
        let bad = || Err(TriggerError::Invalid("x".into()));
        let ignored = || Ok(Outcome::Ignored { reason: "r".into() });
        let sqs = report(
            Delivery::Sqs,
            vec![
                ("a", failed()),
                ("a", failed()),
                ("b", bad()),
                ("c", ignored()),
            ],
        );
        assert_eq!(
            sqs.lambda_response().unwrap(),
            json!({"batchItemFailures": [{"itemIdentifier": "a"}]})
        );
        assert_eq!(sqs.counts(), [0, 0, 1, 1, 2]);
        let emf: Value = serde_json::from_str(&sqs.emf_line("f")).unwrap();
        assert_eq!(emf["InvalidMessages"], 1);
        assert_eq!(emf["Failed"], 2);
        assert_eq!(emf["_aws"]["CloudWatchMetrics"][0]["Namespace"], "parqour");
        let sns = report(Delivery::Sns, vec![("a", bad())]);
        assert_eq!(sns.lambda_response().unwrap()["invalid"], 1);
        let sns = report(Delivery::Sns, vec![("a", failed())]);
        assert!(sns.lambda_response().unwrap_err().contains("throttled"));
    }
}
