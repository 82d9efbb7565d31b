// The one test SMTP server (@ccat/test-support) as the demo and the fault suite use it: it keeps
// what it accepts with the notification id, turns slow and hangs after DATA on demand while it runs.
// Spoken to over a raw socket, so what is tested is the server's side of the dialogue.
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startSmtp, type TestSmtp } from '@ccat/test-support';

let smtp: TestSmtp | undefined;
afterEach(async () => {
  await smtp?.close();
  smtp = undefined;
});

/** A minimal SMTP client: each `reply()` resolves with the next complete reply (multi-line included). */
async function dial(port: number) {
  const socket: Socket = connect(port, '127.0.0.1');
  socket.setEncoding('utf8');
  let buffer = '';
  const waiting: ((r: string) => void)[] = [];
  const replies: string[] = [];
  socket.on('data', (d: string) => {
    buffer += d;
    for (;;) {
      const m = /^(?:\d{3}-.*\r\n)*\d{3} .*\r\n/.exec(buffer);
      if (!m) break;
      buffer = buffer.slice(m[0].length);
      const next = waiting.shift();
      if (next) next(m[0]);
      else replies.push(m[0]);
    }
  });
  socket.on('error', () => undefined);
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  const reply = () =>
    new Promise<string>((resolve) => {
      const r = replies.shift();
      if (r !== undefined) resolve(r);
      else waiting.push(resolve);
    });
  const send = (line: string) => {
    socket.write(`${line}\r\n`);
    return reply();
  };
  return { socket, reply, send, pending: () => replies.length + (buffer.length > 0 ? 1 : 0) };
}

const MESSAGE = [
  'From: ccat@example.org',
  'To: ops@example.org',
  'Subject: [CCAT] ERROR: unpack 7 failed',
  'X-CCAT-Notification-Id: 1234',
  '',
  'body',
  '.',
].join('\r\n');

async function sendUntilData(port: number) {
  const c = await dial(port);
  expect(await c.reply()).toMatch(/^220 /);
  expect(await c.send('EHLO test')).toMatch(/^250/);
  expect(await c.send('MAIL FROM:<ccat@example.org>')).toMatch(/^250 /);
  expect(await c.send('RCPT TO:<ops@example.org>')).toMatch(/^250 /);
  expect(await c.send('DATA')).toMatch(/^354 /);
  return c;
}

describe('the test SMTP server', () => {
  it('keeps an accepted mail with its subject and notification id', async () => {
    smtp = await startSmtp({ replyDelayMs: 0 });
    const c = await sendUntilData(smtp.port);
    expect(await c.send(MESSAGE)).toMatch(/^250 /);
    c.socket.destroy();
    expect(smtp.mails).toHaveLength(1);
    expect(smtp.mails[0]).toMatchObject({
      envelopeTo: ['ops@example.org'],
      subject: '[CCAT] ERROR: unpack 7 failed',
      notificationId: '1234',
    });
  });

  it('turned slow answers the greeting, MAIL, RCPT and the end of DATA no sooner than the delay', async () => {
    smtp = await startSmtp({ replyDelayMs: 0 });
    smtp.replyDelayMs = 300;
    const started = Date.now();
    const c = await sendUntilData(smtp.port);
    expect(await c.send(MESSAGE)).toMatch(/^250 /);
    // At least four delayed replies: a lower bound only, the machine may be slower but never faster.
    expect(Date.now() - started).toBeGreaterThanOrEqual(4 * 300 - 20);
    c.socket.destroy();
    expect(smtp.mails).toHaveLength(1);
  });

  it('turned hung reads the message after DATA and never answers or accepts it', async () => {
    smtp = await startSmtp({ replyDelayMs: 0 });
    smtp.hangAfterData = true;
    const c = await sendUntilData(smtp.port);
    c.socket.write(`${MESSAGE}\r\n`);
    // The server has read the whole message when it counts it as unanswered.
    const deadline = Date.now() + 10_000;
    while (smtp.unanswered.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(smtp.unanswered).toHaveLength(1);
    // Whatever it was going to say about the message, it would have said it by now.
    await new Promise((r) => setTimeout(r, 500));
    expect(c.pending()).toBe(0);
    expect(smtp.mails).toEqual([]);
    c.socket.destroy();
  });
});
