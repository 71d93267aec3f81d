//! Where a data type's raw Avro objects and its table live: URL templates for one hour.
//!
//! Edge: the trigger ([`crate::trigger`]) and backfills ([`crate::backfill`]) turn "data type T,
//! hour H" into a raw prefix, a table, partition values and a manifest location with the same
//! [`Layout`]; an S3 notification goes the other way, from an object key back to T and H
//! ([`Layout::match_raw_prefix`]).
//!
//! A template is text with placeholders: `{data_type}`, `{yyyy}`, `{MM}`, `{dd}`, `{HH}` (the
//! hour, UTC, zero-padded), and `{table}` in the manifest root. Defaults:
//!
//! | setting | environment | default |
//! |---|---|---|
//! | table | `PARQOUR_TABLE` | (required), e.g. `s3://lake/{data_type}` |
//! | raw prefix | `PARQOUR_RAW_PREFIX` | (required for S3 events and backfills), e.g. `s3://raw/{data_type}/{yyyy}/{MM}/{dd}/{HH}/` |
//! | partition | `PARQOUR_PARTITION` | `dt={yyyy}-{MM}-{dd},hour={HH}` |
//! | manifest root | `PARQOUR_MANIFEST_ROOT` | `{table}/_manifests` |
//!
//! A partition's manifest is written to `<manifest root>/<k1>=<v1>/<k2>=<v2>/manifest.json`
//! ([`manifest_url`]): one stable place per partition, so a rerun of its job (a Batch retry)
//! always reads the newest listing.
//!
//! Limitations: hours in UTC only; `{data_type}` matches one path segment (no `/`); the table and
//! manifest root cannot depend on the hour.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Timelike, Utc};

use crate::manifest::Manifest;

/// Environment variable of the table template.
pub const ENV_TABLE: &str = "PARQOUR_TABLE";
/// Environment variable of the raw prefix template.
pub const ENV_RAW_PREFIX: &str = "PARQOUR_RAW_PREFIX";
/// Environment variable of the partition templates (`key=template`, comma-separated).
pub const ENV_PARTITION: &str = "PARQOUR_PARTITION";
/// Environment variable of the manifest root template.
pub const ENV_MANIFEST_ROOT: &str = "PARQOUR_MANIFEST_ROOT";
/// The schema registry written into manifests.
pub const ENV_REGISTRY: &str = "PARQOUR_REGISTRY";
/// The dead-letter place written into manifests (`{data_type}` allowed).
pub const ENV_DEAD_LETTER: &str = "PARQOUR_DEAD_LETTER";

/// What manifests written by the trigger and backfills say about reading records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordSettings {
    /// The schema registry URL (for DataWrapper envelopes).
    pub registry: Option<String>,
    /// The dead-letter URL; `{data_type}` takes the data type.
    pub dead_letter: Option<String>,
}
/// The default partition templates.
pub const DEFAULT_PARTITION: [&str; 2] = ["dt={yyyy}-{MM}-{dd}", "hour={HH}"];
/// The default manifest root.
pub const DEFAULT_MANIFEST_ROOT: &str = "{table}/_manifests";
/// The file name of a partition's manifest under the manifest root.
pub const MANIFEST_FILE: &str = "manifest.json";

/// A template or a time that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// The template text is malformed.
    #[error("template `{template}`: {message}")]
    Template {
        /// The template.
        template: String,
        /// What is wrong.
        message: String,
    },
    /// A partition template is not `key=template`.
    #[error("partition `{0}`: expected key=template, e.g. dt={{yyyy}}-{{MM}}-{{dd}}")]
    Partition(String),
    /// A setting the operation needs is missing.
    #[error("{0}")]
    Missing(String),
    /// An hour that cannot be parsed.
    #[error("`{0}`: expected an hour as YYYY-MM-DDTHH (UTC), e.g. 2026-11-01T00")]
    Hour(String),
}

/// A placeholder of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Var {
    DataType,
    Year,
    Month,
    Day,
    Hour,
    Table,
}

impl Var {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "data_type" => Var::DataType,
            "yyyy" => Var::Year,
            "MM" => Var::Month,
            "dd" => Var::Day,
            "HH" => Var::Hour,
            "table" => Var::Table,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Var::DataType => "data_type",
            Var::Year => "yyyy",
            Var::Month => "MM",
            Var::Day => "dd",
            Var::Hour => "HH",
            Var::Table => "table",
        }
    }

    /// Digits it stands for, when fixed.
    fn width(self) -> Option<usize> {
        match self {
            Var::Year => Some(4),
            Var::Month | Var::Day | Var::Hour => Some(2),
            Var::DataType | Var::Table => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var(Var),
}

/// A URL or value template with `{placeholder}`s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    text: String,
    pieces: Vec<Piece>,
}

/// What a template is filled with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vars {
    /// The data type.
    pub data_type: String,
    /// The hour (UTC, whole).
    pub hour: NaiveDateTime,
    /// The table URL (for the manifest root).
    pub table: Option<String>,
}

impl Vars {
    /// A data type and an hour.
    pub fn of(data_type: &str, hour: NaiveDateTime) -> Self {
        Self {
            data_type: data_type.to_string(),
            hour,
            table: None,
        }
    }
}

impl Template {
    /// Parses a template.
    pub fn parse(text: &str) -> Result<Self, LayoutError> {
        let err = |message: String| LayoutError::Template {
            template: text.to_string(),
            message,
        };
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find(['{', '}']) {
            if rest[open..].starts_with('}') {
                return Err(err("`}` without `{`".into()));
            }
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| err("`{` without `}`".into()))?;
            let name = &after[..close];
            let var = Var::parse(name).ok_or_else(|| {
                err(format!(
                    "unknown placeholder `{{{name}}}`: use {{data_type}}, {{yyyy}}, {{MM}}, {{dd}}, {{HH}} or {{table}}"
                ))
            })?;
            pieces.push(Piece::Var(var));
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        Ok(Self {
            text: text.to_string(),
            pieces,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn uses(&self, var: Var) -> bool {
        self.pieces.contains(&Piece::Var(var))
    }

    fn vars(&self) -> impl Iterator<Item = Var> + '_ {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Var(v) => Some(*v),
            Piece::Text(_) => None,
        })
    }

    /// An error unless every placeholder is one of `allowed`.
    fn only(&self, allowed: &[Var], what: &str) -> Result<(), LayoutError> {
        match self.vars().find(|v| !allowed.contains(v)) {
            None => Ok(()),
            Some(v) => Err(LayoutError::Template {
                template: self.text.clone(),
                message: format!("{what} cannot use {{{}}}", v.name()),
            }),
        }
    }

    /// Fills the placeholders.
    pub fn render(&self, vars: &Vars) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Var(v) => out.push_str(&match v {
                    Var::DataType => vars.data_type.clone(),
                    Var::Year => format!("{:04}", vars.hour.year()),
                    Var::Month => format!("{:02}", vars.hour.month()),
                    Var::Day => format!("{:02}", vars.hour.day()),
                    Var::Hour => format!("{:02}", vars.hour.hour()),
                    Var::Table => vars.table.clone().unwrap_or_default(),
                }),
            }
        }
        out
    }

    /// The placeholders' values if `text` is this template filled in: the data type matches
    /// one or more characters other than `/`, the time fields their digits; a placeholder used
    /// twice must match the same text twice. `None` when it does not match or is not a valid
    /// date and hour.
    pub fn match_text(&self, text: &str) -> Option<Vars> {
        let mut found: [Option<&str>; 6] = [None; 6];
        if !match_pieces(&self.pieces, text, &mut found) {
            return None;
        }
        // A field the template lacks takes its first value; one it has must be valid as it
        // is (month or day `00` is no date, not the first one).
        let num = |i: usize, absent: u32| found[i].map_or(Some(absent), |s| s.parse().ok());
        let year = found[1].map_or(Some(1970), |s| s.parse::<i32>().ok())?;
        let date = NaiveDate::from_ymd_opt(year, num(2, 1)?, num(3, 1)?)?;
        let hour = date.and_hms_opt(num(4, 0)?, 0, 0)?;
        Some(Vars {
            data_type: found[0].unwrap_or_default().to_string(),
            hour,
            table: None,
        })
    }
}

fn slot(var: Var) -> usize {
    match var {
        Var::DataType => 0,
        Var::Year => 1,
        Var::Month => 2,
        Var::Day => 3,
        Var::Hour => 4,
        Var::Table => 5,
    }
}

fn match_pieces<'t>(pieces: &[Piece], text: &'t str, found: &mut [Option<&'t str>; 6]) -> bool {
    let Some((first, rest)) = pieces.split_first() else {
        return text.is_empty();
    };
    match first {
        Piece::Text(t) => text
            .strip_prefix(t.as_str())
            .is_some_and(|after| match_pieces(rest, after, found)),
        Piece::Var(var) => {
            let i = slot(*var);
            let candidates: Vec<usize> = match var.width() {
                Some(w) => {
                    let ok = text.len() >= w && text.as_bytes()[..w].iter().all(u8::is_ascii_digit);
                    if ok { vec![w] } else { vec![] }
                }
                None => {
                    // One or more characters up to the first `/` (tried longest first).
                    let limit = text.find('/').unwrap_or(text.len());
                    (1..=limit)
                        .rev()
                        .filter(|&n| text.is_char_boundary(n))
                        .collect()
                }
            };
            for n in candidates {
                let value = &text[..n];
                if let Some(previous) = found[i]
                    && previous != value
                {
                    continue;
                }
                let saved = found[i];
                found[i] = Some(value);
                if match_pieces(rest, &text[n..], found) {
                    return true;
                }
                found[i] = saved;
            }
            false
        }
    }
}

/// The templates of one deployment.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The table URL.
    pub table: Template,
    /// Settings written into every manifest: the schema registry and the dead-letter place.
    pub records: RecordSettings,
    /// The raw prefix of an hour.
    pub raw_prefix: Option<Template>,
    /// Partition keys and their value templates, in order.
    pub partition: Vec<(String, Template)>,
    /// Where manifests are written.
    pub manifest_root: Template,
}

impl Layout {
    /// A layout from template texts; `partition` items are `key=template` (defaults when
    /// empty), `manifest_root` defaults to `{table}/_manifests`.
    pub fn new(
        table: &str,
        raw_prefix: Option<&str>,
        partition: &[String],
        manifest_root: Option<&str>,
    ) -> Result<Self, LayoutError> {
        let table = Template::parse(table)?;
        table.only(&[Var::DataType], "the table")?;
        let raw_prefix = raw_prefix.map(Template::parse).transpose()?;
        if let Some(raw) = &raw_prefix {
            raw.only(
                &[Var::DataType, Var::Year, Var::Month, Var::Day, Var::Hour],
                "the raw prefix",
            )?;
        }
        let defaults: Vec<String> = DEFAULT_PARTITION.iter().map(|s| s.to_string()).collect();
        let items = if partition.is_empty() {
            &defaults
        } else {
            partition
        };
        let mut keys = Vec::new();
        for item in items {
            let (key, template) = item
                .split_once('=')
                .ok_or_else(|| LayoutError::Partition(item.clone()))?;
            let key = key.trim();
            if key.is_empty() {
                return Err(LayoutError::Partition(item.clone()));
            }
            keys.push((key.to_string(), Template::parse(template)?));
        }
        for (_, template) in &keys {
            template.only(
                &[Var::DataType, Var::Year, Var::Month, Var::Day, Var::Hour],
                "a partition value",
            )?;
            // Each hour must have its own raw prefix, or one hour's partition would get the
            // objects of others (and an S3 event could not tell which hour closed).
            if let Some(raw) = &raw_prefix
                && let Some(missing) = template.vars().find(|v| !raw.uses(*v))
            {
                return Err(LayoutError::Template {
                    template: template.text.clone(),
                    message: format!(
                        "uses {{{}}}, which the raw prefix `{}` does not",
                        missing.name(),
                        raw.text
                    ),
                });
            }
        }
        // And each raw prefix its own partition: with a daily partition over hourly raw
        // prefixes, every hour's manifest replaced the day's, which then held the last hour.
        if let Some(raw) = &raw_prefix {
            let time = [Var::Year, Var::Month, Var::Day, Var::Hour];
            if let Some(missing) = time
                .into_iter()
                .find(|v| raw.uses(*v) && !keys.iter().any(|(_, t)| t.uses(*v)))
            {
                return Err(LayoutError::Template {
                    template: raw.text.clone(),
                    message: format!(
                        "uses {{{}}}, which no partition value does: several raw prefixes would \
                         make one partition, each replacing the others' objects",
                        missing.name()
                    ),
                });
            }
        }
        let manifest_root = Template::parse(manifest_root.unwrap_or(DEFAULT_MANIFEST_ROOT))?;
        manifest_root.only(&[Var::DataType, Var::Table], "the manifest root")?;
        Ok(Self {
            table,
            records: RecordSettings::default(),
            raw_prefix,
            partition: keys,
            manifest_root,
        })
    }

    /// The same layout, writing `records` into its manifests.
    pub fn with_records(mut self, records: RecordSettings) -> Self {
        self.records = records;
        self
    }

    /// The table URL of a data type.
    pub fn table_url(&self, data_type: &str) -> String {
        self.table.render(&Vars::of(data_type, epoch()))
    }

    /// The raw prefix of `vars`' hour; an error when no raw prefix template is configured.
    pub fn raw_prefix_url(&self, vars: &Vars) -> Result<String, LayoutError> {
        let raw = self.raw_prefix.as_ref().ok_or_else(|| {
            LayoutError::Missing(format!(
                "no raw prefix template: give --raw-prefix or {ENV_RAW_PREFIX}, e.g. s3://raw/{{data_type}}/{{yyyy}}/{{MM}}/{{dd}}/{{HH}}/"
            ))
        })?;
        Ok(raw.render(vars))
    }

    /// Partition keys and values of `vars`' hour.
    pub fn partition_values(&self, vars: &Vars) -> Vec<(String, String)> {
        self.partition
            .iter()
            .map(|(k, t)| (k.clone(), t.render(vars)))
            .collect()
    }

    /// The manifest root of a data type's table (no trailing `/`).
    pub fn manifest_root_of(&self, data_type: &str, table: &str) -> String {
        self.manifest_root_url(&Vars::of(data_type, epoch()), table)
    }

    /// The manifest root of a table (no trailing `/`).
    pub fn manifest_root_url(&self, vars: &Vars, table: &str) -> String {
        let vars = Vars {
            table: Some(table.trim_end_matches('/').to_string()),
            ..vars.clone()
        };
        self.manifest_root
            .render(&vars)
            .trim_end_matches('/')
            .to_string()
    }

    /// The data type and hour whose raw prefix is `prefix` (a URL ending in `/`), if any.
    pub fn match_raw_prefix(&self, prefix: &str) -> Option<Vars> {
        let raw = self.raw_prefix.as_ref()?;
        let normalized = |s: &str| format!("{}/", s.trim_end_matches('/'));
        raw.match_text(&normalized(prefix)).or_else(|| {
            // A template without a trailing `/` names the same prefix.
            let t = Template::parse(&normalized(raw.as_str())).ok()?;
            t.match_text(&normalized(prefix))
        })
    }
}

/// Where the manifest of `manifest`'s partition goes under `root`:
/// `<root>/<k1>=<v1>/.../manifest.json`, with the escaped values (Hive escaping, see
/// [`crate::manifest::escape_partition_value`]) as they are in the key (URLs of objects name
/// keys verbatim, see [`crate::storage::resolve`]).
pub fn manifest_url(root: &str, manifest: &Manifest) -> String {
    format!(
        "{}/{}/{MANIFEST_FILE}",
        root.trim_end_matches('/'),
        manifest.partition_path()
    )
}

/// An hour for templates that use no time placeholder.
fn epoch() -> NaiveDateTime {
    DateTime::<Utc>::UNIX_EPOCH.naive_utc()
}

/// Parses an hour, `YYYY-MM-DDTHH` (also `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM` with minutes 00,
/// and a trailing `Z`), UTC.
pub fn parse_hour(text: &str) -> Result<NaiveDateTime, LayoutError> {
    let err = || LayoutError::Hour(text.to_string());
    let t = text.trim().trim_end_matches('Z');
    let (date, hour) = match t.split_once(['T', ' ']) {
        Some((d, h)) => (d, h),
        None => (t, "00"),
    };
    let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|_| err())?;
    let (hour, minutes) = match hour.split_once(':') {
        Some((h, m)) => (h, Some(m)),
        None => (hour, None),
    };
    if minutes.is_some_and(|m| m != "00" && m != "00:00") {
        return Err(err());
    }
    if hour.len() != 2 {
        return Err(err());
    }
    let hour: u32 = hour.parse().map_err(|_| err())?;
    date.and_hms_opt(hour, 0, 0).ok_or_else(err)
}

/// The hours from `from` (inclusive) to `to` (exclusive).
pub fn hours(from: NaiveDateTime, to: NaiveDateTime) -> Vec<NaiveDateTime> {
    let mut out = Vec::new();
    let mut h = from;
    while h < to {
        out.push(h);
        h += chrono::TimeDelta::hours(1);
    }
    out
}

/// The start of the current hour, UTC.
pub fn current_hour() -> NaiveDateTime {
    let now: DateTime<Utc> = Utc::now();
    now.naive_utc()
        .date()
        .and_hms_opt(now.hour(), 0, 0)
        .unwrap_or_else(|| now.naive_utc())
}

/// `2026-11-01T00`.
pub fn format_hour(hour: NaiveDateTime) -> String {
    hour.format("%Y-%m-%dT%H").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hour(s: &str) -> NaiveDateTime {
        parse_hour(s).unwrap()
    }

    fn vars(data_type: &str, h: &str) -> Vars {
        Vars {
            data_type: data_type.into(),
            hour: hour(h),
            table: None,
        }
    }

    #[test]
    fn renders_and_matches_back() {
        let layout = Layout::new(
            "s3://lake/{data_type}",
            Some("s3://raw/{data_type}/{yyyy}/{MM}/{dd}/{HH}/"),
            &[],
            None,
        )
        .unwrap();
        let v = vars("ad_events", "2026-11-26T03");
        assert_eq!(layout.table_url("ad_events"), "s3://lake/ad_events");
        assert_eq!(
            layout.raw_prefix_url(&v).unwrap(),
            "s3://raw/ad_events/2026/11/26/03/"
        );
        assert_eq!(
            layout.partition_values(&v),
            vec![
                ("dt".to_string(), "2026-11-26".to_string()),
                ("hour".to_string(), "03".to_string())
            ]
        );
        assert_eq!(
            layout.manifest_root_url(&v, "s3://lake/ad_events/"),
            "s3://lake/ad_events/_manifests"
        );
        assert_eq!(
            layout.match_raw_prefix("s3://raw/ad_events/2026/11/26/03/"),
            Some(v.clone())
        );
        // Without the trailing slash, too; other prefixes and impossible dates do not match.
        assert_eq!(
            layout.match_raw_prefix("s3://raw/ad_events/2026/11/26/03"),
            Some(v)
        );
        assert_eq!(
            layout.match_raw_prefix("s3://raw/ad_events/2026/11/26/"),
            None
        );
        assert_eq!(layout.match_raw_prefix("s3://raw/a/b/2026/11/26/03/"), None);
        assert_eq!(layout.match_raw_prefix("s3://raw/x/2026/13/26/03/"), None);
        // Month or day `00` is no date (it was read as the first).
        assert_eq!(layout.match_raw_prefix("s3://raw/x/2026/00/26/03/"), None);
        assert_eq!(layout.match_raw_prefix("s3://raw/x/2026/11/00/03/"), None);
        assert_eq!(layout.match_raw_prefix("s3://raw/x/2026/02/30/03/"), None);
        assert_eq!(layout.match_raw_prefix("s3://raw/x/2026/11/26/24/"), None);
        assert_eq!(layout.match_raw_prefix("s3://other/x/2026/11/26/03/"), None);
    }

    /// A partition that several raw prefixes would share (daily over hourly) is refused:
    /// each hour's manifest replaced the day's.
    #[test]
    fn each_raw_prefix_has_its_own_partition() {
        let err = Layout::new(
            "s3://lake/{data_type}",
            Some("s3://raw/{data_type}/{yyyy}/{MM}/{dd}/{HH}/"),
            &["dt={yyyy}-{MM}-{dd}".into()],
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("uses {HH}, which no partition value does"),
            "{err}"
        );
        // Daily raw prefixes to daily partitions are fine.
        Layout::new(
            "s3://lake/{data_type}",
            Some("s3://raw/{data_type}/{yyyy}/{MM}/{dd}/"),
            &["dt={yyyy}-{MM}-{dd}".into()],
            None,
        )
        .unwrap();
    }

    #[test]
    fn hive_style_raw_layouts_and_repeated_placeholders() {
        let layout = Layout::new(
            "s3://lake/{data_type}",
            Some("s3://raw/{data_type}/dt={yyyy}-{MM}-{dd}/hour={HH}/{data_type}-"),
            &["day={yyyy}{MM}{dd}".into(), "h={HH}".into()],
            Some("s3://manifests/{data_type}/"),
        )
        .unwrap();
        let v = layout
            .match_raw_prefix("s3://raw/clicks/dt=2026-01-02/hour=23/clicks-/")
            .unwrap();
        assert_eq!(v.data_type, "clicks");
        assert_eq!(format_hour(v.hour), "2026-01-02T23");
        assert!(
            layout
                .match_raw_prefix("s3://raw/clicks/dt=2026-01-02/hour=23/views-/")
                .is_none()
        );
        assert_eq!(
            layout.partition_values(&v)[0],
            ("day".to_string(), "20260102".to_string())
        );
        assert_eq!(
            layout.manifest_root_url(&v, "s3://lake/clicks"),
            "s3://manifests/clicks"
        );
    }

    #[test]
    fn bad_templates_are_refused() {
        for bad in ["s3://x/{day}", "s3://x/{yyyy", "s3://x/}"] {
            let e = Template::parse(bad).unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
        assert!(Layout::new("s3://x/{table}", None, &[], None).is_err());
        assert!(Layout::new("s3://x/{yyyy}", None, &[], None).is_err());
        assert!(Layout::new("s3://x", None, &[], Some("s3://m/{HH}")).is_err());
        // The raw prefix must tell hours apart if the partition does.
        let e = Layout::new("s3://x", Some("s3://raw/{yyyy}/{MM}/{dd}/"), &[], None).unwrap_err();
        assert!(e.to_string().contains("uses {HH}"), "{e}");
        assert!(Layout::new("s3://x", None, &["nokey".into()], None).is_err());
        let no_raw = Layout::new("s3://x", None, &[], None).unwrap();
        assert!(
            no_raw
                .raw_prefix_url(&vars("a", "2026-01-01T00"))
                .unwrap_err()
                .to_string()
                .contains("--raw-prefix")
        );
    }

    #[test]
    fn hours_parse_and_iterate() {
        assert_eq!(format_hour(hour("2026-11-01T07")), "2026-11-01T07");
        assert_eq!(format_hour(hour("2026-11-01")), "2026-11-01T00");
        assert_eq!(format_hour(hour("2026-11-01T07:00Z")), "2026-11-01T07");
        for bad in [
            "2026-11-01T7",
            "2026-11-01T24",
            "2026-02-30T00",
            "x",
            "2026-11-01T07:30",
        ] {
            assert!(parse_hour(bad).is_err(), "{bad}");
        }
        let h = hours(hour("2026-10-31T22"), hour("2026-11-01T02"));
        let text: Vec<String> = h.into_iter().map(format_hour).collect();
        assert_eq!(
            text,
            [
                "2026-10-31T22",
                "2026-10-31T23",
                "2026-11-01T00",
                "2026-11-01T01"
            ]
        );
        assert!(hours(hour("2026-11-01T02"), hour("2026-11-01T02")).is_empty());
    }

    #[test]
    fn manifest_urls_keep_escaped_values() {
        let m = Manifest::parse(
            r#"{"version": 1, "table": "s3://lake/t", "partition": {"dt": "a/b", "hour": "03"}, "inputs": []}"#,
        )
        .unwrap();
        let url = manifest_url("s3://lake/t/_manifests/", &m);
        assert_eq!(url, "s3://lake/t/_manifests/dt=a%2Fb/hour=03/manifest.json");
        let location =
            crate::storage::resolve(&url, &crate::storage::StorageOptions::default()).unwrap();
        assert_eq!(
            location.path.as_ref(),
            "t/_manifests/dt=a%2Fb/hour=03/manifest.json"
        );
        assert_eq!(
            manifest_url("/tmp/m", &m),
            "/tmp/m/dt=a%2Fb/hour=03/manifest.json"
        );
    }
}
