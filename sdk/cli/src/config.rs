//! Settings: the one place the environment is read.
//!
//! Precedence, highest first:
//! 1. command-line flags (each command's own `--…` options),
//! 2. environment variables `MEDFABRIC_*` (below),
//! 3. the configuration file: `--config FILE`, else `$MEDFABRIC_CONFIG`, else `./medfabric.toml`,
//!    else `~/.config/medfabric/config.toml` (the first that exists),
//! 4. built-in defaults.
//!
//! ```toml
//! # medfabric.toml
//! network = "/path/to/test-network/.state"   # MEDFABRIC_NETWORK: folder with connection/<org>.json
//! org = "hospital1"                           # MEDFABRIC_ORG
//! user = "User1"                              # MEDFABRIC_USER: a user of that organisation's profile
//! msp_dir = "/path/to/msp"                    # MEDFABRIC_MSP_DIR: act as this MSP folder instead
//! chaincode = "medfabric"                     # MEDFABRIC_CHAINCODE
//! store = "./medfabric-objects"               # MEDFABRIC_STORE: object store folder
//! wallet = "~/.config/medfabric/wallet"       # MEDFABRIC_WALLET: owner and grantee PRE keys
//! proxies = ["http://10.0.0.5:7300"]          # MEDFABRIC_PROXIES (comma-separated)
//! roots = ["/path/to/ca-cert.pem"]            # MEDFABRIC_ROOTS (comma-separated): consortium CA roots
//! proxy_tls_roots = ["/path/to/tlsca.pem"]    # MEDFABRIC_PROXY_TLS_ROOTS (comma-separated): TLS CAs of https:// proxies
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

/// The configuration file's fields.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    network: Option<PathBuf>,
    org: Option<String>,
    user: Option<String>,
    msp_dir: Option<PathBuf>,
    chaincode: Option<String>,
    store: Option<PathBuf>,
    wallet: Option<PathBuf>,
    proxies: Option<Vec<String>>,
    roots: Option<Vec<PathBuf>>,
    proxy_tls_roots: Option<Vec<PathBuf>>,
}

/// A value and where it came from.
#[derive(Clone, Debug)]
pub struct Sourced<T> {
    pub value: T,
    pub source: String,
}

impl<T> Sourced<T> {
    fn new(value: T, source: impl Into<String>) -> Self {
        Self {
            value,
            source: source.into(),
        }
    }
}

/// The effective settings.
#[derive(Clone, Debug)]
pub struct Settings {
    pub file: Option<PathBuf>,
    pub network: Sourced<Option<PathBuf>>,
    pub org: Sourced<String>,
    pub user: Sourced<String>,
    pub msp_dir: Sourced<Option<PathBuf>>,
    pub chaincode: Sourced<String>,
    pub store: Sourced<PathBuf>,
    pub wallet: Sourced<PathBuf>,
    pub proxies: Sourced<Vec<String>>,
    pub roots: Sourced<Vec<PathBuf>>,
    pub proxy_tls_roots: Sourced<Vec<PathBuf>>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn home() -> Option<PathBuf> {
    env("HOME").map(PathBuf::from)
}

fn expand(path: PathBuf) -> PathBuf {
    match (path.strip_prefix("~"), home()) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => path,
    }
}

fn list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Settings {
    /// Reads the file (if any) and the environment.
    pub fn load(explicit: Option<&Path>) -> Result<Self> {
        let candidates: Vec<PathBuf> = match (explicit, env("MEDFABRIC_CONFIG")) {
            (Some(p), _) => vec![p.to_path_buf()],
            (None, Some(p)) => vec![PathBuf::from(p)],
            (None, None) => {
                let mut c = vec![PathBuf::from("medfabric.toml")];
                if let Some(h) = home() {
                    c.push(h.join(".config/medfabric/config.toml"));
                }
                c
            }
        };
        let explicit_file = explicit.is_some() || env("MEDFABRIC_CONFIG").is_some();
        let mut file = None;
        let mut parsed = FileConfig::default();
        for path in candidates {
            if path.exists() {
                let text = std::fs::read_to_string(&path).with_context(|| {
                    format!("cannot read the configuration file {}", path.display())
                })?;
                parsed = toml::from_str(&text).with_context(|| {
                    format!(
                        "configuration file {} is not valid (see `medfabric config --help` for the fields)",
                        path.display()
                    )
                })?;
                file = Some(path);
                break;
            } else if explicit_file {
                anyhow::bail!(
                    "configuration file {} does not exist; create it or drop --config / MEDFABRIC_CONFIG",
                    path.display()
                );
            }
        }
        let from_file = |what: &str| {
            file.as_ref()
                .map_or_else(String::new, |f| format!("file {} ({what})", f.display()))
        };
        macro_rules! pick {
            ($env:literal, $field:ident, $default:expr, $parse:expr) => {
                if let Some(v) = env($env) {
                    Sourced::new($parse(v), concat!("env ", $env))
                } else if let Some(v) = parsed.$field.take() {
                    Sourced::new(v, from_file(stringify!($field)))
                } else {
                    Sourced::new($default, "default")
                }
            };
        }
        let default_wallet = home().map_or_else(
            || PathBuf::from(".medfabric-wallet"),
            |h| h.join(".config/medfabric/wallet"),
        );
        let network = pick!("MEDFABRIC_NETWORK", network, PathBuf::new(), PathBuf::from);
        let msp_dir = pick!("MEDFABRIC_MSP_DIR", msp_dir, PathBuf::new(), PathBuf::from);
        let settings = Self {
            network: Sourced::new(
                (!network.value.as_os_str().is_empty()).then(|| expand(network.value)),
                network.source,
            ),
            org: pick!("MEDFABRIC_ORG", org, "hospital1".to_owned(), |v: String| v),
            user: pick!("MEDFABRIC_USER", user, "User1".to_owned(), |v: String| v),
            msp_dir: Sourced::new(
                (!msp_dir.value.as_os_str().is_empty()).then(|| expand(msp_dir.value)),
                msp_dir.source,
            ),
            chaincode: pick!(
                "MEDFABRIC_CHAINCODE",
                chaincode,
                "medfabric".to_owned(),
                |v: String| v
            ),
            store: {
                let s = pick!(
                    "MEDFABRIC_STORE",
                    store,
                    PathBuf::from("medfabric-objects"),
                    PathBuf::from
                );
                Sourced::new(expand(s.value), s.source)
            },
            wallet: {
                let s = pick!("MEDFABRIC_WALLET", wallet, default_wallet, PathBuf::from);
                Sourced::new(expand(s.value), s.source)
            },
            proxies: pick!("MEDFABRIC_PROXIES", proxies, Vec::new(), |v: String| list(
                &v
            )),
            roots: {
                let s = pick!("MEDFABRIC_ROOTS", roots, Vec::new(), |v: String| {
                    list(&v).into_iter().map(PathBuf::from).collect::<Vec<_>>()
                });
                Sourced::new(s.value.into_iter().map(expand).collect(), s.source)
            },
            proxy_tls_roots: {
                let s = pick!(
                    "MEDFABRIC_PROXY_TLS_ROOTS",
                    proxy_tls_roots,
                    Vec::new(),
                    |v: String| { list(&v).into_iter().map(PathBuf::from).collect::<Vec<_>>() }
                );
                Sourced::new(s.value.into_iter().map(expand).collect(), s.source)
            },
            file,
        };
        Ok(settings)
    }

    /// `medfabric config`.
    pub fn print(&self, json: bool) {
        let show = |p: &Option<PathBuf>| {
            p.as_ref()
                .map_or_else(|| "(unset)".to_owned(), |p| p.display().to_string())
        };
        let rows = [
            ("network", show(&self.network.value), &self.network.source),
            ("org", self.org.value.clone(), &self.org.source),
            ("user", self.user.value.clone(), &self.user.source),
            ("msp_dir", show(&self.msp_dir.value), &self.msp_dir.source),
            (
                "chaincode",
                self.chaincode.value.clone(),
                &self.chaincode.source,
            ),
            (
                "store",
                self.store.value.display().to_string(),
                &self.store.source,
            ),
            (
                "wallet",
                self.wallet.value.display().to_string(),
                &self.wallet.source,
            ),
            (
                "proxies",
                self.proxies.value.join(","),
                &self.proxies.source,
            ),
            ("roots", joined(&self.roots.value), &self.roots.source),
            (
                "proxy_tls_roots",
                joined(&self.proxy_tls_roots.value),
                &self.proxy_tls_roots.source,
            ),
        ];
        if json {
            let map: serde_json::Map<String, serde_json::Value> = rows
                .iter()
                .map(|(k, v, s)| {
                    (
                        (*k).to_owned(),
                        serde_json::json!({"value": v, "source": s}),
                    )
                })
                .collect();
            println!("{}", serde_json::Value::Object(map));
            return;
        }
        let mut out = String::new();
        let _ = writeln!(
            out,
            "configuration file: {}",
            self.file
                .as_ref()
                .map_or_else(|| "(none found)".to_owned(), |f| f.display().to_string())
        );
        for (k, v, s) in rows {
            let _ = writeln!(out, "{k:<15} = {v:<50} [{s}]");
        }
        print!("{out}");
    }
}

/// A list of paths as one comma-separated line.
fn joined(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(",")
}
