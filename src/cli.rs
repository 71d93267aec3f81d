//! The command line: arguments, logging, exit codes. `main` only calls [`main`] here.
//!
//! Arguments are parsed raw by clap, then validated once into the options the library takes
//! ([`ConvertOptions`], [`StorageOptions`]) before any I/O. Environment variables are read here
//! (through clap's `env`) and in [`crate::storage`] (the `AWS_*` settings), nowhere else.
//!
//! Exit codes (sysexits-style, so AWS Batch retry rules can tell them apart):
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done |
//! | 64 | usage: bad arguments |
//! | 65 | bad input: corrupt Avro, unconvertible schema, missing object — retrying will not help |
//! | 70 | internal error (a bug) |
//! | 75 | retryable: network, throttling, 5xx, timeouts |
//! | 78 | configuration: credentials, permissions, missing bucket, output not empty |

use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use crate::avro::codec::Codec as AvroCodec;
use crate::avro::schema::Schema;
use crate::convert::{
    ConvertError, ConvertOptions, ConvertReport, Destination, ExistingFiles, TableResolver,
    convert_to, existing_parquet,
};
use crate::decode::{TypeOptions, UuidForm, WideDecimals};
use crate::encode::{ByteArrayEncoding, Codec, EncodeError, EncodeOptions};
use crate::inspect::{InspectError, inspect};
use crate::job::{JobContext, JobError, Outcome};
use crate::manifest::Manifest;
use crate::manifest::{DATA_TYPE_PLACEHOLDER, ReaderSchemas};
use crate::registry::{Compatibility, Registry, RegistryError};
use crate::schemas::SchemaSet;
use crate::sink::SinkError;
use crate::source::Framing;
use crate::source::{SourceError, SourceOptions, list_inputs};
use crate::storage::{self, Location, StorageError, StorageOptions};

/// `print!` to stdout, through [`write_stdout`].
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::write_stdout(format_args!($($arg)*)) };
}

/// `println!` to stdout, through [`write_stdout`].
macro_rules! outln {
    () => { $crate::cli::write_stdout(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::cli::write_stdout(format_args!("{}\n", format_args!($($arg)*))) };
}

mod aws;

/// Writes command output to stdout. `println!` panics when stdout is gone: a closed pipe
/// (`parqour inspect FILE | head`) now ends the program quietly with success, as Unix tools
/// end, and any other failure to write (a full disk) with an error message and
/// [`EXIT_INTERNAL`].
pub(crate) fn write_stdout(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(i32::from(EXIT_OK));
        }
        eprintln!("error: writing to stdout: {e}");
        std::process::exit(i32::from(EXIT_INTERNAL));
    }
}

/// Success.
pub const EXIT_OK: u8 = 0;
/// Bad arguments.
pub const EXIT_USAGE: u8 = 64;
/// Bad input data or manifest: retrying will not help.
pub const EXIT_BAD_INPUT: u8 = 65;
/// A bug.
pub const EXIT_INTERNAL: u8 = 70;
/// A transient failure: retry.
pub const EXIT_RETRYABLE: u8 = 75;
/// Configuration or credentials.
pub const EXIT_CONFIG: u8 = 78;

#[derive(Debug, Parser)]
#[command(
    name = "parqour",
    version,
    about = "Avro object container files -> Athena-ready Parquet"
)]
struct Cli {
    /// Log format on stderr.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "PARQOUR_LOG_FORMAT"
    )]
    log_format: LogFormat,
    /// Log filter (e.g. `info`, `parqour=debug`).
    #[arg(long, global = true, default_value = "info", env = "PARQOUR_LOG")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Convert Avro files, folders or object-store prefixes to Parquet.
    Convert(ConvertArgs),
    /// Convert one partition from its manifest and commit it (the AWS Batch job).
    Run(RunArgs),
    /// Work with partition manifests.
    #[command(subcommand)]
    Manifest(ManifestCommand),
    /// Work with the schema registry: fingerprints, publishing, listing.
    #[command(subcommand)]
    Schema(SchemaCommand),
    /// Turn dead-letter files back into inputs (once the cause is fixed).
    Replay {
        /// Dead-letter files, folders or prefixes.
        #[arg(required = true)]
        inputs: Vec<String>,
        /// Folder or URL for the replayable objects.
        #[arg(long, short)]
        output: String,
        /// Replace the replay files already in the output (those this run does not write
        /// again are deleted); without it such an output is refused.
        #[arg(long)]
        overwrite: bool,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Submit partition jobs to AWS Batch: one manifest, or an array job over a prefix of them.
    Submit(aws::SubmitArgs),
    /// Handle a "partition closed" event (SNS, SQS or S3 notification) as the trigger Lambda does.
    Trigger(aws::TriggerArgs),
    /// Convert the hourly partitions of a range (or the last hours) with one array job.
    Backfill(aws::BackfillArgs),
    /// Describe an Avro or Parquet file.
    Inspect {
        /// A path or URL (file://, s3://).
        file: String,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Generate sample ad-network events, convert them, and show what was written.
    Demo {
        /// Folder for the sample (created; `avro/` and `parquet/` inside).
        #[arg(long, default_value = "parqour-demo")]
        dir: PathBuf,
        /// Events to generate.
        #[arg(long, default_value_t = 200_000)]
        records: u64,
        /// Avro files to spread them over (codecs rotate: deflate, snappy, zstandard, null).
        #[arg(long, default_value_t = 4)]
        files: u64,
    },
}

#[derive(Debug, Subcommand)]
enum SchemaCommand {
    /// Print a schema's Parsing Canonical Form fingerprint (CRC-64-AVRO), as Java's
    /// `SchemaNormalization.parsingFingerprint64` gives it (the envelope's schemaFingerprint).
    Fingerprint {
        /// The schema (.avsc), a path or URL.
        file: String,
        /// Also print the canonical form.
        #[arg(long)]
        canonical: bool,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Publish a schema under a data type, after checking it against the newest one.
    Publish {
        /// The schema (.avsc), a path or URL.
        file: String,
        /// The data type (the events' `dataType`).
        #[arg(long)]
        data_type: String,
        /// The registry's URL.
        #[arg(long, env = "PARQOUR_REGISTRY")]
        registry: String,
        /// Which readers must be able to read data written with it.
        #[arg(long, value_enum, default_value = "backward")]
        compatibility: Compatibility,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// List the published schemas.
    List {
        /// The registry's URL.
        #[arg(long, env = "PARQOUR_REGISTRY")]
        registry: String,
        /// Only this data type.
        #[arg(long)]
        data_type: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        storage: StorageArgs,
    },
}

#[derive(Debug, Subcommand)]
enum ManifestCommand {
    /// Write a manifest for the `*.avro` objects under a prefix (with their sizes and etags).
    Create {
        /// Prefix (or folder) of the partition's Avro objects.
        #[arg(long)]
        input: String,
        /// The table's root URL.
        #[arg(long)]
        table: String,
        /// A partition key and value, `key=value`; repeat in order.
        #[arg(long = "partition", required = true)]
        partition: Vec<String>,
        /// Where to write the manifest (URL or path); stdout when absent.
        #[arg(long)]
        output: Option<String>,
        /// The schema registry (for DataWrapper envelopes).
        #[arg(long)]
        registry: Option<String>,
        /// A data type to convert; repeat for several (with a {data_type} placeholder in
        /// --table).
        #[arg(long = "data-type")]
        data_types: Vec<String>,
        /// Where records that cannot be converted go.
        #[arg(long)]
        dead_letter: Option<String>,
        #[command(flatten)]
        storage: StorageArgs,
    },
}

#[derive(Debug, Args)]
struct RecordArgs {
    /// Schema registry URL: DataWrapper envelopes are read with the writer schemas published
    /// there, and each data type with its newest schema.
    #[arg(long, env = "PARQOUR_REGISTRY")]
    registry: Option<String>,
    /// Reader schema (.avsc path or URL): `URL` for all records, `TYPE=URL` for one data type;
    /// repeatable.
    #[arg(long = "reader-schema")]
    reader_schema: Vec<String>,
    /// Data type to convert (records of others go to the dead-letter place); repeatable. With
    /// one, it is also the data type of plain container files.
    #[arg(long = "data-type")]
    data_type: Vec<String>,
    /// How input objects are framed: auto (container files; with a registry, objects without
    /// the container magic are raw concatenated envelopes), container, raw.
    #[arg(long, value_enum, default_value = "auto")]
    framing: Framing,
    /// Folder or URL (outside the output) for what cannot be converted; without it the first
    /// such error stops the run.
    #[arg(long)]
    dead_letter: Option<String>,
    /// Largest fraction of records that may go to the dead-letter place before the run fails.
    #[arg(long, default_value_t = 0.001)]
    max_dead_letter_fraction: f64,
    /// How uuids are stored: string (36 characters, STRING in Athena) or binary (16 bytes,
    /// FIXED_LEN_BYTE_ARRAY(16) with the UUID logical type). Choose once per table.
    #[arg(long, env = "PARQOUR_UUID", default_value = "string", value_parser = UuidForm::from_str)]
    uuid: UuidForm,
    /// How decimals wider than Athena's DECIMAL (precision past 38) are stored: string (their
    /// exact text, e.g. `-1234.50`, STRING in Athena) or error (the schema is refused).
    #[arg(long, env = "PARQOUR_WIDE_DECIMALS", default_value = "string", value_parser = WideDecimals::from_str)]
    wide_decimals: WideDecimals,
    /// How strings and binaries without a dictionary are encoded: plain (read everywhere) or
    /// delta-length (DELTA_LENGTH_BYTE_ARRAY: smaller, faster to write; read by Athena, Trino,
    /// Hive, Spark 3.4+, DuckDB and pyarrow, not by Spark's vectorized reader before 3.4).
    #[arg(
        long,
        env = "PARQOUR_BYTE_ARRAY_ENCODING",
        default_value = "plain",
        value_parser = ByteArrayEncoding::from_str
    )]
    byte_array_encoding: ByteArrayEncoding,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// URL or path of the manifest.
    #[arg(long, env = "PARQOUR_MANIFEST", required_unless_present = "manifests")]
    manifest: Option<String>,
    /// Array jobs: a prefix of manifests; the child converts the `AWS_BATCH_JOB_ARRAY_INDEX`-th
    /// (from 0) of the `*.json` objects under it, sorted by key.
    #[arg(long, env = "PARQOUR_MANIFESTS")]
    manifests: Option<String>,
    /// With --manifests: how many manifests the array job was submitted over; another number
    /// fails the child (exit 65) instead of converting another partition.
    #[arg(long, requires = "manifests")]
    manifest_count: Option<usize>,
    /// With --manifests: the index of this child (set by AWS Batch).
    #[arg(long, env = "AWS_BATCH_JOB_ARRAY_INDEX")]
    array_index: Option<usize>,
    /// Memory budget: bounds the blocks in flight (a quarter), each group of decoded
    /// blocks (a sixteenth, at most 64 MiB) and the parts large blocks are decoded in (a
    /// thirty-second, at most 8 MiB).
    #[arg(long, default_value = "1GiB")]
    memory_limit: String,
    /// Worker threads (default: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    #[command(flatten)]
    records: RecordArgs,
    /// AWS Batch job id (set by Batch).
    #[arg(long, env = "AWS_BATCH_JOB_ID", hide = true)]
    job_id: Option<String>,
    /// AWS Batch attempt (set by Batch).
    #[arg(long, env = "AWS_BATCH_JOB_ATTEMPT", hide = true)]
    job_attempt: Option<u32>,
    #[command(flatten)]
    storage: StorageArgs,
}

#[derive(Debug, Args)]
struct StorageArgs {
    /// S3-compatible endpoint (MinIO, SeaweedFS); default from AWS_ENDPOINT_URL.
    #[arg(long)]
    endpoint: Option<String>,
    /// Allow http:// endpoints; default from AWS_ALLOW_HTTP.
    #[arg(long)]
    allow_http: bool,
    /// AWS region; default from AWS_REGION.
    #[arg(long)]
    region: Option<String>,
}

impl StorageArgs {
    fn options(&self) -> StorageOptions {
        StorageOptions {
            endpoint: self.endpoint.clone(),
            allow_http: self.allow_http,
            region: self.region.clone(),
            retry: None,
            stores: Default::default(),
        }
    }
}

#[derive(Debug, Args)]
struct ConvertArgs {
    /// Avro files, folders (every *.avro under them, sorted) or URLs of objects or prefixes.
    #[arg(required = true)]
    inputs: Vec<String>,
    /// Folder or URL the Parquet files are written under; a `{data_type}` placeholder writes
    /// each data type to its own table.
    #[arg(long, short)]
    output: String,
    /// snappy, zstd[:level], gzip[:level], lz4 or none.
    #[arg(long, default_value = "snappy")]
    compression: String,
    /// Target row group size (bytes; suffixes KiB, MiB, GiB, KB, MB, GB).
    #[arg(long, default_value = "128MiB")]
    row_group_size: String,
    /// A new file is started once a file reaches this size.
    #[arg(long, default_value = "512MiB")]
    target_file_size: String,
    /// Worker threads (default: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Replace Parquet files already in the output: the new ones are written under a fresh
    /// run id, and the earlier ones deleted once the run has succeeded.
    #[arg(long)]
    overwrite: bool,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    records: RecordArgs,
    #[command(flatten)]
    storage: StorageArgs,
}

/// A user error in the arguments.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct UsageError(String);

/// Parses `128MiB`, `1.5GB`, `4096`.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num: f64 = num
        .parse()
        .map_err(|_| format!("invalid size `{s}`: expected e.g. 128MiB"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        other => return Err(format!("invalid size unit `{other}` in `{s}`")),
    };
    let v = num * mult;
    if !(1.0..=(1u64 << 50) as f64).contains(&v) {
        return Err(format!("size `{s}` is out of range"));
    }
    Ok(v as usize)
}

impl ConvertArgs {
    fn options(&self) -> Result<ConvertOptions, UsageError> {
        let compression =
            Codec::from_str(&self.compression).map_err(|e| UsageError(e.to_string()))?;
        Ok(ConvertOptions {
            encode: EncodeOptions {
                compression,
                row_group_bytes: parse_size(&self.row_group_size).map_err(UsageError)?,
                file_bytes: parse_size(&self.target_file_size).map_err(UsageError)?,
                byte_array_encoding: self.records.byte_array_encoding,
                ..EncodeOptions::default()
            },
            threads: self.threads,
            source: SourceOptions::default(),
            progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            ..ConvertOptions::default()
        })
    }
}

/// An error with the exit code it maps to.
#[derive(Debug)]
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn new(code: u8, e: impl std::fmt::Display) -> Self {
        Self {
            code,
            message: with_hint(e.to_string()),
        }
    }
}

/// The instance metadata service's address, in the error of object_store's last resort for
/// credentials.
const METADATA_SERVICE: &str = "169.254.169.254";

/// Whether `text` is the error of object_store's last resort for credentials, the instance
/// metadata service, when it gave none: it could not be reached (off AWS: "error sending
/// request"), or refused. Not when it answered 429 or 5xx (throttled or failing on an instance
/// that has a role: retrying can help).
fn no_credentials(text: &str) -> bool {
    text.contains(METADATA_SERVICE)
        && !(text.contains("status code: 429") || text.contains("status code: 5"))
}

/// `message`, with what it means when no credentials were found ([`no_credentials`]): off AWS
/// the error ("Error performing PUT http://169.254.169.254/latest/api/token") does not say
/// that credentials were missing.
fn with_hint(mut message: String) -> String {
    if no_credentials(&message) {
        message.push_str(
            " (no AWS credentials were found in the environment, a profile, web identity or \
             the container, and the instance metadata service gave none: set \
             AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)",
        );
    }
    message
}

/// The exit code for a storage error: credentials and permissions are configuration; a missing
/// object is bad input; everything else (network, 5xx, throttling after retries) is retryable.
fn store_code(e: &object_store::Error) -> u8 {
    use object_store::Error as E;
    match e {
        // A missing bucket (S3 says 404 too) is configuration; a missing object, bad input.
        E::NotFound { .. } if e.to_string().contains("NoSuchBucket") => EXIT_CONFIG,
        E::NotFound { .. } => EXIT_BAD_INPUT,
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => EXIT_CONFIG,
        E::NotSupported { .. } | E::NotImplemented { .. } => EXIT_CONFIG,
        _ => text_code(&e.to_string()),
    }
}

/// The exit code of a storage error known only by its text (through an I/O error, say): a
/// missing bucket, bad credentials or missing permissions are configuration; anything else is
/// retryable.
fn text_code(text: &str) -> u8 {
    if no_credentials(text) {
        // A rerun finds none either.
        return EXIT_CONFIG;
    }
    const CONFIG: [&str; 10] = [
        "NoSuchBucket",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AccessDenied",
        // object_store's PermissionDenied and Unauthenticated.
        "lacked the necessary privileges",
        "lacked valid authentication credentials",
        // A local folder's (EACCES, EROFS on Linux), through the local store's generic errors.
        "Permission denied (os error 13)",
        "Read-only file system (os error 30)",
        // A folder where an output file goes, or a file where a folder does.
        "Is a directory (os error 21)",
        "Not a directory (os error 20)",
    ];
    if CONFIG.iter().any(|c| text.contains(c)) {
        EXIT_CONFIG
    } else {
        EXIT_RETRYABLE
    }
}

fn storage_code(e: &StorageError) -> u8 {
    match e {
        StorageError::Location { .. } => EXIT_USAGE,
        StorageError::Store { .. } | StorageError::Settings { .. } => EXIT_CONFIG,
        StorageError::Io { source, .. } => io_code(source),
        StorageError::NotAFolder { .. } => EXIT_CONFIG,
        // Another run writes into the output folder: this one can run once it is done.
        StorageError::Busy { .. } => EXIT_RETRYABLE,
    }
}

/// The exit code of a local I/O error: what a rerun meets again (no permission, a read-only
/// filesystem, a file where a folder should be or the other way round) is configuration; the
/// rest (a full disk, no inodes left, an interrupted call) may pass.
fn io_code(e: &std::io::Error) -> u8 {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::PermissionDenied
        | ErrorKind::ReadOnlyFilesystem
        | ErrorKind::NotADirectory
        | ErrorKind::IsADirectory
        | ErrorKind::InvalidFilename => EXIT_CONFIG,
        _ => EXIT_RETRYABLE,
    }
}

fn source_code(e: &SourceError) -> u8 {
    match e {
        SourceError::Storage(s) => storage_code(s),
        SourceError::NotFound { .. } => EXIT_BAD_INPUT,
        SourceError::Read { source, .. } => store_code(source),
        // A rerun reads the object as it is then (or `run` says it differs from the manifest).
        SourceError::Changed { .. } => EXIT_RETRYABLE,
        SourceError::Container { .. } => EXIT_BAD_INPUT,
        SourceError::Cancelled => EXIT_INTERNAL,
    }
}

fn convert_code(e: &ConvertError) -> u8 {
    match e {
        ConvertError::Source(s) => source_code(s),
        ConvertError::Plan { .. }
        | ConvertError::Block { .. }
        | ConvertError::Unreadable { .. } => EXIT_BAD_INPUT,
        // The sink's errors reach the encoder as I/O errors: known by their text.
        ConvertError::Encode { source, .. } => match source {
            EncodeError::Parquet(e) => text_code(&e.to_string()),
            _ => EXIT_INTERNAL,
        },
        ConvertError::Sink(SinkError::Upload { source, .. }) => store_code(source),
        ConvertError::Sink(SinkError::Write { source, .. }) => io_code(source),
        ConvertError::Sink(SinkError::Task { .. }) => EXIT_INTERNAL,
        ConvertError::OutputNotEmpty { .. } => EXIT_CONFIG,
        ConvertError::Output { source, .. } | ConvertError::Replace { source, .. } => {
            store_code(source)
        }
        ConvertError::Leftovers { error, .. } => convert_code(error),
        ConvertError::NotPublished { .. } => EXIT_RETRYABLE,
        ConvertError::Pool(_) | ConvertError::Join { .. } => EXIT_INTERNAL,
        ConvertError::Framing { .. } | ConvertError::DeadLetterBudget { .. } => EXIT_BAD_INPUT,
        ConvertError::NoRegistry { .. } | ConvertError::DataTypes { .. } => EXIT_CONFIG,
        ConvertError::Destination { source, .. } => storage_code(source),
        ConvertError::DeadLetter { message, .. } => text_code(message),
    }
}

fn registry_code(e: &RegistryError) -> u8 {
    match e {
        RegistryError::Store { source, .. } => store_code(source),
        RegistryError::Corrupt { .. } => EXIT_CONFIG,
        RegistryError::Schema(_)
        | RegistryError::Plan(_)
        | RegistryError::Incompatible { .. }
        | RegistryError::SameFingerprint { .. } => EXIT_BAD_INPUT,
        RegistryError::DataType(_) => EXIT_USAGE,
        RegistryError::Contended(_) => EXIT_RETRYABLE,
    }
}

/// Loads what reading records needs: the registry (once), reader schemas, the data types.
async fn schema_set(
    registry: Option<&str>,
    readers: &[String],
    data_types: &[String],
    storage: &StorageOptions,
) -> Result<SchemaSet, Failure> {
    let mut set = SchemaSet::new();
    let mut snapshot = None;
    if let Some(url) = registry {
        let location =
            storage::resolve(url, storage).map_err(|e| Failure::new(storage_code(&e), e))?;
        let loaded = Arc::new(
            Registry::new(location)
                .load_types(data_types)
                .await
                .map_err(|e| Failure::new(registry_code(&e), e))?,
        );
        tracing::info!(registry = %url, schemas = loaded.len(), "loaded the schema registry");
        set = set.with_registry(loaded.clone());
        snapshot = Some(loaded);
    }
    for spec in readers {
        // TYPE=URL, unless the whole is a local file (`v=2/reader.avsc`).
        let is_file = !spec.contains("://") && std::path::Path::new(spec).is_file();
        let (data_type, url) = match spec.split_once('=') {
            Some((t, u))
                if !is_file && crate::avro::envelope::valid_data_type(t) && !t.contains('.') =>
            {
                (Some(t.to_string()), u)
            }
            _ => (None, spec.as_str()),
        };
        if let Some(t) = &data_type {
            if !data_types.is_empty() && !data_types.contains(t) {
                return Err(Failure::new(
                    EXIT_USAGE,
                    format!(
                        "--reader-schema {spec}: `{t}` is not a data type this run converts \
                         (--data-type {})",
                        data_types.join(", ")
                    ),
                ));
            }
            if snapshot.as_ref().is_some_and(|s| !s.types.contains_key(t)) {
                tracing::warn!(
                    reader_schema = %spec,
                    "the registry has no data type `{t}`: this reader schema reads only records of that type"
                );
            }
        }
        let text = read_text(url, storage).await?;
        let schema = Schema::parse_str(&text)
            .map_err(|e| Failure::new(EXIT_BAD_INPUT, format!("reader schema {url}: {e}")))?;
        set = set.with_reader(data_type, schema);
    }
    if !data_types.is_empty() {
        for t in data_types {
            if !crate::avro::envelope::valid_data_type(t) {
                return Err(Failure::new(
                    EXIT_USAGE,
                    format!("data type `{t}`: use letters, digits, `_`, `-` and `.`"),
                ));
            }
        }
        if data_types.len() == 1 {
            set = set.with_plain_data_type(Some(data_types[0].clone()));
        }
        set = set.accepting(data_types.iter().cloned());
    }
    Ok(set)
}

fn init_logging(format: LogFormat, filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.with_target(false).try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { EXIT_OK });
        }
    };
    init_logging(cli.log_format, &cli.log);
    let json_logs = matches!(cli.log_format, LogFormat::Json);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("parqour-io")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::from(EXIT_INTERNAL);
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(f) => {
            // JSON logs get the error as a log event too (with its exit code, for log
            // queries); text logs would only print it twice.
            if json_logs {
                tracing::error!(exit_code = f.code, "{}", f.message);
            }
            eprintln!("error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

async fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::Convert(args) => {
            let mut options = args.options().map_err(|e| Failure::new(EXIT_USAGE, e))?;
            let storage = args.storage.options();
            let r = &args.records;
            options.schemas = Arc::new(
                schema_set(
                    r.registry.as_deref(),
                    &r.reader_schema,
                    &r.data_type,
                    &storage,
                )
                .await?
                .with_types(TypeOptions {
                    uuid: r.uuid,
                    wide_decimals: r.wide_decimals,
                }),
            );
            options.source.framing = r.framing;
            options.max_dead_letter_fraction = r.max_dead_letter_fraction;
            if let Some(dl) = &r.dead_letter {
                options.dead_letter = Some(dead_letter_location(dl, &[&args.output], &storage)?);
            }
            let report = convert_paths(
                &args.inputs,
                &args.output,
                &storage,
                &options,
                args.overwrite,
            )
            .await?;
            if args.json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&report)
                        .map_err(|e| Failure::new(EXIT_INTERNAL, e))?
                );
            } else {
                out!("{}", summary(&report));
            }
            Ok(())
        }
        Command::Run(args) => run_job(args).await,
        Command::Submit(args) => aws::submit(args).await,
        Command::Trigger(args) => aws::trigger(args).await,
        Command::Backfill(args) => aws::backfill(args).await,
        Command::Manifest(ManifestCommand::Create {
            input,
            table,
            partition,
            output,
            registry,
            data_types,
            dead_letter,
            storage,
        }) => {
            let extra = ManifestExtra {
                registry,
                data_types,
                dead_letter,
            };
            manifest_create(
                &input,
                &table,
                &partition,
                output.as_deref(),
                extra,
                &storage.options(),
            )
            .await
        }
        Command::Schema(command) => schema_command(command).await,
        Command::Replay {
            inputs,
            output,
            overwrite,
            storage,
        } => {
            use crate::deadletter::ReplayError;
            let storage = storage.options();
            let files = list_inputs(&inputs, &storage)
                .await
                .map_err(|e| Failure::new(source_code(&e), e))?;
            let out = storage::resolve(&output, &storage)
                .map_err(|e| Failure::new(storage_code(&e), e))?;
            let code = |e: &ReplayError| match e {
                ReplayError::Store { source, .. } => store_code(source),
                ReplayError::Format { .. } => EXIT_BAD_INPUT,
                ReplayError::NotEmpty { .. } => EXIT_CONFIG,
            };
            let fail = |e: ReplayError| Failure::new(code(&e), e);
            // Earlier replay files: new ones would overwrite some of them and leave the rest,
            // and a manifest of the folder would then mix two replays.
            let earlier = crate::deadletter::replay_files(&out).await.map_err(fail)?;
            if let (Some(example), false) = (earlier.first(), overwrite) {
                return Err(fail(ReplayError::NotEmpty {
                    url: out.display.clone(),
                    example: out.url_of(example),
                }));
            }
            storage::prepare_output(&out).map_err(|e| Failure::new(storage_code(&e), e))?;
            let report = crate::deadletter::replay(&files, &out)
                .await
                .map_err(fail)?;
            for (url, entries, records) in &report.objects {
                outln!("wrote {url} ({entries} entries, {records} records)");
            }
            let written: std::collections::HashSet<String> =
                report.objects.iter().map(|(url, ..)| url.clone()).collect();
            for stale in earlier.iter().filter(|p| !written.contains(&out.url_of(p))) {
                use object_store::ObjectStoreExt;
                out.store.delete(stale).await.map_err(|source| {
                    fail(ReplayError::Store {
                        url: out.url_of(stale),
                        source,
                    })
                })?;
                outln!("deleted {} (an earlier replay's)", out.url_of(stale));
            }
            if report.objects.is_empty() {
                outln!("nothing to replay");
            }
            Ok(())
        }
        Command::Inspect { file, storage } => {
            let location = storage::resolve(&file, &storage.options())
                .map_err(|e| Failure::new(storage_code(&e), e))?;
            let text = inspect(&location).await.map_err(|e| {
                let code = match &e {
                    InspectError::Read { source, .. } => store_code(source),
                    _ => EXIT_BAD_INPUT,
                };
                Failure::new(code, e)
            })?;
            out!("{text}");
            Ok(())
        }
        Command::Demo {
            dir,
            records,
            files,
        } => demo(&dir, records, files).await,
    }
}

/// Resolves a dead-letter URL, refusing one inside an output (Athena would read it).
fn dead_letter_location(
    url: &str,
    outputs: &[&str],
    storage: &StorageOptions,
) -> Result<Location, Failure> {
    for out in outputs {
        if storage::within(url, out) {
            return Err(Failure::new(
                EXIT_USAGE,
                format!("--dead-letter {url} is inside the output {out}; Athena would read it"),
            ));
        }
    }
    storage::resolve(url, storage).map_err(|e| Failure::new(storage_code(&e), e))
}

/// `parqour convert`: an output that holds Parquet files is refused unless `overwrite`; then
/// the new files take names of their own and the earlier ones are deleted once the run has
/// succeeded ([`ExistingFiles::Replace`]), as are the staging files of Parquet files that a
/// killed run left in a local output folder. An output URL with a `{data_type}` placeholder
/// gives each data type its own table.
///
/// Local output folders are locked for the run ([`storage::lock_folder`]): each table's, and
/// with a placeholder the folder above the tables too, so that a second `convert` into them
/// while one runs fails (exit 75) instead of both passing the emptiness check and mixing or
/// deleting each other's files.
async fn convert_paths(
    inputs: &[String],
    output: &str,
    storage: &StorageOptions,
    options: &ConvertOptions,
    overwrite: bool,
) -> Result<ConvertReport, Failure> {
    let objects = list_inputs(inputs, storage)
        .await
        .map_err(|e| Failure::new(source_code(&e), e))?;
    let templated = output.contains(DATA_TYPE_PLACEHOLDER);
    let resolve =
        |url: &str| storage::resolve(url, storage).map_err(|e| Failure::new(storage_code(&e), e));
    let default_url = if templated {
        output.replace(DATA_TYPE_PLACEHOLDER, "_unknown_data_type")
    } else {
        output.to_string()
    };
    let default = resolve(&default_url)?;
    // The outputs to check now: the one table, or those of the data types named.
    let mut known = Vec::new();
    if templated {
        if let Some(types) = options.schemas.accepted() {
            for t in types {
                known.push(resolve(&output.replace(DATA_TYPE_PLACEHOLDER, t))?);
            }
        }
    } else {
        known.push(default.clone());
    }
    let root = if templated {
        resolve(template_root(output))?
    } else {
        default.clone()
    };
    for out in known.iter().chain([&default, &root]) {
        storage::check_output(out).map_err(|e| Failure::new(storage_code(&e), e))?;
    }
    // With `{data_type}`, the folder above the tables is made and locked here, before anything
    // is read; it stays only if a table went there. (The run makes, locks and, when it fails,
    // removes the tables' own folders: each as it first writes to it, or one table as it
    // starts.)
    let (above, _lock) = match root.local.as_deref().filter(|_| templated) {
        Some(dir) => {
            let above = storage::missing_folders([dir]);
            match storage::prepare_output(&root).and_then(|()| storage::lock_folder(dir)) {
                Ok(lock) => (above, lock),
                Err(e) => {
                    storage::remove_empty_folders(&above);
                    return Err(Failure::new(storage_code(&e), e));
                }
            }
        }
        None => (Vec::new(), None),
    };
    let per_type: Option<TableResolver> = templated.then(|| {
        let template = output.to_string();
        let storage = storage.clone();
        Arc::new(move |t: &str| {
            storage::resolve(&template.replace(DATA_TYPE_PLACEHOLDER, t), &storage)
        }) as TableResolver
    });
    let destination = Destination { default, per_type };
    let result = convert_checked(objects, known, &destination, options, overwrite).await;
    storage::remove_empty_folders(&above);
    result
}

/// The part of a `{data_type}` output URL above the tables: up to the last `/` before the
/// placeholder (`.` when there is none).
fn template_root(output: &str) -> &str {
    let head = &output[..output.find(DATA_TYPE_PLACEHOLDER).unwrap_or(output.len())];
    match head.rfind('/') {
        Some(i) => &head[..=i],
        None => ".",
    }
}

/// [`convert_paths`] once its outputs are resolved: `known` are the tables checked for earlier
/// files before anything is read. The run itself locks each local table folder and looks at
/// what it holds (as it starts, for one table; as it first writes to it, with `{data_type}`),
/// then refuses or replaces ([`ExistingFiles`]).
async fn convert_checked(
    objects: Vec<crate::source::InputObject>,
    known: Vec<Location>,
    destination: &Destination,
    options: &ConvertOptions,
    overwrite: bool,
) -> Result<ConvertReport, Failure> {
    let fail = |e: ConvertError| Failure::new(convert_code(&e), e);
    if !overwrite {
        for out in &known {
            if let Some(example) = existing_parquet(out).await.map_err(fail)?.first() {
                return Err(fail(ConvertError::OutputNotEmpty {
                    url: out.display.clone(),
                    example: out.url_of(example),
                }));
            }
        }
    }
    let options = ConvertOptions {
        existing: if overwrite {
            ExistingFiles::Replace
        } else {
            ExistingFiles::Refuse
        },
        ..options.clone()
    };
    convert_to(objects, destination, &options)
        .await
        .map_err(fail)
}

async fn schema_command(command: SchemaCommand) -> Result<(), Failure> {
    match command {
        SchemaCommand::Fingerprint {
            file,
            canonical,
            storage,
        } => {
            let text = read_text(&file, &storage.options()).await?;
            let form = crate::avro::fingerprint::canonical_form(&text)
                .map_err(|e| Failure::new(EXIT_BAD_INPUT, format!("{file}: {e}")))?;
            let fp = crate::avro::fingerprint::rabin(form.as_bytes());
            outln!("{}", fp as i64);
            if canonical {
                eprintln!("hex (big-endian): {fp:016x}");
                eprintln!("{form}");
            }
            Ok(())
        }
        SchemaCommand::Publish {
            file,
            data_type,
            registry,
            compatibility,
            storage,
        } => {
            let storage = storage.options();
            let text = read_text(&file, &storage).await?;
            let location = storage::resolve(&registry, &storage)
                .map_err(|e| Failure::new(storage_code(&e), e))?;
            let outcome = Registry::new(location)
                .publish(&data_type, &text, compatibility)
                .await
                .map_err(|e| Failure::new(registry_code(&e), format!("{file}: {e}")))?;
            if outcome.created {
                outln!(
                    "published {file} as version {} of `{}`: fingerprint {} ({})",
                    outcome.version,
                    outcome.data_type,
                    outcome.fingerprint,
                    outcome.url
                );
            } else {
                outln!(
                    "already published as version {} of `{}`: fingerprint {}; nothing written",
                    outcome.version,
                    outcome.data_type,
                    outcome.fingerprint
                );
            }
            Ok(())
        }
        SchemaCommand::List {
            registry,
            data_type,
            json,
            storage,
        } => {
            let location = storage::resolve(&registry, &storage.options())
                .map_err(|e| Failure::new(storage_code(&e), e))?;
            let reg = Registry::new(location);
            let snapshot = match &data_type {
                Some(t) => {
                    let types = reg
                        .load_type(t)
                        .await
                        .map_err(|e| Failure::new(registry_code(&e), e))?;
                    let mut s = crate::registry::Snapshot::default();
                    s.types.insert(t.clone(), types);
                    s
                }
                None => reg
                    .load()
                    .await
                    .map_err(|e| Failure::new(registry_code(&e), e))?,
            };
            let mut rows = Vec::new();
            for (t, types) in &snapshot.types {
                let latest = types.latest().map(|p| p.fingerprint);
                let mut entries: Vec<_> = types.by_fingerprint.values().collect();
                entries.sort_by_key(|p| (p.version.is_none(), p.version, p.fingerprint));
                for p in entries {
                    rows.push(serde_json::json!({
                        "data_type": t,
                        "version": p.version,
                        "fingerprint": p.fingerprint.to_string(),
                        "latest": Some(p.fingerprint) == latest,
                        "name": p.schema.name().map(|n| n.fullname()),
                    }));
                }
            }
            if json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&rows)
                        .map_err(|e| Failure::new(EXIT_INTERNAL, e))?
                );
            } else if rows.is_empty() {
                outln!("no schemas published in {registry}");
            } else {
                outln!(
                    "{:<24} {:>7}  {:<21}  name",
                    "data type",
                    "version",
                    "fingerprint"
                );
                for r in &rows {
                    outln!(
                        "{:<24} {:>7}  {:<21}  {}{}",
                        r["data_type"].as_str().unwrap_or_default(),
                        r["version"]
                            .as_u64()
                            .map_or("-".to_string(), |v| v.to_string()),
                        r["fingerprint"].as_str().unwrap_or_default(),
                        r["name"].as_str().unwrap_or_default(),
                        if r["latest"].as_bool() == Some(true) {
                            "  (latest)"
                        } else {
                            ""
                        }
                    );
                }
            }
            Ok(())
        }
    }
}

fn job_code(e: &JobError) -> u8 {
    match e {
        JobError::Manifest { .. } => EXIT_BAD_INPUT,
        JobError::Storage(s) => storage_code(s),
        JobError::Source(s) => source_code(s),
        JobError::InputChanged { .. } => EXIT_BAD_INPUT,
        JobError::Convert(c) => convert_code(c),
        JobError::Store { source, .. } => store_code(source),
        JobError::Concurrent { .. } => EXIT_RETRYABLE,
    }
}

async fn read_text(url: &str, storage: &StorageOptions) -> Result<String, Failure> {
    use object_store::ObjectStoreExt;
    let location = storage::resolve(url, storage).map_err(|e| Failure::new(storage_code(&e), e))?;
    // A pipe (`<(...)`, /dev/stdin) has no size for the store to read up to: read it whole.
    let pipe = storage::local_file(&location, &location.path)
        .filter(|f| std::fs::metadata(f).is_ok_and(|m| !m.is_file() && !m.is_dir()));
    let bytes = match pipe {
        Some(file) => tokio::fs::read(&file)
            .await
            .map_err(|e| Failure::new(EXIT_BAD_INPUT, format!("{url}: {e}")))?
            .into(),
        None => location
            .store
            .get(&location.path)
            .await
            .map_err(|e| Failure::new(store_code(&e), format!("{url}: {e}")))?
            .bytes()
            .await
            .map_err(|e| Failure::new(store_code(&e), format!("{url}: {e}")))?,
    };
    String::from_utf8(bytes.to_vec())
        .map_err(|_| Failure::new(EXIT_BAD_INPUT, format!("{url}: not UTF-8 text")))
}

async fn run_job(args: RunArgs) -> Result<(), Failure> {
    let storage = args.storage.options();
    let budget = parse_size(&args.memory_limit).map_err(|e| Failure::new(EXIT_USAGE, e))?;
    let manifest_url = aws::run_manifest(
        args.manifest.as_deref(),
        args.manifests.as_deref(),
        args.array_index,
        args.manifest_count,
        &storage,
    )
    .await?;
    let text = read_text(&manifest_url, &storage).await?;
    let manifest = Manifest::parse(&text).map_err(|source| {
        Failure::new(
            EXIT_BAD_INPUT,
            JobError::Manifest {
                url: manifest_url.clone(),
                source,
            },
        )
    })?;
    let mut encode = EncodeOptions::default();
    if let Some(c) = &manifest.raw.compression {
        encode.compression = Codec::from_str(c).map_err(|e| Failure::new(EXIT_BAD_INPUT, e))?;
    }
    if let Some(s) = &manifest.raw.row_group_size {
        encode.row_group_bytes = parse_size(s).map_err(|e| Failure::new(EXIT_BAD_INPUT, e))?;
    }
    if let Some(s) = &manifest.raw.target_file_size {
        encode.file_bytes = parse_size(s).map_err(|e| Failure::new(EXIT_BAD_INPUT, e))?;
    }
    encode.byte_array_encoding = match &manifest.raw.byte_array_encoding {
        Some(e) => ByteArrayEncoding::from_str(e).map_err(|e| Failure::new(EXIT_BAD_INPUT, e))?,
        None => args.records.byte_array_encoding,
    };
    // Memory must not grow with the partition: the open row group's pages go to temporary
    // files (the default), a quarter of the budget bounds the blocks in flight, the rest is for
    // decoded batches and the encoders' working memory. A sixteenth of it bounds each decoded
    // group (one per worker and one more wait) when blocks inflate far more than usual (usual
    // groups are a few megabytes); of the budget only, not the threads, so that the output
    // stays the same with any number of threads.
    let options = ConvertOptions {
        encode,
        threads: args.threads,
        source: SourceOptions {
            budget_bytes: (budget / 4).max(1 << 20),
            ..SourceOptions::default()
        },
        group_decoded_bytes: (budget / 16).clamp(8 << 20, crate::convert::GROUP_DECODED_BYTES),
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        ..ConvertOptions::default()
    };
    // The manifest's settings first; the command line's where the manifest has none.
    let r = &args.records;
    let registry = manifest.raw.registry.clone().or_else(|| r.registry.clone());
    let readers: Vec<String> = match &manifest.raw.reader_schema {
        Some(ReaderSchemas::One(url)) => vec![url.clone()],
        Some(ReaderSchemas::PerType(map)) => {
            map.iter().map(|(t, url)| format!("{t}={url}")).collect()
        }
        None => r.reader_schema.clone(),
    };
    let data_types = manifest
        .raw
        .data_types
        .clone()
        .unwrap_or_else(|| r.data_type.clone());
    let uuid = match &manifest.raw.uuid {
        Some(u) => UuidForm::from_str(u).map_err(|e| Failure::new(EXIT_BAD_INPUT, e))?,
        None => r.uuid,
    };
    let wide_decimals = match &manifest.raw.wide_decimals {
        Some(w) => WideDecimals::from_str(w).map_err(|e| Failure::new(EXIT_BAD_INPUT, e))?,
        None => r.wide_decimals,
    };
    let mut options = options;
    options.schemas = Arc::new(
        schema_set(registry.as_deref(), &readers, &data_types, &storage)
            .await?
            .with_types(TypeOptions {
                uuid,
                wide_decimals,
            }),
    );
    options.source.framing = r.framing;
    options.max_dead_letter_fraction = manifest
        .raw
        .max_dead_letter_fraction
        .unwrap_or(r.max_dead_letter_fraction);
    if let Some(dl) = manifest.raw.dead_letter.as_ref().or(r.dead_letter.as_ref()) {
        let location = dead_letter_location(dl, &[&manifest.raw.table], &storage)?;
        // Each partition's dead letters under its own path: `<dead_letter>/<k1=v1>/...`.
        let mut path = location.path.clone();
        for segment in manifest.partition_segments() {
            path = path.join(segment.as_str());
        }
        let local = location
            .local
            .as_ref()
            .map(|d| d.join(manifest.partition_path()));
        options.dead_letter = Some(Location {
            display: format!("{}/{}", dl.trim_end_matches('/'), manifest.partition_path()),
            path,
            local,
            store: location.store,
        });
    }
    let job = JobContext {
        job_id: args.job_id.clone(),
        attempt: args.job_attempt,
    };
    let span = tracing::info_span!(
        "run",
        job_id = job.job_id.as_deref().unwrap_or("-"),
        attempt = job.attempt.unwrap_or(0),
        partition = %manifest.partition_path(),
        table = %manifest.raw.table,
    );
    let _entered = span.enter();
    tracing::info!(manifest = %manifest_url, generation = manifest.generation(), "starting");
    let started = std::time::Instant::now();
    let outcome = crate::job::run(&manifest, Some(&manifest_url), &storage, &options, &job)
        .await
        .map_err(|e| Failure::new(job_code(&e), e))?;
    let marker = match &outcome {
        Outcome::Superseded { current } => {
            outln!(
                "superseded: the manifest at {} changed while this run converted (now {}); a newer job converts {}/{}; nothing committed",
                manifest_url,
                &current[..16.min(current.len())],
                manifest.raw.table.trim_end_matches('/'),
                manifest.partition_path()
            );
            return Ok(());
        }
        Outcome::Stale {
            committed,
            committed_inputs,
        } => {
            outln!(
                "stale: {}/{} is committed from a newer manifest ({}) whose {committed_inputs} inputs include all {} of this one; nothing to do (to commit fewer inputs on purpose, delete its {} first)",
                manifest.raw.table.trim_end_matches('/'),
                manifest.partition_path(),
                &committed[..16.min(committed.len())],
                manifest.raw.inputs.len(),
                crate::job::MARKER
            );
            return Ok(());
        }
        Outcome::AlreadyCommitted { marker, deleted } => {
            tracing::info!(deleted, "already committed");
            outln!(
                "already committed: {}/{} (generation {}); nothing to do",
                manifest.raw.table.trim_end_matches('/'),
                manifest.partition_path(),
                marker.generation
            );
            marker
        }
        Outcome::Committed {
            marker,
            report,
            deleted,
            others,
        } => {
            // With several tables (`{data_type}` in the table URL), one line each.
            let several = !marker.data_type.is_empty() && !others.is_empty();
            for m in several
                .then_some(&**marker)
                .into_iter()
                .chain(others.iter())
            {
                outln!(
                    "committed data type `{}`: {} rows in {} file(s)",
                    m.data_type,
                    m.records_out,
                    m.outputs.len()
                );
            }
            out!("{}", summary(report));
            outln!(
                "committed {}/{} generation {} ({deleted} old file(s) deleted)",
                manifest.raw.table.trim_end_matches('/'),
                manifest.partition_path(),
                marker.generation
            );
            marker
        }
    };
    let committed_now = matches!(outcome, Outcome::Committed { .. });
    let others: &[crate::job::Marker] = match &outcome {
        Outcome::Committed { others, .. } => others,
        Outcome::AlreadyCommitted { .. } | Outcome::Superseded { .. } | Outcome::Stale { .. } => {
            &[]
        }
    };
    outln!(
        "{}",
        run_metrics(
            &manifest,
            marker,
            others,
            committed_now,
            started.elapsed().as_secs_f64()
        )
    );
    Ok(())
}

/// One CloudWatch Embedded Metric Format line for the run.
fn run_metrics(
    manifest: &Manifest,
    marker: &crate::job::Marker,
    others: &[crate::job::Marker],
    converted: bool,
    seconds: f64,
) -> String {
    let (records_in, records_out, dead, bytes_in, bytes_out, files) = if converted {
        (
            marker.records_in,
            marker.records_out + others.iter().map(|m| m.records_out).sum::<u64>(),
            marker.records_dead_lettered,
            marker.bytes_in,
            marker.bytes_out + others.iter().map(|m| m.bytes_out).sum::<u64>(),
            (marker.outputs.len() + others.iter().map(|m| m.outputs.len()).sum::<usize>()) as u64,
        )
    } else {
        (0, 0, 0, 0, 0, 0)
    };
    let mbps = bytes_in as f64 / 1e6 / seconds.max(1e-9);
    use crate::metrics::{Metric, emf_line};
    use serde_json::json;
    emf_line(
        "Table",
        &[
            Metric::count("RecordsIn", records_in),
            Metric::count("RecordsOut", records_out),
            Metric::count("RecordsDeadLettered", dead),
            Metric::new("BytesIn", "Bytes", bytes_in),
            Metric::new("BytesOut", "Bytes", bytes_out),
            Metric::count("Files", files),
            Metric::new("Seconds", "Seconds", seconds),
            Metric::new("MBPerSecond", "Megabytes/Second", mbps),
        ],
        &[
            ("Table", json!(manifest.raw.table)),
            ("Partition", json!(manifest.partition_path())),
            ("Generation", json!(marker.generation)),
            ("AlreadyCommitted", json!(!converted)),
        ],
    )
}

/// Optional manifest fields given to `manifest create`.
struct ManifestExtra {
    registry: Option<String>,
    data_types: Vec<String>,
    dead_letter: Option<String>,
}

async fn manifest_create(
    input: &str,
    table: &str,
    partition: &[String],
    output: Option<&str>,
    extra: ManifestExtra,
    storage: &StorageOptions,
) -> Result<(), Failure> {
    let mut keys = Vec::new();
    for p in partition {
        let (k, v) = p.split_once('=').ok_or_else(|| {
            Failure::new(EXIT_USAGE, format!("--partition `{p}`: expected key=value"))
        })?;
        keys.push((k.to_string(), v.to_string()));
    }
    let objects = list_inputs(&[input.to_string()], storage)
        .await
        .map_err(|e| Failure::new(source_code(&e), e))?;
    let inputs = objects
        .iter()
        .map(|o| crate::manifest::listed_input(&o.url, o.size, o.e_tag.as_deref()))
        .collect();
    let settings = crate::manifest::ManifestSettings {
        registry: extra.registry,
        data_types: extra.data_types,
        dead_letter: extra.dead_letter,
    };
    let manifest = Manifest::of_inputs(table, &keys, inputs, settings)
        .map_err(|e| Failure::new(EXIT_USAGE, e))?;
    let text =
        serde_json::to_string_pretty(&manifest.raw).map_err(|e| Failure::new(EXIT_INTERNAL, e))?;
    match output {
        None => outln!("{text}"),
        Some(url) => {
            use object_store::ObjectStoreExt;
            let location =
                storage::resolve(url, storage).map_err(|e| Failure::new(storage_code(&e), e))?;
            if let Some(dir) = location.local.as_ref().and_then(|p| p.parent()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| Failure::new(EXIT_CONFIG, format!("{}: {e}", dir.display())))?;
            }
            location
                .store
                .put(&location.path, text.into_bytes().into())
                .await
                .map_err(|e| Failure::new(store_code(&e), format!("{url}: {e}")))?;
            eprintln!(
                "wrote {url}: {} input(s), partition {}",
                objects.len(),
                manifest.partition_path()
            );
        }
    }
    Ok(())
}

/// A human summary of a conversion.
pub fn summary(report: &ConvertReport) -> String {
    let mut s = String::new();
    use std::fmt::Write as _;
    let secs = report.elapsed.as_secs_f64().max(1e-9);
    let _ = writeln!(
        s,
        "read {} records from {} input(s), {:.1} MB",
        report.records,
        report.inputs.len(),
        report.bytes_in as f64 / 1e6
    );
    for o in &report.outputs {
        let _ = writeln!(
            s,
            "  wrote {} ({} rows, {} row groups, {:.1} MB)",
            o.url,
            o.rows,
            o.row_groups,
            o.bytes as f64 / 1e6
        );
    }
    if report.outputs.is_empty() {
        let _ = writeln!(s, "  no records: no file written");
    }
    if let Some(url) = &report.dead_letter.url {
        let _ = writeln!(
            s,
            "  set aside {} record(s) that could not be converted ({} entries) in {url}",
            report.dead_letter.records, report.dead_letter.entries
        );
    }
    if !report.replaced.is_empty() {
        let _ = writeln!(
            s,
            "  deleted {} earlier file(s) that these replace",
            report.replaced.len()
        );
    }
    let _ = writeln!(
        s,
        "{:.2} s, {:.1} MB/s of Avro, {:.0} records/s",
        secs,
        report.bytes_in as f64 / 1e6 / secs,
        report.records as f64 / secs
    );
    s
}

async fn demo(dir: &std::path::Path, records: u64, files: u64) -> Result<(), Failure> {
    let io = |e: std::io::Error| Failure::new(EXIT_CONFIG, format!("{}: {e}", dir.display()));
    let avro_dir = dir.join("avro");
    let parquet_dir = dir.join("parquet");
    std::fs::create_dir_all(&avro_dir).map_err(io)?;
    let files = files.max(1);
    let codecs = [
        AvroCodec::Deflate,
        AvroCodec::Snappy,
        AvroCodec::Zstandard,
        AvroCodec::Null,
    ];
    outln!(
        "generating {records} ad-network events in {} ...",
        avro_dir.display()
    );
    let per_file = records.div_ceil(files);
    for f in 0..files {
        let first = f * per_file;
        let n = per_file.min(records.saturating_sub(first));
        let codec = codecs[(f % codecs.len() as u64) as usize];
        let path = avro_dir.join(format!("events-{f:03}.{}.avro", codec.name()));
        let file = std::io::BufWriter::new(std::fs::File::create(&path).map_err(io)?);
        crate::demo::write_events(file, codec, first, n, 7).map_err(io)?;
        outln!("  {} ({n} events, {})", path.display(), codec.name());
    }
    let report = convert_paths(
        &[avro_dir.display().to_string()],
        &parquet_dir.display().to_string(),
        &StorageOptions::default(),
        &ConvertOptions::default(),
        true,
    )
    .await?;
    outln!("converted:");
    out!("{}", summary(&report));
    if let Some(first) = report.outputs.first() {
        let location = storage::resolve(&first.url, &StorageOptions::default())
            .map_err(|e| Failure::new(storage_code(&e), e))?;
        let text = inspect(&location)
            .await
            .map_err(|e| Failure::new(EXIT_INTERNAL, e))?;
        outln!("\n{text}");
    }
    outln!(
        "try: parqour inspect {}/events-000.deflate.avro",
        avro_dir.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dead-letter place denied is configuration (78), as the table denied is; a broken
    /// connection to it is retryable (75).
    #[test]
    fn dead_letter_errors_have_the_storage_exit_codes() {
        let denied = object_store::Error::PermissionDenied {
            path: "dl/x".into(),
            source: "AccessDenied".into(),
        };
        let error = |message: String| ConvertError::DeadLetter {
            url: "s3://dl/x".into(),
            message,
        };
        assert_eq!(convert_code(&error(denied.to_string())), EXIT_CONFIG);
        let missing = "Generic S3 error: NoSuchBucket: The specified bucket does not exist";
        assert_eq!(convert_code(&error(missing.into())), EXIT_CONFIG);
        let bucket = object_store::Error::NotFound {
            path: "m.json".into(),
            source: "Client error with status 404 Not Found: <Code>NoSuchBucket</Code>".into(),
        };
        assert_eq!(store_code(&bucket), EXIT_CONFIG);
        let object = object_store::Error::NotFound {
            path: "m.json".into(),
            source: "Client error with status 404 Not Found: <Code>NoSuchKey</Code>".into(),
        };
        assert_eq!(store_code(&object), EXIT_BAD_INPUT);
        let reset = "Generic S3 error: connection reset by peer";
        assert_eq!(convert_code(&error(reset.into())), EXIT_RETRYABLE);
        // No credentials anywhere: object_store asked the instance metadata service last.
        let no_credentials = object_store::Error::Generic {
            store: "S3",
            source: "Error performing PUT http://169.254.169.254/latest/api/token in 1.2ms \
                     - HTTP error: error sending request"
                .into(),
        };
        assert_eq!(store_code(&no_credentials), EXIT_CONFIG);
        let told = Failure::new(store_code(&no_credentials), &no_credentials);
        assert!(
            told.message.contains("set AWS_ACCESS_KEY_ID"),
            "{}",
            told.message
        );
        // On an instance with a role, the service throttled or failing: retryable, no hint.
        for status in ["429 Too Many Requests", "503 Service Unavailable"] {
            let throttled = object_store::Error::Generic {
                store: "S3",
                source: format!(
                    "Error performing PUT http://169.254.169.254/latest/api/token in 3ms - \
                     Server returned non-2xx status code: {status}: "
                )
                .into(),
            };
            assert_eq!(store_code(&throttled), EXIT_RETRYABLE, "{status}");
            let told = Failure::new(store_code(&throttled), &throttled);
            assert!(
                !told.message.contains("no AWS credentials"),
                "{}",
                told.message
            );
        }
    }

    /// An output file whose upload fails while it is written: the encoder sees an I/O error
    /// that carries the store's; a folder it may not write is configuration (78), as S3's
    /// refusal is, and a full disk is retryable (75).
    #[test]
    fn upload_errors_inside_the_encoder_have_the_storage_exit_codes() {
        let error = |text: &str| ConvertError::Encode {
            url: "/out/part-00000.snappy.parquet".into(),
            source: EncodeError::Parquet(parquet::errors::ParquetError::from(
                std::io::Error::other(text.to_string()),
            )),
        };
        let local = "uploading out/part-00000.snappy.parquet: Generic LocalFileSystem error: \
                     Unable to open file out/part-00000.snappy.parquet#1: Permission denied \
                     (os error 13)";
        assert_eq!(convert_code(&error(local)), EXIT_CONFIG);
        let s3 = "uploading part-00013.snappy.parquet: The operation lacked the necessary \
                  privileges to complete for path part-00013.snappy.parquet";
        assert_eq!(convert_code(&error(s3)), EXIT_CONFIG);
        let full = "uploading out/x: Generic LocalFileSystem error: Unable to copy data to \
                    file: No space left on device (os error 28)";
        assert_eq!(convert_code(&error(full)), EXIT_RETRYABLE);
        // Local files the sink writes itself (`sink/file.rs`).
        for (text, code) in [
            (
                "writing /out/x: Permission denied (os error 13)",
                EXIT_CONFIG,
            ),
            (
                "writing /out/x: Read-only file system (os error 30)",
                EXIT_CONFIG,
            ),
            (
                "writing /out/x: No space left on device (os error 28)",
                EXIT_RETRYABLE,
            ),
            (
                "renaming /out/x#1 into place: Is a directory (os error 21)",
                EXIT_CONFIG,
            ),
        ] {
            assert_eq!(convert_code(&error(text)), code, "{text}");
        }
        let write = |kind: std::io::ErrorKind, os: i32| {
            ConvertError::Sink(SinkError::Write {
                path: "/out/x".into(),
                source: std::io::Error::new(kind, std::io::Error::from_raw_os_error(os)),
            })
        };
        assert_eq!(
            convert_code(&write(std::io::ErrorKind::ReadOnlyFilesystem, 30)),
            EXIT_CONFIG
        );
        assert_eq!(
            convert_code(&write(std::io::ErrorKind::StorageFull, 28)),
            EXIT_RETRYABLE
        );
    }

    /// Local folders: what a rerun would meet again is configuration (78); a full disk (or
    /// no inodes left) and another run's lock on the folder are retryable (75). An output of
    /// records of no data type is named as the output, not as a data type.
    #[test]
    fn local_folder_errors_have_exit_codes_by_their_kind() {
        use std::io::ErrorKind;
        let io = |kind: ErrorKind, os: i32| StorageError::Io {
            path: "/out".into(),
            source: std::io::Error::new(kind, std::io::Error::from_raw_os_error(os)),
        };
        for (kind, os, code) in [
            (ErrorKind::PermissionDenied, 13, EXIT_CONFIG),
            (ErrorKind::ReadOnlyFilesystem, 30, EXIT_CONFIG),
            (ErrorKind::NotADirectory, 20, EXIT_CONFIG),
            (ErrorKind::IsADirectory, 21, EXIT_CONFIG),
            (ErrorKind::StorageFull, 28, EXIT_RETRYABLE),
        ] {
            assert_eq!(storage_code(&io(kind, os)), code, "{kind:?}");
        }
        let busy = StorageError::Busy {
            path: "/out".into(),
        };
        assert_eq!(storage_code(&busy), EXIT_RETRYABLE);
        let plain = ConvertError::Destination {
            data_type: String::new(),
            source: io(ErrorKind::StorageFull, 28),
        };
        assert!(plain.to_string().starts_with("output: `/out`: "), "{plain}");
        assert_eq!(convert_code(&plain), EXIT_RETRYABLE);
        let typed = ConvertError::Destination {
            data_type: "events".into(),
            source: io(ErrorKind::PermissionDenied, 13),
        };
        assert!(
            typed
                .to_string()
                .starts_with("output of data type `events`: `/out`: "),
            "{typed}"
        );
        assert_eq!(convert_code(&typed), EXIT_CONFIG);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("128MiB").unwrap(), 128 << 20);
        assert_eq!(parse_size("1.5GB").unwrap(), 1_500_000_000);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("12XB").is_err());
        assert!(parse_size("0").is_err());
    }

    #[test]
    fn missing_credentials_are_named() {
        let imds = "Generic S3 error: Error performing PUT \
                    http://169.254.169.254/latest/api/token in 2ms - 403 Forbidden";
        let f = Failure::new(EXIT_RETRYABLE, imds);
        assert!(f.message.starts_with(imds), "{}", f.message);
        assert!(f.message.contains("no AWS credentials"), "{}", f.message);
        let other = Failure::new(EXIT_RETRYABLE, "connection reset");
        assert_eq!(other.message, "connection reset");
    }

    #[test]
    fn cli_parses() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
