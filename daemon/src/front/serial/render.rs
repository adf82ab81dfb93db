//! Text mode: response data as lines a person reads on a terminal. Objects become `key: value`
//! lines (nested keys dotted); lists of objects become one line each of `key=value` pairs.

use serde_json::Value;

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        Value::Array(items) => items.iter().map(scalar).collect::<Vec<_>>().join(", "),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{k}={}", scalar(v)))
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

fn object_lines(prefix: &str, map: &serde_json::Map<String, Value>, out: &mut Vec<String>) {
    for (key, value) in map {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            Value::Object(inner) => object_lines(&path, inner, out),
            Value::Array(items) if items.iter().any(Value::is_object) => {
                out.push(format!("{path}:"));
                out.extend(items.iter().map(|i| format!("  {}", scalar(i))));
            }
            other => out.push(format!("{path}: {}", scalar(other))),
        }
    }
}

pub fn text(data: &Value) -> Vec<String> {
    let mut out = Vec::new();
    match data {
        Value::Object(map) => object_lines("", map, &mut out),
        Value::Array(items) if items.is_empty() => out.push("(none)".into()),
        Value::Array(items) => out.extend(items.iter().map(scalar)),
        Value::Null => {}
        other => out.push(scalar(other)),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_lists_and_nesting() {
        let v = serde_json::json!({"hsm": {"state": "ok", "wrap": ["A", "B"]}, "users": [{"name": "alice", "role": "administrator"}]});
        assert_eq!(
            text(&v),
            [
                "hsm.state: ok",
                "hsm.wrap: A, B",
                "users:",
                "  name=alice role=administrator"
            ]
        );
        assert_eq!(text(&serde_json::json!([])), ["(none)"]);
    }
}
