//! Purser's keys. The only crate that touches private key material.
//!
//! - [`MasterKey`]: 32 bytes from `PURSER_MASTER_KEY` or a 0600 key file beside the
//!   database. It seals every other key with XChaCha20-Poly1305; the sealed form is
//!   bound to its owner (the wallet id) as associated data, so a sealed key copied
//!   onto another wallet's row does not open.
//! - [`WalletKey`]: a wallet's secp256k1 key and its EVM address.
//! - [`TokenSigningKey`]: the Ed25519 key that signs agent JWTs (published as a JWK).
//!
//! No type here prints key material: `Debug` shows addresses and key ids only.

use std::fmt;
use std::io::Write;
use std::path::Path;

use alloy_primitives::{Address, B256};
use alloy_signer_local::PrivateKeySigner;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use purser_types::Secret;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Why a key could not be loaded, created or opened.
#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    /// `PURSER_MASTER_KEY` or the key file does not hold 32 bytes in hex or base64.
    #[error("the master key must be 32 bytes, written as 64 hex digits or base64")]
    BadMasterKey,
    /// The key file could not be read or created.
    #[error("master key file {path}: {source}")]
    KeyFile {
        /// The file.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The key file is readable by others than its owner.
    #[error("master key file {0} must not be readable by group or others (chmod 600)")]
    KeyFilePermissions(String),
    /// A sealed value did not open: wrong master key, wrong owner, or damage.
    #[error("a sealed key did not open with this master key")]
    Unseal,
    /// The operating system's randomness failed.
    #[error("the operating system's random number generator failed")]
    Randomness,
    /// Key material did not form a valid key.
    #[error("invalid key material")]
    InvalidKey,
}

/// Fills a buffer from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], SignerError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|_| SignerError::Randomness)?;
    Ok(bytes)
}

const SEALED_PREFIX: &str = "xc20p1:";
const NONCE_LEN: usize = 24;

/// The key that seals every other key.
pub struct MasterKey(Secret<[u8; 32]>);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

impl MasterKey {
    /// A fresh random master key.
    pub fn generate() -> Result<MasterKey, SignerError> {
        Ok(MasterKey(Secret::new(random_bytes()?)))
    }

    /// Parses 64 hex digits or standard base64 of 32 bytes.
    pub fn parse(text: &str) -> Result<MasterKey, SignerError> {
        let text = text.trim();
        let bytes = Zeroizing::new(if text.len() == 64 {
            hex::decode(text).map_err(|_| SignerError::BadMasterKey)?
        } else {
            STANDARD
                .decode(text)
                .map_err(|_| SignerError::BadMasterKey)?
        });
        let key: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| SignerError::BadMasterKey)?;
        Ok(MasterKey(Secret::new(key)))
    }

    /// Reads the key file, or creates it (mode 0600, never overwriting) with a new
    /// random key. Returns the key and whether it was created.
    pub fn load_or_create(path: &Path) -> Result<(MasterKey, bool), SignerError> {
        let io = |source| SignerError::KeyFile {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                check_private(path)?;
                Ok((MasterKey::parse(&text)?, false))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = MasterKey::generate()?;
                let mut file = create_private(path).map_err(io)?;
                let encoded = Zeroizing::new(hex::encode(key.0.expose()));
                file.write_all(encoded.as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(io)?;
                Ok((key, true))
            }
            Err(e) => Err(io(e)),
        }
    }

    /// A public fingerprint of the key, stored beside the data so a server started
    /// with the wrong master key refuses to run instead of failing later.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::new()
            .chain_update(b"purser-master-key-fingerprint-v1")
            .chain_update(self.0.expose())
            .finalize();
        hex::encode(&digest[..16])
    }

    /// A 32-byte key for one `purpose`, derived from the master key: every server
    /// that shares the master key derives the same key, and no derived key reveals
    /// the master key or another purpose's key.
    pub fn derive_key(&self, purpose: &str) -> Secret<[u8; 32]> {
        let digest = Sha256::new()
            .chain_update(b"purser-derived-key-v1\0")
            .chain_update(purpose.as_bytes())
            .chain_update(b"\0")
            .chain_update(self.0.expose())
            .finalize();
        Secret::new(digest.into())
    }

    /// Encrypts `plaintext` for `owner` (associated data). The result is text.
    pub fn seal(&self, plaintext: &[u8], owner: &str) -> Result<String, SignerError> {
        let cipher = XChaCha20Poly1305::new(self.0.expose().into());
        let nonce: [u8; NONCE_LEN] = random_bytes()?;
        let payload = Payload {
            msg: plaintext,
            aad: owner.as_bytes(),
        };
        let ciphertext = cipher
            .encrypt(XNonce::from_slice(&nonce), payload)
            .map_err(|_| SignerError::InvalidKey)?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        Ok(format!("{SEALED_PREFIX}{}", STANDARD.encode(sealed)))
    }

    /// Decrypts what [`MasterKey::seal`] produced for the same `owner`.
    pub fn open(&self, sealed: &str, owner: &str) -> Result<Zeroizing<Vec<u8>>, SignerError> {
        let body = sealed
            .strip_prefix(SEALED_PREFIX)
            .ok_or(SignerError::Unseal)?;
        let bytes = STANDARD.decode(body).map_err(|_| SignerError::Unseal)?;
        if bytes.len() < NONCE_LEN {
            return Err(SignerError::Unseal);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let cipher = XChaCha20Poly1305::new(self.0.expose().into());
        let payload = Payload {
            msg: ciphertext,
            aad: owner.as_bytes(),
        };
        cipher
            .decrypt(XNonce::from_slice(nonce), payload)
            .map(Zeroizing::new)
            .map_err(|_| SignerError::Unseal)
    }
}

#[cfg(unix)]
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), SignerError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|source| SignerError::KeyFile {
            path: path.display().to_string(),
            source,
        })?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(SignerError::KeyFilePermissions(path.display().to_string()));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), SignerError> {
    Ok(())
}

/// A wallet's secp256k1 key.
pub struct WalletKey(PrivateKeySigner);

impl fmt::Debug for WalletKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WalletKey({})", self.address())
    }
}

impl WalletKey {
    /// A fresh random key.
    pub fn generate() -> Result<WalletKey, SignerError> {
        // A random 256-bit value is a valid scalar except with probability ~2^-128;
        // try again in that case rather than bias the key.
        for _ in 0..4 {
            let bytes = Zeroizing::new(random_bytes::<32>()?);
            if let Ok(signer) = PrivateKeySigner::from_bytes(&B256::from(*bytes)) {
                return Ok(WalletKey(signer));
            }
        }
        Err(SignerError::InvalidKey)
    }

    /// The wallet's EVM address.
    pub fn address(&self) -> Address {
        self.0.address()
    }

    /// The address in EIP-55 mixed case.
    pub fn address_checksummed(&self) -> String {
        self.address().to_checksum(None)
    }

    /// Seals the key for storage on the row of wallet `owner`.
    pub fn seal(&self, master: &MasterKey, owner: &str) -> Result<String, SignerError> {
        let bytes = Zeroizing::new(self.0.to_bytes().0);
        master.seal(bytes.as_slice(), owner)
    }

    /// Opens a sealed key of wallet `owner`.
    pub fn unseal(master: &MasterKey, sealed: &str, owner: &str) -> Result<WalletKey, SignerError> {
        let bytes = master.open(sealed, owner)?;
        PrivateKeySigner::from_slice(&bytes)
            .map(WalletKey)
            .map_err(|_| SignerError::InvalidKey)
    }

    /// Signs a 32-byte digest exactly as given (an EIP-712 signing hash built by
    /// `purser-chain`) and returns the 65-byte signature, `0x`-hex (r ‖ s ‖ v).
    pub fn sign_digest(&self, digest: &[u8; 32]) -> Result<String, SignerError> {
        use alloy_signer::SignerSync;
        let signature = self
            .0
            .sign_hash_sync(&B256::from(*digest))
            .map_err(|_| SignerError::InvalidKey)?;
        Ok(format!("0x{}", hex::encode(signature.as_bytes())))
    }

    /// The signer, for the signing operations later layers add.
    pub fn signer(&self) -> &PrivateKeySigner {
        &self.0
    }
}

/// The Ed25519 key that signs agent JWTs.
pub struct TokenSigningKey {
    pkcs8: Zeroizing<Vec<u8>>,
    public_key: [u8; 32],
}

impl fmt::Debug for TokenSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenSigningKey(kid={})", self.key_id())
    }
}

/// Whose sealed value the token key is, for the AEAD's associated data.
const TOKEN_KEY_OWNER: &str = "purser:agent-token-key";

impl TokenSigningKey {
    /// A fresh random key.
    pub fn generate() -> Result<TokenSigningKey, SignerError> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let document = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| SignerError::Randomness)?;
        TokenSigningKey::from_pkcs8(document.as_ref().to_vec())
    }

    fn from_pkcs8(pkcs8: Vec<u8>) -> Result<TokenSigningKey, SignerError> {
        let pkcs8 = Zeroizing::new(pkcs8);
        let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|_| SignerError::InvalidKey)?;
        let public_key: [u8; 32] = pair
            .public_key()
            .as_ref()
            .try_into()
            .map_err(|_| SignerError::InvalidKey)?;
        Ok(TokenSigningKey { pkcs8, public_key })
    }

    /// Seals the key for storage.
    pub fn seal(&self, master: &MasterKey) -> Result<String, SignerError> {
        master.seal(&self.pkcs8, TOKEN_KEY_OWNER)
    }

    /// Opens a sealed key.
    pub fn unseal(master: &MasterKey, sealed: &str) -> Result<TokenSigningKey, SignerError> {
        TokenSigningKey::from_pkcs8(master.open(sealed, TOKEN_KEY_OWNER)?.to_vec())
    }

    /// The private key as PKCS#8 DER, for the JWT encoder.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The public key, base64url without padding (a JWK's `x`).
    pub fn public_key_b64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.public_key)
    }

    /// The key id: the first 16 bytes of SHA-256 of the public key, base64url.
    pub fn key_id(&self) -> String {
        URL_SAFE_NO_PAD.encode(&Sha256::digest(self.public_key)[..16])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_for_their_owner_and_master() {
        let master = MasterKey::generate().unwrap();
        let other = MasterKey::generate().unwrap();
        let key = WalletKey::generate().unwrap();
        let sealed = key.seal(&master, "wal_a").unwrap();
        let opened = WalletKey::unseal(&master, &sealed, "wal_a").unwrap();
        assert_eq!(opened.address(), key.address());
        assert!(matches!(
            WalletKey::unseal(&master, &sealed, "wal_b"),
            Err(SignerError::Unseal)
        ));
        assert!(matches!(
            WalletKey::unseal(&other, &sealed, "wal_a"),
            Err(SignerError::Unseal)
        ));
        let mut damaged = sealed.clone();
        damaged.replace_range(20..21, if &sealed[20..21] == "A" { "B" } else { "A" });
        assert!(WalletKey::unseal(&master, &damaged, "wal_a").is_err());
    }

    #[test]
    fn nothing_prints_key_material() {
        let master = MasterKey::generate().unwrap();
        assert_eq!(format!("{master:?}"), "MasterKey(***)");
        let key = WalletKey::generate().unwrap();
        let secret_hex = hex::encode(key.signer().to_bytes());
        assert!(!format!("{key:?}").contains(&secret_hex));
        assert!(format!("{key:?}").contains(&key.address_checksummed()));
        let token_key = TokenSigningKey::generate().unwrap();
        assert!(format!("{token_key:?}").starts_with("TokenSigningKey(kid="));
    }

    #[test]
    fn master_key_parses_hex_and_base64_only_at_32_bytes() {
        let hex_key = "11".repeat(32);
        let b64_key = STANDARD.encode([0x11u8; 32]);
        let a = MasterKey::parse(&hex_key).unwrap();
        let b = MasterKey::parse(&b64_key).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert!(MasterKey::parse("11").is_err());
        assert!(MasterKey::parse(&"zz".repeat(32)).is_err());
        assert!(MasterKey::parse(&STANDARD.encode([0u8; 31])).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn key_file_is_created_private_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!(
            "purser-key-{}",
            hex::encode(random_bytes::<8>().unwrap())
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("purser.key");
        let (first, created) = MasterKey::load_or_create(&path).unwrap();
        assert!(created);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (second, created) = MasterKey::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(first.fingerprint(), second.fingerprint());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            MasterKey::load_or_create(&path),
            Err(SignerError::KeyFilePermissions(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn token_key_round_trips_through_its_seal() {
        let master = MasterKey::generate().unwrap();
        let key = TokenSigningKey::generate().unwrap();
        let opened = TokenSigningKey::unseal(&master, &key.seal(&master).unwrap()).unwrap();
        assert_eq!(opened.key_id(), key.key_id());
        assert_eq!(opened.public_key_b64url(), key.public_key_b64url());
    }
}
