/* global process, AbortController, console */
// Run by transport-escape.test.ts as an unprivileged user (setpriv): one command-transport copy whose
// command daemonizes a helper (setsid) and exits; prints what the probe chose and whether the helper
// outlived the copy. Usage: node unprivileged-copy.mjs <dist/transports.js>
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';

const m = await import(process.argv[2]);
const dir = mkdtempSync(`${tmpdir()}/ccat-unpriv-`);
const pidFile = `${dir}/pid`;
writeFileSync(`${dir}/src`, 'bytes');
const t = m.createCommandTransport({
  command: [
    'sh',
    '-c',
    `setsid sh -c 'read -r p _ < /proc/self/stat; echo "$p" > "$2"; sleep 30' "$0" "$1" "${pidFile}" </dev/null >/dev/null 2>&1 & while [ ! -s "${pidFile}" ]; do sleep 0.05; done; cat "$0" > "$1"`,
    '{source}',
    '{destination}',
  ],
});
await t.copy(`${dir}/src`, `${dir}/dst.ccat-partial-0`, {
  signal: new AbortController().signal,
  onBytes() {},
});
const pid = Number(readFileSync(pidFile, 'utf8').trim());
let alive;
try {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  alive = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] !== 'Z';
} catch {
  alive = false;
}
rmSync(dir, { recursive: true, force: true });
console.log(JSON.stringify({ flags: m.probePidNamespace(), isolation: t.isolation, alive, pid }));
