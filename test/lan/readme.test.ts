import { describe, expect, it } from 'vitest'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { PeerInfo, StatusResult, WhereResult } from '@distswarm/agent'
import { cliJson, waitFor } from '../harness.js'
import { digestsOf, distfile, portageArgv } from '../gentoo.js'
import { fetchVia, LAB, lab, SLOW, skipped } from './lab.js'

/** The `distswarm …` commands a command printed, indented on lines of their own, as argv (no word of ours has a space or a quote). */
function printedCommands (stdout: string): string[][] {
  return stdout.split('\n').filter((l) => /^ {2}distswarm /.test(l)).map((l) => l.trim().split(/ +/).slice(1))
}

describe.skipIf(!LAB.ok)(`the README's "Setting up three boxes", on three boxes${skipped(LAB.reason)}`, () => {
  it('init, the bootstrap node on the build host, init --join on the others, peers, fetch and portage-fetch, with the commands the README prints', { timeout: SLOW }, async () => {
    const l = await lab(['buildhost', 'laptop', 'nas'])
    const f = distfile('linux-6.6.tar.xz', Buffer.alloc(3 * 1024 * 1024 + 17, 7))
    const g = distfile('firefox-128.0.source.tar.xz')
    await writeFile(join((await l.dirs('buildhost')).distdir, f.name), f.data)
    await writeFile(join((await l.dirs('buildhost')).distdir, g.name), g.data)
    // Paths under each box's own dir, as agent options given to init (the README's boxes use the defaults, one box each).
    const paths = async (name: string): Promise<{ d: Awaited<ReturnType<typeof l.dirs>>, flags: string[] }> => {
      const d = await l.dirs(name)
      return { d, flags: ['--config', join(d.dir, 'distswarm.toml'), '--state-dir', d.stateDir, '--cache-dir', d.cacheDir, '--control', d.control, '--distdir', d.distdir, '--name', name] }
    }

    // 2. Make the network on buildhost
    const bh = await paths('buildhost')
    const made = await l.cli('buildhost', ['init', ...bh.flags])
    expect(made.code, made.stderr).toBe(0)
    const [bootstrapCmd, startCmd, joinCmd] = printedCommands(made.stdout)
    expect(bootstrapCmd).toEqual(['bootstrap', '--host', '10.77.0.10', '--port', '49737'])
    expect(startCmd).toEqual(['agent', '--config', join(bh.d.dir, 'distswarm.toml')])
    expect(joinCmd).toEqual(['init', '--join', expect.stringMatching(/^[0-9a-f]{64}$/), '--bootstrap', '10.77.0.10:49737'])
    // --bootstrap with this box's own address: the same bootstrap instructions (issue 15, item 6)
    const self = await l.cli('buildhost', ['init', ...bh.flags.map((f) => f.endsWith('distswarm.toml') ? join(bh.d.dir, 'self.toml') : f), '--bootstrap', '10.77.0.10:49737'])
    expect(self.code, self.stderr).toBe(0)
    expect(self.stdout).toContain("This box runs the network's bootstrap node")
    expect(printedCommands(self.stdout)[0]).toEqual(bootstrapCmd)

    // 3. Start the services on buildhost: the bootstrap node, then the agent
    l.spawn('buildhost', 'bootstrap', bootstrapCmd!)
    const buildhost = await l.startAgentWith('buildhost', startCmd!, bh.d)

    // 4. Join on laptop and nas: the command init printed, then the agent
    const joined = []
    for (const name of ['laptop', 'nas']) {
      const p = await paths(name)
      const j = await l.cli(name, [...joinCmd!, ...p.flags])
      expect(j.code, j.stderr).toBe(0)
      const [start] = printedCommands(j.stdout)
      expect(start).toEqual(['agent', '--config', join(p.d.dir, 'distswarm.toml')])
      joined.push(l.startAgentWith(name, start!, p.d))
    }
    const [laptop, nas] = await Promise.all(joined)

    // 6. Check: peers lists the other two on every box, at their LAN addresses
    for (const a of [buildhost, laptop!, nas!]) {
      await waitFor(async () => (await a.status()).peers === 2, 30_000, `${a.name} to list the other two`)
    }
    // as the README runs them: the socket from the config file (here --config: the box's file is not at the default path)
    const nasConfig = join(nas!.dir, 'distswarm.toml')
    const seen = await cliJson<PeerInfo[]>(['peers', '--config', nasConfig])
    expect(seen.map((p) => p.name).sort()).toEqual(['buildhost', 'laptop'])
    // each at its LAN address and data port, with a round-trip time
    for (const p of seen) expect(p.address).toMatch(/^10\.77\.0\.1[01]:\d+$/)
    await waitFor(async () => (await cliJson<PeerInfo[]>(['peers', '--config', nasConfig])).every((p) => typeof p.rttMs === 'number'), 15_000, 'round-trip times')
    // status names the addresses the DHT socket is reachable at, not 0.0.0.0
    const status = await l.cli('nas', ['status', '--config', nasConfig])
    expect(status.stdout).toMatch(/^dht +10\.77\.0\.12:\d+ \(all interfaces\)$/m)
    expect((await cliJson<StatusResult>(['status', '--config', nasConfig])).problems).toEqual([])
    await waitFor(async () => (await cliJson<WhereResult>(['where', f.name, '--control', laptop!.control])).remote.length === 1, 15_000, 'laptop to see where the file is')

    // distswarm fetch on laptop
    const got = await fetchVia(laptop!.control, f.name)
    expect(got.source).toBe('swarm')
    expect((await readFile(got.path)).equals(f.data)).toBe(true)

    // 5. Point Portage at it on nas, and let emerge fetch: FETCHCOMMAND as Portage runs it, in the box
    // the socket comes from the config file, and is baked into FETCHCOMMAND all the same (issue 15, item 5)
    const conf = await l.cli('nas', ['portage-config', '--config', nasConfig])
    expect(conf.code, conf.stderr).toBe(0)
    expect(conf.stdout).toContain(`PORTAGE_RO_DISTDIRS="${nas!.cacheDir}"`)
    expect(conf.stdout).toMatch(new RegExp(`^FETCHCOMMAND=.* portage-fetch --control ${nas!.control.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} `, 'm'))
    await waitFor(async () => (await cliJson<WhereResult>(['where', g.name, '--control', nas!.control])).remote.length === 1, 15_000, 'nas to see where the file is')
    const file = `${g.name}.__download__`
    const argv = portageArgv(conf.stdout, 'FETCHCOMMAND', { URI: `http://10.77.0.10:1/distfiles/${g.name}`, DISTDIR: nas!.distdir, FILE: file, DIGESTS: digestsOf(g) })
    const fetched = await l.exec('nas', argv)
    expect(fetched.code, fetched.stderr).toBe(0)
    expect((await readFile(join(nas!.distdir, file))).equals(g.data)).toBe(true)
    expect(fetched.stderr).toMatch(/from the swarm/)

    // doctor on nas: the agent, the bootstrap node, the peers and the clock pass (make.conf and Portage's user are not this lab's)
    const doctor = await l.cli('nas', ['doctor', '--config', nasConfig, '--portage-dir', join(nas!.dir, 'no-portage'), '--json'])
    const checks = new Map((JSON.parse(doctor.stdout) as { checks: Array<{ name: string, status: string, detail: string }> }).checks.map((c) => [c.name, c]))
    for (const name of ['config', 'agent', 'bootstrap', 'peers', 'clock']) expect(checks.get(name), name).toMatchObject({ status: 'ok' })
    expect(checks.get('clock')!.detail).toMatch(/^within \d+ s of 2 peers' clocks/)
  })
})
