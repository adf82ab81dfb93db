//! Text mode: response data as lines a person reads on a terminal. Objects become `key: value`
//! lines (nested keys dotted); lists of objects become one line each of `key=value` pairs.
//! Lines are written straight into the port's output buffer (a `WipingBuf`), with no text
//! built on the side: an answer may carry a one-time password.

use std::io::Write;

use keyward_proto::WipingBuf;
use serde_json::Value;

fn scalar(v: &Value, out: &mut WipingBuf) {
    match v {
        Value::String(s) => out.extend(s.as_bytes()),
        Value::Null => out.push(b'-'),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.extend(b", ");
                }
                scalar(item, out);
            }
        }
        Value::Object(map) => {
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                out.extend(k.as_bytes());
                out.push(b'=');
                scalar(v, out);
            }
        }
        // Numbers and booleans: not secret, and written without an intermediate string.
        other => {
            let _ = write!(out, "{other}");
        }
    }
}

fn object_lines(prefix: &str, map: &serde_json::Map<String, Value>, out: &mut WipingBuf) {
    for (key, value) in map {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            Value::Object(inner) => object_lines(&path, inner, out),
            Value::Array(items) if items.iter().any(Value::is_object) => {
                out.extend(path.as_bytes());
                out.extend(b":\r\n");
                for item in items {
                    out.extend(b"  ");
                    scalar(item, out);
                    out.extend(b"\r\n");
                }
            }
            other => {
                out.extend(path.as_bytes());
                out.extend(b": ");
                scalar(other, out);
                out.extend(b"\r\n");
            }
        }
    }
}

/// Writes `data` as text lines, each ended by CR LF.
pub fn text(data: &Value, out: &mut WipingBuf) {
    match data {
        Value::Object(map) => object_lines("", map, out),
        Value::Array(items) if items.is_empty() => out.extend(b"(none)\r\n"),
        Value::Array(items) => {
            for item in items {
                scalar(item, out);
                out.extend(b"\r\n");
            }
        }
        Value::Null => {}
        other => {
            scalar(other, out);
            out.extend(b"\r\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(data: &Value) -> Vec<String> {
        let mut out = WipingBuf::new();
        text(data, &mut out);
        let text = String::from_utf8(out.to_vec()).unwrap();
        let body = text.strip_suffix("\r\n").unwrap_or(&text);
        if body.is_empty() {
            return Vec::new();
        }
        body.split("\r\n").map(str::to_owned).collect()
    }

    #[test]
    fn objects_lists_and_nesting() {
        let v = serde_json::json!({"hsm": {"state": "ok", "wrap": ["A", "B"]}, "users": [{"name": "alice", "role": "administrator"}]});
        assert_eq!(
            lines(&v),
            [
                "hsm.state: ok",
                "hsm.wrap: A, B",
                "users:",
                "  name=alice role=administrator"
            ]
        );
        assert_eq!(lines(&serde_json::json!([])), ["(none)"]);
        assert_eq!(
            lines(&serde_json::json!([1, true, null, {"a": [1, 2], "b": "x"}])),
            ["1", "true", "-", "a=1, 2 b=x"]
        );
        assert!(lines(&Value::Null).is_empty());
    }
}
