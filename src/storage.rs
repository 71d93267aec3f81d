//! Storage locations: a path or URL -> an `object_store` and a path in it.
//!
//! Edge: the one place that turns user-given locations into stores. Local paths and `file://`
//! URLs use [`LocalFileSystem`]; `s3://` uses [`AmazonS3Builder::from_env`], which reads the
//! standard `AWS_*` variables (region, keys, session token, `AWS_ENDPOINT_URL`,
//! `AWS_ALLOW_HTTP`, web identity and container credentials, the instance role); settings given on
//! the command line take precedence. `memory://name/` is an in-memory store shared within the
//! process (for tests).
//! Requests are retried with backoff on throttling, 5xx responses and connection errors by
//! `object_store`'s retry layer.

use std::collections::HashMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use object_store::CredentialProvider;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, AwsCredential};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{BackoffConfig, ObjectStore, RetryConfig};
use url::Url;

/// Errors of the storage edge.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The location is not a path or a supported URL.
    #[error("`{location}`: {message}")]
    Location {
        /// What the user gave.
        location: String,
        /// Why it is not usable.
        message: String,
    },
    /// The store could not be built (bad settings or credentials configuration).
    #[error("`{location}`: {source}")]
    Store {
        /// What the user gave.
        location: String,
        /// The store's error.
        source: object_store::Error,
    },
    /// The settings contradict each other (the environment's, the profile's, the flags').
    #[error("`{location}`: {message}")]
    Settings {
        /// What the user gave.
        location: String,
        /// What contradicts what.
        message: String,
    },
    /// A local folder or file could not be created, opened or removed.
    #[error("`{path}`: {source}")]
    Io {
        /// The folder or file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A local output names a file, or a folder under a file.
    #[error("the output `{path}` is a file, not a folder")]
    NotAFolder {
        /// The file.
        path: PathBuf,
    },
    /// Another run holds the lock of a local output folder ([`lock_folder`]).
    #[error(
        "another parqour run is writing into `{path}` (it holds the folder's lock): wait for it to end, or choose another output"
    )]
    Busy {
        /// The folder.
        path: PathBuf,
    },
}

/// Settings for S3-compatible stores beyond what the environment gives.
#[derive(Debug, Clone, Default)]
pub struct StorageOptions {
    /// Endpoint of an S3-compatible server (MinIO, SeaweedFS, ...).
    pub endpoint: Option<String>,
    /// Allow plain HTTP endpoints.
    pub allow_http: bool,
    /// AWS region.
    pub region: Option<String>,
    /// How failed requests are retried (default: [`retry_config`]).
    pub retry: Option<RetryConfig>,
    /// The S3 stores built with these options, shared by their clones: a command (or the
    /// trigger's Lambda function, across invocations) reuses each bucket's connections.
    pub stores: StoreCache,
}

/// Retries of S3 requests: throttling (503 SlowDown), 5xx, connection resets and timeouts are
/// retried with exponential backoff and jitter, from 100 ms doubling up to 15 s between tries,
/// at most 10 tries and 3 minutes per request (credentials and payloads are not renewed
/// between tries, so the total stays well under their lifetime). `PARQOUR_S3_MAX_RETRIES` and
/// `PARQOUR_S3_RETRY_TIMEOUT` (seconds) change the two bounds. Errors that retrying cannot fix
/// (403, 404, 412) are not retried.
pub fn retry_config() -> RetryConfig {
    let env = |name: &str| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(15),
            base: 2.0,
        },
        max_retries: env("PARQOUR_S3_MAX_RETRIES").map_or(10, |n| n as usize),
        retry_timeout: Duration::from_secs(env("PARQOUR_S3_RETRY_TIMEOUT").unwrap_or(180)),
    }
}

/// A store and a path in it, with the text the user gave to name it in messages.
#[derive(Debug, Clone)]
pub struct Location {
    /// The store.
    pub store: Arc<dyn ObjectStore>,
    /// The object or prefix within the store.
    pub path: Path,
    /// The location as the user wrote it, or as a URL.
    pub display: String,
    /// For local locations, the filesystem path.
    pub local: Option<PathBuf>,
}

impl Location {
    /// How to name an object under this location in messages: the URL of `path`.
    pub fn url_of(&self, path: &Path) -> String {
        match &self.local {
            Some(_) => format!("/{path}"),
            None => {
                let base = self.display.trim_end_matches('/');
                let rel = path
                    .as_ref()
                    .strip_prefix(self.path.as_ref())
                    .unwrap_or(path.as_ref())
                    .trim_start_matches('/');
                if rel.is_empty() {
                    base.to_string()
                } else {
                    format!("{base}/{rel}")
                }
            }
        }
    }
}

/// The profile to take credentials from when object_store's own chain (environment keys, web
/// identity, ECS, instance metadata) would not find any on its own: no keys in the
/// environment, no web identity or container credentials, and an AWS_PROFILE or a shared
/// config or credentials file (`~/.aws/config`, `~/.aws/credentials`, or the files that
/// AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE name).
fn profile_credentials_wanted() -> Option<String> {
    let set = |v: &str| std::env::var_os(v).is_some_and(|s| !s.is_empty());
    if set("AWS_ACCESS_KEY_ID")
        || set("AWS_WEB_IDENTITY_TOKEN_FILE")
        || set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        || set("AWS_CONTAINER_CREDENTIALS_FULL_URI")
    {
        return None;
    }
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into());
    let files_exist = shared_files().iter().any(|f| f.is_file());
    (set("AWS_PROFILE") || files_exist).then_some(profile)
}

/// The shared config and credentials files.
fn shared_files() -> [PathBuf; 2] {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let config = std::env::var_os("AWS_CONFIG_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".aws/config"));
    let credentials = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".aws/credentials"));
    [config, credentials]
}

/// The `region` of `profile` in the shared config file (`[profile NAME]`, or `[default]`).
fn profile_region(profile: &str) -> Option<String> {
    let text = std::fs::read_to_string(&shared_files()[0]).ok()?;
    let wanted = if profile == "default" {
        "default".to_string()
    } else {
        format!("profile {profile}")
    };
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = section.trim() == wanted;
        } else if inside
            && let Some((k, v)) = line.split_once('=')
            && k.trim() == "region"
        {
            return Some(v.trim().to_string());
        }
    }
    None
}

/// S3 credentials from the AWS SDK's default chain, which reads named profiles (static keys,
/// `role_arn` with `source_profile`, ...) as the AWS CLI does; cached until five minutes before
/// they expire.
#[derive(Debug, Default)]
struct SdkCredentials {
    chain: tokio::sync::OnceCell<aws_credential_types::provider::SharedCredentialsProvider>,
    cached: tokio::sync::Mutex<Option<(Arc<AwsCredential>, Option<std::time::SystemTime>)>>,
}

#[async_trait::async_trait]
impl CredentialProvider for SdkCredentials {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        use aws_credential_types::provider::ProvideCredentials;
        let mut cached = self.cached.lock().await;
        let fresh_until = std::time::SystemTime::now() + Duration::from_secs(300);
        if let Some((credential, expiry)) = cached.as_ref()
            && expiry.is_none_or(|e| e > fresh_until)
        {
            return Ok(credential.clone());
        }
        let chain = self
            .chain
            .get_or_init(|| async {
                let chain =
                    aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
                        .build()
                        .await;
                aws_credential_types::provider::SharedCredentialsProvider::new(chain)
            })
            .await;
        let got = chain.provide_credentials().await.map_err(|e| {
            object_store::Error::Unauthenticated {
                path: String::new(),
                source: format!("no AWS credentials from the environment or profile: {e}").into(),
            }
        })?;
        let credential = Arc::new(AwsCredential {
            key_id: got.access_key_id().to_string(),
            secret_key: got.secret_access_key().to_string(),
            token: got.session_token().map(str::to_string),
        });
        *cached = Some((credential.clone(), got.expiry()));
        Ok(credential)
    }
}

/// Resolves a local path or URL to a store and a path in it. An S3 bucket's store is built
/// once per `options` (and its clones; [`StorageOptions::stores`]) and shared.
pub fn resolve(location: &str, options: &StorageOptions) -> Result<Location, StorageError> {
    let mut stores = options
        .stores
        .0
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // Keyed by the settings too: a clone whose settings were changed shares the cache.
    let settings = format!(
        "{:?} {} {:?} {:?}",
        options.endpoint, options.allow_http, options.region, options.retry
    );
    // A store is never replaced (the cache holds the buckets the options' user names): the
    // objects of a bucket resolved with one options share one store, and
    // `job::resolve_inputs` tells the same object by its store and path.
    let buckets = stores.entry(settings).or_default();
    resolve_with(location, options, buckets)
}

/// The S3 stores built with a [`StorageOptions`], by settings and bucket. A store holds its
/// connection pool and credentials: built per `resolve`, each of a partition's objects opened
/// its own connection (a TLS handshake each on S3; two thousand objects held ~400 MiB of
/// clients), and reading a prefix of 10,000 manifests (`submit --manifests`, a year's
/// backfill) opened one per request, 18,294 in all, where one store reuses a few. What a
/// store read from the environment when it was built (credentials, endpoint, retry bounds)
/// stays with it.
#[derive(Clone, Default)]
pub struct StoreCache(Arc<std::sync::Mutex<HashMap<String, Buckets>>>);

impl std::fmt::Debug for StoreCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreCache")
    }
}

/// S3 stores by bucket.
type Buckets = HashMap<String, Arc<dyn ObjectStore>>;

/// [`resolve`], taking the store of an S3 bucket from `buckets` (and leaving the one it builds
/// there).
fn resolve_with(
    location: &str,
    options: &StorageOptions,
    buckets: &mut HashMap<String, Arc<dyn ObjectStore>>,
) -> Result<Location, StorageError> {
    let err = |message: String| StorageError::Location {
        location: location.to_string(),
        message,
    };
    let Some((scheme, rest)) = location.split_once("://") else {
        // `s3:/raw/x` (a slash short) would be a local folder named `s3:`: say so instead of
        // finding nothing there.
        for scheme in ["s3:", "s3a:", "file:", "memory:"] {
            if location.starts_with(scheme) {
                return Err(err(format!(
                    "a URL needs `{scheme}//` (as a local path this would be a folder named \
                     `{scheme}`)"
                )));
            }
        }
        return local(location, FsPath::new(location));
    };
    match scheme {
        "file" => {
            let url = Url::parse(location).map_err(|e| err(format!("not a valid URL: {e}")))?;
            let path = url
                .to_file_path()
                .map_err(|_| err("not a local file URL".into()))?;
            local(location, &path)
        }
        "s3" | "s3a" => {
            let (bucket, key) = bucket_and_key(rest);
            if bucket.is_empty() {
                return Err(err("an s3 URL needs a bucket: s3://bucket/prefix".into()));
            }
            let store = match buckets.get(bucket) {
                Some(store) => store.clone(),
                None => {
                    let store = s3_store(bucket, location, options)?;
                    buckets.insert(bucket.to_string(), store.clone());
                    store
                }
            };
            Ok(Location {
                store,
                path: Path::parse(key).map_err(|e| err(e.to_string()))?,
                display: location.to_string(),
                local: None,
            })
        }
        "memory" => {
            let (name, key) = bucket_and_key(rest);
            Ok(Location {
                store: memory_store(name),
                path: Path::parse(key).map_err(|e| err(e.to_string()))?,
                display: location.to_string(),
                local: None,
            })
        }
        other => Err(err(format!(
            "unsupported scheme `{other}`: use a local path, file://, or s3://"
        ))),
    }
}

/// Whether uploads to `endpoint` (`None`: AWS) skip signing their payloads, as the AWS SDKs
/// and CLI do: over HTTPS the payload is sent as `UNSIGNED-PAYLOAD` (TLS protects it in
/// transit), so no SHA-256 of every uploaded byte is computed (4% of a conversion's cpu,
/// measured); over plain HTTP (a local MinIO or SeaweedFS) it is still signed.
/// `AWS_UNSIGNED_PAYLOAD=true|false` decides instead when it is set.
fn unsigned_payload(endpoint: Option<&str>) -> bool {
    endpoint.is_none_or(|e| {
        e.get(..8)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
    })
}

/// Whether `endpoint` is a plain-HTTP URL.
fn plain_http(endpoint: &str) -> bool {
    endpoint
        .get(..7)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://"))
}

/// The store of an S3 `bucket` (`location` names it in errors): credentials, region and
/// endpoint from the environment, the AWS profile and `options`.
fn s3_store(
    bucket: &str,
    location: &str,
    options: &StorageOptions,
) -> Result<Arc<dyn ObjectStore>, StorageError> {
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_retry(options.retry.clone().unwrap_or_else(retry_config));
    if let Some(profile) = profile_credentials_wanted() {
        builder = builder.with_credentials(Arc::new(SdkCredentials::default()));
        if options.region.is_none()
            && std::env::var_os("AWS_REGION").is_none()
            && std::env::var_os("AWS_DEFAULT_REGION").is_none()
            && let Some(region) = profile_region(&profile)
        {
            builder = builder.with_region(region);
        }
    }
    if let Some(endpoint) = &options.endpoint {
        // Over AWS_ENDPOINT_URL_S3 too, which object_store prefers to the general one.
        builder = builder
            .with_endpoint(endpoint)
            .with_config(AmazonS3ConfigKey::S3Endpoint, endpoint);
    }
    if let Some(region) = &options.region {
        builder = builder.with_region(region);
    }
    let endpoint = builder
        .get_config_value(&AmazonS3ConfigKey::S3Endpoint)
        .or_else(|| builder.get_config_value(&AmazonS3ConfigKey::Endpoint));
    // object_store panics on its first request to an endpoint that is not an absolute
    // http(s) URL (`localhost:9000`, an empty string): refused here, naming it.
    if let Some(e) = &endpoint
        && !url::Url::parse(e).is_ok_and(|u| {
            matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty())
        })
    {
        return Err(StorageError::Location {
            location: location.to_string(),
            message: format!(
                "the S3 endpoint `{e}` is not an http:// or https:// URL (e.g. http://localhost:9000)"
            ),
        });
    }
    // An endpoint named http:// (a local MinIO or SeaweedFS) is taken at its word, as the AWS
    // CLI and SDKs take it, unless AWS_ALLOW_HTTP says otherwise.
    if options.allow_http
        || (std::env::var_os("AWS_ALLOW_HTTP").is_none()
            && endpoint.as_deref().is_some_and(plain_http))
    {
        builder = builder.with_allow_http(true);
    }
    // Refused at its first request otherwise, as a "builder error" that reads like an outage
    // (and was retried as one).
    if let Some(e) = endpoint.as_deref().filter(|e| plain_http(e))
        && builder
            .get_config_value(&AmazonS3ConfigKey::Client(
                object_store::ClientConfigKey::AllowHttp,
            ))
            .is_none_or(|v| {
                // As object_store reads a boolean.
                !["1", "true", "on", "yes", "y"]
                    .iter()
                    .any(|t| v.eq_ignore_ascii_case(t))
            })
    {
        return Err(StorageError::Settings {
            location: location.to_string(),
            message: format!(
                "the S3 endpoint `{e}` is plain HTTP, which AWS_ALLOW_HTTP forbids: set \
                 AWS_ALLOW_HTTP=true, or use an https:// endpoint"
            ),
        });
    }
    // Connections idle longer are not reused: S3 closes idle ones after about 20 s, and a
    // request sent on one it is closing fails (an upload is not retried then), as a store
    // kept across the trigger's Lambda invocations would meet after each freeze.
    let idle = AmazonS3ConfigKey::Client(object_store::ClientConfigKey::PoolIdleTimeout);
    if builder.get_config_value(&idle).is_none() {
        builder = builder.with_config(idle, "15s");
    }
    if std::env::var_os("AWS_UNSIGNED_PAYLOAD").is_none() {
        builder = builder.with_unsigned_payload(unsigned_payload(endpoint.as_deref()));
    }
    let store = builder.build().map_err(|source| StorageError::Store {
        location: location.to_string(),
        source,
    })?;
    Ok(Arc::new(store))
}

/// Deletes the local staging files directly in `dir` (`<name>#<digits>`: a file is written
/// there, then renamed to `<name>`; a process killed in between leaves it) whose `<name>` is
/// `ours`. The store neither lists nor deletes such names. A staging file that a running
/// writer holds locked (the sink locks its own while it writes them, and a killed process's
/// lock goes with it) is left to it. Returns the files deleted; a missing `dir` has none.
pub fn remove_local_staging(
    dir: &FsPath,
    ours: impl Fn(&str) -> bool,
) -> Result<Vec<PathBuf>, StorageError> {
    let err = |path: &FsPath, source: std::io::Error| StorageError::Io {
        path: path.to_path_buf(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(err(dir, e)),
    };
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| err(dir, e))?;
        let name = entry.file_name();
        if !name.to_str().and_then(staged_name).is_some_and(&ours) {
            continue;
        }
        // Held while the file is removed, so that no writer takes it in between.
        let _held = match std::fs::File::open(entry.path()).map(|f| (f.try_lock(), f)) {
            Ok((Err(std::fs::TryLockError::WouldBlock), _)) => {
                tracing::debug!(file = %entry.path().display(), "a running writer's staging file: left to it");
                continue;
            }
            Ok((_, file)) => Some(file),
            Err(_) => None,
        };
        match std::fs::remove_file(entry.path()) {
            Ok(()) => removed.push(entry.path()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(err(&entry.path(), e)),
        }
    }
    Ok(removed)
}

/// The objects directly in `location` (not in folders or prefixes below it, which may be other
/// tables or partitions), sorted; none when it does not exist.
pub async fn objects_in(location: &Location) -> Result<Vec<Path>, object_store::Error> {
    if location.local.as_ref().is_some_and(|p| !p.exists()) {
        return Ok(Vec::new());
    }
    let prefix = (!location.path.as_ref().is_empty()).then_some(&location.path);
    let listing = match location.store.list_with_delimiter(prefix).await {
        Ok(listing) => listing,
        Err(object_store::Error::NotFound { .. }) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut found: Vec<Path> = listing.objects.into_iter().map(|m| m.location).collect();
    found.sort();
    Ok(found)
}

/// The folders of `dirs` (local folders a run will write into) and above them that do not exist
/// yet, deepest first: those [`remove_empty_folders`] removes again if the run fails.
pub fn missing_folders<'a>(dirs: impl IntoIterator<Item = &'a FsPath>) -> Vec<PathBuf> {
    let mut missing: Vec<PathBuf> = dirs
        .into_iter()
        .flat_map(|dir| dir.ancestors().take_while(|d| !d.exists()))
        .map(FsPath::to_path_buf)
        .collect();
    missing.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    missing.dedup();
    missing
}

/// Removes those of `folders` (deepest first) that are empty: what a failed run made and left
/// nothing in. A folder that holds anything stays.
pub fn remove_empty_folders(folders: &[PathBuf]) {
    for dir in folders {
        // Only an empty folder goes.
        let _ = std::fs::remove_dir(dir);
    }
}

/// An exclusive lock on a local output folder, held while a run writes into it: an advisory
/// lock (`flock`) on the folder itself, so there is no lock file for Athena or a listing to
/// see, and a killed process's lock goes with it. Released when dropped.
#[derive(Debug)]
pub struct FolderLock {
    _folder: std::fs::File,
}

/// Locks the local folder `dir`, which exists, for this run, or fails with
/// [`StorageError::Busy`] when another run (another process, or another lock in this one)
/// holds it. `Ok(None)` where the folder cannot be locked so (a filesystem without such
/// locks, such as some NFS mounts; platforms other than unix): the run goes on unguarded,
/// with a warning.
pub fn lock_folder(dir: &FsPath) -> Result<Option<FolderLock>, StorageError> {
    #[cfg(unix)]
    {
        let folder = std::fs::File::open(dir).map_err(|source| StorageError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        match folder.try_lock() {
            Ok(()) => Ok(Some(FolderLock { _folder: folder })),
            Err(std::fs::TryLockError::WouldBlock) => Err(StorageError::Busy {
                path: dir.to_path_buf(),
            }),
            Err(std::fs::TryLockError::Error(e)) => {
                tracing::warn!(folder = %dir.display(), error = %e, "the output folder cannot be locked: nothing keeps another run from writing into it at the same time");
                Ok(None)
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(None)
    }
}

/// The name a local staging file `<name>#<digits>` will be renamed to, if `file` is one.
pub fn staged_name(file: &str) -> Option<&str> {
    let (name, n) = file.rsplit_once('#')?;
    (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then_some(name)
}

/// Splits what follows `s3://` into the bucket and the key, the key verbatim as the AWS CLI and
/// S3 itself read it: `%`, `#`, `?`, `+` and spaces are part of the key, not URL syntax (so the
/// URL of a listed object, `s3://bucket/` + its key, always names that object again).
fn bucket_and_key(rest: &str) -> (&str, &str) {
    rest.split_once('/').unwrap_or((rest, ""))
}

/// The longest key S3 takes, in bytes.
pub const MAX_S3_KEY: usize = 1024;

/// The key of an `s3://` (or `s3a://`) URL, as S3 gets it (`""` for a bucket); `None` for
/// other URLs and paths.
pub fn s3_key(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("s3://")
        .or_else(|| url.strip_prefix("s3a://"))?;
    Some(bucket_and_key(rest).1)
}

/// Whether the folder or object `inner` lies within the output `outer` (equal, or under it),
/// both as paths or URLs as a user writes them: a local path or `file://` URL is compared as
/// the absolute path it names (`./out/../out/a` is `out/a`), other URLs as written. `outer`
/// may hold the `{data_type}` placeholder: everything that starts like what precedes it is
/// within (`lake/t_{data_type}` holds `lake/t_a`).
pub fn within(inner: &str, outer: &str) -> bool {
    fn canonical(s: &str) -> String {
        let local = match s.split_once("://") {
            None => Some(PathBuf::from(s)),
            Some(("file", _)) => Url::parse(s).ok().and_then(|u| u.to_file_path().ok()),
            Some(_) => None,
        };
        let path = local.and_then(|p| normalize(&p).ok());
        match path {
            Some(p) => p.display().to_string(),
            None => s.to_string(),
        }
        .trim_end_matches('/')
        .to_string()
    }
    let inner = canonical(inner);
    match outer.split_once(crate::manifest::DATA_TYPE_PLACEHOLDER) {
        None => {
            let outer = canonical(outer);
            inner == outer || inner.starts_with(&format!("{outer}/"))
        }
        Some((prefix, _)) => {
            // A prefix ending in `/` (or empty) is a folder; else part of a name.
            let folder = prefix.is_empty() || prefix.ends_with('/');
            let prefix = canonical(if prefix.is_empty() { "." } else { prefix });
            if folder {
                inner.starts_with(&format!("{prefix}/")) || inner == prefix
            } else {
                inner.starts_with(&prefix)
            }
        }
    }
}

/// The absolute form of `path` with `.` and `..` resolved lexically (object store paths may
/// not contain them; the path need not exist yet).
fn normalize(path: &FsPath) -> std::io::Result<PathBuf> {
    use std::path::Component;
    let absolute = std::path::absolute(path)?;
    let mut out = PathBuf::new();
    for c in absolute.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Ok(out)
}

type MemoryStores = std::sync::Mutex<std::collections::HashMap<String, Arc<dyn ObjectStore>>>;

fn memory_stores() -> &'static MemoryStores {
    static STORES: std::sync::OnceLock<MemoryStores> = std::sync::OnceLock::new();
    STORES.get_or_init(Default::default)
}

/// The in-memory store named `name` (`memory://name/...`), shared within the process.
fn memory_store(name: &str) -> Arc<dyn ObjectStore> {
    let mut stores = memory_stores()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    stores
        .entry(name.to_string())
        .or_insert_with(|| Arc::new(InMemory::new()))
        .clone()
}

/// Makes `memory://name/...` resolve to `store` (tests use it to observe requests).
pub fn register_memory_store(name: &str, store: Arc<dyn ObjectStore>) {
    memory_stores()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(name.to_string(), store);
}

fn local(location: &str, path: &FsPath) -> Result<Location, StorageError> {
    let absolute = normalize(path).map_err(|source| StorageError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let object_path = Path::from_absolute_path(&absolute).map_err(|e| StorageError::Location {
        location: location.to_string(),
        message: e.to_string(),
    })?;
    Ok(Location {
        store: Arc::new(LocalFileSystem::new()),
        path: object_path,
        display: location.to_string(),
        local: Some(absolute),
    })
}

/// The file on this machine that `path` of a local `location` is (`None` for other stores).
pub fn local_file(location: &Location, path: &Path) -> Option<PathBuf> {
    location.local.as_ref()?;
    LocalFileSystem::new().path_to_filesystem(path).ok()
}

/// Checks that a local output folder can be made: no file is in its way (named, rather than
/// "File exists" from `create_dir_all` later). Makes nothing: a run that fails before it writes
/// leaves no empty folders.
pub fn check_output(location: &Location) -> Result<(), StorageError> {
    if let Some(dir) = &location.local
        && let Some(file) = dir.ancestors().find(|p| p.is_file())
    {
        return Err(StorageError::NotAFolder {
            path: file.to_path_buf(),
        });
    }
    Ok(())
}

/// Makes sure a local output folder exists (object stores need no folders).
pub fn prepare_output(location: &Location) -> Result<(), StorageError> {
    check_output(location)?;
    if let Some(dir) = &location.local {
        std::fs::create_dir_all(dir).map_err(|source| StorageError::Io {
            path: dir.clone(),
            source,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A staging file its writer holds locked is spared; a killed writer's (no lock) is
    /// deleted, and so is the first once its writer is gone; other names are left.
    #[test]
    fn staging_files_of_running_writers_are_spared() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("part-00000.parquet#1");
        let dead = dir.path().join("part-00001.parquet#1");
        let other = dir.path().join("notes.txt#1");
        for f in [&live, &dead, &other] {
            std::fs::write(f, b"x").unwrap();
        }
        let writer = std::fs::OpenOptions::new().write(true).open(&live).unwrap();
        writer.try_lock().unwrap();
        let parquet = |name: &str| name.ends_with(".parquet");
        let removed = remove_local_staging(dir.path(), parquet).unwrap();
        assert_eq!(removed, std::slice::from_ref(&dead));
        assert!(live.exists() && other.exists());
        drop(writer);
        assert_eq!(remove_local_staging(dir.path(), parquet).unwrap(), [live]);
        assert!(other.exists());
    }

    /// A folder is locked by one holder at a time (another process, or another lock in this
    /// one), and free again once the lock is dropped.
    #[cfg(unix)]
    #[test]
    fn a_locked_folder_is_busy_until_its_lock_goes() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock_folder(dir.path())
            .unwrap()
            .expect("a local folder locks");
        let err = lock_folder(dir.path()).unwrap_err();
        assert!(matches!(&err, StorageError::Busy { path } if path == dir.path()));
        assert!(
            err.to_string().starts_with(&format!(
                "another parqour run is writing into `{}`",
                dir.path().display()
            )),
            "{err}"
        );
        drop(first);
        assert!(lock_folder(dir.path()).unwrap().is_some());
        let missing = dir.path().join("missing");
        assert!(matches!(
            lock_folder(&missing),
            Err(StorageError::Io { path, .. }) if path == missing
        ));
    }

    /// An endpoint that is not an absolute http(s) URL is refused before any request (the
    /// store panicked on it).
    #[test]
    fn endpoints_without_a_scheme_are_refused() {
        for endpoint in ["localhost:9000", "", "ftp://host/", "127.0.0.1:51055"] {
            let options = StorageOptions {
                endpoint: Some(endpoint.into()),
                ..StorageOptions::default()
            };
            let err = resolve("s3://bucket/key", &options).unwrap_err();
            assert!(
                matches!(&err, StorageError::Location { message, .. } if message.contains("is not an http")),
                "{endpoint}: {err}"
            );
        }
        let options = StorageOptions {
            endpoint: Some("http://127.0.0.1:9000".into()),
            ..StorageOptions::default()
        };
        assert!(resolve("s3://bucket/key", &options).is_ok());
    }

    #[test]
    fn within_compares_what_paths_and_urls_name() {
        let cwd = std::env::current_dir().unwrap();
        let abs = |p: &str| cwd.join(p).display().to_string();
        for (inner, outer) in [
            ("out/a/dl", "out/a"),
            ("out/a", "out/a/"),
            ("./out/../out/a/dl", "out/a"),
            (&abs("out/a/dl"), "out/a"),
            (&format!("file://{}", abs("out/a/dl")), "out/a"),
            ("out/a/dl", &format!("file://{}/", abs("out"))),
            ("lake/a", "lake/{data_type}"),
            (
                &format!("file://{}", abs("lake/a")),
                &format!("{}/{{data_type}}", abs("lake")),
            ),
            ("lake/t_a", "lake/t_{data_type}"),
            ("s3://b/t/x", "s3://b/t"),
            ("x", "{data_type}"),
        ] {
            assert!(within(inner, outer), "{inner} within {outer}");
        }
        for (inner, outer) in [
            ("out/ab", "out/a"),
            ("out", "out/a"),
            ("lake2/a", "lake/{data_type}"),
            ("s3://b/t2", "s3://b/t"),
            ("s3://c/t/x", "s3://b/t"),
            ("file:///elsewhere", "out"),
        ] {
            assert!(!within(inner, outer), "{inner} not within {outer}");
        }
    }

    #[test]
    fn payloads_are_signed_only_over_plain_http() {
        assert!(unsigned_payload(None), "AWS itself: https");
        assert!(unsigned_payload(Some("https://s3.eu-west-1.amazonaws.com")));
        assert!(unsigned_payload(Some("HTTPS://minio.internal:9000")));
        assert!(!unsigned_payload(Some("http://127.0.0.1:9000")));
        assert!(!unsigned_payload(Some("localhost:9000")));
    }

    #[test]
    fn an_output_under_a_file_names_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        for out in [file.clone(), file.join("a/b")] {
            let l = resolve(out.to_str().unwrap(), &StorageOptions::default()).unwrap();
            let e = prepare_output(&l).unwrap_err();
            assert!(
                matches!(&e, StorageError::NotAFolder { path } if *path == file),
                "{e}"
            );
        }
        let dir = tmp.path().join("new/folder");
        prepare_output(&resolve(dir.to_str().unwrap(), &StorageOptions::default()).unwrap())
            .unwrap();
        assert!(dir.is_dir());
    }

    /// One store per bucket and settings, however many objects are resolved with the same
    /// options or their clones: each store is a connection pool.
    #[test]
    fn s3_stores_are_shared_by_bucket_and_settings() {
        let options = StorageOptions {
            region: Some("eu-west-1".into()),
            ..StorageOptions::default()
        };
        let a = resolve("s3://shared-bucket/a/1.json", &options).unwrap();
        let b = resolve("s3://shared-bucket/b/2.json", &options.clone()).unwrap();
        assert!(Arc::ptr_eq(&a.store, &b.store));
        let other_bucket = resolve("s3://other-bucket/1.json", &options).unwrap();
        assert!(!Arc::ptr_eq(&a.store, &other_bucket.store));
        // A clone given other settings shares the cache, not the store.
        let mut other_settings = options.clone();
        other_settings.region = Some("us-west-2".into());
        let c = resolve("s3://shared-bucket/a/1.json", &other_settings).unwrap();
        assert!(!Arc::ptr_eq(&a.store, &c.store));
        // Other options (another command, another library caller) build their own.
        let other_options = StorageOptions {
            region: Some("eu-west-1".into()),
            ..StorageOptions::default()
        };
        let d = resolve("s3://shared-bucket/a/1.json", &other_options).unwrap();
        assert!(!Arc::ptr_eq(&a.store, &d.store));
    }

    #[test]
    fn resolves_paths_and_urls() {
        let l = resolve("/tmp/x/y", &StorageOptions::default()).unwrap();
        assert_eq!(l.path.as_ref(), "tmp/x/y");
        assert_eq!(l.url_of(&Path::from("tmp/x/y/a.avro")), "/tmp/x/y/a.avro");
        let l = resolve("/tmp/x/../y/./z", &StorageOptions::default()).unwrap();
        assert_eq!(l.path.as_ref(), "tmp/y/z");
        let l = resolve("file:///tmp/z", &StorageOptions::default()).unwrap();
        assert_eq!(l.path.as_ref(), "tmp/z");
        let l = resolve(
            "s3://bucket/raw/events/",
            &StorageOptions {
                region: Some("us-east-1".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(l.path.as_ref(), "raw/events");
        assert_eq!(
            l.url_of(&Path::from("raw/events/a.avro")),
            "s3://bucket/raw/events/a.avro"
        );
        assert!(resolve("gopher://x", &StorageOptions::default()).is_err());
        assert!(resolve("s3:///nobucket", &StorageOptions::default()).is_err());
        // A slash short is a typo, not a local folder named `s3:`.
        for typo in ["s3:/raw/events/", "s3:raw", "file:/tmp/x"] {
            let err = resolve(typo, &StorageOptions::default()).unwrap_err();
            assert!(err.to_string().contains("a URL needs"), "{typo}: {err}");
        }
    }

    #[test]
    fn s3_keys_are_taken_verbatim() {
        let options = StorageOptions {
            region: Some("us-east-1".into()),
            ..Default::default()
        };
        // What S3 and the AWS CLI call the key: no percent-decoding, no fragment or query.
        for key in [
            "raw/a b.avro",
            "raw/k=v+x%20y.avro",
            "raw/sub dir/#hash?.avro",
            "raw/ü-ñ/100%.avro",
        ] {
            let url = format!("s3://bucket/{key}");
            let l = resolve(&url, &options).unwrap();
            assert_eq!(l.path.as_ref(), key);
            assert_eq!(l.url_of(&l.path), url);
            let l = resolve(&format!("memory://m/{key}"), &options).unwrap();
            assert_eq!(l.path.as_ref(), key);
        }
        // A listed object's URL names it again.
        let l = resolve("s3://bucket/raw/", &options).unwrap();
        let listed = Path::parse("raw/x%41#1.avro").unwrap();
        let again = resolve(&l.url_of(&listed), &options).unwrap();
        assert_eq!(again.path, listed);
        assert_eq!(resolve("s3://bucket", &options).unwrap().path.as_ref(), "");
        // Keys object_store cannot name are refused, naming the location.
        let e = resolve("s3://bucket/a//b.avro", &options).unwrap_err();
        assert!(e.to_string().contains("s3://bucket/a//b.avro"), "{e}");
    }
}
