// The built file (run `npm run build` first): it finds its own tag through
// document.currentScript, posts to the collector it came from, leaks no globals but `odnos`,
// stays within budget, and is the same file the collector serves.

import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { gzipSync } from 'node:zlib'
import { JSDOM, VirtualConsole, requestInterceptor } from 'jsdom'

const built = readFileSync(new URL('../dist/s.js', import.meta.url), 'utf8')

// Loads `html` as a page at https://shop.example/ whose https://stats.example/s.js is the build.
function load(html) {
  const errors = []
  const beacons = []
  const virtualConsole = new VirtualConsole()
  virtualConsole.on('jsdomError', (e) => errors.push(e))
  const dom = new JSDOM(html, {
    url: 'https://shop.example/landing?_odn=tok1',
    runScripts: 'dangerously',
    virtualConsole,
    resources: {
      interceptors: [
        requestInterceptor((request) =>
          request.url == 'https://stats.example/s.js'
            ? new Response(built, { headers: { 'Content-Type': 'text/javascript' } })
            : new Response('', { status: 404 }),
        ),
      ],
    },
    beforeParse(win) {
      win.navigator.sendBeacon = (url, body) => beacons.push({ url: String(url), event: JSON.parse(body) })
      Object.defineProperty(win.navigator, 'webdriver', { value: false })
    },
  })
  const loaded = new Promise((resolve) => dom.window.addEventListener('load', resolve))
  return { win: dom.window, errors, beacons, loaded }
}

test('the built s.js tracks the page it is pasted into', async () => {
  const page = load(`<!doctype html><html><head>
    <script>window.odnos = window.odnos || function () { (odnos.q = odnos.q || []).push(arguments) }; odnos('track', 'early')</script>
    <script defer data-site="site-9" src="https://stats.example/s.js"></script>
    </head><body></body></html>`)
  await page.loaded
  assert.deepEqual(page.errors, [])
  assert.deepEqual(
    page.beacons.map((b) => [b.url, b.event.name, b.event.site]),
    [
      ['https://stats.example/e', 'pageview', 'site-9'],
      ['https://stats.example/e', 'early', 'site-9'],
    ],
  )
  assert.equal(page.beacons[0].event.odn, 'tok1')
  assert.equal(page.win.location.href, 'https://shop.example/landing')
  page.win.odnos.track('late')
  assert.equal(page.beacons.at(-1).event.name, 'late')
  page.win.close()
})

test('the bundle defines no global but odnos', async () => {
  const before = load('<!doctype html><html><head></head><body></body></html>')
  await before.loaded
  const plain = new Set(Object.keys(before.win))
  before.win.close()
  const page = load('<!doctype html><html><head><script data-site="s" src="https://stats.example/s.js"></script></head></html>')
  await page.loaded
  const added = Object.keys(page.win).filter((key) => !plain.has(key))
  assert.deepEqual(added, ['odnos'])
  page.win.close()
})

test('inlined without a src (no collector to derive), the page is unharmed', async () => {
  const page = load(`<!doctype html><html><head><script data-site="s">${built}</script></head></html>`)
  await page.loaded
  assert.deepEqual(page.errors, [])
  assert.equal(page.beacons.length, 0)
  page.win.close()
})

test('the build is within budget and is the file the collector serves', () => {
  const gzipped = gzipSync(built, { level: 9 }).length
  assert.ok(gzipped <= 1536, `${gzipped} bytes gzipped`)
  const served = readFileSync(new URL('../../tracker/static/s.js', import.meta.url), 'utf8')
  assert.equal(served, built, 'tracker/static/s.js is stale: run npm run build')
})
