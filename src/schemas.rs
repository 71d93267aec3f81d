//! Which reader schema every record is read as, and the decode plans that get it there.
//!
//! Stage: planning, between the registry and the decoder. One run reads many writer schemas:
//! the header schema of each plain container file, and, record by record, the schemas that
//! `DataWrapper` envelopes name by fingerprint. All records of one data type are resolved to ONE
//! reader schema, so the data type's table gets one Parquet schema and interleaved versions never
//! cut a file or row group short. The reader schema of a data type is, in order: the one given
//! for it (`--reader-schema TYPE=URL`), the one given for all (`--reader-schema URL`), the newest
//! published in the registry. Plain container files without any of these keep their own writer
//! schema (a new file starts when it changes between inputs).
//!
//! Plans are compiled once per (data type, fingerprint) and shared by every decode task.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use crate::avro::schema::Schema;
use crate::decode::{Plan, TypeOptions, plan_reader, plan_resolved_with};
use crate::registry::Snapshot;

/// The data type key of plain container files when none is named.
pub const PLAIN: &str = "";

type Cached = Result<Arc<Plan>, Arc<str>>;

/// The reader's own plan and the writer's plan resolved to it, or why there is none.
pub type Plans = Result<(Arc<Plan>, Arc<Plan>), Arc<str>>;

/// Reader schemas, the registry and the plans of one run.
#[derive(Debug, Default)]
pub struct SchemaSet {
    registry: Option<Arc<Snapshot>>,
    readers: HashMap<String, Arc<Schema>>,
    default_reader: Option<Arc<Schema>>,
    accept: Option<BTreeSet<String>>,
    plain_data_type: Option<String>,
    types: TypeOptions,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    readers: HashMap<String, Cached>,
    plans: HashMap<(String, i64), Cached>,
}

impl SchemaSet {
    /// No registry, no reader schemas: plain container files are read with their own schema.
    pub fn new() -> Self {
        Self::default()
    }

    /// Looks writer schemas of envelopes up in `registry`.
    pub fn with_registry(mut self, registry: Arc<Snapshot>) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Reads `data_type` (or, with `None`, every data type without its own, and plain container
    /// files) as `schema`.
    pub fn with_reader(mut self, data_type: Option<String>, schema: Schema) -> Self {
        match data_type {
            Some(t) => {
                self.readers.insert(t, Arc::new(schema));
            }
            None => self.default_reader = Some(Arc::new(schema)),
        }
        self
    }

    /// Accepts only these data types; records of others go to the dead-letter place.
    pub fn accepting(mut self, data_types: impl IntoIterator<Item = String>) -> Self {
        self.accept = Some(data_types.into_iter().collect());
        self
    }

    /// The data type of plain container files (their table, and their reader schema).
    pub fn with_plain_data_type(mut self, data_type: Option<String>) -> Self {
        self.plain_data_type = data_type;
        self
    }

    /// Maps types with `types` (e.g. uuids as bytes) instead of the default table.
    pub fn with_types(mut self, types: TypeOptions) -> Self {
        self.types = types;
        self
    }

    /// The type mapping choices.
    pub fn types(&self) -> TypeOptions {
        self.types
    }

    /// True when envelopes can be read.
    pub fn has_registry(&self) -> bool {
        self.registry.is_some()
    }

    /// The accepted data types, if restricted.
    pub fn accepted(&self) -> Option<&BTreeSet<String>> {
        self.accept.as_ref()
    }

    /// The table key of plain container files.
    pub fn plain_key(&self) -> &str {
        self.plain_data_type.as_deref().unwrap_or(PLAIN)
    }

    fn reader_schema(&self, data_type: &str) -> Option<Arc<Schema>> {
        if let Some(s) = self.readers.get(data_type) {
            return Some(s.clone());
        }
        if let Some(s) = &self.default_reader {
            return Some(s.clone());
        }
        let latest = self.registry.as_ref()?.latest(data_type)?;
        Some(Arc::new(latest.schema.clone()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves only finished entries behind.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The reader's own plan for `data_type` (its output schema and default filler).
    pub fn reader_plan(&self, data_type: &str) -> Cached {
        if let Some(p) = self.lock().readers.get(data_type) {
            return p.clone();
        }
        let result: Cached = match self.reader_schema(data_type) {
            Some(s) => plan_reader(&s, self.types).map(Arc::new).map_err(|e| {
                if data_type.is_empty() {
                    format!("the reader schema cannot be converted: {e}").into()
                } else {
                    format!("the reader schema of data type `{data_type}` cannot be converted: {e}")
                        .into()
                }
            }),
            None => Err(format!(
                "no reader schema for data type `{data_type}`: nothing is published under it in the registry"
            )
            .into()),
        };
        self.lock()
            .readers
            .insert(data_type.to_string(), result.clone());
        result
    }

    /// The plans for one envelope: the reader's own (which the decoder of the data type is built
    /// from) and the writer's resolved to it.
    pub fn envelope(
        &self,
        data_type: &str,
        fingerprint: i64,
    ) -> Result<(Arc<Plan>, Arc<Plan>), Arc<str>> {
        if let Some(accept) = &self.accept
            && !accept.contains(data_type)
        {
            let list: Vec<&str> = accept.iter().map(String::as_str).collect();
            return Err(format!(
                "data type `{data_type}` is not one this run converts ({})",
                list.join(", ")
            )
            .into());
        }
        let reader = self.reader_plan(data_type)?;
        let key = (data_type.to_string(), fingerprint);
        if let Some(p) = self.lock().plans.get(&key) {
            return p.clone().map(|p| (reader, p));
        }
        let result: Cached = match self
            .registry
            .as_ref()
            .and_then(|r| r.get(data_type, fingerprint))
        {
            None => Err(format!(
                "unknown writer schema: fingerprint {fingerprint} is not published for data type `{data_type}`"
            )
            .into()),
            Some(writer) => self.resolved(&writer.schema, data_type, &reader),
        };
        self.lock().plans.insert(key, result.clone());
        result.map(|p| (reader, p))
    }

    fn resolved(&self, writer: &Schema, data_type: &str, reader: &Arc<Plan>) -> Cached {
        let reader_schema = self
            .reader_schema(data_type)
            .ok_or_else(|| Arc::<str>::from("no reader schema"))?;
        if *writer == *reader_schema {
            // Records written with the reader schema itself (the newest version, most of the
            // time) are read with its own plan: no resolution ops (enum mappings, union
            // branches resolved one by one), the decoder's fast paths.
            return Ok(reader.clone());
        }
        match plan_resolved_with(writer, &reader_schema, self.types) {
            Ok(mut p) => {
                // One schema object per data type: decoders compare by pointer.
                p.schema = reader.schema.clone();
                Ok(Arc::new(p))
            }
            Err(e) if data_type.is_empty() => {
                Err(format!("cannot be read as the reader schema: {e}").into())
            }
            Err(e) => {
                Err(format!("cannot be read as the reader schema of `{data_type}`: {e}").into())
            }
        }
    }

    /// The plans for a plain container file with `writer` as its schema: `None` when it is
    /// read with its own schema (no reader schema applies), an error when it does not resolve
    /// to the reader schema.
    pub fn plain(&self, writer: &Schema) -> Option<Plans> {
        let key = self.plain_key().to_string();
        self.reader_schema(&key)?;
        let reader = match self.reader_plan(&key) {
            Ok(r) => r,
            Err(e) => return Some(Err(e)),
        };
        Some(self.resolved(writer, &key, &reader).map(|p| (reader, p)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer schema equal to the reader's is read with the reader's own plan (no
    /// resolution); another one is resolved to it, into the same Arrow schema.
    #[test]
    fn the_reader_schema_itself_is_read_with_its_own_plan() {
        let reader = Schema::parse_str(
            r#"{"type":"record","name":"R","fields":[
                {"name":"e","type":{"type":"enum","name":"E","symbols":["A","B"]}},
                {"name":"n","type":["null","long"],"default":null}]}"#,
        )
        .unwrap();
        let older = Schema::parse_str(
            r#"{"type":"record","name":"R","fields":[
                {"name":"e","type":{"type":"enum","name":"E","symbols":["A","B"]}}]}"#,
        )
        .unwrap();
        let set = SchemaSet::new().with_reader(None, reader.clone());
        let (own, same) = set.plain(&reader).unwrap().unwrap();
        assert!(Arc::ptr_eq(&own, &same));
        let (own2, resolved) = set.plain(&older).unwrap().unwrap();
        assert!(Arc::ptr_eq(&own, &own2));
        assert!(!Arc::ptr_eq(&own, &resolved));
        assert!(Arc::ptr_eq(&own.schema, &resolved.schema));
    }
}
