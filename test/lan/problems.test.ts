import { describe, expect, it } from 'vitest'
import type { StatusResult } from '@distswarm/agent'
import { cli, cliJson, waitFor } from '../harness.js'
import { LAB, lab, newNetworkKey, skipped, SLOW } from './lab.js'

/** The warn lines of an agent's stderr (the default log level) for this event. */
const warnings = (log: string[], event: string): string[] => log.filter((l) => new RegExp(`^\\S+ warn +\\S+ ${event.replace('.', '\\.')} `).test(l))

describe.skipIf(!LAB.ok)(`mistakes speak, in the LAN lab${skipped(LAB.reason)}`, () => {
  it('a wrong network key, a wrong --peer port, a bootstrap node not running: a warn line each naming the address and the cause, once; status and peers list them', { timeout: SLOW }, async () => {
    const l = await lab(['buildhost', 'laptop', 'nas'])
    const key = newNetworkKey()
    const off = ['--lan-discovery', 'off']
    const buildhost = await l.startAgent('buildhost', { networkKey: key, args: ['--data-port', '49738', ...off] })
    // laptop was given another network's key; nas the wrong port of the build host, and a bootstrap node nobody started.
    const laptop = await l.startAgent('laptop', { networkKey: newNetworkKey(), args: ['--peer', '10.77.0.10:49738', ...off] })
    const nas = await l.startAgent('nas', { networkKey: key, args: ['--peer', '10.77.0.10:49739', '--bootstrap', '10.77.0.10:49737', ...off] })

    // Both sides of the wrong key can tell: the dialler names where it dialled, the other the host that came in.
    await waitFor(() => warnings(laptop.log, 'peer.wrong-network-key').length > 0 && warnings(buildhost.log, 'peer.wrong-network-key').length > 0, 30_000, 'the wrong key warnings')
    expect(warnings(laptop.log, 'peer.wrong-network-key')[0]).toMatch(/address=10\.77\.0\.10:49738 cause="it does not know our network key/)
    expect(warnings(buildhost.log, 'peer.wrong-network-key')[0]).toMatch(/address=10\.77\.0\.11 cause="it does not know our network key/)
    await waitFor(() => warnings(nas.log, 'static-peer.unreachable').length > 0 && warnings(nas.log, 'bootstrap.unreachable').length > 0, 60_000, "nas's warnings")
    expect(warnings(nas.log, 'static-peer.unreachable')[0]).toMatch(/address=10\.77\.0\.10:49739 cause="[^"]*refused/)
    expect(warnings(nas.log, 'bootstrap.unreachable')[0]).toMatch(/address=10\.77\.0\.10:49737 cause="[^"]*bootstrap/)

    // Rate-limited: laptop dials again (1 s, 2 s, … apart) and is refused each time; said once, counted each time.
    await waitFor(async () => ((await laptop.status()).problems[0]?.count ?? 0) >= 2, 30_000, 'a second refusal')
    expect(warnings(laptop.log, 'peer.wrong-network-key')).toHaveLength(1)

    // status --json and peers (for people) show them; peers --json stays the list of peers.
    const bh = await cliJson<StatusResult>(['status', '--control', buildhost.control])
    expect(bh.problems).toEqual([expect.objectContaining({ event: 'peer.wrong-network-key', address: '10.77.0.11' })])
    const atLaptop = await cli(['peers', '--control', laptop.control])
    expect(atLaptop.stdout).toMatch(/^no peers\n/)
    expect(atLaptop.stdout).toMatch(/10\.77\.0\.10:49738 +\d+ +it does not know our network key/)
    const atNas = await cli(['peers', '--control', nas.control])
    expect(atNas.stdout).toMatch(/10\.77\.0\.10:49739 +\d+ +.*refused/)
    expect(atNas.stdout).toMatch(/10\.77\.0\.10:49737 +\d+ +.*bootstrap/)
    expect(await cliJson<unknown[]>(['peers', '--control', nas.control])).toEqual([])
  })
})
