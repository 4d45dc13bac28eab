#!/usr/bin/env node
// JSON-lines driver for a real Fabric peer, through the official Fabric Gateway client.
// Used by the Rust conformance suite. One request per stdin line, one response per stdout line
// (stdout carries nothing else; diagnostics go to stderr). Requests are handled concurrently:
// match responses by "id". When stdin closes, in-flight requests finish, then the driver exits.
//
// Env: MEDFABRIC_NETWORK_DIR (default ../.state next to this folder), MEDFABRIC_ORG (hospital1),
//      MEDFABRIC_USER (User1).
//
// Requests:
//   {"id":1,"op":"submit"|"evaluate","channel":"storage","chaincode":"basic","fn":"Put",
//    "args":["k","v"],"transient":{"name":"<base64>"},"endorsingOrgs":["Hospital1MSP"]}
//   {"id":2,"op":"info"}
// Responses:
//   submit   {"id":1,"ok":true,"payload":"<b64>","txId":"…","blockNumber":"12","event":{"name":"x","payload":"<b64>"}|null}
//   evaluate {"id":1,"ok":true,"payload":"<b64>"}
//   info     {"id":2,"ok":true,"mspId":"Hospital1MSP","organizations":["Hospital1MSP","Hospital2MSP","ResearchMSP"]}
//   failure  {"id":1,"ok":false,"error":"…","code":"MVCC_READ_CONFLICT"|"ABORTED"|…,"kind":"commit"|"endorse"|…}

import { createInterface } from 'node:readline';

import { b64, describeError, findChaincodeEvent, openGateway, readBlock, resolveTarget, txCodeName } from './common.mjs';
import { CommitError } from '@hyperledger/fabric-gateway';

class BadRequest extends Error {}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function send(obj) {
    process.stdout.write(JSON.stringify(obj) + '\n');
}

let conn; // opened on first use, so "info" and bad lines work without a network
function connection() {
    conn ??= openGateway();
    return conn;
}

function str(req, field) {
    const v = req[field];
    if (typeof v !== 'string' || v === '') throw new BadRequest(`"${field}" must be a non-empty string`);
    return v;
}

function proposalOf(req) {
    const channel = str(req, 'channel');
    const chaincode = str(req, 'chaincode');
    const fn = str(req, 'fn');
    const args = req.args ?? [];
    if (!Array.isArray(args) || !args.every((a) => typeof a === 'string')) {
        throw new BadRequest('"args" must be an array of strings');
    }
    const options = { arguments: args };
    if (req.transient != null) {
        if (typeof req.transient !== 'object' || Array.isArray(req.transient)) {
            throw new BadRequest('"transient" must be an object of base64 strings');
        }
        options.transientData = {};
        for (const [k, v] of Object.entries(req.transient)) {
            if (typeof v !== 'string' || !BASE64.test(v)) throw new BadRequest(`transient "${k}" is not base64`);
            options.transientData[k] = Buffer.from(v, 'base64');
        }
    }
    if (req.endorsingOrgs != null) {
        if (!Array.isArray(req.endorsingOrgs) || !req.endorsingOrgs.every((o) => typeof o === 'string' && o !== '')) {
            throw new BadRequest('"endorsingOrgs" must be an array of MSP ids');
        }
        options.endorsingOrganizations = req.endorsingOrgs;
    }
    const network = connection().gateway.getNetwork(channel);
    return { network, proposal: network.getContract(chaincode).newProposal(fn, options) };
}

async function handle(req) {
    switch (req.op) {
        case 'info': {
            const t = resolveTarget();
            return { ok: true, mspId: t.mspId, organizations: t.organizations };
        }
        case 'evaluate': {
            const { proposal } = proposalOf(req);
            const result = await proposal.evaluate();
            return { ok: true, payload: b64(result) };
        }
        case 'submit': {
            const { network, proposal } = proposalOf(req);
            const tx = await proposal.endorse();
            const txId = tx.getTransactionId();
            const payload = b64(tx.getResult());
            const submitted = await tx.submit();
            const status = await submitted.getStatus();
            if (!status.successful) {
                const err = new CommitError({
                    code: status.code,
                    transactionId: status.transactionId,
                    message: `Transaction ${status.transactionId} failed to commit with status ${txCodeName(status.code)} (${status.code})`,
                });
                return { ok: false, ...describeError(err), blockNumber: status.blockNumber.toString() };
            }
            let ev;
            try {
                ev = findChaincodeEvent(await readBlock(network, status.blockNumber), txId);
            } catch (err) {
                const d = describeError(err);
                return {
                    ok: false,
                    ...d,
                    error: `transaction ${txId} committed in block ${status.blockNumber} but reading that block failed: ${d.error}`,
                    kind: 'blockEvents',
                    txId,
                    blockNumber: status.blockNumber.toString(),
                };
            }
            return {
                ok: true,
                payload,
                txId,
                blockNumber: status.blockNumber.toString(),
                event: ev ? { name: ev.name, payload: b64(ev.payload) } : null,
            };
        }
        default:
            throw new BadRequest(`unknown op ${JSON.stringify(req.op)} (use submit, evaluate or info)`);
    }
}

async function onLine(line) {
    if (line.trim() === '') return;
    let id = null;
    try {
        let req;
        try {
            req = JSON.parse(line);
        } catch (err) {
            throw new BadRequest(`not JSON: ${err.message}`);
        }
        if (req === null || typeof req !== 'object' || Array.isArray(req)) throw new BadRequest('request must be a JSON object');
        id = req.id ?? null;
        send({ id, ...(await handle(req)) });
    } catch (err) {
        if (err instanceof BadRequest) {
            send({ id, ok: false, error: `bad request: ${err.message}`, code: 'BAD_REQUEST', kind: 'request' });
        } else {
            send({ id, ok: false, ...describeError(err) });
        }
    }
}

const inflight = new Set();
const rl = createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false });
rl.on('line', (line) => {
    const p = onLine(line).catch((err) => {
        // onLine answers every error itself; this is only reached if writing failed
        process.stderr.write(`driver: ${err?.stack ?? err}\n`);
    });
    inflight.add(p);
    p.finally(() => inflight.delete(p));
});
rl.on('close', async () => {
    while (inflight.size > 0) await Promise.allSettled([...inflight]);
    conn?.close();
    // flush stdout before exiting
    process.stdout.write('', () => process.exit(0));
});
process.on('unhandledRejection', (err) => process.stderr.write(`driver: unhandled rejection: ${err?.stack ?? err}\n`));
process.stdout.on('error', (err) => {
    if (err.code === 'EPIPE') process.exit(0);
});
