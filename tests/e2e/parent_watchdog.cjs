/**
 * Preloaded into soketi by harness.py (`node --require parent_watchdog.cjs ...`).
 *
 * The harness starts soketi with stdin connected to a pipe that it never writes to.
 * When the Python process goes away for any reason, including SIGKILL or a CI
 * timeout that gives it no chance to clean up, the pipe's write end closes and
 * stdin reports EOF; soketi then exits instead of living on as an orphan.
 * Normal shutdown goes through SIGTERM, which soketi handles itself.
 */
'use strict';

const exitNow = () => process.exit(0);
process.stdin.on('end', exitNow);
process.stdin.on('error', exitNow);
process.stdin.resume();
