/**
 * Starting the gateway with the agent: a given address that cannot be bound
 * fails the start; the default one taken (a second agent on the box) is a
 * warning and no gateway. Real agents: test/e2e/gateway.test.ts.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, expect, it, onTestFinished } from 'vitest'
import type { LogFields, Logger } from '@distswarm/protocol'
import { startGateway, type GatewayHost } from '../src/http.js'

const host: GatewayHost = {
  config: { seed: false },
  where: (query) => ({ query, local: [], remote: [] }),
  fetch: async () => { throw new Error('not here') },
  status: () => { throw new Error('not here') },
  pinnedQuery: (q) => q
}

async function takenPort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  onTestFinished(() => { server.close() })
  return (server.address() as AddressInfo).port
}

function recorder (): { logger: Logger, warnings: Array<[string, LogFields | undefined]> } {
  const warnings: Array<[string, LogFields | undefined]> = []
  const nop = (): void => {}
  const logger: Logger = { error: nop, info: nop, debug: nop, warn: (e, f) => { warnings.push([e, f]) }, child: () => logger }
  return { logger, warnings }
}

describe('startGateway', () => {
  it('fails with ERR_HTTP_LISTEN on a given address in use', async () => {
    const port = await takenPort()
    const err = await startGateway(host, { http: { host: '127.0.0.1', port, given: true }, httpAllow: ['127.0.0.1'] }, { metrics: async () => '' }).catch((e: unknown) => e)
    expect((err as { code?: string }).code).toBe('ERR_HTTP_LISTEN')
  })

  it('warns and runs without a gateway when the default port is taken', async () => {
    const port = await takenPort()
    const { logger, warnings } = recorder()
    const g = await startGateway(host, { http: { host: '127.0.0.1', port, given: false }, httpAllow: ['127.0.0.1'] }, { metrics: async () => '', logger })
    expect(g).toBeNull()
    expect(warnings.map(([e]) => e)).toEqual(['http.default-port-taken'])
  })

  it('is null when off, and serves a 404 from memory for a file nobody holds', async () => {
    expect(await startGateway(host, { http: null, httpAllow: [] }, { metrics: async () => '' })).toBeNull()
    const g = (await startGateway(host, { http: { host: '127.0.0.1', port: 0, given: true }, httpAllow: ['127.0.0.1'] }, { metrics: async () => 'x 1\n' }))!
    onTestFinished(() => g.stop())
    expect((await fetch(`${g.url}/distfiles/nobody-1.0.tar.gz`)).status).toBe(404)
    expect(await (await fetch(`${g.url}/metrics`)).text()).toBe('x 1\n')
  })
})
