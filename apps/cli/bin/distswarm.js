#!/usr/bin/env node
import { run } from '../dist/main.js'

process.exit(await run(process.argv.slice(2)))
