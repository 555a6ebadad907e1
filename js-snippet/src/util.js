// The guard around every way into the snippet's code. It runs inside someone else's page, so
// nothing of ours may ever throw into it: every listener and public function goes through it.

/** Wraps `f` so that any exception is swallowed: losing one event beats breaking the page. */
export const safe =
  (f) =>
  (...args) => {
    try {
      return f(...args)
    } catch (e) {
      // Deliberately ignored, see above.
    }
  }
