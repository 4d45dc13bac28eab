//! Fabric connection profiles (the JSON form the official SDKs read): which organisation the
//! client belongs to, its gateway peer with the TLS root to trust, and where its users' MSP
//! folders are. `test-network/network.sh` writes one per organisation in
//! `.state/connection/<org>.json`.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::Value;

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
    /// The TLS root certificate (PEM) that peer's certificate chains to.
    pub peer_tls_ca_pem: Vec<u8>,
    users: Value,
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
        let tls_path = text_at(
            &peer["tlsCACerts"]["path"],
            &format!("peers.{peer_name}.tlsCACerts.path"),
        )?;
        let peer_tls_ca_pem = std::fs::read(&tls_path)
            .map_err(|e| fail(format!("cannot read the peer TLS root {tls_path}: {e}")))?;
        Ok(Self {
            path,
            organization,
            msp_id,
            peer_name,
            peer_address,
            peer_tls_ca_pem,
            users: org["users"].clone(),
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
            .server_name_override(self.peer_name.clone())
            .connect_timeout(Duration::from_secs(5))
    }

    /// Connects as `user`, whose identity is checked (validity at `now`, key match) first.
    pub async fn connect(&self, user: &str, now: SystemTime) -> Result<Gateway, Error> {
        let (identity, signer) = load_msp_dir(&self.msp_id, self.user_msp_dir(user)?, now)?;
        let channel = self.channel_builder().connect().await?;
        Gateway::connect(identity, signer, channel)
    }
}
