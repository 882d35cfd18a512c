//! The callers file (`--callers`): who may call, known by the SHA-256 of a
//! bearer key or by a DNS SAN of its client certificate, with its projects and
//! role. Parsed whole or not at all; errors name the line.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::limits::CallerLimits;
use super::permissions::Role;

/// The name of the one caller of a gateway without a callers file.
pub(crate) const ANONYMOUS: &str = "anonymous";
/// The name logs and metrics give a call without a known identity.
pub(crate) const UNKNOWN: &str = "unknown";

/// One known caller and its running counts (rate bucket, open watches).
#[derive(Debug)]
pub(crate) struct Caller {
    pub(crate) name: Arc<str>,
    key_sha256: Option<[u8; 32]>,
    client_cert_dns: Option<String>,
    /// None: any project ("*").
    projects: Option<Vec<String>>,
    pub(crate) role: Role,
    pub(crate) limits: Arc<CallerLimits>,
}

impl Caller {
    /// The caller of a gateway without a callers file: admin of every project.
    pub(crate) fn anonymous() -> Caller {
        Caller {
            name: ANONYMOUS.into(),
            key_sha256: None,
            client_cert_dns: None,
            projects: None,
            role: Role::Admin,
            limits: Arc::default(),
        }
    }

    pub(crate) fn may_act_in(&self, project: &str) -> bool {
        self.projects
            .as_ref()
            .is_none_or(|projects| projects.iter().any(|p| p == project))
    }
}

/// Every caller of one version of the callers file.
#[derive(Debug, Default)]
pub(crate) struct CallerTable {
    callers: Vec<Arc<Caller>>,
}

impl CallerTable {
    /// The caller whose key hashes to the SHA-256 of `key`. Every entry is
    /// compared, each in constant time, so the time taken says nothing about
    /// which bytes matched.
    pub(crate) fn by_key(&self, key: &[u8]) -> Option<Arc<Caller>> {
        let hash: [u8; 32] = Sha256::digest(key).into();
        let mut found = None;
        for caller in &self.callers {
            if let Some(known) = &caller.key_sha256
                && constant_time_eq(known, &hash)
                && found.is_none()
            {
                found = Some(caller.clone());
            }
        }
        found
    }

    /// The caller named by one of `dns_names` (a client certificate's DNS SANs).
    pub(crate) fn by_dns_name<'a>(&self, mut dns_names: impl Iterator<Item = &'a str>) -> Option<Arc<Caller>> {
        dns_names.find_map(|name| {
            self.callers
                .iter()
                .find(|c| {
                    c.client_cert_dns
                        .as_deref()
                        .is_some_and(|dns| dns.eq_ignore_ascii_case(name))
                })
                .cloned()
        })
    }

    /// How many callers the file names.
    pub(crate) fn len(&self) -> usize {
        self.callers.len()
    }

    /// This table's callers keep the counts of same-named callers of `previous`,
    /// so a reload neither refills a bucket nor forgets open watches.
    pub(crate) fn carry_limits_from(mut self, previous: &CallerTable) -> CallerTable {
        for caller in &mut self.callers {
            if let Some(old) = previous.callers.iter().find(|old| old.name == caller.name)
                && let Some(caller) = Arc::get_mut(caller)
            {
                caller.limits = old.limits.clone();
            }
        }
        self
    }
}

/// No early exit: every byte is looked at whatever the first difference.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

/// The line `vbs-gateway hash-key` prints for `key`, ready for a `[[caller]]` entry.
pub(crate) fn key_sha256_line(key: &str) -> String {
    format!("key_sha256 = \"{}\"", hex(&Sha256::digest(key.as_bytes())))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a callers file cannot be used, with the line at fault when known.
#[derive(Debug, Clone, thiserror::Error)]
#[error("--callers {}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct CallersFileError {
    path: PathBuf,
    line: Option<usize>,
    message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileText {
    #[serde(default)]
    caller: Vec<toml::Spanned<Entry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    key_sha256: Option<KeyHash>,
    client_cert_dns: Option<String>,
    projects: Vec<String>,
    role: Role,
}

/// 64 hex digits, checked as the file is parsed so the error has its line.
struct KeyHash([u8; 32]);

impl<'de> Deserialize<'de> for KeyHash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<KeyHash, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_hash(&text)
            .map(KeyHash)
            .ok_or_else(|| serde::de::Error::custom("key_sha256 must be 64 hex digits (see `vbs-gateway hash-key`)"))
    }
}

fn parse_hash(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut hash = [0u8; 32];
    for (i, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(hash)
}

/// Reads and checks the callers file at `path`; its table and its bytes.
pub(crate) fn load(path: &Path) -> Result<(CallerTable, Vec<u8>), CallersFileError> {
    let bytes = std::fs::read(path).map_err(|e| CallersFileError {
        path: path.to_path_buf(),
        line: None,
        message: e.to_string(),
    })?;
    Ok((from_bytes(path, &bytes)?, bytes))
}

/// Checks the text of the callers file at `path`.
pub(crate) fn from_bytes(path: &Path, bytes: &[u8]) -> Result<CallerTable, CallersFileError> {
    let text = std::str::from_utf8(bytes).map_err(|e| CallersFileError {
        path: path.to_path_buf(),
        line: None,
        message: format!("not UTF-8: {e}"),
    })?;
    parse(text).map_err(|(offset, message)| CallersFileError {
        path: path.to_path_buf(),
        line: offset.map(|at| line_of(text, at)),
        message,
    })
}

/// The 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.bytes().take(offset).filter(|&b| b == b'\n').count() + 1
}

/// The table in `text`, or the byte offset and reason of the first fault.
fn parse(text: &str) -> Result<CallerTable, (Option<usize>, String)> {
    let file: FileText = toml::from_str(text).map_err(|e| (e.span().map(|s| s.start), e.message().to_string()))?;
    let mut callers: Vec<Arc<Caller>> = Vec::with_capacity(file.caller.len());
    for spanned in file.caller {
        let at = Some(spanned.span().start);
        let entry = spanned.into_inner();
        let fail = |message: String| Err((at, message));
        if entry.name.is_empty() || entry.name == ANONYMOUS || entry.name == UNKNOWN {
            return fail(format!("a caller needs a name other than {ANONYMOUS:?} or {UNKNOWN:?}"));
        }
        if entry.key_sha256.is_none() && entry.client_cert_dns.is_none() {
            return fail(format!("caller {:?} needs key_sha256 or client_cert_dns", entry.name));
        }
        if entry.projects.is_empty() {
            return fail(format!(
                "caller {:?} names no project (use [\"*\"] for any)",
                entry.name
            ));
        }
        let key = entry.key_sha256.map(|k| k.0);
        for other in &callers {
            if other.name.as_ref() == entry.name {
                return fail(format!("caller {:?} is named twice", entry.name));
            }
            if key.is_some() && other.key_sha256 == key {
                return fail(format!(
                    "callers {:?} and {:?} have the same key",
                    other.name, entry.name
                ));
            }
            if let (Some(a), Some(b)) = (&other.client_cert_dns, &entry.client_cert_dns)
                && a.eq_ignore_ascii_case(b)
            {
                return fail(format!(
                    "callers {:?} and {:?} have the same client_cert_dns",
                    other.name, entry.name
                ));
            }
        }
        let any_project = entry.projects.iter().any(|p| p == "*");
        callers.push(Arc::new(Caller {
            name: entry.name.into(),
            key_sha256: key,
            client_cert_dns: entry.client_cert_dns,
            projects: (!any_project).then_some(entry.projects),
            role: entry.role,
            limits: Arc::default(),
        }));
    }
    Ok(CallerTable { callers })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BILLING: &str = "billing-key-7c1e";

    fn table(text: &str) -> CallerTable {
        parse(text).unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn billing() -> String {
        format!(
            "[[caller]]\nname = \"billing\"\n{}\nprojects = [\"p1\"]\nrole = \"reader\"\n\n[[caller]]\nname = \"ops\"\nclient_cert_dns = \"ops.internal\"\nprojects = [\"*\"]\nrole = \"admin\"\n",
            key_sha256_line(BILLING)
        )
    }

    #[test]
    fn finds_callers_by_key_and_by_certificate_name() {
        let table = table(&billing());
        let caller = table.by_key(BILLING.as_bytes()).expect("billing");
        assert_eq!(&*caller.name, "billing");
        assert!(caller.may_act_in("p1") && !caller.may_act_in("p2"));
        assert!(table.by_key(b"billing-key-7c1f").is_none());
        let ops = table
            .by_dns_name(["x.example", "OPS.internal"].into_iter())
            .expect("ops");
        assert_eq!(ops.role, Role::Admin);
        assert!(ops.may_act_in("anything"));
        assert!(table.by_dns_name(["billing"].into_iter()).is_none());
    }

    #[test]
    fn the_hash_key_line_is_sha256_in_hex() {
        assert_eq!(
            key_sha256_line("abc"),
            "key_sha256 = \"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\""
        );
    }

    #[test]
    fn a_bad_file_names_the_line() {
        let cases = [
            (
                "[[caller]]\nname = \"a\"\nkey_sha256 = \"00\"\nprojects = [\"*\"]\nrole = \"reader\"\n",
                3,
                "64 hex",
            ),
            (
                "[[caller]]\nname = \"a\"\nclient_cert_dns = \"a\"\nprojects = [\"*\"]\nrole = \"root\"\n",
                5,
                "root",
            ),
            (
                "[[caller]]\nname = \"a\"\nprojects = [\"*\"]\nrole = \"reader\"\n",
                1,
                "needs key_sha256",
            ),
            (
                "[[caller]]\nname = \"a\"\nclient_cert_dns = \"a\"\nprojects = [\"*\"]\nrole = \"reader\"\nrol = 1\n",
                6,
                "rol",
            ),
            ("[[caller]\n", 1, ""),
        ];
        for (text, line, words) in cases {
            let (offset, message) = parse(text).err().unwrap_or_else(|| panic!("accepted {text}"));
            assert_eq!(offset.map(|o| line_of(text, o)), Some(line), "{text}: {message}");
            assert!(message.contains(words), "{message}");
        }
        let twice = format!("{}{}", billing(), billing());
        assert!(parse(&twice).unwrap_err().1.contains("named twice"));
    }

    #[test]
    fn a_reload_keeps_the_running_counts() {
        let old = table(&billing());
        let new = table(&billing()).carry_limits_from(&old);
        let (a, b) = (
            old.by_key(BILLING.as_bytes()).unwrap(),
            new.by_key(BILLING.as_bytes()).unwrap(),
        );
        assert!(Arc::ptr_eq(&a.limits, &b.limits));
    }
}
