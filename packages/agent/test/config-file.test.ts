import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadOptions, parseConfig, renderConfig, resolveConfig, type ConfigError } from '../src/index.js'
import { OPTIONS } from '../src/options.js'

const EXAMPLE = fileURLToPath(new URL('../../../contrib/distswarm.toml', import.meta.url))
const KEY = randomBytes(32).toString('hex')

let dir: string
beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'distswarm-config-')) })
afterEach(() => rm(dir, { recursive: true, force: true }))

function refusal (fn: () => unknown): ConfigError {
  try {
    fn()
  } catch (err) {
    return err as ConfigError
  }
  throw new Error('accepted')
}

async function asyncRefusal (p: Promise<unknown>): Promise<ConfigError> {
  return p.then(() => { throw new Error('accepted') }, (err: ConfigError) => err)
}

describe('config file', () => {
  it('refuses an unknown key, naming it and its line', () => {
    const err = refusal(() => parseConfig(`# comment\nname = "a"\n\ncolour = "blue"\n`, '/x.toml'))
    expect(err).toMatchObject({ code: 'ERR_CONFIG', option: 'colour', origin: '/x.toml:4' })
    expect(err.message).toContain('colour')
    expect(err.message).toContain('/x.toml:4')
    // a table is a key too; a near miss gets a hint
    expect(refusal(() => parseConfig('name = "a"\n[agent]\nport = 1\n', '/x.toml'))).toMatchObject({ option: 'agent', origin: '/x.toml:2' })
    expect(refusal(() => parseConfig('\n  cache_dir = "/c"\n', '/x.toml')).message).toContain('did you mean cache-dir?')
  })

  it('refuses a TOML syntax error, naming its line', () => {
    expect(refusal(() => parseConfig('name = "a"\nport = = 1\n', '/x.toml'))).toMatchObject({ code: 'ERR_CONFIG', origin: '/x.toml:2' })
    expect(refusal(() => parseConfig('port = 1\nport = 2\n', '/x.toml'))).toMatchObject({ code: 'ERR_CONFIG', origin: '/x.toml:2' })
  })

  it('gives bad values their line, for resolveConfig to name', () => {
    const { options, origins } = parseConfig(`network-key = "${KEY}"\nbootstrap = ["127.0.0.1:1"]\n\ndata-port = -1\n`, '/x.toml')
    expect(refusal(() => resolveConfig(options, origins))).toMatchObject({ code: 'ERR_CONFIG', option: 'data-port', origin: '/x.toml:4' })
  })

  it('takes the file, then DISTSWARM_* variables, then flags, each over the one before', async () => {
    const path = join(dir, 'distswarm.toml')
    await writeFile(path, `network-key = "${KEY}"\nname = "from-file"\nport = 1\ndata-port = 2\nbootstrap = ["127.0.0.1:9"]\n`)
    const env = { DISTSWARM_PORT: '3', DISTSWARM_NAME: 'from-env', DISTSWARM_BOOTSTRAP: '127.0.0.1:7, 127.0.0.1:8', DISTSWARM_DATA_PORT: '' }
    const { options, origins, configPath } = await loadOptions({ config: path, env, flags: { name: 'from-flag', help: true } })
    expect(configPath).toBe(path)
    expect(options).toMatchObject({ name: 'from-flag', port: '3', dataPort: 2, bootstrap: ['127.0.0.1:7', '127.0.0.1:8'] })
    expect(origins).toMatchObject({ name: '--name', port: 'DISTSWARM_PORT', dataPort: `${path}:4`, networkKey: `${path}:1` })
    expect(resolveConfig(options, origins)).toMatchObject({ name: 'from-flag', port: 3, dataPort: 2 })
    // DISTSWARM_CONFIG picks the file when no flag does
    expect((await loadOptions({ env: { DISTSWARM_CONFIG: path } })).options.name).toBe('from-file')
  })

  it('refuses a named config file that is missing, and one too large to be a config', async () => {
    expect(await asyncRefusal(loadOptions({ config: join(dir, 'none.toml'), env: {} }))).toMatchObject({ code: 'ERR_CONFIG' })
    expect(await asyncRefusal(loadOptions({ env: { DISTSWARM_CONFIG: join(dir, 'none.toml') } }))).toMatchObject({ code: 'ERR_CONFIG' })
    const big = join(dir, 'big.toml')
    await writeFile(big, '#'.repeat(2 * 1024 * 1024))
    expect(await asyncRefusal(loadOptions({ config: big, env: {} }))).toMatchObject({ code: 'ERR_CONFIG', origin: big })
  })
})

describe('contrib/distswarm.toml', () => {
  it('is the documented example renderConfig() makes (regenerate: distswarm init --example > contrib/distswarm.toml)', async () => {
    expect(await readFile(EXAMPLE, 'utf8')).toBe(renderConfig())
  })

  it('documents every option with an example value the agent accepts', async () => {
    const text = await readFile(EXAMPLE, 'utf8')
    // every example line, switched on
    const on = text.replace(/^# ([a-z-]+ = .*)$/gm, '$1')
    const { options, origins } = parseConfig(on, EXAMPLE)
    expect(Object.keys(origins).sort()).toEqual(OPTIONS.map((o) => o.key).sort())
    // the example's key is refused, so that nobody runs a network on a published key…
    expect(refusal(() => resolveConfig(options, origins))).toMatchObject({ code: 'ERR_CONFIG', option: 'network-key' })
    // …and every other example value is accepted
    expect(resolveConfig({ ...options, networkKey: KEY }, origins).seed).toBe(false)
  })
})
