//! The secrets keystore, in libbeat's file format so a keystore made by Packetbeat works here and
//! the other way round (elastic-agent-libs `keystore/file_keystore.go`):
//!
//! ```text
//! "v1" base64( salt[64] | iv[12] | AES-256-GCM( JSON {"key": {"value": base64(secret)}, …} ) )
//! ```
//!
//! The AES key is PBKDF2-HMAC-SHA512 of the password over the salt, 10000 rounds, 32 bytes; the
//! password is empty (Beats offers no other). The format is hand-written because it is Beats' own;
//! the cryptography is `ring`'s (already linked through rustls). Values are resolved in the
//! configuration as `${key}`, before the environment, as libbeat's resolver order has it.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use ring::rand::{SecureRandom, SystemRandom};
use std::collections::BTreeMap;
use std::io::Write;
use std::num::NonZeroU32;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;

const VERSION: &[u8] = b"v1";
const SALT_LEN: usize = 64;
const IV_LEN: usize = 12;
const ROUNDS: u32 = 10_000;
const FILE_MODE: u32 = 0o600;

/// The secrets of one keystore file, as loaded (or empty when the file does not exist).
#[derive(Debug, Clone)]
pub struct FileKeystore {
    path: PathBuf,
    secrets: BTreeMap<String, Vec<u8>>,
    persisted: bool,
}

/// One secret as Beats serialises it: Go's `[]byte` is base64 in JSON (nil is `null`).
#[derive(serde::Serialize, serde::Deserialize)]
struct Secret {
    #[serde(with = "b64")]
    value: Vec<u8>,
}

mod b64 {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(Vec::new()),
            Some(s) => base64::engine::general_purpose::STANDARD
                .decode(s.as_bytes())
                .map_err(serde::de::Error::custom),
        }
    }
}

impl FileKeystore {
    /// Opens the keystore at `path`: its secrets when the file exists, none otherwise. With
    /// `strict_perms` the file must be owned by this user (or root) and have mode 0600.
    pub fn open(path: &Path, strict_perms: bool) -> Result<FileKeystore, String> {
        let raw = match std::fs::read(path) {
            Ok(raw) => raw,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(FileKeystore {
                    path: path.to_path_buf(),
                    secrets: BTreeMap::new(),
                    persisted: false,
                })
            }
            Err(e) => {
                return Err(format!(
                    "open {}: {}",
                    path.display(),
                    crate::config::io_msg(&e)
                ))
            }
        };
        if strict_perms {
            check_permissions(path)?;
        }
        let secrets = decode(&raw)?;
        Ok(FileKeystore {
            path: path.to_path_buf(),
            secrets,
            persisted: true,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the keystore file exists.
    pub fn is_persisted(&self) -> bool {
        self.persisted
    }

    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.secrets.get(key).map(Vec::as_slice)
    }

    /// The keys, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.secrets.keys().map(String::as_str)
    }

    pub fn store(&mut self, key: &str, value: Vec<u8>) {
        self.secrets.insert(key.to_string(), value);
    }

    pub fn delete(&mut self, key: &str) -> bool {
        self.secrets.remove(key).is_some()
    }

    /// Empties the keystore and writes it.
    pub fn create(&mut self) -> Result<(), String> {
        self.secrets.clear();
        self.save()
    }

    /// Writes the keystore: to `<path>.tmp` (mode 0600, synced), then renamed over the file.
    pub fn save(&mut self) -> Result<(), String> {
        let text =
            encode(&self.secrets).map_err(|e| format!("cannot encrypt the keystore: {e}"))?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // libbeat creates the data directory 0750.
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o750)
                .create(dir)
                .map_err(|e| {
                    format!(
                        "cannot create the keystore directory '{}': {}",
                        dir.display(),
                        crate::config::io_msg(&e)
                    )
                })?;
        }
        let tmp = PathBuf::from(format!("{}.tmp", self.path.display()));
        let written = (|| {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(FILE_MODE)
                .open(&tmp)?;
            f.write_all(&text)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(format!(
                "cannot save the keystore to '{}', error: {}",
                self.path.display(),
                crate::config::io_msg(&e)
            ));
        }
        self.persisted = true;
        Ok(())
    }
}

/// libbeat's check: owned by the effective user or root, and exactly 0600.
fn check_permissions(path: &Path) -> Result<(), String> {
    let md = std::fs::metadata(path).map_err(|e| crate::config::io_msg(&e))?;
    let euid = unsafe { libc::geteuid() };
    if md.uid() != 0 && md.uid() != euid {
        return Err(format!(
            "config file (\"{}\") must be owned by the user identifier (uid={euid}) or root",
            path.display()
        ));
    }
    let perm = md.permissions().mode() & 0o777;
    if perm != FILE_MODE {
        let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        return Err(format!(
            "file (\"{}\") can only be writable and readable by the owner but the permissions are \"{}\" (to fix the permissions use: 'chmod go-wrx {}')",
            path.display(),
            go_file_mode(perm),
            abs.display()
        ));
    }
    Ok(())
}

/// Go's `os.FileMode.String()` of a regular file's permission bits (`-rw-r--r--`).
fn go_file_mode(perm: u32) -> String {
    let mut s = String::from("-");
    for shift in [6, 3, 0] {
        let bits = (perm >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
}

fn derive_key(salt: &[u8]) -> [u8; 32] {
    let mut key = [0u8; 32];
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA512,
        NonZeroU32::new(ROUNDS).expect("non-zero"),
        salt,
        b"",
        &mut key,
    );
    key
}

fn cipher(salt: &[u8]) -> LessSafeKey {
    let key = UnboundKey::new(&AES_256_GCM, &derive_key(salt)).expect("32-byte key");
    LessSafeKey::new(key)
}

/// The file's bytes for these secrets.
fn encode(secrets: &BTreeMap<String, Vec<u8>>) -> Result<Vec<u8>, String> {
    let map: BTreeMap<&str, Secret> = secrets
        .iter()
        .map(|(k, v)| (k.as_str(), Secret { value: v.clone() }))
        .collect();
    // Go's json.Encoder ends its document with a newline.
    let mut plain = serde_json::to_vec(&map).map_err(|e| e.to_string())?;
    plain.push(b'\n');
    let rng = SystemRandom::new();
    let mut salt = [0u8; SALT_LEN];
    let mut iv = [0u8; IV_LEN];
    rng.fill(&mut salt)
        .map_err(|_| "no random bytes".to_string())?;
    rng.fill(&mut iv)
        .map_err(|_| "no random bytes".to_string())?;
    cipher(&salt)
        .seal_in_place_append_tag(Nonce::assume_unique_for_key(iv), Aad::empty(), &mut plain)
        .map_err(|_| "AES-GCM seal failed".to_string())?;
    let mut payload = Vec::with_capacity(SALT_LEN + IV_LEN + plain.len());
    payload.extend_from_slice(&salt);
    payload.extend_from_slice(&iv);
    payload.extend_from_slice(&plain);
    let mut out = VERSION.to_vec();
    out.extend_from_slice(
        base64::engine::general_purpose::STANDARD
            .encode(payload)
            .as_bytes(),
    );
    Ok(out)
}

/// The secrets in a keystore file's bytes, with libbeat's messages for what is wrong.
fn decode(raw: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let got = &raw[..raw.len().min(VERSION.len())];
    if got != VERSION {
        return Err(format!(
            "keystore format doesn't match expected version: 'v1' got '{}'",
            String::from_utf8_lossy(got)
        ));
    }
    if raw.len() <= VERSION.len() {
        return Err("corrupt or empty keystore".into());
    }
    let body: Vec<u8> = raw[VERSION.len()..]
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let data = base64::engine::general_purpose::STANDARD
        .decode(&body)
        .map_err(|e| format!("could not decrypt the keystore: {e}"))?;
    if data.len() < SALT_LEN + IV_LEN + 1 {
        return Err("could not decrypt the keystore: missing information in the file for decrypting the keystore".into());
    }
    let (salt, rest) = data.split_at(SALT_LEN);
    let (iv, sealed) = rest.split_at(IV_LEN);
    let mut sealed = sealed.to_vec();
    let iv: [u8; IV_LEN] = iv.try_into().expect("IV_LEN bytes");
    let plain = cipher(salt)
        .open_in_place(Nonce::assume_unique_for_key(iv), Aad::empty(), &mut sealed)
        .map_err(|_| {
            "could not decrypt the keystore: could not decrypt keystore data: cipher: message authentication failed".to_string()
        })?;
    let map: BTreeMap<String, Secret> =
        serde_json::from_slice(plain).map_err(|e| format!("could not decode the keystore: {e}"))?;
    Ok(map.into_iter().map(|(k, s)| (k, s.value)).collect())
}

#[cfg(test)]
mod tests;
