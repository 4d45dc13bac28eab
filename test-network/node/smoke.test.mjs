// Smoke test of asset-transfer-basic (chaincode `basic`) on the medfabric test network, through
// the official Fabric Gateway client, on both channels. Run: node --test smoke.test.mjs
// Needs `network.sh up && network.sh deploy`. No network => the tests FAIL (they never skip).
// Env: MEDFABRIC_NETWORK_DIR, MEDFABRIC_ORG, MEDFABRIC_USER (see common.mjs), SMOKE_CHANNELS
// (default "storage sharing"), SMOKE_CHAINCODE (default basic).

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, test } from 'node:test';

import { GatewayError } from '@hyperledger/fabric-gateway';

import { errorText, openGateway, utf8 } from './common.mjs';

const CHANNELS = (process.env.SMOKE_CHANNELS || 'storage sharing').split(/\s+/).filter(Boolean);
const CHAINCODE = process.env.SMOKE_CHAINCODE || 'basic';
const FIELDS = ['AppraisedValue', 'Color', 'ID', 'Owner', 'Size'];

// Opened lazily inside the tests (not in a hook), so that a missing or unreachable network
// makes every test FAIL with the real error rather than be reported as cancelled.
let conn;
const gateway = () => (conn ??= openGateway()).gateway;
after(() => conn?.close());

/** Retry briefly on the transient "no combination of peers" right after a (re)start. */
async function withRetry(fn) {
    for (let attempt = 1; ; attempt++) {
        try {
            return await fn();
        } catch (err) {
            const transient = err instanceof GatewayError && /no combination of peers|no peers available/.test(err.message);
            if (!transient || attempt >= 5) throw err;
            await new Promise((r) => setTimeout(r, 1000 * attempt));
        }
    }
}

for (const channel of CHANNELS) {
    describe(`${CHAINCODE} on ${channel}`, () => {
        const contract = {
            submitTransaction: (...a) => gateway().getNetwork(channel).getContract(CHAINCODE).submitTransaction(...a),
            evaluateTransaction: (...a) => gateway().getNetwork(channel).getContract(CHAINCODE).evaluateTransaction(...a),
        };
        const id = `smoke-${channel}-${Date.now()}-${randomBytes(4).toString('hex')}`;
        const submit = (fn, ...args) => withRetry(() => contract.submitTransaction(fn, ...args)).then((b) => utf8.decode(b));
        const evaluate = (fn, ...args) => withRetry(() => contract.evaluateTransaction(fn, ...args)).then((b) => utf8.decode(b));
        const readAsset = async () => JSON.parse(await evaluate('ReadAsset', id));

        test('InitLedger (idempotent)', async () => {
            assert.equal(await submit('InitLedger'), '');
        });

        test('CreateAsset and ReadAsset returns the Go sample JSON', async () => {
            await submit('CreateAsset', id, 'blue', '5', 'Alice', '300');
            const asset = await readAsset();
            assert.deepEqual(Object.keys(asset), FIELDS);
            assert.deepEqual(asset, { AppraisedValue: 300, Color: 'blue', ID: id, Owner: 'Alice', Size: 5 });
        });

        test('AssetExists is true', async () => {
            assert.equal(await evaluate('AssetExists', id), 'true');
        });

        test('CreateAsset of an existing id fails', async () => {
            await assert.rejects(submit('CreateAsset', id, 'blue', '5', 'Alice', '300'), (err) => {
                assert.match(errorText(err), /already exists/);
                return true;
            });
        });

        test('TransferAsset returns the old owner', async () => {
            assert.equal(await submit('TransferAsset', id, 'Bob'), 'Alice');
            assert.equal((await readAsset()).Owner, 'Bob');
        });

        test('UpdateAsset', async () => {
            await submit('UpdateAsset', id, 'red', '10', 'Carol', '450');
            assert.deepEqual(await readAsset(), { AppraisedValue: 450, Color: 'red', ID: id, Owner: 'Carol', Size: 10 });
        });

        test('GetAllAssets is an array of assets holding the InitLedger ones', async () => {
            const all = JSON.parse(await evaluate('GetAllAssets'));
            assert.ok(Array.isArray(all), 'GetAllAssets must return a JSON array');
            const asset1 = all.find((a) => a.ID === 'asset1');
            assert.deepEqual(asset1 && Object.keys(asset1), FIELDS);
            assert.ok(all.some((a) => a.ID === id));
        });

        test('DeleteAsset, then AssetExists is false', async () => {
            await submit('DeleteAsset', id);
            assert.equal(await evaluate('AssetExists', id), 'false');
            await assert.rejects(evaluate('ReadAsset', id), (err) => {
                assert.match(errorText(err), /does not exist/);
                return true;
            });
        });

        test('an unknown function fails with details mentioning "not found"', async () => {
            for (const call of [evaluate, submit]) {
                await assert.rejects(call('NoSuchFunction', 'x'), (err) => {
                    assert.ok(err instanceof GatewayError, `expected a GatewayError, got ${err}`);
                    assert.ok(err.details.length > 0, `expected error details: ${errorText(err)}`);
                    assert.ok(
                        err.details.some((d) => /not found/.test(d.message)),
                        `no detail mentions "not found": ${errorText(err)}`,
                    );
                    return true;
                });
            }
        });

        test('CreateAsset with a non-integer size fails about an integer', async () => {
            await assert.rejects(submit('CreateAsset', `${id}-bad`, 'blue', 'big', 'Alice', '300'), (err) => {
                assert.ok(err instanceof GatewayError, `expected a GatewayError, got ${err}`);
                assert.match(errorText(err), /integer/i);
                return true;
            });
            assert.equal(await evaluate('AssetExists', `${id}-bad`), 'false');
        });

        test('org.hyperledger.fabric:GetMetadata describes SmartContract', async () => {
            const meta = JSON.parse(await evaluate('org.hyperledger.fabric:GetMetadata'));
            const sc = meta?.contracts?.SmartContract;
            assert.ok(sc, `no contracts.SmartContract in ${JSON.stringify(meta)}`);
            const names = (sc.transactions ?? []).map((t) => t.name).sort();
            for (const fn of [
                'AssetExists',
                'CreateAsset',
                'DeleteAsset',
                'GetAllAssets',
                'InitLedger',
                'ReadAsset',
                'TransferAsset',
                'UpdateAsset',
            ]) {
                assert.ok(names.includes(fn), `metadata lacks transaction ${fn}: ${names.join(', ')}`);
            }
        });
    });
}
