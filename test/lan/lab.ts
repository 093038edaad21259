/**
 * The LAN lab for tests: boxes in network namespaces (10.77.0.x on a
 * bridge), closed when the test ends, pass or fail. Where the lab cannot
 * run (not root, no `ip`), the tests that need it are skipped and say why.
 */
import { randomBytes } from 'node:crypto'
import { onTestFinished } from 'vitest'
import { LanLab, type BoxSpec, type LanLabInit } from '@distswarm/localnet'
import type { FetchResult } from '@distswarm/agent'
import { BIN, cliJson } from '../harness.js'

/** A lab test's time bound: whole agents in namespaces, on shaped links of a loaded machine; bounded, but not seconds. */
export const SLOW = 240_000

export const LAB = LanLab.available()
if (!LAB.ok) process.stderr.write(`LAN lab tests skipped: ${LAB.reason}\n`)

/** describe/it title suffix naming why a test is skipped. */
export const skipped = (reason: string): string => reason ? ` (skipped: ${reason})` : ''

/** A lab with these boxes, closed when the test ends. */
export async function lab (boxes: Array<BoxSpec | string>, opts: Partial<LanLabInit> = {}): Promise<LanLab> {
  const specs = boxes.map((b) => typeof b === 'string' ? { name: b } : b)
  const l = await LanLab.create({ bin: BIN, boxes: specs, ...opts })
  onTestFinished(() => l.close())
  return l
}

export const newNetworkKey = (): string => randomBytes(32).toString('hex')

/** `distswarm fetch NAME` against an agent; resolves to its result, throws on failure. */
export async function fetchVia (control: string, name: string): Promise<FetchResult> {
  const [first] = await cliJson<Array<{ ok: boolean, result?: FetchResult, error?: unknown }>>(['fetch', name, '--control', control])
  if (!first?.ok || !first.result) throw new Error(`fetch ${name}: ${JSON.stringify(first)}`)
  return first.result
}
