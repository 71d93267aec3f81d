//! The schema registry: writer schemas published as JSON on object storage, by fingerprint.
//!
//! Edge beside the pipeline: producers wrap every event in a `DataWrapper` envelope that names
//! its writer schema by fingerprint; a run loads the registry once ([`Registry::load`]) and
//! resolves each (data type, fingerprint) to a decode plan.
//!
//! Layout under the registry URL (one folder per data type):
//!
//! ```text
//! <registry>/<dataType>/<fingerprint>.avsc             the schema, as published
//! <registry>/<dataType>/_versions/<NNNNNNNN>.json      {"version":N,"fingerprint":"<fp>",...}
//! ```
//!
//! `<fingerprint>` is the CRC-64-AVRO fingerprint of the Parsing Canonical Form as Java's
//! `SchemaNormalization.parsingFingerprint64` returns it: a signed decimal long, exactly the value
//! of the envelope's `schemaFingerprint` field (e.g. `-4824392279771201922.avsc`). Versions give
//! the order of publication: the newest version is the default reader schema of its data type.
//! Both kinds of object are written with create-only PUTs, so two concurrent publishers cannot
//! both take a version number, and a published schema is never changed. A schema with no version
//! object (written by hand, or by a publisher killed between its two PUTs) can still be looked
//! up by fingerprint; it is the newest only if its data type has no versions at all.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::avro::fingerprint::fingerprint;
use crate::avro::schema::{Schema, SchemaError};
use crate::decode::{PlanError, ResolveError, TypeOptions, check_compatible, plan_reader};
use crate::storage::Location;

/// Errors of the registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Storage failed.
    #[error("registry {url}: {source}")]
    Store {
        /// The object or prefix.
        url: String,
        /// The store's error.
        source: object_store::Error,
    },
    /// A published object is not what its name says.
    #[error("registry object {url}: {message}")]
    Corrupt {
        /// The object.
        url: String,
        /// What is wrong.
        message: String,
    },
    /// The schema to publish is invalid.
    #[error("{0}")]
    Schema(#[from] SchemaError),
    /// The schema to publish cannot be converted to Parquet.
    #[error("the schema cannot be converted: {0}")]
    Plan(#[from] PlanError),
    /// The schema to publish is not compatible with the newest published one.
    #[error(
        "refused: not {mode} compatible with version {version} (fingerprint {fingerprint}) of `{data_type}`: {source}"
    )]
    Incompatible {
        /// The data type.
        data_type: String,
        /// The compatibility asked for.
        mode: Compatibility,
        /// The newest published version.
        version: u64,
        /// Its fingerprint.
        fingerprint: i64,
        /// The field that breaks it.
        source: ResolveError,
    },
    /// The fingerprint is published with a schema that differs in what the fingerprint leaves
    /// out (its Parsing Canonical Form drops logical types, defaults and aliases).
    #[error(
        "refused: fingerprint {fingerprint} is published (version {version} of `{data_type}`) with \
         a schema that differs from this one in what fingerprints leave out (logical types, \
         defaults, aliases); data written with either names the same fingerprint and would be \
         read with the published one. Publish such a change with a different fingerprint \
         (e.g. under a new record name), or not at all"
    )]
    SameFingerprint {
        /// The data type.
        data_type: String,
        /// The fingerprint.
        fingerprint: i64,
        /// Its version (0: published without one).
        version: u64,
    },
    /// A data type name that cannot be a folder.
    #[error("invalid data type `{0}`: use letters, digits, `_`, `-` and `.`")]
    DataType(String),
    /// Other publishers kept taking the next version.
    #[error("gave up publishing to `{0}` after repeated concurrent publications")]
    Contended(String),
}

/// Which readers must be able to read data written with a newly published schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Compatibility {
    /// No check.
    None,
    /// The new schema can read data written with every published one (the default: the
    /// converter reads everything with the newest schema).
    #[default]
    Backward,
    /// Every published schema can read data written with the new one.
    Forward,
    /// Both.
    Full,
}

impl std::fmt::Display for Compatibility {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Compatibility::None => "none",
            Compatibility::Backward => "backward",
            Compatibility::Forward => "forward",
            Compatibility::Full => "full",
        })
    }
}

/// One published schema.
#[derive(Debug)]
pub struct Published {
    /// Its data type.
    pub data_type: String,
    /// Its fingerprint.
    pub fingerprint: i64,
    /// Its version, if it has one.
    pub version: Option<u64>,
    /// The JSON text as published.
    pub json: String,
    /// The parsed schema.
    pub schema: Schema,
}

/// The schemas of one data type.
#[derive(Debug, Default)]
pub struct DataTypeSchemas {
    /// By fingerprint.
    pub by_fingerprint: HashMap<i64, Arc<Published>>,
    /// Fingerprints by version, oldest first.
    pub versions: BTreeMap<u64, i64>,
    /// Fingerprints of schemas without a version, oldest first (by modification time).
    unversioned: Vec<i64>,
}

impl DataTypeSchemas {
    /// The newest schema: the highest version, else the newest unversioned one.
    pub fn latest(&self) -> Option<&Arc<Published>> {
        let fp = match self.versions.last_key_value() {
            Some((_, fp)) => *fp,
            None => *self.unversioned.last()?,
        };
        self.by_fingerprint.get(&fp)
    }
}

/// Everything published, as loaded at one moment.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// By data type.
    pub types: BTreeMap<String, DataTypeSchemas>,
}

impl Snapshot {
    /// The schema of `data_type` with `fingerprint`.
    pub fn get(&self, data_type: &str, fingerprint: i64) -> Option<&Arc<Published>> {
        self.types.get(data_type)?.by_fingerprint.get(&fingerprint)
    }

    /// The newest schema of `data_type`.
    pub fn latest(&self, data_type: &str) -> Option<&Arc<Published>> {
        self.types.get(data_type)?.latest()
    }

    /// Schemas published in all.
    pub fn len(&self) -> usize {
        self.types.values().map(|t| t.by_fingerprint.len()).sum()
    }

    /// True when nothing is published.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What [`Registry::publish`] did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PublishOutcome {
    /// The data type.
    pub data_type: String,
    /// The schema's fingerprint.
    pub fingerprint: i64,
    /// Its version.
    pub version: u64,
    /// False when it was already published (nothing written).
    pub created: bool,
    /// The schema object's URL.
    pub url: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct VersionRecord {
    version: u64,
    fingerprint: String,
    #[serde(default)]
    published_at: f64,
    #[serde(default)]
    tool: String,
}

/// A registry at a location.
#[derive(Debug, Clone)]
pub struct Registry {
    location: Location,
}

/// Checks a data type name: it becomes a folder, so no separators or dot-only names.
pub fn check_data_type(data_type: &str) -> Result<(), RegistryError> {
    if crate::avro::envelope::valid_data_type(data_type) {
        Ok(())
    } else {
        Err(RegistryError::DataType(data_type.to_string()))
    }
}

impl Registry {
    /// The registry at `location`.
    pub fn new(location: Location) -> Self {
        Self { location }
    }

    /// Its URL.
    pub fn url(&self) -> &str {
        &self.location.display
    }

    fn child(&self, parts: &[&str]) -> Path {
        let mut p = self.location.path.clone();
        for part in parts {
            p = p.join(*part);
        }
        p
    }

    fn store_err(&self, path: &Path) -> impl Fn(object_store::Error) -> RegistryError + '_ {
        let url = self.location.url_of(path);
        move |source| RegistryError::Store {
            url: url.clone(),
            source,
        }
    }

    /// Loads every published schema (one listing, then the objects, 16 at a time).
    pub async fn load(&self) -> Result<Snapshot, RegistryError> {
        self.load_where(|_| true).await
    }

    /// Loads the schemas of `data_types` only (all of them when it is empty): a registry
    /// object of another data type that cannot be loaded (a recursive schema, say) does not
    /// stop a run that does not read it.
    pub async fn load_types(&self, data_types: &[String]) -> Result<Snapshot, RegistryError> {
        if data_types.is_empty() {
            return self.load().await;
        }
        self.load_where(|t| data_types.iter().any(|d| d == t)).await
    }

    /// Loads the schemas of one data type.
    pub async fn load_type(&self, data_type: &str) -> Result<DataTypeSchemas, RegistryError> {
        check_data_type(data_type)?;
        let mut snapshot = self.load_where(|t| t == data_type).await?;
        Ok(snapshot.types.remove(data_type).unwrap_or_default())
    }

    async fn load_where(&self, want: impl Fn(&str) -> bool) -> Result<Snapshot, RegistryError> {
        let base = &self.location.path;
        let listing: Vec<_> = if self.location.local.as_ref().is_some_and(|p| !p.exists()) {
            Vec::new()
        } else {
            self.location
                .store
                .list(Some(base))
                .try_collect()
                .await
                .or_else(|e| match e {
                    object_store::Error::NotFound { .. } => Ok(Vec::new()),
                    e => Err(e),
                })
                .map_err(self.store_err(base))?
        };
        let mut schemas = Vec::new();
        let mut versions = Vec::new();
        for meta in listing {
            let Some(rel) = meta.location.prefix_match(base) else {
                continue;
            };
            let parts: Vec<String> = rel.map(|p| p.as_ref().to_string()).collect();
            match parts.as_slice() {
                [dt, file] if want(dt) => {
                    if let Some(fp) = file.strip_suffix(".avsc") {
                        schemas.push((dt.clone(), fp.to_string(), meta));
                    }
                }
                [dt, dir, file] if dir == "_versions" && want(dt) && file.ends_with(".json") => {
                    versions.push((dt.clone(), meta));
                }
                _ => {}
            }
        }
        let store = self.location.store.clone();
        let fetched: Vec<(String, String, object_store::ObjectMeta, bytes::Bytes)> =
            futures::stream::iter(schemas.into_iter().map(|(dt, fp, meta)| {
                let store = store.clone();
                async move {
                    let bytes = store.get(&meta.location).await?.bytes().await?;
                    Ok::<_, object_store::Error>((dt, fp, meta, bytes))
                }
            }))
            .buffered(16)
            .try_collect()
            .await
            .map_err(self.store_err(base))?;
        let mut snapshot = Snapshot::default();
        let mut modified = HashMap::new();
        for (dt, fp_text, meta, bytes) in fetched {
            let url = self.location.url_of(&meta.location);
            let corrupt = |message: String| RegistryError::Corrupt {
                url: url.clone(),
                message,
            };
            // As `publish` names them: one name per fingerprint (`+5`, `05` would be a second).
            let fp: i64 = fp_text
                .parse()
                .ok()
                .filter(|fp: &i64| fp.to_string() == fp_text)
                .ok_or_else(|| {
                    corrupt(format!(
                        "`{fp_text}` is not a fingerprint as publish writes it (a decimal i64)"
                    ))
                })?;
            let json = String::from_utf8(bytes.to_vec())
                .map_err(|_| corrupt("the schema is not UTF-8".into()))?;
            let actual = fingerprint(&json).map_err(|e| corrupt(e.to_string()))?;
            if actual != fp {
                return Err(corrupt(format!(
                    "the schema's fingerprint is {actual}, not {fp}"
                )));
            }
            let schema = Schema::parse_str(&json).map_err(|e| corrupt(e.to_string()))?;
            modified.insert((dt.clone(), fp), meta.last_modified);
            snapshot
                .types
                .entry(dt.clone())
                .or_default()
                .by_fingerprint
                .insert(
                    fp,
                    Arc::new(Published {
                        data_type: dt,
                        fingerprint: fp,
                        version: None,
                        json,
                        schema,
                    }),
                );
        }
        let records: Vec<(String, object_store::ObjectMeta, bytes::Bytes)> =
            futures::stream::iter(versions.into_iter().map(|(dt, meta)| {
                let store = store.clone();
                async move {
                    let bytes = store.get(&meta.location).await?.bytes().await?;
                    Ok::<_, object_store::Error>((dt, meta, bytes))
                }
            }))
            .buffered(16)
            .try_collect()
            .await
            .map_err(self.store_err(base))?;
        for (dt, meta, bytes) in records {
            let url = self.location.url_of(&meta.location);
            let record: VersionRecord =
                serde_json::from_slice(&bytes).map_err(|e| RegistryError::Corrupt {
                    url: url.clone(),
                    message: e.to_string(),
                })?;
            let fp: i64 = record
                .fingerprint
                .parse()
                .map_err(|_| RegistryError::Corrupt {
                    url: url.clone(),
                    message: format!("`{}` is not a fingerprint", record.fingerprint),
                })?;
            let types = snapshot.types.entry(dt).or_default();
            if !types.by_fingerprint.contains_key(&fp) {
                return Err(RegistryError::Corrupt {
                    url,
                    message: format!(
                        "version {} names fingerprint {fp}, which has no schema",
                        record.version
                    ),
                });
            }
            types.versions.insert(record.version, fp);
        }
        for (dt, types) in &mut snapshot.types {
            let versioned: std::collections::HashSet<i64> =
                types.versions.values().copied().collect();
            let mut rest: Vec<i64> = types
                .by_fingerprint
                .keys()
                .copied()
                .filter(|fp| !versioned.contains(fp))
                .collect();
            rest.sort_by_key(|fp| (modified.get(&(dt.clone(), *fp)).copied(), *fp));
            types.unversioned = rest;
            for (version, fp) in &types.versions {
                if let Some(p) = types.by_fingerprint.get_mut(fp)
                    && let Some(p) = Arc::get_mut(p)
                {
                    p.version.get_or_insert(*version);
                }
            }
        }
        Ok(snapshot)
    }

    /// Publishes `json` as a schema of `data_type`, after checking it against the newest one.
    pub async fn publish(
        &self,
        data_type: &str,
        json: &str,
        compatibility: Compatibility,
    ) -> Result<PublishOutcome, RegistryError> {
        check_data_type(data_type)?;
        let schema = Schema::parse_str_strict(json)?;
        // The newest version is the reader of its data type: its defaults are held to it.
        plan_reader(&schema, TypeOptions::default())?;
        let fp = fingerprint(json)?;
        let schema_path = self.child(&[data_type, &format!("{fp}.avsc")]);
        for _ in 0..8 {
            let current = self.load_type(data_type).await?;
            if let Some(published) = current.by_fingerprint.get(&fp)
                && published.schema != schema
            {
                return Err(RegistryError::SameFingerprint {
                    data_type: data_type.to_string(),
                    fingerprint: fp,
                    version: published.version.unwrap_or(0),
                });
            }
            if let Some((version, _)) = current.versions.iter().find(|(_, f)| **f == fp) {
                return Ok(PublishOutcome {
                    data_type: data_type.to_string(),
                    fingerprint: fp,
                    version: *version,
                    created: false,
                    url: self.location.url_of(&schema_path),
                });
            }
            // Against every published schema, newest first: data of each may be read with the
            // newest.
            let mut published: Vec<&Arc<Published>> = current
                .by_fingerprint
                .values()
                .filter(|p| p.fingerprint != fp)
                .collect();
            published.sort_by_key(|p| std::cmp::Reverse(p.version));
            for old in published {
                let checks: &[(&Schema, &Schema)] = match compatibility {
                    Compatibility::None => &[],
                    Compatibility::Backward => &[(&old.schema, &schema)],
                    Compatibility::Forward => &[(&schema, &old.schema)],
                    Compatibility::Full => &[(&old.schema, &schema), (&schema, &old.schema)],
                };
                for (writer, reader) in checks {
                    check_compatible(writer, reader).map_err(|source| {
                        RegistryError::Incompatible {
                            data_type: data_type.to_string(),
                            mode: compatibility,
                            version: old.version.unwrap_or(0),
                            fingerprint: old.fingerprint,
                            source,
                        }
                    })?;
                }
            }
            if !current.by_fingerprint.contains_key(&fp) {
                self.create(&schema_path, json.as_bytes().to_vec()).await?;
            }
            let version = current.versions.last_key_value().map_or(1, |(v, _)| v + 1);
            let record = VersionRecord {
                version,
                fingerprint: fp.to_string(),
                published_at: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_secs_f64()),
                tool: format!("parqour {}", env!("CARGO_PKG_VERSION")),
            };
            let record_path = self.child(&[data_type, "_versions", &format!("{version:08}.json")]);
            let body = serde_json::to_vec(&record).map_err(|e| RegistryError::Corrupt {
                url: self.location.url_of(&record_path),
                message: e.to_string(),
            })?;
            match self.create(&record_path, body).await {
                Ok(()) => {
                    return Ok(PublishOutcome {
                        data_type: data_type.to_string(),
                        fingerprint: fp,
                        version,
                        created: true,
                        url: self.location.url_of(&schema_path),
                    });
                }
                // Another publisher took this version: look again and retry.
                Err(RegistryError::Store {
                    source: object_store::Error::AlreadyExists { .. },
                    ..
                }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(RegistryError::Contended(data_type.to_string()))
    }

    /// Writes an object that must not exist yet; an existing schema object with the same
    /// content is fine (it is named by its content's fingerprint).
    async fn create(&self, path: &Path, body: Vec<u8>) -> Result<(), RegistryError> {
        if let Some(file) = crate::storage::local_file(&self.location, path)
            && let Some(parent) = file.parent()
        {
            let _ = std::fs::create_dir_all(parent);
        }
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .location
            .store
            .put_opts(path, PutPayload::from(body), opts)
            .await
        {
            Ok(_) => Ok(()),
            Err(object_store::Error::AlreadyExists { .. }) if path.as_ref().ends_with(".avsc") => {
                Ok(())
            }
            Err(source) => Err(self.store_err(path)(source)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{StorageOptions, register_memory_store, resolve};

    fn registry(name: &str) -> Registry {
        register_memory_store(name, Arc::new(object_store::memory::InMemory::new()));
        Registry::new(
            resolve(
                &format!("memory://{name}/schemas"),
                &StorageOptions::default(),
            )
            .unwrap(),
        )
    }

    const V1: &str = r#"{"type":"record","name":"Click","fields":[{"name":"id","type":"int"}]}"#;
    const V2: &str = r#"{"type":"record","name":"Click","fields":[{"name":"id","type":"long"},
        {"name":"page","type":"string","default":""}]}"#;
    const BAD: &str = r#"{"type":"record","name":"Click","fields":[{"name":"id","type":"long"},
        {"name":"user","type":"string"}]}"#;

    #[tokio::test]
    async fn publish_list_and_refuse_incompatible() {
        let r = registry("reg1");
        let a = r
            .publish("click", V1, Compatibility::Backward)
            .await
            .unwrap();
        assert_eq!((a.version, a.created), (1, true));
        assert_eq!(a.fingerprint, fingerprint(V1).unwrap());
        let again = r
            .publish("click", V1, Compatibility::Backward)
            .await
            .unwrap();
        assert_eq!((again.version, again.created), (1, false));
        let b = r
            .publish("click", V2, Compatibility::Backward)
            .await
            .unwrap();
        assert_eq!(b.version, 2);
        let err = r
            .publish("click", BAD, Compatibility::Backward)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("field `user`"), "{err}");
        // Forward: version 2 could read the new data (`user` is ignored), but version 1 could
        // not (a long is no int).
        let err = r
            .publish("click", BAD, Compatibility::Forward)
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("not forward compatible with version 1"),
            "{err}"
        );
        let c = r.publish("click", BAD, Compatibility::None).await.unwrap();
        assert_eq!(c.version, 3);
        let snap = r.load().await.unwrap();
        assert_eq!(snap.len(), 3);
        assert_eq!(snap.latest("click").unwrap().fingerprint, c.fingerprint);
        assert_eq!(snap.get("click", a.fingerprint).unwrap().version, Some(1));
        assert!(r.publish("../x", V1, Compatibility::None).await.is_err());
    }

    /// The converter reads the data of every version with the newest: a new version must
    /// read them all, not only the newest before it.
    #[tokio::test]
    async fn compatibility_is_checked_against_every_version() {
        let r = registry("reg3");
        let v1 = r#"{"type":"record","name":"E","fields":[{"name":"id","type":"long"},
            {"name":"legacy","type":"int"}]}"#;
        let v2 = r#"{"type":"record","name":"E","fields":[{"name":"id","type":"long"}]}"#;
        let v3 = r#"{"type":"record","name":"E","fields":[{"name":"id","type":"long"},
            {"name":"legacy","type":"string","default":""}]}"#;
        for v in [v1, v2] {
            r.publish("e", v, Compatibility::Backward).await.unwrap();
        }
        let err = r
            .publish("e", v3, Compatibility::Backward)
            .await
            .unwrap_err();
        assert!(
            matches!(err, RegistryError::Incompatible { version: 1, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("field `legacy`"), "{err}");
        // A first version too is held to its defaults: it is the data type's reader.
        let bad_default = r#"{"type":"record","name":"Q","fields":[
            {"name":"k","type":["null",{"type":"enum","name":"K","symbols":["A"],"default":"B"}]}]}"#;
        let err = r
            .publish("q", bad_default, Compatibility::Backward)
            .await
            .unwrap_err();
        assert!(matches!(err, RegistryError::Plan(_)), "{err}");
        assert!(err.to_string().contains("the default `B`"), "{err}");
    }

    /// Fingerprints leave out logical types, defaults and aliases: a schema that differs from
    /// a published one only there cannot be published (its data would be read as the
    /// published one's); one that differs only in layout or docs is the same schema.
    #[tokio::test]
    async fn a_change_the_fingerprint_does_not_see_is_refused() {
        let r = registry("reg4");
        let v1 = r#"{"type":"record","name":"P","fields":[
            {"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}},
            {"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}}]}"#;
        r.publish("p", v1, Compatibility::Backward).await.unwrap();
        for changed in [
            v1.replace(r#""scale":2"#, r#""scale":3"#),
            v1.replace("timestamp-millis", "timestamp-micros"),
            v1.replace(r#""name":"at","#, r#""name":"at","default":0,"#),
        ] {
            assert_eq!(fingerprint(&changed).unwrap(), fingerprint(v1).unwrap());
            let err = r
                .publish("p", &changed, Compatibility::None)
                .await
                .unwrap_err();
            assert!(
                matches!(err, RegistryError::SameFingerprint { version: 1, .. }),
                "{changed}: {err}"
            );
        }
        let relaid = format!(
            "\n  {}",
            v1.replace(r#""name":"P","#, r#""name":"P","doc":"d","#)
        );
        let again = r.publish("p", &relaid, Compatibility::None).await.unwrap();
        assert_eq!((again.version, again.created), (1, false));
    }

    /// A run that names its data types loads only theirs: a schema of another type that
    /// parqour cannot read (two fields of one name) stops only runs that read that type.
    #[tokio::test]
    async fn runs_load_only_the_data_types_they_convert() {
        let r = registry("reg6");
        r.publish("click", V1, Compatibility::None).await.unwrap();
        let node = r#"{"type":"record","name":"Node","fields":[
            {"name":"next","type":"long"},{"name":"next","type":"int"}]}"#;
        let fp = fingerprint(node).unwrap();
        let path = r.child(&["other", &format!("{fp}.avsc")]);
        r.location.store.put(&path, node.into()).await.unwrap();
        let err = r.load().await.unwrap_err();
        assert!(err.to_string().contains("duplicate field `next`"), "{err}");
        let only = r.load_types(&["click".into()]).await.unwrap();
        assert_eq!(only.len(), 1);
        assert!(r.load_types(&["other".into()]).await.is_err());
    }

    #[tokio::test]
    async fn a_tampered_schema_is_refused() {
        let r = registry("reg2");
        let fp = fingerprint(V1).unwrap();
        let path = r.child(&["click", &format!("{fp}.avsc")]);
        r.location.store.put(&path, V2.into()).await.unwrap();
        let err = r.load().await.unwrap_err();
        assert!(err.to_string().contains("fingerprint"), "{err}");
        // A second name for a fingerprint (`0<fp>`, `+<fp>` parse as the same number).
        let r = registry("reg5");
        r.publish("click", V1, Compatibility::None).await.unwrap();
        for name in [format!("0{fp}"), format!("+{fp}")] {
            let path = r.child(&["click", &format!("{name}.avsc")]);
            r.location.store.put(&path, V1.into()).await.unwrap();
            let err = r.load().await.unwrap_err();
            assert!(
                err.to_string().contains("not a fingerprint as publish"),
                "{err}"
            );
            r.location.store.delete(&path).await.unwrap();
        }
        assert_eq!(r.load().await.unwrap().len(), 1);
    }
}
