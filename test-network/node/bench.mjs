#!/usr/bin/env node
// Benchmark through the official Fabric Gateway client: submit throughput, then evaluate latency.
// Prints one JSON line of figures on stdout (progress/errors on stderr).
//
//   node bench.mjs [--channel storage] [--chaincode basic] [--org hospital1] [--user User1]
//                  [--submits M] [--concurrency C] [--submit-fn CreateAsset]
//                  [--submit-args '["bench-{run}-{i}","blue","5","bench","100"]']
//                  [--n 500] [--warmup 50] [--evaluate-fn ReadAsset] [--evaluate-args '["bench-{run}-0"]']
//
// Submit phase: M submits (default M = C) kept C at a time in flight (each one endorse + submit +
// wait for commit); throughput = successful commits / wall time of the phase. Evaluate phase:
// `warmup` calls discarded, then N sequential calls, latency median / p95 / mean / min / max.
// Placeholders in args: {run} (random id of this run), {i} (index of the call).
// --submits 0 skips the submit phase; --n 0 skips the evaluate phase.

import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

import { describeError, openGateway, txCodeName } from './common.mjs';

function fail(message) {
    process.stderr.write(`bench: ${message}\n`);
    process.stdout.write(JSON.stringify({ error: message }) + '\n');
    process.exit(1);
}

let opt;
try {
    ({ values: opt } = parseArgs({
    options: {
        channel: { type: 'string', default: 'storage' },
        chaincode: { type: 'string', default: 'basic' },
        org: { type: 'string' },
        user: { type: 'string' },
        n: { type: 'string', default: '500' },
        warmup: { type: 'string', default: '50' },
        'evaluate-fn': { type: 'string', default: 'ReadAsset' },
        'evaluate-args': { type: 'string' },
        concurrency: { type: 'string', default: '50' },
        submits: { type: 'string' },
        'submit-fn': { type: 'string', default: 'CreateAsset' },
        'submit-args': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    }));
} catch (err) {
    fail(`${err.message} (see --help)`);
}
if (opt.help) {
    process.stdout.write(readFileSync(new URL(import.meta.url), 'utf8').split('\n').filter((l) => l.startsWith('//')).map((l) => l.slice(3)).join('\n') + '\n');
    process.exit(0);
}

function int(name) {
    const v = Number(opt[name]);
    if (!Number.isInteger(v) || v < 0) throw new Error(`--${name} must be a non-negative integer, got ${opt[name]}`);
    return v;
}
function jsonArgs(name, fallback) {
    const v = opt[name] === undefined ? fallback : JSON.parse(opt[name]);
    if (!Array.isArray(v) || !v.every((a) => typeof a === 'string')) throw new Error(`--${name} must be a JSON array of strings`);
    return v;
}

let N, WARMUP, CONCURRENCY, SUBMITS, SUBMIT_ARGS, EVALUATE_ARGS;
const RUN = randomBytes(4).toString('hex');
try {
    N = int('n');
    WARMUP = int('warmup');
    CONCURRENCY = Math.max(1, int('concurrency'));
    SUBMITS = opt.submits === undefined ? CONCURRENCY : int('submits');
    SUBMIT_ARGS = jsonArgs('submit-args', opt['submit-fn'] === 'CreateAsset' ? ['bench-{run}-{i}', 'blue', '5', 'bench', '100'] : []);
    EVALUATE_ARGS = jsonArgs(
        'evaluate-args',
        opt['evaluate-fn'] === 'ReadAsset' ? [SUBMITS > 0 && opt['submit-fn'] === 'CreateAsset' ? 'bench-{run}-0' : 'asset1'] : [],
    );
} catch (err) {
    fail(err.message);
}
const fill = (args, i) => args.map((a) => a.replaceAll('{run}', RUN).replaceAll('{i}', String(i)));

const round = (x) => Math.round(x * 1000) / 1000;
function stats(samples) {
    if (samples.length === 0) return {};
    const s = [...samples].sort((a, b) => a - b);
    const pct = (p) => s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
    return {
        median_ms: round(s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2),
        p95_ms: round(pct(95)),
        p99_ms: round(pct(99)),
        mean_ms: round(s.reduce((a, b) => a + b, 0) / s.length),
        min_ms: round(s[0]),
        max_ms: round(s[s.length - 1]),
    };
}

function gatewayVersion() {
    const require = createRequire(import.meta.url);
    const main = require.resolve('@hyperledger/fabric-gateway');
    return JSON.parse(readFileSync(join(dirname(main), '..', 'package.json'), 'utf8')).version;
}

let conn;
try {
    conn = openGateway({ ...(opt.org && { org: opt.org }), ...(opt.user && { user: opt.user }) });
} catch (err) {
    fail(err.message);
}
const contract = conn.gateway.getNetwork(opt.channel).getContract(opt.chaincode);
const out = {
    client: `@hyperledger/fabric-gateway@${gatewayVersion()}`,
    node: process.version,
    channel: opt.channel,
    chaincode: opt.chaincode,
    mspId: conn.target.mspId,
    user: conn.target.user,
    run: RUN,
};

try {
    if (SUBMITS > 0) {
        const latencies = [];
        const failures = {};
        let next = 0;
        let firstError;
        async function worker() {
            while (next < SUBMITS) {
                const i = next++;
                const t0 = performance.now();
                try {
                    const tx = await contract.newProposal(opt['submit-fn'], { arguments: fill(SUBMIT_ARGS, i) }).endorse();
                    const status = await (await tx.submit()).getStatus();
                    if (!status.successful) {
                        const name = txCodeName(status.code);
                        failures[name] = (failures[name] ?? 0) + 1;
                        continue;
                    }
                    latencies.push(performance.now() - t0);
                } catch (err) {
                    const d = describeError(err);
                    failures[d.code] = (failures[d.code] ?? 0) + 1;
                    firstError ??= d.error;
                }
            }
        }
        const t0 = performance.now();
        await Promise.all(Array.from({ length: Math.min(CONCURRENCY, SUBMITS) }, worker));
        const totalMs = performance.now() - t0;
        out.submit = {
            fn: opt['submit-fn'],
            count: SUBMITS,
            concurrency: CONCURRENCY,
            committed: latencies.length,
            failed: SUBMITS - latencies.length,
            failures,
            total_ms: round(totalMs),
            tx_per_s: round((latencies.length * 1000) / totalMs),
            latency: stats(latencies),
            ...(firstError && { first_error: firstError }),
        };
    }

    if (N > 0) {
        const args = (i) => fill(EVALUATE_ARGS, i);
        for (let i = 0; i < WARMUP; i++) await contract.evaluate(opt['evaluate-fn'], { arguments: args(i) });
        const samples = [];
        for (let i = 0; i < N; i++) {
            const t0 = performance.now();
            await contract.evaluate(opt['evaluate-fn'], { arguments: args(i) });
            samples.push(performance.now() - t0);
        }
        out.evaluate = { fn: opt['evaluate-fn'], args: EVALUATE_ARGS, n: N, warmup: WARMUP, ...stats(samples) };
    }
    process.stdout.write(JSON.stringify(out) + '\n');
    if (out.submit && out.submit.committed === 0) process.exitCode = 1;
} catch (err) {
    out.error = describeError(err).error;
    process.stdout.write(JSON.stringify(out) + '\n');
    process.exitCode = 1;
} finally {
    conn.close();
}
