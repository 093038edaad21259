#!/usr/bin/env node
// The bundle `npm run build` makes of dist/main.js: one file to load instead of some 300 (see src/bundle.ts).
import { run } from '../dist/distswarm.mjs'

process.exit(await run(process.argv.slice(2)))
