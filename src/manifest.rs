//! Partition manifests: which objects make up one closed partition, and where it goes.
//!
//! Stage: the start of a partition job (`parqour run`). A manifest is parsed raw from JSON
//! ([`ManifestV1`], unknown fields refused), then validated once into a [`Manifest`] before any
//! other I/O. Its [`Manifest::hash`] (SHA-256 of a canonical form) identifies the run: the output
//! files carry its first 16 hex digits as their generation, and the commit marker records it.
//!
//! Version 1 (JSON Schema: `schemas/manifest.v1.schema.json`):
//!
//! ```json
//! {"version": 1,
//!  "table": "s3://lake/events",
//!  "partition": {"dt": "2026-11-26", "hour": "03"},
//!  "inputs": ["s3://raw/events/2026/11/26/03/a.avro",
//!             {"url": "s3://raw/events/2026/11/26/03/b.avro", "size": 1234, "etag": "\"abc\""}],
//!  "compression": "snappy", "row_group_size": "128MiB", "target_file_size": "512MiB"}
//! ```
//!
//! Partition keys keep their order and are lowercase `[a-z0-9_]`; values are escaped as Hive
//! escapes partition paths (`/`, `=`, `%`, `:`, `#`, quotes, control characters ... become `%XX`),
//! so no value can leave its prefix; an empty value becomes `__HIVE_DEFAULT_PARTITION__`.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::storage::MAX_S3_KEY;

/// Errors in a manifest; retrying will not help.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not JSON, or not of the manifest's shape (this includes unknown fields).
    #[error("invalid manifest: {0}")]
    Json(#[from] serde_json::Error),
    /// Of the right shape but not valid.
    #[error("invalid manifest: {0}")]
    Invalid(String),
}

/// The manifest as written (version 1).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestV1 {
    /// Always 1.
    pub version: u32,
    /// URL of the table's root (`s3://bucket/prefix`, `file:///...` or a local path).
    pub table: String,
    /// Partition keys and values, in order.
    pub partition: serde_json::Map<String, serde_json::Value>,
    /// The Avro objects of the partition, in order.
    pub inputs: Vec<InputSpec>,
    /// Parquet compression (`snappy`, `zstd[:level]`, `gzip[:level]`, `lz4`, `none`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
    /// Row group size (e.g. `128MiB`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_group_size: Option<String>,
    /// Target file size (e.g. `512MiB`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_file_size: Option<String>,
    /// How uuids are stored: `string` (the default) or `binary` (16 bytes, UUID logical type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// How decimals wider than Athena's (precision past 38) are stored: `string` (the
    /// default) or `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wide_decimals: Option<String>,
    /// How strings and binaries without a dictionary are encoded: `plain` (the default) or
    /// `delta-length` (`DELTA_LENGTH_BYTE_ARRAY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub byte_array_encoding: Option<String>,
    /// URL of the schema registry, for `DataWrapper` envelopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    /// The data types to convert. Required (one or more) when `table` holds the `{data_type}`
    /// placeholder; otherwise at most one. Records of other types go to the dead-letter place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_types: Option<Vec<String>>,
    /// Reader schema(s): one URL for every data type (and plain container files), or an object
    /// of data type -> URL. Default: the newest schema published in the registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reader_schema: Option<ReaderSchemas>,
    /// Where records that cannot be converted go (outside the table).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter: Option<String>,
    /// The largest fraction of records that may go to the dead-letter place (default 0.001).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_dead_letter_fraction: Option<f64>,
}

/// What a manifest written by a tool (`manifest create`, the trigger, backfills) says beyond
/// its table, partition and inputs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestSettings {
    /// The schema registry.
    pub registry: Option<String>,
    /// The data types to convert.
    pub data_types: Vec<String>,
    /// The dead-letter place.
    pub dead_letter: Option<String>,
}

/// An input as a listing saw it: its URL, size and entity tag, all recorded.
pub fn listed_input(url: &str, size: u64, etag: Option<&str>) -> InputSpec {
    InputSpec::Object(InputObjectSpec {
        url: url.to_string(),
        size: Some(size),
        etag: etag.map(str::to_string),
    })
}

/// The placeholder in a table URL that takes the data type.
pub const DATA_TYPE_PLACEHOLDER: &str = "{data_type}";

/// Bytes kept for the longest name a run writes in a partition
/// (`part-00000-<generation>-<base>-<run>.<codec>.parquet` is about 70).
const MAX_NAME_IN_PARTITION: usize = 128;

/// The longest file name most file systems take, in bytes.
const MAX_FILE_NAME: usize = 255;

/// Reader schemas given in a manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum ReaderSchemas {
    /// One schema (URL) for everything.
    One(String),
    /// A schema (URL) per data type.
    PerType(std::collections::BTreeMap<String, String>),
}

/// One input: a URL, or a URL with the size and entity tag it is expected to have.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum InputSpec {
    /// Just the URL.
    Url(String),
    /// The URL with what the lister saw.
    Object(InputObjectSpec),
}

/// An input with its expected size and entity tag.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct InputObjectSpec {
    /// The object's URL.
    pub url: String,
    /// Its size in bytes; a different size is an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Its entity tag; a different one is an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

impl InputSpec {
    /// The URL.
    pub fn url(&self) -> &str {
        match self {
            InputSpec::Url(u) => u,
            InputSpec::Object(o) => &o.url,
        }
    }
    /// The expected size, if given.
    pub fn size(&self) -> Option<u64> {
        match self {
            InputSpec::Url(_) => None,
            InputSpec::Object(o) => o.size,
        }
    }
    /// The expected entity tag, if given.
    pub fn etag(&self) -> Option<&str> {
        match self {
            InputSpec::Url(_) => None,
            InputSpec::Object(o) => o.etag.as_deref(),
        }
    }
}

/// Whether the objects `held` (URL and entity tag, where known) include every one of `objects`
/// and more: the listing of `objects` is older than that of `held` (late objects arrived in
/// between). An object counts as included when the URLs are equal and, where both give one,
/// so are the entity tags.
pub fn holds_more<'a>(
    held: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    objects: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> bool {
    let held: std::collections::HashMap<&str, Option<&str>> = held.into_iter().collect();
    let mut count = 0;
    let all = objects.into_iter().all(|(url, etag)| {
        count += 1;
        match held.get(url) {
            Some(Some(held)) => etag.is_none_or(|e| e == *held),
            Some(None) => true,
            None => false,
        }
    });
    all && held.len() > count
}

/// A validated manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// As written (canonical form for hashing and for the marker).
    pub raw: ManifestV1,
    /// Partition keys and values, in order.
    pub partition: Vec<(String, String)>,
    /// SHA-256 of the canonical form, hex.
    pub hash: String,
}

impl Manifest {
    /// The inputs' URLs and entity tags (where given), in order.
    pub fn objects(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.raw.inputs.iter().map(|i| (i.url(), i.etag()))
    }

    /// Parses and validates a manifest.
    pub fn parse(json: &str) -> Result<Self, ManifestError> {
        let raw: ManifestV1 = serde_json::from_str(json)?;
        Self::validate(raw)
    }

    /// Validates a parsed manifest.
    pub fn validate(raw: ManifestV1) -> Result<Self, ManifestError> {
        let invalid = |m: String| ManifestError::Invalid(m);
        if raw.version != 1 {
            return Err(invalid(format!(
                "version {} is not supported (this parqour reads version 1)",
                raw.version
            )));
        }
        if raw.table.trim().is_empty() {
            return Err(invalid("`table` is empty".into()));
        }
        if raw.partition.is_empty() {
            return Err(invalid("`partition` needs at least one key".into()));
        }
        let mut partition = Vec::new();
        for (k, v) in &raw.partition {
            if k.is_empty()
                || !k
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(invalid(format!(
                    "partition key `{k}` must be lowercase letters, digits and `_`"
                )));
            }
            let v = v.as_str().ok_or_else(|| {
                invalid(format!(
                    "partition value of `{k}` must be a string, found {v}"
                ))
            })?;
            partition.push((k.clone(), v.to_string()));
        }
        let mut seen = std::collections::HashMap::new();
        for (i, input) in raw.inputs.iter().enumerate() {
            if input.url().trim().is_empty() {
                return Err(invalid(format!("input {i} has an empty URL")));
            }
            // The same object twice would be converted twice: its rows duplicated.
            if let Some(first) = seen.insert(input.url(), i) {
                return Err(invalid(format!(
                    "inputs {first} and {i} are the same object, {}",
                    input.url()
                )));
            }
        }
        let templated = raw.table.contains(DATA_TYPE_PLACEHOLDER);
        let types = raw.data_types.as_deref().unwrap_or_default();
        for t in types {
            if !crate::avro::envelope::valid_data_type(t) {
                return Err(invalid(format!(
                    "data type `{t}` must be letters, digits, `_`, `-` and `.`"
                )));
            }
        }
        if templated && types.is_empty() {
            return Err(invalid(format!(
                "`table` holds {DATA_TYPE_PLACEHOLDER}: list the data types in `data_types`"
            )));
        }
        if !templated && types.len() > 1 {
            return Err(invalid(format!(
                "{} data types but `table` has no {DATA_TYPE_PLACEHOLDER} placeholder",
                types.len()
            )));
        }
        if let Some(f) = raw.max_dead_letter_fraction
            && !(0.0..=1.0).contains(&f)
        {
            return Err(invalid(format!(
                "max_dead_letter_fraction {f} is not between 0 and 1"
            )));
        }
        if let Some(dl) = &raw.dead_letter
            && crate::storage::within(dl, &raw.table)
        {
            return Err(invalid(format!(
                "dead_letter {dl} is inside the table {}; Athena would read it",
                raw.table
            )));
        }
        let canonical = serde_json::to_vec(&raw)?;
        let hash = hex(&Sha256::digest(&canonical));
        let manifest = Self {
            raw,
            partition,
            hash,
        };
        manifest.check_key_lengths()?;
        Ok(manifest)
    }

    /// Refuses a partition whose files could not be written: on S3, a key of the table's (or
    /// the dead-letter place's) path, the partition's and the longest name a run writes there
    /// must fit in S3's 1,024 bytes (the store refuses a longer one with a client error, which
    /// is no outage); in a local folder each segment must fit a file name's 255 bytes.
    fn check_key_lengths(&self) -> Result<(), ManifestError> {
        let segments = self.partition_segments();
        let mut places: Vec<String> = self.tables().into_iter().map(|(_, t)| t).collect();
        places.extend(self.raw.dead_letter.clone());
        for place in places {
            if let Some(key) = crate::storage::s3_key(&place) {
                let key = key.trim_end_matches('/');
                let partition: usize = segments.iter().map(|s| s.len() + 1).sum();
                let longest = key.len() + 1 + partition + MAX_NAME_IN_PARTITION;
                if longest > MAX_S3_KEY {
                    return Err(ManifestError::Invalid(format!(
                        "the partition's keys would be up to {longest} bytes long under \
                         {place} (S3 takes {MAX_S3_KEY}): its values are too long"
                    )));
                }
            } else if (!place.contains("://") || place.starts_with("file://"))
                && let Some(s) = segments.iter().find(|s| s.len() > MAX_FILE_NAME)
            {
                return Err(ManifestError::Invalid(format!(
                    "the partition's folder `{}...` under {place} is {} bytes long (a file \
                     name takes {MAX_FILE_NAME}): its value is too long",
                    s.chars().take(40).collect::<String>(),
                    s.len()
                )));
            }
        }
        Ok(())
    }

    /// A validated manifest of `inputs` as partition `partition` (keys in order) of `table`.
    pub fn of_inputs(
        table: &str,
        partition: &[(String, String)],
        inputs: Vec<InputSpec>,
        settings: ManifestSettings,
    ) -> Result<Self, ManifestError> {
        Self::validate(ManifestV1 {
            version: 1,
            table: table.to_string(),
            partition: partition
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect(),
            inputs,
            compression: None,
            row_group_size: None,
            target_file_size: None,
            uuid: None,
            wide_decimals: None,
            byte_array_encoding: None,
            registry: settings.registry,
            data_types: (!settings.data_types.is_empty()).then_some(settings.data_types),
            reader_schema: None,
            dead_letter: settings.dead_letter,
            max_dead_letter_fraction: None,
        })
    }

    /// The first 16 hex digits of the hash: the generation in output file names.
    pub fn generation(&self) -> &str {
        &self.hash[..16]
    }

    /// The partition's path segments under the table: `k1=v1`, `k2=v2`, escaped.
    pub fn partition_segments(&self) -> Vec<String> {
        self.partition
            .iter()
            .map(|(k, v)| format!("{k}={}", escape_partition_value(v)))
            .collect()
    }

    /// The table URL of each data type to convert (`""` for a table without a placeholder and
    /// no data type named).
    pub fn tables(&self) -> Vec<(String, String)> {
        let types = self.raw.data_types.clone().unwrap_or_default();
        if self.raw.table.contains(DATA_TYPE_PLACEHOLDER) {
            types
                .into_iter()
                .map(|t| {
                    let url = self.raw.table.replace(DATA_TYPE_PLACEHOLDER, &t);
                    (t, url)
                })
                .collect()
        } else {
            let key = types.into_iter().next().unwrap_or_default();
            vec![(key, self.raw.table.clone())]
        }
    }

    /// `k1=v1/k2=v2`, escaped.
    pub fn partition_path(&self) -> String {
        self.partition_segments().join("/")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Escapes a partition value as Hive does (`FileUtils.escapePathName`): control characters and
/// `"#%'*/:=?\{[]^` and DEL become `%XX`; an empty value becomes `__HIVE_DEFAULT_PARTITION__`.
pub fn escape_partition_value(value: &str) -> String {
    if value.is_empty() {
        return "__HIVE_DEFAULT_PARTITION__".to_string();
    }
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        let escape = matches!(
            c,
            '\u{1}'
                ..='\u{1f}'
                    | '"'
                    | '#'
                    | '%'
                    | '\''
                    | '*'
                    | '/'
                    | ':'
                    | '='
                    | '?'
                    | '\\'
                    | '\u{7f}'
                    | '{'
                    | '['
                    | ']'
                    | '^'
        ) || c == '\0';
        if escape {
            out.push_str(&format!("%{:02X}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"{"version": 1,
        "table": "s3://lake/events",
        "partition": {"dt": "2026-11-26", "hour": "03"},
        "inputs": ["s3://raw/events/2026/11/26/03/a.avro",
                   {"url": "s3://raw/events/2026/11/26/03/b.avro", "size": 1234, "etag": "\"abc\""}]}"#;

    /// Objects held include every one listed (same URL; same etag where both give one) and
    /// more.
    #[test]
    fn holding_more_objects() {
        let abc = [("a", Some("1")), ("b", None), ("c", Some("3"))];
        assert!(holds_more(abc, [("a", Some("1")), ("b", Some("2"))]));
        assert!(holds_more(abc, [("a", None), ("c", Some("3"))]));
        assert!(!holds_more(abc, abc), "the same objects are not more");
        assert!(!holds_more(abc, [("a", Some("9"))]), "another version of a");
        assert!(
            !holds_more(abc, [("a", None), ("d", None)]),
            "an object not held"
        );
    }

    /// An object listed twice would be converted twice.
    /// A partition whose keys would pass S3's 1,024 bytes (or, in a folder, whose segment
    /// would pass a file name's 255) is refused before anything is written.
    #[test]
    fn partitions_too_long_to_write_are_refused() {
        let with = |table: &str, value: &str| {
            Manifest::of_inputs(
                table,
                &[
                    ("dt".into(), "2026-11-26".into()),
                    ("v".into(), value.into()),
                ],
                vec![InputSpec::Url("s3://raw/a.avro".into())],
                ManifestSettings::default(),
            )
        };
        // `lake/` + the table's key `events/`, the segments and 128 bytes for a name.
        let fits = 1024 - "events/".len() - "dt=2026-11-26/".len() - "v=/".len() - 128;
        assert!(with("s3://lake/events", &"x".repeat(fits)).is_ok());
        let e = with("s3://lake/events/", &"x".repeat(fits + 1)).unwrap_err();
        assert!(e.to_string().contains("S3 takes 1024"), "{e}");
        // Escaped values count as escaped: `/` is 3 bytes.
        assert!(with("s3://lake/events", &"/".repeat(fits / 3 + 1)).is_err());
        assert!(with("/data/lake/events", &"x".repeat(253)).is_ok());
        let e = with("/data/lake/events", &"x".repeat(254)).unwrap_err();
        assert!(e.to_string().contains("a file name takes 255"), "{e}");
        // `s3a://` is S3 too; an in-memory store has neither limit.
        assert!(with("s3a://lake/events", &"x".repeat(fits)).is_ok());
        assert!(with("s3a://lake/events", &"x".repeat(fits + 1)).is_err());
        assert!(with("memory://lake/events", &"x".repeat(2000)).is_ok());
        // The dead-letter place holds the partition's path too.
        let long_dl = Manifest::of_inputs(
            "s3://lake/events",
            &[("dt".into(), "x".repeat(fits - 100))],
            vec![InputSpec::Url("s3://raw/a.avro".into())],
            ManifestSettings {
                dead_letter: Some(format!("s3://dl/{}", "d".repeat(200))),
                ..ManifestSettings::default()
            },
        )
        .unwrap_err();
        assert!(
            long_dl.to_string().contains("under s3://dl/ddd"),
            "{long_dl}"
        );
    }

    #[test]
    fn an_object_listed_twice_is_refused() {
        let twice = EXAMPLE.replace("b.avro", "a.avro");
        let err = Manifest::parse(&twice).unwrap_err().to_string();
        assert!(err.contains("inputs 0 and 1 are the same object"), "{err}");
    }

    #[test]
    fn parses_the_documented_example() {
        let m = Manifest::parse(EXAMPLE).unwrap();
        assert_eq!(m.partition_path(), "dt=2026-11-26/hour=03");
        assert_eq!(m.raw.inputs[1].size(), Some(1234));
        assert_eq!(m.generation().len(), 16);
        // The hash is stable for the same content and changes with it.
        assert_eq!(Manifest::parse(EXAMPLE).unwrap().hash, m.hash);
        let other = EXAMPLE.replace("a.avro", "c.avro");
        assert_ne!(Manifest::parse(&other).unwrap().hash, m.hash);
    }

    #[test]
    fn keys_keep_their_order() {
        let m = Manifest::parse(&EXAMPLE.replace(
            r#"{"dt": "2026-11-26", "hour": "03"}"#,
            r#"{"hour": "03", "dt": "2026-11-26"}"#,
        ))
        .unwrap();
        assert_eq!(m.partition_path(), "hour=03/dt=2026-11-26");
    }

    #[test]
    fn unknown_fields_and_bad_keys_are_refused() {
        let err =
            Manifest::parse(&EXAMPLE.replace(r#""version": 1,"#, r#""version": 1, "extra": 2,"#))
                .unwrap_err();
        assert!(err.to_string().contains("unknown field `extra`"), "{err}");
        let err = Manifest::parse(&EXAMPLE.replace(r#""dt":"#, r#""Dt":"#)).unwrap_err();
        assert!(err.to_string().contains("partition key `Dt`"), "{err}");
        let err =
            Manifest::parse(&EXAMPLE.replace(r#""version": 1"#, r#""version": 2"#)).unwrap_err();
        assert!(err.to_string().contains("version 2"), "{err}");
        let err =
            Manifest::parse(&EXAMPLE.replace(r#""size": 1234"#, r#""size": 1234, "md5": "x""#))
                .unwrap_err();
        assert!(err.to_string().contains("invalid manifest"), "{err}");
    }

    #[test]
    fn data_types_placeholders_and_dead_letters() {
        let with = |extra: &str, table: &str| {
            Manifest::parse(
                &EXAMPLE
                    .replace(r#""version": 1,"#, &format!(r#""version": 1, {extra}"#))
                    .replace("s3://lake/events", table),
            )
        };
        let m = with(
            r#""data_types": ["click", "view"],"#,
            "s3://lake/{data_type}",
        )
        .unwrap();
        assert_eq!(
            m.tables(),
            [
                ("click".to_string(), "s3://lake/click".to_string()),
                ("view".to_string(), "s3://lake/view".to_string())
            ]
        );
        let err = with("", "s3://lake/{data_type}").unwrap_err();
        assert!(err.to_string().contains("data_types"), "{err}");
        let err = with(r#""data_types": ["a", "b"],"#, "s3://lake/events").unwrap_err();
        assert!(err.to_string().contains("placeholder"), "{err}");
        let err = with(
            r#""dead_letter": "s3://lake/events/dl","#,
            "s3://lake/events",
        )
        .unwrap_err();
        assert!(err.to_string().contains("inside the table"), "{err}");
        with(
            r#""dead_letter": "s3://lake/events-dl","#,
            "s3://lake/events",
        )
        .unwrap();
        let err = with(r#""data_types": ["../x"],"#, "s3://lake/{data_type}").unwrap_err();
        assert!(err.to_string().contains("data type"), "{err}");
        // Absent optional fields do not change the hash of existing manifests.
        assert_eq!(
            Manifest::parse(EXAMPLE).unwrap().hash,
            with("", "s3://lake/events").unwrap().hash
        );
    }

    #[test]
    fn values_cannot_leave_their_prefix() {
        assert_eq!(escape_partition_value("../x"), "..%2Fx");
        assert_eq!(escape_partition_value("a/b=c%d"), "a%2Fb%3Dc%25d");
        assert_eq!(escape_partition_value("line\nbreak"), "line%0Abreak");
        assert_eq!(escape_partition_value("日本 ok"), "日本 ok");
        assert_eq!(escape_partition_value(""), "__HIVE_DEFAULT_PARTITION__");
        assert_eq!(escape_partition_value(".."), "..");
    }
}
