import { describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { resolveConfig, type AgentOptions, type ConfigError } from '../src/index.js'
import { OPTIONS } from '../src/options.js'

const KEY = randomBytes(32).toString('hex')
/** Enough to start: a key and a way to meet others. */
const BASE: AgentOptions = { networkKey: KEY, bootstrap: ['127.0.0.1:49737'] }

function refusal (opts: AgentOptions, origins = {}): ConfigError {
  try {
    resolveConfig({ ...BASE, ...opts }, origins)
  } catch (err) {
    return err as ConfigError
  }
  throw new Error(`accepted ${JSON.stringify(opts)}`)
}

describe('resolveConfig refuses hostile values, naming the option', () => {
  const cases: Array<[string, AgentOptions]> = [
    // ports out of range, negative, fractional, not numbers
    ['port', { port: 65536 }],
    ['port', { port: -1 }],
    ['port', { port: 1.5 }],
    ['port', { port: 'abc' }],
    ['port', { port: '80x' }],
    ['port', { port: Number.NaN }],
    ['data-port', { dataPort: -1 }],
    ['data-port', { dataPort: '-1' }],
    ['data-port', { dataPort: 70000 }],
    ['data-port', { dataPort: 'of' }],
    ['data-port', { dataPort: '' }],
    // network keys of the wrong length, or not hex
    ['network-key', { networkKey: 'abcd' }],
    ['network-key', { networkKey: KEY + '00' }],
    ['network-key', { networkKey: 'g'.repeat(64) }],
    ['network-key', { networkKey: '' }],
    ['network-key', { networkKey: undefined }],
    // relative, empty, NUL-bearing and absurdly long paths
    ['cache-dir', { cacheDir: 'cache' }],
    ['cache-dir', { cacheDir: '' }],
    ['state-dir', { stateDir: './state' }],
    ['state-dir', { stateDir: '/var/lib/\0x' }],
    ['distdir', { distdirs: ['distfiles'] }],
    ['distdir', { distdirs: [''] }],
    ['distdir', { distdirs: ['/d', '/d/'] }],
    ['distdir', { distdirs: Array.from({ length: 10_000 }, (_, i) => `/d/${i}`) }],
    ['repo', { repos: ['../gentoo'] }],
    ['control', { control: 'control.sock' }],
    ['control', { control: '/run/' + 'x'.repeat(200) + '.sock' }],
    ['cache-dir', { cacheDir: '/' + 'x'.repeat(5000) }],
    // duplicate and malformed addresses
    ['peer', { peers: ['127.0.0.1:49738', '127.0.0.1:49738'] }],
    ['bootstrap', { bootstrap: ['127.0.0.1:49737', '127.0.0.1:49737'] }],
    ['bootstrap', { bootstrap: ['127.0.0.1'] }],
    ['peer', { peers: ['127.0.0.1:0'] }],
    ['peer', { peers: ['127.0.0.1:99999'] }],
    // names, bind addresses, switches and levels
    ['name', { name: '' }],
    ['name', { name: 'x'.repeat(65) }],
    ['name', { name: 'a\nb' }],
    ['host', { host: 'buildhost' }],
    ['host', { host: '' }],
    ['seed', { seed: 'maybe' as unknown as boolean }],
    ['log-level', { logLevel: 'verbose' }],
    // metrics: an IP address to bind (not a name that may resolve to several), a port 0-65535
    ['metrics', { metrics: 'localhost:9100' }],
    ['metrics', { metrics: '127.0.0.1' }],
    ['metrics', { metrics: '127.0.0.1:65536' }],
    ['metrics', { metrics: ':9100' }],
    ['metrics', { metrics: 'on' }],
    // sizes that are no sizes
    ['cache-max-size', { cacheMaxSize: '20X' }],
    ['cache-max-size', { cacheMaxSize: '-1G' }],
    ['cache-max-size', { cacheMaxSize: '1.5' }],
    ['cache-max-size', { cacheMaxSize: 2.5 }],
    ['cache-max-size', { cacheMaxSize: '' }],
    ['cache-max-size', { cacheMaxSize: 'G' }],
    ['cache-max-size', { cacheMaxSize: '99999999T' }],
    // binary packages: paths, one word for CHOST and group, keys or all-members alone
    ['pkgdir', { pkgdirs: ['binpkgs'] }],
    ['chost', { chost: 'x86_64 pc' }],
    ['chost', { chost: 'x86_64\nVERSION: 9' }],
    ['chost', { chost: '' }],
    ['binpkg-group', { binpkgGroup: 'a/b' }],
    ['binpkg-group', { binpkgGroup: 'g'.repeat(129) }],
    ['binpkg-trust', { binpkgTrust: ['abcd'] }],
    ['binpkg-trust', { binpkgTrust: ['all-members', 'ab'.repeat(32)] }],
    ['binpkg-trust', { binpkgTrust: ['ab'.repeat(32), 'AB'.repeat(32)] }]
  ]
  it.each(cases)('%s: %j', (option, opts) => {
    const err = refusal(opts)
    expect(err.code).toBe('ERR_CONFIG')
    expect(err.option).toBe(option)
    expect(err.message).toContain(option)
  })

  it('checks every option: a table where a value belongs is refused under its own name', () => {
    for (const o of OPTIONS) {
      const err = refusal({ [o.key]: { nested: 1 } } as AgentOptions)
      expect({ option: o.name, code: err.code, named: err.option }).toEqual({ option: o.name, code: 'ERR_CONFIG', named: o.name })
    }
  })

  it('says where the bad value came from, and never echoes the network key', () => {
    const err = refusal({ dataPort: -1 }, { dataPort: '/etc/distswarm/distswarm.toml:7' })
    expect(err.origin).toBe('/etc/distswarm/distswarm.toml:7')
    expect(err.message).toContain('/etc/distswarm/distswarm.toml:7')
    const secret = KEY.slice(0, 63)
    expect(refusal({ networkKey: secret }).message).not.toContain(secret)
  })

  it('refuses a config with no way to meet other agents', () => {
    const err = refusal({ bootstrap: [], peers: [], lanDiscovery: 'off' })
    expect(err.code).toBe('ERR_CONFIG')
    expect(refusal({ bootstrap: [], peers: [], dataPort: 'off' }).code).toBe('ERR_CONFIG')
  })

  it('takes LAN discovery alone as a way to meet (init --join KEY with nothing else): on by default, off on loopback unless asked', () => {
    expect(resolveConfig({ networkKey: KEY })).toMatchObject({ lanDiscovery: true, host: '0.0.0.0', bootstrap: [], staticPeers: [] })
    expect(resolveConfig({ ...BASE }).lanDiscovery).toBe(false) // bound to loopback
    expect(resolveConfig({ ...BASE, lanDiscovery: 'on' }).lanDiscovery).toBe(true)
    expect(resolveConfig({ networkKey: KEY, lanDiscovery: 'off', dataPort: 49738 }).lanDiscovery).toBe(false)
    expect(resolveConfig({ networkKey: KEY, dataPort: 'off', bootstrap: ['10.0.0.1:1'] }).lanDiscovery).toBe(false) // no data port to announce
    expect(refusal({ ...BASE, lanDiscovery: 'sometimes' }).message).toContain('lan-discovery')
    expect(refusal({ ...BASE, lanDiscovery: 'on', dataPort: 'off' }).message).toMatch(/lan-discovery.*data-port/)
  })

  it('accepts the text forms flags and variables give, and fills the defaults', () => {
    const c = resolveConfig({ ...BASE, port: '4000', dataPort: 'off', seed: 'yes' as unknown as boolean, distdirs: '/d' as unknown as string[], logLevel: 'debug' })
    expect(c).toMatchObject({ port: 4000, dataPort: null, seed: true, distdirs: ['/d'], logLevel: 'debug', host: '127.0.0.1', repos: null })
    expect(resolveConfig(BASE)).toMatchObject({ port: 0, dataPort: 0, seed: false, logLevel: 'info', distdirs: ['/var/cache/distfiles'], metrics: null, cacheMaxBytes: null })
  })

  it('takes the binary package options: PKGDIRs, CHOST, group, trusted keys (lower-cased) or all-members; defaults left to the start', () => {
    expect(resolveConfig(BASE)).toMatchObject({ pkgdirs: null, chost: null, binpkgGroup: null, binpkgTrust: [] })
    expect(resolveConfig({ ...BASE, pkgdirs: [] }).pkgdirs).toEqual([])
    const c = resolveConfig({ ...BASE, pkgdirs: ['/var/cache/binpkgs/'], chost: 'aarch64-unknown-linux-gnu', binpkgGroup: 'zen4', binpkgTrust: ['AB'.repeat(32)] })
    expect(c).toMatchObject({ pkgdirs: ['/var/cache/binpkgs'], chost: 'aarch64-unknown-linux-gnu', binpkgGroup: 'zen4', binpkgTrust: ['ab'.repeat(32)] })
    expect(resolveConfig({ ...BASE, binpkgTrust: ['all-members'] }).binpkgTrust).toBe('all-members')
  })

  it('takes metrics as IP:PORT or [IPv6]:PORT, port 0 included, or off', () => {
    expect(resolveConfig({ ...BASE, metrics: '127.0.0.1:0' }).metrics).toEqual({ host: '127.0.0.1', port: 0 })
    expect(resolveConfig({ ...BASE, metrics: '[::1]:9100' }).metrics).toEqual({ host: '::1', port: 9100 })
    expect(resolveConfig({ ...BASE, metrics: 'off' }).metrics).toBeNull()
  })

  it('reads cache sizes in powers of 1024, or plain bytes', () => {
    const size = (cacheMaxSize: number | string): number | null => resolveConfig({ ...BASE, cacheMaxSize }).cacheMaxBytes
    expect(size('500M')).toBe(500 * 2 ** 20)
    expect(size('20G')).toBe(20 * 2 ** 30)
    expect(size('1.5T')).toBe(1.5 * 2 ** 40)
    expect(size('64k')).toBe(65536)
    expect(size('2 GiB')).toBe(2 * 2 ** 30)
    expect(size('123456')).toBe(123456)
    expect(size(123456)).toBe(123456)
    expect(size('0')).toBe(0)
    expect(size('none')).toBe(null)
  })
})
