use super::*;

/// Written by Go's crypto with the steps of elastic-agent-libs' `FileKeystore.doSave`
/// (`{"empty":{"value":""},"es.password":{"value":"Y2hhbmdlbWU="},"ports":{"value":"WzgwLDgwODBd"}}`).
const GO_MADE: &[u8] = include_bytes!("testdata/go-made.keystore");

#[test]
fn reads_a_keystore_written_by_go() {
    let secrets = decode(GO_MADE).unwrap();
    assert_eq!(secrets.len(), 3);
    assert_eq!(secrets["es.password"], b"changeme");
    assert_eq!(secrets["ports"], b"[80,8080]");
    assert_eq!(secrets["empty"], b"");
}

#[test]
fn what_it_writes_it_reads_back_and_each_save_is_salted_anew() {
    let mut s = BTreeMap::new();
    s.insert("a".to_string(), b"secret \x00 with bytes \xff".to_vec());
    s.insert("b".to_string(), Vec::new());
    let one = encode(&s).unwrap();
    let two = encode(&s).unwrap();
    assert!(one.starts_with(b"v1"));
    assert_ne!(one, two, "fresh salt and IV per save");
    assert_eq!(decode(&one).unwrap(), s);
    assert_eq!(decode(&two).unwrap(), s);
}

#[test]
fn a_flipped_byte_or_a_wrong_version_is_an_error() {
    let mut bad = GO_MADE.to_vec();
    let i = bad.len() - 10;
    bad[i] = if bad[i] == b'A' { b'B' } else { b'A' };
    assert!(
        decode(&bad).unwrap_err().contains("could not decrypt"),
        "{:?}",
        decode(&bad)
    );
    assert_eq!(
        decode(b"v2abc").unwrap_err(),
        "keystore format doesn't match expected version: 'v1' got 'v2'"
    );
    assert_eq!(decode(b"v1").unwrap_err(), "corrupt or empty keystore");
    assert!(decode(b"v1AAAA")
        .unwrap_err()
        .contains("missing information"));
}

#[test]
fn file_round_trip_with_strict_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data/packetbeat.keystore");
    let mut ks = FileKeystore::open(&path, true).unwrap();
    assert!(!ks.is_persisted());
    ks.create().unwrap();
    ks.store("k", b"v".to_vec());
    ks.save().unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let again = FileKeystore::open(&path, true).unwrap();
    assert!(again.is_persisted());
    assert_eq!(again.get("k"), Some(&b"v"[..]));
    assert_eq!(again.keys().collect::<Vec<_>>(), ["k"]);

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = FileKeystore::open(&path, true).unwrap_err();
    assert!(
        err.contains(
            "can only be writable and readable by the owner but the permissions are \"-rw-r--r--\""
        ),
        "{err}"
    );
    assert!(FileKeystore::open(&path, false).is_ok());
}
