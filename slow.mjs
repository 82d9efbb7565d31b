import net from 'node:net';
const port = Number(process.argv[2]);
const socks = [];
for (let i = 0; i < 20; i++) {
  const c = net.connect(port, '127.0.0.1', () => c.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-a: '));
  c.on('error', () => {});
  c.on('close', () => console.log('slow closed', i, Date.now()));
  socks.push(c);
}
// a keep-alive idle connection too, and a POST with a body never completed
const p = net.connect(port, '127.0.0.1', () =>
  p.write(
    'POST /retry HTTP/1.1\r\nHost: 127.0.0.1:19467\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\nadmin_token=x',
  ),
);
p.on('error', () => {});
p.on('close', () => console.log('post closed', Date.now()));
setTimeout(() => process.exit(0), 30000);
