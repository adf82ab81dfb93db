//! The wire stays as docs/console-protocol.md describes: every request and reply, recorded as
//! JSON in `wire.jsonl`, goes through the typed contract and comes back unchanged.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: a failed step is a failed test"
)]

use keyward_proto::{Approved, Op, Reply, Request, Response};
use serde_json::Value;

fn recorded() -> Vec<(Value, Value)> {
    include_str!("wire.jsonl")
        .lines()
        .map(|line| {
            let mut row: Value = serde_json::from_str(line).unwrap();
            (row["request"].take(), row["data"].take())
        })
        .collect()
}

/// Drops `null` members: an absent optional field and a `null` one mean the same on the wire.
fn without_nulls(mut value: Value) -> Value {
    if let Value::Object(map) = &mut value {
        map.retain(|_, v| !v.is_null());
    }
    value
}

#[test]
fn every_recorded_request_and_reply_round_trips() {
    for (request_json, data) in recorded() {
        let request: Request = serde_json::from_value(request_json.clone())
            .unwrap_or_else(|e| panic!("{request_json}: {e}"));
        let op = request.op();
        assert_eq!(request_json["op"], op.name(), "{request_json}");
        assert_eq!(
            without_nulls(serde_json::to_value(&request).unwrap()),
            without_nulls(request_json.clone()),
            "the request {request_json} changed on the way through"
        );

        let reply = Reply::decode(op, data.clone()).unwrap_or_else(|e| panic!("{op:?}: {e}"));
        assert_eq!(reply.op(), op);
        let response = Response::from_result(Ok(reply.clone()));
        assert_eq!(
            response.data.as_ref(),
            Some(&data),
            "{op:?} changed on the way through"
        );
        // And through the text of a whole line, as a client reads it.
        let line = serde_json::to_string(&response).unwrap();
        let back: Response = serde_json::from_str(&line).unwrap();
        assert_eq!(back.decode(op).unwrap(), reply);
    }
}

#[test]
fn every_operation_is_recorded_and_documented() {
    let recorded = recorded();
    let doc = include_str!("../../../docs/console-protocol.md");
    for op in Op::ALL {
        assert!(
            recorded.iter().any(|(r, _)| r["op"] == op.name()),
            "{} has no recorded request and reply in wire.jsonl",
            op.name()
        );
        assert!(
            doc.contains(&format!("\"op\":\"{}\"", op.name()))
                || doc.contains(&format!("`{}`", op.name())),
            "{} is not in docs/console-protocol.md",
            op.name()
        );
    }
}

#[test]
fn a_reply_that_does_not_fit_its_operation_is_an_error_not_a_guess() {
    let response =
        Response::from_result(Ok(Reply::GroupRotate(keyward_proto::JobStarted { job: 3 })));
    let err = response.decode(Op::Status).unwrap_err();
    assert_eq!(err.code, keyward_proto::ErrorCode::Internal);
    assert!(err.message.contains("status"), "{}", err.message);
}

#[test]
fn each_approved_reply_is_told_apart_by_its_fields() {
    // Every two-administrator reply, recorded under its own operation, decodes under `approve`
    // to the variant `Approved::from_reply` gives it: the untagged shapes never overlap.
    let mut seen = 0;
    for (request_json, data) in recorded() {
        let request: Request = serde_json::from_value(request_json).unwrap();
        if request.op() == Op::Approve {
            continue;
        }
        let reply = Reply::decode(request.op(), data.clone()).unwrap();
        let Some(expected) = Approved::from_reply(reply) else {
            continue;
        };
        seen += 1;
        match Reply::decode(Op::Approve, data).unwrap() {
            Reply::Approve(got) => assert_eq!(got, expected, "{:?}", request.op()),
            other => panic!("{other:?}"),
        }
    }
    assert!(seen >= 10, "only {seen} two-administrator replies recorded");
}
