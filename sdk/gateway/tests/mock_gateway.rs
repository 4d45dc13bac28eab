//! The whole client against an in-process Gateway service that checks what a peer would
//! check: every signature verifies under the creator's certificate and is low-S, and the
//! transaction id is hex(SHA-256(nonce ‖ creator)). Runs without a Fabric network; the real
//! one is exercised by `real_network.rs`.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use medfabric_gateway::medfabric_protos::common::{
    ChannelHeader, Envelope, Header, Payload, SignatureHeader,
};
use medfabric_gateway::medfabric_protos::gateway::gateway_server::{
    Gateway as GatewayService, GatewayServer,
};
use medfabric_gateway::medfabric_protos::gateway::{
    ChaincodeEventsRequest, ChaincodeEventsResponse, CommitStatusRequest, CommitStatusResponse,
    EndorseRequest, EndorseResponse, ErrorDetail, EvaluateRequest, EvaluateResponse,
    SignedChaincodeEventsRequest, SignedCommitStatusRequest, SubmitRequest, SubmitResponse,
};
use medfabric_gateway::medfabric_protos::orderer::seek_position;
use medfabric_gateway::medfabric_protos::protos::{
    ChaincodeAction, ChaincodeActionPayload, ChaincodeEndorsedAction, ChaincodeEvent,
    ChaincodeInvocationSpec, ChaincodeProposalPayload, Proposal, ProposalResponsePayload, Response,
    SignedProposal, Transaction, TransactionAction, TxValidationCode,
};
use medfabric_gateway::{
    Channel, ChannelBuilder, Checkpointer, Error, FileCheckpointer, Gateway, Identity, P256Signer,
    Signer, is_low_s,
};
use prost::Message;
use sha2::{Digest, Sha256};
use tokio_stream::StreamExt;

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Verifies a signature over `signed_bytes` by the serialised identity `creator`.
fn check_signature(
    creator: &[u8],
    signed_bytes: &[u8],
    signature: &[u8],
) -> Result<(), tonic::Status> {
    let identity = Identity::from_bytes(creator)
        .map_err(|e| tonic::Status::permission_denied(format!("bad creator: {e}")))?;
    if !is_low_s(signature) {
        return Err(tonic::Status::permission_denied(
            "high-S or malformed signature",
        ));
    }
    if !identity.verify(&sha256(signed_bytes), signature) {
        return Err(tonic::Status::permission_denied(
            "signature does not verify",
        ));
    }
    Ok(())
}

struct Decoded {
    header: Header,
    channel_header: ChannelHeader,
    args: Vec<Vec<u8>>,
    transient: HashMap<String, Vec<u8>>,
    chaincode_payload: Vec<u8>,
}

fn decode_proposal(signed: &SignedProposal) -> Result<Decoded, tonic::Status> {
    let bad = |what: &str| tonic::Status::invalid_argument(format!("malformed {what}"));
    let proposal =
        Proposal::decode(signed.proposal_bytes.as_slice()).map_err(|_| bad("proposal"))?;
    let header = Header::decode(proposal.header.as_slice()).map_err(|_| bad("header"))?;
    let channel_header = ChannelHeader::decode(header.channel_header.as_slice())
        .map_err(|_| bad("channel header"))?;
    let signature_header = SignatureHeader::decode(header.signature_header.as_slice())
        .map_err(|_| bad("signature header"))?;
    check_signature(
        &signature_header.creator,
        &signed.proposal_bytes,
        &signed.signature,
    )?;
    let mut preimage = signature_header.nonce.clone();
    preimage.extend_from_slice(&signature_header.creator);
    if hex::encode(sha256(&preimage)) != channel_header.tx_id {
        return Err(tonic::Status::invalid_argument(
            "transaction id is not H(nonce ‖ creator)",
        ));
    }
    let payload = ChaincodeProposalPayload::decode(proposal.payload.as_slice())
        .map_err(|_| bad("chaincode proposal payload"))?;
    let spec = ChaincodeInvocationSpec::decode(payload.input.as_slice())
        .map_err(|_| bad("invocation spec"))?;
    let args = spec
        .chaincode_spec
        .and_then(|s| s.input)
        .map(|i| i.args)
        .unwrap_or_default();
    Ok(Decoded {
        header,
        channel_header,
        args,
        transient: payload.transient_map,
        chaincode_payload: proposal.payload,
    })
}

/// The chaincode of the mock: function name → result, or an error with details.
fn run_chaincode(decoded: &Decoded) -> Result<Vec<u8>, tonic::Status> {
    let function = String::from_utf8_lossy(&decoded.args[0]).into_owned();
    let rest: Vec<String> = decoded.args[1..]
        .iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    match function.as_str() {
        "Echo" | "Conflict" | "SmartContract:Echo" => {
            Ok(format!("{function}({})", rest.join(",")).into_bytes())
        }
        "Transient" => Ok(decoded.transient.get(&rest[0]).cloned().unwrap_or_default()),
        "Fail" => {
            let detail = ErrorDetail {
                address: "peer0.org1:7051".into(),
                msp_id: "Org1MSP".into(),
                message: format!("chaincode response 500, {}", rest.join(" ")),
            };
            Err(status_with_details(
                tonic::Code::Aborted,
                "failed to endorse transaction",
                &[detail],
            ))
        }
        other => Err(tonic::Status::not_found(format!("no function {other}"))),
    }
}

/// What Fabric's gateway sends: a google.rpc.Status with Any(gateway.ErrorDetail) entries.
fn status_with_details(code: tonic::Code, message: &str, details: &[ErrorDetail]) -> tonic::Status {
    #[derive(Clone, PartialEq, prost::Message)]
    struct RpcStatus {
        #[prost(int32, tag = "1")]
        code: i32,
        #[prost(string, tag = "2")]
        message: String,
        #[prost(message, repeated, tag = "3")]
        details: Vec<prost_types::Any>,
    }
    let status = RpcStatus {
        code: code as i32,
        message: message.into(),
        details: details
            .iter()
            .map(|d| prost_types::Any {
                type_url: "type.googleapis.com/gateway.ErrorDetail".into(),
                value: d.encode_to_vec(),
            })
            .collect(),
    };
    tonic::Status::with_details(code, message, status.encode_to_vec().into())
}

#[derive(Default)]
struct MockGateway {
    /// Endorsed transactions and the validation code their commit will get.
    endorsed: Mutex<HashMap<String, TxValidationCode>>,
    submitted: Mutex<HashSet<String>>,
}

#[tonic::async_trait]
impl GatewayService for MockGateway {
    async fn evaluate(
        &self,
        request: tonic::Request<EvaluateRequest>,
    ) -> Result<tonic::Response<EvaluateResponse>, tonic::Status> {
        let request = request.into_inner();
        let decoded = decode_proposal(request.proposed_transaction.as_ref().unwrap())?;
        assert_eq!(decoded.channel_header.tx_id, request.transaction_id);
        if decoded.args[0] == b"Slow" {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        let payload = run_chaincode(&decoded)?;
        Ok(tonic::Response::new(EvaluateResponse {
            result: Some(Response {
                status: 200,
                message: String::new(),
                payload,
            }),
        }))
    }

    async fn endorse(
        &self,
        request: tonic::Request<EndorseRequest>,
    ) -> Result<tonic::Response<EndorseResponse>, tonic::Status> {
        let request = request.into_inner();
        let decoded = decode_proposal(request.proposed_transaction.as_ref().unwrap())?;
        let result = run_chaincode(&decoded)?;
        let code = if decoded.args[0] == b"Conflict" {
            TxValidationCode::MvccReadConflict
        } else {
            TxValidationCode::Valid
        };
        self.endorsed
            .lock()
            .unwrap()
            .insert(decoded.channel_header.tx_id.clone(), code);
        let action = ChaincodeAction {
            response: Some(Response {
                status: 200,
                message: String::new(),
                payload: result,
            }),
            ..ChaincodeAction::default()
        };
        let response_payload = ProposalResponsePayload {
            proposal_hash: vec![1; 32],
            extension: action.encode_to_vec(),
        };
        let action_payload = ChaincodeActionPayload {
            chaincode_proposal_payload: decoded.chaincode_payload.clone(),
            action: Some(ChaincodeEndorsedAction {
                proposal_response_payload: response_payload.encode_to_vec(),
                endorsements: Vec::new(),
            }),
        };
        let transaction = Transaction {
            actions: vec![TransactionAction {
                header: decoded.header.signature_header.clone(),
                payload: action_payload.encode_to_vec(),
            }],
        };
        let payload = Payload {
            header: Some(decoded.header.clone()),
            data: transaction.encode_to_vec(),
        };
        Ok(tonic::Response::new(EndorseResponse {
            prepared_transaction: Some(Envelope {
                payload: payload.encode_to_vec(),
                signature: Vec::new(),
            }),
        }))
    }

    async fn submit(
        &self,
        request: tonic::Request<SubmitRequest>,
    ) -> Result<tonic::Response<SubmitResponse>, tonic::Status> {
        let request = request.into_inner();
        let envelope = request.prepared_transaction.unwrap();
        let payload = Payload::decode(envelope.payload.as_slice()).unwrap();
        let header = payload.header.unwrap();
        let signature_header = SignatureHeader::decode(header.signature_header.as_slice()).unwrap();
        check_signature(
            &signature_header.creator,
            &envelope.payload,
            &envelope.signature,
        )?;
        if !self
            .endorsed
            .lock()
            .unwrap()
            .contains_key(&request.transaction_id)
        {
            return Err(tonic::Status::failed_precondition("not endorsed"));
        }
        self.submitted
            .lock()
            .unwrap()
            .insert(request.transaction_id);
        Ok(tonic::Response::new(SubmitResponse {}))
    }

    async fn commit_status(
        &self,
        request: tonic::Request<SignedCommitStatusRequest>,
    ) -> Result<tonic::Response<CommitStatusResponse>, tonic::Status> {
        let signed = request.into_inner();
        let request = CommitStatusRequest::decode(signed.request.as_slice()).unwrap();
        check_signature(&request.identity, &signed.request, &signed.signature)?;
        if !self
            .submitted
            .lock()
            .unwrap()
            .contains(&request.transaction_id)
        {
            return Err(tonic::Status::not_found("transaction not submitted"));
        }
        let code = self.endorsed.lock().unwrap()[&request.transaction_id];
        Ok(tonic::Response::new(CommitStatusResponse {
            result: code as i32,
            block_number: 42,
        }))
    }

    type ChaincodeEventsStream =
        tokio_stream::Iter<std::vec::IntoIter<Result<ChaincodeEventsResponse, tonic::Status>>>;

    async fn chaincode_events(
        &self,
        request: tonic::Request<SignedChaincodeEventsRequest>,
    ) -> Result<tonic::Response<Self::ChaincodeEventsStream>, tonic::Status> {
        let signed = request.into_inner();
        let request = ChaincodeEventsRequest::decode(signed.request.as_slice()).unwrap();
        check_signature(&request.identity, &signed.request, &signed.signature)?;
        // The "ledger": block 5 holds tx-a and tx-b, block 6 holds tx-c.
        let ledger = [(5u64, "tx-a"), (5, "tx-b"), (6, "tx-c")];
        let start = match request.start_position.and_then(|p| p.r#type) {
            Some(seek_position::Type::Specified(s)) => s.number,
            _ => 6,
        };
        let mut skipping = !request.after_transaction_id.is_empty();
        let mut responses: Vec<Result<ChaincodeEventsResponse, tonic::Status>> = Vec::new();
        for (block, tx) in ledger {
            if block < start {
                continue;
            }
            if skipping && block == start {
                if tx == request.after_transaction_id {
                    skipping = false;
                }
                continue;
            }
            responses.push(Ok(ChaincodeEventsResponse {
                block_number: block,
                events: vec![ChaincodeEvent {
                    chaincode_id: request.chaincode_id.clone(),
                    tx_id: tx.into(),
                    event_name: format!("event-{tx}"),
                    payload: tx.as_bytes().to_vec(),
                }],
            }));
        }
        Ok(tonic::Response::new(tokio_stream::iter(responses)))
    }
}

async fn start_mock() -> (Arc<MockGateway>, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let mock = Arc::new(MockGateway::default());
    let service = GatewayServer::from_arc(Arc::clone(&mock));
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
            .unwrap();
    });
    (mock, address)
}

struct Client {
    identity: Identity,
    signer: P256Signer,
    channel: Channel,
}

async fn client() -> Client {
    let (_, address) = start_mock().await;
    let ca = common::TestCa::new("org1");
    let user = ca.user();
    Client {
        identity: Identity::from_pem("Org1MSP", &user.cert_pem).unwrap(),
        signer: P256Signer::from_pem(&user.key_pem).unwrap(),
        channel: ChannelBuilder::insecure_plaintext(address)
            .connect()
            .await
            .unwrap(),
    }
}

#[tokio::test]
async fn evaluate_and_submit_shorthands() {
    let c = client().await;
    let gateway = Gateway::connect(c.identity, c.signer, c.channel).unwrap();
    let contract = gateway.network("storage").contract("basic", None);
    assert_eq!(
        contract.evaluate("Echo", &["a", "b"]).await.unwrap(),
        b"Echo(a,b)"
    );
    assert_eq!(contract.submit("Echo", &["c"]).await.unwrap(), b"Echo(c)");
    let named = gateway
        .network("storage")
        .contract("basic", Some("SmartContract"));
    assert_eq!(
        named.evaluate("Echo", &[]).await.unwrap(),
        b"SmartContract:Echo()"
    );
}

#[tokio::test]
async fn transient_data_reaches_the_chaincode() {
    let c = client().await;
    let gateway = Gateway::connect(c.identity, c.signer, c.channel).unwrap();
    let contract = gateway.network("storage").contract("basic", None);
    let value = contract
        .new_proposal("Transient")
        .arg("key")
        .transient([("key", b"private value".to_vec())])
        .evaluate()
        .await
        .unwrap();
    assert_eq!(value, b"private value");
}

#[tokio::test]
async fn staged_flow_signed_offline_by_a_key_the_gateway_never_sees() {
    let c = client().await;
    let offline = Gateway::builder(c.identity, c.channel).connect().unwrap();
    let contract = offline.network("storage").contract("basic", None);
    let signer = c.signer; // stands in for an HSM or another machine

    let unsigned = contract.new_proposal("Echo").args(["x"]).build().unwrap();
    let proposal = offline
        .new_signed_proposal(&unsigned.bytes(), signer.sign(&unsigned.digest()).unwrap())
        .unwrap();
    let unsigned_tx = proposal.endorse().await.unwrap();
    assert_eq!(unsigned_tx.result(), b"Echo(x)");
    assert!(matches!(
        unsigned_tx.submit().await,
        Err(Error::Unsigned {
            stage: "transaction",
            ..
        })
    ));
    let transaction = offline
        .new_signed_transaction(
            &unsigned_tx.bytes(),
            signer.sign(&unsigned_tx.digest()).unwrap(),
        )
        .unwrap();
    assert_eq!(transaction.transaction_id(), proposal.transaction_id());
    assert_eq!(transaction.result(), b"Echo(x)");
    let unsigned_commit = transaction.submit().await.unwrap();
    let commit = offline
        .new_signed_commit(
            &unsigned_commit.bytes(),
            signer.sign(&unsigned_commit.digest()).unwrap(),
        )
        .unwrap();
    let status = commit.status().await.unwrap();
    assert!(status.successful());
    assert_eq!(status.block_number, 42);
    assert_eq!(status.transaction_id, proposal.transaction_id());
}

#[tokio::test]
async fn a_signature_by_the_wrong_key_is_refused_by_the_server() {
    let c = client().await;
    let offline = Gateway::builder(c.identity, c.channel).connect().unwrap();
    let contract = offline.network("storage").contract("basic", None);
    let unsigned = contract.new_proposal("Echo").build().unwrap();
    let intruder = P256Signer::generate().unwrap();
    let proposal = offline
        .new_signed_proposal(
            &unsigned.bytes(),
            intruder.sign(&unsigned.digest()).unwrap(),
        )
        .unwrap();
    let err = proposal.evaluate().await.unwrap_err();
    assert_eq!(
        err.grpc_status().unwrap().code,
        tonic::Code::PermissionDenied
    );
}

#[tokio::test]
async fn errors_name_the_stage_and_carry_id_code_and_details() {
    let c = client().await;
    let gateway = Gateway::connect(c.identity, c.signer, c.channel).unwrap();
    let contract = gateway.network("storage").contract("basic", None);

    let proposal = contract
        .new_proposal("Fail")
        .args(["asset9", "does not exist"])
        .build()
        .unwrap();
    let err = proposal.endorse().await.unwrap_err();
    let Error::Endorse {
        transaction_id,
        status,
    } = &err
    else {
        panic!("expected an endorse error, got {err:?}");
    };
    assert_eq!(transaction_id, proposal.transaction_id());
    assert_eq!(status.code, tonic::Code::Aborted);
    assert_eq!(status.details.len(), 1);
    assert_eq!(status.details[0].msp_id, "Org1MSP");
    assert!(err.to_string().contains("asset9 does not exist"), "{err}");

    let err = contract.evaluate("Fail", &["boom"]).await.unwrap_err();
    assert!(matches!(err, Error::Evaluate { .. }), "{err:?}");

    let err = contract.submit("Conflict", &["k"]).await.unwrap_err();
    let Error::Commit {
        code,
        block_number,
        transaction_id,
    } = &err
    else {
        panic!("expected a commit error, got {err:?}");
    };
    assert_eq!(*code, TxValidationCode::MvccReadConflict);
    assert_eq!(*block_number, 42);
    assert_eq!(err.transaction_id(), Some(transaction_id.as_str()));
}

#[tokio::test]
async fn per_call_deadlines_apply() {
    let c = client().await;
    let gateway = Gateway::builder(c.identity, c.channel)
        .signer(c.signer)
        .evaluate_timeout(Some(Duration::from_millis(200)))
        .connect()
        .unwrap();
    let contract = gateway.network("storage").contract("basic", None);
    let started = std::time::Instant::now();
    let err = contract.evaluate("Slow", &[]).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(
        err.grpc_status().unwrap().code,
        tonic::Code::DeadlineExceeded,
        "{err:?}"
    );
}

#[tokio::test]
async fn chaincode_events_resume_from_a_file_checkpoint_without_gaps_or_repeats() {
    let c = client().await;
    let gateway = Gateway::connect(c.identity, c.signer, c.channel).unwrap();
    let network = gateway.network("storage");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checkpoint.json");

    // First run: process one event, checkpoint it, "crash".
    let mut checkpointer = FileCheckpointer::open(&path).unwrap();
    let mut events = network
        .chaincode_events("basic")
        .start_block(5)
        .checkpoint(&checkpointer)
        .events()
        .await
        .unwrap();
    let first = events.next().await.unwrap().unwrap();
    assert_eq!(
        (first.block_number, first.transaction_id.as_str()),
        (5, "tx-a")
    );
    assert_eq!(first.event_name, "event-tx-a");
    assert_eq!(first.chaincode_name, "basic");
    checkpointer.checkpoint_chaincode_event(&first).unwrap();
    drop(events);
    drop(checkpointer);

    // Restart: the checkpoint file alone says where to go on.
    let checkpointer = FileCheckpointer::open(&path).unwrap();
    let events = network
        .chaincode_events("basic")
        .start_block(5)
        .checkpoint(&checkpointer)
        .events()
        .await
        .unwrap();
    let rest: Vec<_> = events.map(|e| e.unwrap().transaction_id).collect().await;
    assert_eq!(rest, vec!["tx-b".to_owned(), "tx-c".to_owned()]);
}

#[tokio::test]
async fn mutual_tls_with_a_server_name_override() {
    use tonic::transport::{Certificate, Identity as TlsIdentity, Server, ServerTlsConfig};

    let tls_ca = common::TestCa::new("tls");
    let server = tls_ca.issue("peer0", &["peer0.hospital1.medfabric.local"], 2020, 2040);
    let client_tls = tls_ca.issue("client", &[], 2020, 2040);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let tls = ServerTlsConfig::new()
        .identity(TlsIdentity::from_pem(&server.cert_pem, &server.key_pem))
        .client_ca_root(Certificate::from_pem(&tls_ca.cert_pem));
    tokio::spawn(async move {
        Server::builder()
            .tls_config(tls)
            .unwrap()
            .add_service(GatewayServer::new(MockGateway::default()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
            .unwrap();
    });

    let ca = common::TestCa::new("org1");
    let user = ca.user();
    let identity = Identity::from_pem("Org1MSP", &user.cert_pem).unwrap();

    // The certificate names the peer, not 127.0.0.1: the override makes it verify.
    let builder = ChannelBuilder::new(address.clone(), tls_ca.cert_pem.clone())
        .client_identity(client_tls.cert_pem.clone(), client_tls.key_pem.clone())
        .server_name_override("peer0.hospital1.medfabric.local");
    assert!(builder.client_certificate_hash().unwrap().is_some());
    let channel = builder.connect().await.unwrap();
    let gateway = Gateway::connect(
        identity.clone(),
        P256Signer::from_pem(&user.key_pem).unwrap(),
        channel,
    )
    .unwrap();
    let contract = gateway.network("storage").contract("basic", None);
    assert_eq!(
        contract.evaluate("Echo", &["tls"]).await.unwrap(),
        b"Echo(tls)"
    );

    // Without the client certificate the server refuses the handshake.
    let refused = ChannelBuilder::new(address, tls_ca.cert_pem.clone())
        .server_name_override("peer0.hospital1.medfabric.local")
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await;
    if let Ok(channel) = refused {
        // Some TLS 1.3 stacks only fail at the first request.
        let gateway = Gateway::connect(
            identity,
            P256Signer::from_pem(&user.key_pem).unwrap(),
            channel,
        )
        .unwrap();
        let contract = gateway.network("storage").contract("basic", None);
        assert!(contract.evaluate("Echo", &[]).await.is_err());
    }
}
