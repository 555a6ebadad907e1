// Delivery: sendBeacon first, fetch with keepalive when it is missing or refuses, and no
// failure of either ever reaching the page.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { COLLECTOR, open } from './harness.js'

// Installs a recording fetch that answers with `result` (a function of the call).
const withFetch = (calls, result) => (win) => {
  win.fetch = (url, init) => {
    calls.push({ url: String(url), init })
    return result()
  }
}

test('without sendBeacon, fetch posts a text body with keepalive and no custom headers', () => {
  const calls = []
  const page = open({ beacon: false, before: withFetch(calls, () => Promise.resolve()) })
  assert.equal(page.beacons.length, 0)
  assert.equal(calls.length, 1)
  const { url, init } = calls[0]
  assert.equal(url, COLLECTOR + '/e')
  assert.equal(init.method, 'POST')
  assert.equal(init.keepalive, true)
  assert.equal(typeof init.body, 'string', 'a string body is sent as text/plain: no CORS preflight')
  assert.equal(init.headers, undefined, 'a custom header could trigger a preflight')
  assert.equal(JSON.parse(init.body).name, 'pageview')
})

test('when sendBeacon refuses the body, fetch takes over', () => {
  const calls = []
  const page = open({
    before(win) {
      withFetch(calls, () => Promise.resolve())(win)
      win.navigator.sendBeacon = () => false
    },
  })
  assert.equal(calls.length, 1)
  assert.equal(page.beacons.length, 0)
})

test('a throwing sendBeacon and a throwing fetch never reach the page', () => {
  const page = open({
    before(win) {
      win.navigator.sendBeacon = () => {
        throw new TypeError('beacon blocked')
      }
      win.fetch = () => {
        throw new TypeError('fetch blocked')
      }
    },
  })
  // The tracker still started: its API works and its listeners keep running.
  page.win.odnos.track('signup')
  page.win.history.pushState({}, '', '/next')
  page.click('https://partner.example/')
  page.hide()
  assert.equal(typeof page.win.odnos.track, 'function')
  // The harness checks after each test that the page saw no error.
})

test('a rejected fetch is swallowed: no unhandled rejection in the page', async () => {
  const page = open({ beacon: false, before: withFetch([], () => Promise.reject(new TypeError('Failed to fetch'))) })
  page.win.odnos.track('signup')
  await new Promise((resolve) => setTimeout(resolve, 20))
  assert.equal(page.sent().length, 0)
})

test('no transport at all: nothing is sent, nothing breaks', () => {
  const page = open({ beacon: false })
  page.win.odnos.track('signup')
  page.hide()
  assert.equal(page.beacons.length, 0)
})
