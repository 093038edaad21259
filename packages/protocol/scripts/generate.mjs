#!/usr/bin/env node
// Generates the wire codecs from protocols/distswarm.proto:
//   src/generated/distswarm.cjs    the protocol-buffers compiler's output
//   src/generated/distswarm.d.cts  TypeScript declarations for it
// `--check` writes nothing and exits 1 when the committed files differ from
// a fresh generation, so generated code can never drift from the schema.
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const protobuf = require('protocol-buffers')
const schema = require('protocol-buffers-schema')

const pkgRoot = fileURLToPath(new URL('..', import.meta.url))
export const PROTO = fileURLToPath(new URL('../../../protocols/distswarm.proto', import.meta.url))
export const OUT_DIR = `${pkgRoot}src/generated`

const HEADER = '// Generated from protocols/distswarm.proto by packages/protocol/scripts/generate.mjs. Do not edit.\n'

const SCALARS = {
  bool: 'boolean',
  string: 'string',
  bytes: 'Uint8Array | null',
  float: 'number',
  double: 'number'
}

function tsType (field, enumNames) {
  if (SCALARS[field.type]) return SCALARS[field.type]
  if (/^(u?int|sint|s?fixed)(32|64)$/.test(field.type)) return 'number'
  if (enumNames.has(field.type)) return 'number'
  return `${field.type} | null`
}

function renderDeclarations (sch) {
  const lines = [HEADER.trim(), '', 'export interface Codec<T> {',
    '  encode(obj: T, buf?: Uint8Array, offset?: number): Buffer',
    '  decode(buf: Uint8Array, offset?: number, end?: number): T',
    '  encodingLength(obj: T): number',
    '}', '']
  for (const msg of sch.messages) {
    const enumNames = new Set(msg.enums.map((e) => e.name))
    lines.push(`export interface ${msg.name} {`)
    for (const f of msg.fields) {
      const t = tsType(f, enumNames)
      lines.push(f.repeated ? `  ${f.name}?: Array<${t.replace(' | null', '')}>` : `  ${f.name}?: ${t}`)
    }
    lines.push('}')
    const enumDecls = msg.enums.map((e) =>
      `${e.name}: { ${Object.entries(e.values).map(([k, v]) => `readonly ${k}: ${v.value}`).join('; ')} }`)
    const extra = enumDecls.length ? ` & { ${enumDecls.join('; ')} }` : ''
    lines.push(`export declare const ${msg.name}: Codec<${msg.name}>${extra}`, '')
  }
  return lines.join('\n')
}

/** Fresh generation, as file name → contents. */
export function render () {
  const source = readFileSync(PROTO)
  const js = protobuf.toJS(source)
  return {
    'distswarm.cjs': HEADER + js,
    'distswarm.d.cts': renderDeclarations(schema.parse(source))
  }
}

function main () {
  const files = render()
  const check = process.argv.includes('--check')
  let stale = 0
  for (const [name, text] of Object.entries(files)) {
    const path = `${OUT_DIR}/${name}`
    let current = null
    try { current = readFileSync(path, 'utf8') } catch {}
    if (current === text) continue
    if (check) {
      process.stderr.write(`generate: ${path} differs from a fresh generation; run npm run generate\n`)
      stale++
    } else {
      mkdirSync(OUT_DIR, { recursive: true })
      writeFileSync(path, text)
      process.stdout.write(`generate: wrote ${path}\n`)
    }
  }
  process.exitCode = stale ? 1 : 0
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main()
