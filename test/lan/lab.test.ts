import { describe, expect, it } from 'vitest'
import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { createInterface } from 'node:readline'
import { LAB_PREFIX, LanLab } from '@distswarm/localnet'
import { waitFor } from '../harness.js'
import { BIN } from '../harness.js'
import { LAB, lab, skipped } from './lab.js'

const namespaces = (): string[] => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0]!).filter(Boolean)
const localnet = createRequire(import.meta.url).resolve('@distswarm/localnet')

describe.skipIf(!LAB.ok)(`the LAN lab harness${skipped(LAB.reason)}`, () => {
  it('gives each box its own 10.77.0.x on one link and no way out, and takes everything down on close', async () => {
    const l = await lab(['a', { name: 'b', address: '10.77.0.42' }])
    expect(l.boxes.map((b) => b.address)).toEqual(['10.77.0.10', '10.77.0.42'])
    for (const b of l.boxes) {
      expect(execFileSync('ip', ['-n', b.ns, '-4', '-o', 'addr', 'show', 'dev', 'eth0'], { encoding: 'utf8' })).toContain(`${b.address}/24`)
      // Only the lab's own subnet is routable from a box: nothing can leave it.
      expect(execFileSync('ip', ['-n', b.ns, 'route'], { encoding: 'utf8' }).trim()).toBe('10.77.0.0/24 dev eth0 proto kernel scope link src ' + b.address)
    }
    // A TCP connection from box a to box b, through the bridge.
    const server = l.spawnIn('b', 'server', [process.execPath, '-e', "require('net').createServer((s) => s.end('hello from b')).listen(7000, '10.77.0.42', () => console.error('listening'))"])
    await waitFor(() => server.log.includes('listening'), 15_000, 'the server in b')
    const hello = await l.exec('a', [process.execPath, '-e', "require('net').connect(7000, '10.77.0.42').on('data', (d) => process.stdout.write(d))"])
    expect(hello.stdout).toBe('hello from b')
    // A cut link carries nothing; a healed one does again.
    l.cut('b')
    const cut = await l.exec('a', [process.execPath, '-e', "const s = require('net').connect(7000, '10.77.0.42'); s.setTimeout(1500, () => { console.log('no answer'); s.destroy() }); s.on('data', (d) => process.stdout.write(d))"])
    expect(cut.stdout).toBe('no answer\n')
    l.heal('b')
    const names = [l.hub, ...l.boxes.map((b) => b.ns)]
    expect(namespaces()).toEqual(expect.arrayContaining(names))
    await l.close()
    expect(namespaces().filter((n) => names.includes(n))).toEqual([])
    expect(existsSync(l.root)).toBe(false)
    expect(server.child.exitCode !== null || server.child.signalCode !== null).toBe(true)
  })

  it('refuses addresses outside 10.77.0.0/24, and a failed create leaves nothing behind', async () => {
    const before = namespaces().filter((n) => n.startsWith(`${LAB_PREFIX}${process.pid}-`))
    await expect(LanLab.create({ bin: BIN, boxes: [{ name: 'a' }, { name: 'b', address: '192.168.1.10' }] })).rejects.toThrow(/10\.77\.0\.0\/24/)
    await expect(LanLab.create({ bin: BIN, boxes: [{ name: 'a' }, { name: 'a' }] })).rejects.toThrow(/unique/)
    expect(namespaces().filter((n) => n.startsWith(`${LAB_PREFIX}${process.pid}-`))).toEqual(before)
  })

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`tears down on ${signal}, and a later run removes what a kill -9ed run left`, async () => {
      const script = `import { LanLab } from ${JSON.stringify(localnet)}
const l = await LanLab.create({ bin: ${JSON.stringify(BIN)}, boxes: [{ name: 'a' }, { name: 'b' }] })
l.spawnIn('a', 'sleeper', ['sleep', '600'])
console.log(JSON.stringify([l.hub, ...l.boxes.map((b) => b.ns), l.root]))
setInterval(() => {}, 1000)`
      const run = (): { child: ReturnType<typeof spawn>, names: Promise<string[]> } => {
        const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
        const names = once(createInterface({ input: child.stdout! }), 'line').then(([line]) => JSON.parse(line as string) as string[])
        return { child, names }
      }
      const first = run()
      const [root, ...names] = (await first.names).reverse()
      expect(namespaces()).toEqual(expect.arrayContaining(names))
      expect(existsSync(root!)).toBe(true)
      first.child.kill(signal)
      const [, sig] = await once(first.child, 'exit')
      expect(sig).toBe(signal) // it still dies of the signal
      expect(namespaces().filter((n) => names.includes(n))).toEqual([])
      expect(existsSync(root!)).toBe(false)

      // kill -9: nothing runs the handlers, the namespaces stay; the next lab's start removes them.
      const crashed = run()
      const [leftRoot, ...left] = (await crashed.names).reverse()
      crashed.child.kill('SIGKILL')
      await once(crashed.child, 'exit')
      expect(namespaces()).toEqual(expect.arrayContaining(left))
      await lab(['c'])
      expect(namespaces().filter((n) => left.includes(n))).toEqual([])
      expect(existsSync(leftRoot!)).toBe(false)
    })
  }
})
