import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { format } from 'node:util'
import createDebug from 'debug'
import { afterEach, beforeEach } from 'vitest'
import { Store, type StoreInit } from '../src/index.js'

export const b2 = (b: Buffer | string): Buffer => createHash('blake2b512').update(b).digest()
export const s512 = (b: Buffer | string): Buffer => createHash('sha512').update(b).digest()
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** A fresh temp dir per test, and every Store made through `makeStore` closed (watchers, workers) before it is removed. */
export function useTempRoot (): { readonly root: string, makeStore: (init: StoreInit) => Store } {
  const state = { root: '' }
  const stores: Store[] = []
  beforeEach(async () => { state.root = await mkdtemp(join(tmpdir(), 'distswarm-store-')) })
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.stop()))
    await rm(state.root, { recursive: true, force: true })
  })
  return {
    get root () { return state.root },
    makeStore: (init) => {
      const store = new Store(init)
      stores.push(store)
      return store
    }
  }
}

/** Polls `cond` every 10 ms, at most `timeoutMs` (and at most 1 000 times). */
export async function waitFor (what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (let i = 0; i < 1000 && Date.now() < deadline; i++) {
    if (cond()) return
    await sleep(10)
  }
  if (!cond()) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
}

/** Collects what the store's debug logger prints while `fn` runs. */
export async function captureLog (fn: () => Promise<void>): Promise<string[]> {
  const lines: string[] = []
  const before = createDebug.disable()
  const log = createDebug.log
  createDebug.enable('distswarm:store*')
  createDebug.log = (...args: unknown[]) => { lines.push(format(...args)) }
  try {
    await fn()
  } finally {
    createDebug.log = log
    createDebug.disable()
    if (before) createDebug.enable(before)
  }
  return lines
}
