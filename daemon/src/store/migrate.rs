//! Schema migrations, run by [`Store::open`] on a database an older firmware wrote. Each step
//! rewrites records in place and is idempotent: a crash halfway leaves the old schema version
//! in `meta`, and the next open runs the step again over records some of which it already
//! rewrote. The version is moved only after every record of every step is rewritten and flushed.

use serde_json::{Map, Value, json};
use tracing::info;

use super::{Store, StoreError, StoreResult};

/// Brings a database from schema `from` to [`super::SCHEMA_VERSION`].
pub(super) fn run(store: &Store, from: u32) -> StoreResult<()> {
    if from < 2 {
        let keys = keys_1_to_2(store)?;
        info!(keys, "database migrated from schema 1 to 2");
    }
    store.flush()
}

/// Schema 1 to 2: a key record gains `source` (every schema-1 key was generated in the HSM) and
/// `tokens` (filled in by start-up reconciliation, which sees which token holds the key), and
/// its one AWS binding (`aws_key_id`, `aws_arn`, `aws_key_state`, `alias`, `valid_to_ms` beside
/// the group) becomes the first of a list, `cloud.aws`, with the group's region.
fn keys_1_to_2(store: &Store) -> StoreResult<usize> {
    let mut rewritten = 0;
    for item in store.keys.iter() {
        let (name, raw) = item?;
        let corrupt = |reason: String| StoreError::Corrupt {
            tree: "keys",
            key: String::from_utf8_lossy(&name).into_owned(),
            reason,
        };
        let mut record: Map<String, Value> =
            serde_json::from_slice(&raw).map_err(|e| corrupt(e.to_string()))?;
        if record.contains_key("source") {
            continue; // rewritten before a crash
        }
        record.insert("source".into(), json!("hsm"));
        record.insert("tokens".into(), json!([]));
        if let Some(Value::Object(cloud)) = record.get_mut("cloud") {
            let region = match cloud.get("group").and_then(Value::as_str) {
                Some(group) => group_region(store, group)?,
                None => String::new(),
            };
            let mut aws = Vec::new();
            if let Some(key_id) = cloud.remove("aws_key_id").filter(|v| !v.is_null()) {
                aws.push(json!({
                    "region": region,
                    "key_id": key_id,
                    "arn": cloud.remove("aws_arn").unwrap_or(Value::Null),
                    "state": cloud.remove("aws_key_state").unwrap_or(Value::Null),
                    "alias": cloud.remove("alias").unwrap_or(Value::Null),
                    "valid_to_ms": cloud.remove("valid_to_ms").unwrap_or(Value::Null),
                    "deletion_ms": null,
                }));
            }
            for old in ["aws_arn", "aws_key_state", "alias", "valid_to_ms"] {
                cloud.remove(old);
            }
            cloud.insert("aws".into(), Value::Array(aws));
        }
        let encoded = serde_json::to_vec(&record).map_err(|e| corrupt(e.to_string()))?;
        store.keys.insert(name, encoded)?;
        rewritten += 1;
    }
    Ok(rewritten)
}

fn group_region(store: &Store, group: &str) -> StoreResult<String> {
    let Some(raw) = store.groups.get(group)? else {
        return Ok(String::new());
    };
    let record: Value = serde_json::from_slice(&raw).map_err(|e| StoreError::Corrupt {
        tree: "groups",
        key: group.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(record["region"].as_str().unwrap_or_default().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::keys::{AwsKeyState, KeySource};

    const V1_KEY: &str = r#"{"id":"c66ab2a396d9d1041a43934ab12892c5","label":"keyward:customer:payments","purpose":"customer","fingerprint":"1A2B3C","created_ms":1764698262704,"cloud":{"group":"payments","state":"active","aws_key_id":"aabc3eda-72ec-4190-bd3b-9d6618646cb4","aws_arn":"arn:aws:kms:eu-west-1:000000000000:key/aabc3eda-72ec-4190-bd3b-9d6618646cb4","aws_key_state":"Enabled","alias":"alias/payments","valid_to_ms":1796234262704,"job":3,"expiry_warned":false}}"#;
    const V1_PENDING: &str = r#"{"id":"adb8be3fe639e37a77feeaf1cf096d56","label":"keyward:customer:payments","purpose":"customer","fingerprint":"9C41E2","created_ms":1764698258723,"cloud":{"group":"payments","state":"pending","job":5,"expiry_warned":false}}"#;
    const V1_SYSTEM: &str = r#"{"id":"40182209c5d26805d408a7cbc4f95b8a","label":"keyward:audit","purpose":"audit","fingerprint":"A26218","created_ms":1764698250000}"#;

    #[test]
    fn schema_1_keys_become_schema_2_and_a_second_run_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .groups
            .insert("payments", r#"{"region":"eu-west-1"}"#.as_bytes())
            .unwrap();
        for raw in [V1_KEY, V1_PENDING, V1_SYSTEM] {
            let id = serde_json::from_str::<Value>(raw).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned();
            store.keys.insert(id, raw.as_bytes()).unwrap();
        }
        assert_eq!(keys_1_to_2(&store).unwrap(), 3);
        let once = store.list_keys().unwrap();
        // Run again, as after a crash before the version moved: nothing is rewritten.
        assert_eq!(keys_1_to_2(&store).unwrap(), 0);
        assert_eq!(store.list_keys().unwrap(), once);

        let active = once
            .iter()
            .find(|k| k.id.to_string().starts_with("c66a"))
            .unwrap();
        assert_eq!(active.source, KeySource::Hsm);
        let cloud = active.cloud.as_ref().unwrap();
        assert_eq!(cloud.aws.len(), 1);
        let aws = &cloud.aws[0];
        assert_eq!(aws.region, "eu-west-1");
        assert_eq!(aws.key_id, "aabc3eda-72ec-4190-bd3b-9d6618646cb4");
        assert_eq!(aws.state, Some(AwsKeyState::Enabled));
        assert_eq!(aws.alias.as_deref(), Some("alias/payments"));
        assert_eq!(aws.valid_to_ms, Some(1_796_234_262_704));
        assert_eq!(cloud.job, 3);
        let pending = once
            .iter()
            .find(|k| k.id.to_string().starts_with("adb8"))
            .unwrap();
        assert!(pending.cloud.as_ref().unwrap().aws.is_empty());
        let system = once
            .iter()
            .find(|k| k.id.to_string().starts_with("4018"))
            .unwrap();
        assert!(system.cloud.is_none());
    }
}
