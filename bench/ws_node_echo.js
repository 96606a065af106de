// bench/ws_node_echo.js — Node's `ws` echo server, the peer of the
// WebSocket benchmark: node ws_node_echo.js PORT (0: pick; prints
// "listening on 127.0.0.1:PORT").
'use strict';
const { WebSocketServer } = require('ws');
const wss = new WebSocketServer({ host: '127.0.0.1', port: Number(process.argv[2] || 0),
                                  path: '/ws', perMessageDeflate: false, maxPayload: 1 << 24 });
wss.on('listening', () => console.log(`listening on 127.0.0.1:${wss.address().port}`));
wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
