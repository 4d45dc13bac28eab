//! The proxy server: `run(listener, shutdown)`.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use medfabric_crypto::pre::{self, KeyFrag, PublicKey, SecretKey, VerifiedKeyFrag, WrappedDataKey};
use serde_json::json;

use super::{
    FragmentDelivery, MAX_CLOCK_SKEW_SECONDS, ProxyInfo, ReencryptRequest, ReencryptResponse,
    SectionCfrag, info_message, open_fragment, reencrypt_message,
};
use crate::error::LedgerError;
use crate::identity::{Member, certificate_key, fingerprint_of};
use crate::ledger::{Call, ChannelKind, LedgerClient};
use crate::wire::{self, FragmentCommitment, ShareRequest, SharingRelease, b64, unb64};

/// Proxy settings.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// Re-encryption requests per second allowed per grantee (token refill rate).
    pub rate_per_second: f64,
    /// Burst allowed per grantee (bucket size).
    pub burst: f64,
    /// Where sealed fragments are kept (as received: sealed to this proxy), so that a
    /// restarted proxy can reload them; `None` keeps them in memory only.
    pub storage_dir: Option<PathBuf>,
}

impl Default for ProxyConfig {
    /// 5 requests per second per grantee, bursts of 10, memory only.
    fn default() -> Self {
        Self {
            rate_per_second: 5.0,
            burst: 10.0,
            storage_dir: None,
        }
    }
}

struct Held {
    kfrag: VerifiedKeyFrag,
    commitment: Vec<u8>,
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// A re-encryption proxy: its identity on the ledger, its sealing key, the fragments it holds.
pub struct ProxyService {
    member: Member,
    sealing_key: SecretKey,
    ledger: Arc<dyn LedgerClient>,
    config: ProxyConfig,
    fragments: Mutex<HashMap<String, Arc<Held>>>,
    buckets: Mutex<HashMap<String, Bucket>>,
    nonces: Mutex<BTreeMap<(i64, String), ()>>,
}

impl std::fmt::Debug for ProxyService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyService")
            .field("member", &self.member)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// An error answer.
struct Failure(StatusCode, String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

fn ledger_failure(e: &LedgerError) -> Failure {
    match e {
        LedgerError::Refused { message, .. } => Failure(StatusCode::FORBIDDEN, message.clone()),
        other => Failure(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the proxy cannot check the grant on the ledger, so it refuses: {other}"),
        ),
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl ProxyService {
    /// A proxy acting as `member` on `ledger`, receiving fragments sealed to `sealing_key`.
    /// Fragments found in `config.storage_dir` are reloaded lazily (verified again on use).
    pub fn new(
        member: Member,
        sealing_key: SecretKey,
        ledger: Arc<dyn LedgerClient>,
        config: ProxyConfig,
    ) -> Arc<Self> {
        Arc::new(Self {
            member,
            sealing_key,
            ledger,
            config,
            fragments: Mutex::new(HashMap::new()),
            buckets: Mutex::new(HashMap::new()),
            nonces: Mutex::new(BTreeMap::new()),
        })
    }

    /// The proxy's identity.
    pub fn member(&self) -> &Member {
        &self.member
    }

    /// The public half of the sealing key.
    pub fn sealing_public_key(&self) -> PublicKey {
        self.sealing_key.public_key()
    }

    /// How many grants this proxy holds a fragment for.
    pub fn fragment_count(&self) -> usize {
        lock(&self.fragments).len()
    }

    /// The signed [`ProxyInfo`].
    ///
    /// # Errors
    /// When signing fails.
    pub fn info(&self) -> crate::Result<ProxyInfo> {
        let sealing = self.sealing_public_key().to_compressed_bytes();
        let signature = self
            .member
            .sign(&info_message(self.member.fingerprint(), &sealing))?;
        Ok(ProxyInfo {
            msp_id: self.member.msp_id().to_owned(),
            certificate_pem: self.member.certificate_pem().to_owned(),
            fingerprint: self.member.fingerprint().to_owned(),
            sealing_key: b64(&sealing),
            signature: b64(&signature),
        })
    }

    /// The HTTP routes.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/v1/info", get(info_handler))
            .route("/v1/fragments", post(deliver_handler))
            .route("/v1/reencrypt", post(reencrypt_handler))
            .with_state(self.clone())
    }

    async fn grant_request(&self, request_id: &str) -> Result<ShareRequest, Failure> {
        let call = Call::new("Sharing:GetRequest", [request_id]);
        let bytes = self
            .ledger
            .evaluate(&self.member, ChannelKind::Sharing, &call)
            .await
            .map_err(|e| ledger_failure(&e))?;
        wire::json(&bytes, "Sharing:GetRequest")
            .map_err(|e| Failure(StatusCode::BAD_GATEWAY, e.to_string()))
    }

    /// Unseals a fragment and verifies it against this proxy's commitment in the grant.
    async fn accept(&self, delivery: &FragmentDelivery, sealed: &[u8]) -> Result<Held, Failure> {
        let bytes = open_fragment(
            &self.sealing_key,
            self.member.fingerprint(),
            &delivery.request_id,
            sealed,
        )
        .map_err(|_| {
            Failure(
                StatusCode::BAD_REQUEST,
                "the fragment is not sealed to this proxy for this request".into(),
            )
        })?;
        let kfrag = KeyFrag::from_bytes(&bytes)
            .map_err(|_| Failure(StatusCode::BAD_REQUEST, "malformed key fragment".into()))?;
        let request = self.grant_request(&delivery.request_id).await?;
        let grant = request.grant.as_ref().ok_or_else(|| {
            Failure(
                StatusCode::FORBIDDEN,
                format!("request {} is not granted", delivery.request_id),
            )
        })?;
        let commitment = grant["terms"]["proxies"]
            .as_array()
            .and_then(|ps| {
                ps.iter()
                    .find(|p| p["proxy"].as_str() == Some(self.member.fingerprint()))
            })
            .and_then(|p| p["fragmentCommitment"].as_str())
            .ok_or_else(|| {
                Failure(
                    StatusCode::FORBIDDEN,
                    format!(
                        "this proxy is not named in the grant of request {}",
                        delivery.request_id
                    ),
                )
            })?;
        let commitment_bytes = unb64(commitment, "fragment commitment")
            .map_err(|e| Failure(StatusCode::BAD_GATEWAY, e.to_string()))?;
        let commitment = FragmentCommitment::from_bytes(&commitment_bytes)
            .map_err(|e| Failure(StatusCode::BAD_GATEWAY, e.to_string()))?;
        let grantee = unb64(&request.grantee_key, "grantee key")
            .ok()
            .and_then(|k| PublicKey::from_compressed_bytes(&k).ok())
            .ok_or_else(|| {
                Failure(
                    StatusCode::BAD_GATEWAY,
                    "bad grantee key on the ledger".into(),
                )
            })?;
        if !commitment.matches(&kfrag) {
            return Err(Failure(
                StatusCode::BAD_REQUEST,
                "the fragment is not the one committed in the grant".into(),
            ));
        }
        let kfrag = kfrag
            .verify(
                &commitment.delegating_key,
                &grantee,
                &commitment.verifying_key,
            )
            .map_err(|_| {
                Failure(
                    StatusCode::BAD_REQUEST,
                    "the key fragment does not verify".into(),
                )
            })?;
        Ok(Held {
            kfrag,
            commitment: commitment_bytes,
        })
    }

    async fn deliver(&self, delivery: FragmentDelivery) -> Result<(), Failure> {
        medfabric_contracts::medical::input::Id::new(&delivery.request_id)
            .map_err(|e| Failure(StatusCode::BAD_REQUEST, format!("request id: {e}")))?;
        let sealed = unb64(&delivery.sealed, "sealed fragment")
            .map_err(|e| Failure(StatusCode::BAD_REQUEST, e.to_string()))?;
        let held = self.accept(&delivery, &sealed).await?;
        if let Some(dir) = &self.config.storage_dir {
            let path = dir.join(storage_name(&delivery.request_id));
            std::fs::create_dir_all(dir)
                .and_then(|()| std::fs::write(&path, &sealed))
                .map_err(|e| {
                    Failure(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("cannot store the fragment: {e}"),
                    )
                })?;
        }
        lock(&self.fragments).insert(delivery.request_id, Arc::new(held));
        Ok(())
    }

    async fn held(&self, request_id: &str) -> Result<Arc<Held>, Failure> {
        if let Some(h) = lock(&self.fragments).get(request_id) {
            return Ok(h.clone());
        }
        let not_held = || {
            Failure(
                StatusCode::NOT_FOUND,
                format!(
                    "this proxy holds no key fragment for request {request_id} (not delivered yet?)"
                ),
            )
        };
        let dir = self.config.storage_dir.as_ref().ok_or_else(not_held)?;
        let sealed = std::fs::read(dir.join(storage_name(request_id))).map_err(|_| not_held())?;
        let delivery = FragmentDelivery {
            request_id: request_id.to_owned(),
            sealed: String::new(),
        };
        let held = Arc::new(self.accept(&delivery, &sealed).await?);
        lock(&self.fragments).insert(request_id.to_owned(), held.clone());
        Ok(held)
    }

    fn forget(&self, request_id: &str) {
        lock(&self.fragments).remove(request_id);
        if let Some(dir) = &self.config.storage_dir {
            let _ = std::fs::remove_file(dir.join(storage_name(request_id)));
        }
    }

    fn rate_limit(&self, grantee: &str) -> Result<(), Failure> {
        let mut buckets = lock(&self.buckets);
        let now = Instant::now();
        let bucket = buckets.entry(grantee.to_owned()).or_insert(Bucket {
            tokens: self.config.burst,
            last: now,
        });
        let elapsed = now.duration_since(bucket.last).as_secs_f64();
        bucket.tokens =
            (bucket.tokens + elapsed * self.config.rate_per_second).min(self.config.burst);
        bucket.last = now;
        if bucket.tokens < 1.0 {
            return Err(Failure(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "rate limit: at most {} re-encryption requests per second per grantee; retry shortly",
                    self.config.rate_per_second
                ),
            ));
        }
        bucket.tokens -= 1.0;
        Ok(())
    }

    fn fresh(&self, timestamp: i64, nonce: &str) -> Result<(), Failure> {
        let now = unix_now();
        if (timestamp - now).abs() > MAX_CLOCK_SKEW_SECONDS {
            return Err(Failure(
                StatusCode::UNAUTHORIZED,
                format!(
                    "request timestamp {timestamp} is more than {MAX_CLOCK_SKEW_SECONDS} s from the proxy's clock {now}"
                ),
            ));
        }
        let mut nonces = lock(&self.nonces);
        // Forget nonces too old to be accepted again anyway.
        let horizon = (now - 2 * MAX_CLOCK_SKEW_SECONDS, String::new());
        *nonces = nonces.split_off(&horizon);
        if nonces.insert((timestamp, nonce.to_owned()), ()).is_some() {
            return Err(Failure(StatusCode::UNAUTHORIZED, "replayed request".into()));
        }
        Ok(())
    }

    async fn reencrypt(&self, request: ReencryptRequest) -> Result<ReencryptResponse, Failure> {
        let unauthorized = |m: &str| Failure(StatusCode::UNAUTHORIZED, m.to_owned());
        if request.nonce.len() != 32 || hex::decode(&request.nonce).is_err() {
            return Err(Failure(
                StatusCode::BAD_REQUEST,
                "nonce must be 16 bytes of hex".into(),
            ));
        }
        medfabric_contracts::medical::input::Id::new(&request.request_id)
            .map_err(|e| Failure(StatusCode::BAD_REQUEST, format!("request id: {e}")))?;
        let (identity, key) = certificate_key(&request.msp_id, &request.certificate_pem, &[])
            .map_err(|_| unauthorized("the certificate cannot be read"))?;
        let signature =
            unb64(&request.signature, "signature").map_err(|_| unauthorized("bad signature"))?;
        let message = reencrypt_message(
            self.member.fingerprint(),
            &request.request_id,
            request.timestamp,
            &request.nonce,
        );
        key.verify(&message, &signature)
            .map_err(|_| unauthorized("the request signature does not verify"))?;
        let grantee = fingerprint_of(&identity);
        self.rate_limit(&grantee)?;
        self.fresh(request.timestamp, &request.nonce)?;

        // The signer must be the requester the ledger knows: its certificate was validated
        // by the MSP when the request was submitted.
        let on_ledger = self.grant_request(&request.request_id).await?;
        if on_ledger.requester.fingerprint != grantee {
            return Err(Failure(
                StatusCode::FORBIDDEN,
                format!(
                    "{} is not the requester of request {}",
                    identity.msp_id(),
                    request.request_id
                ),
            ));
        }
        let held = self.held(&request.request_id).await?;

        // Ask the ledger: the transaction records the re-encryption or refuses it.
        let check = Call::new("Sharing:CheckGrant", [request.request_id.as_str()]);
        let committed = match self
            .ledger
            .submit(&self.member, ChannelKind::Sharing, &check)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                if let Some(message) = e.refusal()
                    && (message.contains("revoked")
                        || message.contains("expired")
                        || message.contains("withdrawn"))
                {
                    // The grant is over for good: drop the fragment.
                    self.forget(&request.request_id);
                }
                return Err(ledger_failure(&e));
            }
        };
        let access: wire::AccessResult = wire::json(&committed.payload, "Sharing:CheckGrant")
            .map_err(|e| Failure(StatusCode::BAD_GATEWAY, e.to_string()))?;
        let fetch = Call::new("Sharing:Fetch", [access.ticket.ticket.as_str()]);
        let release = self
            .ledger
            .evaluate(&self.member, ChannelKind::Sharing, &fetch)
            .await
            .map_err(|e| ledger_failure(&e))?;
        let release: SharingRelease = wire::json(&release, "Sharing:Fetch")
            .map_err(|e| Failure(StatusCode::BAD_GATEWAY, e.to_string()))?;
        let SharingRelease::Proxy {
            fragment_commitment,
            sections,
            ..
        } = release
        else {
            return Err(Failure(
                StatusCode::BAD_GATEWAY,
                "the ledger released no proxy material".into(),
            ));
        };
        if unb64(&fragment_commitment, "fragment commitment")
            .ok()
            .as_deref()
            != Some(held.commitment.as_slice())
        {
            self.forget(&request.request_id);
            return Err(Failure(
                StatusCode::CONFLICT,
                "the grant's fragment commitment changed; the held fragment is dropped".into(),
            ));
        }
        let mut rng = rand::rngs::OsRng;
        let mut cfrags = Vec::with_capacity(sections.len());
        for s in sections {
            let wrapped = unb64(&s.pre_capsule, "capsule")
                .ok()
                .and_then(|b| WrappedDataKey::from_bytes(&b).ok())
                .ok_or_else(|| {
                    Failure(
                        StatusCode::BAD_GATEWAY,
                        format!("bad capsule for section {}", s.id),
                    )
                })?;
            let cfrag = pre::reencrypt(&mut rng, wrapped.capsule(), &held.kfrag);
            cfrags.push(SectionCfrag {
                section_id: s.id,
                cfrag: b64(&cfrag.to_bytes()),
            });
        }
        tracing::info!(request = %request.request_id, proxy = %self.member.name(), tx = %committed.tx_id, "re-encrypted");
        Ok(ReencryptResponse {
            request_id: request.request_id,
            proxy: self.member.fingerprint().to_owned(),
            tx_id: committed.tx_id,
            cfrags,
        })
    }
}

fn storage_name(request_id: &str) -> String {
    // Request ids are printable ASCII; hex keeps the file name safe on every system.
    format!("{}.sealed", hex::encode(request_id.as_bytes()))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn info_handler(State(service): State<Arc<ProxyService>>) -> Response {
    match service.info() {
        Ok(info) => Json(info).into_response(),
        Err(e) => Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn deliver_handler(
    State(service): State<Arc<ProxyService>>,
    Json(delivery): Json<FragmentDelivery>,
) -> Response {
    match service.deliver(delivery).await {
        Ok(()) => Json(json!({ "accepted": true })).into_response(),
        Err(f) => f.into_response(),
    }
}

async fn reencrypt_handler(
    State(service): State<Arc<ProxyService>>,
    Json(request): Json<ReencryptRequest>,
) -> Response {
    match service.reencrypt(request).await {
        Ok(r) => Json(r).into_response(),
        Err(f) => f.into_response(),
    }
}

/// Serves `service` on `listener` until `shutdown` completes, then finishes the requests in
/// flight (for at most 10 s).
///
/// # Errors
/// When the listener fails.
pub async fn run(
    listener: tokio::net::TcpListener,
    service: Arc<ProxyService>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_on(listener, service, shutdown).await
}

/// As [`run`], over TLS with `config` (see [`super::tls::server_config`]): the listener
/// completes handshakes concurrently and drops the ones that fail or stall.
///
/// # Errors
/// When the listener fails.
pub async fn run_tls(
    listener: tokio::net::TcpListener,
    config: Arc<tokio_rustls::rustls::ServerConfig>,
    service: Arc<ProxyService>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_on(
        super::tls::TlsListener::new(listener, config)?,
        service,
        shutdown,
    )
    .await
}

async fn serve_on<L>(
    listener: L,
    service: Arc<ProxyService>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let app = service.router();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = done_tx.send(());
    });
    tokio::select! {
        r = serve => r,
        () = async {
            let _ = done_rx.await;
            tokio::time::sleep(Duration::from_secs(10)).await;
        } => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::ledger::EmbeddedLedger;
    use crate::pki::DemoCa;

    #[test]
    fn requests_are_fresh_and_never_replayed() {
        let ca = DemoCa::new("Hospital2MSP").unwrap();
        let member = ca
            .issue("proxy", &["client"], &[("role", "proxy")])
            .unwrap();
        let service = ProxyService::new(
            member,
            SecretKey::random(&mut rand::rngs::OsRng),
            EmbeddedLedger::new(),
            ProxyConfig::default(),
        );
        let now = unix_now();
        assert!(service.fresh(now, "aa").is_ok());
        assert!(service.fresh(now, "aa").is_err(), "replay");
        assert!(service.fresh(now, "bb").is_ok());
        assert!(
            service
                .fresh(now - MAX_CLOCK_SKEW_SECONDS - 5, "cc")
                .is_err(),
            "stale"
        );
        assert!(
            service
                .fresh(now + MAX_CLOCK_SKEW_SECONDS + 5, "dd")
                .is_err(),
            "future"
        );
    }
}
