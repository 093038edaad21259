#!/usr/bin/env node
// 8. The LAN lab: two boxes (network namespaces) on 100 Mbit/s links. A
// verified fetch from one box to the other against curl of the same file
// from nginx (sendfile on) over the same shaped link, run for run; and
// discovery by LAN multicast alone (no bootstrap node, no --peer).
// Skipped, with the reason, where the lab cannot run (not root, no `ip`).
// Usage: node bench/lan.mjs [--quick] [--json FILE]
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { LanLab } from '@distswarm/localnet'
import { MiB, bin, call, cpuOf, logged, main, now, row, syncFs, timed, waitFor, waitHolders, waitLocal, writeRandomFile } from './lib.mjs'

const RATE = '100mbit'
const LINK_MIB_S = 100e6 / 8 / MiB
const HTTP_PORT = 8080

/** nginx in the box, serving `root` at HTTP_PORT on its address, sendfile on, in the foreground (the lab stops it). */
async function startNginx (lab, box, root) {
  const nginx = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p))
  if (!nginx) throw new Error('nginx is not installed (apt-get install nginx)')
  const prefix = join(lab.box(box).dir, 'nginx')
  await mkdir(prefix, { recursive: true })
  const conf = join(prefix, 'nginx.conf')
  // The lab's dirs are root's (0700): the worker runs as root to read them. Only inside the box's namespace.
  await writeFile(conf, [
    'user root;', 'daemon off;', 'worker_processes 1;', `pid ${join(prefix, 'nginx.pid')};`, `error_log ${join(prefix, 'error.log')} warn;`,
    'events { worker_connections 64; }',
    'http {',
    '  sendfile on; tcp_nopush on; access_log off;',
    `  client_body_temp_path ${prefix}/body; proxy_temp_path ${prefix}/proxy; fastcgi_temp_path ${prefix}/fcgi; uwsgi_temp_path ${prefix}/uwsgi; scgi_temp_path ${prefix}/scgi;`,
    `  server { listen ${lab.box(box).address}:${HTTP_PORT}; root ${root}; }`,
    '}', ''
  ].join('\n'))
  const proc = lab.spawnIn(box, 'nginx', [nginx, '-p', prefix, '-c', conf])
  await waitFor(async () => {
    if (proc.child.exitCode !== null) throw new Error(`nginx exited ${proc.child.exitCode}: ${proc.log.join('\n')}`)
    return (await lab.exec(box, ['curl', '-s', '-o', '/dev/null', '--noproxy', '*', `http://${lab.box(box).address}:${HTTP_PORT}/`], { timeoutMs: 5000 })).code === 0
  }, 15_000, 'nginx to answer')
  return proc
}

export async function bench ({ quick, onCleanup }) {
  const base = { id: 'lan', title: '8. LAN lab (100 Mbit/s)', config: {} }
  const can = LanLab.available()
  if (!can.ok) return { ...base, rows: [], notes: [`skipped: ${can.reason}`] }
  const RUNS = quick ? 2 : 3
  const size = (quick ? 64 : 256) * MiB
  const name = `lan-${size / MiB}m.tar.xz`
  const lab = await LanLab.create({ bin, boxes: [{ name: 'buildhost', shape: { rate: RATE } }, { name: 'laptop', shape: { rate: RATE } }] })
  onCleanup(() => lab.close())
  try {
    const key = randomBytes(32).toString('hex')
    const bh = await lab.dirs('buildhost')
    const source = join(bh.distdir, name)
    await writeRandomFile(source, size)
    await syncFs(lab.root)
    const buildhost = await lab.startAgent('buildhost', { networkKey: key })

    // Discovery by multicast alone: from spawning laptop's agent to its first authenticated peer.
    const t0 = Date.now()
    const laptop = await lab.startAgent('laptop', { networkKey: key })
    await waitFor(async () => (await laptop.status()).peers === 1, 30_000, 'laptop to find the build host', 10)
    const discovery = { start: (Date.now() - t0) / 1000, ready: (logged(laptop, 'peer.ready') - logged(laptop, 'agent.ready')) / 1000 }
    await waitHolders(laptop, name, ['buildhost'])

    await startNginx(lab, 'buildhost', bh.distdir)
    const out = join((await lab.dirs('laptop')).dir, 'curl-download')
    const cached = join(laptop.cacheDir, name)
    const m = { ours: [], theirs: [], cpuReceiver: [], cpuSender: [] }
    for (let i = 0; i < RUNS; i++) {
      await rm(cached, { force: true })
      await waitLocal(laptop, name, false)
      const cpu = [cpuOf(laptop.child.pid), cpuOf(buildhost.child.pid)]
      const [wall, got] = await timed(() => call(laptop, 'fetch', { query: name }, 600_000))
      if (got.source !== 'swarm' || (await stat(cached)).size !== size) throw new Error(`fetch gave ${JSON.stringify(got)}`)
      m.ours.push(size / MiB / wall)
      m.cpuReceiver.push(cpuOf(laptop.child.pid) - cpu[0])
      m.cpuSender.push(cpuOf(buildhost.child.pid) - cpu[1])

      await rm(out, { force: true })
      const t = now()
      const curl = await lab.exec('laptop', ['curl', '-sf', '--noproxy', '*', '-o', out, `http://10.77.0.10:${HTTP_PORT}/${name}`], { timeoutMs: 600_000 })
      if (curl.code !== 0 || (await stat(out)).size !== size) throw new Error(`curl exited ${curl.code}: ${curl.stderr}`)
      m.theirs.push(size / MiB / (now() - t))
    }
    const ratio = m.ours.map((o, i) => o / m.theirs[i])
    return {
      ...base,
      config: { runs: RUNS, sizeMiB: size / MiB, rate: RATE },
      rows: [
        row(`fetch of ${size / MiB} MiB, verified and published, box to box`, 'MiB/s', m.ours, {
          ratio: { samples: ratio, of: 'curl over the same link', target: { op: '>=', value: 0.9, text: '≥ 0.9× curl' } }
        }),
        row('  receiving agent\'s CPU over the fetch', 's CPU', m.cpuReceiver),
        row('  sending agent\'s CPU over the fetch', 's CPU', m.cpuSender),
        row('  curl of the same file from nginx (sendfile on), same link', 'MiB/s', m.theirs),
        row('  the link\'s rate, for scale', 'MiB/s', [LINK_MIB_S]),
        row('discovery by LAN multicast alone: agent.ready to its first peer (log times)', 's', [discovery.ready], { target: { op: '<', value: 2, text: '< 2 s' } }),
        row('  agent process spawned to its first peer (node start-up included)', 's', [discovery.start])
      ],
      notes: [
        `Two boxes of the LAN lab (network namespaces on a bridge), each link shaped to ${RATE} both ways with tbf; ${RUNS} runs, interleaved.`,
        'distswarm: `fetch` on the receiving agent (the file hashed with BLAKE2B and SHA512 and published); curl: nginx (sendfile on) in the sending box, curl -o in the receiving one, no hashing.',
        'Discovery: the receiving agent started with no bootstrap node and no --peer (LAN discovery is on by default), the sending one running already.'
      ]
    }
  } finally {
    await lab.close()
  }
}

await main(import.meta.url, bench)
