//! CloudWatch Embedded Metric Format: one JSON line on stdout that CloudWatch Logs turns into
//! metrics (namespace `parqour`), used by the partition job and the trigger.

use serde_json::{Map, Value, json};

/// A metric value and its CloudWatch unit.
#[derive(Debug, Clone)]
pub struct Metric {
    /// The metric's name.
    pub name: &'static str,
    /// `Count`, `Bytes`, `Seconds`, `Megabytes/Second`, ...
    pub unit: &'static str,
    /// Its value.
    pub value: Value,
}

impl Metric {
    /// A count.
    pub fn count(name: &'static str, value: u64) -> Self {
        Self::new(name, "Count", value)
    }

    /// A metric with a unit.
    pub fn new(name: &'static str, unit: &'static str, value: impl Into<Value>) -> Self {
        Self {
            name,
            unit,
            value: value.into(),
        }
    }
}

/// The EMF line: `dimension` names the one dimension (its value is among `properties`), the
/// metrics and the other properties are top-level members, as the format requires.
pub fn emf_line(dimension: &str, metrics: &[Metric], properties: &[(&str, Value)]) -> String {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut line = Map::new();
    line.insert(
        "_aws".into(),
        json!({
            "Timestamp": now_ms,
            "CloudWatchMetrics": [{
                "Namespace": "parqour",
                "Dimensions": [[dimension]],
                "Metrics": metrics
                    .iter()
                    .map(|m| json!({"Name": m.name, "Unit": m.unit}))
                    .collect::<Vec<_>>(),
            }]
        }),
    );
    for (k, v) in properties {
        line.insert((*k).to_string(), v.clone());
    }
    for m in metrics {
        line.insert(m.name.to_string(), m.value.clone());
    }
    Value::Object(line).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_declared_and_present() {
        let line = emf_line(
            "Table",
            &[
                Metric::count("RecordsIn", 3),
                Metric::new("Seconds", "Seconds", 1.5),
            ],
            &[("Table", json!("s3://lake/t"))],
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Table"]])
        );
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"][1]["Unit"],
            "Seconds"
        );
        assert_eq!(v["RecordsIn"], 3);
        assert_eq!(v["Table"], "s3://lake/t");
    }
}
