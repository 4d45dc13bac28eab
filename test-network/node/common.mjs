// Shared helpers for the Node clients of the medfabric test network: read the connection
// profile network.sh wrote to .state/connection/<org>.json, connect to the org's peer through
// the Fabric Gateway (TLS), format gateway errors, and decode chaincode events from blocks.

import * as crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import * as grpc from '@grpc/grpc-js';
import {
    CommitError,
    CommitStatusError,
    EndorseError,
    GatewayError,
    connect,
    hash,
    signers,
} from '@hyperledger/fabric-gateway';
import { common, peer } from '@hyperledger/fabric-protos';

const HERE = dirname(fileURLToPath(import.meta.url));

/** MEDFABRIC_NETWORK_DIR, default ../.state next to this folder (test-network/.state). */
export function networkDir() {
    return resolve(process.env.MEDFABRIC_NETWORK_DIR || resolve(HERE, '..', '.state'));
}

export function defaultOrg() {
    return process.env.MEDFABRIC_ORG || 'hospital1';
}

export function defaultUser() {
    return process.env.MEDFABRIC_USER || 'User1';
}

/** The connection profile of `org` (hospital1 | hospital2 | research). */
export function loadProfile(org = defaultOrg(), dir = networkDir()) {
    const file = resolve(dir, 'connection', `${org}.json`);
    let text;
    try {
        text = readFileSync(file, 'utf8');
    } catch (err) {
        throw new Error(`cannot read connection profile ${file} (is the network up? test-network/network.sh up): ${err.message}`);
    }
    return JSON.parse(text);
}

/**
 * Everything needed to connect as `user` of `org`: MSP id, the org's gateway peer endpoint and
 * TLS CA, the user's signing certificate, key and TLS client pair, every MSP id of the network.
 */
export function resolveTarget({ org = defaultOrg(), user = defaultUser(), dir = networkDir() } = {}) {
    const profile = loadProfile(org, dir);
    const orgName = profile.client?.organization;
    const self = profile.organizations?.[orgName];
    if (!self) throw new Error(`connection profile for ${org}: organization ${orgName} missing`);
    const u = self.users?.[user];
    if (!u) throw new Error(`connection profile for ${org}: no user ${user} (have ${Object.keys(self.users ?? {}).join(', ')})`);
    const peerName = self.peers[0];
    const p = profile.peers[peerName];
    const url = new URL(p.url);
    return {
        org,
        user,
        orgName,
        mspId: self.mspid,
        organizations: Object.values(profile.organizations).map((o) => o.mspid).sort(),
        peerName,
        endpoint: url.host,
        hostOverride: p.grpcOptions?.['ssl-target-name-override'] ?? p.grpcOptions?.hostnameOverride ?? peerName,
        tlsCaPath: p.tlsCACerts.path,
        certPath: u.cert,
        keyPath: u.key,
        tlsCertPath: u.tlsCert,
        tlsKeyPath: u.tlsKey,
    };
}

/** Deadlines per gateway call, in ms. */
const DEADLINES = { evaluate: 30_000, endorse: 30_000, submit: 30_000, commitStatus: 120_000 };
const deadline = (ms) => () => ({ deadline: Date.now() + ms });

/**
 * Open a gRPC connection (TLS, client certificate presented) to the org's peer and a gateway
 * on it. Returns { gateway, client, target, close() }. Nothing is dialled until the first call.
 */
export function openGateway(opts = {}) {
    const target = resolveTarget(opts);
    const tlsCa = readFileSync(target.tlsCaPath);
    let creds;
    try {
        creds = grpc.credentials.createSsl(tlsCa, readFileSync(target.tlsKeyPath), readFileSync(target.tlsCertPath));
    } catch {
        creds = grpc.credentials.createSsl(tlsCa);
    }
    const client = new grpc.Client(target.endpoint, creds, {
        'grpc.ssl_target_name_override': target.hostOverride,
        'grpc.max_receive_message_length': 100 * 1024 * 1024,
        'grpc.max_send_message_length': 100 * 1024 * 1024,
    });
    const gateway = connect({
        client,
        identity: { mspId: target.mspId, credentials: readFileSync(target.certPath) },
        signer: signers.newPrivateKeySigner(crypto.createPrivateKey(readFileSync(target.keyPath))),
        hash: hash.sha256,
        evaluateOptions: deadline(DEADLINES.evaluate),
        endorseOptions: deadline(DEADLINES.endorse),
        submitOptions: deadline(DEADLINES.submit),
        commitStatusOptions: deadline(DEADLINES.commitStatus),
        blockEventsOptions: deadline(DEADLINES.commitStatus),
    });
    return {
        gateway,
        client,
        target,
        close() {
            gateway.close();
            client.close();
        },
    };
}

/** TxValidationCode number -> name (VALID, MVCC_READ_CONFLICT, ...). */
const TX_CODE_NAMES = Object.fromEntries(Object.entries(peer.TxValidationCode).map(([name, n]) => [n, name]));
export function txCodeName(code) {
    return TX_CODE_NAMES[code] ?? `UNKNOWN_${code}`;
}

/** gRPC status number -> name (ABORTED, UNAVAILABLE, ...). */
const GRPC_CODE_NAMES = Object.fromEntries(
    Object.entries(grpc.status).filter(([, n]) => typeof n === 'number').map(([name, n]) => [n, name]),
);
export function grpcCodeName(code) {
    return GRPC_CODE_NAMES[code] ?? `GRPC_${code}`;
}

/** The gateway error's message plus every detail (endorsing peer / orderer) message. */
export function errorText(err) {
    if (!(err instanceof Error)) return String(err);
    let text = err.message;
    const details = err.details ?? (err.cause instanceof GatewayError ? err.cause.details : undefined);
    if (Array.isArray(details) && details.length > 0) {
        text += '; details: ' + details.map((d) => `${d.address} (${d.mspId}): ${d.message}`).join('; ');
    }
    return text;
}

/**
 * Classify a failure: { error, code, kind, txId? }. Commit failures carry the TxValidationCode
 * name as code; gateway failures the gRPC status name; anything else "ERROR".
 */
export function describeError(err) {
    if (err instanceof CommitError) {
        const name = txCodeName(err.code);
        return {
            error: `transaction ${err.transactionId} failed to commit with status ${name} (${err.code})`,
            code: name,
            kind: 'commit',
            txId: err.transactionId,
        };
    }
    if (err instanceof GatewayError) {
        const kind =
            err instanceof EndorseError ? 'endorse' : err instanceof CommitStatusError ? 'commitStatus' : err.transactionId ? 'submit' : 'evaluate';
        const out = { error: errorText(err), code: grpcCodeName(err.code), kind };
        if (err.transactionId) out.txId = err.transactionId;
        return out;
    }
    return { error: errorText(err), code: 'ERROR', kind: 'client' };
}

/**
 * Find the chaincode event set by transaction `txId` in `block` (a common.Block):
 * Envelope -> Payload -> (ChannelHeader.tx_id) -> Transaction -> ChaincodeActionPayload ->
 * ProposalResponsePayload.extension -> ChaincodeAction.events. Returns
 * { name, payload: Uint8Array, chaincodeId, txId } or null when the transaction set none
 * (or is not in the block).
 */
export function findChaincodeEvent(block, txId) {
    for (const envBytes of block.getData().getDataList_asU8()) {
        const envelope = common.Envelope.deserializeBinary(envBytes);
        const payload = common.Payload.deserializeBinary(envelope.getPayload_asU8());
        const header = payload.getHeader();
        if (!header) continue;
        const channelHeader = common.ChannelHeader.deserializeBinary(header.getChannelHeader_asU8());
        if (channelHeader.getTxId() !== txId) continue;
        if (channelHeader.getType() !== common.HeaderType.ENDORSER_TRANSACTION) return null;
        const tx = peer.Transaction.deserializeBinary(payload.getData_asU8());
        for (const action of tx.getActionsList()) {
            const ccActionPayload = peer.ChaincodeActionPayload.deserializeBinary(action.getPayload_asU8());
            const endorsed = ccActionPayload.getAction();
            if (!endorsed) continue;
            const prp = peer.ProposalResponsePayload.deserializeBinary(endorsed.getProposalResponsePayload_asU8());
            const ccAction = peer.ChaincodeAction.deserializeBinary(prp.getExtension_asU8());
            const eventBytes = ccAction.getEvents_asU8();
            if (eventBytes.length === 0) continue;
            const event = peer.ChaincodeEvent.deserializeBinary(eventBytes);
            if (event.getEventName() === '' && event.getPayload_asU8().length === 0) continue;
            return {
                name: event.getEventName(),
                payload: event.getPayload_asU8(),
                chaincodeId: event.getChaincodeId(),
                txId: event.getTxId(),
            };
        }
        return null;
    }
    return null;
}

/** Read block `blockNumber` (bigint) of `network` through a block-events stream, then close it. */
export async function readBlock(network, blockNumber) {
    const blocks = await network.getBlockEvents({ startBlock: blockNumber });
    try {
        for await (const block of blocks) {
            const n = BigInt(block.getHeader().getNumber());
            if (n === blockNumber) return block;
            if (n > blockNumber) break;
        }
    } finally {
        blocks.close();
    }
    throw new Error(`block ${blockNumber} not delivered`);
}

export const b64 = (bytes) => Buffer.from(bytes).toString('base64');
export const utf8 = new TextDecoder();
