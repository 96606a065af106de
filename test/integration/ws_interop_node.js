// Interop with a third-party client: Node's `ws` (from npm, installed by
// .ci/run into a cache directory on NODE_PATH) against examples/echo:
// text, binary, large, fragmented, ping, close codes.
// usage: node ws_interop_node.js /path/to/hello   (echo is next to it)
// Exits 77 (skipped) when the module is not installed.
'use strict';
let WebSocket;
try {
  WebSocket = require('ws');
} catch (e) {
  console.log('ws_interop_node: node ws not installed; skipped');
  process.exit(77);
}
const { spawn } = require('child_process');
const path = require('path');
const crypto = require('crypto');

const echo = path.join(path.dirname(process.argv[2]), 'echo');
let checks = 0, failed = 0;
function check(cond, what) {
  checks++;
  if (!cond) { failed++; console.error('FAIL: ' + what); }
}

const srv = spawn(echo, ['--host', '127.0.0.1', '--port', '0', '--threads', '2']);
const killer = setTimeout(() => { console.error('FAIL: timeout'); srv.kill('SIGKILL'); process.exit(1); }, 60000);
let out = '';
srv.stdout.on('data', (d) => {
  out += d;
  const m = out.match(/listening on [^:]+:(\d+)/);
  if (m && !srv.started) { srv.started = true; run(Number(m[1])); }
});

function open(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { maxPayload: 1 << 24 });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}
function next(ws) {
  return new Promise((resolve) => ws.once('message', (data, isBinary) => resolve({ data, isBinary })));
}

async function run(port) {
  const url = `ws://127.0.0.1:${port}/ws`;
  try {
    const ws = await open(url);
    ws.send('héllo ☃');
    let m = await next(ws);
    check(!m.isBinary && m.data.toString() === 'héllo ☃', 'text round trip');
    const bin = crypto.randomBytes(70000);
    ws.send(bin);
    m = await next(ws);
    check(m.isBinary && Buffer.compare(m.data, bin) === 0, 'binary 70000 bytes');
    const big = crypto.randomBytes(5 << 20);
    ws.send(big);
    m = await next(ws);
    check(Buffer.compare(m.data, big) === 0, '5 MiB binary');
    // Fragmented: fin=false then fin=true.
    ws.send('frag', { fin: false });
    ws.send('ment', { fin: true });
    m = await next(ws);
    check(m.data.toString() === 'fragment', 'fragmented text');
    const pong = new Promise((resolve) => ws.once('pong', (d) => resolve(d)));
    ws.ping('ping-data');
    check((await pong).toString() === 'ping-data', 'ping -> pong with payload');
    const closed = new Promise((resolve) => ws.once('close', (code) => resolve(code)));
    ws.close(4001, 'bye');
    check((await closed) === 4001, 'close code echoed');
  } catch (e) {
    check(false, 'exception: ' + e);
  }
  srv.kill('SIGTERM');
  srv.on('exit', (code) => {
    clearTimeout(killer);
    check(code === 0, 'server exits 0');
    console.log(`ws_interop_node: ${checks} checks, ${failed} failed`);
    process.exit(failed ? 1 : 0);
  });
}
