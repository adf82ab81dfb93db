#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "integration test: a failed step is a failed test"
)]
//! `keyward-image` end to end, with real files in a temporary root: build, verify, install,
//! upgrade, roll back, boot-check, and every tampering the verifier must refuse.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ring::signature::{Ed25519KeyPair, KeyPair};

const BIN: &str = env!("CARGO_BIN_EXE_keyward-image");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("KEYWARD_IMAGE_CRASH_AT")
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "keyward-image {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn refused(args: &[&str], expected: &str) {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "keyward-image {args:?} must fail");
    assert!(
        stderr.contains(expected),
        "keyward-image {args:?}: expected {expected:?} in {stderr}"
    );
}

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Self {
        let s = Setup {
            dir: tempfile::tempdir().unwrap(),
        };
        ok(&["keygen", "--out", &s.p("sign.key")]);
        s
    }
    fn p(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    /// A small stand-in for the release binaries: real files, quick to hash.
    fn small_bins(&self, tag: &str) -> String {
        let dir = self.path(&format!("bins-{tag}"));
        std::fs::create_dir_all(&dir).unwrap();
        for b in [
            "keywardd",
            "keyward-console",
            "keyward-hsm-sim",
            "keyward-image",
        ] {
            let f = dir.join(b);
            std::fs::write(&f, format!("#!/bin/sh\necho {b} {tag}\n")).unwrap();
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        dir.display().to_string()
    }
    fn build(&self, version: &str, bins: &str) -> String {
        let out = self.p(&format!("v{version}.img"));
        ok(&[
            "build",
            "--version",
            version,
            "--signing-key",
            &self.p("sign.key"),
            "--out",
            &out,
            "--bin-dir",
            bins,
        ]);
        out
    }
    /// `install IMAGE --root ROOT --public-key KEY`, plus `extra`.
    fn install_args(&self, image: &str, key: &str, extra: &[&str]) -> Vec<String> {
        let mut args = vec![
            "install".to_owned(),
            image.to_owned(),
            "--root".into(),
            self.p("root"),
            "--public-key".into(),
            self.p(key),
        ];
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        args
    }

    /// Builds `version` from stand-in binaries tagged `tag` and installs it; it must succeed.
    fn installed(&self, version: &str, tag: &str) {
        let image = self.build(version, &self.small_bins(tag));
        let out = self.install(&image);
        assert!(
            out.status.success(),
            "install {version}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn install(&self, image: &str) -> Output {
        run(&strs(&self.install_args(image, "sign.key.pub", &[])))
    }
    fn status(&self) -> String {
        ok(&["status", "--root", &self.p("root")])
    }
}

#[test]
fn build_verify_install_upgrade_rollback_and_boot_check_with_the_real_binaries() {
    let s = Setup::new();
    let bins = Path::new(BIN).parent().unwrap().display().to_string();
    let v1 = s.build("1.0.0", &bins);
    assert!(
        ok(&["verify", &v1, "--public-key", &s.p("sign.key.pub")])
            .contains("verified: version 1.0.0, 6 files")
    );
    assert!(s.install(&v1).status.success());
    assert!(
        s.status()
            .contains("slot a (active): version 1.0.0, verified"),
        "{}",
        s.status()
    );

    // The installed daemon is the real, runnable binary.
    let installed = s.path("root/slots/a/usr/bin/keywardd");
    let version = Command::new(&installed).arg("--version").output().unwrap();
    assert!(
        String::from_utf8_lossy(&version.stdout).starts_with("keywardd "),
        "{version:?}"
    );
    let config_mode = std::fs::metadata(s.path("root/slots/a/etc/keyward/keyward.toml"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(config_mode, 0o600, "the default config keeps its mode");

    let v2 = s.build("1.1.0", &bins);
    assert!(s.install(&v2).status.success());
    let status = s.status();
    assert!(
        status.contains("slot a: version 1.0.0, verified")
            && status.contains("slot b (active): version 1.1.0, verified"),
        "{status}"
    );

    assert!(
        ok(&["rollback", "--root", &s.p("root")]).contains("rolled back to slot a (version 1.0.0)")
    );
    assert!(
        ok(&["boot-check", "--root", &s.p("root")]).contains("slot a (version 1.0.0) verified")
    );
}

/// Rewrites an image file in place.
fn tamper_bytes(path: &str, f: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = std::fs::read(path).unwrap();
    f(&mut bytes);
    std::fs::write(path, bytes).unwrap();
}

/// An image whose manifest is signed with the right key but lists `bad_path` (an attacker who
/// got a build signed, or a buggy build): the verifier must still refuse it.
fn signed_image_with_path(s: &Setup, bad_path: &str) -> String {
    let pair = Ed25519KeyPair::from_pkcs8(&std::fs::read(s.path("sign.key")).unwrap()).unwrap();
    assert_eq!(
        hex::encode(pair.public_key().as_ref()),
        std::fs::read_to_string(s.path("sign.key.pub"))
            .unwrap()
            .trim()
    );
    let data = b"evil";
    let sha = hex::encode(ring::digest::digest(&ring::digest::SHA256, data).as_ref());
    let manifest = serde_json::json!({"format": 1, "version": "9.9.9", "build_time": "x", "target": "x",
        "files": [{"path": bad_path, "mode": 0o644, "size": data.len(), "sha256": sha}]});
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let sig = pair.sign(&[b"keyward-image-manifest-v1\n".as_slice(), &manifest].concat());
    let mut out = b"KWIMG1\n".to_vec();
    out.extend_from_slice(&(manifest.len() as u32).to_be_bytes());
    out.extend_from_slice(&manifest);
    out.extend_from_slice(&(sig.as_ref().len() as u32).to_be_bytes());
    out.extend_from_slice(sig.as_ref());
    out.extend_from_slice(data);
    let path = s.p(&format!("evil-{}.img", bad_path.len()));
    std::fs::write(&path, out).unwrap();
    path
}

#[test]
fn every_tampered_image_is_refused_and_the_active_slot_stays() {
    let s = Setup::new();
    let good = s.build("1.0.0", &s.small_bins("one"));
    assert!(s.install(&good).status.success());
    let before = s.status();
    let next = s.build("1.1.0", &s.small_bins("two"));

    let copy = |name: &str| {
        let p = s.p(name);
        std::fs::copy(&next, &p).unwrap();
        p
    };
    let changed_file = copy("changed-file.img");
    tamper_bytes(&changed_file, |b| *b.last_mut().unwrap() ^= 1);
    let changed_manifest = copy("changed-manifest.img");
    tamper_bytes(&changed_manifest, |b| {
        let i = b.windows(5).position(|w| w == b"1.1.0").unwrap();
        b[i + 4] = b'9';
    });
    let appended = copy("appended.img");
    tamper_bytes(&appended, |b| b.extend_from_slice(b"#!/bin/sh\nrm -rf /\n"));
    let truncated = copy("truncated.img");
    tamper_bytes(&truncated, |b| b.truncate(b.len() - 10));
    let header_only = copy("header.img");
    tamper_bytes(&header_only, |b| b.truncate(20));
    ok(&["keygen", "--out", &s.p("other.key")]);
    let dotdot = signed_image_with_path(&s, "../../etc/cron.d/evil");
    let absolute = signed_image_with_path(&s, "/etc/cron.d/evil");

    let cases: [(&str, &str, &str); 8] = [
        (&changed_file, "sign.key.pub", "SHA-256 does not match"),
        (
            &changed_manifest,
            "sign.key.pub",
            "signature does not verify",
        ),
        (&appended, "sign.key.pub", "after its last file"),
        (&truncated, "sign.key.pub", "truncated"),
        (&header_only, "sign.key.pub", "truncated"),
        (&next, "other.key.pub", "signature does not verify"),
        (&dotdot, "sign.key.pub", "contains '..'"),
        (&absolute, "sign.key.pub", "is absolute"),
    ];
    for (image, key, expected) in cases {
        refused(&["verify", image, "--public-key", &s.p(key)], expected);
        // With a trusted key recorded, install refuses another key before reading the image.
        let install_expected = if key == "other.key.pub" {
            "trusts another key"
        } else {
            expected
        };
        refused(&strs(&s.install_args(image, key, &[])), install_expected);
        assert_eq!(
            s.status().lines().find(|l| l.contains("(active)")),
            before.lines().find(|l| l.contains("(active)")),
            "{image}: the active slot changed"
        );
    }
    assert!(
        !s.path("etc").exists() && !Path::new("/etc/cron.d/evil").exists(),
        "nothing escaped the root"
    );
    assert!(ok(&["boot-check", "--root", &s.p("root")]).contains("version 1.0.0"));
}

#[test]
fn a_slot_with_an_extra_missing_or_symlinked_file_fails_boot_check_and_falls_back() {
    for damage in ["extra", "missing", "symlink", "changed"] {
        let s = Setup::new();
        s.installed("1.0.0", "one");
        s.installed("1.1.0", "two");
        let slot_b = s.path("root/slots/b");
        match damage {
            "extra" => std::fs::write(slot_b.join("usr/bin/backdoor"), "x").unwrap(),
            "missing" => std::fs::remove_file(slot_b.join("usr/bin/keyward-console")).unwrap(),
            "symlink" => {
                let f = slot_b.join("usr/bin/keywardd");
                std::fs::remove_file(&f).unwrap();
                std::os::unix::fs::symlink("/bin/sh", &f).unwrap();
            }
            _ => std::fs::write(slot_b.join("usr/bin/keywardd"), "#!/bin/sh\necho patched\n")
                .unwrap(),
        }
        let status = s.status();
        assert!(
            status
                .lines()
                .any(|l| l.starts_with("slot b (active): ") && !l.contains("verified")),
            "{damage}: {status}"
        );
        let out = run(&["boot-check", "--root", &s.p("root")]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(2), "{damage}: {text}");
        assert!(
            text.contains("slot b failed verification")
                && text.contains("fell back to slot a (version 1.0.0)"),
            "{damage}: {text}"
        );
        assert!(
            s.status()
                .contains("slot a (active): version 1.0.0, verified"),
            "{damage}"
        );
    }
}

#[test]
fn a_lower_version_needs_allow_downgrade() {
    let s = Setup::new();
    let bins = s.small_bins("one");
    let (v1, v2) = (s.build("1.0.0", &bins), s.build("2.0.0", &bins));
    assert!(s.install(&v2).status.success());
    refused(
        &strs(&s.install_args(&v1, "sign.key.pub", &[])),
        "lower than the installed 2.0.0",
    );
    assert!(s.status().contains("slot a (active): version 2.0.0"));
    ok(&strs(&s.install_args(
        &v1,
        "sign.key.pub",
        &["--allow-downgrade"],
    )));
    assert!(s.status().contains("slot b (active): version 1.0.0"));
}

#[test]
fn a_crash_between_writing_the_slot_and_switching_leaves_the_old_slot_active_and_bootable() {
    let s = Setup::new();
    s.installed("1.0.0", "one");
    let v2 = s.build("1.1.0", &s.small_bins("two"));
    let crashed = Command::new(BIN)
        .args(s.install_args(&v2, "sign.key.pub", &[]))
        .env("KEYWARD_IMAGE_CRASH_AT", "before-switch")
        .output()
        .unwrap();
    assert!(!crashed.status.success(), "the test crash point must fire");
    assert!(
        s.status()
            .contains("slot a (active): version 1.0.0, verified"),
        "{}",
        s.status()
    );
    assert!(
        ok(&["boot-check", "--root", &s.p("root")]).contains("slot a (version 1.0.0) verified")
    );
    // The interrupted install is simply redone.
    assert!(s.install(&v2).status.success());
    assert!(s.status().contains("slot b (active): version 1.1.0"));
}

#[test]
fn a_slot_that_is_a_symlink_is_replaced_not_followed() {
    let s = Setup::new();
    s.installed("1.0.0", "one");
    let outside = s.path("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("precious"), "keep").unwrap();
    std::fs::create_dir_all(s.path("root/slots")).unwrap();
    std::os::unix::fs::symlink(&outside, s.path("root/slots/b")).unwrap();
    s.installed("1.1.0", "two");
    assert_eq!(
        std::fs::read_to_string(outside.join("precious")).unwrap(),
        "keep"
    );
    assert!(
        !outside.join("usr").exists(),
        "nothing was written through the symlink"
    );
    assert!(
        !std::fs::symlink_metadata(s.path("root/slots/b"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn the_systemd_unit_is_hardened_and_verifies() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/rootfs/etc/systemd/system/keywardd.service"
    ))
    .unwrap();
    for directive in [
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "PrivateDevices=no",
        "DeviceAllow=/dev/ttyS0 rw",
        "MemoryDenyWriteExecute=yes",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "LockPersonality=yes",
        "SystemCallFilter=@system-service",
        "ReadWritePaths=/var/lib/keyward",
        "LimitCORE=0",
    ] {
        assert!(
            unit.lines().any(|l| l.trim() == directive),
            "the unit lacks {directive}"
        );
    }
    let s = Setup::new();
    s.installed("1.0.0", "one");
    let slot = s.path("root/slots/a");
    let installed =
        std::fs::read_to_string(slot.join("etc/systemd/system/keywardd.service")).unwrap();
    // systemd-analyze checks that ExecStart binaries exist: point them into the installed slot.
    let testable = installed.replace("/usr/bin/", &format!("{}/usr/bin/", slot.display()));
    let path = s.path("keywardd.service");
    std::fs::write(&path, testable).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("systemd-analyze (apt-get install systemd; scripts/test.sh does)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {stderr}"
    );
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn a_root_refuses_a_second_key_and_an_unverifiable_active_slot_needs_allow_downgrade() {
    let s = Setup::new();
    s.installed("1.0.0", "one");
    assert!(
        std::fs::read_to_string(s.path("root/trusted.pub"))
            .unwrap()
            .trim()
            == std::fs::read_to_string(s.path("sign.key.pub"))
                .unwrap()
                .trim()
    );

    // An image signed by another key is refused by a root that trusts the first one.
    ok(&["keygen", "--out", &s.p("other.key")]);
    let other = s.p("other.img");
    ok(&[
        "build",
        "--version",
        "9.0.0",
        "--signing-key",
        &s.p("other.key"),
        "--out",
        &other,
        "--bin-dir",
        &s.small_bins("x"),
    ]);
    refused(
        &strs(&s.install_args(&other, "other.key.pub", &[])),
        "this root trusts another key",
    );
    assert!(
        s.status()
            .contains("slot a (active): version 1.0.0, verified")
    );

    // With the active slot damaged, its version cannot be trusted: no silent downgrade past it.
    std::fs::write(s.path("root/slots/a/usr/bin/keywardd"), "tampered").unwrap();
    let older = s.build("0.9.0", &s.small_bins("old"));
    refused(
        &strs(&s.install_args(&older, "sign.key.pub", &[])),
        "a downgrade cannot be ruled out",
    );
    ok(&strs(&s.install_args(
        &older,
        "sign.key.pub",
        &["--allow-downgrade"],
    )));
    assert!(
        s.status()
            .contains("slot b (active): version 0.9.0, verified")
    );
    assert!(
        !s.path("root/slots/.incoming").exists(),
        "the staging directory is gone once the slot is in place"
    );
}
