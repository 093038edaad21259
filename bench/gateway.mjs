#!/usr/bin/env node
// 8. The HTTP gateway against nginx: one file through the agent's
// /distfiles/ (curl), whole file checked afterwards as Portage does (b2sum,
// then sha512sum), against the same file from Debian's nginx on loopback
// (sendfile on, started here; installed with apt-get when missing and root)
// followed by the same checks. Two cases: the file already on the box
// (served from DISTDIR), and the file held by a peer only (fetched from the
// swarm, verified, published, then served).
// Usage: node bench/gateway.mjs [--quick] [--json FILE]
import { execFileSync } from 'node:child_process'
import { mkdir, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { MiB, call, main, row, run, speedup, startNet, startNginx, syncFs, waitHolders, waitLocal, wallAndCpu, writeRandomFile } from './lib.mjs'

const RUNS = 3

export async function bench ({ quick, onCleanup }) {
  const size = (quick ? 256 : 1024) * MiB
  const net = await startNet()
  onCleanup(() => net.close())
  let nginx = null
  try {
    const localName = `bench-local-${size / MiB}m.tar.xz`
    const peerName = `bench-peer-${size / MiB}m.tar.xz`
    const boxDirs = await net.dirs('box')
    const seedDirs = await net.dirs('seeder')
    await writeRandomFile(join(boxDirs.distdir, localName), size)
    await writeRandomFile(join(seedDirs.distdir, peerName), size)
    await syncFs(net.root)
    // the box hashes its 1 GiB file at start: on a loaded machine that takes a while
    const [, box] = await Promise.all([net.startAgent({ name: 'seeder' }, 300_000), net.startAgent({ name: 'box' }, 300_000)])
    await waitHolders(box, peerName, ['seeder'])
    const gw = (await call(box, 'status')).url
    // nginx serves the same two files, from a dir of hard links
    const www = join(net.root, 'www')
    await mkdir(www)
    execFileSync('ln', [join(boxDirs.distdir, localName), join(seedDirs.distdir, peerName), www])
    nginx = await startNginx(www)
    onCleanup(() => nginx.stop())

    const out = join(net.root, 'download')
    const cached = join(box.cacheDir, peerName)
    /** curl to `out`, then b2sum and sha512sum of it: [curl wall, curl CPU, total wall] */
    const fetchAndCheck = async (url) => {
      await rm(out, { force: true })
      const [curl, curlCpu] = await run('curl', ['-sf', '--noproxy', '*', '-o', out, url])
      if ((await stat(out)).size !== size) throw new Error(`${url}: short download`)
      const [b2] = await run('b2sum', [out])
      const [sha] = await run('sha512sum', [out])
      return [curl, curlCpu, curl + b2 + sha]
    }
    const m = { local: [], localCpu: [], localTotal: [], peer: [], peerCpu: [], peerTotal: [], swarm: [], ng: [], ngCpu: [], ngTotal: [] }
    /** The agent's own count of seconds spent in swarm fetches (request to publish), from its /metrics. */
    const transferSeconds = async () => Number(/^distswarm_transfer_duration_seconds_sum (\S+)$/m.exec(await (await fetch(`${gw}/metrics`)).text())[1])
    // Interleaved, so drift in the machine's load hits every side alike.
    for (let i = 0; i < RUNS; i++) {
      const [a, aCpu, aTotal] = await fetchAndCheck(`${gw}/distfiles/${localName}`)
      m.local.push(a); m.localCpu.push(aCpu); m.localTotal.push(aTotal)
      await rm(cached, { force: true })
      await waitLocal(box, peerName, false)
      const swarm0 = await transferSeconds()
      const [b, bCpu, bTotal] = await fetchAndCheck(`${gw}/distfiles/${peerName}`)
      m.peer.push(b); m.peerCpu.push(bCpu); m.peerTotal.push(bTotal)
      m.swarm.push(await transferSeconds() - swarm0)
      const [c, cCpu, cTotal] = await fetchAndCheck(`${nginx.url}/${localName}`)
      m.ng.push(c); m.ngCpu.push(cCpu); m.ngTotal.push(cTotal)
    }
    return {
      id: 'gateway',
      title: '8. HTTP gateway',
      config: { bytes: size, runs: RUNS },
      rows: [
        row(`gateway, ${size / MiB} MiB already on the box: curl wall`, 's', m.local, { ratio: speedup(m.ng, m.local, 'vs nginx (sendfile) curl wall', 1) }),
        row('  then b2sum + sha512sum: wall, curl included', 's', m.localTotal, { ratio: speedup(m.ngTotal, m.localTotal, 'vs nginx + b2sum + sha512sum') }),
        row('  curl: CPU', 's CPU', m.localCpu),
        row(`gateway, ${size / MiB} MiB from a peer (swarm fetch, verify, publish, serve): curl wall`, 's', m.peer),
        row('  of which the swarm fetch (agent\'s transfer_duration_seconds: request to publish)', 's', m.swarm),
        row('  then b2sum + sha512sum: wall, curl included', 's', m.peerTotal, { ratio: speedup(m.ngTotal, m.peerTotal, 'vs nginx + b2sum + sha512sum') }),
        ...wallAndCpu('baseline: nginx (sendfile on) to curl', m.ng, m.ngCpu),
        row('  then b2sum + sha512sum: wall, curl included', 's', m.ngTotal)
      ],
      notes: [
        `${size / MiB} MiB of random bytes, ${RUNS} runs, the three cases alternating; ratio = nginx wall / gateway wall of the same run (above 1: the gateway is faster).`,
        'Page cache warm for every side (files written and synced just before). The gateway answers only after a peer\'s file is verified and published, so its "from a peer" curl wall holds the whole swarm transfer.',
        'The gateway streams with Node (read + write, no sendfile); nginx with sendfile.'
      ]
    }
  } finally {
    await nginx?.stop()
    await net.close()
  }
}

await main(import.meta.url, bench)
