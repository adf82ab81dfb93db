#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "integration test: a failed step is a failed test"
)]
//! The HSM layer against a real SoftHSMv2 token: what the token itself observes.

mod common;

use aes_gcm::KeyInit;
use aes_gcm::aead::{Aead, Payload};
use cryptoki::object::{Attribute, AttributeInfo, AttributeType, ObjectClass};
use keyward_daemon::domain::keys::{Fingerprint, KeyId, KeyPurpose};
use keyward_daemon::hsm::pkcs11::Pkcs11Hsm;
use keyward_daemon::hsm::{HsmError, HsmResult, WrapAlgorithm};
use rsa::pkcs8::EncodePublicKey;
use rsa::{Oaep, RsaPrivateKey};

use common::{hsm, raw_session, token};

#[test]
fn generated_key_is_sensitive_and_its_value_cannot_be_read() {
    let _token = common::exclusive();
    let key = hsm()
        .generate_key(KeyPurpose::Customer, "test-sensitive")
        .unwrap();
    let s = raw_session();
    let handles = s
        .find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Id(key.id.as_bytes().to_vec()),
        ])
        .unwrap();
    assert_eq!(handles.len(), 1);
    let info = s
        .get_attribute_info(handles[0], &[AttributeType::Value])
        .unwrap();
    assert!(
        matches!(info.as_slice(), [AttributeInfo::Sensitive]),
        "CKA_VALUE must be CKR_ATTRIBUTE_SENSITIVE: {info:?}"
    );
    let attrs = s
        .get_attributes(
            handles[0],
            &[
                AttributeType::Token,
                AttributeType::Sensitive,
                AttributeType::Wrap,
                AttributeType::Unwrap,
            ],
        )
        .unwrap();
    assert!(attrs.contains(&Attribute::Token(true)));
    assert!(attrs.contains(&Attribute::Sensitive(true)));
    assert!(
        attrs.contains(&Attribute::Wrap(false)),
        "customer keys must not wrap other keys: {attrs:?}"
    );
    assert!(attrs.contains(&Attribute::Unwrap(false)));
}

#[test]
fn storage_and_audit_keys_are_not_extractable() {
    let _token = common::exclusive();
    for purpose in [KeyPurpose::Storage, KeyPurpose::Audit] {
        let key = hsm().generate_key(purpose, "test-system").unwrap();
        let s = raw_session();
        let h = s
            .find_objects(&[Attribute::Id(key.id.as_bytes().to_vec())])
            .unwrap()[0];
        let attrs = s.get_attributes(h, &[AttributeType::Extractable]).unwrap();
        assert_eq!(attrs, vec![Attribute::Extractable(false)], "{purpose:?}");
    }
}

#[test]
fn probe_finds_at_least_one_aws_wrap_algorithm() {
    let _token = common::shared();
    let caps = hsm().capabilities();
    eprintln!("probed wrap algorithms: {:?}", caps.wrap_algorithms);
    assert!(
        !caps.wrap_algorithms.is_empty(),
        "SoftHSMv2 supports RSA-OAEP with SHA-1 at least"
    );
    let mut sorted = caps.wrap_algorithms.clone();
    sorted.sort();
    assert_eq!(sorted, caps.wrap_algorithms, "strongest first");
}

/// Unwraps outside the HSM, as AWS would with its private key.
fn unwrap_outside(private: &RsaPrivateKey, alg: WrapAlgorithm, wrapped: &[u8]) -> Vec<u8> {
    let padding = |alg: WrapAlgorithm| {
        if alg.uses_sha256() {
            Oaep::new::<sha2::Sha256>()
        } else {
            Oaep::new::<sha1::Sha1>()
        }
    };
    if !alg.is_rsa_aes() {
        return private.decrypt(padding(alg), wrapped).unwrap();
    }
    let split = 3072 / 8;
    let ephemeral = private.decrypt(padding(alg), &wrapped[..split]).unwrap();
    let kek = aes_kw::KekAes256::new(ephemeral.as_slice().into());
    kek.unwrap_with_padding_vec(&wrapped[split..]).unwrap()
}

#[test]
fn wrap_under_rsa_3072_yields_the_key_that_encrypts_inside_the_hsm() {
    let _token = common::shared();
    let mut rng = rand_core_rng();
    let private = RsaPrivateKey::new(&mut rng, 3072).unwrap();
    let spki = private.to_public_key().to_public_key_der().unwrap();
    let caps = hsm().capabilities();
    for alg in caps.wrap_algorithms {
        let key = hsm()
            .generate_key(KeyPurpose::Customer, "test-wrap")
            .unwrap();
        let wrapped = hsm().wrap_key(&key.id, spki.as_bytes(), alg).unwrap();
        let material = unwrap_outside(&private, alg, &wrapped);
        assert_eq!(material.len(), 32, "{alg}");

        // Data sealed inside the HSM opens outside with the unwrapped bytes.
        let sealed = hsm().encrypt(&key.id, b"attack at dawn", b"aad").unwrap();
        let cipher = aes_gcm::Aes256Gcm::new_from_slice(&material).unwrap();
        let nonce = aes_gcm::Nonce::from_slice(&sealed[..12]);
        let opened = cipher
            .decrypt(
                nonce,
                Payload {
                    msg: &sealed[12..],
                    aad: b"aad",
                },
            )
            .unwrap();
        assert_eq!(opened, b"attack at dawn", "{alg}");

        // The fingerprint is the classic check value of exactly these bytes.
        use aes::cipher::BlockEncrypt;
        let mut block = aes::cipher::generic_array::GenericArray::from([0u8; 16]);
        aes::Aes256::new_from_slice(&material)
            .unwrap()
            .encrypt_block(&mut block);
        assert_eq!(
            key.fingerprint,
            Fingerprint::from_check_block(&block),
            "{alg}"
        );
        assert_eq!(hsm().fingerprint(&key.id).unwrap(), key.fingerprint);
    }
}

#[test]
fn wrapping_key_that_is_not_rsa_is_refused() {
    let _token = common::shared();
    let key = hsm()
        .generate_key(KeyPurpose::Customer, "test-badwrap")
        .unwrap();
    let alg = hsm().capabilities().best_wrap().unwrap();
    let err = hsm()
        .wrap_key(&key.id, b"\x30\x03\x02\x01\x01", alg)
        .unwrap_err();
    assert!(err.to_string().contains("RSA public key"), "{err}");
}

#[test]
fn gcm_round_trip_and_tamper_detection() {
    let _token = common::shared();
    let key = hsm().generate_key(KeyPurpose::Storage, "test-gcm").unwrap();
    let sealed = hsm()
        .encrypt(&key.id, b"secret access key", b"credential:prod")
        .unwrap();
    let opened = hsm().decrypt(&key.id, &sealed, b"credential:prod").unwrap();
    use secrecy::ExposeSecret;
    assert_eq!(opened.expose_secret(), b"secret access key");
    assert_invalid_ciphertext(
        hsm().decrypt(&key.id, &sealed, b"credential:other"),
        "AAD binds the ciphertext",
    );
    let mut flipped = sealed.clone();
    flipped[14] ^= 1;
    assert_invalid_ciphertext(
        hsm().decrypt(&key.id, &flipped, b"credential:prod"),
        "a flipped bit",
    );
}

/// A decryption the token refused because the ciphertext does not verify: typed, and not a
/// fault of the HSM (the context and the key stay usable).
#[track_caller]
fn assert_invalid_ciphertext(result: HsmResult<secrecy::SecretSlice<u8>>, why: &str) {
    match result {
        Err(HsmError::InvalidCiphertext { op: "decrypt", .. }) => {}
        Err(other) => panic!("{why}: expected InvalidCiphertext, got {other:?} ({other})"),
        Ok(_) => panic!("{why}: the ciphertext opened"),
    }
    assert_eq!(hsm().fault(), None, "{why}: a bad tag is not an HSM fault");
}

#[test]
fn a_failed_gcm_tag_is_invalid_ciphertext_and_leaves_the_hsm_healthy() {
    let _token = common::shared();
    let key = hsm().generate_key(KeyPurpose::Storage, "test-tag").unwrap();
    let sealed = hsm().encrypt(&key.id, b"payload", b"aad").unwrap();
    let mut tag = sealed.clone();
    *tag.last_mut().unwrap() ^= 0x80;
    assert_invalid_ciphertext(hsm().decrypt(&key.id, &tag, b"aad"), "a flipped tag bit");
    assert_invalid_ciphertext(
        hsm().decrypt(&key.id, &sealed[..20], b"aad"),
        "too short for a tag",
    );
    let err = hsm().decrypt(&key.id, &tag, b"aad").unwrap_err();
    assert!(err.to_string().contains("tag does not verify"), "{err}");
    // The same key, the same context: the next good ciphertext opens.
    use secrecy::ExposeSecret;
    let opened = hsm().decrypt(&key.id, &sealed, b"aad").unwrap();
    assert_eq!(opened.expose_secret(), b"payload");
    // Sealed under another key: the tag does not verify either.
    let other = hsm()
        .generate_key(KeyPurpose::Storage, "test-tag-other")
        .unwrap();
    assert_invalid_ciphertext(hsm().decrypt(&other.id, &sealed, b"aad"), "another key");
}

#[test]
fn hmac_sign_and_verify() {
    let _token = common::shared();
    let key = hsm().generate_key(KeyPurpose::Audit, "test-hmac").unwrap();
    let mac = hsm().hmac_sign(&key.id, b"record").unwrap();
    assert_eq!(mac.len(), 32);
    assert!(hsm().hmac_verify(&key.id, b"record", &mac).unwrap());
    assert!(!hsm().hmac_verify(&key.id, b"recorD", &mac).unwrap());
    assert!(!hsm().hmac_verify(&key.id, b"record", &[0; 32]).unwrap());
}

#[test]
fn find_and_destroy_by_id() {
    let _token = common::shared();
    let key = hsm()
        .generate_key(KeyPurpose::Customer, "test-destroy")
        .unwrap();
    assert_eq!(
        hsm().find_key(&key.id).unwrap().as_deref(),
        Some("test-destroy")
    );
    hsm().destroy_key(&key.id).unwrap();
    assert_eq!(hsm().find_key(&key.id).unwrap(), None);
    assert!(matches!(
        hsm().destroy_key(&key.id),
        Err(HsmError::KeyNotFound { id }) if id == key.id
    ));
}

#[test]
fn random_bytes_differ() {
    let _token = common::shared();
    let a = hsm().random(32).unwrap();
    let b = hsm().random(32).unwrap();
    assert_eq!(a.len(), 32);
    assert_ne!(a, b);
}

#[test]
fn anchor_is_kept_and_replaced_inside_the_token() {
    let _token = common::shared();
    assert!(hsm().read_anchors("test-anchor").unwrap().is_empty());
    hsm().write_anchor("test-anchor", b"one").unwrap();
    hsm().write_anchor("test-anchor", b"two").unwrap();
    assert_eq!(
        hsm().read_anchors("test-anchor").unwrap(),
        vec![b"two".to_vec()]
    );
}

#[test]
fn key_ids_lists_every_key_from_one_search_and_caches_their_handles() {
    let _token = common::exclusive();
    let keys: Vec<_> = (0..5)
        .map(|i| {
            hsm()
                .generate_key(KeyPurpose::Customer, &format!("test-list-{i}"))
                .unwrap()
                .id
        })
        .collect();
    pool().forget_handles();
    let (ids, searched) = searches_during(|| hsm().key_ids().unwrap());
    assert_eq!(searched, 1, "one search, whatever the key count");
    for id in &keys {
        assert!(ids.contains(id), "{id} listed");
        assert!(pool().caches_handle(id), "{id} cached by the listing");
    }
    let (_, searched) = searches_during(|| hsm().encrypt(&keys[1], b"x", b"").unwrap());
    assert_eq!(searched, 0, "a listed key needs no search of its own");
    hsm().destroy_key(&keys[0]).unwrap();
    assert!(!hsm().key_ids().unwrap().contains(&keys[0]));
    // Data objects (the audit head) are not keys.
    hsm().write_anchor("test-list-anchor", b"head").unwrap();
    assert_eq!(hsm().key_ids().unwrap().len(), ids.len() - 1);
    hsm().remove_anchors("test-list-anchor").unwrap();
}

#[test]
fn empty_data_objects_are_found_and_removed_and_nothing_else_is() {
    let _token = common::exclusive();
    let s = raw_session();
    let torn = common::create_torn_object(&s);
    let theirs = s
        .create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(true),
            Attribute::Label(b"someone else's".to_vec()),
        ])
        .unwrap();
    hsm().write_anchor("test-torn-anchor", b"head").unwrap();

    let found = hsm().torn_objects().unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains(&torn.handle().to_string()), "{found:?}");
    assert_eq!(hsm().remove_torn_objects().unwrap(), 1);
    assert!(hsm().torn_objects().unwrap().is_empty());
    assert_eq!(hsm().remove_torn_objects().unwrap(), 0);
    assert!(
        s.get_attributes(torn, &[AttributeType::Label]).is_err(),
        "gone"
    );
    assert_eq!(
        hsm().read_anchors("test-torn-anchor").unwrap(),
        vec![b"head".to_vec()],
        "the anchor stays"
    );
    assert!(
        s.get_attributes(theirs, &[AttributeType::Label]).is_ok(),
        "theirs stays"
    );
    s.destroy_object(theirs).unwrap();
    hsm().remove_anchors("test-torn-anchor").unwrap();
    assert_eq!(hsm().fault(), None);
}

#[test]
fn token_info_names_the_token() {
    let _token = common::shared();
    let info = hsm().token_info().unwrap();
    assert_eq!(info.label, token().provisioned.label);
    assert!(!info.serial.is_empty());
}

fn rand_core_rng() -> rsa::rand_core::OsRng {
    rsa::rand_core::OsRng
}

/// Many threads at once through the bounded pool: every call completes and every key is found.
#[test]
fn concurrent_callers_are_served_without_fault() {
    let _token = common::shared();
    let threads: Vec<_> = (0..8)
        .map(|i| {
            std::thread::spawn(move || {
                for _ in 0..5 {
                    let key = hsm()
                        .generate_key(KeyPurpose::Customer, &format!("test-conc-{i}"))
                        .unwrap();
                    let sealed = hsm().encrypt(&key.id, b"x", b"").unwrap();
                    hsm().decrypt(&key.id, &sealed, b"").unwrap();
                    hsm().destroy_key(&key.id).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(hsm().fault(), None);
}

// ---- the handle cache ----

fn pool() -> &'static Pkcs11Hsm {
    token().hsm.as_ref()
}

/// A new key that has sealed `plaintext`, so its handle is cached; with what it sealed.
fn used_key(purpose: KeyPurpose, label: &str, plaintext: &[u8]) -> (KeyId, Vec<u8>) {
    let key = hsm().generate_key(purpose, label).unwrap();
    let sealed = hsm().encrypt(&key.id, plaintext, b"").unwrap();
    assert!(pool().caches_handle(&key.id));
    (key.id, sealed)
}

/// How many object searches `f` made.
fn searches_during<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let before = pool().object_searches();
    let out = f();
    (out, pool().object_searches() - before)
}

#[test]
fn a_second_operation_on_the_same_key_does_not_search_again() {
    let _token = common::exclusive();
    let [storage, audit] = [
        (KeyPurpose::Storage, "test-cache"),
        (KeyPurpose::Audit, "test-cache-mac"),
    ]
    .map(|(purpose, label)| hsm().generate_key(purpose, label).unwrap());
    // A key just made is cached by its maker.
    assert!(pool().caches_handle(&storage.id));
    let (_, searched) = searches_during(|| {
        let sealed = hsm().encrypt(&storage.id, b"x", b"").unwrap();
        hsm().decrypt(&storage.id, &sealed, b"").unwrap();
        hsm().encrypt(&storage.id, b"y", b"").unwrap();
        assert_eq!(hsm().fingerprint(&storage.id).unwrap(), storage.fingerprint);
        let mac = hsm().hmac_sign(&audit.id, b"record").unwrap();
        assert!(hsm().hmac_verify(&audit.id, b"record", &mac).unwrap());
    });
    assert_eq!(searched, 0, "every handle came from the cache");

    // A key the cache does not hold is searched once, then cached.
    pool().forget_handles();
    assert!(!pool().caches_handle(&storage.id));
    let (_, searched) = searches_during(|| hsm().encrypt(&storage.id, b"x", b"").unwrap());
    assert_eq!(searched, 1, "the first operation finds the key");
    let (_, searched) = searches_during(|| hsm().encrypt(&storage.id, b"x", b"").unwrap());
    assert_eq!(searched, 0, "the second one does not search again");

    // find_key asks the token every time: the health check relies on it.
    let (label, searched) = searches_during(|| hsm().find_key(&storage.id).unwrap());
    assert_eq!(label.as_deref(), Some("test-cache"));
    assert_eq!(searched, 1);
}

#[test]
fn a_context_reset_empties_the_handle_cache() {
    let _token = common::exclusive();
    let (id, sealed) = used_key(KeyPurpose::Storage, "test-cache-reset", b"before");

    hsm().reset();
    assert!(
        !pool().caches_handle(&id),
        "the cache went with the context"
    );
    let (opened, searched) = searches_during(|| hsm().decrypt(&id, &sealed, b"").unwrap());
    use secrecy::ExposeSecret;
    assert_eq!(opened.expose_secret(), b"before");
    assert_eq!(searched, 1, "the rebuilt context finds the key afresh");
    assert!(pool().caches_handle(&id));
    let (_, searched) = searches_during(|| hsm().encrypt(&id, b"after", b"").unwrap());
    assert_eq!(searched, 0);
    assert_eq!(hsm().fault(), None);
}

#[test]
fn a_destroyed_key_leaves_the_cache() {
    let _token = common::shared();
    let (id, _) = used_key(KeyPurpose::Customer, "test-cache-destroy", b"x");
    hsm().destroy_key(&id).unwrap();
    assert!(
        !pool().caches_handle(&id),
        "destroying a key drops its entry"
    );
    assert!(matches!(
        hsm().encrypt(&id, b"x", b""),
        Err(HsmError::KeyNotFound { id: missing }) if missing == id
    ));
    assert!(!pool().caches_handle(&id));
}

/// Destroys the key with this id through a raw session, behind the pool's back.
fn destroy_behind_the_pool(s: &cryptoki::session::Session, id: &KeyId) {
    for h in s
        .find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Id(id.as_bytes().to_vec()),
        ])
        .unwrap()
    {
        s.destroy_object(h).unwrap();
    }
}

#[test]
fn a_stale_handle_is_evicted_and_the_key_searched_once_more() {
    let _token = common::exclusive();
    let (id, sealed) = used_key(KeyPurpose::Storage, "test-cache-stale", b"old key");

    // The key replaced behind the pool's back, under the same id: the cached handle is stale.
    let s = raw_session();
    destroy_behind_the_pool(&s, &id);
    s.generate_key(
        &cryptoki::mechanism::Mechanism::AesKeyGen,
        &[
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(cryptoki::object::KeyType::AES),
            Attribute::ValueLen(32.into()),
            Attribute::Id(id.as_bytes().to_vec()),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
        ],
    )
    .unwrap();
    let (fresh, searched) = searches_during(|| hsm().encrypt(&id, b"new key", b"").unwrap());
    assert_eq!(searched, 1, "one retry with a fresh search");
    assert!(pool().caches_handle(&id));
    use secrecy::ExposeSecret;
    assert_eq!(
        hsm().decrypt(&id, &fresh, b"").unwrap().expose_secret(),
        b"new key"
    );
    // What the old key sealed does not open under the new one.
    assert_invalid_ciphertext(hsm().decrypt(&id, &sealed, b""), "sealed under the old key");

    // Gone altogether: the stale entry is evicted and the fresh search finds nothing.
    destroy_behind_the_pool(&s, &id);
    let (result, searched) = searches_during(|| hsm().encrypt(&id, b"x", b""));
    assert!(
        matches!(result, Err(HsmError::KeyNotFound { id: missing }) if missing == id),
        "{result:?}"
    );
    assert_eq!(searched, 1);
    assert!(!pool().caches_handle(&id));
    assert_eq!(hsm().fault(), None);
}
