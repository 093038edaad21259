/**
 * The metrics HTTP server and histogram on their own. The series a real
 * agent serves, and how they move: test/e2e/metrics.test.ts.
 */
import { describe, expect, it, onTestFinished } from 'vitest'
import { AgentError } from '../src/errors.js'
import { Registry } from 'prom-client'
import { formatHostPort, METRICS_CONTENT_TYPE, startMetricsServer, stopMetricsServer, transferHistogram } from '../src/metrics.js'

async function serve (render: () => string | Promise<string>): Promise<string> {
  const { server, address } = await startMetricsServer({ host: '127.0.0.1', port: 0 }, render)
  onTestFinished(() => stopMetricsServer(server))
  return `http://${formatHostPort(address)}`
}

describe('metrics server', () => {
  it('binds the given address on any free port for port 0, serves /metrics to GET and HEAD, 404 elsewhere, 405 for other methods', async () => {
    const url = await serve(() => 'distswarm_x 1\n')
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:[1-9]\d*$/)

    const get = await fetch(`${url}/metrics`)
    expect([get.status, get.headers.get('content-type'), await get.text()]).toEqual([200, METRICS_CONTENT_TYPE, 'distswarm_x 1\n'])
    const head = await fetch(`${url}/metrics`, { method: 'HEAD' })
    expect([head.status, head.headers.get('content-length'), await head.text()]).toEqual([200, '14', ''])
    expect((await fetch(`${url}/metrics?x=1`)).status).toBe(200)

    for (const path of ['/', '/metricsx', '/metrics/', '/other']) expect((await fetch(`${url}${path}`)).status).toBe(404)
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const r = await fetch(`${url}/metrics`, { method })
      expect([r.status, r.headers.get('allow')]).toEqual([405, 'GET, HEAD'])
    }
  })

  it('answers 500 when rendering fails, and keeps serving', async () => {
    let fail = true
    const url = await serve(() => { if (fail) throw new Error('boom'); return 'distswarm_x 2\n' })
    expect((await fetch(`${url}/metrics`)).status).toBe(500)
    fail = false
    expect(await (await fetch(`${url}/metrics`)).text()).toBe('distswarm_x 2\n')
  })

  it('refuses an address in use with ERR_METRICS_LISTEN', async () => {
    const taken = new URL(await serve(() => '')).port
    const err: unknown = await startMetricsServer({ host: '127.0.0.1', port: Number(taken) }, () => '').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(AgentError)
    expect((err as AgentError).code).toBe('ERR_METRICS_LISTEN')
  })
})

describe('transfer histogram', () => {
  it('counts a value equal to a bound into that bucket, beyond the last into +Inf only; buckets are cumulative', async () => {
    const registry = new Registry()
    const h = transferHistogram([registry])
    for (const v of [0.5, 1, 3, 5, 7]) h.observe(v)
    const { values } = await h.get()
    const bucket = (le: number | string): number | undefined => values.find((v) => v.metricName?.endsWith('_bucket') && v.labels.le === le)?.value
    expect([bucket(1), bucket(5), bucket('+Inf')]).toEqual([2, 4, 5])
    const of = (suffix: string): number | undefined => values.find((v) => v.metricName?.endsWith(suffix))?.value
    expect([of('_count'), of('_sum')]).toEqual([5, 16.5])
    expect(await registry.metrics()).toContain('distswarm_transfer_duration_seconds_bucket{le="+Inf"} 5\n')
  })
})
