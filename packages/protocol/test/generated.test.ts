import { expect, it } from 'vitest'
import { readFileSync } from 'node:fs'
// @ts-expect-error: a plain JS build script with no declarations
import { render, OUT_DIR } from '../scripts/generate.mjs'

it('committed codecs equal a fresh generation from protocols/distswarm.proto', () => {
  const fresh = render() as Record<string, string>
  expect(Object.keys(fresh).sort()).toEqual(['distswarm.cjs', 'distswarm.d.cts'])
  for (const [name, text] of Object.entries(fresh)) {
    expect(readFileSync(`${OUT_DIR as string}/${name}`, 'utf8'), `${name} drifted: run npm run generate`).toBe(text)
  }
})
