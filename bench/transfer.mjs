#!/usr/bin/env node
// 1. Verified transfer of one file between two agent processes on loopback,
// against the baseline a user has without distswarm, run for run in the same
// net: a plain HTTP download (curl, from a node HTTP server) followed by
// b2sum and sha512sum. CPU seconds of every process explain the wall times.
// Usage: node bench/transfer.mjs [--quick] [--json FILE]
import { createReadStream } from 'node:fs'
import { rm, stat } from 'node:fs/promises'
import { createServer } from 'node:http'
import { join } from 'node:path'
import { MiB, call, cpuOf, main, memOf, row, speedup, run, startNet, syncFs, timed, waitHolders, waitLocal, wallAndCpu, writeRandomFile } from './lib.mjs'

const RUNS = 3

export async function bench ({ quick, onCleanup }) {
  const size = (quick ? 256 : 1024) * MiB
  const name = `bench-${size / MiB}m.tar.xz`
  const net = await startNet()
  onCleanup(() => net.close())
  let server = null
  try {
    const source = join((await net.dirs('seeder')).distdir, name)
    await writeRandomFile(source, size)
    await syncFs(net.root)
    const [seeder, receiver] = await Promise.all([net.startAgent({ name: 'seeder' }), net.startAgent({ name: 'receiver' })])
    await waitHolders(receiver, name, ['seeder'])

    server = createServer((req, res) => {
      res.writeHead(200, { 'content-length': size })
      createReadStream(source).pipe(res)
    })
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
    const url = `http://127.0.0.1:${server.address().port}/${name}`
    const out = join(net.root, 'curl-download')
    const cached = join(receiver.cacheDir, name)

    const m = { ours: [], recvCpu: [], seedCpu: [], hwm: [], theirs: [], srvCpu: [], curl: [], curlCpu: [], b2: [], b2Cpu: [], sha: [], shaCpu: [] }
    // Interleaved, so drift in the machine's load hits both sides alike.
    for (let i = 0; i < RUNS; i++) {
      await rm(cached, { force: true })
      await waitLocal(receiver, name, false)
      const [r0, s0] = [cpuOf(receiver.child.pid), cpuOf(seeder.child.pid)]
      const [wall, got] = await timed(() => call(receiver, 'fetch', { query: name }, 600_000))
      m.recvCpu.push(cpuOf(receiver.child.pid) - r0)
      m.seedCpu.push(cpuOf(seeder.child.pid) - s0)
      if (got.source !== 'swarm' || (await stat(cached)).size !== size) throw new Error(`fetch gave ${JSON.stringify(got)}`)
      m.ours.push(wall)
      m.hwm.push(memOf(receiver.child.pid, 'VmHWM'))

      await rm(out, { force: true })
      const srv0 = process.cpuUsage()
      const [curl, curlCpu] = await run('curl', ['-sf', '--noproxy', '*', '-o', out, url])
      const srv = process.cpuUsage(srv0)
      m.srvCpu.push((srv.user + srv.system) / 1e6)
      const [b2, b2Cpu] = await run('b2sum', [out])
      const [sha, shaCpu] = await run('sha512sum', [out])
      Object.entries({ curl, curlCpu, b2, b2Cpu, sha, shaCpu }).forEach(([k, v]) => m[k].push(v))
      m.theirs.push(curl + b2 + sha)
    }
    const path = (await call(receiver, 'peers')).find((p) => p.name === 'seeder')?.path ?? '?'
    return {
      id: 'transfer',
      title: '1. Verified transfer',
      config: { bytes: size, runs: RUNS, path },
      rows: [
        row(`distswarm fetch ${size / MiB} MiB, agent to agent (${path} path), verified + published: wall`, 's', m.ours, { ratio: speedup(m.theirs, m.ours, 'vs curl+b2sum+sha512sum', 1.5) }),
        row('  receiving agent: CPU', 's CPU', m.recvCpu),
        row('  seeding agent: CPU', 's CPU', m.seedCpu),
        row('  receiving agent: peak RSS (VmHWM)', 'MiB', m.hwm),
        row('baseline: curl from a node HTTP server, then b2sum, then sha512sum: wall', 's', m.theirs),
        ...wallAndCpu('  curl', m.curl, m.curlCpu),
        row('  HTTP server (node, in the bench process): CPU during curl', 's CPU', m.srvCpu),
        ...wallAndCpu('  b2sum', m.b2, m.b2Cpu),
        ...wallAndCpu('  sha512sum', m.sha, m.shaCpu)
      ],
      notes: [
        `${size / MiB} MiB of random bytes, ${RUNS} runs, distswarm and the baseline alternating; ratio = baseline wall / distswarm wall of the same run.`,
        'Page cache: warm for both sides (the source file was written and synced just before, both read it from memory; each side\'s written copy stays cached for its hashing).',
        'CPU seconds are utime+stime from /proc/<pid>/stat before and after (every thread of the agents; the baseline\'s commands as waited-for children of the bench process).'
      ]
    }
  } finally {
    server?.close()
    await net.close()
  }
}

await main(import.meta.url, bench)
