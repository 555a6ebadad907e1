// Bundle entry: the only file that touches the real globals. Everything runs inside try, so
// even a failure during start-up never reaches the host page.

import { start } from './tracker.js'

try {
  start(window, document.currentScript, Date.now)
} catch (e) {
  // The page must keep working without analytics.
}
