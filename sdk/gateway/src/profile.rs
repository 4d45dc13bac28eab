//! Fabric connection profiles (the JSON form the official SDKs read): which organisation the
//! client belongs to, its gateway peer with the TLS root to trust, its Fabric CA, and where its
//! users' MSP folders are. `test-network/network.sh` writes one per organisation in
//! `.state/connection/<org>.json`.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::Value;
use zeroize::Zeroizing;

use crate::connection::ChannelBuilder;
use crate::error::Error;
use crate::gateway::Gateway;
use crate::identity::load_msp_dir;

/// The parts of a connection profile a client needs.
#[derive(Clone, Debug)]
pub struct ConnectionProfile {
    path: PathBuf,
    /// The client's organisation (its name in the profile).
    pub organization: String,
    /// The organisation's MSP id.
    pub msp_id: String,
    /// The peer the gateway client talks to (the organisation's first peer).
    pub peer_name: String,
    /// `host:port` of that peer.
    pub peer_address: String,
    /// The name the peer's TLS certificate must carry: `grpcOptions.ssl-target-name-override`
    /// (or `hostnameOverride`) when the profile sets one, else the peer's name.
    pub peer_tls_server_name: String,
    /// The TLS root certificate (PEM) that peer's certificate chains to.
    pub peer_tls_ca_pem: Vec<u8>,
    /// The organisation's Fabric CA (its first `certificateAuthorities` entry), if it names one.
    pub certificate_authority: Option<CertificateAuthority>,
    users: Value,
}

/// A Fabric CA as a connection profile describes it (`certificateAuthorities.<key>`).
#[derive(Clone, Debug)]
pub struct CertificateAuthority {
    /// Its key in `certificateAuthorities`.
    pub key: String,
    /// Its URL (`https://host:port`).
    pub url: String,
    /// The name of the CA the server hosts (`caName`), sent with every request; empty when
    /// the profile gives none (the server's default CA).
    pub ca_name: String,
    /// The TLS root (PEM) the server's certificate chains to.
    pub tls_ca_pem: Vec<u8>,
    /// The registrar the profile names (`registrar.enrollId` / `enrollSecret`), if any.
    pub registrar: Option<Registrar>,
}

/// A CA registrar's enrolment id and secret; the secret is wiped on drop and never printed.
#[derive(Clone)]
pub struct Registrar {
    /// Enrolment id.
    pub enroll_id: String,
    /// Enrolment secret.
    pub enroll_secret: Zeroizing<String>,
}

impl std::fmt::Debug for Registrar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registrar")
            .field("enroll_id", &self.enroll_id)
            .field("enroll_secret", &"<redacted>")
            .finish()
    }
}

impl ConnectionProfile {
    /// Reads and checks a profile.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref().to_path_buf();
        let fail = |reason: String| Error::Profile {
            path: path.clone(),
            reason,
        };
        let text = std::fs::read_to_string(&path).map_err(|e| {
            fail(format!("{e}; is the test network up? (test-network/network.sh up && test-network/network.sh deploy)"))
        })?;
        let profile: Value =
            serde_json::from_str(&text).map_err(|e| fail(format!("not JSON: {e}")))?;
        let text_at = |value: &Value, what: &str| {
            value
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| fail(format!("{what} is missing")))
        };
        let organization = text_at(&profile["client"]["organization"], "client.organization")?;
        let org = &profile["organizations"][&organization];
        let msp_id = text_at(
            &org["mspid"],
            &format!("organizations.{organization}.mspid"),
        )?;
        let peer_name = text_at(
            &org["peers"][0],
            &format!("organizations.{organization}.peers[0]"),
        )?;
        let peer = &profile["peers"][&peer_name];
        let url = text_at(&peer["url"], &format!("peers.{peer_name}.url"))?;
        let peer_address = url
            .split_once("://")
            .map_or(url.as_str(), |(_, rest)| rest)
            .to_owned();
        let peer_tls_ca_pem =
            tls_roots(&peer["tlsCACerts"], &format!("peers.{peer_name}")).map_err(&fail)?;
        let options = &peer["grpcOptions"];
        let peer_tls_server_name = options["ssl-target-name-override"]
            .as_str()
            .or_else(|| options["hostnameOverride"].as_str())
            .unwrap_or(&peer_name)
            .to_owned();
        let certificate_authority = match &org["certificateAuthorities"][0] {
            Value::Null => None,
            Value::String(key) => {
                let ca = &profile["certificateAuthorities"][key];
                if ca.is_null() {
                    return Err(fail(format!(
                        "organizations.{organization}.certificateAuthorities names {key}, \
                         but certificateAuthorities.{key} is missing"
                    )));
                }
                let field = |name: &str| format!("certificateAuthorities.{key}.{name}");
                let tls_ca_pem =
                    tls_roots(&ca["tlsCACerts"], &format!("certificateAuthorities.{key}"))
                        .map_err(&fail)?;
                // One registrar, or a list of them (the form the official SDKs read): the first.
                let registrar = match &ca["registrar"] {
                    Value::Array(list) => list.first().unwrap_or(&Value::Null),
                    registrar => registrar,
                };
                let registrar = match registrar {
                    Value::Null => None,
                    registrar => Some(Registrar {
                        enroll_id: text_at(&registrar["enrollId"], &field("registrar.enrollId"))?,
                        enroll_secret: Zeroizing::new(text_at(
                            &registrar["enrollSecret"],
                            &field("registrar.enrollSecret"),
                        )?),
                    }),
                };
                Some(CertificateAuthority {
                    key: key.clone(),
                    url: text_at(&ca["url"], &field("url"))?,
                    // Optional: without it the server's default CA answers.
                    ca_name: match &ca["caName"] {
                        Value::Null => String::new(),
                        name => text_at(name, &field("caName"))?,
                    },
                    tls_ca_pem,
                    registrar,
                })
            }
            _ => {
                return Err(fail(format!(
                    "organizations.{organization}.certificateAuthorities[0] is not a name"
                )));
            }
        };
        Ok(Self {
            path,
            organization,
            msp_id,
            peer_name,
            peer_address,
            peer_tls_server_name,
            peer_tls_ca_pem,
            certificate_authority,
            users: org["users"].clone(),
        })
    }

    /// The organisation's Fabric CA, or an error naming the profile when it names none.
    pub fn require_certificate_authority(&self) -> Result<&CertificateAuthority, Error> {
        self.certificate_authority
            .as_ref()
            .ok_or_else(|| Error::Profile {
                path: self.path.clone(),
                reason: format!(
                    "organizations.{}.certificateAuthorities names no CA",
                    self.organization
                ),
            })
    }

    /// The profile of organisation `org` (e.g. `hospital1`) in a test-network state folder.
    pub fn load_from_network_dir(dir: impl AsRef<Path>, org: &str) -> Result<Self, Error> {
        Self::load(dir.as_ref().join("connection").join(format!("{org}.json")))
    }

    /// The MSP folder of one of the organisation's users (e.g. `User1`).
    pub fn user_msp_dir(&self, user: &str) -> Result<PathBuf, Error> {
        self.users[user]["mspDir"]
            .as_str()
            .map(PathBuf::from)
            .ok_or_else(|| Error::Profile {
                path: self.path.clone(),
                reason: format!(
                    "no user {user:?} in organizations.{}.users",
                    self.organization
                ),
            })
    }

    /// A TLS channel to the gateway peer (not yet connected: it connects on first use).
    pub fn channel_builder(&self) -> ChannelBuilder {
        ChannelBuilder::new(self.peer_address.clone(), self.peer_tls_ca_pem.clone())
            .server_name_override(self.peer_tls_server_name.clone())
            .connect_timeout(Duration::from_secs(5))
    }

    /// Connects as `user`, whose identity is checked (validity at `now`, key match) first.
    pub async fn connect(&self, user: &str, now: SystemTime) -> Result<Gateway, Error> {
        let (identity, signer) = load_msp_dir(&self.msp_id, self.user_msp_dir(user)?, now)?;
        let channel = self.channel_builder().connect().await?;
        Gateway::connect(identity, signer, channel)
    }
}

/// The TLS roots of `tlsCACerts` (under `owner`): a file (`path`) or inline PEM (`pem`, one
/// string or a list, as Fabric's sample networks write them).
fn tls_roots(tls: &Value, owner: &str) -> Result<Vec<u8>, String> {
    match (&tls["path"], &tls["pem"]) {
        (Value::String(path), _) => std::fs::read(path)
            .map_err(|e| format!("cannot read the TLS root {path} of {owner}: {e}")),
        (_, Value::String(pem)) => Ok(pem.clone().into_bytes()),
        (_, Value::Array(pems)) if !pems.is_empty() => pems
            .iter()
            .map(|pem| {
                pem.as_str()
                    .map(|p| format!("{}\n", p.trim_end()))
                    .ok_or_else(|| format!("{owner}.tlsCACerts.pem holds a non-string"))
            })
            .collect::<Result<String, _>>()
            .map(String::into_bytes),
        _ => Err(format!(
            "{owner}.tlsCACerts needs `path` (a PEM file) or `pem` (PEM text or a list of them)"
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    /// Writes a profile for `Hospital1` (peer and CA TLS roots as files) after `edit`.
    fn profile(dir: &Path, edit: impl FnOnce(&mut Value)) -> PathBuf {
        let peer_tls = dir.join("peer-tls.pem");
        let ca_tls = dir.join("ca-tls.pem");
        std::fs::write(&peer_tls, b"peer root").unwrap();
        std::fs::write(&ca_tls, b"ca root").unwrap();
        let mut profile = json!({
            "client": {"organization": "Hospital1"},
            "organizations": {"Hospital1": {
                "mspid": "Hospital1MSP",
                "peers": ["peer0.hospital1"],
                "certificateAuthorities": ["ca.hospital1"],
                "users": {"User1": {"mspDir": "/msp/user1"}},
            }},
            "peers": {"peer0.hospital1": {
                "url": "grpcs://localhost:7051",
                "tlsCACerts": {"path": peer_tls},
            }},
            "certificateAuthorities": {"ca.hospital1": {
                "url": "https://localhost:7054",
                "caName": "ca-hospital1",
                "tlsCACerts": {"path": ca_tls},
                "registrar": {"enrollId": "admin", "enrollSecret": "adminpw"},
            }},
        });
        edit(&mut profile);
        let path = dir.join("hospital1.json");
        std::fs::write(&path, profile.to_string()).unwrap();
        path
    }

    fn load_error(edit: impl FnOnce(&mut Value)) -> String {
        let dir = tempfile::tempdir().unwrap();
        ConnectionProfile::load(profile(dir.path(), edit))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn reads_the_gateway_peer_and_the_certificate_authority() {
        let dir = tempfile::tempdir().unwrap();
        let p = ConnectionProfile::load(profile(dir.path(), |_| {})).unwrap();
        assert_eq!(p.msp_id, "Hospital1MSP");
        assert_eq!(p.peer_address, "localhost:7051");
        assert_eq!(p.peer_tls_ca_pem, b"peer root");
        assert_eq!(
            p.user_msp_dir("User1").unwrap(),
            PathBuf::from("/msp/user1")
        );
        let ca = p.require_certificate_authority().unwrap();
        assert_eq!(ca.key, "ca.hospital1");
        assert_eq!(ca.url, "https://localhost:7054");
        assert_eq!(ca.ca_name, "ca-hospital1");
        assert_eq!(ca.tls_ca_pem, b"ca root");
        let registrar = ca.registrar.as_ref().unwrap();
        assert_eq!(registrar.enroll_id, "admin");
        assert_eq!(registrar.enroll_secret.as_str(), "adminpw");
        // The secret never shows in debug output.
        assert!(!format!("{p:?}").contains("adminpw"), "{p:?}");
    }

    /// The form Fabric's sample networks and the official SDKs use: TLS roots inline (one
    /// string for a peer, a list for a CA), a TLS name override, registrars as a list, no
    /// users.
    #[test]
    fn reads_the_official_sdk_form_with_inline_roots() {
        let dir = tempfile::tempdir().unwrap();
        let path = profile(dir.path(), |p| {
            let peer = &mut p["peers"]["peer0.hospital1"];
            peer["tlsCACerts"] = json!({"pem": "-----PEER ROOT-----\n"});
            peer["grpcOptions"] =
                json!({"ssl-target-name-override": "peer0.hospital1.example.com"});
            let ca = &mut p["certificateAuthorities"]["ca.hospital1"];
            ca["tlsCACerts"] = json!({"pem": ["-----CA ROOT 1-----", "-----CA ROOT 2-----\n"]});
            ca["registrar"] =
                json!([{"enrollId": "registrar1", "enrollSecret": "pw1"}, {"enrollId": "x"}]);
            p["organizations"]["Hospital1"]
                .as_object_mut()
                .unwrap()
                .remove("users");
        });
        let p = ConnectionProfile::load(path).unwrap();
        assert_eq!(p.peer_tls_ca_pem, b"-----PEER ROOT-----\n");
        assert_eq!(p.peer_tls_server_name, "peer0.hospital1.example.com");
        let ca = p.require_certificate_authority().unwrap();
        assert_eq!(ca.tls_ca_pem, b"-----CA ROOT 1-----\n-----CA ROOT 2-----\n");
        assert_eq!(ca.registrar.as_ref().unwrap().enroll_id, "registrar1");
        assert_eq!(ca.ca_name, "ca-hospital1");
        let e = p.user_msp_dir("User1").unwrap_err().to_string();
        assert!(e.contains("no user \"User1\""), "{e}");

        // `hostnameOverride` serves when `ssl-target-name-override` is absent, the peer's name
        // when neither is set.
        let path = profile(dir.path(), |p| {
            p["peers"]["peer0.hospital1"]["grpcOptions"] = json!({"hostnameOverride": "h.example"});
        });
        assert_eq!(
            ConnectionProfile::load(path).unwrap().peer_tls_server_name,
            "h.example"
        );
        let path = profile(dir.path(), |_| {});
        assert_eq!(
            ConnectionProfile::load(path).unwrap().peer_tls_server_name,
            "peer0.hospital1"
        );
    }

    #[test]
    fn a_profile_without_ca_or_registrar_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = profile(dir.path(), |p| {
            p["organizations"]["Hospital1"]
                .as_object_mut()
                .unwrap()
                .remove("certificateAuthorities");
        });
        let p = ConnectionProfile::load(path).unwrap();
        assert!(p.certificate_authority.is_none());
        let e = p.require_certificate_authority().unwrap_err().to_string();
        assert!(e.contains("certificateAuthorities names no CA"), "{e}");

        let path = profile(dir.path(), |p| {
            p["certificateAuthorities"]["ca.hospital1"]
                .as_object_mut()
                .unwrap()
                .remove("registrar");
        });
        let p = ConnectionProfile::load(path).unwrap();
        assert!(
            p.require_certificate_authority()
                .unwrap()
                .registrar
                .is_none()
        );

        // No CA name: the server's default CA.
        let path = profile(dir.path(), |p| {
            p["certificateAuthorities"]["ca.hospital1"]
                .as_object_mut()
                .unwrap()
                .remove("caName");
        });
        let p = ConnectionProfile::load(path).unwrap();
        assert_eq!(p.require_certificate_authority().unwrap().ca_name, "");
    }

    #[test]
    fn a_broken_ca_entry_is_refused_naming_the_field() {
        let e = load_error(|p| p["certificateAuthorities"]["ca.hospital1"]["caName"] = json!(7));
        assert!(
            e.contains("certificateAuthorities.ca.hospital1.caName is missing"),
            "{e}"
        );
        let e = load_error(|p| p["certificateAuthorities"]["ca.hospital1"]["url"] = Value::Null);
        assert!(
            e.contains("certificateAuthorities.ca.hospital1.url is missing"),
            "{e}"
        );
        let e = load_error(|p| {
            p["certificateAuthorities"]["ca.hospital1"]["registrar"]["enrollSecret"] = json!(7);
        });
        assert!(
            e.contains("certificateAuthorities.ca.hospital1.registrar.enrollSecret is missing"),
            "{e}"
        );
        let e = load_error(|p| {
            p["certificateAuthorities"]["ca.hospital1"]["tlsCACerts"]["path"] =
                json!("/nonexistent/ca.pem");
        });
        assert!(
            e.contains(
                "cannot read the TLS root /nonexistent/ca.pem of certificateAuthorities.ca.hospital1"
            ),
            "{e}"
        );
        let e = load_error(|p| p["peers"]["peer0.hospital1"]["tlsCACerts"] = json!({}));
        assert!(
            e.contains("peers.peer0.hospital1.tlsCACerts needs `path` (a PEM file) or `pem`"),
            "{e}"
        );
        let e = load_error(|p| {
            p["certificateAuthorities"]["ca.hospital1"]["tlsCACerts"] = json!({"pem": ["a", 1]});
        });
        assert!(
            e.contains("certificateAuthorities.ca.hospital1.tlsCACerts.pem holds a non-string"),
            "{e}"
        );
        let e =
            load_error(|p| p["organizations"]["Hospital1"]["certificateAuthorities"] = json!([3]));
        assert!(e.contains("certificateAuthorities[0] is not a name"), "{e}");
        // An entry the organisation names but the profile lacks.
        let e = load_error(|p| {
            p["certificateAuthorities"]
                .as_object_mut()
                .unwrap()
                .remove("ca.hospital1");
        });
        assert!(
            e.contains("names ca.hospital1, but certificateAuthorities.ca.hospital1 is missing"),
            "{e}"
        );
    }
}
