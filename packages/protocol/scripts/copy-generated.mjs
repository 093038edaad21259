// tsc neither emits nor copies the generated CommonJS codec and its
// declarations; put them beside the compiled wrapper that imports them.
import { cpSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
cpSync(`${root}/src/generated`, `${root}/dist/generated`, { recursive: true })
