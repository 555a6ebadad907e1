// Builds s.js: bundles src/ into one minified IIFE, checks the gzipped size against the
// budget, then copies it to where the collector serves it (tracker/static/s.js).

import { build } from 'esbuild'
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'

const BUDGET = 1536 // bytes, gzipped (design.md: <= 1.5 KB)
const here = dirname(fileURLToPath(import.meta.url))
const out = join(here, 'dist', 's.js')
const served = join(here, '..', 'tracker', 'static', 's.js')

await build({
  entryPoints: [join(here, 'src', 'index.js')],
  outfile: out,
  bundle: true,
  minify: true,
  format: 'iife',
  target: 'es2017',
  legalComments: 'none',
})

const code = readFileSync(out)
const gzipped = gzipSync(code, { level: 9 }).length
console.log(`dist/s.js: ${code.length} bytes, ${gzipped} bytes gzipped (budget ${BUDGET})`)
if (gzipped > BUDGET) {
  console.error(`s.js is over budget by ${gzipped - BUDGET} bytes; not copied to tracker/static`)
  process.exit(1)
}
mkdirSync(dirname(served), { recursive: true })
copyFileSync(out, served)
console.log('copied to tracker/static/s.js')
