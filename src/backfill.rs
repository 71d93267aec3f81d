//! Backfills and lookbacks: the hourly partitions of a range, converted by one array job.
//!
//! Edge: `parqour backfill --data-type T --from 2026-11-01T00 --to 2026-11-02T00` (or
//! `--lookback 6h`: the six whole hours before the current one). For every hour of the range
//! (`to` excluded) the raw prefix comes from the layout's template ([`crate::layout`]); an hour
//! without `*.avro` objects is skipped, and so is one whose partition is already committed with
//! the same manifest (same objects, sizes and etags). What is left is converted:
//!
//! - one partition: its manifest goes to its stable place and one job is submitted, as the
//!   trigger would;
//! - several: their manifests go under
//!   `<manifest root>/_backfill/<from>-<to>-<hash>/<partition path>/manifest.json` and one array
//!   job converts them, child `i` the `i`-th manifest in key order. The hash is over the
//!   manifests, so running the same backfill again finds the same array job (active or
//!   succeeded) and submits nothing, while late objects give a new one.
//!
//! A lookback is a backfill that is run on a schedule: only the hours whose objects changed
//! since their commit are converted again.
//!
//! Limitations: hourly partitions only (the time placeholders stop at `{HH}`); at most 10,000
//! hours per run (one array job); a partition converted by a backfill's array job and, at the
//! same time, by a trigger's job is committed by whichever finishes last.

use chrono::NaiveDateTime;
use futures::{StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};

use crate::batch::{self, Batch, BatchError, JobSpec, MAX_ARRAY_SIZE, Skip, Submitted};
use crate::layout::{self, Layout, LayoutError, Vars};
use crate::manifest::Manifest;
use crate::source::SourceError;
use crate::storage::StorageOptions;
use crate::trigger::{list_raw, manifest_of, partition_url};

/// Hours listed at once.
const CONCURRENCY: usize = 16;

/// Errors of a backfill.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    /// A template setting is missing or wrong, or an hour is malformed.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// The range is empty or too long.
    #[error("{0}")]
    Range(String),
    /// Listing a raw prefix failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Reading markers, writing manifests or AWS Batch failed.
    #[error(transparent)]
    Batch(#[from] BatchError),
    /// The layout gives an invalid manifest (e.g. a partition key that is not lowercase).
    #[error("{partition}: {message}")]
    Manifest {
        /// The raw prefix.
        partition: String,
        /// Why.
        message: String,
    },
    /// The backfill's manifest prefix holds other objects than the manifests just written.
    #[error(
        "{prefix}: {found} manifests after writing {expected}: remove the other objects under it"
    )]
    Written {
        /// The prefix.
        prefix: String,
        /// Manifests written.
        expected: usize,
        /// Manifests found.
        found: usize,
    },
}

/// What is to be done with one hour.
#[derive(Debug, Clone, PartialEq)]
pub enum HourStatus {
    /// No `*.avro` objects under the raw prefix.
    Empty,
    /// Already committed with this manifest.
    Committed {
        /// The generation.
        generation: String,
    },
    /// To convert.
    Convert,
}

/// One hour of a backfill.
#[derive(Debug, Clone)]
pub struct PlannedHour {
    /// The hour.
    pub hour: NaiveDateTime,
    /// Its raw prefix.
    pub raw_prefix: String,
    /// Its manifest (unless empty).
    pub manifest: Option<Manifest>,
    /// Bytes of its inputs.
    pub bytes: u64,
    /// What is to be done.
    pub status: HourStatus,
}

impl std::fmt::Display for PlannedHour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}  {}  ",
            layout::format_hour(self.hour),
            self.raw_prefix
        )?;
        match (&self.status, &self.manifest) {
            (HourStatus::Empty, _) | (_, None) => write!(f, "no objects: skipped"),
            (status, Some(m)) => {
                write!(
                    f,
                    "{} input(s), {:.1} MB -> {}: ",
                    m.raw.inputs.len(),
                    self.bytes as f64 / 1e6,
                    partition_url(m)
                )?;
                match status {
                    HourStatus::Committed { generation } => {
                        write!(f, "already committed (generation {generation})")
                    }
                    _ => write!(f, "to convert"),
                }
            }
        }
    }
}

/// A backfill of one data type over a range of hours.
#[derive(Debug, Clone)]
pub struct Backfill {
    /// Where things are.
    pub layout: Layout,
    /// The data type.
    pub data_type: String,
    /// First hour.
    pub from: NaiveDateTime,
    /// Hour after the last.
    pub to: NaiveDateTime,
    /// Storage settings.
    pub storage: StorageOptions,
}

/// What was submitted.
#[derive(Debug, Clone, PartialEq)]
pub enum BackfillOutcome {
    /// No hour to convert.
    Nothing,
    /// The job is already there.
    Skipped {
        /// The job name.
        name: String,
        /// Why.
        reason: Skip,
    },
    /// Dry run: what would be submitted.
    Planned {
        /// The job name.
        name: String,
        /// What it would run.
        spec: JobSpec,
    },
    /// A job was submitted.
    Submitted {
        /// The job.
        job: Submitted,
        /// What it runs.
        spec: JobSpec,
    },
}

impl std::fmt::Display for BackfillOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = |spec: &JobSpec| match spec {
            JobSpec::Single { manifest_url } => format!("one job with {manifest_url}"),
            JobSpec::Array { prefix, count } => {
                format!("an array job of {count} over {prefix}")
            }
        };
        match self {
            BackfillOutcome::Nothing => write!(f, "nothing to convert: nothing submitted"),
            BackfillOutcome::Skipped { name, reason } => {
                write!(f, "not submitted: {name}: {reason}")
            }
            BackfillOutcome::Planned { name, spec } => {
                write!(f, "dry run: would submit {name}: {}", what(spec))
            }
            BackfillOutcome::Submitted { job, spec } => write!(
                f,
                "submitted {} (job {}): {}",
                job.name,
                job.job_id,
                what(spec)
            ),
        }
    }
}

/// Parses `6h` or `2d` into hours.
pub fn parse_lookback(text: &str) -> Result<i64, BackfillError> {
    let t = text.trim();
    let err = || BackfillError::Range(format!("lookback `{text}`: expected e.g. 6h or 2d"));
    let (num, mult) = if let Some(n) = t.strip_suffix('h') {
        (n, 1)
    } else if let Some(n) = t.strip_suffix('d') {
        (n, 24)
    } else {
        return Err(err());
    };
    let n: i64 = num.parse().map_err(|_| err())?;
    if n <= 0 {
        return Err(err());
    }
    let hours = n.checked_mul(mult).ok_or_else(err)?;
    // Refused here, before an hour that far back is computed (which overflows a date).
    if hours > MAX_ARRAY_SIZE as i64 {
        return Err(BackfillError::Range(format!(
            "lookback `{text}`: {hours} hours, at most {MAX_ARRAY_SIZE} per backfill (one array \
             job); split the range"
        )));
    }
    Ok(hours)
}

impl Backfill {
    /// A backfill of `[from, to)`.
    pub fn new(
        layout: Layout,
        data_type: &str,
        from: NaiveDateTime,
        to: NaiveDateTime,
        storage: StorageOptions,
    ) -> Result<Self, BackfillError> {
        if from >= to {
            return Err(BackfillError::Range(format!(
                "--from {} is not before --to {}",
                layout::format_hour(from),
                layout::format_hour(to)
            )));
        }
        let hours = (to - from).num_hours();
        if hours > MAX_ARRAY_SIZE as i64 {
            return Err(BackfillError::Range(format!(
                "{hours} hours: at most {MAX_ARRAY_SIZE} per backfill (one array job); split the range"
            )));
        }
        // Fails early when no raw prefix template is configured.
        layout.raw_prefix_url(&Vars::of(data_type, from))?;
        Ok(Self {
            layout,
            data_type: data_type.to_string(),
            from,
            to,
            storage,
        })
    }

    /// Lists every hour's raw prefix and reads its partition's marker.
    pub async fn plan(&self) -> Result<Vec<PlannedHour>, BackfillError> {
        let table = self.layout.table_url(&self.data_type);
        futures::stream::iter(layout::hours(self.from, self.to))
            .map(|hour| self.plan_hour(hour, &table))
            .buffered(CONCURRENCY)
            .try_collect()
            .await
    }

    async fn plan_hour(
        &self,
        hour: NaiveDateTime,
        table: &str,
    ) -> Result<PlannedHour, BackfillError> {
        let vars = Vars::of(&self.data_type, hour);
        let raw_prefix = self.layout.raw_prefix_url(&vars)?;
        let Some(objects) = list_raw(&raw_prefix, &self.storage).await? else {
            return Ok(PlannedHour {
                hour,
                raw_prefix,
                manifest: None,
                bytes: 0,
                status: HourStatus::Empty,
            });
        };
        let manifest = manifest_of(
            table,
            &self.layout.partition_values(&vars),
            &objects,
            &self.data_type,
            &self.layout.records,
        )
        .map_err(|e| BackfillError::Manifest {
            partition: raw_prefix.clone(),
            message: e.to_string(),
        })?;
        let status = match batch::committed(&manifest, &self.storage).await? {
            Some(Skip::Committed { generation, .. }) => HourStatus::Committed { generation },
            _ => HourStatus::Convert,
        };
        Ok(PlannedHour {
            hour,
            raw_prefix,
            manifest: Some(manifest),
            bytes: objects.iter().map(|o| o.size).sum(),
            status,
        })
    }

    fn manifest_root(&self) -> String {
        self.layout
            .manifest_root_of(&self.data_type, &self.layout.table_url(&self.data_type))
    }

    /// The job name and what it runs, for the hours to convert; with the manifests' URLs.
    pub fn job(&self, todo: &[&Manifest]) -> Option<(String, JobSpec, Vec<String>)> {
        let root = self.manifest_root();
        match todo {
            [] => None,
            [one] => {
                let url = layout::manifest_url(&root, one);
                let spec = JobSpec::Single {
                    manifest_url: url.clone(),
                };
                Some((batch::job_name(one), spec, vec![url]))
            }
            many => {
                let mut hasher = Sha256::new();
                for m in many {
                    hasher.update(m.hash.as_bytes());
                }
                let hash: String = hasher.finalize()[..8]
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                let (from, to) = (self.from.format("%Y%m%d%H"), self.to.format("%Y%m%d%H"));
                let prefix = format!("{root}/_backfill/{from}-{to}-{hash}/");
                let urls = many
                    .iter()
                    .map(|m| layout::manifest_url(prefix.trim_end_matches('/'), m))
                    .collect();
                let label = format!("{}-backfill-{from}-{to}", self.data_type);
                let name = batch::array_job_name(&label, &prefix);
                let spec = JobSpec::Array {
                    prefix,
                    count: many.len(),
                };
                Some((name, spec, urls))
            }
        }
    }

    /// Writes the manifests of the hours to convert and submits their job (`batch`), or says
    /// what it would do (`None`: dry run).
    pub async fn submit(
        &self,
        plan: &[PlannedHour],
        batch: Option<&Batch>,
    ) -> Result<BackfillOutcome, BackfillError> {
        let todo: Vec<&Manifest> = plan
            .iter()
            .filter(|h| h.status == HourStatus::Convert)
            .filter_map(|h| h.manifest.as_ref())
            .collect();
        let Some((name, spec, urls)) = self.job(&todo) else {
            return Ok(BackfillOutcome::Nothing);
        };
        let Some(batch) = batch else {
            return Ok(BackfillOutcome::Planned { name, spec });
        };
        if let Some(existing) = batch.find(&name).await? {
            return Ok(BackfillOutcome::Skipped {
                name,
                reason: Skip::Job(existing),
            });
        }
        futures::stream::iter(todo.iter().zip(&urls))
            .map(|(m, url)| batch::write_manifest(url, m, &self.storage))
            .buffer_unordered(CONCURRENCY)
            .try_collect::<Vec<bool>>()
            .await?;
        if let JobSpec::Array { prefix, count } = &spec {
            let found = batch::list_manifests(prefix, &self.storage).await?.len();
            if found != *count {
                return Err(BackfillError::Written {
                    prefix: prefix.clone(),
                    expected: *count,
                    found,
                });
            }
        }
        let job = batch.submit(&name, &spec).await?;
        Ok(BackfillOutcome::Submitted { job, spec })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;

    #[test]
    fn lookbacks() {
        assert_eq!(parse_lookback("6h").unwrap(), 6);
        assert_eq!(parse_lookback("2d").unwrap(), 48);
        for bad in ["0h", "-1h", "6", "h", "1w"] {
            assert!(parse_lookback(bad).is_err(), "{bad}");
        }
        // Past one array job: refused before a date that far back overflows (it panicked).
        assert_eq!(parse_lookback("10000h").unwrap(), 10_000);
        for huge in [
            "10001h",
            "10000000000h",
            "9999999999999h",
            "99999999999999d",
        ] {
            let err = parse_lookback(huge).unwrap_err().to_string();
            assert!(err.contains("at most 10000"), "{huge}: {err}");
        }
    }

    async fn put(url: &str, bytes: &[u8]) {
        let l = crate::storage::resolve(url, &StorageOptions::default()).unwrap();
        l.store.put(&l.path, bytes.to_vec().into()).await.unwrap();
    }

    #[tokio::test]
    async fn plans_skip_empty_and_committed_hours() {
        let layout = Layout::new(
            "memory://backfill/lake/{data_type}",
            Some("memory://backfill/raw/{data_type}/{yyyy}/{MM}/{dd}/{HH}/"),
            &[],
            None,
        )
        .unwrap();
        let from = layout::parse_hour("2026-11-01T22").unwrap();
        let to = layout::parse_hour("2026-11-02T02").unwrap();
        put("memory://backfill/raw/ev/2026/11/01/22/a.avro", b"a").await;
        put("memory://backfill/raw/ev/2026/11/01/22/b.avro", b"bb").await;
        put("memory://backfill/raw/ev/2026/11/02/00/c.avro", b"c").await;
        put("memory://backfill/raw/ev/2026/11/02/01/d.avro", b"d").await;
        put("memory://backfill/raw/ev/2026/11/02/01/notes.txt", b"x").await;
        let backfill =
            Backfill::new(layout.clone(), "ev", from, to, StorageOptions::default()).unwrap();
        let plan = backfill.plan().await.unwrap();
        let statuses: Vec<_> = plan.iter().map(|h| h.status.clone()).collect();
        assert_eq!(
            statuses,
            [
                HourStatus::Convert,
                HourStatus::Empty,
                HourStatus::Convert,
                HourStatus::Convert
            ]
        );
        let first = plan[0].manifest.as_ref().unwrap();
        assert_eq!(first.partition_path(), "dt=2026-11-01/hour=22");
        assert_eq!(first.raw.table, "memory://backfill/lake/ev");
        assert_eq!(first.raw.inputs.len(), 2);
        assert_eq!(plan[0].bytes, 3);
        assert!(plan[0].to_string().contains("2 input(s)"), "{}", plan[0]);

        // Commit the last hour: it drops out.
        let last = plan[3].manifest.as_ref().unwrap();
        batch::write_test_marker(last, None).await;
        let plan = backfill.plan().await.unwrap();
        assert!(matches!(plan[3].status, HourStatus::Committed { .. }));

        // Two hours left: an array job over a backfill prefix, named after the range.
        match backfill.submit(&plan, None).await.unwrap() {
            BackfillOutcome::Planned {
                name,
                spec: JobSpec::Array { prefix, count },
            } => {
                assert_eq!(count, 2);
                assert!(
                    name.starts_with("ev-backfill-2026110122-2026110202-"),
                    "{name}"
                );
                assert!(
                    prefix.starts_with(
                        "memory://backfill/lake/ev/_manifests/_backfill/2026110122-2026110202-"
                    ),
                    "{prefix}"
                );
            }
            other => panic!("{other:?}"),
        }
        // One hour: a plain job on the partition's stable manifest.
        let one: Vec<&Manifest> = vec![first];
        let (name, spec, _) = backfill.job(&one).unwrap();
        assert_eq!(name, batch::job_name(first));
        assert_eq!(
            spec,
            JobSpec::Single {
                manifest_url:
                    "memory://backfill/lake/ev/_manifests/dt=2026-11-01/hour=22/manifest.json"
                        .into()
            }
        );
        assert!(backfill.job(&[]).is_none());
    }

    #[test]
    fn ranges_are_checked() {
        let layout = Layout::new(
            "s3://l/{data_type}",
            Some("s3://r/{yyyy}{MM}{dd}{HH}/"),
            &[],
            None,
        )
        .unwrap();
        let h = |s| layout::parse_hour(s).unwrap();
        let o = StorageOptions::default();
        assert!(
            Backfill::new(
                layout.clone(),
                "x",
                h("2026-11-02"),
                h("2026-11-01"),
                o.clone()
            )
            .is_err()
        );
        assert!(
            Backfill::new(
                layout.clone(),
                "x",
                h("2020-01-01"),
                h("2026-01-01"),
                o.clone()
            )
            .is_err()
        );
        let no_raw = Layout::new("s3://l/x", None, &[], None).unwrap();
        assert!(Backfill::new(no_raw, "x", h("2026-11-01"), h("2026-11-02"), o).is_err());
    }
}
