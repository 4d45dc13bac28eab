//! The chaincode server spoken to over real gRPC streams, with this test acting as the peer:
//! registration, ledger requests answered out of order for concurrent transactions, events,
//! panics, malformed messages, keepalive, TLS and mutual TLS.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use prost::Message as _;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use medfabric_protos::common::{ChannelHeader, Header, SignatureHeader};
use medfabric_protos::msp::SerializedIdentity;
use medfabric_protos::protos::chaincode_client::ChaincodeClient;
use medfabric_protos::protos::chaincode_message::Type;
use medfabric_protos::protos::{
    ChaincodeId, ChaincodeInput, ChaincodeMessage, ChaincodeProposalPayload, GetState, Proposal,
    PutState, Response, SignedProposal,
};
use medfabric_shim::contract::{Contract, Router};
use medfabric_shim::error::ContractError;
use medfabric_shim::ledger::Ledger;
use medfabric_shim::server::{ServerConfig, TlsConfig, serve_on};

const PACKAGE_ID: &str = "test_1.0:0123abcd";

fn chaincode() -> Router {
    Router::new("test", "1").with(
        Contract::new("Test")
            .submit("Touch", &["key"], |l: &dyn Ledger, (key,): (String,)| {
                let old = l.get_state(&key)?.unwrap_or_default();
                let mut new = old.clone();
                new.push(b'+');
                l.put_state(&key, &new)?;
                l.set_event("touched", &new)?;
                Ok(format!(
                    "{}|{}|{}",
                    l.creator().msp_id,
                    String::from_utf8_lossy(&l.transient()["t"]),
                    l.tx_timestamp().seconds
                ))
            })
            .evaluate(
                "Boom",
                &[],
                |_l: &dyn Ledger, (): ()| -> Result<(), ContractError> { panic!("kaboom") },
            ),
    )
}

async fn start(tls: TlsConfig) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = ServerConfig {
        chaincode_id: PACKAGE_ID.into(),
        address,
        tls,
    };
    tokio::spawn(async move {
        serve_on(listener, config, Arc::new(chaincode()), async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    (address, stop)
}

struct FakePeer {
    to_chaincode: mpsc::Sender<ChaincodeMessage>,
    from_chaincode: tonic::Streaming<ChaincodeMessage>,
}

impl FakePeer {
    async fn connect(channel: Channel) -> Result<Self, tonic::Status> {
        let (to_chaincode, rx) = mpsc::channel(16);
        let response = ChaincodeClient::new(channel)
            .connect(ReceiverStream::new(rx))
            .await?;
        Ok(Self {
            to_chaincode,
            from_chaincode: response.into_inner(),
        })
    }

    async fn send(&self, message: ChaincodeMessage) {
        self.to_chaincode.send(message).await.unwrap();
    }

    async fn receive(&mut self) -> ChaincodeMessage {
        tokio::time::timeout(Duration::from_secs(10), self.from_chaincode.message())
            .await
            .expect("chaincode did not answer in time")
            .unwrap()
            .expect("stream closed")
    }

    async fn handshake(&mut self) {
        let register = self.receive().await;
        assert_eq!(register.r#type, Type::Register as i32);
        assert_eq!(
            ChaincodeId::decode(register.payload.as_slice())
                .unwrap()
                .name,
            PACKAGE_ID
        );
        self.send(ChaincodeMessage {
            r#type: Type::Registered as i32,
            ..Default::default()
        })
        .await;
        self.send(ChaincodeMessage {
            r#type: Type::Ready as i32,
            ..Default::default()
        })
        .await;
    }
}

fn transaction(tx_id: &str, args: &[&str]) -> ChaincodeMessage {
    let channel_header = ChannelHeader {
        r#type: 3,
        tx_id: tx_id.into(),
        channel_id: "storage".into(),
        timestamp: Some(prost_types::Timestamp {
            seconds: 1_750_000_000,
            nanos: 0,
        }),
        ..Default::default()
    };
    let creator = SerializedIdentity {
        mspid: "Hospital1MSP".into(),
        id_bytes: b"-----BEGIN CERTIFICATE-----".to_vec(),
    };
    let header = Header {
        channel_header: channel_header.encode_to_vec(),
        signature_header: SignatureHeader {
            creator: creator.encode_to_vec(),
            nonce: vec![1; 24],
        }
        .encode_to_vec(),
    };
    let payload = ChaincodeProposalPayload {
        input: Vec::new(),
        transient_map: [("t".to_owned(), b"secret".to_vec())].into_iter().collect(),
    };
    let proposal = Proposal {
        header: header.encode_to_vec(),
        payload: payload.encode_to_vec(),
        extension: Vec::new(),
    };
    ChaincodeMessage {
        r#type: Type::Transaction as i32,
        txid: tx_id.into(),
        channel_id: "storage".into(),
        payload: ChaincodeInput {
            args: args.iter().map(|a| a.as_bytes().to_vec()).collect(),
            ..Default::default()
        }
        .encode_to_vec(),
        proposal: Some(SignedProposal {
            proposal_bytes: proposal.encode_to_vec(),
            signature: vec![0; 8],
        }),
        ..Default::default()
    }
}

fn answer(to: &ChaincodeMessage, payload: &[u8]) -> ChaincodeMessage {
    ChaincodeMessage {
        r#type: Type::Response as i32,
        txid: to.txid.clone(),
        channel_id: to.channel_id.clone(),
        payload: payload.to_vec(),
        ..Default::default()
    }
}

async fn plain_channel(address: std::net::SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_concurrent_transactions_events_and_errors() {
    let (address, _stop) = start(TlsConfig::DangerousPlaintext).await;
    let mut peer = FakePeer::connect(plain_channel(address).await)
        .await
        .unwrap();
    peer.handshake().await;

    // Two transactions in flight; the peer answers the second one's read first.
    peer.send(transaction("tx-a", &["Touch", "ka"])).await;
    peer.send(transaction("tx-b", &["Test:Touch", "kb"])).await;
    let mut reads = vec![peer.receive().await, peer.receive().await];
    reads.sort_by(|x, y| y.txid.cmp(&x.txid));
    assert!(reads.iter().all(|m| m.r#type == Type::GetState as i32));
    for read in &reads {
        let request = GetState::decode(read.payload.as_slice()).unwrap();
        assert_eq!(request.key, if read.txid == "tx-a" { "ka" } else { "kb" });
        assert!(request.collection.is_empty());
        peer.send(answer(read, format!("old-{}", read.txid).as_bytes()))
            .await;
    }
    let mut completed = Vec::new();
    while completed.len() < 2 {
        let message = peer.receive().await;
        if message.r#type == Type::PutState as i32 {
            let put = PutState::decode(message.payload.as_slice()).unwrap();
            assert_eq!(put.value, format!("old-{}+", message.txid).into_bytes());
            peer.send(answer(&message, b"")).await;
        } else {
            assert_eq!(message.r#type, Type::Completed as i32, "{message:?}");
            completed.push(message);
        }
    }
    for done in &completed {
        let response = Response::decode(done.payload.as_slice()).unwrap();
        assert_eq!(response.status, 200, "{}", response.message);
        assert_eq!(
            String::from_utf8(response.payload).unwrap(),
            "Hospital1MSP|secret|1750000000"
        );
        let event = done.chaincode_event.as_ref().unwrap();
        assert_eq!(event.event_name, "touched");
        assert_eq!(event.payload, format!("old-{}+", done.txid).into_bytes());
    }

    // A panic is that transaction's error; the server keeps serving.
    peer.send(transaction("tx-c", &["Boom"])).await;
    let done = peer.receive().await;
    assert_eq!(done.r#type, Type::Completed as i32);
    let response = Response::decode(done.payload.as_slice()).unwrap();
    assert_eq!(response.status, 500);
    assert!(
        response.message.contains("panicked: kaboom"),
        "{}",
        response.message
    );

    // Unknown function and malformed arguments.
    peer.send(transaction("tx-d", &["Nope"])).await;
    let response = Response::decode(peer.receive().await.payload.as_slice()).unwrap();
    assert_eq!(response.status, 500);
    assert!(response.message.contains("not found"));

    // Undecodable input is an ERROR message for that transaction.
    let mut garbage = transaction("tx-e", &[]);
    garbage.payload = vec![0xff, 0xff, 0xff];
    peer.send(garbage).await;
    let error = peer.receive().await;
    assert_eq!(error.r#type, Type::Error as i32);
    assert_eq!(error.txid, "tx-e");

    // A peer error for a ledger request becomes the transaction's error.
    peer.send(transaction("tx-f", &["Touch", "kf"])).await;
    let read = peer.receive().await;
    peer.send(ChaincodeMessage {
        r#type: Type::Error as i32,
        payload: b"ledger unavailable".to_vec(),
        ..answer(&read, b"")
    })
    .await;
    let response = Response::decode(peer.receive().await.payload.as_slice()).unwrap();
    assert_eq!(response.status, 500);
    assert!(response.message.contains("ledger unavailable"));

    // Keepalive is echoed.
    peer.send(ChaincodeMessage {
        r#type: Type::Keepalive as i32,
        ..Default::default()
    })
    .await;
    assert_eq!(peer.receive().await.r#type, Type::Keepalive as i32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnecting_peer_is_served_again() {
    let (address, _stop) = start(TlsConfig::DangerousPlaintext).await;
    let mut first = FakePeer::connect(plain_channel(address).await)
        .await
        .unwrap();
    first.handshake().await;
    first.send(transaction("tx-1", &["Touch", "k"])).await;
    let _read = first.receive().await;
    drop(first); // the peer goes away mid-transaction
    let channel = plain_channel(address).await;
    let mut second = FakePeer::connect(channel).await.unwrap();
    second.handshake().await;
    second.send(transaction("tx-1", &["Touch", "k"])).await;
    let read = second.receive().await;
    assert_eq!(read.r#type, Type::GetState as i32);
}

struct Pki {
    ca_pem: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
    other_ca_pem: String,
    other_client_cert: String,
    other_client_key: String,
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let make_ca = || {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        (cert, rcgen::Issuer::new(params, key))
    };
    let (ca, issuer) = make_ca();
    let leaf = |names: Vec<String>, issuer: &rcgen::Issuer<'static, KeyPair>| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, issuer)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = leaf(vec!["localhost".into(), "127.0.0.1".into()], &issuer);
    let (client_cert, client_key) = leaf(vec!["peer0".into()], &issuer);
    let (other, other_issuer) = make_ca();
    let (other_client_cert, other_client_key) = leaf(vec!["intruder".into()], &other_issuer);
    Pki {
        ca_pem: ca.pem(),
        server_cert,
        server_key,
        client_cert,
        client_key,
        other_ca_pem: other.pem(),
        other_client_cert,
        other_client_key,
    }
}

async fn tls_channel(
    address: std::net::SocketAddr,
    ca: &str,
    identity: Option<(&str, &str)>,
) -> Result<Channel, String> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    let endpoint = Endpoint::from_shared(format!("https://{address}"))
        .unwrap()
        .tls_config(tls)
        .map_err(|e| e.to_string())?;
    endpoint.connect().await.map_err(|e| e.to_string())
}

async fn handshake_works(channel: Result<Channel, String>) -> bool {
    let Ok(channel) = channel else { return false };
    match FakePeer::connect(channel).await {
        Ok(mut peer) => tokio::time::timeout(Duration::from_secs(5), peer.from_chaincode.message())
            .await
            .map(|m| matches!(m, Ok(Some(ref msg)) if msg.r#type == Type::Register as i32))
            .unwrap_or(false),
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_admits_only_peers_with_a_certificate_from_the_client_ca() {
    let pki = pki();
    let tls = TlsConfig::Enabled {
        cert_pem: pki.server_cert.clone().into_bytes(),
        key_pem: pki.server_key.clone().into_bytes(),
        client_ca_pem: Some(pki.ca_pem.clone().into_bytes()),
    };
    let (address, _stop) = start(tls).await;
    let good = tls_channel(
        address,
        &pki.ca_pem,
        Some((&pki.client_cert, &pki.client_key)),
    )
    .await;
    assert!(
        handshake_works(good).await,
        "a peer with a client certificate from the CA must be served"
    );
    let anonymous = tls_channel(address, &pki.ca_pem, None).await;
    assert!(
        !handshake_works(anonymous).await,
        "a peer without a client certificate must be refused"
    );
    let foreign = tls_channel(
        address,
        &pki.ca_pem,
        Some((&pki.other_client_cert, &pki.other_client_key)),
    )
    .await;
    assert!(
        !handshake_works(foreign).await,
        "a client certificate from another CA must be refused"
    );
    let wrong_server_ca = tls_channel(
        address,
        &pki.other_ca_pem,
        Some((&pki.client_cert, &pki.client_key)),
    )
    .await;
    assert!(
        !handshake_works(wrong_server_ca).await,
        "the client must not trust a server outside its CA"
    );
    let plain = Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await;
    let plain_ok = match plain {
        Ok(channel) => handshake_works(Ok(channel)).await,
        Err(_) => false,
    };
    assert!(!plain_ok, "plain text must be refused when TLS is on");
}

#[test]
fn configuration_is_validated_before_start() {
    let dir = std::env::temp_dir().join(format!("medfabric-shim-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\n").unwrap();
    std::fs::write(&key, "not pem").unwrap();
    let env = |pairs: &[(&str, String)]| {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    };
    let id = ("CHAINCODE_ID", "basic_1.0:abc".to_owned());
    let address = ("CHAINCODE_SERVER_ADDRESS", "127.0.0.1:9999".to_owned());
    let error = |pairs: &[(&str, String)]| {
        ServerConfig::from_lookup(env(pairs))
            .unwrap_err()
            .to_string()
    };

    assert!(error(std::slice::from_ref(&address)).contains("CHAINCODE_ID is not set"));
    assert!(
        error(&[("CHAINCODE_ID", "nolabel".into()), address.clone()]).contains("not a package id")
    );
    assert!(
        error(&[id.clone(), ("CHAINCODE_SERVER_ADDRESS", "somewhere".into())])
            .contains("not host:port")
    );
    // TLS is on unless disabled explicitly.
    assert!(error(&[id.clone(), address.clone()]).contains("TLS is on by default"));
    assert!(
        error(&[
            id.clone(),
            address.clone(),
            ("CHAINCODE_TLS_DISABLED", "yes".into())
        ])
        .contains("true or false")
    );
    let missing = dir.join("missing.pem").display().to_string();
    assert!(
        error(&[
            id.clone(),
            address.clone(),
            ("CHAINCODE_TLS_CERT_FILE", missing.clone()),
            ("CHAINCODE_TLS_KEY_FILE", missing)
        ])
        .contains("cannot read")
    );
    assert!(
        error(&[
            id.clone(),
            address.clone(),
            ("CHAINCODE_TLS_CERT_FILE", cert.display().to_string()),
            ("CHAINCODE_TLS_KEY_FILE", key.display().to_string()),
        ])
        .contains("private key file is not PEM")
    );
    let plain = ServerConfig::from_lookup(env(&[
        id,
        address,
        ("CHAINCODE_TLS_DISABLED", "true".into()),
    ]))
    .unwrap();
    assert!(matches!(plain.tls, TlsConfig::DangerousPlaintext));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_the_server_even_with_a_peer_connected() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = ServerConfig {
        chaincode_id: PACKAGE_ID.into(),
        address,
        tls: TlsConfig::DangerousPlaintext,
    };
    let server = tokio::spawn(serve_on(listener, config, Arc::new(chaincode()), async {
        let _ = stopped.await;
    }));
    let mut peer = FakePeer::connect(plain_channel(address).await)
        .await
        .unwrap();
    peer.handshake().await;
    stop.send(()).unwrap();
    let finished = tokio::time::timeout(
        medfabric_shim::server::SHUTDOWN_GRACE + Duration::from_secs(3),
        server,
    )
    .await;
    assert!(
        finished.is_ok(),
        "the server must stop even though the peer keeps its stream open"
    );
    finished.unwrap().unwrap().unwrap();
    assert!(
        Endpoint::from_shared(format!("http://{address}"))
            .unwrap()
            .connect()
            .await
            .is_err()
    );
}
