#![allow(
    clippy::expect_used,
    clippy::panic,
    clippy::unwrap_used,
    reason = "tests: a step that fails is a failed test, reported where it happened"
)]
//! AWS KMS administration over the serial port, as an operator on a terminal (text mode) or a
//! script (JSON mode) sees it: a real daemon, a real token, a pseudo-terminal as the port, and a
//! real KMS peer (LocalStack's KMS on loopback). What AWS holds is checked through aws-sdk-kms
//! directly. Each test works in its own region, so tests never see each other's keys.

use std::time::Duration;

use keyward_tests::{
    ACCESS_KEY_ID, ADMINS, Daemon, Fixture, Kms, SECRET_ACCESS_KEY, SerialLine, kms_endpoint,
};

const ALICE: (&str, &str) = ADMINS[0];
const BOB: (&str, &str) = ADMINS[1];
const WAIT: Duration = Duration::from_secs(30);
/// Longer than the `timeout=2m` the tests give `job wait`.
const JOB_WAIT: Duration = Duration::from_secs(150);

/// A running appliance with one serial port, both administrators logged in on it (dual
/// control), in text mode at the prompt.
fn appliance() -> (Fixture, Daemon, SerialLine) {
    let fx = Fixture::new();
    fx.init_ok();
    let port = fx.serial_line("a");
    let daemon = fx.start();
    port.expect("keyward> ", WAIT);
    let alice = port.login(ALICE.0, ALICE.1);
    assert!(alice.contains("\r\nOK\r\n"), "{alice}");
    let both = port.login(BOB.0, BOB.1);
    assert!(both.contains("dual_control: true"), "{both}");
    (fx, daemon, port)
}

/// `credential import prod FILE` in text mode, from the AWS console's CSV.
fn import_credential(fx: &Fixture, port: &SerialLine) {
    let csv = fx.credentials_csv();
    let out = port.command(&format!("credential import prod {}", csv.display()));
    assert!(out.contains("\r\nOK\r\n"), "{out}");
}

/// Switches the port to JSON mode (from text mode).
fn json_mode(port: &SerialLine) {
    port.send(b"format json\r");
    let out = port.expect("}\r\n", WAIT);
    assert!(
        out.contains(r#"{"ok":true,"data":{"format":"json"}}"#),
        "{out}"
    );
}

/// Switches the port back to text mode (from JSON mode).
fn text_mode(port: &SerialLine) {
    port.send(b"format text\r");
    port.expect("keyward> ", WAIT);
}

/// In JSON mode: sends a line, returns the response line as printed and parsed.
fn json_line(port: &SerialLine, line: &str, timeout: Duration) -> (String, serde_json::Value) {
    port.send(format!("{line}\r").as_bytes());
    let text = port.expect("}\r\n", timeout);
    let start = text
        .rfind("\r\n{")
        .map(|i| i + 2)
        .or_else(|| text.find('{'))
        .unwrap_or_else(|| panic!("{line}: no JSON line in {text:?}"));
    let raw = text[start..].trim_end().to_owned();
    let value = serde_json::from_str(&raw)
        .unwrap_or_else(|e| panic!("{line}: bad JSON response {raw:?}: {e}"));
    (raw, value)
}

/// In JSON mode: a line that must succeed; returns its data.
fn json_ok(port: &SerialLine, line: &str) -> serde_json::Value {
    let (raw, r) = json_line(port, line, WAIT);
    assert_eq!(r["ok"], true, "{line}: {raw}");
    r["data"].clone()
}

/// In JSON mode: `group create NAME` against the KMS peer in `region`.
fn create_group(port: &SerialLine, name: &str, region: &str, extra: &str) -> serde_json::Value {
    json_ok(
        port,
        &format!(
            "group create {name} credential=prod region={region} endpoint={} alias=alias/{name} description=\"Serial {name} key\" {extra}",
            kms_endpoint()
        ),
    )
}

/// In JSON mode: `group rotate NAME`, checking the response is exactly `{"ok":true,"data":{"job":ID}}`.
fn rotate(port: &SerialLine, group: &str) -> u64 {
    let (raw, r) = json_line(port, &format!("group rotate {group}"), WAIT);
    let job = r["data"]["job"]
        .as_u64()
        .unwrap_or_else(|| panic!("group rotate: no job id in {raw}"));
    assert_eq!(
        r,
        serde_json::json!({"ok": true, "data": {"job": job}}),
        "group rotate answers only the job id: {raw}"
    );
    assert_eq!(raw, format!(r#"{{"ok":true,"data":{{"job":{job}}}}}"#));
    job
}

/// In JSON mode: `job wait ID timeout=2m`.
fn wait(port: &SerialLine, job: u64) -> (String, serde_json::Value) {
    json_line(port, &format!("job wait {job} timeout=2m"), JOB_WAIT)
}

#[test]
fn credential_add_echoes_the_key_id_but_never_the_secret_and_lists_it_masked() {
    let (_fx, _daemon, port) = appliance();
    let mut transcript = String::new();

    port.send(b"credential add ops\r");
    let asked = port.expect("Access key ID: ", WAIT);
    transcript.push_str(&asked);
    assert!(
        asked.ends_with("credential add ops\r\nAccess key ID: "),
        "the command is echoed, then the id is prompted for: {asked:?}"
    );

    port.send(format!("{ACCESS_KEY_ID}\r").as_bytes());
    let echoed = port.expect("Secret access key: ", WAIT);
    transcript.push_str(&echoed);
    assert_eq!(
        echoed,
        format!("{ACCESS_KEY_ID}\r\nSecret access key: "),
        "the access key id is echoed as typed, then the secret is prompted for"
    );

    // Typed slowly, as a person would: no character of it comes back.
    for c in SECRET_ACCESS_KEY.bytes() {
        port.send(&[c]);
    }
    std::thread::sleep(Duration::from_millis(300));
    let while_typing = port.pending_output();
    assert_eq!(
        while_typing, "",
        "nothing is echoed while the secret is typed"
    );
    port.send(b"\r");
    let added = port.expect("keyward> ", WAIT);
    transcript.push_str(&added);
    assert!(added.starts_with("\r\n"), "only the line end: {added:?}");
    assert!(added.contains("\r\nOK\r\n"), "{added}");
    assert!(!added.contains(SECRET_ACCESS_KEY), "{added}");
    assert!(
        !added.contains(ACCESS_KEY_ID),
        "the answer shows the id masked: {added}"
    );

    let listed = port.command("credential list");
    transcript.push_str(&listed);
    assert!(
        listed.contains("access_key_id=****************MPLE"),
        "{listed}"
    );
    assert!(listed.contains("name=ops"), "{listed}");
    assert!(listed.contains("\r\nOK\r\nkeyward> "), "{listed}");
    assert!(
        !listed.contains(ACCESS_KEY_ID),
        "the full access key id is not listed: {listed}"
    );
    assert!(!listed.contains(SECRET_ACCESS_KEY), "{listed}");

    // Nothing the port printed, from the command to now, holds the secret or a piece of it.
    transcript.push_str(&port.pending_output());
    assert!(
        !transcript.contains(SECRET_ACCESS_KEY),
        "the secret appeared on the port: {transcript:?}"
    );
    assert!(
        !transcript.contains("wJalrXUtnFEMI"),
        "no part of the secret appeared on the port: {transcript:?}"
    );
}

#[test]
fn json_mode_rotation_answers_a_job_id_and_aws_holds_what_key_list_says() {
    let region = "eu-north-1";
    let kms = Kms::new(region);
    let (fx, _daemon, port) = appliance();
    import_credential(&fx, &port);
    json_mode(&port);

    create_group(&port, "orders", region, "valid_for=30d tags=env=serial");
    let shown = json_ok(&port, "group show orders");
    keyward_tests::assert_fields(&shown, &keyward_tests::GROUP_FIELDS, "group show");
    assert_eq!(shown["credential"], "prod", "{shown}");
    assert_eq!(shown["region"], region, "{shown}");
    assert_eq!(shown["endpoint"], kms_endpoint().as_str(), "{shown}");
    assert_eq!(shown["alias"], "alias/orders", "{shown}");
    assert_eq!(shown["description"], "Serial orders key", "{shown}");
    assert_eq!(shown["tags"]["env"], "serial", "{shown}");
    assert!(!shown.to_string().contains("wJalrXUtnFEMI"), "{shown}");

    let before = kms.key_ids().len();
    let job = rotate(&port, "orders");
    let (raw, done) = wait(&port, job);
    assert_eq!(done["ok"], true, "job {job}: {raw}");

    let keys = json_ok(&port, "key list orders");
    let keys = keys.as_array().expect("key list is a list");
    assert_eq!(keys.len(), 1, "{keys:?}");
    for k in keys {
        keyward_tests::assert_fields(k, &keyward_tests::KEY_FIELDS, "key list");
    }
    let key = &keys[0];
    assert_eq!(key["group"], "orders", "{key}");
    assert_eq!(key["state"], "active", "{key}");
    assert_eq!(key["alias"], "alias/orders", "{key}");
    let aws_key_id = key["aws_key_id"].as_str().expect("aws_key_id").to_owned();

    // What AWS holds: one new key, EXTERNAL and Enabled, with the alias on it.
    assert_eq!(kms.key_ids().len(), before + 1, "exactly one new KMS key");
    assert_eq!(
        kms.alias_target("alias/orders").as_deref(),
        Some(aws_key_id.as_str()),
        "the alias points at the key 'key list' names"
    );
    let meta = kms.describe(&aws_key_id);
    assert_eq!(meta.origin().unwrap().as_str(), "EXTERNAL");
    assert_eq!(meta.key_state().unwrap().as_str(), "Enabled");
    assert_eq!(meta.description(), Some("Serial orders key"));
    assert_eq!(key["aws_arn"], meta.arn().unwrap_or_default(), "{key}");
}

#[test]
fn job_wait_on_a_failed_job_answers_job_failed_naming_the_key() {
    let region = "ap-northeast-1";
    let kms = Kms::new(region);
    // A key with the normal origin (AWS_KMS): it cannot receive imported material.
    let aws_made = kms
        .run(kms.client.create_key().send())
        .expect("CreateKey")
        .key_metadata
        .expect("metadata")
        .key_id;
    let (fx, _daemon, port) = appliance();
    import_credential(&fx, &port);
    json_mode(&port);
    create_group(
        &port,
        "refunds",
        region,
        &format!("active_key_id={aws_made}"),
    );
    let keys_before = kms.key_ids().len();

    let job = rotate(&port, "refunds");
    let (raw, r) = wait(&port, job);
    assert_eq!(r["ok"], false, "{raw}");
    assert_eq!(r["error"]["code"], "job-failed", "{raw}");
    assert!(r.get("data").is_none(), "an error carries no data: {raw}");
    let message = r["error"]["message"].as_str().expect("message");
    assert!(message.contains(&aws_made), "names the key: {message}");
    assert!(message.contains("not EXTERNAL"), "{message}");
    assert!(message.contains("AWS_KMS"), "{message}");

    // Nothing was made in AWS, the operator's key is untouched, and no alias was set.
    assert_eq!(kms.key_ids().len(), keys_before, "no KMS key was created");
    let meta = kms.describe(&aws_made);
    assert_eq!(meta.origin().unwrap().as_str(), "AWS_KMS");
    assert_eq!(meta.key_state().unwrap().as_str(), "Enabled");
    assert_eq!(kms.alias_target("alias/refunds"), None);

    // The job says the same when shown.
    let shown = json_ok(&port, &format!("job show {job}"));
    assert_eq!(shown["state"], "failed", "{shown}");
}

#[test]
fn job_log_follow_prints_the_steps_then_ok_and_the_prompt() {
    let region = "ap-northeast-2";
    let kms = Kms::new(region);
    let (fx, _daemon, port) = appliance();
    import_credential(&fx, &port);
    json_mode(&port);
    create_group(&port, "ledger", region, "");
    let job = rotate(&port, "ledger");
    text_mode(&port);

    port.send(format!("job log {job} follow\r").as_bytes());
    let followed = port.expect("keyward> ", JOB_WAIT);
    assert!(
        followed.starts_with(&format!("job log {job} follow\r\n")),
        "the command is echoed: {followed:?}"
    );
    for step in [
        "generate-key",
        "create-key",
        "import-material",
        "move-alias",
        "job succeeded",
    ] {
        assert!(followed.contains(step), "no {step:?} in {followed:?}");
    }
    let succeeded = followed.find("job succeeded").unwrap();
    let ok = followed.rfind("\r\nOK\r\n").expect("OK after the log");
    assert!(succeeded < ok, "OK comes after the log: {followed:?}");
    assert!(
        followed.ends_with("\r\nOK\r\nkeyward> "),
        "OK, then the prompt: {followed:?}"
    );
    assert!(!followed.contains("\r\nERR "), "{followed:?}");
    // Following a done job prints the whole log at once.
    port.send(format!("job log {job} follow\r").as_bytes());
    let replay = port.expect("keyward> ", JOB_WAIT);
    assert!(replay.contains("job succeeded"), "{replay:?}");
    assert!(replay.ends_with("\r\nOK\r\nkeyward> "), "{replay:?}");

    assert!(
        kms.alias_target("alias/ledger").is_some(),
        "the job moved the alias"
    );
}

#[test]
fn an_unknown_group_field_is_named_and_nothing_changes() {
    let (fx, _daemon, port) = appliance();
    import_credential(&fx, &port);
    let created = port.command(&format!(
        "group create keep credential=prod region=eu-west-3 endpoint={} alias=alias/keep",
        kms_endpoint()
    ));
    assert!(created.contains("\r\nOK\r\n"), "{created}");
    let before = port.command("group list");
    assert!(before.contains("name=keep"), "{before}");

    let refused = port.command("group create x colour=blue");
    assert!(
        refused.contains("\r\nERR invalid unknown group field 'colour'"),
        "{refused}"
    );
    assert!(refused.ends_with("keyward> "), "{refused}");
    let refused =
        port.command("group create x credential=prod region=eu-west-3 alias=alias/x colour=blue");
    assert!(
        refused.contains("\r\nERR invalid unknown group field 'colour'"),
        "{refused}"
    );

    let after = port.command("group list");
    assert_eq!(
        after.replace("group list\r\n", ""),
        before.replace("group list\r\n", ""),
        "group list is unchanged"
    );
    assert!(!after.contains("name=x "), "{after}");

    // The same in JSON mode: the error names the field, and nothing changed.
    json_mode(&port);
    let (raw, r) = json_line(&port, "group create x colour=blue", WAIT);
    assert_eq!(r["ok"], false, "{raw}");
    assert_eq!(r["error"]["code"], "invalid", "{raw}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown group field 'colour'"),
        "{raw}"
    );
    let groups = json_ok(&port, "group list");
    let names: Vec<&str> = groups
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g["name"].as_str())
        .collect();
    assert_eq!(names, ["keep"]);
}
