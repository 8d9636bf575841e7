#!/usr/bin/env node
// A platform's client of tracecode, in Node.js (@grpc/grpc-js and
// @grpc/proto-loader read tracecode's .proto files at start): verify a
// batch of codes, and watch delisting notices (acknowledging each one).
//
//   platform_client.js --addr HOST:PORT --platform ID [TLS options] verify CODE...
//   platform_client.js --addr HOST:PORT --platform ID [TLS options] watch [--cursor C] [--count N]
//
// TLS options: --ca FILE --cert FILE --key FILE (the client certificate
// names the caller: OU=platform, CN=your platform id), or --insecure for a
// development node on loopback (metadata tc-role / tc-subject).
// Copy it: npm install @grpc/grpc-js @grpc/proto-loader (the versions in
// tracecode's package-lock.json are the ones tested).
'use strict';

const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_DIR = process.env.TRACECODE_PROTO || path.join(__dirname, '..', '..', 'proto');

function parseArgs(argv) {
  const o = { cmd: null, codes: [], cursor: '', count: 0 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(a + ' needs a value');
      return argv[++i];
    };
    if (a === '--addr') o.addr = val();
    else if (a === '--platform') o.platform = val();
    else if (a === '--insecure') o.insecure = true;
    else if (a === '--ca') o.ca = val();
    else if (a === '--cert') o.cert = val();
    else if (a === '--key') o.key = val();
    else if (a === '--cursor') o.cursor = val();
    else if (a === '--count') o.count = parseInt(val(), 10);
    else if (!o.cmd && (a === 'verify' || a === 'watch')) o.cmd = a;
    else if (o.cmd === 'verify' && !a.startsWith('--')) o.codes.push(a);
    else throw new Error('unknown argument ' + a);
  }
  if (!o.addr || !o.platform || !o.cmd) throw new Error('need --addr, --platform and verify|watch');
  if (!o.insecure && !(o.ca && o.cert && o.key))
    throw new Error('give --ca, --cert and --key, or --insecure for a development node');
  return o;
}

function client(o) {
  const def = protoLoader.loadSync(['tracecode/v1/verifier.proto'], {
    includeDirs: [PROTO_DIR], keepCase: true, longs: String, enums: String, defaults: true,
    oneofs: true,
  });
  const v1 = grpc.loadPackageDefinition(def).tracecode.v1;
  const creds = o.insecure
    ? grpc.credentials.createInsecure()
    : grpc.credentials.createSsl(fs.readFileSync(o.ca), fs.readFileSync(o.key),
      fs.readFileSync(o.cert));
  const md = new grpc.Metadata();
  if (o.insecure) {
    md.set('tc-role', 'platform');
    md.set('tc-subject', o.platform);
  }
  return { stub: new v1.VerifierService(o.addr, creds), md };
}

function deadline(s) {
  return { deadline: Date.now() + s * 1000 };
}

// One VerifyBatch call per 10,000 codes; prints CODE<TAB>VERDICT[<TAB>detail].
// Resolves 0 when every code is genuine, 1 otherwise.
async function verify(c, codes) {
  let rc = 0;
  for (let i = 0; i < codes.length; i += 10000) {
    const chunk = codes.slice(i, i + 10000);
    const resp = await new Promise((resolve, reject) =>
      c.stub.VerifyBatch({ items: chunk.map((code) => ({ code })), view: 'VERIFY_VIEW_BASIC' },
        c.md, deadline(30), (err, r) => (err ? reject(err) : resolve(r))));
    resp.results.forEach((r, k) => {
      console.log(chunk[k] + '\t' + r.verdict + (r.detail ? '\t' + r.detail : ''));
      if (r.verdict !== 'VERDICT_GENUINE') rc = 1;
    });
  }
  return rc;
}

// Print each notice, acknowledge it, resume after the last one seen when the
// node ends the stream (drain, failover).
function watch(c, cursor, count) {
  let seen = 0;
  return new Promise((resolve) => {
    const open = () => {
      const call = c.stub.WatchDelistings({ cursor }, c.md);
      call.on('data', (ev) => {
        if (ev.event !== 'notice') return; // a heartbeat
        const n = ev.notice;
        console.log(`notice ${n.notice_id} certificate ${n.certificate_number} status ` +
          `${n.new_status} listings ${n.listing_ids.join(',')} reason ${n.reason}`);
        cursor = n.notice_id;
        seen++;
        const done = count && seen >= count;
        if (done) call.cancel();
        // Take the listings down here, then acknowledge; the id makes a retry safe.
        c.stub.AckDelisting({ notice_id: n.notice_id, request_id: 'ack-' + n.notice_id }, c.md,
          deadline(30), (err) => {
            if (err) console.error('ack failed: ' + err.details);
            if (done) resolve(0);
          });
      });
      call.on('error', (err) => {
        if (err.code === grpc.status.CANCELLED && count && seen >= count) return;
        if (err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.ABORTED) {
          console.error(`watch ended (${err.details}); resuming after "${cursor}"`);
          setTimeout(open, 1000);
        } else {
          console.error('watch failed: ' + err.details);
          resolve(3);
        }
      });
    };
    open();
  });
}

async function main() {
  let o;
  try {
    o = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error('platform_client.js: ' + e.message);
    return 2;
  }
  const c = client(o);
  if (o.cmd === 'verify') {
    const codes = o.codes.length ? o.codes
      : fs.readFileSync(0, 'utf8').split('\n').map((s) => s.trim()).filter(Boolean);
    return verify(c, codes);
  }
  return watch(c, o.cursor, o.count);
}

main().then((rc) => process.exit(rc), (err) => {
  console.error('platform_client.js: ' + (err.details || err.message));
  process.exit(3);
});
